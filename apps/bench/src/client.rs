//! The load generator's HTTP side: one HTTP/1.1 connection per stream slot (hyper, no pool),
//! and a light reader of Server-Sent Events that only finds event names and timestamps them.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::{self, SendRequest};
use hyper::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, HOST};
use hyper::{Method, Request};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use crate::BenchError;

/// A connection ready to send requests on.
pub type Sender = SendRequest<Full<Bytes>>;

/// Opens one HTTP/1.1 connection (`TCP_NODELAY`) and drives it in a task of its own.
pub async fn connect(addr: SocketAddr) -> Result<Sender, BenchError> {
    let stream = TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    let (sender, connection) = http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(async move {
        let _ = connection.await;
    });
    Ok(sender)
}

/// Which stream format is being read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Wire {
    /// Confab's chat stream: `user_message`, `assistant_message`, `delta`…, `done` | `error`.
    Confab,
    /// The provider's Responses API stream, read directly.
    Responses,
}

/// What one event means to the load generator.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Delta,
    End,
    Failure,
    Other,
}

impl Wire {
    /// The meaning of an event with this name.
    #[must_use]
    pub fn classify(self, name: &[u8]) -> Kind {
        match (self, name) {
            (Self::Confab, b"delta") | (Self::Responses, b"response.output_text.delta") => {
                Kind::Delta
            }
            (Self::Confab, b"done") | (Self::Responses, b"response.completed") => Kind::End,
            (Self::Confab, b"error")
            | (Self::Responses, b"response.failed" | b"response.incomplete" | b"error") => {
                Kind::Failure
            }
            _ => Kind::Other,
        }
    }
}

/// The `event:` field of one event (the text between two blank lines), if it has one.
#[must_use]
pub fn event_name(event: &[u8]) -> Option<&[u8]> {
    event.split(|b| *b == b'\n').find_map(|line| {
        let rest = line.strip_prefix(b"event:")?;
        Some(rest.strip_prefix(b" ").unwrap_or(rest))
    })
}

/// The `id:` field of one event (its number within the reply), if it has one.
#[must_use]
pub fn event_id(event: &[u8]) -> Option<u64> {
    event.split(|b| *b == b'\n').find_map(|line| {
        let rest = line.strip_prefix(b"id:")?;
        std::str::from_utf8(rest).ok()?.trim().parse().ok()
    })
}

fn find_blank_line(data: &[u8]) -> Option<usize> {
    data.windows(2).position(|w| w == b"\n\n")
}

/// Splits a byte stream into events. Bytes are copied only when an event spans two reads.
#[derive(Debug, Default)]
pub struct Scanner {
    partial: Vec<u8>,
}

impl Scanner {
    /// Feeds one read; calls `on_event` with each event completed by it.
    pub fn feed(&mut self, data: &[u8], mut on_event: impl FnMut(&[u8])) {
        if self.partial.is_empty() {
            let rest = Self::scan(data, &mut on_event);
            self.partial.extend_from_slice(rest);
        } else {
            self.partial.extend_from_slice(data);
            let partial = std::mem::take(&mut self.partial);
            let rest = Self::scan(&partial, &mut on_event);
            self.partial = rest.to_vec();
        }
    }

    fn scan<'a>(mut data: &'a [u8], on_event: &mut impl FnMut(&[u8])) -> &'a [u8] {
        while let Some(end) = find_blank_line(data) {
            let event = &data[..end];
            if !event.is_empty() {
                on_event(event);
            }
            data = &data[end + 2..];
        }
        data
    }
}

/// One request to send: path, bearer token, JSON body.
#[derive(Clone, Debug)]
pub struct Prepared {
    pub path: String,
    pub bearer: String,
    pub body: Bytes,
}

/// How one stream went.
#[derive(Debug, Default)]
pub struct Outcome {
    /// From sending the request to the read that completed the first delta.
    pub ttfd: Option<Duration>,
    /// Between the reads that completed successive deltas, in microseconds.
    pub gaps_us: Vec<u32>,
    pub deltas: usize,
    /// From sending the request to its response head, and to the read that completed the
    /// first event (for `--verbose`).
    pub head: Option<Duration>,
    pub first_event: Option<Duration>,
    /// Why the stream counts as failed; `None` when it ended well with every delta.
    pub error: Option<String>,
}

