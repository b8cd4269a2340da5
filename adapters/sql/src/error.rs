//! Translation of database and pool errors into the ports' `StoreError`, and the adapter's
//! own `SqlError` for start-up. No text built here carries SQL or a bound parameter.

use confab_core::error::{Conflict, StoreError};
use diesel::result::{DatabaseErrorInformation, DatabaseErrorKind, Error as DieselError};
use diesel_async::pooled_connection::PoolError as ManagerError;

/// What `connect` and `run_migrations` return when the store cannot be set up.
#[derive(Debug, thiserror::Error)]
pub enum SqlError {
    /// The URL names no supported backend.
    #[error(
        "unsupported database URL: expected sqlite://relative/path.db, sqlite:///abs/path.db, \
         sqlite::memory:, postgres://… or postgresql://…"
    )]
    UnsupportedUrl,
    /// The folder that should hold the SQLite file could not be created.
    #[error("could not create the folder of the SQLite database: {0}")]
    CreateDir(#[source] std::io::Error),
    /// The connection pool could not be built.
    #[error("could not build the connection pool: {0}")]
    Pool(String),
    /// The database could not be reached (never includes the URL or its password).
    #[error("could not connect to the database: {0}")]
    Connect(String),
    /// Applying the embedded migrations failed.
    #[error("could not apply the database migrations: {0}")]
    Migration(String),
}

/// An error inside a transaction: a database error, or a decision of the query code.
pub(crate) enum TxError {
    Db(DieselError),
    Store(StoreError),
}

impl From<DieselError> for TxError {
    fn from(e: DieselError) -> Self {
        Self::Db(e)
    }
}

impl From<StoreError> for TxError {
    fn from(e: StoreError) -> Self {
        Self::Store(e)
    }
}

impl From<Conflict> for TxError {
    fn from(c: Conflict) -> Self {
        Self::Store(StoreError::Conflict(c))
    }
}

impl From<TxError> for StoreError {
    fn from(e: TxError) -> Self {
        match e {
            TxError::Db(e) => translate(e),
            TxError::Store(e) => e,
        }
    }
}

/// Which unique constraint a unique violation hit. PostgreSQL names the constraint; SQLite
/// only lists the columns ("UNIQUE constraint failed: messages.conversation_id"), so both
/// spellings of each constraint are recognised here.
#[derive(Debug, PartialEq, Eq)]
enum UniqueKey {
    /// A primary key.
    Id,
    /// `messages_client_message_key`: (conversation_id, client_message_id).
    ClientMessage,
    /// `messages_one_streaming_reply`: at most one `streaming` reply per conversation.
    StreamingReply,
    /// `prompts_project_version_key` or `prompts_one_active_per_project`: a concurrent
    /// prompt writer got there first; retrying sees its row.
    PromptRace,
}

fn unique_key(info: &dyn DatabaseErrorInformation) -> UniqueKey {
    let target = info.constraint_name().unwrap_or_else(|| {
        let message = info.message();
        message
            .strip_prefix("UNIQUE constraint failed: ")
            .unwrap_or(message)
    });
    match target {
        "messages_client_message_key" | "messages.conversation_id, messages.client_message_id" => {
            UniqueKey::ClientMessage
        }
        "messages_one_streaming_reply" | "messages.conversation_id" => UniqueKey::StreamingReply,
        "prompts_project_version_key"
        | "prompts.project_id, prompts.version"
        | "prompts_one_active_per_project"
        | "prompts.project_id" => UniqueKey::PromptRace,
        _ => UniqueKey::Id,
    }
}

/// SQLite's "busy" (another connection holds the write lock past the busy timeout).
fn is_sqlite_busy(info: &dyn DatabaseErrorInformation) -> bool {
    let message = info.message();
    message.starts_with("database is locked") || message.starts_with("database table is locked")
}

