#![doc = include_str!("../README.md")]

use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use confab_core::error::BlobError;
use confab_core::ports::{BlobStore, ByteStream};
use futures::{StreamExt, TryStreamExt};
use object_store::local::LocalFileSystem;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt, WriteMultipart};
use url::Url;

#[cfg(feature = "test-support")]
pub mod testing;

/// Size of the parts an upload to a local directory is written in. Together with
/// [`MAX_PARTS_IN_FLIGHT`] it bounds the memory one upload holds, whatever the file's size.
const LOCAL_PART_SIZE: usize = 1024 * 1024;

/// Size of the parts of an S3 multipart upload: 5 MiB is the smallest part S3 accepts
/// (except the last), and some S3-compatible stores want every part but the last equal.
#[cfg(feature = "s3")]
const S3_PART_SIZE: usize = 5 * 1024 * 1024;

/// Parts written concurrently by one upload; the next part is buffered meanwhile, so an
/// upload holds at most `(MAX_PARTS_IN_FLIGHT + 1) × part size` bytes.
const MAX_PARTS_IN_FLIGHT: usize = 2;

/// Why a blob store could not be set up from its configuration.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// The local directory could not be created or resolved.
    #[error("cannot use the directory {path}: {source}")]
    Directory {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The storage URL is malformed. The URL itself is not repeated: it may hold secrets.
    #[error("invalid storage URL: {0}")]
    InvalidUrl(String),
    /// The URL's scheme is not one this build supports.
    #[error("unsupported storage URL scheme `{0}` (supported: {SUPPORTED_SCHEMES})")]
    UnsupportedScheme(String),
    /// object_store refused the configuration (missing bucket, bad option, …).
    #[error("cannot configure blob storage: {0}")]
    Store(#[from] object_store::Error),
}

#[cfg(feature = "s3")]
const SUPPORTED_SCHEMES: &str = "file://, s3://";
#[cfg(not(feature = "s3"))]
const SUPPORTED_SCHEMES: &str = "file:// (this build has no S3 support)";

/// A [`BlobStore`] over any `object_store` backend: a local directory, or an S3 bucket
/// (AWS or any S3-compatible service) when built with the `s3` feature.
///
/// Uploads are streamed part by part (memory stays flat whatever the size), and an upload
/// whose body fails is aborted so that nothing is left under its key: on a local directory
/// the staging file (`<key>#<n>`) is removed; on S3 the multipart upload is aborted.
#[derive(Debug)]
pub struct ObjectBlobStore {
    store: Arc<dyn ObjectStore>,
    description: String,
    part_size: usize,
    /// Errors that are neither "not found" nor a bad key mean the service is unreachable
    /// for a remote store (→ `Unavailable`), and a broken disk for a local one (→ `Internal`).
    remote: bool,
}

impl ObjectBlobStore {
    /// A store in a local directory, created (with its parents) when missing. Keys become
    /// relative paths inside it; nothing is ever written outside it.
    pub fn local(dir: &Path) -> Result<Self, OpenError> {
        let directory = |source| OpenError::Directory {
            path: dir.to_path_buf(),
            source,
        };
        std::fs::create_dir_all(dir).map_err(directory)?;
        let store = LocalFileSystem::new_with_prefix(dir)?
            // Deleting a project's last file removes its (then empty) directory, never the root.
            .with_automatic_cleanup(true);
        Ok(Self {
            store: Arc::new(store),
            description: format!("local directory {}", dir.display()),
            part_size: LOCAL_PART_SIZE,
            remote: false,
        })
    }

    /// A store from a URL, so that moving to S3-compatible storage is a configuration change:
    ///
    /// - `file:///absolute/path` — a local directory, as [`ObjectBlobStore::local`];
    /// - `s3://bucket` or `s3://bucket/prefix` (feature `s3`, on by default) — credentials,
    ///   region and endpoint come from the standard `AWS_*` environment variables
    ///   (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`, `AWS_REGION` /
    ///   `AWS_DEFAULT_REGION`, `AWS_ENDPOINT` for S3-compatible services, `AWS_ALLOW_HTTP`
    ///   for a plain-HTTP endpoint), or from the instance's role when none are set;
    /// - anything that does not parse as a URL is taken as a local directory path.
    pub fn from_url(url: &str) -> Result<Self, OpenError> {
        let parsed = match Url::parse(url) {
            Ok(parsed) => parsed,
            Err(url::ParseError::RelativeUrlWithoutBase) => return Self::local(Path::new(url)),
            Err(e) => return Err(OpenError::InvalidUrl(e.to_string())),
        };
        match parsed.scheme() {
            "file" => {
                let dir = parsed.to_file_path().map_err(|()| {
                    OpenError::InvalidUrl("a file:// URL needs an absolute path and no host".into())
                })?;
                Self::local(&dir)
            }
            #[cfg(feature = "s3")]
            "s3" | "s3a" => Self::s3(&parsed, object_store::aws::AmazonS3Builder::from_env()),
            other => Err(OpenError::UnsupportedScheme(other.to_owned())),
        }
    }

    /// An `s3://bucket` or `s3://bucket/prefix` store configured by `options` alone, not by
    /// the environment: keys are the names of the `AWS_*` variables [`ObjectBlobStore::from_url`]
    /// reads, in any case (`AWS_ENDPOINT`, `aws_access_key_id`, …). For a program that keeps
    /// its storage credentials elsewhere than in the process environment, and for tests,
    /// which run side by side in one process and so cannot each set the environment.
    #[cfg(feature = "s3")]
    pub fn from_s3_url_with_options<I, K, V>(url: &str, options: I) -> Result<Self, OpenError>
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<str>,
        V: Into<String>,
    {
        use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};

        let parsed = Url::parse(url).map_err(|e| OpenError::InvalidUrl(e.to_string()))?;
        if !matches!(parsed.scheme(), "s3" | "s3a") {
            return Err(OpenError::UnsupportedScheme(parsed.scheme().to_owned()));
        }
        let mut builder = AmazonS3Builder::new();
        for (key, value) in options {
            let key: AmazonS3ConfigKey = key.as_ref().to_ascii_lowercase().parse()?;
            builder = builder.with_config(key, value);
        }
        Self::s3(&parsed, builder)
    }

    #[cfg(feature = "s3")]
    fn s3(url: &Url, builder: object_store::aws::AmazonS3Builder) -> Result<Self, OpenError> {
        use object_store::aws::AmazonS3ConfigKey;
        use object_store::prefix::PrefixStore;

        let bucket = url
            .host_str()
            .filter(|b| !b.is_empty())
            .ok_or_else(|| OpenError::InvalidUrl("an s3:// URL needs a bucket name".into()))?
            .to_owned();
        let builder = builder
            .with_url(url.as_str())
            // `with_url` keeps only the bucket: the rest of the URL is the key prefix, below.
            .with_config(AmazonS3ConfigKey::Bucket, bucket.clone());
        let endpoint = builder
            .get_config_value(&AmazonS3ConfigKey::Endpoint)
            .map(|e| redact_url(&e));
        let s3 = builder.build()?;

        let raw_prefix = url.path().trim_matches('/');
        let prefix = ObjectPath::parse(raw_prefix).map_err(|e| {
            OpenError::InvalidUrl(format!("the key prefix of the s3:// URL is not valid: {e}"))
        })?;

        let mut description = format!("s3 bucket {bucket}");
        if !raw_prefix.is_empty() {
            description.push_str(&format!(", prefix {prefix}"));
        }
        if let Some(endpoint) = endpoint {
            description.push_str(&format!(", endpoint {endpoint}"));
        }
        let store: Arc<dyn ObjectStore> = if raw_prefix.is_empty() {
            Arc::new(s3)
        } else {
            Arc::new(PrefixStore::new(s3, prefix))
        };
        Ok(Self {
            store,
            description,
            part_size: S3_PART_SIZE,
            remote: true,
        })
    }

    /// Where the bytes go, for the server's start-up log ("local directory data/files",
    /// "s3 bucket uploads, prefix confab"). Never contains credentials.
    pub fn describe(&self) -> String {
        self.description.clone()
    }

    fn map_error(&self, e: object_store::Error) -> BlobError {
        match e {
            object_store::Error::NotFound { .. } => BlobError::NotFound,
            object_store::Error::InvalidPath { .. } => BlobError::Internal(e.to_string()),
            e if self.remote => BlobError::Unavailable(e.to_string()),
            e => BlobError::Internal(e.to_string()),
        }
    }
}

