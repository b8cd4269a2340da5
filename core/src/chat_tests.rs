//! Unit tests of `ChatService::send`: mockall mocks for the stores and the send limiter, a
//! scripted model that records its requests and notices when its stream is dropped. Each
//! test proves one branch of the use case and asserts what was stored, and in what order.

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use futures::executor::block_on;
use futures::{Stream, StreamExt};
use uuid::Uuid;

use super::{
    ChatEvent, ChatService, ChatSettings, ChatStream, SendRequest, StreamErrorCode, describe,
};
use crate::cancel::{CancelReason, CancelToken};
use crate::error::{ChatError, Conflict, LlmError, StoreError};
use crate::ids::{ConversationId, MessageId, ProjectId, PromptId, UserId};
use crate::model::{
    Conversation, Message, MessageStatus, Parent, Principal, Prompt, Role, Timestamp, Usage, now,
};
use crate::ports::{
    Completion, FinishOutcome, Incomplete, LlmEvent, LlmEventStream, LlmMessage, LlmRequest,
    LlmStream, MockChatHistory, MockPromptStore, MockSendLimiter, Timer,
};
use crate::values::Limits;
use futures::future::BoxFuture;

const DEFAULT_MODEL: &str = "scripted-default";
const CONFIGURED_MODEL: &str = "gpt-configured";

// ---------------------------------------------------------------------------------------
// The scripted model
// ---------------------------------------------------------------------------------------

/// What the scripted stream does after its events: end, or wait forever (a slow provider).
#[derive(Clone, Copy)]
enum End {
    Close,
    Hang,
}

type Script = (Vec<Result<LlmEvent, LlmError>>, End);

/// An `LlmStream` that plays one script, records the request and flags its stream's drop.
struct ScriptedLlm {
    script: Mutex<Option<Script>>,
    requests: Mutex<Vec<LlmRequest>>,
    dropped: Arc<AtomicBool>,
}

impl ScriptedLlm {
    fn new(events: Vec<Result<LlmEvent, LlmError>>, end: End) -> Arc<Self> {
        Arc::new(Self {
            script: Mutex::new(Some((events, end))),
            requests: Mutex::new(Vec::new()),
            dropped: Arc::new(AtomicBool::new(false)),
        })
    }

    /// A model that must never be asked.
    fn unused() -> Arc<Self> {
        Self::new(Vec::new(), End::Close)
    }

    fn requests(&self) -> Vec<LlmRequest> {
        self.requests.lock().unwrap().clone()
    }

    /// The one request this model was asked.
    fn request(&self) -> LlmRequest {
        let requests = self.requests();
        assert_eq!(
            requests.len(),
            1,
            "the model is asked exactly once per send"
        );
        requests.into_iter().next().unwrap()
    }

    fn stream_dropped(&self) -> bool {
        self.dropped.load(Ordering::SeqCst)
    }
}

impl LlmStream for ScriptedLlm {
    fn provider(&self) -> &str {
        "scripted"
    }

    fn default_model(&self) -> &str {
        DEFAULT_MODEL
    }

    fn stream(&self, request: LlmRequest) -> LlmEventStream {
        self.requests.lock().unwrap().push(request);
        let (events, end) = self
            .script
            .lock()
            .unwrap()
            .take()
            .expect("the scripted model plays its script once");
        Box::pin(ScriptedStream {
            events: events.into(),
            end,
            dropped: Arc::clone(&self.dropped),
        })
    }
}

struct ScriptedStream {
    events: VecDeque<Result<LlmEvent, LlmError>>,
    end: End,
    dropped: Arc<AtomicBool>,
}

impl Stream for ScriptedStream {
    type Item = Result<LlmEvent, LlmError>;

    fn poll_next(mut self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        match self.events.pop_front() {
            Some(event) => Poll::Ready(Some(event)),
            None => match self.end {
                End::Close => Poll::Ready(None),
                // Never ready again; only a cancel can end the reply.
                End::Hang => Poll::Pending,
            },
        }
    }
}

impl Drop for ScriptedStream {
    fn drop(&mut self) {
        self.dropped.store(true, Ordering::SeqCst);
    }
}

fn delta(text: &str) -> Result<LlmEvent, LlmError> {
    Ok(LlmEvent::Delta(text.to_owned()))
}

fn completed(usage: Option<Usage>, model: Option<&str>) -> Result<LlmEvent, LlmError> {
    Ok(LlmEvent::Completed(Completion {
        usage,
        model: model.map(str::to_owned),
        ..Completion::default()
    }))
}

fn incomplete(reason: Incomplete) -> Result<LlmEvent, LlmError> {
    Ok(LlmEvent::Completed(Completion {
        incomplete: Some(reason),
        ..Completion::default()
    }))
}

// ---------------------------------------------------------------------------------------
// Fixtures
// ---------------------------------------------------------------------------------------

fn owner() -> UserId {
    UserId::new("user_alice").unwrap()
}

fn principal() -> Principal {
    Principal { user_id: owner() }
}

fn conversation() -> Conversation {
    let at = now();
    Conversation {
        active_reply_id: None,
        id: ConversationId::new(),
        project_id: ProjectId::new(),
        owner_id: owner(),
        title: None,
        created_at: at,
        updated_at: at,
        leaf_id: None,
        model: None,
    }
}

fn past(conversation: &Conversation, role: Role, status: MessageStatus, content: &str) -> Message {
    Message {
        id: MessageId::new(),
        conversation_id: conversation.id,
        parent_id: None,
        role,
        content: content.to_owned(),
        status,
        model: None,
        usage: None,
        error: None,
        client_message_id: None,
        created_at: now(),
        files: Vec::new(),
        sources: Vec::new(),
    }
}

fn llm_message(role: Role, content: &str) -> LlmMessage {
    LlmMessage {
        role,
        content: content.to_owned(),
    }
}

fn settings() -> ChatSettings {
    ChatSettings {
        model: Some(CONFIGURED_MODEL.to_owned()),
        max_output_tokens: Some(512),
        // Not a retry's pause (100 ms doubling to 2 s): the test timer tells them apart.
        touch_every: chrono::Duration::milliseconds(1_500),
        ..ChatSettings::default()
    }
}

fn request(conversation: &Conversation, content: &str) -> SendRequest {
    SendRequest {
        conversation_id: conversation.id,
        content: content.to_owned(),
        client_message_id: None,
        parent: Parent::Leaf,
        file_ids: Vec::new(),
    }
}

/// A write the chat use case made to `ChatHistory`, in the order it made them.
#[derive(Clone, Debug, PartialEq, Eq)]
#[expect(
    clippy::large_enum_variant,
    reason = "a test log of a few writes: boxing would only make the matches harder to read"
)]
enum Write {
    BeginTurn {
        user: Message,
        reply: Message,
        stale_before: Timestamp,
    },
    Touch {
        id: MessageId,
        content: String,
    },
    Finish(Message),
}

type Log<T> = Arc<Mutex<Vec<T>>>;

/// The tests' timer: a retry's pause (100 ms doubling to 2 s) is over at once, and recorded;
/// any other wait (until the lease's next renewal) is over only as many times as the test
/// allows, then never.
struct TestTimer {
    renewals: Mutex<usize>,
    pauses: Mutex<Vec<Duration>>,
}

impl TestTimer {
    fn pauses(&self) -> Vec<Duration> {
        self.pauses.lock().unwrap().clone()
    }
}

impl Timer for TestTimer {
    fn sleep(&self, duration: Duration) -> BoxFuture<'static, ()> {
        let is_pause = [100, 200, 400, 800, 1_600, 2_000]
            .map(Duration::from_millis)
            .contains(&duration);
        if is_pause {
            self.pauses.lock().unwrap().push(duration);
        } else {
            let mut renewals = self.renewals.lock().unwrap();
            if *renewals == 0 {
                return Box::pin(futures::future::pending());
            }
            *renewals -= 1;
        }
        Box::pin(futures::future::ready(()))
    }
}

/// The mocked stores and limiter of one test. A call nobody expected fails the test.
struct Mocks {
    conversation: Conversation,
    history: MockChatHistory,
    prompts: MockPromptStore,
    limiter: MockSendLimiter,
    writes: Log<Write>,
    /// `(client_message_id, stale_before)` of each `check_turn` (only a rate-limited send
    /// makes one).
    checks: Log<(Option<Uuid>, Timestamp)>,
    /// How many times the lease's renewal is due.
    renewals: usize,
}

impl Mocks {
    /// Mocks that expect nothing.
    fn strict() -> Self {
        Self::strict_in(conversation())
    }

    /// Mocks that expect nothing, around this conversation.
    fn strict_in(conversation: Conversation) -> Self {
        Self {
            conversation,
            history: MockChatHistory::new(),
            prompts: MockPromptStore::new(),
            limiter: MockSendLimiter::new(),
            writes: Arc::default(),
            checks: Arc::default(),
            renewals: 0,
        }
    }

    /// The lease's renewal is due `n` times (when the model is waited for).
    const fn renewals(mut self, n: usize) -> Self {
        self.renewals = n;
        self
    }

    /// Everything a send needs before the model: an allowance, the given prompt, a stored
    /// turn with this history; and the final store of the reply.
    fn accepting(prompt: Option<&str>, past: Vec<Message>) -> Self {
        Self::accepting_in(conversation(), prompt, past)
    }

    /// `accepting`, around this conversation.
    fn accepting_in(conversation: Conversation, prompt: Option<&str>, past: Vec<Message>) -> Self {
        Self::strict_in(conversation)
            .allowance()
            .no_refund()
            .prompt(prompt)
            .begin_turn_ok(past)
            .finish_ok()
    }

    fn turn_allowed(mut self) -> Self {
        let checks = Arc::clone(&self.checks);
        let conversation_id = self.conversation.id;
        self.history
            .expect_check_turn()
            .withf(move |o, c, _, _, _| *o == owner() && *c == conversation_id)
            .times(1)
            .returning(move |_, _, client_message_id, _, stale_before| {
                checks
                    .lock()
                    .unwrap()
                    .push((client_message_id, stale_before));
                Ok(())
            });
        self
    }

    fn allowance(mut self) -> Self {
        self.limiter
            .expect_try_acquire()
            .withf(|u| *u == owner())
            .times(1)
            .returning(|_| Ok(()));
        self
    }

    fn no_refund(mut self) -> Self {
        self.limiter.expect_refund().never();
        self
    }

    fn refund(mut self) -> Self {
        self.limiter
            .expect_refund()
            .withf(|u| *u == owner())
            .times(1)
            .return_const(());
        self
    }

    /// The limiter must not be touched at all.
    fn limiter_untouched(mut self) -> Self {
        self.limiter.expect_try_acquire().never();
        self.limiter.expect_refund().never();
        self
    }

