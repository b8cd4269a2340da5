//! The ports: what the core needs from the outside world. Every method documents its
//! contract in MUST sentences; each MUST is an assertion of the contract suites in
//! `confab-tests`, run against every adapter.
//!
//! All ports are object-safe and held as `Arc<dyn Port>`, because the server picks adapters
//! from configuration at run time. Ownership is part of every storage call: a resource of
//! another owner MUST look exactly like a missing one (`StoreError::NotFound`).

use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use futures::future::BoxFuture;
use futures::stream::BoxStream;
use uuid::Uuid;

use crate::error::{AuthError, BlobError, LlmError, StoreError};
use crate::ids::{ConversationId, FileId, MessageId, ProjectId, PromptId, UserId};
use crate::model::{
    BranchMessage, Conversation, FileMeta, Message, MessageFile, NewPrompt, Parent, Principal,
    Project, ProjectPatch, Prompt, TextOutcome, Timestamp, Usage,
};
use crate::usage::TurnQuota;

/// Verifies bearer tokens.
#[cfg_attr(test, mockall::automock)]
#[async_trait]
pub trait AuthVerifier: Send + Sync + 'static {
    /// MUST return the principal whose `user_id` is the token's `sub` for a valid token.
    /// MUST return `Unauthenticated` for a token that is malformed, expired, not yet valid,
    /// signed by an unknown key or with another algorithm than the one configured, or issued
    /// for someone else. MUST NOT panic on any input.
    /// MAY return `Unavailable` only when no signing key could be obtained at all.
    async fn verify(&self, token: &str) -> Result<Principal, AuthError>;
}

/// Projects, scoped by owner.
#[cfg_attr(test, mockall::automock)]
#[async_trait]
pub trait ProjectStore: Send + Sync + 'static {
    /// MUST store the project as given. MUST return `Conflict(DuplicateId)` if its id exists.
    async fn insert_project(&self, project: &Project) -> Result<(), StoreError>;

    /// MUST return the project when it exists and belongs to `owner`, else `NotFound`.
    async fn get_project(&self, owner: &UserId, id: ProjectId) -> Result<Project, StoreError>;

    /// MUST return at most `limit` of `owner`'s projects, newest first (id descending),
    /// starting strictly after `after` when given. MUST NOT return other owners' projects.
    async fn list_projects(
        &self,
        owner: &UserId,
        after: Option<ProjectId>,
        limit: u32,
    ) -> Result<Vec<Project>, StoreError>;

    /// MUST apply the fields present in `patch`, set `updated_at` to `now` and return the
    /// updated project. MUST return `NotFound` (and change nothing) for another owner's project.
    /// A changed `language` MUST be kept; a store whose knowledge search uses it (PostgreSQL)
    /// MUST re-index the project's chunks in it in the same transaction.
    async fn update_project(
        &self,
        owner: &UserId,
        id: ProjectId,
        patch: &ProjectPatch,
        now: Timestamp,
    ) -> Result<Project, StoreError>;

    /// MUST delete the project with its prompts, conversations, messages and file metadata,
    /// in one atomic step, and return the `storage_key`s of the deleted files so their bytes
    /// can be removed. MUST return `NotFound` for another owner's project.
    async fn delete_project(
        &self,
        owner: &UserId,
        id: ProjectId,
    ) -> Result<Vec<String>, StoreError>;

    /// MUST answer `Ok` when the store can serve requests, `Unavailable` when it cannot.
    async fn ping(&self) -> Result<(), StoreError>;
}

