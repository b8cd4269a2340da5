//! `TestApp`: the composed server (`confab-server`) on in-memory adapters, listening on
//! `127.0.0.1:0`, with one method per route of API.md, a reader for the chat stream's
//! Server-Sent Events, and the store handles so that tests can look at what was stored.
//!
//! Every request method returns an [`Answer`] (status, headers and the whole body) or, for
//! the chat stream, the raw [`reqwest::Response`] to read with [`SseStream`]. Helpers that
//! build fixtures (`new_project`, `new_conversation`, …) assert success and return the typed
//! resource. This is test-support code: it panics with a message on anything unexpected.
//!
//! ```no_run
//! # async fn example() {
//! use confab_tests::http::{ALICE, spawn_app};
//!
//! let app = spawn_app().await;
//! let project = app.new_project(ALICE, "Support bot").await;
//! let conversation = app.new_conversation(ALICE, project.id).await;
//! let reply = app.send(ALICE, conversation.id, "Hello").await;
//! assert_eq!(reply.last().event, "done");
//! # }
//! ```

use std::fmt::Display;
use std::future::Future;
use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use confab_api_types as api;
use confab_core::error::StoreError;
use confab_core::ids::{ConversationId, ProjectId, PromptId, UserId};
use confab_core::live::LiveOptions;
use confab_core::model::{Message, NewPrompt, Prompt};
use confab_core::ports::{AuthVerifier, ChatHistory, LiveReplies, LlmStream, PromptStore};
use confab_limits::SlidingWindowLimiter;
use confab_memory::{
    EchoLlm, FakeAuth, MemoryBlobStore, MemoryLiveReplies, MemoryStore, ScriptedLlm,
};
use confab_server::config::Sources;
use confab_server::state::DevTokens;
use confab_server::{Adapters, RunningServer, Settings, build_state, start_on};
use eventsource_stream::Eventsource;
use futures::StreamExt;
use futures::stream::BoxStream;
use reqwest::header::{CONTENT_TYPE, HeaderMap};
use reqwest::{Method, RequestBuilder, StatusCode};
use serde::de::DeserializeOwned;
use serde_json::Value;

/// The first test user.
pub const ALICE: &str = "alice";
/// The second test user, who must never see the first one's data.
pub const BOB: &str = "bob";

/// How long a test waits for one SSE event or one polled condition before it fails.
pub const WAIT: Duration = Duration::from_secs(10);

/// The `Authorization` header value `FakeAuth` accepts for `user`.
#[must_use]
pub fn bearer(user: &str) -> String {
    format!("Bearer {}", FakeAuth::token_for(user))
}

/// The user id of a test user.
#[must_use]
pub fn user_id(user: &str) -> UserId {
    UserId::new(user).expect("a valid test user id")
}

/// How to compose a test server. Defaults: the echo model at pace 0, `FakeAuth`, no dev
/// sign-in, every setting at its default.
#[derive(Default)]
pub struct AppOptions {
    llm: Option<Arc<dyn LlmStream>>,
    scripted: Option<ScriptedLlm>,
    settings: Vec<(String, String)>,
    auth: Option<Arc<dyn AuthVerifier>>,
    dev_tokens: Option<Arc<dyn DevTokens>>,
    local: Option<Arc<confab_auth::LocalAuth>>,
    prompt_delay: Option<Duration>,
    replica_of: Option<(MemoryStore, Arc<dyn LiveReplies>)>,
    titler: Option<Arc<dyn confab_core::titles::Titler>>,
}

impl AppOptions {
    /// The defaults.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Replies come from `llm`.
    #[must_use]
    pub fn llm(mut self, llm: Arc<dyn LlmStream>) -> Self {
        self.llm = Some(llm);
        self.scripted = None;
        self
    }

    /// Replies come from `llm`, which the `TestApp` keeps (clones share what it recorded).
    #[must_use]
    pub fn scripted(mut self, llm: ScriptedLlm) -> Self {
        self.llm = Some(Arc::new(llm.clone()));
        self.scripted = Some(llm);
        self
    }

    /// One setting, as an environment variable would give it (`CONFAB_MAX_JSON_BYTES`, …).
    #[must_use]
    pub fn setting(mut self, key: &str, value: &str) -> Self {
        self.settings.push((key.to_owned(), value.to_owned()));
        self
    }

    /// Several settings.
    #[must_use]
    pub fn settings(mut self, pairs: &[(&str, &str)]) -> Self {
        for (key, value) in pairs {
            self = self.setting(key, value);
        }
        self
    }

