//! Micro-benchmarks of the per-delta hot paths (`cargo bench -p confab-bench`):
//!
//! - `provider_event`: reading one provider SSE event. The OpenAI adapter's decoder is
//!   private, so this measures (a) a replica of its work — SSE parsing with
//!   `eventsource-stream`, `serde_json` into a `Value`, the `type` lookup and the typed
//!   `TextDelta` — and (b) the adapter itself through its smallest public surface,
//!   `ResponsesLlm::stream` against the local fake provider at full speed (HTTP included).
//! - `outgoing_frame`: what `apps/server/src/routes/chat.rs` `frame()` does for a delta —
//!   `serde_json` of `confab_api_types::Delta`, an `actix_web_lab::sse::Event` — and its
//!   encoding by the `Sse` body, as the server writes it.
//! - `chat_service`: the per-delta path through `ChatService` with the in-memory store and a
//!   `ScriptedLlm` of many deltas and no delay.
//!
//! Every figure is per delta (criterion's throughput is set in elements = deltas).
// Test code: a failed unwrap is a failed test (clippy.toml covers #[test] and #[cfg(test)];
// this covers the helpers of this test crate).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use actix_web::body::MessageBody;
use actix_web_lab::sse;
use bytes::Bytes;
use confab_api_types as api;
use confab_core::ports::{ChatHistory, LlmEvent, LlmMessage, LlmRequest, LlmStream, ProjectStore};
use confab_core::{
    CancelToken, ChatEvent, ChatService, ChatSettings, Conversation, ConversationId, Limits,
    Principal, Project, ProjectId, Role, SendRequest, UserId, now,
};
use confab_limits::SlidingWindowLimiter;
use confab_memory::{MemoryStore, ScriptedLlm};
use confab_openai::{OpenAiConfig, ResponsesLlm};
use confab_tests::fake_provider::{FakeConfig, FakeProvider};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use eventsource_stream::Eventsource;
use futures::StreamExt;
use serde::Deserialize;
use uuid::Uuid;

/// Deltas per reply in the stream benchmarks.
const DELTAS: usize = 1000;

/// One `response.output_text.delta` event exactly as the fake provider (and OpenAI) sends it.
fn provider_delta_event(seq: usize) -> String {
    format!(
        "event: response.output_text.delta\ndata: {{\"content_index\":0,\"delta\":\" tok{:02}\",\"item_id\":\"msg_fake00000000000000000001\",\"logprobs\":[],\"obfuscation\":\"fake\",\"output_index\":0,\"sequence_number\":{seq},\"type\":\"response.output_text.delta\"}}\n\n",
        seq % 100
    )
}

#[derive(Deserialize)]
struct TextDelta {
    delta: String,
}

/// A replica of `ResponsesDecoder::event` for a delta (adapters/openai/src/responses.rs).
fn decode_like_the_adapter(data: &str, event_name: &str) -> Option<String> {
    let value: serde_json::Value = serde_json::from_str(data).ok()?;
    let kind = value
        .get("type")
        .and_then(serde_json::Value::as_str)
        .unwrap_or(event_name)
        .to_owned();
    match kind.as_str() {
        "response.output_text.delta" => {
            let delta: TextDelta = serde_json::from_value(value).ok()?;
            Some(delta.delta)
        }
        _ => None,
    }
}

/// A possible cheaper decoder (not what the adapter does today): one typed pass that borrows
/// the `type` instead of building a `Value` and converting it a second time.
#[derive(Deserialize)]
struct TypedEvent<'a> {
    #[serde(rename = "type", borrow)]
    kind: std::borrow::Cow<'a, str>,
    #[serde(default)]
    delta: Option<String>,
}

fn decode_typed_proposal(data: &str) -> Option<String> {
    let event: TypedEvent<'_> = serde_json::from_str(data).ok()?;
    if event.kind == "response.output_text.delta" {
        event.delta
    } else {
        None
    }
}

fn provider_event(c: &mut Criterion) {
    let mut group = c.benchmark_group("provider_event");

    let one = provider_delta_event(7);
    let data = one
        .lines()
        .find_map(|l| l.strip_prefix("data: "))
        .unwrap()
        .to_owned();
    group.throughput(Throughput::Elements(1));
    group.bench_function("decode_json_replica", |b| {
        b.iter(|| decode_like_the_adapter(black_box(&data), "response.output_text.delta"));
    });

    // One event per read, as the provider's chunks arrive (one big buffer would measure
    // eventsource-stream's buffer shifting instead).
    group.bench_function("decode_json_typed_proposal", |b| {
        b.iter(|| decode_typed_proposal(black_box(&data)));
    });

    let wire: Vec<Bytes> = (0..DELTAS)
        .map(|i| Bytes::from(provider_delta_event(i)))
        .collect();
    group.throughput(Throughput::Elements(DELTAS as u64));
    group.bench_function("sse_and_json_replica", |b| {
        b.iter(|| {
            let chunks = wire.clone();
            futures::executor::block_on(async move {
                let mut events =
                    futures::stream::iter(chunks.into_iter().map(Ok::<_, std::io::Error>))
                        .eventsource();
                let mut n = 0usize;
                while let Some(Ok(event)) = events.next().await {
                    if decode_like_the_adapter(&event.data, &event.event).is_some() {
                        n += 1;
                    }
                }
                assert_eq!(n, DELTAS);
            });
        });
    });

    // The adapter itself, end to end over loopback HTTP (the smallest public surface).
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let deltas: Vec<String> = (0..DELTAS).map(|i| format!(" tok{:02}", i % 100)).collect();
    let refs: Vec<&str> = deltas.iter().map(String::as_str).collect();
    let fake = runtime
        .block_on(FakeProvider::start(FakeConfig::replying(&refs)))
        .unwrap();
    let llm = ResponsesLlm::new(
        OpenAiConfig::new("bench".to_owned().into())
            .with_base_url(fake.base_url())
            .with_model("bench"),
    )
    .unwrap();
    let request = LlmRequest {
        model: "bench".to_owned(),
        instructions: None,
        messages: vec![LlmMessage {
            role: Role::User,
            content: "hello".to_owned(),
        }],
        max_output_tokens: None,
        attachments: Vec::new(),
        sources: Vec::new(),
    };
    group.sample_size(20);
    group.bench_function("responses_llm_over_http", |b| {
        b.iter(|| {
            runtime.block_on(async {
                let mut stream = llm.stream(request.clone());
                let mut n = 0usize;
                while let Some(event) = stream.next().await {
                    if let Ok(LlmEvent::Delta(_)) = event {
                        n += 1;
                    }
                }
                assert_eq!(n, DELTAS);
            });
            fake.clear_requests();
        });
    });
    group.finish();
    drop(fake);
    drop(runtime);
}