struct Reading {
    wire: Wire,
    start: Instant,
    last: Option<Instant>,
    outcome: Outcome,
    ended: bool,
    failed: Option<String>,
}

impl Reading {
    fn event(&mut self, at: Instant, event: &[u8]) {
        let Some(name) = event_name(event) else {
            return;
        };
        if self.outcome.first_event.is_none() {
            self.outcome.first_event = Some(at - self.start);
        }
        match self.wire.classify(name) {
            Kind::Delta => {
                match self.last {
                    None => self.outcome.ttfd = Some(at - self.start),
                    Some(last) => {
                        let gap = (at - last).as_micros();
                        self.outcome
                            .gaps_us
                            .push(u32::try_from(gap).unwrap_or(u32::MAX));
                    }
                }
                self.last = Some(at);
                self.outcome.deltas += 1;
            }
            Kind::End => self.ended = true,
            Kind::Failure => {
                self.failed = Some(format!(
                    "a failure event: {}",
                    String::from_utf8_lossy(&event[..event.len().min(300)])
                ));
            }
            Kind::Other => {}
        }
    }
}

/// Builds the request for `prepared` on `host`.
pub fn request(host: &str, prepared: &Prepared) -> Result<Request<Full<Bytes>>, BenchError> {
    Request::builder()
        .method(Method::POST)
        .uri(prepared.path.as_str())
        .header(HOST, host)
        .header(CONTENT_TYPE, "application/json")
        .header(ACCEPT, "text/event-stream")
        .header(AUTHORIZATION, format!("Bearer {}", prepared.bearer))
        .body(Full::new(prepared.body.clone()))
        .map_err(|e| BenchError::Setup(format!("a request could not be built: {e}")))
}

/// A `GET …/stream` that follows a conversation's live reply after event `after` (sent as
/// `Last-Event-ID`; none: from the start).
pub fn follow_request(
    host: &str,
    conversation_id: &str,
    bearer: &str,
    after: Option<u64>,
) -> Result<Request<Full<Bytes>>, BenchError> {
    let mut builder = Request::builder()
        .method(Method::GET)
        .uri(format!("/api/conversations/{conversation_id}/stream"))
        .header(HOST, host)
        .header(ACCEPT, "text/event-stream")
        .header(AUTHORIZATION, format!("Bearer {bearer}"));
    if let Some(after) = after {
        builder = builder.header("Last-Event-ID", after.to_string());
    }
    builder
        .body(Full::new(Bytes::new()))
        .map_err(|e| BenchError::Setup(format!("a request could not be built: {e}")))
}

/// One event of a stream as [`read_numbered`] saw it.
#[derive(Clone, Copy, Debug)]
pub struct Seen {
    /// When the read that completed it returned.
    pub at: Instant,
    /// Its `id:` (0 without one).
    pub id: u64,
    pub kind: Kind,
}

/// A Confab stream read to its end, every event numbered and timestamped.
#[derive(Debug)]
pub struct Numbered {
    /// When its response head arrived.
    pub head: Option<Instant>,
    pub events: Vec<Seen>,
    /// Why the stream counts as failed; `None` when it ended with `done` after `expected`
    /// deltas.
    pub error: Option<String>,
}

impl Numbered {
    fn failed(error: String) -> Self {
        Self {
            head: None,
            events: Vec::new(),
            error: Some(error),
        }
    }

    /// The arrival of each delta, by event number.
    pub fn deltas(&self) -> impl Iterator<Item = &Seen> {
        self.events.iter().filter(|e| e.kind == Kind::Delta)
    }
}

/// What a reader reports while it reads, for whoever waits on its progress.
#[derive(Debug, Default)]
pub struct Progress {
    /// Set to the number of each event as it is read.
    pub newest: Option<std::sync::Arc<std::sync::atomic::AtomicU64>>,
    /// Fired once an event numbered at least this has been read.
    pub reached: Option<(u64, tokio::sync::oneshot::Sender<()>)>,
}

