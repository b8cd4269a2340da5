//! Turns one provider answer into an `LlmEventStream`, whatever the wire format: the
//! decoder of each format says what each server-sent event means.

use std::sync::Arc;
use std::time::Duration;

use confab_core::LlmError;
use confab_core::ports::{Completion, LlmEvent, LlmEventStream};
use futures::StreamExt;
use reqwest::Url;

use crate::sse::Event;
use crate::transport::{SseStream, Transport, stream_error};

/// What one server-sent event means.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Step {
    /// Nothing for the caller (one of the many events a plain text answer does not need).
    Skip,
    /// A piece of the reply's text.
    Delta(String),
    /// The reply is over.
    Done(Completion),
}

/// One wire format's reading of an answer.
pub(crate) trait Decoder: Send + 'static {
    /// The meaning of one event; an `Err` ends the stream.
    fn event(&mut self, event: &Event) -> Result<Step, LlmError>;

    /// The stream ended with no terminal event: a completion when the format allows that,
    /// else `Truncated`.
    fn end(&mut self) -> Result<Completion, LlmError>;
}

/// Sends the request and yields the decoded reply: deltas, then one `Completed` or one `Err`,
/// and nothing after. Dropping the stream drops the HTTP request.
pub(crate) fn drive<D: Decoder>(
    transport: Arc<Transport>,
    url: Arc<Url>,
    body: serde_json::Value,
    mut decoder: D,
) -> LlmEventStream {
    Box::pin(async_stream::stream! {
        // The request's future (the client's, the retries' and timeouts' state) is boxed, and
        // so freed once the answer starts: the stream itself stays small while it relays a
        // reply for minutes, and thousands of them are open at once.
        let opened = Box::pin(transport.open(&url, &body)).await;
        let mut events = match opened {
            Ok(events) => events,
            Err(e) => {
                yield Err(e);
                return;
            }
        };
        drop(body);
        loop {
            let step = match events.next().await {
                None => decoder.end().map(Step::Done),
                Some(Err(e)) => Err(stream_error(e)),
                Some(Ok(event)) => decoder.event(event),
            };
            match step {
                Ok(Step::Skip) => {}
                Ok(Step::Delta(text)) => yield Ok(LlmEvent::Delta(text)),
                Ok(Step::Done(completion)) => {
                    finish_reading(events);
                    yield Ok(LlmEvent::Completed(completion));
                    return;
                }
                Err(e) => {
                    let e = scrub(e, &transport);
                    tracing::warn!(%url, error = ?e, "the model provider's stream failed");
                    yield Err(e);
                    return;
                }
            }
        }
    })
}

/// How long the rest of an answer is read after its terminal event.
const FINISH_READING: Duration = Duration::from_secs(5);

/// Reads what follows the terminal event (normally only the end of the chunked body) in the
/// background, so that the connection goes back to the pool: dropped before its end, an
/// HTTP/1.1 connection is closed, and every reply would pay a new TCP (and TLS) handshake.
/// The caller drops the stream as soon as it has the completion, so this cannot wait.
fn finish_reading(events: SseStream) {
    let Ok(runtime) = tokio::runtime::Handle::try_current() else {
        return;
    };
    let mut body = events.into_body();
    runtime.spawn(async move {
        let rest = async { while body.next().await.is_some() {} };
        if tokio::time::timeout(FINISH_READING, rest).await.is_err() {
            tracing::debug!(
                "the provider kept an answer open after its end; its connection is closed"
            );
        }
    });
}

/// Provider messages may echo what they were sent; the key never leaves.
fn scrub(error: LlmError, transport: &Transport) -> LlmError {
    match error {
        LlmError::Upstream {
            status,
            code,
            message,
        } => LlmError::Upstream {
            status,
            code,
            message: transport.redact(message),
        },
        other => other,
    }
}

/// Parses an event's data as JSON; a malformed payload is a `BadResponse`.
pub(crate) fn json<T: serde::de::DeserializeOwned>(event: &Event) -> Result<T, LlmError> {
    serde_json::from_str(&event.data).map_err(|e| {
        LlmError::BadResponse(format!(
            "an event of type {:?} is not valid JSON of the expected shape: {e}",
            event.event
        ))
    })
}

/// For a field that is only good to have (usage, the model's name): a value of another shape
/// than expected (a token count beyond `u32` or negative, a number for a name) reads as `None`
/// instead of failing a reply whose text has arrived whole.
pub(crate) fn lenient<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: serde::de::DeserializeOwned,
{
    let value = <Option<serde_json::Value> as serde::Deserialize>::deserialize(d)?;
    Ok(value.and_then(|v| serde_json::from_value(v).ok()))
}

/// What both adapters hold: the HTTP transport, the endpoint's URL, the model and the
/// output cap.
#[derive(Debug)]
pub(crate) struct Endpoint {
    transport: Arc<Transport>,
    pub(crate) url: Arc<Url>,
    pub(crate) model: String,
    pub(crate) max_output_tokens: Option<u32>,
}

impl Endpoint {
    /// Checks the configuration and builds the transport for `{base_url}/{path}`.
    pub(crate) fn new(
        config: crate::config::OpenAiConfig,
        path: &str,
    ) -> Result<Self, crate::config::ConfigError> {
        let base = config.validate()?;
        Ok(Self {
            transport: Arc::new(Transport::new(&config)?),
            url: Arc::new(crate::config::endpoint(&base, path)?),
            model: config.model,
            max_output_tokens: config.max_output_tokens,
        })
    }

    /// Sends `body` and decodes the answer's events with `decoder`.
    pub(crate) fn stream<D: Decoder>(
        &self,
        body: serde_json::Value,
        decoder: D,
        api: &str,
    ) -> LlmEventStream {
        tracing::debug!(url = %self.url, model = %body["model"], api, "streaming a reply");
        drive(
            Arc::clone(&self.transport),
            Arc::clone(&self.url),
            body,
            decoder,
        )
    }
}
