//! `SqlStore`: one pool, one backend, every storage port.

use std::fmt;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use confab_core::accounts::{
    Account, AccountStore, EventRetention, Failures, FailuresStep, Link, LinkKind, Rotated,
    Rotation, SecurityEvent, Session,
};
use confab_core::error::StoreError;
use confab_core::ids::{ConversationId, FileId, MessageId, ProjectId, PromptId, ShareId, UserId};
use confab_core::knowledge::KnowledgeHit;
use confab_core::model::{
    Conversation, FileMeta, Message, NewPrompt, Project, ProjectPatch, Prompt, TextOutcome,
    Timestamp,
};
use confab_core::ports::{
    Branch, ChatHistory, FileStore, FinishOutcome, KnowledgeIndex, MessageSearch, NewTurn,
    ProjectStore, PromptStore, Turn,
};
use confab_core::search::{SearchHit, SearchKey, SearchQuery};
use confab_core::shares::{NewShare, Share, ShareStore, Snapshot};
use confab_core::transfer::{ImportOutcome, ImportStore, NewImport};
use confab_core::usage::{
    GroupBy, NaiveDate, QuotaOverride, QuotaState, UsageEntry, UsageLedger, UsageRow, UserUsage,
};
use diesel::SqliteConnection;
use diesel_async::pooled_connection::deadpool::Pool;
use uuid::Uuid;

use crate::batch::{self, Batcher, Op};
use crate::connect::{self, Checkpointer, PoolOptions, SqliteConn, Target, ThreadPools};
use crate::detach::{Attach, Detach};
use crate::error::{SqlError, pool_error};
use crate::{accounts, imports, queries, shares, usage};

/// Every storage port over PostgreSQL or SQLite. Cloning is cheap (the clones share one
/// pool), so one store can be handed out as `Arc<dyn ProjectStore>`, `Arc<dyn ChatHistory>`, …
#[derive(Clone)]
pub struct SqlStore {
    inner: Arc<Inner>,
}

struct Inner {
    backend: Backend,
    /// Test support: dropped after the pool, removes the store's private database.
    #[cfg(feature = "test-support")]
    _cleanup: Option<Box<dyn Send + Sync>>,
}

/// How a SQLite file is written.
struct FileWrites {
    /// Every write, committed in batches on the one connection that writes (`batch`).
    /// SQLite lets one connection write at a time; one that finds the lock taken sleeps in
    /// its busy handler (1, 2, 5, 10 ms …) and tries again, so under concurrent writes a
    /// send's turn waited milliseconds for a lock free after microseconds. Writes now queue
    /// here and find the lock free (only another process can still make one wait); a write a
    /// user waits on (a send's turn) goes before the background writes queued (a thousand
    /// streaming replies' renewals and final writes: at 1,000 streams a turn waited 30–70 ms
    /// for them, docs/benchmarks.md), and shares a commit with the batch it joins.
    writes: Arc<Batcher>,
    /// Checkpoints the log in the background.
    _checkpointer: Checkpointer,
}

enum Backend {
    /// Boxed: a `ThreadLocal` is a few hundred bytes of bucket pointers.
    Postgres(Box<ThreadPools>),
    Sqlite {
        pool: Pool<SqliteConn>,
        /// A file database's writer and checkpoints; `None` for `sqlite::memory:`, whose
        /// pool is a single connection already.
        file: Option<FileWrites>,
        url: String,
        /// For `sqlite::memory:`: a connection outside the pool that keeps the shared
        /// in-memory database alive even when the pool replaces its connection.
        keeper: Option<Arc<Mutex<SqliteConnection>>>,
    },
}

impl fmt::Debug for SqlStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqlStore")
            .field("backend", &self.backend())
            .finish_non_exhaustive()
    }
}

/// Opens the database named by `url`, checks that it answers and applies the pending
/// migrations. `url` is `sqlite://relative/path.db` (its folder is created),
/// `sqlite:///abs/path.db`, `sqlite::memory:`, or `postgres://…` / `postgresql://…`.
///
/// # Errors
/// `UnsupportedUrl` for any other URL; `Connect` when the database cannot be reached;
/// `Migration` when a migration fails.
pub async fn connect(url: &str, opts: PoolOptions) -> Result<SqlStore, SqlError> {
    let store = SqlStore::open(url, opts).await?;
    store.run_migrations().await?;
    Ok(store)
}

