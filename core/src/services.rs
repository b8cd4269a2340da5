//! The use cases behind the CRUD routes: validation, ids and timestamps, paging. Storage is
//! the ports' job; ownership is enforced by passing the principal's user id to every call.

use std::sync::Arc;

use crate::cursor;
use crate::error::ServiceError;
use crate::ids::{ConversationId, MessageId, ProjectId, PromptId};
use crate::model::{
    BranchMessage, Conversation, NewPrompt, Page, Principal, Project, ProjectPatch, Prompt, now,
};
use crate::ports::{BlobStore, Branch, ChatHistory, ProjectStore, PromptStore};
use crate::values::{self, Limits, PageLimit, ProjectName, PromptContent, Title};

/// Asks a store for one more row than the page holds, to learn whether a next page exists.
pub(crate) fn paged<T>(mut rows: Vec<T>, limit: PageLimit, key: impl Fn(&T) -> String) -> Page<T> {
    let limit = limit.get() as usize;
    let next_cursor = if rows.len() > limit {
        rows.truncate(limit);
        rows.last().map(key)
    } else {
        None
    };
    Page {
        items: rows,
        next_cursor,
    }
}

/// A page request as parsed from `?limit=&cursor=`.
#[derive(Clone, Debug, Default)]
pub struct PageQuery {
    pub limit: PageLimit,
    pub cursor: Option<String>,
}

impl PageQuery {
    fn fetch(&self) -> u32 {
        self.limit.get() + 1
    }
}

/// Projects of the signed-in user.
#[derive(Clone)]
pub struct ProjectService {
    store: Arc<dyn ProjectStore>,
    blobs: Arc<dyn BlobStore>,
    limits: Limits,
}

impl ProjectService {
    #[must_use]
    pub fn new(store: Arc<dyn ProjectStore>, blobs: Arc<dyn BlobStore>, limits: Limits) -> Self {
        Self {
            store,
            blobs,
            limits,
        }
    }

    /// The limits this service validates with (the OpenAPI document states them).
    #[must_use]
    pub const fn limits(&self) -> &Limits {
        &self.limits
    }

    pub async fn create(
        &self,
        principal: &Principal,
        name: &str,
        description: Option<&str>,
    ) -> Result<Project, ServiceError> {
        let name = ProjectName::new(name, &self.limits)?.into_inner();
        let description = values::description(description, &self.limits)?;
        let at = now();
        let project = Project {
            id: ProjectId::new(),
            owner_id: principal.user_id.clone(),
            name,
            description,
            created_at: at,
            updated_at: at,
            knowledge: true,
            language: values::SearchLanguage::default(),
        };
        self.store.insert_project(&project).await?;
        Ok(project)
    }

    pub async fn get(&self, principal: &Principal, id: ProjectId) -> Result<Project, ServiceError> {
        Ok(self.store.get_project(&principal.user_id, id).await?)
    }

    pub async fn list(
        &self,
        principal: &Principal,
        page: &PageQuery,
    ) -> Result<Page<Project>, ServiceError> {
        let after = page
            .cursor
            .as_deref()
            .map(cursor::decode_id)
            .transpose()?
            .map(ProjectId::from_uuid);
        let rows = self
            .store
            .list_projects(&principal.user_id, after, page.fetch())
            .await?;
        Ok(paged(rows, page.limit, |p| {
            cursor::encode_id(p.id.as_uuid())
        }))
    }

    /// `description: Some(None)` clears the description; `knowledge` turns the project's
    /// knowledge on or off; `language` (one of [`values::SEARCH_LANGUAGES`]) is the language
    /// its knowledge is searched in.
    pub async fn update(
        &self,
        principal: &Principal,
        id: ProjectId,
        name: Option<&str>,
        description: Option<Option<&str>>,
        knowledge: Option<bool>,
        language: Option<&str>,
    ) -> Result<Project, ServiceError> {
        let patch = ProjectPatch {
            name: name
                .map(|n| ProjectName::new(n, &self.limits).map(ProjectName::into_inner))
                .transpose()?,
            description: description
                .map(|d| values::description(d, &self.limits))
                .transpose()?,
            knowledge,
            language: language.map(values::SearchLanguage::new).transpose()?,
        };
        Ok(self
            .store
            .update_project(&principal.user_id, id, &patch, now())
            .await?)
    }