/// Whether running the whole transaction again may succeed: a serialization failure or
/// deadlock on PostgreSQL, a busy database on SQLite, or a lost race for a prompt version
/// or the active prompt.
pub(crate) fn is_retryable(e: &DieselError) -> bool {
    match e {
        DieselError::DatabaseError(DatabaseErrorKind::SerializationFailure, _) => true,
        DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, info) => {
            unique_key(info.as_ref()) == UniqueKey::PromptRace
        }
        DieselError::DatabaseError(DatabaseErrorKind::Unknown, info) => {
            info.message() == "deadlock detected" || is_sqlite_busy(info.as_ref())
        }
        _ => false,
    }
}

/// Translates a database error into the ports' error.
pub(crate) fn translate(e: DieselError) -> StoreError {
    match e {
        DieselError::NotFound => StoreError::NotFound,
        DieselError::DatabaseError(kind, info) => match kind {
            DatabaseErrorKind::UniqueViolation => {
                StoreError::Conflict(match unique_key(info.as_ref()) {
                    UniqueKey::Id => Conflict::DuplicateId,
                    UniqueKey::ClientMessage => Conflict::DuplicateClientMessage,
                    UniqueKey::StreamingReply => Conflict::ReplyInProgress,
                    UniqueKey::PromptRace => Conflict::Concurrent,
                })
            }
            // Only inserts under a parent reference another row: the parent is gone.
            DatabaseErrorKind::ForeignKeyViolation => StoreError::NotFound,
            DatabaseErrorKind::SerializationFailure => StoreError::Conflict(Conflict::Concurrent),
            DatabaseErrorKind::ClosedConnection | DatabaseErrorKind::UnableToSendCommand => {
                StoreError::Unavailable("the database connection was lost".to_owned())
            }
            DatabaseErrorKind::Unknown if is_sqlite_busy(info.as_ref()) => {
                StoreError::Unavailable("the database stayed busy for too long".to_owned())
            }
            DatabaseErrorKind::Unknown if info.message() == "deadlock detected" => {
                StoreError::Conflict(Conflict::Concurrent)
            }
            DatabaseErrorKind::CheckViolation | DatabaseErrorKind::NotNullViolation => {
                StoreError::Internal(format!(
                    "a value broke a database constraint ({})",
                    info.constraint_name().unwrap_or("unnamed")
                ))
            }
            // The server's own message: names relations and constraints, never our values.
            _ => StoreError::Internal(format!("database error: {}", info.message())),
        },
        DieselError::DeserializationError(e) => {
            StoreError::Internal(format!("could not read a stored value: {e}"))
        }
        DieselError::SerializationError(e) => {
            StoreError::Internal(format!("could not write a value: {e}"))
        }
        DieselError::BrokenTransactionManager => {
            StoreError::Unavailable("the database connection is in a broken state".to_owned())
        }
        other => StoreError::Internal(format!("database error: {other}")),
    }
}

