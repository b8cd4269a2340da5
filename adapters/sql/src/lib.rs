#![doc = include_str!("../README.md")]
//!
//! ```no_run
//! # async fn run() -> Result<(), confab_sql::SqlError> {
//! use std::sync::Arc;
//! use confab_core::ports::{ChatHistory, ProjectStore};
//!
//! let store = Arc::new(confab_sql::connect("sqlite::memory:", confab_sql::PoolOptions::default()).await?);
//! let projects: Arc<dyn ProjectStore> = store.clone();
//! let history: Arc<dyn ChatHistory> = store;
//! # let _ = (projects, history);
//! # Ok(())
//! # }
//! ```

mod batch;
mod branch;
mod cached;
mod connect;
mod detach;
mod error;
#[macro_use]
mod links;
#[macro_use]
mod queries;
mod accounts;
mod imports;
mod limit;
mod literal;
mod rank;
mod rows;
mod schema;
mod shares;
mod store;
mod turn;
mod turn_updates;
mod types;
mod usage;

#[cfg(feature = "test-support")]
pub mod testing;

pub use batch::BACKGROUND_BATCH;
pub use connect::{
    DEFAULT_SQLITE_CACHE_MIB, POSTGRES_MIGRATIONS, PoolOptions, SQLITE_BUSY_TIMEOUT,
    SQLITE_MIGRATIONS,
};
pub use error::SqlError;
pub use store::{SqlStore, connect};
