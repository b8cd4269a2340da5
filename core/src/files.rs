//! Uploads: bytes are streamed to a `BlobStore` under a generated key while their size is
//! counted against the limit, their SHA-256 computed and their first bytes kept to detect
//! the type; only then is the metadata stored. A blob whose metadata could not be stored is
//! removed, and so is one whose upload failed: nothing is left behind.
//!
//! A file's text is read after its upload: the caller runs [`FileService::extract_text`] in
//! the background (and [`FileService::pending_texts`] finds what a stop left unread). Bytes
//! already read in the same project (same SHA-256) are not read again.

use std::sync::{Arc, Mutex, PoisonError};

use bytes::Bytes;
use futures::StreamExt;
use sha2::{Digest, Sha256};

use crate::cursor;
use crate::error::{BlobError, ServiceError};
use crate::ids::{FileId, ProjectId};
use crate::model::{FileMeta, Page, Principal, TextOutcome, TextStatus, now};
use crate::ports::{BlobStore, ByteStream, FileStore, ProjectStore, TextExtractor};
use crate::services::{PageQuery, paged};
use crate::values::ValidationError;

/// How many leading bytes are kept for type detection.
const SNIFF_BYTES: usize = 8 * 1024;
/// The longest display filename kept, in characters.
pub const MAX_FILENAME_CHARS: usize = 255;

/// File uploads and downloads.
#[derive(Clone)]
pub struct FileService {
    projects: Arc<dyn ProjectStore>,
    files: Arc<dyn FileStore>,
    blobs: Arc<dyn BlobStore>,
    extractor: Arc<dyn TextExtractor>,
    max_bytes: u64,
}

#[derive(Default)]
struct Tally {
    size: u64,
    hasher: Sha256,
    head: Vec<u8>,
    too_large: bool,
}

impl FileService {
    #[must_use]
    pub fn new(
        projects: Arc<dyn ProjectStore>,
        files: Arc<dyn FileStore>,
        blobs: Arc<dyn BlobStore>,
        extractor: Arc<dyn TextExtractor>,
        max_bytes: u64,
    ) -> Self {
        Self {
            projects,
            files,
            blobs,
            extractor,
            max_bytes,
        }
    }

    #[must_use]
    pub const fn max_bytes(&self) -> u64 {
        self.max_bytes
    }

    /// Streams an upload into storage. `PayloadTooLarge` past the limit and `Validation` for
    /// an empty file, with nothing stored in either case.
    pub async fn upload(
        &self,
        principal: &Principal,
        project_id: ProjectId,
        filename: &str,
        body: ByteStream,
    ) -> Result<FileMeta, ServiceError> {
        let owner = &principal.user_id;
        self.projects.get_project(owner, project_id).await?;
        let id = FileId::new();
        let storage_key = format!("{project_id}/{id}");
        let tally = Arc::new(Mutex::new(Tally::default()));
        let counted = count_bytes(body, Arc::clone(&tally), self.max_bytes);
        let put = self.blobs.put(&storage_key, counted).await;
        let tally = std::mem::take(&mut *tally.lock().unwrap_or_else(PoisonError::into_inner));

        let failure = match put {
            _ if tally.too_large => Some(ServiceError::PayloadTooLarge {
                limit: self.max_bytes,
            }),
            Err(BlobError::Aborted(reason)) => Some(ServiceError::Validation(
                ValidationError::new("file", format!("could not be read: {reason}")),
            )),
            Err(e) => Some(e.into()),
            Ok(_) if tally.size == 0 => Some(ServiceError::Validation(ValidationError::new(
                "file",
                "must not be empty",
            ))),
            Ok(_) => None,
        };
        if let Some(error) = failure {
            self.remove_blob(&storage_key).await;
            return Err(error);
        }

        let clean_name = sanitize_filename(filename);
        let content_type = detect_content_type(&tally.head, &clean_name);
        let mut meta = FileMeta {
            id,
            project_id,
            owner_id: owner.clone(),
            content_type: content_type.to_owned(),
            filename: clean_name,
            size_bytes: tally.size,
            sha256: hex::encode(tally.hasher.finalize()),
            storage_key,
            created_at: now(),
            text_status: if has_no_text(content_type) {
                TextStatus::None
            } else {
                TextStatus::Pending
            },
            text_error: None,
        };
        if let Err(e) = self.files.insert_file(&meta).await {
            self.remove_blob(&meta.storage_key).await;
            return Err(e.into());
        }
        if meta.text_status == TextStatus::Pending {
            self.reuse_twin_text(&mut meta).await;
        }
        Ok(meta)
    }

