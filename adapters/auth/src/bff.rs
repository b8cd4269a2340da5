//! OpenID Connect sign-in in the browser, as a backend-for-frontend (the "BFF" pattern of
//! the IETF "OAuth 2.0 for Browser-Based Applications" BCP; docs/security.md says why).
//!
//! `confab` is a confidential client of the issuer. It runs the authorization code flow with
//! PKCE (S256), `state` and `nonce`:
//! - [`OidcSignIn::begin`]: fresh random `state`, `nonce` and PKCE verifier, kept in a
//!   short-lived (10 min) *flow* value the server signs (the route puts it in an HttpOnly
//!   cookie), and the provider's authorization URL;
//! - [`OidcSignIn::finish`]: the callback's `state` must equal the flow's (constant-time),
//!   the callback's `iss` (RFC 9207), when given, must be the issuer; the code is exchanged
//!   at the token endpoint (client secret, PKCE verifier); the ID token's signature is
//!   checked with the issuer's JWKS (the [`JwksCache`] the bearer verifier uses), and its
//!   `iss`, `aud` (the client id), `azp`, `exp`, `iat` and `nonce`. The result is a
//!   *session* value (signed, `CONFAB_SESSION_TTL_SECS` long) naming the subject, display
//!   name and e-mail; the route puts it in an HttpOnly SameSite=Lax cookie.
//! - [`OidcSignIn::access_token`]: from a session, a short-lived bearer token
//!   ([`ACCESS_TTL`]) the client sends to the API like any other; renewal is asking again.
//! - [`OidcSignIn::sign_out`]: revokes the session (and its bearer tokens) and gives the
//!   provider's `end_session_endpoint` URL when the issuer offers one.
//!
//! The session and bearer tokens are HS256 JWTs under `CONFAB_OIDC_SESSION_SECRET`, each
//! with a `typ` (`flow`, `session`, `access`) so that one can never stand for another.
//! Revocations are kept in the database ([`AccountStore::revoke_browser_session`]) until
//! the session would have expired anyway, so that a sign-out on one replica holds on every
//! other: each replica asks the store whether a session was signed out, and trusts the
//! answer "not signed out" for at most [`REVOCATION_CACHE`] (at once in the replica that
//! signed it out). The store unreachable: the session is refused as unavailable (503).
//!
//! [`OidcSignIn`] is also the [`AuthVerifier`] of `CONFAB_AUTH=oidc`: its own bearer tokens,
//! and (through [`OidcVerifier`]) the issuer's access tokens, as before.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use base64::Engine as _;
use chrono::{DateTime, TimeZone, Utc};
use confab_core::accounts::AccountStore;
use confab_core::ports::AuthVerifier;
use confab_core::{AuthError, Principal, UserId};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use reqwest::Url;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tokio::sync::RwLock;
use uuid::Uuid;

use crate::config::{ConfigError, JwksOptions, OidcConfig};
use crate::jwks::{JwksCache, JwksSource, KeyLookupError, KeyPolicy};
use crate::oidc::OidcVerifier;
use crate::token::{
    VerifyingKey, acceptable_kid, base_validation, check_issued_at, decode_claims,
    ensure_crypto_provider, precheck, unauthenticated,
};

/// The `iss` of the session values and bearer tokens `confab` signs in OIDC mode.
pub const SESSION_ISSUER: &str = "confab-oidc";
/// How long a sign-in at the provider may take (the flow value's lifetime).
pub const FLOW_TTL: Duration = Duration::from_secs(10 * 60);
/// Lifetime of a bearer token obtained from the session.
pub const ACCESS_TTL: Duration = Duration::from_secs(10 * 60);
/// How long a replica trusts "this session was not signed out" without asking the store:
/// a sign-out on another replica holds here within this window.
pub const REVOCATION_CACHE: Duration = Duration::from_secs(2);