    /// Tokens are verified by `auth` instead of `FakeAuth`.
    #[must_use]
    pub fn auth(mut self, auth: Arc<dyn AuthVerifier>) -> Self {
        self.auth = Some(auth);
        self
    }

    /// Dev sign-in (`POST /api/auth/dev-login`) issues tokens with `dev_tokens`.
    #[must_use]
    pub fn dev_tokens(mut self, dev_tokens: Arc<dyn DevTokens>) -> Self {
        self.dev_tokens = Some(dev_tokens);
        self
    }

    /// Built-in accounts: `local` verifies tokens and serves `/api/auth/local/*`.
    #[must_use]
    pub fn local(mut self, local: Arc<confab_auth::LocalAuth>) -> Self {
        self.auth = Some(local.clone());
        self.local = Some(local);
        self
    }

    /// Titles are written by `titler` instead of the first words of the first message.
    #[must_use]
    pub fn titler(mut self, titler: Arc<dyn confab_core::titles::Titler>) -> Self {
        self.titler = Some(titler);
        self
    }

    /// Each send's read of the conversation's prompt takes `delay` (it runs beside the turn's
    /// transaction: the turn is stored while it waits).
    #[must_use]
    pub fn slow_prompt_reads(mut self, delay: Duration) -> Self {
        self.prompt_delay = Some(delay);
        self
    }

    /// Another replica of `app`: the same store and the same live replies, its own
    /// generations (as two processes sharing one database and one Redis).
    #[must_use]
    pub fn replica_of(mut self, app: &TestApp) -> Self {
        self.replica_of = Some((app.store.clone(), Arc::clone(&app.live)));
        self
    }

    /// Composes the server and starts it on `127.0.0.1:0` with one worker.
    pub async fn spawn(self) -> TestApp {
        let settings = Settings::from_sources(&Sources::from_pairs(
            self.settings.iter().map(|(k, v)| (k.as_str(), v.as_str())),
        ))
        .expect("the test settings are valid");
        let (store, live) = self.replica_of.unwrap_or_else(|| {
            let live: Arc<dyn LiveReplies> = Arc::new(MemoryLiveReplies::new(LiveOptions {
                retention: settings.live.retention,
                ..LiveOptions::default()
            }));
            (MemoryStore::new(), live)
        });
        let blobs = MemoryBlobStore::new();
        let llm = self
            .llm
            .unwrap_or_else(|| Arc::new(EchoLlm::new(Duration::ZERO)));
        let adapters = Adapters {
            projects: Arc::new(store.clone()),
            prompts: match self.prompt_delay {
                Some(delay) => Arc::new(SlowPrompts {
                    inner: store.clone(),
                    delay,
                }),
                None => Arc::new(store.clone()),
            },
            history: Arc::new(store.clone()),
            files: Arc::new(store.clone()),
            search: Arc::new(store.clone()),
            knowledge: Arc::new(store.clone()),
            shares: Arc::new(store.clone()),
            imports: Arc::new(store.clone()),
            blobs: Arc::new(blobs.clone()),
            auth: self.auth.unwrap_or_else(|| Arc::new(FakeAuth)),
            dev_tokens: self.dev_tokens,
            local: self.local,
            oidc: None,
            llm,
            limiter: Arc::new(SlidingWindowLimiter::new(settings.sends_per_minute)),
            live: Arc::clone(&live),
            titles: self
                .titler
                .unwrap_or_else(|| Arc::new(confab_core::titles::FirstWords)),
            usage: Arc::new(store.clone()),
        };
        let state = build_state(adapters, &settings);
        let listener = TcpListener::bind("127.0.0.1:0").expect("a free port on 127.0.0.1");
        let server = start_on(listener, state, 1).expect("the server starts");
        let addr = server.addr;
        // No idle connections are kept: a graceful shutdown then waits for nothing but the
        // requests in flight.
        let client = reqwest::Client::builder()
            .pool_max_idle_per_host(0)
            .timeout(Duration::from_secs(60))
            .build()
            .expect("an HTTP client");
        TestApp {
            addr,
            base_url: format!("http://{addr}"),
            store,
            blobs,
            live,
            llm: self.scripted,
            settings,
            client,
            server: Some(server),
        }
    }
}

/// `MemoryStore`'s prompts, with a slow `conversation_prompt`.
struct SlowPrompts {
    inner: MemoryStore,
    delay: Duration,
}

#[async_trait::async_trait]
impl PromptStore for SlowPrompts {
    async fn create_prompt(
        &self,
        owner: &UserId,
        prompt: &NewPrompt,
    ) -> Result<Prompt, StoreError> {
        self.inner.create_prompt(owner, prompt).await
    }

