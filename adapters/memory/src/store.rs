//! `MemoryStore`: projects, prompts, conversations, messages, file metadata and text in one
//! mutex-guarded state. Every method takes the lock once, does its work synchronously and
//! releases it, so each call is atomic and no lock is ever held across an `.await`.

use std::collections::{BTreeMap, HashMap};
use std::ops::Bound;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use async_trait::async_trait;
use confab_core::error::{Conflict, StoreError};
use confab_core::ids::{ConversationId, FileId, MessageId, ProjectId, PromptId, ShareId, UserId};
use confab_core::knowledge::{self, KnowledgeHit};
use confab_core::model::{
    BranchMessage, Conversation, FileMeta, Message, MessageFile, MessageStatus, NewPrompt, Parent,
    Project, ProjectPatch, Prompt, Role, TextOutcome, TextStatus, Timestamp,
};
use confab_core::ports::{
    Branch, ChatHistory, FileStore, FinishOutcome, KnowledgeIndex, MessageSearch, NewTurn,
    ProjectStore, PromptStore, Turn,
};
use confab_core::search::{self, SearchHit, SearchKey, SearchQuery};
use confab_core::shares::{NewShare, Share, ShareStore, Snapshot};
use confab_core::transfer::{ImportOutcome, ImportStore, NewImport};
use confab_core::usage::{
    GroupBy, NaiveDate, QuotaOverride, QuotaState, TokenCounts, UsageEntry, UsageLedger, UsageRow,
    UserUsage, month_start,
};
use confab_core::values::ValidationError;
use uuid::Uuid;

/// The error text of a streaming reply whose writer stopped renewing its lease.
pub const INTERRUPTED: &str = "interrupted";

/// Every storage port in memory. Cloning is cheap and the clones share one state, so one
/// value can be handed out as `Arc<dyn ProjectStore>`, `Arc<dyn ChatHistory>`, … at once.
#[derive(Clone, Default)]
pub struct MemoryStore {
    inner: Arc<Inner>,
}

#[derive(Default)]
struct Inner {
    state: Mutex<State>,
    unavailable: AtomicBool,
}

impl MemoryStore {
    /// An empty store.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Simulates a database outage: while `true`, every call (including `ping`) answers
    /// `StoreError::Unavailable` and changes nothing. For tests of 503 answers.
    pub fn set_unavailable(&self, unavailable: bool) {
        self.inner.unavailable.store(unavailable, Ordering::SeqCst);
    }

    fn state(&self) -> Result<MutexGuard<'_, State>, StoreError> {
        if self.inner.unavailable.load(Ordering::SeqCst) {
            return Err(StoreError::Unavailable(
                "the in-memory store is switched off".to_owned(),
            ));
        }
        // A panic while holding the lock cannot leave the state half-written: every
        // mutation below checks first and writes last.
        Ok(self
            .inner
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner))
    }
}

/// A message with the time its writer last renewed its lease.
#[derive(Clone, Debug)]
struct StoredMessage {
    message: Message,
    touched_at: Timestamp,
}

#[derive(Default)]
struct State {
    projects: BTreeMap<ProjectId, Project>,
    /// Each project's prompts in version order (index = version - 1).
    prompts: HashMap<ProjectId, Vec<Prompt>>,
    prompt_ids: HashMap<PromptId, ProjectId>,
    conversations: BTreeMap<ConversationId, Conversation>,
    /// Each conversation's messages by id (v7 ids sort by creation).
    messages: HashMap<ConversationId, BTreeMap<MessageId, StoredMessage>>,
    message_ids: HashMap<MessageId, ConversationId>,
    files: BTreeMap<FileId, FileMeta>,
    /// The extracted text of each `ready` file.
    texts: HashMap<FileId, String>,
    /// The knowledge chunks of each `ready` file.
    chunks: HashMap<FileId, Vec<String>>,
    /// The usage ledger, with each entry's project at the time of writing.
    usage: Vec<(UsageEntry, Option<ProjectId>)>,
    quotas: BTreeMap<UserId, QuotaOverride>,
    /// Share links, with the time each was revoked.
    shares: BTreeMap<ShareId, (NewShare, Option<Timestamp>)>,
    /// Imported conversations by project and import key.
    imports: HashMap<(ProjectId, String), ConversationId>,
    /// Each conversation's revision (`ChatHistory::conversation_revision`; absent: 0), bumped
    /// under the lock by every write that can change a page of its messages.
    revisions: HashMap<ConversationId, i64>,
}

/// Why a turn's parent cannot take the new message: a user message follows a reply, a
/// reply follows a user message.
fn invalid_parent(wanted: Role) -> ValidationError {
    match wanted {
        Role::Assistant => ValidationError::new("parent_id", "must name a reply"),
        Role::User => ValidationError::new("message_id", "must name a reply to a user message"),
    }
}

fn take(limit: u32) -> usize {
    usize::try_from(limit).unwrap_or(usize::MAX)
}

fn interrupt(stored: &mut StoredMessage) {
    stored.message.status = MessageStatus::Failed;
    stored.message.error = Some(INTERRUPTED.to_owned());
}

fn is_stale(stored: &StoredMessage, stale_before: Timestamp) -> bool {
    stored.message.status == MessageStatus::Streaming && stored.touched_at < stale_before
}

impl State {
    fn owned_project(&self, owner: &UserId, id: ProjectId) -> Result<&Project, StoreError> {
        self.projects
            .get(&id)
            .filter(|p| &p.owner_id == owner)
            .ok_or(StoreError::NotFound)
    }

    fn owned_conversation(
        &self,
        owner: &UserId,
        id: ConversationId,
    ) -> Result<&Conversation, StoreError> {
        self.conversations
            .get(&id)
            .filter(|c| &c.owner_id == owner)
            .ok_or(StoreError::NotFound)
    }

    fn conversation_messages(
        &self,
        id: ConversationId,
    ) -> impl DoubleEndedIterator<Item = &StoredMessage> {
        self.messages
            .get(&id)
            .into_iter()
            .flat_map(BTreeMap::values)
    }

    /// The conversation as read: with the reply being generated in it, if any.
    fn read_conversation(&self, conversation: &Conversation) -> Conversation {
        let active_reply_id = self
            .conversation_messages(conversation.id)
            .rev()
            .find(|m| {
                m.message.role == Role::Assistant && m.message.status == MessageStatus::Streaming
            })
            .map(|m| m.message.id);
        Conversation {
            active_reply_id,
            ..conversation.clone()
        }
    }