/// Settings of the browser sign-in (`CONFAB_AUTH=oidc` with a client id).
#[derive(Clone, Debug)]
pub struct OidcClientConfig {
    /// The issuer (and the bearer-token settings): `OIDC_ISSUER`, `OIDC_JWKS_URL`, `OIDC_AUDIENCE`.
    pub issuer: OidcConfig,
    /// `OIDC_CLIENT_ID`.
    pub client_id: String,
    /// `OIDC_CLIENT_SECRET`.
    pub client_secret: SecretString,
    /// `OIDC_SCOPES` (space-separated; must hold `openid`).
    pub scopes: String,
    /// `CONFAB_OIDC_SESSION_SECRET`: signs sessions and bearer tokens; at least 32 bytes.
    /// `None`: random per start.
    pub secret: Option<SecretString>,
    /// `CONFAB_SESSION_TTL_SECS`.
    pub session_ttl: Duration,
    /// Fetching the discovery document, the key set and the token endpoint.
    pub http: JwksOptions,
}

/// Why a sign-in failed. [`code`](Self::code) is what the browser is told.
#[derive(Debug, thiserror::Error)]
pub enum OidcFlowError {
    /// The provider answered with an `error` parameter (the user cancelled, …).
    #[error("the provider refused: {0}")]
    Provider(String),
    /// No flow, an expired one, or a `state` that is not the flow's.
    #[error("state mismatch or no sign-in in progress")]
    State,
    /// The callback or the ID token names another issuer.
    #[error("wrong issuer")]
    Issuer,
    /// The token endpoint refused the code (used already, expired, wrong verifier).
    #[error("code exchange refused: {0}")]
    Exchange(String),
    /// The ID token is not valid (signature, audience, expiry, …).
    #[error("invalid ID token: {0}")]
    IdToken(String),
    /// The ID token's `nonce` is not the flow's.
    #[error("nonce mismatch")]
    Nonce,
    /// The provider could not be reached, or answered nonsense.
    #[error("provider unavailable: {0}")]
    Unavailable(String),
    #[error("internal error: {0}")]
    Internal(String),
}

impl OidcFlowError {
    /// A stable code for `/?sign_in_error=…`.
    #[must_use]
    pub const fn code(&self) -> &'static str {
        match self {
            Self::Provider(_) => "provider_error",
            Self::State => "state_mismatch",
            Self::Issuer => "wrong_issuer",
            Self::Exchange(_) => "code_rejected",
            Self::IdToken(_) => "invalid_id_token",
            Self::Nonce => "nonce_mismatch",
            Self::Unavailable(_) => "provider_unavailable",
            Self::Internal(_) => "internal_error",
        }
    }
}

/// What the callback received.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct Callback {
    pub code: Option<String>,
    pub state: Option<String>,
    pub iss: Option<String>,
    pub error: Option<String>,
    pub error_description: Option<String>,
}

/// A started sign-in: where to send the browser, and the flow value to keep until the callback.
#[derive(Debug)]
pub struct Started {
    pub authorization_url: String,
    pub flow: String,
}

/// A signed-in browser session.
#[derive(Debug)]
pub struct SignedIn {
    /// The session value (for the session cookie).
    pub session: String,
    pub expires_at: DateTime<Utc>,
    pub user_id: String,
    pub name: Option<String>,
    pub email: Option<String>,
}

/// Who a bearer token names, with what the ID token said of them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Identity {
    pub name: Option<String>,
    pub email: Option<String>,
}

#[derive(Clone, Debug, Deserialize)]
struct Discovery {
    issuer: String,
    authorization_endpoint: String,
    token_endpoint: String,
    end_session_endpoint: Option<String>,
}

#[derive(Serialize, Deserialize)]
struct FlowClaims {
    typ: String,
    exp: i64,
    state: String,
    nonce: String,
    verifier: String,
    redirect_uri: String,
}

#[derive(Serialize, Deserialize)]
struct SessionClaims {
    typ: String,
    iss: String,
    sub: String,
    sid: Uuid,
    exp: i64,
    iat: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    email: Option<String>,
    /// The ID token, as `id_token_hint` of the provider's sign-out (session values only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    idt: Option<String>,
}

#[derive(Deserialize)]
struct TokenResponse {
    id_token: Option<String>,
}

