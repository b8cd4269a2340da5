//! Group commit of a SQLite file's writes.
//!
//! Every write to a SQLite file goes through one [`Batcher`]: one blocking thread at a time
//! runs the writes queued, several in one `BEGIN IMMEDIATE` transaction on the writer
//! connection, commits once, and only then gives each write its result. A commit is most of
//! a small write's cost on SQLite (the log's frames written and checksummed, a new FTS5
//! segment per transaction, a thread hop): at 1,000 streaming replies, ~1,200 writes a
//! second, one commit now serves several (docs/benchmarks.md, "The relay, sixth round").
//!
//! - A *background* write — nobody waits on it for long: a streaming reply's renewal and its
//!   final write, a call's usage entry, a title, a file's extracted text, the sweep of lapsed
//!   leases — waits [`BACKGROUND_WINDOW`] for others to join it; up to [`BACKGROUND_BATCH`]
//!   share a transaction.
//! - A *foreground* write — a send's turn, any request's write — never waits for the window
//!   nor for the background writes queued: it runs next, after the write the running batch is
//!   running, in that batch's transaction, which then commits (or at once in a transaction
//!   of its own when no batch runs).
//!
//! A batch is tried first with its writes run one after the other as plain parts of the
//! transaction, the transactions nested in them included ([`first_try`]): no savepoints,
//! which SQLite pays for with a copy of every page a write changes, and FTS5 with a segment
//! of its own for every write (it flushes its pending terms at each savepoint; measured in
//! "The relay, seventh round"). When every write succeeds, that is what a savepoint per
//! write would have committed. When one fails — its error returned, or a transaction
//! nested in it rolled back — the try is rolled back and the batch runs again, each write
//! in a savepoint of its own: a write that fails loses its own changes only, and gets its
//! own error. A write may therefore run twice ([`Op`] is `Fn`).

use std::cell::Cell;
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::Duration;

use confab_core::error::StoreError;
use diesel::connection::AnsiTransactionManager;
use diesel_async::TransactionManager;
use diesel_async::pooled_connection::deadpool::Pool;
use diesel_async::sync_connection_wrapper::SyncTransactionManagerWrapper;
use futures::future::BoxFuture;
use tokio::sync::oneshot;

use crate::connect::SqliteConn;
use crate::error::{pool_error, translate};

/// How long a drain waits after the first write of a batch for others to join it. A reply's
/// `done` waits for its final write, so this is added to the end of a reply at most once.
pub(crate) const BACKGROUND_WINDOW: Duration = Duration::from_millis(10);

/// At most this many writes share one transaction.
pub const BACKGROUND_BATCH: usize = 32;

/// The operation of one queued write, run on the writer connection inside the batch's
/// transaction. It may run twice: once in the batch's first try, then again in a savepoint
/// when the first try was rolled back.
pub(crate) type Op<T> =
    Box<dyn for<'c> Fn(&'c mut SqliteConn) -> BoxFuture<'c, Result<T, StoreError>> + Send + Sync>;

/// `f` as an [`Op`] (a closure given here gets its signature from the bound).
pub(crate) fn op<T, F>(f: F) -> Op<T>
where
    F: for<'c> Fn(&'c mut SqliteConn) -> BoxFuture<'c, Result<T, StoreError>>
        + Send
        + Sync
        + 'static,
{
    Box::new(f)
}

thread_local! {
    /// `Some` while this thread runs a batch's first try: whether a transaction nested in
    /// one of its writes has failed (the try is then rolled back).
    static FIRST_TRY: Cell<Option<bool>> = const { Cell::new(None) };
}

/// Whether a transaction opened now, inside a batch's transaction, belongs to the batch's
/// first try: then it is no savepoint — its work runs as a plain part of the batch, and its
/// result goes through [`noted`].
pub(crate) fn first_try() -> bool {
    FIRST_TRY.get().is_some()
}

