//! The chat stream (`POST …/messages`, Server-Sent Events) and the cancel route.
//!
//! Validation and authorization happen before the stream starts, as ordinary problem+json
//! answers. Then the generation runs in a task that owns the core's event stream and feeds
//! the response through a channel: a client that goes away does not stop the generation, and
//! its reply is stored whole. Only the cancel route, the timeout or shutdown stop it.
//!
//! The relay encodes each event into its `text/event-stream` frame before it queues it, so the
//! channel carries boxed bytes and the response body only hands them on. Thousands of streams
//! stay open at once, most of them idle between two deltas: what each one holds while it
//! waits is what this module keeps small (docs/benchmarks.md, finding 4). Hence
//! `futures::channel::mpsc`, which holds a queued frame in a node of its own and costs a few
//! hundred bytes when empty, rather than `tokio::sync::mpsc`, whose cache-padded channel and
//! first block of 32 slots cost about 1 KiB per stream whatever the capacity.

use std::convert::Infallible;
use std::future::Future as _;
use std::ops::Range;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use actix_web::body::{BodySize, MessageBody};
use actix_web::http::header::{CacheControl, CacheDirective, ContentEncoding};
use actix_web::{HttpResponse, web};
use bytes::Bytes;
use confab_api_types as api;
use confab_core::chat::ChatStream;
use confab_core::ids::{FileId, MessageId, UserId};
use confab_core::live::{LiveError, LiveEvent, LivePublisher, Text};
use confab_core::ports::{ChatHistory, LiveReplies};
use confab_core::{
    CancelReason, CancelToken, ChatError, ChatEvent, ConversationId, Message, MessageStatus,
    Parent, SendRequest, ServiceError, StoreError, StreamErrorCode,
};
use futures::StreamExt;
use futures::channel::mpsc;
use tracing::Instrument;
use uuid::Uuid;

use crate::convert;
use crate::error::ApiError;
use crate::extract::{Authenticated, JsonBody};
use crate::generations::Registration;
use crate::metrics::{KindLabels, Metrics};
use crate::state::AppState;

/// How often a comment is sent while nothing else is.
pub const KEEP_ALIVE: Duration = Duration::from_secs(15);

/// The keep-alive comment.
const KEEP_ALIVE_COMMENT: &[u8] = b": keep-alive\n\n";

/// How long the relay waits for a client that has stopped reading (its socket's buffers and
/// the channel are full) before it lets the client go.
const SLOW_CLIENT: Duration = Duration::from_secs(10);

/// How many encoded events may wait for a slow client before the relay waits for it. Memory
/// does not depend on it: an empty channel holds no slots.
const RELAY_CAPACITY: usize = 32;

/// One event encoded as its `text/event-stream` frame.
type Frame = Bytes;

/// Send a message and stream the reply as Server-Sent Events: `user_message`,
/// `assistant_message`, `delta`…, then `done` or `error`.
///
/// `file_ids` attaches up to 10 files (none twice; 422 `validation_failed` otherwise): each
/// MUST be a file the sender uploaded to this conversation's project, else 404 — the same
/// answer whether the id is unknown, another project's or another user's. The links are
/// stored with the user message, which names them in `files` in every read (a file deleted
/// later stays named, `deleted: true`). The model is given the name, type and size of each
/// file of the message it answers; older messages' files are not sent again.
#[utoipa::path(post, path = "/api/conversations/{conversation_id}/messages", tag = "messages", request_body = api::SendMessage,
    params(("conversation_id" = Uuid, Path)),
    responses(
        (status = 200, description = "`text/event-stream`: events `user_message` (Message), `assistant_message` (Message), `delta` (Delta), then `done` (Message) or `error` (StreamError)", content_type = "text/event-stream", body = String),
        (status = 400, body = api::Problem), (status = 401, body = api::Problem), (status = 404, body = api::Problem),
        (status = 409, body = api::Problem), (status = 413, body = api::Problem), (status = 415, body = api::Problem),
        (status = 422, body = api::Problem), (status = 429, body = api::Problem), (status = 503, body = api::Problem)),
    security(("bearer" = [])))]
pub async fn send_message(
    Authenticated(principal): Authenticated,
    id: web::Path<Uuid>,
    JsonBody(body): JsonBody<api::SendMessage>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let started = Instant::now();
    let conversation_id = ConversationId::from_uuid(*id);
    let request = SendRequest {
        conversation_id,
        content: body.content,
        client_message_id: body.client_message_id,
        parent: match body.parent_id {
            None => Parent::Leaf,
            Some(None) => Parent::Root,
            Some(Some(parent)) => Parent::Message(MessageId::from_uuid(parent)),
        },
        file_ids: body.file_ids.into_iter().map(FileId::from_uuid).collect(),
    };
    stream_reply(state, started, move |state, token| async move {
        let events = state.chat.send(&principal, request, token).await?;
        Ok((conversation_id, events))
    })
    .await
}

/// Answer the user message of this reply again: a new reply beside it (a sibling), streamed
/// as a send's is — `user_message` (the user message answered), `assistant_message`,
/// `delta`…, then `done` or `error`. The model is sent the branch that ends at that user
/// message. 409 while any reply of the conversation is being generated.
#[utoipa::path(post, path = "/api/messages/{message_id}/regenerate", tag = "messages",
    params(("message_id" = Uuid, Path, description = "a reply (assistant message)")),
    responses(
        (status = 200, description = "`text/event-stream`: events `user_message` (Message), `assistant_message` (Message), `delta` (Delta), then `done` (Message) or `error` (StreamError)", content_type = "text/event-stream", body = String),
        (status = 400, body = api::Problem), (status = 401, body = api::Problem), (status = 404, body = api::Problem),
        (status = 409, body = api::Problem), (status = 422, body = api::Problem, description = "the message is not a reply"),
        (status = 429, body = api::Problem), (status = 503, body = api::Problem)),
    security(("bearer" = [])))]
