//! The `BlobStore` contract against `confab-files` on a local directory.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use confab_core::ports::BlobStore;
use confab_files::ObjectBlobStore;
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
