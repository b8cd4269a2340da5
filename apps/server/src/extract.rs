//! Request extractors that enforce API.md's order of checks: authentication (401) → path
//! parameters (400) → `Content-Type` (415) → body size (413) and parse (400) → field types
//! (422). Handler arguments are declared in that order.

use std::future::Future;
use std::pin::Pin;

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::http::header;
use actix_web::middleware::Next;
use actix_web::{FromRequest, HttpMessage, HttpRequest, web};
use confab_core::Principal;
use confab_core::services::PageQuery;
use confab_core::values::PageLimit;
use futures::StreamExt;
use serde::Deserialize;
use serde::de::DeserializeOwned;

use crate::error::ApiError;
use crate::state::AppState;

fn state(req: &HttpRequest) -> Result<web::Data<AppState>, ApiError> {
    req.app_data::<web::Data<AppState>>()
        .cloned()
        .ok_or_else(|| ApiError::Internal("application state missing".to_owned()))
}

/// The bearer token of a request, if it has one in the right form.
fn bearer(req: &HttpRequest) -> Option<String> {
    let value = req.headers().get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    let token = token.trim();
    (!token.is_empty()).then(|| token.to_owned())
}

/// `/api` paths that take no token.
const PUBLIC_API_PATHS: [&str; 3] = ["/api/config", "/api/auth/dev-login", "/api/openapi.json"];

/// The principal [`authenticate`] verified for this request.
#[derive(Clone)]
struct Verified(Principal);

/// Middleware: verifies the token of every protected `/api` request before its handler's
/// extractors run. Actix polls a handler's extractors together, so with a verifier that has
/// to wait (a cold JWKS cache) a malformed path, `Content-Type` or body would otherwise be
/// answered before the 401 that API.md's order of checks puts first.
pub async fn authenticate(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    let path = req.path();
    let protected =
        (path == "/api" || path.starts_with("/api/")) && !PUBLIC_API_PATHS.contains(&path);
    if protected {
        let mut payload = Payload::None;
        match Authenticated::from_request(req.request(), &mut payload).await {
            Ok(Authenticated(principal)) => {
                req.extensions_mut().insert(Verified(principal));
            }
            Err(e) => return Ok(req.error_response(e).map_into_right_body()),
        }
    }
    next.call(req)
        .await
        .map(ServiceResponse::map_into_left_body)
}

/// The verified caller. Fails with 401 (or 503 when no signing key can be fetched).
pub struct Authenticated(pub Principal);

impl FromRequest for Authenticated {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        if let Some(Verified(principal)) = req.extensions().get::<Verified>().cloned() {
            return Box::pin(async move { Ok(Self(principal)) });
        }
        let token = bearer(req);
        let state = state(req);
        Box::pin(async move {
            let state = state?;
            let token = token.ok_or(ApiError::Unauthenticated)?;
            // Oversized tokens are refused before any parsing.
            if token.len() > 16 * 1024 {
                return Err(ApiError::Unauthenticated);
            }
            let principal = state.auth.verify(&token).await?;
            Ok(Self(principal))
        })
    }
}

/// Whether the request declares a JSON body.
fn is_json(req: &HttpRequest) -> Option<bool> {
    let value = req.headers().get(header::CONTENT_TYPE)?.to_str().ok()?;
    let essence = value
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    Some(
        essence == "application/json"
            || (essence.starts_with("application/") && essence.ends_with("+json")),
    )
}

async fn read_body(
    req: &HttpRequest,
    payload: &mut Payload,
    limit: usize,
) -> Result<web::BytesMut, ApiError> {
    let too_large = || {
        ApiError::PayloadTooLarge(format!(
            "the body is larger than the limit of {limit} bytes"
        ))
    };
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|length| length > limit) {
        return Err(too_large());
    }
    let mut body = web::BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk =
            chunk.map_err(|e| ApiError::BadRequest(format!("the body could not be read: {e}")))?;
        if body.len() + chunk.len() > limit {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(bytes).map_err(|e| match e.classify() {
        // A field error met before a syntax error further on (`[1,`) is still not JSON.
        serde_json::error::Category::Data => {
            match serde_json::from_slice::<serde::de::IgnoredAny>(bytes) {
                Ok(_) => ApiError::Validation(format!("the body has invalid fields: {e}")),
                Err(syntax) => {
                    ApiError::BadRequest(format!("the body is not valid JSON: {syntax}"))
                }
            }
        }
        _ => ApiError::BadRequest(format!("the body is not valid JSON: {e}")),
    })
}

/// A JSON body: 415 without a JSON `Content-Type`, 413 past the limit, 400 when it is not
/// JSON, 422 when the JSON has fields of the wrong type or is missing required ones.
pub struct JsonBody<T>(pub T);