pub async fn regenerate(
    Authenticated(principal): Authenticated,
    id: web::Path<Uuid>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let started = Instant::now();
    let reply = MessageId::from_uuid(*id);
    stream_reply(state, started, move |state, token| async move {
        state.chat.regenerate(&principal, reply, token).await
    })
    .await
}

/// Starts a reply with `start` and answers with its event stream. The start and the relay run
/// in a task of their own: once the turn is stored, its reply is generated and stored even
/// when the client goes away before the answer's head (actix then drops the handler's
/// future, which would otherwise drop the start half-way).
async fn stream_reply<F, Fut>(
    state: web::Data<AppState>,
    started: Instant,
    start: F,
) -> Result<HttpResponse, ApiError>
where
    F: FnOnce(web::Data<AppState>, CancelToken) -> Fut + Send + 'static,
    Fut: Future<Output = Result<(ConversationId, ChatStream), ChatError>> + Send + 'static,
{
    let token = CancelToken::new();
    let (tx, rx) = mpsc::channel(RELAY_CAPACITY);
    let (accepted_tx, accepted) = tokio::sync::oneshot::channel();
    let task_state = web::Data::clone(&state);
    let span = tracing::Span::current();
    state.tasks.spawn(
        async move {
            let state = task_state;
            // Boxed, so that its state is freed once the start is done instead of staying in
            // the task's for the whole reply (thousands of replies stream at once).
            let begun = Box::pin(start(web::Data::clone(&state), token.clone()));
            let (conversation_id, events) = match begun.await {
                Ok(begun) => begun,
                Err(e) => {
                    if matches!(e, ChatError::QuotaExceeded(_)) {
                        state.metrics.quota_refusals.inc();
                    }
                    // The handler may be gone; then nobody needs the answer.
                    let _ = accepted_tx.send(Err(e));
                    return;
                }
            };
            state
                .metrics
                .relay_overhead
                .observe(started.elapsed().as_secs_f64());
            let registration = state.generations.register(conversation_id, token.clone());
            let relay = Relay {
                events,
                tx,
                token,
                timeout: state.llm_timeout,
                metrics: Arc::clone(&state.metrics),
                started,
                live: Live::Waiting {
                    live: Arc::clone(&state.live),
                    first: None,
                },
                _registration: registration,
            };
            // From here the response's body drives the relay as it is read: each event goes
            // from the provider's connection to the client's in one task, without a hop
            // between tasks. Whoever drops it unfinished (the handler gone before the head,
            // the body of a client that left) hands it to a task of its own.
            let relay = state.tasks.track_future(relay.run().instrument(span));
            let body =
                EventStream::driving(Driven::new(rx, Box::pin(relay), &state.tasks), KEEP_ALIVE);
            // The handler may be gone: then the body is dropped, and the relay runs on its own.
            let _ = accepted_tx.send(Ok(body));
        }
        .instrument(tracing::Span::current()),
    );
    let body = accepted
        .await
        .map_err(|_| ApiError::Internal("the send's task ended without an answer".to_owned()))??;

    Ok(HttpResponse::Ok()
        .content_type("text/event-stream")
        .insert_header(ContentEncoding::Identity)
        .insert_header(CacheControl(vec![CacheDirective::NoCache]))
        .insert_header(("X-Accel-Buffering", "no"))
        .body(body))
}

/// A reply's relay and the channel it writes its frames to, driven by the response's body
/// while the client reads it (see [`EventStream`]).
///
/// A client that stops reading stops actix from polling the body once the connection's
/// buffers are full, and with it the relay: a watchdog lets such a client go after
/// [`SLOW_CLIENT`] without a poll (its channel is closed, as a full channel's sender does
/// when it waits that long) and drives the relay itself, so that the generation goes on.
struct Driven {
    inner: std::sync::Mutex<DrivenInner>,
    /// Bumped by every poll of the body; read by the watchdog.
    polls: std::sync::atomic::AtomicU64,
}

struct DrivenInner {
    frames: mpsc::Receiver<Frame>,
    relay: Slot,
}

/// Where the relay is.
enum Slot {
    /// In the body, which polls it.
    Here(Pin<Box<dyn Future<Output = ()> + Send>>),
    /// It ended.
    Done,
    /// In a task of its own (the body was dropped, or the watchdog took it).
    Away,
}

/// How often the watchdog looks, and how many looks without a poll let a client go.
const WATCH_EVERY: Duration = Duration::from_secs(2);
const WATCH_LOOKS: u32 = 5;

