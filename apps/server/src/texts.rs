//! Reading uploaded files' text in the background: the extractor adapter (bounded CPU work
//! on blocking threads, a few at a time), the task spawned after each upload, and the
//! start-up sweep that reads what a stopped process left `pending`.

use std::num::NonZero;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use confab_core::files::FileService;
use confab_core::ports::{Admission, TextExtractor};
use confab_core::{FileId, FileMeta, ServiceError, TextOutcome, TextStatus};
use confab_extract::{ExtractError, Extracted, Limits};
use tokio::sync::Semaphore;

/// How long past the extractor's own deadline a blocking task is awaited: the extractor stops
/// itself at its checks; this bounds a parser stuck between two of them.
const GRACE: Duration = Duration::from_secs(5);

/// How many threads given up on (a parser stuck past its deadline) may still run before new
/// files are refused (left pending for a later start): a stuck thread cannot be stopped, so
/// this keeps them from piling up without limit.
const MAX_STUCK: usize = 2;

/// `confab-extract` on the blocking thread pool, at most `permits` files at once.
pub struct BlockingExtractor {
    limits: Limits,
    permits: Arc<Semaphore>,
    /// How long past `limits.timeout` a thread is awaited (`GRACE`).
    grace: Duration,
    /// Threads still running after their file was given up on.
    stuck: Arc<AtomicUsize>,
}

impl BlockingExtractor {
    /// Half the machine's cores (at least one), so extraction never starves the web workers.
    #[must_use]
    pub fn new(limits: Limits) -> Self {
        let cores = std::thread::available_parallelism().map_or(1, NonZero::get);
        Self::with_permits(limits, (cores / 2).max(1))
    }

    fn with_permits(limits: Limits, permits: usize) -> Self {
        Self {
            limits,
            permits: Arc::new(Semaphore::new(permits)),
            grace: GRACE,
            stuck: Arc::default(),
        }
    }

    /// Runs `job` on a blocking thread, giving up on it after the deadline: the caller's
    /// admission is then released and the queue moves on, while the thread is counted as
    /// stuck until it ends.
    async fn run<T: Send + 'static>(
        &self,
        job: impl FnOnce() -> T + Send + 'static,
    ) -> Result<Result<T, tokio::task::JoinError>, tokio::time::error::Elapsed> {
        let given_up = Arc::new(AtomicBool::new(false));
        let (flag, stuck) = (Arc::clone(&given_up), Arc::clone(&self.stuck));
        let work = tokio::task::spawn_blocking(move || {
            let out = job();
            // Whoever comes second (this end, or the give-up) settles the count.
            if flag.swap(true, Ordering::AcqRel) {
                stuck.fetch_sub(1, Ordering::AcqRel);
            }
            out
        });
        let outcome = tokio::time::timeout(self.limits.timeout + self.grace, work).await;
        if outcome.is_err() && !given_up.swap(true, Ordering::AcqRel) {
            self.stuck.fetch_add(1, Ordering::AcqRel);
        }
        outcome
    }
}

#[async_trait]
impl TextExtractor for BlockingExtractor {
    async fn admit(&self) -> Option<Admission> {
        if self.stuck.load(Ordering::Acquire) >= MAX_STUCK {
            tracing::warn!(
                stuck = MAX_STUCK,
                "text extraction threads are stuck; new files stay pending"
            );
            return None;
        }
        let permit = Arc::clone(&self.permits).acquire_owned().await.ok()?;
        Some(Admission::new(permit))
    }

    async fn extract(&self, bytes: Bytes, content_type: &str, filename: &str) -> TextOutcome {
        let limits = self.limits.clone();
        let (content_type, filename) = (content_type.to_owned(), filename.to_owned());
        let work =
            self.run(move || confab_extract::extract(&bytes, &content_type, &filename, &limits));
        match work.await {
            Ok(Ok(Ok(Extracted::Text { text, .. }))) => TextOutcome::Ready(text),
            Ok(Ok(Ok(Extracted::NoText))) => TextOutcome::None,
            Ok(Ok(Err(e))) => TextOutcome::Failed(e.to_string()),
            Ok(Err(e)) => {
                tracing::error!(error = %e, "a text extraction thread failed");
                TextOutcome::Failed("The file's text could not be read.".to_owned())
            }
            Err(_) => TextOutcome::Failed(
                ExtractError::TimedOut(self.limits.timeout.as_secs()).to_string(),
            ),
        }
    }
}

