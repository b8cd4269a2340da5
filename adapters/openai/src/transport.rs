//! The HTTP side shared by both adapters: one POST that answers with a server-sent event
//! stream, with retries before the stream starts and timeouts while it runs.

use std::fmt;
use std::future::Future as _;
use std::time::Duration;

use bytes::Bytes;
use confab_core::LlmError;
use futures::stream::{BoxStream, Stream, StreamExt};
use reqwest::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, HeaderValue};
use reqwest::{Response, Url};
use secrecy::{ExposeSecret, SecretString};
use thread_local::ThreadLocal;

use tokio::time::{Instant, timeout_at};

use crate::config::{ConfigError, OpenAiConfig, ProviderConfig};
use crate::provider_error::{ProviderError, classify, code::INSUFFICIENT_QUOTA};
use crate::retry;
use crate::sse::{Event, ScanError, Scanner};

/// The most of an error answer's body that is read.
const MAX_ERROR_BODY: usize = 64 * 1024;

/// The longest line of an event stream accepted. A Responses `response.completed` event
/// repeats the whole reply on one line, so this is generous.
const MAX_LINE: usize = 16 * 1024 * 1024;

/// The server-sent events of one answer, read from its body as it arrives.
pub(crate) struct SseStream {
    body: Timed,
    scanner: Scanner,
    /// The body ended (or failed): nothing more comes from it.
    ended: bool,
}

impl SseStream {
    fn new(body: Timed) -> Self {
        Self {
            body,
            scanner: Scanner::new(MAX_LINE),
            ended: false,
        }
    }

    /// The next event, `None` at the end of the body. After an error, nothing more.
    pub(crate) async fn next(&mut self) -> Option<Result<&Event, BodyError>> {
        loop {
            if self.ended {
                return None;
            }
            match self.scanner.next() {
                Ok(true) => return Some(Ok(self.scanner.event())),
                Ok(false) => {}
                Err(e) => {
                    self.ended = true;
                    return Some(Err(e.into()));
                }
            }
            match self.body.next().await {
                Some(Ok(chunk)) => self.scanner.push(chunk),
                Some(Err(e)) => {
                    self.ended = true;
                    return Some(Err(e));
                }
                None => {
                    self.ended = true;
                    return self.scanner.finish().err().map(|e| Err(e.into()));
                }
            }
        }
    }

    /// The rest of the body, unread.
    pub(crate) fn into_body(self) -> Timed {
        self.body
    }
}

/// Why reading a streaming body stopped early.
#[derive(Debug)]
pub(crate) enum BodyError {
    /// Nothing arrived before the first-byte deadline.
    FirstByte(Duration),
    /// Nothing arrived for the idle timeout.
    Idle(Duration),
    /// The connection failed mid-body.
    Transport(reqwest::Error),
    /// The body is not an event stream (not UTF-8, or a line too long).
    Scan(ScanError),
}

impl From<ScanError> for BodyError {
    fn from(e: ScanError) -> Self {
        Self::Scan(e)
    }
}

impl fmt::Display for BodyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::FirstByte(d) => write!(f, "no answer within {} ms", d.as_millis()),
            Self::Idle(d) => write!(f, "no data for {} ms", d.as_millis()),
            Self::Transport(e) => write!(f, "{}", error_chain(e)),
            Self::Scan(e) => write!(f, "{e}"),
        }
    }
}

/// The HTTP clients, the prepared `Authorization` header and the network settings.
pub(crate) struct Transport {
    /// One client (connection pool) per thread that calls the provider. A connection's I/O
    /// runs as a task on the runtime that opened it: with one pool for the process, a reply
    /// streamed by one actix worker over a connection another worker had opened crossed
    /// threads at every delta (a wake-up of the other thread, then one back), and waited
    /// whenever that worker was busy. Each thread's own connections keep the provider's bytes,
    /// the relay and the browser's connection on one thread.
    clients: ThreadLocal<reqwest::Client>,
    client_settings: ClientSettings,
    authorization: Option<HeaderValue>,
    api_key: SecretString,
    settings: ProviderConfig,
}

impl fmt::Debug for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Transport")
            .field(
                "authorization",
                &self.authorization.as_ref().map(|_| "[REDACTED]"),
            )
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

/// What a provider client is built from, on each thread that needs one.
#[derive(Debug)]
struct ClientSettings {
    connect_timeout: Duration,
    http2_prior_knowledge: bool,
}

impl ClientSettings {
    fn build(&self) -> reqwest::Result<reqwest::Client> {
        let mut client = reqwest::Client::builder()
            .connect_timeout(self.connect_timeout)
            .pool_idle_timeout(Duration::from_secs(90))
            .user_agent(concat!("confab/", env!("CARGO_PKG_VERSION")));
        if self.http2_prior_knowledge {
            client = client.http2_prior_knowledge();
        }
        client.build()
    }
}

