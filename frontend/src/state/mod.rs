//! Client-side state, as plain reducers that the unit tests drive.

pub mod attachments;
pub mod chat;
