//! `RedisLiveReplies`: a reply's live events on a Redis stream, shared by every replica.
//!
//! Layout of one reply, under the configured prefix:
//! - `<prefix>{<reply>}:events`, a stream. Entry `0-1` marks the reply as opened. Entry
//!   `<n>-0` is a batch of consecutive events ending with event `n` (fields `first`, the
//!   number of its first event, and `events`, JSON). Entry `<n>-1` (or `0-2`) says the
//!   producer stopped after event `n` without a last event (field `end`). Since entry ids
//!   grow with event numbers, `XREAD … <after>-0` returns exactly the entries holding events
//!   above `after`, and rewriting an entry already written fails harmlessly (a retry).
//! - `<prefix>{<reply>}:live`, a pub/sub channel: each entry is published there too, in the
//!   same round trip as its `XADD`, for the replicas that have followers of the reply (see
//!   `crate::subscriber`: one subscription per process, not a connection per follower).
//! - `<prefix>cancel`, a pub/sub channel whose messages are reply ids; every replica listens
//!   and cancels the producer it holds, if any.
//! - `<prefix>{<reply>}:cancelled`, set by a cancel for a minute: a producer that opens the
//!   reply after the cancel was published (nobody held it then) finds it and stops.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::thread::ThreadId;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use confab_core::ids::MessageId;
use confab_core::live::{EARLY_CANCEL, LiveError, LiveEvent, LiveOptions, LivePublisher};
use confab_core::ports::{LiveEventStream, LiveReplies};
use confab_core::{CancelReason, CancelToken};
use redis::RedisError;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::streams::{StreamId, StreamMaxlen, StreamRangeReply, StreamReadReply};
use tokio::sync::{Notify, broadcast};

use crate::subscriber::{
    AbortOnDrop, Delivery, Entry, Followers, Producers, live_channel, message_of_end,
    message_of_events,
};

/// At most this many events go into one stream entry.
const MAX_BATCH: usize = 256;
/// How long a follower waits for its reply's next entry before it checks the stream (for an
/// entry whose message was lost, or a reply forgotten after its producer died).
const BLOCK: Duration = Duration::from_secs(5);
/// How long opening a reply waits for Redis to write its first entry before it lets the
/// reply go on (and its writer keeps trying).
const OPEN_WAIT: Duration = Duration::from_millis(250);
/// Connecting, and any command that does not block, gives up after this long.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(3);
/// A live reply's key lives this long past its latest entry (a crashed producer's reply is
/// forgotten then).
const LIVE_TTL: Duration = Duration::from_secs(15 * 60);
/// A live reply's entries set its key's expiry again once this long has passed since it
/// was last set (and with the last entry), not with every entry: the key lives between
/// `LIVE_TTL - LIVE_TTL_REFRESH` and `LIVE_TTL` past its latest entry.
const LIVE_TTL_REFRESH: Duration = Duration::from_secs(60);
/// Retries of a failed write wait from this long …
const RETRY_MIN: Duration = Duration::from_millis(100);
/// … doubling up to this long.
const RETRY_MAX: Duration = Duration::from_secs(2);

/// A thread whose own connections could not be made uses the process's for this long
/// before it tries again.
const LOCAL_RETRY: Duration = Duration::from_secs(5);

/// Counters of what the adapter could not do, for metrics and tests.
#[derive(Debug, Default)]
pub struct RedisLiveStats {
    publish_errors: AtomicU64,
    dropped_events: AtomicU64,
    entries_written: AtomicU64,
    events_written: AtomicU64,
}

impl RedisLiveStats {
    /// Writes to Redis that failed (each is retried).
    #[must_use]
    pub fn publish_errors(&self) -> u64 {
        self.publish_errors.load(Ordering::Relaxed)
    }

    /// Events dropped from a publisher's queue because Redis was away too long.
    #[must_use]
    pub fn dropped_events(&self) -> u64 {
        self.dropped_events.load(Ordering::Relaxed)
    }

    /// Stream entries written (each a batch of events): one round trip each.
    #[must_use]
    pub fn entries_written(&self) -> u64 {
        self.entries_written.load(Ordering::Relaxed)
    }

    /// Events written, in those entries.
    #[must_use]
    pub fn events_written(&self) -> u64 {
        self.events_written.load(Ordering::Relaxed)
    }
}

struct Shared {
    /// The process's connection and subscriber: cancels, and any thread without its own yet.
    conn: ConnectionManager,
    prefix: String,
    options: LiveOptions,
    producers: Arc<Producers>,
    followers: Arc<Followers>,
    stats: Arc<RedisLiveStats>,
    _subscriber: AbortOnDrop,
    client: redis::Client,
    config: ConnectionManagerConfig,
    /// Each thread's own connection and subscriber (see [`Shared::here`]).
    locals: Mutex<HashMap<ThreadId, Slot>>,
}

/// A thread's own connection to Redis and pub/sub subscriber, their tasks on its runtime.
///
/// A reply's writer and followers run on the actix worker that serves their request; with
/// the process's one connection and subscriber on the main runtime, every entry crossed
/// threads twice on the producing replica (the writer to the connection's task and back)
/// and twice on the following one (the subscriber's task, then the follower's worker): four
/// wake-ups of another thread per delta that the in-process path does not pay. With a
/// connection and a subscriber per worker, an entry is written, and delivered to a
/// follower, by the thread that already runs it (docs/benchmarks.md, "Live replies").
struct Local {
    conn: ConnectionManager,
    followers: Arc<Followers>,
    _subscriber: AbortOnDrop,
}

