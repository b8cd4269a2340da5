//! The route table. Every `/api` route is authenticated except `GET /api/config`,
//! `POST /api/auth/dev-login` and `GET /api/openapi.json`; unknown `/api` paths answer 401
//! without a valid token and 404 with one; a known path with another method answers 405.

pub mod chat;
pub mod files;
pub mod ops;
pub mod projects;

use actix_web::{HttpRequest, HttpResponse, web};

use crate::error::ApiError;
use crate::extract::Authenticated;
use crate::openapi;
use crate::web_assets;

/// A 405 for a public path.
fn not_allowed(allow: &'static str) -> actix_web::Route {
    web::to(move || async move { Err::<HttpResponse, _>(ApiError::MethodNotAllowed { allow }) })
}

/// A 405 for a protected path: authentication still comes first.
fn not_allowed_authed(allow: &'static str) -> actix_web::Route {
    web::to(move |_: Authenticated| async move {
        Err::<HttpResponse, _>(ApiError::MethodNotAllowed { allow })
    })
}

/// Mounts every route.
pub fn configure(cfg: &mut web::ServiceConfig) {
    use projects as p;
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
        web::resource("/api/openapi.json")
            .get(openapi::serve)
            .default_service(not_allowed("GET")),
    )
    .service(
        web::resource("/api/me")
            .get(ops::me)
            .default_service(not_allowed_authed("GET")),
    )
    .service(
        web::resource("/api/projects")
            .get(p::list_projects)
            .post(p::create_project)
            .default_service(not_allowed_authed("GET, POST")),
    )
    .service(
        web::resource("/api/projects/{project_id}")
            .get(p::get_project)
            .patch(p::update_project)
            .delete(p::delete_project)
            .default_service(not_allowed_authed("GET, PATCH, DELETE")),
    )
    .service(
        web::resource("/api/projects/{project_id}/prompts")
            .get(p::list_prompts)
            .post(p::create_prompt)
            .default_service(not_allowed_authed("GET, POST")),
    )
    .service(
        web::resource("/api/projects/{project_id}/prompts/active")
            .get(p::active_prompt)
            .default_service(not_allowed_authed("GET")),
    )
    .service(
        web::resource("/api/projects/{project_id}/prompts/{prompt_id}/activate")
            .post(p::activate_prompt)
            .default_service(not_allowed_authed("POST")),
    )
    .service(
        web::resource("/api/projects/{project_id}/conversations")
            .get(p::list_conversations)
            .post(p::create_conversation)
            .default_service(not_allowed_authed("GET, POST")),
    )
    .service(
        web::resource("/api/projects/{project_id}/files")
            .get(files::list_files)
            .post(files::upload_file)
            .default_service(not_allowed_authed("GET, POST")),
    )
    .service(
        web::resource("/api/conversations/{conversation_id}")
            .get(p::get_conversation)
            .patch(p::update_conversation)
            .delete(p::delete_conversation)
            .default_service(not_allowed_authed("GET, PATCH, DELETE")),
    )
    .service(
        web::resource("/api/conversations/{conversation_id}/messages")
            .get(p::list_messages)
            .post(chat::send_message)
            .default_service(not_allowed_authed("GET, POST")),
    )
    .service(
        web::resource("/api/conversations/{conversation_id}/cancel")
            .post(chat::cancel)
            .default_service(not_allowed_authed("POST")),
    )
    .service(
        web::resource("/api/files/{file_id}")
            .get(files::get_file)
            .delete(files::delete_file)
            .default_service(not_allowed_authed("GET, DELETE")),
    )
    .service(
        web::resource("/api/files/{file_id}/content")
            .get(files::download_file)
            .default_service(not_allowed_authed("GET")),
    )
    .service(web::resource("/docs").get(openapi::docs_redirect))
    .service(openapi::docs());
}

/// Everything no route matched: unknown `/api` paths are 401/404 problems; other paths
/// belong to the browser client.
pub async fn fallback(req: HttpRequest) -> Result<HttpResponse, ApiError> {
    let path = req.path();
    if path == "/api" || path.starts_with("/api/") {
        let mut payload = actix_web::dev::Payload::None;
        <Authenticated as actix_web::FromRequest>::from_request(&req, &mut payload).await?;
        return Err(ApiError::NotFound("There is no such API route."));
    }
    if req.method() != actix_web::http::Method::GET && req.method() != actix_web::http::Method::HEAD
    {
        return Err(ApiError::NotFound("There is no such route."));
    }
    Ok(web_assets::serve(req).await)
}
