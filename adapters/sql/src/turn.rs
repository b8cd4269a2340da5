//! `begin_turn`, the one write on the path of every send before the provider is called, so
//! written per backend for the fewest round trips rather than once in `queries!`:
//!
//! - PostgreSQL pipelines it: `BEGIN`; then in one round trip the conversation's row lock
//!   (and its model), the sweep of its stale replies, the two conflict checks and the
//!   branch that ends at the new message's parent (a recursive query, `branch.rs`); then in
//!   one round trip the messages and the conversation's `updated_at` and `leaf_id`; `COMMIT` — four round
//!   trips, where one statement at a time took eleven. The server runs pipelined statements
//!   in order, so the lock is held before anything else runs.
//! - SQLite runs the whole `BEGIN IMMEDIATE` transaction in one blocking task instead of one
//!   task per statement; the quota's reads run in that task just before `BEGIN IMMEDIATE`,
//!   so that the write lock every send waits for is not held for them (measured: with them
//!   inside, the quota added 0.8–1.8 ms to the first delta's p99 at 100 sends).
//!
//! The quota check (issue 19) refuses in the same transaction, after the conversation's
//! 404, its 409s and the attachments' 404: the owner's override (one key lookup) is read with
//! the first reads, and their per-day sums of the month (`usage_user_days`, at most 31 rows,
//! kept by triggers) with them when a default quota applies, or after them when only their
//! override does — never without a limit. On PostgreSQL (read committed) the sums statement
//! runs after the conversation's row lock and sees every usage committed before it starts;
//! the check writes nothing, so two turns of one user checked at once (two replicas) cannot
//! change each other's outcome and need no lock on the user: both are refused when the
//! recorded usage is at or over the limit. Usage is recorded when replies finish, so the
//! replies already running may take a user past the limit (see `TurnQuota`).
//!
//! The statements are the same on both and written once, in [`turn_reads!`],
//! [`quota_reads!`] and [`turn_writes!`]; every one is a cached prepared statement (a fixed
//! text and number of binds; the two `UPDATE`s written out in `turn_updates.rs`, which stay
//! cached also on SQLite's synchronous connection): an uncached one costs PostgreSQL a round
//! trip to prepare it before it can be sent, and SQLite a compile. No value that a partial
//! index names is bound (`literal.rs`): SQLite would prepare the statement again at every run.

use confab_core::error::{Conflict, StoreError};
use confab_core::ids::{MessageId, UserId};
use confab_core::model::{Message, MessageFile, Parent, Role, Timestamp};
use confab_core::ports::{NewTurn, Turn};
use confab_core::usage::{QuotaOverride, QuotaState, TurnQuota, month_start};
use confab_core::values::ValidationError;

use crate::branch::{BranchUp, End, Take};
use crate::error::TxError;
use crate::literal::Streaming;
use crate::rows::{
    FileRow, MessageFileLink, MessageRow, NewMessageFileRow, NewMessageRow, fill_files,
};
use crate::types::{DbId, ToDb as _};
use crate::usage::day_text;

/// The reads of a turn, in the order they must run: the owner's conversation (to be locked)
/// with its model, the update that fails its stale `streaming` replies, whether a `streaming`
/// reply remains and whether the client id was used, and the newest `$limit` messages of the
/// branch that ends at the parent (newest first).
/// Every statement about messages is scoped to the owner's conversation by itself: they run
/// before the answer to the first is known, and must neither touch nor read another owner's
/// messages (nor take longer for an id that exists than for one that does not).
macro_rules! turn_reads {
    ($owner:expr, $conversation:expr, $client_id:expr, $stale_before:expr, $branch:expr) => {{
        use diesel::dsl::exists;
        use diesel::{ExpressionMethods as _, QueryDsl as _};

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
                .select((
                    conversations::id,
                    conversations::model,
                    conversations::title.is_null(),
                )),
            crate::turn_updates::StaleSweep {
                conversation,
                owner,
                stale_before: $stale_before,
            },
            // `client_message_id = NULL` is never true: without an id nothing is "used".
            diesel::select((
                exists(
                    messages::table
                        .filter(messages::conversation_id.eq(conversation))
                        .filter(messages::status.eq(Streaming))
                        .filter(owned()),
                ),
                exists(
                    messages::table
                        .filter(messages::conversation_id.eq(conversation))
                        .filter(messages::client_message_id.eq(client_id))
                        .filter(owned()),
                ),
            )),
            $branch,
        )
    }};
}