    fn prompt(mut self, content: Option<&str>) -> Self {
        let project_id = self.conversation.project_id;
        let conversation_id = self.conversation.id;
        let prompt = content.map(|content| Prompt {
            id: PromptId::new(),
            project_id,
            version: 3,
            content: content.to_owned(),
            is_active: true,
            created_at: now(),
        });
        self.prompts
            .expect_conversation_prompt()
            .withf(move |o, c| *o == owner() && *c == conversation_id)
            .times(1)
            .returning(move |_, _| Ok(prompt.clone()));
        self
    }

    /// The turn is stored; the history before it is `past`, and the project has knowledge
    /// to search.
    fn begin_turn_ok(mut self, past: Vec<Message>) -> Self {
        let writes = Arc::clone(&self.writes);
        let conversation_id = self.conversation.id;
        let limit = settings().history_limit;
        self.history
            .expect_begin_turn()
            .withf(move |o, turn, _, l| {
                *o == owner()
                    && turn.user.as_ref().map(|u| u.conversation_id) == Some(conversation_id)
                    && turn.parent == Parent::Leaf
                    && turn.reply.conversation_id == conversation_id
                    && turn.quota.is_none()
                    && *l == limit
            })
            .times(1)
            .returning(move |_, turn, stale_before, _| {
                writes.lock().unwrap().push(Write::BeginTurn {
                    user: turn.user.clone().unwrap(),
                    reply: turn.reply.clone(),
                    stale_before,
                });
                Ok(crate::ports::Turn {
                    history: past.clone(),
                    knowledge: true,
                    ..crate::ports::Turn::default()
                })
            });
        self
    }

    fn begin_turn_fails(mut self, error: impl Fn() -> StoreError + Send + 'static) -> Self {
        self.history
            .expect_begin_turn()
            .times(1)
            .returning(move |_, _, _, _| Err(error()));
        self
    }

    fn finish_ok(mut self) -> Self {
        let writes = Arc::clone(&self.writes);
        self.history
            .expect_finish_reply()
            .times(1)
            .returning(move |reply, _| {
                writes.lock().unwrap().push(Write::Finish(reply.clone()));
                Ok(FinishOutcome::Stored)
            });
        self
    }

    /// `ChatHistory` must not be written to.
    fn stores_nothing(mut self) -> Self {
        self.history.expect_begin_turn().never();
        self.history.expect_touch_reply().never();
        self.history.expect_finish_reply().never();
        self
    }

    fn service(self, llm: &Arc<ScriptedLlm>, settings: ChatSettings) -> Harness {
        let timer = Arc::new(TestTimer {
            renewals: Mutex::new(self.renewals),
            pauses: Mutex::default(),
        });
        let service = ChatService::new(
            Arc::new(self.history),
            Arc::new(self.prompts),
            Arc::clone(llm) as Arc<dyn LlmStream>,
            Arc::new(self.limiter),
            settings,
            Limits::default(),
        )
        .with_timer(Arc::clone(&timer) as Arc<dyn Timer>);
        Harness {
            service,
            conversation: self.conversation,
            writes: self.writes,
            checks: self.checks,
            timer,
        }
    }
}

struct Harness {
    service: ChatService,
    conversation: Conversation,
    writes: Log<Write>,
    checks: Log<(Option<Uuid>, Timestamp)>,
    timer: Arc<TestTimer>,
}

impl Harness {
    fn start(&self, content: &str) -> Result<ChatStream, ChatError> {
        self.start_with(request(&self.conversation, content), CancelToken::new())
    }

    fn start_with(
        &self,
        request: SendRequest,
        cancel: CancelToken,
    ) -> Result<ChatStream, ChatError> {
        block_on(self.service.send(&principal(), request, cancel))
    }

    /// Sends and plays the whole stream.
    fn send(&self, content: &str) -> Turn {
        let stream = self.start(content).expect("the send is accepted");
        Turn::from_events(block_on(stream.collect()))
    }

    fn writes(&self) -> Vec<Write> {
        self.writes.lock().unwrap().clone()
    }

    /// The messages given to `begin_turn` and to `finish_reply`, checking that those were
    /// the only writes and came in that order.
    fn stored_turn(&self) -> (Message, Message, Message) {
        match self.writes().as_slice() {
            [Write::BeginTurn { user, reply, .. }, Write::Finish(last)] => {
                (user.clone(), reply.clone(), last.clone())
            }
            other => panic!("expected begin_turn then finish_reply, got {other:#?}"),
        }
    }
}

/// One played send, checked against the shape every stream has: `UserMessage`,
/// `AssistantMessage`, `Delta`s of that reply, then exactly one `Done` or `Error` whose
/// content is the concatenation of the deltas.
#[derive(Debug)]
struct Turn {
    user: Message,
    reply: Message,
    deltas: Vec<String>,
    last: ChatEvent,
}

impl Turn {
    fn from_events(events: Vec<ChatEvent>) -> Self {
        let mut events = events.into_iter();
        let Some(ChatEvent::UserMessage(user)) = events.next() else {
            panic!("the first event is the user's message");
        };
        let Some(ChatEvent::AssistantMessage(reply)) = events.next() else {
            panic!("the second event is the assistant's message");
        };
        let mut rest: Vec<ChatEvent> = events.collect();
        let last = rest.pop().expect("a stream ends with Done or Error");
        let deltas = rest
            .into_iter()
            .map(|event| match event {
                ChatEvent::Delta { message_id, text } => {
                    assert_eq!(message_id, reply.id, "deltas belong to the reply");
                    text
                }
                other => panic!("only deltas come between the messages and the end: {other:?}"),
            })
            .collect::<Vec<_>>();
        let turn = Self {
            user,
            reply,
            deltas,
            last,
        };
        assert!(matches!(
            turn.last,
            ChatEvent::Done(_) | ChatEvent::Error { .. }
        ));
        assert_eq!(turn.final_message().id, turn.reply.id);
        assert_eq!(turn.final_message().content, turn.deltas.concat());
        turn
    }

    fn final_message(&self) -> &Message {
        match &self.last {
            ChatEvent::Done(message) | ChatEvent::Error { message, .. } => message,
            other => panic!("not a final event: {other:?}"),
        }
    }

    /// The `Done` message; fails on `Error`.
    fn done(&self) -> &Message {
        match &self.last {
            ChatEvent::Done(message) => message,
            other => panic!("expected Done, got {other:?}"),
        }
    }

    /// The `Error` code and detail; fails on `Done`.
    fn error(&self) -> (StreamErrorCode, &str) {
        match &self.last {
            ChatEvent::Error { code, detail, .. } => (*code, detail.as_str()),
            other => panic!("expected Error, got {other:?}"),
        }
    }
}

/// Asserts a stored failed reply: the text so far, status `failed`, the event's detail as
/// its error.
fn assert_failed(turn: &Turn, stored: &Message, text: &str, code: StreamErrorCode) {
    let (got_code, detail) = turn.error();
    assert_eq!(got_code, code);
    assert!(!detail.is_empty(), "the detail is a sentence for a person");
    assert_eq!(
        stored,
        turn.final_message(),
        "the event carries the stored reply"
    );
    assert_eq!(stored.status, MessageStatus::Failed);
    assert_eq!(stored.content, text);
    assert_eq!(stored.error.as_deref(), Some(detail));
}

// ---------------------------------------------------------------------------------------
// Success
// ---------------------------------------------------------------------------------------

#[test]
fn a_successful_send_stores_the_turn_streams_the_deltas_and_stores_the_complete_reply() {
    let llm = ScriptedLlm::new(
        vec![
            delta("Sun"),
            delta(""),
            delta("ny"),
            delta(" all day."),
            completed(
                Some(Usage {
                    input_tokens: 42,
                    output_tokens: 7,
                }),
                Some("gpt-configured-2026-01-01"),
            ),
        ],
        End::Close,
    );
    let h = Mocks::accepting(Some("Be brief."), Vec::new()).service(&llm, settings());
    let client_message_id = Uuid::now_v7();
    let mut send = request(&h.conversation, "  What's the weather?\n");
    send.client_message_id = Some(client_message_id);

    let stream = h.start_with(send, CancelToken::new()).unwrap();
    let turn = Turn::from_events(block_on(stream.collect()));

    // The user's message, kept exactly as typed.
    assert_eq!(turn.user.conversation_id, h.conversation.id);
    assert_eq!(turn.user.role, Role::User);
    assert_eq!(turn.user.content, "  What's the weather?\n");
    assert_eq!(turn.user.status, MessageStatus::Complete);
    assert_eq!(turn.user.client_message_id, Some(client_message_id));
    assert_eq!(
        (
            turn.user.model.as_ref(),
            turn.user.usage,
            turn.user.error.as_ref()
        ),
        (None, None, None)
    );
    // The reply as announced: empty and streaming, after the user's message.
    assert_eq!(turn.reply.conversation_id, h.conversation.id);
    assert_eq!(turn.reply.role, Role::Assistant);
    assert_eq!(turn.reply.status, MessageStatus::Streaming);
    assert_eq!(turn.reply.content, "");
    assert_eq!(turn.reply.model.as_deref(), Some(CONFIGURED_MODEL));
    assert!(
        turn.user.id < turn.reply.id,
        "the reply sorts after the user's message"
    );
    // Deltas in order; the empty one is not relayed.
    assert_eq!(turn.deltas, ["Sun", "ny", " all day."]);
    // Done: complete, full text, usage and model from the completion.
    let done = turn.done();
    assert_eq!(done.status, MessageStatus::Complete);
    assert_eq!(done.content, "Sunny all day.");
    assert_eq!(
        done.usage,
        Some(Usage {
            input_tokens: 42,
            output_tokens: 7
        })
    );
    assert_eq!(done.model.as_deref(), Some("gpt-configured-2026-01-01"));
    assert_eq!(done.error, None);
    assert_eq!(done.role, Role::Assistant);

    // Stored: the user's message then the reply in one begin_turn, then the final reply once.
    let writes = h.writes();
    assert_eq!(writes.len(), 2, "{writes:#?}");
    let Write::BeginTurn {
        user,
        reply,
        stale_before,
    } = &writes[0]
    else {
        panic!("begin_turn comes first: {writes:#?}");
    };
    assert_eq!(user, &turn.user);
    assert_eq!(reply, &turn.reply);
    assert_eq!(*stale_before, user.created_at - settings().reply_lease);
    assert_eq!(writes[1], Write::Finish(done.clone()));
    assert!(
        h.checks.lock().unwrap().is_empty(),
        "an accepted send needs no separate check"
    );
}