/// The result of a transaction nested in a write of a batch's first try: a failure, which
/// a savepoint would have rolled back, has the try rolled back and the batch run again with
/// savepoints.
pub(crate) fn noted<T, E>(result: Result<T, E>) -> Result<T, E> {
    if result.is_err() && first_try() {
        FIRST_TRY.set(Some(true));
    }
    result
}

/// This thread runs a batch's first try while it lives.
struct FirstTry;

impl FirstTry {
    fn enter() -> Self {
        FIRST_TRY.set(Some(false));
        Self
    }

    /// A transaction nested in a write has failed.
    fn nested_failed(&self) -> bool {
        FIRST_TRY.get() == Some(true)
    }
}

impl Drop for FirstTry {
    fn drop(&mut self) {
        FIRST_TRY.set(None);
    }
}

/// A queued write, its result not yet told.
trait Job: Send {
    /// Runs the write — in a savepoint of its own when `savepoint` — and keeps its result
    /// until the batch's fate is known.
    fn run<'c>(&'c mut self, c: &'c mut SqliteConn, savepoint: bool) -> BoxFuture<'c, Ran>;
    /// Tells the result of its last run: `failed` is `None` when the batch was committed,
    /// else why it was not.
    fn tell(self: Box<Self>, failed: Option<StoreError>);
    /// The write could not be run at all.
    fn fail(self: Box<Self>, error: StoreError);
}

/// How a run of a write went.
#[derive(Clone, Copy)]
struct Ran {
    /// It succeeded.
    ok: bool,
    /// The transaction may still be committed (its savepoint was handled).
    usable: bool,
}

struct Pending<T> {
    op: Op<T>,
    answer: oneshot::Sender<Result<T, StoreError>>,
    result: Option<Result<T, StoreError>>,
}

impl<T: Send + 'static> Job for Pending<T> {
    fn run<'c>(&'c mut self, c: &'c mut SqliteConn, savepoint: bool) -> BoxFuture<'c, Ran> {
        Box::pin(async move {
            let (result, usable) = if savepoint {
                in_savepoint(c, &self.op).await
            } else {
                ((self.op)(c).await, true)
            };
            let ok = result.is_ok();
            self.result = Some(result);
            Ran { ok, usable }
        })
    }

    fn tell(self: Box<Self>, failed: Option<StoreError>) {
        let result = self
            .result
            .unwrap_or_else(|| Err(StoreError::Internal("a write was not run".to_owned())));
        let result = match failed {
            // The write's own error stands; its success does not, without the commit.
            Some(error) => result.and(Err(error)),
            None => result,
        };
        let _ = self.answer.send(result);
    }

    fn fail(self: Box<Self>, error: StoreError) {
        let _ = self.answer.send(Err(error));
    }
}

/// The error of a whole batch, for each of its writes: an outage stays an outage (503).
fn copy(error: &StoreError) -> StoreError {
    match error {
        StoreError::Unavailable(detail) => StoreError::Unavailable(detail.clone()),
        other => StoreError::Internal(other.to_string()),
    }
}

fn fail_all(jobs: impl IntoIterator<Item = Box<dyn Job>>, error: &StoreError) {
    for job in jobs {
        job.fail(copy(error));
    }
}

type Manager = SyncTransactionManagerWrapper<AnsiTransactionManager>;

/// Runs `op` in a savepoint of the open transaction: kept when it succeeds, rolled back
/// when it fails. The second value is `false` when the savepoint itself could not be
/// handled: the transaction must not be committed.
async fn in_savepoint<T>(c: &mut SqliteConn, op: &Op<T>) -> (Result<T, StoreError>, bool) {
    if let Err(e) = Manager::begin_transaction(c).await {
        return (Err(translate(e)), false);
    }
    let result = op(c).await;
    let ended = match &result {
        Ok(_) => Manager::commit_transaction(c).await,
        Err(_) => Manager::rollback_transaction(c).await,
    };
    match ended {
        Ok(()) => (result, true),
        Err(e) => (result.and(Err(translate(e))), false),
    }
}

