//! A local identity provider for the auth tests: serves a JWKS and an OpenID discovery
//! document on 127.0.0.1 (port 0), counts the fetches (and lets a test wait for one), sends
//! the `Cache-Control` it is told to, and can rotate or withdraw its keys, fail, answer
//! garbage, hang, hold its answers until released, or go down. Also the fixed test keys (generated once with
//! `openssl genrsa 2048` / `openssl ecparam -name prime256v1`, under `tests/fixtures/jwt/`)
//! and helpers to sign tokens with them.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use base64::Engine as _;
use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// Test RSA key A (2048 bits), PKCS#8 PEM.
pub const RSA_A_PRIVATE_PEM: &str = include_str!("../fixtures/jwt/rsa-a.pem");
/// The public half of key A (SPKI PEM), as `CLERK_JWT_KEY` holds it.
pub const RSA_A_PUBLIC_PEM: &str = include_str!("../fixtures/jwt/rsa-a.pub.pem");
/// Test RSA key B (2048 bits): "another key".
pub const RSA_B_PRIVATE_PEM: &str = include_str!("../fixtures/jwt/rsa-b.pem");
/// Test P-256 key, PKCS#8 PEM.
pub const EC_P256_PRIVATE_PEM: &str = include_str!("../fixtures/jwt/ec-p256.pem");

/// Base64url without padding, as JWTs use it.
#[must_use]
pub fn b64url(bytes: impl AsRef<[u8]>) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// The current time in seconds since the epoch.
#[must_use]
pub fn now_secs() -> i64 {
    chrono::Utc::now().timestamp()
}

/// A private key with its `kid`, able to sign tokens and to show itself as a JWK.
#[derive(Clone)]
pub struct TestKey {
    /// The key id it signs with and is published under.
    pub kid: String,
    /// The algorithm it signs with.
    pub algorithm: Algorithm,
    encoding: EncodingKey,
    jwk: Value,
}

impl std::fmt::Debug for TestKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestKey")
            .field("kid", &self.kid)
            .field("algorithm", &self.algorithm)
            .finish_non_exhaustive()
    }
}

impl TestKey {
    fn from_pem(kid: &str, pem: &str, algorithm: Algorithm) -> Self {
        // jsonwebtoken picks its one enabled backend (aws_lc_rs) on its own.
        let encoding = match algorithm {
            Algorithm::ES256 => EncodingKey::from_ec_pem(pem.as_bytes()),
            _ => EncodingKey::from_rsa_pem(pem.as_bytes()),
        }
        .unwrap_or_else(|e| panic!("fixture key for {kid} does not load: {e}"));
        let jwk = Jwk::from_encoding_key(&encoding, algorithm)
            .unwrap_or_else(|e| panic!("fixture key for {kid} has no JWK: {e}"));
        let mut jwk = serde_json::to_value(jwk).unwrap_or_else(|e| panic!("JWK to JSON: {e}"));
        jwk["kid"] = Value::from(kid);
        jwk["use"] = Value::from("sig");
        Self {
            kid: kid.to_owned(),
            algorithm,
            encoding,
            jwk,
        }
    }

    /// RSA key A, RS256.
    #[must_use]
    pub fn rsa_a(kid: &str) -> Self {
        Self::from_pem(kid, RSA_A_PRIVATE_PEM, Algorithm::RS256)
    }

    /// RSA key B, RS256.
    #[must_use]
    pub fn rsa_b(kid: &str) -> Self {
        Self::from_pem(kid, RSA_B_PRIVATE_PEM, Algorithm::RS256)
    }

    /// The P-256 key, ES256.
    #[must_use]
    pub fn ec_p256(kid: &str) -> Self {
        Self::from_pem(kid, EC_P256_PRIVATE_PEM, Algorithm::ES256)
    }

    /// The same key under another `kid`.
    #[must_use]
    pub fn with_kid(&self, kid: &str) -> Self {
        let mut key = self.clone();
        key.kid = kid.to_owned();
        key.jwk["kid"] = Value::from(kid);
        key
    }

    /// The public JWK, as a JWKS lists it.
    #[must_use]
    pub fn jwk(&self) -> Value {
        self.jwk.clone()
    }

