//! `ObjectBlobStore` on a local directory: the `BlobStore` contract and the promises beyond
//! it (no staging file left behind, nothing written outside the directory); and the same
//! round trip and abort over S3, against an S3-compatible server the tests start (and, when
//! `CONFAB_TEST_S3_URL` names a bucket, against that service too).
// Test code: a failed unwrap is a failed test (clippy.toml covers #[test] and #[cfg(test)];
// this covers the helpers of this test crate).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use bytes::Bytes;
use confab_core::error::BlobError;
use confab_core::ports::{BlobStore, ByteStream};
use confab_files::{ObjectBlobStore, OpenError};
use futures::StreamExt;
use tempfile::TempDir;

const KEY: &str = "0197a8f2-0000-7000-8000-000000000001/0197a8f2-0000-7000-8000-000000000002";

fn fresh() -> (TempDir, ObjectBlobStore) {
    let dir = tempfile::tempdir().unwrap();
    let store = ObjectBlobStore::local(dir.path()).unwrap();
    (dir, store)
}

/// Deterministic, non-repeating test bytes.
fn pattern(len: usize, seed: u32) -> Vec<u8> {
    let mut x = seed.wrapping_mul(2_654_435_761).wrapping_add(1);
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect()
}

fn stream_of(chunks: Vec<Result<Bytes, BlobError>>) -> ByteStream {
    futures::stream::iter(chunks).boxed()
}

async fn read_all(store: &ObjectBlobStore, key: &str) -> Result<(Vec<u8>, usize), BlobError> {
    let mut stream = store.get(key).await?;
    let mut out = Vec::new();
    let mut chunks = 0;
    while let Some(chunk) = stream.next().await {
        out.extend_from_slice(&chunk?);
        chunks += 1;
    }
    Ok((out, chunks))
}

/// Every file below `dir`, recursively (directories themselves are not listed).
fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(d) = pending.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                pending.push(path);
            } else {
                files.push(path);
            }
        }
    }
    files
}

#[tokio::test]
async fn round_trip_returns_the_same_bytes_across_many_chunks() {
    let (_dir, store) = fresh();
    // 500 chunks of uneven sizes, about 2.5 MiB: several parts of the multipart upload.
    let chunks: Vec<Vec<u8>> = (0..500u32)
        .map(|i| pattern(1 + (i as usize * 7919) % 10_000, i))
        .collect();
    let expected: Vec<u8> = chunks.concat();
    let body = stream_of(chunks.into_iter().map(|c| Ok(Bytes::from(c))).collect());

    let written = store.put(KEY, body).await.unwrap();

    assert_eq!(written, expected.len() as u64);
    let (stored, read_chunks) = read_all(&store, KEY).await.unwrap();
    assert_eq!(stored.len(), expected.len());
    assert!(
        stored == expected,
        "the bytes read back differ from those written"
    );
    assert!(
        read_chunks > 1,
        "get should stream the bytes, not return one chunk"
    );
}

#[tokio::test]
async fn an_empty_body_is_stored_as_an_empty_blob() {
    let (_dir, store) = fresh();

    let written = store.put(KEY, stream_of(vec![])).await.unwrap();

    assert_eq!(written, 0);
    let (stored, _) = read_all(&store, KEY).await.unwrap();
    assert!(stored.is_empty());
}

#[tokio::test]
async fn a_stream_error_mid_upload_aborts_and_leaves_no_file_and_no_temp_file() {
    let (dir, store) = fresh();
    // 3 MiB before the error: parts have already been written to the staging file.
    let mut chunks: Vec<Result<Bytes, BlobError>> = (0..48u32)
        .map(|i| Ok(Bytes::from(pattern(64 * 1024, i))))
        .collect();
    chunks.push(Err(BlobError::Aborted("the client went away".into())));
    chunks.push(Ok(Bytes::from_static(b"never written")));

    let result = store.put(KEY, stream_of(chunks)).await;

    match result {
        Err(BlobError::Aborted(why)) => assert_eq!(why, "the client went away"),
        other => panic!("expected Aborted, got {other:?}"),
    }
    assert_eq!(files_under(dir.path()), Vec::<PathBuf>::new());
    assert!(matches!(store.get(KEY).await, Err(BlobError::NotFound)));
}

