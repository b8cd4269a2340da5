//! `/api/projects`, prompts and conversations under a project.

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use bytes::Bytes;
use confab_api_types as api;
use confab_core::{ConversationId, MessageId, ProjectId, PromptId};
use uuid::Uuid;

use crate::convert;
use crate::error::ApiError;
use crate::extract::{Authenticated, JsonBody, OptionalJsonBody, Paging};
use crate::pages::{self, CachedPage, PageKey};
use crate::state::AppState;

type Json<T> = Result<web::Json<T>, ApiError>;

/// List the caller's projects, newest first.
#[utoipa::path(get, path = "/api/projects", tag = "projects",
    params(("limit" = Option<u32>, Query, description = "1–200, default 50"), ("cursor" = Option<String>, Query)),
    responses((status = 200, body = api::Page<api::Project>), (status = 401, body = api::Problem), (status = 422, body = api::Problem)),
    security(("bearer" = [])))]
pub async fn list_projects(
    Authenticated(p): Authenticated,
    Paging(page): Paging,
    state: web::Data<AppState>,
) -> Json<api::Page<api::Project>> {
    let page = state.projects.list(&p, &page).await?;
    Ok(web::Json(convert::page(page, convert::project)))
}

/// Create a project.
#[utoipa::path(post, path = "/api/projects", tag = "projects", request_body = api::CreateProject,
    responses((status = 201, body = api::Project), (status = 400, body = api::Problem), (status = 401, body = api::Problem),
        (status = 413, body = api::Problem), (status = 415, body = api::Problem), (status = 422, body = api::Problem)),
    security(("bearer" = [])))]
pub async fn create_project(
    Authenticated(p): Authenticated,
    JsonBody(body): JsonBody<api::CreateProject>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let project = state
        .projects
        .create(&p, &body.name, body.description.as_deref())
        .await?;
    Ok(HttpResponse::Created().json(convert::project(project)))
}

/// One project.
#[utoipa::path(get, path = "/api/projects/{project_id}", tag = "projects",
    params(("project_id" = Uuid, Path)),
    responses((status = 200, body = api::Project), (status = 400, body = api::Problem), (status = 401, body = api::Problem), (status = 404, body = api::Problem)),
    security(("bearer" = [])))]
pub async fn get_project(
    Authenticated(p): Authenticated,
    id: web::Path<Uuid>,
    state: web::Data<AppState>,
) -> Json<api::Project> {
    let project = state.projects.get(&p, ProjectId::from_uuid(*id)).await?;
    Ok(web::Json(convert::project(project)))
}

/// Change a project's name, description (`"description": null` clears it), knowledge
/// setting (`"knowledge": false`: its files are not given to the model as sources) or
/// knowledge language (`"language": "french"`: one of PostgreSQL's built-in text search
/// configurations, see `Project.language`; 422 for another; on PostgreSQL the project's
/// knowledge is re-indexed in it before the answer).
#[utoipa::path(patch, path = "/api/projects/{project_id}", tag = "projects", request_body = Option<api::UpdateProject>,
    params(("project_id" = Uuid, Path)),
    responses((status = 200, body = api::Project), (status = 400, body = api::Problem), (status = 401, body = api::Problem),
        (status = 404, body = api::Problem), (status = 415, body = api::Problem), (status = 422, body = api::Problem)),
    security(("bearer" = [])))]
pub async fn update_project(
    Authenticated(p): Authenticated,
    id: web::Path<Uuid>,
    OptionalJsonBody(body): OptionalJsonBody<api::UpdateProject>,
    state: web::Data<AppState>,
) -> Json<api::Project> {
    let description = body.description.as_ref().map(Option::as_deref);
    let project = state
        .projects
        .update(
            &p,
            ProjectId::from_uuid(*id),
            body.name.as_deref(),
            description,
            body.knowledge,
            body.language.as_deref(),
        )
        .await?;
    Ok(web::Json(convert::project(project)))
}

/// Delete a project with its prompts, conversations, messages and files.
#[utoipa::path(delete, path = "/api/projects/{project_id}", tag = "projects",
    params(("project_id" = Uuid, Path)),
    responses((status = 204), (status = 400, body = api::Problem), (status = 401, body = api::Problem), (status = 404, body = api::Problem)),
    security(("bearer" = [])))]