    /// Gives a new file the finished extraction of the same bytes in its project, if any;
    /// when that fails the file stays pending and is read as usual.
    async fn reuse_twin_text(&self, meta: &mut FileMeta) {
        let outcome = match self.files.extracted_twin(meta).await {
            Ok(Some(outcome)) => outcome,
            Ok(None) => return,
            Err(e) => {
                tracing::warn!(file_id = %meta.id, error = %e, "could not look for a file's twin");
                return;
            }
        };
        match self.files.set_file_text(meta.id, &outcome).await {
            Ok(()) => {
                meta.text_status = outcome.status();
                meta.text_error = match outcome {
                    TextOutcome::Failed(error) => Some(error),
                    TextOutcome::Ready(_) | TextOutcome::None => None,
                };
            }
            Err(e) => {
                tracing::warn!(file_id = %meta.id, error = %e, "could not reuse a twin's text");
            }
        }
    }

    /// Reads a pending file's bytes, extracts their text and stores the outcome, returning
    /// its status. A storage error, or an extractor refusing work, leaves the file pending,
    /// for a later sweep. The bytes are read only once the extractor admits the file.
    pub async fn extract_text(&self, file: &FileMeta) -> Result<TextStatus, ServiceError> {
        let Some(_admission) = self.extractor.admit().await else {
            return Ok(TextStatus::Pending);
        };
        let mut stream = self.blobs.get(&file.storage_key).await?;
        let mut bytes = Vec::new();
        let mut too_large = false;
        while let Some(chunk) = stream.next().await {
            let chunk = chunk?;
            if (bytes.len() + chunk.len()) as u64 > self.max_bytes {
                too_large = true;
                break;
            }
            bytes.extend_from_slice(&chunk);
        }
        let outcome = if too_large {
            TextOutcome::Failed(format!(
                "The file is larger than the limit of {} bytes.",
                self.max_bytes
            ))
        } else {
            self.extractor
                .extract(Bytes::from(bytes), &file.content_type, &file.filename)
                .await
        };
        self.files.set_file_text(file.id, &outcome).await?;
        Ok(outcome.status())
    }

    /// Files of any owner whose text is still to be read, oldest first, after `after`.
    pub async fn pending_texts(
        &self,
        after: Option<FileId>,
        limit: u32,
    ) -> Result<Vec<FileMeta>, ServiceError> {
        Ok(self.files.pending_files(after, limit).await?)
    }

    pub async fn get(&self, principal: &Principal, id: FileId) -> Result<FileMeta, ServiceError> {
        Ok(self.files.get_file(&principal.user_id, id).await?)
    }

    pub async fn list(
        &self,
        principal: &Principal,
        project_id: ProjectId,
        page: &PageQuery,
    ) -> Result<Page<FileMeta>, ServiceError> {
        let after = page
            .cursor
            .as_deref()
            .map(cursor::decode_id)
            .transpose()?
            .map(FileId::from_uuid);
        let rows = self
            .files
            .list_files(&principal.user_id, project_id, after, page.limit.get() + 1)
            .await?;
        Ok(paged(rows, page.limit, |f| {
            cursor::encode_id(f.id.as_uuid())
        }))
    }

    /// The metadata and a stream of the bytes.
    pub async fn download(
        &self,
        principal: &Principal,
        id: FileId,
    ) -> Result<(FileMeta, ByteStream), ServiceError> {
        let meta = self.files.get_file(&principal.user_id, id).await?;
        let bytes = self.blobs.get(&meta.storage_key).await?;
        Ok((meta, bytes))
    }

    /// Removes the metadata, then the bytes.
    pub async fn delete(&self, principal: &Principal, id: FileId) -> Result<(), ServiceError> {
        let meta = self.files.delete_file(&principal.user_id, id).await?;
        self.remove_blob(&meta.storage_key).await;
        Ok(())
    }

    async fn remove_blob(&self, key: &str) {
        if let Err(e) = self.blobs.delete(key).await {
            tracing::warn!(storage_key = %key, error = %e, "could not remove file bytes");
        }
    }
}

