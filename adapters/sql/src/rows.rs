//! Row structs (the adapter's only Diesel models) and their conversions to and from the
//! domain's records. A stored value the domain would reject (an unknown role, a negative
//! token count) is an `Internal` error, never a panic.

use confab_core::error::StoreError;
use confab_core::ids::UserId;
use confab_core::knowledge::{KnowledgeHit, Source};
use confab_core::model::{
    Conversation, FileMeta, Message, MessageStatus, Project, Prompt, Role, TextStatus, Timestamp,
    Usage,
};
use confab_core::values::SearchLanguage;
use diesel::pg::Pg;
use diesel::sqlite::Sqlite;
use diesel::{AsChangeset, Insertable, Queryable, QueryableByName, Selectable};

use crate::schema::{conversations, file_metadata, message_files, messages, projects, prompts};
use crate::types::{DbId, DbTime, ToDb as _};

fn owner(raw: String) -> Result<UserId, StoreError> {
    UserId::new(raw).map_err(|_| StoreError::Internal("a stored owner id is invalid".to_owned()))
}

fn count(value: i64, what: &str) -> Result<u32, StoreError> {
    u32::try_from(value)
        .map_err(|_| StoreError::Internal(format!("a stored {what} is out of range")))
}

#[derive(Queryable, Selectable, Insertable)]
#[diesel(table_name = projects, check_for_backend(Pg, Sqlite))]
pub(crate) struct ProjectRow {
    pub id: DbId,
    pub owner_id: String,
    pub name: String,
    pub description: Option<String>,
    pub created_at: DbTime,
    pub updated_at: DbTime,
    pub knowledge: bool,
    pub language: String,
}

impl From<&Project> for ProjectRow {
    fn from(p: &Project) -> Self {
        Self {
            id: p.id.db(),
            owner_id: p.owner_id.as_str().to_owned(),
            name: p.name.clone(),
            description: p.description.clone(),
            created_at: p.created_at.db(),
            updated_at: p.updated_at.db(),
            knowledge: p.knowledge,
            language: p.language.as_str().to_owned(),
        }
    }
}

impl TryFrom<ProjectRow> for Project {
    type Error = StoreError;
    fn try_from(r: ProjectRow) -> Result<Self, StoreError> {
        Ok(Self {
            id: r.id.into(),
            owner_id: owner(r.owner_id)?,
            name: r.name,
            description: r.description,
            created_at: r.created_at.0,
            updated_at: r.updated_at.0,
            knowledge: r.knowledge,
            language: SearchLanguage::new(&r.language).map_err(|_| {
                StoreError::Internal(format!(
                    "a stored project's language {:?} is unknown",
                    r.language
                ))
            })?,
        })
    }
}

/// The columns a `ProjectPatch` may change. `None` leaves a column as it is;
/// `description: Some(None)` clears it.
#[derive(AsChangeset)]
#[diesel(table_name = projects)]
pub(crate) struct ProjectChanges<'a> {
    pub name: Option<&'a str>,
    pub description: Option<Option<&'a str>>,
    pub knowledge: Option<bool>,
    pub language: Option<&'static str>,
    pub updated_at: DbTime,
}

#[derive(Queryable, Selectable, Insertable)]
#[diesel(table_name = prompts, check_for_backend(Pg, Sqlite))]
pub(crate) struct PromptRow {
    pub id: DbId,
    pub project_id: DbId,
    pub version: i32,
    pub content: String,
    pub is_active: bool,
    pub created_at: DbTime,
}

impl From<PromptRow> for Prompt {
    fn from(r: PromptRow) -> Self {
        Self {
            id: r.id.into(),
            project_id: r.project_id.into(),
            version: r.version,
            content: r.content,
            is_active: r.is_active,
            created_at: r.created_at.0,
        }
    }
}

#[derive(Queryable, Selectable, Insertable)]
#[diesel(table_name = conversations, check_for_backend(Pg, Sqlite))]
pub(crate) struct ConversationRow {
    pub id: DbId,
    pub project_id: DbId,
    pub owner_id: String,
    pub title: Option<String>,
    pub created_at: DbTime,
    pub updated_at: DbTime,
    pub leaf_id: Option<DbId>,
    pub model: Option<String>,
}

