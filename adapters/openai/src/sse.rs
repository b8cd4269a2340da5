//! A scanner of `text/event-stream` bodies (the WHATWG "event stream interpretation"): the
//! provider's answer is read once, in place, with no parser combinators and no allocation per
//! event.
//!
//! Why not `eventsource-stream`: under callgrind its parser was 15.9 M of the server's 107 M
//! instructions for 20 relayed replies of 64 deltas (`docs/benchmarks.md`, "The relay against
//! a bare relay, second round"): it decodes every chunk into a new `String`, runs `nom` over
//! each line, copies each field into a `String` of its own, and moves the rest of its buffer
//! down after every line. This scanner finds line ends with `memchr`, checks each line's
//! UTF-8 once, and builds every event in the same reused buffers; only a line cut by the end
//! of a chunk is copied (into one buffer kept for that). Its events are the library's, for
//! any input and any chunking: the library stays a dev-dependency, and the tests below
//! compare both after every chunk.
//!
//! What it does, as the library does (which is the spec, but for the CR noted below):
//! - lines end with `\r\n`, `\r` or `\n`; a leading byte order mark is skipped;
//! - `data:` lines are joined with `\n`; `event:` sets the type (`message` when none);
//!   `id:` sets the last event id (kept for the following events) unless it holds a NUL;
//!   `retry:` is read as milliseconds when it is a number; a line starting with `:` is a
//!   comment; other fields are ignored; one space after the colon is dropped;
//! - an event is dispatched at a blank line, and only when it has data;
//! - at the end of the body, an event without its blank line is not dispatched;
//! - a `\r` that is the last byte received so far waits for the next byte (it may be the
//!   start of `\r\n`): so a blank line made of a lone `\r` at the very end of the body does
//!   not dispatch the event before it (the library's reading; the spec would).
//!
//! The library panics on a body that starts with a byte order mark (it slices the mark's
//! three bytes at byte 1); the scanner skips it, as the spec says.
//!
//! Unlike the library, bytes that are not UTF-8 fail the stream at once (the library keeps
//! them, and everything after them, until the body ends), and so does a line longer than
//! the given limit (the library buffers it whole).

use std::time::Duration;

use bytes::Bytes;

/// One dispatched event.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Event {
    /// The event's type: its `event:` field, else `message`.
    pub(crate) event: String,
    /// Its `data:` lines, joined with `\n`.
    pub(crate) data: String,
    /// The last event id seen in the stream (not only in this event).
    pub(crate) id: String,
    /// Its `retry:` field, when it had a valid one.
    pub(crate) retry: Option<Duration>,
}

/// Why a body is not an event stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub(crate) enum ScanError {
    /// A byte sequence that is not UTF-8.
    #[error("the event stream is not valid UTF-8")]
    InvalidUtf8,
    /// A line went on for longer than the limit, in bytes.
    #[error("a line of the event stream is longer than {0} bytes")]
    LineTooLong(usize),
}

/// The UTF-8 byte order mark.
const BOM: &[u8] = b"\xEF\xBB\xBF";

/// Reads events out of a body's chunks: [`Scanner::push`] a chunk, then call
/// [`Scanner::next`] until it says no event is left in it, reading each from
/// [`Scanner::event`]; at the end of the body, [`Scanner::finish`].
#[derive(Debug)]
pub(crate) struct Scanner {
    /// The chunk being read, from `pos` on.
    chunk: Bytes,
    pos: usize,
    /// A line not ended yet by the end of the bytes received (without its `\r`, see `held_cr`).
    line: Vec<u8>,
    /// How much of `line` is known to be UTF-8 (the rest: a character cut by a chunk's end).
    checked: usize,
    /// `line` is whole and ended with `\r`, the last byte received: a `\n` after it is part
    /// of its end.
    held_cr: bool,
    /// How many bytes of a byte order mark began the body so far; `None` once the body
    /// started with something else or the mark was skipped.
    bom: Option<usize>,
    /// The event being built; after `next` said `true`, the one dispatched.
    event: Event,
    /// `event` was handed out: its type, data and retry are cleared before going on.
    out: bool,
    max_line: usize,
}