pub async fn delete_project(
    Authenticated(p): Authenticated,
    id: web::Path<Uuid>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    state.projects.delete(&p, ProjectId::from_uuid(*id)).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// A project's prompt versions, highest version first.
#[utoipa::path(get, path = "/api/projects/{project_id}/prompts", tag = "prompts",
    params(("project_id" = Uuid, Path), ("limit" = Option<u32>, Query), ("cursor" = Option<String>, Query)),
    responses((status = 200, body = api::Page<api::Prompt>), (status = 401, body = api::Problem), (status = 404, body = api::Problem)),
    security(("bearer" = [])))]
pub async fn list_prompts(
    Authenticated(p): Authenticated,
    id: web::Path<Uuid>,
    Paging(page): Paging,
    state: web::Data<AppState>,
) -> Json<api::Page<api::Prompt>> {
    let page = state
        .prompts
        .list(&p, ProjectId::from_uuid(*id), &page)
        .await?;
    Ok(web::Json(convert::page(page, convert::prompt)))
}

/// Store a new prompt version (active unless `"activate": false`).
#[utoipa::path(post, path = "/api/projects/{project_id}/prompts", tag = "prompts", request_body = api::CreatePrompt,
    params(("project_id" = Uuid, Path)),
    responses((status = 201, body = api::Prompt), (status = 400, body = api::Problem), (status = 401, body = api::Problem),
        (status = 404, body = api::Problem), (status = 415, body = api::Problem), (status = 422, body = api::Problem)),
    security(("bearer" = [])))]
pub async fn create_prompt(
    Authenticated(p): Authenticated,
    id: web::Path<Uuid>,
    JsonBody(body): JsonBody<api::CreatePrompt>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let prompt = state
        .prompts
        .create(
            &p,
            ProjectId::from_uuid(*id),
            &body.content,
            body.activate.unwrap_or(true),
        )
        .await?;
    Ok(HttpResponse::Created().json(convert::prompt(prompt)))
}

/// The project's active prompt; 404 when none is active.
#[utoipa::path(get, path = "/api/projects/{project_id}/prompts/active", tag = "prompts",
    params(("project_id" = Uuid, Path)),
    responses((status = 200, body = api::Prompt), (status = 401, body = api::Problem), (status = 404, body = api::Problem)),
    security(("bearer" = [])))]
pub async fn active_prompt(
    Authenticated(p): Authenticated,
    id: web::Path<Uuid>,
    state: web::Data<AppState>,
) -> Json<api::Prompt> {
    let prompt = state.prompts.active(&p, ProjectId::from_uuid(*id)).await?;
    Ok(web::Json(convert::prompt(prompt)))
}

/// Make a prompt version the active one.
#[utoipa::path(post, path = "/api/projects/{project_id}/prompts/{prompt_id}/activate", tag = "prompts",
    params(("project_id" = Uuid, Path), ("prompt_id" = Uuid, Path)),
    responses((status = 200, body = api::Prompt), (status = 400, body = api::Problem), (status = 401, body = api::Problem), (status = 404, body = api::Problem)),
    security(("bearer" = [])))]
pub async fn activate_prompt(
    Authenticated(p): Authenticated,
    ids: web::Path<(Uuid, Uuid)>,
    state: web::Data<AppState>,
) -> Json<api::Prompt> {
    let (project, prompt) = ids.into_inner();
    let prompt = state
        .prompts
        .activate(
            &p,
            ProjectId::from_uuid(project),
            PromptId::from_uuid(prompt),
        )
        .await?;
    Ok(web::Json(convert::prompt(prompt)))
}

/// A project's conversations, most recently updated first.
#[utoipa::path(get, path = "/api/projects/{project_id}/conversations", tag = "conversations",
    params(("project_id" = Uuid, Path), ("limit" = Option<u32>, Query), ("cursor" = Option<String>, Query)),
    responses((status = 200, body = api::Page<api::Conversation>), (status = 401, body = api::Problem), (status = 404, body = api::Problem)),
    security(("bearer" = [])))]