/// Reads a new file's text in a task of its own, so the upload is answered at once. A file
/// whose task is lost (the process stopped) stays `pending` for the next start's sweep.
pub fn read_in_background(files: FileService, file: FileMeta) {
    if file.text_status != TextStatus::Pending {
        return;
    }
    tokio::spawn(async move { read_one(&files, &file).await });
}

async fn read_one(files: &FileService, file: &FileMeta) {
    match files.extract_text(file).await {
        Ok(status) => {
            tracing::debug!(file_id = %file.id, status = status.as_str(), "read a file's text")
        }
        // Deleted while it was read: nothing to keep.
        Err(ServiceError::NotFound) => {}
        Err(e) => {
            tracing::warn!(file_id = %file.id, error = %e, "could not read a file's text; it stays pending")
        }
    }
}

/// How many pending files one round of the sweep reads.
const SWEEP_PAGE: u32 = 50;

/// Reads, one after another, every file left `pending` by an earlier process (files
/// uploaded since this start have tasks of their own and are left to them).
pub fn start_pending_sweep(files: FileService) {
    let horizon = FileId::new();
    tokio::spawn(async move {
        let mut after = None;
        let mut read = 0u64;
        loop {
            let page = match files.pending_texts(after, SWEEP_PAGE).await {
                Ok(page) => page,
                Err(e) => {
                    tracing::warn!(error = %e, "could not list files whose text is pending");
                    return;
                }
            };
            let last = page.len() < SWEEP_PAGE as usize;
            for file in page.iter().take_while(|f| f.id < horizon) {
                read_one(&files, file).await;
                read += 1;
            }
            match page.last() {
                Some(file) if !last && file.id < horizon => after = Some(file.id),
                _ => break,
            }
        }
        if read > 0 {
            tracing::info!(
                files = read,
                "read the text of files an earlier process left pending"
            );
        }
    });
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc;

    use super::*;

    const SOON: Duration = Duration::from_secs(2);

    fn extractor() -> BlockingExtractor {
        let limits = Limits {
            timeout: Duration::from_millis(20),
            ..Limits::default()
        };
        BlockingExtractor {
            grace: Duration::from_millis(20),
            ..BlockingExtractor::with_permits(limits, 1)
        }
    }

    /// Runs a job that blocks until its sender is used or dropped, under an admission
    /// dropped when the job is given up on; returns the sender.
    async fn hang(extractor: &BlockingExtractor) -> mpsc::Sender<()> {
        let admission = tokio::time::timeout(SOON, extractor.admit())
            .await
            .expect("the queue moves on")
            .expect("admitted");
        let (release, wait) = mpsc::channel::<()>();
        let given_up = extractor.run(move || wait.recv()).await;
        assert!(given_up.is_err(), "the stuck job is given up on");
        drop(admission);
        release
    }

    #[tokio::test]
    async fn a_stuck_thread_frees_its_place_and_too_many_stop_new_work_until_they_end() {
        let extractor = extractor();
        let first = hang(&extractor).await;
        assert_eq!(extractor.stuck.load(Ordering::Acquire), 1);
        // One permit only: the second file is admitted because the first gave its place back.
        let second = hang(&extractor).await;
        assert_eq!(extractor.stuck.load(Ordering::Acquire), MAX_STUCK);
        assert!(
            extractor.admit().await.is_none(),
            "new work is refused while too many threads are stuck"
        );

        drop((first, second));
        let deadline = tokio::time::Instant::now() + SOON;
        while extractor.stuck.load(Ordering::Acquire) > 0 {
            assert!(
                tokio::time::Instant::now() < deadline,
                "stuck threads are counted out"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        assert!(extractor.admit().await.is_some(), "work resumes");
    }

    #[tokio::test]
    async fn a_job_that_ends_in_time_is_not_counted_as_stuck() {
        let extractor = extractor();
        let done = extractor.run(|| 7).await;
        assert!(matches!(done, Ok(Ok(7))));
        assert_eq!(extractor.stuck.load(Ordering::Acquire), 0);
    }
}