/// Versioned system prompts of a project.
#[cfg_attr(test, mockall::automock)]
#[async_trait]
pub trait PromptStore: Send + Sync + 'static {
    /// MUST store the prompt with `version` = the project's highest version + 1 (1 for the
    /// first), also under concurrent calls (versions stay unique and gapless). When
    /// `activate`, MUST make it the project's only active prompt in the same transaction;
    /// otherwise MUST store it inactive and leave the active one as it was.
    /// MUST return `NotFound` when the project is missing or another owner's.
    async fn create_prompt(&self, owner: &UserId, prompt: &NewPrompt)
    -> Result<Prompt, StoreError>;

    /// MUST return at most `limit` prompts of the project, highest version first, starting
    /// strictly below `before_version` when given. `NotFound` for another owner's project.
    async fn list_prompts(
        &self,
        owner: &UserId,
        project_id: ProjectId,
        before_version: Option<i32>,
        limit: u32,
    ) -> Result<Vec<Prompt>, StoreError>;

    /// MUST return the project's active prompt, `None` when none is active.
    /// `NotFound` for another owner's project.
    async fn active_prompt(
        &self,
        owner: &UserId,
        project_id: ProjectId,
    ) -> Result<Option<Prompt>, StoreError>;

    /// MUST return the active prompt of the conversation's project, `None` when none is
    /// active. `NotFound` for a missing or another owner's conversation. One read: it runs
    /// beside `ChatHistory::begin_turn` on every send.
    async fn conversation_prompt(
        &self,
        owner: &UserId,
        conversation_id: ConversationId,
    ) -> Result<Option<Prompt>, StoreError>;

    /// MUST make this prompt the project's only active one, atomically (concurrent
    /// activations leave exactly one active), and return it. `NotFound` when the prompt is
    /// not in this project or the project is another owner's.
    async fn activate_prompt(
        &self,
        owner: &UserId,
        project_id: ProjectId,
        prompt_id: PromptId,
    ) -> Result<Prompt, StoreError>;
}

