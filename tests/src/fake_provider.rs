//! A fake model provider: a real HTTP server on `127.0.0.1`, port 0, that speaks both
//! wire formats the way OpenAI documents them — the Responses API's streaming events
//! (`POST /v1/responses`) and Chat Completions chunks ending in `data: [DONE]`
//! (`POST /v1/chat/completions`).
//!
//! It plays a configurable reply (the deltas, the time to the first token, the pace between
//! deltas, usage, how it ends), records every request it receives (method, path, headers,
//! JSON body, arrival time) and injects faults: an error status with OpenAI's error body and
//! retry headers (or any other body, as compatible servers send), a delay before the first
//! byte, a stream cut after k deltas, a `response.failed` or any other event after k deltas,
//! malformed JSON, an abrupt disconnect. A fault can apply
//! to the first n requests only, so that retries can be tested.
//!
//! It is written on plain tokio sockets (no HTTP framework), which gives exact control over
//! the bytes on the wire, including connections closed in the middle of a chunked body. A
//! connection that opens with HTTP/2's connection preface (a client with prior knowledge,
//! h2c) is served by the `h2` crate instead, one stream per request: the same answers as
//! DATA frames, a cut stream as `RST_STREAM`. Each recorded request says which protocol it
//! came over ([`RecordedRequest::protocol`]).
//!
//! ```no_run
//! # async fn example() -> std::io::Result<()> {
//! use confab_tests::fake_provider::{FakeConfig, FakeProvider, Fault};
//!
//! let fake = FakeProvider::start(
//!     FakeConfig::replying(&["Hel", "lo"]).with_fault(Fault::status(500)).for_first(1),
//! )
//! .await?;
//! let base_url = fake.base_url(); // "http://127.0.0.1:PORT/v1"
//! // … point an adapter at base_url, stream a reply …
//! assert_eq!(fake.requests().len(), 2);
//! # Ok(()) }
//! ```

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use h2::server::SendResponse;
use h2::{Reason, RecvStream, SendStream};
use serde_json::{Value, json};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// The largest request head the fake accepts.
const MAX_HEAD: usize = 64 * 1024;
/// The largest request body the fake accepts.
const MAX_BODY: usize = 16 * 1024 * 1024;
/// What a client with HTTP/2 prior knowledge sends first (RFC 9113, section 3.4).
const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// Token counts the fake reports at the end of a reply.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FakeUsage {
    pub input_tokens: u32,
    pub output_tokens: u32,
    pub cached_tokens: u32,
    pub reasoning_tokens: u32,
}

impl Default for FakeUsage {
    fn default() -> Self {
        Self {
            input_tokens: 25,
            output_tokens: 10,
            cached_tokens: 0,
            reasoning_tokens: 0,
        }
    }
}

/// How a reply that is not interrupted by a fault ends.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Finish {
    /// `response.completed`; chat: `finish_reason: "stop"`.
    Completed,
    /// `response.incomplete` with this reason (`max_output_tokens`, `content_filter`, …);
    /// chat: `finish_reason` `length` for `max_output_tokens`, else the reason itself.
    Incomplete(String),
}

/// An error answer with OpenAI's error body:
/// `{"error": {"message", "type", "param": null, "code"}}`, or another body given as is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StatusFault {
    pub status: u16,
    /// Extra response headers (`retry-after-ms`, `retry-after`, `x-should-retry`, …).
    pub headers: Vec<(String, String)>,
    pub error_type: String,
    pub code: Option<String>,
    pub message: String,
    /// A body sent instead of OpenAI's, with its content type: the shapes of compatible
    /// servers (LiteLLM's numeric codes, vLLM's bare object, FastAPI's `detail`, an HTML page).
    pub raw_body: Option<RawBody>,
}

/// A response body sent exactly as given.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RawBody {
    pub content_type: String,
    pub body: String,
}

impl StatusFault {
    /// Adds a response header.
    #[must_use]
    pub fn with_header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    /// Replaces the error message.
    #[must_use]
    pub fn with_message(mut self, message: &str) -> Self {
        message.clone_into(&mut self.message);
        self
    }

    /// Replaces the error code and type.
    #[must_use]
    pub fn with_code(mut self, error_type: &str, code: Option<&str>) -> Self {
        error_type.clone_into(&mut self.error_type);
        self.code = code.map(str::to_owned);
        self
    }

    /// Sends `body` with `content_type` instead of OpenAI's error body.
    #[must_use]
    pub fn with_raw_body(mut self, content_type: &str, body: &str) -> Self {
        self.raw_body = Some(RawBody {
            content_type: content_type.to_owned(),
            body: body.to_owned(),
        });
        self
    }

    /// The body and its content type.
    fn body(&self) -> (String, String) {
        match &self.raw_body {
            Some(raw) => (raw.content_type.clone(), raw.body.clone()),
            None => (
                "application/json".to_owned(),
                json!({"error": {
                    "message": self.message,
                    "type": self.error_type,
                    "param": null,
                    "code": self.code,
                }})
                .to_string(),
            ),
        }
    }
}

