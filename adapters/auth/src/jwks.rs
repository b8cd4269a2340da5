//! The JWKS cache shared by the Clerk and OIDC verifiers.
//!
//! **Freshness.** Keys are fetched on first use. Every successful fetch *replaces* the whole
//! set, so a key the issuer withdrew is dropped, and stamps it with a lifetime: the `max-age`
//! of the answer's `Cache-Control`, bounded to [`MIN_MAX_AGE`]–[`MAX_MAX_AGE`] (5 min – 24 h);
//! `max-age=0`, `no-store` and `no-cache` count as the minimum, an absent or unparseable
//! `max-age` as [`DEFAULT_MAX_AGE`] (1 h).
//!
//! **Refresh is lazy: no background task.** A lookup that finds the set past its lifetime
//! refreshes it before answering. The first such lookup takes the single-flight lock
//! (`try_lock`) and fetches; lookups arriving while it fetches do not wait, they are
//! answered from the stale set. So a withdrawn key is refused from the first verification
//! after the refetch on, an idle verifier makes no requests, and there is no task to spawn,
//! tie to the verifier's lifetime or shut down (a verifier can be built outside a runtime).
//! The price is that the one request triggering a refresh waits for that fetch, which
//! `request_timeout` bounds. Should that request be cancelled (its client went away), the
//! fetch is dropped with it, nothing is recorded, and the next lookup refreshes instead.
//!
//! **Issuer unreachable.** A failed fetch never empties the cache: the last good set stays
//! in use, a warning is logged, and the next attempt waits `retry_backoff_initial`, doubling
//! with each further failure up to `retry_backoff_max`. Requests in between are served from
//! the stale set without touching the network.
//!
//! **Unknown `kid`.** A token naming a `kid` the set does not hold refetches the set — at
//! most once per `unknown_kid_refetch_interval` (and not before a failing issuer's backoff
//! has passed), by one task at a time: the others wait for its result instead of fetching.
//!
//! **Cold cache.** Only while no key set was ever obtained does a lookup answer
//! [`KeyLookupError::Unavailable`]; a failed first fetch is retried at most once per
//! `cold_retry_interval`.
//!
//! **Time** is read from [`JwksOptions::clock`], so tests move it with a
//! [`ManualClock`](confab_core::clock::ManualClock) instead of sleeping.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, KeyAlgorithm, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey, DecodingKeyKind};
use reqwest::Url;
use serde::Deserialize;
use tokio::sync::{Mutex, RwLock};

use crate::config::{ConfigError, JwksOptions};
use crate::token::{SharedKey, VerifyingKey, acceptable_kid};

/// How long a key set is used when its answer names no usable `max-age`.
pub const DEFAULT_MAX_AGE: Duration = Duration::from_secs(60 * 60);
/// The shortest lifetime a key set gets, whatever the issuer says (`max-age=0`, `no-store`).
pub const MIN_MAX_AGE: Duration = Duration::from_secs(5 * 60);
/// The longest lifetime a key set gets, whatever the issuer says.
pub const MAX_MAX_AGE: Duration = Duration::from_secs(24 * 60 * 60);

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
    /// The last key set fetched successfully (empty until one was).
    keys: HashMap<String, SharedKey>,
    /// When `keys` must be refreshed; `None` while no set was ever fetched.
    expires_at: Option<Instant>,
    /// When the last fetch (successful or not) finished.
    last_attempt: Option<Instant>,
    /// Fetches failed in a row since the last success (drives the backoff).
    failures: u32,
    last_error: Option<String>,
    /// The JWKS URL, once known (from the source or the discovery document).
    jwks_url: Option<Url>,
}

impl CacheState {
    fn loaded(&self) -> bool {
        self.expires_at.is_some()
    }
}

/// A cache of an issuer's signing keys. One per verifier; cheap to share behind an `Arc`.
pub struct JwksCache {
    source: JwksSource,
    policy: KeyPolicy,
    options: JwksOptions,
    client: reqwest::Client,
    state: RwLock<CacheState>,
    /// Held by the one task that fetches (single flight): unknown-`kid` lookups queue on it,
    /// lookups of a known key in an expiring set do not (they use the stale set meanwhile).
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

/// A key set as fetched: where from, its usable keys, and how long it may be used.
struct FetchedSet {
    url: Url,
    keys: HashMap<String, SharedKey>,
    lifetime: Duration,
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