impl Scanner {
    /// A scanner that refuses lines longer than `max_line` bytes.
    pub(crate) fn new(max_line: usize) -> Self {
        Self {
            chunk: Bytes::new(),
            pos: 0,
            line: Vec::new(),
            checked: 0,
            held_cr: false,
            bom: Some(0),
            event: Event::default(),
            out: false,
            max_line,
        }
    }

    /// Gives the scanner the body's next chunk. Call only once `next` has said that no event
    /// is left (the chunk before is then read whole).
    pub(crate) fn push(&mut self, mut chunk: Bytes) {
        debug_assert!(
            self.pos >= self.chunk.len(),
            "the chunk before was not read whole"
        );
        if let Some(seen) = self.bom {
            let mut matched = seen;
            let mut taken = 0;
            while matched < BOM.len() && taken < chunk.len() && chunk[taken] == BOM[matched] {
                matched += 1;
                taken += 1;
            }
            if matched == BOM.len() {
                self.bom = None;
                chunk = chunk.slice(taken..);
            } else if taken == chunk.len() {
                // All of it may still be a mark's start.
                self.bom = Some(matched);
                self.chunk = Bytes::new();
                self.pos = 0;
                return;
            } else {
                // Not a mark: the bytes taken for one are the first line's start (none of
                // them ends a line), and this chunk goes on from where the match failed.
                self.bom = None;
                self.line.extend_from_slice(&BOM[..matched]);
                chunk = chunk.slice(taken..);
            }
        }
        self.chunk = chunk;
        self.pos = 0;
    }

    /// Reads on in the current chunk: `Ok(true)` when an event was dispatched (read it from
    /// [`Scanner::event`]), `Ok(false)` when the chunk is read whole.
    pub(crate) fn next(&mut self) -> Result<bool, ScanError> {
        if std::mem::take(&mut self.out) {
            self.event.event.clear();
            clear(&mut self.event.data);
            self.event.retry = None;
        }
        loop {
            let rest = &self.chunk[self.pos..];
            if rest.is_empty() {
                // Not kept once read: a chunk is a slice of the HTTP client's read buffer, which
                // it could not reuse while the stream waits for its next delta.
                self.chunk = Bytes::new();
                self.pos = 0;
                return Ok(false);
            }
            let blank = if self.held_cr {
                self.held_cr = false;
                if rest[0] == b'\n' {
                    self.pos += 1;
                }
                let blank = field(&mut self.event, &self.line)?;
                clear(&mut self.line);
                self.checked = 0;
                blank
            } else {
                let Some(end) = memchr::memchr2(b'\n', b'\r', rest) else {
                    hold(&mut self.line, &mut self.checked, rest, self.max_line)?;
                    self.pos = self.chunk.len();
                    continue;
                };
                let consumed = match rest.get(end + 1) {
                    _ if rest[end] == b'\n' => end + 1,
                    Some(b'\n') => end + 2,
                    Some(_) => end + 1,
                    None => {
                        // A `\r` last: whether a `\n` follows is for the next chunk to say.
                        hold(
                            &mut self.line,
                            &mut self.checked,
                            &rest[..end],
                            self.max_line,
                        )?;
                        self.held_cr = true;
                        self.pos = self.chunk.len();
                        continue;
                    }
                };
                let blank = if self.line.is_empty() {
                    field(&mut self.event, &rest[..end])?
                } else {
                    self.line.extend_from_slice(&rest[..end]);
                    let blank = field(&mut self.event, &self.line)?;
                    clear(&mut self.line);
                    self.checked = 0;
                    blank
                };
                self.pos += consumed;
                blank
            };
            if blank && dispatch(&mut self.event) {
                self.out = true;
                return Ok(true);
            }
        }
    }

