//! [`Limited`]: a `SELECT` with a `LIMIT` that SQLite does not compile again on every run.
//!
//! SQLite (since 3.47; the bundled one is 3.53) reads the value bound to a bare `LIMIT ?`
//! while it plans the statement, and marks the statement so that binding that parameter
//! again expires it: every run of a cached statement with `LIMIT ?` was a full re-prepare
//! (`sqlite3Reprepare`, as costly as compiling it anew — 27–40 % of a list's or a short
//! page's instructions). Diesel's `.limit(n)` and `.first()` write exactly that. An
//! expression (`LIMIT ? + 0`) is evaluated when the statement runs, not read while it is
//! planned, so the statement stays prepared. PostgreSQL plans parameters its own way and
//! gets the plain `LIMIT $n`.
//!
//! [`One`] (`.one()`, for Diesel's `.first()`): `LIMIT 1` written into the SQL, the same on
//! both backends, nothing bound.

use std::marker::PhantomData;

use diesel::QueryResult;
use diesel::backend::Backend;
use diesel::pg::Pg;
use diesel::query_builder::{AstPass, Query, QueryFragment, QueryId};
use diesel::serialize::ToSql;
use diesel::sql_types::{BigInt, HasSqlType};
use diesel::sqlite::Sqlite;

/// `query LIMIT 1`, for a query that has no `LIMIT` (nor `OFFSET`) of its own: what
/// Diesel's `.first()` asks for, with the `1` in the SQL instead of a bound parameter.
#[derive(Debug, Clone, Copy)]
pub(crate) struct One<Q>(Q);

/// `.one()`: the query's first row only (`LIMIT 1`). Load it with `.get_result(c)`, and
/// `.optional()` where no row is an answer, as Diesel's `.first(c)`.
pub(crate) trait OneRow: Sized {
    fn one(self) -> One<Self> {
        One(self)
    }
}

impl<Q: Query> OneRow for Q {}

impl<Q, DB> QueryFragment<DB> for One<Q>
where
    Q: QueryFragment<DB>,
    DB: Backend,
{
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, DB>) -> QueryResult<()> {
        self.0.walk_ast(out.reborrow())?;
        out.push_sql(" LIMIT 1");
        Ok(())
    }

    fn is_safe_to_cache_prepared(&self, backend: &DB) -> QueryResult<bool> {
        self.0.is_safe_to_cache_prepared(backend)
    }
}

/// The query id of a [`One`] of a query whose id is `T`.
#[derive(Debug)]
pub(crate) struct OneId<T>(PhantomData<T>);

impl<Q: QueryId> QueryId for One<Q> {
    type QueryId = OneId<Q::QueryId>;
    const HAS_STATIC_QUERY_ID: bool = Q::HAS_STATIC_QUERY_ID;
}

impl<Q: Query> Query for One<Q> {
    type SqlType = Q::SqlType;
}

impl<Q, Conn> diesel::RunQueryDsl<Conn> for One<Q> {}

/// What follows the bound value of a `LIMIT` on each backend.
pub(crate) trait LimitSyntax {
    const AFTER_BIND: &'static str;
}

impl LimitSyntax for Sqlite {
    const AFTER_BIND: &'static str = " + 0";
}

impl LimitSyntax for Pg {
    const AFTER_BIND: &'static str = "";
}

/// `query LIMIT n`, for a query that has no `LIMIT` (nor `OFFSET`) of its own.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limited<Q> {
    query: Q,
    limit: i64,
}

impl<Q> Limited<Q> {
    pub(crate) fn new(query: Q, limit: i64) -> Self {
        Self { query, limit }
    }
}

impl<Q, DB> QueryFragment<DB> for Limited<Q>
where
    Q: QueryFragment<DB>,
    DB: Backend + HasSqlType<BigInt> + LimitSyntax,
    i64: ToSql<BigInt, DB>,
{
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, DB>) -> QueryResult<()> {
        self.query.walk_ast(out.reborrow())?;
        out.push_sql(" LIMIT ");
        out.push_bind_param::<BigInt, i64>(&self.limit)?;
        out.push_sql(DB::AFTER_BIND);
        Ok(())
    }

    fn is_safe_to_cache_prepared(&self, backend: &DB) -> QueryResult<bool> {
        self.query.is_safe_to_cache_prepared(backend)
    }
}

/// The query id of a [`Limited`] of a query whose id is `T`.
#[derive(Debug)]
pub(crate) struct LimitedId<T>(PhantomData<T>);

impl<Q: QueryId> QueryId for Limited<Q> {
    type QueryId = LimitedId<Q::QueryId>;
    const HAS_STATIC_QUERY_ID: bool = Q::HAS_STATIC_QUERY_ID;
}

impl<Q: Query> Query for Limited<Q> {
    type SqlType = Q::SqlType;
}

#[cfg(test)]
mod tests {
    use diesel::{ExpressionMethods as _, QueryDsl as _};

    use super::*;
    use crate::schema::projects;

    #[test]
    fn sqlite_limits_by_an_expression_and_postgres_by_the_bare_parameter() {
        let query = Limited::new(
            projects::table
                .select(projects::name)
                .order(projects::name.desc()),
            5,
        );
        let sqlite = diesel::debug_query::<Sqlite, _>(&query).to_string();
        assert!(
            sqlite.contains("DESC LIMIT ? + 0 -- binds: [5]"),
            "{sqlite}"
        );
        let pg = diesel::debug_query::<Pg, _>(&query).to_string();
        assert!(pg.contains("DESC LIMIT $1 -- binds: [5]"), "{pg}");
    }

    #[test]
    fn one_row_is_asked_for_by_a_limit_written_into_the_sql() {
        let query = projects::table
            .filter(projects::name.eq("a"))
            .select(projects::name)
            .one();
        let sqlite = diesel::debug_query::<Sqlite, _>(&query).to_string();
        assert!(sqlite.contains("?) LIMIT 1 -- binds: [\"a\"]"), "{sqlite}");
        let pg = diesel::debug_query::<Pg, _>(&query).to_string();
        assert!(pg.contains("$1) LIMIT 1 -- binds: [\"a\"]"), "{pg}");
    }
}