impl<T: DeserializeOwned + 'static> FromRequest for JsonBody<T> {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let req = req.clone();
        let mut payload = payload.take();
        Box::pin(async move {
            if is_json(&req) != Some(true) {
                return Err(ApiError::UnsupportedMediaType(
                    "the body must be JSON (Content-Type: application/json)".to_owned(),
                ));
            }
            let limit = state(&req)?.max_json_bytes;
            let body = read_body(&req, &mut payload, limit).await?;
            parse_json(&body).map(Self)
        })
    }
}

/// A JSON body whose fields are all optional: an empty body counts as `{}`.
pub struct OptionalJsonBody<T>(pub T);

impl<T: DeserializeOwned + Default + 'static> FromRequest for OptionalJsonBody<T> {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let req = req.clone();
        let mut payload = payload.take();
        Box::pin(async move {
            let limit = state(&req)?.max_json_bytes;
            let json = is_json(&req);
            if json == Some(false) {
                return Err(ApiError::UnsupportedMediaType(
                    "the body must be JSON (Content-Type: application/json)".to_owned(),
                ));
            }
            let body = read_body(&req, &mut payload, limit).await?;
            if body.iter().all(u8::is_ascii_whitespace) {
                return Ok(Self(T::default()));
            }
            if json.is_none() {
                return Err(ApiError::UnsupportedMediaType(
                    "the body must be JSON (Content-Type: application/json)".to_owned(),
                ));
            }
            parse_json(&body).map(Self)
        })
    }
}

#[derive(Deserialize)]
struct RawPage {
    limit: Option<String>,
    cursor: Option<String>,
}

/// `?limit=&cursor=`: a non-number is 400, a number outside 1–200 is 422.
pub struct Paging(pub PageQuery);

impl FromRequest for Paging {
    type Error = ApiError;
    type Future = std::future::Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        std::future::ready(parse_paging(req.query_string()))
    }
}

fn parse_paging(query: &str) -> Result<Paging, ApiError> {
    let raw: RawPage = serde_urlencoded_lite(query)?;
    let limit = match raw.limit.as_deref() {
        None => None,
        Some(text) => Some(
            text.parse::<i64>()
                .map_err(|_| ApiError::BadRequest("limit must be a whole number".to_owned()))?,
        ),
    };
    let limit = PageLimit::new(limit).map_err(|e| ApiError::Validation(e.to_string()))?;
    Ok(Paging(PageQuery {
        limit,
        cursor: raw.cursor.filter(|c| !c.is_empty()),
    }))
}

fn serde_urlencoded_lite<T: DeserializeOwned>(query: &str) -> Result<T, ApiError> {
    web::Query::<T>::from_query(query)
        .map(web::Query::into_inner)
        .map_err(|e| ApiError::BadRequest(format!("the query string is malformed: {e}")))
}

/// The 400 answer for a path parameter that is not a UUID.
pub fn path_error(err: actix_web::error::PathError, _req: &HttpRequest) -> actix_web::Error {
    ApiError::BadRequest(format!("a path parameter is malformed: {err}")).into()
}

/// The 400 answer for a malformed query string.
pub fn query_error(
    err: actix_web::error::QueryPayloadError,
    _req: &HttpRequest,
) -> actix_web::Error {
    ApiError::BadRequest(format!("the query string is malformed: {err}")).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paging_parses_limits_and_cursors() {
        let p = parse_paging("limit=10&cursor=abc").map(|p| p.0).ok();
        assert_eq!(p.as_ref().map(|p| p.limit.get()), Some(10));
        assert_eq!(p.and_then(|p| p.cursor).as_deref(), Some("abc"));
        assert!(matches!(
            parse_paging("limit=abc"),
            Err(ApiError::BadRequest(_))
        ));
        assert!(matches!(
            parse_paging("limit=0"),
            Err(ApiError::Validation(_))
        ));
        assert!(matches!(
            parse_paging("limit=201"),
            Err(ApiError::Validation(_))
        ));
        assert_eq!(parse_paging("").map(|p| p.0.limit.get()).ok(), Some(50));
    }

    #[test]
    fn json_errors_split_into_syntax_and_fields() {
        #[derive(Deserialize, Debug)]
        struct Body {
            #[expect(dead_code)]
            name: String,
        }
        assert!(matches!(
            parse_json::<Body>(b"{"),
            Err(ApiError::BadRequest(_))
        ));
        assert!(matches!(
            parse_json::<Body>(b"{\"name\": 3}"),
            Err(ApiError::Validation(_))
        ));
        assert!(matches!(
            parse_json::<Body>(b"{}"),
            Err(ApiError::Validation(_))
        ));
        assert!(matches!(
            parse_json::<Body>(b"[1,"),
            Err(ApiError::BadRequest(_))
        ));
    }
}
