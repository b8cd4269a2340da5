//! Every storage operation, written once in [`queries!`] and expanded for each connection
//! type (diesel-async has no `MultiConnection`). The backends differ only in what the
//! invocations at the bottom name:
//!
//! - how a write transaction starts: PostgreSQL `BEGIN` (read committed, and rows are locked
//!   explicitly); SQLite `BEGIN IMMEDIATE`, which takes the database's single write lock up
//!   front, so a read-then-write transaction can never fail halfway on a busy database;
//! - how the parent row of a write is locked: PostgreSQL `SELECT … FOR NO KEY UPDATE` (or
//!   `FOR UPDATE` before a delete); nothing on SQLite, whose immediate transaction already
//!   excludes every other writer.
//!
//! Lock order, to keep PostgreSQL free of deadlocks: project before its prompts; conversation
//! before its messages (`begin_turn` in `turn.rs`, `finish_reply` and cascades all follow it).

use std::time::Duration;

/// How often a transaction that lost a race is run again before giving up.
pub(crate) const MAX_ATTEMPTS: u32 = 8;

/// The error text of a `streaming` reply whose writer stopped renewing its lease.
pub(crate) const INTERRUPTED: &str = "interrupted";

/// A short pause that grows with each attempt, so colliding writers spread out.
pub(crate) async fn backoff(attempt: u32) {
    let jitter = u64::from(std::process::id() ^ attempt.wrapping_mul(7919)) % 5;
    tokio::time::sleep(Duration::from_millis(u64::from(attempt) * 5 + jitter)).await;
}

/// Runs `$conn.$begin(closure)` — a whole transaction — again while it fails with an error
/// that [`is_retryable`](crate::error::is_retryable), at most [`MAX_ATTEMPTS`] times.
macro_rules! retry_tx {
    ($conn:ident . $begin:ident ( $($closure:expr),+ $(,)? )) => {{
        let mut attempt = 1_u32;
        loop {
            match $conn.$begin($($closure),+).await {
                Err(TxError::Db(e)) if attempt < MAX_ATTEMPTS && is_retryable(&e) => {
                    tracing::debug!(attempt, "retrying a transaction that lost a race");
                    backoff(attempt).await;
                    attempt += 1;
                }
                other => break other.map_err(StoreError::from),
            }
        }
    }};
}

/// Whether the project `$project` (a query selecting one project id) has anything for its
/// knowledge search to find: a file whose text is ready (only those have chunks). Every turn
/// reads it for its conversation's project ([`conversation_knowledge!`], `Turn::knowledge`),
/// and the reply searches only when there is something to find — most projects have nothing
/// (no upload, or only images): an index probe of `file_metadata` instead of a full-text
/// query and a read of its own. `'ready'` is written into the SQL (`literal.rs`).
macro_rules! has_knowledge {
    ($project:expr) => {
        diesel::dsl::exists(
            crate::schema::file_metadata::table
                .filter(crate::schema::file_metadata::project_id.eq_any($project))
                .filter(crate::schema::file_metadata::text_status.eq(crate::literal::Ready)),
        )
    };
}

/// The project of the owner's conversation `$conversation` (a `DbId`), as
/// `(project id, whether its knowledge is on and has something to find)`: no row when the
/// conversation is not the owner's.
macro_rules! conversation_knowledge {
    ($owner:expr, $conversation:expr) => {{
        use diesel::{BoolExpressionMethods as _, ExpressionMethods as _, QueryDsl as _};

        use crate::schema::{conversations, projects};

        let owner: &str = $owner;
        let conversation: crate::types::DbId = $conversation;
        let project_of = move || {
            conversations::table
                .filter(conversations::id.eq(conversation))
                .filter(conversations::owner_id.eq(owner))
                .select(conversations::project_id)
        };
        projects::table
            .filter(projects::id.eq_any(project_of()))
            .filter(projects::owner_id.eq(owner))
            .select((
                projects::id,
                projects::knowledge.and(has_knowledge!(project_of())),
            ))
    }};
}