/// Sends `request` on `sender` and reads Confab's stream to its end (or to the first event
/// when `first_only`), numbering and timestamping every event. `expected` deltas must arrive
/// for a whole stream to count as good.
pub async fn read_numbered(
    sender: &mut Sender,
    request: Request<Full<Bytes>>,
    expected: usize,
    first_only: bool,
    mut progress: Progress,
) -> Numbered {
    if let Err(e) = sender.ready().await {
        return Numbered::failed(format!("the connection is not usable: {e}"));
    }
    let response = match sender.send_request(request).await {
        Ok(response) => response,
        Err(e) => return Numbered::failed(format!("the request failed: {e}")),
    };
    let mut read = Numbered {
        head: Some(Instant::now()),
        events: Vec::with_capacity(expected + 4),
        error: None,
    };
    let status = response.status();
    let mut body = response.into_body();
    if status != hyper::StatusCode::OK {
        let text = body
            .collect()
            .await
            .map(|b| String::from_utf8_lossy(&b.to_bytes()).into_owned())
            .unwrap_or_default();
        read.error = Some(format!("status {status}: {text}"));
        return read;
    }
    let mut scanner = Scanner::default();
    let mut failure = None;
    let mut ended = false;
    // Until the last event, or the first one when that is all that is wanted.
    while !ended && (!first_only || read.events.is_empty()) {
        match body.frame().await {
            None => break,
            Some(Err(e)) => {
                read.error = Some(format!("the body broke off: {e}"));
                return read;
            }
            Some(Ok(frame)) => {
                let Ok(data) = frame.into_data() else {
                    continue;
                };
                let at = Instant::now();
                scanner.feed(&data, |event| {
                    let Some(name) = event_name(event) else {
                        return;
                    };
                    let id = event_id(event).unwrap_or(0);
                    let kind = Wire::Confab.classify(name);
                    match kind {
                        Kind::End => ended = true,
                        Kind::Failure if failure.is_none() => {
                            ended = true;
                            failure = Some(format!(
                                "a failure event: {}",
                                String::from_utf8_lossy(&event[..event.len().min(300)])
                            ));
                        }
                        _ => {}
                    }
                    read.events.push(Seen { at, id, kind });
                    if let Some(newest) = &progress.newest {
                        newest.store(id, std::sync::atomic::Ordering::SeqCst);
                    }
                    if progress.reached.as_ref().is_some_and(|(n, _)| id >= *n)
                        && let Some((_, tx)) = progress.reached.take()
                    {
                        let _ = tx.send(());
                    }
                });
            }
        }
    }
    // A whole stream is read to the end of its body, as a browser's reader does: hyper's
    // client closes a connection whose response body is dropped before its end, and the
    // slot's next stream would find it closed. (Confab ends its body with the last event;
    // a relay that ends it only when its upstream ends may write that end later.)
    if ended && !first_only {
        loop {
            match body.frame().await {
                None => break,
                Some(Ok(_)) => {}
                Some(Err(e)) => {
                    read.error = Some(format!("the body broke off after its last event: {e}"));
                    return read;
                }
            }
        }
    }
    let deltas = read.deltas().count();
    read.error = if failure.is_some() {
        failure
    } else if first_only {
        read.events
            .is_empty()
            .then(|| "the stream ended before its first event".to_owned())
    } else if !ended {
        Some("the stream ended without its last event".to_owned())
    } else if deltas != expected {
        Some(format!("{deltas} deltas arrived, {expected} were sent"))
    } else {
        None
    };
    read
}

