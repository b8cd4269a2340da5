#![doc = include_str!("../README.md")]

pub mod contract;
pub mod fake_provider;
pub mod http;
pub mod jwks_server;