/// The operations of every port for one connection type `$conn`, given the name of its
/// write-transaction method and of the two row-lock clauses (see the module docs).
macro_rules! queries {
    (
        conn = $conn:ty,
        write_tx = $write_tx:ident,
        lock_for_write = $lock_for_write:ident,
        lock_for_delete = $lock_for_delete:ident $(,)?
    ) => {
        use confab_core::error::{Conflict, StoreError};
        use confab_core::ids::{ConversationId, FileId, MessageId, ProjectId, PromptId, UserId};
        use confab_core::model::{
            BranchMessage, Conversation, FileMeta, Message, MessageStatus, NewPrompt, Project,
            ProjectPatch, Prompt, Role, TextOutcome, TextStatus, Timestamp,
        };
        use confab_core::ports::{Branch, FinishOutcome};
        use diesel::dsl::{exists, max};
        use diesel::{
            BoolExpressionMethods as _, ExpressionMethods as _, IntoSql as _, JoinOnDsl as _,
            NullableExpressionMethods as _, OptionalExtension as _, QueryDsl as _, QueryResult,
            SelectableHelper as _,
        };
        use diesel_async::RunQueryDsl as _;
        use uuid::Uuid;

        use crate::cached::Cached;
        use crate::error::{TxError, is_retryable, translate};
        use crate::limit::{Limited, OneRow as _};
        use crate::literal::{Pending, Streaming, True};
        use crate::queries::{INTERRUPTED, MAX_ATTEMPTS, backoff};
        use crate::rows::{
            ConversationRow, FileRow, FinishedReply, MessageRow, ProjectChanges, ProjectRow,
            PromptRow,
        };
        use crate::schema::{
            conversations, file_chunks, file_metadata, file_texts, messages, projects, prompts,
        };
        use crate::types::{DbId, ToDb as _};

        type Conn = $conn;

        const FAILED: &str = MessageStatus::Failed.as_str();

        fn limit(n: u32) -> i64 {
            i64::from(n)
        }

        // ---- ownership checks and row locks

        async fn project_is_owned(
            c: &mut Conn,
            owner: &UserId,
            id: ProjectId,
        ) -> QueryResult<bool> {
            diesel::select(exists(
                projects::table
                    .filter(projects::id.eq(id.db()))
                    .filter(projects::owner_id.eq(owner.as_str())),
            ))
            .get_result(c)
            .await
        }

        /// `EXISTS` the owner's project, as a filter of another table's rows.
        fn project_owned(
            owner: &UserId,
            id: ProjectId,
        ) -> diesel::dsl::exists<
            diesel::dsl::Filter<
                diesel::dsl::Filter<projects::table, diesel::dsl::Eq<projects::id, DbId>>,
                diesel::dsl::Eq<projects::owner_id, &str>,
            >,
        > {
            exists(
                projects::table
                    .filter(projects::id.eq(id.db()))
                    .filter(projects::owner_id.eq(owner.as_str())),
            )
        }

        async fn conversation_is_owned(
            c: &mut Conn,
            owner: &UserId,
            id: ConversationId,
        ) -> QueryResult<bool> {
            diesel::select(exists(
                conversations::table
                    .filter(conversations::id.eq(id.db()))
                    .filter(conversations::owner_id.eq(owner.as_str())),
            ))
            .get_result(c)
            .await
        }

        /// Inside a write transaction: locks the owner's project row against concurrent
        /// writers of its children (prompts) without blocking inserts that reference it.
        async fn lock_project(c: &mut Conn, owner: &UserId, id: ProjectId) -> Result<(), TxError> {
            projects::table
                .filter(projects::id.eq(id.db()))
                .filter(projects::owner_id.eq(owner.as_str()))
                .select(projects::id)
                .$lock_for_write()
                .one()
                .get_result::<DbId>(c)
                .await
                .optional()?
                .ok_or(TxError::Store(StoreError::NotFound))
                .map(drop)
        }

        /// Runs a search query (either backend's text) with its binds in order: the phrases
        /// (or FTS5 expression), the prefix, the owner, the project, the cursor's score, time
        /// and id, the limit.
        #[expect(clippy::too_many_arguments, reason = "the query's binds, in order")]
        async fn search_rows(
            c: &mut Conn,
            sql: &str,
            phrases: &str,
            prefix: &str,
            owner: &UserId,
            project: Option<ProjectId>,
            after: Option<confab_core::search::SearchKey>,
            n: u32,
        ) -> Result<Vec<crate::rows::SearchRow>, StoreError> {
            use diesel::sql_types::{BigInt, Double, Nullable, Text};
            diesel::sql_query(sql)
                .bind::<Text, _>(phrases)
                .bind::<Text, _>(prefix)
                .bind::<Text, _>(owner.as_str())
                .bind::<Nullable<crate::types::Id>, _>(project.map(|p| p.db()))
                .bind::<Nullable<Double>, _>(after.map(|k| k.score))
                .bind::<Nullable<crate::types::Instant>, _>(after.map(|k| k.created_at.db()))
                .bind::<Nullable<crate::types::Id>, _>(after.map(|k| DbId(k.id)))
                .bind::<BigInt, _>(limit(n))
                .load(c)
                .await
                .map_err(translate)
        }

        fn require(found: QueryResult<bool>) -> Result<(), StoreError> {
            match found {
                Ok(true) => Ok(()),
                Ok(false) => Err(StoreError::NotFound),
                Err(e) => Err(translate(e)),
            }
        }

        // ---- projects

        pub(crate) async fn insert_project(
            c: &mut Conn,
            project: &Project,
        ) -> Result<(), StoreError> {
            diesel::insert_into(projects::table)
                .values(ProjectRow::from(project))
                .execute(c)
                .await
                .map(drop)
                .map_err(translate)
        }

        pub(crate) async fn get_project(
            c: &mut Conn,
            owner: &UserId,
            id: ProjectId,
        ) -> Result<Project, StoreError> {
            projects::table
                .filter(projects::id.eq(id.db()))
                .filter(projects::owner_id.eq(owner.as_str()))
                .select(ProjectRow::as_select())
                .one()
                .get_result(c)
                .await
                .map_err(translate)?
                .try_into()
        }

        pub(crate) async fn list_projects(
            c: &mut Conn,
            owner: &UserId,
            after: Option<ProjectId>,
            n: u32,
        ) -> Result<Vec<Project>, StoreError> {
            let mut query = projects::table
                .filter(projects::owner_id.eq(owner.as_str()))
                .select(ProjectRow::as_select())
                .order(projects::id.desc())
                .into_boxed();
            if let Some(after) = after {
                query = query.filter(projects::id.lt(after.db()));
            }
            let rows: Vec<ProjectRow> = Limited::new(query, limit(n))
                .load(c)
                .await
                .map_err(translate)?;
            rows.into_iter().map(Project::try_from).collect()
        }

        pub(crate) async fn update_project(
            c: &mut Conn,
            owner: &UserId,
            id: ProjectId,
            patch: &ProjectPatch,
            now: Timestamp,
        ) -> Result<Project, StoreError> {
            let changes = ProjectChanges {
                name: patch.name.as_deref(),
                description: patch.description.as_ref().map(Option::as_deref),
                knowledge: patch.knowledge,
                language: patch.language.map(|l| l.as_str()),
                updated_at: now.db(),
            };
            diesel::update(
                projects::table
                    .filter(projects::id.eq(id.db()))
                    .filter(projects::owner_id.eq(owner.as_str())),
            )
            .set(changes)
            .returning(ProjectRow::as_returning())
            .get_result(c)
            .await
            .map_err(translate)?
            .try_into()
        }

        /// Locks the project (`FOR UPDATE` on PostgreSQL: inserts of children wait for this
        /// transaction, then fail), reads its files' storage keys, and deletes the row; the
        /// foreign keys cascade to every child in the same statement.
        pub(crate) async fn delete_project(
            c: &mut Conn,
            owner: &UserId,
            id: ProjectId,
        ) -> Result<Vec<String>, StoreError> {
            retry_tx!(
                c.$write_tx(async |c: &mut Conn| -> Result<Vec<String>, TxError> {
                    projects::table
                        .filter(projects::id.eq(id.db()))
                        .filter(projects::owner_id.eq(owner.as_str()))
                        .select(projects::id)
                        .$lock_for_delete()
                        .one()
                        .get_result::<DbId>(c)
                        .await
                        .optional()?
                        .ok_or(StoreError::NotFound)?;
                    let keys: Vec<String> = file_metadata::table
                        .filter(file_metadata::project_id.eq(id.db()))
                        .order(file_metadata::id.asc())
                        .select(file_metadata::storage_key)
                        .load(c)
                        .await?;
                    diesel::delete(projects::table.filter(projects::id.eq(id.db())))
                        .execute(c)
                        .await?;
                    Ok(keys)
                })
            )
        }

        pub(crate) async fn ping(c: &mut Conn) -> Result<(), StoreError> {
            diesel::sql_query("SELECT 1")
                .execute(c)
                .await
                .map(drop)
                .map_err(|_| StoreError::Unavailable("the database did not answer".to_owned()))
        }

        // ---- prompts

        /// Locks the project row, so concurrent creators of one project take turns and each
        /// sees the version the previous one wrote; a lost race (unique violation) is retried.
        pub(crate) async fn create_prompt(
            c: &mut Conn,
            owner: &UserId,
            new: &NewPrompt,
        ) -> Result<Prompt, StoreError> {
            retry_tx!(
                c.$write_tx(async |c: &mut Conn| -> Result<Prompt, TxError> {
                    lock_project(c, owner, new.project_id).await?;
                    let highest: Option<i32> = prompts::table
                        .filter(prompts::project_id.eq(new.project_id.db()))
                        .select(max(prompts::version))
                        .get_result(c)
                        .await?;
                    let version = highest.unwrap_or(0).checked_add(1).ok_or_else(|| {
                        StoreError::Internal("a project has too many prompt versions".to_owned())
                    })?;
                    if new.activate {
                        diesel::update(
                            prompts::table
                                .filter(prompts::project_id.eq(new.project_id.db()))
                                .filter(prompts::is_active.eq(True)),
                        )
                        .set(prompts::is_active.eq(false))
                        .execute(c)
                        .await?;
                    }
                    let row = PromptRow {
                        id: new.id.db(),
                        project_id: new.project_id.db(),
                        version,
                        content: new.content.clone(),
                        is_active: new.activate,
                        created_at: new.created_at.db(),
                    };
                    diesel::insert_into(prompts::table)
                        .values(&row)
                        .execute(c)
                        .await?;
                    Ok(Prompt::from(row))
                })
            )
        }

        pub(crate) async fn list_prompts(
            c: &mut Conn,
            owner: &UserId,
            project_id: ProjectId,
            before_version: Option<i32>,
            n: u32,
        ) -> Result<Vec<Prompt>, StoreError> {
            require(project_is_owned(c, owner, project_id).await)?;
            let mut query = prompts::table
                .filter(prompts::project_id.eq(project_id.db()))
                .select(PromptRow::as_select())
                .order(prompts::version.desc())
                .into_boxed();
            if let Some(before) = before_version {
                query = query.filter(prompts::version.lt(before));
            }
            let rows: Vec<PromptRow> = Limited::new(query, limit(n))
                .load(c)
                .await
                .map_err(translate)?;
            Ok(rows.into_iter().map(Prompt::from).collect())
        }

        pub(crate) async fn active_prompt(
            c: &mut Conn,
            owner: &UserId,
            project_id: ProjectId,
        ) -> Result<Option<Prompt>, StoreError> {
            require(project_is_owned(c, owner, project_id).await)?;
            let row: Option<PromptRow> = prompts::table
                .filter(prompts::project_id.eq(project_id.db()))
                .filter(prompts::is_active.eq(True))
                .select(PromptRow::as_select())
                .one()
                .get_result(c)
                .await
                .optional()
                .map_err(translate)?;
            Ok(row.map(Prompt::from))
        }

        /// One read: the conversation (which must be the owner's) joined to its project's
        /// active prompt, if any.
        pub(crate) async fn conversation_prompt(
            c: &mut Conn,
            owner: &UserId,
            conversation_id: ConversationId,
        ) -> Result<Option<Prompt>, StoreError> {
            let (_, row): (DbId, Option<PromptRow>) = conversations::table
                .left_join(
                    prompts::table.on(prompts::project_id
                        .eq(conversations::project_id)
                        .and(prompts::is_active.eq(True))),
                )
                .filter(conversations::id.eq(conversation_id.db()))
                .filter(conversations::owner_id.eq(owner.as_str()))
                .select((conversations::id, prompts::all_columns.nullable()))
                .one()
                .get_result(c)
                .await
                .map_err(translate)?;
            Ok(row.map(Prompt::from))
        }

        /// One transaction under the project's lock: the other active prompt is switched
        /// off before this one is switched on (the partial unique index is checked per row).
        pub(crate) async fn activate_prompt(
            c: &mut Conn,
            owner: &UserId,
            project_id: ProjectId,
            prompt_id: PromptId,
        ) -> Result<Prompt, StoreError> {
            retry_tx!(
                c.$write_tx(async |c: &mut Conn| -> Result<Prompt, TxError> {
                    lock_project(c, owner, project_id).await?;
                    let in_project: bool = diesel::select(exists(
                        prompts::table
                            .filter(prompts::id.eq(prompt_id.db()))
                            .filter(prompts::project_id.eq(project_id.db())),
                    ))
                    .get_result(c)
                    .await?;
                    if !in_project {
                        return Err(StoreError::NotFound.into());
                    }
                    diesel::update(
                        prompts::table
                            .filter(prompts::project_id.eq(project_id.db()))
                            .filter(prompts::is_active.eq(True))
                            .filter(prompts::id.ne(prompt_id.db())),
                    )
                    .set(prompts::is_active.eq(false))
                    .execute(c)
                    .await?;
                    let row: PromptRow =
                        diesel::update(prompts::table.filter(prompts::id.eq(prompt_id.db())))
                            .set(prompts::is_active.eq(True))
                            .returning(PromptRow::as_returning())
                            .get_result(c)
                            .await?;
                    Ok(Prompt::from(row))
                })
            )
        }

        // ---- conversations

        pub(crate) async fn insert_conversation(
            c: &mut Conn,
            conversation: &Conversation,
        ) -> Result<(), StoreError> {
            // The project may vanish between the check and the insert: the foreign key
            // then fails, which is also `NotFound`.
            require(project_is_owned(c, &conversation.owner_id, conversation.project_id).await)?;
            diesel::insert_into(conversations::table)
                .values(ConversationRow::from(conversation))
                .execute(c)
                .await
                .map(drop)
                .map_err(translate)
        }

        pub(crate) async fn get_conversation(
            c: &mut Conn,
            owner: &UserId,
            id: ConversationId,
        ) -> Result<Conversation, StoreError> {
            let row: ConversationRow = conversations::table
                .filter(conversations::id.eq(id.db()))
                .filter(conversations::owner_id.eq(owner.as_str()))
                .select(ConversationRow::as_select())
                .one()
                .get_result(c)
                .await
                .map_err(translate)?;
            with_active_reply(c, row.try_into()?).await
        }

        /// `(updated_at, id) < after` is written as `updated_at <= t AND (updated_at < t OR
        /// id < i)`: the first conjunct bounds the index scan, the second decides ties.
        pub(crate) async fn list_conversations(
            c: &mut Conn,
            owner: &UserId,
            project_id: ProjectId,
            after: Option<(Timestamp, ConversationId)>,
            n: u32,
        ) -> Result<Vec<Conversation>, StoreError> {
            // Rows only of the owner's project (an uncorrelated `EXISTS`, evaluated once), so
            // a page that has rows needs no ownership check of its own; an empty one checks.
            let mut query = conversations::table
                .filter(conversations::project_id.eq(project_id.db()))
                .filter(project_owned(owner, project_id))
                .select(ConversationRow::as_select())
                .order((conversations::updated_at.desc(), conversations::id.desc()))
                .into_boxed();
            if let Some((at, id)) = after {
                query = query.filter(conversations::updated_at.le(at.db())).filter(
                    conversations::updated_at
                        .lt(at.db())
                        .or(conversations::id.lt(id.db())),
                );
            }
            let rows: Vec<ConversationRow> = Limited::new(query, limit(n))
                .load(c)
                .await
                .map_err(translate)?;
            if rows.is_empty() {
                require(project_is_owned(c, owner, project_id).await)?;
            }
            let mut list = rows
                .into_iter()
                .map(Conversation::try_from)
                .collect::<Result<Vec<_>, _>>()?;
            if list.is_empty() {
                return Ok(list);
            }
            // The replies being generated in the project's conversations (few: at most one
            // each), in one more query rather than one per conversation.
            // The status as a literal: bound, SQLite matched it to the partial index
            // `WHERE status = 'streaming'` and re-prepared the statement on every run.
            let active: Vec<(DbId, DbId)> = Cached(
                messages::table
                    .filter(messages::status.eq(Streaming))
                    .filter(
                        messages::conversation_id.eq_any(
                            conversations::table
                                .filter(conversations::project_id.eq(project_id.db()))
                                .select(conversations::id),
                        ),
                    )
                    .select((messages::conversation_id, messages::id)),
            )
            .load(c)
            .await
            .map_err(translate)?;
            for conversation in &mut list {
                let id = conversation.id.db();
                conversation.active_reply_id = active
                    .iter()
                    .filter(|(of, _)| *of == id)
                    .map(|(_, reply)| reply.0)
                    .max()
                    .map(MessageId::from_uuid);
            }
            Ok(list)
        }

        /// `conversation` with the reply being generated in it (its newest `streaming`
        /// message), if any.
        async fn with_active_reply(
            c: &mut Conn,
            mut conversation: Conversation,
        ) -> Result<Conversation, StoreError> {
            let active: Option<DbId> = Limited::new(
                Cached(
                    messages::table
                        .filter(messages::conversation_id.eq(conversation.id.db()))
                        .filter(messages::status.eq(Streaming))
                        .order(messages::id.desc())
                        .select(messages::id),
                ),
                1,
            )
            .get_result(c)
            .await
            .optional()
            .map_err(translate)?;
            conversation.active_reply_id = active.map(MessageId::from);
            Ok(conversation)
        }

        pub(crate) async fn rename_conversation(
            c: &mut Conn,
            owner: &UserId,
            id: ConversationId,
            title: Option<String>,
            now: Timestamp,
        ) -> Result<Conversation, StoreError> {
            let row = diesel::update(
                conversations::table
                    .filter(conversations::id.eq(id.db()))
                    .filter(conversations::owner_id.eq(owner.as_str())),
            )
            .set((
                conversations::title.eq(title),
                conversations::updated_at.eq(now.db()),
            ))
            .returning(ConversationRow::as_returning())
            .get_result::<ConversationRow>(c)
            .await
            .map_err(translate)?;
            with_active_reply(c, row.try_into()?).await
        }

        pub(crate) async fn set_conversation_model(
            c: &mut Conn,
            owner: &UserId,
            id: ConversationId,
            model: Option<String>,
        ) -> Result<Conversation, StoreError> {
            let row = diesel::update(
                conversations::table
                    .filter(conversations::id.eq(id.db()))
                    .filter(conversations::owner_id.eq(owner.as_str())),
            )
            .set(conversations::model.eq(model))
            .returning(ConversationRow::as_returning())
            .get_result::<ConversationRow>(c)
            .await
            .map_err(translate)?;
            with_active_reply(c, row.try_into()?).await
        }

        /// One conditional update: a title is never written over another.
        pub(crate) async fn set_title_if_empty(
            c: &mut Conn,
            id: ConversationId,
            title: &str,
        ) -> Result<bool, StoreError> {
            let written = diesel::update(
                conversations::table
                    .filter(conversations::id.eq(id.db()))
                    .filter(conversations::title.is_null()),
            )
            .set(conversations::title.eq(title))
            .execute(c)
            .await
            .map_err(translate)?;
            if written == 1 {
                return Ok(true);
            }
            let known: bool = diesel::select(exists(
                conversations::table.filter(conversations::id.eq(id.db())),
            ))
            .get_result(c)
            .await
            .map_err(translate)?;
            if known {
                Ok(false)
            } else {
                Err(StoreError::NotFound)
            }
        }

        /// One statement; the messages go with it (cascade).
        pub(crate) async fn delete_conversation(
            c: &mut Conn,
            owner: &UserId,
            id: ConversationId,
        ) -> Result<(), StoreError> {
            let deleted = diesel::delete(
                conversations::table
                    .filter(conversations::id.eq(id.db()))
                    .filter(conversations::owner_id.eq(owner.as_str())),
            )
            .execute(c)
            .await
            .map_err(translate)?;
            if deleted == 0 {
                Err(StoreError::NotFound)
            } else {
                Ok(())
            }
        }

        // ---- messages

        /// The messages with their attached files (user messages only have any).
        async fn with_files(
            c: &mut Conn,
            mut messages: Vec<Message>,
        ) -> Result<Vec<Message>, StoreError> {
            let ids: Vec<DbId> = messages
                .iter()
                .filter(|m| m.role == Role::User)
                .map(|m| m.id.db())
                .collect();
            if ids.is_empty() {
                return Ok(messages);
            }
            let links: Vec<crate::rows::MessageFileLink> =
                links_of!(ids).load(c).await.map_err(translate)?;
            crate::rows::fill_files(&mut messages, links)?;
            Ok(messages)
        }

        pub(crate) async fn get_message(
            c: &mut Conn,
            owner: &UserId,
            id: MessageId,
        ) -> Result<Message, StoreError> {
            let message: Message = messages::table
                .inner_join(conversations::table)
                .filter(messages::id.eq(id.db()))
                .filter(conversations::owner_id.eq(owner.as_str()))
                .select(MessageRow::as_select())
                .one()
                .get_result::<MessageRow>(c)
                .await
                .map_err(translate)?
                .try_into()?;
            let mut one = with_files(c, vec![message]).await?;
            one.pop().ok_or(StoreError::NotFound)
        }

        /// The branch walked up from its leaf to the cursor over ids only, the page's oldest
        /// `n` rows read whole, then the siblings of the page's messages in one more query.
        pub(crate) async fn list_branch(
            c: &mut Conn,
            owner: &UserId,
            conversation_id: ConversationId,
            leaf: Option<MessageId>,
            after: Option<MessageId>,
            n: u32,
        ) -> Result<Branch, StoreError> {
            // One query for what used to take three: that the conversation is the owner's,
            // its leaf, and whether the asked `leaf` is one of its messages (a `NULL` leaf
            // matches none). The leaf first, so the page is of the branch it names even if a
            // turn moves it.
            // The revision is read in the same statement, before the messages: the page is
            // never older than it (a newer page under an older revision costs a cache miss).
            let asked = leaf.map(|id| id.db());
            let (revision, stored, known): (i64, Option<DbId>, bool) = conversations::table
                .filter(conversations::id.eq(conversation_id.db()))
                .filter(conversations::owner_id.eq(owner.as_str()))
                .select((
                    conversations::revision,
                    conversations::leaf_id,
                    exists(
                        messages::table
                            .filter(messages::id.nullable().eq(asked))
                            .filter(messages::conversation_id.eq(conversation_id.db())),
                    ),
                ))
                // By primary key: no `LIMIT` (SQLite re-prepares a bound one, limit.rs).
                .get_result(c)
                .await
                .map_err(translate)?;
            if leaf.is_some() && !known {
                return Err(StoreError::NotFound);
            }
            let leaf_id = leaf.or(stored.map(MessageId::from));
            let walk = crate::branch::BranchUp::new(
                conversation_id.db(),
                owner.as_str(),
                crate::branch::End::At(leaf_id.map(|id| id.db())),
                after.map(|id| id.db()),
                crate::branch::Take::Oldest(i64::from(n)),
            );
            let rows: Vec<MessageRow> = walk.load(c).await.map_err(translate)?;
            if rows.is_empty() {
                return Ok(Branch {
                    leaf_id,
                    messages: Vec::new(),
                    revision,
                });
            }
            let parents: Vec<DbId> = rows.iter().filter_map(|row| row.parent_id).collect();
            let roots = rows.iter().any(|row| row.parent_id.is_none());
            let parent_ids: Vec<Option<DbId>> = rows.iter().map(|row| row.parent_id).collect();
            let mut read = rows
                .into_iter()
                .map(Message::try_from)
                .collect::<Result<Vec<_>, StoreError>>()?;
            let asked: Vec<DbId> = read
                .iter()
                .filter(|m| m.role == Role::User)
                .map(|m| m.id.db())
                .collect();
            // `roots` is bound, not a literal, so the statement is cached (on PostgreSQL
            // `eq_any` is one array parameter; on SQLite a list of them).
            let siblings: Vec<(Option<DbId>, DbId)> = messages::table
                .filter(messages::conversation_id.eq(conversation_id.db()))
                .filter(
                    messages::parent_id.eq_any(parents).or(messages::parent_id
                        .is_null()
                        .and(roots.into_sql::<diesel::sql_types::Bool>())),
                )
                .order(messages::id.asc())
                .select((messages::parent_id, messages::id))
                .load(c)
                .await
                .map_err(translate)?;
            if !asked.is_empty() {
                let links: Vec<crate::rows::MessageFileLink> =
                    links_of!(asked).load(c).await.map_err(translate)?;
                crate::rows::fill_files(&mut read, links)?;
            }
            let messages = read
                .into_iter()
                .zip(parent_ids)
                .map(|(message, parent)| BranchMessage {
                    message,
                    sibling_ids: siblings
                        .iter()
                        .filter(|(of, _)| *of == parent)
                        .map(|(_, id)| MessageId::from(*id))
                        .collect(),
                })
                .collect();
            Ok(Branch {
                leaf_id,
                messages,
                revision,
            })
        }

        /// By primary key, filtered by owner: one statement, no `LIMIT` (limit.rs).
        pub(crate) async fn conversation_revision(
            c: &mut Conn,
            owner: &UserId,
            conversation_id: ConversationId,
        ) -> Result<i64, StoreError> {
            conversations::table
                .filter(conversations::id.eq(conversation_id.db()))
                .filter(conversations::owner_id.eq(owner.as_str()))
                .select(conversations::revision)
                .get_result(c)
                .await
                .map_err(translate)
        }

        /// The deepest leaf in one recursive read, then the conversation's `leaf_id`.
        pub(crate) async fn choose_leaf(
            c: &mut Conn,
            owner: &UserId,
            conversation_id: ConversationId,
            message: MessageId,
        ) -> Result<Conversation, StoreError> {
            require(conversation_is_owned(c, owner, conversation_id).await)?;
            let leaf: DbId = crate::branch::DeepestLeaf {
                conversation: conversation_id.db(),
                from: message.db(),
            }
            .get_result(c)
            .await
            .map_err(translate)?;
            let row = diesel::update(
                conversations::table
                    .filter(conversations::id.eq(conversation_id.db()))
                    .filter(conversations::owner_id.eq(owner.as_str())),
            )
            .set(conversations::leaf_id.eq(Some(leaf)))
            .returning(ConversationRow::as_returning())
            .get_result::<ConversationRow>(c)
            .await
            .map_err(translate)?;
            with_active_reply(c, row.try_into()?).await
        }

        pub(crate) async fn list_messages(
            c: &mut Conn,
            owner: &UserId,
            conversation_id: ConversationId,
            after: Option<MessageId>,
            n: u32,
        ) -> Result<Vec<Message>, StoreError> {
            require(conversation_is_owned(c, owner, conversation_id).await)?;
            let mut query = messages::table
                .filter(messages::conversation_id.eq(conversation_id.db()))
                .select(MessageRow::as_select())
                .order(messages::id.asc())
                .into_boxed();
            if let Some(after) = after {
                query = query.filter(messages::id.gt(after.db()));
            }
            let rows: Vec<MessageRow> = Limited::new(query, limit(n))
                .load(c)
                .await
                .map_err(translate)?;
            let read = rows
                .into_iter()
                .map(Message::try_from)
                .collect::<Result<Vec<_>, StoreError>>()?;
            with_files(c, read).await
        }

        /// The newest assistant message: one indexed read from the end.
        pub(crate) async fn latest_reply(
            c: &mut Conn,
            owner: &UserId,
            conversation_id: ConversationId,
        ) -> Result<Option<Message>, StoreError> {
            require(conversation_is_owned(c, owner, conversation_id).await)?;
            let row: Option<MessageRow> = messages::table
                .filter(messages::conversation_id.eq(conversation_id.db()))
                .filter(messages::role.eq(Role::Assistant.as_str()))
                .select(MessageRow::as_select())
                .order(messages::id.desc())
                .one()
                .get_result(c)
                .await
                .optional()
                .map_err(translate)?;
            row.map(Message::try_from).transpose()
        }

        pub(crate) async fn check_turn(
            c: &mut Conn,
            owner: &UserId,
            conversation_id: ConversationId,
            client_message_id: Option<Uuid>,
            file_ids: &[FileId],
            stale_before: Timestamp,
        ) -> Result<(), StoreError> {
            require(conversation_is_owned(c, owner, conversation_id).await)?;
            if !file_ids.is_empty() {
                let wanted: Vec<_> = file_ids.iter().map(|id| id.db()).collect();
                let found: Vec<FileRow> =
                    attachable_files!(owner.as_str(), conversation_id.db(), wanted)
                        .load(c)
                        .await
                        .map_err(translate)?;
                crate::links::links_for(file_ids, found)?;
            }
            let busy: bool = diesel::select(exists(
                messages::table
                    .filter(messages::conversation_id.eq(conversation_id.db()))
                    .filter(messages::status.eq(Streaming))
                    .filter(messages::touched_at.ge(stale_before.db())),
            ))
            .get_result(c)
            .await
            .map_err(translate)?;
            if busy {
                return Err(Conflict::ReplyInProgress.into());
            }
            if let Some(client_id) = client_message_id {
                let used: bool = diesel::select(exists(
                    messages::table
                        .filter(messages::conversation_id.eq(conversation_id.db()))
                        .filter(messages::client_message_id.eq(client_id.db())),
                ))
                .get_result(c)
                .await
                .map_err(translate)?;
                if used {
                    return Err(Conflict::DuplicateClientMessage.into());
                }
            }
            Ok(())
        }

        pub(crate) async fn touch_reply(
            c: &mut Conn,
            id: MessageId,
            content: &str,
            now: Timestamp,
        ) -> Result<bool, StoreError> {
            let touched = Cached(
                diesel::update(
                    messages::table
                        .filter(messages::id.eq(id.db()))
                        .filter(messages::status.eq(Streaming)),
                )
                .set((
                    messages::content.eq(content),
                    messages::touched_at.eq(now.db()),
                )),
            )
            .execute(c)
            .await
            .map_err(translate)?;
            if touched == 0 {
                let known: bool =
                    diesel::select(exists(messages::table.filter(messages::id.eq(id.db()))))
                        .get_result(c)
                        .await
                        .map_err(translate)?;
                if !known {
                    return Err(StoreError::NotFound);
                }
                return Ok(false);
            }
            Ok(true)
        }

        /// The conversation row is written first, then the message: the lock order of
        /// `begin_turn`. Only a reply still `streaming` is written: the sweep of lapsed
        /// leases and this write are both conditional on it, so one of them wins. The reply
        /// is not read first (its conversation is the caller's): when it is not written —
        /// ended by a sweep, or gone — the transaction is rolled back, and only then read.
        /// A reply's end is one statement fewer, and one round trip fewer holding the
        /// conversation's lock and a connection.
        pub(crate) async fn finish_reply(
            c: &mut Conn,
            reply: &Message,
            now: Timestamp,
        ) -> Result<FinishOutcome, StoreError> {
            let written = retry_tx!(c.$write_tx(async |c: &mut Conn| -> Result<(), TxError> {
                // Both cacheable: `FinishedReply` writes `None` as NULL, so the text is fixed.
                Cached(
                    diesel::update(
                        conversations::table
                            .filter(conversations::id.eq(reply.conversation_id.db())),
                    )
                    .set(conversations::updated_at.eq(now.db())),
                )
                .execute(c)
                .await?;
                let written = Cached(
                    diesel::update(
                        messages::table
                            .filter(messages::id.eq(reply.id.db()))
                            .filter(messages::status.eq(Streaming)),
                    )
                    .set(FinishedReply::new(reply, now)),
                )
                .execute(c)
                .await?;
                if written == 0 {
                    // Undoes the conversation's write; the reply is read below.
                    return Err(StoreError::NotFound.into());
                }
                Ok(())
            }));
            match written {
                Ok(()) => Ok(FinishOutcome::Stored),
                Err(StoreError::NotFound) => {
                    let ended: MessageRow = messages::table
                        .filter(messages::id.eq(reply.id.db()))
                        .select(MessageRow::as_select())
                        .one()
                        .get_result(c)
                        .await
                        .optional()
                        .map_err(translate)?
                        .ok_or(StoreError::NotFound)?;
                    Ok(FinishOutcome::AlreadyEnded(Message::try_from(ended)?))
                }
                Err(e) => Err(e),
            }
        }

        pub(crate) async fn fail_stale_replies(
            c: &mut Conn,
            stale_before: Timestamp,
        ) -> Result<u64, StoreError> {
            let failed = diesel::update(
                messages::table
                    .filter(messages::status.eq(Streaming))
                    .filter(messages::touched_at.lt(stale_before.db())),
            )
            .set((messages::status.eq(FAILED), messages::error.eq(INTERRUPTED)))
            .execute(c)
            .await
            .map_err(translate)?;
            Ok(u64::try_from(failed).unwrap_or(u64::MAX))
        }

        // ---- files

        pub(crate) async fn insert_file(c: &mut Conn, file: &FileMeta) -> Result<(), StoreError> {
            let row = FileRow::try_from(file)?;
            require(project_is_owned(c, &file.owner_id, file.project_id).await)?;
            diesel::insert_into(file_metadata::table)
                .values(row)
                .execute(c)
                .await
                .map(drop)
                .map_err(translate)
        }

        pub(crate) async fn get_file(
            c: &mut Conn,
            owner: &UserId,
            id: FileId,
        ) -> Result<FileMeta, StoreError> {
            file_metadata::table
                .filter(file_metadata::id.eq(id.db()))
                .filter(file_metadata::owner_id.eq(owner.as_str()))
                .select(FileRow::as_select())
                .one()
                .get_result(c)
                .await
                .map_err(translate)?
                .try_into()
        }

        pub(crate) async fn list_files(
            c: &mut Conn,
            owner: &UserId,
            project_id: ProjectId,
            after: Option<FileId>,
            n: u32,
        ) -> Result<Vec<FileMeta>, StoreError> {
            // As `list_conversations`: rows only of the owner's project, and an ownership
            // check only for an empty page.
            let mut query = file_metadata::table
                .filter(file_metadata::project_id.eq(project_id.db()))
                .filter(project_owned(owner, project_id))
                .select(FileRow::as_select())
                .order(file_metadata::id.desc())
                .into_boxed();
            if let Some(after) = after {
                query = query.filter(file_metadata::id.lt(after.db()));
            }
            let rows: Vec<FileRow> = Limited::new(query, limit(n))
                .load(c)
                .await
                .map_err(translate)?;
            if rows.is_empty() {
                require(project_is_owned(c, owner, project_id).await)?;
            }
            rows.into_iter().map(FileMeta::try_from).collect()
        }

        pub(crate) async fn delete_file(
            c: &mut Conn,
            owner: &UserId,
            id: FileId,
        ) -> Result<FileMeta, StoreError> {
            diesel::delete(
                file_metadata::table
                    .filter(file_metadata::id.eq(id.db()))
                    .filter(file_metadata::owner_id.eq(owner.as_str())),
            )
            .returning(FileRow::as_returning())
            .get_result(c)
            .await
            .map_err(translate)?
            .try_into()
        }

        /// Updates the file's row (locking it: a concurrent delete waits) and replaces its
        /// text in one transaction; no row, no text.
        pub(crate) async fn set_file_text(
            c: &mut Conn,
            id: FileId,
            outcome: &TextOutcome,
        ) -> Result<(), StoreError> {
            let status = outcome.status().as_str();
            let (error, text) = match outcome {
                TextOutcome::Ready(text) => (None, Some(text.as_str())),
                TextOutcome::Failed(error) => (Some(error.as_str()), None),
                TextOutcome::None => (None, None),
            };
            let chunks = text.map(confab_core::knowledge::chunks).unwrap_or_default();
            retry_tx!(c.$write_tx(async |c: &mut Conn| -> Result<(), TxError> {
                let project_id: DbId =
                    diesel::update(file_metadata::table.filter(file_metadata::id.eq(id.db())))
                        .set((
                            file_metadata::text_status.eq(status),
                            file_metadata::text_error.eq(error),
                        ))
                        .returning(file_metadata::project_id)
                        .get_result(c)
                        .await
                        .optional()?
                        .ok_or(StoreError::NotFound)?;
                let only_this = file_texts::table.filter(file_texts::file_id.eq(id.db()));
                diesel::delete(only_this).execute(c).await?;
                diesel::delete(file_chunks::table.filter(file_chunks::file_id.eq(id.db())))
                    .execute(c)
                    .await?;
                if let Some(text) = text {
                    diesel::insert_into(file_texts::table)
                        .values((file_texts::file_id.eq(id.db()), file_texts::text.eq(text)))
                        .execute(c)
                        .await?;
                }
                // One statement a chunk: diesel-async cannot batch inserts on SQLite.
                for (chunk, ordinal) in chunks.iter().zip(0_i32..) {
                    diesel::insert_into(file_chunks::table)
                        .values((
                            file_chunks::file_id.eq(id.db()),
                            file_chunks::project_id.eq(project_id),
                            file_chunks::ordinal.eq(ordinal),
                            file_chunks::text.eq(chunk.as_str()),
                        ))
                        .execute(c)
                        .await?;
                }
                Ok(())
            }))
        }

        pub(crate) async fn get_file_text(
            c: &mut Conn,
            owner: &UserId,
            id: FileId,
        ) -> Result<Option<String>, StoreError> {
            let (_, text): (String, Option<String>) = file_metadata::table
                .left_join(file_texts::table)
                .filter(file_metadata::id.eq(id.db()))
                .filter(file_metadata::owner_id.eq(owner.as_str()))
                .select((file_metadata::text_status, file_texts::text.nullable()))
                .one()
                .get_result(c)
                .await
                .map_err(translate)?;
            Ok(text)
        }

        pub(crate) async fn extracted_twin(
            c: &mut Conn,
            file: &FileMeta,
        ) -> Result<Option<TextOutcome>, StoreError> {
            let twins: Vec<(String, Option<String>, Option<String>)> = Limited::new(
                file_metadata::table
                    .left_join(file_texts::table)
                    .filter(file_metadata::project_id.eq(file.project_id.db()))
                    .filter(file_metadata::sha256.eq(&file.sha256))
                    .filter(file_metadata::id.ne(file.id.db()))
                    .filter(file_metadata::text_status.ne(TextStatus::Pending.as_str()))
                    .order(file_metadata::id.asc())
                    .select((
                        file_metadata::text_status,
                        file_metadata::text_error,
                        file_texts::text.nullable(),
                    )),
                4,
            )
            .load(c)
            .await
            .map_err(translate)?;
            Ok(twins.into_iter().find_map(|(status, error, text)| {
                match TextStatus::parse(&status)? {
                    TextStatus::Ready => text.map(TextOutcome::Ready),
                    TextStatus::Failed => Some(TextOutcome::Failed(error.unwrap_or_default())),
                    TextStatus::None => Some(TextOutcome::None),
                    TextStatus::Pending => None,
                }
            }))
        }

        pub(crate) async fn pending_files(
            c: &mut Conn,
            after: Option<FileId>,
            n: u32,
        ) -> Result<Vec<FileMeta>, StoreError> {
            let mut query = file_metadata::table
                .filter(file_metadata::text_status.eq(Pending))
                .select(FileRow::as_select())
                .order(file_metadata::id.asc())
                .into_boxed();
            if let Some(after) = after {
                query = query.filter(file_metadata::id.gt(after.db()));
            }
            let rows: Vec<FileRow> = Limited::new(query, limit(n))
                .load(c)
                .await
                .map_err(translate)?;
            rows.into_iter().map(FileMeta::try_from).collect()
        }
    };
}