#[test]
fn the_provider_is_sent_the_active_prompt_the_history_oldest_first_and_the_new_message_last() {
    let c = conversation();
    let history = vec![
        past(&c, Role::User, MessageStatus::Complete, "Hi"),
        past(
            &c,
            Role::Assistant,
            MessageStatus::Complete,
            "Hello! How can I help?",
        ),
        past(&c, Role::User, MessageStatus::Complete, "Tell me a joke"),
        past(
            &c,
            Role::Assistant,
            MessageStatus::Complete,
            "Why did the crab never share?",
        ),
    ];
    let mocks = Mocks::accepting_in(c, Some("You are a pirate."), history);
    let llm = ScriptedLlm::new(vec![delta("Arr"), completed(None, None)], End::Close);
    let h = mocks.service(&llm, settings());

    let turn = h.send("Another one");

    assert_eq!(turn.done().content, "Arr");
    assert_eq!(
        llm.request(),
        LlmRequest {
            model: CONFIGURED_MODEL.to_owned(),
            instructions: Some("You are a pirate.".to_owned()),
            messages: vec![
                llm_message(Role::User, "Hi"),
                llm_message(Role::Assistant, "Hello! How can I help?"),
                llm_message(Role::User, "Tell me a joke"),
                llm_message(Role::Assistant, "Why did the crab never share?"),
                llm_message(Role::User, "Another one"),
            ],
            max_output_tokens: Some(512),
            attachments: Vec::new(),
            sources: Vec::new(),
        }
    );
}

#[test]
fn without_an_active_prompt_the_request_has_no_instructions() {
    let llm = ScriptedLlm::new(vec![delta("ok"), completed(None, None)], End::Close);
    let h = Mocks::accepting(None, Vec::new()).service(&llm, settings());

    let turn = h.send("Hello");

    assert_eq!(turn.done().status, MessageStatus::Complete);
    let request = llm.request();
    assert_eq!(request.instructions, None);
    assert_eq!(request.messages, [llm_message(Role::User, "Hello")]);
}

#[test]
fn without_a_configured_model_the_providers_default_is_asked_and_stored() {
    let llm = ScriptedLlm::new(vec![delta("ok"), completed(None, None)], End::Close);
    let settings = ChatSettings {
        model: None,
        ..settings()
    };
    let h = Mocks::accepting(None, Vec::new()).service(&llm, settings);

    let turn = h.send("Hello");

    assert_eq!(llm.request().model, DEFAULT_MODEL);
    assert_eq!(turn.reply.model.as_deref(), Some(DEFAULT_MODEL));
    // The completion named no model: the one asked stays on the stored reply.
    let (_, _, stored) = h.stored_turn();
    assert_eq!(stored.model.as_deref(), Some(DEFAULT_MODEL));
    assert_eq!(stored.usage, None, "no usage reported, none stored");
}

// ---------------------------------------------------------------------------------------
// What the provider is sent
// ---------------------------------------------------------------------------------------

#[test]
fn streaming_and_empty_failed_replies_are_left_out_of_the_history_but_failed_or_cancelled_text_is_sent()
 {
    let c = conversation();
    let history = vec![
        past(&c, Role::User, MessageStatus::Complete, "q1"),
        past(&c, Role::Assistant, MessageStatus::Failed, ""),
        past(&c, Role::User, MessageStatus::Complete, "q2"),
        past(&c, Role::Assistant, MessageStatus::Failed, "half an answer"),
        past(&c, Role::User, MessageStatus::Complete, "q3"),
        past(
            &c,
            Role::Assistant,
            MessageStatus::Cancelled,
            "stopped here",
        ),
        past(&c, Role::User, MessageStatus::Complete, "q4"),
        past(
            &c,
            Role::Assistant,
            MessageStatus::Streaming,
            "still being written",
        ),
        past(&c, Role::Assistant, MessageStatus::Streaming, ""),
        past(&c, Role::Assistant, MessageStatus::Cancelled, ""),
    ];
    let mocks = Mocks::accepting_in(c, None, history);
    let llm = ScriptedLlm::new(vec![completed(None, None)], End::Close);
    let h = mocks.service(&llm, settings());

    h.send("q5");

    assert_eq!(
        llm.request().messages,
        [
            llm_message(Role::User, "q1"),
            llm_message(Role::User, "q2"),
            llm_message(Role::Assistant, "half an answer"),
            llm_message(Role::User, "q3"),
            llm_message(Role::Assistant, "stopped here"),
            llm_message(Role::User, "q4"),
            llm_message(Role::User, "q5"),
        ]
    );
}

#[test]
fn a_small_context_budget_drops_the_oldest_history_first_and_counts_the_prompt() {
    // Every 40-character message costs 10 + 4 tokens; the 48-character prompt costs 12.
    // Budget: 100 - 44 reserved = 56; minus prompt 12 and new message 14 = 30: two of the
    // three past messages fit (without counting the prompt, all three would).
    let c = conversation();
    let text = |n: u32| format!("{n}{}", "x".repeat(39));
    let history = (0..3)
        .map(|n| past(&c, Role::User, MessageStatus::Complete, &text(n)))
        .collect();
    let mocks = Mocks::accepting_in(c, Some(&"p".repeat(48)), history);
    let llm = ScriptedLlm::new(vec![completed(None, None)], End::Close);
    let settings = ChatSettings {
        context_tokens: 100,
        output_reserve: 44,
        ..settings()
    };
    let h = mocks.service(&llm, settings);

    h.send(&text(9));

    let request = llm.request();
    assert_eq!(
        request.instructions,
        Some("p".repeat(48)),
        "the prompt is always sent"
    );
    assert_eq!(
        request.messages,
        [
            llm_message(Role::User, &text(1)),
            llm_message(Role::User, &text(2)),
            llm_message(Role::User, &text(9)),
        ]
    );
}

#[test]
fn the_new_message_is_sent_even_when_it_alone_exceeds_the_budget() {
    let c = conversation();
    let history = vec![
        past(&c, Role::User, MessageStatus::Complete, "earlier"),
        past(&c, Role::Assistant, MessageStatus::Complete, "reply"),
    ];
    let mocks = Mocks::accepting_in(c, None, history);
    let llm = ScriptedLlm::new(vec![completed(None, None)], End::Close);
    let settings = ChatSettings {
        context_tokens: 50,
        output_reserve: 10,
        ..settings()
    };
    let h = mocks.service(&llm, settings);
    let long = "z".repeat(4_000);

    h.send(&long);

    assert_eq!(llm.request().messages, [llm_message(Role::User, &long)]);
}

// ---------------------------------------------------------------------------------------
// Provider failures
// ---------------------------------------------------------------------------------------

#[test]
fn a_provider_failure_before_the_first_token_stores_an_empty_failed_reply_after_the_user_turn() {
    let cases = [
        (
            LlmError::RateLimited {
                retry_after: Some(Duration::from_secs(3)),
            },
            StreamErrorCode::RateLimited,
        ),
        (
            LlmError::Upstream {
                status: Some(500),
                code: Some("server_error".to_owned()),
                message: "boom".to_owned(),
            },
            StreamErrorCode::UpstreamError,
        ),
        (
            LlmError::Timeout("first byte".to_owned()),
            StreamErrorCode::Timeout,
        ),
        (LlmError::Unauthorized, StreamErrorCode::UpstreamError),
        (
            LlmError::Unavailable("connection refused".to_owned()),
            StreamErrorCode::Unavailable,
        ),
        (
            LlmError::BadResponse("not json".to_owned()),
            StreamErrorCode::UpstreamError,
        ),
    ];
    for (error, code) in cases {
        let llm = ScriptedLlm::new(vec![Err(error.clone())], End::Close);
        let h = Mocks::accepting(None, Vec::new()).service(&llm, settings());

        let turn = h.send("Hello");

        let (user, reply, stored) = h.stored_turn();
        assert_eq!(user, turn.user, "{error:?}: the user's turn is stored");
        assert_eq!(reply.status, MessageStatus::Streaming);
        assert!(turn.deltas.is_empty());
        assert_failed(&turn, &stored, "", code);
        assert_eq!(turn.error().1, describe(&error).1, "{error:?}");
        assert_eq!(stored.usage, None);
    }
}

#[test]
fn a_provider_failure_mid_stream_stores_the_partial_text_as_failed() {
    let llm = ScriptedLlm::new(
        vec![
            delta("Once upon"),
            delta(" a time"),
            Err(LlmError::Upstream {
                status: None,
                code: Some("server_error".to_owned()),
                message: "stream reset".to_owned(),
            }),
            // Nothing after an error is read.
            delta(" never"),
        ],
        End::Close,
    );
    let h = Mocks::accepting(None, Vec::new()).service(&llm, settings());

    let turn = h.send("Tell me a story");

    assert_eq!(turn.deltas, ["Once upon", " a time"]);
    let (_, _, stored) = h.stored_turn();
    assert_failed(
        &turn,
        &stored,
        "Once upon a time",
        StreamErrorCode::UpstreamError,
    );
    assert_eq!(stored.model.as_deref(), Some(CONFIGURED_MODEL));
}

#[test]
fn a_stream_that_ends_without_completing_is_stored_failed_as_truncated() {
    let llm = ScriptedLlm::new(vec![delta("par"), delta("tial")], End::Close);
    let h = Mocks::accepting(None, Vec::new()).service(&llm, settings());

    let turn = h.send("Hello");

    let (_, _, stored) = h.stored_turn();
    assert_failed(&turn, &stored, "partial", StreamErrorCode::Truncated);
}

#[test]
fn a_content_filter_stop_is_stored_failed_with_code_content_filter() {
    let llm = ScriptedLlm::new(
        vec![delta("Here is how"), incomplete(Incomplete::ContentFilter)],
        End::Close,
    );
    let h = Mocks::accepting(None, Vec::new()).service(&llm, settings());

    let turn = h.send("Something forbidden");

    let (_, _, stored) = h.stored_turn();
    assert_failed(
        &turn,
        &stored,
        "Here is how",
        StreamErrorCode::ContentFilter,
    );
}

#[test]
fn a_reply_cut_by_the_output_limit_is_stored_complete() {
    let llm = ScriptedLlm::new(
        vec![delta("A long"), incomplete(Incomplete::MaxOutputTokens)],
        End::Close,
    );
    let h = Mocks::accepting(None, Vec::new()).service(&llm, settings());

    let turn = h.send("Write an essay");

    let (_, _, stored) = h.stored_turn();
    assert_eq!(&stored, turn.done());
    assert_eq!(stored.status, MessageStatus::Complete);
    assert_eq!(stored.content, "A long");
    assert_eq!(stored.error, None);
}

#[test]
fn describe_maps_every_provider_error_to_an_api_code_without_leaking_the_raw_message() {
    let secret = "sk-live-0123456789 at https://internal.example/v1";
    let cases = [
        (LlmError::RateLimited { retry_after: None }, "rate_limited"),
        (
            LlmError::Upstream {
                status: Some(502),
                code: Some("bad_gateway".to_owned()),
                message: secret.to_owned(),
            },
            "upstream_error",
        ),
        (LlmError::Unauthorized, "upstream_error"),
        (LlmError::Timeout(secret.to_owned()), "timeout"),
        (LlmError::Unavailable(secret.to_owned()), "unavailable"),
        (LlmError::BadResponse(secret.to_owned()), "upstream_error"),
        (LlmError::Truncated, "truncated"),
        (LlmError::ContentFilter, "content_filter"),
    ];
    for (error, code) in cases {
        let (got, detail) = describe(&error);
        assert_eq!(got.as_str(), code, "{error:?}");
        assert!(detail.ends_with('.'), "{error:?}: a sentence: {detail}");
        assert!(
            !detail.contains(secret),
            "{error:?}: the raw message stays in the logs"
        );
    }
    let (_, detail) = describe(&LlmError::Upstream {
        status: Some(502),
        code: Some("bad_gateway".to_owned()),
        message: String::new(),
    });
    assert!(
        detail.contains("502") && detail.contains("bad_gateway"),
        "{detail}"
    );
}