    /// A write changed what a page of the conversation's messages shows.
    fn bump(&mut self, id: ConversationId) {
        *self.revisions.entry(id).or_default() += 1;
    }

    fn revision(&self, id: ConversationId) -> i64 {
        self.revisions.get(&id).copied().unwrap_or_default()
    }

    fn remove_conversation(&mut self, id: ConversationId) {
        self.conversations.remove(&id);
        self.revisions.remove(&id);
        self.imports.retain(|_, conversation| *conversation != id);
        if let Some(messages) = self.messages.remove(&id) {
            for message_id in messages.keys() {
                self.message_ids.remove(message_id);
            }
        }
    }

    // ---- projects

    fn insert_project(&mut self, project: &Project) -> Result<(), StoreError> {
        if self.projects.contains_key(&project.id) {
            return Err(Conflict::DuplicateId.into());
        }
        self.projects.insert(project.id, project.clone());
        Ok(())
    }

    fn list_projects(&self, owner: &UserId, after: Option<ProjectId>, limit: u32) -> Vec<Project> {
        let upper = match after {
            Some(after) => self.projects.range(..after),
            None => self.projects.range(..),
        };
        upper
            .rev()
            .map(|(_, p)| p)
            .filter(|p| &p.owner_id == owner)
            .take(take(limit))
            .cloned()
            .collect()
    }

    fn update_project(
        &mut self,
        owner: &UserId,
        id: ProjectId,
        patch: &ProjectPatch,
        now: Timestamp,
    ) -> Result<Project, StoreError> {
        self.owned_project(owner, id)?;
        let project = self.projects.get_mut(&id).ok_or(StoreError::NotFound)?;
        if let Some(name) = &patch.name {
            project.name.clone_from(name);
        }
        if let Some(description) = &patch.description {
            project.description.clone_from(description);
        }
        if let Some(knowledge) = patch.knowledge {
            project.knowledge = knowledge;
        }
        // Kept only: the memory index matches words as written, in any language.
        if let Some(language) = patch.language {
            project.language = language;
        }
        project.updated_at = now;
        Ok(project.clone())
    }

    fn delete_project(&mut self, owner: &UserId, id: ProjectId) -> Result<Vec<String>, StoreError> {
        self.owned_project(owner, id)?;
        self.projects.remove(&id);
        if let Some(prompts) = self.prompts.remove(&id) {
            for prompt in prompts {
                self.prompt_ids.remove(&prompt.id);
            }
        }
        let conversations: Vec<ConversationId> = self
            .conversations
            .values()
            .filter(|c| c.project_id == id)
            .map(|c| c.id)
            .collect();
        for conversation in conversations {
            self.remove_conversation(conversation);
        }
        let mut keys = Vec::new();
        let (texts, chunks) = (&mut self.texts, &mut self.chunks);
        self.files.retain(|file_id, file| {
            if file.project_id == id {
                keys.push(std::mem::take(&mut file.storage_key));
                texts.remove(file_id);
                chunks.remove(file_id);
                false
            } else {
                true
            }
        });
        Ok(keys)
    }

    // ---- prompts

    fn create_prompt(&mut self, owner: &UserId, new: &NewPrompt) -> Result<Prompt, StoreError> {
        self.owned_project(owner, new.project_id)?;
        if self.prompt_ids.contains_key(&new.id) {
            return Err(Conflict::DuplicateId.into());
        }
        let prompts = self.prompts.entry(new.project_id).or_default();
        let version = i32::try_from(prompts.len())
            .ok()
            .and_then(|n| n.checked_add(1))
            .ok_or_else(|| StoreError::Internal("too many prompt versions".to_owned()))?;
        if new.activate {
            for prompt in prompts.iter_mut() {
                prompt.is_active = false;
            }
        }
        let prompt = Prompt {
            id: new.id,
            project_id: new.project_id,
            version,
            content: new.content.clone(),
            is_active: new.activate,
            created_at: new.created_at,
        };
        prompts.push(prompt.clone());
        self.prompt_ids.insert(prompt.id, prompt.project_id);
        Ok(prompt)
    }

    fn project_prompts(&self, project_id: ProjectId) -> &[Prompt] {
        self.prompts.get(&project_id).map_or(&[], Vec::as_slice)
    }

    fn list_prompts(
        &self,
        owner: &UserId,
        project_id: ProjectId,
        before_version: Option<i32>,
        limit: u32,
    ) -> Result<Vec<Prompt>, StoreError> {
        self.owned_project(owner, project_id)?;
        Ok(self
            .project_prompts(project_id)
            .iter()
            .rev()
            .filter(|p| before_version.is_none_or(|before| p.version < before))
            .take(take(limit))
            .cloned()
            .collect())
    }

    fn active_prompt(
        &self,
        owner: &UserId,
        project_id: ProjectId,
    ) -> Result<Option<Prompt>, StoreError> {
        self.owned_project(owner, project_id)?;
        Ok(self
            .project_prompts(project_id)
            .iter()
            .find(|p| p.is_active)
            .cloned())
    }

    fn activate_prompt(
        &mut self,
        owner: &UserId,
        project_id: ProjectId,
        prompt_id: PromptId,
    ) -> Result<Prompt, StoreError> {
        self.owned_project(owner, project_id)?;
        if self.prompt_ids.get(&prompt_id) != Some(&project_id) {
            return Err(StoreError::NotFound);
        }
        let prompts = self
            .prompts
            .get_mut(&project_id)
            .ok_or(StoreError::NotFound)?;
        let mut activated = None;
        for prompt in prompts.iter_mut() {
            prompt.is_active = prompt.id == prompt_id;
            if prompt.is_active {
                activated = Some(prompt.clone());
            }
        }
        activated.ok_or(StoreError::NotFound)
    }

    // ---- conversations and messages

    fn insert_conversation(&mut self, conversation: &Conversation) -> Result<(), StoreError> {
        self.owned_project(&conversation.owner_id, conversation.project_id)?;
        if self.conversations.contains_key(&conversation.id) {
            return Err(Conflict::DuplicateId.into());
        }
        self.conversations.insert(
            conversation.id,
            Conversation {
                active_reply_id: None,
                leaf_id: None,
                ..conversation.clone()
            },
        );
        Ok(())
    }

