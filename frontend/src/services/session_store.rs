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
}

impl StoredSession {
    /// The session of a sign-in's answer.
    pub fn of(username: String, token: &SessionToken) -> Self {
        Self {
            username,
            token: token.token.clone(),
            expires_at_ms: token.expires_at.timestamp_millis(),
            refresh_token: token.refresh_token.clone(),
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

    /// Still usable at `now_ms` (with a minute to spare).
    pub fn is_fresh(&self, now_ms: f64) -> bool {
        (self.expires_at_ms as f64) > now_ms + 60_000.0
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
        };
        assert!(s.is_fresh(0.0));
        assert!(!s.is_fresh(950_000.0));
        assert!(!s.is_fresh(2_000_000.0));
    }
}
