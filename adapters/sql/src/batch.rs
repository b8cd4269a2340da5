//! Group commit of a SQLite file's background writes.
//!
//! A write nobody waits on for long — a streaming reply's renewal and its final write, a
//! call's usage entry, a title, a file's extracted text, the sweep of lapsed leases — is
//! queued here. One blocking thread at a time drains the queue: it waits
//! [`BACKGROUND_WINDOW`] for more to come, then runs up to [`BACKGROUND_BATCH`] of them in
//! one `BEGIN IMMEDIATE` transaction on the writer connection, each in a savepoint of its
//! own (a write that fails is rolled back alone and gets its own error), commits once, and
//! only then gives each write its result. A commit is most of a small write's cost on
//! SQLite (the log's frames written and checksummed, a new FTS5 segment per transaction, a
//! thread hop): at 1,000 streaming replies, ~900 such writes a second, one commit now serves
//! many (docs/benchmarks.md, "The relay, sixth round").
//!
//! A write a user waits on (a send's turn) is not queued here: it waits for the writer
//! connection, and a batch that sees it waiting commits after the write it is running and
//! lets it go first ([`Batcher::foreground_waits`]).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
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
/// transaction.
pub(crate) type Op<T> =
    Box<dyn for<'c> FnOnce(&'c mut SqliteConn) -> BoxFuture<'c, Result<T, StoreError>> + Send>;

/// `f` as an [`Op`] (a closure given here gets its signature from the bound).
pub(crate) fn op<T, F>(f: F) -> Op<T>
where
    F: for<'c> FnOnce(&'c mut SqliteConn) -> BoxFuture<'c, Result<T, StoreError>> + Send + 'static,
{
    Box::new(f)
}

/// A queued write, its result not yet told.
trait Job: Send {
    /// Runs the write in a savepoint; returns what tells its result once the batch's fate is
    /// known, and whether the transaction is still usable.
    fn run<'c>(self: Box<Self>, c: &'c mut SqliteConn) -> BoxFuture<'c, (Box<dyn Told>, bool)>;
    /// The write could not be run at all.
    fn fail(self: Box<Self>, error: StoreError);
}

/// A write's result, held until the batch is committed (or not).
trait Told: Send {
    /// `None`: the batch was committed; else why it was not.
    fn tell(self: Box<Self>, failed: Option<StoreError>);
}

struct Pending<T> {
    op: Op<T>,
    answer: oneshot::Sender<Result<T, StoreError>>,
}

struct Outcome<T> {
    result: Result<T, StoreError>,
    answer: oneshot::Sender<Result<T, StoreError>>,
}

impl<T: Send + 'static> Job for Pending<T> {
    fn run<'c>(self: Box<Self>, c: &'c mut SqliteConn) -> BoxFuture<'c, (Box<dyn Told>, bool)> {
        Box::pin(async move {
            let Self { op, answer } = *self;
            let (result, usable) = in_savepoint(c, op).await;
            (
                Box::new(Outcome { result, answer }) as Box<dyn Told>,
                usable,
            )
        })
    }

    fn fail(self: Box<Self>, error: StoreError) {
        let _ = self.answer.send(Err(error));
    }
}

impl<T: Send> Told for Outcome<T> {
    fn tell(self: Box<Self>, failed: Option<StoreError>) {
        let result = match failed {
            // The write's own error stands; its success does not, without the commit.
            Some(error) => self.result.and(Err(error)),
            None => self.result,
        };
        let _ = self.answer.send(result);
    }
}

/// The error of a whole batch, for each of its writes: an outage stays an outage (503).
fn copy(error: &StoreError) -> StoreError {
    match error {
        StoreError::Unavailable(detail) => StoreError::Unavailable(detail.clone()),
        other => StoreError::Internal(other.to_string()),
    }
}

type Manager = SyncTransactionManagerWrapper<AnsiTransactionManager>;