#[derive(Deserialize)]
struct IdTokenClaims {
    iss: Option<String>,
    sub: Option<String>,
    iat: Option<f64>,
    nonce: Option<String>,
    azp: Option<String>,
    #[serde(default)]
    aud: Audience,
    name: Option<String>,
    preferred_username: Option<String>,
    email: Option<String>,
}

#[derive(Default, Deserialize)]
#[serde(untagged)]
enum Audience {
    #[default]
    None,
    Many(Vec<String>),
    One(serde::de::IgnoredAny),
}

impl Audience {
    fn len(&self) -> usize {
        match self {
            Self::None => 0,
            Self::One(_) => 1,
            Self::Many(all) => all.len(),
        }
    }
}

/// The browser sign-in of an OIDC issuer, and the verifier of `CONFAB_AUTH=oidc`.
pub struct OidcSignIn {
    bearer: OidcVerifier,
    issuer: String,
    discovery_url: Url,
    client_id: String,
    client_secret: SecretString,
    scopes: String,
    session_ttl: Duration,
    encoding: EncodingKey,
    key: VerifyingKey,
    jwks: JwksCache,
    http: reqwest::Client,
    discovery: RwLock<Option<Discovery>>,
    /// Where signed-out sessions are kept (shared by every replica).
    store: Arc<dyn AccountStore>,
    /// Session id → (when the store was asked, whether it was signed out).
    revoked: Mutex<HashMap<Uuid, (Instant, bool)>>,
}

impl std::fmt::Debug for OidcSignIn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OidcSignIn")
            .field("issuer", &self.issuer)
            .field("client_id", &self.client_id)
            .finish_non_exhaustive()
    }
}

fn random_b64(bytes: usize) -> Result<String, OidcFlowError> {
    let mut buf = vec![0u8; bytes];
    getrandom::fill(&mut buf).map_err(|e| OidcFlowError::Internal(format!("no random: {e}")))?;
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(buf))
}