/// The quota reads of a turn: the owner's override (one key lookup), and their per-day
/// sums from `$first` to `$today` (`YYYY-MM-DD`; at most 31 rows) as `(day, input, output)`.
macro_rules! quota_reads {
    ($owner:expr, $first:expr, $today:expr) => {{
        use diesel::{ExpressionMethods as _, QueryDsl as _};

        use crate::schema::{usage_user_days, user_quotas};

        let owner: &str = $owner;
        (
            user_quotas::table
                .filter(user_quotas::user_id.eq(owner))
                .select((user_quotas::tokens_per_day, user_quotas::tokens_per_month)),
            usage_user_days::table
                .filter(usage_user_days::user_id.eq(owner))
                .filter(usage_user_days::day.ge($first))
                .filter(usage_user_days::day.le($today))
                .select((
                    usage_user_days::day,
                    usage_user_days::input_tokens,
                    usage_user_days::output_tokens,
                )),
        )
    }};
}

/// The override as read (none: the defaults).
type OverrideRow = (Option<i64>, Option<i64>);
/// A day of the month so far: `(day, input tokens, output tokens)`.
type DayRow = (String, i64, i64);

/// The days `quota_reads!` counts for a turn's quota: the first of its month and its day.
fn quota_days(quota: &TurnQuota) -> (String, String) {
    (day_text(month_start(quota.day())), day_text(quota.day()))
}

/// The owner's override from its row, if any.
fn overridden(found: Vec<OverrideRow>) -> QuotaOverride {
    found
        .into_iter()
        .next()
        .map_or_else(QuotaOverride::default, |(day, month)| QuotaOverride {
            tokens_per_day: day.map(|n| u64::try_from(n).unwrap_or(0)),
            tokens_per_month: month.map(|n| u64::try_from(n).unwrap_or(0)),
        })
}

/// `QuotaExceeded` when the owner's recorded tokens of the day or month reach a limit.
fn within(quota: &TurnQuota, own: QuotaOverride, days: Vec<DayRow>) -> Result<(), TxError> {
    let today = day_text(quota.day());
    let mut state = QuotaState {
        quota: own,
        ..QuotaState::default()
    };
    for (day, input, output) in days {
        let tokens = u64::try_from(input.saturating_add(output)).unwrap_or(0);
        state.used_month = state.used_month.saturating_add(tokens);
        if day == today {
            state.used_day = state.used_day.saturating_add(tokens);
        }
    }
    quota
        .check(&state)
        .map_err(|refused| StoreError::QuotaExceeded(refused).into())
}

/// The writes of a turn: its messages in one statement, then the conversation's
/// `updated_at` and `leaf_id` (the new reply).
macro_rules! turn_writes {
    ($rows:expr, $conversation:expr, $updated_at:expr, $leaf:expr) => {{
        use crate::schema::messages;

        (
            diesel::insert_into(messages::table).values($rows),
            crate::turn_updates::LeafBump {
                conversation: $conversation,
                updated_at: $updated_at,
                leaf: $leaf,
            },
        )
    }};
}

/// The owner's conversation as a turn reads it: its id, model and whether it is untitled.
type TurnConversation = (DbId, Option<String>, bool);

/// The conversation's project as [`conversation_knowledge!`] reads it.
type KnowledgeRow = (DbId, bool);

/// Whether the project read has knowledge to search.
fn searchable(found: &[KnowledgeRow]) -> bool {
    found.first().is_some_and(|(_, knowledge)| *knowledge)
}