    /// A JWT of `claims`, signed with this key, its algorithm and its `kid`.
    #[must_use]
    pub fn sign(&self, claims: &Value) -> String {
        let mut header = Header::new(self.algorithm);
        header.kid = Some(self.kid.clone());
        self.sign_with_header(&header, claims)
    }

    /// A JWT of `claims` with the given header, signed with this key.
    #[must_use]
    pub fn sign_with_header(&self, header: &Header, claims: &Value) -> String {
        jsonwebtoken::encode(header, claims, &self.encoding)
            .unwrap_or_else(|e| panic!("signing a test token failed: {e}"))
    }
}

/// What the server answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// The documents, 200.
    Serve,
    /// 500 with an empty body.
    Fail,
    /// 200 with a body that is not JSON.
    Garbage,
    /// Accept the request and never answer.
    Hang,
}

struct Shared {
    keys: Mutex<Vec<Value>>,
    mode: Mutex<Mode>,
    discovery_issuer: Mutex<Option<String>>,
    /// The `Cache-Control` header of JWKS answers; none when `None`.
    cache_control: Mutex<Option<String>>,
    /// JWKS requests received so far (counted on arrival, before any answer).
    jwks_fetches: watch::Sender<usize>,
    discovery_fetches: AtomicUsize,
    /// `false` while JWKS answers are held back (see [`JwksServer::hold`]).
    open: watch::Sender<bool>,
    base_url: String,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The local issuer. Its issuer URL is `http://127.0.0.1:<port>`; the JWKS is at
/// `/.well-known/jwks.json`, the discovery document at `/.well-known/openid-configuration`.
/// Stops when dropped.
pub struct JwksServer {
    addr: SocketAddr,
    shared: Arc<Shared>,
    task: Option<JoinHandle<()>>,
}

impl JwksServer {
    /// Starts serving `keys`.
    pub async fn start(keys: &[&TestKey]) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .unwrap_or_else(|e| panic!("binding the test JWKS server failed: {e}"));
        let addr = listener
            .local_addr()
            .unwrap_or_else(|e| panic!("no local address: {e}"));
        let shared = Arc::new(Shared {
            keys: Mutex::new(keys.iter().map(|k| k.jwk()).collect()),
            mode: Mutex::new(Mode::Serve),
            discovery_issuer: Mutex::new(None),
            cache_control: Mutex::new(None),
            jwks_fetches: watch::Sender::new(0),
            discovery_fetches: AtomicUsize::new(0),
            open: watch::Sender::new(true),
            base_url: format!("http://{addr}"),
        });
        let state = Arc::clone(&shared);
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                };
                tokio::spawn(serve(stream, Arc::clone(&state)));
            }
        });
        Self {
            addr,
            shared,
            task: Some(task),
        }
    }

    /// The issuer URL, `http://127.0.0.1:<port>` (no trailing slash).
    #[must_use]
    pub fn issuer(&self) -> String {
        self.shared.base_url.clone()
    }

    /// The JWKS URL.
    #[must_use]
    pub fn jwks_url(&self) -> String {
        format!("{}/.well-known/jwks.json", self.shared.base_url)
    }

    /// The address it listens on.
    #[must_use]
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// How many times the JWKS was requested (whatever the answer).
    #[must_use]
    pub fn jwks_fetches(&self) -> usize {
        *self.shared.jwks_fetches.borrow()
    }

    /// Waits until the JWKS was requested at least `count` times in all (the request has
    /// arrived; its answer may still be held). Panics after a minute, a safety net only.
    pub async fn wait_for_jwks_fetches(&self, count: usize) {
        let mut fetches = self.shared.jwks_fetches.subscribe();
        let arrived = tokio::time::timeout(
            Duration::from_secs(60),
            fetches.wait_for(|fetched| *fetched >= count),
        )
        .await;
        assert!(
            matches!(arrived, Ok(Ok(_))),
            "the JWKS was requested {} times, not {count}",
            self.jwks_fetches()
        );
    }

    /// How many times the discovery document was requested.
    #[must_use]
    pub fn discovery_fetches(&self) -> usize {
        self.shared.discovery_fetches.load(Ordering::SeqCst)
    }

    /// Replaces the published keys (a rotation).
    pub fn set_keys(&self, keys: &[&TestKey]) {
        *lock(&self.shared.keys) = keys.iter().map(|k| k.jwk()).collect();
    }

    /// Replaces the published key set with raw JSON values.
    pub fn set_raw_keys(&self, keys: Vec<Value>) {
        *lock(&self.shared.keys) = keys;
    }

    /// Changes what the server answers from now on.
    pub fn set_mode(&self, mode: Mode) {
        *lock(&self.shared.mode) = mode;
    }

    /// Sends `Cache-Control: <value>` with every JWKS answer from now on (`None`: no header).
    pub fn set_cache_control(&self, value: Option<&str>) {
        *lock(&self.shared.cache_control) = value.map(str::to_owned);
    }

    /// Holds back every JWKS answer from now on: requests are counted on arrival, then wait
    /// until [`JwksServer::release`], and are answered with the keys and mode of that moment.
    pub fn hold(&self) {
        self.shared.open.send_replace(false);
    }

    /// Answers the held requests, and later ones at once.
    pub fn release(&self) {
        self.shared.open.send_replace(true);
    }

    /// Makes the discovery document name another issuer than the server's own.
    pub fn set_discovery_issuer(&self, issuer: &str) {
        *lock(&self.shared.discovery_issuer) = Some(issuer.to_owned());
    }

    /// Stops listening: from now on connections are refused.
    pub async fn stop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
            // Waiting for the cancelled task drops the listener before we return.
            let _ = task.await;
        }
    }
}