impl From<&Conversation> for ConversationRow {
    fn from(c: &Conversation) -> Self {
        Self {
            id: c.id.db(),
            project_id: c.project_id.db(),
            owner_id: c.owner_id.as_str().to_owned(),
            title: c.title.clone(),
            created_at: c.created_at.db(),
            updated_at: c.updated_at.db(),
            // A new conversation has no messages yet.
            leaf_id: None,
            model: c.model.clone(),
        }
    }
}

impl TryFrom<ConversationRow> for Conversation {
    type Error = StoreError;
    fn try_from(r: ConversationRow) -> Result<Self, StoreError> {
        Ok(Self {
            id: r.id.into(),
            project_id: r.project_id.into(),
            owner_id: owner(r.owner_id)?,
            title: r.title,
            created_at: r.created_at.0,
            updated_at: r.updated_at.0,
            active_reply_id: None,
            leaf_id: r.leaf_id.map(Into::into),
            model: r.model,
        })
    }
}

/// A message as read back (without its lease column).
#[derive(Queryable, Selectable)]
#[diesel(table_name = messages, check_for_backend(Pg, Sqlite))]
pub(crate) struct MessageRow {
    pub id: DbId,
    pub conversation_id: DbId,
    pub role: String,
    pub content: String,
    pub status: String,
    pub model: Option<String>,
    pub input_tokens: Option<i64>,
    pub output_tokens: Option<i64>,
    pub error: Option<String>,
    pub client_message_id: Option<DbId>,
    pub created_at: DbTime,
    pub parent_id: Option<DbId>,
    pub sources: Option<String>,
}

/// The stored form of a reply's sources: a JSON array, `NULL` when there are none.
pub(crate) fn sources_json(sources: &[Source]) -> Option<String> {
    if sources.is_empty() {
        return None;
    }
    serde_json::to_string(sources).ok()
}

impl TryFrom<MessageRow> for Message {
    type Error = StoreError;
    fn try_from(r: MessageRow) -> Result<Self, StoreError> {
        let role = Role::parse(&r.role).ok_or_else(|| {
            StoreError::Internal("a stored message has an unknown role".to_owned())
        })?;
        let status = MessageStatus::parse(&r.status).ok_or_else(|| {
            StoreError::Internal("a stored message has an unknown status".to_owned())
        })?;
        let usage = match (r.input_tokens, r.output_tokens) {
            (Some(input), Some(output)) => Some(Usage {
                input_tokens: count(input, "token count")?,
                output_tokens: count(output, "token count")?,
            }),
            _ => None,
        };
        Ok(Self {
            id: r.id.into(),
            conversation_id: r.conversation_id.into(),
            parent_id: r.parent_id.map(Into::into),
            role,
            content: r.content,
            status,
            model: r.model,
            usage,
            error: r.error,
            client_message_id: r.client_message_id.map(|u| u.0),
            created_at: r.created_at.0,
            // Filled by the read from `message_files` (`crate::links`).
            files: Vec::new(),
            sources: match r.sources {
                Some(json) => serde_json::from_str(&json).map_err(|_| {
                    StoreError::Internal("a stored message's sources are not readable".to_owned())
                })?,
                None => Vec::new(),
            },
        })
    }
}

/// A message as written: with the lease column `touched_at`. Owned, so that the insert is a
/// `'static` query, and `None` is written as `NULL`, not `DEFAULT`: diesel caches the prepared
/// statement only then, and PostgreSQL's pipelined turn needs that.
#[derive(Clone, Insertable)]
#[diesel(table_name = messages, treat_none_as_default_value = false)]
pub(crate) struct NewMessageRow {
    pub id: DbId,
    pub conversation_id: DbId,
    pub role: &'static str,
    pub content: String,
    pub status: &'static str,
    pub model: Option<String>,
    pub input_tokens: Option<i64>,
    pub output_tokens: Option<i64>,
    pub error: Option<String>,
    pub client_message_id: Option<DbId>,
    pub created_at: DbTime,
    pub touched_at: DbTime,
    pub parent_id: Option<DbId>,
    pub sources: Option<String>,
}

impl NewMessageRow {
    /// The row of `m`, its lease taken at `m.created_at`.
    pub(crate) fn new(m: &Message) -> Self {
        Self {
            id: m.id.db(),
            conversation_id: m.conversation_id.db(),
            role: m.role.as_str(),
            content: m.content.clone(),
            status: m.status.as_str(),
            model: m.model.clone(),
            input_tokens: m.usage.map(|u| i64::from(u.input_tokens)),
            output_tokens: m.usage.map(|u| i64::from(u.output_tokens)),
            error: m.error.clone(),
            client_message_id: m.client_message_id.map(|u| u.db()),
            created_at: m.created_at.db(),
            touched_at: m.created_at.db(),
            parent_id: m.parent_id.map(|id| id.db()),
            sources: sources_json(&m.sources),
        }
    }
}

