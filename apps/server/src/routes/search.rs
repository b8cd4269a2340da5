//! `GET /api/search`: full-text search over the signed-in user's messages and titles.

use actix_web::web;
use confab_api_types as api;
use confab_core::ProjectId;
use serde::Deserialize;
use uuid::Uuid;

use crate::convert;
use crate::error::ApiError;
use crate::extract::{Authenticated, Paging};
use crate::state::AppState;

/// The query string besides `limit` and `cursor`.
#[derive(Deserialize)]
pub struct SearchParams {
    /// The words to find.
    q: Option<String>,
    /// Only this project's conversations.
    project_id: Option<Uuid>,
}

/// Search your messages and conversation titles: best match first, newest first on equal
/// relevance. `q` holds words (case and diacritics are ignored), `"quoted phrases"`, and
/// its last word matches as a prefix unless a space follows it (search as you type). Each
/// result's `snippet` is HTML-escaped with the matched words in `<mark>`…`</mark>` and no
/// other markup. A title match has `message_id` and `role` `null`. A reply is found once it
/// has finished. `q` blank, without a letter or digit, or over 500 characters is 422; a
/// `project_id` that is not yours is 404.
#[utoipa::path(get, path = "/api/search", tag = "search",
    params(
        ("q" = String, Query, description = "the words to find (1–500 characters)"),
        ("project_id" = Option<Uuid>, Query, description = "only this project's conversations"),
        ("limit" = Option<u32>, Query), ("cursor" = Option<String>, Query)),
    responses((status = 200, body = api::Page<api::SearchResult>), (status = 400, body = api::Problem), (status = 401, body = api::Problem), (status = 404, body = api::Problem), (status = 422, body = api::Problem)),
    security(("bearer" = [])))]
pub async fn search(
    Authenticated(p): Authenticated,
    params: web::Query<SearchParams>,
    Paging(page): Paging,
    state: web::Data<AppState>,
) -> Result<web::Json<api::Page<api::SearchResult>>, ApiError> {
    let params = params.into_inner();
    let page = state
        .search
        .search(
            &p,
            params.q.as_deref().unwrap_or_default(),
            params.project_id.map(ProjectId::from_uuid),
            &page,
        )
        .await?;
    Ok(web::Json(convert::page(page, convert::search_result)))
}