pub async fn list_conversations(
    Authenticated(p): Authenticated,
    id: web::Path<Uuid>,
    Paging(page): Paging,
    state: web::Data<AppState>,
) -> Json<api::Page<api::Conversation>> {
    let page = state
        .conversations
        .list(&p, ProjectId::from_uuid(*id), &page)
        .await?;
    Ok(web::Json(convert::page(page, convert::conversation)))
}

/// Start a conversation (the body may be empty).
#[utoipa::path(post, path = "/api/projects/{project_id}/conversations", tag = "conversations", request_body = Option<api::CreateConversation>,
    params(("project_id" = Uuid, Path)),
    responses((status = 201, body = api::Conversation), (status = 401, body = api::Problem), (status = 404, body = api::Problem), (status = 422, body = api::Problem)),
    security(("bearer" = [])))]
pub async fn create_conversation(
    Authenticated(p): Authenticated,
    id: web::Path<Uuid>,
    OptionalJsonBody(body): OptionalJsonBody<api::CreateConversation>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let conversation = state
        .conversations
        .create(&p, ProjectId::from_uuid(*id), body.title.as_deref())
        .await?;
    Ok(HttpResponse::Created().json(convert::conversation(conversation)))
}

/// One conversation.
#[utoipa::path(get, path = "/api/conversations/{conversation_id}", tag = "conversations",
    params(("conversation_id" = Uuid, Path)),
    responses((status = 200, body = api::Conversation), (status = 401, body = api::Problem), (status = 404, body = api::Problem)),
    security(("bearer" = [])))]
pub async fn get_conversation(
    Authenticated(p): Authenticated,
    id: web::Path<Uuid>,
    state: web::Data<AppState>,
) -> Json<api::Conversation> {
    let conversation = state
        .conversations
        .get(&p, ConversationId::from_uuid(*id))
        .await?;
    Ok(web::Json(convert::conversation(conversation)))
}

/// Rename a conversation, or choose its model. Only the fields present change: `title` sets
/// the title (trimmed; `null` or blank clears it), `model` sets the model (`null` goes back
/// to the default). An absent field is left as it is, so `{}` changes nothing and answers
/// the conversation unchanged. 422 for a model not offered.
#[utoipa::path(patch, path = "/api/conversations/{conversation_id}", tag = "conversations", request_body = api::UpdateConversation,
    params(("conversation_id" = Uuid, Path)),
    responses((status = 200, body = api::Conversation), (status = 401, body = api::Problem), (status = 404, body = api::Problem), (status = 422, body = api::Problem)),
    security(("bearer" = [])))]
pub async fn update_conversation(
    Authenticated(p): Authenticated,
    id: web::Path<Uuid>,
    JsonBody(body): JsonBody<api::UpdateConversation>,
    state: web::Data<AppState>,
) -> Json<api::Conversation> {
    let conversation = state
        .conversations
        .update(
            &p,
            ConversationId::from_uuid(*id),
            body.title.as_ref().map(Option::as_deref),
            body.model.as_ref().map(Option::as_deref),
        )
        .await?;
    Ok(web::Json(convert::conversation(conversation)))
}

/// Delete a conversation and its messages.
#[utoipa::path(delete, path = "/api/conversations/{conversation_id}", tag = "conversations",
    params(("conversation_id" = Uuid, Path)),
    responses((status = 204), (status = 401, body = api::Problem), (status = 404, body = api::Problem)),
    security(("bearer" = [])))]
pub async fn delete_conversation(
    Authenticated(p): Authenticated,
    id: web::Path<Uuid>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    state
        .conversations
        .delete(&p, ConversationId::from_uuid(*id))
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Which branch to read (`?leaf=`).
#[derive(serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct BranchQuery {
    /// The message the branch ends at; absent: the conversation's `leaf_id`. Read as text, so
    /// that a malformed id is this route's 400.
    #[param(value_type = Option<Uuid>)]
    leaf: Option<String>,
}

