//! `MemoryLiveReplies`: the in-process `LiveReplies`, the default when no Redis is configured.
//!
//! Each live reply keeps its events in one bounded buffer; followers do not get queues of
//! their own but a position in that buffer, and a `watch` channel wakes them when it grows.
//! So the producer only appends under a short lock and never waits for anyone, and a slow
//! follower costs nothing until it reads again (or finds its events dropped: `Trimmed`).
//! Finished replies are forgotten lazily, on the next call after their retention: ended
//! replies queue in the order they ended, so each call forgets only what has expired (O(1)
//! amortised), never walking the replies still kept.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, PoisonError, Weak};
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
    /// The kept events, consecutive, oldest first. Their name and data are shared with the
    /// producer's frame and with every follower that reads them (a clone is a reference
    /// count), not copied.
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

    /// Wakes the followers, if there are any: a reply nobody follows (the usual case) pays
    /// no lock and no wake-up per event. A follower subscribes before it reads the buffer,
    /// and the buffer's lock orders that read after an event's append: one that subscribed
    /// too late to be counted here reads the event itself.
    fn notify(&self) {
        if self.changed.receiver_count() > 0 {
            self.changed.send_modify(|v| *v = v.wrapping_add(1));
        }
    }
}

#[derive(Default)]
struct Replies {
    by_id: Mutex<HashMap<MessageId, Arc<Reply>>>,
    /// The replies that ended, in the order they ended (each pushed under this lock with the
    /// instant it ended, so the instants never go back): the oldest expire first.
    ended: Mutex<VecDeque<(Instant, MessageId, Weak<Reply>)>>,
    /// Cancels of replies not opened (yet), and when they came.
    early_cancels: Mutex<HashMap<MessageId, Instant>>,
}

impl Replies {
    /// Marks `reply` (`id`) ended now, finished or abandoned, and queues it for forgetting.
    fn end(&self, id: MessageId, reply: &Arc<Reply>, finished: bool) {
        {
            let mut ended = self.ended.lock().unwrap_or_else(PoisonError::into_inner);
            let now = Instant::now();
            let mut buffer = reply.lock();
            buffer.end = if finished {
                End::Finished(now)
            } else {
                End::Abandoned(now)
            };
            // Nothing more comes: give back what the buffer's doubling reserved.
            buffer.events.shrink_to_fit();
            ended.push_back((now, id, Arc::downgrade(reply)));
        }
        reply.notify();
    }
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

    fn expired(&self, ended_at: Instant, now: Instant) -> bool {
        now.saturating_duration_since(ended_at) >= self.options.retention
    }

    /// Forgets the replies whose retention has passed: only those, from the front of the
    /// queue of ended replies. Takes the map's lock once, and only when there is some.
    fn forget_expired(&self, now: Instant) {
        let expired: Vec<(MessageId, Weak<Reply>)> = {
            let mut ended = self
                .replies
                .ended
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            let due = ended
                .iter()
                .take_while(|(at, _, _)| self.expired(*at, now))
                .count();
            ended
                .drain(..due)
                .map(|(_, id, reply)| (id, reply))
                .collect()
        };
        if expired.is_empty() {
            return;
        }
        let mut by_id = self.map();
        for (id, reply) in expired {
            // The id may have been opened again since: forget only the reply that ended.
            if by_id
                .get(&id)
                .is_some_and(|kept| std::ptr::eq(Arc::as_ptr(kept), reply.as_ptr()))
            {
                by_id.remove(&id);
            }
        }
    }

    fn early_cancels(&self) -> std::sync::MutexGuard<'_, HashMap<MessageId, Instant>> {
        self.replies
            .early_cancels
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn find(&self, reply: MessageId) -> Option<Arc<Reply>> {
        let now = Instant::now();
        self.forget_expired(now);
        let reply = self.map().get(&reply).cloned()?;
        // Expired but not forgotten yet (it ended on another thread meanwhile): gone all the same.
        let ended_at = reply.lock().ended_at();
        if ended_at.is_some_and(|at| self.expired(at, now)) {
            return None;
        }
        Some(reply)
    }
}

struct MemoryPublisher {
    id: MessageId,
    reply: Arc<Reply>,
    replies: Arc<Replies>,
    max_events: usize,
    done: bool,
}

