//! Unit tests of `FileService::upload` with mockall mocks of the project, file and blob
//! stores: what is written where, and that nothing is left behind when an upload fails.

use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use bytes::Bytes;
use futures::executor::block_on;
use futures::stream::{self, StreamExt};
use futures::task::noop_waker_ref;

use super::FileService;
use crate::error::{BlobError, ServiceError, StoreError};
use crate::ids::{FileId, ProjectId, UserId};
use crate::model::{FileMeta, Principal, Project, TextOutcome, TextStatus, now};
use crate::ports::{
    Admission, ByteStream, MockBlobStore, MockFileStore, MockProjectStore, MockTextExtractor,
};

/// The first bytes of a PNG image (signature and the start of the IHDR chunk).
const PNG: [u8; 16] = [
    0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A, 0, 0, 0, 0x0D, b'I', b'H', b'D', b'R',
];
/// SHA-256 of "hello world".
const HELLO_WORLD_SHA256: &str = "b94d27b9934d3e08a52e52d7da7dabfac484efe37a5380ee9088f7ace2efcde9";

fn owner() -> UserId {
    UserId::new("user_alice").unwrap()
}

fn principal() -> Principal {
    Principal { user_id: owner() }
}

fn body(chunks: &[&[u8]]) -> ByteStream {
    let chunks: Vec<Result<Bytes, BlobError>> = chunks
        .iter()
        .map(|chunk| Ok(Bytes::copy_from_slice(chunk)))
        .collect();
    stream::iter(chunks).boxed()
}

/// Reads an upload body the way a blob store does: to its end, or to its first error, which
/// the store reports as `Aborted`. Polled by hand because the mock runs inside `block_on`,
/// which does not nest; the test bodies are always ready.
fn drain(mut body: ByteStream) -> Result<Vec<u8>, BlobError> {
    let mut cx = Context::from_waker(noop_waker_ref());
    let mut bytes = Vec::new();
    loop {
        match body.poll_next_unpin(&mut cx) {
            Poll::Ready(Some(Ok(chunk))) => bytes.extend_from_slice(&chunk),
            Poll::Ready(Some(Err(e))) => return Err(BlobError::Aborted(e.to_string())),
            Poll::Ready(None) => return Ok(bytes),
            Poll::Pending => panic!("test bodies are always ready"),
        }
    }
}

type Log<T> = Arc<Mutex<Vec<T>>>;

/// The mocked stores of one upload. A call nobody expected fails the test.
struct Mocks {
    project: Project,
    projects: MockProjectStore,
    files: MockFileStore,
    blobs: MockBlobStore,
    extractor: MockTextExtractor,
    /// The key of every `put`, and the bytes it read when the body was read to its end.
    puts: Log<(String, Option<Vec<u8>>)>,
    inserted: Log<FileMeta>,
    deleted: Log<String>,
}

impl Mocks {
    fn new() -> Self {
        let at = now();
        Self {
            project: Project {
                id: ProjectId::new(),
                owner_id: owner(),
                name: "Support bot".to_owned(),
                description: None,
                created_at: at,
                updated_at: at,
                knowledge: true,
                language: crate::values::SearchLanguage::default(),
            },
            projects: MockProjectStore::new(),
            files: MockFileStore::new(),
            blobs: MockBlobStore::new(),
            extractor: MockTextExtractor::new(),
            puts: Arc::default(),
            inserted: Arc::default(),
            deleted: Arc::default(),
        }
    }

    /// The extractor has room for the file.
    fn admitted(mut self) -> Self {
        self.extractor
            .expect_admit()
            .times(1)
            .returning(|| Some(Admission::new(())));
        self
    }

    fn project_found(mut self) -> Self {
        let project = self.project.clone();
        self.projects
            .expect_get_project()
            .withf(move |o, id| *o == owner() && *id == project.id)
            .times(1)
            .returning(move |_, _| Ok(project.clone()));
        self
    }

    fn project_missing(mut self) -> Self {
        self.projects
            .expect_get_project()
            .times(1)
            .returning(|_, _| Err(StoreError::NotFound));
        self
    }