impl Driven {
    fn new(
        frames: mpsc::Receiver<Frame>,
        relay: Pin<Box<dyn Future<Output = ()> + Send>>,
        tasks: &tokio_util::task::TaskTracker,
    ) -> Arc<Self> {
        let driven = Arc::new(Self {
            inner: std::sync::Mutex::new(DrivenInner {
                frames,
                relay: Slot::Here(relay),
            }),
            polls: std::sync::atomic::AtomicU64::new(0),
        });
        tasks.spawn(Self::watch(Arc::clone(&driven)).instrument(tracing::Span::current()));
        driven
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, DrivenInner> {
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Lets the client go after [`SLOW_CLIENT`] (`WATCH_LOOKS` looks) without a poll of its
    /// body, and then drives the relay here. Ends once the relay is done or away.
    async fn watch(driven: Arc<Self>) {
        let mut seen = driven.polls.load(std::sync::atomic::Ordering::Relaxed);
        let mut quiet = 0;
        loop {
            tokio::time::sleep(WATCH_EVERY).await;
            let relay = {
                let mut inner = driven.lock();
                if !matches!(inner.relay, Slot::Here(_)) {
                    return;
                }
                let polls = driven.polls.load(std::sync::atomic::Ordering::Relaxed);
                if polls != seen {
                    seen = polls;
                    quiet = 0;
                    continue;
                }
                quiet += 1;
                if quiet < WATCH_LOOKS {
                    continue;
                }
                tracing::warn!(
                    waited_secs = SLOW_CLIENT.as_secs(),
                    "a client stopped reading its stream; it is let go"
                );
                inner.frames.close();
                std::mem::replace(&mut inner.relay, Slot::Away)
            };
            if let Slot::Here(relay) = relay {
                relay.await;
            }
            return;
        }
    }

    /// The body's next frame: the relay is polled (with the body's waker) when none waits.
    fn poll_frame(&self, cx: &mut Context<'_>) -> Poll<Option<Frame>> {
        self.polls
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let mut inner = self.lock();
        let inner = &mut *inner;
        if let Some(frame) = taken(inner.frames.try_recv()) {
            return Poll::Ready(frame);
        }
        match &mut inner.relay {
            Slot::Here(relay) => {
                if relay.as_mut().poll(cx).is_ready() {
                    inner.relay = Slot::Done;
                }
            }
            // Its frames come from another task now: wait for them.
            Slot::Away => return inner.frames.poll_next_unpin(cx),
            Slot::Done => {}
        }
        // Only the relay writes to the channel, and it just ran in this task: what it wrote
        // is there now, and it woke nobody (the receiver waits on no waker while the relay is
        // here; the relay's own wake-ups are this body's).
        match taken(inner.frames.try_recv()) {
            Some(frame) => Poll::Ready(frame),
            None => Poll::Pending,
        }
    }

    /// Hands an unfinished relay to a task of its own (the body is gone).
    fn release(&self) {
        let relay = {
            let mut inner = self.lock();
            match inner.relay {
                Slot::Here(_) => std::mem::replace(&mut inner.relay, Slot::Away),
                _ => return,
            }
        };
        if let (Slot::Here(relay), Ok(runtime)) = (relay, tokio::runtime::Handle::try_current()) {
            runtime.spawn(relay);
        }
    }
}

/// A frame taken without waiting: `Some(Some)` a frame, `Some(None)` the channel's end,
/// `None` nothing yet.
fn taken(next: Result<Frame, mpsc::TryRecvError>) -> Option<Option<Frame>> {
    match next {
        Ok(frame) => Some(Some(frame)),
        Err(mpsc::TryRecvError::Closed) => Some(None),
        Err(mpsc::TryRecvError::Empty) => None,
    }
}

/// The body of a chat stream: the relay's frames as they come, and a keep-alive comment on
/// each tick of `keep_alive` that finds none waiting (the first tick is at once, as with
/// `actix_web_lab::sse`, which this replaces byte for byte).
pub struct EventStream {
    frames: Frames,
    keep_alive: tokio::time::Interval,
}

/// Where a body's frames come from.
enum Frames {
    /// A task of their own writes them (a follower's relay).
    Channel(mpsc::Receiver<Frame>),
    /// The sender's relay, which the body drives.
    Driven(Arc<Driven>),
}

impl EventStream {
    fn new(frames: mpsc::Receiver<Frame>, period: Duration) -> Self {
        Self::with(Frames::Channel(frames), period)
    }

    fn driving(driven: Arc<Driven>, period: Duration) -> Self {
        Self::with(Frames::Driven(driven), period)
    }

    fn with(frames: Frames, period: Duration) -> Self {
        let mut keep_alive = tokio::time::interval(period);
        keep_alive.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        Self { frames, keep_alive }
    }
}

impl Drop for EventStream {
    fn drop(&mut self) {
        // The watchdog holds the other reference: the relay goes on without the body now.
        if let Frames::Driven(driven) = &self.frames {
            driven.release();
        }
    }
}

impl MessageBody for EventStream {
    type Error = Infallible;

    fn size(&self) -> BodySize {
        BodySize::Stream
    }

    fn poll_next(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Bytes, Self::Error>>> {
        let this = self.get_mut();
        let next = match &mut this.frames {
            Frames::Channel(frames) => frames.poll_next_unpin(cx),
            Frames::Driven(driven) => driven.poll_frame(cx),
        };
        match next {
            Poll::Ready(Some(frame)) => return Poll::Ready(Some(Ok(frame))),
            Poll::Ready(None) => return Poll::Ready(None),
            Poll::Pending => {}
        }
        if this.keep_alive.poll_tick(cx).is_ready() {
            return Poll::Ready(Some(Ok(Bytes::from_static(KEEP_ALIVE_COMMENT))));
        }
        Poll::Pending
    }
}

/// Stop the reply being generated; it is stored `cancelled` with the text so far.
#[utoipa::path(post, path = "/api/conversations/{conversation_id}/cancel", tag = "messages",
    params(("conversation_id" = Uuid, Path)),
    responses((status = 202, description = "the reply is being stopped"), (status = 401, body = api::Problem),
        (status = 404, body = api::Problem), (status = 409, body = api::Problem, description = "nothing is being generated")),
    security(("bearer" = [])))]
pub async fn cancel(
    Authenticated(principal): Authenticated,
    id: web::Path<Uuid>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let conversation_id = ConversationId::from_uuid(*id);
    let conversation = state.conversations.get(&principal, conversation_id).await?;
    // Whether anything is being generated is the store's answer (any replica may generate
    // it), not this process's.
    let Some(reply) = conversation.active_reply_id else {
        return Err(ApiError::Conflict(
            "nothing is being generated in this conversation".to_owned(),
        ));
    };
    if !state
        .generations
        .cancel(conversation_id, CancelReason::User)
    {
        // Generated by another replica: its process gets the cancel through the live port.
        state.live.cancel(reply).await.map_err(|e| {
            tracing::warn!(error = %e, "could not send a cancel to the reply's replica");
            ApiError::Unavailable("the cancel could not be delivered; try again shortly")
        })?;
    }
    Ok(HttpResponse::Accepted().finish())
}

/// Where a follower starts: after `after` (`?after=n`).
#[derive(serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct FollowQuery {
    /// Continue after this event number (as the `Last-Event-ID` header; the header wins).
    /// Read as text, so that a malformed number is this route's 400.
    #[param(value_type = Option<u64>, minimum = 0)]
    after: Option<String>,
}

