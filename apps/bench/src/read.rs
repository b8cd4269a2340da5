//! The read path (issue 20): one user with a project, a conversation of `--read-turns` turns
//! (two messages each, about 21 KB as a page of 50), a few more projects, conversations and
//! files, then each read route driven by `--read-connections` keep-alive HTTP/1.1 connections
//! (a tokio loop in this process, one request at a time on each connection) for
//! `--read-secs`: requests per second and p50/p99 per route. The load generator runs on the
//! same machine and shares its cores with the server.
//!
//! With `--callgrind` the server runs under valgrind instead, and each route is measured by
//! its instructions per request: the counters zeroed, `--read-callgrind-requests` requests
//! sent, the counters dumped. That figure does not move with other load on the machine.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use confab_tests::fake_provider::{FakeConfig, FakeProvider};
use http_body_util::{BodyExt, Full};
use hyper::header::{AUTHORIZATION, HOST};
use hyper::{Method, Request};
use serde::Serialize;
use serde_json::json;
use tokio::task::JoinSet;

use crate::BenchError;
use crate::client::{self, Sender};
use crate::server::{Api, Backend, Tenant};
use crate::stats::Samples;

/// What the read suite does.
#[derive(Clone, Debug)]
pub struct ReadPlan {
    /// Turns of the read conversation (a user message and a reply each).
    pub turns: usize,
    pub connections: usize,
    pub duration: Duration,
    pub warmup: Duration,
    /// Requests per route under callgrind.
    pub callgrind_requests: usize,
}

/// One route's figures.
#[derive(Clone, Debug, Serialize)]
pub struct RouteFigure {
    pub route: String,
    /// Bytes of one answer's body.
    pub body_bytes: usize,
    pub requests: u64,
    pub errors: u64,
    pub requests_per_second: Option<f64>,
    pub p50_us: Option<u32>,
    pub p99_us: Option<u32>,
    /// Instructions the server executed per request (`--callgrind`).
    pub instructions_per_request: Option<u64>,
}

/// The read suite on one backend.
#[derive(Clone, Debug, Serialize)]
pub struct ReadBackend {
    pub backend: &'static str,
    pub connections: usize,
    pub seconds: f64,
    pub callgrind: bool,
    pub load1_at_start: Option<f64>,
    pub load1_at_end: Option<f64>,
    pub routes: Vec<RouteFigure>,
}

/// The read suite.
#[derive(Clone, Debug, Default, Serialize)]
pub struct ReadReport {
    pub backends: Vec<ReadBackend>,
}