/// Runs one operation of `queries::pg` or `queries::sqlite` on a connection of the pool,
/// `read`, `write` or `background` (on a SQLite file every write is committed in batches on
/// the writer connection, `FileWrites::writes`; a background write — nobody waits on it for
/// long — waits for others to join it, a write goes first). On SQLite the
/// operation runs whole on one blocking thread, with owned arguments (see `detach`), its
/// statements one after the other on that thread ([`connect::Inline`]): one thread hop per
/// operation, where diesel-async's wrapper took one per statement.
macro_rules! on_conn {
    ($store:expr, read $op:ident ( $($arg:ident),* $(,)? )) => {
        on_conn!(@run queries, $store, false, $op($($arg),*))
    };
    ($store:expr, write $op:ident ( $($arg:ident),* $(,)? )) => {
        on_conn!(@run queries, $store, true, $op($($arg),*))
    };
    ($store:expr, background $op:ident ( $($arg:ident),* $(,)? )) => {
        on_conn!(@run queries, $store, true, background, $op($($arg),*))
    };
    (@run $module:ident, $store:expr, $writes:expr, $op:ident ( $($arg:ident),* $(,)? )) => {
        on_conn!(@run $module, $store, $writes, foreground, $op($($arg),*))
    };
    (@run $module:ident, $store:expr, $writes:expr, $kind:ident, $op:ident ( $($arg:ident),* $(,)? )) => {
        match &$store.inner.backend {
            Backend::Postgres(pools) => {
                let pool = pools
                    .get()
                    .map_err(|e| StoreError::Internal(e.to_string()))?;
                let mut conn = pool.get().await.map_err(pool_error)?;
                $module::pg::$op(&mut conn, $($arg),*).await
            }
            Backend::Sqlite { pool, file, .. } => {
                // Shared by every run of the operation (a batch may run a write twice).
                let args = std::sync::Arc::new(($( Detach::detach(&$arg), )*));
                let op = batch::op(move |c| {
                    let args = std::sync::Arc::clone(&args);
                    Box::pin(async move {
                        #[allow(unused_variables)]
                        let ($($arg,)*) = &*args;
                        $module::sqlite::$op(c, $(Attach::attach($arg)),*).await
                    })
                });
                match file {
                    Some(file) if $writes => on_conn!(@sqlite $kind, file, op),
                    _ => on_sqlite(pool, op).await,
                }
            }
        }
    };
    (@sqlite foreground, $file:expr, $op:expr) => {
        $file.writes.run($op, true).await
    };
    (@sqlite background, $file:expr, $op:expr) => {
        $file.writes.run($op, false).await
    };
}

/// [`on_conn!`] for the operations of [`accounts`](crate::accounts).
macro_rules! on_accounts {
    ($store:expr, read $op:ident ( $($arg:ident),* $(,)? )) => {
        on_conn!(@run accounts, $store, false, $op($($arg),*))
    };
    ($store:expr, write $op:ident ( $($arg:ident),* $(,)? )) => {
        on_conn!(@run accounts, $store, true, $op($($arg),*))
    };
}

/// [`on_conn!`] for the operations of [`usage`](crate::usage).
macro_rules! on_usage {
    ($store:expr, read $op:ident ( $($arg:ident),* $(,)? )) => {
        on_conn!(@run usage, $store, false, $op($($arg),*))
    };
    ($store:expr, background $op:ident ( $($arg:ident),* $(,)? )) => {
        on_conn!(@run usage, $store, true, background, $op($($arg),*))
    };
    ($store:expr, write $op:ident ( $($arg:ident),* $(,)? )) => {
        on_conn!(@run usage, $store, true, $op($($arg),*))
    };
}

