//! Read-only share links (issue 18): `POST`/`GET /api/conversations/{id}/shares` and
//! `DELETE /api/shares/{id}` for the owner; `GET /s/{token}` (a server-rendered page) and
//! `GET /api/shared/{token}` (JSON) for anyone with the link, without signing in.
//!
//! A token is 128 random bits (base64url, 22 characters) from the operating system's
//! random source; only its SHA-256 is stored, so the link is shown once, when it is made.

use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, HttpResponseBuilder, web};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use confab_api_types as api;
use confab_core::ids::{ConversationId, ShareId};
use confab_core::search::escape_html as escape;
use confab_core::shares::Snapshot;
use uuid::Uuid;

use crate::error::ApiError;
use crate::extract::Authenticated;
use crate::state::AppState;
use crate::web_assets;

/// The length of a token: 16 bytes in unpadded base64url.
const TOKEN_CHARS: usize = 22;

/// A fresh token: 128 bits from the operating system's random source, base64url.
fn new_token() -> Result<String, ApiError> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes)
        .map_err(|e| ApiError::Internal(format!("no random bytes for a share token: {e}")))?;
    Ok(URL_SAFE_NO_PAD.encode(bytes))
}

/// Whether `token` could be one we made (else it is not looked up).
fn well_formed(token: &str) -> bool {
    token.len() == TOKEN_CHARS
        && token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Share the conversation's shown branch as it is now: later messages are not added. The
/// answer's `url` (`/s/{token}`) is shown this once — only a hash of the token is kept.
#[utoipa::path(post, path = "/api/conversations/{conversation_id}/shares", tag = "shares",
    params(("conversation_id" = Uuid, Path)),
    responses((status = 201, body = api::ShareCreated), (status = 400, body = api::Problem), (status = 401, body = api::Problem), (status = 404, body = api::Problem)),
    security(("bearer" = [])))]
pub async fn create_share(
    Authenticated(p): Authenticated,
    id: web::Path<Uuid>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let token = new_token()?;
    let share = state
        .shares
        .create(&p, ConversationId::from_uuid(*id), &token)
        .await?;
    Ok(HttpResponse::Created().json(api::ShareCreated {
        id: share.id.as_uuid(),
        url: format!("/s/{token}"),
        created_at: share.created_at,
    }))
}

/// The conversation's live share links, newest first. Their URLs cannot be shown again
/// (only a hash of each token is kept): revoke one and make a new one instead.
#[utoipa::path(get, path = "/api/conversations/{conversation_id}/shares", tag = "shares",
    params(("conversation_id" = Uuid, Path)),
    responses((status = 200, body = Vec<api::ShareInfo>), (status = 400, body = api::Problem), (status = 401, body = api::Problem), (status = 404, body = api::Problem)),
    security(("bearer" = [])))]
pub async fn list_shares(
    Authenticated(p): Authenticated,
    id: web::Path<Uuid>,
    state: web::Data<AppState>,
) -> Result<web::Json<Vec<api::ShareInfo>>, ApiError> {
    let shares = state
        .shares
        .list(&p, ConversationId::from_uuid(*id))
        .await?;
    Ok(web::Json(
        shares
            .into_iter()
            .map(|s| api::ShareInfo {
                id: s.id.as_uuid(),
                created_at: s.created_at,
            })
            .collect(),
    ))
}

/// Revoke a share link: from now on it answers 404.
#[utoipa::path(delete, path = "/api/shares/{share_id}", tag = "shares",
    params(("share_id" = Uuid, Path)),
    responses((status = 204), (status = 400, body = api::Problem), (status = 401, body = api::Problem), (status = 404, body = api::Problem)),
    security(("bearer" = [])))]
pub async fn revoke_share(
    Authenticated(p): Authenticated,
    id: web::Path<Uuid>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    state.shares.revoke(&p, ShareId::from_uuid(*id)).await?;
    Ok(HttpResponse::NoContent().finish())
}

async fn snapshot(state: &AppState, token: &str) -> Result<Option<Snapshot>, ApiError> {
    if !well_formed(token) {
        return Ok(None);
    }
    Ok(state.shares.open(token).await?)
}

/// What a share link shows, as JSON; no sign-in. 404 for an unknown or revoked token.
#[utoipa::path(get, path = "/api/shared/{token}", tag = "shares",
    params(("token" = String, Path, description = "the token of a link `/s/{token}`")),
    responses((status = 200, body = api::SharedConversation), (status = 404, body = api::Problem)))]
