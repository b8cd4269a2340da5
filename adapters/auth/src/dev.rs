//! Dev tokens: the server signs them itself for a username, so Confab runs with no identity
//! provider at all. Only for local use — the server refuses dev auth on a non-loopback
//! address unless explicitly allowed.
//!
//! Tokens are HS256 JWTs with `iss` = `confab-dev`, `sub` = `dev:<username>`, `iat` and
//! `exp`. The `dev:` prefix keeps dev users apart from every real provider's user ids, so
//! a dev login named like a Clerk user (`user_2abc…`) never sees that user's data when a
//! database is shared across providers. The principal's `user_id` is the whole `sub`.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, TimeZone, Utc};
use confab_core::ports::AuthVerifier;
use confab_core::{AuthError, Principal, ValidationError};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};

use crate::config::{ConfigError, DevConfig};
use crate::token::{
    SharedKey, VerifyingKey, base_validation, decode_claims, ensure_crypto_provider, precheck,
    principal, unauthenticated,
};

/// The `iss` of every dev token.
pub const DEV_ISSUER: &str = "confab-dev";

/// Prefix of a dev token's `sub`: the user id of username `alice` is `dev:alice`.
pub const DEV_SUBJECT_PREFIX: &str = "dev:";

/// The longest accepted username, in characters.
pub const MAX_USERNAME_CHARS: usize = 64;

/// Why no dev token was issued.
#[derive(Debug, thiserror::Error)]
pub enum DevAuthError {
    /// The username breaks its rule (answered 422 `validation_failed`).
    #[error(transparent)]
    InvalidUsername(#[from] ValidationError),
    /// The token could not be signed (answered 500).
    #[error("the dev token could not be signed: {0}")]
    Signing(String),
}

/// Accepts 1–64 characters of ASCII letters, digits, `-`, `_` and `.` (nothing is trimmed).
pub fn validate_username(username: &str) -> Result<(), ValidationError> {
    if username.is_empty() || username.chars().count() > MAX_USERNAME_CHARS {
        return Err(ValidationError::new(
            "username",
            format!("must be 1 to {MAX_USERNAME_CHARS} characters"),
        ));
    }
    if !username
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    {
        return Err(ValidationError::new(
            "username",
            "may only contain letters, digits, '-', '_' and '.'",
        ));
    }
    Ok(())
}

#[derive(Serialize, Deserialize)]
struct DevClaims {
    iss: String,
    sub: String,
    iat: i64,
    exp: i64,
}

/// Issues and verifies dev tokens (HS256, pinned).
pub struct DevAuth {
    encoding: EncodingKey,
    key: SharedKey,
    ttl: Duration,
    validation: Validation,
}

impl std::fmt::Debug for DevAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DevAuth")
            .field("ttl", &self.ttl)
            .finish_non_exhaustive()
    }
}

impl DevAuth {
    /// Uses the configured secret, or a random 32-byte key when there is none (tokens then
    /// do not survive a restart).
    pub fn new(config: &DevConfig) -> Result<Self, ConfigError> {
        ensure_crypto_provider();
        config.validate()?;
        let secret: Vec<u8> = match &config.secret {
            Some(secret) => secret.expose_secret().as_bytes().to_vec(),
            None => {
                let mut key = vec![0u8; 32];
                getrandom::fill(&mut key).map_err(|e| ConfigError::Invalid {
                    variable: "CONFAB_DEV_AUTH_SECRET",
                    reason: format!("not set, and no random key could be generated: {e}"),
                })?;
                key
            }
        };
        let mut validation = base_validation(Algorithm::HS256);
        validation.set_issuer(&[DEV_ISSUER]);
        validation.set_required_spec_claims(&["exp", "iss", "sub"]);
        Ok(Self {
            encoding: EncodingKey::from_secret(&secret),
            key: Arc::new(VerifyingKey {
                algorithm: Algorithm::HS256,
                key: DecodingKey::from_secret(&secret),
            }),
            ttl: config.ttl,
            validation,
        })
    }

    /// How long an issued token is valid.
    #[must_use]
    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// A token for `username` and the moment it expires (whole seconds, equal to its `exp`).
    pub fn issue(&self, username: &str) -> Result<(String, DateTime<Utc>), DevAuthError> {
        validate_username(username)?;
        let now = Utc::now().timestamp();
        let ttl = i64::try_from(self.ttl.as_secs())
            .map_err(|_| DevAuthError::Signing("the token lifetime is too long".into()))?;
        let exp = now
            .checked_add(ttl)
            .ok_or_else(|| DevAuthError::Signing("the token lifetime is too long".into()))?;
        let expires_at = Utc
            .timestamp_opt(exp, 0)
            .single()
            .ok_or_else(|| DevAuthError::Signing("the expiry is out of range".into()))?;
        let claims = DevClaims {
            iss: DEV_ISSUER.to_owned(),
            sub: format!("{DEV_SUBJECT_PREFIX}{username}"),
            iat: now,
            exp,
        };
        let token = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .map_err(|e| DevAuthError::Signing(e.to_string()))?;
        Ok((token, expires_at))
    }
}