/// PostgreSQL: read-committed transactions with explicit row locks.
pub(crate) mod pg {
    use diesel_async::AsyncConnection as _;

    queries!(
        conn = diesel_async::AsyncPgConnection,
        write_tx = transaction,
        lock_for_write = for_no_key_update,
        lock_for_delete = for_update,
    );

    pub(crate) use crate::turn::pg::begin_turn;

    /// The query's words (`knowledge::query_words`: its telling ones) OR-ed, in the `simple`
    /// configuration and the project's language, matched against the chunks' generated
    /// `search` vector (GIN-indexed), which is made in the same two (the chunks' `language`,
    /// kept equal to the project's by triggers: see the migration `project_language`).
    ///
    /// The language is read with the ownership check and bound, so the `tsquery` is one
    /// stable expression: computed once, usable as a GIN index condition, and estimated by
    /// the planner from the column's statistics (before, it came from a joined subquery and
    /// was rebuilt for every chunk of the project, which was tested row by row). Only the
    /// project's newest `knowledge::RANKED_CHUNKS` matches are ranked with `ts_rank_cd`
    /// (`file_chunks_project_newest_idx` walks them newest first for a common word; a rarer
    /// one is found through the GIN index); a query of common words only
    /// (`knowledge::is_stop_word`) gets the newest matching chunks, as on SQLite.
    pub(crate) async fn search(
        c: &mut Conn,
        owner: &UserId,
        project_id: ProjectId,
        query: &str,
        n: u32,
    ) -> Result<Vec<confab_core::knowledge::KnowledgeHit>, StoreError> {
        let language: Option<String> = projects::table
            .filter(projects::id.eq(project_id.db()))
            .filter(projects::owner_id.eq(owner.as_str()))
            .select(projects::language)
            .one()
            .get_result(c)
            .await
            .optional()
            .map_err(translate)?;
        let language = language.ok_or(StoreError::NotFound)?;
        search_chunks(c, project_id, &language, query, n).await
    }