/// What `finish_reply` writes over a reply.
#[derive(AsChangeset)]
#[diesel(table_name = messages, treat_none_as_null = true)]
pub(crate) struct FinishedReply<'a> {
    pub content: &'a str,
    pub status: &'a str,
    pub model: Option<&'a str>,
    pub input_tokens: Option<i64>,
    pub output_tokens: Option<i64>,
    pub error: Option<&'a str>,
    pub touched_at: DbTime,
    pub sources: Option<String>,
}

impl<'a> FinishedReply<'a> {
    pub(crate) fn new(m: &'a Message, now: Timestamp) -> Self {
        Self {
            content: &m.content,
            status: m.status.as_str(),
            model: m.model.as_deref(),
            input_tokens: m.usage.map(|u| i64::from(u.input_tokens)),
            output_tokens: m.usage.map(|u| i64::from(u.output_tokens)),
            error: m.error.as_deref(),
            touched_at: now.db(),
            sources: sources_json(&m.sources),
        }
    }
}

#[derive(Queryable, Selectable, Insertable)]
#[diesel(table_name = file_metadata, check_for_backend(Pg, Sqlite))]
pub(crate) struct FileRow {
    pub id: DbId,
    pub project_id: DbId,
    pub owner_id: String,
    pub filename: String,
    pub content_type: String,
    pub size_bytes: i64,
    pub sha256: String,
    pub storage_key: String,
    pub created_at: DbTime,
    pub text_status: String,
    pub text_error: Option<String>,
}

impl TryFrom<&FileMeta> for FileRow {
    type Error = StoreError;
    fn try_from(f: &FileMeta) -> Result<Self, StoreError> {
        Ok(Self {
            id: f.id.db(),
            project_id: f.project_id.db(),
            owner_id: f.owner_id.as_str().to_owned(),
            filename: f.filename.clone(),
            content_type: f.content_type.clone(),
            size_bytes: i64::try_from(f.size_bytes)
                .map_err(|_| StoreError::Internal("a file size is out of range".to_owned()))?,
            sha256: f.sha256.clone(),
            storage_key: f.storage_key.clone(),
            created_at: f.created_at.db(),
            text_status: f.text_status.as_str().to_owned(),
            text_error: f.text_error.clone(),
        })
    }
}

impl TryFrom<FileRow> for FileMeta {
    type Error = StoreError;
    fn try_from(r: FileRow) -> Result<Self, StoreError> {
        Ok(Self {
            id: r.id.into(),
            project_id: r.project_id.into(),
            owner_id: owner(r.owner_id)?,
            filename: r.filename,
            content_type: r.content_type,
            size_bytes: u64::try_from(r.size_bytes).map_err(|_| {
                StoreError::Internal("a stored file size is out of range".to_owned())
            })?,
            sha256: r.sha256,
            storage_key: r.storage_key,
            created_at: r.created_at.0,
            text_status: TextStatus::parse(&r.text_status).ok_or_else(|| {
                StoreError::Internal(format!("unknown text status {:?}", r.text_status))
            })?,
            text_error: r.text_error,
        })
    }
}

/// One chunk found by a full-text search (a raw query on each backend).
#[derive(QueryableByName)]
pub(crate) struct HitRow {
    #[diesel(sql_type = crate::types::Id)]
    pub file_id: DbId,
    #[diesel(sql_type = diesel::sql_types::Text)]
    pub filename: String,
    #[diesel(sql_type = diesel::sql_types::Integer)]
    pub ordinal: i32,
    #[diesel(sql_type = diesel::sql_types::Text)]
    pub text: String,
}

impl From<HitRow> for KnowledgeHit {
    fn from(r: HitRow) -> Self {
        Self {
            file_id: r.file_id.into(),
            filename: r.filename,
            ordinal: u32::try_from(r.ordinal).unwrap_or_default(),
            text: r.text,
        }
    }
}

/// A row id read from a full-text index (SQLite's `rowid`).
#[derive(QueryableByName)]
pub(crate) struct RowIdRow {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    pub id: i64,
}

