//! Built-in accounts (`CONFAB_AUTH=local`): sign-up, sign-in by username or e-mail and
//! password, sessions, invites and password resets, over an [`AccountStore`].
//!
//! - Passwords are hashed with Argon2id at OWASP's parameters (19 MiB, 2 passes, 1 lane) on
//!   a blocking thread, so a sign-in never stalls the async workers. At most
//!   [`LocalConfig::max_parallel_hashes`] hashes run at once (19 MiB each); a request that
//!   waits longer than [`LocalConfig::hash_queue_wait`] for its turn gets
//!   [`LocalAuthError::Busy`] (503) instead of queueing memory without bound. At least
//!   [`MIN_PASSWORD_CHARS`] characters, at most [`MAX_PASSWORD_CHARS`], and not on the
//!   bundled list of common passwords. A password is never logged: it only lives in
//!   `SecretString`s and in the hasher.
//! - A wrong login and a wrong password get the same answer, after the same work: when no
//!   account matches, a dummy hash is verified.
//! - Failures are throttled per (login, client address), per address, and more softly per
//!   login, with exponential backoff that always ends (no lockout an attacker could aim at
//!   a victim: guesses from elsewhere do not make the owner wait, unless they are many). An attempt counts as a
//!   failure from its start, before the hash, so that parallel guesses cannot all slip
//!   through; a success takes it back.
//! - An access token is an HS256 JWT (`iss` `confab-local`, `sub` `local:<account id>`,
//!   `sid` the session), short-lived ([`LocalConfig::access_ttl`], 15 min). Verifying it also
//!   checks the session record, cached for at most [`SESSION_CACHE`], so a revocation holds
//!   everywhere within seconds (at once in this process).
//! - A session lives at most [`LocalConfig::session_ttl`] from sign-in, and ends earlier when
//!   it is not renewed for [`LocalConfig::idle_timeout`]. It is renewed with its refresh token
//!   `<session id>.<64 hex>`: 32 random bytes of which only the SHA-256 is stored, replaced
//!   at every use (rotation, atomic in the store). The secret the last rotation replaced may
//!   be presented again for [`REFRESH_GRACE`] (two tabs, or two requests of one tab,
//!   refreshing at once) and gets the same new secret back; any other secret for a live
//!   session, an older one included, revokes the whole session (reuse means that a copy
//!   is in someone else's hands: RFC 9700 §4.14.2).
//! - Invite and reset links carry 32 random bytes; only their SHA-256 is stored.
//! - Each account keeps a short security history (ASVS 2.2.3, 2.5.5): sign-ins, password
//!   changes and resets, "sign out everywhere", with when and from which client (never a
//!   secret). The newest [`EVENTS_KEPT`] are kept, none older than [`EVENTS_MAX_AGE_DAYS`];
//!   the client shows the unread ones that came from another session.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm as Argon, Argon2, Params, Version};
use async_trait::async_trait;
use chrono::{DateTime, SubsecRound as _, TimeZone, Utc};
use confab_core::accounts::{
    Account, AccountStore, EventRetention, Failures, Link, LinkKind, Rotated, Rotation,
    SecurityEvent, SecurityEventKind, Session,
};
use confab_core::clock::{Clock, SystemClock};
use confab_core::error::{Conflict, StoreError};
use confab_core::ports::AuthVerifier;
use confab_core::{AuthError, Principal, ValidationError};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::config::ConfigError;
use crate::dev::validate_username;
use crate::token::{
    VerifyingKey, base_validation, decode_claims, ensure_crypto_provider, precheck, principal,
    unauthenticated,
};

/// The `iss` of every local access token.
pub const LOCAL_ISSUER: &str = "confab-local";
/// Prefix of a local account's user id: `local:<uuid>`.
pub const LOCAL_SUBJECT_PREFIX: &str = "local:";
pub const MIN_PASSWORD_CHARS: usize = 12;
pub const MAX_PASSWORD_CHARS: usize = 1024;
/// How long a verified session is trusted without asking the store again.
pub const SESSION_CACHE: Duration = Duration::from_secs(2);
/// How long the refresh secret replaced by the last rotation stays usable (and gets the
/// same new secret back): two renewals racing each other do not sign the user out.
pub const REFRESH_GRACE: Duration = Duration::from_secs(30);
/// The longest `User-Agent` kept for the sessions list, in characters.
pub const USER_AGENT_CHARS: usize = 200;
/// How many security events are kept per account (the newest).
pub const EVENTS_KEPT: u32 = 50;
/// Security events older than this many days are deleted.
pub const EVENTS_MAX_AGE_DAYS: i64 = 90;
/// How long "an account exists" is believed without counting again (another replica may
/// delete the last account; this process forgets at once when it deletes one itself).
pub const ACCOUNTS_SEEN_FOR: Duration = Duration::from_secs(60);
pub const INVITE_TTL: Duration = Duration::from_secs(7 * 24 * 3600);
pub const RESET_TTL: Duration = Duration::from_secs(3600);
/// Failures allowed before backoff starts: per login from one client address, per client
/// address across logins, and per login from anywhere. The last is far higher, so that a
/// stranger's guesses cannot make the owner of the login wait; it only slows a guessing
/// attack spread over many addresses.
pub const FREE_FAILURES_PER_LOGIN_AND_ADDRESS: u32 = 5;
pub const FREE_FAILURES_PER_ADDRESS: u32 = 20;
pub const FREE_FAILURES_PER_LOGIN: u32 = 100;
/// The longest wait the backoff imposes (it doubles up to this, and never locks for good).
pub const MAX_BACKOFF: Duration = Duration::from_secs(15 * 60);

const COMMON_PASSWORDS: &str = include_str!("common-passwords.txt");

/// Who may create an account (`CONFAB_SIGNUP`). The very first account may always be
/// created, and becomes the administrator.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum SignUpMode {
    /// Anyone.
    Open,
    /// With an administrator's single-use invite link.
    #[default]
    Invite,
    /// Nobody.
    Closed,
}

impl SignUpMode {
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Open => "open",
            Self::Invite => "invite",
            Self::Closed => "closed",
        }
    }

    /// Parses `open`, `invite` or `closed`.
    pub fn parse(raw: &str) -> Result<Self, ConfigError> {
        match raw.trim() {
            "open" => Ok(Self::Open),
            "invite" => Ok(Self::Invite),
            "closed" => Ok(Self::Closed),
            _ => Err(ConfigError::Invalid {
                variable: "CONFAB_SIGNUP",
                reason: "must be open, invite or closed".into(),
            }),
        }
    }
}

/// Settings of built-in accounts.
#[derive(Clone, Debug)]
pub struct LocalConfig {
    /// `CONFAB_LOCAL_AUTH_SECRET`: signs access tokens; at least 32 bytes. `None`: random per
    /// start (everyone signs in again after a restart).
    pub secret: Option<SecretString>,
    /// `CONFAB_SESSION_TTL_SECS`: the absolute lifetime of a session (default 12 h).
    pub session_ttl: Duration,
    /// `CONFAB_ACCESS_TOKEN_TTL_SECS`: lifetime of an access token (default 15 min).
    pub access_ttl: Duration,
    /// `CONFAB_SESSION_IDLE_SECS`: a session not renewed for this long ends (default 30 min,
    /// NIST SP 800-63B's AAL2 inactivity limit).
    pub idle_timeout: Duration,
    /// `CONFAB_PASSWORD_PEPPER`: a secret (≥ 32 bytes) every new password hash is keyed with
    /// (Argon2's secret input), kept outside the database: a stolen database alone does not
    /// let anyone test guesses offline. `None`: hashes are not peppered.
    pub pepper: Option<SecretString>,
    /// `CONFAB_SIGNUP`.
    pub signup: SignUpMode,
    /// Argon2 hashes running at once (default: the number of cores).
    pub max_parallel_hashes: usize,
    /// How long a request waits for a hashing slot before [`LocalAuthError::Busy`].
    pub hash_queue_wait: Duration,
}

impl Default for LocalConfig {
    fn default() -> Self {
        Self {
            secret: None,
            session_ttl: Duration::from_secs(12 * 3600),
            access_ttl: Duration::from_secs(15 * 60),
            idle_timeout: Duration::from_secs(30 * 60),
            pepper: None,
            signup: SignUpMode::default(),
            max_parallel_hashes: std::thread::available_parallelism().map_or(2, usize::from),
            hash_queue_wait: Duration::from_secs(2),
        }
    }
}