    /// The knowledge of the owner's conversation's project, when it is on and it has ready
    /// files (one query for the project, its switch, whether it has any and its language;
    /// `NotFound` for a missing or another owner's conversation).
    pub(crate) async fn search_conversation(
        c: &mut Conn,
        owner: &UserId,
        conversation_id: ConversationId,
        query: &str,
        n: u32,
    ) -> Result<Vec<confab_core::knowledge::KnowledgeHit>, StoreError> {
        let project_of = || {
            conversations::table
                .filter(conversations::id.eq(conversation_id.db()))
                .filter(conversations::owner_id.eq(owner.as_str()))
                .select(conversations::project_id)
        };
        let found: Option<(DbId, bool, String)> = projects::table
            .filter(projects::id.eq_any(project_of()))
            .filter(projects::owner_id.eq(owner.as_str()))
            .select((
                projects::id,
                projects::knowledge.and(has_knowledge!(project_of())),
                projects::language,
            ))
            .one()
            .get_result(c)
            .await
            .optional()
            .map_err(translate)?;
        match found {
            Some((project, true, language)) => {
                search_chunks(c, project.into(), &language, query, n).await
            }
            Some((_, false, _)) => Ok(Vec::new()),
            None => Err(StoreError::NotFound),
        }
    }

    async fn search_chunks(
        c: &mut Conn,
        project_id: ProjectId,
        language: &str,
        query: &str,
        n: u32,
    ) -> Result<Vec<confab_core::knowledge::KnowledgeHit>, StoreError> {
        use diesel::sql_types::{BigInt, Text};

        let words = confab_core::knowledge::query_words(query);
        if words.is_empty() {
            return Ok(Vec::new());
        }
        // $4 is one of the built-in configurations (`SEARCH_LANGUAGES`, checked when the
        // project's language is set); the cast is evaluated once per query.
        let tsquery = "(to_tsquery('simple', $1) || to_tsquery(CAST($4 AS regconfig), $1))";
        let sql = if words
            .iter()
            .all(|w| confab_core::knowledge::is_stop_word(w))
        {
            format!(
                "SELECT c.file_id, f.filename, c.ordinal, c.text \
                 FROM file_chunks c JOIN file_metadata f ON f.id = c.file_id \
                 WHERE c.project_id = $2 AND c.search @@ {tsquery} \
                 ORDER BY c.id DESC LIMIT $3"
            )
        } else {
            format!(
                "WITH found AS MATERIALIZED ( \
                   SELECT c.id, c.search FROM file_chunks c \
                   WHERE c.project_id = $2 AND c.search @@ {tsquery} \
                   ORDER BY c.id DESC LIMIT {candidates}), \
                 best AS ( \
                   SELECT id, ts_rank_cd(search, {tsquery}) AS score FROM found \
                   ORDER BY score DESC, id LIMIT $3) \
                 SELECT c.file_id, f.filename, c.ordinal, c.text \
                 FROM best JOIN file_chunks c ON c.id = best.id \
                      JOIN file_metadata f ON f.id = c.file_id \
                 ORDER BY best.score DESC, c.id",
                candidates = confab_core::knowledge::RANKED_CHUNKS
            )
        };
        let rows: Vec<crate::rows::HitRow> = diesel::sql_query(sql)
            .bind::<Text, _>(words.join(" | "))
            .bind::<crate::types::Id, _>(project_id.db())
            .bind::<BigInt, _>(limit(n))
            .bind::<Text, _>(language)
            .load(c)
            .await
            .map_err(translate)?;
        Ok(rows.into_iter().map(Into::into).collect())
    }

