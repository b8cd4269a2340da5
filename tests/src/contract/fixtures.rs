//! Builders and assertions shared by the contract suites. Ids are fresh v7 ids and
//! timestamps have microsecond precision, as the domain makes them.

use std::fmt::Debug;

use chrono::{DateTime, TimeDelta};
use confab_core::error::{Conflict, StoreError};
use confab_core::ids::{ConversationId, FileId, ProjectId, PromptId, UserId};
use confab_core::model::{
    Conversation, FileMeta, Message, NewPrompt, Parent, Project, TextStatus, Timestamp, now,
};
use confab_core::ports::{ChatHistory, NewTurn};
use uuid::Uuid;

use super::Stores;

/// A user id unique to this call, readable in failures (`alice-0190…`).
pub fn user(name: &str) -> UserId {
    match UserId::new(format!("{name}-{}", Uuid::now_v7().simple())) {
        Ok(user) => user,
        Err(e) => panic!("fixture user id {name:?} is invalid: {e}"),
    }
}

/// A fixed instant with non-zero microseconds (`micros` since the Unix epoch).
pub fn at_micros(micros: i64) -> Timestamp {
    match DateTime::from_timestamp_micros(micros) {
        Some(at) => at,
        None => panic!("{micros} µs is out of range"),
    }
}

/// `base` moved by `seconds` (may be negative).
pub fn plus_secs(base: Timestamp, seconds: i64) -> Timestamp {
    base + TimeDelta::seconds(seconds)
}

/// `base` moved by `minutes` (may be negative).
pub fn plus_mins(base: Timestamp, minutes: i64) -> Timestamp {
    base + TimeDelta::minutes(minutes)
}

/// A project of `owner`, created now.
pub fn project(owner: &UserId, name: &str) -> Project {
    let at = now();
    Project {
        id: ProjectId::new(),
        owner_id: owner.clone(),
        name: name.to_owned(),
        description: Some(format!("The {name} bot")),
        created_at: at,
        updated_at: at,
        knowledge: true,
        language: confab_core::values::SearchLanguage::default(),
    }
}

/// A new project of `owner`, stored.
pub async fn stored_project(stores: &Stores, owner: &UserId, name: &str) -> Project {
    let project = project(owner, name);
    ok(
        stores.projects.insert_project(&project).await,
        "insert_project",
    );
    project
}

/// A conversation of `owner` under `project_id`, created now.
pub fn conversation(owner: &UserId, project_id: ProjectId, title: Option<&str>) -> Conversation {
    let at = now();
    Conversation {
        active_reply_id: None,
        leaf_id: None,
        model: None,
        id: ConversationId::new(),
        project_id,
        owner_id: owner.clone(),
        title: title.map(str::to_owned),
        created_at: at,
        updated_at: at,
    }
}

/// A new conversation of `owner` under `project_id`, stored.
pub async fn stored_conversation(
    stores: &Stores,
    owner: &UserId,
    project_id: ProjectId,
) -> Conversation {
    let conversation = conversation(owner, project_id, Some("Chat"));
    ok(
        stores.history.insert_conversation(&conversation).await,
        "insert_conversation",
    );
    conversation
}

/// A user message and its pending (streaming, empty) reply, both created at `at`.
pub fn turn(
    conversation_id: ConversationId,
    text: &str,
    client_message_id: Option<Uuid>,
    at: Timestamp,
) -> (Message, Message) {
    let user = Message::user(conversation_id, text.to_owned(), client_message_id, at);
    let mut reply = Message::pending_reply(conversation_id, "model-a".to_owned(), at);
    reply.parent_id = Some(user.id);
    (user, reply)
}

/// The turn protocol of a linear conversation: a user message after the conversation's leaf
/// (as every send names no parent) and its reply; the branch before it as history.
#[async_trait::async_trait]
pub trait LinearTurns {
    async fn begin_linear_turn(
        &self,
        owner: &UserId,
        user: &Message,
        reply: &Message,
        stale_before: Timestamp,
        history_limit: u32,
    ) -> Result<Vec<Message>, StoreError>;
}

#[async_trait::async_trait]
impl<T: ChatHistory + ?Sized> LinearTurns for T {
    async fn begin_linear_turn(
        &self,
        owner: &UserId,
        user: &Message,
        reply: &Message,
        stale_before: Timestamp,
        history_limit: u32,
    ) -> Result<Vec<Message>, StoreError> {
        let turn = NewTurn {
            user: Some(user.clone()),
            parent: Parent::Leaf,
            reply: reply.clone(),
            file_ids: Vec::new(),
            quota: None,
        };
        self.begin_turn(owner, &turn, stale_before, history_limit)
            .await
            .map(|turn| turn.history)
    }
}

