//! The chat use case: one user message in, one streamed and stored reply out — or, to
//! regenerate, a user message answered again (a new reply beside the old one).
//!
//! A conversation is a tree: a message goes after its parent (the branch being shown, by
//! default), and the model is sent only the branch that ends at the new message.
//!
//! The order of the steps is the promise that nothing is lost:
//! 1. validate the content; take one send from the user's allowance;
//! 2. in one transaction (`ChatHistory::begin_turn`): authorize (the conversation is the
//!    caller's), refuse while another reply is streaming (on any branch) or when the
//!    `client_message_id` was used, resolve the parent, check the attachments, refuse a user
//!    over their token quota (the sums read in this transaction: the check holds across
//!    replicas, see [`TurnQuota`]), read the recent history of its branch and the
//!    conversation's model, and store the user's message and an empty `streaming` reply
//!    (which becomes the conversation's leaf) — while the active prompt is read
//!    concurrently;
//! 3. stream from the provider, yielding each delta; beside it, on a timer (not per delta),
//!    renew the reply's lease and save its text so far (`touch_reply`, at most every 2 s), so
//!    that a crash loses at most that much text and a sweep of lapsed leases on any process
//!    ends the reply of a process that died (`failed`, `interrupted`);
//! 4. store the final text with usage and status — `complete`, `failed` (with the text so
//!    far and the reason) or `cancelled` — and yield `Done` or `Error`. The write is retried
//!    while the lease lasts: `Done` means stored. When it cannot be made in time the client
//!    is told `Error` (`unavailable`) and the write is retried a while longer. It is
//!    conditional on the reply still `streaming`: a reply the sweep ended is never
//!    overwritten, and its producer yields `Error` (`interrupted`) with the reply as stored.
//!
//! Steps 1–2 fail as a `ChatError` with nothing stored and the allowance refunded; from step 3
//! on every failure is an event of the stream and the reply is stored (a prompt that could not
//! be read, too). Step 2 is one round of database work so that the time to the first token is
//! the provider's, not ours. A user over the send limit is told 404 (a missing conversation
//! or attachment) or 409 first when those apply (API.md's order of checks), from a read-only
//! `check_turn`; a user over their quota is told so by `begin_turn` after its 404 and 409.

use std::sync::Arc;

use std::task::Poll;

use futures::future::BoxFuture;
use futures::stream::BoxStream;
use futures::{FutureExt as _, StreamExt as _};
use uuid::Uuid;

use crate::attachments::AttachmentSource;
use crate::budget::{estimate_message_tokens, estimate_text_tokens, fit_history};
use crate::cancel::{CancelReason, CancelToken};
use crate::error::{ChatError, LlmError, StoreError};
use crate::ids::{ConversationId, FileId, MessageId};
use crate::model::{Message, MessageStatus, Parent, Principal, Role, Timestamp, now};
use crate::ports::{
    ChatHistory, Completion, FinishOutcome, Incomplete, KnowledgeIndex, LlmAttachment, LlmEvent,
    LlmMessage, LlmRequest, LlmStream, NewTurn, PromptStore, SendLimiter, Timer, Turn,
};
use crate::titles::{Titler, clean_title};
use crate::usage::{Accounting, Call, Purpose, TurnQuota};
use crate::values::{Limits, MessageContent, ValidationError};

/// How the chat use case fits context and keeps replies alive.
#[derive(Clone, Debug)]
pub struct ChatSettings {
    /// The model to ask; `None` uses the provider's default.
    pub model: Option<String>,
    /// The models a conversation may choose (`CONFAB_MODELS`); the default among them.
    pub models: Vec<String>,
    /// The context window the budget fits into, in estimated tokens.
    pub context_tokens: u32,
    /// Tokens kept free for the reply.
    pub output_reserve: u32,
    /// Sent to the provider as its output limit, when set.
    pub max_output_tokens: Option<u32>,
    /// At most this many past messages are loaded before fitting.
    pub history_limit: u32,
    /// A `streaming` reply not renewed for this long belongs to a dead process: the sweep
    /// marks it failed (`interrupted`), and its final write is retried at most this long.
    pub reply_lease: chrono::Duration,
    /// How often a streaming reply renews its lease and saves its text so far, on a timer
    /// (capped by [`ChatSettings::renew_every`]).
    pub touch_every: chrono::Duration,
    /// At most this many passages of the project's files are given to the model as sources
    /// (`CONFAB_KNOWLEDGE_CHUNKS`); 0 turns project knowledge off.
    pub knowledge_chunks: u32,
}

/// A reply's text so far reaches its row at least this often: a crash loses at most this
/// much of it.
pub const MAX_TOUCH_EVERY: std::time::Duration = std::time::Duration::from_secs(2);

impl ChatSettings {
    /// How often a streaming reply renews its lease: `touch_every`, at most a third of the
    /// lease (two renewals may fail before it lapses) and at most [`MAX_TOUCH_EVERY`].
    #[must_use]
    pub fn renew_every(&self) -> std::time::Duration {
        let third = (self.reply_lease / 3).to_std().unwrap_or_default();
        let chosen = self.touch_every.to_std().unwrap_or(MAX_TOUCH_EVERY);
        chosen
            .min(third)
            .min(MAX_TOUCH_EVERY)
            .max(std::time::Duration::from_millis(1))
    }
}

