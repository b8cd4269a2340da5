//! Built-in accounts (`CONFAB_AUTH=local`): the records and the storage port. Hashing,
//! tokens and throttling are the auth adapter's business; the store keeps what it is given
//! and never sees a password or a link's secret, only their hashes.

use async_trait::async_trait;
use uuid::Uuid;

use crate::error::StoreError;
use crate::model::Timestamp;

/// A stored account. `username` and `email` are kept lowercased, so that each is unique
/// regardless of case.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Account {
    pub id: Uuid,
    pub username: String,
    pub email: Option<String>,
    /// An Argon2id PHC string.
    pub password_hash: String,
    pub is_admin: bool,
    pub created_at: Timestamp,
}

/// A signed-in session: every access token names one, and is refused once it is revoked
/// or past `expires_at`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Session {
    pub id: Uuid,
    pub account_id: Uuid,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
    pub revoked_at: Option<Timestamp>,
    /// The sign-in or the last refresh: the idle timeout counts from here.
    pub last_used_at: Timestamp,
    /// Lowercase hex SHA-256 of the current refresh token's secret (`""`: none, for
    /// sessions started before refresh tokens existed).
    pub refresh_hash: String,
    /// The client's `User-Agent` at sign-in, shortened (shown in the sessions list).
    pub user_agent: Option<String>,
    /// The client's address at sign-in (shown in the sessions list).
    pub address: Option<String>,
}

/// One use of a refresh token, for [`AccountStore::rotate_refresh`]. Hashes only: the store
/// never sees a secret.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rotation {
    pub session_id: Uuid,
    /// Hash of the secret the client presented.
    pub presented_hash: String,
    /// Hash of the secret that replaces it.
    pub new_hash: String,
    /// The new secret sealed under the presented one (only the holder of the presented
    /// secret can open it): what a replay within the grace gets back.
    pub sealed: String,
    pub now: Timestamp,
    /// A session last used before this is idle: refused.
    pub idle_since: Timestamp,
    /// The previous secret may be presented again if it was rotated at or after this.
    pub grace_since: Timestamp,
}

/// What [`AccountStore::rotate_refresh`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Rotated {
    /// The presented hash was the current one: it is replaced by `new_hash`, and
    /// `last_used_at` is `now`. The session as stored afterwards.
    Rotated(Session),
    /// The presented hash was the previous one, rotated within the grace: nothing changed;
    /// `sealed` is the current secret sealed under the presented one.
    Replayed { session: Session, sealed: String },
    /// Any other secret for a live session: the session was revoked (theft detection).
    Reused,
    /// No such session, or it is revoked, expired or idle.
    Refused,
}

/// What happened in a [`SecurityEvent`] (ASVS 2.2.3, 2.5.5: the user is told of changes to
/// their credentials and of new sign-ins, in the app since there is no e-mail).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SecurityEventKind {
    /// The account's own password change (from a signed-in session).
    PasswordChanged,
    /// A new password set through an administrator's reset link.
    PasswordReset,
    /// A new session: sign-in (or sign-up).
    SignedIn,
    /// Every session of the account was ended ("Sign out everywhere").
    SignedOutEverywhere,
}

impl SecurityEventKind {
    /// Every kind, in a fixed order.
    pub const ALL: [Self; 4] = [
        Self::PasswordChanged,
        Self::PasswordReset,
        Self::SignedIn,
        Self::SignedOutEverywhere,
    ];

    /// The stable name stored and sent to clients.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::PasswordChanged => "password_changed",
            Self::PasswordReset => "password_reset",
            Self::SignedIn => "signed_in",
            Self::SignedOutEverywhere => "signed_out_everywhere",
        }
    }

    /// The kind named by [`as_str`](Self::as_str).
    #[must_use]
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == name)
    }
}

/// One entry of an account's security history. It never holds a token, secret or hash: only
/// what happened, when, and the client it came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SecurityEvent {
    pub id: Uuid,
    pub account_id: Uuid,
    pub kind: SecurityEventKind,
    pub at: Timestamp,
    /// The session it came from, or started (a sign-in, or the session a password change
    /// continues with); `None` when it came from no session (a reset link).
    pub session_id: Option<Uuid>,
    /// The client's `User-Agent`, shortened as in [`Session::user_agent`].
    pub user_agent: Option<String>,
    /// The client's address, as in [`Session::address`].
    pub address: Option<String>,
    /// When the account's owner marked it read; `None` while unread.
    pub read_at: Option<Timestamp>,
}

