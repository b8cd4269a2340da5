//! Turning a `DATABASE_URL` into pools, and applying the embedded migrations.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use deadpool::managed::QueueMode;
use diesel::connection::AnsiTransactionManager;
use diesel::connection::SimpleConnection;
use diesel::{ConnectionError, SqliteConnection};
use diesel_async::TransactionManager as _;
use diesel_async::async_connection_wrapper::AsyncConnectionWrapper;
use diesel_async::pooled_connection::deadpool::Pool;
use diesel_async::pooled_connection::{
    AsyncDieselConnectionManager, ManagerConfig, RecyclingMethod,
};
use diesel_async::sync_connection_wrapper::{
    SpawnBlocking, SyncConnectionWrapper, SyncTransactionManagerWrapper,
};
use diesel_async::{AsyncConnection, AsyncPgConnection, SimpleAsyncConnection as _};
use diesel_migrations::{EmbeddedMigrations, MigrationHarness as _, embed_migrations};
use futures::future::BoxFuture;
use thread_local::ThreadLocal;

use crate::error::SqlError;

/// The PostgreSQL migrations (`migrations/postgres`), compiled into the binary.
pub const POSTGRES_MIGRATIONS: EmbeddedMigrations = embed_migrations!("../../migrations/postgres");
/// The SQLite migrations (`migrations/sqlite`), compiled into the binary.
pub const SQLITE_MIGRATIONS: EmbeddedMigrations = embed_migrations!("../../migrations/sqlite");

/// How long a SQLite connection waits for another connection's write lock before it
/// reports the database as busy.
pub const SQLITE_BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// A pooled SQLite connection. Its statements run on the thread that polls them
/// ([`Inline`]): a SQLite operation runs whole on one blocking thread (`store.rs`), one hop
/// per operation instead of one per statement.
pub(crate) type SqliteConn = SyncConnectionWrapper<SqliteConnection, Inline>;

/// Runs a [`SqliteConn`]'s statements at once, on the calling thread, instead of on a
/// blocking thread each (diesel-async's default: a `spawn_blocking` per statement, a thread
/// hop and two wake-ups for each of the 3–5 statements of a read). Only for code that is on a
/// blocking thread already: every SQLite operation of the store is (`on_conn!`).
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Inline;

impl SpawnBlocking for Inline {
    fn spawn_blocking<'a, R>(
        &mut self,
        task: impl FnOnce() -> R + Send + 'static,
    ) -> BoxFuture<'a, Result<R, Box<dyn std::error::Error + Send + Sync + 'static>>>
    where
        R: Send + 'static,
    {
        Box::pin(std::future::ready(Ok(task())))
    }

    fn get_runtime() -> Self {
        Self
    }
}

/// `BEGIN IMMEDIATE` transactions on a [`SqliteConn`] (diesel-async has them only for its
/// default runtime): the same statements, run where the connection runs them. Inside an
/// open transaction (a batch of writes, `batch`) it is a savepoint instead, or, in the
/// batch's first try, no transaction of its own.
pub(crate) trait Immediate {
    fn immediate_transaction<R, E, F>(&mut self, f: F) -> impl Future<Output = Result<R, E>>
    where
        F: AsyncFnOnce(&mut Self) -> Result<R, E>,
        E: From<diesel::result::Error>;
}

impl Immediate for SqliteConn {
    async fn immediate_transaction<R, E, F>(&mut self, f: F) -> Result<R, E>
    where
        F: AsyncFnOnce(&mut Self) -> Result<R, E>,
        E: From<diesel::result::Error>,
    {
        type Manager = SyncTransactionManagerWrapper<AnsiTransactionManager>;
        let nested = Manager::transaction_manager_status_mut(self)
            .transaction_depth()?
            .is_some();
        if nested && crate::batch::first_try() {
            // A batch's first try (`batch`): a plain part of its transaction.
            return crate::batch::noted(f(&mut *self).await);
        }
        if nested {
            // Inside a batch of writes (`batch`): a savepoint of its transaction.
            Manager::begin_transaction(self).await?;
        } else {
            self.spawn_blocking(|c| {
                AnsiTransactionManager::begin_transaction_sql(c, "BEGIN IMMEDIATE")
            })
            .await?;
        }
        match f(&mut *self).await {
            Ok(value) => {
                Manager::commit_transaction(&mut *self).await?;
                Ok(value)
            }
            Err(e) => {
                Manager::rollback_transaction(&mut *self).await?;
                Err(e)
            }
        }
    }
}

