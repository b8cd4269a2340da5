//! The two `UPDATE`s of every turn, written out as statements of a fixed text (as
//! `branch.rs` writes its walks) rather than with Diesel's `update`.
//!
//! Diesel marks every `UPDATE` as unsafe for the prepared statement cache (a changeset may
//! skip `None` fields); [`crate::cached::Cached`] overrides that mark, but Diesel's
//! synchronous `execute` hands the statement on by reference, and its `QueryFragment` for
//! `&T` does not forward the override: the mark comes back from the walk of the `UPDATE`.
//! SQLite's turn runs on the synchronous connection (`turn::sqlite`), so both statements
//! were compiled anew at every send. These fragments never mark themselves unsafe, so they
//! are cached however they are run; their ids are static (one type each).

use diesel::QueryResult;
use diesel::backend::Backend;
use diesel::query_builder::{AstPass, QueryFragment, QueryId};
use diesel::serialize::ToSql;
use diesel::sql_types::{HasSqlType, Text};

use crate::literal::Streaming;
use crate::queries::INTERRUPTED;
use crate::types::{DbId, DbTime, Id, Instant};

const FAILED: &str = confab_core::model::MessageStatus::Failed.as_str();

/// The sweep of a turn: the owner's conversation's `streaming` replies whose lease lapsed
/// before `stale_before` are failed as interrupted. Touches nothing of another owner's
/// conversation (the `EXISTS`).
#[derive(Debug, Clone)]
pub(crate) struct StaleSweep<'a> {
    pub conversation: DbId,
    pub owner: &'a str,
    pub stale_before: DbTime,
}

impl<DB> QueryFragment<DB> for StaleSweep<'_>
where
    DB: Backend + HasSqlType<Id> + HasSqlType<Text> + HasSqlType<Instant>,
    DbId: ToSql<Id, DB>,
    str: ToSql<Text, DB>,
    DbTime: ToSql<Instant, DB>,
{
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, DB>) -> QueryResult<()> {
        out.push_sql("UPDATE messages SET status = ");
        out.push_bind_param::<Text, str>(FAILED)?;
        out.push_sql(", error = ");
        out.push_bind_param::<Text, str>(INTERRUPTED)?;
        out.push_sql(" WHERE conversation_id = ");
        out.push_bind_param::<Id, _>(&self.conversation)?;
        out.push_sql(" AND status = ");
        out.push_sql(Streaming::SQL);
        out.push_sql(" AND touched_at < ");
        out.push_bind_param::<Instant, _>(&self.stale_before)?;
        out.push_sql(" AND EXISTS (SELECT 1 FROM conversations WHERE id = ");
        out.push_bind_param::<Id, _>(&self.conversation)?;
        out.push_sql(" AND owner_id = ");
        out.push_bind_param::<Text, str>(self.owner)?;
        out.push_sql(")");
        Ok(())
    }
}

impl QueryId for StaleSweep<'_> {
    type QueryId = StaleSweep<'static>;
    const HAS_STATIC_QUERY_ID: bool = true;
}

impl<Conn> diesel::RunQueryDsl<Conn> for StaleSweep<'_> {}

/// The conversation's `updated_at` and `leaf_id` after a turn stored its messages.
#[derive(Debug, Clone, Copy)]
pub(crate) struct LeafBump {
    pub conversation: DbId,
    pub updated_at: DbTime,
    pub leaf: DbId,
}

impl<DB> QueryFragment<DB> for LeafBump
where
    DB: Backend + HasSqlType<Id> + HasSqlType<Instant>,
    DbId: ToSql<Id, DB>,
    DbTime: ToSql<Instant, DB>,
{
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, DB>) -> QueryResult<()> {
        out.push_sql("UPDATE conversations SET updated_at = ");
        out.push_bind_param::<Instant, _>(&self.updated_at)?;
        out.push_sql(", leaf_id = ");
        out.push_bind_param::<Id, _>(&self.leaf)?;
        out.push_sql(" WHERE id = ");
        out.push_bind_param::<Id, _>(&self.conversation)?;
        Ok(())
    }
}

impl QueryId for LeafBump {
    type QueryId = Self;
    const HAS_STATIC_QUERY_ID: bool = true;
}

impl<Conn> diesel::RunQueryDsl<Conn> for LeafBump {}

#[cfg(test)]
mod tests {
    use diesel::pg::Pg;
    use diesel::sqlite::Sqlite;

    use super::*;

    fn sweep() -> StaleSweep<'static> {
        StaleSweep {
            conversation: DbId(uuid::Uuid::nil()),
            owner: "alice",
            stale_before: DbTime(chrono::DateTime::UNIX_EPOCH),
        }
    }

    /// Cached however they are run: nothing in them marks them unsafe, also behind `&`
    /// (Diesel's synchronous `execute`).
    #[test]
    fn the_turns_updates_are_safe_to_cache_also_by_reference() {
        let bump = LeafBump {
            conversation: DbId(uuid::Uuid::nil()),
            updated_at: DbTime(chrono::DateTime::UNIX_EPOCH),
            leaf: DbId(uuid::Uuid::nil()),
        };
        let sweep = sweep();
        assert!(QueryFragment::<Sqlite>::is_safe_to_cache_prepared(&&sweep, &Sqlite).unwrap());
        assert!(QueryFragment::<Pg>::is_safe_to_cache_prepared(&&sweep, &Pg).unwrap());
        assert!(QueryFragment::<Sqlite>::is_safe_to_cache_prepared(&&bump, &Sqlite).unwrap());
        assert!(QueryFragment::<Pg>::is_safe_to_cache_prepared(&&bump, &Pg).unwrap());
    }

    /// What the bare `Cached` of a Diesel `UPDATE` could not be, behind `&`: the reason for
    /// the two types above. Should Diesel forward the override one day, this fails and
    /// they can go.
    #[test]
    fn diesel_loses_the_cached_mark_of_an_update_behind_a_reference() {
        use diesel::{ExpressionMethods as _, QueryDsl as _};

        use crate::cached::Cached;
        use crate::schema::conversations;

        let update = Cached(
            diesel::update(
                conversations::table.filter(conversations::id.eq(DbId(uuid::Uuid::nil()))),
            )
            .set(conversations::title.eq("t")),
        );
        assert!(QueryFragment::<Sqlite>::is_safe_to_cache_prepared(&update, &Sqlite).unwrap());
        assert!(!QueryFragment::<Sqlite>::is_safe_to_cache_prepared(&&update, &Sqlite).unwrap());
    }

    /// The sweep's status is a literal (SQLite would otherwise re-prepare it at every run,
    /// literal.rs) and it is scoped to the owner's conversation.
    #[test]
    fn the_sweep_names_the_streaming_status_in_its_text_and_checks_the_owner() {
        let sqlite = diesel::debug_query::<Sqlite, _>(&sweep()).to_string();
        assert!(
            sqlite.contains("AND status = 'streaming' AND touched_at < ?"),
            "{sqlite}"
        );
        assert!(sqlite.contains("AND owner_id = ?)"), "{sqlite}");
        let pg = diesel::debug_query::<Pg, _>(&sweep()).to_string();
        assert!(pg.contains("owner_id = $6)"), "{pg}");
    }
}