/// Why an operation on accounts failed. Never carries a password or a link's secret.
#[derive(Debug, thiserror::Error)]
pub enum LocalAuthError {
    /// 401 `invalid_credentials`: any wrong login/password pair, unknown account included.
    #[error("the username, e-mail or password is wrong")]
    InvalidCredentials,
    /// 429 with `Retry-After`.
    #[error("too many failed attempts; try again in {} s", retry_after.as_secs().max(1))]
    Throttled { retry_after: Duration },
    /// 422 `validation_failed`.
    #[error(transparent)]
    Validation(#[from] ValidationError),
    /// 403: sign-up is closed, or needs an invite that was not given.
    #[error("{0}")]
    Forbidden(&'static str),
    /// 503: too many passwords are being hashed; try again shortly.
    #[error("too many sign-ins at once; try again shortly")]
    Busy,
    /// 409: the username or e-mail is taken.
    #[error("this username or e-mail is already in use")]
    Taken,
    /// 400: an invite or reset link that is unknown, used or expired.
    #[error("this link is invalid, used or expired")]
    InvalidLink,
    /// 404: no such account (administrator operations only).
    #[error("there is no such account")]
    NoSuchAccount,
    /// 404: no such session of the caller's (another's included).
    #[error("there is no such session")]
    NoSuchSession,
    /// 401 `unauthenticated`: the refresh token is unknown, used again, or its session is
    /// revoked, expired or idle.
    #[error("the session has ended; sign in again")]
    SessionEnded,
    #[error(transparent)]
    Store(StoreError),
    /// 500: hashing or signing failed.
    #[error("{0}")]
    Internal(String),
}

impl From<StoreError> for LocalAuthError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Conflict(Conflict::DuplicateId) => Self::Taken,
            other => Self::Store(other),
        }
    }
}

type Result<T, E = LocalAuthError> = std::result::Result<T, E>;

/// A signed-in session's access token, and the refresh token that renews it.
#[derive(Clone)]
pub struct IssuedToken {
    pub token: String,
    pub expires_at: DateTime<Utc>,
    pub refresh_token: String,
}

impl std::fmt::Debug for IssuedToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IssuedToken")
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

/// The client a session is started for, as the sessions list shows it.
#[derive(Clone, Debug, Default)]
pub struct ClientInfo {
    pub address: Option<IpAddr>,
    pub user_agent: Option<String>,
}

/// A single-use link's secret (goes into the URL) and when it expires.
#[derive(Debug)]
pub struct IssuedLink {
    pub secret: String,
    pub expires_at: DateTime<Utc>,
}

/// A new account's fields, as the client sent them.
#[derive(Debug)]
pub struct SignUp {
    pub username: String,
    pub email: Option<String>,
    pub password: SecretString,
    pub invite: Option<String>,
}

#[derive(Serialize, Deserialize)]
struct LocalClaims {
    iss: String,
    sub: String,
    sid: Uuid,
    iat: i64,
    exp: i64,
}

/// When a session was read from the store, and until when it is valid (`None`: not valid).
type CheckedSession = (Instant, Option<DateTime<Utc>>);

/// Built-in accounts: issues and verifies access tokens, and every account operation.
pub struct LocalAuth {
    store: Arc<dyn AccountStore>,
    encoding: EncodingKey,
    key: VerifyingKey,
    validation: Validation,
    ttl: Duration,
    access_ttl: Duration,
    idle: Duration,
    signup: SignUpMode,
    /// Verifies hashes made without the pepper (and makes new ones when none is set).
    hasher: Argon2<'static>,
    /// Makes every new hash and verifies those marked with [`PEPPER_KEY_ID`], when a pepper is set.
    peppered: Option<Argon2<'static>>,
    /// One permit per hash allowed to run at once.
    hashing: Arc<tokio::sync::Semaphore>,
    hash_queue_wait: Duration,
    /// Verified when no account matches, so that both answers take the same time.
    dummy_hash: String,
    common: std::collections::HashSet<&'static str>,
    throttle: Throttle,
    /// Session id → (when checked, valid until: `None` when not valid).
    sessions: Mutex<HashMap<Uuid, CheckedSession>>,
    /// When an account was last seen to exist (see [`LocalAuth::awaits_first_account`]).
    accounts_seen: Mutex<Option<DateTime<Utc>>>,
}

impl std::fmt::Debug for LocalAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalAuth")
            .field("ttl", &self.ttl)
            .field("signup", &self.signup)
            .finish_non_exhaustive()
    }
}

/// OWASP's Argon2id parameters: m = 19 MiB, t = 2, p = 1.
fn owasp_argon2() -> Result<Argon2<'static>, ConfigError> {
    let params = Params::new(19 * 1024, 2, 1, None).map_err(|e| ConfigError::Invalid {
        variable: "CONFAB_AUTH",
        reason: format!("Argon2 parameters: {e}"),
    })?;
    Ok(Argon2::new(Argon::Argon2id, Version::V0x13, params))
}

/// The `keyid` of a hash made with the pepper (`$argon2id$v=19$m=19456,t=2,p=1,keyid=…$`):
/// says which hasher verifies it, so hashes made before a pepper was set keep working.
const PEPPER_KEY_ID: &[u8] = b"pepper1";
/// Argon2 takes at most this long a secret; the pepper must be at least [`MIN_PEPPER_BYTES`].
const MIN_PEPPER_BYTES: usize = 32;

/// OWASP's parameters keyed with `pepper` (ASVS 2.4.5), its hashes marked [`PEPPER_KEY_ID`].
fn peppered_argon2(pepper: &SecretString) -> Result<Argon2<'static>, ConfigError> {
    let invalid = |reason: String| ConfigError::Invalid {
        variable: "CONFAB_PASSWORD_PEPPER",
        reason,
    };
    if pepper.expose_secret().len() < MIN_PEPPER_BYTES {
        return Err(invalid(format!(
            "must be at least {MIN_PEPPER_BYTES} bytes long"
        )));
    }
    let key_id = argon2::KeyId::new(PEPPER_KEY_ID).map_err(|e| invalid(e.to_string()))?;
    let params = argon2::ParamsBuilder::new()
        .m_cost(19 * 1024)
        .t_cost(2)
        .p_cost(1)
        .keyid(key_id)
        .build()
        .map_err(|e| invalid(format!("Argon2 parameters: {e}")))?;
    // The hasher borrows its secret for its whole life, which is the process's: the pepper
    // is read once at start and kept, as the signing secrets are.
    let secret: &'static [u8] = Box::leak(
        pepper
            .expose_secret()
            .as_bytes()
            .to_vec()
            .into_boxed_slice(),
    );
    Argon2::new_with_secret(secret, Argon::Argon2id, Version::V0x13, params)
        .map_err(|e| invalid(e.to_string()))
}

/// Whether a stored hash was made with the pepper.
fn is_peppered(hash: &PasswordHash<'_>) -> bool {
    hash.params
        .get("keyid")
        .and_then(|v| {
            v.b64_decode(&mut [0u8; 16])
                .ok()
                .map(|k| k == PEPPER_KEY_ID)
        })
        .unwrap_or(false)
}

fn random_bytes<const N: usize>() -> Result<[u8; N]> {
    let mut bytes = [0u8; N];
    getrandom::fill(&mut bytes)
        .map_err(|e| LocalAuthError::Internal(format!("no random bytes: {e}")))?;
    Ok(bytes)
}