    async fn list_prompts(
        &self,
        owner: &UserId,
        project_id: ProjectId,
        before_version: Option<i32>,
        limit: u32,
    ) -> Result<Vec<Prompt>, StoreError> {
        self.inner
            .list_prompts(owner, project_id, before_version, limit)
            .await
    }

    async fn active_prompt(
        &self,
        owner: &UserId,
        project_id: ProjectId,
    ) -> Result<Option<Prompt>, StoreError> {
        self.inner.active_prompt(owner, project_id).await
    }

    async fn conversation_prompt(
        &self,
        owner: &UserId,
        conversation_id: ConversationId,
    ) -> Result<Option<Prompt>, StoreError> {
        tokio::time::sleep(self.delay).await;
        self.inner.conversation_prompt(owner, conversation_id).await
    }

    async fn activate_prompt(
        &self,
        owner: &UserId,
        project_id: ProjectId,
        prompt_id: PromptId,
    ) -> Result<Prompt, StoreError> {
        self.inner
            .activate_prompt(owner, project_id, prompt_id)
            .await
    }
}

/// A server on the echo model (pace 0) with default settings.
pub async fn spawn_app() -> TestApp {
    AppOptions::new().spawn().await
}

/// A server whose replies come from `llm`, with these settings.
pub async fn spawn_app_with(llm: Arc<dyn LlmStream>, settings: &[(&str, &str)]) -> TestApp {
    AppOptions::new().llm(llm).settings(settings).spawn().await
}

/// A server whose replies come from a scripted model that the `TestApp` keeps as `llm`.
pub async fn spawn_scripted(llm: ScriptedLlm, settings: &[(&str, &str)]) -> TestApp {
    AppOptions::new()
        .scripted(llm)
        .settings(settings)
        .spawn()
        .await
}

/// A running test server.
pub struct TestApp {
    pub addr: SocketAddr,
    /// `http://127.0.0.1:PORT`, without a trailing slash.
    pub base_url: String,
    /// Every storage port's state.
    pub store: MemoryStore,
    /// The uploaded files' bytes.
    pub blobs: MemoryBlobStore,
    /// Replies' live events (shared with its replicas).
    pub live: Arc<dyn LiveReplies>,
    /// The scripted model, when the server was composed with one.
    pub llm: Option<ScriptedLlm>,
    pub settings: Settings,
    pub client: reqwest::Client,
    server: Option<RunningServer>,
}

/// A whole answer: status, headers and body.
#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Answer {
    /// Reads the whole body of `response`.
    pub async fn read(response: reqwest::Response) -> Self {
        let status = response.status();
        let headers = response.headers().clone();
        let body = response.bytes().await.expect("the body can be read");
        Self {
            status,
            headers,
            body,
        }
    }

    /// A header as text, if present.
    #[must_use]
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .get(name)
            .map(|v| v.to_str().expect("a text header"))
    }

    /// The body as text.
    #[must_use]
    pub fn text(&self) -> String {
        String::from_utf8(self.body.to_vec()).expect("a UTF-8 body")
    }

    /// The body as JSON.
    #[must_use]
    pub fn value(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("the body is not JSON ({e}): {}", self.text_lossy()))
    }

    /// The body as a `T`.
    #[must_use]
    pub fn json<T: DeserializeOwned>(&self) -> T {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "the body is not a {} ({e}): {}",
                std::any::type_name::<T>(),
                self.text_lossy()
            )
        })
    }

    fn text_lossy(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// Asserts the status, with the body in the message when it differs.
    #[track_caller]
    pub fn assert_status(&self, status: u16) -> &Self {
        assert_eq!(
            self.status.as_u16(),
            status,
            "unexpected status; body: {}",
            self.text_lossy()
        );
        self
    }

    /// Asserts a `status` with a JSON body and returns it as a `T`.
    #[track_caller]
    pub fn ok<T: DeserializeOwned>(&self, status: u16) -> T {
        self.assert_status(status);
        let content_type = self.header("content-type").unwrap_or_default();
        assert!(
            content_type.starts_with("application/json"),
            "expected a JSON answer, got Content-Type {content_type:?}"
        );
        self.json()
    }

    /// Asserts an `application/problem+json` answer with this status and `code`, and a body
    /// shaped as RFC 9457 says; returns the problem.
    #[track_caller]
    pub fn problem(&self, status: u16, code: &str) -> api::Problem {
        self.assert_status(status);
        assert_eq!(
            self.header("content-type"),
            Some("application/problem+json"),
            "a problem answer's Content-Type; body: {}",
            self.text_lossy()
        );
        let problem: api::Problem = self.json();
        assert_eq!(problem.code, code, "the problem's code: {problem:?}");
        assert_eq!(problem.status, status, "the problem's status field");
        assert_eq!(problem.kind, "about:blank");
        assert!(!problem.title.is_empty(), "the problem has a title");
        assert!(!problem.detail.is_empty(), "the problem has a detail");
        problem
    }
}

