//! The one place where errors become HTTP: `application/problem+json` (RFC 9457) with a
//! stable `code`, built by [`problem`] alone. Handlers, extractors and middleware answer
//! with an [`ApiError`]; the [`problems`] middleware turns every other error answer (actix's
//! own, a service's that built its own, a panic) into one too. Internal errors are logged
//! with their cause and answered opaquely.

use std::any::Any;
use std::borrow::Cow;
use std::panic::AssertUnwindSafe;
use std::time::Duration;

use actix_web::body::{BoxBody, EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{HttpResponse, ResponseError};
use confab_api_types::Problem;
use confab_core::{AuthError, ChatError, ServiceError};
use futures::FutureExt;

/// Every error answer of the API. Each variant's doc names its status.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 400 `bad_request`: malformed JSON, or a malformed path or query parameter.
    #[error("{0}")]
    BadRequest(String),
    /// 401 `unauthenticated`, with `WWW-Authenticate: Bearer`.
    #[error("a valid bearer token is required")]
    Unauthenticated,
    /// 404 `not_found`.
    #[error("{0}")]
    NotFound(&'static str),
    /// 405 `method_not_allowed`, with `Allow`.
    #[error("this path does not accept this method")]
    MethodNotAllowed { allow: &'static str },
    /// 409 `conflict`.
    #[error("{0}")]
    Conflict(String),
    /// 413 `payload_too_large`.
    #[error("{0}")]
    PayloadTooLarge(String),
    /// 415 `unsupported_media_type`.
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// 422 `validation_failed`: well-formed JSON that is not an object or has invalid
    /// fields, or a value out of range.
    #[error("{0}")]
    Validation(String),
    /// 429 `rate_limited`, with `Retry-After`.
    #[error("too many messages; try again in {retry_after_secs} s")]
    RateLimited { retry_after_secs: u64 },
    /// 429 `quota_exceeded`, with `Retry-After` when the quota resets within a day.
    #[error("{detail}")]
    QuotaExceeded {
        detail: String,
        retry_after_secs: Option<u64>,
    },
    /// 401 `invalid_credentials`: a wrong login/password pair (which part is never said).
    #[error("the username, e-mail or password is wrong")]
    InvalidCredentials,
    /// 403 `forbidden`.
    #[error("{0}")]
    Forbidden(&'static str),
    /// 429 `rate_limited` after failed sign-ins, with `Retry-After` (any length).
    #[error("too many failed attempts; try again in {retry_after_secs} s")]
    Throttled { retry_after_secs: u64 },
    /// 503 `unavailable`.
    #[error("{0}")]
    Unavailable(&'static str),
    /// 500 `internal`: the cause is logged, never sent.
    #[error("internal error")]
    Internal(String),
}

impl ApiError {
    pub const NOT_FOUND: Self = Self::NotFound("The resource does not exist.");

    fn detail(&self) -> String {
        match self {
            Self::Internal(_) => INTERNAL_DETAIL.to_owned(),
            Self::Unauthenticated => "A valid bearer token is required: sign in again.".to_owned(),
            other => sentence(other.to_string()),
        }
    }

    /// A rate limit answer from a wait time: whole seconds, 1–60.
    #[must_use]
    pub fn rate_limited(wait: Duration) -> Self {
        let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
        Self::RateLimited {
            retry_after_secs: secs.clamp(1, 60),
        }
    }
}

/// The detail of every 500: the cause is in the log, never in the answer.
const INTERNAL_DETAIL: &str = "Something went wrong on the server. It has been logged.";

const PROBLEM_JSON: &str = "application/problem+json";

/// `text` as a sentence: a capital first letter and a final full stop.
fn sentence(mut text: String) -> String {
    if let Some(first) = text.get(..1) {
        let upper = first.to_uppercase();
        text.replace_range(..1, &upper);
    }
    if !text.ends_with('.') {
        text.push('.');
    }
    text
}

/// The `code` of a problem with `status`: API.md's for the statuses it names, else the
/// reason phrase in snake_case (`request_timeout`), so that a code never depends on input.
fn code_for(status: StatusCode) -> Cow<'static, str> {
    Cow::Borrowed(match status {
        StatusCode::BAD_REQUEST => "bad_request",
        StatusCode::UNAUTHORIZED => "unauthenticated",
        StatusCode::NOT_FOUND => "not_found",
        StatusCode::METHOD_NOT_ALLOWED => "method_not_allowed",
        StatusCode::CONFLICT => "conflict",
        StatusCode::PAYLOAD_TOO_LARGE => "payload_too_large",
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported_media_type",
        StatusCode::UNPROCESSABLE_ENTITY => "validation_failed",
        StatusCode::TOO_MANY_REQUESTS => "rate_limited",
        StatusCode::INTERNAL_SERVER_ERROR => "internal",
        StatusCode::SERVICE_UNAVAILABLE => "unavailable",
        other => {
            let reason = other.canonical_reason().unwrap_or("error");
            return Cow::Owned(
                reason
                    .chars()
                    .map(|c| {
                        if c.is_ascii_alphanumeric() {
                            c.to_ascii_lowercase()
                        } else {
                            '_'
                        }
                    })
                    .collect(),
            );
        }
    })
}

/// The one builder of error answers: a problem+json response for `status` (its `code` and
/// `title` follow from it) with `detail`, a sentence for a person.
pub fn problem(status: StatusCode, detail: String) -> HttpResponse {
    problem_with_code(status, &code_for(status), detail)
}

/// [`problem`] with a `code` more precise than the status's (`invalid_credentials`).
pub fn problem_with_code(status: StatusCode, code: &str, detail: String) -> HttpResponse {
    let body = Problem {
        kind: "about:blank".to_owned(),
        title: status.canonical_reason().unwrap_or("Error").to_owned(),
        status: status.as_u16(),
        detail,
        code: code.to_owned(),
    };
    let json = serde_json::to_vec(&body).unwrap_or_default();
    HttpResponse::build(status)
        .insert_header((header::CONTENT_TYPE, PROBLEM_JSON))
        .body(json)
}

/// Whether `response` is an error answer that [`problem`] did not build. An HTML page is
/// built on purpose for a person (the not-found page of a share link) and is left alone.
fn needs_problem<B>(response: &HttpResponse<B>) -> bool {
    let status = response.status();
    (status.is_client_error() || status.is_server_error())
        && response
            .headers()
            .get(header::CONTENT_TYPE)
            .is_none_or(|value| {
                value != PROBLEM_JSON
                    && !value
                        .to_str()
                        .is_ok_and(|v| v.to_ascii_lowercase().starts_with("text/html"))
            })
}

/// An error answer that some other code built (with `error`, when one is attached), rebuilt
/// by [`problem`] with the same status and headers (`Allow`, `WWW-Authenticate`, …) but for
/// those of the old body.
fn rebuild<B>(response: &HttpResponse<B>, error: Option<&actix_web::Error>) -> HttpResponse {
    let status = response.status();
    let detail = if status.is_server_error() {
        let cause = error.map_or_else(|| "no error attached".to_owned(), ToString::to_string);
        tracing::error!(status = status.as_u16(), cause = %cause, "internal error");
        INTERNAL_DETAIL.to_owned()
    } else {
        match error {
            Some(error) => sentence(error.to_string()),
            None => sentence(status.canonical_reason().unwrap_or("Error").to_owned()),
        }
    };
    let mut rebuilt = problem(status, detail);
    for (name, value) in response.headers() {
        if name != header::CONTENT_TYPE
            && name != header::CONTENT_LENGTH
            && name != header::CONTENT_ENCODING
        {
            rebuilt.headers_mut().append(name.clone(), value.clone());
        }
    }
    rebuilt
}

/// An error that a service other than ours returned instead of an answer: answered by
/// [`rebuild`] with its status, when actix turns it into the answer.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct Foreign(actix_web::Error);

impl ResponseError for Foreign {
    fn status_code(&self) -> StatusCode {
        self.0.as_response_error().status_code()
    }

    fn error_response(&self) -> HttpResponse {
        rebuild(&self.0.error_response(), Some(&self.0))
    }
}

/// What a panic carried, when it is text.
fn panic_message(panic: &(dyn Any + Send)) -> &str {
    panic
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| panic.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("a panic without a message")
}

/// Middleware inside every other one (app.rs): every error answer leaves as [`problem`]
/// built it. An [`ApiError`]'s answer passes as it is; any other 4xx/5xx answer (an actix
/// extractor's, a missing app data's 500, a service that built its own) is rebuilt with its
/// status and headers. An error returned instead of an answer, and a panic of a handler (as
/// a logged 500), go on as errors whose answer actix takes from [`problem`] too: the request
/// is gone with the failed call, and it cannot be kept aside, since a clone taken before the
/// call would keep the router from writing the path's parameters into it.
pub async fn problems(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody, BoxBody>>, actix_web::Error> {
    let outcome = AssertUnwindSafe(async move { next.call(req).await })
        .catch_unwind()
        .await;
    match outcome {
        Ok(Ok(response)) if !needs_problem(response.response()) => {
            Ok(response.map_into_left_body())
        }
        Ok(Ok(response)) => {
            let rebuilt = rebuild(response.response(), response.response().error());
            let (request, _) = response.into_parts();
            Ok(ServiceResponse::new(request, rebuilt).map_into_right_body())
        }
        Ok(Err(error)) if error.as_error::<ApiError>().is_some() => Err(error),
        Ok(Err(error)) => Err(Foreign(error).into()),
        Err(panic) => Err(ApiError::Internal(format!(
            "a handler panicked: {}",
            panic_message(panic.as_ref())
        ))
        .into()),
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::Unauthenticated => StatusCode::UNAUTHORIZED,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            Self::Conflict(_) => StatusCode::CONFLICT,
            Self::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::Validation(_) => StatusCode::UNPROCESSABLE_ENTITY,
            Self::RateLimited { .. } | Self::Throttled { .. } | Self::QuotaExceeded { .. } => {
                StatusCode::TOO_MANY_REQUESTS
            }
            Self::InvalidCredentials => StatusCode::UNAUTHORIZED,
            Self::Forbidden(_) => StatusCode::FORBIDDEN,
            Self::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        if let Self::Internal(cause) = self {
            tracing::error!(cause = %cause, "internal error");
        }
        let mut response = match self {
            Self::InvalidCredentials => {
                problem_with_code(self.status_code(), "invalid_credentials", self.detail())
            }
            Self::QuotaExceeded { .. } => {
                problem_with_code(self.status_code(), "quota_exceeded", self.detail())
            }
            _ => problem(self.status_code(), self.detail()),
        };
        let headers = response.headers_mut();
        match self {
            Self::Unauthenticated => {
                headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            }
            Self::MethodNotAllowed { allow } => {
                headers.insert(header::ALLOW, HeaderValue::from_static(allow));
            }
            Self::RateLimited { retry_after_secs } | Self::Throttled { retry_after_secs } => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from(*retry_after_secs));
            }
            Self::Unavailable(_) => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
            }
            Self::QuotaExceeded {
                retry_after_secs: Some(secs),
                ..
            } => {
                // API.md: Retry-After is 1–60 s on every 429; the detail says when the quota
                // resets, and a client that comes back sooner is told again.
                headers.insert(header::RETRY_AFTER, HeaderValue::from((*secs).clamp(1, 60)));
            }
            _ => {}
        }
        response
    }
}

impl From<ServiceError> for ApiError {
    fn from(e: ServiceError) -> Self {
        match e {
            ServiceError::Validation(v) => Self::Validation(v.to_string()),
            ServiceError::InvalidCursor(_) => {
                Self::BadRequest("the cursor is malformed".to_owned())
            }
            ServiceError::NotFound => Self::NOT_FOUND,
            ServiceError::Conflict(c) => Self::Conflict(c.to_string()),
            ServiceError::PayloadTooLarge { limit } => Self::PayloadTooLarge(format!(
                "the file is larger than the limit of {limit} bytes"
            )),
            ServiceError::Unavailable(cause) => {
                tracing::warn!(cause = %cause, "a dependency is unavailable");
                Self::Unavailable("the database is unavailable; try again shortly")
            }
            ServiceError::Internal(cause) => Self::Internal(cause),
        }
    }
}

impl From<ChatError> for ApiError {
    fn from(e: ChatError) -> Self {
        match e {
            ChatError::Validation(v) => Self::Validation(v.to_string()),
            ChatError::NotFound => Self::NOT_FOUND,
            ChatError::Conflict(c) => Self::Conflict(c.to_string()),
            ChatError::RateLimited { retry_after } => Self::rate_limited(retry_after),
            ChatError::QuotaExceeded(refused) => Self::QuotaExceeded {
                detail: refused.sentence(),
                retry_after_secs: refused
                    .retry_after
                    .map(|d| d.as_secs() + u64::from(d.subsec_nanos() > 0)),
            },
            ChatError::Unavailable(cause) => {
                tracing::warn!(cause = %cause, "a dependency is unavailable");
                Self::Unavailable("the database is unavailable; try again shortly")
            }
            ChatError::Internal(cause) => Self::Internal(cause),
        }
    }
}

impl From<AuthError> for ApiError {
    fn from(e: AuthError) -> Self {
        match e {
            AuthError::Unauthenticated(reason) => {
                tracing::debug!(reason = %reason, "token refused");
                Self::Unauthenticated
            }
            // The identity provider's keys, or the database that keeps sessions and
            // sign-outs: the person cannot tell which, and either passes.
            AuthError::Unavailable(cause) => {
                tracing::warn!(cause = %cause, "sign-in cannot be checked now");
                Self::Unavailable(AUTH_UNAVAILABLE)
            }
        }
    }
}

/// The sentence of a 503 when a token cannot be checked now.
const AUTH_UNAVAILABLE: &str = "sign-in cannot be checked right now (the identity provider or the database cannot be reached); try again shortly";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_that_cannot_be_checked_now_is_503_naming_both_causes() {
        let error = ApiError::from(AuthError::Unavailable("connection refused".to_owned()));
        assert_eq!(error.status_code(), StatusCode::SERVICE_UNAVAILABLE);
        let ApiError::Unavailable(detail) = error else {
            panic!("not Unavailable: {error:?}");
        };
        assert!(detail.contains("identity provider") && detail.contains("database"));
        assert!(
            !detail.contains("connection refused"),
            "the cause stays in the log"
        );
    }

    #[test]
    fn retry_after_is_whole_seconds_between_1_and_60() {
        let secs = |d| match ApiError::rate_limited(d) {
            ApiError::RateLimited { retry_after_secs } => retry_after_secs,
            _ => 0,
        };
        assert_eq!(secs(Duration::from_millis(10)), 1);
        assert_eq!(secs(Duration::from_millis(2_100)), 3);
        assert_eq!(secs(Duration::from_secs(600)), 60);
    }

    #[test]
    fn every_variant_has_the_code_of_api_md() {
        let cases = [
            (ApiError::BadRequest("x".to_owned()), "bad_request"),
            (ApiError::Unauthenticated, "unauthenticated"),
            (ApiError::NOT_FOUND, "not_found"),
            (
                ApiError::MethodNotAllowed { allow: "GET" },
                "method_not_allowed",
            ),
            (ApiError::Conflict("x".to_owned()), "conflict"),
            (
                ApiError::PayloadTooLarge("x".to_owned()),
                "payload_too_large",
            ),
            (
                ApiError::UnsupportedMediaType("x".to_owned()),
                "unsupported_media_type",
            ),
            (ApiError::Validation("x".to_owned()), "validation_failed"),
            (
                ApiError::RateLimited {
                    retry_after_secs: 1,
                },
                "rate_limited",
            ),
            (ApiError::Unavailable("x"), "unavailable"),
            (ApiError::Internal("x".to_owned()), "internal"),
        ];
        for (error, code) in cases {
            assert_eq!(code_for(error.status_code()), code, "{error:?}");
        }
        assert_eq!(code_for(StatusCode::REQUEST_TIMEOUT), "request_timeout");
        assert_eq!(
            code_for(StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE),
            "request_header_fields_too_large"
        );
    }

    mod middleware {
        use actix_web::middleware::from_fn;
        use actix_web::{App, test, web};

        use super::*;

        async fn panics() -> HttpResponse {
            panic!("the handler broke")
        }

        async fn call(path: &str) -> (StatusCode, Option<String>, Problem) {
            let app = test::init_service(
                App::new()
                    .wrap(from_fn(problems))
                    .route("/panic", web::get().to(panics))
                    .route(
                        "/plain",
                        web::get().to(|| async {
                            HttpResponse::Conflict()
                                .insert_header((header::RETRY_AFTER, "3"))
                                .body("busy")
                        }),
                    )
                    .route(
                        "/missing-data",
                        web::get().to(|_: web::Data<String>| async { HttpResponse::Ok().finish() }),
                    )
                    .route(
                        "/json",
                        web::post().to(|_: web::Json<u32>| async { HttpResponse::Ok().finish() }),
                    )
                    .route(
                        "/api-error",
                        web::get().to(|| async {
                            Err::<HttpResponse, _>(ApiError::MethodNotAllowed { allow: "POST" })
                        }),
                    ),
            )
            .await;
            let method = if path == "/json" {
                test::TestRequest::post()
                    .insert_header((header::CONTENT_TYPE, "application/json"))
                    .set_payload("nope")
            } else {
                test::TestRequest::get()
            };
            // An error instead of an answer is answered as actix's dispatcher does.
            let response = match test::try_call_service(&app, method.uri(path).to_request()).await {
                Ok(response) => response.into_parts().1.map_into_boxed_body(),
                Err(error) => HttpResponse::from_error(error),
            };
            let status = response.status();
            let headers = response.headers().clone();
            assert_eq!(
                headers
                    .get(header::CONTENT_TYPE)
                    .and_then(|v| v.to_str().ok()),
                Some(PROBLEM_JSON),
                "{path}"
            );
            let body = actix_web::body::to_bytes(response.into_body())
                .await
                .unwrap_or_default();
            let problem: Problem = serde_json::from_slice(&body).unwrap();
            assert_eq!(problem.status, status.as_u16());
            let extra = headers
                .get(header::RETRY_AFTER)
                .or_else(|| headers.get(header::ALLOW))
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            (status, extra, problem)
        }

        #[actix_web::test]
        async fn a_panic_is_a_500_problem_without_its_message() {
            let (status, _, problem) = call("/panic").await;
            assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
            assert_eq!(problem.code, "internal");
            assert!(!problem.detail.contains("broke"), "{}", problem.detail);
        }

        #[actix_web::test]
        async fn an_error_answer_built_elsewhere_is_rebuilt_with_its_status_and_headers() {
            let (status, retry_after, problem) = call("/plain").await;
            assert_eq!(status, StatusCode::CONFLICT);
            assert_eq!(problem.code, "conflict");
            assert_eq!(retry_after.as_deref(), Some("3"));

            let (status, _, problem) = call("/missing-data").await;
            assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
            assert_eq!(problem.code, "internal");
            assert_eq!(problem.detail, INTERNAL_DETAIL);

            let (status, _, problem) = call("/json").await;
            assert_eq!(status, StatusCode::BAD_REQUEST);
            assert_eq!(problem.code, "bad_request");
        }

        #[actix_web::test]
        async fn an_api_error_passes_as_it_is() {
            let (status, allow, problem) = call("/api-error").await;
            assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
            assert_eq!(allow.as_deref(), Some("POST"));
            assert_eq!(problem.code, "method_not_allowed");
        }
    }

    #[test]
    fn internal_errors_do_not_leak_their_cause() {
        let e = ApiError::Internal("SELECT * FROM secrets".to_owned());
        assert!(!e.detail().contains("SELECT"));
        assert_eq!(e.status_code(), StatusCode::INTERNAL_SERVER_ERROR);
    }
}
