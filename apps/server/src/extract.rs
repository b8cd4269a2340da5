//! Authentication and request extractors, in API.md's order of checks: authentication (401,
//! the [`authenticate`] middleware around the protected `/api` scope) → path parameters
//! (400) → `Content-Type` (415) → body size (413) and parse (400) → field types (422).
//! Handler arguments are declared in that order.

use std::future::{Ready, ready};

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::http::header;
use actix_web::middleware::Next;
use actix_web::{FromRequest, HttpMessage, HttpRequest, web};
use confab_core::Principal;
use confab_core::services::PageQuery;
use confab_core::values::PageLimit;
use futures::StreamExt;
use futures::future::LocalBoxFuture;
use serde::Deserialize;
use serde::de::{DeserializeOwned, IgnoredAny};

use crate::error::ApiError;
use crate::state::AppState;

/// Tokens longer than this are refused before any parsing.
const MAX_TOKEN_BYTES: usize = 16 * 1024;

fn state(req: &HttpRequest) -> Result<web::Data<AppState>, ApiError> {
    req.app_data::<web::Data<AppState>>()
        .cloned()
        .ok_or_else(|| ApiError::Internal("application state missing".to_owned()))
}

/// The bearer token of a request, if it has one in the right form.
pub(crate) fn bearer(req: &HttpRequest) -> Option<String> {
    let value = req.headers().get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    let token = token.trim();
    (!token.is_empty()).then(|| token.to_owned())
}

/// The principal [`authenticate`] verified for this request.
#[derive(Clone)]
struct Verified(Principal);

/// Middleware around the protected `/api` scope (routes/mod.rs): verifies the bearer token
/// before anything else of the request is looked at, and stores the principal for
/// [`Authenticated`]. Being a middleware rather than an extractor is what puts the 401 first
/// (actix polls a handler's extractors together, so with a verifier that has to wait — a cold
/// JWKS cache — a malformed path, `Content-Type` or body would otherwise be answered first),
/// and it covers the scope's unknown paths and 405s as well.
pub async fn authenticate(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    let token = bearer(req.request());
    let verified = match (token, state(req.request())) {
        (_, Err(e)) => Err(e),
        (None, _) => Err(ApiError::Unauthenticated),
        (Some(token), _) if token.len() > MAX_TOKEN_BYTES => Err(ApiError::Unauthenticated),
        (Some(token), Ok(state)) => state.auth.verify(&token).await.map_err(ApiError::from),
    };
    match verified {
        Ok(principal) => {
            req.extensions_mut().insert(Verified(principal));
            next.call(req)
                .await
                .map(ServiceResponse::map_into_left_body)
        }
        Err(e) => Ok(req.error_response(e).map_into_right_body()),
    }
}

/// The verified caller, as [`authenticate`] stored it. Only handlers inside the
/// authenticated scope can have one: elsewhere this is a server bug, answered 500.
pub struct Authenticated(pub Principal);

impl FromRequest for Authenticated {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let verified = req.extensions().get::<Verified>().cloned();
        ready(verified.map(|Verified(p)| Self(p)).ok_or_else(|| {
            ApiError::Internal(format!(
                "{} is not behind the authentication middleware",
                req.path()
            ))
        }))
    }
}

/// Whether the request declares a JSON body (`None`: no `Content-Type` at all).
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

fn not_json_content_type() -> ApiError {
    ApiError::UnsupportedMediaType(
        "the body must be JSON (Content-Type: application/json)".to_owned(),
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

/// What the top-level value of a well-formed JSON text is, from its first byte after JSON
/// whitespace; `None` for an object.
fn non_object_kind(json: &[u8]) -> Option<&'static str> {
    let first = json
        .iter()
        .find(|b| !matches!(b, b' ' | b'\t' | b'\n' | b'\r'))?;
    match first {
        b'{' => None,
        b'[' => Some("an array"),
        b'"' => Some("a string"),
        b't' | b'f' => Some("a boolean"),
        b'n' => Some("null"),
        _ => Some("a number"),
    }
}

/// Parses a body that must be a JSON object: 400 when it is not JSON, 422 when it is JSON but
/// not an object (serde's derived `Deserialize` would take an array's items as the fields in
/// order), or an object with fields missing, of the wrong type or repeated. Unknown fields
/// are ignored.
fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let not_an_object =
        |kind: &str| ApiError::Validation(format!("the body must be a JSON object, not {kind}"));
    match serde_json::from_slice::<T>(bytes) {
        // Well-formed, so its first byte says what it is.
        Ok(value) => match non_object_kind(bytes) {
            None => Ok(value),
            Some(kind) => Err(not_an_object(kind)),
        },
        Err(e) if e.classify() == serde_json::error::Category::Data => {
            // A field error met before a syntax error further on (`[1,`) is still not JSON.
            if let Err(syntax) = serde_json::from_slice::<IgnoredAny>(bytes) {
                return Err(ApiError::BadRequest(format!(
                    "the body is not valid JSON: {syntax}"
                )));
            }
            Err(match non_object_kind(bytes) {
                Some(kind) => not_an_object(kind),
                None => ApiError::Validation(format!("the body has invalid fields: {e}")),
            })
        }
        Err(e) => Err(ApiError::BadRequest(format!(
            "the body is not valid JSON: {e}"
        ))),
    }
}

