//! The one place where errors become HTTP: `application/problem+json` (RFC 9457) with a
//! stable `code`. Internal errors are logged with their cause and answered opaquely.

use std::time::Duration;

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, ResponseError};
use confab_api_types::Problem;
use confab_core::{AuthError, ChatError, ServiceError};

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
    /// 422 `validation_failed`.
    #[error("{0}")]
    Validation(String),
    /// 429 `rate_limited`, with `Retry-After`.
    #[error("too many messages; try again in {retry_after_secs} s")]
    RateLimited { retry_after_secs: u64 },
    /// 503 `unavailable`.
    #[error("{0}")]
    Unavailable(&'static str),
    /// 500 `internal`: the cause is logged, never sent.
    #[error("internal error")]
    Internal(String),
}

impl ApiError {
    pub const NOT_FOUND: Self = Self::NotFound("The resource does not exist.");

    fn code(&self) -> &'static str {
        match self {
            Self::BadRequest(_) => "bad_request",
            Self::Unauthenticated => "unauthenticated",
            Self::NotFound(_) => "not_found",
            Self::MethodNotAllowed { .. } => "method_not_allowed",
            Self::Conflict(_) => "conflict",
            Self::PayloadTooLarge(_) => "payload_too_large",
            Self::UnsupportedMediaType(_) => "unsupported_media_type",
            Self::Validation(_) => "validation_failed",
            Self::RateLimited { .. } => "rate_limited",
            Self::Unavailable(_) => "unavailable",
            Self::Internal(_) => "internal",
        }
    }

    fn detail(&self) -> String {
        match self {
            Self::Internal(_) => {
                "Something went wrong on the server. It has been logged.".to_owned()
            }
            Self::Unauthenticated => "A valid bearer token is required: sign in again.".to_owned(),
            other => {
                let mut text = other.to_string();
                if let Some(first) = text.get(..1) {
                    let upper = first.to_uppercase();
                    text.replace_range(..1, &upper);
                }
                if !text.ends_with('.') {
                    text.push('.');
                }
                text
            }
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

/// A problem+json response for a status, code and detail.
pub fn problem(status: StatusCode, code: &str, detail: String) -> HttpResponse {
    let body = Problem {
        kind: "about:blank".to_owned(),
        title: status.canonical_reason().unwrap_or("Error").to_owned(),
        status: status.as_u16(),
        detail,
        code: code.to_owned(),
    };
    let json = serde_json::to_vec(&body).unwrap_or_default();
    HttpResponse::build(status)
        .insert_header((header::CONTENT_TYPE, "application/problem+json"))
        .body(json)
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
            Self::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        if let Self::Internal(cause) = self {
            tracing::error!(cause = %cause, "internal error");
        }
        let mut response = problem(self.status_code(), self.code(), self.detail());
        let headers = response.headers_mut();
        match self {
            Self::Unauthenticated => {
                headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            }
            Self::MethodNotAllowed { allow } => {
                headers.insert(header::ALLOW, HeaderValue::from_static(allow));
            }
            Self::RateLimited { retry_after_secs } => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from(*retry_after_secs));
            }
            Self::Unavailable(_) => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
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
            AuthError::Unavailable(cause) => {
                tracing::warn!(cause = %cause, "the identity provider is unavailable");
                Self::Unavailable("the identity provider cannot be reached; try again shortly")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn internal_errors_do_not_leak_their_cause() {
        let e = ApiError::Internal("SELECT * FROM secrets".to_owned());
        assert!(!e.detail().contains("SELECT"));
        assert_eq!(e.status_code(), StatusCode::INTERNAL_SERVER_ERROR);
    }
}
