//! `MemoryLiveReplies`: the in-process `LiveReplies`, the default when no Redis is configured.
//!
//! Each live reply keeps its events in one bounded buffer; followers do not get queues of
//! their own but a position in that buffer, and a `watch` channel wakes them when it grows.
//! So the producer only appends under a short lock and never waits for anyone, and a slow
//! follower costs nothing until it reads again (or finds its events dropped: `Trimmed`).
//! Finished replies are forgotten lazily, on the next call after their retention.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use async_trait::async_trait;
use confab_core::ids::MessageId;
use confab_core::live::{EARLY_CANCEL, LiveError, LiveEvent, LiveOptions, LivePublisher};
use confab_core::ports::{LiveEventStream, LiveReplies};
use confab_core::{CancelReason, CancelToken};
use tokio::sync::watch;

/// How a reply's stream stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum End {
    /// The producer is still publishing.
    Live,
    /// The last event was published at this instant.
    Finished(Instant),
    /// The publisher was dropped before the last event, at this instant.
    Abandoned(Instant),
}

struct Buffer {
    /// The kept events, consecutive, oldest first.
    events: VecDeque<LiveEvent>,
    /// The number of the newest event published (0 before the first).
    newest: u64,
    end: End,
}

impl Buffer {
    /// The number of the oldest kept event's predecessor: a follower at or after it loses
    /// nothing.
    fn kept_after(&self) -> u64 {
        self.events
            .front()
            .map_or(self.newest, |first| first.id.saturating_sub(1))
    }

    fn ended_at(&self) -> Option<Instant> {
        match self.end {
            End::Live => None,
            End::Finished(at) | End::Abandoned(at) => Some(at),
        }
    }
}

struct Reply {
    buffer: Mutex<Buffer>,
    /// Bumped on every change of `buffer`; followers wait on it.
    changed: watch::Sender<u64>,
    cancel: CancelToken,
}

impl Reply {
    fn lock(&self) -> std::sync::MutexGuard<'_, Buffer> {
        self.buffer.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn notify(&self) {
        self.changed.send_modify(|v| *v = v.wrapping_add(1));
    }
}

#[derive(Default)]
struct Replies {
    by_id: Mutex<HashMap<MessageId, Arc<Reply>>>,
    /// Cancels of replies not opened (yet), and when they came.
    early_cancels: Mutex<HashMap<MessageId, Instant>>,
}

/// The in-process `LiveReplies`: followers in this process only.
#[derive(Clone)]
pub struct MemoryLiveReplies {
    replies: Arc<Replies>,
    options: LiveOptions,
}

impl Default for MemoryLiveReplies {
    fn default() -> Self {
        Self::new(LiveOptions::default())
    }
}

impl MemoryLiveReplies {
    #[must_use]
    pub fn new(options: LiveOptions) -> Self {
        Self {
            replies: Arc::new(Replies::default()),
            options: LiveOptions {
                max_events: options.max_events.max(1),
                ..options
            },
        }
    }

    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<MessageId, Arc<Reply>>> {
        self.replies
            .by_id
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn expired(&self, reply: &Reply, now: Instant) -> bool {
        reply
            .lock()
            .ended_at()
            .is_some_and(|at| now.saturating_duration_since(at) >= self.options.retention)
    }

    fn forget_expired(&self, by_id: &mut HashMap<MessageId, Arc<Reply>>, now: Instant) {
        by_id.retain(|_, reply| !self.expired(reply, now));
    }

    fn early_cancels(&self) -> std::sync::MutexGuard<'_, HashMap<MessageId, Instant>> {
        self.replies
            .early_cancels
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn find(&self, reply: MessageId) -> Option<Arc<Reply>> {
        let mut by_id = self.map();
        self.forget_expired(&mut by_id, Instant::now());
        by_id.get(&reply).cloned()
    }
}

struct MemoryPublisher {
    reply: Arc<Reply>,
    max_events: usize,
    done: bool,
}

impl LivePublisher for MemoryPublisher {
    fn publish(&mut self, event: LiveEvent) {
        if self.done {
            return;
        }
        {
            let mut buffer = self.reply.lock();
            if event.id != buffer.newest + 1 {
                return;
            }
            buffer.newest = event.id;
            if event.last {
                buffer.end = End::Finished(Instant::now());
                self.done = true;
            }
            buffer.events.push_back(event);
            while buffer.events.len() > self.max_events {
                buffer.events.pop_front();
            }
        }
        self.reply.notify();
    }
}

impl Drop for MemoryPublisher {
    fn drop(&mut self) {
        if !self.done {
            self.reply.lock().end = End::Abandoned(Instant::now());
            self.reply.notify();
        }
    }
}

#[async_trait]
impl LiveReplies for MemoryLiveReplies {
    async fn open(&self, reply: MessageId, cancel: CancelToken) -> Box<dyn LivePublisher> {
        let (changed, _) = watch::channel(0);
        let state = Arc::new(Reply {
            buffer: Mutex::new(Buffer {
                events: VecDeque::new(),
                newest: 0,
                end: End::Live,
            }),
            changed,
            cancel: cancel.clone(),
        });
        {
            let mut by_id = self.map();
            self.forget_expired(&mut by_id, Instant::now());
            by_id.insert(reply, Arc::clone(&state));
        }
        if self
            .early_cancels()
            .remove(&reply)
            .is_some_and(|at| at.elapsed() < EARLY_CANCEL)
        {
            cancel.cancel(CancelReason::User);
        }
        Box::new(MemoryPublisher {
            reply: state,
            max_events: self.options.max_events,
            done: false,
        })
    }

    async fn follow(&self, reply: MessageId, after: u64) -> Result<LiveEventStream, LiveError> {
        let reply = self.find(reply).ok_or(LiveError::NotFound)?;
        let mut changed = reply.changed.subscribe();
        let stream = async_stream::stream! {
            let mut position = after;
            loop {
                changed.borrow_and_update();
                // Take what is new under the lock, yield it after.
                let (batch, end, trimmed) = {
                    let buffer = reply.lock();
                    let trimmed = position < buffer.kept_after();
                    let batch: Vec<LiveEvent> = if trimmed {
                        Vec::new()
                    } else {
                        buffer.events.iter().filter(|e| e.id > position).cloned().collect()
                    };
                    (batch, buffer.end, trimmed)
                };
                if trimmed {
                    yield Err(LiveError::Trimmed { after: position });
                    return;
                }
                for event in batch {
                    position = event.id;
                    let last = event.last;
                    yield Ok(event);
                    if last {
                        return;
                    }
                }
                // The batch was taken under the same lock as `end`: it held every event
                // published so far.
                match end {
                    End::Live => {
                        if changed.changed().await.is_err() {
                            return;
                        }
                    }
                    End::Finished(_) => return,
                    End::Abandoned(_) => {
                        yield Err(LiveError::Interrupted);
                        return;
                    }
                }
            }
        };
        Ok(Box::pin(stream))
    }

    async fn cancel(&self, reply: MessageId) -> Result<(), LiveError> {
        match self.find(reply) {
            Some(reply) => {
                if reply.lock().end == End::Live {
                    reply.cancel.cancel(CancelReason::User);
                }
            }
            None => {
                let now = Instant::now();
                let mut early = self.early_cancels();
                early.retain(|_, at| now.saturating_duration_since(*at) < EARLY_CANCEL);
                early.insert(reply, now);
            }
        }
        Ok(())
    }
}