/// Equal strings, compared in time independent of where they differ.
fn same(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn secs(d: Duration) -> i64 {
    i64::try_from(d.as_secs()).unwrap_or(i64::MAX)
}

impl OidcSignIn {
    /// Checks the settings. Makes no network request: discovery happens on first use.
    /// Sign-outs are kept in `store`.
    pub fn new(
        config: &OidcClientConfig,
        store: Arc<dyn AccountStore>,
    ) -> Result<Self, ConfigError> {
        ensure_crypto_provider();
        let invalid = |variable, reason: &str| ConfigError::Invalid {
            variable,
            reason: reason.to_owned(),
        };
        let settings = config.issuer.resolve()?;
        if config.client_id.trim().is_empty() {
            return Err(ConfigError::Missing {
                variable: "OIDC_CLIENT_ID",
                hint: "the browser sign-in needs the client registered at the provider",
            });
        }
        if config.client_secret.expose_secret().is_empty() {
            return Err(ConfigError::Missing {
                variable: "OIDC_CLIENT_SECRET",
                hint: "confab signs in as a confidential client",
            });
        }
        if !config.scopes.split_whitespace().any(|s| s == "openid") {
            return Err(invalid("OIDC_SCOPES", "must contain openid"));
        }
        let secret: Vec<u8> = match &config.secret {
            Some(s) if s.expose_secret().len() < 32 => {
                return Err(invalid(
                    "CONFAB_OIDC_SESSION_SECRET",
                    "must be at least 32 bytes long",
                ));
            }
            Some(s) => s.expose_secret().as_bytes().to_vec(),
            None => {
                let mut key = vec![0u8; 32];
                getrandom::fill(&mut key)
                    .map_err(|_| invalid("CONFAB_OIDC_SESSION_SECRET", "no random key"))?;
                key
            }
        };
        if config.session_ttl < Duration::from_secs(60)
            || config.session_ttl > Duration::from_secs(30 * 24 * 3600)
        {
            return Err(invalid(
                "CONFAB_SESSION_TTL_SECS",
                "must be between 60 seconds and 30 days",
            ));
        }
        let http = reqwest::Client::builder()
            .connect_timeout(config.http.connect_timeout)
            .timeout(config.http.request_timeout)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("confab/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| ConfigError::HttpClient(e.to_string()))?;
        let source = match settings.jwks_url.clone() {
            Some(url) => JwksSource::Url(url),
            None => JwksSource::Discovery {
                discovery_url: settings.discovery_url.clone(),
                issuer: settings.issuer.clone(),
            },
        };
        Ok(Self {
            bearer: OidcVerifier::with_options(&config.issuer, config.http.clone())?,
            jwks: JwksCache::new(source, KeyPolicy::Asymmetric, config.http.clone())?,
            issuer: settings.issuer,
            discovery_url: settings.discovery_url,
            client_id: config.client_id.trim().to_owned(),
            client_secret: config.client_secret.clone(),
            scopes: config
                .scopes
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" "),
            session_ttl: config.session_ttl,
            encoding: EncodingKey::from_secret(&secret),
            key: VerifyingKey {
                algorithm: Algorithm::HS256,
                key: DecodingKey::from_secret(&secret),
            },
            http,
            discovery: RwLock::new(None),
            store,
            revoked: Mutex::new(HashMap::new()),
        })
    }

    /// The issuer.
    #[must_use]
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    async fn discovery(&self) -> Result<Discovery, OidcFlowError> {
        if let Some(found) = self.discovery.read().await.as_ref() {
            return Ok(found.clone());
        }
        let unavailable = |e: String| OidcFlowError::Unavailable(e);
        let response = self
            .http
            .get(self.discovery_url.clone())
            .send()
            .await
            .map_err(|e| unavailable(format!("discovery: {e}")))?;
        if !response.status().is_success() {
            return Err(unavailable(format!(
                "discovery: HTTP {}",
                response.status()
            )));
        }
        let found: Discovery = response
            .json()
            .await
            .map_err(|e| unavailable(format!("discovery document: {e}")))?;
        // OpenID Connect Discovery §4.3: the document must name the configured issuer.
        if found.issuer != self.issuer {
            tracing::warn!(expected = %self.issuer, named = %found.issuer,
                "the discovery document names another issuer");
            return Err(OidcFlowError::Issuer);
        }
        for url in [&found.authorization_endpoint, &found.token_endpoint] {
            Url::parse(url).map_err(|e| unavailable(format!("discovery: bad endpoint: {e}")))?;
        }
        *self.discovery.write().await = Some(found.clone());
        Ok(found)
    }

    fn sign<T: Serialize>(&self, claims: &T) -> Result<String, OidcFlowError> {
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), claims, &self.encoding)
            .map_err(|e| OidcFlowError::Internal(format!("signing: {e}")))
    }

    fn validation(&self, issuer: Option<&str>) -> Validation {
        let mut validation = base_validation(Algorithm::HS256);
        if let Some(issuer) = issuer {
            validation.set_issuer(&[issuer]);
            validation.set_required_spec_claims(&["exp", "iss", "sub"]);
        }
        validation
    }

    /// Starts a sign-in that returns to `redirect_uri` (this server's callback).
    pub async fn begin(&self, redirect_uri: &str) -> Result<Started, OidcFlowError> {
        let discovery = self.discovery().await?;
        let state = random_b64(32)?;
        let nonce = random_b64(32)?;
        let verifier = random_b64(32)?;
        let challenge = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(Sha256::digest(verifier.as_bytes()));
        let mut url = Url::parse(&discovery.authorization_endpoint)
            .map_err(|e| OidcFlowError::Unavailable(e.to_string()))?;
        url.query_pairs_mut()
            .append_pair("response_type", "code")
            .append_pair("client_id", &self.client_id)
            .append_pair("redirect_uri", redirect_uri)
            .append_pair("scope", &self.scopes)
            .append_pair("state", &state)
            .append_pair("nonce", &nonce)
            .append_pair("code_challenge", &challenge)
            .append_pair("code_challenge_method", "S256");
        let flow = self.sign(&FlowClaims {
            typ: "flow".to_owned(),
            exp: Utc::now().timestamp() + secs(FLOW_TTL),
            state,
            nonce,
            verifier,
            redirect_uri: redirect_uri.to_owned(),
        })?;
        Ok(Started {
            authorization_url: url.to_string(),
            flow,
        })
    }

    /// Completes a sign-in: `flow` is the value [`begin`](Self::begin) gave (from the
    /// cookie), `callback` the provider's answer.
    pub async fn finish(
        &self,
        flow: Option<&str>,
        callback: &Callback,
    ) -> Result<SignedIn, OidcFlowError> {
        if let Some(error) = &callback.error {
            let description = callback.error_description.as_deref().unwrap_or_default();
            return Err(OidcFlowError::Provider(format!("{error} {description}")));
        }
        let flow: FlowClaims = flow
            .and_then(|f| decode_claims(f, &self.key, &self.validation(None)).ok())
            .filter(|f: &FlowClaims| f.typ == "flow")
            .ok_or(OidcFlowError::State)?;
        let state = callback.state.as_deref().ok_or(OidcFlowError::State)?;
        if !same(state, &flow.state) {
            return Err(OidcFlowError::State);
        }
        if callback
            .iss
            .as_deref()
            .is_some_and(|iss| iss != self.issuer)
        {
            return Err(OidcFlowError::Issuer);
        }
        let code = callback
            .code
            .as_deref()
            .ok_or_else(|| OidcFlowError::Provider("no code".to_owned()))?;
        let discovery = self.discovery().await?;
        let body = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("grant_type", "authorization_code")
            .append_pair("code", code)
            .append_pair("redirect_uri", &flow.redirect_uri)
            .append_pair("code_verifier", &flow.verifier)
            .finish();
        // client_secret_basic: both parts form-encoded first (RFC 6749 §2.3.1).
        let encode =
            |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
        let response = self
            .http
            .post(&discovery.token_endpoint)
            .basic_auth(
                encode(&self.client_id),
                Some(encode(self.client_secret.expose_secret())),
            )
            .header("content-type", "application/x-www-form-urlencoded")
            .header("accept", "application/json")
            .body(body)
            .send()
            .await
            .map_err(|e| OidcFlowError::Unavailable(format!("token endpoint: {e}")))?;
        let status = response.status();
        if !status.is_success() {
            let text = response.text().await.unwrap_or_default();
            let error = serde_json::from_str::<serde_json::Value>(&text)
                .ok()
                .and_then(|v| v["error"].as_str().map(str::to_owned))
                .unwrap_or_else(|| format!("HTTP {status}"));
            return Err(OidcFlowError::Exchange(error));
        }
        let tokens: TokenResponse = response
            .json()
            .await
            .map_err(|e| OidcFlowError::Exchange(format!("unreadable answer: {e}")))?;
        let id_token = tokens
            .id_token
            .ok_or_else(|| OidcFlowError::Exchange("no id_token".to_owned()))?;
        let claims = self.verify_id_token(&id_token).await?;
        match claims.nonce.as_deref() {
            Some(nonce) if same(nonce, &flow.nonce) => {}
            _ => return Err(OidcFlowError::Nonce),
        }
        let sub = claims
            .sub
            .ok_or_else(|| OidcFlowError::IdToken("no sub".to_owned()))?;
        UserId::new(sub.clone()).map_err(|e| OidcFlowError::IdToken(format!("sub: {e}")))?;
        let now = Utc::now().timestamp();
        let exp = now + secs(self.session_ttl);
        let name = claims.name.or(claims.preferred_username);
        let session = self.sign(&SessionClaims {
            typ: "session".to_owned(),
            iss: SESSION_ISSUER.to_owned(),
            sub: sub.clone(),
            sid: Uuid::now_v7(),
            exp,
            iat: now,
            name: name.clone(),
            email: claims.email.clone(),
            idt: Some(id_token),
        })?;
        Ok(SignedIn {
            session,
            expires_at: Utc.timestamp_opt(exp, 0).single().unwrap_or_default(),
            user_id: sub,
            name,
            email: claims.email,
        })
    }

    async fn verify_id_token(&self, token: &str) -> Result<IdTokenClaims, OidcFlowError> {
        let bad = |e: AuthError| OidcFlowError::IdToken(e.to_string());
        let header = precheck(token).map_err(bad)?;
        let kid = header.kid.as_deref().unwrap_or_default();
        if !acceptable_kid(kid) {
            return Err(OidcFlowError::IdToken("no usable kid".to_owned()));
        }
        let key = self.jwks.key(kid).await.map_err(|e| match e {
            KeyLookupError::UnknownKid => OidcFlowError::IdToken("unknown signing key".to_owned()),
            KeyLookupError::Unavailable(why) => OidcFlowError::Unavailable(why),
        })?;
        if header.alg != key.algorithm {
            return Err(OidcFlowError::IdToken("algorithm not allowed".to_owned()));
        }
        let mut validation = base_validation(key.algorithm);
        validation.validate_aud = true;
        validation.set_audience(&[self.client_id.as_str()]);
        validation.set_required_spec_claims(&["exp", "iss", "sub", "aud"]);
        // The issuer is compared below, to tell a wrong issuer from a bad token.
        let claims: IdTokenClaims = decode_claims(token, &key, &validation).map_err(bad)?;
        if claims.iss.as_deref() != Some(self.issuer.as_str()) {
            return Err(OidcFlowError::Issuer);
        }
        check_issued_at(claims.iat).map_err(bad)?;
        if claims.aud.len() > 1 && claims.azp.as_deref() != Some(self.client_id.as_str()) {
            return Err(OidcFlowError::IdToken("azp is not this client".to_owned()));
        }
        Ok(claims)
    }

    /// The claims of a session value or bearer token of ours, signature and kind checked
    /// (not whether it was signed out: see [`session_claims`](Self::session_claims)).
    fn decode_session(&self, value: &str, typ: &str) -> Result<SessionClaims, AuthError> {
        precheck(value)?;
        let claims: SessionClaims =
            decode_claims(value, &self.key, &self.validation(Some(SESSION_ISSUER)))?;
        if claims.typ != typ {
            return Err(unauthenticated("not a token of this kind"));
        }
        Ok(claims)
    }

    /// As [`decode_session`](Self::decode_session), and refused once signed out on any replica.
    async fn session_claims(&self, value: &str, typ: &str) -> Result<SessionClaims, AuthError> {
        let claims = self.decode_session(value, typ)?;
        if self.signed_out(claims.sid).await? {
            return Err(unauthenticated("signed out"));
        }
        Ok(claims)
    }

    /// Whether the session was signed out: the store's answer, cached for at most
    /// [`REVOCATION_CACHE`] ("signed out" is final, and kept until the entry is purged).
    async fn signed_out(&self, sid: Uuid) -> Result<bool, AuthError> {
        let cached = self
            .revoked
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&sid)
            .copied();
        match cached {
            Some((_, true)) => return Ok(true),
            Some((at, false)) if at.elapsed() < REVOCATION_CACHE => return Ok(false),
            _ => {}
        }
        let revoked = self
            .store
            .browser_session_revoked(sid, Utc::now())
            .await
            .map_err(|e| AuthError::Unavailable(e.to_string()))?;
        self.remember(sid, revoked);
        Ok(revoked)
    }

    fn remember(&self, sid: Uuid, revoked: bool) {
        let mut cache = self.revoked.lock().unwrap_or_else(PoisonError::into_inner);
        if cache.len() > 100_000 {
            // Signed-out entries are dropped too: the store still knows them.
            cache.retain(|_, (at, _)| at.elapsed() < REVOCATION_CACHE);
        }
        cache.insert(sid, (Instant::now(), revoked));
    }

    /// A bearer token for the session (the session cookie's value), and when it expires.
    pub async fn access_token(&self, session: &str) -> Result<(String, DateTime<Utc>), AuthError> {
        let claims = self.session_claims(session, "session").await?;
        let now = Utc::now().timestamp();
        let exp = (now + secs(ACCESS_TTL)).min(claims.exp);
        let token = self
            .sign(&SessionClaims {
                typ: "access".to_owned(),
                iat: now,
                exp,
                idt: None,
                ..claims
            })
            .map_err(|e| AuthError::Unavailable(e.to_string()))?;
        Ok((
            token,
            Utc.timestamp_opt(exp, 0).single().unwrap_or_default(),
        ))
    }

    /// Ends the session (its bearer tokens too, on every replica: the sign-out is stored)
    /// and, when the issuer offers one, gives its `end_session_endpoint` URL returning to
    /// `post_logout_redirect_uri`. `Err` when the sign-out could not be stored.
    pub async fn sign_out(
        &self,
        session: Option<&str>,
        post_logout_redirect_uri: &str,
    ) -> Result<Option<String>, AuthError> {
        let Some(claims) = session.and_then(|s| self.decode_session(s, "session").ok()) else {
            return Ok(None);
        };
        let expires_at = Utc
            .timestamp_opt(claims.exp, 0)
            .single()
            .unwrap_or_else(|| Utc::now() + chrono::Duration::seconds(secs(self.session_ttl)));
        self.store
            .revoke_browser_session(claims.sid, expires_at, Utc::now())
            .await
            .map_err(|e| AuthError::Unavailable(e.to_string()))?;
        self.remember(claims.sid, true);
        let Ok(discovery) = self.discovery().await else {
            return Ok(None);
        };
        let Some(mut url) = discovery
            .end_session_endpoint
            .as_deref()
            .and_then(|u| Url::parse(u).ok())
        else {
            return Ok(None);
        };
        {
            let mut query = url.query_pairs_mut();
            query
                .append_pair("client_id", &self.client_id)
                .append_pair("post_logout_redirect_uri", post_logout_redirect_uri);
            if let Some(hint) = &claims.idt {
                query.append_pair("id_token_hint", hint);
            }
        }
        Ok(Some(url.to_string()))
    }

    /// The name and e-mail a bearer token of ours carries (`None` for other tokens). Read
    /// from a token the verifier has already accepted (sign-out included).
    #[must_use]
    pub fn identity(&self, token: &str) -> Option<Identity> {
        let claims = self.decode_session(token, "access").ok()?;
        Some(Identity {
            name: claims.name,
            email: claims.email,
        })
    }
}