    /// Deletes the project, everything under it, and its files' bytes.
    pub async fn delete(&self, principal: &Principal, id: ProjectId) -> Result<(), ServiceError> {
        let keys = self.store.delete_project(&principal.user_id, id).await?;
        for key in keys {
            if let Err(e) = self.blobs.delete(&key).await {
                tracing::warn!(storage_key = %key, error = %e, "could not remove a deleted project's file bytes");
            }
        }
        Ok(())
    }

    /// Whether the database answers.
    pub async fn ready(&self) -> Result<(), ServiceError> {
        Ok(self.store.ping().await?)
    }
}

/// Versioned system prompts.
#[derive(Clone)]
pub struct PromptService {
    store: Arc<dyn PromptStore>,
    limits: Limits,
}

impl PromptService {
    #[must_use]
    pub fn new(store: Arc<dyn PromptStore>, limits: Limits) -> Self {
        Self { store, limits }
    }

    /// The limits this service validates with (the OpenAPI document states them).
    #[must_use]
    pub const fn limits(&self) -> &Limits {
        &self.limits
    }

    pub async fn create(
        &self,
        principal: &Principal,
        project_id: ProjectId,
        content: &str,
        activate: bool,
    ) -> Result<Prompt, ServiceError> {
        let content = PromptContent::new(content, &self.limits)?.into_inner();
        let prompt = NewPrompt {
            id: PromptId::new(),
            project_id,
            content,
            activate,
            created_at: now(),
        };
        Ok(self
            .store
            .create_prompt(&principal.user_id, &prompt)
            .await?)
    }

    pub async fn list(
        &self,
        principal: &Principal,
        project_id: ProjectId,
        page: &PageQuery,
    ) -> Result<Page<Prompt>, ServiceError> {
        let before = page
            .cursor
            .as_deref()
            .map(cursor::decode_version)
            .transpose()?;
        let rows = self
            .store
            .list_prompts(&principal.user_id, project_id, before, page.fetch())
            .await?;
        Ok(paged(rows, page.limit, |p| {
            cursor::encode_version(p.version)
        }))
    }

    /// The active prompt; `NotFound` when none is active.
    pub async fn active(
        &self,
        principal: &Principal,
        project_id: ProjectId,
    ) -> Result<Prompt, ServiceError> {
        self.store
            .active_prompt(&principal.user_id, project_id)
            .await?
            .ok_or(ServiceError::NotFound)
    }

    pub async fn activate(
        &self,
        principal: &Principal,
        project_id: ProjectId,
        prompt_id: PromptId,
    ) -> Result<Prompt, ServiceError> {
        Ok(self
            .store
            .activate_prompt(&principal.user_id, project_id, prompt_id)
            .await?)
    }
}

/// Conversations and reading their messages.
#[derive(Clone)]
pub struct ConversationService {
    history: Arc<dyn ChatHistory>,
    limits: Limits,
    /// The models a conversation may choose.
    models: Vec<String>,
}

impl ConversationService {
    #[must_use]
    pub fn new(history: Arc<dyn ChatHistory>, limits: Limits) -> Self {
        Self {
            history,
            limits,
            models: Vec::new(),
        }
    }

    /// Conversations may choose among `models` (`CONFAB_MODELS`).
    #[must_use]
    pub fn with_models(mut self, models: Vec<String>) -> Self {
        self.models = models;
        self
    }

    /// The limits this service validates with (the OpenAPI document states them).
    #[must_use]
    pub const fn limits(&self) -> &Limits {
        &self.limits
    }

    pub async fn create(
        &self,
        principal: &Principal,
        project_id: ProjectId,
        title: Option<&str>,
    ) -> Result<Conversation, ServiceError> {
        let title = Title::new(title, &self.limits)?.into_inner();
        let at = now();
        let conversation = Conversation {
            active_reply_id: None,
            leaf_id: None,
            model: None,
            id: ConversationId::new(),
            project_id,
            owner_id: principal.user_id.clone(),
            title,
            created_at: at,
            updated_at: at,
        };
        self.history.insert_conversation(&conversation).await?;
        Ok(conversation)
    }