pub async fn shared_json(
    token: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let Some(snapshot) = snapshot(&state, &token).await? else {
        return Err(ApiError::NotFound("There is no such share link."));
    };
    let body = api::SharedConversation {
        title: snapshot.title,
        messages: snapshot
            .messages
            .into_iter()
            .map(|m| api::SharedMessage {
                role: crate::convert::role(m.role),
                content: m.content,
                model: m.model,
                created_at: m.created_at,
            })
            .collect(),
    };
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header(("X-Robots-Tag", "noindex"))
        .insert_header((header::REFERRER_POLICY, "no-referrer"))
        .json(body))
}

/// `GET /s/{token}`: the shared conversation as a page of its own (no client code), or a
/// 404 page.
pub async fn shared_page(
    req: HttpRequest,
    token: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let found = snapshot(&state, &token).await?;
    let mut builder = match found {
        Some(_) => HttpResponse::Ok(),
        None => HttpResponse::build(StatusCode::NOT_FOUND),
    };
    let body = match &found {
        Some(snapshot) => render(snapshot),
        None => page(
            "Link not found",
            "<h1>Link not found</h1>\n<p>This share link does not exist or was revoked.</p>\n",
        ),
    };
    Ok(page_headers(&mut builder, &req, &state).body(body))
}

fn page_headers<'a>(
    builder: &'a mut HttpResponseBuilder,
    _req: &HttpRequest,
    state: &AppState,
) -> &'a mut HttpResponseBuilder {
    builder
        .content_type("text/html; charset=utf-8")
        .insert_header((
            header::CONTENT_SECURITY_POLICY,
            web_assets::csp(state.clerk_host.as_deref()),
        ))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header(("X-Robots-Tag", "noindex"))
        .insert_header((header::REFERRER_POLICY, "no-referrer"))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
}

/// A message's text as paragraphs (split at blank lines), line breaks kept, all escaped.
fn paragraphs(text: &str) -> String {
    let mut out = String::new();
    let normalized = text.replace("\r\n", "\n");
    for paragraph in normalized.split("\n\n") {
        let paragraph = paragraph.trim_matches('\n');
        if paragraph.trim().is_empty() {
            continue;
        }
        let lines: Vec<String> = paragraph.lines().map(escape).collect();
        out.push_str("<p>");
        out.push_str(&lines.join("<br>\n"));
        out.push_str("</p>\n");
    }
    out
}

fn render(snapshot: &Snapshot) -> String {
    let title = snapshot
        .title
        .as_deref()
        .filter(|t| !t.trim().is_empty())
        .unwrap_or("Shared conversation");
    let mut main = format!("<h1>{}</h1>\n", escape(title));
    if snapshot.messages.is_empty() {
        main.push_str("<p>This conversation has no messages.</p>\n");
    }
    for message in &snapshot.messages {
        let who = match message.role {
            confab_core::Role::User => "User".to_owned(),
            confab_core::Role::Assistant => match &message.model {
                Some(model) => format!("Assistant ({})", escape(model)),
                None => "Assistant".to_owned(),
            },
        };
        main.push_str(&format!(
            "<article class=\"message {role}\">\n<h2>{who}</h2>\n{text}</article>\n",
            role = message.role.as_str(),
            text = paragraphs(&message.content),
        ));
    }
    page(title, &main)
}

fn page(title: &str, main: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <meta name=\"robots\" content=\"noindex\">\n<title>{} — Confab</title>\n</head>\n\
         <body>\n<main>\n{main}</main>\n<footer><p>A read-only snapshot shared from Confab.</p></footer>\n\
         </body>\n</html>\n",
        escape(title)
    )
}

#[cfg(test)]
mod tests {
    use super::{escape, new_token, paragraphs, well_formed};

    #[test]
    fn tokens_are_22_base64url_characters_and_differ() {
        let (Ok(a), Ok(b)) = (new_token(), new_token()) else {
            panic!("no random source");
        };
        assert!(well_formed(&a) && well_formed(&b));
        assert_ne!(a, b);
        assert!(!well_formed("short"));
        assert!(!well_formed("aaaaaaaaaaaaaaaaaaaa/a"));
    }

    #[test]
    fn text_is_escaped_and_split_into_paragraphs() {
        assert_eq!(
            escape("<a href='x'>&\""),
            "&lt;a href=&#39;x&#39;&gt;&amp;&quot;"
        );
        assert_eq!(
            paragraphs("one\ntwo\n\n<script>x</script>\n\n\n"),
            "<p>one<br>\ntwo</p>\n<p>&lt;script&gt;x&lt;/script&gt;</p>\n"
        );
    }
}
