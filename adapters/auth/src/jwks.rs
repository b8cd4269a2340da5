//! The JWKS cache shared by the Clerk and OIDC verifiers.
//!
//! Keys are fetched on first use, kept behind a `RwLock`, and refetched when a token names
//! an unknown `kid` — at most once per `refresh_interval`, and by one task at a time (the
//! others wait for its result instead of fetching too). A failed refetch keeps the keys
//! already known, so tokens signed with them keep working while the issuer is down. Only
//! when no key set was ever obtained does a lookup answer `Unavailable`.

use std::collections::HashMap;
use std::sync::Arc;

use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, KeyAlgorithm, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey, DecodingKeyKind};
use reqwest::Url;
use serde::Deserialize;
use tokio::sync::{Mutex, RwLock};
use tokio::time::Instant;

use crate::config::{ConfigError, JwksOptions};
use crate::token::{SharedKey, VerifyingKey, acceptable_kid};

/// Where the key set is published.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum JwksSource {
    /// A known JWKS URL.
    Url(Url),
    /// An OIDC issuer: the JWKS URL is the `jwks_uri` of its discovery document, fetched
    /// (once) together with the first key set.
    Discovery {
        /// The discovery document's URL.
        discovery_url: Url,
        /// The issuer the document must name (OpenID Connect Discovery §4.3).
        issuer: String,
    },
}

/// Which keys of a set may be used, and with which algorithm. The algorithm is pinned by
/// the key's type; a key whose `alg` says otherwise, an encryption key or a symmetric
/// (`oct`) key is ignored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyPolicy {
    /// RSA keys, RS256 (Clerk).
    Rs256Only,
    /// RSA keys with RS256, P-256 keys with ES256, Ed25519 keys with EdDSA (OIDC).
    Asymmetric,
}

/// Why no key was returned.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum KeyLookupError {
    /// The key set (known, or just refetched) has no usable key with this id.
    #[error("no signing key with this kid")]
    UnknownKid,
    /// No key set was ever obtained: the issuer is unreachable or answers nonsense.
    #[error("no signing keys could be fetched: {0}")]
    Unavailable(String),
}

#[derive(Default)]
struct CacheState {
    keys: HashMap<String, SharedKey>,
    /// A key set was fetched successfully at least once.
    loaded: bool,
    /// When the last fetch (successful or not) finished.
    last_attempt: Option<Instant>,
    last_error: Option<String>,
    /// The JWKS URL, once known (from the source or the discovery document).
    jwks_url: Option<Url>,
}

/// A cache of an issuer's signing keys. One per verifier; cheap to share behind an `Arc`.
pub struct JwksCache {
    source: JwksSource,
    policy: KeyPolicy,
    options: JwksOptions,
    client: reqwest::Client,
    state: RwLock<CacheState>,
    /// Held by the one task that fetches; the others queue on it (single flight).
    flight: Mutex<()>,
}

impl std::fmt::Debug for JwksCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwksCache")
            .field("source", &self.source)
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, thiserror::Error)]
enum FetchError {
    #[error("{0}")]
    Http(String),
    #[error("{0}")]
    Document(String),
}

