//! Tests of the real `confab` process: start-up, configuration errors, restarts, crashes
//! and signals. One integration-test binary for the server crate.
// Test code: a failed unwrap is a failed test (clippy.toml covers #[test] and #[cfg(test)];
// this covers the helpers of this test crate).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod accounts;
mod browser;
mod configuration;
mod harness;
mod lifecycle;
mod oidc;
mod outage;
mod replicas;
mod schemathesis;
