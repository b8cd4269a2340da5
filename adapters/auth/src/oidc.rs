//! Tokens of any OpenID Connect issuer (Auth0, Keycloak, Zitadel, Okta, …), verified
//! through the same [`JwksCache`] as Clerk's.

use async_trait::async_trait;
use confab_core::ports::AuthVerifier;
use confab_core::{AuthError, Principal};
use jsonwebtoken::Validation;
use serde::Deserialize;

use crate::config::{ConfigError, JwksOptions, OidcConfig};
use crate::jwks::{JwksCache, JwksSource, KeyLookupError, KeyPolicy};
use crate::token::{
    acceptable_kid, base_validation, check_issued_at, decode_claims, ensure_crypto_provider,
    precheck, principal, unauthenticated,
};

/// Verifies an OIDC issuer's JWTs:
/// - the key is chosen by `kid` from the issuer's JWKS (`OIDC_JWKS_URL`, or the `jwks_uri`
///   of the discovery document, fetched lazily with the first key set);
/// - the algorithm is pinned by the key's type: RS256 for RSA, ES256 for P-256, EdDSA for
///   Ed25519 — never `none` or HS*;
/// - `exp` required, `nbf` checked, 5 s of skew; `iss` equal to the configured issuer;
/// - `aud` must contain the configured audience (required when one is configured);
/// - `sub` required and a valid `UserId`.
pub struct OidcVerifier {
    cache: JwksCache,
    issuer: String,
    audience: Option<String>,
    validation: Validation,
}

impl std::fmt::Debug for OidcVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OidcVerifier")
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .field("cache", &self.cache)
            .finish()
    }
}

#[derive(Deserialize)]
struct OidcClaims {
    iss: Option<String>,
    sub: Option<String>,
    iat: Option<f64>,
}

impl OidcVerifier {
    /// A verifier for the configured issuer, with the default key-fetching options.
    /// Makes no network request: discovery and JWKS are fetched on first use.
    pub fn new(config: &OidcConfig) -> Result<Self, ConfigError> {
        Self::with_options(config, JwksOptions::default())
    }

    /// As [`OidcVerifier::new`], with explicit key-fetching options (tests shorten them).
    pub fn with_options(config: &OidcConfig, options: JwksOptions) -> Result<Self, ConfigError> {
        ensure_crypto_provider();
        let settings = config.resolve()?;
        let source = match settings.jwks_url {
            Some(url) => JwksSource::Url(url),
            None => JwksSource::Discovery {
                discovery_url: settings.discovery_url,
                issuer: settings.issuer.clone(),
            },
        };
        if settings.audience.is_none() {
            tracing::warn!(
                issuer = %settings.issuer,
                "OIDC_AUDIENCE is not set: tokens this issuer made for any audience are accepted"
            );
        }
        // The algorithm placeholder is replaced by the key's pinned one at each decode.
        let mut validation = base_validation(jsonwebtoken::Algorithm::RS256);
        validation.set_issuer(&[settings.issuer.as_str()]);
        match &settings.audience {
            Some(audience) => {
                validation.validate_aud = true;
                validation.set_audience(&[audience.as_str()]);
                validation.set_required_spec_claims(&["exp", "iss", "sub", "aud"]);
            }
            None => validation.set_required_spec_claims(&["exp", "iss", "sub"]),
        }
        Ok(Self {
            cache: JwksCache::new(source, KeyPolicy::Asymmetric, options)?,
            issuer: settings.issuer,
            audience: settings.audience,
            validation,
        })
    }

    /// The issuer every token's `iss` must equal.
    #[must_use]
    pub fn issuer(&self) -> &str {
        &self.issuer
    }
}

#[async_trait]
impl AuthVerifier for OidcVerifier {
    async fn verify(&self, token: &str) -> Result<Principal, AuthError> {
        let header = precheck(token)?;
        let kid = header
            .kid
            .as_deref()
            .ok_or_else(|| unauthenticated("token has no kid"))?;
        if !acceptable_kid(kid) {
            return Err(unauthenticated("unacceptable kid"));
        }
        let key = self.cache.key(kid).await.map_err(|e| match e {
            KeyLookupError::UnknownKid => unauthenticated("unknown signing key"),
            KeyLookupError::Unavailable(reason) => AuthError::Unavailable(reason),
        })?;
        if header.alg != key.algorithm {
            return Err(unauthenticated("algorithm not allowed for this key"));
        }
        let claims: OidcClaims = decode_claims(token, &key, &self.validation)?;
        if claims.iss.as_deref() != Some(self.issuer.as_str()) {
            return Err(unauthenticated("wrong issuer"));
        }
        check_issued_at(claims.iat)?;
        principal(claims.sub)
    }
}
