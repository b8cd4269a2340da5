//! Tests of the real `confab` process: start-up, configuration errors, restarts, crashes
//! and signals. One integration-test binary for the server crate.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod browser;
mod harness;
mod lifecycle;