/// The stored form of a link's secret.
#[must_use]
pub fn link_hash(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

impl LocalAuth {
    /// Checks the settings and prepares the hasher (hashing the dummy takes one hash's time).
    pub fn new(store: Arc<dyn AccountStore>, config: &LocalConfig) -> Result<Self, ConfigError> {
        Self::with_clock(store, config, Arc::new(SystemClock))
    }

    /// As [`new`](Self::new), with the clock the throttle reads (tests advance it).
    pub fn with_clock(
        store: Arc<dyn AccountStore>,
        config: &LocalConfig,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, ConfigError> {
        ensure_crypto_provider();
        let invalid = |variable, reason: &str| ConfigError::Invalid {
            variable,
            reason: reason.to_owned(),
        };
        let secret: Vec<u8> = match &config.secret {
            Some(s) if s.expose_secret().len() < 32 => {
                return Err(invalid(
                    "CONFAB_LOCAL_AUTH_SECRET",
                    "must be at least 32 bytes long",
                ));
            }
            Some(s) => s.expose_secret().as_bytes().to_vec(),
            None => random_bytes::<32>()
                .map_err(|_| invalid("CONFAB_LOCAL_AUTH_SECRET", "no random key available"))?
                .to_vec(),
        };
        if config.session_ttl < Duration::from_secs(60)
            || config.session_ttl > Duration::from_secs(30 * 24 * 3600)
        {
            return Err(invalid(
                "CONFAB_SESSION_TTL_SECS",
                "must be between 60 seconds and 30 days",
            ));
        }
        if config.access_ttl < Duration::from_secs(1) || config.access_ttl > config.session_ttl {
            return Err(invalid(
                "CONFAB_ACCESS_TOKEN_TTL_SECS",
                "must be at least 1 second and at most the session's lifetime",
            ));
        }
        if config.idle_timeout < config.access_ttl || config.idle_timeout > config.session_ttl {
            return Err(invalid(
                "CONFAB_SESSION_IDLE_SECS",
                "must be at least the access token's lifetime and at most the session's",
            ));
        }
        if config.max_parallel_hashes == 0 {
            return Err(invalid(
                "CONFAB_AUTH",
                "at least one hash must be allowed to run",
            ));
        }
        let hasher = owasp_argon2()?;
        let peppered = config.pepper.as_ref().map(peppered_argon2).transpose()?;
        let salt = SaltString::generate(&mut argon2::password_hash::rand_core::OsRng);
        // Made as new hashes are, so that an unknown login costs what a known one does.
        let dummy_hash = peppered
            .as_ref()
            .unwrap_or(&hasher)
            .hash_password(b"confab dummy password", &salt)
            .map_err(|e| invalid("CONFAB_AUTH", &format!("Argon2 does not work here: {e}")))?
            .to_string();
        let throttle = Throttle::new(clock, Arc::clone(&store));
        let mut validation = base_validation(Algorithm::HS256);
        validation.set_issuer(&[LOCAL_ISSUER]);
        validation.set_required_spec_claims(&["exp", "iss", "sub"]);
        Ok(Self {
            store,
            encoding: EncodingKey::from_secret(&secret),
            key: VerifyingKey {
                algorithm: Algorithm::HS256,
                key: DecodingKey::from_secret(&secret),
            },
            validation,
            ttl: config.session_ttl,
            access_ttl: config.access_ttl,
            idle: config.idle_timeout,
            signup: config.signup,
            hasher,
            peppered,
            hashing: Arc::new(tokio::sync::Semaphore::new(config.max_parallel_hashes)),
            hash_queue_wait: config.hash_queue_wait,
            dummy_hash,
            common: COMMON_PASSWORDS
                .lines()
                .filter(|l| !l.starts_with('#') && !l.is_empty())
                .collect(),
            throttle,
            sessions: Mutex::new(HashMap::new()),
            accounts_seen: Mutex::new(None),
        })
    }

    #[must_use]
    pub fn signup_mode(&self) -> SignUpMode {
        self.signup
    }

    /// Whether no account exists yet: the next sign-up needs no invite and makes an
    /// administrator (the client then offers "Create account"). Once an account was seen the
    /// answer is remembered for [`ACCOUNTS_SEEN_FOR`] (forgotten at once when this process
    /// deletes an account), so this costs a count a minute at most while accounts exist.
    pub async fn awaits_first_account(&self) -> Result<bool> {
        let now = self.now();
        let seen = *self
            .accounts_seen
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if seen.is_some_and(|at| now < at + chrono_duration(ACCOUNTS_SEEN_FOR)) {
            return Ok(false);
        }
        let none = self.store.count_accounts().await? == 0;
        *self
            .accounts_seen
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = (!none).then_some(now);
        Ok(none)
    }

    /// Length and the list of common passwords; the username inside the password is refused too.
    pub fn check_password(&self, password: &str, username: &str) -> Result<(), ValidationError> {
        let chars = password.chars().count();
        if chars < MIN_PASSWORD_CHARS {
            return Err(ValidationError::new(
                "password",
                format!("must be at least {MIN_PASSWORD_CHARS} characters"),
            ));
        }
        if chars > MAX_PASSWORD_CHARS {
            return Err(ValidationError::new(
                "password",
                format!("must be at most {MAX_PASSWORD_CHARS} characters"),
            ));
        }
        let lower = password.to_lowercase();
        if self.common.contains(lower.as_str())
            || (!username.is_empty() && lower.contains(&username.to_lowercase()))
        {
            return Err(ValidationError::new(
                "password",
                "is too easy to guess: it is a common password or contains the username",
            ));
        }
        Ok(())
    }

    /// A hashing slot, owned so that it is held until the blocking hash ends even when the
    /// request is dropped meanwhile.
    async fn hashing_slot(&self) -> Result<tokio::sync::OwnedSemaphorePermit> {
        tokio::time::timeout(
            self.hash_queue_wait,
            Arc::clone(&self.hashing).acquire_owned(),
        )
        .await
        .map_err(|_| LocalAuthError::Busy)?
        .map_err(|_| LocalAuthError::Internal("the hashing slots are closed".into()))
    }

    async fn hash(&self, password: &SecretString) -> Result<String> {
        let hasher = self.peppered.as_ref().unwrap_or(&self.hasher).clone();
        let password = password.clone();
        let slot = self.hashing_slot().await?;
        tokio::task::spawn_blocking(move || {
            let _slot = slot;
            let salt = SaltString::generate(&mut argon2::password_hash::rand_core::OsRng);
            hasher
                .hash_password(password.expose_secret().as_bytes(), &salt)
                .map(|h| h.to_string())
                .map_err(|e| LocalAuthError::Internal(format!("hashing failed: {e}")))
        })
        .await
        .map_err(|e| LocalAuthError::Internal(format!("hashing task failed: {e}")))?
    }

    /// Whether `password` matches `hash` (`None`: the dummy, always false), off the runtime.
    /// A hash marked as peppered needs the pepper: without it (`CONFAB_PASSWORD_PEPPER` unset
    /// since) the check fails as `Internal`, never as a wrong password.
    async fn verify_password(&self, password: &SecretString, hash: Option<&str>) -> Result<bool> {
        let plain = self.hasher.clone();
        let peppered = self.peppered.clone();
        let password = password.clone();
        let real = hash.is_some();
        let hash = hash.unwrap_or(&self.dummy_hash).to_owned();
        let slot = self.hashing_slot().await?;
        tokio::task::spawn_blocking(move || {
            let _slot = slot;
            let parsed = PasswordHash::new(&hash).map_err(|e| {
                LocalAuthError::Internal(format!("a stored hash is unreadable: {e}"))
            })?;
            let hasher = if is_peppered(&parsed) {
                peppered.ok_or_else(|| {
                    LocalAuthError::Internal(
                        "a password hash was made with CONFAB_PASSWORD_PEPPER, which is not set"
                            .to_owned(),
                    )
                })?
            } else {
                plain
            };
            let ok = hasher
                .verify_password(password.expose_secret().as_bytes(), &parsed)
                .is_ok();
            Ok(ok && real)
        })
        .await
        .map_err(|e| LocalAuthError::Internal(format!("hashing task failed: {e}")))?
    }

    /// Creates an account (see [`SignUpMode`]) and signs it in.
    pub async fn sign_up(&self, request: SignUp) -> Result<(Account, IssuedToken)> {
        self.sign_up_from(request, &ClientInfo::default()).await
    }

    /// As [`sign_up`](Self::sign_up), noting the client in the session.
    pub async fn sign_up_from(
        &self,
        request: SignUp,
        client: &ClientInfo,
    ) -> Result<(Account, IssuedToken)> {
        let username = request.username.to_lowercase();
        validate_username(&username)?;
        let email = match request.email.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(email) => Some(normalize_email(email)?),
        };
        self.check_password(request.password.expose_secret(), &username)?;
        let mut account = Account {
            id: Uuid::now_v7(),
            username,
            email,
            password_hash: String::new(),
            is_admin: false,
            created_at: Utc::now(),
        };
        // The first account needs no invite; whether it is the first is decided by the
        // store in the insert's own lock (two first sign-ups at once: one of them is, the
        // other goes the invite's way below).
        let created = if self.store.count_accounts().await? == 0 {
            account.password_hash = self.hash(&request.password).await?;
            self.store.create_first_account(&account).await?
        } else {
            None
        };
        let account = match created {
            Some(account) => account,
            None => {
                self.admit_later_account(&account, request.invite.as_deref())
                    .await?;
                if account.password_hash.is_empty() {
                    account.password_hash = self.hash(&request.password).await?;
                }
                self.store.create_account(&account).await?
            }
        };
        let token = self
            .start_session(account.id, client, SecurityEventKind::SignedIn)
            .await?;
        Ok((account, token))
    }

    /// Whether an account that is not the first may be created under `CONFAB_SIGNUP`:
    /// open, or with a valid invite (taken here; given back when the name is taken).
    async fn admit_later_account(&self, account: &Account, invite: Option<&str>) -> Result<()> {
        match (self.signup, invite) {
            (SignUpMode::Open, _) => Ok(()),
            (SignUpMode::Closed, _) => Err(LocalAuthError::Forbidden(
                "Sign-up is closed on this server.",
            )),
            (SignUpMode::Invite, None) => Err(LocalAuthError::Forbidden(
                "Sign-up needs an invite link from an administrator.",
            )),
            (SignUpMode::Invite, Some(invite)) => {
                // The invite first: without a valid one, "taken" would tell a stranger
                // which usernames and e-mails have accounts. A valid one is given back
                // when the name is taken, so that its holder can pick another.
                let hash = link_hash(invite);
                self.store
                    .take_link(LinkKind::Invite, &hash, Utc::now())
                    .await?
                    .ok_or(LocalAuthError::InvalidLink)?;
                if self.store.find_account(&account.username).await?.is_some()
                    || email_taken(&*self.store, account.email.as_deref()).await?
                {
                    self.store.release_link(LinkKind::Invite, &hash).await?;
                    return Err(LocalAuthError::Taken);
                }
                Ok(())
            }
        }
    }

    /// Signs in by username or e-mail. `address` is the client's, for the throttle.
    pub async fn sign_in(
        &self,
        login: &str,
        password: &SecretString,
        address: Option<IpAddr>,
    ) -> Result<IssuedToken> {
        let client = ClientInfo {
            address,
            user_agent: None,
        };
        self.sign_in_from(login, password, &client).await
    }

    /// As [`sign_in`](Self::sign_in), noting the client (its address for the throttle too).
    pub async fn sign_in_from(
        &self,
        login: &str,
        password: &SecretString,
        client: &ClientInfo,
    ) -> Result<IssuedToken> {
        let address = client.address;
        let login = login.trim().to_lowercase();
        let keys = throttle_keys(&login, address);
        self.throttle.begin(&keys).await?;
        let account = if login.is_empty() || login.chars().count() > 320 {
            None
        } else {
            self.store.find_account(&login).await?
        };
        let hash = account.as_ref().map(|a| a.password_hash.as_str());
        let verified = self.verify_password(password, hash).await;
        if matches!(verified, Err(LocalAuthError::Busy)) {
            // No password was tried: the attempt is not a failure.
            if let Err(e) = self.throttle.take_back(&keys).await {
                tracing::warn!(error = %e, "could not take back an attempt that was not tried");
            }
        }
        if !verified? {
            return Err(LocalAuthError::InvalidCredentials);
        }
        let Some(account) = account else {
            return Err(LocalAuthError::InvalidCredentials);
        };
        self.throttle.succeed(&keys).await?;
        self.start_session(account.id, client, SecurityEventKind::SignedIn)
            .await
    }

    /// The session records' clock: the throttle's (tests advance it), to the microsecond.
    fn now(&self) -> DateTime<Utc> {
        self.throttle.now()
    }

    /// A new session for the account, its access token and refresh token; `event` (what
    /// started it) goes into the account's security history with the new session.
    async fn start_session(
        &self,
        account_id: Uuid,
        client: &ClientInfo,
        event: SecurityEventKind,
    ) -> Result<IssuedToken> {
        let now = self.now();
        let secret = hex::encode(random_bytes::<32>()?);
        let session = Session {
            id: Uuid::now_v7(),
            account_id,
            created_at: now,
            expires_at: now + chrono_duration(self.ttl),
            revoked_at: None,
            last_used_at: now,
            refresh_hash: link_hash(&secret),
            user_agent: short_user_agent(client),
            address: client.address.map(|a| a.to_string()),
        };
        self.store.insert_session(&session).await?;
        self.record(account_id, event, Some(session.id), client)
            .await?;
        self.issue(&session, now, &secret)
    }

    /// Adds an event to the account's security history (trimmed to what is kept).
    async fn record(
        &self,
        account_id: Uuid,
        kind: SecurityEventKind,
        session_id: Option<Uuid>,
        client: &ClientInfo,
    ) -> Result<()> {
        let now = self.now();
        let event = SecurityEvent {
            id: Uuid::now_v7(),
            account_id,
            kind,
            at: now,
            session_id,
            user_agent: short_user_agent(client),
            address: client.address.map(|a| a.to_string()),
            read_at: None,
        };
        let retention = EventRetention {
            newest: EVENTS_KEPT,
            since: now - chrono::Duration::days(EVENTS_MAX_AGE_DAYS),
        };
        self.store.record_event(&event, retention).await?;
        Ok(())
    }

    /// The account's security history, newest first.
    pub async fn activity(&self, account: &Account) -> Result<Vec<SecurityEvent>> {
        Ok(self.store.list_events(account.id).await?)
    }

    /// Marks the account's security history read up to `up_to` (never past now; `None`:
    /// now), so that an event the client had not shown yet stays unread; how many it marked.
    pub async fn mark_activity_read(
        &self,
        account: &Account,
        up_to: Option<DateTime<Utc>>,
    ) -> Result<u64> {
        let now = self.now();
        let through = up_to.map_or(now, |at| at.min(now));
        Ok(self.store.mark_events_read(account.id, through).await?)
    }

    /// An access token for `session` from `now` (never past the session's end), with the
    /// refresh token made of `secret`.
    fn issue(&self, session: &Session, now: DateTime<Utc>, secret: &str) -> Result<IssuedToken> {
        let expires_at = (now + chrono_duration(self.access_ttl)).min(session.expires_at);
        let claims = LocalClaims {
            iss: LOCAL_ISSUER.to_owned(),
            sub: format!("{LOCAL_SUBJECT_PREFIX}{}", session.account_id),
            sid: session.id,
            iat: now.timestamp(),
            exp: expires_at.timestamp(),
        };
        let token = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .map_err(|e| LocalAuthError::Internal(format!("signing failed: {e}")))?;
        Ok(IssuedToken {
            token,
            expires_at: Utc
                .timestamp_opt(expires_at.timestamp(), 0)
                .single()
                .ok_or_else(|| LocalAuthError::Internal("expiry out of range".into()))?,
            refresh_token: format!("{}.{secret}", session.id),
        })
    }

    /// Renews a session with its refresh token: a new access token and a new refresh token
    /// (the presented one stops working, see the module's documentation).
    /// [`LocalAuthError::SessionEnded`] for an unknown or reused token, or a session that is
    /// revoked, expired or idle (a reused token revokes its session on the way).
    pub async fn refresh(&self, refresh_token: &str) -> Result<IssuedToken> {
        let (session_id, presented) =
            parse_refresh(refresh_token).ok_or(LocalAuthError::SessionEnded)?;
        let now = self.now();
        let new = random_bytes::<32>()?;
        let secret = hex::encode(new);
        let rotation = Rotation {
            session_id,
            presented_hash: link_hash(presented),
            new_hash: link_hash(&secret),
            sealed: seal(&new, presented),
            now,
            idle_since: now - chrono_duration(self.idle),
            grace_since: now - chrono_duration(REFRESH_GRACE),
        };
        match self.store.rotate_refresh(&rotation).await? {
            Rotated::Rotated(session) => {
                self.forget_session(session_id);
                self.issue(&session, now, &secret)
            }
            Rotated::Replayed { session, sealed } => {
                let secret = unseal(&sealed, presented)
                    .filter(|s| link_hash(s) == session.refresh_hash)
                    .ok_or(LocalAuthError::SessionEnded)?;
                self.issue(&session, now, &secret)
            }
            Rotated::Reused => {
                tracing::warn!(session = %session_id, "a replaced refresh token was used again: the session is revoked");
                self.forget_session(session_id);
                Err(LocalAuthError::SessionEnded)
            }
            Rotated::Refused => Err(LocalAuthError::SessionEnded),
        }
    }

    /// The account's live sessions, newest first.
    pub async fn sessions(&self, account: &Account) -> Result<Vec<Session>> {
        let now = self.now();
        Ok(self
            .store
            .list_sessions(account.id, now, now - chrono_duration(self.idle))
            .await?)
    }

    /// Ends one of the account's sessions; [`LocalAuthError::NoSuchSession`] when it is not
    /// a live session of this account.
    pub async fn end_session(&self, account: &Account, session: Uuid) -> Result<()> {
        if self
            .store
            .revoke_own_session(account.id, session, self.now())
            .await?
        {
            self.forget_session(session);
            Ok(())
        } else {
            Err(LocalAuthError::NoSuchSession)
        }
    }

    /// The account and session of a valid token (signature, expiry and session record).
    pub async fn session_of(&self, token: &str) -> Result<(Account, Uuid), AuthError> {
        let claims = self.claims(token)?;
        let account_id = account_id_of(&claims.sub)?;
        self.check_session(claims.sid, account_id).await?;
        let account = self
            .store
            .get_account(account_id)
            .await
            .map_err(|e| AuthError::Unavailable(e.to_string()))?
            .ok_or_else(|| unauthenticated("the account is gone"))?;
        Ok((account, claims.sid))
    }

    fn claims(&self, token: &str) -> Result<LocalClaims, AuthError> {
        let header = precheck(token)?;
        if header.alg != Algorithm::HS256 {
            return Err(unauthenticated("algorithm not allowed"));
        }
        decode_claims(token, &self.key, &self.validation)
    }

    async fn check_session(&self, sid: Uuid, account_id: Uuid) -> Result<(), AuthError> {
        let cached = self
            .sessions
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&sid)
            .copied();
        let until = match cached {
            Some((at, until)) if at.elapsed() < SESSION_CACHE => until,
            _ => {
                let session = self
                    .store
                    .get_session(sid)
                    .await
                    .map_err(|e| AuthError::Unavailable(e.to_string()))?;
                let until = session
                    .filter(|s| s.account_id == account_id && s.revoked_at.is_none())
                    .map(|s| {
                        s.expires_at
                            .min(s.last_used_at + chrono_duration(self.idle))
                    });
                let mut cache = self.sessions.lock().unwrap_or_else(PoisonError::into_inner);
                if cache.len() > 100_000 {
                    cache.retain(|_, (at, _)| at.elapsed() < SESSION_CACHE);
                }
                cache.insert(sid, (Instant::now(), until));
                until
            }
        };
        if until.is_some_and(|until| until > self.now()) {
            Ok(())
        } else {
            Err(unauthenticated(
                "the session is revoked, expired, idle or unknown",
            ))
        }
    }

    fn forget_session(&self, sid: Uuid) {
        self.sessions
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&sid);
    }

    fn forget_sessions(&self) {
        self.sessions
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
    }

    /// Ends the session of this token.
    pub async fn sign_out(&self, session: Uuid) -> Result<()> {
        self.store.revoke_session(session, Utc::now()).await?;
        self.forget_sessions();
        Ok(())
    }

    /// Ends every session of the account.
    pub async fn sign_out_all(&self, account: &Account) -> Result<()> {
        self.sign_out_all_from(account, None, &ClientInfo::default())
            .await
    }

    /// As [`sign_out_all`](Self::sign_out_all), noting the session and client that asked in
    /// the account's security history.
    pub async fn sign_out_all_from(
        &self,
        account: &Account,
        session: Option<Uuid>,
        client: &ClientInfo,
    ) -> Result<()> {
        self.store.revoke_sessions(account.id, Utc::now()).await?;
        self.forget_sessions();
        self.record(
            account.id,
            SecurityEventKind::SignedOutEverywhere,
            session,
            client,
        )
        .await
    }

    /// Checks `current`, sets `new`, revokes every session (this one too) and starts a new
    /// one for the caller.
    pub async fn change_password(
        &self,
        account: &Account,
        current: &SecretString,
        new: &SecretString,
    ) -> Result<IssuedToken> {
        self.change_password_from(account, current, new, &ClientInfo::default())
            .await
    }

    /// As [`change_password`](Self::change_password), noting the client in the new session.
    pub async fn change_password_from(
        &self,
        account: &Account,
        current: &SecretString,
        new: &SecretString,
        client: &ClientInfo,
    ) -> Result<IssuedToken> {
        let keys = throttle_keys(&account.username, None);
        self.throttle.begin(&keys).await?;
        if !self
            .verify_password(current, Some(&account.password_hash))
            .await?
        {
            return Err(LocalAuthError::InvalidCredentials);
        }
        self.throttle.succeed(&keys).await?;
        self.check_password(new.expose_secret(), &account.username)?;
        let hash = self.hash(new).await?;
        self.store
            .set_password(account.id, &hash, Utc::now())
            .await?;
        self.forget_sessions();
        self.start_session(account.id, client, SecurityEventKind::PasswordChanged)
            .await
    }

    /// An invite link's secret (administrators only).
    pub async fn create_invite(&self, admin: &Account) -> Result<IssuedLink> {
        require_admin(admin)?;
        self.issue_link(LinkKind::Invite, None, INVITE_TTL).await
    }

    /// A password reset link for the account named by `login` (administrators only).
    pub async fn create_reset(&self, admin: &Account, login: &str) -> Result<IssuedLink> {
        require_admin(admin)?;
        let account = self
            .store
            .find_account(&login.trim().to_lowercase())
            .await?
            .ok_or(LocalAuthError::NoSuchAccount)?;
        self.issue_link(LinkKind::Reset, Some(account.id), RESET_TTL)
            .await
    }

    async fn issue_link(
        &self,
        kind: LinkKind,
        account_id: Option<Uuid>,
        ttl: Duration,
    ) -> Result<IssuedLink> {
        let secret = hex::encode(random_bytes::<32>()?);
        let expires_at = Utc::now()
            + chrono::Duration::from_std(ttl)
                .map_err(|_| LocalAuthError::Internal("link lifetime out of range".into()))?;
        self.store
            .insert_link(&Link {
                token_hash: link_hash(&secret),
                kind,
                account_id,
                expires_at,
            })
            .await?;
        Ok(IssuedLink { secret, expires_at })
    }

    /// Sets a new password with a reset link; every session of the account is revoked.
    pub async fn reset_password(&self, secret: &str, new: &SecretString) -> Result<()> {
        self.reset_password_from(secret, new, &ClientInfo::default())
            .await
    }

    /// As [`reset_password`](Self::reset_password), noting the client that used the link in
    /// the account's security history.
    pub async fn reset_password_from(
        &self,
        secret: &str,
        new: &SecretString,
        client: &ClientInfo,
    ) -> Result<()> {
        // Checked before the link is used up, so that a refused password does not cost it.
        self.check_password(new.expose_secret(), "")?;
        let hash = link_hash(secret);
        let link = self
            .store
            .take_link(LinkKind::Reset, &hash, Utc::now())
            .await?
            .ok_or(LocalAuthError::InvalidLink)?;
        let result = self.reset_with(&link, new, client).await;
        if result.is_err() {
            // Refused (the password holds the username) or not done (busy, store): the
            // link's holder may try again.
            self.store.release_link(LinkKind::Reset, &hash).await?;
        }
        result
    }

    async fn reset_with(&self, link: &Link, new: &SecretString, client: &ClientInfo) -> Result<()> {
        let account_id = link.account_id.ok_or(LocalAuthError::InvalidLink)?;
        let account = self
            .store
            .get_account(account_id)
            .await?
            .ok_or(LocalAuthError::InvalidLink)?;
        self.check_password(new.expose_secret(), &account.username)?;
        let hash = self.hash(new).await?;
        self.store
            .set_password(account_id, &hash, Utc::now())
            .await?;
        self.forget_sessions();
        if let Err(e) = self
            .record(account_id, SecurityEventKind::PasswordReset, None, client)
            .await
        {
            // The password is set: giving the link back now would let it be used twice.
            tracing::warn!(error = %e, "a password reset could not be noted in the account's history");
        }
        Ok(())
    }

    /// Checks the password before the caller deletes the account's data, then the account.
    pub async fn confirm_password(&self, account: &Account, password: &SecretString) -> Result<()> {
        let keys = throttle_keys(&account.username, None);
        self.throttle.begin(&keys).await?;
        if self
            .verify_password(password, Some(&account.password_hash))
            .await?
        {
            self.throttle.succeed(&keys).await?;
            Ok(())
        } else {
            Err(LocalAuthError::InvalidCredentials)
        }
    }

    /// Removes the account with its sessions and links (its chats are the caller's to delete first).
    pub async fn delete_account(&self, account: &Account) -> Result<()> {
        self.store.delete_account(account.id).await?;
        self.forget_sessions();
        // It may have been the last one: count again at the next ask.
        *self
            .accounts_seen
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = None;
        Ok(())
    }
}

