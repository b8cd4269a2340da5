//! A reply's live events: what the producer of a reply publishes and any follower (another
//! tab, device or replica) reads, by number, from any point on. The port is
//! [`crate::ports::LiveReplies`]; this module holds its values and its error.

use serde::{Deserialize, Serialize};

/// One event of a reply's stream, as every way of reading it numbers it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LiveEvent {
    /// The event's number within its reply: 1, 2, 3 … (the SSE `id:`).
    pub id: u64,
    /// What the event is (the SSE `event:` name: `user_message`, `delta`, `done`, …).
    pub name: String,
    /// The payload, opaque to the port (the SSE `data:`, one line of JSON).
    pub data: String,
    /// Whether this is the reply's last event (`done` or `error`): nothing follows it.
    pub last: bool,
}

impl LiveEvent {
    /// An event that more events follow.
    #[must_use]
    pub fn new(id: u64, name: impl Into<String>, data: impl Into<String>) -> Self {
        Self {
            id,
            name: name.into(),
            data: data.into(),
            last: false,
        }
    }

    /// The reply's last event.
    #[must_use]
    pub fn last(id: u64, name: impl Into<String>, data: impl Into<String>) -> Self {
        Self {
            last: true,
            ..Self::new(id, name, data)
        }
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
    /// How long a reply stays readable after its last event (the default: 60 s).
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