#[test]
fn describe_says_in_words_what_a_provider_error_means() {
    let upstream = |status: Option<u16>, code: &str| LlmError::Upstream {
        status,
        code: Some(code.to_owned()),
        message: "Incorrect API key provided: sk-abc…xyz.".to_owned(),
    };
    let cases = [
        (
            upstream(Some(400), "model_not_found"),
            "upstream_error",
            "does not offer the model",
        ),
        (
            upstream(Some(429), "insufficient_quota"),
            "upstream_error",
            "run out of quota",
        ),
        (
            upstream(Some(400), "context_length_exceeded"),
            "upstream_error",
            "too long for the model",
        ),
        (
            upstream(Some(529), "overloaded"),
            "unavailable",
            "overloaded",
        ),
        (
            upstream(Some(404), "not_found"),
            "upstream_error",
            "no such endpoint or model",
        ),
        (
            upstream(Some(400), "invalid_request_error"),
            "upstream_error",
            "rejected the request as invalid (status 400)",
        ),
        (
            upstream(None, "server_error"),
            "upstream_error",
            "internal error.",
        ),
        (
            LlmError::Unauthorized,
            "upstream_error",
            "rejected the API key",
        ),
        (LlmError::ContentFilter, "content_filter", "content filter"),
        (
            LlmError::RateLimited { retry_after: None },
            "rate_limited",
            "rate limiting",
        ),
    ];
    for (error, code, words) in cases {
        let (got, detail) = describe(&error);
        assert_eq!(got.as_str(), code, "{error:?}");
        assert!(detail.contains(words), "{error:?}: {detail}");
        assert!(detail.ends_with('.') && detail.len() < 200, "{detail}");
        assert!(!detail.contains("sk-"), "{detail}");
    }
}

#[test]
fn describe_shows_an_unknown_provider_code_only_when_it_is_a_short_identifier() {
    let detail = |status: Option<u16>, code: &str| {
        describe(&LlmError::Upstream {
            status,
            code: Some(code.to_owned()),
            message: String::new(),
        })
        .1
    };
    // The sentence LiteLLM's numeric code gave: "… (status 400): 400."
    assert_eq!(
        detail(Some(418), "418"),
        "The model provider returned an error (status 418)."
    );
    assert_eq!(
        detail(Some(418), "teapot"),
        "The model provider returned an error (status 418, teapot)."
    );
    assert_eq!(
        detail(None, "teapot"),
        "The model provider returned an error (teapot)."
    );
    for odd in ["sk key=sk-abc123", "<html>", &"x".repeat(65), ""] {
        assert_eq!(
            detail(Some(418), odd),
            "The model provider returned an error (status 418).",
            "{odd}"
        );
    }
}

// ---------------------------------------------------------------------------------------
// Cancellation
// ---------------------------------------------------------------------------------------

#[test]
fn a_users_stop_stores_the_text_so_far_as_cancelled_and_drops_the_upstream_stream() {
    let llm = ScriptedLlm::new(vec![delta("Hel"), delta("lo")], End::Hang);
    let h = Mocks::accepting(None, Vec::new()).service(&llm, settings());
    let cancel = CancelToken::new();
    let mut stream = h
        .start_with(request(&h.conversation, "Hi"), cancel.clone())
        .unwrap();

    let (events, dropped_before, dropped_at_done) = block_on(async {
        let mut events = Vec::new();
        for _ in 0..4 {
            events.push(stream.next().await.unwrap());
        }
        let dropped_before = llm.stream_dropped();
        // The provider is now silent: the stop comes from another thread and must wake us.
        let stopper = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(20));
            cancel.cancel(CancelReason::User);
        });
        events.push(stream.next().await.unwrap());
        let dropped_at_done = llm.stream_dropped();
        assert!(stream.next().await.is_none(), "nothing follows Done");
        stopper.join().unwrap();
        (events, dropped_before, dropped_at_done)
    });

    assert!(
        !dropped_before,
        "the upstream stream is alive while the reply streams"
    );
    assert!(
        dropped_at_done,
        "the upstream stream is dropped before Done is sent"
    );
    let turn = Turn::from_events(events);
    let (_, _, stored) = h.stored_turn();
    assert_eq!(&stored, turn.done());
    assert_eq!(stored.status, MessageStatus::Cancelled);
    assert_eq!(stored.content, "Hello");
    assert_eq!(stored.error, None);
    assert_eq!(stored.usage, None);
}

fn cancel_after_first_delta(reason: CancelReason) -> (Harness, Arc<ScriptedLlm>, Turn) {
    let llm = ScriptedLlm::new(vec![delta("Half a th")], End::Hang);
    let h = Mocks::accepting(None, Vec::new()).service(&llm, settings());
    let cancel = CancelToken::new();
    let mut stream = h
        .start_with(request(&h.conversation, "Hi"), cancel.clone())
        .unwrap();
    let events = block_on(async {
        let mut events = Vec::new();
        for _ in 0..3 {
            events.push(stream.next().await.unwrap());
        }
        cancel.cancel(reason);
        while let Some(event) = stream.next().await {
            events.push(event);
        }
        events
    });
    (h, llm, Turn::from_events(events))
}

#[test]
fn a_generation_timeout_stores_the_text_so_far_as_failed_with_code_timeout() {
    let (h, llm, turn) = cancel_after_first_delta(CancelReason::Timeout);

    let (_, _, stored) = h.stored_turn();
    assert_failed(&turn, &stored, "Half a th", StreamErrorCode::Timeout);
    assert!(llm.stream_dropped());
}

#[test]
fn a_shutdown_stores_the_text_so_far_as_failed_with_code_interrupted() {
    let (h, llm, turn) = cancel_after_first_delta(CancelReason::Shutdown);

    let (_, _, stored) = h.stored_turn();
    assert_failed(&turn, &stored, "Half a th", StreamErrorCode::Interrupted);
    assert!(llm.stream_dropped());
}

// ---------------------------------------------------------------------------------------
// Refusals: nothing is stored
// ---------------------------------------------------------------------------------------

#[test]
fn another_users_conversation_is_not_found_and_nothing_is_stored() {
    // The turn finds no conversation of this owner; the prompt read beside it neither.
    let mut mocks = Mocks::strict()
        .allowance()
        .refund()
        .begin_turn_fails(|| StoreError::NotFound);
    mocks
        .prompts
        .expect_conversation_prompt()
        .returning(|_, _| Err(StoreError::NotFound));
    mocks.history.expect_finish_reply().never();
    let llm = ScriptedLlm::unused();
    let h = mocks.service(&llm, settings());

    let result = h.start("Hello");

    assert!(
        matches!(result, Err(ChatError::NotFound)),
        "{:?}",
        result.err()
    );
    assert!(h.writes().is_empty());
    assert!(llm.requests().is_empty());
}

#[test]
fn blank_content_is_refused_before_any_store_is_asked() {
    for blank in ["", "   ", " \n\t "] {
        let mut mocks = Mocks::strict().stores_nothing().limiter_untouched();
        mocks.history.expect_check_turn().never();
        mocks.prompts.expect_conversation_prompt().never();
        let llm = ScriptedLlm::unused();
        let h = mocks.service(&llm, settings());

        let result = h.start(blank);

        match result {
            Err(ChatError::Validation(e)) => assert_eq!(e.field, "content"),
            other => panic!(
                "{blank:?}: expected a validation error, got {:?}",
                other.err()
            ),
        }
        assert!(llm.requests().is_empty());
    }
}

#[test]
fn content_over_the_length_limit_is_refused_before_any_store_is_asked() {
    let mut mocks = Mocks::strict().stores_nothing().limiter_untouched();
    mocks.history.expect_check_turn().never();
    mocks.prompts.expect_conversation_prompt().never();
    let llm = ScriptedLlm::unused();
    let h = mocks.service(&llm, settings());

    let result = h.start(&"a".repeat(Limits::default().message_chars + 1));

    assert!(
        matches!(result, Err(ChatError::Validation(_))),
        "{:?}",
        result.err()
    );
}

#[test]
fn more_than_ten_attachments_or_a_file_named_twice_is_refused_before_any_store_is_asked() {
    let eleven: Vec<crate::ids::FileId> = (0..=crate::chat::MAX_ATTACHMENTS)
        .map(|_| crate::ids::FileId::new())
        .collect();
    let twice = vec![eleven[0], eleven[1], eleven[0]];
    for file_ids in [eleven, twice] {
        let mut mocks = Mocks::strict().stores_nothing().limiter_untouched();
        mocks.history.expect_check_turn().never();
        mocks.prompts.expect_conversation_prompt().never();
        let llm = ScriptedLlm::unused();
        let h = mocks.service(&llm, settings());
        let mut send = request(&h.conversation, "Read these.");
        send.file_ids = file_ids;

        let result = h.start_with(send, CancelToken::new());

        match result {
            Err(ChatError::Validation(e)) => assert_eq!(e.field, "file_ids"),
            other => panic!("expected a validation error, got {:?}", other.err()),
        }
        assert!(llm.requests().is_empty());
    }
}

#[test]
fn a_sends_files_go_to_begin_turn_and_the_user_message_carries_the_links_it_stored() {
    let files: Vec<crate::model::MessageFile> = ["notes.txt", "plan.pdf"]
        .iter()
        .map(|name| crate::model::MessageFile {
            id: crate::ids::FileId::new(),
            filename: (*name).to_owned(),
            content_type: "text/plain".to_owned(),
            size_bytes: 12,
            deleted: false,
        })
        .collect();
    let ids: Vec<crate::ids::FileId> = files.iter().map(|f| f.id).collect();
    let mut mocks = Mocks::strict()
        .allowance()
        .no_refund()
        .prompt(None)
        .finish_ok();
    let (wanted, stored) = (ids.clone(), files.clone());
    mocks
        .history
        .expect_begin_turn()
        .withf(move |_, turn, _, _| turn.file_ids == wanted)
        .times(1)
        .returning(move |_, _, _, _| {
            Ok(crate::ports::Turn {
                files: stored.clone(),
                ..crate::ports::Turn::default()
            })
        });
    let llm = ScriptedLlm::new(vec![delta("Read."), completed(None, None)], End::Close);
    let h = mocks.service(&llm, settings());
    let mut send = request(&h.conversation, "Read these.");
    send.file_ids = ids;

    let stream = h.start_with(send, CancelToken::new()).unwrap();
    let turn = Turn::from_events(block_on(stream.collect()));

    assert_eq!(turn.user.files, files);
    assert!(turn.reply.files.is_empty());
    let sent: Vec<(String, u64)> = llm
        .request()
        .attachments
        .into_iter()
        .map(|a| (a.filename, a.size_bytes))
        .collect();
    assert_eq!(
        sent,
        [("notes.txt".to_owned(), 12), ("plan.pdf".to_owned(), 12)],
        "the model is given the message's files in order"
    );
}