/// The client's `User-Agent` as kept: no control characters, at most [`USER_AGENT_CHARS`].
fn short_user_agent(client: &ClientInfo) -> Option<String> {
    client.user_agent.as_deref().map(|ua| {
        ua.chars()
            .filter(|c| !c.is_control())
            .take(USER_AGENT_CHARS)
            .collect()
    })
}

fn require_admin(account: &Account) -> Result<()> {
    if account.is_admin {
        Ok(())
    } else {
        Err(LocalAuthError::Forbidden(
            "Only an administrator may do this.",
        ))
    }
}

async fn email_taken(store: &dyn AccountStore, email: Option<&str>) -> Result<bool> {
    Ok(match email {
        Some(email) => store.find_account(email).await?.is_some(),
        None => false,
    })
}

/// A plausible address, lowercased: one `@` with text on both sides, no spaces, ≤ 254.
fn normalize_email(raw: &str) -> Result<String, ValidationError> {
    let email = raw.to_lowercase();
    let plausible = email.len() <= 254
        && !email.chars().any(|c| c.is_whitespace() || c.is_control())
        && email.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty() && domain.contains('.') && !domain.contains('@')
        });
    if plausible {
        Ok(email)
    } else {
        Err(ValidationError::new("email", "is not an e-mail address"))
    }
}

