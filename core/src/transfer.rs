//! Export and import (issue 18). Export reads through the existing ports, a page at a time,
//! so a whole account is never held in memory; import stores one conversation at a time,
//! each in one transaction of an [`ImportStore`], under an import key that makes importing
//! the same export twice add nothing the second time.
//!
//! The file formats (Confab's own `{"confab_export": 1, …}` and ChatGPT's
//! `conversations.json`) are read by the server; what reaches the core is an
//! [`ImportConversation`]: messages with the ids they had in the file and their parents'.
//! [`plan`] turns it into stored records: fresh ids, given in an order where every parent
//! comes before its children (ids grow along a branch, as the stores require), siblings
//! keeping the order of the file.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::sync::Arc;

use async_trait::async_trait;

use crate::error::{ServiceError, StoreError};
use crate::ids::{ConversationId, FileId, MessageId, ProjectId};
use crate::model::{
    Conversation, FileMeta, Message, MessageFile, MessageStatus, Principal, Project, Prompt, Role,
    Timestamp, Usage,
};
use crate::ports::{ChatHistory, FileStore, ProjectStore, PromptStore};
use crate::values::ValidationError;

/// How many rows are read per call while exporting.
pub const EXPORT_PAGE: u32 = 200;

/// The most characters of an imported title (longer ones are cut).
pub const MAX_IMPORTED_TITLE: usize = 200;

/// The error text of a reply that was still being written when it was exported.
pub const INTERRUPTED: &str = "interrupted";

/// One message as read from an export file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImportMessage {
    /// Its id in the file (any text, unique within the conversation).
    pub source_id: String,
    /// Its parent's id in the file; `None`, or an id not among the conversation's messages,
    /// makes it a first message.
    pub parent: Option<String>,
    pub role: Role,
    pub content: String,
    pub status: MessageStatus,
    pub model: Option<String>,
    pub usage: Option<Usage>,
    pub error: Option<String>,
    pub created_at: Timestamp,
    /// Attached files, named only: their bytes are not imported (each gets a fresh id, so it
    /// reads as deleted and never names a file of the importing account by chance).
    pub files: Vec<MessageFile>,
}

/// One conversation as read from an export file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImportConversation {
    /// Unique per source: `chatgpt:<id>` or `confab:<id>`.
    pub key: String,
    pub title: Option<String>,
    pub model: Option<String>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    /// The source id of the message whose branch is shown; `None` (or an unknown id): the
    /// last message in the file's order.
    pub current: Option<String>,
    /// In the file's order (siblings keep it).
    pub messages: Vec<ImportMessage>,
}

/// What [`ImportStore::import_conversation`] stores.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewImport {
    pub key: String,
    /// With `leaf_id` set (the shown branch's last message).
    pub conversation: Conversation,
    /// Every parent before its children; ids ascending in this order.
    pub messages: Vec<Message>,
}

/// What became of one imported conversation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ImportOutcome {
    Imported,
    /// The project already has a conversation imported under this key: nothing was stored.
    AlreadyImported,
}

/// Storing imported conversations.
#[async_trait]
pub trait ImportStore: Send + Sync + 'static {
    /// MUST store, in one transaction, the conversation (with its `leaf_id`), its messages
    /// exactly as given (parents, roles, statuses, models, usage, errors, times and file
    /// links) and the import key, and return `Imported`. MUST store nothing and return
    /// `AlreadyImported` when a conversation of the project was imported under the same key
    /// (also when two imports race); deleting that conversation frees the key. MUST return
    /// `NotFound`, storing nothing, when the project is missing or not
    /// `import.conversation.owner_id`'s.
    async fn import_conversation(&self, import: &NewImport) -> Result<ImportOutcome, StoreError>;
}

/// Why a conversation cannot be stored as read.
fn invalid(field: &'static str, rule: &'static str) -> ValidationError {
    ValidationError::new(field, rule)
}

