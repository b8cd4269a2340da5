//! The server under test: a database for it, the `confab` process itself, and the API calls
//! that set up users, projects and conversations before a measurement.

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use futures::StreamExt;
use serde_json::{Value, json};
use tokio::process::{Child, Command};

use crate::BenchError;

/// Which database the server runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    #[must_use]
    pub const fn label(self) -> &'static str {
        match self {
            Self::Sqlite => "SQLite",
            Self::Postgres => "PostgreSQL",
        }
    }
}

/// How the server talks to the fake provider.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
pub enum Upstream {
    /// HTTP/1.1: one connection per stream (most local OpenAI-compatible servers).
    Http1,
    /// HTTP/2 with prior knowledge (`CONFAB_LLM_HTTP2_PRIOR_KNOWLEDGE=1`): all streams share one
    /// connection, as they do with api.openai.com, which negotiates HTTP/2 over TLS.
    Http2,
}

impl Upstream {
    #[must_use]
    pub const fn label(self) -> &'static str {
        match self {
            Self::Http1 => "HTTP/1.1",
            Self::Http2 => "HTTP/2",
        }
    }
}

/// A database made for one benchmark run; a PostgreSQL one is dropped by [`Database::remove`].
#[derive(Debug)]
pub struct Database {
    pub url: String,
    postgres: Option<(String, String)>,
}

impl Database {
    /// A fresh SQLite file in `dir`.
    #[must_use]
    pub fn sqlite(dir: &Path, name: &str) -> Self {
        Self {
            url: format!("sqlite://{}", dir.join(name).display()),
            postgres: None,
        }
    }

    /// A fresh database `confab_bench_<pid>` on the server `admin_url` points at.
    pub async fn postgres(admin_url: &str) -> Result<Self, BenchError> {
        Self::postgres_named(admin_url, &format!("confab_bench_{}", std::process::id())).await
    }

    /// A fresh database `name` (dropped first if a crashed run left it) on the server
    /// `admin_url` points at.
    pub async fn postgres_named(admin_url: &str, name: &str) -> Result<Self, BenchError> {
        let admin = admin_client(admin_url).await?;
        admin
            .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            .await?;
        admin
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .await?;
        let mut url = url::Url::parse(admin_url)
            .map_err(|e| BenchError::Setup(format!("DATABASE_URL is not a URL: {e}")))?;
        url.set_path(&format!("/{name}"));
        Ok(Self {
            url: url.into(),
            postgres: Some((admin_url.to_owned(), name.to_owned())),
        })
    }

    /// Drops a PostgreSQL database made by [`Database::postgres`]; nothing for SQLite (its
    /// file goes with the temporary directory).
    pub async fn remove(self) -> Result<(), BenchError> {
        if let Some((admin_url, name)) = self.postgres {
            let admin = admin_client(&admin_url).await?;
            admin
                .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                .await?;
        }
        Ok(())
    }
}

async fn admin_client(url: &str) -> Result<tokio_postgres::Client, BenchError> {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls).await?;
    tokio::spawn(async move {
        let _ = connection.await;
    });
    Ok(client)
}

/// A running `confab` process.
#[derive(Debug)]
pub struct ServerProcess {
    child: Child,
    pub pid: u32,
    pub addr: SocketAddr,
    /// From spawning the process to the first `200` of `/healthz`.
    pub start_to_ready: Duration,
    log: PathBuf,
}

/// Settings the server is started with.
pub struct Launch<'a> {
    pub binary: &'a Path,
    pub database_url: &'a str,
    pub provider_base_url: &'a str,
    pub upstream: Upstream,
    pub dir: &'a Path,
    /// More variables, set last.
    pub extra_env: &'a [(String, String)],
    /// Run the server (not `migrate`) under callgrind, its dumps in this folder.
    pub callgrind: Option<&'a Path>,
}

fn free_port() -> Result<u16, BenchError> {
    let listener = TcpListener::bind(("127.0.0.1", 0))?;
    Ok(listener.local_addr()?.port())
}