/// `<session id>.<secret>` → its parts (the secret: 64 lowercase hex digits).
fn parse_refresh(token: &str) -> Option<(Uuid, &str)> {
    let (sid, secret) = token.trim().split_once('.')?;
    let plausible = secret.len() == 64
        && secret
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    Some((Uuid::parse_str(sid).ok()?, secret)).filter(|_| plausible)
}

/// The one-time pad that seals a new refresh secret under the one it replaces.
fn seal_pad(previous: &str) -> [u8; 32] {
    let mut hasher = Sha256::new();
    hasher.update(b"confab refresh seal\0");
    hasher.update(previous.as_bytes());
    hasher.finalize().into()
}

/// `new` XOR the pad of `previous`, in hex: only the holder of `previous` can open it.
fn seal(new: &[u8; 32], previous: &str) -> String {
    let pad = seal_pad(previous);
    hex::encode(std::array::from_fn::<u8, 32, _>(|i| new[i] ^ pad[i]))
}

/// The secret sealed by [`seal`], given the previous secret.
fn unseal(sealed: &str, previous: &str) -> Option<String> {
    let bytes: [u8; 32] = hex::decode(sealed).ok()?.try_into().ok()?;
    let pad = seal_pad(previous);
    Some(hex::encode(std::array::from_fn::<u8, 32, _>(|i| {
        bytes[i] ^ pad[i]
    })))
}

