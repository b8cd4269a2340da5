//! Sign-in at the server's identity provider (`CONFAB_AUTH=oidc` with a client): the server
//! is the backend-for-frontend. It holds the session in an HttpOnly cookie this code never
//! sees; the client asks `POST /api/auth/oidc/token` for a short-lived bearer token, keeps it
//! in memory only, and asks again a minute before it expires, or after three quarters of a
//! shorter life (so renewal is invisible).

use std::cell::RefCell;

use confab_api_types::{SessionToken, SignedOut};
use wasm_bindgen::JsValue;
use wasm_bindgen_futures::JsFuture;

use crate::wording::ApiError;

/// The header that marks the client's own requests (the server's CSRF check).
pub const CSRF_HEADER: &str = "X-Confab-CSRF";

thread_local! {
    /// The current bearer token and when to renew it (ms since the epoch,
    /// [`renew_at`](crate::services::session_store::renew_at)), in memory only.
    static TOKEN: RefCell<Option<(String, f64)>> = const { RefCell::new(None) };
}

async fn post(path: &str) -> Result<web_sys::Response, ApiError> {
    crate::services::api::raw_post(path, &[(CSRF_HEADER, "1")], None).await
}

async fn read<T: serde::de::DeserializeOwned>(response: &web_sys::Response) -> Result<T, ApiError> {
    if !response.ok() {
        return Err(crate::services::api::error_from_response(response).await);
    }
    let text = JsFuture::from(response.text().map_err(|_| ApiError::unreadable())?)
        .await
        .map_err(|_| ApiError::network())?
        .as_string()
        .ok_or_else(ApiError::unreadable)?;
    crate::json::decode(&text).map_err(|_| ApiError::unreadable())
}

/// A bearer token for the session: the one in memory while it is fresh, else a new one.
/// A 401 means there is no session (any more).
pub async fn token() -> Result<String, ApiError> {
    let now = js_sys::Date::now();
    let cached = TOKEN.with(|t| t.borrow().clone());
    if let Some((token, renew_at)) = cached
        && now < renew_at
    {
        return Ok(token);
    }
    let fresh: SessionToken = read(&post("/api/auth/oidc/token").await?).await?;
    let renew_at = crate::services::session_store::renew_at(
        fresh.expires_at.timestamp_millis() as f64,
        js_sys::Date::now(),
    );
    TOKEN.with(|t| *t.borrow_mut() = Some((fresh.token.clone(), renew_at)));
    Ok(fresh.token)
}

/// Forgets the token in memory.
pub fn forget() {
    TOKEN.with(|t| *t.borrow_mut() = None);
}

/// Ends the session at the server and goes where it says: the provider's sign-out, or `/`.
pub async fn sign_out() {
    forget();
    let to = match post("/auth/oidc/sign-out").await {
        Ok(response) => read::<SignedOut>(&response)
            .await
            .map_or_else(|_| "/".to_owned(), |s| s.redirect_to),
        Err(_) => "/".to_owned(),
    };
    if let Some(window) = web_sys::window() {
        let _ = window.location().assign(&to);
    }
}

/// The message for `/?sign_in_error=<code>`, when the page was opened with one (the server's
/// callback sends the browser there when a sign-in is refused); the address is cleaned.
pub fn sign_in_error() -> Option<String> {
    let window = web_sys::window()?;
    let search = window.location().search().ok()?;
    let code = search
        .trim_start_matches('?')
        .split('&')
        .find_map(|pair| pair.strip_prefix("sign_in_error="))?
        .to_owned();
    if let Ok(history) = window.history() {
        let _ = history.replace_state_with_url(&JsValue::NULL, "", Some("/"));
    }
    Some(describe_sign_in_error(&code))
}

/// What a refused sign-in's code means, for people.
pub fn describe_sign_in_error(code: &str) -> String {
    let why = match code {
        "state_mismatch" => {
            "the answer from the identity provider did not belong to a sign-in started here (or it took too long)"
        }
        "code_rejected" => {
            "the identity provider did not accept the sign-in code (it may have been used already)"
        }
        "nonce_mismatch" => "the identity provider's answer was not made for this sign-in",
        "wrong_issuer" => {
            "the answer came from another identity provider than the one this server trusts"
        }
        "invalid_id_token" => "the identity provider's answer could not be verified",
        "provider_error" => "the identity provider refused or the sign-in was cancelled",
        "provider_unavailable" => "the identity provider could not be reached",
        _ => "something went wrong",
    };
    format!("Sign-in failed: {why}. Please try again.")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_refusal_has_its_own_sentence() {
        let codes = [
            "state_mismatch",
            "code_rejected",
            "nonce_mismatch",
            "wrong_issuer",
            "invalid_id_token",
            "provider_error",
            "provider_unavailable",
        ];
        let texts: std::collections::HashSet<_> =
            codes.iter().map(|c| describe_sign_in_error(c)).collect();
        assert_eq!(texts.len(), codes.len());
        assert!(describe_sign_in_error("other").contains("something went wrong"));
    }
}
