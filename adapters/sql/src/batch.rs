//! Group commit of a SQLite file's writes.
//!
//! Every write to a SQLite file goes through one [`Batcher`]: one blocking thread at a time
//! runs the writes queued, several in one `BEGIN IMMEDIATE` transaction on the writer
//! connection, each in a savepoint of its own (a write that fails is rolled back alone and
//! gets its own error), commits once, and only then gives each write its result. A commit is
//! most of a small write's cost on SQLite (the log's frames written and checksummed, a new
//! FTS5 segment per transaction, a thread hop): at 1,000 streaming replies, ~1,200 writes a
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
        let job: Box<dyn Job> = Box::new(Pending { op, answer });
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

    /// One transaction: every job in a savepoint of its own, one commit, then the results.
    /// The `foreground` jobs run first and the batch commits after them; when a foreground
    /// write comes while `background` jobs run, it runs after the one running and the batch
    /// commits: the background jobs not run are returned, to go first in the next batch.
    async fn run_batch(
        &self,
        c: &mut SqliteConn,
        foreground: Vec<Box<dyn Job>>,
        background: Vec<Box<dyn Job>>,
    ) -> Vec<Box<dyn Job>> {
        let began = c
            .spawn_blocking(|c| AnsiTransactionManager::begin_transaction_sql(c, "BEGIN IMMEDIATE"))
            .await;
        if let Err(e) = began {
            let error = translate(e);
            for job in foreground.into_iter().chain(background) {
                job.fail(copy(&error));
            }
            return Vec::new();
        }
        let mut batch = Batch {
            told: Vec::with_capacity(foreground.len() + background.len()),
            usable: true,
        };
        if !foreground.is_empty() {
            batch.run(c, foreground).await;
            batch.end(c).await;
            return background;
        }
        let mut background = background.into_iter();
        while let Some(job) = background.next() {
            let waiting = std::mem::take(&mut self.lock().foreground);
            if !waiting.is_empty() {
                batch.run(c, waiting).await;
                batch.end(c).await;
                let mut left = vec![job];
                left.extend(background);
                return left;
            }
            batch.run(c, vec![job]).await;
        }
        batch.end(c).await;
        Vec::new()
    }
}

/// The jobs of one transaction so far.
struct Batch {
    told: Vec<Box<dyn Told>>,
    /// The transaction may still be committed.
    usable: bool,
}

impl Batch {
    async fn run(&mut self, c: &mut SqliteConn, jobs: Vec<Box<dyn Job>>) {
        for job in jobs {
            if !self.usable {
                job.fail(StoreError::Internal(
                    "an earlier write of its transaction failed".to_owned(),
                ));
                continue;
            }
            let (result, usable) = job.run(c).await;
            self.usable = usable;
            self.told.push(result);
        }
    }

    /// Commits the transaction, or rolls it back when it is not usable, and gives every job
    /// its result.
    async fn end(self, c: &mut SqliteConn) {
        let failed = if self.usable {
            // A commit that fails is rolled back by diesel.
            Manager::commit_transaction(c).await.err().map(translate)
        } else {
            if let Err(e) = Manager::rollback_transaction(c).await {
                tracing::error!(error = %e, "could not roll back a batch of writes");
            }
            Some(StoreError::Internal(
                "a batch of writes was rolled back".to_owned(),
            ))
        };
        for result in self.told {
            result.tell(failed.as_ref().map(copy));
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
            let slow = op(move |c| {
                Box::pin(async move {
                    // Held until the test has seen the foreground write's result.
                    let _ = wait.recv_timeout(Duration::from_secs(5));
                    insert(1, false)(c).await
                })
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
