//! Typed access to the server and to the browser: the HTTP API, the chat stream, uploads,
//! Clerk and small browser helpers.

pub mod api;
pub mod browser;
pub mod chat_stream;
pub mod clerk;
pub mod draft;
pub mod local_session;
pub mod oidc;
pub mod session_store;
pub mod upload;