    fn list_conversations(
        &self,
        owner: &UserId,
        project_id: ProjectId,
        after: Option<(Timestamp, ConversationId)>,
        limit: u32,
    ) -> Result<Vec<Conversation>, StoreError> {
        self.owned_project(owner, project_id)?;
        let mut rows: Vec<&Conversation> = self
            .conversations
            .values()
            .filter(|c| c.project_id == project_id)
            .filter(|c| after.is_none_or(|key| (c.updated_at, c.id) < key))
            .collect();
        rows.sort_by_key(|c| std::cmp::Reverse((c.updated_at, c.id)));
        Ok(rows
            .into_iter()
            .take(take(limit))
            .map(|c| self.read_conversation(c))
            .collect())
    }

    fn rename_conversation(
        &mut self,
        owner: &UserId,
        id: ConversationId,
        title: Option<String>,
        now: Timestamp,
    ) -> Result<Conversation, StoreError> {
        self.owned_conversation(owner, id)?;
        let conversation = self
            .conversations
            .get_mut(&id)
            .ok_or(StoreError::NotFound)?;
        conversation.title = title;
        conversation.updated_at = now;
        let conversation = conversation.clone();
        Ok(self.read_conversation(&conversation))
    }

    fn set_conversation_model(
        &mut self,
        owner: &UserId,
        id: ConversationId,
        model: Option<String>,
    ) -> Result<Conversation, StoreError> {
        self.owned_conversation(owner, id)?;
        let conversation = self
            .conversations
            .get_mut(&id)
            .ok_or(StoreError::NotFound)?;
        conversation.model = model;
        let conversation = conversation.clone();
        Ok(self.read_conversation(&conversation))
    }

    fn delete_conversation(
        &mut self,
        owner: &UserId,
        id: ConversationId,
    ) -> Result<(), StoreError> {
        self.owned_conversation(owner, id)?;
        self.remove_conversation(id);
        Ok(())
    }

    fn list_messages(
        &self,
        owner: &UserId,
        conversation_id: ConversationId,
        after: Option<MessageId>,
        limit: u32,
    ) -> Result<Vec<Message>, StoreError> {
        self.owned_conversation(owner, conversation_id)?;
        let Some(messages) = self.messages.get(&conversation_id) else {
            return Ok(Vec::new());
        };
        let rows = match after {
            Some(after) => {
                messages.range((std::ops::Bound::Excluded(after), std::ops::Bound::Unbounded))
            }
            None => messages.range(..),
        };
        Ok(rows
            .take(take(limit))
            .map(|(_, m)| m.message.clone())
            .collect())
    }

    /// A message of the conversation.
    fn message_in(&self, conversation_id: ConversationId, id: MessageId) -> Option<&Message> {
        self.messages
            .get(&conversation_id)
            .and_then(|messages| messages.get(&id))
            .map(|m| &m.message)
    }

    /// The branch that ends at `leaf`, newest first, at most `limit` messages.
    fn branch_up(
        &self,
        conversation_id: ConversationId,
        leaf: Option<MessageId>,
        limit: usize,
    ) -> Vec<Message> {
        let mut branch = Vec::new();
        let mut next = leaf;
        while let Some(id) = next
            && branch.len() < limit
        {
            let Some(message) = self.message_in(conversation_id, id) else {
                break;
            };
            next = message.parent_id;
            branch.push(message.clone());
        }
        branch
    }

    /// The ids of the messages with this parent, oldest first.
    fn children(
        &self,
        conversation_id: ConversationId,
        parent: Option<MessageId>,
    ) -> Vec<MessageId> {
        self.conversation_messages(conversation_id)
            .filter(|m| m.message.parent_id == parent)
            .map(|m| m.message.id)
            .collect()
    }

    fn get_message(&self, owner: &UserId, id: MessageId) -> Result<Message, StoreError> {
        let conversation_id = self.message_ids.get(&id).ok_or(StoreError::NotFound)?;
        self.owned_conversation(owner, *conversation_id)?;
        self.message_in(*conversation_id, id)
            .cloned()
            .ok_or(StoreError::NotFound)
    }

    fn list_branch(
        &self,
        owner: &UserId,
        conversation_id: ConversationId,
        leaf: Option<MessageId>,
        after: Option<MessageId>,
        limit: u32,
    ) -> Result<Branch, StoreError> {
        let conversation = self.owned_conversation(owner, conversation_id)?;
        let leaf_id = match leaf {
            Some(leaf) => Some(
                self.message_in(conversation_id, leaf)
                    .ok_or(StoreError::NotFound)?
                    .id,
            ),
            None => conversation.leaf_id,
        };
        let mut branch = self.branch_up(conversation_id, leaf_id, usize::MAX);
        branch.reverse();
        let messages = branch
            .into_iter()
            .filter(|m| after.is_none_or(|after| m.id > after))
            .take(take(limit))
            .map(|message| BranchMessage {
                sibling_ids: self.children(conversation_id, message.parent_id),
                message,
            })
            .collect();
        Ok(Branch {
            leaf_id,
            messages,
            revision: self.revision(conversation_id),
        })
    }

    fn choose_leaf(
        &mut self,
        owner: &UserId,
        conversation_id: ConversationId,
        message: MessageId,
    ) -> Result<Conversation, StoreError> {
        self.owned_conversation(owner, conversation_id)?;
        let mut leaf = self
            .message_in(conversation_id, message)
            .ok_or(StoreError::NotFound)?
            .id;
        while let Some(newest) = self.children(conversation_id, Some(leaf)).pop() {
            leaf = newest;
        }
        let conversation = self
            .conversations
            .get_mut(&conversation_id)
            .ok_or(StoreError::NotFound)?;
        let moved = conversation.leaf_id != Some(leaf);
        conversation.leaf_id = Some(leaf);
        let conversation = conversation.clone();
        if moved {
            self.bump(conversation_id);
        }
        Ok(self.read_conversation(&conversation))
    }

    fn check_turn(
        &self,
        owner: &UserId,
        conversation_id: ConversationId,
        client_message_id: Option<Uuid>,
        file_ids: &[FileId],
        stale_before: Timestamp,
    ) -> Result<(), StoreError> {
        let project_id = self.owned_conversation(owner, conversation_id)?.project_id;
        for id in file_ids {
            self.files
                .get(id)
                .filter(|f| &f.owner_id == owner && f.project_id == project_id)
                .ok_or(StoreError::NotFound)?;
        }
        let mut messages = self.conversation_messages(conversation_id);
        if messages
            .any(|m| m.message.status == MessageStatus::Streaming && m.touched_at >= stale_before)
        {
            return Err(Conflict::ReplyInProgress.into());
        }
        if let Some(client_id) = client_message_id
            && self
                .conversation_messages(conversation_id)
                .any(|m| m.message.client_message_id == Some(client_id))
        {
            return Err(Conflict::DuplicateClientMessage.into());
        }
        Ok(())
    }