enum Slot {
    /// A task of the thread is connecting; the process's connections serve it meanwhile.
    Connecting,
    /// The last try failed then (Redis away): the process's connections serve the thread.
    Failed(Instant),
    Ready(Arc<Local>),
}

/// The connection and the followers a caller on this thread uses.
struct Here {
    conn: ConnectionManager,
    followers: Arc<Followers>,
}

impl Shared {
    fn key(&self, reply: MessageId) -> String {
        events_key(&self.prefix, reply)
    }

    /// This thread's own connection and subscriber, or the process's until they exist: the
    /// first call on a thread starts connecting them in a task of its runtime and never
    /// waits for it (an open reply must not wait for a Redis that does not answer).
    fn here(self: &Arc<Self>) -> Here {
        let thread = std::thread::current().id();
        let mut locals = self.locals.lock().unwrap_or_else(PoisonError::into_inner);
        match locals.get(&thread) {
            Some(Slot::Ready(local)) => {
                return Here {
                    conn: local.conn.clone(),
                    followers: Arc::clone(&local.followers),
                };
            }
            Some(Slot::Connecting) => {}
            Some(Slot::Failed(at)) if at.elapsed() < LOCAL_RETRY => {}
            Some(Slot::Failed(_)) | None => {
                if tokio::runtime::Handle::try_current().is_ok() {
                    locals.insert(thread, Slot::Connecting);
                    tokio::spawn(connect_local(
                        Arc::downgrade(self),
                        thread,
                        self.client.clone(),
                        self.config.clone(),
                    ));
                }
            }
        }
        Here {
            conn: self.conn.clone(),
            followers: Arc::clone(&self.followers),
        }
    }
}

/// Makes `thread`'s own connection and subscriber (see [`Local`]).
async fn connect_local(
    shared: Weak<Shared>,
    thread: ThreadId,
    client: redis::Client,
    config: ConnectionManagerConfig,
) {
    let made = async {
        let conn = ConnectionManager::new_with_config(client.clone(), config).await?;
        let (followers, subscriber) =
            crate::subscriber::start(client, None, Arc::default(), (RETRY_MIN, RETRY_MAX)).await?;
        Ok::<_, RedisError>(Local {
            conn,
            followers,
            _subscriber: subscriber,
        })
    }
    .await;
    let Some(shared) = shared.upgrade() else {
        return;
    };
    let slot = match made {
        Ok(local) => Slot::Ready(Arc::new(local)),
        Err(e) => {
            tracing::debug!(error = %e, "live replies: a worker's own connections to Redis failed; the process's serve it");
            Slot::Failed(Instant::now())
        }
    };
    shared
        .locals
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .insert(thread, slot);
}

fn events_key(prefix: &str, reply: MessageId) -> String {
    format!("{prefix}{{{reply}}}:events")
}

/// Set by a cancel, for a producer that opens its reply after it (kept [`EARLY_CANCEL`]).
fn cancelled_key(prefix: &str, reply: MessageId) -> String {
    format!("{prefix}{{{reply}}}:cancelled")
}

fn cancel_channel(prefix: &str) -> String {
    format!("{prefix}cancel")
}

fn unavailable(e: &RedisError) -> LiveError {
    LiveError::Unavailable(e.to_string())
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX).max(1)
}

/// The `LiveReplies` of every replica sharing one Redis.
#[derive(Clone)]
pub struct RedisLiveReplies {
    shared: Arc<Shared>,
}

impl RedisLiveReplies {
    /// Connects to `url` (`redis://host:port/db`), keeping every key under `prefix` (e.g.
    /// `confab:live:`), and starts listening for cancels.
    ///
    /// # Errors
    /// `Unavailable` when Redis cannot be reached now.
    pub async fn connect(
        url: &str,
        prefix: impl Into<String>,
        options: LiveOptions,
    ) -> Result<Self, LiveError> {
        let prefix = prefix.into();
        let client = crate::client(url).map_err(|e| unavailable(&e))?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(COMMAND_TIMEOUT))
            .set_response_timeout(Some(COMMAND_TIMEOUT))
            .set_number_of_retries(2)
            .set_max_delay(RETRY_MAX);
        let conn = ConnectionManager::new_with_config(client.clone(), config.clone())
            .await
            .map_err(|e| unavailable(&e))?;
        let producers: Arc<Producers> = Arc::default();
        let (followers, subscriber) = crate::subscriber::start(
            client.clone(),
            Some(cancel_channel(&prefix)),
            Arc::clone(&producers),
            (RETRY_MIN, RETRY_MAX),
        )
        .await
        .map_err(|e| unavailable(&e))?;
        Ok(Self {
            shared: Arc::new(Shared {
                conn,
                prefix,
                options: LiveOptions {
                    max_events: options.max_events.max(1),
                    ..options
                },
                producers,
                followers,
                stats: Arc::default(),
                _subscriber: subscriber,
                client,
                config,
                locals: Mutex::default(),
            }),
        })
    }

    /// What could not be written, for metrics.
    #[must_use]
    pub fn stats(&self) -> Arc<RedisLiveStats> {
        Arc::clone(&self.shared.stats)
    }
}

