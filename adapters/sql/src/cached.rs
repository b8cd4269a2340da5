//! [`Cached`]: a statement whose SQL text never changes, marked as safe for the prepared
//! statement cache.
//!
//! Diesel never caches an `UPDATE` (a changeset may skip `None` fields, so its text can vary)
//! and re-prepares it on every run: on PostgreSQL that is a `Parse`/`Describe` round trip
//! before the statement can even be bound, and on SQLite a fresh compile. The cache is keyed
//! by the SQL text and bind types when a statement has no static query id, as these do, so a
//! statement whose text did vary would only add entries, never run the wrong one.

use diesel::QueryResult;
use diesel::backend::Backend;
use diesel::query_builder::{AstPass, Query, QueryFragment, QueryId};

/// `Q`, cacheable. Only for statements built the same way every time (no optional parts).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Cached<Q>(pub(crate) Q);

impl<Q, DB> QueryFragment<DB> for Cached<Q>
where
    Q: QueryFragment<DB>,
    DB: Backend,
{
    fn walk_ast<'b>(&'b self, pass: AstPass<'_, 'b, DB>) -> QueryResult<()> {
        self.0.walk_ast(pass)
    }

    fn is_safe_to_cache_prepared(&self, _backend: &DB) -> QueryResult<bool> {
        Ok(true)
    }
}

impl<Q> QueryId for Cached<Q> {
    type QueryId = ();
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl<Q, Conn> diesel::RunQueryDsl<Conn> for Cached<Q> {}

impl<Q: Query> Query for Cached<Q> {
    type SqlType = Q::SqlType;
}
