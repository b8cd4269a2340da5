//! The process's one pub/sub connection to Redis, shared by every follower in it.
//!
//! It carries the cancels (one channel for all replicas) and the live tail of each reply
//! followed here: a producer publishes every stream entry it writes on the reply's channel
//! too, in the same round trip, and this connection is subscribed to the channels of the
//! replies that have local followers. Each message is parsed once and handed to the reply's
//! local followers through a bounded broadcast (the in-process adapter's fan-out), so a
//! follower costs no connection and no blocking read of its own. The stream stays the
//! source of truth: a follower that finds a gap (a message lost, or a lagging receiver)
//! reads what it missed from the stream.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use confab_core::ids::MessageId;
use confab_core::live::{LiveError, LiveEvent};
use confab_core::{CancelReason, CancelToken};
use futures::StreamExt;
use redis::RedisError;
use redis::aio::PubSubSink;
use tokio::sync::{broadcast, mpsc, oneshot, watch};

/// Messages a follower may fall behind by before it reads from the stream instead.
const FOLLOWER_QUEUE: usize = 1024;

/// The producers of this process, by reply: what a cancel reaches.
pub(crate) type Producers = Mutex<HashMap<MessageId, CancelToken>>;

/// One entry of a reply's stream (and of its channel), parsed.
#[derive(Debug)]
pub(crate) enum Entry {
    /// The reply was opened.
    Opened,
    /// Events, consecutive, the first numbered `first`.
    Events { first: u64, events: Vec<LiveEvent> },
    /// The producer stopped after event `after` without a last event.
    Interrupted { after: u64 },
}

/// What a reply's local followers are handed.
#[derive(Clone, Debug)]
pub(crate) enum Delivery {
    /// An entry, as the producer wrote it to the stream.
    Entry(Arc<Entry>),
    /// The subscription was lost: Redis is away.
    Lost(LiveError),
}

/// The channel on which a reply's entries are published.
pub(crate) fn live_channel(prefix: &str, reply: MessageId) -> String {
    format!("{prefix}{{{reply}}}:live")
}

/// The message published with an entry: `<events' last number> <first> <events JSON>`, or
/// `<after> end` for an interrupted reply.
pub(crate) fn message_of_events(last: u64, first: u64, events_json: &str) -> String {
    format!("{last} {first} {events_json}")
}

pub(crate) fn message_of_end(after: u64) -> String {
    format!("{after} end")
}

fn parse_message(payload: &str) -> Option<Entry> {
    let (last, rest) = payload.split_once(' ')?;
    let last: u64 = last.parse().ok()?;
    if rest == "end" {
        return Some(Entry::Interrupted { after: last });
    }
    let (first, events) = rest.split_once(' ')?;
    let first: u64 = first.parse().ok()?;
    let events: Vec<LiveEvent> = serde_json::from_str(events).ok()?;
    (events.last().map(|e| e.id) == Some(last)).then_some(Entry::Events { first, events })
}

/// A reply followed in this process.
struct Channel {
    followers: usize,
    deliveries: broadcast::Sender<Delivery>,
    /// `None` until the subscription is confirmed (or failed); `Some(Err)` while it is lost.
    subscribed: watch::Sender<Option<Result<(), String>>>,
}

enum Request {
    Subscribe(String),
    /// Unsubscribes if nobody follows the channel any more.
    Release(String),
}

/// The local followers' side of the subscriber.
pub(crate) struct Followers {
    channels: Mutex<HashMap<String, Channel>>,
    requests: mpsc::UnboundedSender<Request>,
}

/// A follower's place on a channel: its deliveries, and its release when dropped.
pub(crate) struct Joined {
    pub(crate) deliveries: broadcast::Receiver<Delivery>,
    followers: Arc<Followers>,
    channel: String,
}

impl Drop for Joined {
    fn drop(&mut self) {
        let mut channels = self.followers.lock();
        if let Some(channel) = channels.get_mut(&self.channel) {
            channel.followers = channel.followers.saturating_sub(1);
            if channel.followers == 0 {
                let _ = self
                    .followers
                    .requests
                    .send(Request::Release(self.channel.clone()));
            }
        }
    }
}