    /// A blob store that reads the whole body, as a real one does.
    fn put_reads_body(mut self) -> Self {
        let puts = Arc::clone(&self.puts);
        self.blobs
            .expect_put()
            .times(1)
            .returning(move |key, body| {
                let read = drain(body);
                puts.lock()
                    .unwrap()
                    .push((key.to_owned(), read.as_ref().ok().cloned()));
                read.map(|bytes| bytes.len() as u64)
            });
        self
    }

    fn put_unavailable(mut self) -> Self {
        let puts = Arc::clone(&self.puts);
        self.blobs.expect_put().times(1).returning(move |key, _| {
            puts.lock().unwrap().push((key.to_owned(), None));
            Err(BlobError::Unavailable("disk full".to_owned()))
        });
        self
    }

    fn insert_ok(mut self) -> Self {
        self.files.expect_extracted_twin().returning(|_| Ok(None));
        let inserted = Arc::clone(&self.inserted);
        self.files
            .expect_insert_file()
            .times(1)
            .returning(move |meta| {
                inserted.lock().unwrap().push(meta.clone());
                Ok(())
            });
        self
    }

    fn insert_fails(mut self) -> Self {
        let inserted = Arc::clone(&self.inserted);
        self.files
            .expect_insert_file()
            .times(1)
            .returning(move |meta| {
                inserted.lock().unwrap().push(meta.clone());
                Err(StoreError::Unavailable("connection reset".to_owned()))
            });
        self
    }

    fn insert_never(mut self) -> Self {
        self.files.expect_insert_file().never();
        self
    }

    fn delete_ok(mut self) -> Self {
        let deleted = Arc::clone(&self.deleted);
        self.blobs.expect_delete().times(1).returning(move |key| {
            deleted.lock().unwrap().push(key.to_owned());
            Ok(())
        });
        self
    }

    fn delete_never(mut self) -> Self {
        self.blobs.expect_delete().never();
        self
    }

    fn service(self, max_bytes: u64) -> Harness {
        Harness {
            service: FileService::new(
                Arc::new(self.projects),
                Arc::new(self.files),
                Arc::new(self.blobs),
                Arc::new(self.extractor),
                max_bytes,
            ),
            project_id: self.project.id,
            puts: self.puts,
            inserted: self.inserted,
            deleted: self.deleted,
        }
    }
}

struct Harness {
    service: FileService,
    project_id: ProjectId,
    puts: Log<(String, Option<Vec<u8>>)>,
    inserted: Log<FileMeta>,
    deleted: Log<String>,
}

impl Harness {
    fn upload(&self, filename: &str, body: ByteStream) -> Result<FileMeta, ServiceError> {
        block_on(
            self.service
                .upload(&principal(), self.project_id, filename, body),
        )
    }

    /// The key of the one `put`.
    fn put_key(&self) -> String {
        let puts = self.puts.lock().unwrap();
        assert_eq!(puts.len(), 1, "one put per upload");
        puts[0].0.clone()
    }

    fn put_bytes(&self) -> Option<Vec<u8>> {
        self.puts.lock().unwrap()[0].1.clone()
    }

    fn inserted(&self) -> Vec<FileMeta> {
        self.inserted.lock().unwrap().clone()
    }

    fn deleted(&self) -> Vec<String> {
        self.deleted.lock().unwrap().clone()
    }
}

#[test]
fn an_upload_stores_the_bytes_then_metadata_with_their_size_and_sha256() {
    let h = Mocks::new()
        .project_found()
        .put_reads_body()
        .insert_ok()
        .delete_never()
        .service(1024);

    let meta = h
        .upload("notes.txt", body(&[b"hello ", b"wor", b"ld"]))
        .unwrap();

    assert_eq!(meta.size_bytes, 11);
    assert_eq!(meta.sha256, HELLO_WORLD_SHA256);
    assert_eq!(meta.content_type, "text/plain");
    assert_eq!(meta.filename, "notes.txt");
    assert_eq!(meta.owner_id, owner());
    assert_eq!(meta.project_id, h.project_id);
    assert_eq!(meta.storage_key, format!("{}/{}", h.project_id, meta.id));
    assert_eq!(
        h.put_key(),
        meta.storage_key,
        "the metadata names the bytes written"
    );
    assert_eq!(h.put_bytes().as_deref(), Some(&b"hello world"[..]));
    assert_eq!(
        meta.text_status,
        TextStatus::Pending,
        "read in the background"
    );
    assert_eq!(h.inserted(), [meta]);
}

