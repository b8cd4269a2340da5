//! The `BlobStore` contract against `confab-files`: on a local directory, and over S3 on an
//! S3-compatible server started by the test.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use confab_core::ports::BlobStore;
use confab_files::ObjectBlobStore;
use confab_files::testing::LocalS3;
use confab_tests::contract;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_directory_blob_store_honours_the_blob_store_contract() {
    // One temporary directory for the run (removed at the end), a fresh subdirectory per case.
    let root = match tempfile::tempdir() {
        Ok(dir) => dir,
        Err(e) => panic!("cannot create a temporary directory: {e}"),
    };
    let cases = AtomicUsize::new(0);
    contract::blob_store_contract(|| {
        let dir = root
            .path()
            .join(format!("case-{}", cases.fetch_add(1, Ordering::Relaxed)));
        async move {
            match ObjectBlobStore::local(&dir) {
                Ok(store) => Arc::new(store) as Arc<dyn BlobStore>,
                Err(e) => panic!("cannot open a blob store in {}: {e}", dir.display()),
            }
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_blob_store_honours_the_blob_store_contract() {
    // One S3-compatible server for the run (s3s-fs on a temporary directory, inside this
    // process), a fresh key prefix per case: the store is built from an `s3://` URL as
    // `CONFAB_FILES_URL` would build it, with the server's endpoint and credentials.
    let server = match LocalS3::start().await {
        Ok(server) => server,
        Err(e) => panic!("cannot start the local S3 server: {e}"),
    };
    let cases = AtomicUsize::new(0);
    contract::blob_store_contract(|| {
        let prefix = format!("case-{}", cases.fetch_add(1, Ordering::Relaxed));
        let store = server.store("confab", &prefix);
        async move {
            match store {
                Ok(store) => Arc::new(store) as Arc<dyn BlobStore>,
                Err(e) => panic!("cannot open an s3:// blob store: {e}"),
            }
        }
    })
    .await;
}
