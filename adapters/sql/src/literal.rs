//! Constants written into a statement's SQL instead of bound, for the values that partial
//! indexes name (`status = 'streaming'`, `is_active`, `text_status = 'pending'`).
//!
//! SQLite, when it plans a statement, checks each partial index's `WHERE` against the
//! statement's terms; a term `status = ?` is compared with the index's `status = 'streaming'`
//! by reading the value bound to `?`, and the statement is marked so that binding that
//! parameter again expires it. Diesel binds every value on every run, so each run of such a
//! statement was a full re-prepare (`sqlite3Reprepare` from `sqlite3_step`: as costly as
//! compiling it anew), even for a statement that does not use the index. A constant in the
//! SQL is matched to the index once, when the statement is prepared. PostgreSQL gains too:
//! a generic plan cannot prove that `status = $1` implies an index's predicate.
//!
//! Each constant is a type of its own with a static query id, so a statement that uses one
//! keeps its place in the prepared statement cache (unlike `diesel::dsl::sql`, which Diesel
//! never caches).

use diesel::QueryResult;
use diesel::backend::Backend;
use diesel::expression::{AppearsOnTable, Expression, SelectableExpression, ValidGrouping};
use diesel::pg::Pg;
use diesel::query_builder::{AstPass, QueryFragment, QueryId};
use diesel::sql_types::{Bool, Text};
use diesel::sqlite::Sqlite;

/// A text constant of the SQL, compared with a text column: `column.eq(Streaming)`.
macro_rules! text_literal {
    ($(#[$doc:meta])* $name:ident = $value:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, Default)]
        pub(crate) struct $name;

        impl $name {
            /// The value, as the SQL writes it (quoted).
            pub(crate) const SQL: &'static str = concat!("'", $value, "'");
        }

        impl Expression for $name {
            type SqlType = Text;
        }

        impl<QS: ?Sized> AppearsOnTable<QS> for $name {}

        impl<QS: ?Sized> SelectableExpression<QS> for $name {}

        impl<GB> ValidGrouping<GB> for $name {
            type IsAggregate = diesel::expression::is_aggregate::Never;
        }

        impl QueryId for $name {
            type QueryId = Self;
            const HAS_STATIC_QUERY_ID: bool = true;
        }

        impl<DB: Backend> QueryFragment<DB> for $name {
            fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, DB>) -> QueryResult<()> {
                out.push_sql(Self::SQL);
                Ok(())
            }
        }
    };
}

text_literal!(
    /// `'streaming'`: a reply being generated (`MessageStatus::Streaming`).
    Streaming = "streaming"
);

text_literal!(
    /// `'pending'`: a file whose text is still to be extracted (`TextStatus::Pending`).
    Pending = "pending"
);

text_literal!(
    /// `'ready'`: a file whose text was extracted (`TextStatus::Ready`), the only kind
    /// that has knowledge chunks.
    Ready = "ready"
);

/// `TRUE`, written as each backend's partial index `prompts_one_active_per_project` writes
/// it (`WHERE is_active = 1` on SQLite, `WHERE is_active` on PostgreSQL, where a boolean
/// constant is folded into the same predicate): `prompts::is_active.eq(True)`.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct True;

impl Expression for True {
    type SqlType = Bool;
}

impl<QS: ?Sized> AppearsOnTable<QS> for True {}

impl<QS: ?Sized> SelectableExpression<QS> for True {}

impl<GB> ValidGrouping<GB> for True {
    type IsAggregate = diesel::expression::is_aggregate::Never;
}

impl QueryId for True {
    type QueryId = Self;
    const HAS_STATIC_QUERY_ID: bool = true;
}

impl QueryFragment<Sqlite> for True {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Sqlite>) -> QueryResult<()> {
        out.push_sql("1");
        Ok(())
    }
}

impl QueryFragment<Pg> for True {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        out.push_sql("TRUE");
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use confab_core::model::{MessageStatus, TextStatus};
    use diesel::{ExpressionMethods as _, QueryDsl as _};

    use super::*;
    use crate::schema::{messages, prompts};

    #[test]
    fn the_literals_are_the_statuses_the_code_stores() {
        assert_eq!(
            Streaming::SQL,
            format!("'{}'", MessageStatus::Streaming.as_str())
        );
        assert_eq!(Pending::SQL, format!("'{}'", TextStatus::Pending.as_str()));
    }

    /// No parameter is bound for them: nothing for SQLite to read while it plans.
    #[test]
    fn the_literals_are_written_into_the_sql_and_not_bound() {
        let query = messages::table
            .filter(messages::id.eq(crate::types::DbId(uuid::Uuid::nil())))
            .filter(messages::status.eq(Streaming))
            .select(messages::id);
        let sqlite = diesel::debug_query::<Sqlite, _>(&query).to_string();
        assert!(
            sqlite.contains("`messages`.`status` = 'streaming'")
                && sqlite.matches("?").count() == 1,
            "{sqlite}"
        );
        let active = prompts::table
            .filter(prompts::is_active.eq(True))
            .select(prompts::id);
        let sqlite = diesel::debug_query::<Sqlite, _>(&active).to_string();
        assert!(
            sqlite.contains("`prompts`.`is_active` = 1) -- binds: []"),
            "{sqlite}"
        );
        let pg = diesel::debug_query::<Pg, _>(&active).to_string();
        assert!(
            pg.contains("\"prompts\".\"is_active\" = TRUE) -- binds: []"),
            "{pg}"
        );
    }
}
