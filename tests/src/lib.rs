#![doc = include_str!("../README.md")]

pub mod contract;
pub mod fake_provider;