#[async_trait]
impl AuthVerifier for DevAuth {
    async fn verify(&self, token: &str) -> Result<Principal, AuthError> {
        let header = precheck(token)?;
        if header.alg != Algorithm::HS256 {
            return Err(unauthenticated("algorithm not allowed"));
        }
        let claims: DevClaims = decode_claims(token, &self.key, &self.validation)?;
        let username = claims
            .sub
            .strip_prefix(DEV_SUBJECT_PREFIX)
            .ok_or_else(|| unauthenticated("not a dev subject"))?;
        validate_username(username).map_err(|e| unauthenticated(format!("unusable sub: {e}")))?;
        principal(Some(claims.sub))
    }
}

#[cfg(test)]
mod tests {

    use secrecy::SecretString;

    use super::*;

    const SECRET: &str = "0123456789abcdef0123456789abcdef";

    fn dev(secret: Option<&str>, ttl: Duration) -> DevAuth {
        DevAuth::new(&DevConfig {
            secret: secret.map(SecretString::from),
            ttl,
        })
        .unwrap()
    }

    fn forge(claims: &serde_json::Value, secret: &[u8], alg: Algorithm) -> String {
        jsonwebtoken::encode(&Header::new(alg), claims, &EncodingKey::from_secret(secret)).unwrap()
    }

    #[tokio::test]
    async fn an_issued_token_verifies_to_the_dev_prefixed_username() {
        let auth = dev(None, DevConfig::default().ttl);
        let (token, expires_at) = auth.issue("alice.b-c_9").unwrap();
        let principal = auth.verify(&token).await.unwrap();
        assert_eq!(principal.user_id.as_str(), "dev:alice.b-c_9");
        let lifetime = expires_at - Utc::now();
        assert!(lifetime > chrono::Duration::hours(12) - chrono::Duration::seconds(5));
        assert!(lifetime <= chrono::Duration::hours(12));
    }

    #[tokio::test]
    async fn the_lifetime_is_configurable_and_expires_at_equals_exp() {
        let auth = dev(Some(SECRET), Duration::from_secs(90));
        let (token, expires_at) = auth.issue("bob").unwrap();
        let claims =
            jsonwebtoken::dangerous::insecure_decode_claims::<serde_json::Value>(&token).unwrap();
        assert_eq!(claims["exp"].as_i64().unwrap(), expires_at.timestamp());
        assert_eq!(claims["iss"], DEV_ISSUER);
        assert!((expires_at - Utc::now()).num_seconds() <= 90);
    }

    #[tokio::test]
    async fn invalid_usernames_are_validation_errors() {
        let auth = dev(None, Duration::from_secs(60));
        for bad in [
            "",
            " alice",
            "al ice",
            "alice/..",
            "ålice",
            "a\u{0}",
            &"a".repeat(65),
        ] {
            match auth.issue(bad) {
                Err(DevAuthError::InvalidUsername(e)) => assert_eq!(e.field, "username"),
                other => panic!("{bad:?}: expected a validation error, got {other:?}"),
            }
        }
        assert!(auth.issue(&"a".repeat(64)).is_ok());
    }

    #[tokio::test]
    async fn tokens_survive_a_restart_only_with_a_fixed_secret() {
        let (token, _) = dev(Some(SECRET), Duration::from_secs(60))
            .issue("carol")
            .unwrap();
        assert!(
            dev(Some(SECRET), Duration::from_secs(60))
                .verify(&token)
                .await
                .is_ok()
        );

        let (random, _) = dev(None, Duration::from_secs(60)).issue("carol").unwrap();
        assert!(matches!(
            dev(None, Duration::from_secs(60)).verify(&random).await,
            Err(AuthError::Unauthenticated(_))
        ));
    }

    #[tokio::test]
    async fn forged_and_broken_dev_tokens_are_refused() {
        let auth = dev(Some(SECRET), Duration::from_secs(60));
        let now = Utc::now().timestamp();
        let good =
            serde_json::json!({"iss": DEV_ISSUER, "sub": "dev:eve", "iat": now, "exp": now + 60});
        assert!(
            auth.verify(&forge(&good, SECRET.as_bytes(), Algorithm::HS256))
                .await
                .is_ok()
        );

        let mut cases = vec![
            (
                "other secret",
                forge(
                    &good,
                    b"another secret of at least 32 bytes!",
                    Algorithm::HS256,
                ),
            ),
            ("HS512", forge(&good, SECRET.as_bytes(), Algorithm::HS512)),
        ];
        for (name, patch) in [
            ("wrong iss", serde_json::json!({"iss": "someone-else"})),
            ("expired", serde_json::json!({"exp": now - 60})),
            ("no prefix", serde_json::json!({"sub": "eve"})),
            ("bad username", serde_json::json!({"sub": "dev:e ve"})),
        ] {
            let mut claims = good.clone();
            for (k, v) in patch.as_object().unwrap() {
                claims[k] = v.clone();
            }
            cases.push((name, forge(&claims, SECRET.as_bytes(), Algorithm::HS256)));
        }
        let (valid, _) = auth.issue("eve").unwrap();
        let mut parts: Vec<&str> = valid.split('.').collect();
        let none_header = "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0";
        parts[0] = none_header;
        cases.push(("alg none", format!("{}.{}.", parts[0], parts[1])));

        for (name, token) in cases {
            assert!(
                matches!(
                    auth.verify(&token).await,
                    Err(AuthError::Unauthenticated(_))
                ),
                "{name} was accepted"
            );
        }
    }

    #[test]
    fn debug_output_never_shows_the_key() {
        let auth = dev(Some(SECRET), Duration::from_secs(60));
        assert!(!format!("{auth:?}").contains("0123456789"));
    }
}