#[tokio::test]
async fn a_stream_error_of_another_kind_is_still_reported_as_aborted() {
    let (dir, store) = fresh();
    let chunks = vec![
        Ok(Bytes::from_static(b"some bytes")),
        Err(BlobError::Unavailable("body reader failed".into())),
    ];

    let result = store.put(KEY, stream_of(chunks)).await;

    assert!(
        matches!(result, Err(BlobError::Aborted(_))),
        "got {result:?}"
    );
    assert_eq!(files_under(dir.path()), Vec::<PathBuf>::new());
}

#[tokio::test]
async fn a_cancelled_upload_leaves_no_temp_file() {
    let (dir, store) = fresh();
    // Two MiB, then a body that never ends: the caller gives up and drops `put`.
    let head = futures::stream::iter(
        (0..32u32).map(|i| Ok::<_, BlobError>(Bytes::from(pattern(64 * 1024, i)))),
    );
    let body: ByteStream = head.chain(futures::stream::pending()).boxed();

    let put = tokio::time::timeout(Duration::from_millis(300), store.put(KEY, body)).await;
    assert!(
        put.is_err(),
        "the upload should still be waiting for its body"
    );

    // The clean-up runs in the background once the upload is dropped.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while !files_under(dir.path()).is_empty() && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(files_under(dir.path()), Vec::<PathBuf>::new());
}

#[tokio::test]
async fn a_25_mib_upload_in_64_kib_chunks_is_stored_whole() {
    let (dir, store) = fresh();
    const CHUNK: usize = 64 * 1024;
    const CHUNKS: u32 = 400; // 25 MiB
    // Generated lazily: the test does not hold the whole body either.
    let body = futures::stream::iter(0..CHUNKS)
        .map(|i| Ok(Bytes::from(pattern(CHUNK, i))))
        .boxed();

    let written = store.put(KEY, body).await.unwrap();

    assert_eq!(written, 25 * 1024 * 1024);
    let on_disk = std::fs::metadata(dir.path().join(KEY)).unwrap().len();
    assert_eq!(on_disk, 25 * 1024 * 1024);
    // Compare as a stream, chunk by chunk, against the same generator.
    let mut stored = store.get(KEY).await.unwrap();
    let mut expected = (0..CHUNKS).flat_map(|i| pattern(CHUNK, i));
    let mut compared = 0usize;
    while let Some(chunk) = stored.next().await {
        for byte in chunk.unwrap().iter() {
            assert_eq!(Some(*byte), expected.next(), "byte {compared} differs");
            compared += 1;
        }
    }
    assert_eq!(compared, 25 * 1024 * 1024);
    assert_eq!(
        files_under(dir.path()).len(),
        1,
        "a staging file was left behind"
    );
}

