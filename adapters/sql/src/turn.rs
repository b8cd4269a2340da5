//! `begin_turn`, the one write on the path of every send before the provider is called, so
//! written per backend for the fewest round trips rather than once in `queries!`:
//!
//! - PostgreSQL pipelines it: `BEGIN`; then in one round trip the conversation's row lock,
//!   the sweep of its stale replies, the two conflict checks and the history; then in one
//!   round trip both messages and the conversation's `updated_at`; `COMMIT` — four round
//!   trips, where one statement at a time took eleven. The server runs pipelined statements
//!   in order, so the lock is held before anything else runs.
//! - SQLite runs the whole `BEGIN IMMEDIATE` transaction in one blocking task instead of one
//!   task per statement.
//!
//! The statements are the same on both and written once, in [`turn_reads!`] and
//! [`turn_writes!`]; every one is a cached prepared statement (no SQL literal, a fixed number
//! of binds, the `UPDATE`s marked [`Cached`]): an uncached one costs PostgreSQL a round trip
//! to prepare it before it can be sent.

use confab_core::error::{Conflict, StoreError};
use confab_core::ids::UserId;
use confab_core::model::{Message, MessageStatus, Timestamp};

use crate::cached::Cached;
use crate::error::TxError;
use crate::queries::INTERRUPTED;
use crate::rows::{MessageRow, NewMessageRow};
use crate::types::{DbId, ToDb as _};

const FAILED: &str = MessageStatus::Failed.as_str();
const STREAMING: &str = MessageStatus::Streaming.as_str();

/// The reads of a turn, in the order they must run: the owner's conversation (to be locked),
/// the update that fails its stale `streaming` replies, whether a `streaming` reply remains
/// and whether the client id was used, and the newest `$limit` messages (newest first).
/// Every statement about messages is scoped to the owner's conversation by itself: they run
/// before the answer to the first is known, and must neither touch nor read another owner's
/// messages (nor take longer for an id that exists than for one that does not).
macro_rules! turn_reads {
    ($owner:expr, $conversation:expr, $client_id:expr, $stale_before:expr, $limit:expr) => {{
        use diesel::dsl::exists;
        use diesel::{ExpressionMethods as _, QueryDsl as _, SelectableHelper as _};

        use crate::schema::{conversations, messages};

        let conversation: DbId = $conversation;
        let owner: &str = $owner;
        let client_id: Option<DbId> = $client_id;
        let owned = move || {
            exists(
                conversations::table
                    .filter(conversations::id.eq(conversation))
                    .filter(conversations::owner_id.eq(owner)),
            )
        };
        (
            conversations::table
                .filter(conversations::id.eq(conversation))
                .filter(conversations::owner_id.eq(owner))
                .select(conversations::id),
            Cached(
                diesel::update(
                    messages::table
                        .filter(messages::conversation_id.eq(conversation))
                        .filter(messages::status.eq(STREAMING))
                        .filter(messages::touched_at.lt($stale_before))
                        .filter(owned()),
                )
                .set((messages::status.eq(FAILED), messages::error.eq(INTERRUPTED))),
            ),
            // `client_message_id = NULL` is never true: without an id nothing is "used".
            diesel::select((
                exists(
                    messages::table
                        .filter(messages::conversation_id.eq(conversation))
                        .filter(messages::status.eq(STREAMING))
                        .filter(owned()),
                ),
                exists(
                    messages::table
                        .filter(messages::conversation_id.eq(conversation))
                        .filter(messages::client_message_id.eq(client_id))
                        .filter(owned()),
                ),
            )),
            messages::table
                .filter(messages::conversation_id.eq(conversation))
                .filter(owned())
                .select(MessageRow::as_select())
                .order(messages::id.desc())
                .limit(i64::from($limit)),
        )
    }};
}

/// The writes of a turn: both messages in one statement, then the conversation's
/// `updated_at`.
macro_rules! turn_writes {
    ($rows:expr, $conversation:expr, $updated_at:expr) => {{
        use diesel::ExpressionMethods as _;
        use diesel::QueryDsl as _;

        use crate::schema::{conversations, messages};

        (
            diesel::insert_into(messages::table).values($rows),
            Cached(
                diesel::update(conversations::table.filter(conversations::id.eq($conversation)))
                    .set(conversations::updated_at.eq($updated_at)),
            ),
        )
    }};
}

/// `NotFound` unless the owner's conversation was found.
fn owned(found: &[DbId]) -> Result<(), TxError> {
    if found.is_empty() {
        Err(StoreError::NotFound.into())
    } else {
        Ok(())
    }
}

/// A conflict when a reply is still streaming or the client id was used.
fn free(busy: bool, used: bool) -> Result<(), TxError> {
    if busy {
        return Err(Conflict::ReplyInProgress.into());
    }
    if used {
        return Err(Conflict::DuplicateClientMessage.into());
    }
    Ok(())
}

fn same_conversation(user: &Message, reply: &Message) -> Result<(), StoreError> {
    if reply.conversation_id == user.conversation_id {
        Ok(())
    } else {
        Err(StoreError::Internal(
            "a turn's reply must belong to the user message's conversation".to_owned(),
        ))
    }
}