    /// The event `next` dispatched last.
    pub(crate) fn event(&self) -> &Event {
        &self.event
    }

    /// The body ended. An unfinished event is dropped (the spec's reading); only bytes that
    /// are not UTF-8 (a character cut by the end) are an error.
    pub(crate) fn finish(&self) -> Result<(), ScanError> {
        if self.bom.is_some_and(|seen| seen > 0) {
            return Err(ScanError::InvalidUtf8);
        }
        std::str::from_utf8(&self.line[self.checked..])
            .map(|_| ())
            .map_err(|_| ScanError::InvalidUtf8)
    }
}

/// The most a buffer keeps for the next event or line once it is done with: a stream stays
/// open for minutes, thousands at once, and one large event (the framing events repeat the
/// whole response object) must not leave its size behind in each.
const KEPT_CAPACITY: usize = 1024;

/// Empties a buffer for reuse, freeing it if it grew large.
fn clear<T: Default + Capacity>(buffer: &mut T) {
    if buffer.capacity() > KEPT_CAPACITY {
        *buffer = T::default();
    } else {
        buffer.empty();
    }
}

/// The buffers `clear` empties.
trait Capacity {
    fn capacity(&self) -> usize;
    fn empty(&mut self);
}

impl Capacity for Vec<u8> {
    fn capacity(&self) -> usize {
        Vec::capacity(self)
    }
    fn empty(&mut self) {
        Vec::clear(self);
    }
}

impl Capacity for String {
    fn capacity(&self) -> usize {
        String::capacity(self)
    }
    fn empty(&mut self) {
        String::clear(self);
    }
}

/// Keeps the start of a line that the chunk's end cut, checking its length and its UTF-8
/// (a character cut by the end is finished by the next chunk).
fn hold(
    line: &mut Vec<u8>,
    checked: &mut usize,
    tail: &[u8],
    max_line: usize,
) -> Result<(), ScanError> {
    if line.len().saturating_add(tail.len()) > max_line {
        return Err(ScanError::LineTooLong(max_line));
    }
    line.extend_from_slice(tail);
    match std::str::from_utf8(&line[*checked..]) {
        Ok(_) => *checked = line.len(),
        Err(e) if e.error_len().is_none() => *checked += e.valid_up_to(),
        Err(_) => return Err(ScanError::InvalidUtf8),
    }
    Ok(())
}

/// Applies one whole line (without its end) to the event being built; `true` for a blank line.
fn field(event: &mut Event, line: &[u8]) -> Result<bool, ScanError> {
    if line.is_empty() {
        return Ok(true);
    }
    let line = std::str::from_utf8(line).map_err(|_| ScanError::InvalidUtf8)?;
    let (name, value) = match line.find(':') {
        // A comment.
        Some(0) => return Ok(false),
        Some(colon) => {
            let value = &line[colon + 1..];
            (&line[..colon], value.strip_prefix(' ').unwrap_or(value))
        }
        None => (line, ""),
    };
    match name {
        "data" => {
            event.data.push_str(value);
            event.data.push('\n');
        }
        "event" => {
            event.event.clear();
            event.event.push_str(value);
        }
        "id" if !value.contains('\0') => {
            event.id.clear();
            event.id.push_str(value);
        }
        "retry" => {
            if let Ok(ms) = value.parse::<u64>() {
                event.retry = Some(Duration::from_millis(ms));
            }
        }
        _ => {}
    }
    Ok(false)
}

/// At a blank line: whether the event built so far is one (it has data). One that is not is
/// dropped, but for the last event id.
fn dispatch(event: &mut Event) -> bool {
    if event.data.is_empty() {
        event.event.clear();
        event.retry = None;
        return false;
    }
    // Every `data:` line added a `\n`: the last one goes.
    event.data.pop();
    if event.event.is_empty() {
        event.event.push_str("message");
    }
    true
}

#[cfg(test)]
mod tests {
    use std::task::{Context, Poll};