/// How much of an account's security history is kept: the newest `newest` events, none
/// older than `since`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EventRetention {
    pub newest: u32,
    pub since: Timestamp,
}

/// What a single-use link grants.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LinkKind {
    /// Creating an account while sign-up is by invitation.
    Invite,
    /// Setting a new password for `account_id`.
    Reset,
}

impl LinkKind {
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Invite => "invite",
            Self::Reset => "reset",
        }
    }
}

/// A single-use link. Only the SHA-256 of its secret is stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Link {
    /// Lowercase hex SHA-256 of the secret in the URL.
    pub token_hash: String,
    pub kind: LinkKind,
    /// The account a reset link is for; `None` for invites.
    pub account_id: Option<Uuid>,
    pub expires_at: Timestamp,
}

/// Failed sign-in attempts counted under one throttle key (the policy that reads and
/// writes them lives in the auth adapter; the store only keeps them, so that every replica
/// on one database counts the same guesses).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Failures {
    pub count: u32,
    /// The last attempt counted.
    pub last: Timestamp,
    /// No attempt is allowed before this.
    pub blocked_until: Option<Timestamp>,
}

/// One atomic step of the sign-in throttle: given each key's failures (by position, `None`
/// when none are kept), what to keep for each (`Some` stores, `None` forgets the key), or
/// `None` to change nothing. It may be called more than once (a retried transaction), so it
/// must not have side effects. Shared, so that a store may run it on a thread of its own.
pub type FailuresStep =
    std::sync::Arc<dyn Fn(&[Option<Failures>]) -> Option<Vec<Option<Failures>>> + Send + Sync>;