#[tokio::test]
async fn keys_that_could_escape_the_directory_are_refused_and_nothing_is_written_outside() {
    let outer = tempfile::tempdir().unwrap();
    let root = outer.path().join("files");
    let store = ObjectBlobStore::local(&root).unwrap();
    let absolute = outer.path().join("absolute").display().to_string();
    let bad_keys = [
        "../escaped",
        "project/../../escaped",
        "project/..",
        "..",
        absolute.as_str(),
        "..\\escaped",
        "project\\..\\..\\escaped",
        "project//file",
        "./file",
        "",
    ];

    for key in bad_keys {
        let put = store
            .put(key, stream_of(vec![Ok(Bytes::from_static(b"x"))]))
            .await;
        assert!(
            matches!(put, Err(BlobError::Internal(_))),
            "put {key:?}: {put:?}"
        );
        let get = store.get(key).await;
        assert!(matches!(get, Err(BlobError::Internal(_))), "get {key:?}");
        let delete = store.delete(key).await;
        assert!(
            matches!(delete, Err(BlobError::Internal(_))),
            "delete {key:?}: {delete:?}"
        );
    }

    assert_eq!(files_under(outer.path()), Vec::<PathBuf>::new());
    let entries: Vec<_> = std::fs::read_dir(outer.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(
        entries,
        vec!["files"],
        "something was created beside the store's directory"
    );
}

#[tokio::test]
async fn delete_is_idempotent() {
    let (dir, store) = fresh();
    store
        .put(KEY, stream_of(vec![Ok(Bytes::from_static(b"hello"))]))
        .await
        .unwrap();

    store.delete(KEY).await.unwrap();
    store.delete(KEY).await.unwrap();
    store.delete("never/stored").await.unwrap();

    assert!(matches!(store.get(KEY).await, Err(BlobError::NotFound)));
    assert_eq!(files_under(dir.path()), Vec::<PathBuf>::new());
}

#[tokio::test]
async fn deleting_a_projects_last_file_removes_its_directory_but_not_the_root() {
    let (dir, store) = fresh();
    store
        .put("project/a", stream_of(vec![Ok(Bytes::from_static(b"a"))]))
        .await
        .unwrap();
    store
        .put("project/b", stream_of(vec![Ok(Bytes::from_static(b"b"))]))
        .await
        .unwrap();

    store.delete("project/a").await.unwrap();
    assert!(
        dir.path().join("project").is_dir(),
        "removed while a file remained"
    );
    store.delete("project/b").await.unwrap();

    assert!(!dir.path().join("project").exists());
    assert!(dir.path().is_dir());
}

#[tokio::test]
async fn get_of_a_missing_key_is_not_found() {
    let (_dir, store) = fresh();

    assert!(matches!(store.get(KEY).await, Err(BlobError::NotFound)));
    assert!(matches!(
        store.get("no-such-project/file").await,
        Err(BlobError::NotFound)
    ));
}

#[tokio::test]
async fn a_second_put_under_a_key_replaces_the_bytes() {
    let (_dir, store) = fresh();
    store
        .put(
            KEY,
            stream_of(vec![Ok(Bytes::from_static(b"first version, longer"))]),
        )
        .await
        .unwrap();

    store
        .put(KEY, stream_of(vec![Ok(Bytes::from_static(b"second"))]))
        .await
        .unwrap();

    assert_eq!(read_all(&store, KEY).await.unwrap().0, b"second");
}

#[tokio::test]
async fn local_creates_a_missing_directory_and_describes_it() {
    let outer = tempfile::tempdir().unwrap();
    let root = outer.path().join("data").join("files");

    let store = ObjectBlobStore::local(&root).unwrap();
    store
        .put(KEY, stream_of(vec![Ok(Bytes::from_static(b"x"))]))
        .await
        .unwrap();

    assert!(root.join(KEY).is_file());
    assert_eq!(
        store.describe(),
        format!("local directory {}", root.display())
    );
}

#[tokio::test]
async fn from_url_with_a_file_url_stores_in_that_directory() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("file://{}", dir.path().display());

    let store = ObjectBlobStore::from_url(&url).unwrap();
    store
        .put(KEY, stream_of(vec![Ok(Bytes::from_static(b"via url"))]))
        .await
        .unwrap();

    assert_eq!(std::fs::read(dir.path().join(KEY)).unwrap(), b"via url");
    assert!(store.describe().starts_with("local directory "));
}

#[test]
fn from_url_refuses_unsupported_schemes_and_malformed_urls() {
    assert!(matches!(
        ObjectBlobStore::from_url("ftp://example.com/files"),
        Err(OpenError::UnsupportedScheme(s)) if s == "ftp"
    ));
    assert!(matches!(
        ObjectBlobStore::from_url("file://host/path"),
        Err(OpenError::InvalidUrl(_))
    ));
}