/// One event of a `text/event-stream`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SseFrame {
    /// The `event:` name (`message` when the frame had none).
    pub event: String,
    /// The `id:` (the last one seen when the frame had none).
    pub id: String,
    /// The `data:` lines joined with `\n`.
    pub data: String,
}

impl SseFrame {
    /// The data as JSON.
    #[must_use]
    pub fn value(&self) -> Value {
        serde_json::from_str(&self.data)
            .unwrap_or_else(|e| panic!("{} data is not JSON ({e}): {}", self.event, self.data))
    }

    /// The data as a `T`.
    #[must_use]
    pub fn json<T: DeserializeOwned>(&self) -> T {
        serde_json::from_str(&self.data).unwrap_or_else(|e| {
            panic!(
                "{} data is not a {} ({e}): {}",
                self.event,
                std::any::type_name::<T>(),
                self.data
            )
        })
    }
}

type EventResult =
    Result<eventsource_stream::Event, eventsource_stream::EventStreamError<reqwest::Error>>;

/// Reads a `text/event-stream` response event by event. Comments (keep-alives) are skipped.
/// Dropping it closes the connection, as a browser that goes away would.
pub struct SseStream {
    pub status: StatusCode,
    pub headers: HeaderMap,
    events: BoxStream<'static, EventResult>,
    /// The `title` events read so far: set aside, so that `done` or `error` stays the last
    /// event the other readers see.
    pub titles: Vec<SseFrame>,
}

impl SseStream {
    /// Starts reading `response`, which must be a 200 `text/event-stream`.
    #[track_caller]
    pub fn new(response: reqwest::Response) -> Self {
        let status = response.status();
        let headers = response.headers().clone();
        assert_eq!(status, StatusCode::OK, "the stream's status");
        let content_type = headers
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        assert!(
            content_type.starts_with("text/event-stream"),
            "expected text/event-stream, got {content_type:?}"
        );
        Self {
            status,
            headers,
            events: response.bytes_stream().eventsource().boxed(),
            titles: Vec::new(),
        }
    }

    /// The next event but `title` (set aside in `titles`), `None` at the end of the stream.
    /// Fails after [`WAIT`].
    pub async fn next(&mut self) -> Option<SseFrame> {
        loop {
            let event = tokio::time::timeout(WAIT, self.events.next())
                .await
                .expect("an SSE event within the time limit")?;
            let event = event.expect("a well-formed event stream");
            let frame = SseFrame {
                event: event.event,
                id: event.id,
                data: event.data,
            };
            if frame.event == "title" {
                self.titles.push(frame);
            } else {
                return Some(frame);
            }
        }
    }

    /// The next event, which must exist.
    pub async fn expect_next(&mut self) -> SseFrame {
        self.next()
            .await
            .expect("another event before the end of the stream")
    }

    /// Reads `k` events, then closes the connection (a client that goes away).
    pub async fn take(mut self, k: usize) -> Vec<SseFrame> {
        let mut frames = Vec::with_capacity(k);
        for _ in 0..k {
            frames.push(self.expect_next().await);
        }
        frames
    }

    /// Reads events until the next one named `event` (included).
    pub async fn until(&mut self, event: &str) -> Vec<SseFrame> {
        let mut frames = Vec::new();
        loop {
            let frame = self.expect_next().await;
            let found = frame.event == event;
            frames.push(frame);
            if found {
                return frames;
            }
        }
    }

    /// Reads every remaining event, to the end of the stream.
    pub async fn rest(self) -> Vec<SseFrame> {
        self.rest_with_titles().await.0
    }

    /// Reads every remaining event, to the end of the stream; and the `title` events.
    pub async fn rest_with_titles(mut self) -> (Vec<SseFrame>, Vec<SseFrame>) {
        let mut frames = Vec::new();
        while let Some(frame) = self.next().await {
            frames.push(frame);
        }
        (frames, self.titles)
    }
}

/// A whole chat stream, read to its end.
#[derive(Debug)]
pub struct Reply {
    pub headers: HeaderMap,
    /// Every event but `title`.
    pub frames: Vec<SseFrame>,
    /// The `title` events (after `done`).
    pub titles: Vec<SseFrame>,
}

