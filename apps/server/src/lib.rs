#![doc = include_str!("../README.md")]

pub mod app;
pub mod client_address;
pub mod compose;
pub mod config;
pub mod convert;
pub mod error;
pub mod extract;
pub mod generations;
pub mod metrics;
pub mod openapi;
pub mod pages;
pub mod redact;
pub mod routes;
pub mod state;
pub mod telemetry;
pub mod texts;
pub mod transfer;
mod web_assets;

pub use app::{Adapters, RunningServer, build_state, start, start_on};
pub use config::Settings;