/// The records to store for `source` in `project` of `owner`: fresh ids (every parent's
/// lower than its children's; siblings in the file's order), parents resolved, `streaming`
/// messages ended as `failed` ("interrupted"), the title cut to [`MAX_IMPORTED_TITLE`].
///
/// # Errors
/// A `ValidationError` when two messages share a source id or the parents form a cycle.
pub fn plan(
    owner: &crate::ids::UserId,
    project_id: ProjectId,
    source: &ImportConversation,
) -> Result<NewImport, ValidationError> {
    let n = source.messages.len();
    let mut index: HashMap<&str, usize> = HashMap::with_capacity(n);
    for (i, m) in source.messages.iter().enumerate() {
        if index.insert(m.source_id.as_str(), i).is_some() {
            return Err(invalid("messages", "two messages have the same id"));
        }
    }
    let parent_of: Vec<Option<usize>> = source
        .messages
        .iter()
        .map(|m| m.parent.as_deref().and_then(|p| index.get(p).copied()))
        .collect();
    let mut children: Vec<Vec<usize>> = vec![Vec::new(); n];
    let mut ready = BinaryHeap::new();
    for (i, parent) in parent_of.iter().enumerate() {
        match parent {
            Some(p) => children[*p].push(i),
            None => ready.push(Reverse(i)),
        }
    }
    // Kahn's order, the lowest position in the file first: parents before children, and
    // otherwise the file's order.
    let mut order = Vec::with_capacity(n);
    while let Some(Reverse(i)) = ready.pop() {
        order.push(i);
        for &child in &children[i] {
            ready.push(Reverse(child));
        }
    }
    if order.len() != n {
        return Err(invalid(
            "messages",
            "the parents of some messages form a cycle",
        ));
    }
    let conversation_id = ConversationId::new();
    let mut new_ids: Vec<Option<MessageId>> = vec![None; n];
    let mut messages = Vec::with_capacity(n);
    for &i in &order {
        let m = &source.messages[i];
        let id = MessageId::new();
        new_ids[i] = Some(id);
        let (status, error) = if m.status == MessageStatus::Streaming {
            (MessageStatus::Failed, Some(INTERRUPTED.to_owned()))
        } else {
            (m.status, m.error.clone())
        };
        messages.push(Message {
            id,
            conversation_id,
            parent_id: parent_of[i].and_then(|p| new_ids[p]),
            role: m.role,
            content: m.content.clone(),
            status,
            model: m.model.clone(),
            usage: m.usage,
            error,
            client_message_id: None,
            created_at: m.created_at,
            files: m
                .files
                .iter()
                .map(|f| MessageFile {
                    id: FileId::new(),
                    deleted: true,
                    ..f.clone()
                })
                .collect(),
            // A source names a file of the exporting project: not carried over.
            sources: Vec::new(),
        });
    }
    let leaf_id = source
        .current
        .as_deref()
        .and_then(|c| index.get(c))
        .and_then(|&i| new_ids[i])
        .or_else(|| n.checked_sub(1).and_then(|last| new_ids[last]));
    let title = source
        .title
        .as_deref()
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(|t| t.chars().take(MAX_IMPORTED_TITLE).collect::<String>());
    Ok(NewImport {
        key: source.key.clone(),
        conversation: Conversation {
            id: conversation_id,
            project_id,
            owner_id: owner.clone(),
            title,
            created_at: source.created_at,
            updated_at: source.updated_at.max(source.created_at),
            active_reply_id: None,
            leaf_id,
            model: source.model.clone(),
        },
        messages,
    })
}

/// One conversation as exported: every message of every branch, oldest first.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConversationDump {
    pub conversation: Conversation,
    pub messages: Vec<Message>,
}

/// Exports and imports an owner's data.
#[derive(Clone)]
pub struct TransferService {
    projects: Arc<dyn ProjectStore>,
    prompts: Arc<dyn PromptStore>,
    history: Arc<dyn ChatHistory>,
    files: Arc<dyn FileStore>,
    imports: Arc<dyn ImportStore>,
}

impl TransferService {
    #[must_use]
    pub fn new(
        projects: Arc<dyn ProjectStore>,
        prompts: Arc<dyn PromptStore>,
        history: Arc<dyn ChatHistory>,
        files: Arc<dyn FileStore>,
        imports: Arc<dyn ImportStore>,
    ) -> Self {
        Self {
            projects,
            prompts,
            history,
            files,
            imports,
        }
    }

