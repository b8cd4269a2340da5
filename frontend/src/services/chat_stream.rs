//! Sending a message and reading the reply as it streams (`POST …/messages`), and following a
//! reply generated elsewhere or reconnecting to a dropped one (`GET …/stream`).
//!
//! `fetch` with a `ReadableStream` body (so the request can carry `Authorization` and
//! `Last-Event-ID`, which `EventSource` cannot), turned into a Rust stream by `wasm-streams`
//! and parsed by the spec-following SSE parser of `eventsource-stream`.

use confab_api_types::SendMessage;
use eventsource_stream::Eventsource;
use futures_util::StreamExt;
use uuid::Uuid;

use crate::{
    services::{api::Api, browser},
    state::chat::{StreamCursor, StreamEvent, reconnect_delay_ms},
    wording::ApiError,
};

/// How a stream ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StreamEnd {
    /// With `done` or `error`.
    Finished,
    /// Before its last event (network cut, page aborted): the server keeps generating and
    /// stores the reply, so the view follows it again ([`follow`]).
    CutOff,
    /// Nothing to follow (204): the reply is over and stored, so the view reloads the history.
    Over,
}

/// Sends `body` to the conversation and hands each event of the answer to `on_event`;
/// `cursor` keeps the number of the last event, for a [`follow`] when the stream is cut off.
///
/// A refused send (401, 404, 409, 422, 429 …) is an `Err` before any event.
pub async fn send_message(
    api: &Api,
    conversation: Uuid,
    body: &SendMessage,
    signal: Option<&web_sys::AbortSignal>,
    cursor: &mut StreamCursor,
    on_event: impl FnMut(StreamEvent),
) -> Result<StreamEnd, ApiError> {
    let json = crate::json::encode(body).map_err(|_| ApiError::unreadable())?;
    let path = format!("/api/conversations/{conversation}/messages");
    let response = api
        .request("POST", &path, Some(&json), "text/event-stream", signal)
        .await?;
    Ok(read_events(response, cursor, on_event).await)
}

/// Asks for another answer to the user message of the reply `reply` (a new version of it,
/// `POST /api/messages/{id}/regenerate`); its events come as a send's do.
pub async fn regenerate(
    api: &Api,
    reply: Uuid,
    signal: Option<&web_sys::AbortSignal>,
    cursor: &mut StreamCursor,
    on_event: impl FnMut(StreamEvent),
) -> Result<StreamEnd, ApiError> {
    let path = format!("/api/messages/{reply}/regenerate");
    let response = api
        .request("POST", &path, None, "text/event-stream", signal)
        .await?;
    Ok(read_events(response, cursor, on_event).await)
}

/// Follows the reply being generated in the conversation from after `cursor` until its last
/// event, reconnecting with backoff (`Last-Event-ID` = the last event taken) when the stream
/// drops. `Ok(CutOff)` when it gave up (or `signal` aborted); `Err` when the server refused
/// (401, 404 …).
pub async fn follow(
    api: &Api,
    conversation: Uuid,
    signal: Option<&web_sys::AbortSignal>,
    cursor: &mut StreamCursor,
    mut on_event: impl FnMut(StreamEvent),
) -> Result<StreamEnd, ApiError> {
    let path = format!("/api/conversations/{conversation}/stream");
    let mut failures = 0;
    loop {
        if signal.is_some_and(web_sys::AbortSignal::aborted) {
            return Ok(StreamEnd::CutOff);
        }
        let before = *cursor;
        let last = cursor.last_event_id().to_string();
        let header = Some(("Last-Event-ID", last.as_str()));
        let end = match api
            .request_with("GET", &path, None, "text/event-stream", signal, header)
            .await
        {
            Ok(response) if response.status() == 204 => StreamEnd::Over,
            Ok(response) => read_events(response, cursor, &mut on_event).await,
            // No answer, or the server restarting: try again.
            Err(e) if e.status == 0 || e.status >= 500 => StreamEnd::CutOff,
            Err(e) => return Err(e),
        };
        if end != StreamEnd::CutOff {
            return Ok(end);
        }
        if *cursor != before {
            // It made progress before dropping: start the backoff again.
            failures = 0;
        }
        let Some(delay) = reconnect_delay_ms(failures) else {
            return Ok(StreamEnd::CutOff);
        };
        failures += 1;
        browser::sleep(delay).await;
    }
}

/// Reads a `text/event-stream` response, handing each new event (after `cursor`) to `on_event`.
async fn read_events(
    response: web_sys::Response,
    cursor: &mut StreamCursor,
    mut on_event: impl FnMut(StreamEvent),
) -> StreamEnd {
    let Some(body) = response.body() else {
        return StreamEnd::CutOff;
    };
    let bytes = wasm_streams::ReadableStream::from_raw(body)
        .into_stream()
        .map(|chunk| chunk.map(|v| js_sys::Uint8Array::new(&v).to_vec()));
    let mut events = bytes.eventsource();
    let mut finished = false;
    while let Some(item) = events.next().await {
        let Ok(event) = item else {
            break;
        };
        if !cursor.accept(&event.id) {
            continue;
        }
        // An event this client cannot decode is skipped like an unknown one.
        if let Ok(Some(ev)) = StreamEvent::parse(&event.event, &event.data) {
            let (last, title) = (ev.is_last(), matches!(ev, StreamEvent::Title(_)));
            if finished && !title {
                continue;
            }
            on_event(ev);
            // After `done` the stream stays open for the conversation's title, if one is
            // written; it ends with it.
            finished |= last;
            if title && finished {
                break;
            }
        }
    }
    if finished {
        StreamEnd::Finished
    } else {
        StreamEnd::CutOff
    }
}