/// Follow the conversation's reply being generated (from any replica): its events after
/// `Last-Event-ID` (or `?after=`), then the live ones, ending with `done` or `error` as the
/// send's stream does. 204 when nothing is being generated and no finished reply is retained.
#[utoipa::path(get, path = "/api/conversations/{conversation_id}/stream", tag = "messages",
    params(("conversation_id" = Uuid, Path),
        ("Last-Event-ID" = Option<u64>, Header, nullable = false, minimum = 0, description = "continue after this event number"),
        FollowQuery),
    responses(
        (status = 200, description = "`text/event-stream`: the same events, numbers and data as the send's stream, from after the given number", content_type = "text/event-stream", body = String),
        (status = 204, description = "nothing is being generated and no finished reply is retained"),
        (status = 400, body = api::Problem), (status = 401, body = api::Problem), (status = 404, body = api::Problem),
        (status = 503, body = api::Problem)),
    security(("bearer" = [])))]
pub async fn follow(
    Authenticated(principal): Authenticated,
    id: web::Path<Uuid>,
    query: web::Query<FollowQuery>,
    request: actix_web::HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let conversation_id = ConversationId::from_uuid(*id);
    let header = request
        .headers()
        .get("Last-Event-ID")
        .map(|v| v.to_str().unwrap_or("invalid").to_owned());
    let after = match header.or_else(|| query.after.clone()) {
        None => 0,
        Some(n) => n.trim().parse::<u64>().map_err(|_| {
            ApiError::BadRequest("Last-Event-ID (or after) must be an event number".to_owned())
        })?,
    };
    state.conversations.get(&principal, conversation_id).await?;
    let reply = state
        .history
        .latest_reply(&principal.user_id, conversation_id)
        .await
        .map_err(ServiceError::from)?;
    let Some(reply) = reply else {
        return Ok(HttpResponse::NoContent().finish());
    };
    let (tx, rx) = mpsc::channel(RELAY_CAPACITY);
    let watch = Watch::new(&state, &principal.user_id, conversation_id);
    match state.live.follow(reply.id, after).await {
        Ok(mut events) => {
            if reply.status != MessageStatus::Streaming {
                // A finished reply's retained events are all there at once: with none after
                // `after` there is nothing to follow.
                match events.next().await {
                    None => return Ok(HttpResponse::NoContent().finish()),
                    // Only the end its producer left after `done` when no title came: the
                    // reply ended as stored, and nothing follows `after`.
                    Some(Err(LiveError::Interrupted)) if ended_well(&reply) => {
                        return Ok(HttpResponse::NoContent().finish());
                    }
                    Some(first) => events = Box::pin(futures::stream::iter([first]).chain(events)),
                }
            }
            tokio::spawn(relay_follower(events, tx, reply.id, after, watch));
        }
        Err(LiveError::NotFound) => return Ok(HttpResponse::NoContent().finish()),
        Err(e) => {
            tokio::spawn(relay_follower(
                Box::pin(futures::stream::iter([Err(e)])),
                tx,
                reply.id,
                after,
                watch,
            ));
        }
    }
    Ok(HttpResponse::Ok()
        .content_type("text/event-stream")
        .insert_header(ContentEncoding::Identity)
        .insert_header(CacheControl(vec![CacheDirective::NoCache]))
        .insert_header(("X-Accel-Buffering", "no"))
        .body(EventStream::new(rx, KEEP_ALIVE)))
}

/// How long a follower waits for its reply's next event before it reads how the reply is
/// stored: a producer that died (its replica was killed) publishes no last event, and the
/// sweep of lapsed leases stores its reply `interrupted` instead.
const QUIET: Duration = Duration::from_secs(2);

/// What a follower checks when its reply has been quiet for [`QUIET`]: one indexed read of
/// the conversation's latest reply.
struct Watch {
    history: Arc<dyn ChatHistory>,
    owner: UserId,
    conversation: ConversationId,
    /// Counts the follower while it lives.
    metrics: Arc<Metrics>,
}

impl Drop for Watch {
    fn drop(&mut self) {
        self.metrics.followers.dec();
    }
}

/// How a quiet reply is stored.
#[expect(
    clippy::large_enum_variant,
    reason = "read once per follow; boxing would only add an allocation"
)]
enum Stored {
    /// Still `streaming` (or the database cannot say now): its events may yet come.
    Streaming,
    /// Its producer died and the sweep ended it: no last event will come.
    Interrupted,
    /// Its producer ended it (`Some`, as stored; `None` when a newer reply or a deleted
    /// conversation hides it): its last event should follow at once.
    Finished(Option<Message>),
}

impl Watch {
    fn new(state: &AppState, owner: &UserId, conversation: ConversationId) -> Self {
        state.metrics.followers.inc();
        Self {
            history: Arc::clone(&state.history),
            owner: owner.clone(),
            conversation,
            metrics: Arc::clone(&state.metrics),
        }
    }

    async fn stored(&self, reply: MessageId) -> Stored {
        match self
            .history
            .latest_reply(&self.owner, self.conversation)
            .await
        {
            Ok(Some(m)) if m.id != reply => Stored::Finished(None),
            Ok(Some(m)) => match m.status {
                MessageStatus::Streaming => Stored::Streaming,
                MessageStatus::Failed
                    if m.error.as_deref() == Some(StreamErrorCode::Interrupted.as_str()) =>
                {
                    Stored::Interrupted
                }
                _ => Stored::Finished(Some(m)),
            },
            Ok(None) | Err(StoreError::NotFound) => Stored::Finished(None),
            Err(e) => {
                tracing::debug!(error = %e, "a follower could not read its quiet reply");
                Stored::Streaming
            }
        }
    }
}