/// Something going wrong on purpose.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fault {
    /// Answer with an error status and body instead of a stream.
    Status(StatusFault),
    /// Wait this long before sending anything (status line included).
    DelayFirstByte(Duration),
    /// Send k deltas, then close the connection in the middle of the chunked body (HTTP/2:
    /// reset the stream).
    CutAfter(usize),
    /// Send k deltas, then end the body cleanly without a terminal event (or `[DONE]`).
    EndAfter(usize),
    /// Send k deltas, then `response.failed` (chat: a `data: {"error": …}` chunk) and end.
    FailAfter {
        deltas: usize,
        code: String,
        message: String,
    },
    /// Send k deltas, then an `error` event (chat: a `data: {"error": …}` chunk) and end.
    ErrorEventAfter {
        deltas: usize,
        code: String,
        message: String,
    },
    /// Send k deltas, then an event whose data is malformed JSON, and end.
    MalformedAfter(usize),
    /// Send k deltas, then one event with this data (JSON, sent as is) and end: Responses,
    /// as an event named `event`; chat, as a `data:` line (the name is not sent).
    RawEventAfter {
        deltas: usize,
        event: String,
        data: String,
    },
    /// Read the request, then close the connection without answering (HTTP/2: reset the
    /// stream).
    Disconnect,
}

impl Fault {
    /// An error status with the error body OpenAI sends for it.
    #[must_use]
    pub fn status(status: u16) -> Self {
        let (error_type, code, message) = match status {
            400 => ("invalid_request_error", None, "Invalid request."),
            401 => (
                "invalid_request_error",
                Some("invalid_api_key"),
                "Incorrect API key provided.",
            ),
            403 => (
                "invalid_request_error",
                Some("unsupported_country_region_territory"),
                "Country, region, or territory not supported.",
            ),
            404 => (
                "invalid_request_error",
                Some("model_not_found"),
                "The model does not exist or you do not have access to it.",
            ),
            429 => (
                "requests",
                Some("rate_limit_exceeded"),
                "Rate limit reached for requests. Please try again in 20ms.",
            ),
            500..=599 => (
                "server_error",
                None,
                "The server had an error while processing your request. Sorry about that!",
            ),
            _ => ("invalid_request_error", None, "The request failed."),
        };
        Self::Status(StatusFault {
            status,
            headers: Vec::new(),
            error_type: error_type.to_owned(),
            code: code.map(str::to_owned),
            message: message.to_owned(),
            raw_body: None,
        })
    }

    /// An error status with `body` (of `content_type`) sent as is.
    #[must_use]
    pub fn status_with_body(status: u16, content_type: &str, body: &str) -> Self {
        match Self::status(status) {
            Self::Status(fault) => Self::Status(fault.with_raw_body(content_type, body)),
            other => other,
        }
    }

    /// After k deltas, one event with this JSON data (see `RawEventAfter`).
    #[must_use]
    pub fn raw_event_after(deltas: usize, event: &str, data: &Value) -> Self {
        Self::RawEventAfter {
            deltas,
            event: event.to_owned(),
            data: data.to_string(),
        }
    }

    /// A 429 that means "no credit left" (`insufficient_quota`).
    #[must_use]
    pub fn insufficient_quota() -> Self {
        Self::Status(StatusFault {
            status: 429,
            headers: Vec::new(),
            error_type: "insufficient_quota".to_owned(),
            code: Some("insufficient_quota".to_owned()),
            message: "You exceeded your current quota, please check your plan and billing details."
                .to_owned(),
            raw_body: None,
        })
    }

    /// A status fault with one more header; other faults are returned unchanged.
    #[must_use]
    pub fn with_header(self, name: &str, value: &str) -> Self {
        match self {
            Self::Status(s) => Self::Status(s.with_header(name, value)),
            other => other,
        }
    }

    /// A status fault with another message; other faults are returned unchanged.
    #[must_use]
    pub fn with_message(self, message: &str) -> Self {
        match self {
            Self::Status(s) => Self::Status(s.with_message(message)),
            other => other,
        }
    }

    /// `response.failed` with `server_error` after k deltas.
    #[must_use]
    pub fn failed_after(deltas: usize) -> Self {
        Self::FailAfter {
            deltas,
            code: "server_error".to_owned(),
            message: "The model failed to generate a response.".to_owned(),
        }
    }

    /// The number of deltas sent before a mid-stream fault, if this is one.
    fn after(&self) -> Option<usize> {
        match self {
            Self::CutAfter(k) | Self::EndAfter(k) | Self::MalformedAfter(k) => Some(*k),
            Self::FailAfter { deltas, .. }
            | Self::ErrorEventAfter { deltas, .. }
            | Self::RawEventAfter { deltas, .. } => Some(*deltas),
            Self::Status(_) | Self::DelayFirstByte(_) | Self::Disconnect => None,
        }
    }
}

/// What the fake answers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FakeConfig {
    /// The reply's text pieces, in order.
    pub deltas: Vec<String>,
    /// The pause between the start of the stream and the first delta.
    pub time_to_first_token: Duration,
    /// The pause between two deltas.
    pub pace: Duration,
    /// The usage reported at the end; `None`: `usage: null` (Responses) or no usage chunk (chat).
    pub usage: Option<FakeUsage>,
    /// How a reply ends when no fault interrupts it.
    pub finish: Finish,
    /// Whether a chat stream ends with `data: [DONE]`.
    pub done_marker: bool,
    /// The fault to inject, if any.
    pub fault: Option<Fault>,
    /// The fault applies to the first n requests the server receives only; `None`: to all.
    pub fault_limit: Option<usize>,
    /// The pause between the reply's last event and the end of its body.
    pub end_delay: Duration,
}