/// Sends one streaming request on `sender` and reads its answer to the end, timestamping each
/// delta as its read completes. `expected` deltas must arrive for the stream to count as good.
pub async fn run_stream(
    sender: &mut Sender,
    request: Request<Full<Bytes>>,
    wire: Wire,
    expected: usize,
) -> Outcome {
    let mut reading = Reading {
        wire,
        start: Instant::now(),
        last: None,
        outcome: Outcome {
            gaps_us: Vec::with_capacity(expected),
            ..Outcome::default()
        },
        ended: false,
        failed: None,
    };
    if let Err(e) = sender.ready().await {
        reading.outcome.error = Some(format!("the connection is not usable: {e}"));
        return reading.outcome;
    }
    reading.start = Instant::now();
    let response = match sender.send_request(request).await {
        Ok(response) => response,
        Err(e) => {
            reading.outcome.error = Some(format!("the request failed: {e}"));
            return reading.outcome;
        }
    };
    reading.outcome.head = Some(reading.start.elapsed());
    let status = response.status();
    let mut body = response.into_body();
    if !status.is_success() {
        let text = body
            .collect()
            .await
            .map(|b| String::from_utf8_lossy(&b.to_bytes()).into_owned())
            .unwrap_or_default();
        reading.outcome.error = Some(format!("status {status}: {text}"));
        return reading.outcome;
    }
    let mut scanner = Scanner::default();
    loop {
        match body.frame().await {
            None => break,
            Some(Err(e)) => {
                reading.outcome.error = Some(format!("the body broke off: {e}"));
                return reading.outcome;
            }
            Some(Ok(frame)) => {
                if let Ok(data) = frame.into_data() {
                    let at = Instant::now();
                    scanner.feed(&data, |event| reading.event(at, event));
                }
            }
        }
    }
    let Reading {
        mut outcome,
        ended,
        failed,
        ..
    } = reading;
    outcome.error = if let Some(failure) = failed {
        Some(failure)
    } else if !ended {
        Some("the stream ended without its last event".to_owned())
    } else if outcome.deltas != expected {
        Some(format!(
            "{} deltas arrived, {expected} were sent",
            outcome.deltas
        ))
    } else {
        None
    };
    outcome
}

#[cfg(test)]
mod tests {

    use super::*;

    fn names(chunks: &[&str]) -> Vec<String> {
        let mut scanner = Scanner::default();
        let mut seen = Vec::new();
        for chunk in chunks {
            scanner.feed(chunk.as_bytes(), |event| {
                seen.push(String::from_utf8_lossy(event_name(event).unwrap_or(b"-")).into_owned());
            });
        }
        seen
    }

    #[test]
    fn events_are_found_whole_in_one_read() {
        assert_eq!(
            names(&["id: 1\nevent: delta\ndata: {}\n\nid: 2\nevent: done\ndata: {}\n\n"]),
            ["delta", "done"]
        );
    }

    #[test]
    fn an_event_split_across_reads_is_found_once_when_complete() {
        assert_eq!(
            names(&[
                "id: 1\neve",
                "nt: del",
                "ta\ndata: {}\n",
                "\nevent: done\n\n"
            ]),
            ["delta", "done"]
        );
    }

    #[test]
    fn an_events_number_is_its_id_field() {
        assert_eq!(event_id(b"id: 17\nevent: delta\ndata: {}"), Some(17));
        assert_eq!(event_id(b"event: delta\nid:3\ndata: {}"), Some(3));
        assert_eq!(event_id(b"event: delta\ndata: {}"), None);
        assert_eq!(event_id(b"id: x\nevent: delta"), None);
    }

    #[test]
    fn comments_and_events_without_a_name_have_no_name() {
        assert_eq!(names(&[": keep-alive\n\ndata: x\n\n"]), ["-", "-"]);
    }

    #[test]
    fn each_wire_knows_its_deltas_ends_and_failures() {
        assert_eq!(Wire::Confab.classify(b"delta"), Kind::Delta);
        assert_eq!(Wire::Confab.classify(b"done"), Kind::End);
        assert_eq!(Wire::Confab.classify(b"error"), Kind::Failure);
        assert_eq!(Wire::Confab.classify(b"user_message"), Kind::Other);
        assert_eq!(
            Wire::Responses.classify(b"response.output_text.delta"),
            Kind::Delta
        );
        assert_eq!(Wire::Responses.classify(b"response.completed"), Kind::End);
        assert_eq!(Wire::Responses.classify(b"response.failed"), Kind::Failure);
        assert_eq!(Wire::Responses.classify(b"delta"), Kind::Other);
    }

    #[test]
    fn deltas_are_timed_from_the_start_and_from_each_other() {
        let start = Instant::now();
        let mut reading = Reading {
            wire: Wire::Confab,
            start,
            last: None,
            outcome: Outcome::default(),
            ended: false,
            failed: None,
        };
        reading.event(start + Duration::from_millis(5), b"event: delta\ndata: {}");
        reading.event(start + Duration::from_millis(25), b"event: delta\ndata: {}");
        reading.event(start + Duration::from_millis(26), b"event: done\ndata: {}");
        assert_eq!(reading.outcome.ttfd, Some(Duration::from_millis(5)));
        assert_eq!(reading.outcome.gaps_us, [20_000]);
        assert_eq!(reading.outcome.deltas, 2);
        assert!(reading.ended);
    }
}