/// [`on_conn!`] for the operations of [`shares`](crate::shares).
macro_rules! on_shares {
    ($store:expr, read $op:ident ( $($arg:ident),* $(,)? )) => {
        on_conn!(@run shares, $store, false, $op($($arg),*))
    };
    ($store:expr, write $op:ident ( $($arg:ident),* $(,)? )) => {
        on_conn!(@run shares, $store, true, $op($($arg),*))
    };
}

/// [`on_conn!`] for the operations of [`imports`](crate::imports).
macro_rules! on_imports {
    ($store:expr, write $op:ident ( $($arg:ident),* $(,)? )) => {
        on_conn!(@run imports, $store, true, $op($($arg),*))
    };
}

/// Runs `op` on a connection of `pool`, on a blocking thread.
async fn on_sqlite<T: Send + 'static>(pool: &Pool<SqliteConn>, op: Op<T>) -> Result<T, StoreError> {
    let mut conn = pool.get().await.map_err(pool_error)?;
    on_blocking_thread(move |runtime| runtime.block_on(op(&mut conn))).await
}

/// Runs `work` on a blocking thread, given the caller's runtime to wait on the operation's
/// futures with (they are ready at once but for a retry's back-off). Dropping the caller's
/// future does not stop it: a write is committed or rolled back whole, and the connection
/// goes back to the pool clean.
async fn on_blocking_thread<T: Send + 'static>(
    work: impl FnOnce(&tokio::runtime::Handle) -> Result<T, StoreError> + Send + 'static,
) -> Result<T, StoreError> {
    let runtime = tokio::runtime::Handle::current();
    tokio::task::spawn_blocking(move || work(&runtime))
        .await
        .map_err(|e| StoreError::Internal(format!("a storage task failed: {e}")))?
}

impl SqlStore {
    /// Like [`connect`], without applying migrations: builds the pool and checks that the
    /// database answers.
    ///
    /// # Errors
    /// As [`connect`], except `Migration`.
    pub async fn open(url: &str, opts: PoolOptions) -> Result<Self, SqlError> {
        let backend = match Target::parse(url)? {
            Target::Postgres(url) => {
                let pools = ThreadPools::new(url, &opts);
                connect::check(pools.get()?).await?;
                Backend::Postgres(Box::new(pools))
            }
            Target::SqliteFile(path) => {
                connect::create_parent(&path)?;
                let url = path.to_str().ok_or(SqlError::UnsupportedUrl)?.to_owned();
                let pool = connect::sqlite_pool(&url, &opts, true)?;
                connect::check(&pool).await?;
                let writer = connect::sqlite_pool(
                    &url,
                    &PoolOptions {
                        max_size: 1,
                        ..opts
                    },
                    true,
                )?;
                Backend::Sqlite {
                    pool,
                    file: Some(FileWrites {
                        writes: Batcher::new(writer),
                        _checkpointer: Checkpointer::start(&url),
                    }),
                    url,
                    keeper: None,
                }
            }
            Target::SqliteMemory => {
                let url = connect::memory_database_name();
                let keeper = Arc::new(Mutex::new(connect::open_sqlite(&url, false, None)?));
                let pool = connect::sqlite_pool(&url, &opts, false)?;
                connect::check(&pool).await?;
                Backend::Sqlite {
                    pool,
                    file: None,
                    url,
                    keeper: Some(keeper),
                }
            }
        };
        Ok(Self {
            inner: Arc::new(Inner {
                backend,
                #[cfg(feature = "test-support")]
                _cleanup: None,
            }),
        })
    }

    /// Applies the embedded migrations that have not been applied yet (`migrations/postgres`
    /// or `migrations/sqlite`). Safe to call again, and from several processes at once on
    /// PostgreSQL (they take turns on an advisory lock).
    ///
    /// # Errors
    /// `Connect` when the database cannot be reached, `Migration` when a migration fails.
    pub async fn run_migrations(&self) -> Result<(), SqlError> {
        match &self.inner.backend {
            Backend::Postgres(pools) => connect::migrate_postgres(pools.url()).await,
            Backend::Sqlite { url, keeper, .. } => {
                connect::migrate_sqlite(url, keeper.clone()).await
            }
        }
    }