/// Runs `op` in a savepoint of the open transaction: kept when it succeeds, rolled back
/// when it fails. The second value is `false` when the savepoint itself could not be
/// handled: the transaction must not be committed.
async fn in_savepoint<T>(c: &mut SqliteConn, op: Op<T>) -> (Result<T, StoreError>, bool) {
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

/// The queue of one SQLite file's background writes.
pub(crate) struct Batcher {
    writer: Pool<SqliteConn>,
    /// Foreground writes waiting for the writer connection: a batch commits early for them.
    foreground: AtomicUsize,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    queue: Vec<Box<dyn Job>>,
    /// A blocking thread is draining the queue.
    draining: bool,
}

/// A foreground write waiting for the writer connection, counted until it has it.
pub(crate) struct Waiting<'a>(&'a AtomicUsize);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Batcher {
    pub(crate) fn new(writer: Pool<SqliteConn>) -> Arc<Self> {
        Arc::new(Self {
            writer,
            foreground: AtomicUsize::new(0),
            state: Mutex::default(),
        })
    }

    /// Counts a foreground write as waiting for the writer until the guard is dropped: the
    /// batch then running commits after the write it is running, and lets it go first.
    pub(crate) fn foreground_waits(&self) -> Waiting<'_> {
        self.foreground.fetch_add(1, Ordering::SeqCst);
        Waiting(&self.foreground)
    }

    /// Queues `op` and waits until its batch is committed (its result) or not (the error).
    /// Dropping the future does not take the write back: it is committed or rolled back
    /// whole, as any write.
    pub(crate) async fn run<T: Send + 'static>(
        self: &Arc<Self>,
        op: Op<T>,
    ) -> Result<T, StoreError> {
        let (answer, told) = oneshot::channel();
        let start = {
            let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
            state.queue.push(Box::new(Pending { op, answer }));
            !std::mem::replace(&mut state.draining, true)
        };
        if start {
            let (batcher, runtime) = (Arc::clone(self), tokio::runtime::Handle::current());
            // On a blocking thread, not a task: nothing can cancel it half-way, and the
            // runtime waits for it at shutdown.
            drop(tokio::task::spawn_blocking(move || batcher.drain(&runtime)));
        }
        told.await
            .map_err(|_| StoreError::Internal("a background write was lost".to_owned()))?
    }

    /// Runs batches until the queue is empty.
    fn drain(&self, runtime: &tokio::runtime::Handle) {
        let _draining = Draining(self);
        std::thread::sleep(BACKGROUND_WINDOW);
        loop {
            let jobs: Vec<Box<dyn Job>> = {
                let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
                if state.queue.is_empty() {
                    state.draining = false;
                    return;
                }
                let n = state.queue.len().min(BACKGROUND_BATCH);
                state.queue.drain(..n).collect()
            };
            match runtime.block_on(self.writer.get()) {
                Ok(mut conn) => {
                    let left = runtime.block_on(run_batch(&mut conn, jobs, &self.foreground));
                    if !left.is_empty() {
                        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
                        state.queue.splice(0..0, left);
                    }
                }
                Err(e) => {
                    let error = pool_error(e);
                    for job in jobs {
                        job.fail(copy(&error));
                    }
                }
            }
        }
    }
}

/// Clears `draining` if a batch panics, and fails the writes still queued: a panic must not
/// leave them waiting for a drain that has stopped.
struct Draining<'a>(&'a Batcher);

impl Drop for Draining<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let queued = {
                let mut state = self.0.state.lock().unwrap_or_else(PoisonError::into_inner);
                state.draining = false;
                std::mem::take(&mut state.queue)
            };
            for job in queued {
                job.fail(StoreError::Internal("a background write failed".to_owned()));
            }
        }
    }
}

