//! Starting and stopping `confab` processes, and talking to them.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

pub const BIN: &str = env!("CARGO_BIN_EXE_confab");

/// A scratch directory removed on drop.
pub struct Scratch(pub PathBuf);

impl Scratch {
    pub fn new(name: &str) -> Self {
        let dir =
            std::env::temp_dir().join(format!("confab-{name}-{}", uuid::Uuid::now_v7().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A running `confab serve`.
pub struct Server {
    pub child: Child,
    pub base: String,
    pub log: PathBuf,
}

/// The environment every test server gets: its own port, files and a fixed dev secret.
pub fn base_env(dir: &Path, port: u16) -> Vec<(String, String)> {
    vec![
        ("CONFAB_BIND".into(), format!("127.0.0.1:{port}")),
        (
            "DATABASE_URL".into(),
            format!("sqlite://{}/confab.db", dir.display()),
        ),
        (
            "CONFAB_FILES_DIR".into(),
            dir.join("files").display().to_string(),
        ),
        (
            "CONFAB_DEV_AUTH_SECRET".into(),
            "a-fixed-secret-for-restart-tests-0123456789".into(),
        ),
        ("CONFAB_ECHO_PACE_MS".into(), "0".into()),
        ("CONFAB_WORKERS".into(), "1".into()),
        ("RUST_LOG".into(), "info".into()),
    ]
}

pub fn command(dir: &Path, env: &[(String, String)]) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.current_dir(dir)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .stdin(Stdio::null());
    cmd
}

impl Server {
    /// Starts `confab` and waits until `/healthz` answers.
    pub async fn start(dir: &Path, env: &[(String, String)]) -> Self {
        let port = env
            .iter()
            .find(|(k, _)| k == "CONFAB_BIND")
            .and_then(|(_, v)| v.rsplit(':').next())
            .and_then(|p| p.parse::<u16>().ok())
            .unwrap();
        let log = dir.join(format!("server-{}.log", uuid::Uuid::now_v7().simple()));
        let out = std::fs::File::create(&log).unwrap();
        let err = out.try_clone().unwrap();
        let child = command(dir, env).stdout(out).stderr(err).spawn().unwrap();
        let server = Self {
            child,
            base: format!("http://127.0.0.1:{port}"),
            log,
        };
        let started = Instant::now();
        loop {
            if reqwest::get(format!("{}/healthz", server.base))
                .await
                .is_ok_and(|r| r.status() == 200)
            {
                return server;
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "confab did not start: {}",
                std::fs::read_to_string(&server.log).unwrap_or_default()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub fn logs(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Sends a signal (`TERM`, `KILL`) with the system's `kill`.
    pub fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .arg(format!("-{name}"))
            .arg(self.child.id().to_string())
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// Waits for the process to exit, up to `limit`.
    pub async fn wait_exit(&mut self, limit: Duration) -> std::process::ExitStatus {
        let started = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                started.elapsed() < limit,
                "confab did not exit: {}",
                self.logs()
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A signed-in client of a server.
#[derive(Clone)]
pub struct Client {
    pub base: String,
    pub token: String,
    http: reqwest::Client,
}

impl Client {
    pub async fn sign_in(base: &str, username: &str) -> Self {
        // A pooled connection is dropped after 1 s idle, before the server's keep-alive (5 s)
        // closes it: a request sent on a connection the server is closing fails with
        // IncompleteMessage (seen when a test's client idled while its browser worked).
        let http = reqwest::Client::builder()
            .pool_idle_timeout(Duration::from_secs(1))
            .build()
            .unwrap();
        let answer: Value = http
            .post(format!("{base}/api/auth/dev-login"))
            .json(&json!({ "username": username }))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        Self {
            base: base.to_owned(),
            token: answer["token"].as_str().expect("a token").to_owned(),
            http,
        }
    }

    pub async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        let response = self
            .http
            .post(format!("{}{path}", self.base))
            .bearer_auth(&self.token)
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    pub async fn get(&self, path: &str) -> (u16, Value) {
        let response = self
            .http
            .get(format!("{}{path}", self.base))
            .bearer_auth(&self.token)
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// Uploads `bytes` as the text file `filename` of `project` (a multipart form written
    /// here); the answer's status and body.
    pub async fn upload(&self, project: &str, filename: &str, bytes: &[u8]) -> (u16, Value) {
        let boundary = "confab-test-boundary-5c0e1f";
        let mut body = format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{filename}\"\r\n\
             Content-Type: text/plain\r\n\r\n"
        )
        .into_bytes();
        body.extend_from_slice(bytes);
        body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
        let response = self
            .http
            .post(format!("{}/api/projects/{project}/files", self.base))
            .bearer_auth(&self.token)
            .header(
                "content-type",
                format!("multipart/form-data; boundary={boundary}"),
            )
            .body(body)
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// Creates a project and a conversation; returns their ids.
    pub async fn project_and_chat(&self) -> (String, String) {
        let (status, project) = self.post("/api/projects", json!({"name": "Bot"})).await;
        assert_eq!(status, 201);
        let project = project["id"].as_str().unwrap().to_owned();
        let (status, chat) = self
            .post(&format!("/api/projects/{project}/conversations"), json!({}))
            .await;
        assert_eq!(status, 201);
        (project, chat["id"].as_str().unwrap().to_owned())
    }

    /// Sends a message and reads up to `max_events` SSE events (then drops the stream).
    pub async fn send(
        &self,
        conversation: &str,
        content: &str,
        max_events: usize,
    ) -> (u16, Vec<(String, Value)>) {
        match self.open_stream(conversation, content).await {
            Ok(stream) => (200, stream.collect(max_events).await),
            Err(status) => (status, Vec::new()),
        }
    }

    /// Sends a message and returns its open stream, to be read event by event as the
    /// server writes them; `Err(status)` when the send was not answered with a stream.
    pub async fn open_stream(&self, conversation: &str, content: &str) -> Result<Events, u16> {
        let response = self
            .http
            .post(format!(
                "{}/api/conversations/{conversation}/messages",
                self.base
            ))
            .bearer_auth(&self.token)
            .json(&json!({ "content": content }))
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        if status != 200 {
            return Err(status);
        }
        Ok(Events {
            response,
            buffer: Vec::new(),
            last_id: String::new(),
        })
    }

    /// `GET /api/conversations/{id}/stream`, after `last_event_id` when given; `Err` with the
    /// status when it is not a 200 stream.
    pub async fn follow(
        &self,
        conversation: &str,
        last_event_id: Option<&str>,
    ) -> Result<Events, u16> {
        let mut request = self
            .http
            .get(format!(
                "{}/api/conversations/{conversation}/stream",
                self.base
            ))
            .bearer_auth(&self.token);
        if let Some(id) = last_event_id {
            request = request.header("Last-Event-ID", id);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        if status != 200 {
            return Err(status);
        }
        Ok(Events {
            response,
            buffer: Vec::new(),
            last_id: String::new(),
        })
    }

    pub async fn messages(&self, conversation: &str) -> Vec<Value> {
        let (status, page) = self
            .get(&format!(
                "/api/conversations/{conversation}/messages?limit=200"
            ))
            .await;
        assert_eq!(status, 200);
        page["items"].as_array().unwrap().clone()
    }
}

/// The SSE events of one send, read as they arrive.
pub struct Events {
    response: reqwest::Response,
    /// Bytes received and not yet parsed into a whole event.
    buffer: Vec<u8>,
    /// The `id:` of the last event read ("" before the first).
    last_id: String,
}

impl Events {
    /// The next event (`name`, `data`), waiting for the server to write it; `None` once the
    /// stream has ended (or broke off). Comment lines (keep-alives) are skipped.
    pub async fn next(&mut self) -> Option<(String, Value)> {
        loop {
            while let Some(end) = self.buffer.windows(2).position(|w| w == b"\n\n") {
                let frame: Vec<u8> = self.buffer.drain(..end + 2).collect();
                let mut name = String::new();
                let mut data = String::new();
                let mut id = None;
                for line in String::from_utf8_lossy(&frame).lines() {
                    if let Some(v) = line.strip_prefix("id: ") {
                        id = Some(v.to_owned());
                    } else if let Some(v) = line.strip_prefix("event: ") {
                        name = v.to_owned();
                    } else if let Some(v) = line.strip_prefix("data: ") {
                        data.push_str(v);
                    }
                }
                // A conversation's title may follow `done` (the HTTP suite checks it): these
                // tests read the reply, whose last event stays `done` or `error`.
                if name == "title" {
                    continue;
                }
                if let Some(id) = id {
                    self.last_id = id;
                }
                if !name.is_empty() {
                    return Some((name, serde_json::from_str(&data).unwrap_or(Value::Null)));
                }
            }
            match self.response.chunk().await {
                Ok(Some(chunk)) => self.buffer.extend_from_slice(&chunk),
                Ok(None) | Err(_) => return None,
            }
        }
    }

    /// The `id:` of the last event read.
    pub fn last_id(&self) -> &str {
        &self.last_id
    }

    /// Waits for the first event named `name`, up to `limit` (a safety net: the event is
    /// what the caller waits for); returns it with the events before it.
    pub async fn until(&mut self, name: &str, limit: Duration) -> Vec<(String, Value)> {
        let mut seen = Vec::new();
        let found = tokio::time::timeout(limit, async {
            while let Some(event) = self.next().await {
                let is_it = event.0 == name;
                seen.push(event);
                if is_it {
                    return true;
                }
            }
            false
        })
        .await;
        assert_eq!(
            found,
            Ok(true),
            "no `{name}` event within {limit:?}; the stream gave {seen:?}"
        );
        seen
    }

    /// Reads up to `max_events` more events, until the stream ends.
    pub async fn collect(mut self, max_events: usize) -> Vec<(String, Value)> {
        let mut events = Vec::new();
        while events.len() < max_events {
            let Some(event) = self.next().await else {
                break;
            };
            events.push(event);
        }
        events
    }
}

/// Sets `key` to `value` in a process environment, replacing any earlier value.
pub fn set(env: &mut Vec<(String, String)>, key: &str, value: &str) {
    env.retain(|(k, _)| k != key);
    env.push((key.to_owned(), value.to_owned()));
}

/// Two replicas on the database of `env`: it is migrated once, then both processes start,
/// the second on a port of its own.
pub async fn two_replicas(dir: &Path, env: &[(String, String)]) -> (Server, Server) {
    let migrate = command(dir, env).arg("migrate").output().unwrap();
    assert!(
        migrate.status.success(),
        "{}",
        String::from_utf8_lossy(&migrate.stderr)
    );
    let mut env_b = env.to_vec();
    set(
        &mut env_b,
        "CONFAB_BIND",
        &format!("127.0.0.1:{}", free_port()),
    );
    let a = Server::start(dir, env).await;
    let b = Server::start(dir, &env_b).await;
    (a, b)
}

/// A TCP proxy to `upstream` that a test can cut, to make a server unreachable without
/// stopping it: while cut, new connections are refused (the port is closed) and open ones
/// are reset.
pub struct CutProxy {
    pub port: u16,
    up: tokio::sync::watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl CutProxy {
    pub async fn start(upstream: std::net::SocketAddr) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let (up, watch) = tokio::sync::watch::channel(true);
        let task = tokio::spawn(proxy(listener, port, upstream, watch));
        Self { port, up, task }
    }

    /// A proxy in front of the database of `url` (a PostgreSQL URL), and `url` through it.
    pub async fn in_front_of(url: &str) -> (Self, String) {
        use std::net::ToSocketAddrs as _;

        let mut url = reqwest::Url::parse(url).unwrap();
        let upstream = (
            url.host_str().unwrap().to_owned(),
            url.port_or_known_default().unwrap_or(5432),
        )
            .to_socket_addrs()
            .unwrap()
            .next()
            .unwrap();
        let proxy = Self::start(upstream).await;
        url.set_port(Some(proxy.port)).unwrap();
        (proxy, url.to_string())
    }

    /// Refuses new connections and resets the open ones, until [`CutProxy::restore`].
    pub fn cut(&self) {
        self.up.send_replace(false);
    }

    pub fn restore(&self) {
        self.up.send_replace(true);
    }
}

impl Drop for CutProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn proxy(
    listener: tokio::net::TcpListener,
    port: u16,
    upstream: std::net::SocketAddr,
    mut up: tokio::sync::watch::Receiver<bool>,
) {
    let mut listener = Some(listener);
    loop {
        match &listener {
            Some(open) => tokio::select! {
                accepted = open.accept() => {
                    if let Ok((client, _)) = accepted {
                        tokio::spawn(pipe(client, upstream, up.clone()));
                    }
                }
                changed = up.changed() => {
                    if changed.is_err() {
                        return;
                    }
                    if !*up.borrow() {
                        // Closing the port refuses new connections.
                        listener = None;
                    }
                }
            },
            None => {
                if up.changed().await.is_err() {
                    return;
                }
                if *up.borrow() {
                    listener = Some(
                        tokio::net::TcpListener::bind(("127.0.0.1", port))
                            .await
                            .unwrap(),
                    );
                }
            }
        }
    }
}

/// Relays one connection until either side closes it, or resets both when the proxy is cut.
async fn pipe(
    mut client: tokio::net::TcpStream,
    upstream: std::net::SocketAddr,
    mut up: tokio::sync::watch::Receiver<bool>,
) {
    let Ok(mut server) = tokio::net::TcpStream::connect(upstream).await else {
        return;
    };
    tokio::select! {
        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
        _ = up.wait_for(|up| !*up) => {
            // Closing with a zero linger sends a reset.
            let _ = client.set_zero_linger();
            let _ = server.set_zero_linger();
        }
    }
}
