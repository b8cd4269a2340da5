//! The two walks of a conversation's tree, as recursive queries (`WITH RECURSIVE`, the same
//! text on PostgreSQL and SQLite), which Diesel's query builder cannot write:
//!
//! - [`BranchUp`]: the branch that ends at a message, walked from it towards the first
//!   message over ids only, then a page of its rows read: the newest (the history of a turn)
//!   or the oldest after a cursor (a page of `GET …/messages`);
//! - [`DeepestLeaf`]: from a message down, the most recent child at each step, to a leaf.
//!
//! Both are statements of a fixed text with a fixed number of binds, marked safe for the
//! prepared statement cache: `BranchUp` runs in the pipelined turn (`turn.rs`), where an
//! uncached statement would cost PostgreSQL a round trip to prepare it.

use diesel::backend::Backend;
use diesel::query_builder::{AstPass, Query, QueryFragment, QueryId};
use diesel::sql_types::{BigInt, Bool, HasSqlType, Nullable, Text};
use diesel::{QueryResult, RunQueryDsl};

use crate::types::{DbId, Id, Instant};

/// The columns of [`crate::rows::MessageRow`], in its order.
const MESSAGE_COLUMNS: &str = "id, conversation_id, role, content, status, model, \
    input_tokens, output_tokens, error, client_message_id, created_at, parent_id, sources";

/// Their SQL types.
type MessageSqlType = (
    Id,
    Id,
    Text,
    Text,
    Text,
    Nullable<Text>,
    Nullable<BigInt>,
    Nullable<BigInt>,
    Nullable<Text>,
    Nullable<Id>,
    Instant,
    Nullable<Id>,
    Nullable<Text>,
);

/// Where a branch ends.
#[derive(Clone, Copy, Debug)]
pub(crate) enum End {
    /// At the conversation's `leaf_id`.
    Leaf,
    /// At this message (none: the branch is empty).
    At(Option<DbId>),
}

/// Which rows of a branch are read, and in which order.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Take {
    /// The newest this many, newest first: the walk stops at that depth.
    Newest(i64),
    /// The oldest this many, oldest first: the walk goes to the first message (or the
    /// cursor) over ids only, and only the page's rows are read whole.
    Oldest(i64),
}

/// Messages of the owner's conversation on the branch that ends at `end`, as `take` says,
/// and only those after `after` (ids grow along a branch, so the walk stops there). Reads
/// nothing of another owner's conversation.
#[derive(Clone, Debug)]
pub(crate) struct BranchUp {
    conversation: DbId,
    owner: String,
    /// The message it ends at, or none to end at the leaf when `from_leaf`.
    at: Option<DbId>,
    from_leaf: bool,
    after: Option<DbId>,
    /// How deep the walk goes.
    depth: i64,
    /// How many rows are read.
    limit: i64,
    oldest_first: bool,
}

impl BranchUp {
    pub(crate) fn new(
        conversation: DbId,
        owner: &str,
        end: End,
        after: Option<DbId>,
        take: Take,
    ) -> Self {
        let (at, from_leaf) = match end {
            End::Leaf => (None, true),
            End::At(at) => (at, false),
        };
        let (depth, limit, oldest_first) = match take {
            Take::Newest(n) => (n, n, false),
            Take::Oldest(n) => (i64::MAX, n, true),
        };
        Self {
            conversation,
            owner: owner.to_owned(),
            at,
            from_leaf,
            after,
            depth,
            limit,
            oldest_first,
        }
    }
}