impl LivePublisher for MemoryPublisher {
    fn publish(&mut self, event: LiveEvent) {
        if self.done {
            return;
        }
        let last = event.last;
        {
            let mut buffer = self.reply.lock();
            if event.id != buffer.newest + 1 {
                return;
            }
            buffer.newest = event.id;
            buffer.events.push_back(event);
            while buffer.events.len() > self.max_events {
                buffer.events.pop_front();
            }
        }
        if last {
            self.done = true;
            self.replies.end(self.id, &self.reply, true);
        } else {
            self.reply.notify();
        }
    }
}

impl Drop for MemoryPublisher {
    fn drop(&mut self) {
        if !self.done {
            self.replies.end(self.id, &self.reply, false);
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
        self.forget_expired(Instant::now());
        self.map().insert(reply, Arc::clone(&state));
        if self
            .early_cancels()
            .remove(&reply)
            .is_some_and(|at| at.elapsed() < EARLY_CANCEL)
        {
            cancel.cancel(CancelReason::User);
        }
        Box::new(MemoryPublisher {
            id: reply,
            reply: state,
            replies: Arc::clone(&self.replies),
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
                        // Numbers are consecutive: the first new event's index is known.
                        let skip = buffer.events.front().map_or(0, |first| {
                            usize::try_from((position + 1).saturating_sub(first.id))
                                .unwrap_or(usize::MAX)
                        });
                        buffer.events.iter().skip(skip).cloned().collect()
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn short_retention() -> MemoryLiveReplies {
        MemoryLiveReplies::new(LiveOptions {
            retention: Duration::from_millis(30),
            ..LiveOptions::default()
        })
    }

    async fn finished(live: &MemoryLiveReplies, reply: MessageId) {
        let mut publisher = live.open(reply, CancelToken::new()).await;
        publisher.publish(LiveEvent::last(1, "done", "{}"));
    }

    #[tokio::test]
    async fn a_follower_reads_the_published_text_itself_not_a_copy() {
        let live = MemoryLiveReplies::default();
        let reply = MessageId::new();
        let mut publisher = live.open(reply, CancelToken::new()).await;
        let frame: std::sync::Arc<str> = std::sync::Arc::from("data: {\"text\":\" é\"}\n\n");
        let data = confab_core::live::Text::slice(&frame, 6..frame.len() - 2).unwrap();
        publisher.publish(LiveEvent::new(1, "delta", data.clone()));
        let mut stream = live.follow(reply, 0).await.unwrap();
        let read = futures::StreamExt::next(&mut stream)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(read, LiveEvent::new(1, "delta", r#"{"text":" é"}"#));
        assert!(std::ptr::eq(read.data.as_str(), data.as_str()));
    }

    /// Issue 15: a call forgets what has expired, and keeps nothing of it.
    #[tokio::test]
    async fn expired_replies_are_forgotten_by_the_next_call_and_live_ones_kept() {
        let live = short_retention();
        let gone: Vec<MessageId> = (0..100).map(|_| MessageId::new()).collect();
        for reply in &gone {
            finished(&live, *reply).await;
        }
        let live_reply = MessageId::new();
        let _publisher = live.open(live_reply, CancelToken::new()).await;
        tokio::time::sleep(Duration::from_millis(60)).await;
        assert!(matches!(
            live.follow(gone[0], 0).await,
            Err(LiveError::NotFound)
        ));
        assert_eq!(live.map().len(), 1, "only the live reply is kept");
        assert!(live.replies.ended.lock().unwrap().is_empty());
        assert!(live.follow(live_reply, 0).await.is_ok());
    }

    /// The queue entry of a reply that ended does not forget the same id opened again.
    #[tokio::test]
    async fn a_reply_opened_again_is_not_forgotten_with_its_earlier_self() {
        let live = short_retention();
        let reply = MessageId::new();
        finished(&live, reply).await;
        let mut again = live.open(reply, CancelToken::new()).await;
        tokio::time::sleep(Duration::from_millis(60)).await;
        finished(&live, MessageId::new()).await;
        let mut stream = live.follow(reply, 0).await.expect("the reply opened again");
        again.publish(LiveEvent::last(1, "done", "again"));
        let event = futures::StreamExt::next(&mut stream).await;
        assert_eq!(event, Some(Ok(LiveEvent::last(1, "done", "again"))));
    }
}