impl Default for FakeConfig {
    fn default() -> Self {
        Self::replying(&["Hello", ", ", "world", "!"])
    }
}

impl FakeConfig {
    /// A plain reply made of these deltas, sent as fast as possible.
    #[must_use]
    pub fn replying(deltas: &[&str]) -> Self {
        Self {
            deltas: deltas.iter().map(|d| (*d).to_owned()).collect(),
            time_to_first_token: Duration::ZERO,
            pace: Duration::ZERO,
            usage: Some(FakeUsage::default()),
            finish: Finish::Completed,
            done_marker: true,
            fault: None,
            fault_limit: None,
            end_delay: Duration::ZERO,
        }
    }

    /// Waits `d` before the first delta.
    #[must_use]
    pub fn with_time_to_first_token(mut self, d: Duration) -> Self {
        self.time_to_first_token = d;
        self
    }

    /// Waits `d` between deltas.
    #[must_use]
    pub fn with_pace(mut self, d: Duration) -> Self {
        self.pace = d;
        self
    }

    /// Reports this usage (`None`: none).
    #[must_use]
    pub fn with_usage(mut self, usage: Option<FakeUsage>) -> Self {
        self.usage = usage;
        self
    }

    /// Ends this way.
    #[must_use]
    pub fn with_finish(mut self, finish: Finish) -> Self {
        self.finish = finish;
        self
    }

    /// Waits `d` after the reply's last event before ending the body (the chunked body's
    /// terminator, or HTTP/2's end of stream), as a server that flushes it separately does.
    #[must_use]
    pub fn with_end_delay(mut self, d: Duration) -> Self {
        self.end_delay = d;
        self
    }

    /// Chat streams end without `data: [DONE]`.
    #[must_use]
    pub fn without_done_marker(mut self) -> Self {
        self.done_marker = false;
        self
    }

    /// Injects `fault` (into every request unless `for_first` limits it).
    #[must_use]
    pub fn with_fault(mut self, fault: Fault) -> Self {
        self.fault = Some(fault);
        self
    }

    /// The fault applies to the first `n` requests only.
    #[must_use]
    pub fn for_first(mut self, n: usize) -> Self {
        self.fault_limit = Some(n);
        self
    }
}

/// The HTTP version a request came over.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Protocol {
    /// HTTP/1.1, one request at a time per connection.
    Http1,
    /// HTTP/2 over cleartext with prior knowledge (h2c), many streams per connection.
    Http2,
}

/// A request as the fake received it.
#[derive(Clone, Debug)]
pub struct RecordedRequest {
    /// The HTTP version it came over.
    pub protocol: Protocol,
    pub method: String,
    /// The path without the query.
    pub path: String,
    /// Header names in lowercase, in the order received.
    pub headers: Vec<(String, String)>,
    /// The body parsed as JSON; `Value::Null` when it is not JSON.
    pub body: Value,
    /// When the request's head was complete.
    pub received_at: Instant,
}

