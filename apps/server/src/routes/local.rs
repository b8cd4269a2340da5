//! Built-in accounts (`CONFAB_AUTH=local`): sign-up, sign-in and reset are public; the rest
//! run behind the authentication middleware and act on the caller's own session. Every
//! route answers 404 when built-in accounts are not the configured provider.

use std::sync::Arc;

use actix_web::{HttpRequest, HttpResponse, web};
use confab_api_types as api;
use confab_auth::local::{ClientInfo, IssuedLink, IssuedToken, SignUp};
use confab_auth::{LocalAuth, LocalAuthError};
use confab_core::accounts::{Account, SecurityEventKind};
use confab_core::services::PageQuery;
use confab_core::values::PageLimit;
use confab_core::{AuthError, StoreError};
use secrecy::SecretString;
use uuid::Uuid;

use crate::error::ApiError;
use crate::extract::{Authenticated, JsonBody, OptionalJsonBody, bearer};
use crate::state::AppState;

const NOT_ENABLED: ApiError =
    ApiError::NotFound("Built-in accounts are not enabled on this server.");

fn local(state: &AppState) -> Result<&Arc<LocalAuth>, ApiError> {
    state.local.as_ref().ok_or(NOT_ENABLED)
}

impl From<LocalAuthError> for ApiError {
    fn from(e: LocalAuthError) -> Self {
        match e {
            LocalAuthError::InvalidCredentials => Self::InvalidCredentials,
            LocalAuthError::Throttled { retry_after } => Self::Throttled {
                retry_after_secs: retry_after.as_secs() + u64::from(retry_after.subsec_nanos() > 0),
            },
            LocalAuthError::Validation(v) => Self::Validation(v.to_string()),
            LocalAuthError::Forbidden(why) => Self::Forbidden(why),
            LocalAuthError::Taken => {
                Self::Conflict("this username or e-mail is already in use".to_owned())
            }
            LocalAuthError::InvalidLink => {
                Self::BadRequest("this link is invalid, used or expired".to_owned())
            }
            LocalAuthError::NoSuchAccount => Self::NotFound("There is no such account."),
            LocalAuthError::NoSuchSession => Self::NotFound("There is no such session."),
            LocalAuthError::SessionEnded => Self::Unauthenticated,
            LocalAuthError::Busy => {
                Self::Unavailable("too many sign-ins at once; try again shortly")
            }
            LocalAuthError::Store(StoreError::Unavailable(cause)) => {
                tracing::warn!(%cause, "the account store is unavailable");
                Self::Unavailable("the database is unavailable; try again shortly")
            }
            LocalAuthError::Store(e) => Self::Internal(e.to_string()),
            LocalAuthError::Internal(cause) => Self::Internal(cause),
        }
    }
}

fn session_token(issued: IssuedToken) -> api::SessionToken {
    api::SessionToken {
        token: issued.token,
        expires_at: issued.expires_at,
        refresh_token: Some(issued.refresh_token),
    }
}

/// The client that a new session is noted with: its address (as the throttle sees it) and
/// its `User-Agent`.
fn client_info(req: &HttpRequest, state: &AppState) -> ClientInfo {
    ClientInfo {
        address: crate::client_address::of(req, &state.trusted_proxies),
        user_agent: req
            .headers()
            .get(actix_web::http::header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
    }
}

/// The link's URL: the secret after `#`, which browsers never send to a server.
fn link(issued: IssuedLink, kind: &str) -> api::LinkCreated {
    api::LinkCreated {
        url: format!("/#{kind}={}", issued.secret),
        expires_at: issued.expires_at,
    }
}

/// The caller's account and session, from the bearer token the middleware verified.
pub(crate) async fn caller(
    req: &HttpRequest,
    local: &LocalAuth,
) -> Result<(Account, Uuid), ApiError> {
    let token = bearer(req).ok_or(ApiError::Unauthenticated)?;
    local.session_of(&token).await.map_err(|e| match e {
        AuthError::Unauthenticated(_) => ApiError::Unauthenticated,
        AuthError::Unavailable(_) => {
            ApiError::Unavailable("the database is unavailable; try again shortly")
        }
    })
}

/// Creates an account and signs it in. The first account becomes the administrator.
#[utoipa::path(post, path = "/api/auth/local/sign-up", tag = "accounts", request_body = api::LocalSignUp,
    responses((status = 201, body = api::SessionToken),
        (status = 400, body = api::Problem, description = "the invite is invalid, used or expired"),
        (status = 403, body = api::Problem, description = "sign-up is closed, or needs an invite"),
        (status = 404, body = api::Problem, description = "built-in accounts are not enabled"),
        (status = 409, body = api::Problem, description = "the username or e-mail is taken"),
        (status = 422, body = api::Problem)))]