#[test]
fn a_send_while_a_reply_is_streaming_or_a_repeated_client_id_is_a_conflict_and_not_charged() {
    for conflict in [Conflict::ReplyInProgress, Conflict::DuplicateClientMessage] {
        // The turn refuses atomically (it also settles a race between two sends); the
        // allowance taken for it is given back.
        let mut mocks = Mocks::strict()
            .allowance()
            .refund()
            .prompt(None)
            .begin_turn_fails(move || StoreError::Conflict(conflict));
        mocks.history.expect_finish_reply().never();
        let llm = ScriptedLlm::unused();
        let h = mocks.service(&llm, settings());

        let result = h.start("Hello");

        match result {
            Err(ChatError::Conflict(got)) => assert_eq!(got, conflict),
            other => panic!("expected {conflict:?}, got {:?}", other.err()),
        }
        assert!(h.writes().is_empty());
        assert!(llm.requests().is_empty(), "the model is not asked");
    }
}

#[test]
fn a_user_over_the_send_limit_is_told_when_to_retry_and_nothing_is_stored() {
    let mut mocks = Mocks::strict().turn_allowed().no_refund().stores_nothing();
    mocks
        .limiter
        .expect_try_acquire()
        .times(1)
        .returning(|_| Err(Duration::from_secs(7)));
    mocks.prompts.expect_conversation_prompt().never();
    let llm = ScriptedLlm::unused();
    let h = mocks.service(&llm, settings());
    let client_message_id = Uuid::now_v7();
    let mut send = request(&h.conversation, "Hello");
    send.client_message_id = Some(client_message_id);
    let before = now();

    let result = h.start_with(send, CancelToken::new());

    match result {
        Err(ChatError::RateLimited { retry_after }) => {
            assert_eq!(retry_after, Duration::from_secs(7))
        }
        other => panic!("expected RateLimited, got {:?}", other.err()),
    }
    assert!(llm.requests().is_empty());
    // 404 and 409 come before 429: the conversation was checked, with the client's id and
    // the lease cut-off.
    let checks = h.checks.lock().unwrap().clone();
    let [(checked_id, stale_before)] = checks.as_slice() else {
        panic!("one check_turn expected: {checks:?}");
    };
    assert_eq!(*checked_id, Some(client_message_id));
    assert!(
        *stale_before >= before - settings().reply_lease
            && *stale_before <= now() - settings().reply_lease
    );
}

#[test]
fn over_the_send_limit_a_missing_conversation_or_a_conflict_is_reported_first() {
    /// What the store's check says, and whether the send's error is its translation.
    type Case = (fn() -> StoreError, fn(&ChatError) -> bool);
    let cases: [Case; 3] = [
        (
            || StoreError::NotFound,
            |e| matches!(e, ChatError::NotFound),
        ),
        (
            || StoreError::Conflict(Conflict::ReplyInProgress),
            |e| matches!(e, ChatError::Conflict(Conflict::ReplyInProgress)),
        ),
        (
            || StoreError::Conflict(Conflict::DuplicateClientMessage),
            |e| matches!(e, ChatError::Conflict(Conflict::DuplicateClientMessage)),
        ),
    ];
    for (store_error, expected) in cases {
        let mut mocks = Mocks::strict().no_refund().stores_nothing();
        mocks
            .limiter
            .expect_try_acquire()
            .times(1)
            .returning(|_| Err(Duration::from_secs(3)));
        mocks
            .history
            .expect_check_turn()
            .times(1)
            .returning(move |_, _, _, _, _| Err(store_error()));
        mocks.prompts.expect_conversation_prompt().never();
        let llm = ScriptedLlm::unused();
        let h = mocks.service(&llm, settings());

        let result = h.start("Hello");

        match result {
            Err(e) => assert!(expected(&e), "got {e:?}"),
            Ok(_) => panic!("a refused send was accepted"),
        }
    }
}

#[test]
fn a_store_failure_while_starting_the_turn_refunds_the_allowance_and_stores_nothing() {
    let mut mocks = Mocks::strict()
        .allowance()
        .refund()
        .prompt(Some("Be brief."))
        .begin_turn_fails(|| StoreError::Unavailable("pool timed out".to_owned()));
    mocks.history.expect_finish_reply().never();
    let llm = ScriptedLlm::unused();
    let h = mocks.service(&llm, settings());

    let result = h.start("Hello");

    assert!(
        matches!(result, Err(ChatError::Unavailable(_))),
        "{:?}",
        result.err()
    );
    assert!(h.writes().is_empty());
    assert!(llm.requests().is_empty());
}

#[test]
fn a_prompt_that_cannot_be_read_after_the_turn_is_stored_fails_the_reply_in_the_stream() {
    // The turn is stored (the prompt is read beside it), so the send is accepted and charged;
    // the reply is stored failed and the stream says why, as for a provider failure.
    let mut mocks = Mocks::strict()
        .allowance()
        .no_refund()
        .begin_turn_ok(Vec::new())
        .finish_ok();
    mocks
        .prompts
        .expect_conversation_prompt()
        .times(1)
        .returning(|_, _| Err(StoreError::Internal("disk I/O error".to_owned())));
    let llm = ScriptedLlm::unused();
    let h = mocks.service(&llm, settings());

    let turn = h.send("Hello");

    assert!(llm.requests().is_empty(), "the model is not asked");
    assert!(turn.deltas.is_empty());
    let (_, _, stored) = h.stored_turn();
    assert_failed(&turn, &stored, "", StreamErrorCode::Unavailable);
    assert!(
        !turn.error().1.contains("disk"),
        "the store's own error stays in the log"
    );
}

// ---------------------------------------------------------------------------------------
// Storing while and after streaming
// ---------------------------------------------------------------------------------------

// ---------------------------------------------------------------------------------------
// The lease: renewed on a timer; the final write retried, and conditional
// ---------------------------------------------------------------------------------------

/// A `touch_reply` that records its write and returns `answer`; its `cancel_on`-th call
/// stops the reply (the user's stop), which ends a script that hangs.
fn touches(
    mocks: &mut Mocks,
    answer: fn() -> Result<bool, StoreError>,
    cancel_on: usize,
    cancel: &CancelToken,
) {
    let writes = Arc::clone(&mocks.writes);
    let cancel = cancel.clone();
    let calls = Arc::new(Mutex::new(0_usize));
    mocks
        .history
        .expect_touch_reply()
        .returning(move |id, content, _| {
            writes.lock().unwrap().push(Write::Touch {
                id,
                content: content.to_owned(),
            });
            let mut calls = calls.lock().unwrap();
            *calls += 1;
            if *calls == cancel_on {
                cancel.cancel(CancelReason::User);
            }
            answer()
        });
}

/// Plays a send whose stream is stopped through `cancel`.
fn send_with(h: &Harness, cancel: CancelToken) -> Vec<ChatEvent> {
    let stream = h
        .start_with(request(&h.conversation, "Hello"), cancel)
        .expect("the send is accepted");
    block_on(stream.collect())
}

#[test]
fn a_model_that_thinks_before_its_first_token_keeps_its_lease_renewed_on_a_timer() {
    let cancel = CancelToken::new();
    let mut mocks = Mocks::accepting(None, Vec::new()).renewals(3);
    touches(&mut mocks, || Ok(true), 3, &cancel);
    let llm = ScriptedLlm::new(Vec::new(), End::Hang);
    let h = mocks.service(&llm, settings());

    let turn = Turn::from_events(send_with(&h, cancel));

    let id = turn.reply.id;
    let writes = h.writes();
    let touch = Write::Touch {
        id,
        content: String::new(),
    };
    assert_eq!(
        writes[1..4],
        [touch.clone(), touch.clone(), touch],
        "{writes:#?}"
    );
    assert_eq!(writes.len(), 5, "{writes:#?}");
    assert_eq!(turn.done().status, MessageStatus::Cancelled);
}

#[test]
fn each_renewal_saves_the_text_so_far() {
    let cancel = CancelToken::new();
    let mut mocks = Mocks::accepting(None, Vec::new()).renewals(2);
    touches(&mut mocks, || Ok(true), 2, &cancel);
    let llm = ScriptedLlm::new(vec![delta("a"), delta("b")], End::Hang);
    let h = mocks.service(&llm, settings());

    let turn = Turn::from_events(send_with(&h, cancel));

    let touch = Write::Touch {
        id: turn.reply.id,
        content: "ab".to_owned(),
    };
    let writes = h.writes();
    assert_eq!(writes[1..3], [touch.clone(), touch], "{writes:#?}");
    assert_eq!(writes[3], Write::Finish(turn.done().clone()));
}

#[test]
fn deltas_alone_do_not_write_to_the_store() {
    let mut mocks = Mocks::accepting(None, Vec::new());
    mocks.history.expect_touch_reply().never();
    let llm = ScriptedLlm::new(
        vec![delta("a"), delta("b"), delta("c"), completed(None, None)],
        End::Close,
    );
    let settings = ChatSettings {
        touch_every: chrono::Duration::zero(),
        ..settings()
    };
    let h = mocks.service(&llm, settings);

    let turn = h.send("Hello");

    assert_eq!(turn.done().content, "abc");
}

#[test]
fn a_failed_lease_renewal_does_not_interrupt_the_reply() {
    let cancel = CancelToken::new();
    let mut mocks = Mocks::accepting(None, Vec::new()).renewals(2);
    touches(
        &mut mocks,
        || Err(StoreError::Unavailable("busy".to_owned())),
        2,
        &cancel,
    );
    let llm = ScriptedLlm::new(vec![delta("a"), delta("b")], End::Hang);
    let h = mocks.service(&llm, settings());

    let turn = Turn::from_events(send_with(&h, cancel));

    let writes = h.writes();
    let Some(Write::Finish(stored)) = writes.last() else {
        panic!("the reply is stored: {writes:#?}");
    };
    assert_eq!(stored, turn.done());
    assert_eq!(stored.content, "ab");
}