/// How a publisher ended, for its writer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Close {
    /// The last event is queued.
    Finished,
    /// The publisher was dropped without a last event.
    Abandoned,
}

#[derive(Default)]
struct Queue {
    state: Mutex<Pending>,
    wake: Notify,
}

#[derive(Default)]
struct Pending {
    events: VecDeque<LiveEvent>,
    close: Option<Close>,
}

struct RedisPublisher {
    reply: MessageId,
    queue: Arc<Queue>,
    producers: Arc<Producers>,
    stats: Arc<RedisLiveStats>,
    max_events: usize,
    newest: u64,
    done: bool,
}

impl RedisPublisher {
    fn close(&mut self, how: Close) {
        self.done = true;
        self.producers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&self.reply);
        self.queue
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .close = Some(how);
        self.queue.wake.notify_one();
    }
}

impl LivePublisher for RedisPublisher {
    fn publish(&mut self, event: LiveEvent) {
        if self.done || event.id != self.newest + 1 {
            return;
        }
        self.newest = event.id;
        let last = event.last;
        {
            let mut pending = self
                .queue
                .state
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            pending.events.push_back(event);
            if pending.events.len() > self.max_events {
                pending.events.pop_front();
                self.stats.dropped_events.fetch_add(1, Ordering::Relaxed);
            }
        }
        if last {
            self.close(Close::Finished);
        } else {
            self.queue.wake.notify_one();
        }
    }
}

impl Drop for RedisPublisher {
    fn drop(&mut self) {
        if !self.done {
            self.close(Close::Abandoned);
        }
    }
}

/// Writes a publisher's queue to its stream: whatever has queued when the previous write
/// is done goes out as one entry. Ends once the publisher has closed and all is written.
///
/// First it opens the stream (and stops the producer when a cancel came before), saying so
/// on `opened` after the first try, successful or not.
async fn write_queue(
    shared: Arc<Shared>,
    mut conn: ConnectionManager,
    reply: MessageId,
    queue: Arc<Queue>,
    cancel: CancelToken,
    opened: tokio::sync::oneshot::Sender<()>,
) {
    let key = shared.key(reply);
    let mut written: u64 = 0;
    let mut wait = RETRY_MIN;
    let mut failing_since: Option<Instant> = None;
    let mut opened = Some(opened);
    while opened.is_some() || failing_since.is_some() {
        match open_stream(&shared, &mut conn, &key, reply).await {
            Ok(cancelled) => {
                if cancelled {
                    cancel.cancel(CancelReason::User);
                }
                if let Some(opened) = opened.take() {
                    let _ = opened.send(());
                }
                failing_since = None;
            }
            Err(e) => {
                shared.stats.publish_errors.fetch_add(1, Ordering::Relaxed);
                if let Some(opened) = opened.take() {
                    let _ = opened.send(());
                }
                let since = *failing_since.get_or_insert_with(|| {
                    tracing::warn!(%reply, error = %e, "live replies: cannot open the reply in Redis; retrying");
                    Instant::now()
                });
                if since.elapsed() >= LIVE_TTL {
                    tracing::error!(%reply, "live replies: Redis was away too long; the reply's live events are given up");
                    return;
                }
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(RETRY_MAX);
            }
        }
    }
    wait = RETRY_MIN;
    // The key's expiry was set when it was opened; entries refresh it only now and then.
    let mut expiry_set = Instant::now();
    loop {
        let (batch, close) = {
            let pending = queue.state.lock().unwrap_or_else(PoisonError::into_inner);
            (Batch::of(&pending.events), pending.close)
        };
        let batch = match batch {
            Ok(batch) => batch,
            Err(e) => {
                // Plain strings always serialize; never seen, but not a reason to spin.
                tracing::error!(%reply, error = %e, "live replies: events do not serialize; the reply's live events are given up");
                return;
            }
        };
        let write = if let Some(batch) = &batch {
            let refresh = batch.finished || expiry_set.elapsed() >= LIVE_TTL_REFRESH;
            let written = append(&shared, &mut conn, reply, batch, refresh).await;
            if written.is_ok() && refresh {
                expiry_set = Instant::now();
            }
            written
        } else if close == Some(Close::Abandoned) {
            abandon(&shared, &mut conn, reply, written).await
        } else if close == Some(Close::Finished) {
            return;
        } else {
            queue.wake.notified().await;
            continue;
        };
        match write {
            Ok(()) => {
                if let Some(since) = failing_since.take() {
                    tracing::info!(%reply, after = ?since.elapsed(), "live replies: writing to Redis again");
                }
                wait = RETRY_MIN;
                let Some(batch) = batch else {
                    return;
                };
                shared.stats.entries_written.fetch_add(1, Ordering::Relaxed);
                shared
                    .stats
                    .events_written
                    .fetch_add(batch.len, Ordering::Relaxed);
                written = batch.last;
                let mut pending = queue.state.lock().unwrap_or_else(PoisonError::into_inner);
                // Drop what was written (events dropped from the front meanwhile are gone).
                while pending.events.front().is_some_and(|e| e.id <= written) {
                    pending.events.pop_front();
                }
            }
            Err(e) => {
                shared.stats.publish_errors.fetch_add(1, Ordering::Relaxed);
                let since = *failing_since.get_or_insert_with(|| {
                    tracing::warn!(%reply, error = %e, "live replies: cannot write to Redis; retrying");
                    Instant::now()
                });
                if since.elapsed() >= LIVE_TTL {
                    // What is still queued would have expired from Redis by now anyway.
                    tracing::error!(%reply, "live replies: Redis was away too long; the reply's live events are given up");
                    return;
                }
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(RETRY_MAX);
            }
        }
    }
}