/// A conversation's messages: the branch that ends at its `leaf_id` (or `?leaf=`), oldest
/// first, each with its `sibling_ids`. The cursor keeps to the branch of the first page.
/// The answer carries a weak `ETag` that changes with every write that can change any page
/// of the conversation; `If-None-Match` with it answers `304 Not Modified` while the page is
/// unchanged (checked against the database each time, so it holds across replicas).
#[utoipa::path(get, path = "/api/conversations/{conversation_id}/messages", tag = "messages",
    params(("conversation_id" = Uuid, Path), ("limit" = Option<u32>, Query), ("cursor" = Option<String>, Query), BranchQuery,
        ("If-None-Match" = Option<String>, Header, description = "an `ETag` of this page answered before: `304` while the page is unchanged")),
    responses(
        (status = 200, body = api::Page<api::Message>, headers(("ETag" = String, description = "weak validator of this page (`W/\"…\"`)"))),
        (status = 304, description = "the page is unchanged since the `ETag` of `If-None-Match`", headers(("ETag" = String))),
        (status = 401, body = api::Problem), (status = 404, body = api::Problem)),
    security(("bearer" = [])))]
pub async fn list_messages(
    Authenticated(p): Authenticated,
    id: web::Path<Uuid>,
    Paging(page): Paging,
    branch: web::Query<BranchQuery>,
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let leaf = match branch.leaf.as_deref() {
        None => None,
        Some(text) => Some(MessageId::from_uuid(Uuid::try_parse(text).map_err(
            |_| ApiError::BadRequest("leaf must be a message id".to_owned()),
        )?)),
    };
    let conversation = ConversationId::from_uuid(*id);
    let key = PageKey::new(&p.user_id, *id, leaf, &page);
    let wanted = req
        .headers()
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok());
    let cached = state.pages.as_ref().and_then(|pages| pages.get(&key));
    if cached.is_some() || wanted.is_some() {
        // One statement: the revision, and that the conversation is the caller's (404 else).
        let current = match state.conversations.revision(&p, conversation).await {
            Ok(current) => current,
            Err(e) => {
                if let Some(pages) = &state.pages {
                    pages.remove(&key);
                }
                return Err(e.into());
            }
        };
        let etag = key.etag(current);
        if wanted.is_some_and(|w| pages::none_match(w, &etag)) {
            return Ok(not_modified(etag));
        }
        if let Some(hit) = cached.filter(|c| c.revision == current) {
            return Ok(page_answer(etag, hit.body));
        }
    }
    let (revision, read) = state
        .conversations
        .messages_at(&p, conversation, leaf, &page)
        .await?;
    let body = serde_json::to_vec(&convert::page(read, convert::branch_message))
        .map(Bytes::from)
        .map_err(|e| ApiError::Internal(format!("a page of messages as JSON: {e}")))?;
    let etag = key.etag(revision);
    if let Some(pages) = &state.pages {
        pages.insert(
            key,
            CachedPage {
                revision,
                body: body.clone(),
            },
        );
    }
    if wanted.is_some_and(|w| pages::none_match(w, &etag)) {
        return Ok(not_modified(etag));
    }
    Ok(page_answer(etag, body))
}

/// A page of messages: `private, no-cache` (a shared cache never keeps it; a browser asks
/// again, with `If-None-Match`).
fn page_answer(etag: String, body: Bytes) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header(header::ContentType::json())
        .insert_header((header::ETAG, etag))
        .insert_header((header::CACHE_CONTROL, "private, no-cache"))
        .body(body)
}

fn not_modified(etag: String) -> HttpResponse {
    HttpResponse::NotModified()
        .insert_header((header::ETAG, etag))
        .insert_header((header::CACHE_CONTROL, "private, no-cache"))
        .finish()
}

/// Show the branch through a message: the conversation's `leaf_id` becomes the deepest
/// message under it, following the most recent version at each step.
#[utoipa::path(put, path = "/api/conversations/{conversation_id}/leaf", tag = "messages", request_body = api::ChooseLeaf,
    params(("conversation_id" = Uuid, Path)),
    responses((status = 200, body = api::Conversation), (status = 401, body = api::Problem), (status = 404, body = api::Problem, description = "no such conversation, or the message is not in it")),
    security(("bearer" = [])))]
pub async fn choose_leaf(
    Authenticated(p): Authenticated,
    id: web::Path<Uuid>,
    JsonBody(body): JsonBody<api::ChooseLeaf>,
    state: web::Data<AppState>,
) -> Json<api::Conversation> {
    let conversation = state
        .conversations
        .choose_leaf(
            &p,
            ConversationId::from_uuid(*id),
            MessageId::from_uuid(body.message_id),
        )
        .await?;
    Ok(web::Json(convert::conversation(conversation)))
}
