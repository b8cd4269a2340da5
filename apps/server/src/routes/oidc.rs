//! The browser's sign-in at an OpenID Connect issuer (`CONFAB_AUTH=oidc` with
//! `OIDC_CLIENT_ID`): `confab` is the backend-for-frontend (docs/security.md).
//!
//! - `GET /auth/oidc/sign-in`: starts the flow (the `state`, `nonce` and PKCE verifier go in
//!   a signed, HttpOnly cookie on `/auth/oidc` for 10 minutes) and redirects to the issuer.
//! - `GET /auth/oidc/callback`: checks and completes it; sets the session cookie (HttpOnly,
//!   SameSite=Lax, Secure over https) and returns to `/`. Any failure returns to
//!   `/?sign_in_error=<code>`, which the client explains.
//! - `POST /api/auth/oidc/token`: a short-lived bearer token for the session cookie. CSRF:
//!   needs the `X-Confab-CSRF: 1` header (which a cross-site form cannot send, and a
//!   cross-site script cannot without a CORS preflight this server never allows) and a
//!   same-origin `Origin` when the browser sends one.
//! - `POST /auth/oidc/sign-out`: ends the session and points to the issuer's
//!   `end_session_endpoint` when it offers one.
//!
//! Every route answers 404 when the browser sign-in is not configured.

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use confab_api_types as api;
use confab_auth::bff::{Callback, FLOW_TTL};
use confab_core::AuthError;

use crate::error::ApiError;
use crate::state::{AppState, OidcBrowser};

/// The session cookie (path `/`).
pub const SESSION_COOKIE: &str = "confab_session";
/// The cookie of a sign-in in progress (path `/auth/oidc`).
pub const FLOW_COOKIE: &str = "confab_oidc_flow";
/// The header a request for a token or a sign-out must carry (CSRF protection).
pub const CSRF_HEADER: &str = "x-confab-csrf";

const NOT_ENABLED: ApiError =
    ApiError::NotFound("Sign-in with an identity provider is not enabled on this server.");

fn oidc(state: &AppState) -> Result<&OidcBrowser, ApiError> {
    state.oidc.as_ref().ok_or(NOT_ENABLED)
}

/// This server's origin as the browser sees it: from `OIDC_REDIRECT_URL` when set, else
/// from the request.
fn origin(req: &HttpRequest, oidc: &OidcBrowser) -> String {
    if let Some(origin) = oidc
        .redirect_url
        .as_deref()
        .and_then(|u| url::Url::parse(u).ok())
        .map(|u| u.origin().ascii_serialization())
    {
        return origin;
    }
    let info = req.connection_info();
    format!("{}://{}", info.scheme(), info.host())
}

fn redirect_uri(req: &HttpRequest, oidc: &OidcBrowser) -> String {
    oidc.redirect_url
        .clone()
        .unwrap_or_else(|| format!("{}/auth/oidc/callback", origin(req, oidc)))
}

fn secure(req: &HttpRequest, oidc: &OidcBrowser) -> bool {
    origin(req, oidc).starts_with("https://")
}

/// A cookie's value from the request's `Cookie` headers.
fn cookie(req: &HttpRequest, name: &str) -> Option<String> {
    req.headers()
        .get_all(header::COOKIE)
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(n, _)| *n == name)
        .map(|(_, v)| v.trim_matches('"').to_owned())
        .filter(|v| !v.is_empty())
}

/// A `Set-Cookie` value: HttpOnly, SameSite=Lax, Secure over https. `None` clears it.
fn set_cookie(name: &str, value: Option<&str>, path: &str, max_age: u64, secure: bool) -> String {
    let (value, max_age) = match value {
        Some(v) => (v, max_age),
        None => ("", 0),
    };
    let secure = if secure { "; Secure" } else { "" };
    format!("{name}={value}; Path={path}; Max-Age={max_age}; HttpOnly; SameSite=Lax{secure}")
}

fn see_other(location: &str) -> actix_web::HttpResponseBuilder {
    let mut response = HttpResponse::SeeOther();
    response
        .insert_header((header::LOCATION, location))
        .insert_header((header::CACHE_CONTROL, "no-store"));
    response
}

fn failed(error: &confab_auth::OidcFlowError) -> String {
    format!("/?sign_in_error={}", error.code())
}

