//! The `AuthVerifier` contract, run against every auth adapter (`FakeAuth`, `DevAuth`,
//! Clerk with a JWKS and with a PEM key, OIDC).
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

use confab_core::error::AuthError;
use confab_core::model::Principal;
use confab_core::ports::AuthVerifier;

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