/// Writes the reply's first entry (`0-1`) and says whether a cancel came before it.
async fn open_stream(
    shared: &Shared,
    conn: &mut ConnectionManager,
    key: &str,
    reply: MessageId,
) -> Result<bool, RedisError> {
    let cancelled = cancelled_key(&shared.prefix, reply);
    let mut pipe = redis::pipe();
    pipe.cmd("XADD")
        .arg(key)
        .arg("0-1")
        .arg("open")
        .arg(1)
        .ignore()
        .cmd("PEXPIRE")
        .arg(key)
        .arg(millis(LIVE_TTL))
        .ignore()
        .cmd("EXISTS")
        .arg(&cancelled);
    match pipe.query_async::<(bool,)>(conn).await {
        Ok((cancelled,)) => Ok(cancelled),
        // Opened by an earlier try whose answer was lost: ask about a cancel alone.
        Err(e) if already_written(&e) => {
            redis::cmd("EXISTS")
                .arg(&cancelled)
                .query_async::<bool>(conn)
                .await
        }
        Err(e) => Err(e),
    }
}

/// Whether `e` says the entry is there already (a retry of a write that landed).
fn already_written(e: &RedisError) -> bool {
    e.to_string().contains("equal or smaller")
}

/// The queued events one entry writes: the first [`MAX_BATCH`], serialized while the queue
/// is locked (rather than copied out of it first).
struct Batch {
    first: u64,
    last: u64,
    len: u64,
    /// Whether it ends with the reply's last event.
    finished: bool,
    /// The events, as JSON.
    json: String,
}

impl Batch {
    fn of(queued: &VecDeque<LiveEvent>) -> Result<Option<Self>, serde_json::Error> {
        let (Some(first), Some(last)) = (
            queued.front(),
            queued.get(queued.len().min(MAX_BATCH).saturating_sub(1)),
        ) else {
            return Ok(None);
        };
        let events = Events(queued, queued.len().min(MAX_BATCH));
        Ok(Some(Self {
            first: first.id,
            last: last.id,
            len: events.1 as u64,
            finished: last.last,
            json: serde_json::to_string(&events)?,
        }))
    }
}

/// The first `.1` events of a queue, serialized as a JSON array.
struct Events<'a>(&'a VecDeque<LiveEvent>, usize);

impl serde::Serialize for Events<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.0.iter().take(self.1))
    }
}

/// Writes `batch` as the stream's next entry and publishes it. The key's expiry is set again
/// only with `refresh` (the reply's last entry, or now and then): an `XADD` keeps it.
async fn append(
    shared: &Shared,
    conn: &mut ConnectionManager,
    reply: MessageId,
    batch: &Batch,
    refresh: bool,
) -> Result<(), RedisError> {
    let key = shared.key(reply);
    let ttl = if batch.finished {
        shared.options.retention
    } else {
        LIVE_TTL
    };
    // One round trip: the entry, the key's new expiry, and the entry to the followers.
    let mut pipe = redis::pipe();
    pipe.cmd("XADD")
        .arg(&key)
        .arg(StreamMaxlen::Equals(shared.options.max_events))
        .arg(format!("{}-0", batch.last))
        .arg("first")
        .arg(batch.first)
        .arg("events")
        .arg(&batch.json)
        .ignore();
    if refresh {
        pipe.cmd("PEXPIRE").arg(&key).arg(millis(ttl)).ignore();
    }
    pipe.cmd("PUBLISH")
        .arg(live_channel(&shared.prefix, reply))
        .arg(message_of_events(batch.last, batch.first, &batch.json))
        .ignore();
    match pipe.query_async::<()>(conn).await {
        // A retry of an entry that was written: the expiry was set all the same.
        Err(e) if already_written(&e) => Ok(()),
        other => other,
    }
}

async fn abandon(
    shared: &Shared,
    conn: &mut ConnectionManager,
    reply: MessageId,
    written: u64,
) -> Result<(), RedisError> {
    let key = shared.key(reply);
    let id = if written == 0 {
        "0-2".to_owned()
    } else {
        format!("{written}-1")
    };
    let mut pipe = redis::pipe();
    pipe.cmd("XADD")
        .arg(&key)
        .arg(id)
        .arg("end")
        .arg("interrupted")
        .ignore()
        .cmd("PEXPIRE")
        .arg(&key)
        .arg(millis(shared.options.retention))
        .ignore()
        .cmd("PUBLISH")
        .arg(live_channel(&shared.prefix, reply))
        .arg(message_of_end(written))
        .ignore();
    match pipe.query_async::<()>(conn).await {
        Err(e) if already_written(&e) => Ok(()),
        other => other,
    }
}