/// What went wrong with one attempt, and whether another may help.
struct Failure {
    error: LlmError,
    retry: bool,
    retry_after: Option<Duration>,
}

impl Transport {
    pub(crate) fn new(config: &OpenAiConfig) -> Result<Self, ConfigError> {
        let key = config.api_key.expose_secret();
        let authorization = if key.is_empty() {
            None
        } else {
            let mut value = HeaderValue::from_str(&format!("Bearer {key}"))
                .map_err(|_| ConfigError::InvalidApiKey)?;
            value.set_sensitive(true);
            Some(value)
        };
        let client_settings = ClientSettings {
            connect_timeout: config.provider.connect_timeout,
            // Over TLS the protocol is negotiated (ALPN), and forcing HTTP/2 there would only
            // break a server that speaks HTTP/1.1: the option is for cleartext base URLs.
            http2_prior_knowledge: config.provider.http2_prior_knowledge
                && config.base_url.starts_with("http://"),
        };
        // Built once here so that a setting the client refuses stops the start.
        let client = client_settings
            .build()
            .map_err(|e| ConfigError::Client(error_chain(&e)))?;
        let clients = ThreadLocal::new();
        clients.get_or(|| client);
        Ok(Self {
            clients,
            client_settings,
            authorization,
            api_key: config.api_key.clone(),
            settings: config.provider.clone(),
        })
    }

    /// The calling thread's client.
    fn client(&self) -> Result<&reqwest::Client, LlmError> {
        self.clients
            .get_or_try(|| self.client_settings.build())
            .map_err(|e| LlmError::Unavailable(error_chain(&e)))
    }

    /// POSTs `body` to `url` and returns the answer's event stream. Retries connect errors
    /// and retryable statuses (see `retry`), never after the stream has started.
    pub(crate) async fn open(
        &self,
        url: &Url,
        body: &serde_json::Value,
    ) -> Result<SseStream, LlmError> {
        let mut attempt = 0;
        loop {
            let deadline = Instant::now() + self.settings.first_byte_timeout;
            let mut request = self
                .client()?
                .post(url.clone())
                .header(ACCEPT, "text/event-stream")
                .json(body);
            if let Some(auth) = &self.authorization {
                request = request.header(AUTHORIZATION, auth.clone());
            }
            let failure = match timeout_at(deadline, request.send()).await {
                Err(_) => {
                    return Err(LlmError::Timeout(format!(
                        "no answer within the first-byte timeout of {} ms",
                        self.settings.first_byte_timeout.as_millis()
                    )));
                }
                Ok(Ok(response)) if response.status().is_success() => {
                    return self.event_stream(response, deadline);
                }
                Ok(Ok(response)) => self.status_failure(response).await,
                Ok(Err(e)) => request_failure(&e),
            };
            if failure.retry && attempt < self.settings.max_retries {
                let delay = failure
                    .retry_after
                    .unwrap_or_else(|| retry::jittered_backoff(attempt, &self.settings));
                attempt += 1;
                tracing::warn!(
                    %url,
                    attempt,
                    delay_ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
                    error = %failure.error,
                    "retrying the model provider request"
                );
                tokio::time::sleep(delay).await;
                continue;
            }
            tracing::warn!(%url, error = ?failure.error, "the model provider answered with an error");
            return Err(failure.error);
        }
    }

    fn event_stream(&self, response: Response, deadline: Instant) -> Result<SseStream, LlmError> {
        if let Some(content_type) = response.headers().get(CONTENT_TYPE) {
            let content_type = content_type.to_str().unwrap_or("");
            if !content_type.trim_start().starts_with("text/event-stream") {
                return Err(LlmError::BadResponse(format!(
                    "expected an event stream, got content type {content_type:?}"
                )));
            }
        }
        let idle = self.settings.idle_timeout;
        let first_byte = self.settings.first_byte_timeout;
        let body = response.bytes_stream();
        Ok(SseStream::new(timed(body, deadline, first_byte, idle)))
    }

    async fn status_failure(&self, response: Response) -> Failure {
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let body = read_limited(response, self.settings.idle_timeout).await;
        let report = ProviderError::from_body(&body);
        let retry_after = retry::retry_after(&headers);
        let error = match classify(Some(status), &report, retry_after) {
            LlmError::Upstream {
                status,
                code,
                message,
            } => LlmError::Upstream {
                status,
                code,
                message: self.redact(message),
            },
            other => other,
        };
        let quota =
            matches!(&error, LlmError::Upstream { code: Some(c), .. } if c == INSUFFICIENT_QUOTA);
        let retry = retry::should_retry(status, retry::should_retry_header(&headers), quota);
        Failure {
            error,
            retry,
            retry_after,
        }
    }
}

