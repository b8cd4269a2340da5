//! Contexts and hooks shared by the pages.

pub mod data_version;
pub mod session;

pub use data_version::{DataVersion, use_data_version};
pub use session::{Session, SignedIn, use_session};