/// Conversations and their messages.
#[cfg_attr(test, mockall::automock)]
#[async_trait]
pub trait ChatHistory: Send + Sync + 'static {
    /// MUST store the conversation. MUST return `NotFound` when its project is missing or
    /// does not belong to `conversation.owner_id`.
    async fn insert_conversation(&self, conversation: &Conversation) -> Result<(), StoreError>;

    /// MUST return the conversation when it belongs to `owner`, else `NotFound`.
    async fn get_conversation(
        &self,
        owner: &UserId,
        id: ConversationId,
    ) -> Result<Conversation, StoreError>;

    /// MUST return at most `limit` conversations of the project, most recently updated first
    /// (`updated_at` descending, then id descending), starting strictly after the key `after`.
    /// `NotFound` for a missing or another owner's project.
    async fn list_conversations(
        &self,
        owner: &UserId,
        project_id: ProjectId,
        after: Option<(Timestamp, ConversationId)>,
        limit: u32,
    ) -> Result<Vec<Conversation>, StoreError>;

    /// MUST set the title and `updated_at` and return the conversation. `NotFound` otherwise.
    async fn rename_conversation(
        &self,
        owner: &UserId,
        id: ConversationId,
        title: Option<String>,
        now: Timestamp,
    ) -> Result<Conversation, StoreError>;

    /// MUST set the model its replies are asked of (`None`: the default) and return the
    /// conversation; MUST NOT change `updated_at`. `NotFound` for another owner's.
    async fn set_conversation_model(
        &self,
        owner: &UserId,
        id: ConversationId,
        model: Option<String>,
    ) -> Result<Conversation, StoreError>;

    /// Stores a title written for the conversation — only while it has none: MUST set it
    /// and return `true` when the title is empty (`NULL`), and MUST change nothing and return
    /// `false` when it has one (a title the user set is never replaced). MUST NOT change
    /// `updated_at`. `NotFound` for a missing conversation.
    async fn set_title_if_empty(&self, id: ConversationId, title: &str)
    -> Result<bool, StoreError>;

    /// MUST delete the conversation and its messages. `NotFound` otherwise.
    async fn delete_conversation(
        &self,
        owner: &UserId,
        id: ConversationId,
    ) -> Result<(), StoreError>;

    /// MUST return at most `limit` messages, oldest first (id ascending), starting strictly
    /// after `after`. `NotFound` for a missing or another owner's conversation.
    async fn list_messages(
        &self,
        owner: &UserId,
        conversation_id: ConversationId,
        after: Option<MessageId>,
        limit: u32,
    ) -> Result<Vec<Message>, StoreError>;

    /// The conversation's newest assistant message (`None` when it has none): the reply a
    /// follower of the conversation's live stream wants, `streaming` while it is generated.
    /// `NotFound` for a missing or another owner's conversation. The default reads the
    /// messages page by page; a store may answer it with one query.
    async fn latest_reply(
        &self,
        owner: &UserId,
        conversation_id: ConversationId,
    ) -> Result<Option<Message>, StoreError> {
        const PAGE: u32 = 200;
        let mut latest = None;
        let mut after = None;
        loop {
            let page = self
                .list_messages(owner, conversation_id, after, PAGE)
                .await?;
            let full = page.len() >= PAGE as usize;
            after = page.last().map(|m| m.id);
            if let Some(reply) = page
                .into_iter()
                .rev()
                .find(|m| m.role == crate::model::Role::Assistant)
            {
                latest = Some(reply);
            }
            if !full {
                return Ok(latest);
            }
        }
    }

    /// Read-only check before a turn (a send refused for its rate limit is told 404 or 409
    /// first when those apply). MUST return `NotFound` for a missing or another owner's
    /// conversation, then `NotFound` when an id of `file_ids` does not name a file of `owner`
    /// in the conversation's project (whoever owns the id), then `Conflict(ReplyInProgress)`
    /// when the conversation has a `streaming` reply touched at or after `stale_before`, and
    /// `Conflict(DuplicateClientMessage)` when `client_message_id` was already used in it.
    async fn check_turn(
        &self,
        owner: &UserId,
        conversation_id: ConversationId,
        client_message_id: Option<Uuid>,
        file_ids: &[FileId],
        stale_before: Timestamp,
    ) -> Result<(), StoreError>;

    /// Starts a turn atomically: MUST first mark the conversation's `streaming` replies last
    /// touched before `stale_before` as `failed` with error "interrupted"; then MUST return
    /// `Conflict(ReplyInProgress)` if a `streaming` reply remains (in any branch), or
    /// `Conflict(DuplicateClientMessage)` if the user message's `client_message_id` was used
    /// in this conversation — in both cases storing nothing. It resolves `turn.parent`:
    /// `Leaf` is the conversation's `leaf_id` (none when it is empty), `Root` is none, and
    /// `Message(id)` MUST be a message of this conversation (`NotFound` otherwise) that is a
    /// reply when `turn.user` is given and a user message when it is not (`Invalid`
    /// otherwise). Every id of `turn.file_ids` MUST name a file of `owner` in the
    /// conversation's project (`NotFound`, storing nothing, otherwise — whoever owns the id).
    /// When `turn.quota` is given, MUST then read the owner's quota override and — only when
    /// a limit applies to them (a default or their override; otherwise one key lookup and no
    /// sum) — their tokens of the day and month of `quota.at`, in the same transaction, and
    /// return `QuotaExceeded` (storing nothing) when `quota.check` refuses them, so that the
    /// check holds across processes sharing one database (see [`TurnQuota`] for what it
    /// promises about sends at once).
    /// Then MUST store `turn.user` (if any) with the resolved parent, its links to
    /// `turn.file_ids` (in order, with a copy of each file's metadata), and then
    /// `turn.reply` (status `streaming`, touched now) as given, make the reply the
    /// conversation's `leaf_id`, set its `updated_at` to the `created_at` of the user message
    /// (of the reply without one), and return
    /// the resolved parent, the conversation's `model`, whether it is untitled, and the newest `history_limit`
    /// messages of the branch that ends at the resolved parent (the parent included),
    /// oldest first — never a message of another branch. `NotFound` (storing nothing) for a
    /// missing or another owner's conversation. This holds across processes sharing one
    /// database. It is on the path of every send: implementations keep it to as few round
    /// trips as they can.
    async fn begin_turn(
        &self,
        owner: &UserId,
        turn: &NewTurn,
        stale_before: Timestamp,
        history_limit: u32,
    ) -> Result<Turn, StoreError>;

    /// MUST return the message when it is in one of `owner`'s conversations, else `NotFound`.
    /// Every message this port returns (here, in `list_messages`, `latest_reply`,
    /// `list_branch` and a turn's history) MUST carry its attached files in order, a file
    /// deleted since marked `deleted`.
    async fn get_message(&self, owner: &UserId, id: MessageId) -> Result<Message, StoreError>;

    /// The branch that ends at `leaf` (the conversation's `leaf_id` when `None`), oldest
    /// first: MUST return its messages strictly after `after` (ids grow along a branch), at
    /// most `limit`, each with its `sibling_ids` (the messages with the same parent in this
    /// conversation, itself included, id ascending), the leaf it read, and the conversation's
    /// revision (see `conversation_revision`) read first, in the same statement as the leaf,
    /// so that the page is never older than that revision. `NotFound` for a
    /// missing or another owner's conversation, or a `leaf` not in it.
    async fn list_branch(
        &self,
        owner: &UserId,
        conversation_id: ConversationId,
        leaf: Option<MessageId>,
        after: Option<MessageId>,
        limit: u32,
    ) -> Result<Branch, StoreError>;

    /// The conversation's revision, in one indexed statement (it is read before every cached
    /// page is served): a number that MUST change in the same transaction as every write that
    /// can change any page `list_branch` returns of this conversation — a message inserted,
    /// updated (a reply's saved text, its status, usage or model) or deleted, the files
    /// linked to its messages, a linked file deleted (shown as `deleted`), and its `leaf_id`
    /// — across processes sharing one database; reads MUST NOT change it. `NotFound` for a
    /// missing or another owner's conversation.
    async fn conversation_revision(
        &self,
        owner: &UserId,
        conversation_id: ConversationId,
    ) -> Result<i64, StoreError>;

    /// Shows the branch through `message`: MUST set the conversation's `leaf_id` to the
    /// deepest message under it, following the most recent child (highest id) at each step
    /// (`message` itself when it has none), and return the conversation. `NotFound` for a
    /// missing or another owner's conversation, or a message not in it.
    async fn choose_leaf(
        &self,
        owner: &UserId,
        conversation_id: ConversationId,
        message: MessageId,
    ) -> Result<Conversation, StoreError>;

    /// Renews a streaming reply's lease and saves the text so far; MUST return `true`. MUST
    /// NOT change a reply that is no longer `streaming` (a sweep or another writer ended it)
    /// and MUST then return `false`: its writer has lost it. `NotFound` when the message does
    /// not exist.
    async fn touch_reply(
        &self,
        id: MessageId,
        content: &str,
        now: Timestamp,
    ) -> Result<bool, StoreError>;

    /// Stores the reply's final content, status, model, usage and error, and sets the
    /// conversation's `updated_at` to `now`, in one transaction, and returns `Stored` — only
    /// while the stored reply is still `streaming`. A reply that is no longer `streaming`
    /// (a sweep marked it interrupted) MUST NOT be changed: MUST return
    /// `AlreadyEnded` with the reply as stored. One of two racing writers wins, across
    /// processes sharing one database. MUST return `NotFound` when the message does not
    /// exist.
    async fn finish_reply(
        &self,
        reply: &Message,
        now: Timestamp,
    ) -> Result<FinishOutcome, StoreError>;

    /// Marks every `streaming` reply last touched before `stale_before` as `failed` with
    /// error "interrupted", keeping the text saved so far, in every conversation; returns how
    /// many. Safe to run from several processes at once, and against a writer finishing the
    /// same reply (see `finish_reply`).
    async fn fail_stale_replies(&self, stale_before: Timestamp) -> Result<u64, StoreError>;
}