/// Begins a turn created now (nothing is stale) and returns its two messages.
pub async fn begun_turn(
    stores: &Stores,
    owner: &UserId,
    conversation_id: ConversationId,
    text: &str,
) -> (Message, Message) {
    let at = now();
    let (user, reply) = turn(conversation_id, text, None, at);
    ok(
        stores
            .history
            .begin_linear_turn(owner, &user, &reply, plus_mins(at, -60), 200)
            .await,
        "begin_turn",
    );
    (user, reply)
}

/// The reply finished as `complete` with `text`, as a chat would store it.
pub fn completed(reply: &Message, text: &str) -> Message {
    let mut done = reply.clone();
    done.content = text.to_owned();
    done.status = confab_core::model::MessageStatus::Complete;
    done.usage = Some(confab_core::model::Usage {
        input_tokens: 5,
        output_tokens: 7,
    });
    done
}

/// A whole turn: begun, then finished as complete. Returns the stored user message and reply.
pub async fn finished_turn(
    stores: &Stores,
    owner: &UserId,
    conversation_id: ConversationId,
    text: &str,
) -> (Message, Message) {
    let (user, reply) = begun_turn(stores, owner, conversation_id, text).await;
    let done = completed(&reply, &format!("Re: {text}"));
    ok(
        stores.history.finish_reply(&done, now()).await,
        "finish_reply",
    );
    (user, done)
}

/// A prompt to create in `project_id`.
pub fn new_prompt(project_id: ProjectId, content: &str, activate: bool) -> NewPrompt {
    NewPrompt {
        id: PromptId::new(),
        project_id,
        content: content.to_owned(),
        activate,
        created_at: now(),
    }
}

/// File metadata of `owner` under `project_id`.
pub fn file(owner: &UserId, project_id: ProjectId, filename: &str) -> FileMeta {
    let id = FileId::new();
    FileMeta {
        id,
        project_id,
        owner_id: owner.clone(),
        filename: filename.to_owned(),
        content_type: "text/plain".to_owned(),
        size_bytes: 12,
        sha256: "a591a6d40bf420404a011733cfb7b190d62c65bf0bcda32b57b277d9ad9f146e".to_owned(),
        storage_key: format!("{project_id}/{id}"),
        created_at: now(),
        text_status: TextStatus::Pending,
        text_error: None,
    }
}

/// A new file of `owner` under `project_id`, stored.
pub async fn stored_file(
    stores: &Stores,
    owner: &UserId,
    project_id: ProjectId,
    filename: &str,
) -> FileMeta {
    let file = file(owner, project_id, filename);
    ok(stores.files.insert_file(&file).await, "insert_file");
    file
}

/// The value, or a panic naming the call that failed.
#[track_caller]
pub fn ok<T>(result: Result<T, StoreError>, call: &str) -> T {
    match result {
        Ok(value) => value,
        Err(e) => panic!("{call} failed: {e:?}"),
    }
}

/// Asserts `NotFound`.
#[track_caller]
pub fn not_found<T: Debug>(result: Result<T, StoreError>, call: &str) {
    match result {
        Err(StoreError::NotFound) => {}
        other => panic!("{call}: expected NotFound, got {other:?}"),
    }
}

/// Asserts `Conflict(expected)`.
#[track_caller]
pub fn conflict<T: Debug>(result: Result<T, StoreError>, expected: Conflict, call: &str) {
    match result {
        Err(StoreError::Conflict(c)) if c == expected => {}
        other => panic!("{call}: expected Conflict({expected:?}), got {other:?}"),
    }
}

/// Follows `fetch(after)` page by page (pages of `page_size`) until a short page, and
/// returns every item in order. `between` runs after the first page, to change the data
/// between two fetches.
pub async fn all_pages<T, K, Fetch, FetchFut, Between, BetweenFut>(
    page_size: u32,
    mut fetch: Fetch,
    key: impl Fn(&T) -> K,
    between: Between,
) -> Vec<T>
where
    Fetch: FnMut(Option<K>) -> FetchFut,
    FetchFut: std::future::Future<Output = Result<Vec<T>, StoreError>>,
    Between: FnOnce() -> BetweenFut,
    BetweenFut: std::future::Future<Output = ()>,
{
    let mut items = Vec::new();
    let mut after = None;
    let mut between = Some(between);
    for _ in 0..1_000 {
        let page = ok(fetch(after.take()).await, "a page fetch");
        let size = usize::try_from(page_size).unwrap_or(usize::MAX);
        assert!(
            page.len() <= size,
            "a page of limit {page_size} held {} items",
            page.len()
        );
        let full = page.len() == size;
        after = page.last().map(&key);
        items.extend(page);
        if let Some(between) = between.take() {
            between().await;
        }
        if !full {
            return items;
        }
    }
    panic!("paging did not end after 1000 pages");
}