async fn begin_immediate(c: &mut SqliteConn) -> Result<(), StoreError> {
    c.spawn_blocking(|c| AnsiTransactionManager::begin_transaction_sql(c, "BEGIN IMMEDIATE"))
        .await
        .map_err(translate)
}

/// The queue of one SQLite file's writes.
pub(crate) struct Batcher {
    writer: Pool<SqliteConn>,
    /// The runtime the drains wait on (the pool's timers): the one that opened the store,
    /// which outlives the request workers.
    runtime: tokio::runtime::Handle,
    state: Mutex<State>,
    /// Wakes a drain waiting out its window when a foreground write comes.
    woken: Condvar,
}

#[derive(Default)]
struct State {
    /// Background writes, in order.
    queue: Vec<Box<dyn Job>>,
    /// Writes someone is waiting on: they go next, and the batch commits after them.
    foreground: Vec<Box<dyn Job>>,
    /// A blocking thread is draining the queues.
    draining: bool,
}

impl Batcher {
    /// # Panics
    /// Outside a Tokio runtime.
    pub(crate) fn new(writer: Pool<SqliteConn>) -> Arc<Self> {
        Arc::new(Self {
            writer,
            runtime: tokio::runtime::Handle::current(),
            state: Mutex::default(),
            woken: Condvar::new(),
        })
    }

    /// Queues `op` and waits until its batch is committed (its result) or not (the error).
    /// A `foreground` write (someone waits on it) is run next — after the write the running
    /// batch is running, in its transaction, which then commits — or at once when none
    /// runs. Dropping the future does not take the write back: it is committed or rolled
    /// back whole, as any write.
    pub(crate) async fn run<T: Send + 'static>(
        self: &Arc<Self>,
        op: Op<T>,
        foreground: bool,
    ) -> Result<T, StoreError> {
        let (answer, told) = oneshot::channel();
        let job: Box<dyn Job> = Box::new(Pending {
            op,
            answer,
            result: None,
        });
        let start = {
            let mut state = self.lock();
            if foreground {
                state.foreground.push(job);
            } else {
                state.queue.push(job);
            }
            !std::mem::replace(&mut state.draining, true)
        };
        if start {
            let batcher = Arc::clone(self);
            // On a blocking thread, not a task: nothing can cancel it half-way, and the
            // runtime waits for it at shutdown.
            drop(self.runtime.spawn_blocking(move || batcher.drain()));
        } else if foreground {
            self.woken.notify_one();
        }
        told.await
            .map_err(|_| StoreError::Internal("a write was lost".to_owned()))?
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Runs batches until both queues are empty.
    fn drain(&self) {
        let _draining = Draining(self);
        {
            // Background writes wait for others to join them; a foreground one does not.
            let state = self.lock();
            let _ = self
                .woken
                .wait_timeout_while(state, BACKGROUND_WINDOW, |s| s.foreground.is_empty());
        }
        loop {
            let (foreground, background) = {
                let mut state = self.lock();
                if state.queue.is_empty() && state.foreground.is_empty() {
                    state.draining = false;
                    return;
                }
                let foreground: Vec<_> = std::mem::take(&mut state.foreground);
                // A batch that starts with foreground writes commits after them.
                let n = if foreground.is_empty() {
                    state.queue.len().min(BACKGROUND_BATCH)
                } else {
                    0
                };
                (foreground, state.queue.drain(..n).collect::<Vec<_>>())
            };
            match self.runtime.block_on(self.writer.get()) {
                Ok(mut conn) => {
                    let left = self
                        .runtime
                        .block_on(self.run_batch(&mut conn, foreground, background));
                    if !left.is_empty() {
                        self.lock().queue.splice(0..0, left);
                    }
                }
                Err(e) => {
                    let error = pool_error(e);
                    for job in foreground.into_iter().chain(background) {
                        job.fail(copy(&error));
                    }
                }
            }
        }
    }

    /// One transaction, one commit, then the results. The `foreground` jobs run first and
    /// the batch commits after them; when a foreground write comes while `background` jobs
    /// run, it runs after the one running and the batch commits: the background jobs not run
    /// are returned, to go first in the next batch. Tried first without savepoints; when a
    /// write of that try fails, the try is rolled back and its writes run again, each in a
    /// savepoint of its own.
    async fn run_batch(
        &self,
        c: &mut SqliteConn,
        foreground: Vec<Box<dyn Job>>,
        background: Vec<Box<dyn Job>>,
    ) -> Vec<Box<dyn Job>> {
        if let Err(error) = begin_immediate(c).await {
            fail_all(foreground.into_iter().chain(background), &error);
            return Vec::new();
        }
        let mut jobs = Vec::with_capacity(foreground.len() + background.len());
        let (clean, left) = {
            let first_try = FirstTry::enter();
            if foreground.is_empty() {
                let mut background = background.into_iter();
                loop {
                    let Some(job) = background.next() else {
                        break (true, Vec::new());
                    };
                    let waiting = std::mem::take(&mut self.lock().foreground);
                    if !waiting.is_empty() {
                        let clean = run_plainly(c, waiting, &mut jobs, &first_try).await;
                        let mut left = vec![job];
                        left.extend(background);
                        break (clean, left);
                    }
                    if !run_plainly(c, vec![job], &mut jobs, &first_try).await {
                        break (false, background.collect());
                    }
                }
            } else {
                let clean = run_plainly(c, foreground, &mut jobs, &first_try).await;
                (clean, background)
            }
        };
        if clean {
            // A commit that fails is rolled back by diesel.
            let failed = Manager::commit_transaction(c).await.err().map(translate);
            tell_all(jobs, failed.as_ref());
            return left;
        }
        if let Err(e) = Manager::rollback_transaction(c).await {
            tracing::error!(error = %e, "could not roll back a batch of writes");
            fail_all(jobs, &translate(e));
            return left;
        }
        tracing::debug!(
            writes = jobs.len(),
            "a write of a batch failed: the batch runs again, each write in a savepoint"
        );
        run_in_savepoints(c, jobs).await;
        left
    }
}