fn account_id_of(sub: &str) -> Result<Uuid, AuthError> {
    sub.strip_prefix(LOCAL_SUBJECT_PREFIX)
        .and_then(|id| Uuid::parse_str(id).ok())
        .ok_or_else(|| unauthenticated("not a local subject"))
}

/// The throttle's keys: the login from this address (`-` when unknown), the login, and
/// the address when known.
fn throttle_keys(login: &str, address: Option<IpAddr>) -> Vec<String> {
    let block = address.map(address_block);
    let mut keys = vec![
        format!("pair:{}|{login}", block.as_deref().unwrap_or("-")),
        format!("login:{login}"),
    ];
    if let Some(block) = block {
        keys.push(format!("addr:{block}"));
    }
    keys
}

/// IPv6 clients are counted by /64 (one host usually holds a whole one).
fn address_block(address: IpAddr) -> String {
    match address {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => {
            let s = v6.segments();
            format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
        }
    }
}

#[async_trait]
impl AuthVerifier for LocalAuth {
    async fn verify(&self, token: &str) -> Result<Principal, AuthError> {
        let claims = self.claims(token)?;
        let account_id = account_id_of(&claims.sub)?;
        self.check_session(claims.sid, account_id).await?;
        principal(Some(claims.sub))
    }
}

/// Failed attempts per key, with exponential backoff once the free ones are used up. The
/// counts live in the [`AccountStore`], so that every replica on one database counts the
/// same guesses; this is the policy, applied in one atomic step of the store per attempt.
struct Throttle {
    clock: Arc<dyn Clock>,
    store: Arc<dyn AccountStore>,
    /// When stale keys were last deleted from the store by this process.
    last_purge: Mutex<Option<Instant>>,
}

/// Entries untouched this long are forgotten: the count starts again.
const FORGET_AFTER: Duration = Duration::from_secs(3600);
/// How often a process deletes the forgotten entries from the store (at an attempt).
const PURGE_EVERY: Duration = Duration::from_secs(60);

fn chrono_duration(d: Duration) -> chrono::Duration {
    chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX)
}

/// How long the keys' failures still block an attempt at `now` (the longest), if at all.
fn blocked_for(before: &[Option<Failures>], now: DateTime<Utc>) -> Option<Duration> {
    before
        .iter()
        .filter_map(|f| f.as_ref()?.blocked_until)
        .filter_map(|until| (until - now).to_std().ok())
        .filter(|wait| !wait.is_zero())
        .max()
}

/// [`Throttle::begin`]'s step: nothing when a key blocks, otherwise one more failure on
/// every key, with the backoff of those past their free failures.
fn count_attempt(
    keys: &[String],
    before: &[Option<Failures>],
    now: DateTime<Utc>,
) -> Option<Vec<Option<Failures>>> {
    if blocked_for(before, now).is_some() {
        return None;
    }
    let forget_after = chrono_duration(FORGET_AFTER);
    Some(
        keys.iter()
            .zip(before)
            .map(|(key, failures)| {
                let mut entry = failures.unwrap_or(Failures {
                    count: 0,
                    last: now,
                    blocked_until: None,
                });
                if now - entry.last >= forget_after {
                    entry.count = 0;
                }
                entry.count = entry.count.saturating_add(1);
                entry.last = now;
                let over = entry.count.saturating_sub(Throttle::free(key));
                if over > 0 {
                    let wait = Duration::from_secs(1u64 << (over - 1).min(20)).min(MAX_BACKOFF);
                    entry.blocked_until = Some(now + chrono_duration(wait));
                }
                Some(entry)
            })
            .collect(),
    )
}

/// Uncounts one attempt on each key (`clear_pairs`: and forgets the `pair:` keys).
fn uncount_attempt(
    keys: &[String],
    before: &[Option<Failures>],
    clear_pairs: bool,
) -> Vec<Option<Failures>> {
    keys.iter()
        .zip(before)
        .map(|(key, failures)| {
            if clear_pairs && key.starts_with("pair:") {
                return None;
            }
            let mut entry = (*failures)?;
            entry.count = entry.count.saturating_sub(1);
            if entry.count <= Throttle::free(key) {
                entry.blocked_until = None;
            }
            Some(entry)
        })
        .collect()
}

impl Throttle {
    fn new(clock: Arc<dyn Clock>, store: Arc<dyn AccountStore>) -> Self {
        Self {
            clock,
            store,
            last_purge: Mutex::new(None),
        }
    }

