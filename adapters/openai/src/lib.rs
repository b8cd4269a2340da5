#![doc = include_str!("../README.md")]

mod attachments;
mod chat_completions;
mod config;
mod provider_error;
mod responses;
mod retry;
mod sse;
mod stream;
mod tokens;
mod transport;

pub use chat_completions::ChatCompletionsLlm;
pub use config::{ConfigError, DEFAULT_BASE_URL, DEFAULT_MODEL, OpenAiConfig, ProviderConfig};
pub use responses::ResponsesLlm;
pub use tokens::TiktokenCounter;
