//! The domain's records. Adapters store and return them; the HTTP layer maps them to its
//! own response types.

use chrono::{DateTime, SubsecRound, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::ids::{ConversationId, FileId, MessageId, ProjectId, PromptId, UserId};

/// Every timestamp in Confab: UTC, microsecond precision (what PostgreSQL keeps).
pub type Timestamp = DateTime<Utc>;

/// The current time truncated to microseconds, so that a value survives any store unchanged.
#[must_use]
pub fn now() -> Timestamp {
    Utc::now().trunc_subsecs(6)
}

/// Who is calling: established by an `AuthVerifier` from a bearer token.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Principal {
    pub user_id: UserId,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Project {
    pub id: ProjectId,
    pub owner_id: UserId,
    pub name: String,
    pub description: Option<String>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    /// Whether its files' texts are given to the model as numbered sources (on by default;
    /// a project without ready files simply has none to give).
    pub knowledge: bool,
    /// The language its knowledge is searched in (`english` by default; see
    /// [`SearchLanguage`](crate::values::SearchLanguage)).
    pub language: crate::values::SearchLanguage,
}

/// A validated change to a project. `description: Some(None)` clears it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProjectPatch {
    pub name: Option<String>,
    pub description: Option<Option<String>>,
    pub knowledge: Option<bool>,
    pub language: Option<crate::values::SearchLanguage>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Prompt {
    pub id: PromptId,
    pub project_id: ProjectId,
    pub version: i32,
    pub content: String,
    pub is_active: bool,
    pub created_at: Timestamp,
}

/// What a store needs to create a prompt version; the store assigns `version`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewPrompt {
    pub id: PromptId,
    pub project_id: ProjectId,
    pub content: String,
    pub activate: bool,
    pub created_at: Timestamp,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Conversation {
    pub id: ConversationId,
    pub project_id: ProjectId,
    pub owner_id: UserId,
    pub title: Option<String>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    /// The reply being generated in it (its assistant message whose status is `streaming`),
    /// as the store read it; `None` when nothing is being generated. Filled by the store on
    /// every read; ignored when a conversation is inserted.
    pub active_reply_id: Option<MessageId>,
    /// The last message of the branch being shown (`None` while the conversation is empty).
    pub leaf_id: Option<MessageId>,
    /// The model its replies are asked of; `None` is the configured default.
    pub model: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    User,
    Assistant,
}

impl Role {
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::User => "user",
            Self::Assistant => "assistant",
        }
    }

    #[must_use]
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "user" => Some(Self::User),
            "assistant" => Some(Self::Assistant),
            _ => None,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MessageStatus {
    Complete,
    Streaming,
    Failed,
    Cancelled,
}

impl MessageStatus {
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Complete => "complete",
            Self::Streaming => "streaming",
            Self::Failed => "failed",
            Self::Cancelled => "cancelled",
        }
    }

    #[must_use]
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "complete" => Some(Self::Complete),
            "streaming" => Some(Self::Streaming),
            "failed" => Some(Self::Failed),
            "cancelled" => Some(Self::Cancelled),
            _ => None,
        }
    }
}

/// Tokens a provider counted for one reply.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    pub input_tokens: u32,
    pub output_tokens: u32,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message {
    pub id: MessageId,
    pub conversation_id: ConversationId,
    /// The message this one follows in its branch: a user message follows a reply (or is a
    /// first message, `None`), a reply follows its user message.
    pub parent_id: Option<MessageId>,
    pub role: Role,
    pub content: String,
    pub status: MessageStatus,
    /// The model that wrote an assistant reply; `None` on user messages.
    pub model: Option<String>,
    /// `None` on user messages and when the provider reported none.
    pub usage: Option<Usage>,
    /// Why a reply failed, in words for a person; `None` otherwise.
    pub error: Option<String>,
    pub client_message_id: Option<Uuid>,
    pub created_at: Timestamp,
    /// The files attached to a user message, in the order they were given; empty on replies
    /// and on messages without attachments.
    pub files: Vec<MessageFile>,
    /// The passages of the project's files a reply was given as numbered sources
    /// (`crate::knowledge`); empty on user messages and on replies given none.
    pub sources: Vec<crate::knowledge::Source>,
}

/// A file attached to a user message: the link keeps a copy of the file's metadata, so a
/// message still names a file deleted since (then `deleted`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MessageFile {
    pub id: FileId,
    pub filename: String,
    pub content_type: String,
    pub size_bytes: u64,
    /// The file was deleted after it was attached: it is named, no longer readable.
    pub deleted: bool,
}