    fn begin_turn(
        &mut self,
        owner: &UserId,
        turn: &NewTurn,
        stale_before: Timestamp,
        history_limit: u32,
    ) -> Result<Turn, StoreError> {
        let reply = &turn.reply;
        let conversation_id = reply.conversation_id;
        let conversation = self.owned_conversation(owner, conversation_id)?;
        let (leaf_id, model, untitled, project_id) = (
            conversation.leaf_id,
            conversation.model.clone(),
            conversation.title.is_none(),
            conversation.project_id,
        );
        let knowledge = self.projects.get(&project_id).is_some_and(|p| p.knowledge)
            && self
                .files
                .values()
                .any(|f| f.project_id == project_id && f.text_status == TextStatus::Ready);
        // Each attachment: the owner's file in the conversation's project, else NotFound.
        let files: Vec<MessageFile> = if turn.user.is_some() {
            turn.file_ids
                .iter()
                .map(|id| {
                    self.files
                        .get(id)
                        .filter(|f| &f.owner_id == owner && f.project_id == project_id)
                        .map(MessageFile::from)
                        .ok_or(StoreError::NotFound)
                })
                .collect::<Result<_, _>>()?
        } else {
            Vec::new()
        };
        if turn
            .user
            .as_ref()
            .is_some_and(|user| user.conversation_id != conversation_id)
        {
            return Err(StoreError::Internal(
                "a turn's reply must belong to the user message's conversation".to_owned(),
            ));
        }
        let new_ids: Vec<MessageId> = turn.user.iter().map(|u| u.id).chain([reply.id]).collect();
        if new_ids.first() == new_ids.get(1)
            || new_ids.iter().any(|id| self.message_ids.contains_key(id))
        {
            return Err(Conflict::DuplicateId.into());
        }
        let messages = self.messages.entry(conversation_id).or_default();
        let mut swept = false;
        for stored in messages.values_mut() {
            if is_stale(stored, stale_before) {
                interrupt(stored);
                swept = true;
            }
        }
        if swept {
            // Kept even when the turn is then refused.
            self.bump(conversation_id);
        }
        let messages = self.messages.entry(conversation_id).or_default();
        if messages
            .values()
            .any(|m| m.message.status == MessageStatus::Streaming)
        {
            return Err(Conflict::ReplyInProgress.into());
        }
        if let Some(client_id) = turn.user.as_ref().and_then(|u| u.client_message_id)
            && messages
                .values()
                .any(|m| m.message.client_message_id == Some(client_id))
        {
            return Err(Conflict::DuplicateClientMessage.into());
        }
        let parent_id = match turn.parent {
            Parent::Leaf => leaf_id,
            Parent::Root => None,
            Parent::Message(id) => {
                let parent = self
                    .message_in(conversation_id, id)
                    .ok_or(StoreError::NotFound)?;
                let wanted = if turn.user.is_some() {
                    Role::Assistant
                } else {
                    Role::User
                };
                if parent.role != wanted {
                    return Err(invalid_parent(wanted).into());
                }
                Some(id)
            }
        };
        // The quota, under the same lock as the writes: atomic like the SQL transaction.
        if let Some(quota) = &turn.quota {
            let own = self.quotas.get(owner).copied().unwrap_or_default();
            if quota.needs_sums(&own) {
                quota
                    .check(&self.quota_state(owner, quota.day()))
                    .map_err(StoreError::QuotaExceeded)?;
            }
        }
        let mut history = self.branch_up(conversation_id, parent_id, take(history_limit));
        history.reverse();
        let user = turn.user.clone().map(|mut user| {
            user.parent_id = parent_id;
            user.files.clone_from(&files);
            user
        });
        let messages = self.messages.entry(conversation_id).or_default();
        for message in user.iter().chain([reply]) {
            messages.insert(
                message.id,
                StoredMessage {
                    message: message.clone(),
                    touched_at: message.created_at,
                },
            );
            self.message_ids.insert(message.id, conversation_id);
        }
        if let Some(conversation) = self.conversations.get_mut(&conversation_id) {
            conversation.updated_at = turn.user.as_ref().unwrap_or(reply).created_at;
            conversation.leaf_id = Some(reply.id);
        }
        self.bump(conversation_id);
        Ok(Turn {
            parent_id,
            model,
            untitled,
            history,
            files,
            knowledge,
        })
    }

    fn stored_message_mut(&mut self, id: MessageId) -> Result<&mut StoredMessage, StoreError> {
        let conversation_id = self.message_ids.get(&id).ok_or(StoreError::NotFound)?;
        self.messages
            .get_mut(conversation_id)
            .and_then(|messages| messages.get_mut(&id))
            .ok_or(StoreError::NotFound)
    }

    fn touch_reply(
        &mut self,
        id: MessageId,
        content: &str,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        let stored = self.stored_message_mut(id)?;
        if stored.message.status != MessageStatus::Streaming {
            return Ok(false);
        }
        content.clone_into(&mut stored.message.content);
        stored.touched_at = now;
        let conversation_id = stored.message.conversation_id;
        self.bump(conversation_id);
        Ok(true)
    }

    fn finish_reply(
        &mut self,
        reply: &Message,
        now: Timestamp,
    ) -> Result<FinishOutcome, StoreError> {
        let stored = self.stored_message_mut(reply.id)?;
        if stored.message.status != MessageStatus::Streaming {
            return Ok(FinishOutcome::AlreadyEnded(stored.message.clone()));
        }
        let conversation_id = stored.message.conversation_id;
        stored.message.content.clone_from(&reply.content);
        stored.message.status = reply.status;
        stored.message.model.clone_from(&reply.model);
        stored.message.usage = reply.usage;
        stored.message.error.clone_from(&reply.error);
        stored.message.sources.clone_from(&reply.sources);
        stored.touched_at = now;
        if let Some(conversation) = self.conversations.get_mut(&conversation_id) {
            conversation.updated_at = now;
        }
        self.bump(conversation_id);
        Ok(FinishOutcome::Stored)
    }

    fn fail_stale_replies(&mut self, stale_before: Timestamp) -> u64 {
        let mut count = 0;
        let mut changed = Vec::new();
        for stored in self.messages.values_mut().flat_map(BTreeMap::values_mut) {
            if is_stale(stored, stale_before) {
                interrupt(stored);
                changed.push(stored.message.conversation_id);
                count += 1;
            }
        }
        for conversation_id in changed {
            self.bump(conversation_id);
        }
        count
    }