    /// `"postgres"` or `"sqlite"`, for logs.
    #[must_use]
    pub fn backend(&self) -> &'static str {
        match self.inner.backend {
            Backend::Postgres(_) => "postgres",
            Backend::Sqlite { .. } => "sqlite",
        }
    }

    /// Attaches a value that is dropped after the pool, when the last clone of the store
    /// goes: test databases remove themselves this way.
    #[cfg(feature = "test-support")]
    pub(crate) fn with_cleanup(self, cleanup: Box<dyn Send + Sync>) -> Result<Self, Self> {
        match Arc::try_unwrap(self.inner) {
            Ok(mut inner) => {
                inner._cleanup = Some(cleanup);
                Ok(Self {
                    inner: Arc::new(inner),
                })
            }
            Err(inner) => Err(Self { inner }),
        }
    }
}

#[async_trait]
impl ProjectStore for SqlStore {
    async fn insert_project(&self, project: &Project) -> Result<(), StoreError> {
        on_conn!(self, write insert_project(project))
    }

    async fn get_project(&self, owner: &UserId, id: ProjectId) -> Result<Project, StoreError> {
        on_conn!(self, read get_project(owner, id))
    }

    async fn list_projects(
        &self,
        owner: &UserId,
        after: Option<ProjectId>,
        limit: u32,
    ) -> Result<Vec<Project>, StoreError> {
        on_conn!(self, read list_projects(owner, after, limit))
    }

    async fn update_project(
        &self,
        owner: &UserId,
        id: ProjectId,
        patch: &ProjectPatch,
        now: Timestamp,
    ) -> Result<Project, StoreError> {
        on_conn!(self, write update_project(owner, id, patch, now))
    }

    async fn delete_project(
        &self,
        owner: &UserId,
        id: ProjectId,
    ) -> Result<Vec<String>, StoreError> {
        on_conn!(self, write delete_project(owner, id))
    }

    async fn ping(&self) -> Result<(), StoreError> {
        on_conn!(self, read ping())
    }
}

#[async_trait]
impl PromptStore for SqlStore {
    async fn create_prompt(
        &self,
        owner: &UserId,
        prompt: &NewPrompt,
    ) -> Result<Prompt, StoreError> {
        on_conn!(self, write create_prompt(owner, prompt))
    }

    async fn list_prompts(
        &self,
        owner: &UserId,
        project_id: ProjectId,
        before_version: Option<i32>,
        limit: u32,
    ) -> Result<Vec<Prompt>, StoreError> {
        on_conn!(self, read list_prompts(owner, project_id, before_version, limit))
    }

    async fn active_prompt(
        &self,
        owner: &UserId,
        project_id: ProjectId,
    ) -> Result<Option<Prompt>, StoreError> {
        on_conn!(self, read active_prompt(owner, project_id))
    }

    async fn conversation_prompt(
        &self,
        owner: &UserId,
        conversation_id: ConversationId,
    ) -> Result<Option<Prompt>, StoreError> {
        on_conn!(self, read conversation_prompt(owner, conversation_id))
    }

    async fn activate_prompt(
        &self,
        owner: &UserId,
        project_id: ProjectId,
        prompt_id: PromptId,
    ) -> Result<Prompt, StoreError> {
        on_conn!(self, write activate_prompt(owner, project_id, prompt_id))
    }
}

#[async_trait]
impl ChatHistory for SqlStore {
    async fn insert_conversation(&self, conversation: &Conversation) -> Result<(), StoreError> {
        on_conn!(self, write insert_conversation(conversation))
    }

    async fn get_conversation(
        &self,
        owner: &UserId,
        id: ConversationId,
    ) -> Result<Conversation, StoreError> {
        on_conn!(self, read get_conversation(owner, id))
    }

    async fn list_conversations(
        &self,
        owner: &UserId,
        project_id: ProjectId,
        after: Option<(Timestamp, ConversationId)>,
        limit: u32,
    ) -> Result<Vec<Conversation>, StoreError> {
        on_conn!(self, read list_conversations(owner, project_id, after, limit))
    }

    async fn rename_conversation(
        &self,
        owner: &UserId,
        id: ConversationId,
        title: Option<String>,
        now: Timestamp,
    ) -> Result<Conversation, StoreError> {
        on_conn!(self, write rename_conversation(owner, id, title, now))
    }

