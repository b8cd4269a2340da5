//! The chat stream (`POST …/messages`, Server-Sent Events) and the cancel route.
//!
//! Validation and authorization happen before the stream starts, as ordinary problem+json
//! answers. Then the generation runs in a task that owns the core's event stream and feeds
//! the response through a channel: a client that goes away does not stop the generation, and
//! its reply is stored whole. Only the cancel route, the timeout or shutdown stop it.

use std::sync::Arc;
use std::time::{Duration, Instant};

use actix_web::{HttpResponse, Responder, web};
use actix_web_lab::sse;
use confab_api_types as api;
use confab_core::chat::ChatStream;
use confab_core::{CancelReason, CancelToken, ChatEvent, ConversationId, SendRequest};
use futures::StreamExt;
use tokio::sync::mpsc;
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

/// Send a message and stream the reply as Server-Sent Events: `user_message`,
/// `assistant_message`, `delta`…, then `done` or `error`.
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
) -> Result<impl Responder, ApiError> {
    let started = Instant::now();
    let conversation_id = ConversationId::from_uuid(*id);
    let token = CancelToken::new();
    let request = SendRequest {
        conversation_id,
        content: body.content,
        client_message_id: body.client_message_id,
    };
    let events = state.chat.send(&principal, request, token.clone()).await?;
    state
        .metrics
        .relay_overhead
        .observe(started.elapsed().as_secs_f64());

    let registration = state.generations.register(conversation_id, token.clone());
    let (tx, rx) = mpsc::channel(32);
    let relay = Relay {
        events,
        tx,
        token,
        timeout: state.llm_timeout,
        metrics: Arc::clone(&state.metrics),
        started,
        _registration: registration,
    };
    state
        .tasks
        .spawn(relay.run().instrument(tracing::Span::current()));

    Ok(sse::Sse::from_infallible_receiver(rx)
        .with_keep_alive(KEEP_ALIVE)
        .customize()
        .insert_header(("X-Accel-Buffering", "no")))
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
    state.conversations.get(&principal, conversation_id).await?;
    if state
        .generations
        .cancel(conversation_id, CancelReason::User)
    {
        Ok(HttpResponse::Accepted().finish())
    } else {
        Err(ApiError::Conflict(
            "nothing is being generated in this conversation".to_owned(),
        ))
    }
}

/// One generation in flight: drives the core's stream to its end whatever the client does.
struct Relay {
    events: ChatStream,
    tx: mpsc::Sender<sse::Event>,
    token: CancelToken,
    timeout: Duration,
    metrics: Arc<Metrics>,
    started: Instant,
    _registration: Registration,
}

impl Relay {
    async fn run(mut self) {
        self.metrics.open_streams.inc();
        let deadline = tokio::time::sleep(self.timeout);
        tokio::pin!(deadline);
        let mut next_id: u64 = 0;
        let mut first_delta = true;
        let mut client_gone = false;
        loop {
            let event = tokio::select! {
                biased;
                event = self.events.next() => event,
                () = &mut deadline, if self.token.reason().is_none() => {
                    tracing::warn!(timeout_secs = self.timeout.as_secs(), "a generation hit its time limit");
                    self.token.cancel(CancelReason::Timeout);
                    continue;
                }
            };
            let Some(event) = event else { break };
            self.observe(&event, &mut first_delta);
            if client_gone {
                continue;
            }
            next_id += 1;
            if self.tx.send(frame(event, next_id)).await.is_err() {
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
            ChatEvent::UserMessage(_) | ChatEvent::AssistantMessage(_) => {}
        }
    }
}

/// The SSE frame of an event: `event: <name>`, `id: <n>`, one line of JSON.
fn frame(event: ChatEvent, id: u64) -> sse::Event {
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
    };
    let data = data.unwrap_or_else(|_| sse::Data::new("{}"));
    data.event(name).id(id.to_string()).into()
}