    pub async fn get(
        &self,
        principal: &Principal,
        id: ConversationId,
    ) -> Result<Conversation, ServiceError> {
        Ok(self
            .history
            .get_conversation(&principal.user_id, id)
            .await?)
    }

    pub async fn list(
        &self,
        principal: &Principal,
        project_id: ProjectId,
        page: &PageQuery,
    ) -> Result<Page<Conversation>, ServiceError> {
        let after = page
            .cursor
            .as_deref()
            .map(cursor::decode_time_id)
            .transpose()?
            .map(|(at, id)| (at, ConversationId::from_uuid(id)));
        let rows = self
            .history
            .list_conversations(&principal.user_id, project_id, after, page.fetch())
            .await?;
        Ok(paged(rows, page.limit, |c| {
            cursor::encode_time_id(c.updated_at, c.id.as_uuid())
        }))
    }

    pub async fn rename(
        &self,
        principal: &Principal,
        id: ConversationId,
        title: Option<&str>,
    ) -> Result<Conversation, ServiceError> {
        let title = Title::new(title, &self.limits)?.into_inner();
        Ok(self
            .history
            .rename_conversation(&principal.user_id, id, title, now())
            .await?)
    }

    /// A `PATCH`: the fields present are set (`Some(None)` clears one). The model must be
    /// one of the offered models.
    pub async fn update(
        &self,
        principal: &Principal,
        id: ConversationId,
        title: Option<Option<&str>>,
        model: Option<Option<&str>>,
    ) -> Result<Conversation, ServiceError> {
        let title = title
            .map(|t| Title::new(t, &self.limits).map(Title::into_inner))
            .transpose()?;
        if let Some(Some(model)) = model
            && !self.models.iter().any(|offered| offered == model)
        {
            return Err(values::ValidationError::new(
                "model",
                format!("must be one of: {}", self.models.join(", ")),
            )
            .into());
        }
        let owner = &principal.user_id;
        let mut conversation = None;
        if let Some(title) = title {
            conversation = Some(
                self.history
                    .rename_conversation(owner, id, title, now())
                    .await?,
            );
        }
        if let Some(model) = model {
            let model = model.map(str::to_owned);
            conversation = Some(
                self.history
                    .set_conversation_model(owner, id, model)
                    .await?,
            );
        }
        match conversation {
            Some(conversation) => Ok(conversation),
            None => self.get(principal, id).await,
        }
    }

    pub async fn delete(
        &self,
        principal: &Principal,
        id: ConversationId,
    ) -> Result<(), ServiceError> {
        Ok(self
            .history
            .delete_conversation(&principal.user_id, id)
            .await?)
    }

    /// A page of the branch that ends at `leaf` (the conversation's `leaf_id` when `None`),
    /// oldest first. The cursor carries the leaf of the first page, so later pages read the
    /// same branch even when another is chosen meanwhile; when the conversation's leaf has
    /// grown from it (replies added since), they read on to that leaf, so a message added
    /// between two fetches is seen once, at the end.
    pub async fn messages(
        &self,
        principal: &Principal,
        id: ConversationId,
        leaf: Option<MessageId>,
        page: &PageQuery,
    ) -> Result<Page<BranchMessage>, ServiceError> {
        Ok(self.messages_at(principal, id, leaf, page).await?.1)
    }

    /// The conversation's revision (`ChatHistory::conversation_revision`): what a cached page
    /// of its messages is validated against. `NotFound` for another owner's.
    pub async fn revision(
        &self,
        principal: &Principal,
        id: ConversationId,
    ) -> Result<i64, ServiceError> {
        Ok(self
            .history
            .conversation_revision(&principal.user_id, id)
            .await?)
    }