/// Runs `jobs` again in one transaction, each in a savepoint of its own (a write that fails
/// loses its own changes only), commits, and gives every job its result.
async fn run_in_savepoints(c: &mut SqliteConn, jobs: Vec<Box<dyn Job>>) {
    if let Err(error) = begin_immediate(c).await {
        fail_all(jobs, &error);
        return;
    }
    let mut usable = true;
    let mut rerun = Vec::with_capacity(jobs.len());
    for mut job in jobs {
        // After a savepoint that could not be handled, nothing more runs.
        if usable {
            usable = job.run(c, true).await.usable;
            rerun.push(job);
        } else {
            job.fail(StoreError::Internal(
                "an earlier write of its transaction failed".to_owned(),
            ));
        }
    }
    let failed = if usable {
        Manager::commit_transaction(c).await.err().map(translate)
    } else {
        if let Err(e) = Manager::rollback_transaction(c).await {
            tracing::error!(error = %e, "could not roll back a batch of writes");
        }
        Some(StoreError::Internal(
            "a batch of writes was rolled back".to_owned(),
        ))
    };
    tell_all(rerun, failed.as_ref());
}

/// Runs `jobs` one after the other as plain parts of the batch's first try, until one
/// fails; every one of them joins `ran` (those not run as well: the batch runs them when it
/// runs again). Whether all succeeded.
async fn run_plainly(
    c: &mut SqliteConn,
    jobs: Vec<Box<dyn Job>>,
    ran: &mut Vec<Box<dyn Job>>,
    first_try: &FirstTry,
) -> bool {
    let mut clean = true;
    for mut job in jobs {
        if clean {
            clean = job.run(c, false).await.ok && !first_try.nested_failed();
        }
        ran.push(job);
    }
    clean
}

/// Gives every job its result: `failed` is `None` when the batch was committed.
fn tell_all(jobs: Vec<Box<dyn Job>>, failed: Option<&StoreError>) {
    for job in jobs {
        job.tell(failed.map(copy));
    }
}

