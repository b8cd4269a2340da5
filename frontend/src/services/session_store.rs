//! The dev sign-in kept in `localStorage`, so a reload keeps the session.

use serde::{Deserialize, Serialize};

const KEY: &str = "confab.session";

/// A dev session as stored.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredSession {
    pub username: String,
    pub token: String,
    /// Milliseconds since the Unix epoch.
    pub expires_at_ms: i64,
}

impl StoredSession {
    /// Still usable at `now_ms` (with a minute to spare).
    pub fn is_fresh(&self, now_ms: f64) -> bool {
        (self.expires_at_ms as f64) > now_ms + 60_000.0
    }
}

fn storage() -> Option<web_sys::Storage> {
    web_sys::window()?.local_storage().ok()?
}

/// The stored session, when there is one that has not expired.
pub fn load() -> Option<StoredSession> {
    let raw = storage()?.get_item(KEY).ok()??;
    let session: StoredSession = crate::json::decode(&raw).ok()?;
    if session.is_fresh(js_sys::Date::now()) {
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
        };
        assert!(s.is_fresh(0.0));
        assert!(!s.is_fresh(950_000.0));
        assert!(!s.is_fresh(2_000_000.0));
    }
}