#[cfg(feature = "s3")]
#[test]
fn from_url_with_an_s3_url_describes_bucket_and_prefix_without_credentials() {
    // Building the client does not touch the network.
    let store =
        ObjectBlobStore::from_url("s3://AKIAEXAMPLE:supersecret@uploads/confab/files").unwrap();

    let description = store.describe();
    assert!(
        description.starts_with("s3 bucket uploads, prefix confab/files"),
        "{description}"
    );
    assert!(!description.contains("supersecret"));
    assert!(!description.contains("AKIAEXAMPLE"));
}

#[cfg(feature = "s3")]
#[test]
fn from_url_with_an_s3_url_without_bucket_is_refused() {
    assert!(matches!(
        ObjectBlobStore::from_url("s3:///prefix"),
        Err(OpenError::InvalidUrl(_))
    ));
}

/// The `s3://` path against a real S3-compatible server: `LocalS3` (s3s-fs on a temporary
/// directory, started inside this process, checking request signatures); and, when
/// `CONFAB_TEST_S3_URL` (e.g. `s3://confab-test/run1`) names a bucket with the `AWS_*`
/// variables pointing at it, against that service too.
#[cfg(feature = "s3")]
mod s3 {
    use super::*;
    use confab_files::testing::LocalS3;

    async fn local_s3() -> LocalS3 {
        LocalS3::start().await.unwrap()
    }

    /// The multipart uploads open on a `LocalS3` server: s3s-fs keeps one
    /// `.upload-<id>.json` file per upload from its creation until it is completed or aborted.
    /// (A part whose request was already on its way when the upload was aborted may still
    /// land in the server's directory, as it may on S3, so the parts themselves are not
    /// counted.)
    fn open_uploads(server: &LocalS3) -> Vec<PathBuf> {
        files_under(server.root())
            .into_iter()
            .filter(|path| {
                path.file_name()
                    .and_then(|name| name.to_str())
                    .is_some_and(|name| name.starts_with(".upload-") && name.ends_with(".json"))
            })
            .collect()
    }

    /// A key of its own for each run, so that runs against a shared bucket do not meet.
    fn run_key() -> String {
        format!("{}-{}/{}", std::process::id(), line!(), KEY)
    }

    async fn round_trip_abort_and_delete(store: &ObjectBlobStore) {
        let key = run_key();

        // 12 MiB: three parts of the multipart upload.
        let chunks: Vec<Bytes> = (0..192u32)
            .map(|i| Bytes::from(pattern(64 * 1024, i)))
            .collect();
        let expected: Vec<u8> = chunks.concat();
        let body = stream_of(chunks.into_iter().map(Ok).collect());
        assert_eq!(store.put(&key, body).await.unwrap(), expected.len() as u64);
        let (stored, _) = read_all(store, &key).await.unwrap();
        assert!(
            stored == expected,
            "the bytes read back differ from those written"
        );

        store.delete(&key).await.unwrap();
        store.delete(&key).await.unwrap();
        assert!(matches!(store.get(&key).await, Err(BlobError::NotFound)));

        // An error after one part was uploaded: nothing becomes visible under the key.
        let mut chunks: Vec<Result<Bytes, BlobError>> = (0..100u32)
            .map(|i| Ok(Bytes::from(pattern(64 * 1024, i))))
            .collect();
        chunks.push(Err(BlobError::Aborted("the client went away".into())));
        let result = store.put(&key, stream_of(chunks)).await;
        assert!(
            matches!(result, Err(BlobError::Aborted(_))),
            "got {result:?}"
        );
        assert!(matches!(store.get(&key).await, Err(BlobError::NotFound)));
    }

    #[tokio::test]
    async fn s3_round_trip_abort_and_delete_behave_as_on_a_local_directory() {
        let server = local_s3().await;
        let store = server.store("confab", "files").unwrap();

        round_trip_abort_and_delete(&store).await;

        // The failed upload was aborted on the server, not left open.
        assert_eq!(open_uploads(&server), Vec::<PathBuf>::new());
    }