impl Default for ChatSettings {
    fn default() -> Self {
        Self {
            model: None,
            models: Vec::new(),
            context_tokens: 16_000,
            output_reserve: 2_000,
            max_output_tokens: None,
            history_limit: 200,
            reply_lease: chrono::Duration::seconds(6),
            touch_every: chrono::Duration::seconds(2),
            knowledge_chunks: 5,
        }
    }
}

/// A send as it arrives from the client.
#[derive(Clone, Debug)]
pub struct SendRequest {
    pub conversation_id: ConversationId,
    pub content: String,
    pub client_message_id: Option<Uuid>,
    /// Where the message goes: after the branch being shown, as a new first message, or
    /// after a given reply (edit and resend: a new branch).
    pub parent: Parent,
    /// Files of the conversation's project to attach, at most [`MAX_ATTACHMENTS`].
    pub file_ids: Vec<FileId>,
}

/// At most this many files are attached to one message.
pub const MAX_ATTACHMENTS: usize = 10;

/// The attachments of a send, checked: at most [`MAX_ATTACHMENTS`], none twice.
fn check_attachments(file_ids: &[FileId]) -> Result<(), ValidationError> {
    if file_ids.len() > MAX_ATTACHMENTS {
        return Err(ValidationError::new(
            "file_ids",
            format!("must name at most {MAX_ATTACHMENTS} files"),
        ));
    }
    for (i, id) in file_ids.iter().enumerate() {
        if file_ids[..i].contains(id) {
            return Err(ValidationError::new(
                "file_ids",
                "must not name a file twice",
            ));
        }
    }
    Ok(())
}

/// The `code` of a stream's `error` event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StreamErrorCode {
    UpstreamError,
    RateLimited,
    Timeout,
    Truncated,
    Interrupted,
    ContentFilter,
    Unavailable,
}

impl StreamErrorCode {
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::UpstreamError => "upstream_error",
            Self::RateLimited => "rate_limited",
            Self::Timeout => "timeout",
            Self::Truncated => "truncated",
            Self::Interrupted => "interrupted",
            Self::ContentFilter => "content_filter",
            Self::Unavailable => "unavailable",
        }
    }
}

/// What a send produces, in order: `UserMessage`, `AssistantMessage`, any number of
/// `Delta`s, then exactly one of `Done` or `Error` — and, for an untitled conversation's
/// first reply, `TitleFollows` right before its `Done` and its `Title` after it when one was
/// written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ChatEvent {
    UserMessage(Message),
    AssistantMessage(Message),
    Delta {
        message_id: MessageId,
        text: String,
    },
    /// The stored reply: `complete`, or `cancelled` after a user's stop.
    Done(Message),
    /// The stored reply, `failed` with the text so far, and why.
    Error {
        message: Message,
        code: StreamErrorCode,
        detail: String,
    },
    /// After `Done` of a conversation's first reply: the title written for it, stored.
    Title {
        conversation_id: ConversationId,
        title: String,
    },
    /// Right before the `Done` of a reply whose conversation is titled next: the stream goes
    /// on after `Done` until the title is written (`Title`) or given up (the stream ends).
    /// Not an event of the HTTP stream: it tells the relay that `Done` is not the last one.
    TitleFollows {
        conversation_id: ConversationId,
    },
}

/// The events of one send.
pub type ChatStream = BoxStream<'static, ChatEvent>;

/// The chat use case.
#[derive(Clone)]
pub struct ChatService {
    history: Arc<dyn ChatHistory>,
    prompts: Arc<dyn PromptStore>,
    llm: Arc<dyn LlmStream>,
    limiter: Arc<dyn SendLimiter>,
    settings: ChatSettings,
    limits: Limits,
    timer: Arc<dyn Timer>,
    /// Writes the title of an untitled conversation after its first reply; `None`: none is.
    titler: Option<Arc<dyn Titler>>,
    /// Records every model call's usage and refuses sends over quota; `None`: neither.
    accounting: Option<Accounting>,
    /// Where attached files' bytes and texts are read; `None`: files are named only.
    attachment_source: Option<AttachmentSource>,
    /// Where the passages of a project's files are found; `None`: no sources are given.
    knowledge: Option<Arc<dyn KnowledgeIndex>>,
}

/// How long a title may take before it is given up (the client's stream waits for it).
const TITLE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(15);

impl ChatService {
    #[must_use]
    pub fn new(
        history: Arc<dyn ChatHistory>,
        prompts: Arc<dyn PromptStore>,
        llm: Arc<dyn LlmStream>,
        limiter: Arc<dyn SendLimiter>,
        settings: ChatSettings,
        limits: Limits,
    ) -> Self {
        let mut service = Self {
            history,
            prompts,
            llm,
            limiter,
            settings,
            limits,
            timer: Arc::new(ThreadTimer),
            titler: None,
            accounting: None,
            attachment_source: None,
            knowledge: None,
        };
        // The default model is always offered.
        let default = service.model().to_owned();
        if !service.settings.models.contains(&default) {
            service.settings.models.insert(0, default);
        }
        service
    }