/// Feeds a follower's response with the reply's live events, framed as the send's stream
/// frames them. A failure of the live events ends the stream with an `error` event
/// (`unavailable` or `interrupted`) naming the reply, so that the client re-reads it. A
/// follower that stops reading for [`SLOW_CLIENT`] is let go, and one whose client left is
/// let go within a few quiet periods (each sends a keep-alive comment) or at its next event.
///
/// After each quiet period the stored reply decides: one ended by the sweep ends the stream
/// with `error` (`interrupted`) at once; one its producer ended gets one more quiet period for
/// its last event, then ends as stored (`done` with the stored message, or `error`).
async fn relay_follower(
    mut events: confab_core::ports::LiveEventStream,
    mut tx: mpsc::Sender<Frame>,
    reply: MessageId,
    after: u64,
    watch: Watch,
) {
    let mut position = after;
    let mut finished = false;
    // When `done` came without being the last event: only its title may follow.
    let mut done_at: Option<Instant> = None;
    loop {
        let (frame, last) = match tokio::time::timeout(QUIET, events.next()).await {
            Ok(None) => return,
            Ok(Some(Ok(event))) => {
                position = event.id;
                if event.name == api::events::DONE && !event.last {
                    done_at = Some(Instant::now());
                }
                (
                    encode(&event.name, event.id, event.data.as_bytes()),
                    event.last,
                )
            }
            // The title after `done` was not written: the reply's stream is over.
            Ok(Some(Err(_))) if done_at.is_some() => return,
            // The same, for a follower that came back after `done` (its `Last-Event-ID`):
            // the reply is stored complete, so its stream ends without an error.
            Ok(Some(Err(LiveError::Interrupted))) if matches!(watch.stored(reply).await, Stored::Finished(Some(ref m)) if ended_well(m)) =>
            {
                return;
            }
            Ok(Some(Err(e))) => {
                let code = match e {
                    LiveError::Interrupted => StreamErrorCode::Interrupted,
                    _ => StreamErrorCode::Unavailable,
                };
                tracing::info!(error = %e, "a follower's live events failed; it re-reads the reply");
                (error_frame(reply, position + 1, code, LOST_LIVE), true)
            }
            Err(_quiet) => {
                // A client that left is noticed only when writing to it fails: a comment per
                // quiet period lets it go within seconds, not at the next event.
                if tx.is_closed()
                    || tx
                        .try_send(KEEP_ALIVE_COMMENT.into())
                        .is_err_and(|e| e.is_disconnected())
                {
                    return;
                }
                if let Some(at) = done_at {
                    // The reply is stored; its title is written within `TITLE_WAIT`.
                    if at.elapsed() > TITLE_WAIT {
                        return;
                    }
                    continue;
                }
                match watch.stored(reply).await {
                    Stored::Streaming => continue,
                    Stored::Interrupted => {
                        let frame =
                            error_frame(reply, position + 1, StreamErrorCode::Interrupted, DIED);
                        (frame, true)
                    }
                    Stored::Finished(_) if !std::mem::replace(&mut finished, true) => continue,
                    Stored::Finished(Some(message)) if ended_well(&message) => {
                        let data = serde_json::to_vec(&convert::message(message))
                            .unwrap_or_else(|_| b"{}".to_vec());
                        (encode(api::events::DONE, position + 1, &data), true)
                    }
                    Stored::Finished(_) => {
                        let code = StreamErrorCode::Unavailable;
                        (error_frame(reply, position + 1, code, LOST_LIVE), true)
                    }
                }
            }
        };
        match room(&mut tx).await {
            Ok(Ok(())) => {
                if tx.start_send(frame).is_err() {
                    return;
                }
            }
            Ok(Err(_)) => return,
            Err(_) => {
                tracing::warn!(
                    waited_secs = SLOW_CLIENT.as_secs(),
                    "a follower stopped reading its stream; it is let go"
                );
                return;
            }
        }
        if last {
            return;
        }
    }
}

/// Waits until the channel to the client's response has room, for at most [`SLOW_CLIENT`]:
/// `Err` when that passed, `Ok(Err)` when the response is gone. The timer is made only when
/// the channel is full: a client that keeps up costs no clock read and no timer per event.
async fn room(
    tx: &mut mpsc::Sender<Frame>,
) -> Result<Result<(), mpsc::SendError>, tokio::time::error::Elapsed> {
    if let Poll::Ready(ready) = futures::future::poll_fn(|cx| Poll::Ready(tx.poll_ready(cx))).await
    {
        return Ok(ready);
    }
    tokio::time::timeout(
        SLOW_CLIENT,
        futures::future::poll_fn(|cx| tx.poll_ready(cx)),
    )
    .await
}

/// Whether a stored reply ended with `done` (complete or cancelled), as opposed to failing.
fn ended_well(reply: &Message) -> bool {
    matches!(
        reply.status,
        MessageStatus::Complete | MessageStatus::Cancelled
    )
}

/// How long a follower waits after `done` for the title that follows it (the core gives a
/// title up after 15 s).
const TITLE_WAIT: Duration = Duration::from_secs(20);

/// The `detail` of a follower's `error` when its live events failed.
const LOST_LIVE: &str =
    "The live reply can no longer be followed; its stored message is what is left of it.";

/// The `detail` of a follower's `error` when the reply's producer died.
const DIED: &str = "The reply was interrupted: the server generating it stopped. Its stored message has the text saved so far.";

/// A follower's `error` event numbered `id`.
fn error_frame(reply: MessageId, id: u64, code: StreamErrorCode, detail: &str) -> Frame {
    let data = serde_json::to_vec(&api::StreamError {
        message_id: reply.as_uuid(),
        code: code.as_str().to_owned(),
        detail: detail.to_owned(),
    })
    .unwrap_or_else(|_| b"{}".to_vec());
    encode(api::events::ERROR, id, &data)
}

/// One generation in flight: drives the core's stream to its end whatever the client does.
struct Relay {
    events: ChatStream,
    tx: mpsc::Sender<Frame>,
    token: CancelToken,
    timeout: Duration,
    metrics: Arc<Metrics>,
    started: Instant,
    /// Where every event is published for followers (`GET …/stream`, any replica).
    live: Live,
    _registration: Registration,
}