    #[tokio::test]
    async fn s3_keys_land_under_the_bucket_and_prefix_of_the_url() {
        let server = local_s3().await;
        let store = server.store("uploads", "confab/files").unwrap();

        store
            .put(
                KEY,
                stream_of(vec![Ok(Bytes::from_static(b"in the bucket"))]),
            )
            .await
            .unwrap();

        let on_disk = server.root().join("uploads/confab/files").join(KEY);
        assert_eq!(std::fs::read(&on_disk).unwrap(), b"in the bucket");
        assert_eq!(
            store.describe(),
            format!(
                "s3 bucket uploads, prefix confab/files, endpoint {}",
                server.endpoint()
            )
        );
    }

    #[tokio::test]
    async fn s3_an_empty_body_is_stored_as_an_empty_blob() {
        let server = local_s3().await;
        let store = server.store("confab", "").unwrap();

        assert_eq!(store.put(KEY, stream_of(vec![])).await.unwrap(), 0);

        let (stored, _) = read_all(&store, KEY).await.unwrap();
        assert!(stored.is_empty());
    }

    #[tokio::test]
    async fn s3_a_cancelled_upload_is_aborted_on_the_server() {
        let server = local_s3().await;
        let store = server.store("confab", "files").unwrap();
        // 6 MiB (a part on its way), then a body that never ends: the caller drops `put`.
        let head = futures::stream::iter(
            (0..96u32).map(|i| Ok::<_, BlobError>(Bytes::from(pattern(64 * 1024, i)))),
        );
        let body: ByteStream = head.chain(futures::stream::pending()).boxed();
        let mut put = Box::pin(store.put(KEY, body));
        // Drive the upload until the server has opened it (or the safety net runs out).
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        while open_uploads(&server).is_empty() {
            assert!(
                tokio::time::Instant::now() < deadline,
                "the upload never reached the server"
            );
            let step = tokio::time::timeout(Duration::from_millis(20), &mut put).await;
            assert!(step.is_err(), "the upload ended: {step:?}");
        }
        drop(put);

        // The abort runs in the background once the upload is dropped.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while !open_uploads(&server).is_empty() && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(open_uploads(&server), Vec::<PathBuf>::new());
        assert!(matches!(store.get(KEY).await, Err(BlobError::NotFound)));
    }

    #[tokio::test]
    async fn s3_requests_signed_with_a_wrong_secret_are_refused_as_unavailable() {
        let server = local_s3().await;
        server.create_bucket("confab").unwrap();
        let mut options = server.options();
        options.retain(|(k, _)| *k != "AWS_SECRET_ACCESS_KEY");
        options.push(("AWS_SECRET_ACCESS_KEY", "not-the-secret".to_owned()));
        let store =
            ObjectBlobStore::from_s3_url_with_options("s3://confab/files", options).unwrap();

        let put = store
            .put(KEY, stream_of(vec![Ok(Bytes::from_static(b"x"))]))
            .await;

        assert!(matches!(put, Err(BlobError::Unavailable(_))), "got {put:?}");
        assert_eq!(files_under(server.root()), Vec::<PathBuf>::new());
    }

    #[test]
    fn options_with_an_unknown_key_or_a_non_s3_url_are_refused() {
        assert!(matches!(
            ObjectBlobStore::from_s3_url_with_options("s3://b/p", [("AWS_NO_SUCH_THING", "x")]),
            Err(OpenError::Store(_))
        ));
        assert!(matches!(
            ObjectBlobStore::from_s3_url_with_options("file:///tmp/x", [("AWS_REGION", "x")]),
            Err(OpenError::UnsupportedScheme(s)) if s == "file"
        ));
    }

    /// Against an outside S3 service, when one is configured.
    #[tokio::test]
    async fn s3_round_trip_abort_and_delete_against_the_configured_service() {
        let Ok(url) = std::env::var("CONFAB_TEST_S3_URL") else {
            eprintln!("CONFAB_TEST_S3_URL is not set: the outside S3 service is not tested");
            return;
        };
        let store = ObjectBlobStore::from_url(&url).unwrap();
        round_trip_abort_and_delete(&store).await;
    }
}