pub async fn sign_up(
    req: HttpRequest,
    JsonBody(body): JsonBody<api::LocalSignUp>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let local = local(&state)?;
    let (_, issued) = local
        .sign_up_from(
            SignUp {
                username: body.username,
                email: body.email,
                password: SecretString::from(body.password),
                invite: body.invite,
            },
            &client_info(&req, &state),
        )
        .await?;
    Ok(HttpResponse::Created().json(session_token(issued)))
}

/// Signs in by username or e-mail. Any wrong pair is 401 `invalid_credentials`; repeated
/// failures are throttled per account and per address (429 with `Retry-After`).
#[utoipa::path(post, path = "/api/auth/local/sign-in", tag = "accounts", request_body = api::LocalSignIn,
    responses((status = 200, body = api::SessionToken),
        (status = 401, body = api::Problem, description = "`invalid_credentials`"),
        (status = 404, body = api::Problem, description = "built-in accounts are not enabled"),
        (status = 429, body = api::Problem, description = "too many failures; see `Retry-After`"),
        (status = 503, body = api::Problem, description = "too many sign-ins at once, or the database (which counts failures for every replica) is unavailable")))]
pub async fn sign_in(
    req: HttpRequest,
    JsonBody(body): JsonBody<api::LocalSignIn>,
    state: web::Data<AppState>,
) -> Result<web::Json<api::SessionToken>, ApiError> {
    let local = local(&state)?;
    let issued = local
        .sign_in_from(
            &body.login,
            &SecretString::from(body.password),
            &client_info(&req, &state),
        )
        .await?;
    Ok(web::Json(session_token(issued)))
}

/// Renews a session: a new access token and a new refresh token. The refresh token sent is
/// used up; sent again later than 30 s after, it revokes the whole session (a stolen copy
/// is in use). 401 when the session is revoked, expired (`CONFAB_SESSION_TTL_SECS`) or idle
/// (`CONFAB_SESSION_IDLE_SECS`).
#[utoipa::path(post, path = "/api/auth/local/refresh", tag = "accounts", request_body = api::RefreshRequest,
    responses((status = 200, body = api::SessionToken),
        (status = 401, body = api::Problem, description = "unknown, reused or ended session: sign in again"),
        (status = 404, body = api::Problem, description = "built-in accounts are not enabled")))]
pub async fn refresh(
    JsonBody(body): JsonBody<api::RefreshRequest>,
    state: web::Data<AppState>,
) -> Result<web::Json<api::SessionToken>, ApiError> {
    let issued = local(&state)?.refresh(&body.refresh_token).await?;
    Ok(web::Json(session_token(issued)))
}

/// The caller's live sessions (this one marked `current`), newest first.
#[utoipa::path(get, path = "/api/auth/local/sessions", tag = "accounts",
    responses((status = 200, body = Vec<api::SessionInfo>), (status = 401, body = api::Problem), (status = 404, body = api::Problem)),
    security(("bearer" = [])))]