/// One transaction: every job in a savepoint of its own, one commit, then the results. When
/// a foreground write starts waiting for the writer, the batch commits after the job it is
/// running: the jobs not run are returned, to go first in the next batch.
async fn run_batch(
    c: &mut SqliteConn,
    jobs: Vec<Box<dyn Job>>,
    foreground: &AtomicUsize,
) -> Vec<Box<dyn Job>> {
    let began = c
        .spawn_blocking(|c| AnsiTransactionManager::begin_transaction_sql(c, "BEGIN IMMEDIATE"))
        .await;
    if let Err(e) = began {
        let error = translate(e);
        for job in jobs {
            job.fail(copy(&error));
        }
        return Vec::new();
    }
    let mut told = Vec::with_capacity(jobs.len());
    let mut usable = true;
    let mut jobs = jobs.into_iter();
    while let Some(job) = jobs.next() {
        if !told.is_empty() && foreground.load(Ordering::SeqCst) > 0 {
            let mut left = vec![job];
            left.extend(jobs);
            tell(told, end(c, usable).await);
            return left;
        }
        if !usable {
            job.fail(StoreError::Internal(
                "an earlier write of its transaction failed".to_owned(),
            ));
            continue;
        }
        let (result, still) = job.run(c).await;
        usable = still;
        told.push(result);
    }
    tell(told, end(c, usable).await);
    Vec::new()
}

/// Commits the batch's transaction, or rolls it back when it is not `usable`; the error
/// when it was not committed.
async fn end(c: &mut SqliteConn, usable: bool) -> Option<StoreError> {
    if usable {
        // A commit that fails is rolled back by diesel.
        Manager::commit_transaction(c).await.err().map(translate)
    } else {
        if let Err(e) = Manager::rollback_transaction(c).await {
            tracing::error!(error = %e, "could not roll back a batch of background writes");
        }
        Some(StoreError::Internal(
            "a batch of background writes was rolled back".to_owned(),
        ))
    }
}

/// Gives every write of a batch its result.
fn tell(told: Vec<Box<dyn Told>>, failed: Option<StoreError>) {
    for result in told {
        result.tell(failed.as_ref().map(copy));
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
            batcher.run(insert(1, false)),
            batcher.run(insert(2, true)),
            batcher.run(insert(3, false)),
            // A statement that fails: its key is taken.
            batcher.run(insert(1, false)),
        );
        assert_eq!(one.unwrap(), 1);
        assert!(matches!(two, Err(StoreError::Internal(e)) if e.contains("on purpose")));
        assert_eq!(three.unwrap(), 3);
        assert!(again.is_err());
        assert_eq!(rows(&mut reader), [1, 3]);
        drop(batcher);
        remove(&path);
    }

    /// Writes queued while the writer is busy are committed in one transaction: the first
    /// result comes only once all of them are visible to another connection.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn writes_queued_together_are_committed_together() {
        let (path, writer, mut reader) = database();
        let batcher = Batcher::new(writer.clone());
        let held = writer.get().await.unwrap();
        let mut queued = tokio::task::JoinSet::new();
        for n in 0..20 {
            let batcher = Arc::clone(&batcher);
            queued.spawn(async move { batcher.run(insert(n, false)).await });
        }
        tokio::time::sleep(BACKGROUND_WINDOW * 3).await;
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

    /// A foreground write that starts waiting while a batch runs goes before the rest of it.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_batch_lets_a_waiting_foreground_write_go_first() {
        let (path, writer, mut reader) = database();
        let batcher = Batcher::new(writer.clone());
        let held = writer.get().await.unwrap();
        let mut queued = tokio::task::JoinSet::new();
        for n in 0..20 {
            let batcher = Arc::clone(&batcher);
            queued.spawn(async move { batcher.run(insert(n, false)).await });
        }
        tokio::time::sleep(BACKGROUND_WINDOW * 3).await;
        // The foreground write is counted as waiting before the batch starts.
        let waiting = batcher.foreground_waits();
        drop(held);
        let mut conn = writer.get().await.unwrap();
        drop(waiting);
        diesel_async::RunQueryDsl::execute(
            diesel::sql_query("INSERT INTO t VALUES (100)"),
            &mut conn,
        )
        .await
        .unwrap();
        let before_it = rows(&mut reader).iter().filter(|n| **n < 100).count();
        drop(conn);
        while let Some(done) = queued.join_next().await {
            assert!(done.unwrap().is_ok());
        }
        assert_eq!(rows(&mut reader).len(), 21);
        assert_eq!(
            before_it, 1,
            "the batch ran {before_it} writes before the waiting one"
        );
        drop(batcher);
        remove(&path);
    }
}
