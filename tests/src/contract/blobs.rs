//! The `BlobStore` contract.

use std::future::Future;
use std::sync::Arc;

use bytes::Bytes;
use confab_core::error::BlobError;
use confab_core::ports::{BlobStore, ByteStream};
use futures::StreamExt;
use uuid::Uuid;

/// Runs every case of the `BlobStore` contract, each on a fresh store from `fresh`.
pub async fn blob_store_contract<F, Fut>(fresh: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = Arc<dyn BlobStore>>,
{
    crate::run_cases!(
        "BlobStore",
        fresh,
        [
            put_then_get_returns_the_same_bytes,
            large_binary_bodies_round_trip,
            get_of_a_missing_key_is_not_found,
            delete_removes_the_bytes_and_deleting_a_missing_key_is_ok,
            a_failing_body_is_aborted_and_leaves_nothing,
            keys_are_independent,
        ]
    );
}

/// A key shaped like the ones `FileService` makes: `<project id>/<file id>`.
fn key() -> String {
    format!("{}/{}", Uuid::now_v7(), Uuid::now_v7())
}

fn body(chunks: Vec<Result<Bytes, BlobError>>) -> ByteStream {
    futures::stream::iter(chunks).boxed()
}

fn chunks_of(data: &[u8], size: usize) -> ByteStream {
    body(
        data.chunks(size)
            .map(|c| Ok(Bytes::copy_from_slice(c)))
            .collect(),
    )
}

async fn read(store: &Arc<dyn BlobStore>, key: &str) -> Result<Vec<u8>, BlobError> {
    let mut stream = store.get(key).await?;
    let mut out = Vec::new();
    while let Some(chunk) = stream.next().await {
        out.extend_from_slice(&chunk?);
    }
    Ok(out)
}

#[track_caller]
fn expect_not_found(result: Result<Vec<u8>, BlobError>, what: &str) {
    match result {
        Err(BlobError::NotFound) => {}
        Ok(bytes) => panic!("{what}: expected NotFound, got {} bytes", bytes.len()),
        Err(e) => panic!("{what}: expected NotFound, got {e:?}"),
    }
}

async fn put_then_get_returns_the_same_bytes(store: Arc<dyn BlobStore>) {
    let k = key();
    let written = store
        .put(
            &k,
            body(vec![
                Ok(Bytes::from_static(b"Hello, ")),
                Ok(Bytes::new()),
                Ok(Bytes::from_static("wörld 😀".as_bytes())),
            ]),
        )
        .await;
    let expected = "Hello, wörld 😀".as_bytes();
    match written {
        Ok(n) => assert_eq!(
            n,
            expected.len() as u64,
            "put must return how many bytes it wrote"
        ),
        Err(e) => panic!("put failed: {e:?}"),
    }
    match read(&store, &k).await {
        Ok(bytes) => assert_eq!(bytes, expected),
        Err(e) => panic!("get failed: {e:?}"),
    }
    // Reading does not consume.
    assert!(read(&store, &k).await.is_ok_and(|b| b == expected));
}

async fn large_binary_bodies_round_trip(store: Arc<dyn BlobStore>) {
    let k = key();
    let data: Vec<u8> = (0..(1024 * 1024 + 17))
        .map(|i: u32| (i.wrapping_mul(31) % 256) as u8)
        .collect();
    match store.put(&k, chunks_of(&data, 8_191)).await {
        Ok(n) => assert_eq!(n, data.len() as u64),
        Err(e) => panic!("put failed: {e:?}"),
    }
    match read(&store, &k).await {
        Ok(bytes) => assert!(bytes == data, "a 1 MiB binary body came back different"),
        Err(e) => panic!("get failed: {e:?}"),
    }
}

async fn get_of_a_missing_key_is_not_found(store: Arc<dyn BlobStore>) {
    expect_not_found(read(&store, &key()).await, "get of a key never written");
}

async fn delete_removes_the_bytes_and_deleting_a_missing_key_is_ok(store: Arc<dyn BlobStore>) {
    let k = key();
    if let Err(e) = store.put(&k, chunks_of(b"bytes", 2)).await {
        panic!("put failed: {e:?}");
    }
    if let Err(e) = store.delete(&k).await {
        panic!("delete failed: {e:?}");
    }
    expect_not_found(read(&store, &k).await, "get after delete");
    if let Err(e) = store.delete(&k).await {
        panic!("deleting a missing key must be Ok, got {e:?}");
    }
    if let Err(e) = store.delete(&key()).await {
        panic!("deleting a never written key must be Ok, got {e:?}");
    }
}

async fn a_failing_body_is_aborted_and_leaves_nothing(store: Arc<dyn BlobStore>) {
    let k = key();
    let result = store
        .put(
            &k,
            body(vec![
                Ok(Bytes::from_static(b"the first part")),
                Err(BlobError::Aborted("the client went away".to_owned())),
                Ok(Bytes::from_static(b"never read")),
            ]),
        )
        .await;
    assert!(
        matches!(result, Err(BlobError::Aborted(_))),
        "put of a failing body must be Aborted, got {result:?}"
    );
    expect_not_found(read(&store, &k).await, "get after an aborted put");

    let k2 = key();
    let result = store
        .put(
            &k2,
            body(vec![Err(BlobError::Internal("read error".to_owned()))]),
        )
        .await;
    assert!(
        matches!(result, Err(BlobError::Aborted(_))),
        "put of a body failing at once must be Aborted, got {result:?}"
    );
    expect_not_found(read(&store, &k2).await, "get after an aborted put");
}

async fn keys_are_independent(store: Arc<dyn BlobStore>) {
    let project = Uuid::now_v7();
    let a = format!("{project}/{}", Uuid::now_v7());
    let b = format!("{project}/{}", Uuid::now_v7());
    for (k, data) in [(&a, b"aaa".as_slice()), (&b, b"bbbb".as_slice())] {
        if let Err(e) = store.put(k, chunks_of(data, 3)).await {
            panic!("put failed: {e:?}");
        }
    }
    if let Err(e) = store.delete(&a).await {
        panic!("delete failed: {e:?}");
    }
    expect_not_found(read(&store, &a).await, "get of a deleted key");
    assert!(
        read(&store, &b).await.is_ok_and(|bytes| bytes == b"bbbb"),
        "deleting one key touched another"
    );
}
