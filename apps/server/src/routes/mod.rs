//! The route table, whose structure is the access rule: the public routes are registered
//! first, then ONE `/api` scope wrapped by the authentication middleware holds every other
//! `/api` path — its routes, their 405s and its default service (an unknown `/api` path:
//! 401 without a valid token, 404 with one). Everything else belongs to the browser client.

pub mod chat;
pub mod files;
pub mod local;
pub mod oidc;
pub mod ops;
pub mod projects;
pub mod search;
pub mod shares;
pub mod transfer;
pub mod usage;

use actix_web::middleware::from_fn;
use actix_web::{HttpRequest, HttpResponse, web};

use crate::error::ApiError;
use crate::extract::authenticate;
use crate::openapi;
use crate::web_assets;

/// A 405 with `Allow` for a known path (inside the scope, after authentication).
fn not_allowed(allow: &'static str) -> actix_web::Route {
    web::to(move || async move { Err::<HttpResponse, _>(ApiError::MethodNotAllowed { allow }) })
}

/// Mounts every route: the public ones, then the authenticated `/api` scope.
pub fn configure(cfg: &mut web::ServiceConfig) {
    public(cfg);
    cfg.service(
        web::scope("/api")
            .wrap(from_fn(authenticate))
            .configure(protected)
            .default_service(web::to(unknown_api_path)),
    );
}

/// Routes that take no token. The `/api` ones must be registered before the `/api` scope,
/// which would otherwise take their paths.
fn public(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/healthz")
            .get(ops::healthz)
            .default_service(not_allowed("GET")),
    )
    .service(
        web::resource("/readyz")
            .get(ops::readyz)
            .default_service(not_allowed("GET")),
    )
    .service(
        web::resource("/metrics")
            .get(ops::metrics)
            .default_service(not_allowed("GET")),
    )
    .service(
        web::resource("/s/{token}")
            .get(shares::shared_page)
            .default_service(not_allowed("GET")),
    )
    .service(
        web::resource("/api/shared/{token}")
            .get(shares::shared_json)
            .default_service(not_allowed("GET")),
    )
    .service(
        web::resource("/api/config")
            .get(ops::client_config)
            .default_service(not_allowed("GET")),
    )
    .service(
        web::resource("/api/auth/dev-login")
            .post(ops::dev_login)
            .default_service(not_allowed("POST")),
    )
    .service(
        web::resource("/api/auth/local/sign-up")
            .post(local::sign_up)
            .default_service(not_allowed("POST")),
    )
    .service(
        web::resource("/api/auth/local/sign-in")
            .post(local::sign_in)
            .default_service(not_allowed("POST")),
    )
    .service(
        web::resource("/api/auth/local/refresh")
            .post(local::refresh)
            .default_service(not_allowed("POST")),
    )
    .service(
        web::resource("/api/auth/local/reset")
            .post(local::reset)
            .default_service(not_allowed("POST")),
    )
    .service(
        web::resource("/api/auth/oidc/token")
            .post(oidc::token)
            .default_service(not_allowed("POST")),
    )
    .service(
        web::resource("/auth/oidc/sign-in")
            .get(oidc::sign_in)
            .default_service(not_allowed("GET")),
    )
    .service(
        web::resource("/auth/oidc/callback")
            .get(oidc::callback)
            .default_service(not_allowed("GET")),
    )
    .service(
        web::resource("/auth/oidc/sign-out")
            .post(oidc::sign_out)
            .default_service(not_allowed("POST")),
    )
    .service(
        web::resource("/api/openapi.json")
            .get(openapi::serve)
            .default_service(not_allowed("GET")),
    )
    .service(web::resource("/docs").get(openapi::docs_redirect))
    .service(openapi::docs());
}