    use eventsource_stream::{EventStream, EventStreamError};
    use futures::StreamExt;
    use futures::channel::mpsc;
    use proptest::prelude::*;

    use super::*;

    /// What the library and the scanner gave after each chunk (and at the end).
    type Steps = Vec<Vec<Event>>;

    /// Whether the scanner gave the library's events, in order, each after the same chunk as
    /// the library or earlier: after every chunk, what the library gave so far is a prefix of
    /// what the scanner gave, and at the end both gave the same. (Earlier: a `\r` followed by
    /// only the start of a character waits in the library, which looks for line ends in the
    /// UTF-8 it decoded so far, not in the bytes received.)
    fn alike(ours: &Steps, theirs: &Steps) -> Result<(), String> {
        if ours.len() != theirs.len() {
            return Err(format!("{} steps against {}", ours.len(), theirs.len()));
        }
        let (mut a, mut b) = (Vec::new(), Vec::new());
        for (step, (x, y)) in ours.iter().zip(theirs).enumerate() {
            a.extend(x.iter().cloned());
            b.extend(y.iter().cloned());
            if !a.starts_with(&b) {
                return Err(format!("after chunk {step}: scanner {a:?}, library {b:?}"));
            }
        }
        if a == b {
            Ok(())
        } else {
            Err(format!("at the end: scanner {a:?}, library {b:?}"))
        }
    }

    /// The scanner's events after each chunk, then at the end, and its error if it failed
    /// (it reads no further then).
    fn scanned(chunks: &[&[u8]]) -> (Steps, Option<ScanError>) {
        let mut scanner = Scanner::new(usize::MAX);
        let mut steps = Vec::new();
        for chunk in chunks {
            scanner.push(Bytes::copy_from_slice(chunk));
            let mut events = Vec::new();
            loop {
                match scanner.next() {
                    Ok(true) => events.push(scanner.event().clone()),
                    Ok(false) => break,
                    Err(e) => {
                        steps.push(events);
                        return (steps, Some(e));
                    }
                }
            }
            steps.push(events);
        }
        let end = scanner.finish().err();
        steps.push(Vec::new());
        (steps, end)
    }

    /// `eventsource-stream`'s events after each chunk (everything it yields before it waits
    /// for more), then at the end, and its error if it failed.
    fn oracle(chunks: &[&[u8]]) -> (Steps, Option<String>) {
        let (tx, rx) = mpsc::unbounded::<Result<Vec<u8>, ()>>();
        let mut stream = EventStream::new(rx);
        let mut cx = Context::from_waker(futures::task::noop_waker_ref());
        let mut steps = Vec::new();
        let mut drain = |stream: &mut EventStream<_>, steps: &mut Steps| -> Option<String> {
            let mut events = Vec::new();
            let error = loop {
                match stream.poll_next_unpin(&mut cx) {
                    Poll::Ready(Some(Ok(e))) => events.push(Event {
                        event: e.event,
                        data: e.data,
                        id: e.id,
                        retry: e.retry,
                    }),
                    Poll::Ready(Some(Err(e))) => {
                        let e: EventStreamError<()> = e;
                        break Some(format!("{e:?}"));
                    }
                    Poll::Ready(None) | Poll::Pending => break None,
                }
            };
            steps.push(events);
            error
        };
        for chunk in chunks {
            if tx.unbounded_send(Ok(chunk.to_vec())).is_err() {
                return (steps, Some("closed".to_owned()));
            }
            if let Some(e) = drain(&mut stream, &mut steps) {
                return (steps, Some(e));
            }
        }
        tx.close_channel();
        let end = drain(&mut stream, &mut steps);
        (steps, end)
    }