#[test]
fn png_bytes_named_notes_txt_are_stored_as_image_png() {
    let h = Mocks::new()
        .project_found()
        .put_reads_body()
        .insert_ok()
        .delete_never()
        .service(1024);

    // The signature arrives split across chunks.
    let meta = h
        .upload("notes.txt", body(&[&PNG[..3], &PNG[3..]]))
        .unwrap();

    assert_eq!(meta.content_type, "image/png");
    assert_eq!(
        meta.filename, "notes.txt",
        "the name is kept, the type is not taken from it"
    );
    assert_eq!(h.inserted()[0].content_type, "image/png");
    assert_eq!(
        meta.text_status,
        TextStatus::None,
        "an image has no text to read"
    );
}

#[test]
fn an_upload_of_bytes_already_read_in_the_project_reuses_their_outcome() {
    let mut mocks = Mocks::new().project_found().put_reads_body().delete_never();
    mocks
        .files
        .expect_extracted_twin()
        .withf(|f| f.sha256 == HELLO_WORLD_SHA256)
        .times(1)
        .returning(|_| {
            Ok(Some(TextOutcome::Failed(
                "The PDF is protected.".to_owned(),
            )))
        });
    mocks
        .files
        .expect_insert_file()
        .times(1)
        .returning(|_| Ok(()));
    let recorded: Log<TextOutcome> = Arc::default();
    let log = Arc::clone(&recorded);
    mocks
        .files
        .expect_set_file_text()
        .times(1)
        .returning(move |_, outcome| {
            log.lock().unwrap().push(outcome.clone());
            Ok(())
        });
    mocks.extractor.expect_extract().never();
    let h = mocks.service(1024);

    let meta = h.upload("again.txt", body(&[b"hello world"])).unwrap();

    assert_eq!(meta.text_status, TextStatus::Failed);
    assert_eq!(meta.text_error.as_deref(), Some("The PDF is protected."));
    assert_eq!(
        *recorded.lock().unwrap(),
        [TextOutcome::Failed("The PDF is protected.".to_owned())]
    );
}

#[test]
fn extract_text_gives_the_stored_bytes_to_the_extractor_and_stores_its_outcome() {
    let mut mocks = Mocks::new().admitted();
    mocks.blobs.expect_get().times(1).returning(|key| {
        assert_eq!(key, "p/f");
        Ok(body(&[b"hello ", b"world"]))
    });
    mocks
        .extractor
        .expect_extract()
        .withf(|bytes, content_type, filename| {
            bytes.as_ref() == b"hello world" && content_type == "text/plain" && filename == "a.txt"
        })
        .times(1)
        .returning(|_, _, _| TextOutcome::Ready("hello world".to_owned()));
    let stored: Log<TextOutcome> = Arc::default();
    let log = Arc::clone(&stored);
    mocks
        .files
        .expect_set_file_text()
        .times(1)
        .returning(move |_, outcome| {
            log.lock().unwrap().push(outcome.clone());
            Ok(())
        });
    let h = mocks.service(1024);
    let file = FileMeta {
        filename: "a.txt".to_owned(),
        content_type: "text/plain".to_owned(),
        storage_key: "p/f".to_owned(),
        ..pending_file()
    };

    let status = block_on(h.service.extract_text(&file)).unwrap();

    assert_eq!(status, TextStatus::Ready);
    assert_eq!(
        *stored.lock().unwrap(),
        [TextOutcome::Ready("hello world".to_owned())]
    );
}