/// Serializes concurrent migrators of one PostgreSQL database (two servers starting at once).
const MIGRATION_LOCK_KEY: i64 = 0x0c0f_ab00;

/// Settings of the connection pool.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PoolOptions {
    /// The most connections open at once (`sqlite::memory:` always uses one). PostgreSQL
    /// splits them among `threads` (see [`ThreadPools`]).
    pub max_size: usize,
    /// How many threads serve requests (the server's workers). PostgreSQL keeps a pool per
    /// thread of `max_size / threads` connections (at least one).
    pub threads: usize,
    /// How long opening one connection may take.
    pub connect_timeout: Duration,
    /// How long a request waits for a free connection before it fails as `Unavailable`.
    pub wait_timeout: Duration,
    /// The page cache of each SQLite connection, in MiB (SQLite's own default is 2): the
    /// pages read last stay in the process instead of being read again from the file.
    /// SQLite's connections are handed out most recently used first, so that the busiest
    /// stay warm.
    pub sqlite_cache_mib: u32,
}

impl Default for PoolOptions {
    fn default() -> Self {
        Self {
            max_size: 10,
            threads: 1,
            connect_timeout: Duration::from_secs(5),
            wait_timeout: Duration::from_secs(10),
            sqlite_cache_mib: DEFAULT_SQLITE_CACHE_MIB,
        }
    }
}

/// The default of [`PoolOptions::sqlite_cache_mib`]. A search at 1,000,000 messages reads
/// thousands of one user's messages, each on a page of its own: with SQLite's default 2 MiB
/// every one was a read from the file (docs/benchmarks.md).
pub const DEFAULT_SQLITE_CACHE_MIB: u32 = 64;

/// What a `DATABASE_URL` names.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Target {
    Postgres(String),
    SqliteFile(PathBuf),
    SqliteMemory,
}

impl Target {
    /// `postgres://…`, `postgresql://…`, `sqlite::memory:`, `sqlite://relative/path.db`,
    /// `sqlite:///abs/path.db` (and `sqlite:path.db`).
    pub(crate) fn parse(url: &str) -> Result<Self, SqlError> {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            return Ok(Self::Postgres(url.to_owned()));
        }
        if url == "sqlite::memory:" {
            return Ok(Self::SqliteMemory);
        }
        let path = url
            .strip_prefix("sqlite://")
            .or_else(|| url.strip_prefix("sqlite:"))
            .ok_or(SqlError::UnsupportedUrl)?;
        if path.is_empty() || path.contains('?') {
            return Err(SqlError::UnsupportedUrl);
        }
        Ok(Self::SqliteFile(PathBuf::from(path)))
    }
}

/// The pragmas of every SQLite connection: wait for locks, enforce foreign keys, a page
/// cache of `cache_mib` MiB when given, and (for files) write-ahead logging, so readers
/// never block the writer.
fn sqlite_pragmas(file: bool, cache_mib: Option<u32>) -> String {
    let mut pragmas = format!(
        "PRAGMA busy_timeout = {}; PRAGMA foreign_keys = ON;",
        SQLITE_BUSY_TIMEOUT.as_millis()
    );
    if let Some(mib) = cache_mib {
        // A negative size is in KiB.
        let _ = write!(pragmas, " PRAGMA cache_size = -{};", u64::from(mib) * 1024);
    }
    if file {
        // Checkpoints run in the background (`Checkpointer`); a commit only checkpoints itself
        // past 10,000 pages (about 40 MB of log), should that ever fall behind.
        pragmas.push_str(
            " PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; \
             PRAGMA wal_autocheckpoint = 10000;",
        );
    }
    pragmas
}

/// How often the write-ahead log of a SQLite file is checkpointed.
const CHECKPOINT_EVERY: Duration = Duration::from_secs(1);

/// Copies a SQLite file's write-ahead log into the database once a second, on a connection
/// of its own, without blocking readers or the writer (`PASSIVE`). By default SQLite makes
/// the commit that takes the log past 1,000 pages do it, synchronously, `fsync`s included: a
/// send whose turn was that commit, or queued behind it, waited milliseconds (at 100 streams
/// the p99 of the time to first delta). Stops when dropped.
pub(crate) struct Checkpointer(tokio::task::AbortHandle);