/// The routes of the `/api` scope, relative to it.
fn protected(cfg: &mut web::ServiceConfig) {
    use projects as p;
    cfg.service(
        web::resource("/me")
            .get(ops::me)
            .default_service(not_allowed("GET")),
    )
    .service(
        web::resource("/auth/local/sign-out")
            .post(local::sign_out)
            .default_service(not_allowed("POST")),
    )
    .service(
        web::resource("/auth/local/sign-out-all")
            .post(local::sign_out_all)
            .default_service(not_allowed("POST")),
    )
    .service(
        web::resource("/auth/local/sessions")
            .get(local::list_sessions)
            .default_service(not_allowed("GET")),
    )
    .service(
        web::resource("/auth/local/activity")
            .get(local::list_activity)
            .default_service(not_allowed("GET")),
    )
    .service(
        web::resource("/auth/local/activity/read")
            .post(local::read_activity)
            .default_service(not_allowed("POST")),
    )
    .service(
        web::resource("/auth/local/sessions/{session_id}")
            .delete(local::end_session)
            .default_service(not_allowed("DELETE")),
    )
    .service(
        web::resource("/auth/local/password")
            .post(local::change_password)
            .default_service(not_allowed("POST")),
    )
    .service(
        web::resource("/auth/local/account")
            .delete(local::delete_account)
            .default_service(not_allowed("DELETE")),
    )
    .service(
        web::resource("/admin/invites")
            .post(local::create_invite)
            .default_service(not_allowed("POST")),
    )
    .service(
        web::resource("/usage")
            .get(usage::my_usage)
            .default_service(not_allowed("GET")),
    )
    .service(
        web::resource("/admin/users")
            .get(usage::admin_users)
            .default_service(not_allowed("GET")),
    )
    .service(
        web::resource("/admin/users/{user_id}/quota")
            .put(usage::set_quota)
            .default_service(not_allowed("PUT")),
    )
    .service(
        web::resource("/admin/usage")
            .get(usage::admin_usage)
            .default_service(not_allowed("GET")),
    )
    .service(
        web::resource("/admin/password-resets")
            .post(local::create_reset)
            .default_service(not_allowed("POST")),
    )
    .service(
        web::resource("/projects")
            .get(p::list_projects)
            .post(p::create_project)
            .default_service(not_allowed("GET, POST")),
    )
    .service(
        web::resource("/projects/{project_id}")
            .get(p::get_project)
            .patch(p::update_project)
            .delete(p::delete_project)
            .default_service(not_allowed("GET, PATCH, DELETE")),
    )
    .service(
        web::resource("/projects/{project_id}/prompts")
            .get(p::list_prompts)
            .post(p::create_prompt)
            .default_service(not_allowed("GET, POST")),
    )
    .service(
        web::resource("/projects/{project_id}/prompts/active")
            .get(p::active_prompt)
            .default_service(not_allowed("GET")),
    )
    .service(
        web::resource("/projects/{project_id}/prompts/{prompt_id}/activate")
            .post(p::activate_prompt)
            .default_service(not_allowed("POST")),
    )
    .service(
        web::resource("/projects/{project_id}/conversations")
            .get(p::list_conversations)
            .post(p::create_conversation)
            .default_service(not_allowed("GET, POST")),
    )
    .service(
        web::resource("/projects/{project_id}/files")
            .get(files::list_files)
            .post(files::upload_file)
            .default_service(not_allowed("GET, POST")),
    )
    .service(
        web::resource("/conversations/{conversation_id}")
            .get(p::get_conversation)
            .patch(p::update_conversation)
            .delete(p::delete_conversation)
            .default_service(not_allowed("GET, PATCH, DELETE")),
    )
    .service(
        web::resource("/conversations/{conversation_id}/messages")
            .get(p::list_messages)
            .post(chat::send_message)
            .default_service(not_allowed("GET, POST")),
    )
    .service(
        web::resource("/conversations/{conversation_id}/leaf")
            .put(p::choose_leaf)
            .default_service(not_allowed("PUT")),
    )
    .service(
        web::resource("/messages/{message_id}/regenerate")
            .post(chat::regenerate)
            .default_service(not_allowed("POST")),
    )
    .service(
        web::resource("/conversations/{conversation_id}/stream")
            .get(chat::follow)
            .default_service(not_allowed("GET")),
    )
    .service(
        web::resource("/conversations/{conversation_id}/cancel")
            .post(chat::cancel)
            .default_service(not_allowed("POST")),
    )
    .service(
        web::resource("/conversations/{conversation_id}/shares")
            .get(shares::list_shares)
            .post(shares::create_share)
            .default_service(not_allowed("GET, POST")),
    )
    .service(
        web::resource("/shares/{share_id}")
            .delete(shares::revoke_share)
            .default_service(not_allowed("DELETE")),
    )
    .service(
        web::resource("/export")
            .get(transfer::export_account)
            .default_service(not_allowed("GET")),
    )
    .service(
        web::resource("/conversations/{conversation_id}/export")
            .get(transfer::export_conversation)
            .default_service(not_allowed("GET")),
    )
    .service(
        web::resource("/projects/{project_id}/import")
            .post(transfer::import)
            .default_service(not_allowed("POST")),
    )
    .service(
        web::resource("/search")
            .get(search::search)
            .default_service(not_allowed("GET")),
    )
    .service(
        web::resource("/files/{file_id}")
            .get(files::get_file)
            .delete(files::delete_file)
            .default_service(not_allowed("GET, DELETE")),
    )
    .service(
        web::resource("/files/{file_id}/content")
            .get(files::download_file)
            .default_service(not_allowed("GET")),
    );
}

/// The `/api` scope's default service: reached only with a valid token.
async fn unknown_api_path() -> Result<HttpResponse, ApiError> {
    Err(ApiError::NotFound("There is no such API route."))
}

/// Everything outside `/api` that no route matched: the browser client's pages and files
/// (GET and HEAD), else 404.
pub async fn fallback(req: HttpRequest) -> Result<HttpResponse, ApiError> {
    use actix_web::http::Method;
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return Err(ApiError::NotFound("There is no such route."));
    }
    Ok(web_assets::serve(req).await)
}
