//! A local S3-compatible server for tests (feature `test-support`): s3s-fs serving a temporary
//! directory over HTTP on `127.0.0.1`, inside the test process, with fixed credentials that
//! it checks (every request must be signed with them, as AWS would require). With it the
//! `s3://` path of [`ObjectBlobStore`] — request signing, multipart uploads and their abort,
//! streamed reads, deletes — is tested against a real S3 protocol server, not assumed.

use std::io;
use std::path::Path;

use hyper_util::rt::TokioIo;
use s3s::auth::SimpleAuth;
use s3s::service::S3ServiceBuilder;
use tempfile::TempDir;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::{ObjectBlobStore, OpenError};

/// The access key the server accepts.
pub const ACCESS_KEY_ID: &str = "confab-test-access-key";
/// The secret the server checks signatures against.
pub const SECRET_ACCESS_KEY: &str = "confab-test-secret-key";

/// A running S3-compatible server. Its buckets are directories of [`LocalS3::root`]; it stops
/// (and the directory is removed) when dropped.
pub struct LocalS3 {
    endpoint: String,
    root: TempDir,
    accept: JoinHandle<()>,
}

impl LocalS3 {
    /// Starts a server on an unused port of 127.0.0.1, on the current tokio runtime.
    pub async fn start() -> io::Result<Self> {
        let root = tempfile::tempdir()?;
        let fs =
            s3s_fs::FileSystem::new(root.path()).map_err(|e| io::Error::other(format!("{e:?}")))?;
        let mut service = S3ServiceBuilder::new(fs);
        service.set_auth(SimpleAuth::from_single(ACCESS_KEY_ID, SECRET_ACCESS_KEY));
        let service = service.build();

        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let endpoint = format!("http://{}", listener.local_addr()?);
        let accept = tokio::spawn(async move {
            loop {
                let Ok((socket, _)) = listener.accept().await else {
                    // The listening socket failed: the tests' requests will say so.
                    break;
                };
                let service = service.clone();
                tokio::spawn(async move {
                    // A connection the client drops mid-request ends with an error: nothing to do.
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(socket), service)
                        .await;
                });
            }
        });
        Ok(Self {
            endpoint,
            root,
            accept,
        })
    }

    /// The server's base URL, `http://127.0.0.1:<port>`.
    #[must_use]
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// The directory the server keeps its buckets (and its in-progress uploads) in.
    #[must_use]
    pub fn root(&self) -> &Path {
        self.root.path()
    }

    /// Creates the bucket `name` (a directory of the root); creating one that exists is fine.
    pub fn create_bucket(&self, name: &str) -> io::Result<()> {
        std::fs::create_dir_all(self.root.path().join(name))
    }

    /// The options that point an `s3://` store at this server with its credentials.
    #[must_use]
    pub fn options(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ENDPOINT", self.endpoint.clone()),
            ("AWS_ALLOW_HTTP", "true".to_owned()),
            ("AWS_REGION", "us-east-1".to_owned()),
            ("AWS_ACCESS_KEY_ID", ACCESS_KEY_ID.to_owned()),
            ("AWS_SECRET_ACCESS_KEY", SECRET_ACCESS_KEY.to_owned()),
        ]
    }

    /// A store on `s3://{bucket}/{prefix}` of this server (the bucket is created when
    /// missing; `prefix` may be empty), built by [`ObjectBlobStore::from_s3_url_with_options`]
    /// as a deployment with `CONFAB_FILES_URL=s3://…` would be.
    pub fn store(&self, bucket: &str, prefix: &str) -> Result<ObjectBlobStore, OpenError> {
        self.create_bucket(bucket)
            .map_err(|source| OpenError::Directory {
                path: self.root.path().join(bucket),
                source,
            })?;
        ObjectBlobStore::from_s3_url_with_options(
            &format!("s3://{bucket}/{prefix}"),
            self.options(),
        )
    }
}

impl Drop for LocalS3 {
    fn drop(&mut self) {
        self.accept.abort();
    }
}