/// A chunk found by SQLite's retrieval by words, with its id (to put the hits in their
/// ranked order).
#[derive(QueryableByName)]
pub(crate) struct IdHitRow {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    pub id: i64,
    #[diesel(embed)]
    pub hit: HitRow,
}

/// One result of a message search (a raw query on each backend): a message, or a
/// conversation whose title matched (no message id nor role then).
#[derive(QueryableByName)]
pub(crate) struct SearchRow {
    #[diesel(sql_type = crate::types::Id)]
    pub conversation_id: DbId,
    #[diesel(sql_type = crate::types::Id)]
    pub project_id: DbId,
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Text>)]
    pub title: Option<String>,
    #[diesel(sql_type = diesel::sql_types::Nullable<crate::types::Id>)]
    pub message_id: Option<DbId>,
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Text>)]
    pub role: Option<String>,
    #[diesel(sql_type = crate::types::Instant)]
    pub created_at: DbTime,
    #[diesel(sql_type = diesel::sql_types::Text)]
    pub text: String,
    #[diesel(sql_type = diesel::sql_types::Double)]
    pub score: f64,
}

impl SearchRow {
    /// Where the hit of this row stands in the order of results.
    pub(crate) fn key(&self) -> confab_core::search::SearchKey {
        confab_core::search::SearchKey {
            score: self.score,
            created_at: self.created_at.0,
            id: self.message_id.unwrap_or(self.conversation_id).0,
        }
    }

    /// The hit, its snippet made from the matched text.
    pub(crate) fn hit(
        self,
        query: &confab_core::search::SearchQuery,
    ) -> Result<confab_core::search::SearchHit, StoreError> {
        let role = self
            .role
            .map(|r| {
                Role::parse(&r).ok_or_else(|| {
                    StoreError::Internal("a stored message has an unknown role".to_owned())
                })
            })
            .transpose()?;
        Ok(confab_core::search::SearchHit {
            conversation_id: self.conversation_id.into(),
            project_id: self.project_id.into(),
            conversation_title: self.title,
            message_id: self.message_id.map(Into::into),
            role,
            created_at: self.created_at.0,
            snippet: confab_core::search::snippet(&self.text, query),
            score: self.score,
        })
    }
}

/// A link of a user message to an attached file, as written.
#[derive(Clone, Insertable)]
#[diesel(table_name = message_files)]
pub(crate) struct NewMessageFileRow {
    pub message_id: DbId,
    pub position: i32,
    pub file_id: DbId,
    pub filename: String,
    pub content_type: String,
    pub size_bytes: i64,
}

impl NewMessageFileRow {
    /// The links of `message` to `files`, in order.
    pub(crate) fn all(
        message: confab_core::ids::MessageId,
        files: &[confab_core::model::MessageFile],
    ) -> Result<Vec<Self>, StoreError> {
        files
            .iter()
            .enumerate()
            .map(|(position, file)| {
                Ok(Self {
                    message_id: message.db(),
                    position: i32::try_from(position)
                        .map_err(|_| StoreError::Internal("too many attachments".to_owned()))?,
                    file_id: file.id.db(),
                    filename: file.filename.clone(),
                    content_type: file.content_type.clone(),
                    size_bytes: i64::try_from(file.size_bytes).map_err(|_| {
                        StoreError::Internal("a file size is out of range".to_owned())
                    })?,
                })
            })
            .collect()
    }
}

/// A link as read: the message, the file's id, name, type and size, and whether the file
/// is gone.
pub(crate) type MessageFileLink = (DbId, DbId, String, String, i64, bool);

/// Gives each message its links (read in message and position order).
pub(crate) fn fill_files(
    messages: &mut [Message],
    links: Vec<MessageFileLink>,
) -> Result<(), StoreError> {
    for (message_id, file_id, filename, content_type, size_bytes, deleted) in links {
        let message_id = confab_core::ids::MessageId::from(message_id);
        if let Some(message) = messages.iter_mut().find(|m| m.id == message_id) {
            message.files.push(confab_core::model::MessageFile {
                id: file_id.into(),
                filename,
                content_type,
                size_bytes: u64::try_from(size_bytes).map_err(|_| {
                    StoreError::Internal("a stored file size is out of range".to_owned())
                })?,
                deleted,
            });
        }
    }
    Ok(())
}
