//! `FakeAuth`: bearer tokens that name their user, for tests.

use async_trait::async_trait;
use confab_core::error::AuthError;
use confab_core::ids::UserId;
use confab_core::model::Principal;
use confab_core::ports::AuthVerifier;

/// Accepts `test-token:<user_id>` (the user id as `UserId::new` accepts it) and nothing else.
#[derive(Clone, Copy, Debug, Default)]
pub struct FakeAuth;

impl FakeAuth {
    /// What every accepted token starts with.
    pub const PREFIX: &'static str = "test-token:";

    /// The token `FakeAuth` accepts for `user_id`.
    #[must_use]
    pub fn token_for(user_id: &str) -> String {
        format!("{}{user_id}", Self::PREFIX)
    }
}

#[async_trait]
impl AuthVerifier for FakeAuth {
    async fn verify(&self, token: &str) -> Result<Principal, AuthError> {
        let raw = token
            .strip_prefix(Self::PREFIX)
            .ok_or_else(|| AuthError::Unauthenticated("not a test token".to_owned()))?;
        let user_id = UserId::new(raw)
            .map_err(|e| AuthError::Unauthenticated(format!("bad test token: {e}")))?;
        Ok(Principal { user_id })
    }
}

#[cfg(test)]
mod tests {

    use super::*;

    #[tokio::test]
    async fn a_test_token_names_its_user() {
        let principal = FakeAuth
            .verify(&FakeAuth::token_for("alice"))
            .await
            .unwrap();
        assert_eq!(principal.user_id.as_str(), "alice");
    }

    #[tokio::test]
    async fn anything_else_is_unauthenticated() {
        for token in [
            "",
            "alice",
            "test-token:",
            "test-token:a\nb",
            "Test-Token:alice",
            "bearer test-token:alice",
        ] {
            let result = FakeAuth.verify(token).await;
            assert!(
                matches!(result, Err(AuthError::Unauthenticated(_))),
                "{token:?} was accepted: {result:?}"
            );
        }
    }
}