    /// Waits with `timer` (the application's runtime) instead of a thread per wait.
    #[must_use]
    pub fn with_timer(mut self, timer: Arc<dyn Timer>) -> Self {
        self.timer = timer;
        self
    }

    /// Writes titles of untitled conversations with `titler` after their first reply.
    #[must_use]
    pub fn with_titler(mut self, titler: Arc<dyn Titler>) -> Self {
        self.titler = Some(titler);
        self
    }

    /// Records usage in `accounting`'s ledger and enforces its quotas.
    #[must_use]
    pub fn with_accounting(mut self, accounting: Accounting) -> Self {
        self.accounting = Some(accounting);
        self
    }

    /// Sends attached files' bytes and texts to the model, read from `files` and `blobs`
    /// (see [`crate::attachments`]); without it they are named only.
    #[must_use]
    pub fn with_attachments(
        mut self,
        files: Arc<dyn crate::ports::FileStore>,
        blobs: Arc<dyn crate::ports::BlobStore>,
    ) -> Self {
        self.attachment_source = Some(AttachmentSource { files, blobs });
        self
    }

    /// Gives the model passages of the project's files found in `index` for each message,
    /// as numbered sources (see [`crate::knowledge`]), when the project's knowledge is on.
    #[must_use]
    pub fn with_knowledge(mut self, index: Arc<dyn KnowledgeIndex>) -> Self {
        self.knowledge = Some(index);
        self
    }

    /// The usage accounting, when configured.
    #[must_use]
    pub const fn accounting(&self) -> Option<&Accounting> {
        self.accounting.as_ref()
    }

    /// The quota a turn is checked against inside `begin_turn`'s transaction (see
    /// [`TurnQuota`] for what it promises across replicas); `None` without accounting.
    fn turn_quota(&self, started: Timestamp) -> Option<TurnQuota> {
        self.accounting.as_ref().map(|accounting| TurnQuota {
            defaults: accounting.defaults,
            at: started,
        })
    }

    /// The limits this service validates with (the OpenAPI document states them).
    #[must_use]
    pub const fn limits(&self) -> &Limits {
        &self.limits
    }

    /// The model replies are asked of.
    #[must_use]
    pub fn model(&self) -> &str {
        self.settings
            .model
            .as_deref()
            .unwrap_or_else(|| self.llm.default_model())
    }

    #[must_use]
    pub fn settings(&self) -> &ChatSettings {
        &self.settings
    }

    /// Stores the user's message and starts the reply. See the module's docs for the order.
    /// `cancel` stops the reply; how it is stored depends on the reason.
    pub async fn send(
        &self,
        principal: &Principal,
        request: SendRequest,
        cancel: CancelToken,
    ) -> Result<ChatStream, ChatError> {
        let content = MessageContent::new(&request.content, &self.limits)?.into_inner();
        check_attachments(&request.file_ids)?;
        let owner = &principal.user_id;
        let conversation_id = request.conversation_id;
        let started = now();
        let stale_before = started - self.settings.reply_lease;
        if let Err(retry_after) = self.limiter.try_acquire(owner).await {
            // The rare path: a missing conversation or attachment (404) or a conflict (409)
            // is reported before the rate limit (429), and a refused send is not charged.
            self.history
                .check_turn(
                    owner,
                    conversation_id,
                    request.client_message_id,
                    &request.file_ids,
                    stale_before,
                )
                .await?;
            return Err(ChatError::RateLimited { retry_after });
        }

        let mut user = Message::user(conversation_id, content, request.client_message_id, started);
        let mut reply = Message::pending_reply(conversation_id, self.model().to_owned(), started);
        reply.parent_id = Some(user.id);
        let turn = NewTurn {
            user: Some(user.clone()),
            parent: request.parent,
            reply: reply.clone(),
            file_ids: request.file_ids,
            quota: self.turn_quota(started),
        };
        let (prompt, began) = self
            .begin(owner, conversation_id, &turn, stale_before, 0)
            .await;
        let mut began = match began {
            Ok(began) => began,
            Err(e) => {
                self.limiter.refund(owner).await;
                return Err(e.into());
            }
        };
        // The turn is stored: from here on a failure is an event of the stream.
        user.parent_id = began.parent_id;
        user.files = std::mem::take(&mut began.files);
        reply.model = Some(self.model_of(began.model.as_deref()).to_owned());
        // The conversation's first reply (a new first message has no history either).
        let title = (began.untitled && began.history.is_empty())
            .then(|| (conversation_id, user.content.clone()));
        Ok(self.start_reply(owner, prompt, began, user, reply, title, cancel))
    }

