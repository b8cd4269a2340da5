//! Clerk session tokens (v2), verified as Clerk's "manual JWT verification" describes.

use std::sync::Arc;

use async_trait::async_trait;
use confab_core::ports::AuthVerifier;
use confab_core::{AuthError, Principal};
use jsonwebtoken::{Algorithm, Validation};
use serde::Deserialize;

use crate::config::{ClerkConfig, ClerkKeys, ConfigError, JwksOptions};
use crate::jwks::{JwksCache, JwksSource, KeyLookupError, KeyPolicy};
use crate::token::{
    SharedKey, VerifyingKey, acceptable_kid, base_validation, check_issued_at, decode_claims,
    ensure_crypto_provider, precheck, principal, unauthenticated,
};

enum Keys {
    Jwks(Box<JwksCache>),
    Pem(SharedKey),
}

/// Verifies Clerk session tokens:
/// - RS256 only, pinned by the server; the key is chosen by the header's `kid` from the
///   instance's JWKS, or is the configured PEM key (`CLERK_JWT_KEY`, no network);
/// - `exp` required and `nbf` checked, with 5 s of clock skew; an `iat` in the future refused;
/// - `iss` equal to the instance's Frontend API URL;
/// - `azp`, when present and authorized parties are configured, one of them (a token
///   without `azp` is accepted, as Clerk's SDK does);
/// - `sub` required and a valid `UserId` (it becomes the principal); `sid` required;
/// - `sts` = `"pending"` (a session that has not finished signing in) refused.
pub struct ClerkVerifier {
    keys: Keys,
    issuer: String,
    authorized_parties: Vec<String>,
    validation: Validation,
}

impl std::fmt::Debug for ClerkVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClerkVerifier")
            .field("issuer", &self.issuer)
            .field("authorized_parties", &self.authorized_parties)
            .field(
                "keys",
                &match &self.keys {
                    Keys::Jwks(cache) => format!("{cache:?}"),
                    Keys::Pem(_) => "CLERK_JWT_KEY".to_owned(),
                },
            )
            .finish()
    }
}

#[derive(Deserialize)]
struct ClerkClaims {
    iss: Option<String>,
    sub: Option<String>,
    sid: Option<String>,
    azp: Option<String>,
    sts: Option<String>,
    iat: Option<f64>,
}

impl ClerkVerifier {
    /// A verifier for the configured instance, with the default key-fetching options.
    /// Makes no network request: the JWKS is fetched on first use.
    pub fn new(config: &ClerkConfig) -> Result<Self, ConfigError> {
        Self::with_options(config, JwksOptions::default())
    }

    /// As [`ClerkVerifier::new`], with explicit key-fetching options (tests shorten them).
    pub fn with_options(config: &ClerkConfig, options: JwksOptions) -> Result<Self, ConfigError> {
        ensure_crypto_provider();
        let settings = config.resolve()?;
        let keys = match settings.keys {
            ClerkKeys::Jwks { url } => Keys::Jwks(Box::new(JwksCache::new(
                JwksSource::Url(url),
                KeyPolicy::Rs256Only,
                options,
            )?)),
            ClerkKeys::Pem(key) => Keys::Pem(Arc::new(VerifyingKey {
                algorithm: Algorithm::RS256,
                key,
            })),
        };
        let mut validation = base_validation(Algorithm::RS256);
        validation.set_issuer(&[settings.issuer.as_str()]);
        validation.set_required_spec_claims(&["exp", "iss", "sub"]);
        Ok(Self {
            keys,
            issuer: settings.issuer,
            authorized_parties: settings.authorized_parties,
            validation,
        })
    }