/// What a stream entry says.
fn parse(entry: &StreamId) -> Result<Entry, LiveError> {
    let bad = || LiveError::Unavailable(format!("a malformed live entry {}", entry.id));
    if entry.contains_key("end") {
        // `<n>-1`: after event n; `0-2`: before any.
        let after = entry
            .id
            .split_once('-')
            .and_then(|(n, _)| n.parse().ok())
            .ok_or_else(bad)?;
        return Ok(Entry::Interrupted { after });
    }
    if entry.contains_key("open") {
        return Ok(Entry::Opened);
    }
    let first: u64 = entry.get("first").ok_or_else(bad)?;
    let events: String = entry.get("events").ok_or_else(bad)?;
    let events: Vec<LiveEvent> = serde_json::from_str(&events).map_err(|_| bad())?;
    Ok(Entry::Events { first, events })
}

/// What a follower at `position` does with an entry.
enum Step {
    /// Yields these events (those above its position); the stream ends with them if `true`.
    Yield(Vec<LiveEvent>, bool),
    /// Events between its position and the entry are missing.
    Gap,
    /// Ends with this error.
    Fail(LiveError),
}

fn step(entry: &Entry, position: u64) -> Step {
    match entry {
        Entry::Opened => Step::Yield(Vec::new(), false),
        Entry::Interrupted { after } if *after > position => Step::Gap,
        Entry::Interrupted { .. } => Step::Fail(LiveError::Interrupted),
        Entry::Events { first, .. } if *first > position + 1 => Step::Gap,
        Entry::Events { events, .. } => {
            let events: Vec<LiveEvent> =
                events.iter().filter(|e| e.id > position).cloned().collect();
            let ends = events.last().is_some_and(|e| e.last);
            Step::Yield(events, ends)
        }
    }
}

/// Read entries, each parsed (or why not), shared like delivered ones.
type Read = Vec<Result<Arc<Entry>, LiveError>>;

fn entries(reply: Option<StreamReadReply>) -> Read {
    reply
        .map(|r| {
            r.keys
                .iter()
                .flat_map(|k| &k.ids)
                .map(|entry| parse(entry).map(Arc::new))
                .collect()
        })
        .unwrap_or_default()
}

/// Reads the stream's entries holding events above `position` (at most [`MAX_BATCH`]).
async fn read_after(
    conn: &mut ConnectionManager,
    key: &str,
    position: u64,
) -> Result<Read, LiveError> {
    redis::cmd("XREAD")
        .arg("COUNT")
        .arg(MAX_BATCH)
        .arg("STREAMS")
        .arg(key)
        .arg(format!("{position}-0"))
        .query_async::<Option<StreamReadReply>>(conn)
        .await
        .map(entries)
        .map_err(|e| unavailable(&e))
}

#[async_trait]
impl LiveReplies for RedisLiveReplies {
    async fn open(&self, reply: MessageId, cancel: CancelToken) -> Box<dyn LivePublisher> {
        let shared = &self.shared;
        shared
            .producers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(reply, cancel.clone());
        let queue = Arc::new(Queue::default());
        let (opened, open) = tokio::sync::oneshot::channel();
        tokio::spawn(write_queue(
            Arc::clone(shared),
            shared.here().conn,
            reply,
            Arc::clone(&queue),
            cancel,
            opened,
        ));
        // Followers find the reply once its first entry is written: one round trip. A Redis
        // that does not answer at once does not hold up the reply's first delta; its writer
        // goes on trying.
        if tokio::time::timeout(OPEN_WAIT, open).await.is_err() {
            tracing::warn!(%reply, "live replies: Redis did not answer in time; the reply is opened in the background");
        }
        Box::new(RedisPublisher {
            reply,
            queue,
            producers: Arc::clone(&shared.producers),
            stats: Arc::clone(&shared.stats),
            max_events: shared.options.max_events,
            newest: 0,
            done: false,
        })
    }