    /// The conversation with all its messages (every branch), oldest first. `NotFound` for
    /// another owner's.
    pub async fn conversation(
        &self,
        principal: &Principal,
        id: ConversationId,
    ) -> Result<ConversationDump, ServiceError> {
        let owner = &principal.user_id;
        let conversation = self.history.get_conversation(owner, id).await?;
        let mut messages = Vec::new();
        let mut after = None;
        loop {
            let page = self
                .history
                .list_messages(owner, id, after, EXPORT_PAGE)
                .await?;
            let full = page.len() >= EXPORT_PAGE as usize;
            after = page.last().map(|m| m.id);
            messages.extend(page);
            if !full || after.is_none() {
                break;
            }
        }
        Ok(ConversationDump {
            conversation,
            messages,
        })
    }

    /// The project of `id`, `NotFound` for another owner's.
    pub async fn project(
        &self,
        principal: &Principal,
        id: ProjectId,
    ) -> Result<Project, ServiceError> {
        Ok(self.projects.get_project(&principal.user_id, id).await?)
    }

    /// A page of the owner's projects (newest first) after `after`.
    pub async fn projects_page(
        &self,
        principal: &Principal,
        after: Option<ProjectId>,
    ) -> Result<Vec<Project>, ServiceError> {
        Ok(self
            .projects
            .list_projects(&principal.user_id, after, EXPORT_PAGE)
            .await?)
    }

    /// Every prompt version of the project, lowest version first.
    pub async fn prompts(
        &self,
        principal: &Principal,
        project_id: ProjectId,
    ) -> Result<Vec<Prompt>, ServiceError> {
        let mut all = Vec::new();
        let mut before = None;
        loop {
            let page = self
                .prompts
                .list_prompts(&principal.user_id, project_id, before, EXPORT_PAGE)
                .await?;
            let full = page.len() >= EXPORT_PAGE as usize;
            before = page.last().map(|p| p.version);
            all.extend(page);
            if !full || before.is_none() {
                break;
            }
        }
        all.reverse();
        Ok(all)
    }

    /// A page of the project's conversations after `after` (most recently updated first).
    pub async fn conversations_page(
        &self,
        principal: &Principal,
        project_id: ProjectId,
        after: Option<(Timestamp, ConversationId)>,
    ) -> Result<Vec<Conversation>, ServiceError> {
        Ok(self
            .history
            .list_conversations(&principal.user_id, project_id, after, EXPORT_PAGE)
            .await?)
    }

    /// A page of the project's files after `after` (newest first).
    pub async fn files_page(
        &self,
        principal: &Principal,
        project_id: ProjectId,
        after: Option<FileId>,
    ) -> Result<Vec<FileMeta>, ServiceError> {
        Ok(self
            .files
            .list_files(&principal.user_id, project_id, after, EXPORT_PAGE)
            .await?)
    }