    // ---- files

    fn insert_file(&mut self, file: &FileMeta) -> Result<(), StoreError> {
        self.owned_project(&file.owner_id, file.project_id)?;
        if self.files.contains_key(&file.id) {
            return Err(Conflict::DuplicateId.into());
        }
        self.files.insert(file.id, file.clone());
        Ok(())
    }

    fn owned_file(&self, owner: &UserId, id: FileId) -> Result<&FileMeta, StoreError> {
        self.files
            .get(&id)
            .filter(|f| &f.owner_id == owner)
            .ok_or(StoreError::NotFound)
    }

    fn list_files(
        &self,
        owner: &UserId,
        project_id: ProjectId,
        after: Option<FileId>,
        limit: u32,
    ) -> Result<Vec<FileMeta>, StoreError> {
        self.owned_project(owner, project_id)?;
        let upper = match after {
            Some(after) => self.files.range(..after),
            None => self.files.range(..),
        };
        Ok(upper
            .rev()
            .map(|(_, f)| f)
            .filter(|f| f.project_id == project_id)
            .take(take(limit))
            .cloned()
            .collect())
    }

    fn delete_file(&mut self, owner: &UserId, id: FileId) -> Result<FileMeta, StoreError> {
        self.owned_file(owner, id)?;
        self.texts.remove(&id);
        self.chunks.remove(&id);
        // The messages it was attached to keep naming it, as deleted.
        let mut changed = Vec::new();
        for stored in self.messages.values_mut().flat_map(|m| m.values_mut()) {
            for file in &mut stored.message.files {
                if file.id == id {
                    file.deleted = true;
                    changed.push(stored.message.conversation_id);
                }
            }
        }
        for conversation_id in changed {
            self.bump(conversation_id);
        }
        self.files.remove(&id).ok_or(StoreError::NotFound)
    }

    fn set_file_text(&mut self, id: FileId, outcome: &TextOutcome) -> Result<(), StoreError> {
        let file = self.files.get_mut(&id).ok_or(StoreError::NotFound)?;
        file.text_status = outcome.status();
        file.text_error = match outcome {
            TextOutcome::Failed(error) => Some(error.clone()),
            TextOutcome::Ready(_) | TextOutcome::None => None,
        };
        match outcome {
            TextOutcome::Ready(text) => {
                self.chunks.insert(id, knowledge::chunks(text));
                self.texts.insert(id, text.clone());
            }
            TextOutcome::Failed(_) | TextOutcome::None => {
                self.chunks.remove(&id);
                self.texts.remove(&id);
            }
        }
        Ok(())
    }

    fn extracted_twin(&self, file: &FileMeta) -> Option<TextOutcome> {
        let twin = self.files.values().find(|f| {
            f.id != file.id
                && f.project_id == file.project_id
                && f.sha256 == file.sha256
                && f.text_status != TextStatus::Pending
        })?;
        Some(match twin.text_status {
            TextStatus::Ready => TextOutcome::Ready(self.texts.get(&twin.id)?.clone()),
            TextStatus::Failed => TextOutcome::Failed(twin.text_error.clone().unwrap_or_default()),
            TextStatus::None | TextStatus::Pending => TextOutcome::None,
        })
    }

    /// Messages and titles scored by how many of their words match, damped by their length.
    fn search_messages(
        &self,
        owner: &UserId,
        query: &SearchQuery,
        project: Option<ProjectId>,
        after: Option<SearchKey>,
        limit: u32,
    ) -> Result<Vec<SearchHit>, StoreError> {
        if let Some(project) = project {
            self.owned_project(owner, project)?;
        }
        if query.is_empty() {
            return Ok(Vec::new());
        }
        let score = |text: &str| query.score(text);
        let mut hits = Vec::new();
        for conversation in self
            .conversations
            .values()
            .filter(|c| &c.owner_id == owner && project.is_none_or(|p| c.project_id == p))
        {
            let title = conversation.title.as_deref().unwrap_or_default();
            if let Some(score) = score(title) {
                hits.push(SearchHit {
                    conversation_id: conversation.id,
                    project_id: conversation.project_id,
                    conversation_title: conversation.title.clone(),
                    message_id: None,
                    role: None,
                    created_at: conversation.created_at,
                    snippet: search::snippet(title, query),
                    score,
                });
            }
            for stored in self.conversation_messages(conversation.id) {
                let message = &stored.message;
                if message.status == MessageStatus::Streaming {
                    continue;
                }
                if let Some(score) = score(&message.content) {
                    hits.push(SearchHit {
                        conversation_id: conversation.id,
                        project_id: conversation.project_id,
                        conversation_title: conversation.title.clone(),
                        message_id: Some(message.id),
                        role: Some(message.role),
                        created_at: message.created_at,
                        snippet: search::snippet(&message.content, query),
                        score,
                    });
                }
            }
        }
        hits.retain(|hit| after.is_none_or(|cursor| hit.key().is_after(&cursor)));
        hits.sort_by(|a, b| a.key().order(&b.key()));
        hits.truncate(take(limit));
        Ok(hits)
    }

    /// Chunks scored by how often the query's words occur in them, as words.
    fn search(
        &self,
        owner: &UserId,
        project_id: ProjectId,
        query: &str,
        limit: u32,
    ) -> Result<Vec<KnowledgeHit>, StoreError> {
        self.owned_project(owner, project_id)?;
        let words = knowledge::query_words(query);
        let mut scored: Vec<(usize, KnowledgeHit)> = Vec::new();
        for file in self.files.values().filter(|f| f.project_id == project_id) {
            let Some(chunks) = self.chunks.get(&file.id) else {
                continue;
            };
            for (ordinal, text) in chunks.iter().enumerate() {
                let lower = text.to_lowercase();
                let score = lower
                    .split(|c: char| !c.is_alphanumeric())
                    .filter(|w| words.iter().any(|q| q == w))
                    .count();
                if score > 0 {
                    let ordinal = u32::try_from(ordinal).unwrap_or(u32::MAX);
                    scored.push((
                        score,
                        KnowledgeHit {
                            file_id: file.id,
                            filename: file.filename.clone(),
                            ordinal,
                            text: text.clone(),
                        },
                    ));
                }
            }
        }
        scored.sort_by_key(|(score, _)| std::cmp::Reverse(*score));
        Ok(scored
            .into_iter()
            .take(take(limit))
            .map(|(_, hit)| hit)
            .collect())
    }

