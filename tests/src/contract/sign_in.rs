//! The contract of the sign-in state every replica shares (`AccountStore::update_failures`,
//! `forget_failures`, `revoke_browser_session`, `browser_session_revoked`), run against every
//! adapter with two stores on ONE database (two replicas; for memory, one store shared), and
//! the built-in accounts' throttle over them: guesses on one replica throttle the other.

use std::future::Future;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration as StdDuration;

use chrono::{DateTime, Duration, SubsecRound as _, Utc};
use confab_auth::local::{FREE_FAILURES_PER_LOGIN_AND_ADDRESS, SignUp};
use confab_auth::{LocalAuth, LocalAuthError, LocalConfig, ManualClock, SignUpMode};
use confab_core::accounts::{AccountStore, Failures, FailuresStep};
use secrecy::SecretString;
use uuid::Uuid;

/// Two stores of one database, as two replicas behind a load balancer have.
pub struct SignInStores {
    pub store: Arc<dyn AccountStore>,
    pub replica: Arc<dyn AccountStore>,
}

/// Runs every case of the shared sign-in state contract, each on fresh stores from `fresh`.
pub async fn sign_in_state_contract<F, Fut>(fresh: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = SignInStores>,
{
    crate::run_cases!(
        "SignInState",
        fresh,
        [
            failures_are_counted_and_read_as_they_were_before_the_step,
            a_step_that_declines_changes_nothing,
            two_stores_on_one_database_count_each_others_failures,
            a_key_cleared_on_one_store_is_gone_on_the_other,
            forgetting_deletes_only_the_stale_keys,
            a_browser_sign_out_holds_on_every_store_until_it_would_have_expired,
            guesses_on_one_replica_throttle_the_other,
            a_success_on_one_replica_clears_the_pair_on_the_other,
        ]
    );
}

/// Now, to the microsecond that databases keep.
fn now() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(6)
}

fn keys(names: &[&str]) -> Vec<String> {
    names.iter().map(|k| (*k).to_owned()).collect()
}

/// One more failure on every key, last at `at`.
fn plus_one(at: DateTime<Utc>) -> FailuresStep {
    Arc::new(move |before: &[Option<Failures>]| {
        Some(
            before
                .iter()
                .map(|f| {
                    Some(Failures {
                        count: f.map_or(0, |f| f.count) + 1,
                        last: at,
                        blocked_until: f.and_then(|f| f.blocked_until),
                    })
                })
                .collect(),
        )
    })
}

fn read_only() -> FailuresStep {
    Arc::new(|_: &[Option<Failures>]| None)
}

async fn read(store: &dyn AccountStore, keys: &[String]) -> Vec<Option<Failures>> {
    store
        .update_failures(keys, now(), read_only())
        .await
        .unwrap()
}

async fn failures_are_counted_and_read_as_they_were_before_the_step(stores: SignInStores) {
    let store = stores.store;
    let keys = keys(&["pair:10.0.0.1|ada", "login:ada"]);
    let at = now();
    let before = store
        .update_failures(&keys, at, plus_one(at))
        .await
        .unwrap();
    assert_eq!(before, vec![None, None], "nothing was kept before");
    let blocked = at + Duration::seconds(4);
    let step: FailuresStep = Arc::new(move |before: &[Option<Failures>]| {
        Some(
            before
                .iter()
                .map(|f| {
                    f.map(|f| Failures {
                        count: f.count + 1,
                        last: at,
                        blocked_until: Some(blocked),
                    })
                })
                .collect(),
        )
    });
    let before = store.update_failures(&keys, at, step).await.unwrap();
    let one = Failures {
        count: 1,
        last: at,
        blocked_until: None,
    };
    assert_eq!(before, vec![Some(one), Some(one)]);
    let kept = Failures {
        count: 2,
        last: at,
        blocked_until: Some(blocked),
    };
    assert_eq!(read(&*store, &keys).await, vec![Some(kept), Some(kept)]);
    // Another key is untouched.
    assert_eq!(read(&*store, &keys[..1]).await, vec![Some(kept)]);
    assert_eq!(read(&*store, &self::keys(&["login:bob"])).await, vec![None]);
}

