//! Client-side state, as plain reducers that the unit tests drive.

pub mod chat;