impl RecordedRequest {
    /// The first value of header `name` (any case).
    #[must_use]
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

#[derive(Default)]
struct Shared {
    config: Mutex<FakeConfig>,
    requests: Mutex<Vec<RecordedRequest>>,
    /// Requests dropped by `clear_requests`, still counted for `for_first`.
    forgotten: AtomicUsize,
    completed: AtomicUsize,
    aborted: AtomicUsize,
    connections: AtomicUsize,
}

/// A running fake provider. Dropping it stops accepting connections.
pub struct FakeProvider {
    addr: SocketAddr,
    shared: Arc<Shared>,
    accept: JoinHandle<()>,
}

impl std::fmt::Debug for FakeProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeProvider")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl Drop for FakeProvider {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

impl FakeProvider {
    /// Binds `127.0.0.1:0` and serves `config` until dropped. Needs a tokio runtime.
    pub async fn start(config: FakeConfig) -> io::Result<Self> {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            config: Mutex::new(config),
            ..Shared::default()
        });
        let accept = tokio::spawn({
            let shared = Arc::clone(&shared);
            async move {
                loop {
                    let Ok((socket, _)) = listener.accept().await else {
                        // Out of file descriptors, most likely: let some connections end.
                        tokio::time::sleep(Duration::from_millis(10)).await;
                        continue;
                    };
                    let _ = socket.set_nodelay(true);
                    shared.connections.fetch_add(1, Ordering::SeqCst);
                    tokio::spawn(serve_connection(socket, Arc::clone(&shared)));
                }
            }
        });
        Ok(Self {
            addr,
            shared,
            accept,
        })
    }

    /// The API root to configure an adapter with: `http://127.0.0.1:PORT/v1`.
    #[must_use]
    pub fn base_url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    /// The address the server listens on.
    #[must_use]
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Every request received so far, in order of arrival.
    #[must_use]
    pub fn requests(&self) -> Vec<RecordedRequest> {
        lock(&self.shared.requests).clone()
    }

    /// How many requests were received so far (cleared ones included).
    #[must_use]
    pub fn request_count(&self) -> usize {
        let requests = lock(&self.shared.requests);
        requests.len() + self.shared.forgotten.load(Ordering::SeqCst)
    }

    /// Forgets the requests recorded so far (a long benchmark keeps memory flat this way);
    /// `for_first` goes on counting from where it was.
    pub fn clear_requests(&self) {
        let mut requests = lock(&self.shared.requests);
        self.shared
            .forgotten
            .fetch_add(requests.len(), Ordering::SeqCst);
        requests.clear();
    }

    /// Replaces what the fake answers from now on (request counting for `for_first` goes on).
    pub fn set_config(&self, config: FakeConfig) {
        *lock(&self.shared.config) = config;
    }

    /// How many TCP connections were accepted so far (HTTP/2 carries many requests on one).
    #[must_use]
    pub fn connections_accepted(&self) -> usize {
        self.shared.connections.load(Ordering::SeqCst)
    }

    /// How many streamed answers were sent to their end.
    #[must_use]
    pub fn streams_completed(&self) -> usize {
        self.shared.completed.load(Ordering::SeqCst)
    }

    /// How many streamed answers stopped because the client went away mid-stream.
    #[must_use]
    pub fn streams_aborted_by_client(&self) -> usize {
        self.shared.aborted.load(Ordering::SeqCst)
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// One parsed request.
struct Incoming {
    protocol: Protocol,
    method: String,
    path: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    close: bool,
}

async fn serve_connection(mut socket: TcpStream, shared: Arc<Shared>) {
    let mut buf = Vec::new();
    // The first bytes tell a client with HTTP/2 prior knowledge (its preface) from HTTP/1.1.
    loop {
        let seen = buf.len().min(H2_PREFACE.len());
        if buf[..seen] != H2_PREFACE[..seen] {
            break;
        }
        if seen == H2_PREFACE.len() {
            serve_h2(Rewound::new(buf, socket), shared).await;
            return;
        }
        match socket.read_buf(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
    }
    loop {
        let Ok(Some(request)) = read_request(&mut socket, &mut buf).await else {
            return;
        };
        let close = request.close;
        match respond(&mut Sink::Http1(&mut socket), request, &shared).await {
            Ok(true) if !close => {}
            _ => return,
        }
    }
}

/// Serves one HTTP/2 connection: each request on its own task, while `accept` drives the
/// connection's frames.
async fn serve_h2(io: Rewound, shared: Arc<Shared>) {
    let Ok(mut connection) = h2::server::handshake(io).await else {
        return;
    };
    while let Some(Ok((request, send))) = connection.accept().await {
        tokio::spawn(serve_h2_stream(request, send, Arc::clone(&shared)));
    }
}

async fn serve_h2_stream(
    request: http::Request<RecvStream>,
    mut send: SendResponse<Bytes>,
    shared: Arc<Shared>,
) {
    let (parts, mut body) = request.into_parts();
    let mut bytes = Vec::new();
    while let Some(chunk) = body.data().await {
        let Ok(chunk) = chunk else { return };
        let _ = body.flow_control().release_capacity(chunk.len());
        bytes.extend_from_slice(&chunk);
        if bytes.len() > MAX_BODY {
            send.send_reset(Reason::REFUSED_STREAM);
            return;
        }
    }
    let headers = parts
        .headers
        .iter()
        .map(|(name, value)| {
            (
                name.as_str().to_owned(),
                String::from_utf8_lossy(value.as_bytes()).into_owned(),
            )
        })
        .collect();
    let request = Incoming {
        protocol: Protocol::Http2,
        method: parts.method.as_str().to_owned(),
        path: parts.uri.path().to_owned(),
        headers,
        body: bytes,
        close: false,
    };
    let _ = respond(&mut Sink::Http2 { send, body: None }, request, &shared).await;
}

/// A socket whose first bytes were read already (to look for the HTTP/2 preface): they are
/// read again first.
struct Rewound {
    prefix: Vec<u8>,
    read: usize,
    socket: TcpStream,
}

impl Rewound {
    fn new(prefix: Vec<u8>, socket: TcpStream) -> Self {
        Self {
            prefix,
            read: 0,
            socket,
        }
    }
}

impl AsyncRead for Rewound {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.read < this.prefix.len() {
            let n = (this.prefix.len() - this.read).min(buf.remaining());
            buf.put_slice(&this.prefix[this.read..this.read + n]);
            this.read += n;
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut this.socket).poll_read(cx, buf)
    }
}

impl AsyncWrite for Rewound {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().socket).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().socket).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.socket.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().socket).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().socket).poll_shutdown(cx)
    }
}

fn h2_error(e: h2::Error) -> io::Error {
    io::Error::other(e)
}

/// Where one answer goes: an HTTP/1.1 connection (a chunked body) or one HTTP/2 stream.
enum Sink<'a> {
    Http1(&'a mut TcpStream),
    Http2 {
        send: SendResponse<Bytes>,
        /// The body, once the head is sent.
        body: Option<SendStream<Bytes>>,
    },
}

