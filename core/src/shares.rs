//! Read-only share links (issue 18): a link `/s/{token}` shows, without signing in, a
//! snapshot of a conversation's shown branch taken when the link was made. Later messages
//! are not added. Only the SHA-256 of the token is stored ([`token_hash`]): a stored share
//! cannot give its link back, and a leaked database does not leak working links.
//!
//! The token itself (128 random bits) is made by the caller, which has a random source;
//! `core` has none.

use std::sync::Arc;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use crate::error::{ServiceError, StoreError};
use crate::ids::{ConversationId, MessageId, ShareId, UserId};
use crate::model::{Principal, Role, Timestamp, now};
use crate::ports::ChatHistory;

/// How many messages of the branch are read per call while a snapshot is taken.
const BRANCH_PAGE: u32 = 200;

/// A share as its owner sees it (never the token, which is not stored).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Share {
    pub id: ShareId,
    pub conversation_id: ConversationId,
    pub created_at: Timestamp,
}

/// One message of a snapshot: what the public page shows, and nothing else (no user id,
/// no files, no system prompt).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SharedMessage {
    pub id: MessageId,
    pub role: Role,
    pub content: String,
    pub model: Option<String>,
    pub created_at: Timestamp,
}

/// What a share shows: the conversation's title and its shown branch, oldest first, as they
/// were when the share was made.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Snapshot {
    pub title: Option<String>,
    pub messages: Vec<SharedMessage>,
}

/// What [`ShareStore::create_share`] stores.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewShare {
    pub id: ShareId,
    pub owner_id: UserId,
    pub conversation_id: ConversationId,
    /// [`token_hash`] of the link's token.
    pub token_hash: String,
    /// The leaf of the branch the snapshot shows (`None`: the conversation was empty).
    pub leaf_id: Option<MessageId>,
    pub snapshot: Snapshot,
    pub created_at: Timestamp,
}

/// Stored share links.
#[async_trait]
pub trait ShareStore: Send + Sync + 'static {
    /// MUST store the share and return it when its conversation belongs to
    /// `share.owner_id`, else `NotFound` (storing nothing). Deleting the conversation MUST
    /// delete its shares.
    async fn create_share(&self, share: &NewShare) -> Result<Share, StoreError>;

    /// MUST return the conversation's shares that are not revoked, newest first (`created_at`
    /// descending, then id descending). `NotFound` for a missing or another owner's
    /// conversation.
    async fn list_shares(
        &self,
        owner: &UserId,
        conversation_id: ConversationId,
    ) -> Result<Vec<Share>, StoreError>;

    /// MUST mark the share revoked at `now`; from then on `shared_snapshot` MUST NOT find it.
    /// `NotFound` for a missing, already revoked or another owner's share.
    async fn revoke_share(
        &self,
        owner: &UserId,
        id: ShareId,
        now: Timestamp,
    ) -> Result<(), StoreError>;

    /// MUST return the snapshot of the share whose token hash is `token_hash`, exactly as it
    /// was stored, or `None` when there is none or it is revoked.
    async fn shared_snapshot(&self, token_hash: &str) -> Result<Option<Snapshot>, StoreError>;
}

/// The hex SHA-256 of a token: what is stored and looked up.
#[must_use]
pub fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Makes, lists, revokes and opens share links.
#[derive(Clone)]
pub struct ShareService {
    history: Arc<dyn ChatHistory>,
    store: Arc<dyn ShareStore>,
}

impl ShareService {
    #[must_use]
    pub fn new(history: Arc<dyn ChatHistory>, store: Arc<dyn ShareStore>) -> Self {
        Self { history, store }
    }

    /// Shares the conversation's shown branch as it is now, under `token` (a fresh random
    /// token of the caller's; only its hash is kept). `NotFound` for another owner's.
    pub async fn create(
        &self,
        principal: &Principal,
        conversation_id: ConversationId,
        token: &str,
    ) -> Result<Share, ServiceError> {
        let owner = &principal.user_id;
        let conversation = self
            .history
            .get_conversation(owner, conversation_id)
            .await?;
        let mut messages = Vec::new();
        let mut after = None;
        let mut leaf = conversation.leaf_id;
        loop {
            let page = self
                .history
                .list_branch(owner, conversation_id, leaf, after, BRANCH_PAGE)
                .await?;
            // Read every page along the same branch, even if the shown one changes meanwhile.
            leaf = page.leaf_id;
            let full = page.messages.len() >= BRANCH_PAGE as usize;
            after = page.messages.last().map(|m| m.message.id);
            messages.extend(page.messages.into_iter().map(|m| SharedMessage {
                id: m.message.id,
                role: m.message.role,
                content: m.message.content,
                model: m.message.model,
                created_at: m.message.created_at,
            }));
            if !full || after.is_none() {
                break;
            }
        }
        let share = NewShare {
            id: ShareId::new(),
            owner_id: owner.clone(),
            conversation_id,
            token_hash: token_hash(token),
            leaf_id: leaf,
            snapshot: Snapshot {
                title: conversation.title,
                messages,
            },
            created_at: now(),
        };
        Ok(self.store.create_share(&share).await?)
    }

    /// The conversation's live shares, newest first. `NotFound` for another owner's.
    pub async fn list(
        &self,
        principal: &Principal,
        conversation_id: ConversationId,
    ) -> Result<Vec<Share>, ServiceError> {
        Ok(self
            .store
            .list_shares(&principal.user_id, conversation_id)
            .await?)
    }

    /// Revokes a share at once. `NotFound` for another owner's or an already revoked one.
    pub async fn revoke(&self, principal: &Principal, id: ShareId) -> Result<(), ServiceError> {
        Ok(self
            .store
            .revoke_share(&principal.user_id, id, now())
            .await?)
    }

    /// The snapshot a link shows; `None` for an unknown or revoked token.
    pub async fn open(&self, token: &str) -> Result<Option<Snapshot>, ServiceError> {
        Ok(self.store.shared_snapshot(&token_hash(token)).await?)
    }
}

#[cfg(test)]
mod tests {
    use super::token_hash;

    #[test]
    fn the_token_hash_is_the_hex_sha256() {
        assert_eq!(
            token_hash("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_ne!(token_hash("abc"), token_hash("abd"));
    }
}