    /// The key with this `kid`: from the cached set while it is fresh; after refreshing the
    /// set when it has expired (or from the stale set while another lookup refreshes it, or
    /// while the issuer is failing); after refetching the set when the `kid` is unknown.
    pub async fn key(&self, kid: &str) -> Result<SharedKey, KeyLookupError> {
        let stale = {
            let state = self.state.read().await;
            match state.keys.get(kid) {
                Some(key) if !self.refresh_due(&state, self.options.clock.now()) => {
                    return Ok(Arc::clone(key));
                }
                known => known.cloned(),
            }
        };
        match stale {
            Some(stale) => self.refresh_then_key(kid, stale).await,
            None => self.refetch_for_unknown_kid(kid).await,
        }
    }

    /// The set holding `kid` has expired and may be refetched: refresh it, unless another
    /// lookup is fetching already, in which case the stale key answers.
    async fn refresh_then_key(
        &self,
        kid: &str,
        stale: SharedKey,
    ) -> Result<SharedKey, KeyLookupError> {
        let Ok(_flight) = self.flight.try_lock() else {
            return Ok(stale);
        };
        let jwks_url = {
            let state = self.state.read().await;
            // The flight before ours may have refreshed the set (or failed) meanwhile.
            if !self.refresh_due(&state, self.options.clock.now()) {
                return Self::lookup(&state, kid);
            }
            state.jwks_url.clone()
        };
        self.fetch_and_store(jwks_url).await;
        Self::lookup(&*self.state.read().await, kid)
    }

    /// The `kid` is not in the cached set: refetch it if the rate limit allows, one task at
    /// a time (the others wait for its result).
    async fn refetch_for_unknown_kid(&self, kid: &str) -> Result<SharedKey, KeyLookupError> {
        let _flight = self.flight.lock().await;
        let jwks_url = {
            let state = self.state.read().await;
            // Whoever held the flight before us may have fetched what we need, or just failed.
            if let Some(key) = state.keys.get(kid) {
                return Ok(Arc::clone(key));
            }
            if !self.unknown_kid_fetch_allowed(&state, self.options.clock.now()) {
                return Err(Self::miss(&state));
            }
            state.jwks_url.clone()
        };
        self.fetch_and_store(jwks_url).await;
        Self::lookup(&*self.state.read().await, kid)
    }

    fn lookup(state: &CacheState, kid: &str) -> Result<SharedKey, KeyLookupError> {
        state
            .keys
            .get(kid)
            .cloned()
            .ok_or_else(|| Self::miss(state))
    }

    /// The cached set is past its lifetime and the backoff of earlier failures has passed.
    fn refresh_due(&self, state: &CacheState, now: Instant) -> bool {
        state.expires_at.is_some_and(|at| now >= at) && self.backoff_passed(state, now)
    }

    fn unknown_kid_fetch_allowed(&self, state: &CacheState, now: Instant) -> bool {
        let since_last = |wait: Duration| {
            state
                .last_attempt
                .is_none_or(|at| now.saturating_duration_since(at) >= wait)
        };
        if !state.loaded() {
            return since_last(self.options.cold_retry_interval);
        }
        self.refresh_due(state, now)
            || (since_last(self.options.unknown_kid_refetch_interval)
                && self.backoff_passed(state, now))
    }

    fn backoff_passed(&self, state: &CacheState, now: Instant) -> bool {
        state.last_attempt.is_none_or(|at| {
            now.saturating_duration_since(at) >= backoff(&self.options, state.failures)
        })
    }