impl From<&FileMeta> for MessageFile {
    fn from(file: &FileMeta) -> Self {
        Self {
            id: file.id,
            filename: file.filename.clone(),
            content_type: file.content_type.clone(),
            size_bytes: file.size_bytes,
            deleted: false,
        }
    }
}

impl Message {
    /// A user's turn, complete from the start.
    #[must_use]
    pub fn user(
        conversation_id: ConversationId,
        content: String,
        client_message_id: Option<Uuid>,
        created_at: Timestamp,
    ) -> Self {
        Self {
            id: MessageId::new(),
            conversation_id,
            parent_id: None,
            role: Role::User,
            content,
            status: MessageStatus::Complete,
            model: None,
            usage: None,
            error: None,
            client_message_id,
            created_at,
            files: Vec::new(),
            sources: Vec::new(),
        }
    }

    /// An assistant reply that is about to stream: empty, status `streaming`.
    #[must_use]
    pub fn pending_reply(
        conversation_id: ConversationId,
        model: String,
        created_at: Timestamp,
    ) -> Self {
        Self {
            id: MessageId::new(),
            conversation_id,
            parent_id: None,
            role: Role::Assistant,
            content: String::new(),
            status: MessageStatus::Streaming,
            model: Some(model),
            usage: None,
            error: None,
            client_message_id: None,
            created_at,
            files: Vec::new(),
            sources: Vec::new(),
        }
    }
}

/// Where a new user message goes in its conversation's tree.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Parent {
    /// After the conversation's `leaf_id` (the branch being shown).
    Leaf,
    /// A new first message (editing the conversation's first question).
    Root,
    /// After this message: a reply of the conversation (for a user message), or a user
    /// message of it (for a regenerated reply).
    Message(MessageId),
}

/// A message of a branch as read, with its siblings (the messages with its parent, itself
/// included, oldest first), so that a client can move between versions.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BranchMessage {
    pub message: Message,
    pub sibling_ids: Vec<MessageId>,
}

/// Metadata of an uploaded file; its bytes live in a `BlobStore` under `storage_key`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileMeta {
    pub id: FileId,
    pub project_id: ProjectId,
    pub owner_id: UserId,
    pub filename: String,
    pub content_type: String,
    pub size_bytes: u64,
    /// Lowercase hex SHA-256 of the bytes.
    pub sha256: String,
    pub storage_key: String,
    pub created_at: Timestamp,
    /// Where the extraction of the file's text stands.
    pub text_status: TextStatus,
    /// Why the text could not be read, a sentence for a person; only when `Failed`.
    pub text_error: Option<String>,
}

/// Where the extraction of a file's text stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TextStatus {
    /// Not extracted yet (it runs in the background after the upload).
    Pending,
    /// The text is stored.
    Ready,
    /// The file should have text that could not be read (`text_error` says why).
    Failed,
    /// The file has no text: an image, audio, video or other binary.
    None,
}

impl TextStatus {
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Ready => "ready",
            Self::Failed => "failed",
            Self::None => "none",
        }
    }

    #[must_use]
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "pending" => Some(Self::Pending),
            "ready" => Some(Self::Ready),
            "failed" => Some(Self::Failed),
            "none" => Some(Self::None),
            _ => None,
        }
    }
}

/// What the extraction of a file's text found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TextOutcome {
    Ready(String),
    /// A sentence for a person.
    Failed(String),
    None,
}

impl TextOutcome {
    #[must_use]
    pub const fn status(&self) -> TextStatus {
        match self {
            Self::Ready(_) => TextStatus::Ready,
            Self::Failed(_) => TextStatus::Failed,
            Self::None => TextStatus::None,
        }
    }
}

/// One page of a list and the cursor of the next page (`None` on the last page).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_cursor: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_and_statuses_round_trip_as_text() {
        for role in [Role::User, Role::Assistant] {
            assert_eq!(Role::parse(role.as_str()), Some(role));
        }
        for status in [
            MessageStatus::Complete,
            MessageStatus::Streaming,
            MessageStatus::Failed,
            MessageStatus::Cancelled,
        ] {
            assert_eq!(MessageStatus::parse(status.as_str()), Some(status));
        }
        assert_eq!(Role::parse("system"), None);
    }

    #[test]
    fn now_has_microsecond_precision() {
        assert_eq!(now().timestamp_subsec_nanos() % 1_000, 0);
    }
}