/// The request comes from this server's own page: the CSRF header is present, and the
/// `Origin` (when the browser sends one) is this server's.
fn same_origin(req: &HttpRequest, oidc: &OidcBrowser, need_header: bool) -> bool {
    let header_ok = req
        .headers()
        .get(CSRF_HEADER)
        .is_some_and(|v| v.as_bytes() == b"1");
    let origin_ok = match req.headers().get(header::ORIGIN) {
        Some(o) => o.to_str().ok() == Some(origin(req, oidc).as_str()),
        None => header_ok,
    };
    origin_ok && (header_ok || !need_header)
}

/// Starts a sign-in at the identity provider.
#[utoipa::path(get, path = "/auth/oidc/sign-in", tag = "session",
    responses((status = 303, description = "to the provider's authorization endpoint (with the flow cookie); to `/?sign_in_error=provider_unavailable` or `wrong_issuer` when its discovery document cannot be used"),
        (status = 404, body = api::Problem, description = "the browser sign-in is not configured")))]
pub async fn sign_in(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let oidc = oidc(&state)?;
    match oidc.sign_in.begin(&redirect_uri(&req, oidc)).await {
        Ok(started) => Ok(see_other(&started.authorization_url)
            .insert_header((
                header::SET_COOKIE,
                set_cookie(
                    FLOW_COOKIE,
                    Some(&started.flow),
                    "/auth/oidc",
                    FLOW_TTL.as_secs(),
                    secure(&req, oidc),
                ),
            ))
            .finish()),
        Err(e) => {
            tracing::warn!(error = %e, "OIDC sign-in could not start");
            Ok(see_other(&failed(&e)).finish())
        }
    }
}

/// The provider's answer: on success, the session cookie is set.
#[utoipa::path(get, path = "/auth/oidc/callback", tag = "session",
    params(("code" = Option<String>, Query), ("state" = Option<String>, Query),
        ("iss" = Option<String>, Query), ("error" = Option<String>, Query)),
    responses((status = 303, description = "to `/` with the session cookie; or to `/?sign_in_error=<code>` (`state_mismatch`, `code_rejected`, `nonce_mismatch`, `wrong_issuer`, `invalid_id_token`, `provider_error`, `provider_unavailable`)"),
        (status = 404, body = api::Problem, description = "the browser sign-in is not configured")))]
pub async fn callback(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let oidc = oidc(&state)?;
    let secure = secure(&req, oidc);
    let params = web::Query::<Callback>::from_query(req.query_string())
        .map(web::Query::into_inner)
        .unwrap_or_default();
    let flow = cookie(&req, FLOW_COOKIE);
    let clear_flow = set_cookie(FLOW_COOKIE, None, "/auth/oidc", 0, secure);
    match oidc.sign_in.finish(flow.as_deref(), &params).await {
        Ok(signed_in) => {
            tracing::info!(user = %signed_in.user_id, "signed in at the identity provider");
            let max_age = u64::try_from((signed_in.expires_at - chrono::Utc::now()).num_seconds())
                .unwrap_or(0);
            Ok(see_other("/")
                .append_header((header::SET_COOKIE, clear_flow))
                .append_header((
                    header::SET_COOKIE,
                    set_cookie(
                        SESSION_COOKIE,
                        Some(&signed_in.session),
                        "/",
                        max_age,
                        secure,
                    ),
                ))
                .finish())
        }
        Err(e) => {
            // Debug form: the provider's error text comes from the address bar; its line
            // breaks are escaped, not written to the log as new lines.
            tracing::warn!(error = ?e, "OIDC sign-in refused");
            Ok(see_other(&failed(&e))
                .append_header((header::SET_COOKIE, clear_flow))
                .finish())
        }
    }
}

/// A short-lived bearer token for the browser's session cookie; renewal is asking again.
#[utoipa::path(post, path = "/api/auth/oidc/token", tag = "session",
    params(("X-Confab-CSRF" = Option<String>, Header, description = "must be `1`; without it the answer is 403 (when the browser sign-in is configured)")),
    responses((status = 200, body = api::SessionToken),
        (status = 401, body = api::Problem, description = "no session, or it expired or was signed out"),
        (status = 403, body = api::Problem, description = "no `X-Confab-CSRF: 1`, or another origin"),
        (status = 404, body = api::Problem, description = "the browser sign-in is not configured"),
        (status = 503, body = api::Problem, description = "whether the session was signed out cannot be checked (the database is unavailable)")))]
