#![doc = include_str!("../README.md")]

mod accounts;
mod auth;
mod blob;
mod echo;
mod live;
mod scripted;
mod store;

pub use accounts::MemoryAccounts;
pub use auth::FakeAuth;
pub use blob::MemoryBlobStore;
pub use echo::EchoLlm;
pub use live::MemoryLiveReplies;
pub use scripted::{Ending, Script, ScriptedLlm};
pub use store::{INTERRUPTED, MemoryStore};