/// The reply's publisher, opened once the reply's id is known (its `assistant_message`, the
/// second event): the events before it wait here.
enum Live {
    Waiting {
        live: Arc<dyn LiveReplies>,
        first: Option<LiveEvent>,
    },
    Open(Box<dyn LivePublisher>),
    /// After the last event: the publisher is dropped, which ends the reply normally.
    Closed,
}

impl Live {
    /// Hands `event` to the publisher, opening it on the reply's `assistant_message`.
    async fn publish(&mut self, event: LiveEvent, reply: Option<MessageId>, token: &CancelToken) {
        let last = event.last;
        match self {
            Self::Waiting { live, first } => match reply {
                Some(reply) => {
                    let mut publisher = live.open(reply, token.clone()).await;
                    if let Some(first) = first.take() {
                        publisher.publish(first);
                    }
                    publisher.publish(event);
                    *self = Self::Open(publisher);
                }
                // A stream that ends before its reply exists has nothing to follow.
                None if last => *self = Self::Closed,
                None => *first = Some(event),
            },
            Self::Open(publisher) => publisher.publish(event),
            Self::Closed => {}
        }
        if last {
            *self = Self::Closed;
        }
    }
}

impl Relay {
    async fn run(mut self) {
        self.metrics.open_streams.inc();
        let deadline = tokio::time::sleep(self.timeout);
        tokio::pin!(deadline);
        let mut next_id: u64 = 0;
        let mut first_delta = true;
        let mut client_gone = false;
        // A title follows `done`: followers' streams end with it, not with `done`.
        let mut title_follows = false;
        loop {
            // The next event, or `None` when the time limit is reached (checked only until the
            // generation is cancelled). The event is framed inside this block, so that it is
            // not kept in the task's state across the send below: that state is held for the
            // whole reply, thousands of times over.
            // The frame, and whether the client's stream ends with it (`error`; `done` may
            // still be followed by a title).
            let (frame, ended) = {
                let next = futures::future::poll_fn(|cx| {
                    if let Poll::Ready(event) = self.events.poll_next_unpin(cx) {
                        return Poll::Ready(Some(event));
                    }
                    if self.token.reason().is_none() && deadline.as_mut().poll(cx).is_ready() {
                        return Poll::Ready(None);
                    }
                    Poll::Pending
                })
                .await;
                match next {
                    None => {
                        tracing::warn!(
                            timeout_secs = self.timeout.as_secs(),
                            "a generation hit its time limit"
                        );
                        self.token.cancel(CancelReason::Timeout);
                        continue;
                    }
                    Some(None) => break,
                    Some(Some(ChatEvent::TitleFollows { .. })) => {
                        title_follows = true;
                        continue;
                    }
                    Some(Some(event)) => {
                        self.observe(&event, &mut first_delta);
                        next_id += 1;
                        let reply = match &event {
                            ChatEvent::AssistantMessage(m) => Some(m.id),
                            _ => None,
                        };
                        // The followers' last event: `error`, `done` unless a title follows
                        // it, and that title. A title that is not written leaves `done`
                        // without a last event: the publisher is dropped, which followers
                        // past `done` take as the end.
                        let ended = match &event {
                            ChatEvent::Done(_) => !title_follows,
                            ChatEvent::Error { .. } | ChatEvent::Title { .. } => true,
                            _ => false,
                        };
                        // After `done` only a title may follow: the client's stream stays
                        // open for it until the core's stream ends.
                        let close = matches!(event, ChatEvent::Error { .. });
                        let Some((name, frame, data)) = shared_frame(event, next_id) else {
                            continue;
                        };
                        let data = Text::slice(&frame, data).unwrap_or_else(|| "{}".into());
                        let frame = Bytes::from_owner(Text::from(frame));
                        let live = if ended {
                            LiveEvent::last(next_id, name, data)
                        } else {
                            LiveEvent::new(next_id, name, data)
                        };
                        self.live.publish(live, reply, &self.token).await;
                        if client_gone {
                            continue;
                        }
                        (frame, close)
                    }
                }
            };
            // A client that stops reading fills its socket's buffers and then this channel;
            // waiting for it longer than `SLOW_CLIENT` would hold up the generation (and, over a
            // shared HTTP/2 upstream, other replies): it is let go, its stream ends, and the
            // reply is generated and stored as for a client that went away.
            let sent = match room(&mut self.tx).await {
                Ok(Ok(())) => self.tx.start_send(frame).is_ok(),
                Ok(Err(_)) => false,
                Err(_) => {
                    tracing::warn!(
                        waited_secs = SLOW_CLIENT.as_secs(),
                        "a client stopped reading its stream; it is let go"
                    );
                    self.tx.close_channel();
                    false
                }
            };
            if ended {
                // The client's stream ends with its final event, even while the core still
                // tries to store a reply it could not store in time.
                self.tx.close_channel();
                client_gone = true;
            } else if !sent {
                tracing::info!("the client went away; the reply is still generated and stored");
                client_gone = true;
            }
        }
        self.metrics.open_streams.dec();
    }

    fn observe(&self, event: &ChatEvent, first_delta: &mut bool) {
        match event {
            ChatEvent::Delta { .. } => {
                self.metrics.deltas_relayed.inc();
                if std::mem::take(first_delta) {
                    self.metrics
                        .time_to_first_token
                        .observe(self.started.elapsed().as_secs_f64());
                }
            }
            ChatEvent::Done(message) => {
                self.metrics
                    .replies
                    .get_or_create(&KindLabels {
                        kind: message.status.as_str().to_owned(),
                    })
                    .inc();
            }
            ChatEvent::Error { code, .. } => {
                let kind = KindLabels {
                    kind: code.as_str().to_owned(),
                };
                self.metrics.provider_errors.get_or_create(&kind).inc();
                self.metrics
                    .replies
                    .get_or_create(&KindLabels {
                        kind: "failed".to_owned(),
                    })
                    .inc();
            }
            ChatEvent::UserMessage(_)
            | ChatEvent::AssistantMessage(_)
            | ChatEvent::Title { .. }
            | ChatEvent::TitleFollows { .. } => {}
        }
    }
}