impl Reply {
    /// Reads an accepted stream to its end; panics with the problem when it was refused.
    pub async fn read(response: reqwest::Response) -> Self {
        if response.status() != StatusCode::OK {
            let answer = Answer::read(response).await;
            panic!(
                "the stream was refused with {}: {}",
                answer.status,
                answer.text_lossy()
            );
        }
        let stream = SseStream::new(response);
        let headers = stream.headers.clone();
        let (frames, titles) = stream.rest_with_titles().await;
        Self {
            headers,
            frames,
            titles,
        }
    }

    /// The names of the events, in order.
    #[must_use]
    pub fn names(&self) -> Vec<&str> {
        self.frames.iter().map(|f| f.event.as_str()).collect()
    }

    /// The last event.
    #[must_use]
    pub fn last(&self) -> &SseFrame {
        self.frames.last().expect("the stream had events")
    }

    /// The first event with this name.
    #[must_use]
    pub fn first(&self, event: &str) -> &SseFrame {
        self.frames
            .iter()
            .find(|f| f.event == event)
            .unwrap_or_else(|| panic!("no {event} event in {:?}", self.names()))
    }

    /// The `delta` texts joined.
    #[must_use]
    pub fn text(&self) -> String {
        deltas_text(&self.frames)
    }

    /// The message of the final `done` event; asserts that the stream ended with one, so it
    /// may be called for that alone.
    pub fn done(&self) -> api::Message {
        let last = self.last();
        assert_eq!(
            last.event,
            "done",
            "the stream ended with {:?}",
            self.names()
        );
        last.json()
    }

    /// The id of the reply (from `assistant_message`).
    #[must_use]
    pub fn reply_id(&self) -> uuid::Uuid {
        self.first("assistant_message").json::<api::Message>().id
    }
}

/// The `delta` texts of `frames`, joined.
#[must_use]
pub fn deltas_text(frames: &[SseFrame]) -> String {
    frames
        .iter()
        .filter(|f| f.event == "delta")
        .map(|f| f.json::<api::Delta>().text)
        .collect()
}

/// Polls `check` every 10 ms until it returns `Some`, failing after [`WAIT`].
pub async fn eventually<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting until {what}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