#[test]
fn a_reply_the_sweep_ended_stops_generating_and_tells_its_client_interrupted() {
    let cancel = CancelToken::new();
    let mut mocks = Mocks::strict()
        .allowance()
        .no_refund()
        .prompt(None)
        .begin_turn_ok(Vec::new())
        .renewals(1);
    // The renewal finds the reply no longer streaming: another process's sweep ended it.
    touches(&mut mocks, || Ok(false), usize::MAX, &cancel);
    let swept: Arc<Mutex<Option<Message>>> = Arc::default();
    let attempted: Log<Message> = Arc::default();
    {
        let (swept, attempted) = (Arc::clone(&swept), Arc::clone(&attempted));
        mocks
            .history
            .expect_finish_reply()
            .times(1)
            .returning(move |reply, _| {
                attempted.lock().unwrap().push(reply.clone());
                let mut stored = reply.clone();
                stored.content = "a".to_owned();
                stored.status = MessageStatus::Failed;
                stored.error = Some("interrupted".to_owned());
                *swept.lock().unwrap() = Some(stored.clone());
                Ok(FinishOutcome::AlreadyEnded(stored))
            });
    }
    let llm = ScriptedLlm::new(vec![delta("a"), delta("b")], End::Hang);
    let h = mocks.service(&llm, settings());

    let events = send_with(&h, cancel);

    assert!(llm.stream_dropped(), "the provider's stream is dropped");
    let Some(ChatEvent::Error {
        message,
        code,
        detail,
    }) = events.last()
    else {
        panic!("the stream ends with an error: {events:#?}");
    };
    assert_eq!(*code, StreamErrorCode::Interrupted);
    assert!(!detail.is_empty());
    assert_eq!(
        Some(message),
        swept.lock().unwrap().as_ref(),
        "the client is told the reply as stored by the sweep"
    );
    let attempted = attempted.lock().unwrap();
    assert_eq!(attempted[0].status, MessageStatus::Failed);
    assert_eq!(attempted[0].content, "ab");
}

#[test]
fn a_final_write_that_fails_is_retried_with_backoff_until_it_is_stored() {
    let mut mocks = Mocks::strict()
        .allowance()
        .no_refund()
        .prompt(None)
        .begin_turn_ok(Vec::new());
    let calls = Arc::new(Mutex::new(0_u32));
    {
        let (calls, writes) = (Arc::clone(&calls), Arc::clone(&mocks.writes));
        mocks
            .history
            .expect_finish_reply()
            .times(4)
            .returning(move |reply, _| {
                let mut calls = calls.lock().unwrap();
                *calls += 1;
                if *calls <= 3 {
                    return Err(StoreError::Unavailable("connection refused".to_owned()));
                }
                writes.lock().unwrap().push(Write::Finish(reply.clone()));
                Ok(FinishOutcome::Stored)
            });
    }
    let llm = ScriptedLlm::new(vec![delta("ok"), completed(None, None)], End::Close);
    let h = mocks.service(&llm, settings());

    let turn = h.send("Hello");

    let (_, _, stored) = h.stored_turn();
    assert_eq!(
        &stored,
        turn.done(),
        "`done` is sent once the reply is stored"
    );
    assert_eq!(
        h.timer.pauses(),
        [
            Duration::from_millis(100),
            Duration::from_millis(200),
            Duration::from_millis(400)
        ],
        "the pauses grow"
    );
}

/// Settings with a lease short enough that a test can outlast it.
fn short_lease() -> ChatSettings {
    ChatSettings {
        reply_lease: chrono::Duration::milliseconds(30),
        ..settings()
    }
}

#[test]
fn a_final_write_that_fails_for_the_whole_lease_is_reported_unavailable_never_done() {
    let mut mocks = Mocks::strict()
        .allowance()
        .no_refund()
        .prompt(None)
        .begin_turn_ok(Vec::new());
    let calls = Arc::new(Mutex::new(0_u32));
    {
        let calls = Arc::clone(&calls);
        mocks.history.expect_finish_reply().returning(move |_, _| {
            *calls.lock().unwrap() += 1;
            Err(StoreError::Unavailable("connection refused".to_owned()))
        });
    }
    let llm = ScriptedLlm::new(vec![delta("ok"), completed(None, None)], End::Close);
    let h = mocks.service(&llm, short_lease());

    let turn = h.send("Hello");

    let (code, detail) = turn.error();
    assert_eq!(code, StreamErrorCode::Unavailable);
    assert!(!detail.is_empty());
    assert_eq!(turn.final_message().content, "ok");
    assert!(
        *calls.lock().unwrap() > 1,
        "the write is retried, in the background too"
    );
}

#[test]
fn a_reply_that_could_not_be_stored_in_its_lease_is_stored_later_without_a_second_event() {
    let mut mocks = Mocks::strict()
        .allowance()
        .no_refund()
        .prompt(None)
        .begin_turn_ok(Vec::new());
    let lease = short_lease().reply_lease;
    {
        let writes = Arc::clone(&mocks.writes);
        mocks
            .history
            .expect_finish_reply()
            .returning(move |reply, _| {
                // Down until the lease is over (the reply was created just before).
                if now() <= reply.created_at + lease + chrono::Duration::milliseconds(5) {
                    return Err(StoreError::Unavailable("connection refused".to_owned()));
                }
                writes.lock().unwrap().push(Write::Finish(reply.clone()));
                Ok(FinishOutcome::Stored)
            });
    }
    let llm = ScriptedLlm::new(vec![delta("ok"), completed(None, None)], End::Close);
    let h = mocks.service(&llm, short_lease());

    let turn = h.send("Hello");

    assert_eq!(turn.error().0, StreamErrorCode::Unavailable);
    let (_, _, stored) = h.stored_turn();
    assert_eq!(stored.status, MessageStatus::Complete, "stored as it ended");
    assert_eq!(stored.content, "ok");
}

#[test]
fn a_final_write_to_a_deleted_conversation_is_not_retried() {
    let mut mocks = Mocks::strict()
        .allowance()
        .no_refund()
        .prompt(None)
        .begin_turn_ok(Vec::new());
    mocks
        .history
        .expect_finish_reply()
        .times(1)
        .returning(|_, _| Err(StoreError::NotFound));
    let llm = ScriptedLlm::new(vec![delta("ok"), completed(None, None)], End::Close);
    let h = mocks.service(&llm, settings());

    let turn = h.send("Hello");

    assert_eq!(turn.done().content, "ok");
    assert!(h.timer.pauses().is_empty());
}

#[test]
fn the_renewal_period_is_at_most_two_seconds_and_a_third_of_the_lease() {
    let with = |lease_ms: i64, touch_ms: i64| {
        ChatSettings {
            reply_lease: chrono::Duration::milliseconds(lease_ms),
            touch_every: chrono::Duration::milliseconds(touch_ms),
            ..ChatSettings::default()
        }
        .renew_every()
    };
    assert_eq!(
        ChatSettings::default().renew_every(),
        Duration::from_secs(2)
    );
    assert_eq!(with(8_000, 10_000), Duration::from_secs(2));
    assert_eq!(with(3_000, 2_000), Duration::from_secs(1));
    assert_eq!(with(60_000, 500), Duration::from_millis(500));
    assert_eq!(with(0, 0), Duration::from_millis(1));
}

// ---------------------------------------------------------------------------------------
// Trees: regenerate, and the conversation's model (issue 17)
// ---------------------------------------------------------------------------------------

/// The history before the question, the question, and the reply being regenerated.
fn answered(conversation: &Conversation) -> (Vec<Message>, Message, Message) {
    let earlier = vec![
        past(conversation, Role::User, MessageStatus::Complete, "Hi"),
        past(
            conversation,
            Role::Assistant,
            MessageStatus::Complete,
            "Hello",
        ),
    ];
    let mut question = past(conversation, Role::User, MessageStatus::Complete, "Why?");
    question.parent_id = Some(earlier[1].id);
    let mut reply = past(
        conversation,
        Role::Assistant,
        MessageStatus::Complete,
        "Because.",
    );
    reply.parent_id = Some(question.id);
    (earlier, question, reply)
}

#[test]
fn regenerate_asks_with_the_branch_up_to_the_question_and_stores_a_sibling_reply() {
    let conversation = conversation();
    let (earlier, question, old) = answered(&conversation);
    let mut mocks = Mocks::strict_in(conversation.clone())
        .allowance()
        .no_refund()
        .prompt(Some("Be brief."))
        .finish_ok();
    let found = old.clone();
    mocks
        .history
        .expect_get_message()
        .withf(move |o, id| *o == owner() && *id == found.id)
        .times(1)
        .returning(move |_, _| Ok(found.clone()));
    let (branch, asked) = (
        [earlier.clone(), vec![question.clone()]].concat(),
        question.id,
    );
    let writes = Arc::clone(&mocks.writes);
    mocks
        .history
        .expect_begin_turn()
        .withf(move |o, turn, _, limit| {
            *o == owner()
                && turn.user.is_none()
                && turn.parent == Parent::Message(asked)
                && turn.reply.parent_id == Some(asked)
                && *limit == settings().history_limit + 1
        })
        .times(1)
        .returning(move |_, turn, stale_before, _| {
            writes.lock().unwrap().push(Write::BeginTurn {
                user: turn.reply.clone(),
                reply: turn.reply.clone(),
                stale_before,
            });
            Ok(crate::ports::Turn {
                parent_id: Some(asked),
                model: None,
                untitled: true,
                history: branch.clone(),
                files: Vec::new(),
                knowledge: false,
            })
        });
    let llm = ScriptedLlm::new(
        vec![delta("Another"), delta(" answer."), completed(None, None)],
        End::Close,
    );
    let h = mocks.service(&llm, settings());
    let (conversation_id, stream) = block_on(h.service.regenerate(
        &principal(),
        old.id,
        CancelToken::new(),
    ))
    .expect("the regeneration is accepted");
    assert_eq!(conversation_id, conversation.id);
    let turn = Turn::from_events(block_on(stream.collect()));
    assert_eq!(
        turn.user, question,
        "the stream begins with the question answered again"
    );
    assert_eq!(turn.reply.parent_id, Some(question.id));
    assert_ne!(turn.reply.id, old.id);
    assert_eq!(turn.done().content, "Another answer.");
    let request = llm.request();
    assert_eq!(
        request.messages,
        vec![
            llm_message(Role::User, "Hi"),
            llm_message(Role::Assistant, "Hello"),
            llm_message(Role::User, "Why?"),
        ],
        "the branch up to the question, the question last, never the old reply"
    );
}

#[test]
fn regenerating_a_user_message_is_invalid_and_stores_nothing() {
    let conversation = conversation();
    let (_, question, _) = answered(&conversation);
    let mut mocks = Mocks::strict_in(conversation)
        .stores_nothing()
        .limiter_untouched();
    mocks
        .history
        .expect_get_message()
        .times(1)
        .returning(move |_, _| Ok(question.clone()));
    let llm = ScriptedLlm::unused();
    let h = mocks.service(&llm, settings());
    let refused = block_on(h.service.regenerate(
        &principal(),
        MessageId::new(),
        CancelToken::new(),
    ));
    assert!(
        matches!(refused, Err(ChatError::Validation(_))),
        "{:?}",
        refused.err()
    );
}