impl Sink<'_> {
    /// The status line and headers of a streamed answer.
    async fn stream_head(&mut self, index: usize) -> io::Result<()> {
        match self {
            Self::Http1(socket) => {
                let head = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream; charset=utf-8\r\ncache-control: no-cache\r\ntransfer-encoding: chunked\r\nx-request-id: req_fake{index:020}\r\nopenai-processing-ms: 42\r\n\r\n"
                );
                socket.write_all(head.as_bytes()).await?;
                socket.flush().await
            }
            Self::Http2 { send, body } => {
                let response = http::Response::builder()
                    .status(200)
                    .header("content-type", "text/event-stream; charset=utf-8")
                    .header("cache-control", "no-cache")
                    .header("x-request-id", format!("req_fake{index:020}"))
                    .header("openai-processing-ms", "42")
                    .body(())
                    .map_err(io::Error::other)?;
                *body = Some(send.send_response(response, false).map_err(h2_error)?);
                Ok(())
            }
        }
    }

    /// One piece of a streamed body: a chunk (HTTP/1.1), a DATA frame (HTTP/2).
    async fn chunk(&mut self, text: &str) -> io::Result<()> {
        match self {
            Self::Http1(socket) => {
                let framed = format!("{:x}\r\n{text}\r\n", text.len());
                socket.write_all(framed.as_bytes()).await?;
                socket.flush().await
            }
            Self::Http2 {
                body: Some(body), ..
            } => body
                .send_data(Bytes::copy_from_slice(text.as_bytes()), false)
                .map_err(h2_error),
            Self::Http2 { body: None, .. } => Err(io::Error::other("a body chunk before the head")),
        }
    }

    /// The proper end of a streamed body.
    async fn finish(&mut self) -> io::Result<()> {
        match self {
            Self::Http1(socket) => {
                socket.write_all(b"0\r\n\r\n").await?;
                socket.flush().await
            }
            Self::Http2 {
                body: Some(body), ..
            } => body.send_data(Bytes::new(), true).map_err(h2_error),
            Self::Http2 { body: None, .. } => Err(io::Error::other("the end before the head")),
        }
    }

    /// Breaks the answer off: on HTTP/1.1 the caller closes the connection; on HTTP/2 the
    /// stream is reset (`RST_STREAM` with `INTERNAL_ERROR`).
    async fn cut(&mut self) {
        match self {
            Self::Http1(_) => {}
            Self::Http2 {
                body: Some(body), ..
            } => {
                // A reset drops the DATA frames still queued for the stream: let the
                // connection's task write those first, as HTTP/1.1 writes before it closes.
                tokio::time::sleep(Duration::from_millis(20)).await;
                body.send_reset(Reason::INTERNAL_ERROR);
            }
            Self::Http2 { send, body: None } => send.send_reset(Reason::INTERNAL_ERROR),
        }
    }

    /// An error answer with OpenAI's error body (or the fault's own).
    async fn error(&mut self, fault: &StatusFault, index: usize) -> io::Result<()> {
        let (content_type, body) = fault.body();
        match self {
            Self::Http1(socket) => {
                let mut head = format!(
                    "HTTP/1.1 {} {}\r\ncontent-type: {content_type}\r\ncontent-length: {}\r\nx-request-id: req_fake{index:020}\r\n",
                    fault.status,
                    reason(fault.status),
                    body.len()
                );
                for (name, value) in &fault.headers {
                    head.push_str(&format!("{name}: {value}\r\n"));
                }
                head.push_str("\r\n");
                socket.write_all(head.as_bytes()).await?;
                socket.write_all(body.as_bytes()).await?;
                socket.flush().await
            }
            Self::Http2 { send, .. } => {
                let mut response = http::Response::builder()
                    .status(fault.status)
                    .header("content-type", content_type)
                    .header("content-length", body.len())
                    .header("x-request-id", format!("req_fake{index:020}"));
                for (name, value) in &fault.headers {
                    response = response.header(name.as_str(), value.as_str());
                }
                let response = response.body(()).map_err(io::Error::other)?;
                let mut stream = send.send_response(response, false).map_err(h2_error)?;
                stream.send_data(Bytes::from(body), true).map_err(h2_error)
            }
        }
    }
}

