//! Operational and public routes: health, readiness, metrics, client config, dev sign-in, me.

use actix_web::{HttpResponse, web};
use confab_api_types as api;
use confab_core::{LiveError, MessageId};

use crate::error::ApiError;
use crate::extract::{Authenticated, JsonBody};
use crate::state::AppState;

/// 200 while the process runs.
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(api::Health {
        status: "ok".to_owned(),
    })
}

/// 200 when the database answers (and Redis, when configured), else 503.
pub async fn readyz(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    state.projects.ready().await?;
    // Following a reply that never existed asks the live backend without changing anything:
    // `NotFound` is its answer when it is reachable.
    if let Err(LiveError::Unavailable(cause)) = state.live.follow(MessageId::new(), 0).await {
        tracing::warn!(%cause, "Redis is unavailable");
        return Err(ApiError::Unavailable(
            "Redis is unavailable; try again shortly",
        ));
    }
    Ok(HttpResponse::Ok().json(api::Health {
        status: "ready".to_owned(),
    }))
}

/// Prometheus text format.
pub async fn metrics(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/openmetrics-text; version=1.0.0; charset=utf-8")
        .body(state.metrics.render())
}

/// Public settings the browser client needs: sign-in provider, model, limits.
#[utoipa::path(get, path = "/api/config", tag = "session",
    responses((status = 200, body = api::ClientConfig)))]
pub async fn client_config(state: web::Data<AppState>) -> web::Json<api::ClientConfig> {
    let mut config = state.client_config.clone();
    if let Some(local) = &state.local {
        // A store that cannot answer: no offer (a sign-up would fail the same way).
        config.auth.first_account = local.awaits_first_account().await.unwrap_or_else(|e| {
            tracing::warn!(error = %e, "could not tell whether an account exists");
            false
        });
    }
    web::Json(config)
}

/// Sign in with a username (dev sign-in only; 404 otherwise).
#[utoipa::path(post, path = "/api/auth/dev-login", tag = "session", request_body = api::DevLogin,
    responses((status = 200, body = api::DevToken), (status = 404, body = api::Problem, description = "dev sign-in is not the configured provider"),
        (status = 415, body = api::Problem), (status = 422, body = api::Problem)))]
pub async fn dev_login(
    JsonBody(body): JsonBody<api::DevLogin>,
    state: web::Data<AppState>,
) -> Result<web::Json<api::DevToken>, ApiError> {
    let issuer = state.dev_tokens.as_ref().ok_or(ApiError::NotFound(
        "Dev sign-in is not enabled on this server.",
    ))?;
    let (token, expires_at) = issuer.issue(&body.username).map_err(ApiError::Validation)?;
    Ok(web::Json(api::DevToken { token, expires_at }))
}

/// Who the token belongs to.
#[utoipa::path(get, path = "/api/me", tag = "session",
    responses((status = 200, body = api::Me), (status = 401, body = api::Problem)),
    security(("bearer" = [])))]
pub async fn me(
    Authenticated(principal): Authenticated,
    req: actix_web::HttpRequest,
    state: web::Data<AppState>,
) -> web::Json<api::Me> {
    let is_admin = crate::routes::usage::is_admin(&req, &principal, &state).await;
    let (name, email) = super::oidc::identity(&state, &req);
    web::Json(api::Me {
        user_id: principal.user_id.to_string(),
        is_admin,
        name,
        email,
    })
}