/// What the server's `frame()` does for a delta.
fn delta_frame(message_id: Uuid, text: String, id: u64) -> sse::Event {
    let data = sse::Data::new_json(api::Delta { message_id, text })
        .unwrap_or_else(|_| sse::Data::new("{}"));
    data.event(api::events::DELTA).id(id.to_string()).into()
}

fn outgoing_frame(c: &mut Criterion) {
    let mut group = c.benchmark_group("outgoing_frame");
    group.throughput(Throughput::Elements(1));
    let message_id = Uuid::now_v7();
    group.bench_function("build_delta_event", |b| {
        let mut id = 0u64;
        b.iter(|| {
            id += 1;
            black_box(delta_frame(message_id, " tok42".to_owned(), id))
        });
    });

    group.bench_function("build_and_encode_delta_event", |b| {
        let mut id = 0u64;
        let events = futures::stream::repeat_with(move || {
            id += 1;
            delta_frame(message_id, " tok42".to_owned(), id)
        });
        let mut body = Box::pin(sse::Sse::from_infallible_stream(events));
        let mut cx = Context::from_waker(futures::task::noop_waker_ref());
        b.iter(|| match body.as_mut().poll_next(&mut cx) {
            Poll::Ready(Some(Ok(bytes))) => black_box(bytes),
            _ => panic!("the SSE body did not yield a frame"),
        });
    });
    group.finish();
}

struct ChatFixture {
    service: ChatService,
    history: MemoryStore,
    principal: Principal,
    project_id: ProjectId,
}

impl ChatFixture {
    async fn new() -> Self {
        let store = MemoryStore::new();
        let deltas: Vec<String> = (0..DELTAS).map(|i| format!(" tok{:02}", i % 100)).collect();
        let refs: Vec<&str> = deltas.iter().map(String::as_str).collect();
        let llm = ScriptedLlm::replying(&refs);
        let service = ChatService::new(
            Arc::new(store.clone()),
            Arc::new(store.clone()),
            Arc::new(llm),
            Arc::new(SlidingWindowLimiter::new(u32::MAX)),
            ChatSettings::default(),
            Limits::default(),
        )
        // The runtime's timer, as the server's: not a thread per reply's lease timer.
        .with_timer(Arc::new(
            |duration| -> futures::future::BoxFuture<'static, ()> {
                Box::pin(tokio::time::sleep(duration))
            },
        ));
        let user = UserId::new("bench").unwrap();
        let at = now();
        let project = Project {
            id: ProjectId::new(),
            owner_id: user.clone(),
            name: "bench".to_owned(),
            description: None,
            created_at: at,
            updated_at: at,
            knowledge: true,
            language: confab_core::values::SearchLanguage::default(),
        };
        store.insert_project(&project).await.unwrap();
        Self {
            service,
            history: store,
            principal: Principal { user_id: user },
            project_id: project.id,
        }
    }

    async fn conversation(&self) -> ConversationId {
        let at = now();
        let conversation = Conversation {
            active_reply_id: None,
            leaf_id: None,
            model: None,
            id: ConversationId::new(),
            project_id: self.project_id,
            owner_id: self.principal.user_id.clone(),
            title: None,
            created_at: at,
            updated_at: at,
        };
        self.history
            .insert_conversation(&conversation)
            .await
            .unwrap();
        conversation.id
    }

    /// One whole send; returns how many deltas it yielded.
    async fn send(&self, conversation_id: ConversationId) -> usize {
        let request = SendRequest {
            conversation_id,
            content: "Tell me something.".to_owned(),
            client_message_id: None,
            parent: confab_core::Parent::Leaf,
            file_ids: Vec::new(),
        };
        let mut stream = self
            .service
            .send(&self.principal, request, CancelToken::new())
            .await
            .unwrap();
        let mut n = 0;
        while let Some(event) = stream.next().await {
            match event {
                ChatEvent::Delta { .. } => n += 1,
                ChatEvent::Error { detail, .. } => panic!("the reply failed: {detail}"),
                _ => {}
            }
        }
        n
    }
}

fn chat_service(c: &mut Criterion) {
    let mut group = c.benchmark_group("chat_service");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let fixture = runtime.block_on(ChatFixture::new());
    group.throughput(Throughput::Elements(DELTAS as u64));
    group.bench_function("send_and_drain_per_delta", |b| {
        b.iter_custom(|iters| {
            runtime.block_on(async {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let conversation = fixture.conversation().await;
                    let started = Instant::now();
                    let n = fixture.send(conversation).await;
                    total += started.elapsed();
                    assert_eq!(n, DELTAS);
                }
                total
            })
        });
    });
    group.finish();
}

criterion_group!(benches, provider_event, outgoing_frame, chat_service);
criterion_main!(benches);