/// A request that got no answer at all: connect errors and connections closed before a
/// response are retried.
fn request_failure(e: &reqwest::Error) -> Failure {
    let error = if e.is_timeout() {
        LlmError::Timeout(format!("connecting to the provider: {}", error_chain(e)))
    } else {
        LlmError::Unavailable(error_chain(e))
    };
    Failure {
        error,
        retry: true,
        retry_after: None,
    }
}

/// The body as a stream with a deadline for its first chunk and an idle timeout after.
fn timed(
    body: impl Stream<Item = reqwest::Result<Bytes>> + Send + 'static,
    first_deadline: Instant,
    first_byte: Duration,
    idle: Duration,
) -> Timed {
    Timed {
        body: body.boxed(),
        sleep: Box::pin(tokio::time::sleep_until(first_deadline)),
        armed: first_deadline,
        deadline: first_deadline,
        first: true,
        first_byte,
        idle,
        over: false,
    }
}

/// [`timed`]'s stream. One timer for the whole body: a read only notes its deadline, and the
/// timer is moved to it when it fires early. (A timeout per read put a timer into the
/// runtime's wheel and took it out again for every chunk, that is for every delta.)
pub(crate) struct Timed {
    body: BoxStream<'static, reqwest::Result<Bytes>>,
    sleep: std::pin::Pin<Box<tokio::time::Sleep>>,
    /// Where the timer is set.
    armed: Instant,
    /// When the body times out unless a chunk arrives: the first byte's deadline, then the
    /// latest chunk's arrival plus `idle`.
    deadline: Instant,
    first: bool,
    first_byte: Duration,
    idle: Duration,
    /// After the end or an error: nothing more.
    over: bool,
}

impl Stream for Timed {
    type Item = Result<Bytes, BodyError>;

    fn poll_next(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        use std::task::Poll;
        let this = self.get_mut();
        if this.over {
            return Poll::Ready(None);
        }
        // The body first, as a timeout polls its future first: data that is there wins.
        match this.body.poll_next_unpin(cx) {
            Poll::Ready(None) => {
                this.over = true;
                return Poll::Ready(None);
            }
            Poll::Ready(Some(Err(e))) => {
                this.over = true;
                return Poll::Ready(Some(Err(BodyError::Transport(e))));
            }
            Poll::Ready(Some(Ok(bytes))) => {
                this.first = false;
                let now = Instant::now();
                // A far-off deadline for an idle timeout too long to add (it is configuration).
                this.deadline = now
                    .checked_add(this.idle)
                    .unwrap_or_else(|| now + Duration::from_secs(86_400 * 365));
                // Only the first chunk can bring the deadline forward (the idle timeout may be
                // shorter than what was left of the first byte's); later ones only move it on.
                if this.deadline < this.armed {
                    this.armed = this.deadline;
                    this.sleep.as_mut().reset(this.deadline);
                }
                return Poll::Ready(Some(Ok(bytes)));
            }
            Poll::Pending => {}
        }
        loop {
            if this.sleep.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
            if this.deadline <= this.armed {
                this.over = true;
                return Poll::Ready(Some(Err(if this.first {
                    BodyError::FirstByte(this.first_byte)
                } else {
                    BodyError::Idle(this.idle)
                })));
            }
            // Fired at an earlier deadline: chunks came since. Wait for the latest one's.
            this.armed = this.deadline;
            this.sleep.as_mut().reset(this.deadline);
        }
    }
}

/// What a failure while reading the event stream means for the caller.
pub(crate) fn stream_error(e: BodyError) -> LlmError {
    match e {
        BodyError::FirstByte(d) => LlmError::Timeout(format!(
            "no answer within the first-byte timeout of {} ms",
            d.as_millis()
        )),
        BodyError::Idle(d) => LlmError::Timeout(format!(
            "the stream was silent for longer than the idle timeout of {} ms",
            d.as_millis()
        )),
        BodyError::Transport(e) => {
            tracing::warn!(error = %error_chain(&e), "the model provider's stream broke off");
            LlmError::Truncated
        }
        e @ BodyError::Scan(_) => LlmError::BadResponse(e.to_string()),
    }
}