    /// [`Self::messages`] and the conversation's revision read before any of them (the first
    /// read's): the page is at least as new as that revision, never older.
    pub async fn messages_at(
        &self,
        principal: &Principal,
        id: ConversationId,
        leaf: Option<MessageId>,
        page: &PageQuery,
    ) -> Result<(i64, Page<BranchMessage>), ServiceError> {
        let owner = &principal.user_id;
        let revision;
        let fetch = page.fetch();
        let branch = match page.cursor.as_deref().map(cursor::decode_branch) {
            None => {
                let read = self
                    .history
                    .list_branch(owner, id, leaf, None, fetch)
                    .await?;
                revision = read.revision;
                read
            }
            Some(decoded) => {
                let (pinned, after) = decoded?;
                let after = MessageId::from_uuid(after);
                let pinned = pinned.map(MessageId::from_uuid).or(leaf);
                let read = self
                    .history
                    .list_branch(owner, id, pinned, Some(after), fetch)
                    .await?;
                revision = read.revision;
                match pinned {
                    Some(pinned) if read.messages.len() < fetch as usize => {
                        let current = self
                            .history
                            .list_branch(owner, id, None, Some(after), fetch)
                            .await?;
                        if continues(&read, &current, pinned, after) {
                            current
                        } else {
                            read
                        }
                    }
                    _ => read,
                }
            }
        };
        let leaf = branch.leaf_id;
        let page = paged(branch.messages, page.limit, |m| match leaf {
            Some(leaf) => cursor::encode_branch(leaf.as_uuid(), m.message.id.as_uuid()),
            None => cursor::encode_id(m.message.id.as_uuid()),
        });
        Ok((revision, page))
    }

    /// Shows the branch through `message` (its deepest, most recent leaf).
    pub async fn choose_leaf(
        &self,
        principal: &Principal,
        id: ConversationId,
        message: MessageId,
    ) -> Result<Conversation, ServiceError> {
        Ok(self
            .history
            .choose_leaf(&principal.user_id, id, message)
            .await?)
    }
}

/// Whether the branch read now (`current`, after `after`) goes through `pinned`, whose own
/// branch from `after` on was read whole as `read`: then it continues that branch.
fn continues(read: &Branch, current: &Branch, pinned: MessageId, after: MessageId) -> bool {
    let ids = |b: &Branch| b.messages.iter().map(|m| m.message.id).collect::<Vec<_>>();
    let (read, current_ids) = (ids(read), ids(current));
    if read.is_empty() {
        // The last page ended at the pinned leaf: the current branch must go on from it.
        return pinned == after
            && current
                .messages
                .first()
                .is_some_and(|m| m.message.parent_id == Some(pinned));
    }
    current_ids.starts_with(&read)
}

/// Full-text search over the signed-in user's messages and conversation titles.
#[derive(Clone)]
pub struct SearchService {
    store: Arc<dyn crate::ports::MessageSearch>,
}

impl SearchService {
    #[must_use]
    pub fn new(store: Arc<dyn crate::ports::MessageSearch>) -> Self {
        Self { store }
    }

    /// A page of results for `q` (`SearchQuery::parse`: blank, too long or wordless is a
    /// validation error), of `project` when given, best first.
    pub async fn search(
        &self,
        principal: &Principal,
        q: &str,
        project: Option<ProjectId>,
        page: &PageQuery,
    ) -> Result<Page<crate::search::SearchHit>, ServiceError> {
        let query = crate::search::SearchQuery::parse(q)?;
        let after = page
            .cursor
            .as_deref()
            .map(cursor::decode_search)
            .transpose()?;
        if query.is_empty() {
            return Ok(Page {
                items: Vec::new(),
                next_cursor: None,
            });
        }
        let rows = self
            .store
            .search_messages(&principal.user_id, &query, project, after, page.fetch())
            .await?;
        Ok(paged(rows, page.limit, |hit| {
            cursor::encode_search(&hit.key())
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_page_has_a_cursor_and_the_last_page_none() {
        let limit = PageLimit::new(Some(2)).unwrap_or_default();
        let page = paged(vec![1, 2, 3], limit, |n| n.to_string());
        assert_eq!(page.items, vec![1, 2]);
        assert_eq!(page.next_cursor.as_deref(), Some("2"));
        let last = paged(vec![1, 2], limit, |n| n.to_string());
        assert_eq!(last.next_cursor, None);
    }
}