    fn pending_files(&self, after: Option<FileId>, limit: u32) -> Vec<FileMeta> {
        let lower = match after {
            Some(after) => self.files.range((Bound::Excluded(after), Bound::Unbounded)),
            None => self.files.range(..),
        };
        lower
            .map(|(_, f)| f)
            .filter(|f| f.text_status == TextStatus::Pending)
            .take(take(limit))
            .cloned()
            .collect()
    }
}

#[async_trait]
impl ProjectStore for MemoryStore {
    async fn insert_project(&self, project: &Project) -> Result<(), StoreError> {
        self.state()?.insert_project(project)
    }

    async fn get_project(&self, owner: &UserId, id: ProjectId) -> Result<Project, StoreError> {
        self.state()?.owned_project(owner, id).cloned()
    }

    async fn list_projects(
        &self,
        owner: &UserId,
        after: Option<ProjectId>,
        limit: u32,
    ) -> Result<Vec<Project>, StoreError> {
        Ok(self.state()?.list_projects(owner, after, limit))
    }

    async fn update_project(
        &self,
        owner: &UserId,
        id: ProjectId,
        patch: &ProjectPatch,
        now: Timestamp,
    ) -> Result<Project, StoreError> {
        self.state()?.update_project(owner, id, patch, now)
    }

    async fn delete_project(
        &self,
        owner: &UserId,
        id: ProjectId,
    ) -> Result<Vec<String>, StoreError> {
        self.state()?.delete_project(owner, id)
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.state().map(drop)
    }
}

#[async_trait]
impl PromptStore for MemoryStore {
    async fn create_prompt(
        &self,
        owner: &UserId,
        prompt: &NewPrompt,
    ) -> Result<Prompt, StoreError> {
        self.state()?.create_prompt(owner, prompt)
    }

    async fn list_prompts(
        &self,
        owner: &UserId,
        project_id: ProjectId,
        before_version: Option<i32>,
        limit: u32,
    ) -> Result<Vec<Prompt>, StoreError> {
        self.state()?
            .list_prompts(owner, project_id, before_version, limit)
    }

    async fn active_prompt(
        &self,
        owner: &UserId,
        project_id: ProjectId,
    ) -> Result<Option<Prompt>, StoreError> {
        self.state()?.active_prompt(owner, project_id)
    }

    async fn conversation_prompt(
        &self,
        owner: &UserId,
        conversation_id: ConversationId,
    ) -> Result<Option<Prompt>, StoreError> {
        let state = self.state()?;
        let project_id = state.owned_conversation(owner, conversation_id)?.project_id;
        state.active_prompt(owner, project_id)
    }

    async fn activate_prompt(
        &self,
        owner: &UserId,
        project_id: ProjectId,
        prompt_id: PromptId,
    ) -> Result<Prompt, StoreError> {
        self.state()?.activate_prompt(owner, project_id, prompt_id)
    }
}

#[async_trait]
impl ChatHistory for MemoryStore {
    async fn insert_conversation(&self, conversation: &Conversation) -> Result<(), StoreError> {
        self.state()?.insert_conversation(conversation)
    }

    async fn latest_reply(
        &self,
        owner: &UserId,
        conversation_id: ConversationId,
    ) -> Result<Option<Message>, StoreError> {
        let state = self.state()?;
        state.owned_conversation(owner, conversation_id)?;
        Ok(state
            .conversation_messages(conversation_id)
            .rev()
            .find(|m| m.message.role == Role::Assistant)
            .map(|m| m.message.clone()))
    }

    async fn get_conversation(
        &self,
        owner: &UserId,
        id: ConversationId,
    ) -> Result<Conversation, StoreError> {
        let state = self.state()?;
        state
            .owned_conversation(owner, id)
            .map(|c| state.read_conversation(c))
    }

    async fn list_conversations(
        &self,
        owner: &UserId,
        project_id: ProjectId,
        after: Option<(Timestamp, ConversationId)>,
        limit: u32,
    ) -> Result<Vec<Conversation>, StoreError> {
        self.state()?
            .list_conversations(owner, project_id, after, limit)
    }

    async fn rename_conversation(
        &self,
        owner: &UserId,
        id: ConversationId,
        title: Option<String>,
        now: Timestamp,
    ) -> Result<Conversation, StoreError> {
        self.state()?.rename_conversation(owner, id, title, now)
    }

    async fn set_conversation_model(
        &self,
        owner: &UserId,
        id: ConversationId,
        model: Option<String>,
    ) -> Result<Conversation, StoreError> {
        self.state()?.set_conversation_model(owner, id, model)
    }

    async fn set_title_if_empty(
        &self,
        id: ConversationId,
        title: &str,
    ) -> Result<bool, StoreError> {
        let mut state = self.state()?;
        let conversation = state
            .conversations
            .get_mut(&id)
            .ok_or(StoreError::NotFound)?;
        if conversation.title.is_some() {
            return Ok(false);
        }
        conversation.title = Some(title.to_owned());
        Ok(true)
    }

    async fn delete_conversation(
        &self,
        owner: &UserId,
        id: ConversationId,
    ) -> Result<(), StoreError> {
        self.state()?.delete_conversation(owner, id)
    }

    async fn list_messages(
        &self,
        owner: &UserId,
        conversation_id: ConversationId,
        after: Option<MessageId>,
        limit: u32,
    ) -> Result<Vec<Message>, StoreError> {
        self.state()?
            .list_messages(owner, conversation_id, after, limit)
    }

    async fn check_turn(
        &self,
        owner: &UserId,
        conversation_id: ConversationId,
        client_message_id: Option<Uuid>,
        file_ids: &[FileId],
        stale_before: Timestamp,
    ) -> Result<(), StoreError> {
        self.state()?.check_turn(
            owner,
            conversation_id,
            client_message_id,
            file_ids,
            stale_before,
        )
    }

    async fn begin_turn(
        &self,
        owner: &UserId,
        turn: &NewTurn,
        stale_before: Timestamp,
        history_limit: u32,
    ) -> Result<Turn, StoreError> {
        self.state()?
            .begin_turn(owner, turn, stale_before, history_limit)
    }

    async fn get_message(&self, owner: &UserId, id: MessageId) -> Result<Message, StoreError> {
        self.state()?.get_message(owner, id)
    }

    async fn list_branch(
        &self,
        owner: &UserId,
        conversation_id: ConversationId,
        leaf: Option<MessageId>,
        after: Option<MessageId>,
        limit: u32,
    ) -> Result<Branch, StoreError> {
        self.state()?
            .list_branch(owner, conversation_id, leaf, after, limit)
    }