pub async fn list_sessions(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<web::Json<Vec<api::SessionInfo>>, ApiError> {
    let local = local(&state)?;
    let (account, current) = caller(&req, local).await?;
    let sessions = local.sessions(&account).await?;
    Ok(web::Json(
        sessions
            .into_iter()
            .map(|s| api::SessionInfo {
                id: s.id,
                created_at: s.created_at,
                last_used_at: s.last_used_at,
                expires_at: s.expires_at,
                user_agent: s.user_agent,
                address: s.address,
                current: s.id == current,
            })
            .collect(),
    ))
}

/// Ends one of the caller's sessions (signs that device out). 404 for an unknown, ended or
/// someone else's session.
#[utoipa::path(delete, path = "/api/auth/local/sessions/{session_id}", tag = "accounts",
    params(("session_id" = Uuid, Path)),
    responses((status = 204), (status = 400, body = api::Problem), (status = 401, body = api::Problem), (status = 404, body = api::Problem)),
    security(("bearer" = [])))]
pub async fn end_session(
    req: HttpRequest,
    id: web::Path<Uuid>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let local = local(&state)?;
    let (account, _) = caller(&req, local).await?;
    local.end_session(&account, *id).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// The caller's security history (ASVS 2.2.3, 2.5.5), newest first: sign-ins, password
/// changes and resets, "sign out everywhere"; `current` marks what came from this session.
#[utoipa::path(get, path = "/api/auth/local/activity", tag = "accounts",
    responses((status = 200, body = Vec<api::SecurityEventInfo>), (status = 401, body = api::Problem), (status = 404, body = api::Problem)),
    security(("bearer" = [])))]
pub async fn list_activity(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<web::Json<Vec<api::SecurityEventInfo>>, ApiError> {
    let local = local(&state)?;
    let (account, current) = caller(&req, local).await?;
    let events = local.activity(&account).await?;
    Ok(web::Json(
        events
            .into_iter()
            .map(|e| api::SecurityEventInfo {
                id: e.id,
                kind: match e.kind {
                    SecurityEventKind::PasswordChanged => api::SecurityEventKind::PasswordChanged,
                    SecurityEventKind::PasswordReset => api::SecurityEventKind::PasswordReset,
                    SecurityEventKind::SignedIn => api::SecurityEventKind::SignedIn,
                    SecurityEventKind::SignedOutEverywhere => {
                        api::SecurityEventKind::SignedOutEverywhere
                    }
                },
                at: e.at,
                user_agent: e.user_agent,
                address: e.address,
                unread: e.read_at.is_none(),
                current: e.session_id == Some(current),
            })
            .collect(),
    ))
}

/// Marks the caller's security history read (the notice of it is dismissed): the events up
/// to `up_to` (the newest the client showed), or all so far; an empty body is `{}`.
#[utoipa::path(post, path = "/api/auth/local/activity/read", tag = "accounts", request_body = Option<api::ReadActivity>,
    responses((status = 204), (status = 400, body = api::Problem), (status = 401, body = api::Problem), (status = 404, body = api::Problem),
        (status = 413, body = api::Problem), (status = 415, body = api::Problem), (status = 422, body = api::Problem)),
    security(("bearer" = [])))]
pub async fn read_activity(
    req: HttpRequest,
    OptionalJsonBody(body): OptionalJsonBody<api::ReadActivity>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let local = local(&state)?;
    let (account, _) = caller(&req, local).await?;
    local.mark_activity_read(&account, body.up_to).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Sets a new password with an administrator's reset link; every session is signed out.
#[utoipa::path(post, path = "/api/auth/local/reset", tag = "accounts", request_body = api::PasswordReset,
    responses((status = 204),
        (status = 400, body = api::Problem, description = "the link is invalid, used or expired"),
        (status = 404, body = api::Problem, description = "built-in accounts are not enabled"),
        (status = 422, body = api::Problem)))]
pub async fn reset(
    req: HttpRequest,
    JsonBody(body): JsonBody<api::PasswordReset>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    local(&state)?
        .reset_password_from(
            &body.token,
            &SecretString::from(body.new),
            &client_info(&req, &state),
        )
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Ends this session.
#[utoipa::path(post, path = "/api/auth/local/sign-out", tag = "accounts",
    responses((status = 204), (status = 401, body = api::Problem), (status = 404, body = api::Problem)),
    security(("bearer" = [])))]