#[test]
fn a_regenerated_history_not_ending_at_the_question_ends_the_stored_reply_and_refunds() {
    let conversation = conversation();
    let (earlier, _, old) = answered(&conversation);
    let mut mocks = Mocks::strict_in(conversation)
        .allowance()
        .refund()
        .prompt(None);
    let found = old.clone();
    mocks
        .history
        .expect_get_message()
        .times(1)
        .returning(move |_, _| Ok(found.clone()));
    mocks
        .history
        .expect_begin_turn()
        .times(1)
        .returning(move |_, _, _, _| {
            Ok(crate::ports::Turn {
                history: earlier.clone(),
                ..crate::ports::Turn::default()
            })
        });
    let ended = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::clone(&ended);
    mocks
        .history
        .expect_finish_reply()
        .times(1)
        .returning(move |reply, _| {
            seen.lock().unwrap().push(reply.clone());
            Ok(FinishOutcome::Stored)
        });
    let llm = ScriptedLlm::unused();
    let h = mocks.service(&llm, settings());
    let refused = block_on(
        h.service
            .regenerate(&principal(), old.id, CancelToken::new()),
    );
    assert!(
        matches!(refused, Err(ChatError::Internal(_))),
        "{:?}",
        refused.err()
    );
    let ended = ended.lock().unwrap();
    assert_eq!(ended.len(), 1, "the stored reply is ended once");
    assert_eq!(ended[0].status, MessageStatus::Failed);
    assert_eq!(ended[0].parent_id, old.parent_id);
    assert!(ended[0].error.is_some());
}

#[test]
fn a_send_asks_the_conversations_model_while_it_is_offered_and_the_default_otherwise() {
    for (chosen, expected) in [
        (Some("model-b"), "model-b"),
        (Some("withdrawn"), CONFIGURED_MODEL),
        (None, CONFIGURED_MODEL),
    ] {
        let mut mocks = Mocks::strict()
            .allowance()
            .no_refund()
            .prompt(None)
            .finish_ok();
        let model = chosen.map(str::to_owned);
        mocks
            .history
            .expect_begin_turn()
            .times(1)
            .returning(move |_, _, _, _| {
                Ok(crate::ports::Turn {
                    model: model.clone(),
                    ..crate::ports::Turn::default()
                })
            });
        let llm = ScriptedLlm::new(vec![delta("ok"), completed(None, None)], End::Close);
        let offered = ChatSettings {
            models: vec!["model-b".to_owned()],
            ..settings()
        };
        let h = mocks.service(&llm, offered);
        let turn = h.send("Hi");
        assert_eq!(llm.request().model, expected, "{chosen:?}");
        assert_eq!(turn.done().model.as_deref(), Some(expected), "{chosen:?}");
        assert_eq!(
            h.service.settings().models,
            vec![CONFIGURED_MODEL.to_owned(), "model-b".to_owned()],
            "the default is always offered"
        );
    }
}