    /// Messages and titles whose generated `search` vector (GIN-indexed) matches the query's
    /// phrases (`websearch_to_tsquery`) and prefix (`to_tsquery` with `:*`), both folded by
    /// `confab_fold`; the newest [`RANKED_CANDIDATES`] matching messages ranked by
    /// `ts_rank_cd` (of the text alone), not every match of a common word. The phrases are
    /// written out where they filter (not read from a CTE), so that the planner estimates
    /// how many rows they match from the column's statistics and picks between the GIN
    /// index and the searcher's conversations (`conversations_owner_id_idx`) accordingly;
    /// the prefix is only ever checked on the searcher's messages (see `matching`).
    /// The messages are also limited to the searcher's conversation ids, read once
    /// (`= ANY (ARRAY(…))`, an init plan): joined only, the planner read the GIN index again
    /// for each of the searcher's conversations (a bitmap AND per conversation), expanding
    /// a prefix (`tais:*`: ~40,000 entries of every user's) or intersecting two common
    /// words' entry lists as many times.
    ///
    /// [`RANKED_CANDIDATES`]: confab_core::search::RANKED_CANDIDATES
    pub(crate) async fn search_messages(
        c: &mut Conn,
        owner: &UserId,
        query: &confab_core::search::SearchQuery,
        project: Option<ProjectId>,
        after: Option<confab_core::search::SearchKey>,
        n: u32,
    ) -> Result<Vec<confab_core::search::SearchHit>, StoreError> {
        if let Some(project) = project {
            require(project_is_owned(c, owner, project).await)?;
        }
        if query.is_empty() {
            return Ok(Vec::new());
        }
        let phrases = query.websearch();
        let prefix = query.prefix().map(|p| format!("{p}:*")).unwrap_or_default();
        let tsquery = match (phrases.is_empty(), prefix.is_empty()) {
            (false, false) => {
                "websearch_to_tsquery('simple', confab_fold($1)) \
                 && to_tsquery('simple', confab_fold($2))"
            }
            (false, true) => "websearch_to_tsquery('simple', confab_fold($1))",
            (true, _) => "to_tsquery('simple', confab_fold($2))",
        };
        // Which messages match. The prefix is checked on the searcher's own messages, never
        // looked up in the GIN index: a prefix there is expanded over every user's words
        // (`tais:*` at 1,000,000 messages: 22,936 entries read to keep one user's 77, 14 ms),
        // growing with everyone's writing, where the searcher's messages are what a common
        // word already costs (`IS TRUE` is no index condition). The phrases still narrow by
        // the index when they are telling.
        let matching = match (phrases.is_empty(), prefix.is_empty()) {
            (false, false) => {
                "m.search @@ websearch_to_tsquery('simple', confab_fold($1)) \
                 AND (m.search @@ to_tsquery('simple', confab_fold($2))) IS TRUE"
            }
            (false, true) => "m.search @@ websearch_to_tsquery('simple', confab_fold($1))",
            (true, _) => "(m.search @@ to_tsquery('simple', confab_fold($2))) IS TRUE",
        };
        let candidates = confab_core::search::RANKED_CANDIDATES;
        let sql = format!(
            "WITH query AS (SELECT {tsquery} AS q), \
             found AS MATERIALIZED ( \
               SELECT c.id AS conversation_id, c.project_id AS project_id, c.title AS title, \
                      m.id AS message_id, m.role AS role, m.created_at AS created_at, \
                      m.content AS text, m.search AS search \
               FROM messages m JOIN conversations c ON c.id = m.conversation_id \
               WHERE {matching} AND c.owner_id = $3 \
                 AND ($4::uuid IS NULL OR c.project_id = $4) \
                 AND m.conversation_id = ANY (ARRAY( \
                   SELECT o.id FROM conversations o \
                   WHERE o.owner_id = $3 AND ($4::uuid IS NULL OR o.project_id = $4))) \
               ORDER BY m.created_at DESC, m.id DESC LIMIT {candidates}), \
             hits AS ( \
               SELECT conversation_id, project_id, title, message_id, role, created_at, text, \
                      ts_rank_cd(search, query.q)::float8 AS score \
               FROM found, query \
               UNION ALL \
               SELECT c.id, c.project_id, c.title, NULL::uuid, NULL::text, c.created_at, \
                      coalesce(c.title, ''), ts_rank_cd(c.search, query.q)::float8 \
               FROM query, conversations c \
               WHERE c.search @@ ({tsquery}) AND c.owner_id = $3 \
                 AND ($4::uuid IS NULL OR c.project_id = $4)) \
             SELECT * FROM hits \
             WHERE $5::float8 IS NULL OR score < $5 OR (score = $5 AND (created_at < $6 \
                OR (created_at = $6 AND coalesce(message_id, conversation_id) < $7))) \
             ORDER BY score DESC, created_at DESC, coalesce(message_id, conversation_id) DESC \
             LIMIT $8"
        );
        search_rows(c, &sql, &phrases, &prefix, owner, project, after, n)
            .await?
            .into_iter()
            .map(|row| row.hit(query))
            .collect()
    }
}