async fn read_request(socket: &mut TcpStream, buf: &mut Vec<u8>) -> io::Result<Option<Incoming>> {
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).into_owned();
            let mut lines = head.split("\r\n");
            let mut request_line = lines.next().unwrap_or("").split(' ');
            let method = request_line.next().unwrap_or("").to_owned();
            let target = request_line.next().unwrap_or("/");
            let path = target.split('?').next().unwrap_or("/").to_owned();
            let headers: Vec<(String, String)> = lines
                .filter_map(|line| line.split_once(':'))
                .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
                .collect();
            let value = |name: &str| {
                headers
                    .iter()
                    .find(|(n, _)| n == name)
                    .map(|(_, v)| v.to_ascii_lowercase())
            };
            if value("transfer-encoding").is_some() {
                return Err(io::Error::new(
                    io::ErrorKind::Unsupported,
                    "chunked request bodies are not supported by the fake",
                ));
            }
            let length: usize = value("content-length")
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            if length > MAX_BODY {
                return Err(io::Error::new(io::ErrorKind::InvalidData, "body too large"));
            }
            let close = value("connection").is_some_and(|v| v.contains("close"));
            let start = end + 4;
            while buf.len() < start + length {
                if socket.read_buf(buf).await? == 0 {
                    return Err(io::ErrorKind::UnexpectedEof.into());
                }
            }
            let body = buf[start..start + length].to_vec();
            buf.drain(..start + length);
            return Ok(Some(Incoming {
                protocol: Protocol::Http1,
                method,
                path,
                headers,
                body,
                close,
            }));
        }
        if buf.len() > MAX_HEAD {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "request head too large",
            ));
        }
        if socket.read_buf(buf).await? == 0 {
            return if buf.is_empty() {
                Ok(None)
            } else {
                Err(io::ErrorKind::UnexpectedEof.into())
            };
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Format {
    Responses,
    Chat,
}

/// Answers one request; `Ok(true)` when the connection may serve another.
async fn respond(sink: &mut Sink<'_>, request: Incoming, shared: &Shared) -> io::Result<bool> {
    let body: Value = serde_json::from_slice(&request.body).unwrap_or(Value::Null);
    let index = {
        let mut requests = lock(&shared.requests);
        requests.push(RecordedRequest {
            protocol: request.protocol,
            method: request.method.clone(),
            path: request.path.clone(),
            headers: request.headers.clone(),
            body: body.clone(),
            received_at: Instant::now(),
        });
        requests.len() - 1 + shared.forgotten.load(Ordering::SeqCst)
    };
    let config = lock(&shared.config).clone();
    let fault = config
        .fault
        .clone()
        .filter(|_| config.fault_limit.is_none_or(|n| index < n));

    let format = match request.path.as_str() {
        "/v1/responses" => Format::Responses,
        "/v1/chat/completions" => Format::Chat,
        _ => {
            let not_found = StatusFault {
                status: 404,
                headers: Vec::new(),
                error_type: "invalid_request_error".to_owned(),
                code: None,
                message: format!("Invalid URL ({} {})", request.method, request.path),
                raw_body: None,
            };
            sink.error(&not_found, index).await?;
            return Ok(true);
        }
    };
    if request.method != "POST" {
        let wrong = StatusFault {
            status: 405,
            headers: vec![("allow".to_owned(), "POST".to_owned())],
            error_type: "invalid_request_error".to_owned(),
            code: None,
            message: format!(
                "Invalid method for URL ({} {})",
                request.method, request.path
            ),
            raw_body: None,
        };
        sink.error(&wrong, index).await?;
        return Ok(true);
    }

    match &fault {
        Some(Fault::DelayFirstByte(d)) => tokio::time::sleep(*d).await,
        Some(Fault::Disconnect) => {
            sink.cut().await;
            return Ok(false);
        }
        Some(Fault::Status(status)) => {
            sink.error(status, index).await?;
            return Ok(true);
        }
        _ => {}
    }

    let reply = Reply {
        config: &config,
        fault: fault.as_ref(),
        body: &body,
        index,
    };
    let outcome = match format {
        Format::Responses => reply.responses(sink).await,
        Format::Chat => reply.chat(sink).await,
    };
    match outcome {
        Ok(Ending::Clean) => {
            if !config.end_delay.is_zero() {
                tokio::time::sleep(config.end_delay).await;
            }
            sink.finish().await?;
            shared.completed.fetch_add(1, Ordering::SeqCst);
            Ok(true)
        }
        Ok(Ending::Cut) => {
            sink.cut().await;
            Ok(false)
        }
        Err(e) => {
            shared.aborted.fetch_add(1, Ordering::SeqCst);
            Err(e)
        }
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        409 => "Conflict",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "Error",
    }
}

/// How a streamed answer stopped.
enum Ending {
    /// The body may be terminated properly (`0\r\n\r\n`).
    Clean,
    /// The connection is to be closed mid-body.
    Cut,
}

/// One streamed answer being written.
struct Reply<'a> {
    config: &'a FakeConfig,
    fault: Option<&'a Fault>,
    body: &'a Value,
    index: usize,
}