    async fn conversation_revision(
        &self,
        owner: &UserId,
        conversation_id: ConversationId,
    ) -> Result<i64, StoreError> {
        let state = self.state()?;
        state.owned_conversation(owner, conversation_id)?;
        Ok(state.revision(conversation_id))
    }

    async fn choose_leaf(
        &self,
        owner: &UserId,
        conversation_id: ConversationId,
        message: MessageId,
    ) -> Result<Conversation, StoreError> {
        self.state()?.choose_leaf(owner, conversation_id, message)
    }

    async fn touch_reply(
        &self,
        id: MessageId,
        content: &str,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        self.state()?.touch_reply(id, content, now)
    }

    async fn finish_reply(
        &self,
        reply: &Message,
        now: Timestamp,
    ) -> Result<FinishOutcome, StoreError> {
        self.state()?.finish_reply(reply, now)
    }

    async fn fail_stale_replies(&self, stale_before: Timestamp) -> Result<u64, StoreError> {
        Ok(self.state()?.fail_stale_replies(stale_before))
    }
}

#[async_trait]
impl FileStore for MemoryStore {
    async fn insert_file(&self, file: &FileMeta) -> Result<(), StoreError> {
        self.state()?.insert_file(file)
    }

    async fn get_file(&self, owner: &UserId, id: FileId) -> Result<FileMeta, StoreError> {
        self.state()?.owned_file(owner, id).cloned()
    }

    async fn list_files(
        &self,
        owner: &UserId,
        project_id: ProjectId,
        after: Option<FileId>,
        limit: u32,
    ) -> Result<Vec<FileMeta>, StoreError> {
        self.state()?.list_files(owner, project_id, after, limit)
    }

    async fn delete_file(&self, owner: &UserId, id: FileId) -> Result<FileMeta, StoreError> {
        self.state()?.delete_file(owner, id)
    }

    async fn set_file_text(&self, id: FileId, outcome: &TextOutcome) -> Result<(), StoreError> {
        self.state()?.set_file_text(id, outcome)
    }

    async fn get_file_text(
        &self,
        owner: &UserId,
        id: FileId,
    ) -> Result<Option<String>, StoreError> {
        let state = self.state()?;
        state.owned_file(owner, id)?;
        Ok(state.texts.get(&id).cloned())
    }

    async fn extracted_twin(&self, file: &FileMeta) -> Result<Option<TextOutcome>, StoreError> {
        Ok(self.state()?.extracted_twin(file))
    }

    async fn pending_files(
        &self,
        after: Option<FileId>,
        limit: u32,
    ) -> Result<Vec<FileMeta>, StoreError> {
        Ok(self.state()?.pending_files(after, limit))
    }
}

#[async_trait]
impl MessageSearch for MemoryStore {
    async fn search_messages(
        &self,
        owner: &UserId,
        query: &SearchQuery,
        project: Option<ProjectId>,
        after: Option<SearchKey>,
        limit: u32,
    ) -> Result<Vec<SearchHit>, StoreError> {
        self.state()?
            .search_messages(owner, query, project, after, limit)
    }
}

#[async_trait]
impl KnowledgeIndex for MemoryStore {
    async fn search(
        &self,
        owner: &UserId,
        project_id: ProjectId,
        query: &str,
        limit: u32,
    ) -> Result<Vec<KnowledgeHit>, StoreError> {
        self.state()?.search(owner, project_id, query, limit)
    }

    async fn search_conversation(
        &self,
        owner: &UserId,
        conversation_id: ConversationId,
        query: &str,
        limit: u32,
    ) -> Result<Vec<KnowledgeHit>, StoreError> {
        let state = self.state()?;
        let project_id = state.owned_conversation(owner, conversation_id)?.project_id;
        if !state.owned_project(owner, project_id)?.knowledge {
            return Ok(Vec::new());
        }
        state.search(owner, project_id, query, limit)
    }
}

impl State {
    fn quota_state(&self, user: &UserId, day: NaiveDate) -> QuotaState {
        let first = month_start(day);
        let mut state = QuotaState {
            quota: self.quotas.get(user).copied().unwrap_or_default(),
            ..QuotaState::default()
        };
        for (entry, _) in self.usage.iter().filter(|(e, _)| &e.user_id == user) {
            let entry_day = entry.day();
            if entry_day == day {
                state.used_day += entry.tokens.total();
            }
            if entry_day >= first && entry_day <= day {
                state.used_month += entry.tokens.total();
            }
        }
        state
    }
}

#[async_trait]
impl UsageLedger for MemoryStore {
    async fn record(&self, entry: &UsageEntry) -> Result<(), StoreError> {
        let mut state = self.state()?;
        if state.usage.iter().any(|(e, _)| e.id == entry.id) {
            return Err(StoreError::Conflict(Conflict::DuplicateId));
        }
        let project = entry
            .conversation_id
            .and_then(|id| state.conversations.get(&id))
            .map(|c| c.project_id);
        state.usage.push((entry.clone(), project));
        Ok(())
    }

    async fn quota_state(&self, user: &UserId, day: NaiveDate) -> Result<QuotaState, StoreError> {
        Ok(self.state()?.quota_state(user, day))
    }

    async fn quota(&self, user: &UserId) -> Result<QuotaOverride, StoreError> {
        Ok(self.state()?.quotas.get(user).copied().unwrap_or_default())
    }

    async fn set_quota(&self, user: &UserId, quota: &QuotaOverride) -> Result<(), StoreError> {
        let mut state = self.state()?;
        if *quota == QuotaOverride::default() {
            state.quotas.remove(user);
        } else {
            state.quotas.insert(user.clone(), *quota);
        }
        Ok(())
    }

    async fn summary(
        &self,
        user: Option<&UserId>,
        from: NaiveDate,
        to: NaiveDate,
        group_by: GroupBy,
    ) -> Result<Vec<UsageRow>, StoreError> {
        let state = self.state()?;
        let mut groups: BTreeMap<String, UsageRow> = BTreeMap::new();
        for (entry, project) in &state.usage {
            let day = entry.day();
            if day < from || day > to || user.is_some_and(|u| u != &entry.user_id) {
                continue;
            }
            let key = match group_by {
                GroupBy::Day => day.format("%Y-%m-%d").to_string(),
                GroupBy::Model => entry.model.clone(),
                GroupBy::Project => project.map(|p| p.to_string()).unwrap_or_default(),
                GroupBy::User => entry.user_id.to_string(),
            };
            let row = groups.entry(key.clone()).or_insert_with(|| UsageRow {
                key,
                ..UsageRow::default()
            });
            row.tokens = add(row.tokens, entry.tokens);
            row.cost_micros += entry.cost_micros.unwrap_or(0);
            row.calls += 1;
        }
        Ok(groups.into_values().collect())
    }