    /// What the library is asked for the scanner's `chunks`: the library panics on a body
    /// that starts with a byte order mark (it slices the mark's three bytes at byte 1), so it
    /// is given the body without the mark the scanner skips, and a blank line first (which
    /// dispatches nothing) when a second mark follows. The chunks stay as many (some may
    /// become empty), so that the steps still match one for one.
    fn for_library(chunks: &[&[u8]]) -> Vec<Vec<u8>> {
        let body = chunks.concat();
        let mut left = if body.starts_with(BOM) { BOM.len() } else { 0 };
        let mut given: Vec<Vec<u8>> = chunks
            .iter()
            .map(|chunk| {
                let skip = left.min(chunk.len());
                left -= skip;
                chunk[skip..].to_vec()
            })
            .collect();
        let rest = if body.starts_with(BOM) {
            &body[BOM.len()..]
        } else {
            &body[..]
        };
        if rest.starts_with(BOM) {
            given[0].insert(0, b'\n');
        }
        given
    }

    /// Asserts that both read `chunks` alike, after every chunk, and neither fails.
    fn same(chunks: &[&[u8]]) {
        let ours = scanned(chunks);
        let given = for_library(chunks);
        let given: Vec<&[u8]> = given.iter().map(Vec::as_slice).collect();
        let theirs = oracle(&given);
        if let Err(e) = alike(&ours.0, &theirs.0) {
            panic!("chunks {chunks:?}: {e}");
        }
        assert!(
            ours.1.is_none() && theirs.1.is_none(),
            "chunks {chunks:?}: scanner {:?}, library {:?}",
            ours.1,
            theirs.1
        );
    }

    /// Streams that exercise every rule; each is also read split at every byte.
    const SAMPLES: &[&str] = &[
        "data: Hello, world!\n\n",
        "data: Hello,\ndata: world!\n\n",
        "data: one\n\ndata: two\n\n",
        "data: This is the first message.\n\ndata: This is the second message, it\ndata: has two lines.\n\ndata: This is the third message.\n\n",
        "event: add\ndata: 73857293\n\nevent: remove\ndata: 2153\n\nevent: add\ndata: 113411\n\n",
        "data: YHOO\ndata: +2\ndata: 10\n\n",
        ": test stream\n\ndata: first event\nid: 1\n\ndata:second event\nid\n\ndata:  third event\n\n",
        "data\n\ndata\ndata\n\ndata:\n",
        "data:test\n\ndata: test\n\n",
        "event: response.output_text.delta\r\ndata: {\"type\":\"response.output_text.delta\",\"delta\":\"hé ✓\"}\r\n\r\n",
        "event: x\rdata: a\rdata: b\r\rdata: c\r\n\r\n",
        "\u{feff}data: after a mark\n\n",
        "\u{feff}\u{feff}data: a second mark is a field name\n\ndata: x\n\n",
        "data: no blank line at the end\n",
        "data: no line end at the end",
        "data: a lone CR ends it\n\r",
        "data: a\n\r\ndata: b\r\r",
        "id: 7\nretry: 1500\ndata: a\n\nretry: x\ndata: b\n\nid: with\0nul\nretry: +12\ndata: c\n\n",
        "id: only\n\nevent: dropped\nretry: 5\n\ndata: kept id\n\n",
        ":comment\n:\ndata\n:another\n\n",
        "unknown: field\ndata : spaced name\nDATA: case\n\ndata: x\n\n",
        "data:  two spaces\ndata:\ttab\ndata::colon\n\n",
        "event\ndata: type reset\n\n",
        "data: 🦀 crab\nevent: ü\n\n",
        "\n\n\r\n\r\r\ndata: after blanks\n\n",
        "data: [DONE]\n\n",
    ];

    #[test]
    fn every_sample_is_read_as_the_library_reads_it_whole_and_split_at_every_byte() {
        for sample in SAMPLES {
            let bytes = sample.as_bytes();
            same(&[bytes]);
            for at in 0..=bytes.len() {
                same(&[&bytes[..at], &bytes[at..]]);
            }
            let singles: Vec<&[u8]> = bytes.chunks(1).collect();
            same(&singles);
        }
    }