    async fn set_conversation_model(
        &self,
        owner: &UserId,
        id: ConversationId,
        model: Option<String>,
    ) -> Result<Conversation, StoreError> {
        on_conn!(self, write set_conversation_model(owner, id, model))
    }

    async fn set_title_if_empty(
        &self,
        id: ConversationId,
        title: &str,
    ) -> Result<bool, StoreError> {
        on_conn!(self, background set_title_if_empty(id, title))
    }

    async fn delete_conversation(
        &self,
        owner: &UserId,
        id: ConversationId,
    ) -> Result<(), StoreError> {
        on_conn!(self, write delete_conversation(owner, id))
    }

    async fn list_messages(
        &self,
        owner: &UserId,
        conversation_id: ConversationId,
        after: Option<MessageId>,
        limit: u32,
    ) -> Result<Vec<Message>, StoreError> {
        on_conn!(self, read list_messages(owner, conversation_id, after, limit))
    }

    async fn latest_reply(
        &self,
        owner: &UserId,
        conversation_id: ConversationId,
    ) -> Result<Option<Message>, StoreError> {
        on_conn!(self, read latest_reply(owner, conversation_id))
    }

    async fn check_turn(
        &self,
        owner: &UserId,
        conversation_id: ConversationId,
        client_message_id: Option<Uuid>,
        file_ids: &[FileId],
        stale_before: Timestamp,
    ) -> Result<(), StoreError> {
        on_conn!(
            self,
            read check_turn(owner, conversation_id, client_message_id, file_ids, stale_before)
        )
    }

    async fn begin_turn(
        &self,
        owner: &UserId,
        turn: &NewTurn,
        stale_before: Timestamp,
        history_limit: u32,
    ) -> Result<Turn, StoreError> {
        on_conn!(
            self,
            write begin_turn(owner, turn, stale_before, history_limit)
        )
    }

    async fn get_message(&self, owner: &UserId, id: MessageId) -> Result<Message, StoreError> {
        on_conn!(self, read get_message(owner, id))
    }

    async fn list_branch(
        &self,
        owner: &UserId,
        conversation_id: ConversationId,
        leaf: Option<MessageId>,
        after: Option<MessageId>,
        limit: u32,
    ) -> Result<Branch, StoreError> {
        on_conn!(self, read list_branch(owner, conversation_id, leaf, after, limit))
    }

    async fn conversation_revision(
        &self,
        owner: &UserId,
        conversation_id: ConversationId,
    ) -> Result<i64, StoreError> {
        on_conn!(self, read conversation_revision(owner, conversation_id))
    }

    async fn choose_leaf(
        &self,
        owner: &UserId,
        conversation_id: ConversationId,
        message: MessageId,
    ) -> Result<Conversation, StoreError> {
        on_conn!(self, write choose_leaf(owner, conversation_id, message))
    }

    async fn touch_reply(
        &self,
        id: MessageId,
        content: &str,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        on_conn!(self, background touch_reply(id, content, now))
    }

    async fn finish_reply(
        &self,
        reply: &Message,
        now: Timestamp,
    ) -> Result<FinishOutcome, StoreError> {
        on_conn!(self, background finish_reply(reply, now))
    }

    async fn fail_stale_replies(&self, stale_before: Timestamp) -> Result<u64, StoreError> {
        on_conn!(self, background fail_stale_replies(stale_before))
    }
}

#[async_trait]
impl MessageSearch for SqlStore {
    async fn search_messages(
        &self,
        owner: &UserId,
        query: &SearchQuery,
        project: Option<ProjectId>,
        after: Option<SearchKey>,
        limit: u32,
    ) -> Result<Vec<SearchHit>, StoreError> {
        on_conn!(self, read search_messages(owner, query, project, after, limit))
    }
}

#[async_trait]
impl KnowledgeIndex for SqlStore {
    async fn search(
        &self,
        owner: &UserId,
        project_id: ProjectId,
        query: &str,
        limit: u32,
    ) -> Result<Vec<KnowledgeHit>, StoreError> {
        on_conn!(self, read search(owner, project_id, query, limit))
    }