/// Storage of accounts, sessions and single-use links, and the sign-in state that every
/// replica must share: the throttle's failure counts and the browser (OIDC) sessions that
/// were signed out.
///
/// Contract (checked by `confab_tests::contract::accounts` on every adapter):
/// - `create_account` MUST store the account with `is_admin` set exactly when no account
///   existed before, and MUST answer `Conflict::DuplicateId` when the username, or a
///   non-empty email, is taken by another account (compared as stored: lowercased by the
///   caller).
/// - `create_first_account` MUST store the account (as the administrator) only when no
///   account exists, deciding in the same step as the insert, and answer `None` otherwise:
///   of two first sign-ups at once, exactly one is stored by it.
/// - `find_account` MUST find an account by its username or its email.
/// - `set_password` MUST replace the hash AND revoke every session of the account in one
///   step: a session that outlives a password change is an attacker's session kept.
/// - `revoke_session` and `revoke_sessions` MUST be idempotent; a revoked session MUST stay
///   revoked (`get_session` returns it with `revoked_at` set).
/// - `delete_account` MUST remove the account, its sessions, its reset links and its events;
///   `NotFound` when there is no such account.
/// - `take_link` MUST return a link of that kind and hash at most once (concurrent callers
///   included), and never once `now` is past its `expires_at`.
/// - `release_link` MUST make a taken link of that kind takeable again (until it expires).
/// - `update_failures` MUST read the keys' failures, call `step` and store its answer in one
///   atomic step: two callers on one database at once (two replicas) MUST both be counted,
///   each seeing the other's write or being seen by it. `forget_failures` MUST delete the
///   keys whose `last` is before `before`, and only those.
/// - `rotate_refresh` MUST decide and write in one atomic step (two replicas presenting the
///   same secret at once: exactly one `Rotated`, the other `Replayed`): `Rotated` when the
///   presented hash is the session's current one (then `refresh_hash` is `new_hash`, the old
///   hash is refused from then on except as below, `last_used_at` is `now`); `Replayed`
///   (nothing changed) when it is the hash replaced by the last rotation and that rotation
///   was at or after `grace_since`; `Refused` when the session is unknown, revoked, past
///   `expires_at`, or last used before `idle_since`; otherwise `Reused`, with the session
///   revoked at `now`.
/// - `list_sessions` MUST return the account's sessions that are not revoked, not expired
///   at `now` and not idle (last used at or after `idle_since`), newest first, and no other
///   account's.
/// - `revoke_own_session` MUST revoke the session only when it belongs to `account_id` and
///   is not revoked yet, answering whether it did.
/// - `record_event` MUST store the event and, in the same step, delete the account's events
///   beyond the newest `retention.newest` (by `at`, then `id`) and those with `at` before
///   `retention.since`; `NotFound` (nothing stored) when there is no such account.
/// - `list_events` MUST return the account's events, newest first (by `at`, then `id`), and
///   no other account's.
/// - `mark_events_read` MUST set `read_at` to `now` on the account's unread events whose `at`
///   is at or before `now` (and on no other account's), answering how many it marked; events
///   already read keep their `read_at`. (The caller may pass a `now` in the past: "read as of".)
/// - `revoke_browser_session` MUST make `browser_session_revoked` true for that id until
///   `expires_at`; revocations past their expiry may be deleted at any call.
#[async_trait]
pub trait AccountStore: Send + Sync + 'static {
    /// Stores a new account (its `is_admin` is decided by the store, see the contract).
    async fn create_account(&self, account: &Account) -> Result<Account, StoreError>;
    /// Stores `account` as the administrator when no account exists yet; `None` (nothing
    /// stored) when one does. Sign-up's "the first account needs no invite" is decided here,
    /// inside the store's lock, not by an earlier count.
    async fn create_first_account(&self, account: &Account) -> Result<Option<Account>, StoreError>;
    /// How many accounts exist.
    async fn count_accounts(&self) -> Result<u64, StoreError>;
    /// The account whose username or email is `login` (already lowercased).
    async fn find_account(&self, login: &str) -> Result<Option<Account>, StoreError>;
    async fn get_account(&self, id: Uuid) -> Result<Option<Account>, StoreError>;
    /// New hash, and every session of the account revoked at `now`.
    async fn set_password(&self, id: Uuid, hash: &str, now: Timestamp) -> Result<(), StoreError>;
    async fn delete_account(&self, id: Uuid) -> Result<(), StoreError>;

    async fn insert_session(&self, session: &Session) -> Result<(), StoreError>;
    async fn get_session(&self, id: Uuid) -> Result<Option<Session>, StoreError>;
    async fn revoke_session(&self, id: Uuid, now: Timestamp) -> Result<(), StoreError>;
    async fn revoke_sessions(&self, account_id: Uuid, now: Timestamp) -> Result<(), StoreError>;
    /// Uses a refresh token (see the contract).
    async fn rotate_refresh(&self, rotation: &Rotation) -> Result<Rotated, StoreError>;
    /// The account's live sessions, newest first.
    async fn list_sessions(
        &self,
        account_id: Uuid,
        now: Timestamp,
        idle_since: Timestamp,
    ) -> Result<Vec<Session>, StoreError>;
    /// Revokes the session if it is the account's and live; whether it did.
    async fn revoke_own_session(
        &self,
        account_id: Uuid,
        id: Uuid,
        now: Timestamp,
    ) -> Result<bool, StoreError>;

    /// Adds to the account's security history, keeping it within `retention`.
    async fn record_event(
        &self,
        event: &SecurityEvent,
        retention: EventRetention,
    ) -> Result<(), StoreError>;
    /// The account's security history, newest first.
    async fn list_events(&self, account_id: Uuid) -> Result<Vec<SecurityEvent>, StoreError>;
    /// Marks the account's unread events up to `now` read; how many it marked.
    async fn mark_events_read(&self, account_id: Uuid, now: Timestamp) -> Result<u64, StoreError>;

    async fn insert_link(&self, link: &Link) -> Result<(), StoreError>;
    /// Consumes the unexpired, unused link of `kind` with this hash.
    async fn take_link(
        &self,
        kind: LinkKind,
        token_hash: &str,
        now: Timestamp,
    ) -> Result<Option<Link>, StoreError>;
    /// Gives back a link taken by an operation that then failed (e.g. an invite used with
    /// a taken username), so that its holder can try again.
    async fn release_link(&self, kind: LinkKind, token_hash: &str) -> Result<(), StoreError>;

    /// Applies `step` to the failures of `keys` atomically and returns them as they were
    /// before the step. `now` dates rows the store creates on the way.
    async fn update_failures(
        &self,
        keys: &[String],
        now: Timestamp,
        step: FailuresStep,
    ) -> Result<Vec<Option<Failures>>, StoreError>;
    /// Deletes the failures last counted before `before`; how many keys were deleted.
    async fn forget_failures(&self, before: Timestamp) -> Result<u64, StoreError>;

    /// Records that the browser session `id` was signed out (it would have expired at
    /// `expires_at`); expired revocations are purged on the way (`now`).
    async fn revoke_browser_session(
        &self,
        id: Uuid,
        expires_at: Timestamp,
        now: Timestamp,
    ) -> Result<(), StoreError>;
    /// Whether the browser session `id` was signed out (and would not have expired by `now`).
    async fn browser_session_revoked(&self, id: Uuid, now: Timestamp) -> Result<bool, StoreError>;
}