    /// The Frontend API URL every token's `iss` must equal.
    #[must_use]
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    async fn key_for(&self, kid: Option<&str>) -> Result<SharedKey, AuthError> {
        match &self.keys {
            // A single configured key: the `kid` is irrelevant, as in Clerk's SDK.
            Keys::Pem(key) => Ok(Arc::clone(key)),
            Keys::Jwks(cache) => {
                let kid = kid.ok_or_else(|| unauthenticated("token has no kid"))?;
                if !acceptable_kid(kid) {
                    return Err(unauthenticated("unacceptable kid"));
                }
                cache.key(kid).await.map_err(|e| match e {
                    KeyLookupError::UnknownKid => unauthenticated("unknown signing key"),
                    KeyLookupError::Unavailable(reason) => AuthError::Unavailable(reason),
                })
            }
        }
    }
}

#[async_trait]
impl AuthVerifier for ClerkVerifier {
    async fn verify(&self, token: &str) -> Result<Principal, AuthError> {
        let header = precheck(token)?;
        if header.alg != Algorithm::RS256 {
            return Err(unauthenticated("algorithm not allowed"));
        }
        let key = self.key_for(header.kid.as_deref()).await?;
        let claims: ClerkClaims = decode_claims(token, &key, &self.validation)?;

        if claims.iss.as_deref() != Some(self.issuer.as_str()) {
            return Err(unauthenticated("wrong issuer"));
        }
        check_issued_at(claims.iat)?;
        if claims.sid.as_deref().is_none_or(str::is_empty) {
            return Err(unauthenticated("missing claim sid"));
        }
        if claims.sts.as_deref() == Some("pending") {
            return Err(unauthenticated("the session is pending"));
        }
        if let Some(azp) = claims.azp.as_deref()
            && !self.authorized_parties.is_empty()
            && !self.authorized_parties.iter().any(|p| p == azp)
        {
            return Err(unauthenticated("azp is not an authorized party"));
        }
        principal(claims.sub)
    }
}

#[cfg(test)]
mod tests {

    use jsonwebtoken::{EncodingKey, Header};
    use serde_json::{Value, json};

    use super::*;

    const PRIVATE: &str = include_str!("../../../tests/fixtures/jwt/rsa-a.pem");
    const OTHER_PRIVATE: &str = include_str!("../../../tests/fixtures/jwt/rsa-b.pem");
    const PUBLIC: &str = include_str!("../../../tests/fixtures/jwt/rsa-a.pub.pem");
    const ISSUER: &str = "https://clerk.example.com";

    fn verifier(parties: &[&str]) -> ClerkVerifier {
        ClerkVerifier::new(&ClerkConfig {
            issuer: Some(ISSUER.into()),
            jwt_key_pem: Some(PUBLIC.into()),
            authorized_parties: parties.iter().map(|p| (*p).to_owned()).collect(),
            ..ClerkConfig::default()
        })
        .unwrap()
    }

    fn now() -> i64 {
        chrono::Utc::now().timestamp()
    }

    fn claims() -> Value {
        json!({
            "v": 2, "iss": ISSUER, "sub": "user_2abc", "sid": "sess_1",
            "azp": "https://chat.example.com",
            "iat": now(), "nbf": now() - 10, "exp": now() + 60,
        })
    }

    fn sign_with(claims: &Value, pem: &str) -> String {
        ensure_crypto_provider();
        let mut header = Header::new(Algorithm::RS256);
        header.kid = Some("ins_test".into());
        jsonwebtoken::encode(
            &header,
            claims,
            &EncodingKey::from_rsa_pem(pem.as_bytes()).unwrap(),
        )
        .unwrap()
    }

    fn sign(claims: &Value) -> String {
        sign_with(claims, PRIVATE)
    }

    fn with(patch: &[(&str, Value)]) -> Value {
        let mut c = claims();
        for (k, v) in patch {
            if v.is_null() {
                c.as_object_mut().unwrap().remove(*k);
            } else {
                c[*k] = v.clone();
            }
        }
        c
    }

