//! HTTP tests of the composed server (`confab-server` on the in-memory adapters), one module
//! per area of API.md. Each test starts its own server on `127.0.0.1:0` through
//! `confab_tests::http::TestApp`.

mod attachment_content;
mod attachments;
mod bodies;
mod chat;
mod conversations;
mod dev;
mod errors;
mod files;
mod isolation;
mod knowledge;
mod live;
mod local;
mod ops;
mod pagecache;
mod paging;
mod projects;
mod prompts;
mod provider;
mod routing;
mod search;
mod shares;
mod transfer;
mod tree;
mod usage;

/// The `Content-Type` of `answer` without parameters, lowercased.
fn essence(content_type: Option<&str>) -> String {
    content_type
        .unwrap_or_default()
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase()
}