/// The routes read, named as in the report, with their paths.
struct Routes(Vec<(&'static str, String)>);

/// The user message of each turn (~100 bytes) and the reply's deltas (~500 bytes).
fn user_text(i: usize) -> String {
    format!("Question {i:03}: how does the read path of a chat backend spend its time per request?")
}

fn reply_deltas() -> Vec<String> {
    (0..7)
        .map(|i| format!(" part {i:02} of the answer, with some words to make it longer."))
        .collect()
}

async fn json_ok(response: reqwest::Response, what: &str) -> Result<serde_json::Value, BenchError> {
    let status = response.status();
    let text = response.text().await?;
    if !status.is_success() {
        return Err(BenchError::Setup(format!(
            "{what}: status {status}: {text}"
        )));
    }
    serde_json::from_str(&text).map_err(|e| BenchError::Setup(format!("{what}: {e}")))
}

fn id_of(value: &serde_json::Value, what: &str) -> Result<String, BenchError> {
    value["id"]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| BenchError::Setup(format!("{what}: no id in {value}")))
}

/// Seeds the reader's data through the API and returns the routes to read.
async fn seed(
    api: &Api<'_>,
    fake: &FakeProvider,
    turns: usize,
) -> Result<(Tenant, Routes), BenchError> {
    let tenant = api.tenant("reader").await?;
    let http = api.http;
    let base = &api.base;
    // A few more projects, and conversations and files in the read project.
    for i in 0..4 {
        let response = http
            .post(format!("{base}/api/projects"))
            .bearer_auth(&tenant.token)
            .json(&json!({"name": format!("more {i}")}))
            .send()
            .await?;
        json_ok(response, "create project").await?;
    }
    let mut conversation = String::new();
    for i in 0..5 {
        let response = http
            .post(format!(
                "{base}/api/projects/{}/conversations",
                tenant.project_id
            ))
            .bearer_auth(&tenant.token)
            .json(&json!({"title": format!("read {i}")}))
            .send()
            .await?;
        conversation = id_of(
            &json_ok(response, "create conversation").await?,
            "conversation",
        )?;
    }
    for i in 0..5 {
        let part = reqwest::multipart::Part::bytes(format!("notes {i}\n").repeat(40).into_bytes())
            .file_name(format!("notes-{i}.txt"))
            .mime_str("text/plain")?;
        let response = http
            .post(format!("{base}/api/projects/{}/files", tenant.project_id))
            .bearer_auth(&tenant.token)
            .multipart(reqwest::multipart::Form::new().part("file", part))
            .send()
            .await?;
        json_ok(response, "upload file").await?;
    }
    let deltas = reply_deltas();
    let refs: Vec<&str> = deltas.iter().map(String::as_str).collect();
    fake.set_config(FakeConfig::replying(&refs));
    for i in 0..turns {
        let response = http
            .post(format!("{base}/api/conversations/{conversation}/messages"))
            .bearer_auth(&tenant.token)
            .json(&json!({"content": user_text(i)}))
            .send()
            .await?;
        let status = response.status();
        let body = response.text().await?;
        if !status.is_success() || !body.contains("done") {
            return Err(BenchError::Setup(format!(
                "turn {i}: status {status}: {}",
                body.chars().take(300).collect::<String>()
            )));
        }
    }
    let project = &tenant.project_id;
    let routes = Routes(vec![
        (
            "GET …/messages?limit=50",
            format!("/api/conversations/{conversation}/messages?limit=50"),
        ),
        (
            "GET …/messages?limit=1",
            format!("/api/conversations/{conversation}/messages?limit=1"),
        ),
        ("GET /api/projects", "/api/projects".to_owned()),
        (
            "GET /api/projects/{id}/conversations",
            format!("/api/projects/{project}/conversations"),
        ),
        (
            "GET /api/projects/{id}/files",
            format!("/api/projects/{project}/files"),
        ),
        ("GET /api/me", "/api/me".to_owned()),
    ]);
    Ok((tenant, routes))
}

fn get(host: &str, path: &str, token: &str) -> Result<Request<Full<Bytes>>, BenchError> {
    Request::builder()
        .method(Method::GET)
        .uri(path)
        .header(HOST, host)
        .header(AUTHORIZATION, format!("Bearer {token}"))
        .body(Full::new(Bytes::new()))
        .map_err(|e| BenchError::Setup(format!("a request could not be built: {e}")))
}

/// One request on `sender`, read to its end: the body's length, or why it failed.
async fn once(sender: &mut Sender, request: Request<Full<Bytes>>) -> Result<usize, String> {
    sender.ready().await.map_err(|e| e.to_string())?;
    let response = sender
        .send_request(request)
        .await
        .map_err(|e| e.to_string())?;
    let status = response.status();
    let body = response
        .into_body()
        .collect()
        .await
        .map_err(|e| e.to_string())?
        .to_bytes();
    if status.is_success() {
        Ok(body.len())
    } else {
        Err(format!("status {status}"))
    }
}

/// What the connections of one round saw.
struct Round {
    requests: u64,
    errors: u64,
    samples: Samples,
    elapsed: Duration,
    first_error: Option<String>,
}

/// Drives `path` on `connections` connections until `stop` (a duration) or until `budget`
/// requests in all were sent.
async fn round(
    addr: SocketAddr,
    path: &str,
    token: &str,
    connections: usize,
    until: Option<Duration>,
    budget: Option<u64>,
) -> Result<Round, BenchError> {
    let host = addr.to_string();
    let mut senders = Vec::with_capacity(connections);
    for _ in 0..connections {
        senders.push(client::connect(addr).await?);
    }
    let stop = Arc::new(AtomicBool::new(false));
    let issued = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut tasks = JoinSet::new();
    for mut sender in senders {
        let (host, path, token) = (host.clone(), path.to_owned(), token.to_owned());
        let (stop, issued) = (stop.clone(), issued.clone());
        tasks.spawn(async move {
            let mut samples = Samples::default();
            let (mut errors, mut first_error) = (0_u64, None);
            loop {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                if budget.is_some_and(|b| issued.fetch_add(1, Ordering::Relaxed) >= b) {
                    break;
                }
                let request = get(&host, &path, &token)?;
                let at = Instant::now();
                match once(&mut sender, request).await {
                    Ok(_) => {
                        samples.push(u32::try_from(at.elapsed().as_micros()).unwrap_or(u32::MAX))
                    }
                    Err(e) => {
                        errors += 1;
                        first_error.get_or_insert(e);
                        // A broken connection is not retried.
                        if sender.is_closed() {
                            break;
                        }
                    }
                }
            }
            Ok::<_, BenchError>((samples, errors, first_error))
        });
    }
    if let Some(until) = until {
        tokio::time::sleep(until).await;
        stop.store(true, Ordering::Relaxed);
    }
    let mut all = Round {
        requests: 0,
        errors: 0,
        samples: Samples::default(),
        elapsed: Duration::ZERO,
        first_error: None,
    };
    while let Some(joined) = tasks.join_next().await {
        let (mut samples, errors, first_error) =
            joined.map_err(|e| BenchError::Setup(format!("a reader failed: {e}")))??;
        all.requests += samples.count() as u64 + errors;
        all.errors += errors;
        all.samples.extend(&samples.take());
        if all.first_error.is_none() {
            all.first_error = first_error;
        }
    }
    all.elapsed = started.elapsed();
    Ok(all)
}

/// Seeds the data on the running server and measures every route.
///
/// # Errors
/// When seeding fails, or a route answers only errors.
pub async fn run(
    backend: Backend,
    api: &Api<'_>,
    fake: &FakeProvider,
    addr: SocketAddr,
    pid: u32,
    callgrind: Option<&Path>,
    plan: &ReadPlan,
) -> Result<ReadBackend, BenchError> {
    let load1_at_start = crate::procfs::load1();
    let (tenant, routes) = seed(api, fake, plan.turns).await?;
    let mut figures = Vec::new();
    for (name, path) in &routes.0 {
        // The body's size, from one request.
        let mut probe = client::connect(addr).await?;
        let body_bytes = once(&mut probe, get(&addr.to_string(), path, &tenant.token)?)
            .await
            .map_err(|e| BenchError::Setup(format!("{name}: {e}")))?;
        drop(probe);
        let figure = match callgrind {
            Some(dir) => {
                // Warm: pools, prepared statements, caches.
                round(addr, path, &tenant.token, plan.connections, None, Some(50)).await?;
                let n = plan.callgrind_requests as u64;
                crate::callgrind::zero(pid)
                    .await
                    .map_err(BenchError::Setup)?;
                let r = round(addr, path, &tenant.token, plan.connections, None, Some(n)).await?;
                let total = crate::callgrind::dump(dir, pid)
                    .await
                    .map_err(BenchError::Setup)?;
                check(name, &r)?;
                RouteFigure {
                    route: (*name).to_owned(),
                    body_bytes,
                    requests: r.requests,
                    errors: r.errors,
                    requests_per_second: None,
                    p50_us: None,
                    p99_us: None,
                    instructions_per_request: Some(total / r.requests.max(1)),
                }
            }
            None => {
                round(
                    addr,
                    path,
                    &tenant.token,
                    plan.connections,
                    Some(plan.warmup),
                    None,
                )
                .await?;
                let mut r = round(
                    addr,
                    path,
                    &tenant.token,
                    plan.connections,
                    Some(plan.duration),
                    None,
                )
                .await?;
                check(name, &r)?;
                RouteFigure {
                    route: (*name).to_owned(),
                    body_bytes,
                    requests: r.requests,
                    errors: r.errors,
                    requests_per_second: Some(
                        (r.requests - r.errors) as f64 / r.elapsed.as_secs_f64(),
                    ),
                    p50_us: r.samples.percentile(50.0),
                    p99_us: r.samples.percentile(99.0),
                    instructions_per_request: None,
                }
            }
        };
        eprintln!("{}: {figure:?}", backend.label());
        figures.push(figure);
    }
    Ok(ReadBackend {
        backend: backend.label(),
        connections: plan.connections,
        seconds: plan.duration.as_secs_f64(),
        callgrind: callgrind.is_some(),
        load1_at_start,
        load1_at_end: crate::procfs::load1(),
        routes: figures,
    })
}

fn check(name: &str, r: &Round) -> Result<(), BenchError> {
    if r.errors > 0 {
        return Err(BenchError::Setup(format!(
            "{name}: {} of {} requests failed, the first: {}",
            r.errors,
            r.requests,
            r.first_error.as_deref().unwrap_or("?")
        )));
    }
    Ok(())
}

impl ReadReport {
    /// The report's section.
    pub fn markdown(&self, out: &mut String) {
        use std::fmt::Write as _;
        let _ = writeln!(out, "## Read path (issue 20)\n");
        for b in &self.backends {
            if b.callgrind {
                let _ = writeln!(
                    out,
                    "### {}: instructions per request (callgrind, {} connections)\n",
                    b.backend, b.connections
                );
                let _ = writeln!(
                    out,
                    "| route | body bytes | requests | instructions / request |"
                );
                let _ = writeln!(out, "|---|---:|---:|---:|");
                for r in &b.routes {
                    let _ = writeln!(
                        out,
                        "| `{}` | {} | {} | {} |",
                        r.route,
                        r.body_bytes,
                        r.requests,
                        r.instructions_per_request
                            .map_or_else(|| "–".to_owned(), |n| n.to_string())
                    );
                }
            } else {
                let _ = writeln!(
                    out,
                    "### {}: {} keep-alive connections, {:.0} s per route (load {:?} → {:?})\n",
                    b.backend, b.connections, b.seconds, b.load1_at_start, b.load1_at_end
                );
                let _ = writeln!(
                    out,
                    "| route | body bytes | req/s | p50 ms | p99 ms | errors |"
                );
                let _ = writeln!(out, "|---|---:|---:|---:|---:|---:|");
                let ms = |us: Option<u32>| {
                    us.map_or_else(
                        || "–".to_owned(),
                        |us| format!("{:.2}", f64::from(us) / 1000.0),
                    )
                };
                for r in &b.routes {
                    let _ = writeln!(
                        out,
                        "| `{}` | {} | {} | {} | {} | {} |",
                        r.route,
                        r.body_bytes,
                        r.requests_per_second
                            .map_or_else(|| "–".to_owned(), |n| format!("{n:.0}")),
                        ms(r.p50_us),
                        ms(r.p99_us),
                        r.errors
                    );
                }
            }
            let _ = writeln!(out);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_page_of_fifty_seeded_messages_holds_about_12_kb_of_text() {
        let reply: usize = reply_deltas().iter().map(String::len).sum();
        let text = 25 * (user_text(0).len() + reply);
        assert!((10_000..15_000).contains(&text), "{text}");
    }
}