    fn miss(state: &CacheState) -> KeyLookupError {
        if state.loaded() {
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

    /// Fetches the set and records the outcome: a new set replaces the cached one whole; a
    /// failure keeps it and counts towards the backoff. Called with the flight held.
    async fn fetch_and_store(&self, jwks_url: Option<Url>) {
        // Counted as a failed attempt before the issuer is asked: when the request driving
        // this lookup is dropped mid-fetch (its client went away), the next lookup backs off
        // instead of starting another fetch at once, so forged tokens from clients that hang
        // up cannot make the cache hammer the issuer.
        let earlier_failures = {
            let mut state = self.state.write().await;
            let earlier = state.failures;
            state.last_attempt = Some(self.options.clock.now());
            state.failures = earlier.saturating_add(1);
            earlier
        };
        let fetched = self.fetch(jwks_url).await;
        let now = self.options.clock.now();
        let mut state = self.state.write().await;
        state.last_attempt = Some(now);
        match fetched {
            Ok(set) => {
                if earlier_failures > 0 && state.loaded() {
                    tracing::info!(
                        failed_attempts = state.failures,
                        "the signing key set could be fetched again"
                    );
                }
                tracing::debug!(
                    keys = set.keys.len(),
                    lifetime_secs = set.lifetime.as_secs(),
                    "fetched the signing key set"
                );
                state.jwks_url = Some(set.url);
                state.keys = set.keys;
                state.expires_at = Some(now.checked_add(set.lifetime).unwrap_or(now));
                state.failures = 0;
                state.last_error = None;
            }
            Err(e) => {
                // (The failure was counted before the fetch.) An issuer may move its key set:
                // after two failures in a row the next attempt reads its discovery document
                // again instead of insisting on the old address.
                if matches!(self.source, JwksSource::Discovery { .. }) && state.failures >= 2 {
                    state.jwks_url = None;
                }
                if state.loaded() {
                    tracing::warn!(
                        error = %e,
                        cached_keys = state.keys.len(),
                        retry_in_secs = backoff(&self.options, state.failures).as_secs(),
                        "refreshing the signing key set failed; the cached keys stay in use"
                    );
                } else {
                    tracing::warn!(
                        error = %e,
                        retry_in_secs = self.options.cold_retry_interval.as_secs(),
                        "fetching the signing key set failed; no key is known yet"
                    );
                }
                state.last_error = Some(e.to_string());
            }
        }
    }

    async fn fetch(&self, known_url: Option<Url>) -> Result<FetchedSet, FetchError> {
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
        let (body, headers) = self.get(&url).await?;
        let keys = parse_key_set(&body, self.policy)?;
        let lifetime = key_set_lifetime(
            headers
                .get_all(reqwest::header::CACHE_CONTROL)
                .iter()
                .filter_map(|value| value.to_str().ok()),
        );
        Ok(FetchedSet {
            url,
            keys,
            lifetime,
        })
    }

    async fn discover(&self, discovery_url: &Url, issuer: &str) -> Result<Url, FetchError> {
        #[derive(Deserialize)]
        struct Discovery {
            issuer: String,
            jwks_uri: String,
        }
        let (body, _) = self.get(discovery_url).await?;
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

    /// GETs a JSON document, refusing error statuses and bodies over the size limit; the
    /// body with the answer's headers.
    async fn get(&self, url: &Url) -> Result<(Vec<u8>, reqwest::header::HeaderMap), FetchError> {
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
        let headers = response.headers().clone();
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
        Ok((body, headers))
    }
}

/// How long to wait after the `failures`-th failed fetch in a row before the next attempt:
/// `retry_backoff_initial`, doubling with each failure, at most `retry_backoff_max`.
fn backoff(options: &JwksOptions, failures: u32) -> Duration {
    if failures == 0 {
        return Duration::ZERO;
    }
    let factor = 1u32.checked_shl(failures - 1).unwrap_or(u32::MAX);
    options
        .retry_backoff_initial
        .saturating_mul(factor)
        .min(options.retry_backoff_max)
}

/// How long a key set may be used, from the `Cache-Control` values of its answer:
/// `max-age` bounded to [`MIN_MAX_AGE`]–[`MAX_MAX_AGE`]; `no-store` or `no-cache` (the issuer
/// wants no reuse at all) the minimum; no usable `max-age` [`DEFAULT_MAX_AGE`]. Of two
/// `max-age` directives the shorter counts.
fn key_set_lifetime<'a>(cache_control: impl IntoIterator<Item = &'a str>) -> Duration {
    let mut max_age: Option<u64> = None;
    for value in cache_control {
        for directive in value.split(',') {
            let (name, argument) = match directive.split_once('=') {
                Some((name, argument)) => (name.trim(), Some(argument.trim())),
                None => (directive.trim(), None),
            };
            if name.eq_ignore_ascii_case("no-store")
                || (name.eq_ignore_ascii_case("no-cache") && argument.is_none())
            {
                return MIN_MAX_AGE;
            }
            if name.eq_ignore_ascii_case("max-age")
                && let Some(seconds) = argument.and_then(delta_seconds)
            {
                max_age = Some(max_age.map_or(seconds, |earlier| earlier.min(seconds)));
            }
        }
    }
    max_age.map_or(DEFAULT_MAX_AGE, |seconds| {
        Duration::from_secs(seconds).clamp(MIN_MAX_AGE, MAX_MAX_AGE)
    })
}

/// RFC 9111 `delta-seconds` (digits only, quotes tolerated); a number too large for `u64`
/// counts as the largest one, as §1.2.2 asks.
fn delta_seconds(argument: &str) -> Option<u64> {
    let digits = argument
        .strip_prefix('"')
        .and_then(|quoted| quoted.strip_suffix('"'))
        .unwrap_or(argument);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(digits.parse().unwrap_or(u64::MAX))
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

    #[test]
    fn the_lifetime_is_the_bounded_max_age_of_the_answer() {
        let lifetime = |values: &[&str]| key_set_lifetime(values.iter().copied());
        let minutes = |m: u64| Duration::from_secs(m * 60);
        assert_eq!(lifetime(&["max-age=600"]), minutes(10));
        assert_eq!(
            lifetime(&["public, max-age=900, must-revalidate"]),
            minutes(15)
        );
        assert_eq!(lifetime(&["Max-Age = \"1200\""]), minutes(20));
        // Bounded to 5 min – 24 h.
        assert_eq!(lifetime(&["max-age=0"]), MIN_MAX_AGE);
        assert_eq!(lifetime(&["max-age=299"]), MIN_MAX_AGE);
        assert_eq!(lifetime(&["max-age=86401"]), MAX_MAX_AGE);
        assert_eq!(lifetime(&["max-age=999999999999999999999999"]), MAX_MAX_AGE);
        // The issuer wants no reuse: as often as the bound allows.
        assert_eq!(lifetime(&["no-store"]), MIN_MAX_AGE);
        assert_eq!(lifetime(&["max-age=3600, no-store"]), MIN_MAX_AGE);
        assert_eq!(lifetime(&["no-cache"]), MIN_MAX_AGE);
        // Absent or unparseable: the default hour.
        assert_eq!(lifetime(&[]), DEFAULT_MAX_AGE);
        assert_eq!(lifetime(&["public"]), DEFAULT_MAX_AGE);
        assert_eq!(lifetime(&["max-age=banana"]), DEFAULT_MAX_AGE);
        assert_eq!(lifetime(&["max-age=-5"]), DEFAULT_MAX_AGE);
        assert_eq!(lifetime(&["max-age="]), DEFAULT_MAX_AGE);
        assert_eq!(lifetime(&["max-age"]), DEFAULT_MAX_AGE);
        assert_eq!(lifetime(&["no-cache=\"Set-Cookie\""]), DEFAULT_MAX_AGE);
        // Two directives, in one header or two: the shorter counts.
        assert_eq!(lifetime(&["max-age=7200", "max-age=1800"]), minutes(30));
        assert_eq!(lifetime(&["max-age=1800, max-age=7200"]), minutes(30));
    }

    #[test]
    fn the_retry_backoff_doubles_up_to_its_maximum() {
        let options = JwksOptions {
            retry_backoff_initial: Duration::from_secs(30),
            retry_backoff_max: Duration::from_secs(600),
            ..JwksOptions::default()
        };
        let waits: Vec<u64> = (0..8).map(|n| backoff(&options, n).as_secs()).collect();
        assert_eq!(waits, vec![0, 30, 60, 120, 240, 480, 600, 600]);
        assert_eq!(backoff(&options, u32::MAX), Duration::from_secs(600));
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
