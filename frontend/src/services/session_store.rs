//! The bearer token of a dev or built-in-account sign-in, kept in `sessionStorage` (ASVS
//! 3.2.3): a reload of the tab keeps the session, but the token is never written to
//! `localStorage`, so it is not shared with other tabs, and it is gone when the tab or the
//! browser closes. (With OIDC no token is stored at all: the client asks the server for one
//! with its HttpOnly cookie and keeps it in memory.) A session kept in `localStorage` by an
//! older client is removed.

use confab_api_types::SessionToken;
use serde::{Deserialize, Serialize};

use crate::services::api::Credentials;

const KEY: &str = "confab.session";

/// A dev or built-in account's session as stored.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredSession {
    pub username: String,
    pub token: String,
    /// Milliseconds since the Unix epoch.
    pub expires_at_ms: i64,
    /// Built-in accounts: renews the session ([`crate::services::local_session`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    /// When to renew (ms since the Unix epoch): [`renew_at`] when the token arrived. A
    /// session stored by an older client has none: a minute before it expires.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub renew_at_ms: Option<i64>,
}

/// Renew a token at most this long before it expires.
const RENEW_MARGIN_MS: f64 = 60_000.0;

/// When a token that expires at `expires_at_ms`, received at `now_ms`, is renewed: a minute
/// before it expires, or after three quarters of its life when it lives less than four
/// minutes (an access token of 30 s is renewed after 22.5 s, not before every request).
#[must_use]
pub fn renew_at(expires_at_ms: f64, now_ms: f64) -> f64 {
    let life = (expires_at_ms - now_ms).max(0.0);
    expires_at_ms - RENEW_MARGIN_MS.min(life / 4.0)
}

impl StoredSession {
    /// The session of a sign-in's answer, received at `now_ms`.
    #[expect(
        clippy::cast_possible_truncation,
        reason = "ms since the epoch fit an i64"
    )]
    pub fn of(username: String, token: &SessionToken, now_ms: f64) -> Self {
        let expires_at_ms = token.expires_at.timestamp_millis();
        Self {
            username,
            token: token.token.clone(),
            expires_at_ms,
            refresh_token: token.refresh_token.clone(),
            renew_at_ms: Some(renew_at(expires_at_ms as f64, now_ms) as i64),
        }
    }

    /// How requests of this session are signed: renewed with the refresh token when there
    /// is one, else with the token as it is.
    pub fn credentials(&self) -> Credentials {
        if self.refresh_token.is_some() {
            Credentials::Local
        } else {
            Credentials::Dev {
                token: self.token.clone(),
            }
        }
    }

    /// Still usable at `now_ms`, not yet due for renewal ([`renew_at`]).
    pub fn is_fresh(&self, now_ms: f64) -> bool {
        let due = self
            .renew_at_ms
            .map_or(self.expires_at_ms as f64 - RENEW_MARGIN_MS, |at| at as f64);
        due > now_ms
    }
}

fn storage() -> Option<web_sys::Storage> {
    web_sys::window()?.session_storage().ok()?
}

/// Removes a token an older client left in `localStorage`.
fn forget_legacy() {
    if let Some(legacy) = web_sys::window().and_then(|w| w.local_storage().ok().flatten()) {
        let _ = legacy.remove_item(KEY);
    }
}

/// The stored session, when there is one that has not expired (or can be renewed).
pub fn load() -> Option<StoredSession> {
    forget_legacy();
    let raw = storage()?.get_item(KEY).ok()??;
    let session: StoredSession = crate::json::decode(&raw).ok()?;
    if session.is_fresh(js_sys::Date::now()) || session.refresh_token.is_some() {
        Some(session)
    } else {
        clear();
        None
    }
}

/// Keeps the session for the next visit.
pub fn save(session: &StoredSession) {
    if let (Some(s), Ok(raw)) = (storage(), crate::json::encode(session)) {
        let _ = s.set_item(KEY, &raw);
    }
}

/// Forgets the session (sign-out, expiry).
pub fn clear() {
    forget_legacy();
    if let Some(s) = storage() {
        let _ = s.remove_item(KEY);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_session_about_to_expire_is_not_fresh() {
        let s = StoredSession {
            username: "a".into(),
            token: "t".into(),
            expires_at_ms: 1_000_000,
            refresh_token: None,
            renew_at_ms: None,
        };
        assert!(s.is_fresh(0.0));
        assert!(!s.is_fresh(950_000.0));
        assert!(!s.is_fresh(2_000_000.0));
    }

    #[test]
    fn a_token_is_renewed_a_minute_before_it_expires_or_after_three_quarters_of_a_short_life() {
        // Ten minutes: a minute before.
        assert!((renew_at(600_000.0, 0.0) - 540_000.0).abs() < 1e-9);
        // 30 s: after 22.5 s.
        assert!((renew_at(1_030_000.0, 1_000_000.0) - 1_022_500.0).abs() < 1e-9);
        // Already expired: now.
        assert!((renew_at(1_000.0, 5_000.0) - 1_000.0).abs() < 1e-9);
        let token: SessionToken = crate::json::decode(
            r#"{"token":"t","expires_at":"1970-01-01T00:17:10Z","refresh_token":"r"}"#,
        )
        .unwrap();
        assert_eq!(token.expires_at.timestamp_millis(), 1_030_000);
        let s = StoredSession::of("a".into(), &token, 1_000_000.0);
        assert!(s.is_fresh(1_020_000.0));
        assert!(!s.is_fresh(1_023_000.0));
    }
}