impl Checkpointer {
    pub(crate) fn start(url: &str) -> Self {
        let url = url.to_owned();
        let task = tokio::spawn(async move {
            let conn: Arc<Mutex<Option<SqliteConnection>>> = Arc::default();
            let mut every = tokio::time::interval(CHECKPOINT_EVERY);
            every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            // Said once when checkpoints start failing and once when they work again, not
            // every second in between.
            let mut failing = false;
            loop {
                every.tick().await;
                let (conn, url) = (Arc::clone(&conn), url.clone());
                let done = tokio::task::spawn_blocking(move || -> Result<(), SqlError> {
                    let mut conn = conn.lock().unwrap_or_else(PoisonError::into_inner);
                    let c = match conn.as_mut() {
                        Some(c) => c,
                        None => conn.insert(open_sqlite(&url, true, None)?),
                    };
                    SimpleConnection::batch_execute(c, "PRAGMA wal_checkpoint(PASSIVE)")
                        .map_err(|e| SqlError::Connect(e.to_string()))
                })
                .await;
                match done {
                    Ok(Err(e)) if !failing => {
                        failing = true;
                        tracing::warn!(error = %e, "could not checkpoint the SQLite log; trying again each second");
                    }
                    Ok(Ok(())) if failing => {
                        failing = false;
                        tracing::info!("the SQLite log is checkpointed again");
                    }
                    _ => {}
                }
            }
        });
        Self(task.abort_handle())
    }
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Creates the folder that will hold a SQLite file.
pub(crate) fn create_parent(path: &Path) -> Result<(), SqlError> {
    match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => {
            std::fs::create_dir_all(parent).map_err(SqlError::CreateDir)
        }
        _ => Ok(()),
    }
}

/// A name that every connection of this process can open to reach one shared in-memory
/// database (SQLite's `memdb` VFS shares names starting with `/`).
pub(crate) fn memory_database_name() -> String {
    format!("file:/confab-{}?vfs=memdb", uuid::Uuid::now_v7().simple())
}

/// One PostgreSQL pool per thread that uses the store, each opened on first use.
///
/// A connection's I/O runs as a task on the runtime that opened it. With one pool for the
/// process, a request on one actix worker got connections opened by the other worker (or by
/// the startup runtime), and each round trip crossed threads twice: the query to the thread
/// that writes it to the socket, the answer back — two wake-ups, on a VM each as slow as the
/// database's own reply (docs/benchmarks.md). A thread's own pool keeps a query, its
/// connection's I/O and the request on one thread. It also means a thread whose runtime is
/// gone (a restarted worker) never hands its dead connections to another.
pub(crate) struct ThreadPools {
    pools: ThreadLocal<Pool<AsyncPgConnection>>,
    url: String,
    opts: PoolOptions,
}

impl ThreadPools {
    pub(crate) fn new(url: String, opts: &PoolOptions) -> Self {
        let mut opts = opts.clone();
        opts.max_size = (opts.max_size / opts.threads.max(1)).max(1);
        Self {
            pools: ThreadLocal::new(),
            url,
            opts,
        }
    }

    /// The calling thread's pool.
    pub(crate) fn get(&self) -> Result<&Pool<AsyncPgConnection>, SqlError> {
        self.pools
            .get_or_try(|| postgres_pool(&self.url, &self.opts))
    }

    /// The connection URL (it holds the password: never logged, never in an error).
    pub(crate) fn url(&self) -> &str {
        &self.url
    }
}

fn postgres_pool(url: &str, opts: &PoolOptions) -> Result<Pool<AsyncPgConnection>, SqlError> {
    let mut config = ManagerConfig::<AsyncPgConnection>::default();
    config.recycling_method = RecyclingMethod::Fast;
    let manager = AsyncDieselConnectionManager::new_with_config(url, config);
    build_pool(manager, opts, opts.max_size, QueueMode::Fifo)
}