/// Reads a JSON object body: 415 without a JSON `Content-Type`, 413 past the limit, then
/// [`parse_json`]. With `empty` (a body whose fields are all optional), a blank body is
/// `empty`, with or without a `Content-Type`.
async fn json_object<T: DeserializeOwned>(
    req: &HttpRequest,
    payload: &mut Payload,
    empty: Option<T>,
) -> Result<T, ApiError> {
    let json = is_json(req);
    if json == Some(false) || (json.is_none() && empty.is_none()) {
        return Err(not_json_content_type());
    }
    let limit = state(req)?.max_json_bytes;
    let body = read_body(req, payload, limit).await?;
    if let Some(empty) = empty.filter(|_| body.iter().all(u8::is_ascii_whitespace)) {
        return Ok(empty);
    }
    if json.is_none() {
        return Err(not_json_content_type());
    }
    parse_json(&body)
}

/// A JSON object body (see [`parse_json`]); every field it requires must be present.
pub struct JsonBody<T>(pub T);

impl<T: DeserializeOwned + 'static> FromRequest for JsonBody<T> {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let req = req.clone();
        let mut payload = payload.take();
        Box::pin(async move { json_object(&req, &mut payload, None).await.map(Self) })
    }
}

/// A JSON object body whose fields are all optional: an empty body counts as `{}`.
pub struct OptionalJsonBody<T>(pub T);

impl<T: DeserializeOwned + Default + 'static> FromRequest for OptionalJsonBody<T> {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let req = req.clone();
        let mut payload = payload.take();
        Box::pin(async move {
            json_object(&req, &mut payload, Some(T::default()))
                .await
                .map(Self)
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
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(parse_paging(req.query_string()))
    }
}

fn parse_paging(query: &str) -> Result<Paging, ApiError> {
    let raw = web::Query::<RawPage>::from_query(query)
        .map_err(|e| ApiError::BadRequest(format!("the query string is malformed: {e}")))?
        .into_inner();
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
    fn the_caller_is_only_what_the_middleware_stored() {
        let req = actix_web::test::TestRequest::get()
            .uri("/api/me")
            .insert_header((header::AUTHORIZATION, "Bearer test-token-alice"))
            .to_http_request();
        // A token alone is not verified here: without the middleware this is a server bug.
        let outside = Authenticated::from_request(&req, &mut Payload::None).into_inner();
        assert!(matches!(outside, Err(ApiError::Internal(_))));
        let user_id = confab_core::UserId::new("alice").unwrap();
        req.extensions_mut().insert(Verified(Principal {
            user_id: user_id.clone(),
        }));
        let inside = Authenticated::from_request(&req, &mut Payload::None).into_inner();
        assert!(inside.is_ok_and(|Authenticated(p)| p.user_id == user_id));
    }

    #[derive(Deserialize, Debug)]
    struct Body {
        #[expect(dead_code)]
        name: String,
    }

    #[derive(Deserialize, Debug, Default)]
    struct AllOptional {
        #[serde(default)]
        title: Option<String>,
    }

    #[test]
    fn json_errors_split_into_syntax_and_fields() {
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
        assert!(matches!(
            parse_json::<Body>(br#"{"name": "a", "name": "b"}"#),
            Err(ApiError::Validation(_))
        ));
        assert!(parse_json::<Body>(br#" {"name": "a", "other": 1} "#).is_ok());
    }

    #[test]
    fn only_an_object_is_a_body() {
        let not_an_object = |json: &[u8], kind: &str| {
            for result in [
                parse_json::<Body>(json).map(|_| ()),
                parse_json::<AllOptional>(json).map(|_| ()),
            ] {
                match result {
                    Err(ApiError::Validation(detail)) => assert!(
                        detail.contains("JSON object") && detail.ends_with(kind),
                        "{detail}"
                    ),
                    other => panic!("{}: {other:?}", String::from_utf8_lossy(json)),
                }
            }
        };
        // Arrays that fill the fields in order are what serde alone would accept.
        not_an_object(br#"["name"]"#, "an array");
        not_an_object(b" \r\n\t[]", "an array");
        not_an_object(b"null", "null");
        not_an_object(b"-1", "a number");
        not_an_object(b"2.5e3", "a number");
        not_an_object(br#""name""#, "a string");
        not_an_object(b"true", "a boolean");
        not_an_object(b"false", "a boolean");
        assert!(parse_json::<AllOptional>(b"{}").is_ok_and(|b| b.title.is_none()));
    }
}