    #[test]
    fn every_sample_is_read_alike_split_at_every_pair_of_bytes() {
        for sample in SAMPLES.iter().filter(|s| s.len() <= 80) {
            let bytes = sample.as_bytes();
            for a in 0..=bytes.len() {
                for b in a..=bytes.len() {
                    same(&[&bytes[..a], &bytes[a..b], &bytes[b..]]);
                }
            }
        }
    }

    #[test]
    fn a_provider_stream_gives_each_event_once_with_its_type_and_data() {
        let body = "event: response.created\ndata: {\"type\":\"response.created\"}\n\n\
                    event: response.output_text.delta\ndata: {\"delta\":\"Hi\"}\n\n";
        let (steps, error) = scanned(&[body.as_bytes()]);
        assert_eq!(error, None);
        let events = &steps[0];
        assert_eq!(events.len(), 2);
        assert_eq!(events[1].event, "response.output_text.delta");
        assert_eq!(events[1].data, "{\"delta\":\"Hi\"}");
    }

    #[test]
    fn bytes_that_are_not_utf8_fail_the_stream_where_they_are() {
        let mut scanner = Scanner::new(usize::MAX);
        scanner.push(Bytes::from_static(b"data: one\n\ndata: t\xffwo\n\n"));
        assert_eq!(scanner.next(), Ok(true));
        assert_eq!(scanner.event().data, "one");
        assert_eq!(scanner.next(), Err(ScanError::InvalidUtf8));

        // In a line not ended yet: at once, not at its end.
        let mut scanner = Scanner::new(usize::MAX);
        scanner.push(Bytes::from_static(b"data: t\xff"));
        assert_eq!(scanner.next(), Err(ScanError::InvalidUtf8));

        // A character cut by a chunk's end is fine; cut by the body's end, it is not.
        let mut scanner = Scanner::new(usize::MAX);
        scanner.push(Bytes::from_static(b"data: \xe2\x9c"));
        assert_eq!(scanner.next(), Ok(false));
        assert_eq!(scanner.finish(), Err(ScanError::InvalidUtf8));
        scanner.push(Bytes::from_static(b"\x93\n\n"));
        assert_eq!(scanner.next(), Ok(true));
        assert_eq!(scanner.event().data, "✓");
        assert_eq!(scanner.finish(), Ok(()));

        // The start of a byte order mark and nothing else.
        let mut scanner = Scanner::new(usize::MAX);
        scanner.push(Bytes::from_static(b"\xef\xbb"));
        assert_eq!(scanner.next(), Ok(false));
        assert_eq!(scanner.finish(), Err(ScanError::InvalidUtf8));
        // Continued as a character that is not the mark: a field name.
        scanner.push(Bytes::from_static(b"\x80: x\ndata: y\n\n"));
        assert_eq!(scanner.next(), Ok(true));
        assert_eq!(scanner.event().data, "y");
    }

    #[test]
    fn a_large_event_leaves_no_large_buffer_behind() {
        let mut scanner = Scanner::new(usize::MAX);
        let big = "x".repeat(64 * 1024);
        // Cut in the middle, so that the line is held too.
        let body = format!("data: {big}\n\n");
        scanner.push(Bytes::from(body[..1000].to_owned()));
        assert_eq!(scanner.next(), Ok(false));
        scanner.push(Bytes::from(body[1000..].to_owned()));
        assert_eq!(scanner.next(), Ok(true));
        assert_eq!(scanner.event().data.len(), big.len());
        assert!(scanner.line.capacity() <= KEPT_CAPACITY);
        assert_eq!(scanner.next(), Ok(false));
        assert!(scanner.chunk.is_empty(), "a chunk read whole is let go");
        scanner.push(Bytes::from_static(b"data: small\n\n"));
        assert_eq!(scanner.next(), Ok(true));
        assert_eq!(scanner.event().data, "small");
        assert!(scanner.event.data.capacity() <= KEPT_CAPACITY);
    }