/// Clears `draining` if a batch panics, and fails the writes still queued: a panic must not
/// leave them waiting for a drain that has stopped.
struct Draining<'a>(&'a Batcher);

impl Drop for Draining<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let queued = {
                let mut state = self.0.lock();
                state.draining = false;
                let foreground = std::mem::take(&mut state.foreground);
                foreground
                    .into_iter()
                    .chain(std::mem::take(&mut state.queue))
                    .collect::<Vec<_>>()
            };
            for job in queued {
                job.fail(StoreError::Internal("a write failed".to_owned()));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use diesel::QueryableByName;
    use diesel::SqliteConnection;
    use diesel::connection::SimpleConnection as _;
    use diesel::sql_types::BigInt;

    use super::*;
    use crate::connect::{PoolOptions, open_sqlite, sqlite_pool};

    #[derive(QueryableByName)]
    struct Count {
        #[diesel(sql_type = BigInt)]
        n: i64,
    }

    /// A file with a table `t (n INTEGER PRIMARY KEY)`, its one-connection writer pool and a
    /// reader of its own.
    fn database() -> (std::path::PathBuf, Pool<SqliteConn>, SqliteConnection) {
        let path = std::env::temp_dir().join(format!(
            "confab-batch-test-{}.db",
            uuid::Uuid::now_v7().simple()
        ));
        let url = path.display().to_string();
        let mut reader = open_sqlite(&url, true, None).unwrap();
        reader
            .batch_execute("CREATE TABLE t (n INTEGER PRIMARY KEY)")
            .unwrap();
        let options = PoolOptions {
            max_size: 1,
            ..PoolOptions::default()
        };
        (
            path.clone(),
            sqlite_pool(&url, &options, true).unwrap(),
            reader,
        )
    }

    fn rows(reader: &mut SqliteConnection) -> Vec<i64> {
        diesel::RunQueryDsl::load::<Count>(diesel::sql_query("SELECT n FROM t ORDER BY n"), reader)
            .unwrap()
            .into_iter()
            .map(|c| c.n)
            .collect()
    }

    /// Inserts `n`, then fails when `fail`.
    fn insert(n: i64, fail: bool) -> Op<i64> {
        op(move |c| {
            Box::pin(async move {
                diesel_async::RunQueryDsl::execute(
                    diesel::sql_query(format!("INSERT INTO t VALUES ({n})")),
                    c,
                )
                .await
                .map_err(translate)?;
                if fail {
                    return Err(StoreError::Internal(format!("{n} failed on purpose")));
                }
                Ok(n)
            })
        })
    }

    /// Inserts `n`, and in a transaction nested in that write inserts `n + 1000` and fails —
    /// an error the write itself gets over: it succeeds, without the nested insert.
    fn insert_recovering(n: i64) -> Op<i64> {
        use crate::connect::Immediate as _;
        op(move |c| {
            Box::pin(async move {
                insert(n, false)(c).await?;
                let nested = c
                    .immediate_transaction(async |c| {
                        insert(n + 1000, false)(c)
                            .await
                            .map_err(crate::error::TxError::Store)?;
                        Err::<(), _>(crate::error::TxError::Store(StoreError::Internal(
                            "nested, on purpose".to_owned(),
                        )))
                    })
                    .await;
                assert!(nested.is_err());
                Ok(n)
            })
        })
    }

    fn remove(path: &std::path::Path) {
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_write_of_a_batch_that_fails_loses_its_own_changes_only() {
        let (path, writer, mut reader) = database();
        let batcher = Batcher::new(writer);
        let (one, two, three, again) = tokio::join!(
            batcher.run(insert(1, false), false),
            batcher.run(insert(2, true), false),
            batcher.run(insert(3, false), false),
            // A statement that fails: its key is taken.
            batcher.run(insert(1, false), false),
        );
        assert_eq!(one.unwrap(), 1);
        assert!(matches!(two, Err(StoreError::Internal(e)) if e.contains("on purpose")));
        assert_eq!(three.unwrap(), 3);
        assert!(again.is_err());
        assert_eq!(rows(&mut reader), [1, 3]);
        drop(batcher);
        remove(&path);
    }

    /// A transaction nested in a write, rolled back while the write succeeds, loses its
    /// changes in a batch as it would alone (the batch's first try, which has no savepoints,
    /// is not what is committed), and the batch's other writes are kept.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_nested_transaction_that_fails_loses_its_changes_in_a_batch() {
        let (path, writer, mut reader) = database();
        let batcher = Batcher::new(writer);
        let (one, two, three) = tokio::join!(
            batcher.run(insert(1, false), false),
            batcher.run(insert_recovering(2), false),
            batcher.run(insert(3, false), false),
        );
        assert_eq!((one.unwrap(), two.unwrap(), three.unwrap()), (1, 2, 3));
        assert_eq!(rows(&mut reader), [1, 2, 3]);
        drop(batcher);
        remove(&path);
    }

    /// Adds `n` to the full-text table `f`.
    fn index(n: i64) -> Op<()> {
        op(move |c| {
            Box::pin(async move {
                diesel_async::RunQueryDsl::execute(
                    diesel::sql_query(format!(
                        "INSERT INTO f (rowid, text) VALUES ({n}, 'word{n} common')"
                    )),
                    c,
                )
                .await
                .map_err(translate)?;
                Ok(())
            })
        })
    }

    /// Writes to an FTS5 table committed together make one segment, not one per write (a
    /// savepoint per write would flush FTS5's pending terms at each): the cost a batch is
    /// for. A failed write among them still loses its own changes only.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn writes_to_a_full_text_index_committed_together_make_one_segment() {
        let (path, writer, mut reader) = database();
        // No automatic merges: the segments stay as written.
        reader
            .batch_execute(
                "CREATE VIRTUAL TABLE f USING fts5(text); \
                 INSERT INTO f (f, rank) VALUES ('automerge', 0);",
            )
            .unwrap();
        let segments = |reader: &mut SqliteConnection| {
            // The structure and averages records, then a leaf per segment (small ones).
            diesel::RunQueryDsl::get_result::<Count>(
                diesel::sql_query("SELECT count(*) - 2 AS n FROM f_data"),
                reader,
            )
            .unwrap()
            .n
        };
        let batcher = Batcher::new(writer.clone());
        // Queued in order (FTS5 also flushes at a rowid below the last one it was given).
        let indexed = futures::future::join_all((0..20).map(|n| batcher.run(index(n), false)));
        for done in indexed.await {
            done.unwrap();
        }
        assert_eq!(segments(&mut reader), 1, "one segment per transaction");

        // A batch with a failing write: rolled back and run again, each write in a
        // savepoint — the others are kept.
        let (failing, indexed) = tokio::join!(
            batcher.run(insert(7, true), false),
            futures::future::join_all((100..110).map(|n| batcher.run(index(n), false))),
        );
        assert!(failing.is_err());
        for done in indexed {
            done.unwrap();
        }
        assert!(rows(&mut reader).is_empty());
        let found = diesel::RunQueryDsl::get_result::<Count>(
            diesel::sql_query("SELECT count(*) AS n FROM f WHERE f MATCH 'common'"),
            &mut reader,
        )
        .unwrap()
        .n;
        assert_eq!(found, 30);
        drop(batcher);
        remove(&path);
    }

    /// Holds the writer connection and queues `n` background inserts (`0..n`) behind it;
    /// returns once their drain waits for the connection.
    async fn queued_behind(
        batcher: &Arc<Batcher>,
        writer: &Pool<SqliteConn>,
        n: i64,
    ) -> (
        diesel_async::pooled_connection::deadpool::Object<SqliteConn>,
        tokio::task::JoinSet<Result<i64, StoreError>>,
    ) {
        let held = writer.get().await.unwrap();
        let mut queued = tokio::task::JoinSet::new();
        for n in 0..n {
            let batcher = Arc::clone(batcher);
            queued.spawn(async move { batcher.run(insert(n, false), false).await });
        }
        tokio::time::sleep(BACKGROUND_WINDOW * 3).await;
        (held, queued)
    }

    /// Writes queued while the writer is busy are committed in one transaction: the first
    /// result comes only once all of them are visible to another connection.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn writes_queued_together_are_committed_together() {
        let (path, writer, mut reader) = database();
        let batcher = Batcher::new(writer.clone());
        let (held, mut queued) = queued_behind(&batcher, &writer, 20).await;
        assert!(
            rows(&mut reader).is_empty(),
            "written while the writer was held"
        );
        drop(held);
        assert!(queued.join_next().await.unwrap().unwrap().is_ok());
        assert_eq!(
            rows(&mut reader).len(),
            20,
            "the first result came before the others were committed"
        );
        while let Some(done) = queued.join_next().await {
            assert!(done.unwrap().is_ok());
        }
        drop(batcher);
        remove(&path);
    }

    /// Inserts `n` and returns how many rows it saw before it.
    fn insert_counting(n: i64) -> Op<usize> {
        op(move |c| {
            Box::pin(async move {
                let before: Vec<Count> =
                    diesel_async::RunQueryDsl::load(diesel::sql_query("SELECT n FROM t"), c)
                        .await
                        .map_err(translate)?;
                diesel_async::RunQueryDsl::execute(
                    diesel::sql_query(format!("INSERT INTO t VALUES ({n})")),
                    c,
                )
                .await
                .map_err(translate)?;
                Ok(before.len())
            })
        })
    }

    /// A foreground write goes before the background writes queued for the writer, and is
    /// committed without them.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_foreground_write_goes_before_the_background_writes_queued() {
        let (path, writer, mut reader) = database();
        let batcher = Batcher::new(writer.clone());
        let (held, mut queued) = queued_behind(&batcher, &writer, 20).await;
        let first = {
            let batcher = Arc::clone(&batcher);
            tokio::spawn(async move { batcher.run(insert_counting(100), true).await })
        };
        tokio::time::sleep(BACKGROUND_WINDOW).await;
        drop(held);
        assert_eq!(
            first.await.unwrap().unwrap(),
            0,
            "background writes went first"
        );
        while let Some(done) = queued.join_next().await {
            assert!(done.unwrap().is_ok());
        }
        assert_eq!(rows(&mut reader).len(), 21);
        drop(batcher);
        remove(&path);
    }

    /// A foreground write does not wait for a background write queued before it (whose drain
    /// is waiting out its window): its result comes while that one has not run.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_foreground_write_does_not_wait_for_a_background_write_queued_before_it() {
        let (path, writer, mut reader) = database();
        let batcher = Batcher::new(writer);
        let (go, wait) = std::sync::mpsc::channel::<()>();
        let background = {
            let batcher = Arc::clone(&batcher);
            let wait = Mutex::new(wait);
            let slow = op(move |c| {
                // Held until the test has seen the foreground write's result.
                let _ = wait.lock().unwrap().recv_timeout(Duration::from_secs(5));
                Box::pin(async move { insert(1, false)(c).await })
            });
            tokio::spawn(async move { batcher.run(slow, false).await })
        };
        // Queued first: its drain waits out the window.
        tokio::time::sleep(BACKGROUND_WINDOW / 5).await;
        let foreground =
            tokio::time::timeout(Duration::from_secs(2), batcher.run(insert(2, false), true)).await;
        let seen = rows(&mut reader);
        go.send(()).unwrap();
        assert_eq!(foreground.expect("the foreground write waited").unwrap(), 2);
        assert_eq!(seen, [2]);
        assert_eq!(background.await.unwrap().unwrap(), 1);
        assert_eq!(rows(&mut reader), [1, 2]);
        drop(batcher);
        remove(&path);
    }
}