pub async fn token(req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let oidc = oidc(&state)?;
    if !same_origin(&req, oidc, true) {
        return Err(ApiError::Forbidden(
            "this request must come from the client's own page (X-Confab-CSRF)",
        ));
    }
    let session = cookie(&req, SESSION_COOKIE).ok_or(ApiError::Unauthenticated)?;
    let (token, expires_at) = oidc.sign_in.access_token(&session).await.map_err(|e| {
        if let AuthError::Unavailable(cause) = &e {
            tracing::warn!(error = %cause, "whether the session was signed out is unknown");
            return ApiError::Unavailable("the database is unavailable; try again shortly");
        }
        tracing::debug!(error = %e, "session refused");
        ApiError::Unauthenticated
    })?;
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(api::SessionToken {
            token,
            expires_at,
            refresh_token: None,
        }))
}

/// Ends the browser's session, and at the provider when it offers `end_session_endpoint`.
/// With `X-Confab-CSRF: 1`: 200 `{"redirect_to"}` (for `fetch`); without: 303 (a form).
#[utoipa::path(post, path = "/auth/oidc/sign-out", tag = "session",
    responses((status = 200, body = api::SignedOut, description = "with `X-Confab-CSRF: 1`: where to go next"),
        (status = 303, description = "a form's post: to the provider's sign-out, or `/`"),
        (status = 403, body = api::Problem, description = "from another origin"),
        (status = 404, body = api::Problem, description = "the browser sign-in is not configured"),
        (status = 503, body = api::Problem, description = "the sign-out could not be stored (the database is unavailable); the session still holds")))]
pub async fn sign_out(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let oidc = oidc(&state)?;
    if !same_origin(&req, oidc, false) {
        return Err(ApiError::Forbidden(
            "this request must come from the client's own page",
        ));
    }
    let back = format!("{}/", origin(&req, oidc));
    let session = cookie(&req, SESSION_COOKIE);
    let to = oidc
        .sign_in
        .sign_out(session.as_deref(), &back)
        .await
        .map_err(|e| {
            // Not stored: the session would stay valid on the other replicas.
            tracing::warn!(error = %e, "a sign-out could not be stored");
            ApiError::Unavailable("the database is unavailable; try again shortly")
        })?
        .unwrap_or_else(|| "/".to_owned());
    let clear = set_cookie(SESSION_COOKIE, None, "/", 0, secure(&req, oidc));
    if req.headers().contains_key(CSRF_HEADER) {
        return Ok(HttpResponse::Ok()
            .insert_header((header::SET_COOKIE, clear))
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .json(api::SignedOut { redirect_to: to }));
    }
    Ok(see_other(&to)
        .insert_header((header::SET_COOKIE, clear))
        .finish())
}

/// What `GET /api/me` adds for a browser OIDC session: the name and e-mail of the ID token.
pub fn identity(state: &AppState, req: &HttpRequest) -> (Option<String>, Option<String>) {
    state
        .oidc
        .as_ref()
        .zip(crate::extract::bearer(req))
        .and_then(|(oidc, token)| oidc.sign_in.identity(&token))
        .map_or((None, None), |id| (id.name, id.email))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_are_found_by_exact_name_and_set_http_only_and_lax() {
        let req = actix_web::test::TestRequest::default()
            .insert_header((
                header::COOKIE,
                "xconfab_session=evil; confab_session=a.b.c; other=1",
            ))
            .to_http_request();
        assert_eq!(cookie(&req, SESSION_COOKIE).as_deref(), Some("a.b.c"));
        assert_eq!(cookie(&req, FLOW_COOKIE), None);
        let set = set_cookie(SESSION_COOKIE, Some("v"), "/", 60, true);
        assert_eq!(
            set,
            "confab_session=v; Path=/; Max-Age=60; HttpOnly; SameSite=Lax; Secure"
        );
        assert!(set_cookie(SESSION_COOKIE, None, "/", 60, false).contains("=; Path=/; Max-Age=0"));
    }
}