#[async_trait]
impl AuthVerifier for OidcSignIn {
    async fn verify(&self, token: &str) -> Result<Principal, AuthError> {
        let header = precheck(token)?;
        if header.alg != Algorithm::HS256 {
            return self.bearer.verify(token).await;
        }
        let claims = self.session_claims(token, "access").await?;
        let user_id =
            UserId::new(claims.sub).map_err(|e| unauthenticated(format!("unusable sub: {e}")))?;
        Ok(Principal { user_id })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sign_in() -> OidcSignIn {
        replica(Arc::new(confab_memory::MemoryAccounts::new()))
    }

    /// One replica of the browser sign-in over `store` (all replicas share the secret).
    fn replica(store: Arc<dyn AccountStore>) -> OidcSignIn {
        OidcSignIn::new(
            &OidcClientConfig {
                issuer: OidcConfig {
                    issuer: "http://127.0.0.1:9/".to_owned(),
                    jwks_url: None,
                    audience: None,
                },
                client_id: "confab".to_owned(),
                client_secret: SecretString::from("s".to_owned()),
                scopes: "openid profile email".to_owned(),
                secret: Some(SecretString::from("k".repeat(32))),
                session_ttl: Duration::from_secs(3600),
                http: JwksOptions::default(),
            },
            store,
        )
        .unwrap()
    }

    fn session(auth: &OidcSignIn, sid: Uuid) -> String {
        let now = Utc::now().timestamp();
        auth.sign(&SessionClaims {
            typ: "session".to_owned(),
            iss: SESSION_ISSUER.to_owned(),
            sub: "alice".to_owned(),
            sid,
            exp: now + 3600,
            iat: now,
            name: Some("Alice".to_owned()),
            email: Some("alice@example.test".to_owned()),
            idt: None,
        })
        .unwrap()
    }

    #[tokio::test]
    async fn a_session_gives_bearer_tokens_that_verify_until_it_is_signed_out() {
        let auth = sign_in();
        let session = session(&auth, Uuid::now_v7());
        let (token, expires_at) = auth.access_token(&session).await.unwrap();
        assert!(expires_at <= Utc::now() + chrono::Duration::seconds(secs(ACCESS_TTL) + 1));
        assert_eq!(
            auth.verify(&token).await.unwrap().user_id.to_string(),
            "alice"
        );
        assert_eq!(
            auth.identity(&token),
            Some(Identity {
                name: Some("Alice".to_owned()),
                email: Some("alice@example.test".to_owned())
            })
        );
        // A session value is not a bearer token, nor a bearer token a session.
        assert!(auth.verify(&session).await.is_err());
        assert!(auth.access_token(&token).await.is_err());
        // The provider is unreachable: sign-out still ends the session.
        assert_eq!(
            auth.sign_out(Some(&session), "http://x/").await.unwrap(),
            None
        );
        assert!(auth.verify(&token).await.is_err());
        assert!(auth.access_token(&session).await.is_err());
    }

    #[tokio::test]
    async fn a_sign_out_on_one_replica_ends_the_session_on_another() {
        let store: Arc<dyn AccountStore> = Arc::new(confab_memory::MemoryAccounts::new());
        let (a, b) = (replica(Arc::clone(&store)), replica(store));
        let signed_out = session(&a, Uuid::now_v7());
        let kept = session(&a, Uuid::now_v7());
        let (token, _) = b.access_token(&signed_out).await.unwrap();
        let (other, _) = b.access_token(&kept).await.unwrap();
        a.sign_out(Some(&signed_out), "http://x/").await.unwrap();
        // B trusts its earlier "not signed out" for at most REVOCATION_CACHE; past it (the
        // cache emptied here, instead of waiting) B asks the store and refuses.
        b.revoked.lock().unwrap().clear();
        assert!(b.verify(&token).await.is_err());
        assert!(b.access_token(&signed_out).await.is_err());
        assert!(a.verify(&token).await.is_err());
        // The other session is untouched.
        assert_eq!(b.verify(&other).await.unwrap().user_id.to_string(), "alice");
    }

    #[tokio::test]
    async fn a_callback_without_its_flow_or_with_another_state_is_refused() {
        let auth = sign_in();
        let flow = auth
            .sign(&FlowClaims {
                typ: "flow".to_owned(),
                exp: Utc::now().timestamp() + 60,
                state: "the-state".to_owned(),
                nonce: "n".to_owned(),
                verifier: "v".to_owned(),
                redirect_uri: "http://x/cb".to_owned(),
            })
            .unwrap();
        let callback = |state: &str| Callback {
            code: Some("c".to_owned()),
            state: Some(state.to_owned()),
            ..Callback::default()
        };
        for (flow, state) in [
            (None, "the-state"),
            (Some(flow.as_str()), "another-state"),
            (Some("a.b.c"), "the-state"),
        ] {
            assert!(matches!(
                auth.finish(flow, &callback(state)).await,
                Err(OidcFlowError::State)
            ));
        }
        let error = Callback {
            error: Some("access_denied".to_owned()),
            ..Callback::default()
        };
        assert_eq!(
            auth.finish(Some(&flow), &error).await.unwrap_err().code(),
            "provider_error"
        );
        // Right state, callback naming another issuer (RFC 9207).
        let mut other = callback("the-state");
        other.iss = Some("http://evil.test/".to_owned());
        assert!(matches!(
            auth.finish(Some(&flow), &other).await,
            Err(OidcFlowError::Issuer)
        ));
    }

    fn memory() -> Arc<dyn AccountStore> {
        Arc::new(confab_memory::MemoryAccounts::new())
    }

    #[test]
    fn settings_are_checked() {
        let mut config = OidcClientConfig {
            issuer: OidcConfig {
                issuer: "http://127.0.0.1:9".to_owned(),
                jwks_url: None,
                audience: None,
            },
            client_id: "confab".to_owned(),
            client_secret: SecretString::from("s".to_owned()),
            scopes: "profile".to_owned(),
            secret: None,
            session_ttl: Duration::from_secs(3600),
            http: JwksOptions::default(),
        };
        assert!(OidcSignIn::new(&config, memory()).is_err());
        config.scopes = "openid".to_owned();
        assert!(OidcSignIn::new(&config, memory()).is_ok());
        config.secret = Some(SecretString::from("short".to_owned()));
        assert!(OidcSignIn::new(&config, memory()).is_err());
    }
}
