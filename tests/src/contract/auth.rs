//! The `AuthVerifier` contract, run against every auth adapter (`FakeAuth`, `DevAuth`,
//! Clerk with a JWKS and with a PEM key, OIDC), and the JWKS cache contract, run against
//! the verifiers that fetch their keys (Clerk, OIDC).
//!
//! The factory builds a verifier together with a way to mint a valid token for a user
//! (and the user id that token must yield) and a well-formed token for a user that the
//! adapter must refuse. What "valid" means is the adapter's business; the contract checks
//! what every verifier promises: the right principal for a valid token, `Unauthenticated`
//! (not `Unavailable`, never a panic) for anything else, and the same answers under
//! concurrency.

use std::any::Any;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use confab_auth::{JwksOptions, ManualClock};
use confab_core::error::AuthError;
use confab_core::model::Principal;
use confab_core::ports::AuthVerifier;

use crate::jwks_server::{JwksServer, Mode, TestKey};

/// A token minted for a user, with the user id the verifier must return for it.
#[derive(Clone, Debug)]
pub struct Minted {
    /// The bearer token (without `Bearer `).
    pub token: String,
    /// The `user_id` its principal must have.
    pub user_id: String,
}

/// One adapter under test.
pub struct AuthSubject {
    /// The verifier.
    pub verifier: Arc<dyn AuthVerifier>,
    /// A token the verifier accepts for the given user name.
    pub mint_valid: Box<dyn Fn(&str) -> Minted + Send + Sync>,
    /// A well-formed token for the given user name that the verifier must refuse (signed by
    /// an untrusted key, expired, for another audience… whatever suits the adapter).
    pub mint_invalid: Box<dyn Fn(&str) -> String + Send + Sync>,
    /// Whatever must live as long as the verifier (a local JWKS server).
    pub guard: Box<dyn Any + Send + Sync>,
}