    #[test]
    fn a_line_without_end_is_refused_past_the_limit() {
        let mut scanner = Scanner::new(16);
        scanner.push(Bytes::from_static(b"data: 0123456789"));
        assert_eq!(scanner.next(), Ok(false));
        scanner.push(Bytes::from_static(b"a"));
        assert_eq!(scanner.next(), Err(ScanError::LineTooLong(16)));

        // Whole lines of any length, and cut ones within it, are fine.
        let mut scanner = Scanner::new(16);
        scanner.push(Bytes::from(format!("data: {}\n\n", "x".repeat(100))));
        assert_eq!(scanner.next(), Ok(true));
        scanner.push(Bytes::from_static(b"data: 012345678"));
        assert_eq!(scanner.next(), Ok(false));
        scanner.push(Bytes::from_static(b"9\r"));
        assert_eq!(scanner.next(), Ok(false));
        scanner.push(Bytes::from_static(b"\n\n"));
        assert_eq!(scanner.next(), Ok(true));
        assert_eq!(scanner.event().data, "0123456789");
    }

    /// One line of a generated stream: a field (`data`, `event`, `id`, `retry`, another
    /// name, or a comment), its value, and its line end; or a blank line.
    fn line() -> impl Strategy<Value = String> {
        let name = prop_oneof![
            4 => Just("data"),
            2 => Just("event"),
            1 => Just("id"),
            1 => Just("retry"),
            1 => Just(""),
            1 => Just("other"),
            1 => Just("\u{feff}"),
        ];
        let value = prop_oneof![
            Just(String::new()),
            "[0-9]{1,4}",
            "[ +:a-z\u{0}\u{e9}\u{1f980}\u{feff}]{0,12}",
        ];
        let separator = prop_oneof![Just(""), Just(":"), Just(": "), Just(":  ")];
        let end = prop_oneof![3 => Just("\n"), 1 => Just("\r"), 1 => Just("\r\n")];
        prop_oneof![
            4 => (name, separator, value, end.clone())
                .prop_map(|(n, s, v, e)| format!("{n}{s}{v}{e}")),
            1 => end.prop_map(str::to_owned),
        ]
    }

    /// A generated stream (with a byte order mark or not) and where its chunks start.
    fn stream() -> impl Strategy<Value = (Vec<u8>, Vec<usize>)> {
        (
            any::<bool>(),
            proptest::collection::vec(line(), 0..24),
            any::<bool>(),
        )
            .prop_flat_map(|(bom, lines, cut)| {
                let mut text = if bom {
                    "\u{feff}".to_owned()
                } else {
                    String::new()
                };
                text.extend(lines);
                if cut {
                    // A body cut short anywhere, even inside a character.
                    text.push_str("data: cut ✓");
                }
                let mut bytes = text.into_bytes();
                if cut {
                    bytes.pop();
                }
                let len = bytes.len();
                (
                    Just(bytes),
                    proptest::collection::vec(0..=len, 0..12).prop_map(|mut cuts| {
                        cuts.sort_unstable();
                        cuts
                    }),
                )
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2_000))]

        #[test]
        fn generated_streams_in_random_chunks_are_read_as_the_library_reads_them(
            (bytes, cuts) in stream()
        ) {
            let mut chunks = Vec::new();
            let mut from = 0;
            for &at in &cuts {
                chunks.push(&bytes[from..at]);
                from = at;
            }
            chunks.push(&bytes[from..]);
            let (ours, our_error) = scanned(&chunks);
            let given = for_library(&chunks);
            let given: Vec<&[u8]> = given.iter().map(Vec::as_slice).collect();
            let (theirs, their_error) = oracle(&given);
            if let Err(e) = alike(&ours, &theirs) {
                prop_assert!(false, "{}", e);
            }
            // Both fail for a body whose last character is cut (at its end), and only then.
            match (&our_error, &their_error) {
                (None, None) => {}
                (Some(ScanError::InvalidUtf8), Some(e)) if e.starts_with("Utf8") => {}
                _ => prop_assert!(false, "scanner {:?}, library {:?}", our_error, their_error),
            }
        }
    }
}