    async fn refused(v: &ClerkVerifier, token: &str) -> String {
        match v.verify(token).await {
            Err(AuthError::Unauthenticated(reason)) => reason,
            other => panic!("expected Unauthenticated, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn a_valid_session_token_yields_its_sub() {
        let p = verifier(&["https://chat.example.com"])
            .verify(&sign(&claims()))
            .await
            .unwrap();
        assert_eq!(p.user_id.as_str(), "user_2abc");
    }

    #[tokio::test]
    async fn a_token_without_azp_is_accepted_even_with_authorized_parties() {
        let token = sign(&with(&[("azp", Value::Null)]));
        assert!(
            verifier(&["https://chat.example.com"])
                .verify(&token)
                .await
                .is_ok()
        );
    }

    #[tokio::test]
    async fn azp_is_not_checked_when_no_parties_are_configured() {
        let token = sign(&with(&[("azp", json!("https://anything.example"))]));
        assert!(verifier(&[]).verify(&token).await.is_ok());
    }

    #[tokio::test]
    async fn an_azp_outside_the_authorized_parties_is_refused() {
        let token = sign(&with(&[("azp", json!("https://evil.example"))]));
        let reason = refused(&verifier(&["https://chat.example.com"]), &token).await;
        assert!(reason.contains("azp"), "{reason}");
    }

    #[tokio::test]
    async fn each_broken_claim_is_refused_with_its_reason() {
        let v = verifier(&[]);
        let cases: Vec<(&str, Value, &str)> = vec![
            ("expired", with(&[("exp", json!(now() - 30))]), "expired"),
            ("nbf ahead", with(&[("nbf", json!(now() + 60))]), "nbf"),
            ("iat ahead", with(&[("iat", json!(now() + 600))]), "future"),
            (
                "wrong iss",
                with(&[("iss", json!("https://evil.example"))]),
                "issuer",
            ),
            ("iss array", with(&[("iss", json!([ISSUER]))]), ""),
            ("no iss", with(&[("iss", Value::Null)]), "iss"),
            ("no sub", with(&[("sub", Value::Null)]), "sub"),
            ("empty sub", with(&[("sub", json!(""))]), "sub"),
            ("numeric sub", with(&[("sub", json!(42))]), ""),
            ("no sid", with(&[("sid", Value::Null)]), "sid"),
            ("pending", with(&[("sts", json!("pending"))]), "pending"),
            ("exp string", with(&[("exp", json!("9999999999"))]), "exp"),
            ("no exp", with(&[("exp", Value::Null)]), "exp"),
        ];
        for (name, claims, expected) in cases {
            let reason = refused(&v, &sign(&claims)).await;
            assert!(reason.contains(expected), "{name}: {reason}");
        }
    }

    #[tokio::test]
    async fn clock_skew_of_a_few_seconds_is_tolerated() {
        let token = sign(&with(&[
            ("exp", json!(now() - 2)),
            ("nbf", json!(now() + 2)),
        ]));
        assert!(verifier(&[]).verify(&token).await.is_ok());
    }

    #[tokio::test]
    async fn an_active_sts_is_accepted() {
        let token = sign(&with(&[("sts", json!("active"))]));
        assert!(verifier(&[]).verify(&token).await.is_ok());
    }

    #[tokio::test]
    async fn a_token_signed_by_another_key_is_refused() {
        let token = sign_with(&claims(), OTHER_PRIVATE);
        assert!(refused(&verifier(&[]), &token).await.contains("signature"));
    }

    #[tokio::test]
    async fn a_pem_verifier_needs_no_network_and_ignores_the_kid() {
        // The PEM verifier has no JWKS URL at all; any kid is irrelevant.
        let mut header = Header::new(Algorithm::RS256);
        header.kid = Some("whatever".into());
        let token = jsonwebtoken::encode(
            &header,
            &claims(),
            &EncodingKey::from_rsa_pem(PRIVATE.as_bytes()).unwrap(),
        )
        .unwrap();
        assert!(verifier(&[]).verify(&token).await.is_ok());
    }
}
