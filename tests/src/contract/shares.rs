//! The `ShareStore` contract, through `ShareService` over the adapter's `ChatHistory`: a
//! share is a snapshot of the shown branch, listed for its owner only, revoked at once, and
//! never another user's.

use std::future::Future;
use std::sync::Arc;

use confab_core::ids::ShareId;
use confab_core::model::{Principal, Role, now};
use confab_core::shares::{NewShare, ShareService, ShareStore, Snapshot, token_hash};

use super::Stores;
use super::fixtures::{finished_turn, not_found, ok, stored_conversation, stored_project, user};

/// The stores and the share store of one adapter.
pub struct Shares {
    pub stores: Stores,
    pub shares: Arc<dyn ShareStore>,
}

/// Runs every case of the `ShareStore` contract, each on a fresh store from `fresh`.
pub async fn share_store_contract<F, Fut>(fresh: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = Shares>,
{
    crate::run_cases!(
        "ShareStore",
        fresh,
        [
            a_share_shows_the_branch_and_does_not_grow,
            shares_are_listed_for_their_owner_newest_first,
            a_revoked_share_is_not_found,
            another_users_conversation_and_share_are_not_found,
            a_deleted_conversation_takes_its_shares,
        ]
    );
}

fn principal(name: &str) -> Principal {
    Principal {
        user_id: user(name),
    }
}

fn service(s: &Shares) -> ShareService {
    ShareService::new(s.stores.history.clone(), s.shares.clone())
}

async fn open(s: &Shares, token: &str) -> Option<Snapshot> {
    match service(s).open(token).await {
        Ok(snapshot) => snapshot,
        Err(e) => panic!("open: {e:?}"),
    }
}

async fn a_share_shows_the_branch_and_does_not_grow(s: Shares) {
    let alice = principal("alice");
    let project = stored_project(&s.stores, &alice.user_id, "P").await;
    let conversation = stored_conversation(&s.stores, &alice.user_id, project.id).await;
    finished_turn(&s.stores, &alice.user_id, conversation.id, "first question").await;
    finished_turn(
        &s.stores,
        &alice.user_id,
        conversation.id,
        "second question",
    )
    .await;
    let share = match service(&s).create(&alice, conversation.id, "tok-1").await {
        Ok(share) => share,
        Err(e) => panic!("create: {e:?}"),
    };
    assert_eq!(share.conversation_id, conversation.id);
    let Some(snapshot) = open(&s, "tok-1").await else {
        panic!("a new share is found by its token");
    };
    assert_eq!(snapshot.title.as_deref(), Some("Chat"));
    let texts: Vec<&str> = snapshot
        .messages
        .iter()
        .map(|m| m.content.as_str())
        .collect();
    assert_eq!(
        texts,
        [
            "first question",
            "Re: first question",
            "second question",
            "Re: second question"
        ]
    );
    assert_eq!(snapshot.messages[0].role, Role::User);
    assert_eq!(snapshot.messages[1].role, Role::Assistant);
    assert_eq!(snapshot.messages[1].model.as_deref(), Some("model-a"));

    finished_turn(&s.stores, &alice.user_id, conversation.id, "later question").await;
    let Some(later) = open(&s, "tok-1").await else {
        panic!("the share is still found");
    };
    assert_eq!(later, snapshot, "a share's snapshot does not grow");
    assert!(open(&s, "tok-2").await.is_none(), "an unknown token");
    assert!(open(&s, "").await.is_none());
}

async fn shares_are_listed_for_their_owner_newest_first(s: Shares) {
    let alice = principal("alice");
    let project = stored_project(&s.stores, &alice.user_id, "P").await;
    let conversation = stored_conversation(&s.stores, &alice.user_id, project.id).await;
    let other = stored_conversation(&s.stores, &alice.user_id, project.id).await;
    let mut made = Vec::new();
    for token in ["a", "b", "c"] {
        match service(&s).create(&alice, conversation.id, token).await {
            Ok(share) => made.push(share),
            Err(e) => panic!("create: {e:?}"),
        }
    }
    if let Err(e) = service(&s).create(&alice, other.id, "d").await {
        panic!("create: {e:?}");
    }
    let listed = ok(
        s.shares.list_shares(&alice.user_id, conversation.id).await,
        "list_shares",
    );
    let mut expected = made.clone();
    expected.sort_by_key(|s| std::cmp::Reverse((s.created_at, s.id)));
    assert_eq!(listed, expected);
    not_found(
        s.shares.list_shares(&user("bob"), conversation.id).await,
        "list_shares of another owner",
    );
}

async fn a_revoked_share_is_not_found(s: Shares) {
    let alice = principal("alice");
    let project = stored_project(&s.stores, &alice.user_id, "P").await;
    let conversation = stored_conversation(&s.stores, &alice.user_id, project.id).await;
    let (Ok(kept), Ok(gone)) = (
        service(&s).create(&alice, conversation.id, "kept").await,
        service(&s).create(&alice, conversation.id, "gone").await,
    ) else {
        panic!("create");
    };
    ok(
        s.shares.revoke_share(&alice.user_id, gone.id, now()).await,
        "revoke_share",
    );
    assert!(open(&s, "gone").await.is_none(), "revoked at once");
    assert!(open(&s, "kept").await.is_some(), "the other share stays");
    let listed = ok(
        s.shares.list_shares(&alice.user_id, conversation.id).await,
        "list_shares",
    );
    assert_eq!(listed, vec![kept]);
    not_found(
        s.shares.revoke_share(&alice.user_id, gone.id, now()).await,
        "revoke twice",
    );
    not_found(
        s.shares
            .revoke_share(&alice.user_id, ShareId::new(), now())
            .await,
        "revoke a missing share",
    );
}

async fn another_users_conversation_and_share_are_not_found(s: Shares) {
    let alice = principal("alice");
    let bob = principal("bob");
    let project = stored_project(&s.stores, &alice.user_id, "P").await;
    let conversation = stored_conversation(&s.stores, &alice.user_id, project.id).await;
    let foreign = NewShare {
        id: ShareId::new(),
        owner_id: bob.user_id.clone(),
        conversation_id: conversation.id,
        token_hash: token_hash("bob's"),
        leaf_id: None,
        snapshot: Snapshot::default(),
        created_at: now(),
    };
    not_found(
        s.shares.create_share(&foreign).await,
        "create_share on another user's conversation",
    );
    assert!(open(&s, "bob's").await.is_none(), "nothing was stored");
    let Ok(share) = service(&s).create(&alice, conversation.id, "alice's").await else {
        panic!("create");
    };
    not_found(
        s.shares.revoke_share(&bob.user_id, share.id, now()).await,
        "revoke another user's share",
    );
    assert!(open(&s, "alice's").await.is_some(), "still shared");
}

async fn a_deleted_conversation_takes_its_shares(s: Shares) {
    let alice = principal("alice");
    let project = stored_project(&s.stores, &alice.user_id, "P").await;
    let conversation = stored_conversation(&s.stores, &alice.user_id, project.id).await;
    let Ok(share) = service(&s).create(&alice, conversation.id, "t").await else {
        panic!("create");
    };
    ok(
        s.stores
            .history
            .delete_conversation(&alice.user_id, conversation.id)
            .await,
        "delete_conversation",
    );
    assert!(open(&s, "t").await.is_none());
    not_found(
        s.shares.revoke_share(&alice.user_id, share.id, now()).await,
        "revoke a deleted conversation's share",
    );
}