/// What `ChatHistory::begin_turn` stores.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewTurn {
    /// The new user message (its `parent_id` is resolved by the store); `None` when a reply
    /// is regenerated.
    pub user: Option<Message>,
    /// Where the user message goes, or (without one) the user message the reply answers.
    pub parent: Parent,
    /// The empty `streaming` reply; its `parent_id` is the user message's id.
    pub reply: Message,
    /// The files to attach to the user message, in order (none when regenerating): each
    /// MUST be a file of `owner` in the conversation's project.
    pub file_ids: Vec<FileId>,
    /// The quota the turn is checked against in its transaction; `None`: no quota applies
    /// (no accounting is configured).
    pub quota: Option<TurnQuota>,
}

/// What `ChatHistory::begin_turn` read.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Turn {
    /// The resolved parent of the new user message (of the reply, when regenerating).
    pub parent_id: Option<MessageId>,
    /// The conversation's chosen model; `None` for the default.
    pub model: Option<String>,
    /// Whether the conversation has no title (one may be written after the first reply).
    pub untitled: bool,
    /// The branch ending at the parent, oldest first.
    pub history: Vec<Message>,
    /// The files linked to the new user message, in the order of `NewTurn::file_ids`.
    pub files: Vec<MessageFile>,
    /// Whether the conversation's project has knowledge to search: its knowledge is on and
    /// one of its files has text ready. When not, the reply asks no search.
    pub knowledge: bool,
}