/// Wraps an upload: counts, hashes and keeps the head of the bytes; fails past `max_bytes`.
fn count_bytes(body: ByteStream, tally: Arc<Mutex<Tally>>, max_bytes: u64) -> ByteStream {
    body.map(move |chunk| {
        let chunk: Bytes = chunk?;
        let mut t = tally.lock().unwrap_or_else(PoisonError::into_inner);
        t.size = t.size.saturating_add(chunk.len() as u64);
        if t.size > max_bytes {
            t.too_large = true;
            return Err(BlobError::Aborted(format!("larger than {max_bytes} bytes")));
        }
        t.hasher.update(&chunk);
        if t.head.len() < SNIFF_BYTES {
            let take = (SNIFF_BYTES - t.head.len()).min(chunk.len());
            t.head.extend_from_slice(&chunk[..take]);
        }
        Ok(chunk)
    })
    .boxed()
}

/// Images, audio and video: never read for text.
fn has_no_text(content_type: &str) -> bool {
    ["image/", "audio/", "video/"]
        .iter()
        .any(|prefix| content_type.starts_with(prefix))
}

/// A display name that is safe anywhere it is shown or put in a header: the last path
/// component, without control characters, trimmed, at most 255 characters; `file` when
/// nothing is left. It is never used as a storage path.
#[must_use]
pub fn sanitize_filename(raw: &str) -> String {
    let last = raw.rsplit(['/', '\\']).next().unwrap_or_default();
    let cleaned: String = last
        .chars()
        .filter(|c| !c.is_control())
        .take(MAX_FILENAME_CHARS)
        .collect();
    let cleaned = cleaned.trim().trim_start_matches('.').trim();
    if cleaned.is_empty() {
        "file".to_owned()
    } else {
        cleaned.to_owned()
    }
}

/// The content type from the bytes' magic numbers, else from the extension of the
/// (sanitized) name, else `application/octet-stream`.
#[must_use]
pub fn detect_content_type(head: &[u8], filename: &str) -> &'static str {
    if let Some(kind) = infer::get(head) {
        return kind.mime_type();
    }
    let extension = filename
        .rsplit_once('.')
        .map(|(_, ext)| ext.to_ascii_lowercase())
        .unwrap_or_default();
    let by_extension = match extension.as_str() {
        "txt" | "log" => "text/plain",
        "md" | "markdown" => "text/markdown",
        "csv" => "text/csv",
        "tsv" => "text/tab-separated-values",
        "json" => "application/json",
        "jsonl" | "ndjson" => "application/x-ndjson",
        "yaml" | "yml" => "application/yaml",
        "toml" => "application/toml",
        "xml" => "application/xml",
        "html" | "htm" => "text/html",
        "css" => "text/css",
        "js" | "mjs" => "text/javascript",
        "rs" | "py" | "go" | "java" | "c" | "h" | "cpp" | "ts" | "sh" | "sql" | "rb" => {
            "text/plain"
        }
        "svg" => "image/svg+xml",
        _ => "",
    };
    if !by_extension.is_empty() {
        return by_extension;
    }
    if !head.is_empty() && std::str::from_utf8(head).is_ok() {
        return "text/plain";
    }
    "application/octet-stream"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filenames_lose_paths_and_control_characters() {
        assert_eq!(sanitize_filename("../../etc/passwd"), "passwd");
        assert_eq!(sanitize_filename("C:\\Users\\me\\report.pdf"), "report.pdf");
        assert_eq!(sanitize_filename("a\u{0}b\nc.txt"), "abc.txt");
        assert_eq!(sanitize_filename(".."), "file");
        assert_eq!(sanitize_filename(""), "file");
        assert_eq!(sanitize_filename(&"é".repeat(300)).chars().count(), 255);
    }

    #[test]
    fn content_type_comes_from_the_bytes_first() {
        let png = [
            0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A, 0, 0, 0, 0x0D, b'I', b'H', b'D', b'R',
        ];
        assert_eq!(detect_content_type(&png, "notes.txt"), "image/png");
        assert_eq!(
            detect_content_type(b"# Title", "readme.md"),
            "text/markdown"
        );
        assert_eq!(detect_content_type(b"hello", "noext"), "text/plain");
        assert_eq!(
            detect_content_type(&[0xff, 0xfe, 0x00, 0x81], "blob"),
            "application/octet-stream"
        );
    }
}

#[cfg(test)]
#[path = "files_tests.rs"]
mod upload_tests;
