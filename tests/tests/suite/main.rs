//! The one integration-test binary of `confab-tests`: each module runs the contract suites
//! (and later the HTTP tests) against one family of adapters.

mod auth;
mod files;
mod http;
mod memory;
mod openai;
mod postgres;
mod sqlite;
