//! Reading uploaded files' text in the background: the extractor adapter (bounded CPU work
//! on blocking threads, a few at a time), the task spawned after each upload, and the
//! start-up sweep that reads what a stopped process left `pending`.

use std::num::NonZero;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use confab_core::files::FileService;
use confab_core::ports::TextExtractor;
use confab_core::{FileId, FileMeta, ServiceError, TextOutcome, TextStatus};
use confab_extract::{ExtractError, Extracted, Limits};
use tokio::sync::Semaphore;

/// How long past the extractor's own deadline a blocking task is awaited: the extractor stops
/// itself at its checks; this bounds a parser stuck between two of them.
const GRACE: Duration = Duration::from_secs(5);

/// `confab-extract` on the blocking thread pool, at most `permits` files at once.
pub struct BlockingExtractor {
    limits: Limits,
    permits: Arc<Semaphore>,
}

impl BlockingExtractor {
    /// Half the machine's cores (at least one), so extraction never starves the web workers.
    #[must_use]
    pub fn new(limits: Limits) -> Self {
        let cores = std::thread::available_parallelism().map_or(1, NonZero::get);
        Self {
            limits,
            permits: Arc::new(Semaphore::new((cores / 2).max(1))),
        }
    }
}

#[async_trait]
impl TextExtractor for BlockingExtractor {
    async fn extract(&self, bytes: Bytes, content_type: &str, filename: &str) -> TextOutcome {
        let Ok(permit) = Arc::clone(&self.permits).acquire_owned().await else {
            return TextOutcome::Failed("The server stopped before reading the file.".to_owned());
        };
        let limits = self.limits.clone();
        let (content_type, filename) = (content_type.to_owned(), filename.to_owned());
        // The permit goes with the thread: a task given up on below still holds its place.
        let work = tokio::task::spawn_blocking(move || {
            let _permit = permit;
            confab_extract::extract(&bytes, &content_type, &filename, &limits)
        });
        match tokio::time::timeout(self.limits.timeout + GRACE, work).await {
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