/// A page of a branch.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Branch {
    /// The leaf the branch ends at (`None`: the conversation is empty).
    pub leaf_id: Option<MessageId>,
    pub messages: Vec<BranchMessage>,
    /// The conversation's revision, read before the messages: the page is at least as new.
    pub revision: i64,
}

/// What became of a reply's final write.
#[expect(
    clippy::large_enum_variant,
    reason = "returned once per reply; boxing the rare variant would only add an allocation to read"
)]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FinishOutcome {
    /// The reply is stored as given.
    Stored,
    /// The reply had already been ended (by a sweep of lapsed leases): it is left as stored,
    /// and here it is.
    AlreadyEnded(Message),
}

/// Waiting, on whatever runtime the application runs (the core has none).
pub trait Timer: Send + Sync + 'static {
    /// A future that completes once `duration` has passed.
    fn sleep(&self, duration: Duration) -> BoxFuture<'static, ()>;
}

impl<F> Timer for F
where
    F: Fn(Duration) -> BoxFuture<'static, ()> + Send + Sync + 'static,
{
    fn sleep(&self, duration: Duration) -> BoxFuture<'static, ()> {
        self(duration)
    }
}

/// Metadata of uploaded files.
#[cfg_attr(test, mockall::automock)]
#[async_trait]
pub trait FileStore: Send + Sync + 'static {
    /// MUST store the metadata. `NotFound` when the project is missing or does not belong
    /// to `file.owner_id`.
    async fn insert_file(&self, file: &FileMeta) -> Result<(), StoreError>;

    /// MUST return the file's metadata when it belongs to `owner`, else `NotFound`.
    async fn get_file(&self, owner: &UserId, id: FileId) -> Result<FileMeta, StoreError>;

    /// MUST return at most `limit` files of the project, newest first (id descending),
    /// starting strictly after `after`. `NotFound` for another owner's project.
    async fn list_files(
        &self,
        owner: &UserId,
        project_id: ProjectId,
        after: Option<FileId>,
        limit: u32,
    ) -> Result<Vec<FileMeta>, StoreError>;

    /// MUST delete the metadata and return it (its `storage_key` names the bytes to remove),
    /// and its extracted text with it. `NotFound` otherwise.
    async fn delete_file(&self, owner: &UserId, id: FileId) -> Result<FileMeta, StoreError>;

    /// MUST record the outcome of the file's text extraction: `text_status` and `text_error`
    /// (the failure's sentence, else none) on the metadata and, when ready, the text and its
    /// chunks (`knowledge::chunks`) in the `KnowledgeIndex`, all in one transaction,
    /// replacing any earlier outcome and its chunks. MUST return `NotFound` and store nothing when the file is gone
    /// (deleted while its text was being read). For the background worker: no owner.
    async fn set_file_text(&self, id: FileId, outcome: &TextOutcome) -> Result<(), StoreError>;

    /// MUST return the file's text when its status is `ready`, `None` otherwise; `NotFound`
    /// when the file is missing or belongs to another owner.
    async fn get_file_text(&self, owner: &UserId, id: FileId)
    -> Result<Option<String>, StoreError>;

    /// MUST return the finished outcome (`ready` with its text, `failed` with its error, or
    /// `none`) of another file of the same project with the same `sha256`, if there is one;
    /// `None` when every such file is still pending or there is none.
    async fn extracted_twin(&self, file: &FileMeta) -> Result<Option<TextOutcome>, StoreError>;

    /// MUST return at most `limit` files of any owner whose text is `pending`, oldest first
    /// (id ascending), starting strictly after `after`: the work left by a stop.
    async fn pending_files(
        &self,
        after: Option<FileId>,
        limit: u32,
    ) -> Result<Vec<FileMeta>, StoreError>;
}