impl<DB> QueryFragment<DB> for BranchUp
where
    DB: Backend
        + HasSqlType<Id>
        + HasSqlType<Text>
        + HasSqlType<Bool>
        + HasSqlType<BigInt>
        + crate::limit::LimitSyntax,
    DbId: diesel::serialize::ToSql<Id, DB>,
    String: diesel::serialize::ToSql<Text, DB>,
    bool: diesel::serialize::ToSql<Bool, DB>,
    i64: diesel::serialize::ToSql<BigInt, DB>,
{
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, DB>) -> QueryResult<()> {
        let owned = "EXISTS (SELECT 1 FROM conversations AS c WHERE c.id = ";
        out.push_sql("WITH RECURSIVE branch (id, parent_id, depth) AS (SELECT m.id, m.parent_id, 1 FROM messages AS m WHERE m.conversation_id = ");
        out.push_bind_param::<Id, _>(&self.conversation)?;
        out.push_sql(" AND m.id = COALESCE(");
        out.push_bind_param::<Nullable<Id>, _>(&self.at)?;
        out.push_sql(
            ", (SELECT c.leaf_id FROM conversations AS c WHERE c.id = m.conversation_id AND ",
        );
        out.push_bind_param::<Bool, _>(&self.from_leaf)?;
        out.push_sql(")) AND ");
        out.push_sql(owned);
        out.push_bind_param::<Id, _>(&self.conversation)?;
        out.push_sql(" AND c.owner_id = ");
        out.push_bind_param::<Text, _>(&self.owner)?;
        out.push_sql(") AND (");
        out.push_bind_param::<Nullable<Id>, _>(&self.after)?;
        out.push_sql(" IS NULL OR m.id > ");
        out.push_bind_param::<Nullable<Id>, _>(&self.after)?;
        out.push_sql(") UNION ALL SELECT m.id, m.parent_id, b.depth + 1 FROM messages AS m JOIN branch AS b ON m.id = b.parent_id WHERE b.depth < ");
        out.push_bind_param::<BigInt, _>(&self.depth)?;
        out.push_sql(" AND (");
        out.push_bind_param::<Nullable<Id>, _>(&self.after)?;
        out.push_sql(" IS NULL OR m.id > ");
        out.push_bind_param::<Nullable<Id>, _>(&self.after)?;
        out.push_sql(")) SELECT ");
        out.push_sql(MESSAGE_COLUMNS);
        out.push_sql(" FROM messages WHERE id IN (SELECT id FROM branch) ORDER BY id ");
        out.push_sql(if self.oldest_first { "ASC" } else { "DESC" });
        // `LIMIT ? + 0` on SQLite: a bare `LIMIT ?` is re-prepared on every run (limit.rs).
        out.push_sql(" LIMIT ");
        out.push_bind_param::<BigInt, _>(&self.limit)?;
        out.push_sql(DB::AFTER_BIND);
        Ok(())
    }

    fn is_safe_to_cache_prepared(&self, _backend: &DB) -> QueryResult<bool> {
        Ok(true)
    }
}

impl QueryId for BranchUp {
    type QueryId = ();
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl Query for BranchUp {
    type SqlType = MessageSqlType;
}

impl<Conn> RunQueryDsl<Conn> for BranchUp {}

/// The deepest message under `from` in its conversation, following the most recent child
/// (highest id) at each step; `from` itself when it has no children, nothing when it is not
/// in the conversation.
#[derive(Clone, Copy, Debug)]
pub(crate) struct DeepestLeaf {
    pub conversation: DbId,
    pub from: DbId,
}

impl<DB> QueryFragment<DB> for DeepestLeaf
where
    DB: Backend + HasSqlType<Id>,
    DbId: diesel::serialize::ToSql<Id, DB>,
{
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, DB>) -> QueryResult<()> {
        out.push_sql(
            "WITH RECURSIVE down (id, depth) AS (SELECT m.id, 0 FROM messages AS m WHERE m.id = ",
        );
        out.push_bind_param::<Id, _>(&self.from)?;
        out.push_sql(" AND m.conversation_id = ");
        out.push_bind_param::<Id, _>(&self.conversation)?;
        out.push_sql(" UNION ALL SELECT (SELECT c.id FROM messages AS c WHERE c.parent_id = d.id ORDER BY c.id DESC LIMIT 1), d.depth + 1 FROM down AS d WHERE d.id IS NOT NULL) SELECT id FROM down WHERE id IS NOT NULL ORDER BY depth DESC LIMIT 1");
        Ok(())
    }

    fn is_safe_to_cache_prepared(&self, _backend: &DB) -> QueryResult<bool> {
        Ok(true)
    }
}

impl QueryId for DeepestLeaf {
    type QueryId = ();
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl Query for DeepestLeaf {
    type SqlType = Id;
}

impl<Conn> RunQueryDsl<Conn> for DeepestLeaf {}

#[cfg(test)]
mod tests {
    use diesel::debug_query;
    use diesel::pg::Pg;
    use diesel::sqlite::Sqlite;

    use super::*;

    fn page(take: Take) -> BranchUp {
        BranchUp::new(DbId(uuid::Uuid::nil()), "alice", End::Leaf, None, take)
    }

    /// The walk carries ids only; only the page's rows are read whole, and at most `n`.
    #[test]
    fn a_page_reads_the_oldest_rows_whole_and_no_more() {
        for sql in [
            debug_query::<Sqlite, _>(&page(Take::Oldest(20))).to_string(),
            debug_query::<Pg, _>(&page(Take::Oldest(20))).to_string(),
        ] {
            let (walk, read) = sql.split_once(") SELECT ").unwrap();
            assert!(!walk.contains("content"), "{walk}");
            assert!(read.contains("ORDER BY id ASC LIMIT"), "{read}");
        }
        let newest = debug_query::<Sqlite, _>(&page(Take::Newest(7))).to_string();
        assert!(newest.contains("ORDER BY id DESC LIMIT"), "{newest}");
    }
}