/// Checks a key before it reaches the store. Keys come from the core
/// (`<project_id>/<file_id>`), so a bad one is a bug, refused as `Internal`; the check is
/// defence in depth, so that no key can name a file outside the store's directory.
fn parse_key(key: &str) -> Result<ObjectPath, BlobError> {
    let refuse = |why: &str| BlobError::Internal(format!("refused blob key {key:?}: {why}"));
    if key.is_empty() {
        return Err(refuse("it is empty"));
    }
    if key.starts_with('/') {
        return Err(refuse("it is an absolute path"));
    }
    if key.contains('\\') {
        return Err(refuse("it contains a backslash"));
    }
    if key.chars().any(char::is_control) {
        return Err(refuse("it contains a control character"));
    }
    if key
        .split('/')
        .any(|segment| segment.is_empty() || segment == "." || segment == "..")
    {
        return Err(refuse("it has an empty, `.` or `..` segment"));
    }
    ObjectPath::parse(key).map_err(|e| refuse(&e.to_string()))
}

/// Keeps only scheme, host and port of a URL for logs (drops user, password, query).
#[cfg(feature = "s3")]
fn redact_url(raw: &str) -> String {
    match Url::parse(raw) {
        Ok(url) => {
            let host = url.host_str().unwrap_or_default();
            match url.port() {
                Some(port) => format!("{}://{host}:{port}", url.scheme()),
                None => format!("{}://{host}", url.scheme()),
            }
        }
        Err(_) => "(unparsable endpoint)".to_owned(),
    }
}