/// SQLite: `BEGIN IMMEDIATE` transactions, which exclude every other writer, so no row lock
/// is taken (SQLite has no `FOR UPDATE`).
pub(crate) mod sqlite {
    use crate::connect::Immediate as _;

    /// The lock clauses of PostgreSQL, as no-ops.
    trait Unlocked: Sized {
        fn unlocked(self) -> Self {
            self
        }
    }

    impl<T> Unlocked for T {}

    queries!(
        conn = crate::connect::SqliteConn,
        write_tx = immediate_transaction,
        lock_for_write = unlocked,
        lock_for_delete = unlocked,
    );

    pub(crate) use crate::turn::sqlite::begin_turn;

    /// The project of the owner's conversation when its knowledge is on and it has ready
    /// files (`None` otherwise: nothing to search); `NotFound` for a missing or another
    /// owner's conversation. One query.
    async fn knowledge_project(
        c: &mut Conn,
        owner: &UserId,
        conversation_id: ConversationId,
    ) -> Result<Option<ProjectId>, StoreError> {
        let found: Option<(DbId, bool)> =
            conversation_knowledge!(owner.as_str(), conversation_id.db())
                .one()
                .get_result(c)
                .await
                .optional()
                .map_err(translate)?;
        match found {
            Some((project, true)) => Ok(Some(project.into())),
            Some((_, false)) => Ok(None),
            None => Err(StoreError::NotFound),
        }
    }

    /// The query's words (`knowledge::query_words`: its telling ones), each quoted (so none
    /// is FTS5 syntax), OR-ed, in the project's entries only (`project : "<id's hex>"`, one
    /// token); the newest `knowledge::RANKED_CHUNKS` matches (the index hands them over newest
    /// first and stops there) ranked by bm25 of the text in the index, and only the best `n`
    /// chunks read. A
    /// query of common words only (`knowledge::is_stop_word`: in nearly every chunk, so bm25
    /// has nothing to rank by, and would count their rows in the whole index first) gets
    /// the newest matching chunks.
    pub(crate) async fn search(
        c: &mut Conn,
        owner: &UserId,
        project_id: ProjectId,
        query: &str,
        n: u32,
    ) -> Result<Vec<confab_core::knowledge::KnowledgeHit>, StoreError> {
        require(project_is_owned(c, owner, project_id).await)?;
        search_chunks(c, project_id, query, n).await
    }

    /// The knowledge of the owner's conversation's project, when it is on.
    pub(crate) async fn search_conversation(
        c: &mut Conn,
        owner: &UserId,
        conversation_id: ConversationId,
        query: &str,
        n: u32,
    ) -> Result<Vec<confab_core::knowledge::KnowledgeHit>, StoreError> {
        match knowledge_project(c, owner, conversation_id).await? {
            Some(project_id) => search_chunks(c, project_id, query, n).await,
            None => Ok(Vec::new()),
        }
    }

    async fn search_chunks(
        c: &mut Conn,
        project_id: ProjectId,
        query: &str,
        n: u32,
    ) -> Result<Vec<confab_core::knowledge::KnowledgeHit>, StoreError> {
        use diesel::sql_types::{BigInt, Text};

        let words = confab_core::knowledge::query_words(query);
        if words.is_empty() {
            return Ok(Vec::new());
        }
        if words.len() > 1
            && !words
                .iter()
                .all(|w| confab_core::knowledge::is_stop_word(w))
        {
            return search_chunks_by_words(c, project_id, &words, n).await;
        }
        let matching: Vec<String> = words.iter().map(|w| format!("\"{w}\"")).collect();
        let expression = format!(
            "project : \"{}\" AND text : ({})",
            project_id.as_uuid().simple(),
            matching.join(" OR ")
        );
        let best = if words
            .iter()
            .all(|w| confab_core::knowledge::is_stop_word(w))
        {
            "SELECT rowid AS id, -rowid AS score FROM file_chunks_fts \
             WHERE file_chunks_fts MATCH ?1 ORDER BY rowid DESC LIMIT ?3 + 0"
                .to_owned()
        } else {
            format!(
                "SELECT id, score FROM ( \
                   SELECT rowid AS id, bm25(file_chunks_fts, 1.0, 0.0) AS score \
                   FROM file_chunks_fts WHERE file_chunks_fts MATCH ?1 \
                   ORDER BY rowid DESC LIMIT {}) \
                 ORDER BY score, id LIMIT ?3 + 0",
                confab_core::knowledge::RANKED_CHUNKS
            )
        };
        // The project filter stays on the rows: the index narrows, the row decides.
        let sql = format!(
            "SELECT c.file_id AS file_id, f.filename AS filename, c.ordinal AS ordinal, \
                    c.text AS text \
             FROM ({best}) AS best \
                  JOIN file_chunks c ON c.id = best.id \
                  JOIN file_metadata f ON f.id = c.file_id \
             WHERE c.project_id = ?2 \
             ORDER BY best.score, c.id"
        );
        // Its text is one of two, fixed: cached. `LIMIT ? + 0`: a bare `LIMIT ?` is
        // prepared again at every run (limit.rs).
        let rows: Vec<crate::rows::HitRow> = Cached(
            diesel::sql_query(sql)
                .bind::<Text, _>(expression)
                .bind::<crate::types::Id, _>(project_id.db())
                .bind::<BigInt, _>(limit(n)),
        )
        .load(c)
        .await
        .map_err(translate)?;
        Ok(rows.into_iter().map(Into::into).collect())
    }
    /// How many of the project's newest chunks with each word of a question of several
    /// words [`search_chunks_by_words`] reads.
    const WORD_CANDIDATES: usize = 250;

