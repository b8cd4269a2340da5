//! Built-in accounts' sessions (`CONFAB_AUTH=local`): the access token lives 15 minutes; the
//! refresh token renews it at `POST /api/auth/local/refresh`, which answers a new pair (the
//! old refresh token is used up). Both are kept in `sessionStorage` ([`session_store`]),
//! which is the one place every API client of the tab reads them from.
//!
//! Renewal is single-flight: every request of the tab that needs a renewal at once awaits
//! the same one, so one tab never presents a used-up refresh token (which the server would
//! take for a stolen copy and answer by ending the session). It happens a minute before the
//! access token expires, at the next request (an idle tab does not renew, so the server's
//! idle timeout holds), and once after a 401.

use std::cell::RefCell;

use confab_api_types::{RefreshRequest, SessionToken};
use futures_util::future::{FutureExt as _, LocalBoxFuture, Shared};
use wasm_bindgen_futures::JsFuture;

use crate::services::session_store::{self, StoredSession};
use crate::wording::ApiError;

type Renewal = Shared<LocalBoxFuture<'static, Result<String, ApiError>>>;

thread_local! {
    /// The renewal under way, which every caller meanwhile awaits.
    static IN_FLIGHT: RefCell<Option<Renewal>> = const { RefCell::new(None) };
}

/// The access token for the next request: the stored one while it is fresh, else a renewed
/// one. A 401 means the session is over.
pub async fn token() -> Result<String, ApiError> {
    let stored = session_store::load().ok_or_else(unauthenticated)?;
    if stored.is_fresh(js_sys::Date::now()) {
        return Ok(stored.token);
    }
    renew().await
}

/// Renews the session now (or joins the renewal under way) and returns the new access token.
pub async fn renew() -> Result<String, ApiError> {
    let renewal = IN_FLIGHT.with(|slot| {
        slot.borrow_mut()
            .get_or_insert_with(|| renew_once().boxed_local().shared())
            .clone()
    });
    let answer = renewal.clone().await;
    // Done: the next renewal is a new one (unless another already took this one's place).
    IN_FLIGHT.with(|slot| {
        let mut slot = slot.borrow_mut();
        if slot.as_ref().is_some_and(|f| f.ptr_eq(&renewal)) {
            *slot = None;
        }
    });
    answer
}

fn unauthenticated() -> ApiError {
    ApiError::from_status(401, None, None)
}

async fn renew_once() -> Result<String, ApiError> {
    let stored = session_store::load().ok_or_else(unauthenticated)?;
    let refresh_token = stored.refresh_token.clone().ok_or_else(unauthenticated)?;
    let body = crate::json::encode(&RefreshRequest { refresh_token })
        .map_err(|_| ApiError::unreadable())?;
    let response = post("/api/auth/local/refresh", &body).await?;
    if !response.ok() {
        let err = crate::services::api::error_from_response(&response).await;
        if err.is_unauthenticated() {
            session_store::clear();
        }
        return Err(err);
    }
    let text = JsFuture::from(response.text().map_err(|_| ApiError::unreadable())?)
        .await
        .map_err(|_| ApiError::network())?
        .as_string()
        .ok_or_else(ApiError::unreadable)?;
    let fresh: SessionToken = crate::json::decode(&text).map_err(|_| ApiError::unreadable())?;
    session_store::save(&StoredSession::of(
        stored.username,
        &fresh,
        js_sys::Date::now(),
    ));
    Ok(fresh.token)
}

async fn post(path: &str, body: &str) -> Result<web_sys::Response, ApiError> {
    crate::services::api::raw_post(path, &[("Content-Type", "application/json")], Some(body)).await
}
