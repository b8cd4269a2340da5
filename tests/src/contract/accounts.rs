//! The `AccountStore` contract (`confab_core::accounts`), run against every adapter: each
//! MUST sentence of the port's documentation is an assertion here.

use std::future::Future;
use std::sync::Arc;

use chrono::{DateTime, Duration, SubsecRound as _, Utc};
use confab_core::accounts::{
    Account, AccountStore, EventRetention, Link, LinkKind, Rotated, Rotation, SecurityEvent,
    SecurityEventKind, Session,
};
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
        last_used_at: now,
        refresh_hash: hash("refresh-0"),
        user_agent: Some("Mozilla/5.0 (test)".to_owned()),
        address: Some("203.0.113.9".to_owned()),
    }
}

fn hash(seed: &str) -> String {
    confab_auth::local::link_hash(seed)
}

/// Presenting `presented`'s hash at `now`, replacing it with `new`'s; a 30-minute idle
/// timeout and a 30-second grace.
fn rotation(session: &Session, presented: &str, new: &str, now: DateTime<Utc>) -> Rotation {
    Rotation {
        session_id: session.id,
        presented_hash: hash(presented),
        new_hash: hash(new),
        sealed: format!("sealed-{new}"),
        now,
        idle_since: now - Duration::minutes(30),
        grace_since: now - Duration::seconds(30),
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
            a_rotation_replaces_the_refresh_hash_and_the_old_one_later_revokes_the_session,
            the_replaced_hash_within_the_grace_gets_the_sealed_secret_and_changes_nothing,
            a_wrong_hash_for_a_live_session_revokes_it,
            of_concurrent_rotations_with_one_hash_exactly_one_rotates,
            idle_expired_and_revoked_sessions_are_refused_and_not_listed,
            sessions_are_listed_and_ended_by_their_owner_only,
            security_events_are_listed_newest_first_and_only_to_their_owner,
            recording_an_event_keeps_only_the_newest_and_the_recent,
            marking_events_read_marks_only_the_owners_unread_ones_up_to_now,
            an_event_for_no_account_is_not_stored,
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
    store
        .record_event(
            &event(ada.id, SecurityEventKind::SignedIn, now()),
            keep_all(),
        )
        .await
        .unwrap();
    store.delete_account(ada.id).await.unwrap();
    assert!(
        store.list_events(ada.id).await.unwrap().is_empty(),
        "the account's security history goes with it"
    );
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

async fn a_rotation_replaces_the_refresh_hash_and_the_old_one_later_revokes_the_session(
    store: Arc<dyn AccountStore>,
) {
    let ada = store.create_account(&account("ada", None)).await.unwrap();
    let s = session(ada.id);
    store.insert_session(&s).await.unwrap();
    let t1 = now() + Duration::minutes(10);
    let Rotated::Rotated(after) = store
        .rotate_refresh(&rotation(&s, "refresh-0", "refresh-1", t1))
        .await
        .unwrap()
    else {
        panic!("the current hash rotates");
    };
    assert_eq!(after.refresh_hash, hash("refresh-1"));
    assert_eq!(after.last_used_at, t1, "a rotation is a use");
    assert_eq!(after.created_at, s.created_at);
    assert_eq!(
        after.expires_at, s.expires_at,
        "renewing never extends the session"
    );
    let stored = store.get_session(s.id).await.unwrap().unwrap();
    assert_eq!(stored.refresh_hash, hash("refresh-1"));
    assert_eq!(stored.last_used_at, t1);

    // The next one rotates again; the first, past the grace, is a reuse.
    let t2 = t1 + Duration::minutes(10);
    assert!(matches!(
        store
            .rotate_refresh(&rotation(&s, "refresh-1", "refresh-2", t2))
            .await
            .unwrap(),
        Rotated::Rotated(_)
    ));
    let t3 = t2 + Duration::minutes(1);
    assert_eq!(
        store
            .rotate_refresh(&rotation(&s, "refresh-1", "refresh-x", t3))
            .await
            .unwrap(),
        Rotated::Reused,
        "the replaced hash past the grace"
    );
    assert_eq!(
        store.get_session(s.id).await.unwrap().unwrap().revoked_at,
        Some(t3),
        "a reuse revokes the session"
    );
    assert_eq!(
        store
            .rotate_refresh(&rotation(&s, "refresh-2", "refresh-3", t3))
            .await
            .unwrap(),
        Rotated::Refused,
        "the current hash of a revoked session is refused too"
    );
}

async fn the_replaced_hash_within_the_grace_gets_the_sealed_secret_and_changes_nothing(
    store: Arc<dyn AccountStore>,
) {
    let ada = store.create_account(&account("ada", None)).await.unwrap();
    let s = session(ada.id);
    store.insert_session(&s).await.unwrap();
    let t1 = now() + Duration::minutes(1);
    store
        .rotate_refresh(&rotation(&s, "refresh-0", "refresh-1", t1))
        .await
        .unwrap();
    let t2 = t1 + Duration::seconds(20);
    let Rotated::Replayed { session, sealed } = store
        .rotate_refresh(&rotation(&s, "refresh-0", "refresh-other", t2))
        .await
        .unwrap()
    else {
        panic!("the replaced hash within the grace is a replay");
    };
    assert_eq!(
        sealed, "sealed-refresh-1",
        "the secret sealed at the rotation"
    );
    assert_eq!(session.refresh_hash, hash("refresh-1"));
    let stored = store.get_session(s.id).await.unwrap().unwrap();
    assert_eq!(stored.refresh_hash, hash("refresh-1"), "nothing changed");
    assert_eq!(stored.revoked_at, None);
    // The current one still rotates.
    assert!(matches!(
        store
            .rotate_refresh(&rotation(&s, "refresh-1", "refresh-2", t2))
            .await
            .unwrap(),
        Rotated::Rotated(_)
    ));
}

async fn a_wrong_hash_for_a_live_session_revokes_it(store: Arc<dyn AccountStore>) {
    let ada = store.create_account(&account("ada", None)).await.unwrap();
    let s = session(ada.id);
    store.insert_session(&s).await.unwrap();
    let other = session(ada.id);
    store.insert_session(&other).await.unwrap();
    let t = now();
    assert_eq!(
        store
            .rotate_refresh(&rotation(&s, "guessed", "refresh-1", t))
            .await
            .unwrap(),
        Rotated::Reused
    );
    assert!(
        store
            .get_session(s.id)
            .await
            .unwrap()
            .unwrap()
            .revoked_at
            .is_some()
    );
    assert!(
        store
            .get_session(other.id)
            .await
            .unwrap()
            .unwrap()
            .revoked_at
            .is_none(),
        "only that session"
    );
    let unknown = Session {
        id: Uuid::now_v7(),
        ..s.clone()
    };
    assert_eq!(
        store
            .rotate_refresh(&rotation(&unknown, "refresh-0", "refresh-1", t))
            .await
            .unwrap(),
        Rotated::Refused,
        "an unknown session"
    );
}

async fn of_concurrent_rotations_with_one_hash_exactly_one_rotates(store: Arc<dyn AccountStore>) {
    let ada = store.create_account(&account("ada", None)).await.unwrap();
    let s = session(ada.id);
    store.insert_session(&s).await.unwrap();
    let t = now();
    let racers = (0..8).map(|i| {
        let store = Arc::clone(&store);
        let r = rotation(&s, "refresh-0", &format!("refresh-{}", i + 1), t);
        tokio::spawn(async move { store.rotate_refresh(&r).await.unwrap() })
    });
    let outcomes: Vec<Rotated> = futures::future::join_all(racers)
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();
    let rotated: Vec<&Session> = outcomes
        .iter()
        .filter_map(|o| match o {
            Rotated::Rotated(s) => Some(s),
            _ => None,
        })
        .collect();
    assert_eq!(rotated.len(), 1, "{outcomes:?}");
    let winner = rotated[0].refresh_hash.clone();
    for outcome in &outcomes {
        match outcome {
            Rotated::Rotated(_) => {}
            Rotated::Replayed { session, .. } => assert_eq!(session.refresh_hash, winner),
            other => panic!("a racer with the same hash got {other:?}"),
        }
    }
    let stored = store.get_session(s.id).await.unwrap().unwrap();
    assert_eq!(stored.refresh_hash, winner);
    assert!(stored.revoked_at.is_none(), "racing is not theft");
}

async fn idle_expired_and_revoked_sessions_are_refused_and_not_listed(
    store: Arc<dyn AccountStore>,
) {
    let ada = store.create_account(&account("ada", None)).await.unwrap();
    let t0 = now();
    let live = session(ada.id);
    let idle = Session {
        id: Uuid::now_v7(),
        last_used_at: t0 - Duration::minutes(31),
        ..live.clone()
    };
    let expired = Session {
        id: Uuid::now_v7(),
        expires_at: t0 - Duration::seconds(1),
        ..live.clone()
    };
    let revoked = Session {
        id: Uuid::now_v7(),
        ..live.clone()
    };
    for s in [&live, &idle, &expired, &revoked] {
        store.insert_session(s).await.unwrap();
    }
    store.revoke_session(revoked.id, t0).await.unwrap();
    let listed = store
        .list_sessions(ada.id, t0, t0 - Duration::minutes(30))
        .await
        .unwrap();
    assert_eq!(
        listed.iter().map(|s| s.id).collect::<Vec<_>>(),
        vec![live.id]
    );
    assert_eq!(listed[0], live, "every field as stored");
    for s in [&idle, &expired, &revoked] {
        assert_eq!(
            store
                .rotate_refresh(&rotation(s, "refresh-0", "refresh-1", t0))
                .await
                .unwrap(),
            Rotated::Refused
        );
    }
    assert!(
        store
            .get_session(idle.id)
            .await
            .unwrap()
            .unwrap()
            .refresh_hash
            == hash("refresh-0"),
        "an idle session is not rotated"
    );
}

async fn sessions_are_listed_and_ended_by_their_owner_only(store: Arc<dyn AccountStore>) {
    let ada = store.create_account(&account("ada", None)).await.unwrap();
    let bob = store.create_account(&account("bob", None)).await.unwrap();
    let first = session(ada.id);
    store.insert_session(&first).await.unwrap();
    let second = Session {
        id: Uuid::now_v7(),
        created_at: first.created_at + Duration::seconds(1),
        ..first.clone()
    };
    store.insert_session(&second).await.unwrap();
    let bobs = session(bob.id);
    store.insert_session(&bobs).await.unwrap();
    let t = now();
    let idle_since = t - Duration::minutes(30);
    let listed: Vec<Uuid> = store
        .list_sessions(ada.id, t, idle_since)
        .await
        .unwrap()
        .iter()
        .map(|s| s.id)
        .collect();
    assert_eq!(
        listed,
        vec![second.id, first.id],
        "newest first, Ada's only"
    );

    assert!(
        !store.revoke_own_session(ada.id, bobs.id, t).await.unwrap(),
        "another's session"
    );
    assert!(
        store
            .get_session(bobs.id)
            .await
            .unwrap()
            .unwrap()
            .revoked_at
            .is_none()
    );
    assert!(
        !store
            .revoke_own_session(ada.id, Uuid::now_v7(), t)
            .await
            .unwrap()
    );
    assert!(store.revoke_own_session(ada.id, first.id, t).await.unwrap());
    assert!(
        !store.revoke_own_session(ada.id, first.id, t).await.unwrap(),
        "already ended"
    );
    let listed: Vec<Uuid> = store
        .list_sessions(ada.id, t, idle_since)
        .await
        .unwrap()
        .iter()
        .map(|s| s.id)
        .collect();
    assert_eq!(listed, vec![second.id]);
}

/// An unread event of `kind` at `at`, from a session of the account's.
fn event(account_id: Uuid, kind: SecurityEventKind, at: DateTime<Utc>) -> SecurityEvent {
    SecurityEvent {
        id: Uuid::now_v7(),
        account_id,
        kind,
        at,
        session_id: Some(Uuid::now_v7()),
        user_agent: Some("Mozilla/5.0 (test)".to_owned()),
        address: Some("203.0.113.9".to_owned()),
        read_at: None,
    }
}

/// A retention that trims nothing a test makes.
fn keep_all() -> EventRetention {
    EventRetention {
        newest: 1000,
        since: now() - Duration::days(3650),
    }
}

async fn security_events_are_listed_newest_first_and_only_to_their_owner(
    store: Arc<dyn AccountStore>,
) {
    let ada = store.create_account(&account("ada", None)).await.unwrap();
    let bob = store.create_account(&account("bob", None)).await.unwrap();
    let t = now();
    let older = event(
        ada.id,
        SecurityEventKind::SignedIn,
        t - Duration::minutes(5),
    );
    let newer = SecurityEvent {
        session_id: None,
        user_agent: None,
        address: None,
        ..event(ada.id, SecurityEventKind::PasswordReset, t)
    };
    let bobs = event(bob.id, SecurityEventKind::PasswordChanged, t);
    // Recorded out of order: the list is by `at`, not by insertion.
    for e in [&newer, &older, &bobs] {
        store.record_event(e, keep_all()).await.unwrap();
    }
    assert_eq!(
        store.list_events(ada.id).await.unwrap(),
        vec![newer.clone(), older.clone()],
        "ada's events, newest first, as recorded"
    );
    assert_eq!(store.list_events(bob.id).await.unwrap(), vec![bobs]);
    assert!(store.list_events(Uuid::now_v7()).await.unwrap().is_empty());
    // Every kind round-trips.
    for kind in SecurityEventKind::ALL {
        let e = event(ada.id, kind, t + Duration::seconds(1));
        store.record_event(&e, keep_all()).await.unwrap();
        assert!(
            store.list_events(ada.id).await.unwrap().contains(&e),
            "{kind:?}"
        );
    }
}

async fn recording_an_event_keeps_only_the_newest_and_the_recent(store: Arc<dyn AccountStore>) {
    let ada = store.create_account(&account("ada", None)).await.unwrap();
    let bob = store.create_account(&account("bob", None)).await.unwrap();
    let t = now();
    let bobs = event(bob.id, SecurityEventKind::SignedIn, t - Duration::days(200));
    store.record_event(&bobs, keep_all()).await.unwrap();
    let retention = EventRetention {
        newest: 3,
        since: t - Duration::days(90),
    };
    let ancient = event(ada.id, SecurityEventKind::SignedIn, t - Duration::days(91));
    store.record_event(&ancient, keep_all()).await.unwrap();
    let mut recorded = Vec::new();
    for minutes in (0..5).rev() {
        let e = event(
            ada.id,
            SecurityEventKind::SignedIn,
            t - Duration::minutes(minutes),
        );
        store.record_event(&e, retention).await.unwrap();
        recorded.push(e);
    }
    let kept: Vec<Uuid> = store
        .list_events(ada.id)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.id)
        .collect();
    let newest: Vec<Uuid> = recorded.iter().rev().take(3).map(|e| e.id).collect();
    assert_eq!(kept, newest, "the newest 3 only, the 91-day-old one gone");
    // Another account's history is not trimmed by ada's retention.
    assert_eq!(store.list_events(bob.id).await.unwrap(), vec![bobs]);
    // Only the age bound: an old event goes even when fewer than `newest` are kept.
    let carl = store.create_account(&account("carl", None)).await.unwrap();
    let old = event(
        carl.id,
        SecurityEventKind::SignedIn,
        t - Duration::days(100),
    );
    store.record_event(&old, keep_all()).await.unwrap();
    let fresh = event(carl.id, SecurityEventKind::PasswordChanged, t);
    store.record_event(&fresh, retention).await.unwrap();
    assert_eq!(store.list_events(carl.id).await.unwrap(), vec![fresh]);
}

async fn marking_events_read_marks_only_the_owners_unread_ones_up_to_now(
    store: Arc<dyn AccountStore>,
) {
    let ada = store.create_account(&account("ada", None)).await.unwrap();
    let bob = store.create_account(&account("bob", None)).await.unwrap();
    let t = now();
    let first = event(
        ada.id,
        SecurityEventKind::SignedIn,
        t - Duration::minutes(10),
    );
    store.record_event(&first, keep_all()).await.unwrap();
    let bobs = event(
        bob.id,
        SecurityEventKind::SignedIn,
        t - Duration::minutes(10),
    );
    store.record_event(&bobs, keep_all()).await.unwrap();
    let read_at = t - Duration::minutes(5);
    assert_eq!(store.mark_events_read(ada.id, read_at).await.unwrap(), 1);
    // An event after the marking (and one dated after `now` of the next marking) stays unread.
    let second = event(ada.id, SecurityEventKind::PasswordChanged, t);
    store.record_event(&second, keep_all()).await.unwrap();
    let later = event(
        ada.id,
        SecurityEventKind::SignedIn,
        t + Duration::minutes(5),
    );
    store.record_event(&later, keep_all()).await.unwrap();
    let events = store.list_events(ada.id).await.unwrap();
    let read = |id: Uuid| events.iter().find(|e| e.id == id).unwrap().read_at;
    assert_eq!(read(first.id), Some(read_at));
    assert_eq!(read(second.id), None);
    assert_eq!(store.mark_events_read(ada.id, t).await.unwrap(), 1);
    let events = store.list_events(ada.id).await.unwrap();
    let read = |id: Uuid| events.iter().find(|e| e.id == id).unwrap().read_at;
    assert_eq!(read(first.id), Some(read_at), "read ones keep their time");
    assert_eq!(read(second.id), Some(t));
    assert_eq!(read(later.id), None, "not yet at `now`");
    assert_eq!(
        store.list_events(bob.id).await.unwrap()[0].read_at,
        None,
        "bob's are untouched"
    );
    assert_eq!(store.mark_events_read(ada.id, t).await.unwrap(), 0);
}

async fn an_event_for_no_account_is_not_stored(store: Arc<dyn AccountStore>) {
    let nobody = Uuid::now_v7();
    let e = event(nobody, SecurityEventKind::SignedIn, now());
    assert!(matches!(
        store.record_event(&e, keep_all()).await,
        Err(StoreError::NotFound)
    ));
    assert!(store.list_events(nobody).await.unwrap().is_empty());
}