#[test]
fn after_done_an_untitled_conversations_first_reply_is_followed_by_its_stored_title() {
    struct Fixed(Result<&'static str, LlmError>);
    #[async_trait::async_trait]
    impl crate::titles::Titler for Fixed {
        async fn title(&self, _first: &str) -> Result<String, LlmError> {
            self.0.clone().map(str::to_owned)
        }
    }
    for (written, stored, expected) in [
        (Ok("\"Weather in Lisbon\""), true, Some("Weather in Lisbon")),
        // The user titled it meanwhile: nothing is announced.
        (Ok("Weather"), false, None),
        // A failing title call leaves the title empty.
        (Err(LlmError::Truncated), true, None),
    ] {
        let mut mocks = Mocks::strict()
            .allowance()
            .no_refund()
            .prompt(None)
            .finish_ok();
        mocks
            .history
            .expect_begin_turn()
            .times(1)
            .returning(|_, _, _, _| {
                Ok(crate::ports::Turn {
                    untitled: true,
                    ..crate::ports::Turn::default()
                })
            });
        let conversation_id = mocks.conversation.id;
        let calls = usize::from(written.is_ok());
        mocks
            .history
            .expect_set_title_if_empty()
            .withf(move |id, title| {
                *id == conversation_id && (title == "Weather in Lisbon" || title == "Weather")
            })
            .times(calls)
            .returning(move |_, _| Ok(stored));
        let llm = ScriptedLlm::new(vec![delta("Sunny."), completed(None, None)], End::Close);
        let mut h = mocks.service(&llm, settings());
        h.service = h.service.with_titler(Arc::new(Fixed(written)));
        let stream = h.start("Weather in Lisbon?").expect("accepted");
        let events: Vec<ChatEvent> = block_on(stream.collect());
        let after_done: Vec<&ChatEvent> = events
            .iter()
            .skip_while(|e| !matches!(e, ChatEvent::Done(_)))
            .skip(1)
            .collect();
        // The relay is told before `done` that a title may follow it.
        let done_at = events
            .iter()
            .position(|e| matches!(e, ChatEvent::Done(_)))
            .expect("a done");
        assert_eq!(
            events[done_at - 1],
            ChatEvent::TitleFollows { conversation_id },
            "{events:?}"
        );
        match expected {
            Some(title) => assert_eq!(
                after_done,
                vec![&ChatEvent::Title {
                    conversation_id,
                    title: title.to_owned()
                }]
            ),
            None => assert!(after_done.is_empty(), "{after_done:?}"),
        }
    }
}

#[test]
fn the_llm_titler_asks_the_title_model_with_the_first_message_only() {
    use crate::titles::{LlmTitler, Titler as _};
    let llm = ScriptedLlm::new(
        vec![delta("\"Lisbon "), delta("trip\""), completed(None, None)],
        End::Close,
    );
    let titler = LlmTitler::new(
        Arc::clone(&llm) as Arc<dyn LlmStream>,
        "title-model".to_owned(),
    );
    let raw = block_on(titler.title("Plan a trip to Lisbon")).unwrap();
    assert_eq!(
        crate::titles::clean_title(&raw).as_deref(),
        Some("Lisbon trip")
    );
    let request = llm.request();
    assert_eq!(request.model, "title-model");
    assert!(
        request
            .instructions
            .is_some_and(|i| i.contains("60 characters"))
    );
    assert_eq!(
        request.messages,
        vec![llm_message(Role::User, "Plan a trip to Lisbon")]
    );
    let failing = ScriptedLlm::new(vec![delta("Lis")], End::Close);
    let titler = LlmTitler::new(failing as Arc<dyn LlmStream>, "m".to_owned());
    assert_eq!(block_on(titler.title("x")), Err(LlmError::Truncated));
}

// ---------------------------------------------------------------------------------------
// Project knowledge: sources
// ---------------------------------------------------------------------------------------

fn hit(filename: &str, text: &str) -> crate::knowledge::KnowledgeHit {
    crate::knowledge::KnowledgeHit {
        file_id: crate::ids::FileId::new(),
        filename: filename.to_owned(),
        ordinal: 0,
        text: text.to_owned(),
    }
}

/// A knowledge index that expects one search of the harness's conversation, records its
/// query and answers `answer`.
fn knowledge(
    conversation: &Conversation,
    limit: u32,
    answer: Result<Vec<crate::knowledge::KnowledgeHit>, StoreError>,
) -> (crate::ports::MockKnowledgeIndex, Log<String>) {
    let queries: Log<String> = Arc::default();
    let seen = Arc::clone(&queries);
    let conversation_id = conversation.id;
    let answer = Mutex::new(Some(answer));
    let mut index = crate::ports::MockKnowledgeIndex::new();
    index
        .expect_search_conversation()
        .withf(move |o, c, _, l| *o == owner() && *c == conversation_id && *l == limit)
        .times(1)
        .returning(move |_, _, query, _| {
            seen.lock().unwrap().push(query.to_owned());
            answer.lock().unwrap().take().unwrap()
        });
    (index, queries)
}

#[test]
fn sources_found_for_the_message_are_given_to_the_model_numbered_and_carried_by_the_reply() {
    let c = conversation();
    let facts = hit("facts.txt", "Our mascot is a quokka named Zephyrine.");
    let more = hit("more.md", "Zephyrine eats clover.");
    let (index, queries) = knowledge(&c, 5, Ok(vec![facts.clone(), more.clone()]));
    let mocks = Mocks::accepting_in(c, Some("Be brief."), Vec::new());
    let llm = ScriptedLlm::new(
        vec![delta("A quokka [1]."), completed(None, None)],
        End::Close,
    );
    let mut h = mocks.service(&llm, settings());
    h.service = h.service.clone().with_knowledge(Arc::new(index));

    let turn = h.send("Who is Zephyrine?");

    assert_eq!(
        *queries.lock().unwrap(),
        vec!["Who is Zephyrine?".to_owned()]
    );
    let request = llm.request();
    assert_eq!(request.instructions.as_deref(), Some("Be brief."));
    assert_eq!(
        request.sources,
        vec![
            crate::ports::LlmSource {
                n: 1,
                filename: "facts.txt".to_owned(),
                text: facts.text.clone(),
            },
            crate::ports::LlmSource {
                n: 2,
                filename: "more.md".to_owned(),
                text: more.text.clone(),
            },
        ]
    );
    let sources = &turn.reply.sources;
    assert_eq!(
        sources
            .iter()
            .map(|s| (s.n, s.file_id, s.filename.as_str(), s.excerpt.as_str()))
            .collect::<Vec<_>>(),
        vec![
            (1, facts.file_id, "facts.txt", facts.text.as_str()),
            (2, more.file_id, "more.md", more.text.as_str()),
        ],
        "AssistantMessage announces the sources"
    );
    assert_eq!(&turn.done().sources, sources, "Done carries them");
    let (_, _, stored) = h.stored_turn();
    assert_eq!(&stored.sources, sources, "the stored reply keeps them");
}

#[test]
fn a_follow_up_is_searched_with_the_previous_user_message_of_its_branch() {
    let c = conversation();
    let history = vec![
        past(&c, Role::User, MessageStatus::Complete, "Who is Zephyrine?"),
        past(&c, Role::Assistant, MessageStatus::Complete, "A quokka."),
    ];
    let (index, queries) = knowledge(&c, 3, Ok(Vec::new()));
    let mocks = Mocks::accepting_in(c, None, history);
    let llm = ScriptedLlm::new(vec![delta("ok"), completed(None, None)], End::Close);
    let mut h = mocks.service(
        &llm,
        ChatSettings {
            knowledge_chunks: 3,
            ..settings()
        },
    );
    h.service = h.service.clone().with_knowledge(Arc::new(index));

    let turn = h.send("Tell me more");

    assert_eq!(
        *queries.lock().unwrap(),
        vec!["Tell me more\nWho is Zephyrine?".to_owned()]
    );
    assert!(
        turn.done().sources.is_empty(),
        "nothing found, nothing given"
    );
    assert!(llm.request().sources.is_empty());
}

#[test]
fn sources_that_do_not_fit_are_left_out_whole_and_older_history_makes_room() {
    let c = conversation();
    // 300 tokens for the request: the new message (~10), the sources (the instruction ~75
    // and each block), then history of ~104 tokens per message.
    let budget = ChatSettings {
        context_tokens: 400,
        output_reserve: 100,
        max_output_tokens: None,
        ..settings()
    };
    let long = "x".repeat(400);
    let history = vec![
        past(&c, Role::User, MessageStatus::Complete, &long),
        past(&c, Role::Assistant, MessageStatus::Complete, &long),
    ];
    let huge = hit("huge.txt", &"quokka ".repeat(300));
    let small = hit("small.txt", &format!("A quokka. {}", "y".repeat(180)));
    let (index, _) = knowledge(&c, 5, Ok(vec![huge, small.clone()]));
    let mocks = Mocks::accepting_in(c, None, history);
    let llm = ScriptedLlm::new(vec![delta("ok"), completed(None, None)], End::Close);
    let mut h = mocks.service(&llm, budget);
    h.service = h.service.clone().with_knowledge(Arc::new(index));

    let turn = h.send("Tell me about quokkas");

    let request = llm.request();
    assert_eq!(
        request
            .sources
            .iter()
            .map(|s| (s.n, s.filename.as_str()))
            .collect::<Vec<_>>(),
        vec![(1, "small.txt")],
        "the source that does not fit is left out and the next is numbered 1"
    );
    assert_eq!(turn.done().sources[0].file_id, small.file_id);
    assert_eq!(
        request.messages.len(),
        2,
        "one past message fits beside the sources (two would without them)"
    );
    let sent = crate::knowledge::sources_message(&request.sources).unwrap();
    let total = crate::budget::estimate_text_tokens(&sent)
        + crate::budget::MESSAGE_OVERHEAD_TOKENS
        + request
            .messages
            .iter()
            .map(crate::budget::estimate_message_tokens)
            .sum::<u32>();
    assert!(total <= 300, "the request fits the budget: {total}");
}

#[test]
fn a_failing_knowledge_search_gives_no_sources_and_does_not_fail_the_reply() {
    let c = conversation();
    let (index, _) = knowledge(&c, 5, Err(StoreError::Unavailable("down".to_owned())));
    let mocks = Mocks::accepting_in(c, None, Vec::new());
    let llm = ScriptedLlm::new(vec![delta("fine"), completed(None, None)], End::Close);
    let mut h = mocks.service(&llm, settings());
    h.service = h.service.clone().with_knowledge(Arc::new(index));

    let turn = h.send("Who is Zephyrine?");

    assert_eq!(turn.done().status, MessageStatus::Complete);
    assert_eq!(turn.done().content, "fine");
    assert!(turn.done().sources.is_empty());
    assert!(llm.request().sources.is_empty());
}

/// A turn whose project has nothing to find (knowledge off, or no file with text ready)
/// asks no search: the send's request goes out without one.
#[test]
fn a_turn_without_knowledge_to_search_never_searches() {
    let mut index = crate::ports::MockKnowledgeIndex::new();
    index.expect_search_conversation().never();
    let mut mocks = Mocks::strict().allowance().no_refund().prompt(None);
    let conversation_id = mocks.conversation.id;
    mocks
        .history
        .expect_begin_turn()
        .withf(move |_, turn, _, _| turn.reply.conversation_id == conversation_id)
        .times(1)
        .returning(|_, _, _, _| Ok(crate::ports::Turn::default()));
    let mocks = mocks.finish_ok();
    let llm = ScriptedLlm::new(vec![delta("ok"), completed(None, None)], End::Close);
    let mut h = mocks.service(&llm, settings());
    h.service = h.service.clone().with_knowledge(Arc::new(index));

    let turn = h.send("Who is Zephyrine?");

    assert_eq!(turn.done().status, MessageStatus::Complete);
    assert!(llm.request().sources.is_empty());
}

#[test]
fn knowledge_chunks_zero_never_searches() {
    let mut index = crate::ports::MockKnowledgeIndex::new();
    index.expect_search_conversation().never();
    let mocks = Mocks::accepting(None, Vec::new());
    let llm = ScriptedLlm::new(vec![delta("ok"), completed(None, None)], End::Close);
    let mut h = mocks.service(
        &llm,
        ChatSettings {
            knowledge_chunks: 0,
            ..settings()
        },
    );
    h.service = h.service.clone().with_knowledge(Arc::new(index));

    assert!(h.send("Who is Zephyrine?").done().sources.is_empty());
}

// ---------------------------------------------------------------------------------------
// Quotas: checked by the turn's transaction
// ---------------------------------------------------------------------------------------

/// A ledger the send must not read: the quota is checked inside `begin_turn`.
struct UnreadLedger;

#[async_trait::async_trait]
impl crate::usage::UsageLedger for UnreadLedger {
    async fn record(&self, _: &crate::usage::UsageEntry) -> Result<(), StoreError> {
        Ok(())
    }
    async fn quota_state(
        &self,
        _: &UserId,
        _: crate::usage::NaiveDate,
    ) -> Result<crate::usage::QuotaState, StoreError> {
        panic!("a send read the quota state outside its turn")
    }
    async fn quota(&self, _: &UserId) -> Result<crate::usage::QuotaOverride, StoreError> {
        panic!("a send read the quota override outside its turn")
    }
    async fn set_quota(
        &self,
        _: &UserId,
        _: &crate::usage::QuotaOverride,
    ) -> Result<(), StoreError> {
        Ok(())
    }
    async fn summary(
        &self,
        _: Option<&UserId>,
        _: crate::usage::NaiveDate,
        _: crate::usage::NaiveDate,
        _: crate::usage::GroupBy,
    ) -> Result<Vec<crate::usage::UsageRow>, StoreError> {
        Ok(Vec::new())
    }
    async fn users(
        &self,
        _: crate::usage::NaiveDate,
    ) -> Result<Vec<crate::usage::UserUsage>, StoreError> {
        Ok(Vec::new())
    }
}

fn accounting(defaults: crate::usage::QuotaDefaults) -> crate::usage::Accounting {
    let mut accounting = crate::usage::Accounting::new(Arc::new(UnreadLedger));
    accounting.defaults = defaults;
    accounting
}

#[test]
fn a_send_over_quota_is_refused_by_its_turn_with_nothing_stored_and_not_charged() {
    let defaults = crate::usage::QuotaDefaults {
        tokens_per_day: Some(100),
        tokens_per_month: None,
    };
    let refused = crate::usage::QuotaDefaults::check(
        &defaults,
        &crate::usage::QuotaState {
            used_day: 100,
            used_month: 100,
            quota: crate::usage::QuotaOverride::default(),
        },
        now(),
    )
    .unwrap_err();
    let before = now();
    let mut mocks = Mocks::strict().allowance().refund().prompt(None);
    let quotas: Log<Option<crate::usage::TurnQuota>> = Arc::default();
    let seen = Arc::clone(&quotas);
    mocks
        .history
        .expect_begin_turn()
        .times(1)
        .returning(move |_, turn, _, _| {
            seen.lock().unwrap().push(turn.quota);
            Err(StoreError::QuotaExceeded(refused))
        });
    mocks.history.expect_finish_reply().never();
    mocks.history.expect_check_turn().never();
    let llm = ScriptedLlm::unused();
    let mut h = mocks.service(&llm, settings());
    h.service = h.service.clone().with_accounting(accounting(defaults));

    let result = h.start("Hello");

    match result {
        Err(ChatError::QuotaExceeded(got)) => assert_eq!(got, refused),
        other => panic!("expected QuotaExceeded, got {:?}", other.err()),
    }
    assert!(llm.requests().is_empty(), "the model is not asked");
    // The turn was given the configured defaults and the time of the send.
    let quotas = quotas.lock().unwrap().clone();
    let [Some(quota)] = quotas.as_slice() else {
        panic!("one begin_turn with a quota expected: {quotas:?}");
    };
    assert_eq!(quota.defaults, defaults);
    assert!(quota.at >= before && quota.at <= now());
}

#[test]
fn a_regenerated_reply_is_checked_against_the_quota_in_its_turn_too() {
    let defaults = crate::usage::QuotaDefaults {
        tokens_per_day: None,
        tokens_per_month: Some(10),
    };
    let refused = defaults
        .check(
            &crate::usage::QuotaState {
                used_day: 0,
                used_month: 10,
                quota: crate::usage::QuotaOverride::default(),
            },
            now(),
        )
        .unwrap_err();
    let mut mocks = Mocks::strict().allowance().refund().prompt(None);
    let conversation_id = mocks.conversation.id;
    let question = MessageId::new();
    let mut earlier = Message::pending_reply(conversation_id, "m".to_owned(), now());
    earlier.parent_id = Some(question);
    mocks
        .history
        .expect_get_message()
        .times(1)
        .returning(move |_, _| Ok(earlier.clone()));
    mocks
        .history
        .expect_begin_turn()
        .withf(|_, turn, _, _| {
            turn.user.is_none()
                && turn
                    .quota
                    .is_some_and(|q| q.defaults.tokens_per_month == Some(10))
        })
        .times(1)
        .returning(move |_, _, _, _| Err(StoreError::QuotaExceeded(refused)));
    let llm = ScriptedLlm::unused();
    let mut h = mocks.service(&llm, settings());
    h.service = h.service.clone().with_accounting(accounting(defaults));

    let result = block_on(
        h.service
            .regenerate(&principal(), MessageId::new(), CancelToken::new()),
    );

    match result {
        Err(ChatError::QuotaExceeded(got)) => assert_eq!(got.period, crate::usage::Period::Month),
        other => panic!("expected QuotaExceeded, got {:?}", other.err()),
    }
}

#[test]
fn over_the_send_limit_an_attachment_that_is_not_the_senders_is_reported_first() {
    let ids = vec![crate::ids::FileId::new(), crate::ids::FileId::new()];
    let mut mocks = Mocks::strict().no_refund().stores_nothing();
    mocks
        .limiter
        .expect_try_acquire()
        .times(1)
        .returning(|_| Err(Duration::from_secs(3)));
    let wanted = ids.clone();
    mocks
        .history
        .expect_check_turn()
        .withf(move |_, _, _, files, _| files == wanted.as_slice())
        .times(1)
        .returning(|_, _, _, _, _| Err(StoreError::NotFound));
    mocks.prompts.expect_conversation_prompt().never();
    let llm = ScriptedLlm::unused();
    let h = mocks.service(&llm, settings());
    let mut send = request(&h.conversation, "Read these.");
    send.file_ids = ids;

    let result = h.start_with(send, CancelToken::new());

    assert!(
        matches!(result, Err(ChatError::NotFound)),
        "{:?}",
        result.err()
    );
}