    /// The owner's files among `ids` (the others are left out: deleted, or not theirs).
    pub async fn files_named(
        &self,
        principal: &Principal,
        ids: &[FileId],
    ) -> Result<Vec<FileMeta>, ServiceError> {
        let mut found = Vec::new();
        for id in ids {
            match self.files.get_file(&principal.user_id, *id).await {
                Ok(file) => found.push(file),
                Err(StoreError::NotFound) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(found)
    }

    /// Checks that the project is the principal's before an import reads its file.
    pub async fn check_project(
        &self,
        principal: &Principal,
        project_id: ProjectId,
    ) -> Result<(), ServiceError> {
        self.projects
            .get_project(&principal.user_id, project_id)
            .await
            .map(drop)
            .map_err(Into::into)
    }

    /// Stores a prompt version of an export in its project (the store numbers it). The
    /// content is checked as any prompt's. `NotFound` for another owner's project.
    pub async fn import_prompt(
        &self,
        principal: &Principal,
        prompt: &crate::model::NewPrompt,
    ) -> Result<Prompt, ServiceError> {
        let _checked =
            crate::values::PromptContent::new(&prompt.content, &crate::values::Limits::default())?;
        Ok(self
            .prompts
            .create_prompt(&principal.user_id, prompt)
            .await?)
    }

    /// Stores one conversation of an export in the project, in one transaction; nothing
    /// when it was imported into this project before. `NotFound` for another owner's project.
    pub async fn import(
        &self,
        principal: &Principal,
        project_id: ProjectId,
        source: &ImportConversation,
    ) -> Result<ImportOutcome, ServiceError> {
        let import = plan(&principal.user_id, project_id, source)?;
        Ok(self.imports.import_conversation(&import).await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::UserId;
    use crate::model::now;

    fn message(id: &str, parent: Option<&str>, role: Role) -> ImportMessage {
        ImportMessage {
            source_id: id.to_owned(),
            parent: parent.map(str::to_owned),
            role,
            content: format!("text of {id}"),
            status: MessageStatus::Complete,
            model: None,
            usage: None,
            error: None,
            created_at: now(),
            files: Vec::new(),
        }
    }

    fn source(messages: Vec<ImportMessage>, current: Option<&str>) -> ImportConversation {
        ImportConversation {
            key: "test:1".to_owned(),
            title: Some("  A title  ".to_owned()),
            model: None,
            created_at: now(),
            updated_at: now(),
            current: current.map(str::to_owned),
            messages,
        }
    }

    fn owner() -> UserId {
        UserId::new("alice").unwrap()
    }

    #[test]
    fn parents_get_lower_ids_than_children_whatever_the_files_order() {
        // A child listed before its parent, two branches under one user message.
        let s = source(
            vec![
                message("b", Some("a"), Role::Assistant),
                message("a", None, Role::User),
                message("c", Some("a"), Role::Assistant),
            ],
            Some("b"),
        );
        let planned = plan(&owner(), ProjectId::new(), &s).unwrap();
        let contents: Vec<&str> = planned
            .messages
            .iter()
            .map(|m| m.content.as_str())
            .collect();
        assert_eq!(contents, ["text of a", "text of b", "text of c"]);
        let ids: Vec<MessageId> = planned.messages.iter().map(|m| m.id).collect();
        assert!(ids.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(planned.messages[1].parent_id, Some(ids[0]));
        assert_eq!(planned.messages[2].parent_id, Some(ids[0]));
        assert_eq!(planned.conversation.leaf_id, Some(ids[1]));
        assert_eq!(planned.conversation.title.as_deref(), Some("A title"));
    }

    #[test]
    fn a_cycle_and_a_repeated_id_are_refused() {
        let cycle = source(
            vec![
                message("a", Some("b"), Role::User),
                message("b", Some("a"), Role::Assistant),
            ],
            None,
        );
        assert!(plan(&owner(), ProjectId::new(), &cycle).is_err());
        let twice = source(
            vec![
                message("a", None, Role::User),
                message("a", None, Role::User),
            ],
            None,
        );
        assert!(plan(&owner(), ProjectId::new(), &twice).is_err());
    }

    #[test]
    fn a_streaming_reply_is_imported_as_interrupted_and_files_as_deleted() {
        let mut reply = message("b", Some("a"), Role::Assistant);
        reply.status = MessageStatus::Streaming;
        let mut user = message("a", None, Role::User);
        let file_id = FileId::new();
        user.files.push(MessageFile {
            id: file_id,
            filename: "a.txt".to_owned(),
            content_type: "text/plain".to_owned(),
            size_bytes: 3,
            deleted: false,
        });
        let planned = plan(&owner(), ProjectId::new(), &source(vec![user, reply], None)).unwrap();
        assert_eq!(planned.messages[1].status, MessageStatus::Failed);
        assert_eq!(planned.messages[1].error.as_deref(), Some(INTERRUPTED));
        assert_eq!(planned.conversation.leaf_id, Some(planned.messages[1].id));
        let file = &planned.messages[0].files[0];
        assert_ne!(file.id, file_id);
        assert_eq!(file.filename, "a.txt");
    }
}