    async fn search_conversation(
        &self,
        owner: &UserId,
        conversation_id: ConversationId,
        query: &str,
        limit: u32,
    ) -> Result<Vec<KnowledgeHit>, StoreError> {
        on_conn!(self, read search_conversation(owner, conversation_id, query, limit))
    }
}

#[async_trait]
impl FileStore for SqlStore {
    async fn insert_file(&self, file: &FileMeta) -> Result<(), StoreError> {
        on_conn!(self, write insert_file(file))
    }

    async fn get_file(&self, owner: &UserId, id: FileId) -> Result<FileMeta, StoreError> {
        on_conn!(self, read get_file(owner, id))
    }

    async fn list_files(
        &self,
        owner: &UserId,
        project_id: ProjectId,
        after: Option<FileId>,
        limit: u32,
    ) -> Result<Vec<FileMeta>, StoreError> {
        on_conn!(self, read list_files(owner, project_id, after, limit))
    }

    async fn delete_file(&self, owner: &UserId, id: FileId) -> Result<FileMeta, StoreError> {
        on_conn!(self, write delete_file(owner, id))
    }

    async fn set_file_text(&self, id: FileId, outcome: &TextOutcome) -> Result<(), StoreError> {
        on_conn!(self, background set_file_text(id, outcome))
    }

    async fn get_file_text(
        &self,
        owner: &UserId,
        id: FileId,
    ) -> Result<Option<String>, StoreError> {
        on_conn!(self, read get_file_text(owner, id))
    }

    async fn extracted_twin(&self, file: &FileMeta) -> Result<Option<TextOutcome>, StoreError> {
        on_conn!(self, read extracted_twin(file))
    }

    async fn pending_files(
        &self,
        after: Option<FileId>,
        limit: u32,
    ) -> Result<Vec<FileMeta>, StoreError> {
        on_conn!(self, read pending_files(after, limit))
    }
}

#[async_trait]
impl AccountStore for SqlStore {
    async fn create_account(&self, account: &Account) -> Result<Account, StoreError> {
        on_accounts!(self, write create_account(account))
    }

    async fn create_first_account(&self, account: &Account) -> Result<Option<Account>, StoreError> {
        on_accounts!(self, write create_first_account(account))
    }

    async fn count_accounts(&self) -> Result<u64, StoreError> {
        on_accounts!(self, read count_accounts())
    }

    async fn find_account(&self, login: &str) -> Result<Option<Account>, StoreError> {
        on_accounts!(self, read find_account(login))
    }

    async fn get_account(&self, id: Uuid) -> Result<Option<Account>, StoreError> {
        on_accounts!(self, read get_account(id))
    }

    async fn set_password(&self, id: Uuid, hash: &str, now: Timestamp) -> Result<(), StoreError> {
        on_accounts!(self, write set_password(id, hash, now))
    }

    async fn delete_account(&self, id: Uuid) -> Result<(), StoreError> {
        on_accounts!(self, write delete_account(id))
    }

    async fn insert_session(&self, session: &Session) -> Result<(), StoreError> {
        on_accounts!(self, write insert_session(session))
    }

    async fn get_session(&self, id: Uuid) -> Result<Option<Session>, StoreError> {
        on_accounts!(self, read get_session(id))
    }

    async fn revoke_session(&self, id: Uuid, now: Timestamp) -> Result<(), StoreError> {
        on_accounts!(self, write revoke_session(id, now))
    }

    async fn revoke_sessions(&self, account_id: Uuid, now: Timestamp) -> Result<(), StoreError> {
        on_accounts!(self, write revoke_sessions(account_id, now))
    }

    async fn rotate_refresh(&self, rotation: &Rotation) -> Result<Rotated, StoreError> {
        on_accounts!(self, write rotate_refresh(rotation))
    }

    async fn list_sessions(
        &self,
        account_id: Uuid,
        now: Timestamp,
        idle_since: Timestamp,
    ) -> Result<Vec<Session>, StoreError> {
        on_accounts!(self, read list_sessions(account_id, now, idle_since))
    }

