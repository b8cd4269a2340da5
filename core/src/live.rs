//! A reply's live events: what the producer of a reply publishes and any follower (another
//! tab, device or replica) reads, by number, from any point on. The port is
//! [`crate::ports::LiveReplies`]; this module holds its values and its error.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

/// One event of a reply's stream, as every way of reading it numbers it.
///
/// Its name and data are [`Text`]: the producer's SSE frame, the in-process buffer and every
/// follower share one copy of an event's JSON instead of each making its own.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LiveEvent {
    /// The event's number within its reply: 1, 2, 3 … (the SSE `id:`).
    pub id: u64,
    /// What the event is (the SSE `event:` name: `user_message`, `delta`, `done`, …).
    pub name: Text,
    /// The payload, opaque to the port (the SSE `data:`, one line of JSON).
    pub data: Text,
    /// Whether this is the reply's last event (`done` or `error`): nothing follows it.
    pub last: bool,
}

impl LiveEvent {
    /// An event that more events follow.
    #[must_use]
    pub fn new(id: u64, name: impl Into<Text>, data: impl Into<Text>) -> Self {
        Self {
            id,
            name: name.into(),
            data: data.into(),
            last: false,
        }
    }

    /// The reply's last event.
    #[must_use]
    pub fn last(id: u64, name: impl Into<Text>, data: impl Into<Text>) -> Self {
        Self {
            last: true,
            ..Self::new(id, name, data)
        }
    }
}

/// Immutable text that is shared, not copied, when cloned: a `&'static str`, or a range of a
/// reference-counted string (so that an event's data can be the `data:` part of the very
/// frame that carries it to the client). It reads as a `str` and serializes as one.
#[derive(Clone)]
pub struct Text(Repr);

#[derive(Clone)]
enum Repr {
    Static(&'static str),
    Shared {
        text: Arc<str>,
        start: usize,
        end: usize,
    },
}

impl Text {
    /// The part `range` of `text`, sharing it; `None` when the range is not within `text` or
    /// not on character boundaries.
    #[must_use]
    pub fn slice(text: &Arc<str>, range: std::ops::Range<usize>) -> Option<Self> {
        text.get(range.clone())?;
        Some(Self(Repr::Shared {
            text: Arc::clone(text),
            start: range.start,
            end: range.end,
        }))
    }

