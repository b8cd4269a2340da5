//! The floor of issue 20: a bare relay, the fake provider's stream read and re-sent as
//! Confab-shaped Server-Sent Events with hyper, no authentication, no database, no live
//! replies. It runs as a child process of the harness (`confab-bench --bare-relay <provider
//! base URL>`), so that its CPU (and, under callgrind, its instructions) is measured as the
//! server's is, in the same run.
//!
//! Each `POST` (any path, any body) asks the provider for one reply over a pooled HTTP/1.1
//! connection (`reqwest`, as the server's OpenAI adapter does), parses each provider event
//! once and answers with `delta` events (`{"message_id":…,"text":…}`, numbered from 1) and a
//! final `done`, the frames of one provider read written together.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::process::Stdio;
use std::time::Duration;

use bytes::{BufMut as _, Bytes, BytesMut};
use futures::StreamExt as _;
use http_body_util::{BodyExt, StreamBody, combinators::BoxBody};
use hyper::body::{Frame, Incoming};
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::io::AsyncBufReadExt as _;
use tokio::net::TcpListener;
use tokio::process::{Child, Command};

use crate::BenchError;
use crate::client::Scanner;
use crate::load::direct_request;

/// The `message_id` of every relayed delta (the bare relay stores nothing).
const MESSAGE_ID: &str = "01939d6e-0000-7000-8000-000000000000";