pub(crate) fn sqlite_pool(
    url: &str,
    opts: &PoolOptions,
    file: bool,
) -> Result<Pool<SqliteConn>, SqlError> {
    let mut config = ManagerConfig::<SqliteConn>::default();
    config.recycling_method = RecyclingMethod::Fast;
    let cache_mib = opts.sqlite_cache_mib;
    config.custom_setup = Box::new(move |url| {
        let url = url.to_owned();
        Box::pin(async move {
            // Opened on a blocking thread: the pool opens connections on the caller's.
            let conn =
                tokio::task::spawn_blocking(move || open_sqlite(&url, file, Some(cache_mib)))
                    .await
                    .map_err(|e| ConnectionError::BadConnection(e.to_string()))?
                    .map_err(|e| ConnectionError::BadConnection(e.to_string()))?;
            Ok(SqliteConn::with_runtime(conn, Inline))
        })
    });
    let manager = AsyncDieselConnectionManager::new_with_config(url, config);
    // All connections to `sqlite::memory:` must see one database: one connection it is.
    let max_size = if file { opts.max_size } else { 1 };
    // The connection used last is handed out first: its page cache is the warm one, and
    // idle connections stay idle (their caches small). PostgreSQL's pools keep taking turns:
    // a connection left idle for long may be closed by a proxy on the way.
    build_pool(manager, opts, max_size, QueueMode::Lifo)
}

fn build_pool<C>(
    manager: AsyncDieselConnectionManager<C>,
    opts: &PoolOptions,
    max_size: usize,
    order: QueueMode,
) -> Result<Pool<C>, SqlError>
where
    C: diesel_async::pooled_connection::PoolableConnection + Send + 'static,
    AsyncDieselConnectionManager<C>:
        deadpool::managed::Manager<Type = C, Error = diesel_async::pooled_connection::PoolError>,
{
    Pool::builder(manager)
        .max_size(max_size.max(1))
        .create_timeout(Some(opts.connect_timeout))
        .wait_timeout(Some(opts.wait_timeout))
        .runtime(deadpool::Runtime::Tokio1)
        .queue_mode(order)
        .build()
        .map_err(|e| SqlError::Pool(e.to_string()))
}

/// Applies the pending PostgreSQL migrations over a dedicated connection, holding an
/// advisory lock so that concurrent migrators take turns.
pub(crate) async fn migrate_postgres(url: &str) -> Result<(), SqlError> {
    let url = url.to_owned();
    let task = tokio::task::spawn_blocking(move || -> Result<(), SqlError> {
        let mut conn =
            <AsyncConnectionWrapper<AsyncPgConnection> as diesel::Connection>::establish(&url)
                .map_err(|e| SqlError::Connect(e.to_string()))?;
        SimpleConnection::batch_execute(
            &mut conn,
            &format!("SELECT pg_advisory_lock({MIGRATION_LOCK_KEY})"),
        )
        .map_err(|e| SqlError::Migration(e.to_string()))?;
        let applied = conn
            .run_pending_migrations(POSTGRES_MIGRATIONS)
            .map(drop)
            .map_err(|e| SqlError::Migration(e.to_string()));
        let unlocked = SimpleConnection::batch_execute(
            &mut conn,
            &format!("SELECT pg_advisory_unlock({MIGRATION_LOCK_KEY})"),
        )
        .map_err(|e| SqlError::Migration(e.to_string()));
        applied.and(unlocked)
    });
    task.await
        .map_err(|e| SqlError::Migration(format!("the migration task failed: {e}")))?
}

/// Applies the pending SQLite migrations. For a file, over a dedicated connection; for
/// `sqlite::memory:`, over the connection that keeps the database alive.
pub(crate) async fn migrate_sqlite(
    url: &str,
    keeper: Option<Arc<Mutex<SqliteConnection>>>,
) -> Result<(), SqlError> {
    let url = url.to_owned();
    let task = tokio::task::spawn_blocking(move || -> Result<(), SqlError> {
        let run = |conn: &mut SqliteConnection| {
            conn.run_pending_migrations(SQLITE_MIGRATIONS)
                .map(drop)
                .map_err(|e| SqlError::Migration(e.to_string()))
        };
        match keeper {
            Some(keeper) => run(&mut keeper.lock().unwrap_or_else(PoisonError::into_inner)),
            None => {
                let mut conn = open_sqlite(&url, true, None)?;
                run(&mut conn)
            }
        }
    });
    task.await
        .map_err(|e| SqlError::Migration(format!("the migration task failed: {e}")))?
}