    /// Answers a user message again: `reply_id` names one of its replies; the new reply is
    /// its sibling, streamed as a send's (the user message first, then the new reply). The
    /// model is sent the branch that ends at that user message. Returns the conversation
    /// with the stream.
    pub async fn regenerate(
        &self,
        principal: &Principal,
        reply_id: MessageId,
        cancel: CancelToken,
    ) -> Result<(ConversationId, ChatStream), ChatError> {
        let owner = &principal.user_id;
        let earlier = self.history.get_message(owner, reply_id).await?;
        let question = match (earlier.role, earlier.parent_id) {
            (Role::Assistant, Some(question)) => question,
            _ => {
                return Err(ValidationError::new("message_id", "must name a reply").into());
            }
        };
        let conversation_id = earlier.conversation_id;
        let started = now();
        let stale_before = started - self.settings.reply_lease;
        if let Err(retry_after) = self.limiter.try_acquire(owner).await {
            self.history
                .check_turn(owner, conversation_id, None, &[], stale_before)
                .await?;
            return Err(ChatError::RateLimited { retry_after });
        }
        let mut reply = Message::pending_reply(conversation_id, self.model().to_owned(), started);
        reply.parent_id = Some(question);
        let turn = NewTurn {
            user: None,
            parent: Parent::Message(question),
            reply: reply.clone(),
            file_ids: Vec::new(),
            quota: self.turn_quota(started),
        };
        // One more message of history: the user message answered again is its last.
        let (prompt, began) = self
            .begin(owner, conversation_id, &turn, stale_before, 1)
            .await;
        let mut began = match began {
            Ok(began) => began,
            Err(e) => {
                self.limiter.refund(owner).await;
                return Err(e.into());
            }
        };
        let Some(user) = began.history.pop().filter(|m| m.id == question) else {
            // The reply is stored as streaming: end it, or the conversation stays busy (409)
            // until the lease sweep; and the send never reached the model, so refund it.
            let detail = "a regenerated turn's history did not end at its user message";
            reply.status = MessageStatus::Failed;
            reply.error = Some("The reply could not be regenerated.".to_owned());
            if let Err(e) = self.history.finish_reply(&reply, now()).await {
                tracing::error!(message_id = %reply.id, error = %e, "could not end a regenerated reply that was never asked");
            }
            self.limiter.refund(owner).await;
            return Err(ChatError::Internal(detail.to_owned()));
        };
        reply.model = Some(self.model_of(began.model.as_deref()).to_owned());
        let events = self.start_reply(owner, prompt, began, user, reply, None, cancel);
        Ok((conversation_id, events))
    }

    /// One read and one transaction, concurrently: the active prompt, and the turn, which
    /// checks ownership and conflicts, reads the branch and stores the new messages.
    async fn begin(
        &self,
        owner: &crate::ids::UserId,
        conversation_id: ConversationId,
        turn: &NewTurn,
        stale_before: Timestamp,
        extra_history: u32,
    ) -> (
        Result<Option<crate::model::Prompt>, StoreError>,
        Result<Turn, StoreError>,
    ) {
        futures::join!(
            self.prompts.conversation_prompt(owner, conversation_id),
            self.history.begin_turn(
                owner,
                turn,
                stale_before,
                self.settings.history_limit.saturating_add(extra_history)
            ),
        )
    }

    /// The model a conversation's replies are asked of: its own when it chose one that is
    /// still offered, else the default.
    fn model_of<'a>(&'a self, chosen: Option<&'a str>) -> &'a str {
        chosen
            .filter(|m| self.settings.models.iter().any(|offered| offered == m))
            .unwrap_or_else(|| self.model())
    }

    /// The stream of a stored turn (`began`: the history before it, and whether its project
    /// has knowledge to search): the provider is asked (unless the prompt could not be read)
    /// and the reply relayed and stored.
    #[allow(clippy::too_many_arguments)]
    fn start_reply(
        &self,
        owner: &crate::ids::UserId,
        prompt: Result<Option<crate::model::Prompt>, StoreError>,
        began: Turn,
        user: Message,
        reply: Message,
        title: Option<(ConversationId, String)>,
        cancel: CancelToken,
    ) -> ChatStream {
        let model = reply.model.clone().unwrap_or_default();
        let llm_request = prompt
            .map(|prompt| {
                let (past, knowledge) = (began.history, began.knowledge);
                self.llm_request(owner, prompt.map(|p| p.content), past, knowledge, &user, model)
            })
            .map_err(|e| {
                tracing::error!(message_id = %reply.id, error = %e, "could not load the system prompt of a turn");
            });
        let title = title.and_then(|(id, first)| Some((id, first, self.titler.clone()?)));
        self.reply_stream(owner.clone(), user, reply, llm_request, title, cancel)
    }