/// Serves until killed; prints `listening <addr>` on stdout once it accepts connections.
///
/// # Errors
/// When it cannot bind or its client cannot be built.
pub async fn serve(provider_base_url: &str) -> Result<(), BenchError> {
    let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
    let client = reqwest::Client::builder()
        .no_proxy()
        .http1_only()
        .tcp_nodelay(true)
        .pool_max_idle_per_host(usize::MAX)
        .build()?;
    let url = format!("{}/responses", provider_base_url.trim_end_matches('/'));
    let body = direct_request("Benchmark: a reply to relay.").body;
    println!("listening {}", listener.local_addr()?);
    loop {
        let (stream, _) = listener.accept().await?;
        stream.set_nodelay(true)?;
        let (client, url, body) = (client.clone(), url.clone(), body.clone());
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |_: Request<Incoming>| {
                relay(client.clone(), url.clone(), body.clone())
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

type Body = BoxBody<Bytes, Infallible>;

/// One reply: the provider's stream, each read's events re-framed as one chunk.
async fn relay(
    client: reqwest::Client,
    url: String,
    body: Bytes,
) -> Result<Response<Body>, Infallible> {
    let upstream = client
        .post(&url)
        .bearer_auth("bench")
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await;
    let upstream = match upstream {
        Ok(r) if r.status().is_success() => r,
        Ok(r) => return Ok(failure(&format!("the provider answered {}", r.status()))),
        Err(e) => return Ok(failure(&e.to_string())),
    };
    let mut scanner = Scanner::default();
    let mut next_id: u64 = 0;
    let frames = upstream.bytes_stream().filter_map(move |read| {
        let chunk = read.ok().map(|data| {
            let mut out = BytesMut::new();
            scanner.feed(&data, |event| reframe(event, &mut next_id, &mut out));
            out.freeze()
        });
        std::future::ready(
            chunk
                .filter(|c| !c.is_empty())
                .map(|c| Ok::<_, Infallible>(Frame::data(c))),
        )
    });
    Ok(sse(BodyExt::boxed(StreamBody::new(frames))))
}

#[derive(serde::Deserialize)]
struct ProviderDelta {
    delta: String,
}

#[derive(serde::Serialize)]
struct Delta<'a> {
    message_id: &'a str,
    text: &'a str,
}

/// Appends the frame of one provider event, if it is a delta or the end.
fn reframe(event: &[u8], next_id: &mut u64, out: &mut BytesMut) {
    let Some(name) = crate::client::event_name(event) else {
        return;
    };
    let data = event.split(|b| *b == b'\n').find_map(|line| {
        let rest = line.strip_prefix(b"data:")?;
        Some(rest.strip_prefix(b" ").unwrap_or(rest))
    });
    let frame = |out: &mut BytesMut, id: u64, name: &str| {
        out.put_slice(format!("id: {id}\nevent: {name}\ndata: ").as_bytes());
    };
    match name {
        b"response.output_text.delta" => {
            let Some(Ok(delta)) = data.map(serde_json::from_slice::<ProviderDelta>) else {
                return;
            };
            *next_id += 1;
            frame(out, *next_id, "delta");
            let mut writer = out.writer();
            let _ = serde_json::to_writer(
                &mut writer,
                &Delta {
                    message_id: MESSAGE_ID,
                    text: &delta.delta,
                },
            );
            writer.into_inner().put_slice(b"\n\n");
        }
        b"response.completed" => {
            *next_id += 1;
            frame(out, *next_id, "done");
            out.put_slice(b"{}\n\n");
        }
        _ => {}
    }
}

fn sse(body: Body) -> Response<Body> {
    let mut response = Response::new(body);
    let headers = response.headers_mut();
    headers.insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("text/event-stream"),
    );
    headers.insert(
        hyper::header::CACHE_CONTROL,
        hyper::header::HeaderValue::from_static("no-cache"),
    );
    response
}

fn failure(detail: &str) -> Response<Body> {
    let data =
        serde_json::json!({ "message_id": MESSAGE_ID, "code": "upstream_error", "detail": detail });
    let frame = format!("id: 1\nevent: error\ndata: {data}\n\n");
    sse(http_body_util::Full::new(Bytes::from(frame))
        .map_err(|e| match e {})
        .boxed())
}

/// The bare relay, running as a child process.
pub struct BareRelay {
    child: Child,
    pub pid: u32,
    pub addr: SocketAddr,
}

impl BareRelay {
    /// Starts `confab-bench --bare-relay <provider>` (under callgrind, dumping into
    /// `callgrind`, when given) and waits for its address.
    ///
    /// # Errors
    /// When it cannot be started or says no address within 10 minutes.
    pub async fn start(
        provider_base_url: &str,
        callgrind: Option<&std::path::Path>,
    ) -> Result<Self, BenchError> {
        let me = std::env::current_exe()?;
        let mut command = match callgrind {
            Some(dir) => {
                let mut command = Command::new("valgrind");
                command
                    .arg("--tool=callgrind")
                    .arg(format!(
                        "--callgrind-out-file={}",
                        crate::callgrind::out_pattern(dir).display()
                    ))
                    .arg(me);
                command
            }
            None => Command::new(me),
        };
        let mut child = command
            .args(["--bare-relay", provider_base_url])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()?;
        let pid = child
            .id()
            .ok_or_else(|| BenchError::Setup("the bare relay exited at once".to_owned()))?;
        let stdout = child
            .stdout
            .take()
            .ok_or_else(|| BenchError::Setup("the bare relay has no stdout".to_owned()))?;
        let mut lines = tokio::io::BufReader::new(stdout).lines();
        let line = tokio::time::timeout(Duration::from_secs(600), lines.next_line())
            .await
            .map_err(|_| BenchError::Setup("the bare relay said no address".to_owned()))??
            .unwrap_or_default();
        let addr = line
            .strip_prefix("listening ")
            .and_then(|a| a.parse().ok())
            .ok_or_else(|| BenchError::Setup(format!("the bare relay said {line:?}")))?;
        Ok(Self { child, pid, addr })
    }

    /// Stops it (SIGTERM: callgrind writes its last dump), killing it after 10 s.
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
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn provider_deltas_become_numbered_delta_events_and_the_end_done() {
        let mut out = BytesMut::new();
        let mut next_id = 0;
        let mut scanner = Scanner::default();
        scanner.feed(
            b"event: response.created\ndata: {}\n\nevent: response.output_text.delta\ndata: {\"type\":\"response.output_text.delta\",\"delta\":\" tok00\"}\n\nevent: response.completed\ndata: {}\n\n",
            |event| reframe(event, &mut next_id, &mut out),
        );
        assert_eq!(
            &out[..],
            format!("id: 1\nevent: delta\ndata: {{\"message_id\":\"{MESSAGE_ID}\",\"text\":\" tok00\"}}\n\nid: 2\nevent: done\ndata: {{}}\n\n").as_bytes()
        );
    }
}