    fn free(key: &str) -> u32 {
        if key.starts_with("addr:") {
            FREE_FAILURES_PER_ADDRESS
        } else if key.starts_with("login:") {
            FREE_FAILURES_PER_LOGIN
        } else {
            FREE_FAILURES_PER_LOGIN_AND_ADDRESS
        }
    }

    /// The wall time of this throttle's clock, to the microsecond that databases keep (so
    /// that a wait read back from the store is the wait written). The store keeps wall times
    /// (other replicas read them); the clock moves them (tests advance it). Instants map to
    /// wall times through one anchor per process, so that every throttle of a process agrees.
    fn now(&self) -> DateTime<Utc> {
        static ANCHOR: OnceLock<(Instant, DateTime<Utc>)> = OnceLock::new();
        let (instant, wall) = *ANCHOR.get_or_init(|| (Instant::now(), Utc::now()));
        let at = self.clock.now();
        let now = match at.checked_duration_since(instant) {
            Some(after) => wall + chrono_duration(after),
            None => wall - chrono_duration(instant.duration_since(at)),
        };
        now.trunc_subsecs(6)
    }

    /// `Throttled` with the longest wait among the keys, if any must wait; otherwise the
    /// attempt is counted as a failure at once (in the same atomic step of the store), so
    /// that guesses sent in parallel, to this replica or others, meet the backoff too.
    /// [`succeed`](Self::succeed) takes it back. The store unavailable: an error (503),
    /// never an uncounted attempt.
    async fn begin(&self, keys: &[String]) -> Result<()> {
        let now = self.now();
        let owned = keys.to_vec();
        let before = self
            .store
            .update_failures(
                keys,
                now,
                Arc::new(move |before: &[Option<Failures>]| count_attempt(&owned, before, now)),
            )
            .await?;
        if let Some(retry_after) = blocked_for(&before, now) {
            return Err(LocalAuthError::Throttled { retry_after });
        }
        self.purge_now_and_then(now).await;
        Ok(())
    }

    /// Deletes the store's forgotten entries, at most every [`PURGE_EVERY`] per process, so
    /// that the table stays bounded by the keys of the last [`FORGET_AFTER`].
    async fn purge_now_and_then(&self, now: DateTime<Utc>) {
        let instant = self.clock.now();
        {
            let mut last = self
                .last_purge
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            if last.is_some_and(|at| instant.saturating_duration_since(at) < PURGE_EVERY) {
                return;
            }
            *last = Some(instant);
        }
        if let Err(e) = self
            .store
            .forget_failures(now - chrono_duration(FORGET_AFTER))
            .await
        {
            tracing::warn!(error = %e, "could not delete the throttle's forgotten entries");
        }
    }

    /// A correct password clears the counts of its login from this address, and takes back
    /// the attempt counted on the login and the address (never more: one good password must
    /// not reset an attacker's count elsewhere).
    async fn succeed(&self, keys: &[String]) -> Result<()> {
        self.uncount(keys, true).await
    }

    /// Uncounts one attempt of [`begin`](Self::begin) on each key.
    async fn take_back(&self, keys: &[String]) -> Result<()> {
        self.uncount(keys, false).await
    }