/// Runs every case of the `AuthVerifier` contract, each on a fresh subject from `fresh`.
pub async fn auth_verifier_contract<F, Fut>(fresh: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = AuthSubject>,
{
    crate::run_cases!(
        "AuthVerifier",
        fresh,
        [
            a_valid_token_yields_the_principal_of_its_user,
            tokens_of_different_users_yield_different_principals,
            verifying_the_same_token_twice_gives_the_same_principal,
            the_adapters_invalid_token_is_unauthenticated,
            malformed_input_is_unauthenticated_never_a_panic,
            a_valid_token_with_anything_around_it_is_unauthenticated,
            concurrent_verifications_each_get_their_own_principal,
        ]
    );
}

async fn accepted(subject: &AuthSubject, minted: &Minted) -> Principal {
    match subject.verifier.verify(&minted.token).await {
        Ok(principal) => principal,
        Err(e) => panic!("a valid token for {:?} was refused: {e:?}", minted.user_id),
    }
}

async fn refused(subject: &AuthSubject, token: &str, what: &str) {
    match subject.verifier.verify(token).await {
        Err(AuthError::Unauthenticated(_)) => {}
        Err(AuthError::Unavailable(reason)) => {
            panic!("{what}: expected Unauthenticated, got Unavailable ({reason})")
        }
        Ok(principal) => panic!("{what}: was accepted as {:?}", principal.user_id),
    }
}

async fn a_valid_token_yields_the_principal_of_its_user(subject: AuthSubject) {
    let minted = (subject.mint_valid)("alice");
    let principal = accepted(&subject, &minted).await;
    assert_eq!(principal.user_id.as_str(), minted.user_id);
}

async fn tokens_of_different_users_yield_different_principals(subject: AuthSubject) {
    let alice = (subject.mint_valid)("alice");
    let bob = (subject.mint_valid)("bob");
    assert_ne!(
        alice.user_id, bob.user_id,
        "the fixture mints one id for two users"
    );
    assert_eq!(
        accepted(&subject, &alice).await.user_id.as_str(),
        alice.user_id
    );
    assert_eq!(accepted(&subject, &bob).await.user_id.as_str(), bob.user_id);
}

async fn verifying_the_same_token_twice_gives_the_same_principal(subject: AuthSubject) {
    let minted = (subject.mint_valid)("carol");
    let first = accepted(&subject, &minted).await;
    let second = accepted(&subject, &minted).await;
    assert_eq!(first, second);
}

async fn the_adapters_invalid_token_is_unauthenticated(subject: AuthSubject) {
    let token = (subject.mint_invalid)("alice");
    refused(&subject, &token, "the adapter's invalid token").await;
}

async fn malformed_input_is_unauthenticated_never_a_panic(subject: AuthSubject) {
    let huge = "A".repeat(100 * 1024);
    let huge_dots = format!("{0}.{0}.{0}", "e".repeat(40 * 1024));
    let inputs: Vec<(&str, String)> = vec![
        ("empty", String::new()),
        ("blank", "   ".to_owned()),
        ("garbage", "garbage".to_owned()),
        ("three dots", "...".to_owned()),
        ("three parts", "a.b.c".to_owned()),
        ("json", r#"{"sub":"alice"}"#.to_owned()),
        ("a NUL", "\u{0}".to_owned()),
        ("unicode", "токен.😀.ü".to_owned()),
        ("100 KB", huge),
        ("100 KB with dots", huge_dots),
        (
            "alg none",
            "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.eyJzdWIiOiJhbGljZSJ9.".to_owned(),
        ),
    ];
    for (what, token) in inputs {
        refused(&subject, &token, what).await;
    }
}

async fn a_valid_token_with_anything_around_it_is_unauthenticated(subject: AuthSubject) {
    let valid = (subject.mint_valid)("alice").token;
    let wrapped = [
        ("with the Bearer scheme", format!("Bearer {valid}")),
        ("with a leading space", format!(" {valid}")),
        ("with a trailing newline", format!("{valid}\n")),
        ("with a trailing NUL", format!("{valid}\u{0}")),
    ];
    for (what, token) in wrapped {
        refused(&subject, &token, what).await;
    }
}

async fn concurrent_verifications_each_get_their_own_principal(subject: AuthSubject) {
    let minted: Vec<Minted> = (0..32)
        .map(|i| (subject.mint_valid)(&format!("user{i}")))
        .collect();
    let checks = minted.iter().map(|m| {
        let verifier = Arc::clone(&subject.verifier);
        async move { (m, verifier.verify(&m.token).await) }
    });
    for (m, result) in futures::future::join_all(checks).await {
        match result {
            Ok(principal) => assert_eq!(principal.user_id.as_str(), m.user_id),
            Err(e) => panic!("concurrent verification for {:?} failed: {e:?}", m.user_id),
        }
    }
}

// ---------------------------------------------------------------------------------------
// The JWKS cache contract: what every verifier that gets its keys from an issuer's JWKS
// (Clerk, OIDC — they share `confab_auth::JwksCache`) promises about refreshing them.

/// Builds the verifier for a server's issuer and JWKS, with the given cache options.
pub type BuildVerifier = dyn Fn(&JwksServer, JwksOptions) -> Arc<dyn AuthVerifier> + Send + Sync;

/// A token for `user` that the verifier accepts while it trusts `key`: right issuer,
/// audience and claims, signed by `key` under its `kid`.
pub type SignToken = dyn Fn(&JwksServer, &TestKey, &str) -> String + Send + Sync;

/// A verifier that gets its keys from a [`JwksServer`].
pub struct JwksVerifierFactory {
    /// Builds the verifier.
    pub build: Box<BuildVerifier>,
    /// Mints the tokens the cases verify.
    pub sign: Box<SignToken>,
}

/// The cache options every case runs with: a manual clock and the production intervals
/// (stated here, since the cases count them out).
const UNKNOWN_KID_REFETCH_INTERVAL: Duration = Duration::from_secs(60);
const COLD_RETRY_INTERVAL: Duration = Duration::from_secs(5);
const RETRY_BACKOFF_INITIAL: Duration = Duration::from_secs(30);
const RETRY_BACKOFF_MAX: Duration = Duration::from_secs(240);
const SECOND: Duration = Duration::from_secs(1);

/// One case's issuer, verifier and clock. The issuer publishes key A (`key-a`) and key B
/// (`key-b`) until a case changes that; nothing is fetched before the first verification.
pub struct JwksFixture {
    /// The verifier under test.
    pub verifier: Arc<dyn AuthVerifier>,
    /// The issuer.
    pub server: JwksServer,
    /// The clock the verifier's cache reads.
    pub clock: ManualClock,
    /// Published key A.
    pub key_a: TestKey,
    /// Published key B (another key pair).
    pub key_b: TestKey,
    factory: Arc<JwksVerifierFactory>,
}

impl JwksFixture {
    async fn start(factory: Arc<JwksVerifierFactory>) -> Self {
        let key_a = TestKey::rsa_a("key-a");
        let key_b = TestKey::rsa_b("key-b");
        let server = JwksServer::start(&[&key_a, &key_b]).await;
        let clock = ManualClock::new();
        let options = JwksOptions {
            unknown_kid_refetch_interval: UNKNOWN_KID_REFETCH_INTERVAL,
            cold_retry_interval: COLD_RETRY_INTERVAL,
            retry_backoff_initial: RETRY_BACKOFF_INITIAL,
            retry_backoff_max: RETRY_BACKOFF_MAX,
            // Longer than any safety net here: a held answer ends only when a case releases it.
            request_timeout: Duration::from_secs(300),
            clock: Arc::new(clock.clone()),
            ..JwksOptions::default()
        };
        let verifier = (factory.build)(&server, options);
        Self {
            verifier,
            server,
            clock,
            key_a,
            key_b,
            factory,
        }
    }

    fn token(&self, key: &TestKey) -> String {
        (self.factory.sign)(&self.server, key, "alice")
    }

    async fn verify(&self, key: &TestKey) -> Result<Principal, AuthError> {
        self.verifier.verify(&self.token(key)).await
    }

    async fn assert_accepted(&self, key: &TestKey, when: &str) {
        if let Err(e) = self.verify(key).await {
            panic!("{when}: a token of {} was refused: {e:?}", key.kid);
        }
    }

    async fn assert_refused(&self, key: &TestKey, when: &str) {
        match self.verify(key).await {
            Err(AuthError::Unauthenticated(_)) => {}
            other => panic!(
                "{when}: a token of {} gave {other:?}, not Unauthenticated",
                key.kid
            ),
        }
    }

    fn assert_fetches(&self, expected: usize, when: &str) {
        assert_eq!(self.server.jwks_fetches(), expected, "{when}: JWKS fetches");
    }
}

/// Runs every case of the JWKS cache contract, each on a fresh issuer and verifier.
pub async fn jwks_cache_contract(factory: JwksVerifierFactory) {
    let factory = Arc::new(factory);
    crate::run_cases!(
        "JwksCache",
        || JwksFixture::start(Arc::clone(&factory)),
        [
            a_fresh_key_set_is_not_refetched_before_its_max_age,
            a_withdrawn_key_is_refused_once_the_set_expired_and_was_refetched,
            a_published_key_keeps_working_while_the_issuer_is_down_after_expiry,
            a_failing_issuer_is_retried_with_backoff_not_on_every_request,
            a_key_set_without_usable_keys_does_not_replace_the_cached_one,
            lookups_during_a_refresh_are_answered_from_the_stale_set,
            the_max_age_of_each_answer_is_bounded,
            an_unknown_kid_refetches_at_most_once_per_interval,
            a_key_rotated_in_is_picked_up_when_a_token_names_it,
            a_cold_cache_retries_at_most_once_per_interval_and_recovers,
            a_refresh_whose_request_went_away_counts_as_an_attempt,
        ]
    );
}

async fn a_fresh_key_set_is_not_refetched_before_its_max_age(fx: JwksFixture) {
    fx.server.set_cache_control(Some("public, max-age=600"));
    for _ in 0..3 {
        fx.assert_accepted(&fx.key_a, "first use").await;
    }
    fx.assert_fetches(1, "first use");
    fx.clock.advance(Duration::from_secs(600) - SECOND);
    fx.assert_accepted(&fx.key_a, "just before max-age").await;
    fx.assert_accepted(&fx.key_b, "just before max-age").await;
    fx.assert_fetches(1, "just before max-age");
    fx.clock.advance(SECOND);
    fx.assert_accepted(&fx.key_a, "at max-age").await;
    fx.assert_fetches(2, "at max-age");
}

async fn a_withdrawn_key_is_refused_once_the_set_expired_and_was_refetched(fx: JwksFixture) {
    fx.server.set_cache_control(Some("max-age=600"));
    fx.assert_accepted(&fx.key_a, "while published").await;
    fx.assert_accepted(&fx.key_b, "while published").await;

    fx.server.set_keys(&[&fx.key_b]);
    // Within its max-age the issuer allowed us to keep using the set it sent.
    fx.assert_accepted(&fx.key_a, "withdrawn, set still fresh")
        .await;
    fx.assert_fetches(1, "withdrawn, set still fresh");

    fx.clock.advance(Duration::from_secs(600));
    fx.assert_refused(&fx.key_a, "withdrawn, set expired").await;
    fx.assert_fetches(2, "withdrawn, set expired");
    fx.assert_accepted(&fx.key_b, "still published").await;
    fx.assert_refused(&fx.key_a, "withdrawn, asked again").await;
    fx.assert_fetches(2, "after the refresh");
}

async fn a_published_key_keeps_working_while_the_issuer_is_down_after_expiry(mut fx: JwksFixture) {
    fx.server.set_cache_control(Some("max-age=600"));
    fx.assert_accepted(&fx.key_a, "issuer up").await;

    fx.server.stop().await;
    fx.clock.advance(Duration::from_secs(601));
    for _ in 0..3 {
        fx.assert_accepted(&fx.key_a, "issuer down, set expired")
            .await;
        fx.assert_accepted(&fx.key_b, "issuer down, set expired")
            .await;
    }
    // An unknown kid is still an unknown kid (401), not "no keys" (503).
    fx.assert_refused(&fx.key_a.with_kid("key-unknown"), "issuer down")
        .await;
    fx.clock.advance(RETRY_BACKOFF_MAX * 4);
    fx.assert_accepted(&fx.key_a, "issuer down for long").await;
}

async fn a_failing_issuer_is_retried_with_backoff_not_on_every_request(fx: JwksFixture) {
    fx.server.set_cache_control(Some("max-age=600"));
    fx.assert_accepted(&fx.key_a, "issuer up").await;
    fx.server.set_mode(Mode::Fail);
    fx.clock.advance(Duration::from_secs(600));

    let mut fetches = 1;
    for wait in [
        Duration::ZERO,
        RETRY_BACKOFF_INITIAL,
        RETRY_BACKOFF_INITIAL * 2,
        RETRY_BACKOFF_INITIAL * 4,
        RETRY_BACKOFF_MAX,
        RETRY_BACKOFF_MAX,
    ] {
        let when = format!("{} s after the last attempt", wait.as_secs());
        if !wait.is_zero() {
            fx.clock.advance(wait - SECOND);
            fx.assert_accepted(&fx.key_a, &when).await;
            fx.assert_refused(&fx.key_a.with_kid("key-unknown"), &when)
                .await;
            fx.assert_fetches(fetches, &format!("{when}, a second early"));
            fx.clock.advance(SECOND);
        }
        for _ in 0..3 {
            fx.assert_accepted(&fx.key_a, &when).await;
        }
        fetches += 1;
        fx.assert_fetches(fetches, &when);
    }

    // It answers garbage: still a failure, the cached set still serves.
    fx.server.set_mode(Mode::Garbage);
    fx.clock.advance(RETRY_BACKOFF_MAX);
    fx.assert_accepted(&fx.key_a, "issuer answers garbage")
        .await;
    fx.assert_fetches(fetches + 1, "issuer answers garbage");

    // Back, without key A: the next attempt replaces the set.
    fx.server.set_keys(&[&fx.key_b]);
    fx.server.set_mode(Mode::Serve);
    fx.clock.advance(RETRY_BACKOFF_MAX);
    fx.assert_refused(&fx.key_a, "issuer back without key A")
        .await;
    fx.assert_accepted(&fx.key_b, "issuer back").await;
    fx.assert_fetches(fetches + 2, "issuer back");
    // Recovered: the next refresh is due after the max-age again, not the backoff.
    fx.clock.advance(RETRY_BACKOFF_MAX);
    fx.assert_accepted(&fx.key_b, "after recovery").await;
    fx.assert_fetches(fetches + 2, "after recovery");
}

async fn a_key_set_without_usable_keys_does_not_replace_the_cached_one(fx: JwksFixture) {
    fx.server.set_cache_control(Some("max-age=600"));
    fx.assert_accepted(&fx.key_a, "issuer up").await;
    fx.server.set_raw_keys(vec![
        serde_json::json!({"kty": "oct", "kid": "hmac", "k": "c2VjcmV0"}),
    ]);
    fx.clock.advance(Duration::from_secs(600));
    fx.assert_accepted(&fx.key_a, "after a set with no usable key")
        .await;
    fx.assert_fetches(2, "after a set with no usable key");
    fx.assert_refused(&fx.key_a.with_kid("hmac"), "the symmetric key's kid")
        .await;
}

async fn lookups_during_a_refresh_are_answered_from_the_stale_set(fx: JwksFixture) {
    fx.server.set_cache_control(Some("max-age=600"));
    fx.assert_accepted(&fx.key_a, "issuer up").await;
    fx.server.set_keys(&[&fx.key_b]);
    fx.server.hold();
    fx.clock.advance(Duration::from_secs(600));

    let refreshing = {
        let verifier = Arc::clone(&fx.verifier);
        let token = fx.token(&fx.key_a);
        tokio::spawn(async move { verifier.verify(&token).await })
    };
    fx.server.wait_for_jwks_fetches(2).await;
    // The refresh is in flight (its answer held): others do not wait for it. The timeout
    // is a safety net; a verifier that waits would wait until the release below.
    for _ in 0..3 {
        let during = tokio::time::timeout(Duration::from_secs(60), fx.verify(&fx.key_a)).await;
        assert!(
            matches!(during, Ok(Ok(_))),
            "during the refresh: {during:?}"
        );
    }
    fx.assert_fetches(2, "during the refresh");

    fx.server.release();
    let refreshed = tokio::time::timeout(Duration::from_secs(60), refreshing).await;
    assert!(
        matches!(refreshed, Ok(Ok(Err(AuthError::Unauthenticated(_))))),
        "the refreshing verification of a withdrawn key: {refreshed:?}"
    );
    fx.assert_refused(&fx.key_a, "after the refresh").await;
    fx.assert_accepted(&fx.key_b, "after the refresh").await;
    fx.assert_fetches(2, "after the refresh");
}

async fn the_max_age_of_each_answer_is_bounded(fx: JwksFixture) {
    let minutes = |m: u64| Duration::from_secs(m * 60);
    // (Cache-Control of an answer, how long its set must be used)
    let answers: [(Option<&str>, Duration); 7] = [
        (Some("max-age=900"), minutes(15)),
        (Some("max-age=0"), minutes(5)),
        (Some("max-age=99999999999999999999"), minutes(24 * 60)),
        (Some("max-age=172800"), minutes(24 * 60)),
        (None, minutes(60)),
        (Some("no-store"), minutes(5)),
        (Some("max-age=soon"), minutes(60)),
    ];
    fx.server.set_cache_control(answers[0].0);
    fx.assert_accepted(&fx.key_a, "first fetch").await;
    for (i, (header, lifetime)) in answers.iter().enumerate() {
        let when = format!("a set sent with Cache-Control {header:?}");
        // The next fetch's answer carries the next header.
        fx.server
            .set_cache_control(answers.get(i + 1).and_then(|(next, _)| *next));
        fx.clock.advance(*lifetime - SECOND);
        fx.assert_accepted(&fx.key_a, &when).await;
        fx.assert_fetches(i + 1, &format!("{when}, a second before {lifetime:?}"));
        fx.clock.advance(SECOND);
        fx.assert_accepted(&fx.key_a, &when).await;
        fx.assert_fetches(i + 2, &format!("{when}, after {lifetime:?}"));
    }
}

async fn an_unknown_kid_refetches_at_most_once_per_interval(fx: JwksFixture) {
    fx.assert_accepted(&fx.key_a, "first use").await;
    let unknown = fx.key_a.with_kid("key-unknown");
    for _ in 0..5 {
        fx.assert_refused(&unknown, "unknown kid right after a fetch")
            .await;
    }
    fx.assert_fetches(1, "unknown kids right after a fetch");

    fx.clock.advance(UNKNOWN_KID_REFETCH_INTERVAL - SECOND);
    fx.assert_refused(&unknown, "unknown kid within the interval")
        .await;
    fx.assert_fetches(1, "unknown kid within the interval");

    fx.clock.advance(SECOND);
    // Many at once: one refetches, the others wait for its answer.
    let tokens: Vec<String> = (0..20)
        .map(|i| fx.token(&fx.key_a.with_kid(&format!("key-unknown-{i}"))))
        .collect();
    let results =
        futures::future::join_all(tokens.iter().map(|token| fx.verifier.verify(token))).await;
    for result in results {
        assert!(
            matches!(result, Err(AuthError::Unauthenticated(_))),
            "{result:?}"
        );
    }
    fx.assert_fetches(2, "unknown kids after the interval");
    fx.assert_accepted(&fx.key_a, "a known kid").await;
}

async fn a_key_rotated_in_is_picked_up_when_a_token_names_it(fx: JwksFixture) {
    fx.server.set_keys(&[&fx.key_a]);
    fx.assert_accepted(&fx.key_a, "before the rotation").await;
    fx.server.set_keys(&[&fx.key_b]);
    fx.clock.advance(UNKNOWN_KID_REFETCH_INTERVAL);
    fx.assert_accepted(&fx.key_b, "the new key").await;
    fx.assert_fetches(2, "after the rotation");
    // The refetched set replaced the old one: the withdrawn key is no longer trusted.
    fx.assert_refused(&fx.key_a, "the withdrawn key").await;
}

async fn a_cold_cache_retries_at_most_once_per_interval_and_recovers(fx: JwksFixture) {
    fx.server.set_mode(Mode::Fail);
    for when in ["issuer failing", "issuer failing, asked again"] {
        let result = fx.verify(&fx.key_a).await;
        assert!(
            matches!(result, Err(AuthError::Unavailable(_))),
            "{when}: {result:?}"
        );
    }
    fx.assert_fetches(1, "cold, within the retry interval");

    fx.server.set_mode(Mode::Serve);
    fx.clock.advance(COLD_RETRY_INTERVAL - SECOND);
    let result = fx.verify(&fx.key_a).await;
    assert!(
        matches!(result, Err(AuthError::Unavailable(_))),
        "issuer back, within the retry interval: {result:?}"
    );
    fx.assert_fetches(1, "issuer back, within the retry interval");

    fx.clock.advance(SECOND);
    fx.assert_accepted(&fx.key_a, "issuer back").await;
    fx.assert_fetches(2, "issuer back");
}

/// A lookup that drives a refresh and is then dropped (its client hung up) must not let the
/// next lookup start another fetch at once: the dropped fetch counts as a failed attempt.
async fn a_refresh_whose_request_went_away_counts_as_an_attempt(fx: JwksFixture) {
    fx.server.set_cache_control(Some("max-age=600"));
    fx.assert_accepted(&fx.key_a, "issuer up").await;
    fx.server.hold();
    fx.clock.advance(Duration::from_secs(600));
    let refreshing = {
        let verifier = Arc::clone(&fx.verifier);
        let token = fx.token(&fx.key_a);
        tokio::spawn(async move { verifier.verify(&token).await })
    };
    fx.server.wait_for_jwks_fetches(2).await;
    refreshing.abort();
    let _ = refreshing.await;
    fx.server.release();
    for _ in 0..5 {
        fx.assert_accepted(&fx.key_a, "after the dropped refresh")
            .await;
    }
    fx.assert_fetches(2, "right after the dropped refresh");
    fx.clock.advance(RETRY_BACKOFF_INITIAL);
    fx.assert_accepted(&fx.key_a, "after the backoff").await;
    fx.assert_fetches(3, "after the backoff");
}
