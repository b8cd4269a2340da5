//! The `AccountStore` contract (`confab_core::accounts`), run against every adapter: each
//! MUST sentence of the port's documentation is an assertion here.

use std::future::Future;
use std::sync::Arc;

use chrono::{DateTime, Duration, SubsecRound as _, Utc};
use confab_core::accounts::{Account, AccountStore, Link, LinkKind, Session};
use confab_core::error::{Conflict, StoreError};
use uuid::Uuid;

/// Now, to the microsecond that databases keep.
fn now() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(6)
}

/// An account to store (the store decides `is_admin`).
#[must_use]
pub fn account(username: &str, email: Option<&str>) -> Account {
    Account {
        id: Uuid::now_v7(),
        username: username.to_owned(),
        email: email.map(str::to_owned),
        password_hash: format!("$argon2id$v=19$m=19456,t=2,p=1$fake${username}"),
        is_admin: true,
        created_at: now(),
    }
}

fn session(account_id: Uuid) -> Session {
    let now = now();
    Session {
        id: Uuid::now_v7(),
        account_id,
        created_at: now,
        expires_at: now + Duration::hours(1),
        revoked_at: None,
    }
}

fn link(kind: LinkKind, account_id: Option<Uuid>, hash_seed: &str) -> Link {
    Link {
        token_hash: confab_auth::local::link_hash(hash_seed),
        kind,
        account_id,
        expires_at: now() + Duration::hours(1),
    }
}