    /// A question of several telling words: each word's [`WORD_CANDIDATES`] newest chunks
    /// in the project, read from the index (`project : "<id>" AND text : "<word>"`, newest
    /// first: FTS5 steps through the project's entries and stops at the limit), ranked by
    /// which words each has ([`crate::rank::by_words`]), and the best `n` read. Not
    /// `bm25()`: it would first count each word's chunks in the whole index, every
    /// project's — for words in a third of all chunks, most of the query's cost (issue 16's
    /// nine-word question: ~80 % of its instructions, docs/benchmarks.md).
    async fn search_chunks_by_words(
        c: &mut Conn,
        project_id: ProjectId,
        words: &[String],
        n: u32,
    ) -> Result<Vec<confab_core::knowledge::KnowledgeHit>, StoreError> {
        use diesel::sql_types::{BigInt, Text};

        // Both cached (fixed texts); `LIMIT ? + 0`: a bare `LIMIT ?` is prepared again at
        // every run (limit.rs).
        const NEWEST: &str = "SELECT rowid AS id FROM file_chunks_fts \
             WHERE file_chunks_fts MATCH ?1 ORDER BY rowid DESC LIMIT ?2 + 0";
        // The project filter stays on the rows: the index narrows, the row decides.
        const CHUNKS: &str = "SELECT c.id AS id, c.file_id AS file_id, f.filename AS filename, \
                    c.ordinal AS ordinal, c.text AS text \
             FROM file_chunks c JOIN file_metadata f ON f.id = c.file_id \
             WHERE c.id IN (SELECT value FROM json_each(?1)) AND c.project_id = ?2";
        let project = project_id.as_uuid().simple().to_string();
        let cap = i64::try_from(WORD_CANDIDATES).unwrap_or(i64::MAX);
        let mut lists = Vec::with_capacity(words.len());
        for word in words {
            let rows: Vec<crate::rows::RowIdRow> = Cached(
                diesel::sql_query(NEWEST)
                    .bind::<Text, _>(format!("project : \"{project}\" AND text : \"{word}\""))
                    .bind::<BigInt, _>(cap),
            )
            .load(c)
            .await
            .map_err(translate)?;
            lists.push(rows.into_iter().map(|r| r.id).collect::<Vec<_>>());
        }
        let n = usize::try_from(n).unwrap_or(usize::MAX);
        let (weights, best) =
            crate::rank::by_words(&lists, WORD_CANDIDATES, n.saturating_mul(4).max(20));
        if best.is_empty() {
            return Ok(Vec::new());
        }
        let ids = format!(
            "[{}]",
            best.iter()
                .map(i64::to_string)
                .collect::<Vec<_>>()
                .join(",")
        );
        let rows: Vec<crate::rows::IdHitRow> = Cached(
            diesel::sql_query(CHUNKS)
                .bind::<Text, _>(ids)
                .bind::<crate::types::Id, _>(project_id.db()),
        )
        .load(c)
        .await
        .map_err(translate)?;
        // In by_words' order (the ties' order), then by how often each word occurs.
        let mut rows: Vec<(usize, crate::rows::IdHitRow)> = rows
            .into_iter()
            .filter_map(|r| best.iter().position(|id| *id == r.id).map(|at| (at, r)))
            .collect();
        rows.sort_by_key(|(at, _)| *at);
        let texts: Vec<(i64, &str)> = rows
            .iter()
            .map(|(_, r)| (r.id, r.hit.text.as_str()))
            .collect();
        let order = crate::rank::by_frequency(words, &weights, &texts);
        let mut hits: std::collections::HashMap<i64, crate::rows::HitRow> =
            rows.into_iter().map(|(_, r)| (r.id, r.hit)).collect();
        Ok(order
            .iter()
            .take(n)
            .filter_map(|id| hits.remove(id))
            .map(Into::into)
            .collect())
    }

    /// Messages (`messages_fts`, its entries of the searcher only: `owner : "<hex of the
    /// owner id>"`, so that a common word does not read every user's matches) and titles
    /// (`conversations_fts`) matching the query's FTS5 expression (quoted phrases,
    /// `"prefix"*`): the newest [`RANKED_CANDIDATES`] of each (by rowid, the order they were
    /// written: the index hands its entries over in that order, so a common word stops after
    /// that many instead of reading every match), ranked here by [`SearchQuery::score`], and
    /// only the page's snippets made. Not by bm25: its statistics count every user's rows,
    /// so a bm25 score (and a cursor carrying it) would tell how often other people wrote a
    /// word, and would move whenever anyone writes.
    ///
    /// [`RANKED_CANDIDATES`]: confab_core::search::RANKED_CANDIDATES
    /// [`SearchQuery::score`]: confab_core::search::SearchQuery::score
    pub(crate) async fn search_messages(
        c: &mut Conn,
        owner: &UserId,
        query: &confab_core::search::SearchQuery,
        project: Option<ProjectId>,
        after: Option<confab_core::search::SearchKey>,
        n: u32,
    ) -> Result<Vec<confab_core::search::SearchHit>, StoreError> {
        if let Some(project) = project {
            require(project_is_owned(c, owner, project).await)?;
        }
        if query.is_empty() {
            return Ok(Vec::new());
        }
        // The titles: ?1 is their expression; ?5–?7 (the cursor) are applied below, to the
        // ranked candidates. The owner filter stays: the index narrows, the row decides.
        // CROSS JOIN keeps the index the outer loop, so that its rowid order serves the
        // ORDER BY and the LIMIT stops the scan.
        const TITLES: &str = "SELECT * FROM ( \
               SELECT c.id AS conversation_id, c.project_id AS project_id, c.title AS title, \
                      NULL AS message_id, NULL AS role, c.created_at AS created_at, \
                      coalesce(c.title, '') AS text, 0.0 AS score \
               FROM conversations_fts \
                    CROSS JOIN conversations c ON c.rowid = conversations_fts.rowid \
               WHERE conversations_fts MATCH ?1 AND c.owner_id = ?3 \
                 AND (?4 IS NULL OR c.project_id = ?4) \
               ORDER BY conversations_fts.rowid DESC LIMIT ?8 + 0)";
        let candidates = confab_core::search::RANKED_CANDIDATES;
        let words = query.fts5();
        let token = super::owner_token(owner);
        let found = match owner_candidates(c, query, &token, owner, project).await? {
            Some(found) => found,
            None => {
                // A rare phrase in a long history: FTS5's own phrase query, the newest
                // candidates' texts alone, scored here; below, the whole rows of the few
                // that can reach the page.
                let owned = format!("owner : \"{token}\" AND content : ({words})");
                let texts = owner_texts(c, &owned, owner, project, None, candidates).await?;
                // FTS5's tokenizer matched each; a text the reference semantics scores
                // lower (a word split differently) still counts, last.
                texts
                    .iter()
                    .map(|row| (row.rowid, query.score(&row.text).unwrap_or(0.0)))
                    .collect()
            }
        };
        let mut rows = candidate_rows(c, found, owner, after, n).await?;
        rows.extend(search_rows(c, TITLES, &words, "", owner, project, None, candidates).await?);
        for row in &mut rows {
            // FTS5's tokenizer matched it; a text the reference semantics scores lower
            // (a word split differently) still counts, last.
            row.score = query.score(&row.text).unwrap_or(0.0);
        }
        rows.retain(|row| after.is_none_or(|cursor| row.key().is_after(&cursor)));
        rows.sort_by(|a, b| a.key().order(&b.key()));
        rows.truncate(usize::try_from(n).unwrap_or(usize::MAX));
        rows.into_iter().map(|row| row.hit(query)).collect()
    }

    /// How many batches of [`RANKED_CANDIDATES`] messages [`owner_candidates`] reads
    /// after its first look before it leaves the query to FTS5.
    ///
    /// [`RANKED_CANDIDATES`]: confab_core::search::RANKED_CANDIDATES
    const CANDIDATE_BATCHES: usize = 4;

    /// How many of the owner's newest messages [`owner_candidates`] reads first, to see
    /// whether the query's words are common.
    const CANDIDATE_PROBE: u32 = 100;

    /// The rowids and texts of the owner's newest messages that match the FTS5 expression
    /// ?1 (which names the owner's entries), in the project ?3 when given; ?4 is NULL (the
    /// next batch's statement puts a rowid there); at most ?5. The owner's entries narrow;
    /// in a project each row's conversation decides too (its owner is ?2).
    /// Without a project nothing is looked up per row: reading the conversation of each of
    /// thousands of candidates (two seeks) cost more than reading their texts, and
    /// [`candidate_rows`] checks the owner of every row that reaches the page.
    macro_rules! owner_texts_sql {
        ($below:literal) => {
            concat!(
                "SELECT messages_fts.rowid AS rowid, m.content AS text \
                 FROM messages_fts CROSS JOIN messages m ON m.rowid = messages_fts.rowid \
                 WHERE messages_fts MATCH ?1 AND (?3 IS NULL OR ?3 = \
                   (SELECT c.project_id FROM conversations c \
                    WHERE c.id = m.conversation_id AND c.owner_id = ?2)) \
                   AND ",
                $below,
                " ORDER BY messages_fts.rowid DESC LIMIT ?5 + 0"
            )
        };
    }
    const OWNER_TEXTS: &str = owner_texts_sql!("?4 IS NULL");