    async fn users(&self, day: NaiveDate) -> Result<Vec<UserUsage>, StoreError> {
        let state = self.state()?;
        let first = month_start(day);
        let mut users: std::collections::BTreeSet<UserId> = state.quotas.keys().cloned().collect();
        users.extend(
            state
                .usage
                .iter()
                .filter(|(e, _)| e.day() >= first && e.day() <= day)
                .map(|(e, _)| e.user_id.clone()),
        );
        Ok(users
            .into_iter()
            .map(|user_id| UserUsage {
                state: state.quota_state(&user_id, day),
                user_id,
            })
            .collect())
    }
}

fn add(a: TokenCounts, b: TokenCounts) -> TokenCounts {
    TokenCounts {
        input: a.input + b.input,
        cached_input: a.cached_input + b.cached_input,
        output: a.output + b.output,
        reasoning: a.reasoning + b.reasoning,
    }
}

#[async_trait]
impl ShareStore for MemoryStore {
    async fn create_share(&self, share: &NewShare) -> Result<Share, StoreError> {
        let mut state = self.state()?;
        state.owned_conversation(&share.owner_id, share.conversation_id)?;
        if state.shares.contains_key(&share.id)
            || state
                .shares
                .values()
                .any(|(s, _)| s.token_hash == share.token_hash)
        {
            return Err(StoreError::Conflict(Conflict::DuplicateId));
        }
        state.shares.insert(share.id, (share.clone(), None));
        Ok(Share {
            id: share.id,
            conversation_id: share.conversation_id,
            created_at: share.created_at,
        })
    }

    async fn list_shares(
        &self,
        owner: &UserId,
        conversation_id: ConversationId,
    ) -> Result<Vec<Share>, StoreError> {
        let state = self.state()?;
        state.owned_conversation(owner, conversation_id)?;
        let mut shares: Vec<Share> = state
            .shares
            .values()
            .filter(|(s, revoked)| s.conversation_id == conversation_id && revoked.is_none())
            .map(|(s, _)| Share {
                id: s.id,
                conversation_id: s.conversation_id,
                created_at: s.created_at,
            })
            .collect();
        shares.sort_by_key(|s| std::cmp::Reverse((s.created_at, s.id)));
        Ok(shares)
    }

    async fn revoke_share(
        &self,
        owner: &UserId,
        id: ShareId,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        let mut state = self.state()?;
        let conversation = match state.shares.get(&id) {
            Some((share, None)) if &share.owner_id == owner => share.conversation_id,
            _ => return Err(StoreError::NotFound),
        };
        if !state.conversations.contains_key(&conversation) {
            return Err(StoreError::NotFound);
        }
        if let Some((_, revoked)) = state.shares.get_mut(&id) {
            *revoked = Some(now);
        }
        Ok(())
    }

    async fn shared_snapshot(&self, token_hash: &str) -> Result<Option<Snapshot>, StoreError> {
        let state = self.state()?;
        // A deleted conversation's shares are gone with it (the databases cascade).
        Ok(state
            .shares
            .values()
            .find(|(s, revoked)| {
                s.token_hash == token_hash
                    && revoked.is_none()
                    && state.conversations.contains_key(&s.conversation_id)
            })
            .map(|(s, _)| s.snapshot.clone()))
    }
}

impl State {
    fn import_conversation(&mut self, import: &NewImport) -> Result<ImportOutcome, StoreError> {
        let conversation = &import.conversation;
        self.owned_project(&conversation.owner_id, conversation.project_id)?;
        let key = (conversation.project_id, import.key.clone());
        if self.imports.contains_key(&key) {
            return Ok(ImportOutcome::AlreadyImported);
        }
        if self.conversations.contains_key(&conversation.id)
            || import
                .messages
                .iter()
                .any(|m| self.message_ids.contains_key(&m.id))
        {
            return Err(Conflict::DuplicateId.into());
        }
        self.conversations.insert(
            conversation.id,
            Conversation {
                active_reply_id: None,
                ..conversation.clone()
            },
        );
        let messages = self.messages.entry(conversation.id).or_default();
        for message in &import.messages {
            let message = Message {
                conversation_id: conversation.id,
                ..message.clone()
            };
            self.message_ids.insert(message.id, conversation.id);
            messages.insert(
                message.id,
                StoredMessage {
                    touched_at: message.created_at,
                    message,
                },
            );
        }
        self.imports.insert(key, conversation.id);
        self.bump(conversation.id);
        Ok(ImportOutcome::Imported)
    }
}

#[async_trait]
impl ImportStore for MemoryStore {
    async fn import_conversation(&self, import: &NewImport) -> Result<ImportOutcome, StoreError> {
        self.state()?.import_conversation(import)
    }
}

#[cfg(test)]
mod tests {

    use super::*;
    use confab_core::model::now;

    fn project(owner: &UserId) -> Project {
        let at = now();
        Project {
            id: ProjectId::new(),
            owner_id: owner.clone(),
            name: "Bot".to_owned(),
            description: None,
            created_at: at,
            updated_at: at,
            knowledge: true,
            language: confab_core::values::SearchLanguage::default(),
        }
    }

    #[tokio::test]
    async fn a_switched_off_store_answers_unavailable_and_keeps_its_data() {
        let store = MemoryStore::new();
        let alice = UserId::new("alice").unwrap();
        let p = project(&alice);
        store.insert_project(&p).await.unwrap();
        store.set_unavailable(true);
        assert!(matches!(
            store.ping().await,
            Err(StoreError::Unavailable(_))
        ));
        assert!(matches!(
            store.get_project(&alice, p.id).await,
            Err(StoreError::Unavailable(_))
        ));
        assert!(matches!(
            store.insert_project(&project(&alice)).await,
            Err(StoreError::Unavailable(_))
        ));
        store.set_unavailable(false);
        store.ping().await.unwrap();
        assert_eq!(
            store.list_projects(&alice, None, 10).await.unwrap(),
            vec![p]
        );
    }

    #[tokio::test]
    async fn clones_share_one_state() {
        let store = MemoryStore::new();
        let clone = store.clone();
        let alice = UserId::new("alice").unwrap();
        let p = project(&alice);
        store.insert_project(&p).await.unwrap();
        assert_eq!(clone.get_project(&alice, p.id).await.unwrap(), p);
    }
}