pub async fn sign_out(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let local = local(&state)?;
    let (_, session) = caller(&req, local).await?;
    local.sign_out(session).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Ends every session of the account, on every device.
#[utoipa::path(post, path = "/api/auth/local/sign-out-all", tag = "accounts",
    responses((status = 204), (status = 401, body = api::Problem), (status = 404, body = api::Problem)),
    security(("bearer" = [])))]
pub async fn sign_out_all(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let local = local(&state)?;
    let (account, session) = caller(&req, local).await?;
    local
        .sign_out_all_from(&account, Some(session), &client_info(&req, &state))
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Changes the password: every session ends, and a new one is returned for this client.
#[utoipa::path(post, path = "/api/auth/local/password", tag = "accounts", request_body = api::PasswordChange,
    responses((status = 200, body = api::SessionToken),
        (status = 401, body = api::Problem, description = "`invalid_credentials`: the current password is wrong"),
        (status = 404, body = api::Problem), (status = 422, body = api::Problem),
        (status = 429, body = api::Problem)),
    security(("bearer" = [])))]
pub async fn change_password(
    req: HttpRequest,
    JsonBody(body): JsonBody<api::PasswordChange>,
    state: web::Data<AppState>,
) -> Result<web::Json<api::SessionToken>, ApiError> {
    let local = local(&state)?;
    let (account, _) = caller(&req, local).await?;
    let issued = local
        .change_password_from(
            &account,
            &SecretString::from(body.current),
            &SecretString::from(body.new),
            &client_info(&req, &state),
        )
        .await?;
    Ok(web::Json(session_token(issued)))
}

/// Deletes the caller's account and all its data (projects, conversations, files).
#[utoipa::path(delete, path = "/api/auth/local/account", tag = "accounts", request_body = api::AccountDeletion,
    responses((status = 204),
        (status = 401, body = api::Problem, description = "`invalid_credentials`: the password is wrong"),
        (status = 404, body = api::Problem), (status = 429, body = api::Problem)),
    security(("bearer" = [])))]
pub async fn delete_account(
    req: HttpRequest,
    Authenticated(principal): Authenticated,
    JsonBody(body): JsonBody<api::AccountDeletion>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let local = local(&state)?;
    let (account, _) = caller(&req, local).await?;
    local
        .confirm_password(&account, &SecretString::from(body.password))
        .await?;
    loop {
        let page = state
            .projects
            .list(
                &principal,
                &PageQuery {
                    limit: PageLimit::default(),
                    cursor: None,
                },
            )
            .await?;
        if page.items.is_empty() {
            break;
        }
        for project in page.items {
            state.projects.delete(&principal, project.id).await?;
        }
    }
    local.delete_account(&account).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// A single-use invite link, valid for 7 days (administrators only).
#[utoipa::path(post, path = "/api/admin/invites", tag = "accounts",
    responses((status = 201, body = api::LinkCreated),
        (status = 401, body = api::Problem), (status = 403, body = api::Problem),
        (status = 404, body = api::Problem)),
    security(("bearer" = [])))]
pub async fn create_invite(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let local = local(&state)?;
    let (admin, _) = caller(&req, local).await?;
    let issued = local.create_invite(&admin).await?;
    Ok(HttpResponse::Created().json(link(issued, "invite")))
}

/// A single-use password reset link for an account, valid for 1 hour (administrators only).
#[utoipa::path(post, path = "/api/admin/password-resets", tag = "accounts", request_body = api::ResetRequest,
    responses((status = 201, body = api::LinkCreated),
        (status = 401, body = api::Problem), (status = 403, body = api::Problem),
        (status = 404, body = api::Problem, description = "no such account, or built-in accounts are not enabled")),
    security(("bearer" = [])))]
pub async fn create_reset(
    req: HttpRequest,
    JsonBody(body): JsonBody<api::ResetRequest>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let local = local(&state)?;
    let (admin, _) = caller(&req, local).await?;
    let issued = local.create_reset(&admin, &body.login).await?;
    Ok(HttpResponse::Created().json(link(issued, "reset")))
}