    async fn uncount(&self, keys: &[String], clear_pairs: bool) -> Result<()> {
        let owned = keys.to_vec();
        self.store
            .update_failures(
                keys,
                self.now(),
                Arc::new(move |before: &[Option<Failures>]| {
                    Some(uncount_attempt(&owned, before, clear_pairs))
                }),
            )
            .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use confab_core::clock::ManualClock;

    use super::*;

    fn throttle() -> (Throttle, ManualClock, confab_memory::MemoryAccounts) {
        let clock = ManualClock::new();
        let store = confab_memory::MemoryAccounts::new();
        (
            Throttle::new(Arc::new(clock.clone()), Arc::new(store.clone())),
            clock,
            store,
        )
    }

    fn pepper(text: &str) -> SecretString {
        SecretString::from(format!("{text:0<32}"))
    }

    fn local(pepper: Option<SecretString>) -> LocalAuth {
        LocalAuth::new(
            Arc::new(confab_memory::MemoryAccounts::new()),
            &LocalConfig {
                pepper,
                ..LocalConfig::default()
            },
        )
        .unwrap()
    }

    fn signup(username: &str) -> SignUp {
        SignUp {
            username: username.to_owned(),
            email: None,
            password: SecretString::from("a long and quiet river 42".to_owned()),
            invite: None,
        }
    }

    /// Deleting the last account offers the first account again at once in this process,
    /// and within [`ACCOUNTS_SEEN_FOR`] in another one on the same store (a replica).
    #[tokio::test]
    async fn after_the_last_account_is_deleted_the_first_account_is_offered_again() {
        let store = Arc::new(confab_memory::MemoryAccounts::new());
        let clock = ManualClock::new();
        let config = LocalConfig::default();
        let here = LocalAuth::with_clock(store.clone(), &config, Arc::new(clock.clone())).unwrap();
        let replica =
            LocalAuth::with_clock(store.clone(), &config, Arc::new(clock.clone())).unwrap();
        assert!(here.awaits_first_account().await.unwrap());
        let (ada, _) = here.sign_up(signup("ada")).await.unwrap();
        assert!(!here.awaits_first_account().await.unwrap());
        assert!(!replica.awaits_first_account().await.unwrap());

        here.delete_account(&ada).await.unwrap();
        assert!(
            here.awaits_first_account().await.unwrap(),
            "no account is left: the next sign-up is the first"
        );
        assert!(
            !replica.awaits_first_account().await.unwrap(),
            "the replica believes what it saw for a while"
        );
        clock.advance(ACCOUNTS_SEEN_FOR);
        assert!(replica.awaits_first_account().await.unwrap());

        // And the offer is real: the next sign-up needs no invite and administers.
        let (again, _) = replica.sign_up(signup("grace")).await.unwrap();
        assert!(again.is_admin);
        assert!(!here.awaits_first_account().await.unwrap());
    }

    /// ASVS 2.4.5: with a pepper, new hashes are keyed with it (marked in the hash), verify
    /// only with the same pepper, and hashes made before it was set still verify.
    #[tokio::test]
    async fn a_pepper_keys_new_hashes_and_older_hashes_still_verify() {
        let password = SecretString::from("correct horse battery staple".to_owned());
        let wrong = SecretString::from("correct horse battery stapler".to_owned());
        let plain = local(None);
        let before = plain.hash(&password).await.unwrap();
        assert!(!before.contains("keyid"), "{before}");

        let peppered = local(Some(pepper("first pepper")));
        let after = peppered.hash(&password).await.unwrap();
        assert!(
            after.starts_with("$argon2id$v=19$m=19456,t=2,p=1,keyid="),
            "{after}"
        );
        assert!(is_peppered(&PasswordHash::new(&after).unwrap()));
        assert!(!is_peppered(&PasswordHash::new(&before).unwrap()));
        assert!(
            peppered
                .verify_password(&password, Some(&after))
                .await
                .unwrap()
        );
        assert!(
            !peppered
                .verify_password(&wrong, Some(&after))
                .await
                .unwrap()
        );
        assert!(
            peppered
                .verify_password(&password, Some(&before))
                .await
                .unwrap(),
            "older hash"
        );
        assert!(
            !peppered
                .verify_password(&wrong, Some(&before))
                .await
                .unwrap()
        );

        // Another pepper: the right password no longer matches (the pepper is part of the key).
        let other = local(Some(pepper("second pepper")));
        assert!(
            !other
                .verify_password(&password, Some(&after))
                .await
                .unwrap()
        );
        // No pepper any more: an error, not "wrong password".
        assert!(matches!(
            plain.verify_password(&password, Some(&after)).await,
            Err(LocalAuthError::Internal(_))
        ));
        // The dummy (unknown logins) is made by the peppered hasher too, and never matches.
        assert!(peppered.dummy_hash.contains("keyid="));
        assert!(!peppered.verify_password(&password, None).await.unwrap());
    }

    #[test]
    fn a_short_pepper_is_refused() {
        let refused = LocalAuth::new(
            Arc::new(confab_memory::MemoryAccounts::new()),
            &LocalConfig {
                pepper: Some(SecretString::from("too short".to_owned())),
                ..LocalConfig::default()
            },
        );
        assert!(matches!(
            refused,
            Err(ConfigError::Invalid {
                variable: "CONFAB_PASSWORD_PEPPER",
                ..
            })
        ));
    }

    #[test]
    fn hashes_are_argon2id_at_owasps_parameters() {
        let hasher = owasp_argon2().unwrap();
        let salt = SaltString::generate(&mut argon2::password_hash::rand_core::OsRng);
        let started = Instant::now();
        let hash = hasher
            .hash_password(b"correct horse battery", &salt)
            .unwrap()
            .to_string();
        eprintln!("one Argon2id hash took {:?}", started.elapsed());
        assert!(
            hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{hash}"
        );
        let salt = SaltString::generate(&mut argon2::password_hash::rand_core::OsRng);
        let again = hasher
            .hash_password(b"correct horse battery", &salt)
            .unwrap();
        assert_ne!(again.to_string(), hash, "each hash has its own random salt");
        assert!(
            again.salt.unwrap().len() >= 22,
            "a salt of at least 128 bits"
        );
    }

    #[test]
    fn a_long_password_is_never_truncated() {
        let hasher = owasp_argon2().unwrap();
        let salt = SaltString::generate(&mut argon2::password_hash::rand_core::OsRng);
        let long = "x".repeat(MAX_PASSWORD_CHARS - 1);
        let hash = hasher
            .hash_password(format!("{long}a").as_bytes(), &salt)
            .unwrap();
        assert!(
            hasher
                .verify_password(format!("{long}a").as_bytes(), &hash)
                .is_ok()
        );
        assert!(
            hasher
                .verify_password(format!("{long}b").as_bytes(), &hash)
                .is_err()
        );
    }

    #[test]
    fn the_bundled_list_is_lowercase_and_only_holds_what_the_length_rule_lets_through() {
        let words: Vec<&str> = COMMON_PASSWORDS
            .lines()
            .filter(|l| !l.starts_with('#') && !l.is_empty())
            .collect();
        assert!(words.len() > 300);
        for word in words {
            assert!(word.chars().count() >= MIN_PASSWORD_CHARS, "{word}");
            assert_eq!(word, word.to_lowercase());
        }
    }

    #[tokio::test]
    async fn backoff_doubles_after_the_free_failures_and_is_capped() {
        let (throttle, clock, _store) = throttle();
        let keys = vec!["login:ada".to_owned()];
        for _ in 0..FREE_FAILURES_PER_LOGIN {
            throttle.begin(&keys).await.unwrap();
        }
        let mut waits = Vec::new();
        for _ in 0..14 {
            throttle.begin(&keys).await.unwrap();
            let Err(LocalAuthError::Throttled { retry_after }) = throttle.begin(&keys).await else {
                panic!("expected a wait");
            };
            waits.push(retry_after.as_secs());
            clock.advance(retry_after);
        }
        assert_eq!(&waits[..5], &[1, 2, 4, 8, 16]);
        assert_eq!(*waits.last().unwrap(), MAX_BACKOFF.as_secs());
    }

    #[tokio::test]
    async fn a_success_clears_the_login_but_not_the_address() {
        let (throttle, _clock, store) = throttle();
        let address = "addr:10.0.0.1".to_owned();
        for n in 0..FREE_FAILURES_PER_ADDRESS {
            throttle
                .begin(&[format!("login:u{n}"), address.clone()])
                .await
                .unwrap();
        }
        let keys = vec!["pair:10.0.0.1|ada".to_owned(), address.clone()];
        throttle.begin(&keys).await.unwrap();
        throttle.succeed(&keys).await.unwrap();
        let kept = store
            .update_failures(
                &keys[..1],
                Utc::now(),
                Arc::new(|_: &[Option<Failures>]| None),
            )
            .await
            .unwrap();
        assert_eq!(kept, vec![None], "the pair's count is gone");
        // The address keeps its earlier failures: one more starts the backoff.
        throttle
            .begin(&["login:x".to_owned(), address.clone()])
            .await
            .unwrap();
        assert!(throttle.begin(&[address]).await.is_err());
    }

    #[tokio::test]
    async fn guesses_from_one_address_do_not_make_the_owner_wait_elsewhere() {
        let (throttle, _clock, _store) = throttle();
        let attacker: IpAddr = "203.0.113.9".parse().unwrap();
        let owner: IpAddr = "198.51.100.7".parse().unwrap();
        for _ in 0..=FREE_FAILURES_PER_LOGIN_AND_ADDRESS {
            throttle
                .begin(&throttle_keys("ada", Some(attacker)))
                .await
                .unwrap();
        }
        assert!(
            throttle
                .begin(&throttle_keys("ada", Some(attacker)))
                .await
                .is_err()
        );
        throttle
            .begin(&throttle_keys("ada", Some(owner)))
            .await
            .unwrap();
        // Guesses spread over many addresses still meet the softer per-login limit.
        for n in 0..FREE_FAILURES_PER_LOGIN {
            let spread: IpAddr = format!("10.0.{}.{}", n / 200, n % 200).parse().unwrap();
            let _ = throttle.begin(&throttle_keys("ada", Some(spread))).await;
        }
        assert!(
            throttle
                .begin(&throttle_keys("ada", Some(owner)))
                .await
                .is_err()
        );
    }

    #[tokio::test]
    async fn an_attempt_counts_from_its_start_so_parallel_guesses_meet_the_backoff() {
        let (throttle, _clock, _store) = throttle();
        let keys = vec!["login:ada".to_owned()];
        // None of these has finished (no outcome yet), as with guesses sent at once.
        for _ in 0..=FREE_FAILURES_PER_LOGIN {
            throttle.begin(&keys).await.unwrap();
        }
        assert!(matches!(
            throttle.begin(&keys).await,
            Err(LocalAuthError::Throttled { .. })
        ));
    }

    #[tokio::test]
    async fn two_throttles_on_one_store_count_each_others_failures() {
        let (first, clock, store) = throttle();
        let second = Throttle::new(Arc::new(clock), Arc::new(store.clone()));
        let keys = throttle_keys("ada", Some("203.0.113.9".parse().unwrap()));
        for n in 0..FREE_FAILURES_PER_LOGIN_AND_ADDRESS {
            let replica = if n % 2 == 0 { &first } else { &second };
            replica.begin(&keys).await.unwrap();
        }
        // The sixth guess, on either replica, is counted and starts the backoff for both.
        first.begin(&keys).await.unwrap();
        assert!(matches!(
            second.begin(&keys).await,
            Err(LocalAuthError::Throttled { .. })
        ));
        assert!(first.begin(&keys).await.is_err());
    }

    #[tokio::test]
    async fn entries_untouched_for_an_hour_are_forgotten_and_deleted() {
        let (throttle, clock, store) = throttle();
        let keys = vec!["pair:-|ada".to_owned()];
        for _ in 0..=FREE_FAILURES_PER_LOGIN_AND_ADDRESS {
            throttle.begin(&keys).await.unwrap();
        }
        assert!(throttle.begin(&keys).await.is_err());
        clock.advance(FORGET_AFTER);
        // The count starts again: the free failures are free again.
        for _ in 0..FREE_FAILURES_PER_LOGIN_AND_ADDRESS {
            throttle.begin(&keys).await.unwrap();
        }
        // And the store does not keep stale keys: another key's attempt an hour later
        // deletes this one.
        clock.advance(FORGET_AFTER + PURGE_EVERY);
        throttle.begin(&["login:other".to_owned()]).await.unwrap();
        let kept = store
            .update_failures(&keys, Utc::now(), Arc::new(|_: &[Option<Failures>]| None))
            .await
            .unwrap();
        assert_eq!(kept, vec![None]);
    }

    #[test]
    fn ipv6_clients_are_counted_by_their_64() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:bbbb::9".parse().unwrap();
        assert_eq!(address_block(a), address_block(b));
    }

    #[test]
    fn emails_are_lowercased_and_checked() {
        assert_eq!(
            normalize_email("Ada@Example.COM").unwrap(),
            "ada@example.com"
        );
        for bad in [
            "ada",
            "@example.com",
            "ada@localhost",
            "a da@example.com",
            "a@b@c.d",
        ] {
            assert!(normalize_email(bad).is_err(), "{bad}");
        }
    }
}