async fn a_step_that_declines_changes_nothing(stores: SignInStores) {
    let store = stores.store;
    let keys = keys(&["addr:10.0.0.2", "login:new"]);
    let at = now();
    store
        .update_failures(&keys[..1], at, plus_one(at))
        .await
        .unwrap();
    let before = store.update_failures(&keys, at, read_only()).await.unwrap();
    assert_eq!(before[1], None);
    assert_eq!(before[0].map(|f| f.count), Some(1));
    // The key never counted was not created on the way (and is not forgotten as stale).
    assert_eq!(read(&*store, &keys).await, before);
    assert_eq!(
        store
            .forget_failures(at + Duration::hours(1))
            .await
            .unwrap(),
        1
    );
}

async fn two_stores_on_one_database_count_each_others_failures(stores: SignInStores) {
    let keys = keys(&["pair:-|ada", "login:ada", "addr:10.0.0.3"]);
    let at = now();
    let tasks = (0..16).map(|i| {
        let store = Arc::clone(if i % 2 == 0 {
            &stores.store
        } else {
            &stores.replica
        });
        let keys = keys.clone();
        tokio::spawn(async move {
            // The keys in another order on half of them: no deadlock either way.
            let mut keys = keys;
            if i % 4 < 2 {
                keys.reverse();
            }
            store
                .update_failures(&keys, at, plus_one(at))
                .await
                .unwrap();
        })
    });
    for task in futures::future::join_all(tasks).await {
        task.unwrap();
    }
    for store in [&stores.store, &stores.replica] {
        let counts: Vec<Option<u32>> = read(&**store, &keys)
            .await
            .into_iter()
            .map(|f| f.map(|f| f.count))
            .collect();
        assert_eq!(counts, vec![Some(16); 3], "every attempt counted once");
    }
}

async fn a_key_cleared_on_one_store_is_gone_on_the_other(stores: SignInStores) {
    let keys = keys(&["pair:10.0.0.4|ada", "login:ada"]);
    let at = now();
    stores
        .store
        .update_failures(&keys, at, plus_one(at))
        .await
        .unwrap();
    // Forget the pair, keep the login (as a success does).
    let clear_pair: FailuresStep =
        Arc::new(|before: &[Option<Failures>]| Some(vec![None, before[1]]));
    stores
        .replica
        .update_failures(&keys, at, clear_pair)
        .await
        .unwrap();
    let seen = read(&*stores.store, &keys).await;
    assert_eq!(seen[0], None);
    assert_eq!(seen[1].map(|f| f.count), Some(1));
}

async fn forgetting_deletes_only_the_stale_keys(stores: SignInStores) {
    let store = stores.store;
    let old = now() - Duration::hours(2);
    let recent = now();
    let (stale, fresh) = (keys(&["login:old"]), keys(&["login:recent"]));
    store
        .update_failures(&stale, old, plus_one(old))
        .await
        .unwrap();
    store
        .update_failures(&fresh, recent, plus_one(recent))
        .await
        .unwrap();
    let deleted = stores
        .replica
        .forget_failures(recent - Duration::hours(1))
        .await
        .unwrap();
    assert_eq!(deleted, 1);
    assert_eq!(read(&*store, &stale).await, vec![None]);
    assert_eq!(
        read(&*store, &fresh).await[0].map(|f| (f.count, f.last)),
        Some((1, recent))
    );
}