/// Opens one synchronous SQLite connection with the adapter's pragmas, and a page cache of
/// `cache_mib` MiB when given.
pub(crate) fn open_sqlite(
    url: &str,
    file: bool,
    cache_mib: Option<u32>,
) -> Result<SqliteConnection, SqlError> {
    let mut conn = <SqliteConnection as diesel::Connection>::establish(url)
        .map_err(|e| SqlError::Connect(e.to_string()))?;
    SimpleConnection::batch_execute(&mut conn, &sqlite_pragmas(file, cache_mib))
        .map_err(|e| SqlError::Connect(e.to_string()))?;
    Ok(conn)
}

/// Checks that the pool can hand out a working connection.
pub(crate) async fn check<C>(pool: &Pool<C>) -> Result<(), SqlError>
where
    C: diesel_async::pooled_connection::PoolableConnection + Send + 'static,
    AsyncDieselConnectionManager<C>:
        deadpool::managed::Manager<Type = C, Error = diesel_async::pooled_connection::PoolError>,
    C: AsyncConnection,
{
    let mut conn = pool
        .get()
        .await
        .map_err(|e| SqlError::Connect(e.to_string()))?;
    conn.batch_execute("SELECT 1")
        .await
        .map_err(|e| SqlError::Connect(e.to_string()))
}

#[cfg(test)]
mod tests {

    use super::*;

    #[test]
    fn the_bundled_sqlite_is_built_without_stat4() {
        use diesel::RunQueryDsl as _;

        #[derive(diesel::QueryableByName)]
        struct CompileOption {
            #[diesel(sql_type = diesel::sql_types::Text)]
            compile_options: String,
        }
        let mut conn = open_sqlite(":memory:", false, None).unwrap();
        let options: Vec<CompileOption> = diesel::sql_query("PRAGMA compile_options")
            .load(&mut conn)
            .unwrap();
        let options: Vec<&str> = options.iter().map(|o| o.compile_options.as_str()).collect();
        // The list is the build's, so the test sees a change of .cargo/config.toml.
        assert!(options.contains(&"ENABLE_FTS5"), "{options:?}");
        assert!(
            !options.iter().any(|o| o.starts_with("ENABLE_STAT")),
            "{options:?}"
        );
    }

    #[tokio::test]
    async fn pooled_sqlite_connections_have_the_page_cache_asked_for() {
        use diesel_async::RunQueryDsl as _;

        #[derive(diesel::QueryableByName)]
        struct CacheSize {
            #[diesel(sql_type = diesel::sql_types::BigInt)]
            cache_size: i64,
        }
        let opts = PoolOptions {
            sqlite_cache_mib: 8,
            ..PoolOptions::default()
        };
        let pool = sqlite_pool(&memory_database_name(), &opts, false).unwrap();
        let mut conn = pool.get().await.unwrap();
        let size: CacheSize = diesel::sql_query("PRAGMA cache_size")
            .get_result(&mut *conn)
            .await
            .unwrap();
        // Negative: KiB.
        assert_eq!(size.cache_size, -8 * 1024);
        // A connection of its own (the checkpointer's, a migration's) keeps SQLite's.
        let mut own = open_sqlite(":memory:", false, None).unwrap();
        let size: CacheSize =
            diesel::RunQueryDsl::get_result(diesel::sql_query("PRAGMA cache_size"), &mut own)
                .unwrap();
        assert_ne!(size.cache_size, -8 * 1024);
    }

    #[test]
    fn database_urls_name_their_backend() {
        assert_eq!(
            Target::parse("postgres://u:p@h/db").unwrap(),
            Target::Postgres("postgres://u:p@h/db".to_owned())
        );
        assert!(matches!(
            Target::parse("postgresql://h/db").unwrap(),
            Target::Postgres(_)
        ));
        assert_eq!(
            Target::parse("sqlite::memory:").unwrap(),
            Target::SqliteMemory
        );
        assert_eq!(
            Target::parse("sqlite://data/confab.db").unwrap(),
            Target::SqliteFile(PathBuf::from("data/confab.db"))
        );
        assert_eq!(
            Target::parse("sqlite:///var/lib/confab.db").unwrap(),
            Target::SqliteFile(PathBuf::from("/var/lib/confab.db"))
        );
        for bad in [
            "mysql://h/db",
            "sqlite://",
            "memory:",
            "",
            "sqlite://x.db?mode=ro",
        ] {
            assert!(
                matches!(Target::parse(bad), Err(SqlError::UnsupportedUrl)),
                "{bad}"
            );
        }
    }
}