impl Reply<'_> {
    fn model(&self) -> String {
        self.body["model"]
            .as_str()
            .unwrap_or("gpt-4.1-mini")
            .to_owned()
    }

    /// The mid-stream fault due after `sent` deltas, if any.
    fn due(&self, sent: usize) -> Option<&Fault> {
        self.fault.filter(|f| f.after() == Some(sent))
    }

    /// The mid-stream fault due at or after the last delta (k ≥ number of deltas).
    fn due_at_end(&self) -> Option<&Fault> {
        let n = self.config.deltas.len();
        self.fault.filter(|f| f.after().is_some_and(|k| k >= n))
    }

    async fn head(&self, sink: &mut Sink<'_>) -> io::Result<()> {
        sink.stream_head(self.index).await
    }

    async fn pause_before(&self, delta: usize) {
        let wait = if delta == 0 {
            self.config.time_to_first_token
        } else {
            self.config.pace
        };
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
    }

    fn full_text(&self) -> String {
        self.config.deltas.concat()
    }

    // ---- Responses API --------------------------------------------------------------

    fn response_object(&self, status: &str, output: Value, extra: &[(&str, Value)]) -> Value {
        let mut response = json!({
            "id": format!("resp_fake{:020}", self.index),
            "object": "response",
            "created_at": unix_now(),
            "status": status,
            "background": false,
            "error": null,
            "incomplete_details": null,
            "instructions": self.body.get("instructions").cloned().unwrap_or(Value::Null),
            "max_output_tokens": self.body.get("max_output_tokens").cloned().unwrap_or(Value::Null),
            "model": self.model(),
            "output": output,
            "parallel_tool_calls": true,
            "previous_response_id": null,
            "reasoning": {"effort": null, "summary": null},
            "service_tier": "auto",
            "store": self.body.get("store").cloned().unwrap_or(Value::Bool(true)),
            "temperature": 1.0,
            "text": {"format": {"type": "text"}, "verbosity": "medium"},
            "tool_choice": "auto",
            "tools": [],
            "top_p": 1.0,
            "truncation": "disabled",
            "usage": null,
            "user": null,
            "metadata": {}
        });
        for (key, value) in extra {
            response[*key] = value.clone();
        }
        response
    }

    fn message_item(&self, status: &str, text: Option<&str>) -> Value {
        let content = match text {
            Some(text) => {
                json!([{"type": "output_text", "annotations": [], "logprobs": [], "text": text}])
            }
            None => json!([]),
        };
        json!({
            "id": format!("msg_fake{:020}", self.index),
            "type": "message",
            "status": status,
            "content": content,
            "role": "assistant"
        })
    }

    fn responses_usage(&self) -> Value {
        match self.config.usage {
            Some(u) => json!({
                "input_tokens": u.input_tokens,
                "input_tokens_details": {"cached_tokens": u.cached_tokens},
                "output_tokens": u.output_tokens,
                "output_tokens_details": {"reasoning_tokens": u.reasoning_tokens},
                "total_tokens": u.input_tokens + u.output_tokens
            }),
            None => Value::Null,
        }
    }

    async fn responses(&self, sink: &mut Sink<'_>) -> io::Result<Ending> {
        let mut out = Events { seq: 0 };
        let item_id = format!("msg_fake{:020}", self.index);
        self.head(sink).await?;
        let in_progress = json!({"response": self.response_object("in_progress", json!([]), &[])});
        out.emit(sink, "response.created", in_progress.clone())
            .await?;
        out.emit(sink, "response.in_progress", in_progress).await?;
        let item = json!({"output_index": 0, "item": self.message_item("in_progress", None)});
        out.emit(sink, "response.output_item.added", item).await?;
        let part = json!({"item_id": item_id, "output_index": 0, "content_index": 0,
            "part": {"type": "output_text", "annotations": [], "logprobs": [], "text": ""}});
        out.emit(sink, "response.content_part.added", part).await?;

        for (i, delta) in self.config.deltas.iter().enumerate() {
            if let Some(fault) = self.due(i) {
                return self.responses_fault(sink, fault, &mut out).await;
            }
            self.pause_before(i).await;
            let data = json!({"item_id": item_id, "output_index": 0, "content_index": 0,
                "delta": delta, "logprobs": [], "obfuscation": "fake"});
            out.emit(sink, "response.output_text.delta", data).await?;
        }
        if let Some(fault) = self.due_at_end() {
            return self.responses_fault(sink, fault, &mut out).await;
        }

        let text = self.full_text();
        let done = json!({"item_id": item_id, "output_index": 0, "content_index": 0,
            "text": text, "logprobs": []});
        out.emit(sink, "response.output_text.done", done).await?;
        let part = json!({"item_id": item_id, "output_index": 0, "content_index": 0,
            "part": {"type": "output_text", "annotations": [], "logprobs": [], "text": text}});
        out.emit(sink, "response.content_part.done", part).await?;
        let (status, kind, details) = match &self.config.finish {
            Finish::Completed => ("completed", "response.completed", Value::Null),
            Finish::Incomplete(reason) => (
                "incomplete",
                "response.incomplete",
                json!({"reason": reason}),
            ),
        };
        let item = self.message_item(status, Some(&text));
        let item_done = json!({"output_index": 0, "item": item});
        out.emit(sink, "response.output_item.done", item_done)
            .await?;
        let response = self.response_object(
            status,
            json!([item]),
            &[
                ("usage", self.responses_usage()),
                ("incomplete_details", details),
            ],
        );
        out.emit(sink, kind, json!({"response": response})).await?;
        Ok(Ending::Clean)
    }

    async fn responses_fault(
        &self,
        sink: &mut Sink<'_>,
        fault: &Fault,
        out: &mut Events,
    ) -> io::Result<Ending> {
        match fault {
            Fault::CutAfter(_) => return Ok(Ending::Cut),
            Fault::EndAfter(_) => {}
            Fault::FailAfter { code, message, .. } => {
                let response = self.response_object(
                    "failed",
                    json!([]),
                    &[("error", json!({"code": code, "message": message}))],
                );
                out.emit(sink, "response.failed", json!({"response": response}))
                    .await?;
            }
            Fault::ErrorEventAfter { code, message, .. } => {
                let data = json!({"code": code, "message": message, "param": null});
                out.emit(sink, "error", data).await?;
            }
            Fault::RawEventAfter { event, data, .. } => {
                write_chunk(sink, &format!("event: {event}\ndata: {data}\n\n")).await?;
            }
            Fault::MalformedAfter(_) => {
                write_chunk(
                    sink,
                    "event: response.output_text.delta\ndata: {\"type\":\"response.output_text.delta\",\"delta\":\n\n",
                )
                .await?;
            }
            Fault::Status(_) | Fault::DelayFirstByte(_) | Fault::Disconnect => {}
        }
        Ok(Ending::Clean)
    }

    // ---- Chat Completions -----------------------------------------------------------

    fn chunk(&self, delta: Value, finish_reason: Value, include_usage: bool) -> Value {
        let mut chunk = json!({
            "id": format!("chatcmpl-fake{:020}", self.index),
            "object": "chat.completion.chunk",
            "created": unix_now(),
            "model": self.model(),
            "service_tier": "default",
            "system_fingerprint": "fp_fake",
            "choices": [{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish_reason}],
        });
        if include_usage {
            chunk["usage"] = Value::Null;
        }
        chunk
    }

    async fn chat(&self, sink: &mut Sink<'_>) -> io::Result<Ending> {
        let include_usage = self.body["stream_options"]["include_usage"].as_bool() == Some(true);
        self.head(sink).await?;
        let first = self.chunk(
            json!({"role": "assistant", "content": "", "refusal": null}),
            Value::Null,
            include_usage,
        );
        write_data(sink, &first.to_string()).await?;
        for (i, delta) in self.config.deltas.iter().enumerate() {
            if let Some(fault) = self.due(i) {
                return self.chat_fault(sink, fault).await;
            }
            self.pause_before(i).await;
            let chunk = self.chunk(json!({"content": delta}), Value::Null, include_usage);
            write_data(sink, &chunk.to_string()).await?;
        }
        if let Some(fault) = self.due_at_end() {
            return self.chat_fault(sink, fault).await;
        }
        let finish_reason = match &self.config.finish {
            Finish::Completed => "stop",
            Finish::Incomplete(reason) if reason == "max_output_tokens" => "length",
            Finish::Incomplete(reason) => reason.as_str(),
        };
        let last = self.chunk(json!({}), Value::from(finish_reason), include_usage);
        write_data(sink, &last.to_string()).await?;
        if let (true, Some(u)) = (include_usage, self.config.usage) {
            let mut usage = self.chunk(json!({}), Value::Null, false);
            usage["choices"] = json!([]);
            usage["usage"] = json!({
                "prompt_tokens": u.input_tokens,
                "completion_tokens": u.output_tokens,
                "total_tokens": u.input_tokens + u.output_tokens,
                "prompt_tokens_details": {"cached_tokens": u.cached_tokens, "audio_tokens": 0},
                "completion_tokens_details": {"reasoning_tokens": u.reasoning_tokens, "audio_tokens": 0,
                    "accepted_prediction_tokens": 0, "rejected_prediction_tokens": 0}
            });
            write_data(sink, &usage.to_string()).await?;
        }
        if self.config.done_marker {
            write_data(sink, "[DONE]").await?;
        }
        Ok(Ending::Clean)
    }

    async fn chat_fault(&self, sink: &mut Sink<'_>, fault: &Fault) -> io::Result<Ending> {
        match fault {
            Fault::CutAfter(_) => return Ok(Ending::Cut),
            Fault::EndAfter(_) => {}
            Fault::FailAfter { code, message, .. }
            | Fault::ErrorEventAfter { code, message, .. } => {
                let error = json!({"error": {"message": message, "type": "server_error", "param": null, "code": code}});
                write_data(sink, &error.to_string()).await?;
            }
            Fault::RawEventAfter { data, .. } => write_data(sink, data).await?,
            Fault::MalformedAfter(_) => {
                let id = format!("chatcmpl-fake{:020}", self.index);
                write_data(
                    sink,
                    &format!("{{\"id\":\"{id}\",\"choices\":[{{\"delta\":"),
                )
                .await?;
            }
            Fault::Status(_) | Fault::DelayFirstByte(_) | Fault::Disconnect => {}
        }
        Ok(Ending::Clean)
    }
}

/// Writes Responses API events, numbering them with `sequence_number`.
struct Events {
    seq: u64,
}

impl Events {
    async fn emit(&mut self, sink: &mut Sink<'_>, kind: &str, mut data: Value) -> io::Result<()> {
        data["type"] = Value::from(kind);
        data["sequence_number"] = Value::from(self.seq);
        self.seq += 1;
        write_chunk(sink, &format!("event: {kind}\ndata: {data}\n\n")).await
    }
}

/// Writes one SSE `data:` line as its own chunk.
async fn write_data(sink: &mut Sink<'_>, data: &str) -> io::Result<()> {
    write_chunk(sink, &format!("data: {data}\n\n")).await
}

/// Writes one piece of the streamed body and flushes it.
async fn write_chunk(sink: &mut Sink<'_>, text: &str) -> io::Result<()> {
    sink.chunk(text).await
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}