async fn a_browser_sign_out_holds_on_every_store_until_it_would_have_expired(stores: SignInStores) {
    let (signed_out, other, old) = (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());
    let at = now();
    let expires = at + Duration::hours(1);
    stores
        .store
        .revoke_browser_session(old, at + Duration::seconds(1), at)
        .await
        .unwrap();
    stores
        .store
        .revoke_browser_session(signed_out, expires, at)
        .await
        .unwrap();
    // Idempotent.
    stores
        .replica
        .revoke_browser_session(signed_out, expires, at)
        .await
        .unwrap();
    for store in [&stores.store, &stores.replica] {
        assert!(store.browser_session_revoked(signed_out, at).await.unwrap());
        assert!(!store.browser_session_revoked(other, at).await.unwrap());
    }
    // Past its expiry the session is refused anyway: the revocation may go.
    assert!(
        !stores
            .replica
            .browser_session_revoked(signed_out, expires)
            .await
            .unwrap()
    );
    // A later sign-out purges the expired one; it stays "not revoked" (it expired).
    stores
        .replica
        .revoke_browser_session(other, expires, at + Duration::seconds(2))
        .await
        .unwrap();
    assert!(
        !stores.store.browser_session_revoked(old, at).await.unwrap(),
        "purged"
    );
    assert!(
        stores
            .store
            .browser_session_revoked(other, at)
            .await
            .unwrap()
    );
}

fn local(store: Arc<dyn AccountStore>, clock: &ManualClock) -> LocalAuth {
    let config = LocalConfig {
        secret: Some(SecretString::from("s".repeat(32))),
        signup: SignUpMode::Closed,
        ..LocalConfig::default()
    };
    LocalAuth::with_clock(store, &config, Arc::new(clock.clone())).unwrap()
}

fn password(p: &str) -> SecretString {
    SecretString::from(p.to_owned())
}

async fn guesses_on_one_replica_throttle_the_other(stores: SignInStores) {
    let clock = ManualClock::new();
    let (a, b) = (local(stores.store, &clock), local(stores.replica, &clock));
    let from: IpAddr = "203.0.113.5".parse().unwrap();
    let wrong = password("not the password at all");
    for n in 0..=FREE_FAILURES_PER_LOGIN_AND_ADDRESS {
        let replica = if n % 2 == 0 { &a } else { &b };
        assert!(matches!(
            replica.sign_in("ada", &wrong, Some(from)).await,
            Err(LocalAuthError::InvalidCredentials)
        ));
    }
    // Six counted across both: the next guess waits about a second, on either replica.
    for replica in [&a, &b] {
        let Err(LocalAuthError::Throttled { retry_after }) =
            replica.sign_in("ada", &wrong, Some(from)).await
        else {
            panic!("expected a wait");
        };
        assert!(
            retry_after <= StdDuration::from_secs(1) && retry_after > StdDuration::ZERO,
            "{retry_after:?}"
        );
    }
    clock.advance(StdDuration::from_secs(1));
    // The wait is over: one more guess is counted, and the next wait doubles.
    assert!(matches!(
        b.sign_in("ada", &wrong, Some(from)).await,
        Err(LocalAuthError::InvalidCredentials)
    ));
    let Err(LocalAuthError::Throttled { retry_after }) = a.sign_in("ada", &wrong, Some(from)).await
    else {
        panic!("expected a wait");
    };
    assert!(retry_after > StdDuration::from_secs(1), "{retry_after:?}");
}

async fn a_success_on_one_replica_clears_the_pair_on_the_other(stores: SignInStores) {
    let clock = ManualClock::new();
    let (a, b) = (local(stores.store, &clock), local(stores.replica, &clock));
    let right = password("a long and unusual passphrase");
    a.sign_up(SignUp {
        username: "ada".to_owned(),
        email: None,
        password: right.clone(),
        invite: None,
    })
    .await
    .unwrap();
    let from: IpAddr = "203.0.113.6".parse().unwrap();
    let wrong = password("not the password at all");
    for _ in 0..FREE_FAILURES_PER_LOGIN_AND_ADDRESS {
        assert!(matches!(
            a.sign_in("ada", &wrong, Some(from)).await,
            Err(LocalAuthError::InvalidCredentials)
        ));
    }
    b.sign_in("ada", &right, Some(from)).await.unwrap();
    // Cleared everywhere: A gives the pair its free failures again.
    for _ in 0..FREE_FAILURES_PER_LOGIN_AND_ADDRESS {
        assert!(matches!(
            a.sign_in("ada", &wrong, Some(from)).await,
            Err(LocalAuthError::InvalidCredentials)
        ));
    }
}
