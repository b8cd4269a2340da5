//! The one integration-test binary of `confab-tests`: each module runs the contract suites
//! (and later the HTTP tests) against one family of adapters.
// Test code: a failed unwrap is a failed test (clippy.toml covers #[test] and #[cfg(test)];
// this covers the helpers of this test crate).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod auth;
mod files;
mod http;
mod limits;
mod live;
mod memory;
mod openai;
mod postgres;
mod redis;
mod sqlite;