/// Translates a failure to obtain a pooled connection: always `Unavailable`, since the
/// request may succeed once the database answers again.
pub(crate) fn pool_error(e: deadpool::managed::PoolError<ManagerError>) -> StoreError {
    use deadpool::managed::PoolError;
    match e {
        PoolError::Timeout(_) => {
            StoreError::Unavailable("timed out waiting for a database connection".to_owned())
        }
        PoolError::Backend(ManagerError::ConnectionError(e)) => {
            StoreError::Unavailable(format!("could not connect to the database: {e}"))
        }
        PoolError::Backend(ManagerError::QueryError(_)) => {
            StoreError::Unavailable("a database connection failed its health check".to_owned())
        }
        PoolError::Closed => StoreError::Unavailable("the connection pool is closed".to_owned()),
        PoolError::NoRuntimeSpecified => {
            StoreError::Internal("the connection pool has no runtime for its timeouts".to_owned())
        }
        PoolError::PostCreateHook(e) => {
            StoreError::Unavailable(format!("could not set up a database connection: {e}"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Info {
        message: &'static str,
        constraint: Option<&'static str>,
    }

    impl DatabaseErrorInformation for Info {
        fn message(&self) -> &str {
            self.message
        }
        fn details(&self) -> Option<&str> {
            None
        }
        fn hint(&self) -> Option<&str> {
            None
        }
        fn table_name(&self) -> Option<&str> {
            None
        }
        fn column_name(&self) -> Option<&str> {
            None
        }
        fn constraint_name(&self) -> Option<&str> {
            self.constraint
        }
        fn statement_position(&self) -> Option<i32> {
            None
        }
    }

    fn db(
        kind: DatabaseErrorKind,
        message: &'static str,
        constraint: Option<&'static str>,
    ) -> DieselError {
        DieselError::DatabaseError(
            kind,
            Box::new(Info {
                message,
                constraint,
            }),
        )
    }

    fn conflict(e: DieselError) -> Option<Conflict> {
        match translate(e) {
            StoreError::Conflict(c) => Some(c),
            _ => None,
        }
    }

    #[test]
    fn unique_violations_map_to_the_conflict_their_constraint_means_on_both_backends() {
        use DatabaseErrorKind::UniqueViolation as U;
        let cases = [
            (
                db(U, "duplicate key", Some("projects_pkey")),
                Conflict::DuplicateId,
            ),
            (
                db(U, "UNIQUE constraint failed: projects.id", None),
                Conflict::DuplicateId,
            ),
            (
                db(U, "duplicate key", Some("messages_client_message_key")),
                Conflict::DuplicateClientMessage,
            ),
            (
                db(
                    U,
                    "UNIQUE constraint failed: messages.conversation_id, messages.client_message_id",
                    None,
                ),
                Conflict::DuplicateClientMessage,
            ),
            (
                db(U, "duplicate key", Some("messages_one_streaming_reply")),
                Conflict::ReplyInProgress,
            ),
            (
                db(
                    U,
                    "UNIQUE constraint failed: messages.conversation_id",
                    None,
                ),
                Conflict::ReplyInProgress,
            ),
            (
                db(U, "duplicate key", Some("prompts_project_version_key")),
                Conflict::Concurrent,
            ),
            (
                db(U, "UNIQUE constraint failed: prompts.project_id", None),
                Conflict::Concurrent,
            ),
        ];
        for (error, expected) in cases {
            assert_eq!(conflict(error), Some(expected));
        }
    }

    #[test]
    fn missing_parents_busy_databases_and_lost_connections_are_translated() {
        assert!(matches!(
            translate(db(
                DatabaseErrorKind::ForeignKeyViolation,
                "FOREIGN KEY constraint failed",
                None
            )),
            StoreError::NotFound
        ));
        assert!(matches!(
            translate(db(DatabaseErrorKind::Unknown, "database is locked", None)),
            StoreError::Unavailable(_)
        ));
        assert!(matches!(
            translate(db(DatabaseErrorKind::ClosedConnection, "closed", None)),
            StoreError::Unavailable(_)
        ));
        assert!(matches!(
            translate(DieselError::NotFound),
            StoreError::NotFound
        ));
    }

    #[test]
    fn only_races_and_busy_databases_are_retried() {
        assert!(is_retryable(&db(
            DatabaseErrorKind::SerializationFailure,
            "could not serialize",
            None
        )));
        assert!(is_retryable(&db(
            DatabaseErrorKind::Unknown,
            "deadlock detected",
            None
        )));
        assert!(is_retryable(&db(
            DatabaseErrorKind::Unknown,
            "database is locked",
            None
        )));
        assert!(is_retryable(&db(
            DatabaseErrorKind::UniqueViolation,
            "UNIQUE constraint failed: prompts.project_id, prompts.version",
            None
        )));
        assert!(!is_retryable(&db(
            DatabaseErrorKind::UniqueViolation,
            "dup",
            Some("prompts_pkey")
        )));
        assert!(!is_retryable(&DieselError::NotFound));
    }
}