/// Runs every case of the `AccountStore` contract, each on a fresh store from `fresh`.
pub async fn account_store_contract<F, Fut>(fresh: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = Arc<dyn AccountStore>>,
{
    crate::run_cases!(
        "AccountStore",
        fresh,
        [
            the_first_account_is_the_administrator_and_only_the_first,
            a_taken_username_or_email_is_a_conflict,
            accounts_are_found_by_username_or_email,
            a_password_change_replaces_the_hash_and_revokes_every_session,
            revoking_is_idempotent_and_sticks,
            revoking_all_touches_only_that_account,
            deleting_an_account_removes_it_its_sessions_and_links,
            a_link_is_taken_once_only_of_its_kind_and_never_expired,
            concurrent_takers_of_a_link_get_it_once,
            of_concurrent_first_accounts_exactly_one_is_stored,
        ]
    );
}

async fn the_first_account_is_the_administrator_and_only_the_first(store: Arc<dyn AccountStore>) {
    assert_eq!(store.count_accounts().await.unwrap(), 0);
    let first = store.create_account(&account("ada", None)).await.unwrap();
    assert!(first.is_admin, "the first account administers");
    let second = store.create_account(&account("bob", None)).await.unwrap();
    assert!(!second.is_admin, "only the first account administers");
    assert_eq!(store.count_accounts().await.unwrap(), 2);
    let read = store.get_account(second.id).await.unwrap().unwrap();
    assert_eq!(read, second);
}

async fn a_taken_username_or_email_is_a_conflict(store: Arc<dyn AccountStore>) {
    store
        .create_account(&account("ada", Some("ada@example.com")))
        .await
        .unwrap();
    for taken in [
        account("ada", None),
        account("other", Some("ada@example.com")),
    ] {
        let err = store.create_account(&taken).await.unwrap_err();
        assert!(
            matches!(err, StoreError::Conflict(Conflict::DuplicateId)),
            "{err:?}"
        );
    }
    // Several accounts without an e-mail are fine.
    store.create_account(&account("bob", None)).await.unwrap();
    store.create_account(&account("cy", None)).await.unwrap();
    assert_eq!(store.count_accounts().await.unwrap(), 3);
}

async fn accounts_are_found_by_username_or_email(store: Arc<dyn AccountStore>) {
    let ada = store
        .create_account(&account("ada", Some("ada@example.com")))
        .await
        .unwrap();
    assert_eq!(store.find_account("ada").await.unwrap().unwrap().id, ada.id);
    assert_eq!(
        store
            .find_account("ada@example.com")
            .await
            .unwrap()
            .unwrap()
            .id,
        ada.id
    );
    assert!(store.find_account("nobody").await.unwrap().is_none());
    assert!(store.get_account(Uuid::now_v7()).await.unwrap().is_none());
}

async fn a_password_change_replaces_the_hash_and_revokes_every_session(
    store: Arc<dyn AccountStore>,
) {
    let ada = store.create_account(&account("ada", None)).await.unwrap();
    let (one, two) = (session(ada.id), session(ada.id));
    store.insert_session(&one).await.unwrap();
    store.insert_session(&two).await.unwrap();
    store
        .set_password(ada.id, "$argon2id$new", Utc::now())
        .await
        .unwrap();
    assert_eq!(
        store
            .get_account(ada.id)
            .await
            .unwrap()
            .unwrap()
            .password_hash,
        "$argon2id$new"
    );
    for s in [one, two] {
        let read = store.get_session(s.id).await.unwrap().unwrap();
        assert!(
            read.revoked_at.is_some(),
            "a session outlived a password change"
        );
    }
    assert!(matches!(
        store.set_password(Uuid::now_v7(), "x", Utc::now()).await,
        Err(StoreError::NotFound)
    ));
}

async fn revoking_is_idempotent_and_sticks(store: Arc<dyn AccountStore>) {
    let ada = store.create_account(&account("ada", None)).await.unwrap();
    let s = session(ada.id);
    store.insert_session(&s).await.unwrap();
    assert_eq!(
        store.get_session(s.id).await.unwrap().unwrap().revoked_at,
        None
    );
    store.revoke_session(s.id, Utc::now()).await.unwrap();
    let first = store.get_session(s.id).await.unwrap().unwrap().revoked_at;
    assert!(first.is_some());
    store.revoke_session(s.id, Utc::now()).await.unwrap();
    store.revoke_sessions(ada.id, Utc::now()).await.unwrap();
    assert_eq!(
        store.get_session(s.id).await.unwrap().unwrap().revoked_at,
        first
    );
    store
        .revoke_session(Uuid::now_v7(), Utc::now())
        .await
        .unwrap();
}

async fn revoking_all_touches_only_that_account(store: Arc<dyn AccountStore>) {
    let ada = store.create_account(&account("ada", None)).await.unwrap();
    let bob = store.create_account(&account("bob", None)).await.unwrap();
    let (a1, a2, b1) = (session(ada.id), session(ada.id), session(bob.id));
    for s in [&a1, &a2, &b1] {
        store.insert_session(s).await.unwrap();
    }
    store.revoke_sessions(ada.id, Utc::now()).await.unwrap();
    assert!(
        store
            .get_session(a1.id)
            .await
            .unwrap()
            .unwrap()
            .revoked_at
            .is_some()
    );
    assert!(
        store
            .get_session(a2.id)
            .await
            .unwrap()
            .unwrap()
            .revoked_at
            .is_some()
    );
    assert!(
        store
            .get_session(b1.id)
            .await
            .unwrap()
            .unwrap()
            .revoked_at
            .is_none()
    );
}

async fn deleting_an_account_removes_it_its_sessions_and_links(store: Arc<dyn AccountStore>) {
    let ada = store.create_account(&account("ada", None)).await.unwrap();
    let s = session(ada.id);
    store.insert_session(&s).await.unwrap();
    let reset = link(LinkKind::Reset, Some(ada.id), "ada-reset");
    store.insert_link(&reset).await.unwrap();
    store.delete_account(ada.id).await.unwrap();
    assert!(store.get_account(ada.id).await.unwrap().is_none());
    assert!(store.get_session(s.id).await.unwrap().is_none());
    assert!(
        store
            .take_link(LinkKind::Reset, &reset.token_hash, Utc::now())
            .await
            .unwrap()
            .is_none()
    );
    assert!(matches!(
        store.delete_account(ada.id).await,
        Err(StoreError::NotFound)
    ));
    // The name is free again.
    store.create_account(&account("ada", None)).await.unwrap();
}

async fn a_link_is_taken_once_only_of_its_kind_and_never_expired(store: Arc<dyn AccountStore>) {
    let invite = link(LinkKind::Invite, None, "invite");
    store.insert_link(&invite).await.unwrap();
    let now = Utc::now();
    assert!(
        store
            .take_link(LinkKind::Reset, &invite.token_hash, now)
            .await
            .unwrap()
            .is_none(),
        "an invite is not a reset link"
    );
    let taken = store
        .take_link(LinkKind::Invite, &invite.token_hash, now)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(taken, invite);
    assert!(
        store
            .take_link(LinkKind::Invite, &invite.token_hash, now)
            .await
            .unwrap()
            .is_none(),
        "a link is single-use"
    );
    store
        .release_link(LinkKind::Reset, &invite.token_hash)
        .await
        .unwrap();
    assert!(
        store
            .take_link(LinkKind::Invite, &invite.token_hash, now)
            .await
            .unwrap()
            .is_none(),
        "releasing a link of another kind gives nothing back"
    );
    store
        .release_link(LinkKind::Invite, &invite.token_hash)
        .await
        .unwrap();
    let again = store
        .take_link(LinkKind::Invite, &invite.token_hash, now)
        .await
        .unwrap();
    assert_eq!(again, Some(invite), "a released link can be taken again");
    let expiring = link(LinkKind::Invite, None, "expiring");
    store.insert_link(&expiring).await.unwrap();
    let later = expiring.expires_at + Duration::seconds(1);
    assert!(
        store
            .take_link(LinkKind::Invite, &expiring.token_hash, later)
            .await
            .unwrap()
            .is_none(),
        "an expired link is refused"
    );
    assert!(
        store
            .take_link(LinkKind::Invite, &"0".repeat(64), now)
            .await
            .unwrap()
            .is_none()
    );
}

async fn concurrent_takers_of_a_link_get_it_once(store: Arc<dyn AccountStore>) {
    let invite = link(LinkKind::Invite, None, "raced");
    store.insert_link(&invite).await.unwrap();
    let takers = (0..8).map(|_| {
        let store = Arc::clone(&store);
        let hash = invite.token_hash.clone();
        tokio::spawn(async move {
            store
                .take_link(LinkKind::Invite, &hash, Utc::now())
                .await
                .unwrap()
                .is_some()
        })
    });
    let won = futures::future::join_all(takers)
        .await
        .into_iter()
        .filter(|taken| *taken.as_ref().unwrap())
        .count();
    assert_eq!(won, 1, "a link was taken {won} times");
}

async fn of_concurrent_first_accounts_exactly_one_is_stored(store: Arc<dyn AccountStore>) {
    let creators = (0..8).map(|i| {
        let store = Arc::clone(&store);
        tokio::spawn(async move {
            store
                .create_first_account(&account(&format!("first{i}"), None))
                .await
                .unwrap()
        })
    });
    let stored: Vec<Account> = futures::future::join_all(creators)
        .await
        .into_iter()
        .filter_map(|created| created.unwrap())
        .collect();
    assert_eq!(
        stored.len(),
        1,
        "{} accounts were stored as the first",
        stored.len()
    );
    assert!(stored[0].is_admin, "the first account administers");
    assert_eq!(store.count_accounts().await.unwrap(), 1);
    let later = store
        .create_first_account(&account("late", None))
        .await
        .unwrap();
    assert!(later.is_none(), "an account exists: nothing is stored");
    assert_eq!(store.count_accounts().await.unwrap(), 1);
}