/// An upload in progress. Dropping it unfinished (the request was cancelled and the `put`
/// future dropped) aborts it in the background, so that no staging file or incomplete
/// multipart upload is left behind.
struct Upload {
    writer: Option<WriteMultipart>,
}

impl Upload {
    fn writer(&mut self) -> Result<&mut WriteMultipart, BlobError> {
        self.writer
            .as_mut()
            .ok_or_else(|| BlobError::Internal("the upload is already finished".into()))
    }

    async fn abort(&mut self) {
        if let Some(writer) = self.writer.take()
            && let Err(e) = writer.abort().await
        {
            tracing::warn!(error = %e, "could not clean up an aborted upload");
        }
    }
}

impl Drop for Upload {
    fn drop(&mut self) {
        if let Some(writer) = self.writer.take()
            && let Ok(runtime) = tokio::runtime::Handle::try_current()
        {
            runtime.spawn(async move {
                if let Err(e) = writer.abort().await {
                    tracing::warn!(error = %e, "could not clean up a cancelled upload");
                }
            });
        }
    }
}

#[async_trait]
impl BlobStore for ObjectBlobStore {
    async fn put(&self, key: &str, mut body: ByteStream) -> Result<u64, BlobError> {
        let path = parse_key(key)?;
        let multipart = self
            .store
            .put_multipart(&path)
            .await
            .map_err(|e| self.map_error(e))?;
        let mut upload = Upload {
            writer: Some(WriteMultipart::new_with_chunk_size(
                multipart,
                self.part_size,
            )),
        };
        let mut written: u64 = 0;
        while let Some(chunk) = body.next().await {
            let bytes = match chunk {
                Ok(bytes) => bytes,
                Err(e) => {
                    upload.abort().await;
                    return Err(match e {
                        BlobError::Aborted(why) => BlobError::Aborted(why),
                        other => BlobError::Aborted(other.to_string()),
                    });
                }
            };
            // Back pressure: wait for a part to land before buffering more.
            if let Err(e) = upload
                .writer()?
                .wait_for_capacity(MAX_PARTS_IN_FLIGHT)
                .await
            {
                upload.abort().await;
                return Err(self.map_error(e));
            }
            written += bytes.len() as u64;
            upload.writer()?.put(bytes);
        }
        let writer = upload
            .writer
            .take()
            .ok_or_else(|| BlobError::Internal("the upload is already finished".into()))?;
        // `finish` aborts the upload itself when it fails.
        writer.finish().await.map_err(|e| self.map_error(e))?;
        Ok(written)
    }

    async fn get(&self, key: &str) -> Result<ByteStream, BlobError> {
        let path = parse_key(key)?;
        let result = self.store.get(&path).await.map_err(|e| self.map_error(e))?;
        let remote = self.remote;
        Ok(result
            .into_stream()
            .map_err(move |e| match e {
                object_store::Error::NotFound { .. } => BlobError::NotFound,
                e if remote => BlobError::Unavailable(e.to_string()),
                e => BlobError::Internal(e.to_string()),
            })
            .boxed())
    }

    async fn delete(&self, key: &str) -> Result<(), BlobError> {
        let path = parse_key(key)?;
        match self.store.delete(&path).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(self.map_error(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_key_accepts_the_keys_the_core_generates() {
        let key = "0197a8f2-0000-7000-8000-000000000001/0197a8f2-0000-7000-8000-000000000002";
        assert!(parse_key(key).is_ok());
    }

    #[test]
    fn parse_key_refuses_traversal_absolute_backslash_and_empty_segments() {
        for key in [
            "",
            "..",
            "../x",
            "a/../../x",
            "a/..",
            "/etc/passwd",
            "a\\..\\x",
            "a//b",
            "a/./b",
            "a/",
            "a\nb",
        ] {
            assert!(
                matches!(parse_key(key), Err(BlobError::Internal(_))),
                "key {key:?} was accepted"
            );
        }
    }

    #[cfg(feature = "s3")]
    #[test]
    fn redact_url_drops_credentials_and_query() {
        assert_eq!(
            redact_url("https://user:secret@minio.local:9000/path?token=x"),
            "https://minio.local:9000"
        );
    }
}