impl Launch<'_> {
    /// The binary with a clean environment (so no `.env`, `confab.toml` or variable of the
    /// caller leaks in) and these settings.
    fn command(&self) -> Result<Command, BenchError> {
        self.command_under(None)
    }

    /// [`Self::command`], under callgrind when `callgrind` names the dumps' folder.
    fn command_under(&self, callgrind: Option<&Path>) -> Result<Command, BenchError> {
        let files = self.dir.join("files");
        std::fs::create_dir_all(&files)?;
        let mut command = match callgrind {
            Some(dir) => {
                let mut command = Command::new("valgrind");
                command
                    .arg("--tool=callgrind")
                    .arg(format!(
                        "--callgrind-out-file={}",
                        crate::callgrind::out_pattern(dir).display()
                    ))
                    .arg(self.binary);
                command
            }
            None => Command::new(self.binary),
        };
        command
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("DATABASE_URL", self.database_url)
            .env("CONFAB_LLM", "openai")
            .env("OPENAI_API_KEY", "bench")
            .env("OPENAI_BASE_URL", self.provider_base_url)
            .env(
                "CONFAB_LLM_HTTP2_PRIOR_KNOWLEDGE",
                if self.upstream == Upstream::Http2 {
                    "1"
                } else {
                    "0"
                },
            )
            .env("CONFAB_MODEL", "bench")
            .env("CONFAB_SENDS_PER_MINUTE", "1000000")
            .env("CONFAB_AUTH", "dev")
            .env(
                "CONFAB_DEV_AUTH_SECRET",
                "bench-secret-0123456789abcdef0123456789abcdef",
            )
            .env("CONFAB_FILES_DIR", &files)
            .env("CONFAB_SHUTDOWN_GRACE_SECS", "1")
            .env("RUST_LOG", "warn")
            .envs(self.extra_env.iter().map(|(k, v)| (k, v)))
            .current_dir(self.dir)
            .stdin(Stdio::null());
        Ok(command)
    }

    /// Runs `confab migrate`: replicas that share a database start on a migrated one, so
    /// that they do not race to migrate it.
    pub async fn migrate(&self) -> Result<(), BenchError> {
        let output = self.command()?.arg("migrate").output().await?;
        if output.status.success() {
            Ok(())
        } else {
            Err(BenchError::Setup(format!(
                "`confab migrate` failed ({}): {}",
                output.status,
                String::from_utf8_lossy(&output.stderr)
            )))
        }
    }
}

impl ServerProcess {
    /// Starts the binary with a clean environment (so no `.env`, `confab.toml` or variable of
    /// the caller leaks in) and waits until `/healthz` answers `200`. The child inherits this
    /// process's open-file limit.
    pub async fn start(launch: &Launch<'_>, http: &reqwest::Client) -> Result<Self, BenchError> {
        let port = free_port()?;
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let log = launch.dir.join(format!("confab-{port}.log"));
        let log_file = std::fs::File::create(&log)?;
        let mut command = launch.command_under(launch.callgrind)?;
        command
            .env("CONFAB_BIND", addr.to_string())
            .stdout(Stdio::null())
            .stderr(log_file)
            .kill_on_drop(true);
        let started = Instant::now();
        let mut child = command.spawn().map_err(|e| {
            BenchError::Setup(format!(
                "cannot start {}: {e} (build it with `cargo build --release -p confab-server`)",
                launch.binary.display()
            ))
        })?;
        let pid = child
            .id()
            .ok_or_else(|| BenchError::Setup("the server exited at once".to_owned()))?;
        let health = format!("http://{addr}/healthz");
        // Under callgrind the start is some 50 times slower.
        let patience = Duration::from_secs(if launch.callgrind.is_some() { 600 } else { 60 });
        let deadline = started + patience;
        loop {
            if let Ok(response) = http.get(&health).send().await
                && response.status().is_success()
            {
                break;
            }
            if let Some(status) = child.try_wait()? {
                return Err(BenchError::Setup(format!(
                    "the server exited with {status} before it was ready; its log:\n{}",
                    tail(&log)
                )));
            }
            if Instant::now() > deadline {
                return Err(BenchError::Setup(format!(
                    "the server was not ready after {patience:?}; its log:\n{}",
                    tail(&log)
                )));
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        Ok(Self {
            child,
            pid,
            addr,
            start_to_ready: started.elapsed(),
            log,
        })
    }

    /// The end of the server's log.
    #[must_use]
    pub fn log_tail(&self) -> String {
        tail(&self.log)
    }

    /// Asks the server to stop (SIGTERM), and kills it after 10 s.
    pub async fn stop(mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.pid.to_string()])
            .status()
            .await;
        if tokio::time::timeout(Duration::from_secs(10), self.child.wait())
            .await
            .is_err()
        {
            let _ = self.child.kill().await;
        }
    }

    /// Kills the server at once (SIGKILL).
    pub async fn kill(mut self) {
        let _ = self.child.kill().await;
    }
}

fn tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(20)..].join("\n")
}

/// A signed-in user with one project.
#[derive(Clone, Debug)]
pub struct Tenant {
    pub token: String,
    pub project_id: String,
}

/// The API calls that prepare a measurement.
pub struct Api<'a> {
    pub http: &'a reqwest::Client,
    pub base: String,
}

async fn json_of(response: reqwest::Response, what: &str) -> Result<Value, BenchError> {
    let status = response.status();
    let text = response.text().await?;
    if !status.is_success() {
        return Err(BenchError::Setup(format!(
            "{what}: status {status}: {text}"
        )));
    }
    serde_json::from_str(&text).map_err(|e| BenchError::Setup(format!("{what}: {e}")))
}

fn field(value: &Value, name: &str, what: &str) -> Result<String, BenchError> {
    value[name]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| BenchError::Setup(format!("{what}: no `{name}` in {value}")))
}