    async fn follow(&self, reply: MessageId, after: u64) -> Result<LiveEventStream, LiveError> {
        let key = self.shared.key(reply);
        let Here {
            mut conn,
            followers,
        } = self.shared.here();
        // Subscribed first: every entry written after the read below is delivered.
        let mut joined = followers
            .join(&live_channel(&self.shared.prefix, reply), COMMAND_TIMEOUT)
            .await?;
        // Whether the reply exists, its newest entry (to see whether the follower already
        // has its last event), and the entries after the follower's position.
        let (exists, newest, first): (bool, StreamRangeReply, Option<StreamReadReply>) =
            redis::pipe()
                .cmd("EXISTS")
                .arg(&key)
                .cmd("XREVRANGE")
                .arg(&key)
                .arg("+")
                .arg("-")
                .arg("COUNT")
                .arg(1)
                .cmd("XREAD")
                .arg("COUNT")
                .arg(MAX_BATCH)
                .arg("STREAMS")
                .arg(&key)
                .arg(format!("{after}-0"))
                .query_async(&mut conn)
                .await
                .map_err(|e| unavailable(&e))?;
        if !exists {
            return Err(LiveError::NotFound);
        }
        let finished_at = newest.ids.first().and_then(|entry| match parse(entry) {
            Ok(Entry::Events { events, .. }) => events.last().filter(|e| e.last).map(|e| e.id),
            _ => None,
        });
        if finished_at.is_some_and(|last| last <= after) {
            return Ok(Box::pin(futures::stream::empty()));
        }
        let stream = async_stream::stream! {
            let mut position = after;
            // Entries read from the stream, then those delivered; the stream again after a gap.
            let mut read = entries(first);
            let mut from_stream = true;
            loop {
                let full = read.len() >= MAX_BATCH;
                let mut gap = false;
                for entry in &read {
                    let entry = match entry {
                        Ok(entry) => entry,
                        Err(e) => {
                            yield Err(e.clone());
                            return;
                        }
                    };
                    match step(entry, position) {
                        Step::Yield(events, ends) => {
                            for event in events {
                                position = event.id;
                                yield Ok(event);
                            }
                            if ends {
                                return;
                            }
                        }
                        // The stream itself lacks them: they were trimmed.
                        Step::Gap if from_stream => {
                            yield Err(LiveError::Trimmed { after: position });
                            return;
                        }
                        Step::Gap => {
                            gap = true;
                            break;
                        }
                        Step::Fail(e) => {
                            yield Err(e);
                            return;
                        }
                    }
                }
                // More in the stream than one read gives, or a message missed: read it.
                if (from_stream && full) || gap {
                    from_stream = true;
                    read = match read_after(&mut conn, &key, position).await {
                        Ok(read) => read,
                        Err(e) => {
                            yield Err(e);
                            return;
                        }
                    };
                    continue;
                }
                from_stream = false;
                let delivered = tokio::time::timeout(BLOCK, joined.deliveries.recv()).await;
                read = match delivered {
                    Ok(Ok(Delivery::Entry(entry))) => vec![Ok(entry)],
                    Ok(Ok(Delivery::Lost(e))) => {
                        yield Err(e);
                        return;
                    }
                    Ok(Err(broadcast::error::RecvError::Lagged(_))) | Err(_) => {
                        // Fell behind, or nothing for a while: the stream has what was missed.
                        // (Nothing there and no key: the reply was forgotten after its
                        // producer died.)
                        from_stream = true;
                        match read_after(&mut conn, &key, position).await {
                            Ok(read) if read.is_empty() => {
                                match redis::cmd("EXISTS").arg(&key).query_async::<bool>(&mut conn).await {
                                    Ok(true) => read,
                                    Ok(false) => {
                                        yield Err(LiveError::Interrupted);
                                        return;
                                    }
                                    Err(e) => {
                                        yield Err(unavailable(&e));
                                        return;
                                    }
                                }
                            }
                            Ok(read) => read,
                            Err(e) => {
                                yield Err(e);
                                return;
                            }
                        }
                    }
                    Ok(Err(broadcast::error::RecvError::Closed)) => {
                        yield Err(LiveError::Unavailable("the subscriber stopped".into()));
                        return;
                    }
                };
            }
        };
        Ok(Box::pin(stream))
    }