impl Drop for JwksServer {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

/// An `http://127.0.0.1:<port>` where nothing listens (connections are refused).
pub async fn unreachable_url() -> String {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap_or_else(|e| panic!("binding failed: {e}"));
    let addr = listener
        .local_addr()
        .unwrap_or_else(|e| panic!("no local address: {e}"));
    drop(listener);
    format!("http://{addr}")
}

async fn serve(mut stream: TcpStream, shared: Arc<Shared>) {
    let mut request = Vec::with_capacity(1024);
    let mut buf = [0u8; 1024];
    while !request.windows(4).any(|w| w == b"\r\n\r\n") && request.len() < 16 * 1024 {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => request.extend_from_slice(&buf[..n]),
        }
    }
    let head = String::from_utf8_lossy(&request);
    let path = head.split_whitespace().nth(1).unwrap_or("/").to_owned();

    let document = match path.as_str() {
        "/.well-known/jwks.json" => {
            shared.jwks_fetches.send_modify(|fetched| *fetched += 1);
            // `wait_for` looks at the current value first: a release is never missed.
            if shared
                .open
                .subscribe()
                .wait_for(|open| *open)
                .await
                .is_err()
            {
                return;
            }
            Some(serde_json::json!({ "keys": *lock(&shared.keys) }))
        }
        "/.well-known/openid-configuration" => {
            shared.discovery_fetches.fetch_add(1, Ordering::SeqCst);
            let issuer = lock(&shared.discovery_issuer)
                .clone()
                .unwrap_or_else(|| shared.base_url.clone());
            Some(serde_json::json!({
                "issuer": issuer,
                "jwks_uri": format!("{}/.well-known/jwks.json", shared.base_url),
                "id_token_signing_alg_values_supported": ["RS256", "ES256"],
            }))
        }
        _ => None,
    };
    let mode = *lock(&shared.mode);
    let (status, body) = match (document, mode) {
        (None, _) => ("404 Not Found", String::new()),
        (Some(_), Mode::Hang) => {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            return;
        }
        (Some(_), Mode::Fail) => ("500 Internal Server Error", String::new()),
        (Some(_), Mode::Garbage) => ("200 OK", "<html>not json</html>".to_owned()),
        (Some(doc), Mode::Serve) => ("200 OK", doc.to_string()),
    };
    let cache_control = match (path.as_str(), &*lock(&shared.cache_control)) {
        ("/.well-known/jwks.json", Some(value)) => format!("Cache-Control: {value}\r\n"),
        _ => String::new(),
    };
    let response = format!(
        "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\
         {cache_control}Connection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = stream.write_all(response.as_bytes()).await;
    let _ = stream.shutdown().await;
}