impl Api<'_> {
    /// Signs in `username` (dev auth) and creates a project for them.
    pub async fn tenant(&self, username: &str) -> Result<Tenant, BenchError> {
        let login = self
            .http
            .post(format!("{}/api/auth/dev-login", self.base))
            .json(&json!({"username": username}))
            .send()
            .await?;
        let token = field(&json_of(login, "dev-login").await?, "token", "dev-login")?;
        let project = self
            .http
            .post(format!("{}/api/projects", self.base))
            .bearer_auth(&token)
            .json(&json!({"name": format!("bench {username}")}))
            .send()
            .await?;
        let project_id = field(&json_of(project, "create project").await?, "id", "project")?;
        Ok(Tenant { token, project_id })
    }

    /// Signs in `username` (dev auth) and returns the token.
    pub async fn token(&self, username: &str) -> Result<String, BenchError> {
        let login = self
            .http
            .post(format!("{}/api/auth/dev-login", self.base))
            .json(&json!({"username": username}))
            .send()
            .await?;
        field(&json_of(login, "dev-login").await?, "token", "dev-login")
    }

    /// Whether the token's user is an administrator (`GET /api/me`).
    pub async fn is_admin(&self, token: &str) -> Result<bool, BenchError> {
        let me = self
            .http
            .get(format!("{}/api/me", self.base))
            .bearer_auth(token)
            .send()
            .await?;
        Ok(json_of(me, "me").await?["is_admin"].as_bool() == Some(true))
    }

    /// Creates one conversation per entry of `owners` (an index into `tenants`), 32 at a
    /// time, and returns their ids in the same order.
    pub async fn conversations(
        &self,
        tenants: &[Tenant],
        owners: &[usize],
    ) -> Result<Vec<String>, BenchError> {
        let calls = owners.iter().map(|owner| async move {
            let tenant = tenants
                .get(*owner)
                .ok_or_else(|| BenchError::Setup("no such tenant".to_owned()))?;
            let response = self
                .http
                .post(format!(
                    "{}/api/projects/{}/conversations",
                    self.base, tenant.project_id
                ))
                .bearer_auth(&tenant.token)
                .json(&json!({"title": "bench"}))
                .send()
                .await?;
            field(
                &json_of(response, "create conversation").await?,
                "id",
                "conversation",
            )
        });
        futures::stream::iter(calls)
            .buffered(32)
            .collect::<Vec<_>>()
            .await
            .into_iter()
            .collect()
    }

    /// The browser client as served: the gzipped and plain sizes of its `.wasm` and `.js`,
    /// found through the links of `/`.
    pub async fn client_size(&self) -> Result<Vec<ClientAsset>, BenchError> {
        let index = self
            .http
            .get(format!("{}/", self.base))
            .send()
            .await?
            .text()
            .await?;
        let mut assets = Vec::new();
        for name in asset_names(&index) {
            let url = format!("{}/{}", self.base, name);
            let plain = self.http.get(&url).send().await?.bytes().await?.len();
            let gzipped = self
                .http
                .get(&url)
                .header("accept-encoding", "gzip")
                .send()
                .await?;
            let encoding = gzipped
                .headers()
                .get("content-encoding")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("identity")
                .to_owned();
            let gzipped = gzipped.bytes().await?.len();
            assets.push(ClientAsset {
                name,
                bytes: plain,
                gzipped_bytes: gzipped,
                encoding,
            });
        }
        Ok(assets)
    }
}

/// One file of the browser client, as the server sends it.
#[derive(Clone, Debug, serde::Serialize)]
pub struct ClientAsset {
    pub name: String,
    pub bytes: usize,
    pub gzipped_bytes: usize,
    /// The `Content-Encoding` of the answer to a request that accepts gzip.
    pub encoding: String,
}

/// The `.wasm` and `.js` files an HTML page links to (`src="…"`, `href="…"`, or inside the
/// module script), without duplicates.
#[must_use]
pub fn asset_names(html: &str) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for piece in html.split(['"', '\'', '(', ')', ' ']) {
        let piece = piece.trim_start_matches("./").trim_start_matches('/');
        let wanted = piece.ends_with(".wasm") || piece.ends_with(".js");
        if wanted
            && !piece.contains("://")
            && !piece.is_empty()
            && !names.iter().any(|n| n == piece)
        {
            names.push(piece.to_owned());
        }
    }
    names
}

#[cfg(test)]
mod tests {

    use super::*;

    #[test]
    fn the_clients_wasm_and_js_are_found_in_the_page() {
        let html = r#"<link rel="modulepreload" href="/app-1a2b.js"><link rel="preload" href="/app-1a2b_bg.wasm" as="fetch">
<script type="module">import init from '/app-1a2b.js'; init('/app-1a2b_bg.wasm');</script>
<script src="https://cdn.example/x.js"></script>"#;
        assert_eq!(asset_names(html), ["app-1a2b.js", "app-1a2b_bg.wasm"]);
    }

    #[test]
    fn a_sqlite_database_lives_in_the_given_folder() {
        let db = Database::sqlite(Path::new("/tmp/x"), "bench.db");
        assert_eq!(db.url, "sqlite:///tmp/x/bench.db");
    }
}