/// `NotFound` unless the owner's conversation was found; its model and whether it is untitled.
fn owned(found: Vec<TurnConversation>) -> Result<(Option<String>, bool), TxError> {
    match found.into_iter().next() {
        Some((_, model, untitled)) => Ok((model, untitled)),
        None => Err(StoreError::NotFound.into()),
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

fn same_conversation(turn: &NewTurn) -> Result<(), StoreError> {
    match &turn.user {
        Some(user) if user.conversation_id != turn.reply.conversation_id => {
            Err(StoreError::Internal(
                "a turn's reply must belong to the user message's conversation".to_owned(),
            ))
        }
        _ => Ok(()),
    }
}

/// The branch query of a turn: it ends at the parent, and reads at least the parent itself
/// (to check it) even when no history is wanted.
fn branch(owner: &UserId, turn: &NewTurn, history_limit: u32) -> BranchUp {
    let end = match turn.parent {
        Parent::Leaf => End::Leaf,
        Parent::Root => End::At(None),
        Parent::Message(id) => End::At(Some(id.db())),
    };
    BranchUp::new(
        turn.reply.conversation_id.db(),
        owner.as_str(),
        end,
        None,
        Take::Newest(i64::from(history_limit.max(1))),
    )
}

/// The resolved parent and the history (oldest first) from the branch read newest first:
/// a named parent must be in the conversation, a reply for a user message and a user message
/// for a regenerated reply.
fn resolve(
    turn: &NewTurn,
    mut branch: Vec<MessageRow>,
    history_limit: u32,
) -> Result<(Option<MessageId>, Vec<Message>), TxError> {
    let newest = branch.first().map(|row| MessageId::from(row.id));
    if let Parent::Message(id) = turn.parent {
        let Some(parent) = branch.first().filter(|row| MessageId::from(row.id) == id) else {
            return Err(StoreError::NotFound.into());
        };
        let (wanted, rule) = if turn.user.is_some() {
            (Role::Assistant, ("parent_id", "must name a reply"))
        } else {
            (
                Role::User,
                ("message_id", "must name a reply to a user message"),
            )
        };
        if parent.role != wanted.as_str() {
            return Err(StoreError::Invalid(ValidationError::new(rule.0, rule.1)).into());
        }
    }
    branch.truncate(usize::try_from(history_limit).unwrap_or(usize::MAX));
    let history = branch
        .into_iter()
        .rev()
        .map(Message::try_from)
        .collect::<Result<_, _>>()?;
    Ok((newest, history))
}

/// The ids of the user messages of a turn's history: the messages whose links are read.
fn user_ids(history: &[Message]) -> Vec<DbId> {
    history
        .iter()
        .filter(|m| m.role == Role::User)
        .map(|m| m.id.db())
        .collect()
}

/// The ids of the files a turn attaches (none without a user message).
fn wanted_files(turn: &NewTurn) -> Vec<DbId> {
    if turn.user.is_none() {
        return Vec::new();
    }
    turn.file_ids.iter().map(|id| id.db()).collect()
}

/// The link rows of a turn's user message.
fn link_rows(turn: &NewTurn, files: &[MessageFile]) -> Result<Vec<NewMessageFileRow>, StoreError> {
    match &turn.user {
        Some(user) if !files.is_empty() => NewMessageFileRow::all(user.id, files),
        _ => Ok(Vec::new()),
    }
}

/// The rows a turn inserts: the user message (with its resolved parent), then the reply.
fn new_rows(turn: &NewTurn, parent: Option<MessageId>) -> (Option<NewMessageRow>, NewMessageRow) {
    let user = turn.user.as_ref().map(|user| {
        let mut row = NewMessageRow::new(user);
        row.parent_id = parent.map(|id| id.db());
        row
    });
    (user, NewMessageRow::new(&turn.reply))
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
        turn: &NewTurn,
        stale_before: Timestamp,
        history_limit: u32,
    ) -> Result<Turn, StoreError> {
        same_conversation(turn)?;
        let reply = &turn.reply;
        retry_tx!(
            c.transaction(async |c: &mut AsyncPgConnection| -> Result<Turn, TxError> {
                // Shared references pipeline: each statement is sent when its future is first
                // polled, in `try_join!`'s order, without waiting for the one before.
                let mut pipe: &AsyncPgConnection = c;
                let (conversation, stale, conflicts, recent) = turn_reads!(
                    owner.as_str(),
                    reply.conversation_id.db(),
                    turn.user
                        .as_ref()
                        .and_then(|u| u.client_message_id)
                        .map(|id| id.db()),
                    stale_before.db(),
                    branch(owner, turn, history_limit)
                );
                // The quota's reads, pipelined after the others (after the row lock): the
                // override whenever a quota is checked, the sums only when a default applies.
                let (first, today) = turn.quota.as_ref().map(quota_days).unwrap_or_default();
                let (own_query, sums_query) =
                    quota_reads!(owner.as_str(), first.clone(), today.clone());
                let shared: &AsyncPgConnection = pipe;
                let own_read = async {
                    let mut pipe = shared;
                    match turn.quota {
                        Some(_) => own_query.load::<OverrideRow>(&mut pipe).await.map(Some),
                        None => Ok(None),
                    }
                };
                let sums_now = turn.quota.filter(|q| !q.defaults.is_unlimited()).is_some();
                let sums_read = async {
                    let mut pipe = shared;
                    if sums_now {
                        sums_query.load::<DayRow>(&mut pipe).await.map(Some)
                    } else {
                        Ok(None)
                    }
                };
                let (found, _, (busy, used), recent, own, days, knowledge) = try_join!(
                    conversation
                        .for_no_key_update()
                        .load::<TurnConversation>(&mut pipe),
                    stale.execute(&mut pipe),
                    conflicts.get_result::<(bool, bool)>(&mut pipe),
                    recent.load::<MessageRow>(&mut pipe),
                    own_read,
                    sums_read,
                    conversation_knowledge!(owner.as_str(), reply.conversation_id.db())
                        .load::<KnowledgeRow>(&mut pipe),
                )?;
                let (model, untitled) = owned(found)?;
                free(busy, used)?;
                // Read inside the transaction: a row that cannot be read stores nothing.
                let (parent_id, mut history) = resolve(turn, recent, history_limit)?;
                // Only a send with attachments pays for their check.
                let wanted = wanted_files(turn);
                let files = if wanted.is_empty() {
                    Vec::new()
                } else {
                    let found: Vec<FileRow> =
                        attachable_files!(owner.as_str(), reply.conversation_id.db(), wanted)
                            .load(&mut pipe)
                            .await?;
                    crate::links::links_for(&turn.file_ids, found)?
                };
                if let (Some(quota), Some(own)) = (&turn.quota, own) {
                    let own = overridden(own);
                    if quota.needs_sums(&own) {
                        // Without a default quota only a user with an override is summed:
                        // one more round trip, for them only.
                        let days = match days {
                            Some(days) => days,
                            None => {
                                quota_reads!(owner.as_str(), first, today)
                                    .1
                                    .load::<DayRow>(&mut pipe)
                                    .await?
                            }
                        };
                        within(quota, own, days)?;
                    }
                }
                let (user, reply_row) = new_rows(turn, parent_id);
                let conversation = reply.conversation_id.db();
                let at = turn.user.as_ref().unwrap_or(reply).created_at.db();
                let asked = user_ids(&history);
                // Copies of the shared reference, each its own pipelined statement.
                let shared: &AsyncPgConnection = pipe;
                let read_links = async move {
                    let mut pipe = shared;
                    if asked.is_empty() {
                        Ok(Vec::new())
                    } else {
                        links_of!(asked).load::<MessageFileLink>(&mut pipe).await
                    }
                };
                let links = link_rows(turn, &files)?;
                let write_links = async move {
                    let mut pipe = shared;
                    if links.is_empty() {
                        Ok(0)
                    } else {
                        diesel::insert_into(crate::schema::message_files::table)
                            .values(links)
                            .execute(&mut pipe)
                            .await
                    }
                };
                let past_links = match user {
                    Some(user) => {
                        let (insert, bump) =
                            turn_writes!([user, reply_row], conversation, at, reply.id.db());
                        try_join!(
                            insert.execute(&mut pipe),
                            write_links,
                            bump.execute(&mut pipe),
                            read_links
                        )?
                        .3
                    }
                    None => {
                        let (insert, bump) =
                            turn_writes!(reply_row, conversation, at, reply.id.db());
                        try_join!(
                            insert.execute(&mut pipe),
                            bump.execute(&mut pipe),
                            read_links
                        )?
                        .2
                    }
                };
                fill_files(&mut history, past_links)?;
                Ok(Turn {
                    parent_id,
                    model,
                    untitled,
                    history,
                    files,
                    knowledge: searchable(&knowledge),
                })
            })
        )
    }
}

pub(crate) mod sqlite {
    use diesel::{RunQueryDsl as _, SqliteConnection};
    use futures::FutureExt as _;
    use futures::future::BoxFuture;

    use super::*;
    use crate::error::is_retryable;
    use crate::queries::{MAX_ATTEMPTS, backoff};

    /// The whole transaction on the blocking thread: one hop instead of one per statement.
    /// `read` runs first on the same thread, outside the write lock; its result is `work`'s.
    trait OneHop {
        fn immediate_transaction_in_one_hop<R, T: Send + 'static>(
            &mut self,
            read: impl FnOnce(&mut SqliteConnection) -> Result<R, TxError> + Send + 'static,
            work: impl FnOnce(&mut SqliteConnection, R) -> Result<T, TxError> + Send + 'static,
        ) -> BoxFuture<'static, Result<T, TxError>>;
    }

    impl OneHop for crate::connect::SqliteConn {
        fn immediate_transaction_in_one_hop<R, T: Send + 'static>(
            &mut self,
            read: impl FnOnce(&mut SqliteConnection) -> Result<R, TxError> + Send + 'static,
            work: impl FnOnce(&mut SqliteConnection, R) -> Result<T, TxError> + Send + 'static,
        ) -> BoxFuture<'static, Result<T, TxError>> {
            self.spawn_blocking(move |c| {
                use diesel::connection::{AnsiTransactionManager, TransactionManager as _};
                let nested = AnsiTransactionManager::transaction_manager_status_mut(c)
                    .transaction_depth()?
                    .is_some();
                Ok(match read(c) {
                    // Inside a batch of writes (`batch`): in its first try a plain part of
                    // its transaction, else a savepoint of it.
                    Ok(seen) if nested && crate::batch::first_try() => {
                        crate::batch::noted(work(c, seen))
                    }
                    Ok(seen) if nested => AnsiTransactionManager::transaction(c, |c| work(c, seen)),
                    Ok(seen) => c.immediate_transaction(|c| work(c, seen)),
                    Err(e) => Err(e),
                })
            })
            .map(|hop| hop.map_err(TxError::Db).and_then(|tx| tx))
            .boxed()
        }
    }

    /// A turn's quota as read before the lock: the owner's override and, when a limit
    /// needs them, the month's day sums (`None` when the turn checks no quota).
    type QuotaSeen = Option<(QuotaOverride, Option<Vec<DayRow>>)>;

    /// The owner's override and, when a limit needs them, their day sums of the month: read
    /// before `BEGIN IMMEDIATE`, so that the write lock every send waits for is not held for
    /// them. What they miss is usage committed in the microseconds before the lock, which is
    /// no different from usage of replies still running (see `TurnQuota`).
    fn quota_seen(
        c: &mut SqliteConnection,
        owner: &UserId,
        turn: &NewTurn,
    ) -> Result<QuotaSeen, TxError> {
        let Some(quota) = &turn.quota else {
            return Ok(None);
        };
        let (first, today) = quota_days(quota);
        let (own_query, sums_query) = quota_reads!(owner.as_str(), first, today);
        let own = overridden(own_query.load::<OverrideRow>(c)?);
        let days = if quota.needs_sums(&own) {
            Some(sums_query.load::<DayRow>(c)?)
        } else {
            None
        };
        Ok(Some((own, days)))
    }

    pub(crate) async fn begin_turn(
        c: &mut crate::connect::SqliteConn,
        owner: &UserId,
        turn: &NewTurn,
        stale_before: Timestamp,
        history_limit: u32,
    ) -> Result<Turn, StoreError> {
        same_conversation(turn)?;
        retry_tx!(c.immediate_transaction_in_one_hop(
            {
                let (owner, turn) = (owner.clone(), turn.clone());
                move |c: &mut SqliteConnection| {
                    // Before the lock too: whether the project has knowledge to search.
                    let knowledge =
                        conversation_knowledge!(owner.as_str(), turn.reply.conversation_id.db())
                            .load::<KnowledgeRow>(c)?;
                    Ok((quota_seen(c, &owner, &turn)?, searchable(&knowledge)))
                }
            },
            {
                let (owner, turn) = (owner.clone(), turn.clone());
                move |c: &mut SqliteConnection, (seen, knowledge): (QuotaSeen, bool)| {
                    let reply = &turn.reply;
                    let (conversation, stale, conflicts, recent) = turn_reads!(
                        owner.as_str(),
                        reply.conversation_id.db(),
                        turn.user
                            .as_ref()
                            .and_then(|u| u.client_message_id)
                            .map(|id| id.db()),
                        stale_before.db(),
                        branch(&owner, &turn, history_limit)
                    );
                    // One statement at a time here, so the ownership check can come first.
                    let (model, untitled) = owned(conversation.load::<TurnConversation>(c)?)?;
                    stale.execute(c)?;
                    let (busy, used) = conflicts.get_result::<(bool, bool)>(c)?;
                    let recent = recent.load::<MessageRow>(c)?;
                    free(busy, used)?;
                    let (parent_id, mut history) = resolve(&turn, recent, history_limit)?;
                    let wanted = wanted_files(&turn);
                    let files = if wanted.is_empty() {
                        Vec::new()
                    } else {
                        let found: Vec<FileRow> =
                            attachable_files!(owner.as_str(), reply.conversation_id.db(), wanted)
                                .load(c)?;
                        crate::links::links_for(&turn.file_ids, found)?
                    };
                    // The quota, read before the lock, refuses after the 404s and 409s.
                    if let (Some(quota), Some((own, Some(days)))) = (&turn.quota, seen) {
                        within(quota, own, days)?;
                    }
                    let asked = user_ids(&history);
                    if !asked.is_empty() {
                        fill_files(&mut history, links_of!(asked).load::<MessageFileLink>(c)?)?;
                    }
                    let (user, reply_row) = new_rows(&turn, parent_id);
                    let conversation = reply.conversation_id.db();
                    let at = turn.user.as_ref().unwrap_or(reply).created_at.db();
                    if let Some(user) = user {
                        let (insert, bump) =
                            turn_writes!([user, reply_row], conversation, at, reply.id.db());
                        insert.execute(c)?;
                        let links = link_rows(&turn, &files)?;
                        if !links.is_empty() {
                            diesel::insert_into(crate::schema::message_files::table)
                                .values(links)
                                .execute(c)?;
                        }
                        bump.execute(c)?;
                    } else {
                        let (insert, bump) =
                            turn_writes!(reply_row, conversation, at, reply.id.db());
                        insert.execute(c)?;
                        bump.execute(c)?;
                    }
                    Ok(Turn {
                        parent_id,
                        model,
                        untitled,
                        history,
                        files,
                        knowledge,
                    })
                }
            }
        ))
    }
}