/// The history as the port returns it: oldest first.
fn history(rows: Vec<MessageRow>) -> Result<Vec<Message>, StoreError> {
    rows.into_iter().rev().map(Message::try_from).collect()
}

pub(crate) mod pg {
    use diesel::QueryDsl as _;
    use diesel_async::{AsyncConnection as _, AsyncPgConnection, RunQueryDsl as _};
    use futures::try_join;

    use super::*;
    use crate::error::is_retryable;
    use crate::queries::{MAX_ATTEMPTS, backoff};

    pub(crate) async fn begin_turn(
        c: &mut AsyncPgConnection,
        owner: &UserId,
        user: &Message,
        reply: &Message,
        stale_before: Timestamp,
        history_limit: u32,
    ) -> Result<Vec<Message>, StoreError> {
        same_conversation(user, reply)?;
        retry_tx!(c.transaction(
            async |c: &mut AsyncPgConnection| -> Result<Vec<Message>, TxError> {
                // Shared references pipeline: each statement is sent when its future is first
                // polled, in `try_join!`'s order, without waiting for the one before.
                let mut pipe: &AsyncPgConnection = c;
                let (conversation, stale, conflicts, recent) = turn_reads!(
                    owner.as_str(),
                    user.conversation_id.db(),
                    user.client_message_id.map(|id| id.db()),
                    stale_before.db(),
                    history_limit
                );
                let (found, _, (busy, used), recent) = try_join!(
                    conversation.for_no_key_update().load::<DbId>(&mut pipe),
                    stale.execute(&mut pipe),
                    conflicts.get_result::<(bool, bool)>(&mut pipe),
                    recent.load::<MessageRow>(&mut pipe),
                )?;
                owned(&found)?;
                free(busy, used)?;
                let rows = [NewMessageRow::new(user), NewMessageRow::new(reply)];
                let (insert, bump) =
                    turn_writes!(rows, user.conversation_id.db(), user.created_at.db());
                try_join!(insert.execute(&mut pipe), bump.execute(&mut pipe))?;
                // Read inside the transaction: a row that cannot be read stores nothing.
                Ok(history(recent)?)
            }
        ))
    }
}

pub(crate) mod sqlite {
    use diesel::{RunQueryDsl as _, SqliteConnection};
    use diesel_async::sync_connection_wrapper::SyncConnectionWrapper;
    use futures::FutureExt as _;
    use futures::future::BoxFuture;

    use super::*;
    use crate::error::is_retryable;
    use crate::queries::{MAX_ATTEMPTS, backoff};

    /// The whole transaction on the blocking thread: one hop instead of one per statement.
    trait OneHop {
        fn immediate_transaction_in_one_hop<T: Send + 'static>(
            &mut self,
            work: impl FnOnce(&mut SqliteConnection) -> Result<T, TxError> + Send + 'static,
        ) -> BoxFuture<'static, Result<T, TxError>>;
    }

    impl OneHop for SyncConnectionWrapper<SqliteConnection> {
        fn immediate_transaction_in_one_hop<T: Send + 'static>(
            &mut self,
            work: impl FnOnce(&mut SqliteConnection) -> Result<T, TxError> + Send + 'static,
        ) -> BoxFuture<'static, Result<T, TxError>> {
            self.spawn_blocking(move |c| Ok(c.immediate_transaction(work)))
                .map(|hop| hop.map_err(TxError::Db).and_then(|tx| tx))
                .boxed()
        }
    }

    pub(crate) async fn begin_turn(
        c: &mut SyncConnectionWrapper<SqliteConnection>,
        owner: &UserId,
        user: &Message,
        reply: &Message,
        stale_before: Timestamp,
        history_limit: u32,
    ) -> Result<Vec<Message>, StoreError> {
        same_conversation(user, reply)?;
        retry_tx!(c.immediate_transaction_in_one_hop({
            let (owner, user, reply) = (owner.clone(), user.clone(), reply.clone());
            move |c: &mut SqliteConnection| {
                let (conversation, stale, conflicts, recent) = turn_reads!(
                    owner.as_str(),
                    user.conversation_id.db(),
                    user.client_message_id.map(|id| id.db()),
                    stale_before.db(),
                    history_limit
                );
                // One statement at a time here, so the ownership check can come first.
                owned(&conversation.load::<DbId>(c)?)?;
                stale.execute(c)?;
                let (busy, used) = conflicts.get_result::<(bool, bool)>(c)?;
                let recent = recent.load::<MessageRow>(c)?;
                free(busy, used)?;
                let rows = [NewMessageRow::new(&user), NewMessageRow::new(&reply)];
                let (insert, bump) =
                    turn_writes!(rows, user.conversation_id.db(), user.created_at.db());
                insert.execute(c)?;
                bump.execute(c)?;
                // Read inside the transaction: a row that cannot be read stores nothing.
                Ok(history(recent)?)
            }
        }))
    }
}