    /// What the provider is asked: the prompt, the new message's attachments (their texts
    /// cut to the budget left after the prompt and the message), the sources found in the
    /// project's files that fit what is left (whole; searched when the turn said there is
    /// `knowledge`), the history that fits the rest, then
    /// the new message; and the sources as the reply stores them. Loaded when the stream is
    /// first polled.
    fn llm_request(
        &self,
        owner: &crate::ids::UserId,
        instructions: Option<String>,
        past: Vec<Message>,
        knowledge: bool,
        user: &Message,
        model: String,
    ) -> BoxFuture<'static, (LlmRequest, Vec<crate::knowledge::Source>)> {
        let new_message = LlmMessage {
            role: Role::User,
            content: user.content.clone(),
        };
        let attached: Vec<_> = user
            .files
            .iter()
            .filter(|file| !file.deleted)
            .cloned()
            .collect();
        let source = self.attachment_source.clone();
        let owner = owner.clone();
        let context_tokens = self.settings.context_tokens;
        let output_reserve = self.settings.output_reserve;
        let max_output_tokens = self.settings.max_output_tokens;
        // The query: the new message, and the previous user message of its branch (a
        // follow-up question often names its subject only there).
        // Searched only when the turn found something to find (most projects have nothing).
        let knowledge = self
            .knowledge
            .clone()
            .filter(|_| knowledge && self.settings.knowledge_chunks > 0)
            .map(|index| {
                let previous = past
                    .iter()
                    .rev()
                    .find(|m| m.role == Role::User && m.id != user.id)
                    .map(|m| m.content.as_str());
                let query = crate::knowledge::send_query(&user.content, previous);
                (
                    index,
                    query,
                    user.conversation_id,
                    self.settings.knowledge_chunks,
                )
            });
        Box::pin(async move {
            let (attachments, text_tokens) = match source {
                Some(source) if !attached.is_empty() => {
                    let left = context_tokens
                        .saturating_sub(output_reserve)
                        .saturating_sub(instructions.as_deref().map_or(0, estimate_text_tokens))
                        .saturating_sub(estimate_message_tokens(&new_message));
                    source.load(&owner, &attached, left).await
                }
                _ => (
                    attached
                        .iter()
                        .map(|file| {
                            LlmAttachment::named(
                                &file.filename,
                                &file.content_type,
                                file.size_bytes,
                            )
                        })
                        .collect(),
                    0,
                ),
            };
            let (sources, stored, source_tokens) = match knowledge {
                Some((index, query, conversation_id, chunks)) => {
                    let left = context_tokens
                        .saturating_sub(output_reserve)
                        .saturating_sub(instructions.as_deref().map_or(0, estimate_text_tokens))
                        .saturating_sub(estimate_message_tokens(&new_message))
                        .saturating_sub(text_tokens);
                    match index
                        .search_conversation(&owner, conversation_id, &query, chunks)
                        .await
                    {
                        Ok(hits) => crate::knowledge::choose_sources(hits, &query, left),
                        Err(e) => {
                            // Knowledge helps a reply; it never stops one.
                            tracing::warn!(conversation_id = %conversation_id, error = %e, "could not search the project's knowledge; the reply is given no sources");
                            (Vec::new(), Vec::new(), 0)
                        }
                    }
                }
                None => (Vec::new(), Vec::new(), 0),
            };
            let mut messages = fit_history(
                instructions.as_deref(),
                provider_history(past),
                &new_message,
                context_tokens,
                output_reserve
                    .saturating_add(text_tokens)
                    .saturating_add(source_tokens),
            );
            messages.push(new_message);
            let request = LlmRequest {
                model,
                instructions,
                messages,
                max_output_tokens,
                attachments,
                sources,
            };
            (request, stored)
        })
    }

    fn reply_stream(
        &self,
        owner: crate::ids::UserId,
        user: Message,
        mut reply: Message,
        request: Result<BoxFuture<'static, (LlmRequest, Vec<crate::knowledge::Source>)>, ()>,
        title: Option<(ConversationId, String, Arc<dyn Titler>)>,
        cancel: CancelToken,
    ) -> ChatStream {
        let history = Arc::clone(&self.history);
        let llm = Arc::clone(&self.llm);
        let timer = Arc::clone(&self.timer);
        let lease = self.settings.reply_lease;
        let renew_every = self.settings.renew_every();
        let accounting = self.accounting.clone();
        Box::pin(async_stream::stream! {
            yield ChatEvent::UserMessage(user);
            // The request is loaded before the reply is announced: its sources are part of it.
            let request = match request {
                Ok(request) => {
                    let (request, sources) = request.await;
                    reply.sources = sources;
                    Ok(request)
                }
                Err(()) => Err(()),
            };
            yield ChatEvent::AssistantMessage(reply.clone());

            let mut text = String::new();
            // `begin_turn` took the lease when it stored the reply.
            let mut leased_until = reply.created_at + lease;
            // What the provider was asked, for the usage ledger.
            let mut asked = None;
            let outcome = match request {
                // The turn is stored but the provider was never asked.
                Err(()) => Outcome::Unprepared,
                Ok(request) => {
                    if accounting.is_some() {
                        asked = Some(request.clone());
                    }
                    let mut upstream = llm.stream(request);
                    let mut cancelled = cancel.cancelled();
                    let mut renewal = Renewal::Waiting(timer.sleep(renew_every));
                    loop {
                        let step = futures::future::poll_fn(|cx| {
                            if let Poll::Ready(reason) = cancelled.poll_unpin(cx) {
                                return Poll::Ready(Step::Cancelled(reason));
                            }
                            if let Poll::Ready(item) = upstream.poll_next_unpin(cx) {
                                return Poll::Ready(Step::Upstream(item));
                            }
                            match &mut renewal {
                                Renewal::Waiting(sleep) => {
                                    if sleep.poll_unpin(cx).is_ready() {
                                        return Poll::Ready(Step::RenewalDue);
                                    }
                                }
                                Renewal::Writing(at, write) => {
                                    if let Poll::Ready(result) = write.poll_unpin(cx) {
                                        return Poll::Ready(Step::Renewed(*at, result));
                                    }
                                }
                            }
                            Poll::Pending
                        })
                        .await;
                        match step {
                            Step::Cancelled(reason) => break Outcome::Cancelled(reason),
                            Step::Upstream(Some(Ok(LlmEvent::Delta(piece)))) => {
                                if piece.is_empty() {
                                    continue;
                                }
                                text.push_str(&piece);
                                yield ChatEvent::Delta { message_id: reply.id, text: piece };
                            }
                            Step::Upstream(Some(Ok(LlmEvent::Completed(completion)))) => break Outcome::Completed(completion),
                            Step::Upstream(Some(Err(error))) => break Outcome::Failed(error),
                            Step::Upstream(None) => break Outcome::Failed(LlmError::Truncated),
                            Step::RenewalDue => {
                                // Renewed on a timer beside the relay, not per delta: a model
                                // that thinks before its first token keeps its lease, and the
                                // text so far reaches the row in one write per period.
                                let at = now();
                                let (history, text, id) = (Arc::clone(&history), text.clone(), reply.id);
                                renewal = Renewal::Writing(at, Box::pin(async move {
                                    history.touch_reply(id, &text, at).await
                                }));
                            }
                            Step::Renewed(at, Ok(true)) => {
                                leased_until = at + lease;
                                renewal = Renewal::Waiting(timer.sleep(until_next(at, renew_every)));
                            }
                            // A sweep ended the reply: another process has told its readers.
                            Step::Renewed(_, Ok(false)) => break Outcome::Lost,
                            Step::Renewed(at, Err(e)) => {
                                tracing::warn!(message_id = %reply.id, error = %e, "could not renew a streaming reply's lease");
                                renewal = Renewal::Waiting(timer.sleep(until_next(at, renew_every)));
                            }
                        }
                    }
                    // The upstream stream is dropped here, before the reply is stored.
                }
            };

            // Every call is counted, also a failed or cancelled one, before its end is told.
            if let (Some(accounting), Some(asked)) = (&accounting, &asked) {
                let completion = match &outcome {
                    Outcome::Completed(completion) => Some(completion),
                    _ => None,
                };
                let call = Call {
                    user: &owner,
                    conversation_id: Some(reply.conversation_id),
                    message_id: Some(reply.id),
                    purpose: Purpose::Chat,
                    request: asked,
                    output: &text,
                    completion,
                };
                accounting.record(call, now()).await;
            }
            let (message, failure) = finish(reply, text, outcome);
            // The final write is retried while the lease lasts; then the client is told the
            // reply could not be stored, and it is retried a while longer. A reply that is
            // never stored is ended by the sweep of lapsed leases, with its text saved so far.
            let give_up_at = leased_until + lease * BACKGROUND_LEASES;
            let mut pause = FIRST_RETRY_PAUSE;
            let mut told = false;
            loop {
                match history.finish_reply(&message, now()).await {
                    Ok(FinishOutcome::Stored) => {
                        let complete = message.status == MessageStatus::Complete;
                        if told {
                            tracing::info!(message_id = %message.id, "stored a finished reply after all");
                        } else {
                            if complete && failure.is_none() && let Some((conversation_id, _, _)) = &title {
                                yield ChatEvent::TitleFollows { conversation_id: *conversation_id };
                            }
                            yield match failure {
                                None => ChatEvent::Done(message),
                                Some((code, detail)) => ChatEvent::Error { message, code, detail },
                            };
                        }
                        // After `done`, off the reply's path: the title of a first reply.
                        if let (true, false, Some((conversation_id, first, titler))) = (complete, told, title)
                            && let Some(title) = write_title(&*history, &*timer, conversation_id, &first, &*titler, accounting.as_ref().map(|a| (a, &owner))).await
                        {
                            yield ChatEvent::Title { conversation_id, title };
                        }
                        break;
                    }
                    Ok(FinishOutcome::AlreadyEnded(stored)) => {
                        tracing::warn!(message_id = %message.id, status = stored.status.as_str(), "a reply was ended by the sweep of lapsed leases before its final write");
                        if !told {
                            yield ChatEvent::Error {
                                message: stored,
                                code: StreamErrorCode::Interrupted,
                                detail: LOST_LEASE.to_owned(),
                            };
                        }
                        break;
                    }
                    Err(e @ (StoreError::NotFound | StoreError::Conflict(_))) => {
                        // Nothing to retry: the conversation was deleted meanwhile.
                        tracing::warn!(message_id = %message.id, error = %e, "could not store a finished reply");
                        if !told {
                            yield match failure {
                                None => ChatEvent::Done(message),
                                Some((code, detail)) => ChatEvent::Error { message, code, detail },
                            };
                        }
                        break;
                    }
                    Err(e) => {
                        let at = now();
                        if at >= give_up_at {
                            tracing::error!(message_id = %message.id, error = %e, "gave up storing a finished reply; the sweep of lapsed leases ends it");
                            if !told {
                                yield unstored(message);
                            }
                            break;
                        }
                        if !told && at + pause > leased_until {
                            tracing::error!(message_id = %message.id, error = %e, "could not store a finished reply within its lease; still trying");
                            told = true;
                            yield unstored(message.clone());
                        } else {
                            tracing::warn!(message_id = %message.id, error = %e, "could not store a finished reply; retrying");
                        }
                        timer.sleep(pause.to_std().unwrap_or_default()).await;
                        pause = (pause * 2).min(MAX_RETRY_PAUSE);
                    }
                }
            }
        })
    }
}