/// Full-text search over the chunks of a project's `ready` files. The chunks are written by
/// `FileStore::set_file_text` and removed with their file (or project).
#[cfg_attr(test, mockall::automock)]
#[async_trait]
pub trait KnowledgeIndex: Send + Sync + 'static {
    /// MUST return at most `limit` chunks of the owner's project that contain any word of
    /// `query` (`knowledge::query_words`), the best match first; none for a query without
    /// words. MUST return nothing of another project or owner, and `NotFound` for a project
    /// that is missing or another owner's. A store with stemming (PostgreSQL) MUST match the
    /// words in the project's `language` too (French `mangeaient` found by `manger`); a
    /// language-neutral store (SQLite FTS5 `unicode61`, memory) matches words as written.
    async fn search(
        &self,
        owner: &UserId,
        project_id: ProjectId,
        query: &str,
        limit: u32,
    ) -> Result<Vec<crate::knowledge::KnowledgeHit>, StoreError>;

    /// What a send is given: MUST return `search`'s answer in the project of the owner's
    /// conversation when that project's `knowledge` setting is on, and nothing when it is
    /// off. `NotFound` for a missing or another owner's conversation.
    async fn search_conversation(
        &self,
        owner: &UserId,
        conversation_id: ConversationId,
        query: &str,
        limit: u32,
    ) -> Result<Vec<crate::knowledge::KnowledgeHit>, StoreError>;
}

/// Full-text search over an owner's messages and conversation titles (issue 18).
#[cfg_attr(test, mockall::automock)]
#[async_trait]
pub trait MessageSearch: Send + Sync + 'static {
    /// MUST return at most `limit` results matching `query` (every phrase as consecutive
    /// words, the prefix as the start of a word; case and diacritics ignored) among the
    /// owner's messages that are not `streaming` (a reply is found once it is finished) and
    /// the titles of the owner's conversations (a title hit has no `message_id` nor `role`
    /// and the conversation's `created_at`), of `project` when given.
    /// MUST order them by score (higher first), then `created_at` (newest first), then id
    /// (highest first), the score being the store's relevance: more occurrences of the
    /// query's words in a text of the same length score higher, and equal texts score equal.
    /// MUST start strictly after `after` in that order (keyset paging), fill `snippet` with
    /// `search::snippet` of the matched text, and return nothing of another owner.
    /// MUST return nothing for an empty query (no word). MUST return `NotFound` for a
    /// `project` that is missing or another owner's.
    async fn search_messages(
        &self,
        owner: &UserId,
        query: &crate::search::SearchQuery,
        project: Option<ProjectId>,
        after: Option<crate::search::SearchKey>,
        limit: u32,
    ) -> Result<Vec<crate::search::SearchHit>, StoreError>;
}

/// Reads the text of a file's bytes (bounded in time, size and memory by the adapter).
#[cfg_attr(test, mockall::automock)]
#[async_trait]
pub trait TextExtractor: Send + Sync + 'static {
    /// Waits for room to read one more file, held until the `Admission` is dropped; `None`
    /// when the adapter refuses work for now (the file stays pending). Taken BEFORE a file's
    /// bytes are read, so files waiting their turn hold no bytes in memory.
    async fn admit(&self) -> Option<Admission>;

    /// MUST return the text, `None` for a file without text (image, binary), or `Failed` with
    /// a sentence for a person; MUST NOT panic or block the async runtime. Called while an
    /// `Admission` is held.
    async fn extract(&self, bytes: Bytes, content_type: &str, filename: &str) -> TextOutcome;
}