#[test]
fn extract_text_leaves_the_file_pending_when_its_bytes_cannot_be_read() {
    let mut mocks = Mocks::new().admitted();
    mocks
        .blobs
        .expect_get()
        .times(1)
        .returning(|_| Err(BlobError::Unavailable("bucket offline".to_owned())));
    mocks.extractor.expect_extract().never();
    mocks.files.expect_set_file_text().never();
    let h = mocks.service(1024);

    let result = block_on(h.service.extract_text(&pending_file()));

    assert!(result.is_err(), "{result:?}");
}

/// Pushes its word to the log when dropped.
struct Released(Log<&'static str>);

impl Drop for Released {
    fn drop(&mut self) {
        self.0.lock().unwrap().push("released");
    }
}

#[test]
fn extract_text_reads_the_bytes_only_once_admitted_and_holds_the_admission_to_the_end() {
    let mut mocks = Mocks::new();
    let steps: Log<&'static str> = Arc::default();
    let log = Arc::clone(&steps);
    mocks.extractor.expect_admit().times(1).returning(move || {
        log.lock().unwrap().push("admitted");
        Some(Admission::new(Released(Arc::clone(&log))))
    });
    let log = Arc::clone(&steps);
    mocks.blobs.expect_get().times(1).returning(move |_| {
        log.lock().unwrap().push("read");
        Ok(body(&[b"hello world"]))
    });
    let log = Arc::clone(&steps);
    mocks
        .extractor
        .expect_extract()
        .times(1)
        .returning(move |_, _, _| {
            log.lock().unwrap().push("extracted");
            TextOutcome::None
        });
    mocks
        .files
        .expect_set_file_text()
        .times(1)
        .returning(|_, _| Ok(()));
    let h = mocks.service(1024);

    block_on(h.service.extract_text(&pending_file())).unwrap();

    assert_eq!(
        *steps.lock().unwrap(),
        ["admitted", "read", "extracted", "released"]
    );
}

#[test]
fn a_file_the_extractor_refuses_for_now_stays_pending_and_its_bytes_are_not_read() {
    let mut mocks = Mocks::new();
    mocks.extractor.expect_admit().times(1).returning(|| None);
    mocks.blobs.expect_get().never();
    mocks.extractor.expect_extract().never();
    mocks.files.expect_set_file_text().never();
    let h = mocks.service(1024);

    let status = block_on(h.service.extract_text(&pending_file())).unwrap();

    assert_eq!(status, TextStatus::Pending);
}

fn pending_file() -> FileMeta {
    let project_id = ProjectId::new();
    FileMeta {
        id: FileId::new(),
        project_id,
        owner_id: owner(),
        filename: "f.txt".to_owned(),
        content_type: "text/plain".to_owned(),
        size_bytes: 11,
        sha256: HELLO_WORLD_SHA256.to_owned(),
        storage_key: "k".to_owned(),
        created_at: now(),
        text_status: TextStatus::Pending,
        text_error: None,
    }
}

#[test]
fn an_upload_over_the_limit_is_too_large_and_its_blob_is_removed() {
    let h = Mocks::new()
        .project_found()
        .put_reads_body()
        .insert_never()
        .delete_ok()
        .service(10);

    let result = h.upload("big.bin", body(&[b"abcd", b"efgh", b"ijkl"]));

    assert!(
        matches!(result, Err(ServiceError::PayloadTooLarge { limit: 10 })),
        "{result:?}"
    );
    assert_eq!(h.put_bytes(), None, "the body failed once past the limit");
    assert_eq!(h.deleted(), [h.put_key()]);
}

#[test]
fn an_upload_of_exactly_the_limit_is_accepted() {
    let h = Mocks::new()
        .project_found()
        .put_reads_body()
        .insert_ok()
        .delete_never()
        .service(11);

    let meta = h.upload("hello.txt", body(&[b"hello", b" world"])).unwrap();

    assert_eq!(meta.size_bytes, 11);
}

#[test]
fn an_empty_upload_is_refused_and_its_blob_is_removed() {
    for chunks in [&[][..], &[&b""[..]][..]] {
        let h = Mocks::new()
            .project_found()
            .put_reads_body()
            .insert_never()
            .delete_ok()
            .service(1024);

        let result = h.upload("empty.txt", body(chunks));

        match result {
            Err(ServiceError::Validation(e)) => assert_eq!(e.field, "file"),
            other => panic!("expected a validation error, got {other:?}"),
        }
        assert_eq!(h.deleted(), [h.put_key()]);
    }
}

#[test]
fn a_body_that_fails_mid_upload_is_refused_and_its_blob_is_removed() {
    let h = Mocks::new()
        .project_found()
        .put_reads_body()
        .insert_never()
        .delete_ok()
        .service(1024);
    let failing = stream::iter(vec![
        Ok(Bytes::from_static(b"abc")),
        Err(BlobError::Aborted("the client went away".to_owned())),
    ])
    .boxed();

    let result = h.upload("partial.txt", failing);

    match result {
        Err(ServiceError::Validation(e)) => assert_eq!(e.field, "file"),
        other => panic!("expected a validation error, got {other:?}"),
    }
    assert_eq!(h.deleted(), [h.put_key()]);
}

#[test]
fn a_failed_metadata_insert_removes_the_blob_so_no_orphan_is_left() {
    let h = Mocks::new()
        .project_found()
        .put_reads_body()
        .insert_fails()
        .delete_ok()
        .service(1024);

    let result = h.upload("notes.txt", body(&[b"hello world"]));

    assert!(
        matches!(result, Err(ServiceError::Unavailable(_))),
        "{result:?}"
    );
    let attempted = h.inserted();
    assert_eq!(attempted.len(), 1);
    assert_eq!(attempted[0].storage_key, h.put_key());
    assert_eq!(
        h.deleted(),
        [h.put_key()],
        "the bytes of the unrecorded file are removed"
    );
}

#[test]
fn a_blob_store_failure_is_reported_and_leaves_nothing_behind() {
    let h = Mocks::new()
        .project_found()
        .put_unavailable()
        .insert_never()
        .delete_ok()
        .service(1024);

    let result = h.upload("notes.txt", body(&[b"hello world"]));

    assert!(
        matches!(result, Err(ServiceError::Unavailable(_))),
        "{result:?}"
    );
    assert_eq!(h.deleted(), [h.put_key()]);
}

#[test]
fn a_failed_cleanup_does_not_hide_why_the_upload_was_refused() {
    let mut mocks = Mocks::new().project_found().put_reads_body().insert_never();
    mocks
        .blobs
        .expect_delete()
        .times(1)
        .returning(|_| Err(BlobError::Unavailable("disk gone".to_owned())));
    let h = mocks.service(4);

    let result = h.upload("big.bin", body(&[b"hello world"]));

    assert!(
        matches!(result, Err(ServiceError::PayloadTooLarge { limit: 4 })),
        "{result:?}"
    );
}

#[test]
fn another_users_project_is_not_found_and_nothing_is_written() {
    let mut mocks = Mocks::new().project_missing().insert_never().delete_never();
    mocks.blobs.expect_put().never();
    let h = mocks.service(1024);

    let result = h.upload("notes.txt", body(&[b"hello world"]));

    assert!(matches!(result, Err(ServiceError::NotFound)), "{result:?}");
    assert!(h.puts.lock().unwrap().is_empty());
}

#[test]
fn the_filename_is_sanitized_and_never_part_of_the_storage_key() {
    let h = Mocks::new()
        .project_found()
        .put_reads_body()
        .insert_ok()
        .delete_never()
        .service(1024);

    let meta = h
        .upload("../../etc/passwd", body(&[b"root:x:0:0"]))
        .unwrap();

    assert_eq!(meta.filename, "passwd");
    assert!(!meta.storage_key.contains("passwd") && !meta.storage_key.contains(".."));
    assert_eq!(h.put_key(), meta.storage_key);
}