/// Writes and stores the title of a conversation whose first reply completed; `None` when
/// it could not be written (logged once), came out empty, or the conversation has a title
/// by now (one the user set is never replaced).
async fn write_title(
    history: &dyn ChatHistory,
    timer: &dyn Timer,
    conversation_id: ConversationId,
    first_message: &str,
    titler: &dyn Titler,
    accounting: Option<(&Accounting, &crate::ids::UserId)>,
) -> Option<String> {
    let written = futures::future::select(
        titler.title_with_call(first_message),
        timer.sleep(TITLE_TIMEOUT),
    )
    .await;
    let written = match written {
        futures::future::Either::Left(((result, call), _)) => {
            if let (Some((accounting, owner)), Some(call)) = (accounting, call) {
                let call = Call {
                    user: owner,
                    conversation_id: Some(conversation_id),
                    message_id: None,
                    purpose: Purpose::Title,
                    request: &call.request,
                    output: &call.output,
                    completion: call.completion.as_ref(),
                };
                accounting.record(call, now()).await;
            }
            futures::future::Either::Left((result, ()))
        }
        futures::future::Either::Right(timeout) => futures::future::Either::Right(timeout),
    };
    let raw = match written {
        futures::future::Either::Left((Ok(raw), _)) => raw,
        futures::future::Either::Left((Err(e), _)) => {
            tracing::warn!(conversation_id = %conversation_id, error = %e, "could not write a conversation's title; it stays empty");
            return None;
        }
        futures::future::Either::Right(_) => {
            tracing::warn!(conversation_id = %conversation_id, "writing a conversation's title took too long; it stays empty");
            return None;
        }
    };
    let title = clean_title(&raw)?;
    match history.set_title_if_empty(conversation_id, &title).await {
        Ok(true) => Some(title),
        Ok(false) => None,
        Err(e) => {
            tracing::warn!(conversation_id = %conversation_id, error = %e, "could not store a conversation's title; it stays empty");
            None
        }
    }
}