impl JwksCache {
    /// A cache that has fetched nothing yet: no request is made until the first lookup.
    pub fn new(
        source: JwksSource,
        policy: KeyPolicy,
        options: JwksOptions,
    ) -> Result<Self, ConfigError> {
        let client = reqwest::Client::builder()
            .connect_timeout(options.connect_timeout)
            .timeout(options.request_timeout)
            .redirect(reqwest::redirect::Policy::limited(3))
            .user_agent(concat!("confab/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| ConfigError::HttpClient(e.to_string()))?;
        let jwks_url = match &source {
            JwksSource::Url(url) => Some(url.clone()),
            JwksSource::Discovery { .. } => None,
        };
        Ok(Self {
            source,
            policy,
            options,
            client,
            state: RwLock::new(CacheState {
                jwks_url,
                ..CacheState::default()
            }),
            flight: Mutex::new(()),
        })
    }

    /// The key with this `kid`, fetching or refetching the set when it is not known.
    pub async fn key(&self, kid: &str) -> Result<SharedKey, KeyLookupError> {
        if let Some(key) = self.state.read().await.keys.get(kid) {
            return Ok(Arc::clone(key));
        }

        let _flight = self.flight.lock().await;

        // Whoever held the flight before us may have fetched what we need, or just failed.
        let jwks_url = {
            let state = self.state.read().await;
            if let Some(key) = state.keys.get(kid) {
                return Ok(Arc::clone(key));
            }
            let wait = if state.loaded {
                self.options.refresh_interval
            } else {
                self.options.cold_retry_interval
            };
            if state.last_attempt.is_some_and(|at| at.elapsed() < wait) {
                return Err(Self::miss(&state));
            }
            state.jwks_url.clone()
        };

        let fetched = self.fetch(jwks_url).await;

        let mut state = self.state.write().await;
        state.last_attempt = Some(Instant::now());
        match fetched {
            Ok((url, keys)) => {
                tracing::debug!(keys = keys.len(), "fetched the signing key set");
                state.jwks_url = Some(url);
                state.keys = keys;
                state.loaded = true;
                state.last_error = None;
                state
                    .keys
                    .get(kid)
                    .cloned()
                    .ok_or(KeyLookupError::UnknownKid)
            }
            Err(e) => {
                tracing::warn!(
                    error = %e,
                    cached_keys = state.keys.len(),
                    "fetching the signing key set failed"
                );
                state.last_error = Some(e.to_string());
                Err(Self::miss(&state))
            }
        }
    }

    fn miss(state: &CacheState) -> KeyLookupError {
        if state.loaded {
            KeyLookupError::UnknownKid
        } else {
            KeyLookupError::Unavailable(
                state
                    .last_error
                    .clone()
                    .unwrap_or_else(|| "the key set has not been fetched".into()),
            )
        }
    }

    async fn fetch(
        &self,
        known_url: Option<Url>,
    ) -> Result<(Url, HashMap<String, SharedKey>), FetchError> {
        let url = match (known_url, &self.source) {
            (Some(url), _) => url,
            (None, JwksSource::Url(url)) => url.clone(),
            (
                None,
                JwksSource::Discovery {
                    discovery_url,
                    issuer,
                },
            ) => self.discover(discovery_url, issuer).await?,
        };
        let body = self.get(&url).await?;
        let keys = parse_key_set(&body, self.policy)?;
        Ok((url, keys))
    }

    async fn discover(&self, discovery_url: &Url, issuer: &str) -> Result<Url, FetchError> {
        #[derive(Deserialize)]
        struct Discovery {
            issuer: String,
            jwks_uri: String,
        }
        let body = self.get(discovery_url).await?;
        let document: Discovery = serde_json::from_slice(&body).map_err(|e| {
            FetchError::Document(format!("the discovery document is malformed: {e}"))
        })?;
        if document.issuer != issuer {
            return Err(FetchError::Document(format!(
                "the discovery document names issuer {:?}, not the configured {:?}",
                document.issuer, issuer
            )));
        }
        let url = Url::parse(&document.jwks_uri).map_err(|e| {
            FetchError::Document(format!(
                "the discovery document's jwks_uri is not a URL: {e}"
            ))
        })?;
        if !matches!(url.scheme(), "https" | "http") {
            return Err(FetchError::Document(
                "the discovery document's jwks_uri is not an http(s) URL".into(),
            ));
        }
        Ok(url)
    }

    /// GETs a JSON document, refusing error statuses and bodies over the size limit.
    async fn get(&self, url: &Url) -> Result<Vec<u8>, FetchError> {
        let mut response = self
            .client
            .get(url.clone())
            .header(reqwest::header::ACCEPT, "application/json")
            .send()
            .await
            .map_err(|e| FetchError::Http(format!("GET {url} failed: {}", error_chain(&e))))?;
        let status = response.status();
        if !status.is_success() {
            return Err(FetchError::Http(format!("GET {url} answered {status}")));
        }
        let limit = self.options.max_document_bytes;
        if response
            .content_length()
            .is_some_and(|len| len > limit as u64)
        {
            return Err(FetchError::Document(format!(
                "{url} is larger than {limit} bytes"
            )));
        }
        let mut body = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| FetchError::Http(format!("reading {url} failed: {}", error_chain(&e))))?
        {
            if body.len() + chunk.len() > limit {
                return Err(FetchError::Document(format!(
                    "{url} is larger than {limit} bytes"
                )));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// The usable keys of a JWKS document. Keys that cannot be used are skipped one by one;
/// a set with none usable is an error (so a broken set never replaces a working one).
fn parse_key_set(body: &[u8], policy: KeyPolicy) -> Result<HashMap<String, SharedKey>, FetchError> {
    #[derive(Deserialize)]
    struct RawSet {
        keys: Vec<serde_json::Value>,
    }
    let raw: RawSet = serde_json::from_slice(body)
        .map_err(|e| FetchError::Document(format!("the JWKS is malformed: {e}")))?;
    let total = raw.keys.len();
    let mut keys = HashMap::new();
    for value in raw.keys {
        let Ok(jwk) = serde_json::from_value::<Jwk>(value) else {
            continue;
        };
        let Some((kid, key)) = usable_key(&jwk, policy) else {
            continue;
        };
        // The first of two keys with one kid wins; a second is ambiguous and ignored.
        keys.entry(kid).or_insert_with(|| Arc::new(key));
    }
    if keys.is_empty() {
        return Err(FetchError::Document(format!(
            "the JWKS has no usable signing key ({total} keys, none usable)"
        )));
    }
    Ok(keys)
}

fn usable_key(jwk: &Jwk, policy: KeyPolicy) -> Option<(String, VerifyingKey)> {
    let kid = jwk.common.key_id.as_deref().filter(|k| acceptable_kid(k))?;
    if matches!(
        jwk.common.public_key_use,
        Some(PublicKeyUse::Encryption | PublicKeyUse::Other(_))
    ) {
        return None;
    }
    let (algorithm, key) = match (&jwk.algorithm, policy) {
        (AlgorithmParameters::RSA(params), _) => {
            let key = DecodingKey::from_rsa_components(&params.n, &params.e).ok()?;
            // RS256 with less than 2048 bits is not a signature worth checking.
            let DecodingKeyKind::RsaModulusExponent { n, .. } = key.kind() else {
                return None;
            };
            if n.iter().skip_while(|b| **b == 0).count() < 256 {
                return None;
            }
            (Algorithm::RS256, key)
        }
        (AlgorithmParameters::EllipticCurve(params), KeyPolicy::Asymmetric)
            if params.curve == EllipticCurve::P256 =>
        {
            (
                Algorithm::ES256,
                DecodingKey::from_ec_components(&params.x, &params.y).ok()?,
            )
        }
        (AlgorithmParameters::OctetKeyPair(params), KeyPolicy::Asymmetric)
            if params.curve == EllipticCurve::Ed25519 =>
        {
            (
                Algorithm::EdDSA,
                DecodingKey::from_ed_components(&params.x).ok()?,
            )
        }
        _ => return None,
    };
    if let Some(declared) = jwk.common.key_algorithm {
        let agrees = matches!(
            (declared, algorithm),
            (KeyAlgorithm::RS256, Algorithm::RS256)
                | (KeyAlgorithm::ES256, Algorithm::ES256)
                | (KeyAlgorithm::EdDSA, Algorithm::EdDSA)
        );
        if !agrees {
            return None;
        }
    }
    Some((kid.to_owned(), VerifyingKey { algorithm, key }))
}

#[cfg(test)]
mod tests {

    use jsonwebtoken::EncodingKey;

    use super::*;

    const RSA_A: &str = include_str!("../../../tests/fixtures/jwt/rsa-a.pem");
    const EC_P256: &str = include_str!("../../../tests/fixtures/jwt/ec-p256.pem");

    fn rsa_jwk(kid: &str, alg: Option<&str>) -> serde_json::Value {
        crate::token::ensure_crypto_provider();
        let encoding = EncodingKey::from_rsa_pem(RSA_A.as_bytes()).unwrap();
        let mut jwk =
            serde_json::to_value(Jwk::from_encoding_key(&encoding, Algorithm::RS256).unwrap())
                .unwrap();
        jwk["kid"] = kid.into();
        match alg {
            Some(alg) => jwk["alg"] = alg.into(),
            None => {
                jwk.as_object_mut().unwrap().remove("alg");
            }
        }
        jwk
    }

    fn ec_jwk(kid: &str) -> serde_json::Value {
        crate::token::ensure_crypto_provider();
        let encoding = EncodingKey::from_ec_pem(EC_P256.as_bytes()).unwrap();
        let mut jwk =
            serde_json::to_value(Jwk::from_encoding_key(&encoding, Algorithm::ES256).unwrap())
                .unwrap();
        jwk["kid"] = kid.into();
        jwk
    }

    fn parse(
        keys: Vec<serde_json::Value>,
        policy: KeyPolicy,
    ) -> Result<HashMap<String, SharedKey>, FetchError> {
        let body = serde_json::to_vec(&serde_json::json!({ "keys": keys })).unwrap();
        parse_key_set(&body, policy)
    }

    #[test]
    fn rsa_keys_are_pinned_to_rs256_whatever_else_the_set_holds() {
        let keys = parse(
            vec![
                rsa_jwk("plain", None),
                rsa_jwk("declared", Some("RS256")),
                rsa_jwk("pss", Some("PS256")),
                rsa_jwk("rs512", Some("RS512")),
                serde_json::json!({"kty": "oct", "kid": "hmac", "k": "c2VjcmV0"}),
                serde_json::json!({"kty": "RSA", "kid": "broken", "n": "%%%", "e": "AQAB"}),
                serde_json::json!({"kty": "RSA", "kid": "small", "n": "AQAB", "e": "AQAB"}),
                serde_json::json!("not an object"),
                ec_jwk("ec"),
            ],
            KeyPolicy::Rs256Only,
        )
        .unwrap();
        let mut kids: Vec<_> = keys.keys().cloned().collect();
        kids.sort();
        assert_eq!(kids, vec!["declared", "plain"]);
        assert!(keys.values().all(|k| k.algorithm == Algorithm::RS256));
    }

    #[test]
    fn ec_keys_are_pinned_to_es256_under_the_asymmetric_policy() {
        let keys = parse(
            vec![ec_jwk("ec"), rsa_jwk("rsa", None)],
            KeyPolicy::Asymmetric,
        )
        .unwrap();
        assert_eq!(keys["ec"].algorithm, Algorithm::ES256);
        assert_eq!(keys["rsa"].algorithm, Algorithm::RS256);
    }

    #[test]
    fn encryption_keys_are_ignored() {
        let mut enc = rsa_jwk("enc", None);
        enc["use"] = "enc".into();
        assert!(parse(vec![enc], KeyPolicy::Rs256Only).is_err());
    }

    #[test]
    fn a_set_with_no_usable_key_is_an_error_not_an_empty_cache() {
        assert!(parse(vec![], KeyPolicy::Asymmetric).is_err());
        assert!(parse_key_set(b"{\"nokeys\":1}", KeyPolicy::Asymmetric).is_err());
        assert!(parse_key_set(b"<html>", KeyPolicy::Asymmetric).is_err());
    }

    #[tokio::test]
    async fn creating_a_cache_fetches_nothing_and_a_cold_unreachable_issuer_is_unavailable() {
        // Port 9 (discard) on loopback: nothing listens, the connection is refused.
        let url = Url::parse("http://127.0.0.1:9/jwks.json").unwrap();
        let cache = JwksCache::new(
            JwksSource::Url(url),
            KeyPolicy::Rs256Only,
            JwksOptions::default(),
        )
        .unwrap();
        let err = cache.key("any").await.unwrap_err();
        assert!(matches!(err, KeyLookupError::Unavailable(_)), "{err:?}");
        // Within the cold retry interval the answer comes from the cache, still Unavailable.
        let again = cache.key("any").await.unwrap_err();
        assert!(matches!(again, KeyLookupError::Unavailable(_)));
    }
}