impl Followers {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Channel>> {
        self.channels.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Joins the followers of `channel`; returns once the process is subscribed to it, so
    /// that every entry published from then on is delivered.
    pub(crate) async fn join(
        self: &Arc<Self>,
        channel: &str,
        patience: Duration,
    ) -> Result<Joined, LiveError> {
        let (deliveries, mut subscribed) = {
            let mut channels = self.lock();
            let entry = channels.entry(channel.to_owned()).or_insert_with(|| {
                let _ = self.requests.send(Request::Subscribe(channel.to_owned()));
                Channel {
                    followers: 0,
                    deliveries: broadcast::channel(FOLLOWER_QUEUE).0,
                    subscribed: watch::channel(None).0,
                }
            });
            entry.followers += 1;
            (entry.deliveries.subscribe(), entry.subscribed.subscribe())
        };
        // From here on, dropping `joined` releases the place.
        let joined = Joined {
            deliveries,
            followers: Arc::clone(self),
            channel: channel.to_owned(),
        };
        let confirmed = tokio::time::timeout(patience, subscribed.wait_for(Option::is_some)).await;
        match confirmed {
            Ok(Ok(state)) => match state.as_ref() {
                Some(Ok(())) => Ok(joined),
                Some(Err(e)) => Err(LiveError::Unavailable(e.clone())),
                None => Err(LiveError::Unavailable("not subscribed".into())),
            },
            Ok(Err(_)) => Err(LiveError::Unavailable("the subscriber stopped".into())),
            Err(_) => Err(LiveError::Unavailable(
                "Redis did not confirm the subscription in time".into(),
            )),
        }
    }

    /// Whether a follower of this process (or thread) is on `channel`.
    #[cfg(test)]
    pub(crate) fn is_followed(&self, channel: &str) -> bool {
        self.lock().get(channel).is_some_and(|c| c.followers > 0)
    }

    /// Hands `entry` to the local followers of `channel`, if any.
    fn deliver(&self, channel: &str, payload: &str) {
        let channels = self.lock();
        let Some(followed) = channels.get(channel) else {
            return;
        };
        match parse_message(payload) {
            Some(entry) => {
                let _ = followed.deliveries.send(Delivery::Entry(Arc::new(entry)));
            }
            None => tracing::warn!(channel, "live replies: a malformed live message; ignored"),
        }
    }