/// The SSE frame of an event: `id: <n>`, `event: <name>`, one line of JSON, a blank line.
#[cfg(test)]
fn frame(event: ChatEvent, id: u64) -> Frame {
    match shared_frame(event, id) {
        Some((_, frame, _)) => Bytes::from_owner(Text::from(frame)),
        None => encode("", id, b""),
    }
}

/// What an event's `data:` is, before it is written.
#[derive(serde::Serialize)]
#[serde(untagged)]
enum Data {
    Message(api::Message),
    Delta(api::Delta),
    Error(api::StreamError),
    Title(api::TitleEvent),
}

/// An event's name and data; `None` for what is not sent (`TitleFollows`).
fn event_data(event: ChatEvent) -> Option<(&'static str, Data)> {
    Some(match event {
        ChatEvent::UserMessage(m) => (
            api::events::USER_MESSAGE,
            Data::Message(convert::message(m)),
        ),
        ChatEvent::AssistantMessage(m) => (
            api::events::ASSISTANT_MESSAGE,
            Data::Message(convert::message(m)),
        ),
        ChatEvent::Delta { message_id, text } => (
            api::events::DELTA,
            Data::Delta(api::Delta {
                message_id: message_id.as_uuid(),
                text,
            }),
        ),
        ChatEvent::Done(m) => (api::events::DONE, Data::Message(convert::message(m))),
        ChatEvent::Error {
            message,
            code,
            detail,
        } => (
            api::events::ERROR,
            Data::Error(api::StreamError {
                message_id: message.id.as_uuid(),
                code: code.as_str().to_owned(),
                detail,
            }),
        ),
        ChatEvent::Title {
            conversation_id,
            title,
        } => (
            api::events::TITLE,
            Data::Title(api::TitleEvent {
                conversation_id: conversation_id.as_uuid(),
                title,
            }),
        ),
        ChatEvent::TitleFollows { .. } => return None,
    })
}

thread_local! {
    /// Where a thread writes frames before they are made shared: one buffer, reused.
    static SCRATCH: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// A scratch buffer larger than this (a long message's frame) is not kept.
const SCRATCH_KEPT: usize = 64 * 1024;

/// An event's frame, written once into a shared string: the client's response sends it,
/// and its `data:` part (the range) is the live event's data, so that the publisher, the
/// in-process buffer and every follower share it instead of copying it. One allocation per
/// event (the shared string), its JSON written straight into the frame. `None` for what is
/// not sent.
fn shared_frame(event: ChatEvent, id: u64) -> Option<(&'static str, Arc<str>, Range<usize>)> {
    let (name, data) = event_data(event)?;
    SCRATCH.with_borrow_mut(|out| {
        out.clear();
        write_head(out, id, name);
        let start = out.len();
        if serde_json::to_writer(&mut *out, &data).is_err() {
            out.truncate(start);
            out.extend_from_slice(b"{}");
        }
        let mut end = out.len();
        out.extend_from_slice(b"\n\n");
        // JSON and the frame's words are UTF-8: the fallback is never taken.
        let frame = match std::str::from_utf8(out) {
            Ok(text) => Arc::from(text),
            Err(_) => {
                end = start + 2;
                Arc::from(format!("id: {id}\nevent: {name}\ndata: {{}}\n\n"))
            }
        };
        if out.capacity() > SCRATCH_KEPT {
            *out = Vec::new();
        }
        Some((name, frame, start..end))
    })
}

/// A frame's head, `id: <id>\nevent: <name>\ndata: `, onto `out`: the number's digits
/// written by hand (`write!` and its formatting machinery were ~500 instructions a frame).
fn write_head(out: &mut Vec<u8>, id: u64, name: &str) {
    out.extend_from_slice(b"id: ");
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    let mut rest = id;
    loop {
        at -= 1;
        digits[at] = b'0' + (rest % 10) as u8;
        rest /= 10;
        if rest == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[at..]);
    out.extend_from_slice(b"\nevent: ");
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b"\ndata: ");
}

/// `id: <id>\nevent: <name>\ndata: <data>\n\n` in one exactly sized allocation. `data` is
/// compact JSON, which has no line breaks, so one `data:` line carries it all.
fn encode(name: &str, id: u64, data: &[u8]) -> Frame {
    const FIXED: usize = "id: \nevent: \ndata: \n\n".len();
    let digits = id.checked_ilog10().map_or(1, |d| d as usize + 1);
    let mut out = Vec::with_capacity(FIXED + digits + name.len() + data.len());
    write_head(&mut out, id, name);
    out.extend_from_slice(data);
    out.extend_from_slice(b"\n\n");
    Bytes::from(out)
}

#[cfg(test)]
mod tests {

    use actix_web::body::to_bytes;
    use actix_web_lab::sse;
    use confab_core::{Message, MessageStatus, StreamErrorCode, Usage};

    use super::*;

    /// The frame `actix_web_lab::sse` wrote for the same event, as this module did before.
    async fn lab_frame(event: ChatEvent, id: u64) -> Vec<u8> {
        let (name, data) = match event {
            ChatEvent::UserMessage(m) => (
                api::events::USER_MESSAGE,
                sse::Data::new_json(convert::message(m)),
            ),
            ChatEvent::AssistantMessage(m) => (
                api::events::ASSISTANT_MESSAGE,
                sse::Data::new_json(convert::message(m)),
            ),
            ChatEvent::Delta { message_id, text } => (
                api::events::DELTA,
                sse::Data::new_json(api::Delta {
                    message_id: message_id.as_uuid(),
                    text,
                }),
            ),
            ChatEvent::Done(m) => (api::events::DONE, sse::Data::new_json(convert::message(m))),
            ChatEvent::Error {
                message,
                code,
                detail,
            } => (
                api::events::ERROR,
                sse::Data::new_json(api::StreamError {
                    message_id: message.id.as_uuid(),
                    code: code.as_str().to_owned(),
                    detail,
                }),
            ),
            ChatEvent::Title {
                conversation_id,
                title,
            } => (
                api::events::TITLE,
                sse::Data::new_json(api::TitleEvent {
                    conversation_id: conversation_id.as_uuid(),
                    title,
                }),
            ),
            // Never framed.
            ChatEvent::TitleFollows { .. } => return Vec::new(),
        };
        let event: sse::Event = data.unwrap().event(name).id(id.to_string()).into();
        let body = sse::Sse::from_infallible_stream(futures::stream::iter([event]));
        to_bytes(body).await.unwrap().to_vec()
    }

