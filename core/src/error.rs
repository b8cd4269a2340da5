//! Errors at the edges of the core. Each port has one error type; each use case family
//! has one. The HTTP layer maps these to statuses; nothing here carries SQL, a secret or a
//! stack trace to a client.

use std::time::Duration;

use crate::cursor::InvalidCursor;
use crate::values::ValidationError;

/// Why a write was refused because of the state of the data.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Conflict {
    /// A reply is already being generated in this conversation.
    #[error("a reply is already being generated in this conversation")]
    ReplyInProgress,
    /// This `client_message_id` was already used in this conversation.
    #[error("this client_message_id was already sent in this conversation")]
    DuplicateClientMessage,
    /// A row with this id exists already.
    #[error("a resource with this id exists already")]
    DuplicateId,
    /// Concurrent writers collided and retrying did not help.
    #[error("a concurrent change collided with this one; try again")]
    Concurrent,
}

/// What a storage port returns when it cannot do what was asked.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The resource does not exist, or belongs to someone else (the two are indistinguishable).
    #[error("not found")]
    NotFound,
    #[error(transparent)]
    Conflict(#[from] Conflict),
    /// The request names a message that cannot take this place in the tree (422): a user
    /// message as a user message's parent, a user message to regenerate.
    #[error(transparent)]
    Invalid(#[from] crate::values::ValidationError),
    /// The database cannot be reached or gave up waiting (503).
    #[error("the database is unavailable: {0}")]
    Unavailable(String),
    /// Anything else; logged, answered as an opaque 500.
    #[error("storage error: {0}")]
    Internal(String),
    /// A turn refused, storing nothing, because its user has used their tokens (429
    /// `quota_exceeded`): the check of `NewTurn::quota` in `ChatHistory::begin_turn`.
    #[error("{}", .0.sentence())]
    QuotaExceeded(crate::usage::QuotaExceeded),
}

/// What a blob store returns.
#[derive(Debug, thiserror::Error)]
pub enum BlobError {
    #[error("no blob under this key")]
    NotFound,
    /// The body stream given to `put` failed; nothing may be left behind.
    #[error("the upload was aborted: {0}")]
    Aborted(String),
    #[error("blob storage is unavailable: {0}")]
    Unavailable(String),
    #[error("blob storage error: {0}")]
    Internal(String),
}

/// Errors of the project, prompt, conversation and file use cases.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// 422
    #[error(transparent)]
    Validation(#[from] ValidationError),
    /// 400
    #[error(transparent)]
    InvalidCursor(#[from] InvalidCursor),
    /// 404
    #[error("not found")]
    NotFound,
    /// 409
    #[error(transparent)]
    Conflict(Conflict),
    /// 413
    #[error("the upload is larger than {limit} bytes")]
    PayloadTooLarge { limit: u64 },
    /// 503
    #[error("a dependency is unavailable: {0}")]
    Unavailable(String),
    /// 500
    #[error("internal error: {0}")]
    Internal(String),
}

impl From<StoreError> for ServiceError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound => Self::NotFound,
            StoreError::Conflict(c) => Self::Conflict(c),
            StoreError::Invalid(v) => Self::Validation(v),
            StoreError::Unavailable(m) => Self::Unavailable(m),
            StoreError::Internal(m) => Self::Internal(m),
            // Only a turn is checked against a quota, and turns are the chat use case's.
            StoreError::QuotaExceeded(q) => {
                Self::Internal(format!("a quota refusal outside a turn: {}", q.sentence()))
            }
        }
    }
}

impl From<BlobError> for ServiceError {
    fn from(e: BlobError) -> Self {
        match e {
            BlobError::NotFound => Self::NotFound,
            BlobError::Unavailable(m) => Self::Unavailable(m),
            BlobError::Aborted(m) | BlobError::Internal(m) => Self::Internal(m),
        }
    }
}

/// Errors of `ChatService::send` before its stream starts. Once the stream has started,
/// failures are events of the stream, never errors of the call.
#[derive(Debug, thiserror::Error)]
pub enum ChatError {
    /// 422
    #[error(transparent)]
    Validation(#[from] ValidationError),
    /// 404: the conversation does not exist or is someone else's.
    #[error("not found")]
    NotFound,
    /// 409
    #[error(transparent)]
    Conflict(Conflict),
    /// 429: the user's send limit; retry after this long.
    #[error("too many messages; retry in {} s", retry_after.as_secs())]
    RateLimited { retry_after: Duration },
    /// 429 `quota_exceeded`: the user has used their daily or monthly tokens.
    #[error("{}", .0.sentence())]
    QuotaExceeded(crate::usage::QuotaExceeded),
    /// 503
    #[error("a dependency is unavailable: {0}")]
    Unavailable(String),
    /// 500
    #[error("internal error: {0}")]
    Internal(String),
}

impl From<StoreError> for ChatError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound => Self::NotFound,
            StoreError::Conflict(c) => Self::Conflict(c),
            StoreError::Invalid(v) => Self::Validation(v),
            StoreError::Unavailable(m) => Self::Unavailable(m),
            StoreError::Internal(m) => Self::Internal(m),
            StoreError::QuotaExceeded(q) => Self::QuotaExceeded(q),
        }
    }
}

/// What an `AuthVerifier` returns for a token it does not accept.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// 401. The reason is for logs, never for the client.
    #[error("unauthenticated: {0}")]
    Unauthenticated(String),
    /// 503: no signing key could be fetched at all (cold cache, issuer unreachable).
    #[error("the identity provider is unavailable: {0}")]
    Unavailable(String),
}

/// What an `LlmStream` yields when the provider fails. Messages never carry the API key.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum LlmError {
    /// The provider said 429 (after retries).
    #[error("the model provider is rate limiting requests")]
    RateLimited { retry_after: Option<Duration> },
    /// The provider answered with an error status or a failure event.
    #[error("the model provider failed: {message}")]
    Upstream {
        /// The HTTP status; `None` for a failure event inside a stream.
        status: Option<u16>,
        /// What the failure means, for the sentence shown to the user: `model_not_found`,
        /// `insufficient_quota`, `context_length_exceeded`, `overloaded`, `not_found`,
        /// `invalid_request_error`, `server_error`, or the provider's own code otherwise.
        code: Option<String>,
        /// The provider's message, for the log only.
        message: String,
    },
    /// The provider rejected the API key (401/403).
    #[error("the provider rejected the API key")]
    Unauthorized,
    /// A connect, first-byte or idle timeout.
    #[error("the model provider timed out: {0}")]
    Timeout(String),
    /// The provider could not be reached at all.
    #[error("the model provider could not be reached: {0}")]
    Unavailable(String),
    /// The provider's answer could not be understood.
    #[error("the model provider sent a malformed response: {0}")]
    BadResponse(String),
    /// The stream ended without a terminal event.
    #[error("the model provider's stream ended before the reply was complete")]
    Truncated,
    /// The provider stopped the reply by its content filter.
    #[error("the reply was stopped by the provider's content filter")]
    ContentFilter,
}