    /// The text.
    #[must_use]
    pub fn as_str(&self) -> &str {
        match &self.0 {
            Repr::Static(text) => text,
            // The range was checked when it was made, and the text never changes.
            Repr::Shared { text, start, end } => text.get(*start..*end).unwrap_or_default(),
        }
    }
}

impl std::ops::Deref for Text {
    type Target = str;

    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl AsRef<str> for Text {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

impl AsRef<[u8]> for Text {
    fn as_ref(&self) -> &[u8] {
        self.as_str().as_bytes()
    }
}

impl From<&'static str> for Text {
    fn from(text: &'static str) -> Self {
        Self(Repr::Static(text))
    }
}

impl From<Arc<str>> for Text {
    fn from(text: Arc<str>) -> Self {
        let end = text.len();
        Self(Repr::Shared {
            text,
            start: 0,
            end,
        })
    }
}

impl From<String> for Text {
    fn from(text: String) -> Self {
        Self::from(Arc::<str>::from(text))
    }
}

impl std::fmt::Debug for Text {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(self.as_str(), f)
    }
}

impl std::fmt::Display for Text {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl PartialEq for Text {
    fn eq(&self, other: &Self) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Eq for Text {}

impl std::hash::Hash for Text {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.as_str().hash(state);
    }
}

impl PartialEq<str> for Text {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for Text {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl PartialEq<String> for Text {
    fn eq(&self, other: &String) -> bool {
        self.as_str() == other.as_str()
    }
}

impl PartialEq<Text> for &str {
    fn eq(&self, other: &Text) -> bool {
        *self == other.as_str()
    }
}

impl Serialize for Text {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Text {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer).map(Self::from)
    }
}

/// What a follower (or a cancel) of a live reply gets instead of events.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum LiveError {
    /// The reply is unknown here: never opened, or forgotten after its retention. The stored
    /// message is what is left of it.
    #[error("no live events of this reply")]
    NotFound,
    /// The events right after the follower's position are no longer kept (the reply's
    /// buffer is bounded, or they were lost while the backend was away); read the stored
    /// reply instead.
    #[error("the events after {after} are no longer kept")]
    Trimmed {
        /// The position the follower asked to continue from.
        after: u64,
    },
    /// The producer stopped without publishing a last event (its publisher was dropped).
    #[error("the reply's producer stopped before its last event")]
    Interrupted,
    /// The backend cannot be reached (the stream's `unavailable`, an HTTP 503).
    #[error("live events are unavailable: {0}")]
    Unavailable(String),
}

/// The producer's side of one live reply, from [`crate::ports::LiveReplies::open`].
///
/// Publishing never waits for the backend and never fails the reply: the adapter buffers
/// (bounded) and writes in the background, and counts and logs what it could not write.
/// Dropping the publisher after the last event is the normal end; dropping it before ends
/// the followers' streams with [`LiveError::Interrupted`].
pub trait LivePublisher: Send {
    /// Hands over the reply's next event. The caller numbers events 1, 2, 3 … in order;
    /// an event whose number is not the next one is ignored, and so is any event after the
    /// last.
    fn publish(&mut self, event: LiveEvent);
}

/// How long a cancel of a reply not opened yet is kept for its producer: a cancel may reach
/// the live port between the reply's storing and its publisher's opening.
pub const EARLY_CANCEL: std::time::Duration = std::time::Duration::from_secs(60);

/// How long and how much of a reply the live adapters keep.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LiveOptions {
    /// How long a reply stays readable after its last event (the issue's default: 60 s).
    pub retention: std::time::Duration,
    /// At most this many events of one reply are kept (on Redis: this many stream entries,
    /// each a batch of events); older ones are dropped first, and a follower that needs them
    /// gets [`LiveError::Trimmed`].
    pub max_events: usize,
}

impl Default for LiveOptions {
    fn default() -> Self {
        Self {
            retention: std::time::Duration::from_secs(60),
            max_events: 16_384,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_slice_shares_its_text_and_reads_as_its_range() {
        let frame: Arc<str> = Arc::from("id: 3\nevent: delta\ndata: {\"text\":\"é\"}\n\n");
        let start = frame.find("{").unwrap();
        let data = Text::slice(&frame, start..frame.len() - 2).unwrap();
        assert_eq!(data, "{\"text\":\"é\"}");
        assert_eq!(
            Arc::strong_count(&frame),
            2,
            "the slice holds the frame, not a copy"
        );
        let copy = data.clone();
        assert_eq!(Arc::strong_count(&frame), 3);
        assert_eq!(copy.as_str(), data.as_str());
        // Outside the text, or inside a character: no slice.
        assert!(Text::slice(&frame, 0..frame.len() + 1).is_none());
        let e = frame.find('é').unwrap();
        assert!(Text::slice(&frame, e..e + 1).is_none());
    }

    #[test]
    fn texts_compare_serialize_and_read_back_by_their_content() {
        let shared: Arc<str> = Arc::from("xdeltax");
        let sliced = Text::slice(&shared, 1..6).unwrap();
        let fixed = Text::from("delta");
        assert_eq!(sliced, fixed);
        assert_eq!(sliced, "delta");
        assert_eq!(Text::from("delta".to_owned()), fixed);
        let event = LiveEvent::last(2, sliced, "{\"a\":1}");
        let json = serde_json::to_string(&event).unwrap();
        assert_eq!(
            json,
            r#"{"id":2,"name":"delta","data":"{\"a\":1}","last":true}"#
        );
        let back: LiveEvent = serde_json::from_str(&json).unwrap();
        assert_eq!(back, event);
        assert_eq!(format!("{:?}", back.name), "\"delta\"");
    }
}