impl TestApp {
    /// The absolute URL of `path` (which starts with `/`).
    #[must_use]
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url)
    }

    /// The scripted model; panics when the server runs another one.
    #[must_use]
    pub fn scripted(&self) -> &ScriptedLlm {
        self.llm
            .as_ref()
            .expect("the server was composed with a ScriptedLlm")
    }

    /// A request to `path`, signed in as `user` when given.
    pub fn request(&self, method: Method, path: &str, user: Option<&str>) -> RequestBuilder {
        let builder = self.client.request(method, self.url(path));
        match user {
            Some(user) => builder.header("Authorization", bearer(user)),
            None => builder,
        }
    }

    /// Sends `builder` and reads the whole answer.
    pub async fn send_request(&self, builder: RequestBuilder) -> Answer {
        Answer::read(builder.send().await.expect("the request is answered")).await
    }

    async fn call(&self, method: Method, path: &str, user: &str) -> Answer {
        self.send_request(self.request(method, path, Some(user)))
            .await
    }

    async fn call_json(&self, method: Method, path: &str, user: &str, body: &Value) -> Answer {
        self.send_request(self.request(method, path, Some(user)).json(body))
            .await
    }

    /// Stops the server gracefully: see `RunningServer::shutdown`.
    pub async fn shutdown(&mut self, grace: Duration) {
        let server = self.server.take().expect("the server is running");
        server.shutdown(grace).await;
    }

    /// What the store holds for the conversation (oldest first), read directly; nothing
    /// when the conversation does not exist (or is not `user`'s).
    pub async fn stored_messages(&self, user: &str, conversation: uuid::Uuid) -> Vec<Message> {
        match self
            .store
            .list_messages(
                &user_id(user),
                ConversationId::from_uuid(conversation),
                None,
                10_000,
            )
            .await
        {
            Ok(messages) => messages,
            Err(StoreError::NotFound) => Vec::new(),
            Err(e) => panic!("the conversation's messages cannot be read: {e}"),
        }
    }

    /// Polls the store until the stored message `id` satisfies `done`, and returns it.
    pub async fn stored_message_when(
        &self,
        user: &str,
        conversation: uuid::Uuid,
        id: uuid::Uuid,
        what: &str,
        done: impl Fn(&Message) -> bool,
    ) -> Message {
        eventually(what, || async {
            self.stored_messages(user, conversation)
                .await
                .into_iter()
                .find(|m| m.id.as_uuid() == id && done(m))
        })
        .await
    }

    // ---- operational and public routes -------------------------------------------------

    /// `GET /healthz`
    pub async fn healthz(&self) -> Answer {
        self.send_request(self.request(Method::GET, "/healthz", None))
            .await
    }

    /// `GET /readyz`
    pub async fn readyz(&self) -> Answer {
        self.send_request(self.request(Method::GET, "/readyz", None))
            .await
    }

    /// `GET /metrics`
    pub async fn metrics(&self) -> Answer {
        self.send_request(self.request(Method::GET, "/metrics", None))
            .await
    }

    /// `GET /api/config`
    pub async fn config(&self) -> Answer {
        self.send_request(self.request(Method::GET, "/api/config", None))
            .await
    }

    /// `GET /api/openapi.json`
    pub async fn openapi(&self) -> Answer {
        self.send_request(self.request(Method::GET, "/api/openapi.json", None))
            .await
    }

    /// `GET /docs/`
    pub async fn docs(&self) -> Answer {
        self.send_request(self.request(Method::GET, "/docs/", None))
            .await
    }

    /// `POST /api/auth/dev-login`
    pub async fn dev_login(&self, body: &Value) -> Answer {
        self.send_request(
            self.request(Method::POST, "/api/auth/dev-login", None)
                .json(body),
        )
        .await
    }

    /// `GET /api/me`
    pub async fn me(&self, user: &str) -> Answer {
        self.call(Method::GET, "/api/me", user).await
    }

    // ---- projects ----------------------------------------------------------------------

    /// `GET /api/projects{query}` (`query` is `""` or starts with `?`).
    pub async fn list_projects(&self, user: &str, query: &str) -> Answer {
        self.call(Method::GET, &format!("/api/projects{query}"), user)
            .await
    }

    /// `POST /api/projects`
    pub async fn create_project(&self, user: &str, body: &Value) -> Answer {
        self.call_json(Method::POST, "/api/projects", user, body)
            .await
    }

    /// `GET /api/projects/{id}`
    pub async fn get_project(&self, user: &str, id: impl Display) -> Answer {
        self.call(Method::GET, &format!("/api/projects/{id}"), user)
            .await
    }

    /// `PATCH /api/projects/{id}`
    pub async fn patch_project(&self, user: &str, id: impl Display, body: &Value) -> Answer {
        self.call_json(Method::PATCH, &format!("/api/projects/{id}"), user, body)
            .await
    }

    /// `DELETE /api/projects/{id}`
    pub async fn delete_project(&self, user: &str, id: impl Display) -> Answer {
        self.call(Method::DELETE, &format!("/api/projects/{id}"), user)
            .await
    }

    // ---- prompts -----------------------------------------------------------------------

    /// `GET /api/projects/{project}/prompts{query}`
    pub async fn list_prompts(&self, user: &str, project: impl Display, query: &str) -> Answer {
        self.call(
            Method::GET,
            &format!("/api/projects/{project}/prompts{query}"),
            user,
        )
        .await
    }

    /// `POST /api/projects/{project}/prompts`
    pub async fn create_prompt(&self, user: &str, project: impl Display, body: &Value) -> Answer {
        self.call_json(
            Method::POST,
            &format!("/api/projects/{project}/prompts"),
            user,
            body,
        )
        .await
    }

    /// `GET /api/projects/{project}/prompts/active`
    pub async fn active_prompt(&self, user: &str, project: impl Display) -> Answer {
        self.call(
            Method::GET,
            &format!("/api/projects/{project}/prompts/active"),
            user,
        )
        .await
    }

    /// `POST /api/projects/{project}/prompts/{prompt}/activate`
    pub async fn activate_prompt(
        &self,
        user: &str,
        project: impl Display,
        prompt: impl Display,
    ) -> Answer {
        self.call(
            Method::POST,
            &format!("/api/projects/{project}/prompts/{prompt}/activate"),
            user,
        )
        .await
    }

    // ---- conversations -----------------------------------------------------------------

    /// `GET /api/projects/{project}/conversations{query}`
    pub async fn list_conversations(
        &self,
        user: &str,
        project: impl Display,
        query: &str,
    ) -> Answer {
        self.call(
            Method::GET,
            &format!("/api/projects/{project}/conversations{query}"),
            user,
        )
        .await
    }

    /// `POST /api/projects/{project}/conversations` with a JSON body, or none at all.
    pub async fn create_conversation(
        &self,
        user: &str,
        project: impl Display,
        body: Option<&Value>,
    ) -> Answer {
        let path = format!("/api/projects/{project}/conversations");
        match body {
            Some(body) => self.call_json(Method::POST, &path, user, body).await,
            None => self.call(Method::POST, &path, user).await,
        }
    }

    /// `GET /api/conversations/{id}`
    pub async fn get_conversation(&self, user: &str, id: impl Display) -> Answer {
        self.call(Method::GET, &format!("/api/conversations/{id}"), user)
            .await
    }

    /// `PATCH /api/conversations/{id}`
    pub async fn patch_conversation(&self, user: &str, id: impl Display, body: &Value) -> Answer {
        self.call_json(
            Method::PATCH,
            &format!("/api/conversations/{id}"),
            user,
            body,
        )
        .await
    }

    /// `DELETE /api/conversations/{id}`
    pub async fn delete_conversation(&self, user: &str, id: impl Display) -> Answer {
        self.call(Method::DELETE, &format!("/api/conversations/{id}"), user)
            .await
    }

    // ---- messages ----------------------------------------------------------------------

    /// `GET /api/conversations/{id}/messages{query}`
    pub async fn list_messages(
        &self,
        user: &str,
        conversation: impl Display,
        query: &str,
    ) -> Answer {
        self.call(
            Method::GET,
            &format!("/api/conversations/{conversation}/messages{query}"),
            user,
        )
        .await
    }

    /// `POST /api/conversations/{id}/messages`: the raw response (a stream when accepted).
    pub async fn send_message(
        &self,
        user: &str,
        conversation: impl Display,
        body: &Value,
    ) -> reqwest::Response {
        self.request(
            Method::POST,
            &format!("/api/conversations/{conversation}/messages"),
            Some(user),
        )
        .json(body)
        .send()
        .await
        .expect("the send is answered")
    }

    /// Sends `content` and returns the stream, which must have been accepted.
    pub async fn open_stream(
        &self,
        user: &str,
        conversation: impl Display,
        content: &str,
    ) -> SseStream {
        let response = self
            .send_message(
                user,
                conversation,
                &serde_json::json!({ "content": content }),
            )
            .await;
        if response.status() != StatusCode::OK {
            let answer = Answer::read(response).await;
            panic!(
                "the send was refused with {}: {}",
                answer.status,
                answer.text_lossy()
            );
        }
        SseStream::new(response)
    }

    /// Sends `body` (which must be accepted) and reads the whole reply stream.
    pub async fn send_body(&self, user: &str, conversation: impl Display, body: &Value) -> Reply {
        let response = self.send_message(user, conversation, body).await;
        Reply::read(response).await
    }

    /// `POST /api/messages/{id}/regenerate`: the raw response (a stream when accepted).
    pub async fn regenerate(&self, user: &str, message: impl Display) -> reqwest::Response {
        self.request(
            Method::POST,
            &format!("/api/messages/{message}/regenerate"),
            Some(user),
        )
        .send()
        .await
        .expect("the regeneration is answered")
    }

    /// `PUT /api/conversations/{id}/leaf`
    pub async fn choose_leaf(
        &self,
        user: &str,
        conversation: impl Display,
        body: &Value,
    ) -> Answer {
        self.call_json(
            Method::PUT,
            &format!("/api/conversations/{conversation}/leaf"),
            user,
            body,
        )
        .await
    }

    /// Sends `content` and reads the whole reply stream.
    pub async fn send(&self, user: &str, conversation: impl Display, content: &str) -> Reply {
        let stream = self.open_stream(user, conversation, content).await;
        let headers = stream.headers.clone();
        let (frames, titles) = stream.rest_with_titles().await;
        Reply {
            headers,
            frames,
            titles,
        }
    }

    /// `GET /api/conversations/{id}/stream`, with `Last-Event-ID: last_event_id` when given:
    /// the raw response (a stream, or 204, or a problem).
    pub async fn follow(
        &self,
        user: &str,
        conversation: impl Display,
        last_event_id: Option<&str>,
    ) -> reqwest::Response {
        let mut request = self.request(
            Method::GET,
            &format!("/api/conversations/{conversation}/stream"),
            Some(user),
        );
        if let Some(id) = last_event_id {
            request = request.header("Last-Event-ID", id);
        }
        request.send().await.expect("the follow is answered")
    }

    /// `POST /api/conversations/{id}/cancel`
    pub async fn cancel(&self, user: &str, conversation: impl Display) -> Answer {
        self.call(
            Method::POST,
            &format!("/api/conversations/{conversation}/cancel"),
            user,
        )
        .await
    }

    // ---- files -------------------------------------------------------------------------

    /// `POST /api/projects/{project}/files`: a form whose field `file` carries `bytes` with
    /// this filename and declared type. The filename is sent as is (no percent-encoding).
    pub async fn upload_file(
        &self,
        user: &str,
        project: impl Display,
        filename: &str,
        declared_type: &str,
        bytes: Vec<u8>,
    ) -> Answer {
        let part = reqwest::multipart::Part::bytes(bytes)
            .file_name(filename.to_owned())
            .mime_str(declared_type)
            .expect("a valid MIME type");
        let form = reqwest::multipart::Form::new()
            .percent_encode_noop()
            .part("file", part);
        self.send_request(
            self.request(
                Method::POST,
                &format!("/api/projects/{project}/files"),
                Some(user),
            )
            .multipart(form),
        )
        .await
    }

    /// `GET /api/projects/{project}/files{query}`
    pub async fn list_files(&self, user: &str, project: impl Display, query: &str) -> Answer {
        self.call(
            Method::GET,
            &format!("/api/projects/{project}/files{query}"),
            user,
        )
        .await
    }

    /// `GET /api/files/{id}`
    pub async fn get_file(&self, user: &str, id: impl Display) -> Answer {
        self.call(Method::GET, &format!("/api/files/{id}"), user)
            .await
    }

    /// `DELETE /api/files/{id}`
    pub async fn delete_file(&self, user: &str, id: impl Display) -> Answer {
        self.call(Method::DELETE, &format!("/api/files/{id}"), user)
            .await
    }

    /// `GET /api/files/{id}/content`
    pub async fn download_file(&self, user: &str, id: impl Display) -> Answer {
        self.call(Method::GET, &format!("/api/files/{id}/content"), user)
            .await
    }

    // ---- fixtures ----------------------------------------------------------------------

    /// Creates a project (asserting 201).
    pub async fn new_project(&self, user: &str, name: &str) -> api::Project {
        self.create_project(user, &serde_json::json!({ "name": name }))
            .await
            .ok(201)
    }

    /// Creates a conversation with no title (asserting 201).
    pub async fn new_conversation(&self, user: &str, project: impl Display) -> api::Conversation {
        self.create_conversation(user, project, None).await.ok(201)
    }

    /// Stores a prompt version, active unless `activate` is `false` (asserting 201).
    pub async fn new_prompt(
        &self,
        user: &str,
        project: impl Display,
        content: &str,
        activate: bool,
    ) -> api::Prompt {
        self.create_prompt(
            user,
            project,
            &serde_json::json!({ "content": content, "activate": activate }),
        )
        .await
        .ok(201)
    }

    /// Uploads a small text file (asserting 201).
    /// A new text file of `user`, once its text is read (so it no longer changes).
    pub async fn new_file(&self, user: &str, project: impl Display, name: &str) -> api::FileInfo {
        let file: api::FileInfo = self
            .upload_file(user, project, name, "text/plain", b"some notes\n".to_vec())
            .await
            .ok(201);
        self.text_read(user, file.id).await
    }

    /// Polls the file until its text is no longer `pending`, and returns it.
    pub async fn text_read(&self, user: &str, id: uuid::Uuid) -> api::FileInfo {
        eventually("the file's text is read", || async {
            let file: api::FileInfo = self.get_file(user, id).await.ok(200);
            (file.text_status != api::TextStatus::Pending).then_some(file)
        })
        .await
    }

    /// Walks a list with `?limit={limit}` from the first page to the last, returning every
    /// page's items (JSON) in order. `path` has no query string.
    pub async fn walk(&self, user: &str, path: &str, limit: u32) -> Vec<Vec<Value>> {
        let mut pages = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let page: api::Page<Value> = self.page(user, path, limit, cursor.as_deref()).await;
            pages.push(page.items);
            match page.next_cursor {
                Some(next) => cursor = Some(next),
                None => return pages,
            }
            assert!(pages.len() < 1_000, "the list never ends");
        }
    }

    /// One page of a list (asserting 200).
    pub async fn page(
        &self,
        user: &str,
        path: &str,
        limit: u32,
        cursor: Option<&str>,
    ) -> api::Page<Value> {
        let mut url = reqwest::Url::parse(&self.url(path)).expect("a valid URL");
        url.query_pairs_mut()
            .append_pair("limit", &limit.to_string());
        if let Some(cursor) = cursor {
            url.query_pairs_mut().append_pair("cursor", cursor);
        }
        let builder = self.client.get(url).header("Authorization", bearer(user));
        self.send_request(builder).await.ok(200)
    }
}
