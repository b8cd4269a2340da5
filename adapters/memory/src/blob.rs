//! `MemoryBlobStore`: file bytes in a map, for tests and for running without a disk.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use async_trait::async_trait;
use bytes::{Bytes, BytesMut};
use confab_core::error::BlobError;
use confab_core::ports::{BlobStore, ByteStream};
use futures::StreamExt;

/// The size of the chunks `get` streams back.
const CHUNK: usize = 64 * 1024;

/// Blob bytes in memory. Clones share the same blobs.
#[derive(Clone, Default)]
pub struct MemoryBlobStore {
    blobs: Arc<Mutex<HashMap<String, Bytes>>>,
}

impl MemoryBlobStore {
    /// An empty store.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// How many blobs are stored (for tests that check nothing was left behind).
    #[must_use]
    pub fn len(&self) -> usize {
        self.blobs().len()
    }

    /// Whether no blob is stored.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.blobs().is_empty()
    }

    /// Whether bytes are stored under `key`.
    #[must_use]
    pub fn contains(&self, key: &str) -> bool {
        self.blobs().contains_key(key)
    }

    fn blobs(&self) -> MutexGuard<'_, HashMap<String, Bytes>> {
        self.blobs.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[async_trait]
impl BlobStore for MemoryBlobStore {
    async fn put(&self, key: &str, mut body: ByteStream) -> Result<u64, BlobError> {
        let mut buffer = BytesMut::new();
        while let Some(chunk) = body.next().await {
            match chunk {
                Ok(chunk) => buffer.extend_from_slice(&chunk),
                Err(e) => return Err(BlobError::Aborted(e.to_string())),
            }
        }
        let written = u64::try_from(buffer.len())
            .map_err(|_| BlobError::Internal("the body is too large".to_owned()))?;
        self.blobs().insert(key.to_owned(), buffer.freeze());
        Ok(written)
    }

    async fn get(&self, key: &str) -> Result<ByteStream, BlobError> {
        let bytes = self.blobs().get(key).cloned().ok_or(BlobError::NotFound)?;
        let chunks: Vec<Result<Bytes, BlobError>> = (0..bytes.len())
            .step_by(CHUNK)
            .map(|start| Ok(bytes.slice(start..bytes.len().min(start + CHUNK))))
            .collect();
        Ok(futures::stream::iter(chunks).boxed())
    }

    async fn delete(&self, key: &str) -> Result<(), BlobError> {
        self.blobs().remove(key);
        Ok(())
    }
}
