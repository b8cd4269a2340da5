//! Sending a message and reading the reply as it streams (`POST …/messages`).
//!
//! `fetch` with a `ReadableStream` body (so the request can carry `Authorization`, which
//! `EventSource` cannot), turned into a Rust stream by `wasm-streams` and parsed by the
//! spec-following SSE parser of `eventsource-stream`.

use confab_api_types::SendMessage;
use eventsource_stream::Eventsource;
use futures_util::StreamExt;
use uuid::Uuid;

use crate::{services::api::Api, state::chat::StreamEvent, wording::ApiError};

/// How a stream ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StreamEnd {
    /// With `done` or `error`.
    Finished,
    /// Before its last event (network cut, page aborted): the server keeps generating and
    /// stores the reply, so the view reloads the history.
    CutOff,
}

/// Sends `body` to the conversation and hands each event of the answer to `on_event`.
///
/// A refused send (401, 404, 409, 422, 429 …) is an `Err` before any event.
pub async fn send_message(
    api: &Api,
    conversation: Uuid,
    body: &SendMessage,
    signal: Option<&web_sys::AbortSignal>,
    mut on_event: impl FnMut(StreamEvent),
) -> Result<StreamEnd, ApiError> {
    let json = crate::json::encode(body).map_err(|_| ApiError::unreadable())?;
    let path = format!("/api/conversations/{conversation}/messages");
    let response = api
        .request("POST", &path, Some(&json), "text/event-stream", signal)
        .await?;
    let Some(body) = response.body() else {
        return Ok(StreamEnd::CutOff);
    };
    let bytes = wasm_streams::ReadableStream::from_raw(body)
        .into_stream()
        .map(|chunk| chunk.map(|v| js_sys::Uint8Array::new(&v).to_vec()));
    let mut events = bytes.eventsource();
    while let Some(item) = events.next().await {
        let Ok(event) = item else {
            return Ok(StreamEnd::CutOff);
        };
        // An event this client cannot decode is skipped like an unknown one.
        if let Ok(Some(ev)) = StreamEvent::parse(&event.event, &event.data) {
            let last = ev.is_last();
            on_event(ev);
            if last {
                return Ok(StreamEnd::Finished);
            }
        }
    }
    Ok(StreamEnd::CutOff)
}