/// Reads at most `MAX_ERROR_BODY` bytes of an error answer; whatever fails gives what was read.
async fn read_limited(response: Response, idle: Duration) -> Vec<u8> {
    let mut body = Vec::new();
    let mut stream = response.bytes_stream();
    while body.len() < MAX_ERROR_BODY {
        match tokio::time::timeout(idle, stream.next()).await {
            Ok(Some(Ok(chunk))) => body.extend_from_slice(&chunk),
            _ => break,
        }
    }
    body.truncate(MAX_ERROR_BODY);
    body
}

/// Removes the API key from a provider's message, in case it was echoed back.
pub(crate) fn redact(message: String, api_key: &SecretString) -> String {
    let key = api_key.expose_secret();
    if key.len() >= 4 && message.contains(key) {
        message.replace(key, "[REDACTED]")
    } else {
        message
    }
}

impl Transport {
    /// `redact` with this transport's key.
    pub(crate) fn redact(&self, message: String) -> String {
        redact(message, &self.api_key)
    }
}

/// An error and its causes on one line (reqwest's own message is only the outer layer).
fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        let part = cause.to_string();
        if !text.contains(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {

    use super::*;

    #[test]
    fn an_echoed_key_is_redacted() {
        let key = SecretString::from("sk-abcdef123456");
        assert_eq!(
            redact(
                "Incorrect API key provided: sk-abcdef123456.".to_owned(),
                &key
            ),
            "Incorrect API key provided: [REDACTED]."
        );
        assert_eq!(redact("fine".to_owned(), &key), "fine");
    }

    /// The events of a body sent in `chunks` and then kept open (as a provider that goes on
    /// sending would), until the first error.
    async fn events_until_error(chunks: Vec<Vec<u8>>) -> (Vec<String>, Option<LlmError>) {
        let body = futures::stream::iter(chunks.into_iter().map(|c| Ok(Bytes::from(c))))
            .chain(futures::stream::pending());
        let hour = Duration::from_secs(3600);
        let mut events = SseStream::new(timed(body, Instant::now() + hour, hour, hour));
        let mut data = Vec::new();
        let read = async {
            while let Some(event) = events.next().await {
                match event {
                    Ok(event) => data.push(event.data.clone()),
                    Err(e) => return Some(stream_error(e)),
                }
            }
            None
        };
        let error = tokio::time::timeout(Duration::from_secs(30), read)
            .await
            .expect("the stream stalled instead of failing");
        (data, error)
    }

    #[tokio::test]
    async fn invalid_utf8_in_the_middle_of_a_stream_fails_it_at_once() {
        let chunks = vec![
            b"data: one\n\n".to_vec(),
            b"data: t\xffwo\n\n".to_vec(),
            b"data: three\n\n".to_vec(),
        ];
        let (data, error) = events_until_error(chunks).await;
        assert_eq!(data, ["one"]);
        assert!(matches!(error, Some(LlmError::BadResponse(_))), "{error:?}");
    }

    #[tokio::test]
    async fn a_character_split_between_chunks_is_fine() {
        let text = "data: héllo ✓\n\n".as_bytes();
        let chunks: Vec<Vec<u8>> = text.iter().map(|b| vec![*b]).collect();
        let body = futures::stream::iter(chunks).map(|c: Vec<u8>| Ok(Bytes::from(c)));
        let hour = Duration::from_secs(3600);
        let mut stream = SseStream::new(timed(body, Instant::now() + hour, hour, hour));
        let mut events = Vec::new();
        while let Some(event) = stream.next().await {
            events.push(event.cloned());
        }
        assert_eq!(events.len(), 1, "{events:?}");
        assert_eq!(events[0].as_ref().unwrap().data, "héllo ✓");
    }

    #[tokio::test]
    async fn a_line_without_end_is_refused_past_the_limit() {
        let chunk = vec![b'a'; 1024 * 1024];
        let (data, error) = events_until_error(vec![chunk; 17]).await;
        assert!(data.is_empty());
        assert!(
            matches!(&error, Some(LlmError::BadResponse(m)) if m.contains("longer than")),
            "{error:?}"
        );

        let mut chunk = b"data: ".to_vec();
        chunk.extend(vec![b'a'; 1024 * 1024]);
        chunk.extend(b"\n\n");
        let mut chunks = vec![chunk; 20];
        chunks.push(b"data: bad \xff\n\n".to_vec());
        let (data, error) = events_until_error(chunks).await;
        assert_eq!(data.len(), 20);
        assert!(matches!(error, Some(LlmError::BadResponse(_))), "{error:?}");
    }

    #[test]
    fn the_transport_debug_output_hides_the_key() {
        let config = OpenAiConfig::new(SecretString::from("sk-hidden-987"));
        let transport = Transport::new(&config).unwrap();
        let debug = format!("{transport:?}");
        assert!(!debug.contains("sk-hidden-987"), "{debug}");
    }
}