/// The wait until the renewal after the one started `at`: renewals start a period apart
/// whatever their writes take, so the text on the row is never older than a period plus one
/// write.
fn until_next(at: Timestamp, period: std::time::Duration) -> std::time::Duration {
    let spent = (now() - at).to_std().unwrap_or_default();
    period.saturating_sub(spent)
}

/// The first pause before a failed final write is tried again; it doubles up to
/// [`MAX_RETRY_PAUSE`].
const FIRST_RETRY_PAUSE: chrono::Duration = chrono::Duration::milliseconds(100);
const MAX_RETRY_PAUSE: chrono::Duration = chrono::Duration::seconds(2);

/// After the lease has lapsed, a final write is still tried for this many leases more.
const BACKGROUND_LEASES: i32 = 4;

/// The error sentence of a reply whose final write could not be made.
const UNSTORED: &str = "The reply could not be saved because the database is unavailable; it may be saved later. Please reload the conversation in a moment.";

/// The error sentence of a reply another process ended while this one still wrote it.
const LOST_LEASE: &str = "The reply was interrupted: this server lost its hold on it.";

/// The error event of a reply whose final write failed: its text, `failed`, `unavailable`.
fn unstored(mut message: Message) -> ChatEvent {
    message.status = MessageStatus::Failed;
    message.error = Some(UNSTORED.to_owned());
    ChatEvent::Error {
        message,
        code: StreamErrorCode::Unavailable,
        detail: UNSTORED.to_owned(),
    }
}