    fn events() -> Vec<ChatEvent> {
        let conversation = ConversationId::new();
        let now = confab_core::now();
        let user = Message::user(
            conversation,
            "Line one\nline \"two\"\r\n\ttabbed é 🦀 </script>".to_owned(),
            Some(Uuid::now_v7()),
            now,
        );
        let pending = Message::pending_reply(conversation, "gpt-test".to_owned(), now);
        let done = Message {
            content: "Hello,\n\nworld".to_owned(),
            status: MessageStatus::Complete,
            usage: Some(Usage {
                input_tokens: 12,
                output_tokens: 3,
            }),
            ..pending.clone()
        };
        let failed = Message {
            content: "Hel".to_owned(),
            status: MessageStatus::Failed,
            error: Some("the provider failed".to_owned()),
            ..pending.clone()
        };
        vec![
            ChatEvent::UserMessage(user),
            ChatEvent::AssistantMessage(pending.clone()),
            ChatEvent::Delta {
                message_id: pending.id,
                text: " tok00\n\"quoted\"".to_owned(),
            },
            ChatEvent::Delta {
                message_id: pending.id,
                text: String::new(),
            },
            ChatEvent::Done(done),
            ChatEvent::Error {
                message: failed,
                code: StreamErrorCode::UpstreamError,
                detail: "status 500: \"upstream\"\nsecond line".to_owned(),
            },
        ]
    }

    #[actix_web::test]
    async fn every_frame_is_byte_for_byte_what_actix_web_lab_sse_wrote() {
        for id in [1, 9, 10, 99, 100, 12_345, u64::MAX] {
            for event in events() {
                let ours = frame(event.clone(), id);
                let theirs = lab_frame(event, id).await;
                assert_eq!(
                    String::from_utf8_lossy(&ours),
                    String::from_utf8_lossy(&theirs)
                );
                assert_eq!(ours.len(), theirs.len(), "exactly sized");
            }
            // A follower's frames.
            let frame = encode(api::events::DELTA, id, b"{\"text\":\"x\"}");
            assert_eq!(
                String::from_utf8_lossy(&frame),
                format!("id: {id}\nevent: delta\ndata: {{\"text\":\"x\"}}\n\n")
            );
        }
    }

    async fn next(body: &mut EventStream) -> Option<Bytes> {
        futures::future::poll_fn(|cx| Pin::new(&mut *body).poll_next(cx))
            .await
            .map(|frame| frame.unwrap())
    }

    #[actix_web::test]
    async fn the_body_sends_frames_in_order_a_keep_alive_when_idle_and_ends_with_the_relay() {
        let (mut tx, rx) = mpsc::channel(RELAY_CAPACITY);
        let mut body = EventStream::new(rx, Duration::from_millis(100));
        // As with actix-web-lab: the first tick is at once, so an idle start sends a comment.
        assert_eq!(&next(&mut body).await.unwrap()[..], b": keep-alive\n\n");
        for id in 1..=2 {
            let frame = format!("id: {id}\nevent: delta\ndata: {{}}\n\n");
            tx.try_send(Bytes::from(frame)).unwrap();
        }
        assert_eq!(
            &next(&mut body).await.unwrap()[..],
            b"id: 1\nevent: delta\ndata: {}\n\n"
        );
        assert_eq!(
            &next(&mut body).await.unwrap()[..],
            b"id: 2\nevent: delta\ndata: {}\n\n"
        );
        let idle = Instant::now();
        assert_eq!(&next(&mut body).await.unwrap()[..], b": keep-alive\n\n");
        assert!(
            idle.elapsed() >= Duration::from_millis(50),
            "the next comment waits for the next tick"
        );
        drop(tx);
        assert!(next(&mut body).await.is_none());
    }

    /// Issue 15: after its final event a reply's core stream may go on (a final write the
    /// database refused is retried in the background); the client's stream ends anyway.
    #[actix_web::test]
    async fn the_clients_stream_ends_with_the_final_event_while_the_core_goes_on() {
        let failed = events().pop().unwrap();
        let core: ChatStream = Box::pin(
            futures::stream::iter([failed]).chain(futures::stream::pending::<ChatEvent>()),
        );
        let (tx, rx) = mpsc::channel(RELAY_CAPACITY);
        let generations = crate::generations::Generations::default();
        let token = CancelToken::new();
        let relay = Relay {
            events: core,
            tx,
            token: token.clone(),
            timeout: Duration::from_secs(3_600),
            metrics: Arc::new(Metrics::new()),
            started: Instant::now(),
            live: Live::Closed,
            _registration: generations.register(ConversationId::new(), token),
        };
        let relaying = actix_web::rt::spawn(relay.run());
        let mut body = EventStream::new(rx, Duration::from_secs(3_600));
        let mut last = next(&mut body).await.unwrap();
        if &last[..] == KEEP_ALIVE_COMMENT {
            last = next(&mut body).await.unwrap();
        }
        assert!(
            String::from_utf8_lossy(&last).contains("event: error"),
            "{last:?}"
        );
        let end = tokio::time::timeout(Duration::from_secs(30), next(&mut body)).await;
        assert_eq!(
            end,
            Ok(None),
            "the client's stream ends after the final event"
        );
        relaying.abort();
    }
}