/// A place among the files a `TextExtractor` reads at once: whatever the adapter holds for
/// it (a semaphore permit), given back when dropped.
pub struct Admission(#[allow(dead_code)] Box<dyn Send + Sync>);

impl Admission {
    #[must_use]
    pub fn new(held: impl Send + Sync + 'static) -> Self {
        Self(Box::new(held))
    }
}

/// A stream of byte chunks, in and out of a `BlobStore`.
pub type ByteStream = BoxStream<'static, Result<Bytes, BlobError>>;

/// Where file bytes live (a directory, S3, memory).
#[cfg_attr(test, mockall::automock)]
#[async_trait]
pub trait BlobStore: Send + Sync + 'static {
    /// MUST write the stream's bytes under `key`, returning how many were written. When the
    /// stream yields an error, MUST return `Aborted` and leave nothing under `key`.
    async fn put(&self, key: &str, body: ByteStream) -> Result<u64, BlobError>;

    /// MUST stream back exactly the bytes stored under `key`; `NotFound` when there are none.
    async fn get(&self, key: &str) -> Result<ByteStream, BlobError>;

    /// MUST remove the bytes under `key`; removing a missing key is `Ok`.
    async fn delete(&self, key: &str) -> Result<(), BlobError>;
}

/// One message as sent to a model.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LlmMessage {
    pub role: crate::model::Role,
    pub content: String,
}

/// Everything a provider needs for one reply.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LlmRequest {
    pub model: String,
    /// The active system prompt; `None` when the project has none active.
    pub instructions: Option<String>,
    /// History oldest first; the new user message last.
    pub messages: Vec<LlmMessage>,
    pub max_output_tokens: Option<u32>,
    /// The files attached to the new user message (the last of `messages`), in order; older
    /// messages' files are not sent. Each carries what the chat use case could load for it
    /// (`crate::attachments`): its bytes, its extracted text, or neither (named only).
    pub attachments: Vec<LlmAttachment>,
    /// Passages of the project's files found for the new message (project knowledge),
    /// numbered from 1. Adapters give them as one system message right after the
    /// instructions, written by `crate::knowledge::sources_message`.
    pub sources: Vec<LlmSource>,
}

/// A passage of a project's file given to a model as a numbered source.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LlmSource {
    /// The number the model cites it by: `[n]`.
    pub n: u32,
    pub filename: String,
    pub text: String,
}

/// A file attached to the message a model is asked to answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LlmAttachment {
    pub filename: String,
    pub content_type: String,
    pub size_bytes: u64,
    /// The file's bytes, for PDFs and images (PNG, JPEG, WebP, GIF) within the per-send
    /// bound (`crate::attachments::MAX_ATTACHMENT_BYTES`); `None` otherwise.
    pub bytes: Option<bytes::Bytes>,
    /// The extracted text of a document (PDFs included), already cut to the context budget
    /// (ending with a `[… cut: N characters not sent]` note when cut); `None` when the file
    /// has no text ready.
    pub text: Option<String>,
}

impl LlmAttachment {
    /// An attachment named with its type and size only.
    #[must_use]
    pub fn named(filename: &str, content_type: &str, size_bytes: u64) -> Self {
        Self {
            filename: filename.to_owned(),
            content_type: content_type.to_owned(),
            size_bytes,
            bytes: None,
            text: None,
        }
    }
}

/// Why a provider stopped before finishing normally.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Incomplete {
    MaxOutputTokens,
    ContentFilter,
    Other(String),
}

/// The end of a successful stream.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Completion {
    /// `None` when the provider reported no usage.
    pub usage: Option<Usage>,
    pub cached_tokens: Option<u32>,
    pub reasoning_tokens: Option<u32>,
    /// The model the provider says answered, when it says.
    pub model: Option<String>,
    /// Set when the provider ended the reply early (`response.incomplete`).
    pub incomplete: Option<Incomplete>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LlmEvent {
    /// A piece of the reply's text, in order.
    Delta(String),
    /// The reply is complete. Nothing follows it.
    Completed(Completion),
}