/// What the relay loop waits for, beside the provider's next event.
enum Renewal {
    /// The next renewal of the lease is due when this completes.
    Waiting(BoxFuture<'static, ()>),
    /// A renewal started at this time is being written.
    Writing(Timestamp, BoxFuture<'static, Result<bool, StoreError>>),
}

/// One step of the relay loop.
enum Step {
    Cancelled(CancelReason),
    Upstream(Option<Result<LlmEvent, LlmError>>),
    RenewalDue,
    Renewed(Timestamp, Result<bool, StoreError>),
}

/// The fallback timer, for callers without a runtime's: a thread sleeps for each wait.
#[derive(Clone, Copy, Debug)]
pub struct ThreadTimer;

impl Timer for ThreadTimer {
    fn sleep(&self, duration: std::time::Duration) -> BoxFuture<'static, ()> {
        let (done, waited) = futures::channel::oneshot::channel::<()>();
        std::thread::spawn(move || {
            std::thread::sleep(duration);
            let _ = done.send(());
        });
        Box::pin(waited.map(drop))
    }
}

enum Outcome {
    /// The turn's preparation failed after it was stored (the prompt could not be read).
    Unprepared,
    Completed(Completion),
    Failed(LlmError),
    Cancelled(CancelReason),
    /// Another process's sweep ended the reply (its lease had lapsed).
    Lost,
}

/// The stored form of a finished reply, and the stream error to report, if any.
fn finish(
    mut reply: Message,
    text: String,
    outcome: Outcome,
) -> (Message, Option<(StreamErrorCode, String)>) {
    reply.content = text;
    let failure = match outcome {
        Outcome::Completed(completion) => {
            reply.usage = completion.usage;
            if let Some(model) = completion.model {
                reply.model = Some(model);
            }
            match completion.incomplete {
                Some(Incomplete::ContentFilter) => Some(describe(&LlmError::ContentFilter)),
                _ => None,
            }
        }
        Outcome::Failed(error) => Some(describe(&error)),
        Outcome::Unprepared => Some((
            StreamErrorCode::Unavailable,
            "The conversation's system prompt could not be loaded. Please try again.".to_owned(),
        )),
        Outcome::Cancelled(CancelReason::User) => {
            reply.status = MessageStatus::Cancelled;
            None
        }
        Outcome::Cancelled(CancelReason::Timeout) => Some((
            StreamErrorCode::Timeout,
            "The reply took longer than the configured limit and was stopped.".to_owned(),
        )),
        Outcome::Lost => Some((StreamErrorCode::Interrupted, LOST_LEASE.to_owned())),
        Outcome::Cancelled(CancelReason::Shutdown) => Some((
            StreamErrorCode::Interrupted,
            "The server shut down while this reply was being written.".to_owned(),
        )),
    };
    match &failure {
        Some((_, detail)) => {
            reply.status = MessageStatus::Failed;
            reply.error = Some(detail.clone());
        }
        None if reply.status == MessageStatus::Streaming => reply.status = MessageStatus::Complete,
        None => {}
    }
    (reply, failure)
}

/// The stream error code and a sentence for a person, for a provider failure.
#[must_use]
pub fn describe(error: &LlmError) -> (StreamErrorCode, String) {
    match error {
        LlmError::RateLimited { .. } => (
            StreamErrorCode::RateLimited,
            "The model provider is rate limiting requests. Please try again in a moment."
                .to_owned(),
        ),
        LlmError::Upstream { status, code, .. } => describe_upstream(*status, code.as_deref()),
        LlmError::Unauthorized => (
            StreamErrorCode::UpstreamError,
            "The model provider rejected the API key.".to_owned(),
        ),
        LlmError::Timeout(_) => (
            StreamErrorCode::Timeout,
            "The model provider took too long to answer.".to_owned(),
        ),
        LlmError::Unavailable(_) => (
            StreamErrorCode::Unavailable,
            "The model provider could not be reached.".to_owned(),
        ),
        LlmError::BadResponse(_) => (
            StreamErrorCode::UpstreamError,
            "The model provider sent a response that could not be read.".to_owned(),
        ),
        LlmError::Truncated => (
            StreamErrorCode::Truncated,
            "The model provider's stream ended before the reply was complete.".to_owned(),
        ),
        LlmError::ContentFilter => (
            StreamErrorCode::ContentFilter,
            "The provider's content filter stopped the reply.".to_owned(),
        ),
    }
}

/// The sentence for a provider's error answer, chosen by its code (see `LlmError::Upstream`).
/// The provider's own message is never shown: it may echo a key, an address or the prompt.
fn describe_upstream(status: Option<u16>, code: Option<&str>) -> (StreamErrorCode, String) {
    let with_status = |sentence: &str| match status {
        Some(status) => format!("{sentence} (status {status})."),
        None => format!("{sentence}."),
    };
    let detail = match code {
        Some("model_not_found") => {
            "The model provider does not offer the model this conversation asks for; check the configured model name.".to_owned()
        }
        Some("insufficient_quota") => {
            "The model provider's account has run out of quota or credit.".to_owned()
        }
        Some("context_length_exceeded") => {
            "The conversation is too long for the model; start a new conversation or send a shorter message.".to_owned()
        }
        Some("overloaded") => {
            return (
                StreamErrorCode::Unavailable,
                "The model provider is overloaded right now. Please try again in a moment."
                    .to_owned(),
            );
        }
        Some("not_found") => with_status(
            "The model provider has no such endpoint or model; check the configured provider URL and model name",
        ),
        Some("invalid_request_error") => {
            with_status("The model provider rejected the request as invalid")
        }
        Some("server_error") => with_status("The model provider failed with an internal error"),
        other => {
            // Another provider's code is shown only when it is a short identifier.
            let code = other.filter(|code| {
                code.len() <= 64
                    && code.bytes().any(|b| b.is_ascii_alphabetic())
                    && code
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
            });
            match (status, code) {
                (Some(status), Some(code)) => {
                    format!("The model provider returned an error (status {status}, {code}).")
                }
                (Some(status), None) => {
                    format!("The model provider returned an error (status {status}).")
                }
                (None, Some(code)) => format!("The model provider returned an error ({code})."),
                (None, None) => "The model provider returned an error.".to_owned(),
            }
        }
    };
    (StreamErrorCode::UpstreamError, detail)
}

/// The past messages a provider is sent: complete ones, and failed or cancelled replies that
/// have text; never a reply still streaming or an empty one.
fn provider_history(past: Vec<Message>) -> Vec<LlmMessage> {
    past.into_iter()
        .filter(|m| !m.content.is_empty())
        .filter(|m| match m.status {
            MessageStatus::Complete | MessageStatus::Failed | MessageStatus::Cancelled => true,
            MessageStatus::Streaming => false,
        })
        .map(|m| LlmMessage {
            role: m.role,
            content: m.content,
        })
        .collect()
}

#[cfg(test)]
#[path = "chat_tests.rs"]
mod tests;