    /// The same below the rowid ?4 (a plain constraint on the rowid, so that FTS5 starts its
    /// rowid-descending scan there): the next batch.
    const OWNER_TEXTS_BELOW: &str = owner_texts_sql!("messages_fts.rowid < ?4");

    /// At most `size` of the owner's newest messages matching `expression` (FTS5, naming
    /// the owner's entries), below the rowid `below` when given: their rowids and texts.
    async fn owner_texts(
        c: &mut Conn,
        expression: &str,
        owner: &UserId,
        project: Option<ProjectId>,
        below: Option<i64>,
        size: u32,
    ) -> Result<Vec<CandidateText>, StoreError> {
        use diesel::sql_types::{BigInt, Nullable, Text};

        diesel::sql_query(if below.is_some() {
            OWNER_TEXTS_BELOW
        } else {
            OWNER_TEXTS
        })
        .bind::<Text, _>(expression)
        .bind::<Text, _>(owner.as_str())
        .bind::<Nullable<crate::types::Id>, _>(project.map(|p| p.db()))
        .bind::<Nullable<BigInt>, _>(below)
        .bind::<BigInt, _>(i64::from(size))
        .load(c)
        .await
        .map_err(translate)
    }

    /// A candidate message: only what deciding whether it matches needs (the text) and
    /// what finds it again (the rowid). Reading thousands of whole
    /// result rows cost more than SQLite's own work: every column copied out of the
    /// statement and each looked up by name.
    #[derive(diesel::QueryableByName)]
    struct CandidateText {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        rowid: i64,
        #[diesel(sql_type = diesel::sql_types::Text)]
        text: String,
    }

    /// The owner's newest [`RANKED_CANDIDATES`] messages that match the query (its
    /// phrases, its prefix: the same rows FTS5's query gives), as their rowids and
    /// [`SearchQuery::score`]s, found without FTS5's phrase query, and
    /// without making FTS5 step through the entries of common words: the owner's newest
    /// [`CANDIDATE_PROBE`] messages are read (the owner's entries alone, `owner : "<hex>"`),
    /// and [`SearchQuery::score`] keeps those that match (after folding, as the index
    /// folds). When at least one in eight of them has every word of the query
    /// ([`SearchQuery::has_words`]: common words, e.g. `the`, `"of the"`, `th`), the owner's
    /// messages are read on, newest first, a batch at a time: asking FTS5 for the ones with
    /// the words would cost more than reading them all, as it steps backwards (newest
    /// first) through each common word's entry list — every user's — one entry at a time.
    /// Otherwise (telling words) the index is asked for the owner's messages that have
    /// every word ([`SearchQuery::fts5_words`]: few, found by seeking). FTS5 itself would
    /// check a phrase's positions in every row that has its words, whoever wrote it.
    /// `None` when [`CANDIDATE_BATCHES`] batches did not reach the end or enough matches (a
    /// rare phrase in a long history): the caller asks FTS5. [`candidate_rows`] reads the
    /// rest of the few that can reach the page.
    ///
    /// [`RANKED_CANDIDATES`]: confab_core::search::RANKED_CANDIDATES
    /// [`SearchQuery::fts5_words`]: confab_core::search::SearchQuery::fts5_words
    /// [`SearchQuery::has_words`]: confab_core::search::SearchQuery::has_words
    /// [`SearchQuery::score`]: confab_core::search::SearchQuery::score
    async fn owner_candidates(
        c: &mut Conn,
        query: &confab_core::search::SearchQuery,
        token: &str,
        owner: &UserId,
        project: Option<ProjectId>,
    ) -> Result<Option<Vec<(i64, f64)>>, StoreError> {
        let candidates = confab_core::search::RANKED_CANDIDATES;
        let wanted = usize::try_from(candidates).unwrap_or(usize::MAX);
        let owners = format!("owner : \"{token}\"");
        let mut kept = Vec::new();
        let mut last: Option<i64> = None;
        let mut expression = owners.clone();
        let mut size = CANDIDATE_PROBE;
        let mut read_in_all = 0;
        for batch in 0..=CANDIDATE_BATCHES {
            let rows = owner_texts(c, &expression, owner, project, last, size).await?;
            let read = rows.len();
            read_in_all += read;
            last = rows.last().map(|row| row.rowid);
            let mut with_words = 0;
            for row in &rows {
                match query.score(&row.text) {
                    Some(score) => {
                        kept.push((row.rowid, score));
                        with_words += 1;
                    }
                    // A text that matches has the words; only a phrase's may be apart.
                    None if batch == 0 && query.has_phrase() && query.has_words(&row.text) => {
                        with_words += 1;
                    }
                    None => {}
                }
            }
            if batch == 0 && with_words * 8 < read {
                expression = format!("{owners} AND content : ({})", query.fts5_words());
            }
            let full = usize::try_from(size).unwrap_or(usize::MAX);
            if kept.len() >= wanted || read < full || last.is_none() {
                kept.truncate(wanted);
                return Ok(Some(kept));
            }
            size = next_batch(wanted - kept.len(), read_in_all, kept.len(), candidates);
        }
        Ok(None)
    }

    /// How many messages [`owner_candidates`] reads next to find `needed` more matches,
    /// having found `matched` in `read`: at the rate so far, a quarter more and 16, never
    /// more than a full batch (`most`), so that what is read before FTS5 is asked stays
    /// bounded. A common word (`the`: three in four match) reads about what it needs
    /// instead of whole batches past it.
    pub(super) fn next_batch(needed: usize, read: usize, matched: usize, most: u32) -> u32 {
        let rows = needed.saturating_mul(read) / matched.max(1);
        let rows = rows.saturating_add(rows / 4).saturating_add(16);
        u32::try_from(rows).map_or(most, |rows| rows.min(most))
    }

    /// The whole rows of the messages of [`owner_candidates`] (rowid, score) that can
    /// reach a page of `n` after the cursor `after`: those with a better score than the
    /// cursor's are before it; those with the cursor's score are read (the cursor's time
    /// and id decide); of the rest, those below the `n`-th best score cannot reach the
    /// page (`n` others are ahead of each). Titles are merged in by the caller.
    async fn candidate_rows(
        c: &mut Conn,
        found: Vec<(i64, f64)>,
        owner: &UserId,
        after: Option<confab_core::search::SearchKey>,
        n: u32,
    ) -> Result<Vec<crate::rows::SearchRow>, StoreError> {
        use diesel::sql_types::Text;

        const ROWS: &str = "SELECT c.id AS conversation_id, c.project_id AS project_id, \
                    c.title AS title, m.id AS message_id, m.role AS role, \
                    m.created_at AS created_at, m.content AS text, 0.0 AS score \
             FROM messages m CROSS JOIN conversations c ON c.id = m.conversation_id \
             WHERE m.rowid IN (SELECT value FROM json_each(?1)) AND c.owner_id = ?2";
        let n = usize::try_from(n).unwrap_or(usize::MAX);
        type Found = Vec<(i64, f64)>;
        let (mut read, mut rest): (Found, Found) = match after {
            Some(cursor) => found
                .into_iter()
                .filter(|(_, score)| *score <= cursor.score)
                .partition(|(_, score)| *score == cursor.score),
            None => (Vec::new(), found),
        };
        if n == 0 {
            return Ok(Vec::new());
        }
        if rest.len() > n {
            let (_, nth, _) = rest.select_nth_unstable_by(n - 1, |a, b| b.1.total_cmp(&a.1));
            let floor = nth.1;
            rest.retain(|(_, score)| *score >= floor);
        }
        read.extend(rest);
        if read.is_empty() {
            return Ok(Vec::new());
        }
        let rowids = serde_json::to_string(&read.iter().map(|(id, _)| id).collect::<Vec<_>>())
            .map_err(|e| StoreError::Internal(e.to_string()))?;
        diesel::sql_query(ROWS)
            .bind::<Text, _>(rowids)
            .bind::<Text, _>(owner.as_str())
            .load(c)
            .await
            .map_err(translate)
    }
}

/// The owner's token in SQLite's `messages_fts` (`owner` column): the hex of the owner id's
/// bytes, as the triggers write it with `hex()` (FTS5 folds case), one word of letters and
/// digits whatever the id holds.
fn owner_token(owner: &confab_core::ids::UserId) -> String {
    use std::fmt::Write as _;
    owner.as_str().bytes().fold(String::new(), |mut out, b| {
        let _ = write!(out, "{b:02X}");
        out
    })
}

#[cfg(test)]
mod tests {
    use confab_core::model::MessageStatus;

    #[test]
    fn the_owner_token_is_the_hex_of_the_id() {
        let owner = confab_core::ids::UserId::new("dev:a").unwrap();
        assert_eq!(super::owner_token(&owner), "6465763A61");
    }

    #[test]
    fn a_batch_asks_for_what_is_still_needed_at_the_rate_matched_never_more_than_a_batch() {
        use super::sqlite::next_batch;
        // Three in four matched: 88 more need about 117 rows; a quarter more and 16.
        assert_eq!(next_batch(88, 1_000, 750, 1_000), 162);
        // Few matched so far, or none: a whole batch, never more.
        assert_eq!(next_batch(900, 100, 1, 1_000), 1_000);
        assert_eq!(next_batch(1_000, 100, 0, 1_000), 1_000);
        assert_eq!(next_batch(usize::MAX, usize::MAX, 1, 1_000), 1_000);
    }

    #[test]
    fn the_ready_literal_is_the_ready_status() {
        let ready = confab_core::model::TextStatus::Ready.as_str();
        assert_eq!(crate::literal::Ready::SQL, format!("'{ready}'"));
    }

    #[test]
    fn the_streaming_literal_is_the_streaming_status() {
        assert_eq!(MessageStatus::Streaming.as_str(), "streaming");
    }
}