    async fn revoke_own_session(
        &self,
        account_id: Uuid,
        id: Uuid,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        on_accounts!(self, write revoke_own_session(account_id, id, now))
    }

    async fn record_event(
        &self,
        event: &SecurityEvent,
        retention: EventRetention,
    ) -> Result<(), StoreError> {
        on_accounts!(self, write record_event(event, retention))
    }

    async fn list_events(&self, account_id: Uuid) -> Result<Vec<SecurityEvent>, StoreError> {
        on_accounts!(self, read list_events(account_id))
    }

    async fn mark_events_read(&self, account_id: Uuid, now: Timestamp) -> Result<u64, StoreError> {
        on_accounts!(self, write mark_events_read(account_id, now))
    }

    async fn insert_link(&self, link: &Link) -> Result<(), StoreError> {
        on_accounts!(self, write insert_link(link))
    }

    async fn take_link(
        &self,
        kind: LinkKind,
        token_hash: &str,
        now: Timestamp,
    ) -> Result<Option<Link>, StoreError> {
        on_accounts!(self, write take_link(kind, token_hash, now))
    }

    async fn release_link(&self, kind: LinkKind, token_hash: &str) -> Result<(), StoreError> {
        on_accounts!(self, write release_link(kind, token_hash))
    }

    async fn update_failures(
        &self,
        keys: &[String],
        now: Timestamp,
        step: FailuresStep,
    ) -> Result<Vec<Option<Failures>>, StoreError> {
        on_accounts!(self, write update_failures(keys, now, step))
    }

    async fn forget_failures(&self, before: Timestamp) -> Result<u64, StoreError> {
        on_accounts!(self, write forget_failures(before))
    }

    async fn revoke_browser_session(
        &self,
        id: Uuid,
        expires_at: Timestamp,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        on_accounts!(self, write revoke_browser_session(id, expires_at, now))
    }

    async fn browser_session_revoked(&self, id: Uuid, now: Timestamp) -> Result<bool, StoreError> {
        on_accounts!(self, read browser_session_revoked(id, now))
    }
}

#[async_trait]
impl UsageLedger for SqlStore {
    async fn record(&self, entry: &UsageEntry) -> Result<(), StoreError> {
        on_usage!(self, background record(entry))
    }

    async fn quota_state(&self, user: &UserId, day: NaiveDate) -> Result<QuotaState, StoreError> {
        on_usage!(self, read quota_state(user, day))
    }

    async fn quota(&self, user: &UserId) -> Result<QuotaOverride, StoreError> {
        on_usage!(self, read quota(user))
    }

    async fn set_quota(&self, user: &UserId, quota: &QuotaOverride) -> Result<(), StoreError> {
        on_usage!(self, write set_quota(user, quota))
    }

    async fn summary(
        &self,
        user: Option<&UserId>,
        from: NaiveDate,
        to: NaiveDate,
        group_by: GroupBy,
    ) -> Result<Vec<UsageRow>, StoreError> {
        let user = user.cloned();
        on_usage!(self, read summary(user, from, to, group_by))
    }

    async fn users(&self, day: NaiveDate) -> Result<Vec<UserUsage>, StoreError> {
        on_usage!(self, read users(day))
    }
}

#[async_trait]
impl ShareStore for SqlStore {
    async fn create_share(&self, share: &NewShare) -> Result<Share, StoreError> {
        on_shares!(self, write create_share(share))
    }

    async fn list_shares(
        &self,
        owner: &UserId,
        conversation_id: ConversationId,
    ) -> Result<Vec<Share>, StoreError> {
        on_shares!(self, read list_shares(owner, conversation_id))
    }

    async fn revoke_share(
        &self,
        owner: &UserId,
        id: ShareId,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        on_shares!(self, write revoke_share(owner, id, now))
    }

    async fn shared_snapshot(&self, token_hash: &str) -> Result<Option<Snapshot>, StoreError> {
        on_shares!(self, read shared_snapshot(token_hash))
    }
}

#[async_trait]
impl ImportStore for SqlStore {
    async fn import_conversation(&self, import: &NewImport) -> Result<ImportOutcome, StoreError> {
        on_imports!(self, write import_conversation(import))
    }
}