/// The stream of one reply.
pub type LlmEventStream = BoxStream<'static, Result<LlmEvent, LlmError>>;

/// A language model that streams replies.
#[cfg_attr(test, mockall::automock)]
pub trait LlmStream: Send + Sync + 'static {
    /// The provider's name for logs and `/api/config` (`echo`, `openai`, …).
    fn provider(&self) -> &str;

    /// The model used when a request does not name one.
    fn default_model(&self) -> &str;

    /// Starts a reply. The stream MUST yield the reply's text as `Delta`s in order, then
    /// exactly one `Completed`, or an `Err` and nothing after it. A stream that ends without
    /// `Completed` or `Err` is treated as `Truncated`. Dropping the stream MUST stop the work
    /// upstream (the HTTP request is dropped).
    fn stream(&self, request: LlmRequest) -> LlmEventStream;
}

/// A per-user limit on accepted sends: at most N in any minute (`CONFAB_SENDS_PER_MINUTE`).
#[cfg_attr(test, mockall::automock)]
#[async_trait]
pub trait SendLimiter: Send + Sync + 'static {
    /// MUST take one send from the user's allowance, or return how long until one is free.
    /// It MUST accept a send while the user has fewer than N sends accepted in the last
    /// minute, and MUST NOT accept more than N of one user's sends in any minute. A refused
    /// attempt MUST NOT count. Users MUST NOT share an allowance. The wait MUST be in whole
    /// seconds, 1–60 (what `Retry-After` carries), and MUST be the time until the oldest of
    /// the user's sends of the last minute is a minute old, rounded up: no sooner, no later.
    async fn try_acquire(&self, user: &UserId) -> Result<(), Duration>;

    /// Gives back a send taken by `try_acquire` that was not accepted after all: the user
    /// MUST be able to send again at once. It MUST NOT raise the allowance above N (a refund
    /// with no send taken gives nothing).
    async fn refund(&self, user: &UserId);
}

/// The stream a follower of a live reply reads.
pub type LiveEventStream =
    BoxStream<'static, Result<crate::live::LiveEvent, crate::live::LiveError>>;

/// A reply's live events, readable while it is generated and for a retention time after,
/// by any number of followers on any replica (an in-process buffer, or Redis).
#[async_trait]
pub trait LiveReplies: Send + Sync + 'static {
    /// Opens `reply` for publishing; its producer publishes every event through the returned
    /// publisher. From when this returns, `follow(reply, _)` MUST find the reply (when the
    /// backend is reachable). While the
    /// publisher lives, `cancel(reply)` on any replica MUST cancel `cancel` with
    /// [`crate::cancel::CancelReason::User`]. MUST NOT fail or block the reply when the
    /// backend is away: publishing resumes when it returns.
    async fn open(
        &self,
        reply: MessageId,
        cancel: crate::cancel::CancelToken,
    ) -> Box<dyn crate::live::LivePublisher>;

    /// Reads the reply's events numbered above `after`, in order and with no gap, then
    /// follows it live; the stream MUST end right after the last event. Every follower MUST
    /// get the same events, and a slow or gone follower MUST NOT hold back the producer or
    /// the others. MUST return `NotFound` for a reply never opened or forgotten after its
    /// retention (counted from its last event), and MUST replay it until then. When events
    /// after `after` are no longer kept, MUST yield `Trimmed` rather than skip them; when
    /// the producer dropped its publisher before the last event, MUST end with
    /// `Interrupted`; when the backend is away, MUST yield `Unavailable`.
    async fn follow(
        &self,
        reply: MessageId,
        after: u64,
    ) -> Result<LiveEventStream, crate::live::LiveError>;

    /// Asks the reply's producer, wherever it runs, to stop (see `open`). Cancelling an
    /// unknown or finished reply MUST do nothing and return `Ok`, except that a reply opened
    /// within [`crate::live::EARLY_CANCEL`] after the cancel MUST be cancelled as it opens (the
    /// cancel came between the reply's storing and its opening). `Unavailable` when the
    /// signal could not be sent.
    async fn cancel(&self, reply: MessageId) -> Result<(), crate::live::LiveError>;
}