    /// The connection is lost: every follower is told, and new joins fail until it is back.
    fn lose_all(&self, error: &str) {
        for channel in self.lock().values() {
            let _ = channel
                .deliveries
                .send(Delivery::Lost(LiveError::Unavailable(error.to_owned())));
            channel.subscribed.send_replace(Some(Err(error.to_owned())));
        }
    }
}

/// Aborts the subscriber when the last clone of the adapter is dropped.
pub(crate) struct AbortOnDrop(tokio::task::AbortHandle);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Starts a subscriber; returns once it is connected and listens for cancels on
/// `cancel_channel` if given (or could not at first). The process's subscriber listens for
/// cancels; a worker's own carries only the live tails followed on that worker.
pub(crate) async fn start(
    client: redis::Client,
    cancel_channel: Option<String>,
    producers: Arc<Producers>,
    retry: (Duration, Duration),
) -> Result<(Arc<Followers>, AbortOnDrop), RedisError> {
    let (requests, inbox) = mpsc::unbounded_channel();
    let followers = Arc::new(Followers {
        channels: Mutex::default(),
        requests,
    });
    let (ready_tx, ready_rx) = oneshot::channel();
    let task = tokio::spawn(run(
        client,
        cancel_channel,
        producers,
        Arc::clone(&followers),
        inbox,
        ready_tx,
        retry,
    ));
    let abort = AbortOnDrop(task.abort_handle());
    match ready_rx.await {
        Ok(Ok(())) => Ok((followers, abort)),
        Ok(Err(e)) => Err(e),
        Err(_) => Err(RedisError::from((
            redis::ErrorKind::Io,
            "the live replies' subscriber stopped",
        ))),
    }
}

/// Subscribes, dispatches messages and (un)subscriptions, and connects again after the
/// connection drops, resubscribing every followed channel.
async fn run(
    client: redis::Client,
    cancel_channel: Option<String>,
    producers: Arc<Producers>,
    followers: Arc<Followers>,
    mut inbox: mpsc::UnboundedReceiver<Request>,
    ready: oneshot::Sender<Result<(), RedisError>>,
    (retry_min, retry_max): (Duration, Duration),
) {
    let mut ready = Some(ready);
    let mut wait = retry_min;
    loop {
        let connected = async {
            let (mut sink, messages) = client.get_async_pubsub().await?.split();
            let mut channels: Vec<String> = cancel_channel.iter().cloned().collect();
            channels.extend(followers.lock().keys().cloned());
            if !channels.is_empty() {
                sink.subscribe(&channels).await?;
            }
            Ok::<_, RedisError>((sink, messages))
        }
        .await;
        match connected {
            Ok((mut sink, mut messages)) => {
                if let Some(ready) = ready.take() {
                    let _ = ready.send(Ok(()));
                } else {
                    tracing::info!("live replies: subscribed again");
                }
                wait = retry_min;
                for channel in followers.lock().values() {
                    channel.subscribed.send_replace(Some(Ok(())));
                }
                // (Un)subscriptions are done one after the other, in the order asked, by a
                // future of their own that this loop keeps polling: a round trip for one
                // never holds up the messages of the channels already followed.
                let requests = async {
                    while let Some(request) = inbox.recv().await {
                        if let Err(e) = handle(&followers, &mut sink, request).await {
                            tracing::warn!(error = %e, "live replies: a subscription failed");
                            return Some(e);
                        }
                    }
                    None
                };
                tokio::pin!(requests);
                loop {
                    tokio::select! {
                        biased;
                        message = messages.next() => {
                            let Some(message) = message else { break };
                            let Ok(payload) = std::str::from_utf8(message.get_payload_bytes()) else {
                                continue;
                            };
                            let channel = message.get_channel_name();
                            if cancel_channel.as_deref() == Some(channel) {
                                cancel(&producers, payload);
                            } else {
                                followers.deliver(channel, payload);
                            }
                        }
                        failed = &mut requests => match failed {
                            // The adapter is gone: nobody is left to ask for anything.
                            None => return,
                            Some(_) => break,
                        },
                    }
                }
                tracing::warn!("live replies: the subscription was lost; subscribing again");
                followers.lose_all("the connection to Redis was lost");
            }
            Err(e) => {
                if let Some(ready) = ready.take() {
                    let _ = ready.send(Err(e));
                    return;
                }
                tracing::warn!(error = %e, "live replies: cannot subscribe; retrying");
                followers.lose_all(&e.to_string());
            }
        }
        // While away: subscriptions asked for fail at once, releases are done.
        let retry_at = tokio::time::Instant::now() + wait;
        loop {
            tokio::select! {
                () = tokio::time::sleep_until(retry_at) => break,
                request = inbox.recv() => match request {
                    None => return,
                    Some(Request::Subscribe(channel)) => {
                        if let Some(followed) = followers.lock().get(&channel) {
                            followed.subscribed.send_replace(Some(Err("Redis is away".into())));
                        }
                    }
                    Some(Request::Release(channel)) => {
                        release(&followers, &channel);
                    }
                },
            }
        }
        wait = (wait * 2).min(retry_max);
    }
}

/// Removes `channel` when nobody follows it; says whether it did.
fn release(followers: &Followers, channel: &str) -> bool {
    let mut channels = followers.lock();
    if channels.get(channel).is_some_and(|c| c.followers == 0) {
        channels.remove(channel);
        return true;
    }
    false
}

async fn handle(
    followers: &Followers,
    sink: &mut PubSubSink,
    request: Request,
) -> Result<(), RedisError> {
    match request {
        Request::Subscribe(channel) => {
            if !followers.lock().contains_key(&channel) {
                return Ok(());
            }
            let result = sink.subscribe(&channel).await;
            if let Some(followed) = followers.lock().get(&channel) {
                followed.subscribed.send_replace(Some(
                    result.as_ref().map(|_| ()).map_err(ToString::to_string),
                ));
            }
            result
        }
        Request::Release(channel) => {
            if release(followers, &channel) {
                sink.unsubscribe(&channel).await?;
            }
            Ok(())
        }
    }
}

fn cancel(producers: &Producers, payload: &str) {
    let Ok(reply) = payload.parse::<MessageId>() else {
        return;
    };
    let token = producers
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .get(&reply)
        .cloned();
    if let Some(token) = token {
        token.cancel(CancelReason::User);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_message_says_the_entry_it_was_published_with() {
        let events = vec![
            LiveEvent::new(3, "delta", "a b"),
            LiveEvent::last(4, "done", "{}"),
        ];
        let json = serde_json::to_string(&events).unwrap();
        match parse_message(&message_of_events(4, 3, &json)) {
            Some(Entry::Events { first, events: got }) => {
                assert_eq!(first, 3);
                assert_eq!(got, events);
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            parse_message(&message_of_end(7)),
            Some(Entry::Interrupted { after: 7 })
        ));
        assert!(
            parse_message(&message_of_events(5, 3, &json)).is_none(),
            "a wrong last number"
        );
        assert!(parse_message("nonsense").is_none());
    }
}
