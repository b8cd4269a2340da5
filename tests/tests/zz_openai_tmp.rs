#![allow(missing_docs)]
#[path = "suite/openai.rs"]
mod openai;