    async fn cancel(&self, reply: MessageId) -> Result<(), LiveError> {
        let mut conn = self.shared.conn.clone();
        // The key first: a producer that opens after it finds it, one that opened before
        // gets the message.
        redis::pipe()
            .cmd("SET")
            .arg(cancelled_key(&self.shared.prefix, reply))
            .arg(1)
            .arg("PX")
            .arg(millis(EARLY_CANCEL))
            .ignore()
            .cmd("PUBLISH")
            .arg(cancel_channel(&self.shared.prefix))
            .arg(reply.to_string())
            .ignore()
            .query_async::<()>(&mut conn)
            .await
            .map_err(|e| unavailable(&e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::PrivateRedis;
    use futures::StreamExt;

    /// An entry's events are serialized straight from the queue, as the copy of them was.
    #[test]
    fn a_batch_is_the_queues_first_events_as_json() {
        let max = MAX_BATCH as u64;
        let queued: VecDeque<LiveEvent> = (1..=max + 3)
            .map(|i| LiveEvent::new(i, "delta", format!("d{i}")))
            .collect();
        let batch = Batch::of(&queued).unwrap().unwrap();
        let copied: Vec<LiveEvent> = queued.iter().take(MAX_BATCH).cloned().collect();
        assert_eq!(batch.json, serde_json::to_string(&copied).unwrap());
        assert_eq!(
            (batch.first, batch.last, batch.len, batch.finished),
            (1, max, max, false)
        );
        let mut ending: VecDeque<LiveEvent> = queued.iter().skip(4).take(2).cloned().collect();
        ending.push_back(LiveEvent::last(7, "done", "{}"));
        let batch = Batch::of(&ending).unwrap().unwrap();
        assert_eq!(
            (batch.first, batch.last, batch.len, batch.finished),
            (5, 7, 3, true)
        );
        assert!(Batch::of(&VecDeque::new()).unwrap().is_none());
    }

    #[test]
    fn a_replys_keys_share_one_hash_tag_under_the_prefix() {
        let reply = MessageId::new();
        assert_eq!(
            events_key("confab:live:", reply),
            format!("confab:live:{{{reply}}}:events")
        );
        assert_eq!(cancel_channel("confab:live:"), "confab:live:cancel");
    }

    async fn shared_redis() -> Option<RedisLiveReplies> {
        let url = std::env::var("TEST_REDIS_URL")
            .ok()
            .filter(|u| !u.is_empty())
            .unwrap_or_else(|| "redis://127.0.0.1:6379".to_owned());
        let prefix = format!("confab-test:{}:", uuid::Uuid::now_v7().simple());
        match RedisLiveReplies::connect(&url, prefix, LiveOptions::default()).await {
            Ok(live) => Some(live),
            Err(e) => {
                assert!(
                    std::env::var_os("CI").is_none(),
                    "Redis at {url} is unreachable ({e}) and CI is set"
                );
                eprintln!("\n!!! SKIPPED: Redis at {url} is unreachable ({e}).\n");
                None
            }
        }
    }

    /// The entry `append` writes of these events.
    fn batch(events: &[LiveEvent]) -> Batch {
        Batch::of(&events.iter().cloned().collect())
            .unwrap()
            .unwrap()
    }

    fn events(ids: std::ops::RangeInclusive<u64>) -> Vec<LiveEvent> {
        ids.map(|id| LiveEvent::new(id, "delta", format!("{id}")))
            .collect()
    }

    /// A write that landed but whose answer was lost is retried, with whatever queued
    /// meanwhile: the retry succeeds, and followers see each event once.
    #[tokio::test]
    async fn a_retried_write_is_accepted_and_read_without_duplicates() {
        let Some(live) = shared_redis().await else {
            return;
        };
        let shared = &live.shared;
        let reply = MessageId::new();
        let mut conn = shared.conn.clone();
        append(shared, &mut conn, reply, &batch(&events(1..=3)), false)
            .await
            .unwrap();
        append(shared, &mut conn, reply, &batch(&events(1..=3)), false)
            .await
            .unwrap();
        append(shared, &mut conn, reply, &batch(&events(1..=5)), false)
            .await
            .unwrap();
        let mut last = events(6..=6);
        last[0].last = true;
        append(shared, &mut conn, reply, &batch(&last), true)
            .await
            .unwrap();
        for after in 0..=6 {
            let read: Vec<u64> = live
                .follow(reply, after)
                .await
                .unwrap()
                .map(|e| e.unwrap().id)
                .collect()
                .await;
            assert_eq!(read, ((after + 1)..=6).collect::<Vec<_>>(), "after {after}");
        }
    }

    async fn private_live(redis: &PrivateRedis) -> RedisLiveReplies {
        let started = Instant::now();
        loop {
            match RedisLiveReplies::connect(&redis.url(), "t:", LiveOptions::default()).await {
                Ok(live) => return live,
                Err(e) => {
                    assert!(started.elapsed() < Duration::from_secs(20), "{e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }
    }

    async fn clients(conn: &mut redis::aio::MultiplexedConnection) -> usize {
        let list: String = redis::cmd("CLIENT")
            .arg("LIST")
            .query_async(conn)
            .await
            .unwrap();
        list.lines().count()
    }

    /// Issue 15: a follower costs no Redis connection of its own (the process's one
    /// subscription carries every reply's live tail), and each still gets every event.
    #[tokio::test]
    async fn followers_share_the_process_connections_to_redis() {
        let Some(redis) = PrivateRedis::start() else {
            return;
        };
        let live = private_live(&redis).await;
        let mut counter = redis::Client::open(redis.url())
            .unwrap()
            .get_multiplexed_async_connection()
            .await
            .unwrap();
        let replies: Vec<MessageId> = (0..5).map(|_| MessageId::new()).collect();
        let mut publishers = Vec::new();
        for reply in &replies {
            publishers.push(live.open(*reply, CancelToken::new()).await);
        }
        let before = clients(&mut counter).await;
        let mut followers = Vec::new();
        for reply in &replies {
            for _ in 0..10 {
                followers.push(live.follow(*reply, 0).await.unwrap());
            }
        }
        assert_eq!(
            clients(&mut counter).await,
            before,
            "50 followers, no new connection"
        );
        let mut all = events(1..=20);
        all[19].last = true;
        for publisher in &mut publishers {
            for event in all.clone() {
                publisher.publish(event);
            }
        }
        for follower in followers {
            let read: Vec<LiveEvent> = tokio::time::timeout(
                Duration::from_secs(20),
                follower.map(|e| e.unwrap()).collect::<Vec<_>>(),
            )
            .await
            .unwrap();
            assert_eq!(read, all);
        }
    }

    /// Waits until this thread's own connection and subscriber are made.
    async fn local_ready(live: &RedisLiveReplies) -> Arc<Local> {
        let thread = std::thread::current().id();
        let started = Instant::now();
        loop {
            live.shared.here();
            if let Some(Slot::Ready(local)) = live.shared.locals.lock().unwrap().get(&thread) {
                return Arc::clone(local);
            }
            assert!(started.elapsed() < Duration::from_secs(20), "never made");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// A worker writes and follows through connections of its own, on its runtime, once
    /// they are made; a follower there gets every event of a reply written by another
    /// process (another adapter), through its thread's subscriber, not the process's.
    #[tokio::test]
    async fn a_thread_uses_its_own_connections_once_made() {
        let Some(producer) = shared_redis().await else {
            return;
        };
        let follower = RedisLiveReplies::connect(
            &std::env::var("TEST_REDIS_URL")
                .ok()
                .filter(|u| !u.is_empty())
                .unwrap_or_else(|| "redis://127.0.0.1:6379".to_owned()),
            producer.shared.prefix.clone(),
            LiveOptions::default(),
        )
        .await
        .unwrap();
        let local = local_ready(&follower).await;
        local_ready(&producer).await;
        let reply = MessageId::new();
        let mut publisher = producer.open(reply, CancelToken::new()).await;
        let stream = follower.follow(reply, 0).await.unwrap();
        let channel = live_channel(&follower.shared.prefix, reply);
        assert!(
            local.followers.is_followed(&channel),
            "joined on the thread's subscriber"
        );
        assert!(
            !follower.shared.followers.is_followed(&channel),
            "not on the process's"
        );
        let mut all = events(1..=30);
        all[29].last = true;
        for event in all.clone() {
            publisher.publish(event);
            tokio::task::yield_now().await;
        }
        let read: Vec<LiveEvent> = tokio::time::timeout(
            Duration::from_secs(20),
            stream.map(|e| e.unwrap()).collect::<Vec<_>>(),
        )
        .await
        .unwrap();
        assert_eq!(read, all);
    }

    /// A thread whose own connections cannot be made (Redis away) is served by the
    /// process's, and does not try again at once.
    #[tokio::test]
    async fn a_thread_without_its_own_connections_is_served_at_once() {
        let Some(redis) = PrivateRedis::start() else {
            return;
        };
        let live = private_live(&redis).await;
        drop(redis);
        // `here` never waits (it is not async): the process's connections serve at once.
        let here = live.shared.here();
        assert!(Arc::ptr_eq(&here.followers, &live.shared.followers));
        let thread = std::thread::current().id();
        let started = Instant::now();
        loop {
            if matches!(
                live.shared.locals.lock().unwrap().get(&thread),
                Some(Slot::Failed(_))
            ) {
                break;
            }
            assert!(started.elapsed() < Duration::from_secs(20), "never failed");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let here = live.shared.here();
        assert!(
            Arc::ptr_eq(&here.followers, &live.shared.followers),
            "not retried at once"
        );
    }

    /// The stream is the source of truth: an entry whose message never reached a follower
    /// (lost with a dropped subscription) is read from the stream when the next one shows
    /// the gap.
    #[tokio::test]
    async fn an_entry_whose_message_was_lost_is_read_from_the_stream() {
        let Some(live) = shared_redis().await else {
            return;
        };
        let shared = &live.shared;
        let reply = MessageId::new();
        let key = shared.key(reply);
        let mut conn = shared.conn.clone();
        open_stream(shared, &mut conn, &key, reply).await.unwrap();
        let follower = live.follow(reply, 0).await.unwrap();
        // Written to the stream, never published.
        let unpublished = serde_json::to_string(&events(1..=2)).unwrap();
        redis::cmd("XADD")
            .arg(&key)
            .arg("2-0")
            .arg("first")
            .arg(1)
            .arg("events")
            .arg(unpublished)
            .query_async::<String>(&mut conn)
            .await
            .unwrap();
        let mut rest = events(3..=4);
        rest[1].last = true;
        append(shared, &mut conn, reply, &batch(&rest), true)
            .await
            .unwrap();
        let read: Vec<u64> = tokio::time::timeout(
            Duration::from_secs(20),
            follower.map(|e| e.unwrap().id).collect::<Vec<_>>(),
        )
        .await
        .unwrap();
        assert_eq!(read, [1, 2, 3, 4]);
    }

    /// Issue 15: opening a reply does not wait for a Redis that does not answer (the
    /// command timeout is 3 s): the reply's first delta is not held up, and what it
    /// publishes meanwhile reaches followers once Redis answers again.
    #[tokio::test]
    async fn opening_a_reply_does_not_wait_for_a_redis_that_does_not_answer() {
        let Some(redis) = PrivateRedis::start() else {
            return;
        };
        let url = redis.url();
        let started = Instant::now();
        let live = loop {
            match RedisLiveReplies::connect(&url, "t:", LiveOptions::default()).await {
                Ok(live) => break live,
                Err(e) => {
                    assert!(started.elapsed() < Duration::from_secs(20), "{e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        };

        redis.signal("STOP");
        let reply = MessageId::new();
        let opening = Instant::now();
        let mut publisher = live.open(reply, CancelToken::new()).await;
        let waited = opening.elapsed();
        let mut all = events(1..=3);
        all[2].last = true;
        for event in all.clone() {
            publisher.publish(event);
        }
        drop(publisher);
        redis.signal("CONT");
        assert!(
            waited < Duration::from_secs(1),
            "opening waited {waited:?} for a Redis that does not answer"
        );

        let read = loop {
            match live.follow(reply, 0).await {
                Ok(stream) => {
                    let read: Vec<Result<LiveEvent, LiveError>> = stream.collect().await;
                    if read.len() == all.len() {
                        break read;
                    }
                }
                Err(LiveError::NotFound | LiveError::Unavailable(_)) => {}
                Err(e) => panic!("{e}"),
            }
            assert!(opening.elapsed() < Duration::from_secs(30), "never written");
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        assert_eq!(read, all.into_iter().map(Ok).collect::<Vec<_>>());
    }
}
