#![doc = include_str!("../README.md")]
// Test code: a failed unwrap is a failed test (clippy.toml covers #[test] and #[cfg(test)];
// this covers the helpers of this test crate).
#![allow(clippy::unwrap_used, clippy::expect_used)]

pub mod contract;
pub mod fake_provider;
pub mod http;
pub mod jwks_server;
