//! Rounds of concurrent streams, through the server (A) and directly against the fake provider
//! (B), alternated A B A B …; and the hold of many open streams for the memory figure.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use confab_tests::fake_provider::{FakeConfig, FakeProvider};
use futures::StreamExt;
use http_body_util::BodyExt;
use serde_json::json;
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;

use crate::BenchError;
use crate::client::{self, Kind, Outcome, Prepared, Scanner, Sender, Wire};
use crate::procfs;
use crate::server::{Api, ServerProcess, Tenant};
use crate::stats::Samples;

/// Whether each stream is printed (`CONFAB_BENCH_VERBOSE=1`).
fn verbose() -> bool {
    std::env::var_os("CONFAB_BENCH_VERBOSE").is_some_and(|v| v == "1")
}

/// Streams per user: one user signs in for every 100 stream slots.
pub const SLOTS_PER_USER: usize = 100;

/// The text of the reply the fake plays: `count` deltas of a few characters each.
#[must_use]
pub fn reply(count: usize) -> Vec<String> {
    (0..count).map(|i| format!(" tok{:02}", i % 100)).collect()
}

/// What the fake plays and how long a stream may take.
#[derive(Clone, Copy, Debug, serde::Serialize)]
pub struct Shape {
    pub deltas: usize,
    pub time_to_first_token: Duration,
    pub pace: Duration,
}

impl Shape {
    /// The fake's configuration for this shape.
    #[must_use]
    pub fn config(&self) -> FakeConfig {
        let deltas = reply(self.deltas);
        let refs: Vec<&str> = deltas.iter().map(String::as_str).collect();
        FakeConfig::replying(&refs)
            .with_time_to_first_token(self.time_to_first_token)
            .with_pace(self.pace)
    }

    /// How long one stream lasts at the fake.
    #[must_use]
    pub fn duration(&self) -> Duration {
        self.time_to_first_token + self.pace * u32::try_from(self.deltas).unwrap_or(u32::MAX)
    }
}

/// Where one path's streams go.
#[derive(Clone, Debug)]
pub struct Target {
    pub addr: SocketAddr,
    pub host: String,
    pub wire: Wire,
}

impl Target {
    #[must_use]
    pub fn new(addr: SocketAddr, wire: Wire) -> Self {
        Self {
            addr,
            host: addr.to_string(),
            wire,
        }
    }
}

/// The body the OpenAI Responses adapter sends for a first message (no prompt, no history).
#[must_use]
pub fn direct_request(content: &str) -> Prepared {
    let body = json!({
        "model": "bench",
        "input": [{"role": "user", "content": content}],
        "stream": true,
        "store": false,
    });
    Prepared {
        path: "/v1/responses".to_owned(),
        bearer: "bench".to_owned(),
        body: Bytes::from(body.to_string()),
    }
}

/// A send to the server in `conversation_id`.
#[must_use]
pub fn server_request(tenant: &Tenant, conversation_id: &str, content: &str) -> Prepared {
    Prepared {
        path: format!("/api/conversations/{conversation_id}/messages"),
        bearer: tenant.token.clone(),
        body: Bytes::from(json!({ "content": content }).to_string()),
    }
}

/// The figures of one path (server or direct) at one concurrency.
#[derive(Debug, Default)]
pub struct PathStats {
    /// From sending the request to the response head (through the server: authentication
    /// and every database write of the send, before the provider is called).
    pub head_us: Samples,
    pub ttfd_us: Samples,
    pub gaps_us: Samples,
    pub streams: usize,
    pub failures: usize,
    pub deltas: usize,
    /// A few failure reasons, for the report.
    pub errors: Vec<String>,
}

impl PathStats {
    fn add(&mut self, outcome: Outcome) {
        if verbose() {
            eprintln!(
                "    stream: head {:?}, first event {:?}, first delta {:?}, {} deltas, max gap {:?} µs, {:?}",
                outcome.head,
                outcome.first_event,
                outcome.ttfd,
                outcome.deltas,
                outcome.gaps_us.iter().max(),
                outcome.error
            );
        }
        self.streams += 1;
        self.deltas += outcome.deltas;
        if let Some(head) = outcome.head {
            self.head_us
                .push(u32::try_from(head.as_micros()).unwrap_or(u32::MAX));
        }
        if let Some(ttfd) = outcome.ttfd {
            self.ttfd_us
                .push(u32::try_from(ttfd.as_micros()).unwrap_or(u32::MAX));
        }
        self.gaps_us.extend(&outcome.gaps_us);
        if let Some(error) = outcome.error {
            self.failures += 1;
            if self.errors.len() < 5 {
                self.errors.push(error);
            }
        }
    }
}

/// One concurrency level, measured.
#[derive(Debug)]
pub struct Level {
    pub n: usize,
    pub shape: Shape,
    pub pairs: usize,
    pub streams_per_slot: usize,
    pub server: PathStats,
    pub direct: PathStats,
    /// Server CPU (user + system) during the A rounds.
    pub server_cpu_secs: f64,
    /// The part of it spent in the kernel.
    pub server_system_cpu_secs: f64,
    /// Server CPU during the B rounds (it relays nothing then).
    pub server_idle_cpu_secs: f64,
    /// Wall time of the A rounds.
    pub a_wall_secs: f64,
    /// This process's CPU (load generator and fake provider) during the A rounds.
    pub harness_cpu_secs: f64,
    /// Per pair: added p50 and p99 time to first delta, µs.
    pub per_pair_added_ttfd: Vec<(i64, i64)>,
}

impl Level {
    /// Server CPU seconds per 1,000 relayed deltas.
    #[must_use]
    #[allow(clippy::cast_precision_loss)]
    pub fn cpu_per_1000_deltas(&self) -> Option<f64> {
        (self.server.deltas > 0).then(|| self.server_cpu_secs * 1000.0 / self.server.deltas as f64)
    }
}

/// Opens a connection in every empty (or closed) slot, 64 at a time.
pub async fn connect_all(addr: SocketAddr, slots: &mut [Option<Sender>]) -> Result<(), BenchError> {
    let missing: Vec<usize> = slots
        .iter()
        .enumerate()
        .filter(|(_, s)| s.as_ref().is_none_or(Sender::is_closed))
        .map(|(i, _)| i)
        .collect();
    let opened: Vec<(usize, Result<Sender, BenchError>)> = futures::stream::iter(missing)
        .map(|i| async move { (i, client::connect(addr).await) })
        .buffer_unordered(64)
        .collect()
        .await;
    for (i, sender) in opened {
        if let Some(slot) = slots.get_mut(i) {
            *slot = Some(sender?);
        }
    }
    Ok(())
}

/// Runs one round: slot i starts after `stagger · i / n` and then sends its streams one
/// after the other on its own connection. Returns every stream's outcome.
pub async fn round(
    target: &Target,
    slots: &mut Vec<Option<Sender>>,
    plan: Vec<Vec<Prepared>>,
    stagger: Duration,
    expected: usize,
    stream_timeout: Duration,
) -> Vec<Outcome> {
    let n = slots.len().max(1);
    let mut set = JoinSet::new();
    for (i, (sender, streams)) in slots.drain(..).zip(plan).enumerate() {
        let target = target.clone();
        #[allow(clippy::cast_precision_loss)]
        let delay = stagger.mul_f64(i as f64 / n as f64);
        set.spawn(async move {
            tokio::time::sleep(delay).await;
            let mut sender = sender;
            let mut outcomes = Vec::with_capacity(streams.len());
            for prepared in &streams {
                let mut connection = match sender.take() {
                    Some(s) if !s.is_closed() => s,
                    _ => match client::connect(target.addr).await {
                        Ok(s) => s,
                        Err(e) => {
                            outcomes.push(Outcome {
                                error: Some(format!("cannot connect: {e}")),
                                ..Outcome::default()
                            });
                            continue;
                        }
                    },
                };
                let outcome = match client::request(&target.host, prepared) {
                    Ok(request) => tokio::time::timeout(
                        stream_timeout,
                        client::run_stream(&mut connection, request, target.wire, expected),
                    )
                    .await
                    .unwrap_or_else(|_| Outcome {
                        error: Some(format!("no end after {stream_timeout:?}")),
                        ..Outcome::default()
                    }),
                    Err(e) => Outcome {
                        error: Some(e.to_string()),
                        ..Outcome::default()
                    },
                };
                // A connection whose stream went wrong may be in any state: open a new one.
                if outcome.error.is_none() {
                    sender = Some(connection);
                }
                outcomes.push(outcome);
            }
            (i, sender, outcomes)
        });
    }
    let mut back: Vec<(usize, Option<Sender>, Vec<Outcome>)> = Vec::with_capacity(n);
    while let Some(joined) = set.join_next().await {
        if let Ok(done) = joined {
            back.push(done);
        }
    }
    back.sort_by_key(|(i, _, _)| *i);
    let mut outcomes = Vec::new();
    for (_, sender, mut o) in back {
        slots.push(sender);
        outcomes.append(&mut o);
    }
    outcomes
}

/// Everything a measurement needs.
pub struct Bench<'a> {
    pub fake: &'a FakeProvider,
    pub server: &'a ServerProcess,
    pub api: &'a Api<'a>,
    pub ticks_per_second: f64,
    pub stream_timeout: Duration,
}

/// Plan of one concurrency level.
#[derive(Clone, Copy, Debug)]
pub struct LevelPlan {
    pub n: usize,
    pub shape: Shape,
    pub pairs: usize,
    pub streams_per_slot: usize,
}

fn cpu_secs(pid: u32, ticks_per_second: f64) -> f64 {
    let (user, system) = cpu_split(pid, ticks_per_second);
    user + system
}

/// (user, system) CPU seconds of a process so far.
fn cpu_split(pid: u32, ticks_per_second: f64) -> (f64, f64) {
    #[allow(clippy::cast_precision_loss)]
    procfs::cpu_ticks(pid).map_or((0.0, 0.0), |(u, s)| {
        (u as f64 / ticks_per_second, s as f64 / ticks_per_second)
    })
}

impl Bench<'_> {
    /// Users (one per 100 slots) with a project each; more are signed in when needed.
    pub async fn tenants(&self, have: &mut Vec<Tenant>, slots: usize) -> Result<(), BenchError> {
        let needed = slots.div_ceil(SLOTS_PER_USER);
        while have.len() < needed {
            let name = format!("bench-user-{}", have.len());
            have.push(self.api.tenant(&name).await?);
        }
        Ok(())
    }

    /// Measures one level: `pairs` × (A round through the server, B round direct).
    pub async fn level(
        &self,
        plan: LevelPlan,
        tenants: &mut Vec<Tenant>,
    ) -> Result<Level, BenchError> {
        let LevelPlan {
            n,
            shape,
            pairs,
            streams_per_slot,
        } = plan;
        self.fake.set_config(shape.config());
        self.tenants(tenants, n).await?;
        // One fresh conversation per stream (a conversation allows one generation at a time).
        let owners: Vec<usize> = (0..pairs * n * streams_per_slot)
            .map(|k| (k / streams_per_slot) % n / SLOTS_PER_USER)
            .collect();
        let conversations = self.api.conversations(tenants, &owners).await?;
        let server_target = Target::new(self.server.addr, Wire::Confab);
        let direct_target = Target::new(self.fake.addr(), Wire::Responses);
        let mut server_slots: Vec<Option<Sender>> =
            std::iter::repeat_with(|| None).take(n).collect();
        let mut direct_slots: Vec<Option<Sender>> =
            std::iter::repeat_with(|| None).take(n).collect();
        let mut level = Level {
            n,
            shape,
            pairs,
            streams_per_slot,
            server: PathStats::default(),
            direct: PathStats::default(),
            server_cpu_secs: 0.0,
            server_system_cpu_secs: 0.0,
            server_idle_cpu_secs: 0.0,
            a_wall_secs: 0.0,
            harness_cpu_secs: 0.0,
            per_pair_added_ttfd: Vec::new(),
        };
        let stagger = shape.duration();
        let me = std::process::id();
        let pid = self.server.pid;
        let tps = self.ticks_per_second;
        let mut conversation = conversations.iter();
        for pair in 0..pairs {
            // A: through the server.
            let mut plan_a = Vec::with_capacity(n);
            for slot in 0..n {
                let tenant = tenants
                    .get(slot / SLOTS_PER_USER)
                    .ok_or_else(|| BenchError::Setup("a tenant is missing".to_owned()))?;
                let mut streams = Vec::with_capacity(streams_per_slot);
                for k in 0..streams_per_slot {
                    let id = conversation
                        .next()
                        .ok_or_else(|| BenchError::Setup("a conversation is missing".to_owned()))?;
                    let content =
                        format!("Benchmark message {pair}/{slot}/{k}: tell me something.");
                    streams.push(server_request(tenant, id, &content));
                }
                plan_a.push(streams);
            }
            connect_all(server_target.addr, &mut server_slots).await?;
            let (cpu0, me0, t0) = (cpu_split(pid, tps), cpu_secs(me, tps), Instant::now());
            let outcomes = round(
                &server_target,
                &mut server_slots,
                plan_a,
                stagger,
                shape.deltas,
                self.stream_timeout,
            )
            .await;
            level.a_wall_secs += t0.elapsed().as_secs_f64();
            let cpu1 = cpu_split(pid, tps);
            level.server_cpu_secs += (cpu1.0 - cpu0.0) + (cpu1.1 - cpu0.1);
            level.server_system_cpu_secs += cpu1.1 - cpu0.1;
            level.harness_cpu_secs += cpu_secs(me, tps) - me0;
            let mut a = PathStats::default();
            for o in outcomes {
                a.add(o);
            }

            // B: directly against the fake.
            let plan_b: Vec<Vec<Prepared>> = (0..n)
                .map(|slot| {
                    (0..streams_per_slot)
                        .map(|k| {
                            direct_request(&format!(
                                "Benchmark message {pair}/{slot}/{k}: tell me something."
                            ))
                        })
                        .collect()
                })
                .collect();
            connect_all(direct_target.addr, &mut direct_slots).await?;
            let cpu0 = cpu_secs(pid, tps);
            let outcomes = round(
                &direct_target,
                &mut direct_slots,
                plan_b,
                stagger,
                shape.deltas,
                self.stream_timeout,
            )
            .await;
            level.server_idle_cpu_secs += cpu_secs(pid, tps) - cpu0;
            let mut b = PathStats::default();
            for o in outcomes {
                b.add(o);
            }
            self.fake.clear_requests();

            let p50 = crate::stats::added(a.ttfd_us.percentile(50.0), b.ttfd_us.percentile(50.0));
            let p99 = crate::stats::added(a.ttfd_us.percentile(99.0), b.ttfd_us.percentile(99.0));
            if let (Some(p50), Some(p99)) = (p50, p99) {
                level.per_pair_added_ttfd.push((p50, p99));
            }
            merge(&mut level.server, a);
            merge(&mut level.direct, b);
            eprintln!(
                "  N={n} pair {}/{pairs}: server {} streams ({} failed), direct {} streams ({} failed)",
                pair + 1,
                level.server.streams,
                level.server.failures,
                level.direct.streams,
                level.direct.failures
            );
        }
        Ok(level)
    }

    /// Opens `count` streams through the server and holds them, reading every delta, while
    /// the server's resident memory is read; `before` is read just before the first opens.
    pub async fn hold(&self, count: usize, tenants: &mut Vec<Tenant>) -> Result<Hold, BenchError> {
        self.tenants(tenants, count).await?;
        // Ten warm-up conversations of the first user, then one per held stream.
        let owners: Vec<usize> = std::iter::repeat_n(0, 10)
            .chain((0..count).map(|i| i / SLOTS_PER_USER))
            .collect();
        let conversations = self.api.conversations(tenants, &owners).await?;
        let (warm, held) = conversations.split_at(10.min(conversations.len()));

        // Warm up the process (allocator, pools, first connections) with quick replies.
        let quick = Shape {
            deltas: 64,
            time_to_first_token: Duration::ZERO,
            pace: Duration::ZERO,
        };
        self.fake.set_config(quick.config());
        let target = Target::new(self.server.addr, Wire::Confab);
        let tenant0 = tenants
            .first()
            .ok_or_else(|| BenchError::Setup("no tenant".to_owned()))?;
        let plan: Vec<Vec<Prepared>> = warm
            .iter()
            .map(|id| vec![server_request(tenant0, id, "warm up")])
            .collect();
        let mut slots: Vec<Option<Sender>> =
            std::iter::repeat_with(|| None).take(plan.len()).collect();
        connect_all(target.addr, &mut slots).await?;
        let warm_failures = round(
            &target,
            &mut slots,
            plan,
            Duration::ZERO,
            64,
            self.stream_timeout,
        )
        .await
        .iter()
        .filter(|o| o.error.is_some())
        .count();
        drop(slots);

        // Long replies: a delta a second, far longer than the hold.
        self.fake.set_config(
            Shape {
                deltas: 600,
                time_to_first_token: Duration::ZERO,
                pace: Duration::from_secs(1),
            }
            .config(),
        );
        tokio::time::sleep(Duration::from_secs(2)).await;
        let pid = self.server.pid;
        let rss_before = procfs::rss_kib(pid).unwrap_or(0);
        let files_before = procfs::open_files(pid).unwrap_or(0);

        let (stop_tx, stop_rx) = watch::channel(false);
        let opened = Arc::new(AtomicUsize::new(0));
        let failed = Arc::new(AtomicUsize::new(0));
        let errors = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
        let gate = Arc::new(Semaphore::new(256));
        let started = Instant::now();
        let mut holders = JoinSet::new();
        for (i, id) in held.iter().enumerate() {
            let tenant = tenants
                .get(i / SLOTS_PER_USER)
                .ok_or_else(|| BenchError::Setup("a tenant is missing".to_owned()))?;
            let prepared = server_request(tenant, id, "Hold this stream open.");
            let target = target.clone();
            let (opened, failed, errors, gate, stop) = (
                Arc::clone(&opened),
                Arc::clone(&failed),
                Arc::clone(&errors),
                Arc::clone(&gate),
                stop_rx.clone(),
            );
            holders.spawn(async move {
                let permit = gate.acquire_owned().await;
                match open_one(&target, &prepared).await {
                    Ok((body, scanner)) => {
                        opened.fetch_add(1, Ordering::SeqCst);
                        drop(permit);
                        keep_reading(body, scanner, stop).await;
                    }
                    Err(e) => {
                        failed.fetch_add(1, Ordering::SeqCst);
                        if let Ok(mut errors) = errors.lock()
                            && errors.len() < 5
                        {
                            errors.push(e);
                        }
                    }
                }
            });
        }
        let deadline = Instant::now() + Duration::from_secs(300);
        while opened.load(Ordering::SeqCst) + failed.load(Ordering::SeqCst) < held.len()
            && Instant::now() < deadline
        {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let open_secs = started.elapsed().as_secs_f64();
        tokio::time::sleep(Duration::from_secs(3)).await;
        let mut rss_holding = 0;
        for _ in 0..3 {
            rss_holding = rss_holding.max(procfs::rss_kib(pid).unwrap_or(0));
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        let files_holding = procfs::open_files(pid).unwrap_or(0);
        let still_open = opened.load(Ordering::SeqCst);
        let errors = errors.lock().map(|e| e.clone()).unwrap_or_default();
        Ok(Hold {
            requested: held.len(),
            opened: still_open,
            failed: failed.load(Ordering::SeqCst) + warm_failures,
            open_secs,
            rss_before_kib: rss_before,
            rss_holding_kib: rss_holding,
            files_before,
            files_holding,
            files_limit: procfs::open_files_limit(pid).unwrap_or(0),
            errors,
            holders: Some(holders),
            _stop: stop_tx,
        })
    }
}

fn merge(into: &mut PathStats, from: PathStats) {
    let PathStats {
        mut head_us,
        mut ttfd_us,
        mut gaps_us,
        streams,
        failures,
        deltas,
        errors,
    } = from;
    into.streams += streams;
    into.failures += failures;
    into.deltas += deltas;
    for e in errors {
        if into.errors.len() < 5 {
            into.errors.push(e);
        }
    }
    // Merging through percentiles would lose samples: move them over whole.
    let (h, t, g) = (head_us.take(), ttfd_us.take(), gaps_us.take());
    into.head_us.extend(&h);
    into.ttfd_us.extend(&t);
    into.gaps_us.extend(&g);
}

type Body = hyper::body::Incoming;

/// Connects, sends, and reads until the first delta.
async fn open_one(target: &Target, prepared: &Prepared) -> Result<(Body, Scanner), String> {
    let mut sender = client::connect(target.addr)
        .await
        .map_err(|e| format!("cannot connect: {e}"))?;
    let request = client::request(&target.host, prepared).map_err(|e| e.to_string())?;
    let response = tokio::time::timeout(Duration::from_secs(60), sender.send_request(request))
        .await
        .map_err(|_| "no answer in 60 s".to_owned())?
        .map_err(|e| format!("the request failed: {e}"))?;
    if !response.status().is_success() {
        return Err(format!("status {}", response.status()));
    }
    let mut body = response.into_body();
    let mut scanner = Scanner::default();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let frame = tokio::time::timeout_at(deadline, body.frame())
            .await
            .map_err(|_| "no delta in 60 s".to_owned())?;
        match frame {
            None => return Err("the stream ended before its first delta".to_owned()),
            Some(Err(e)) => return Err(format!("the body broke off: {e}")),
            Some(Ok(frame)) => {
                if let Ok(data) = frame.into_data() {
                    let mut delta = false;
                    scanner.feed(&data, |event| {
                        if client::event_name(event).map(|n| Wire::Confab.classify(n))
                            == Some(Kind::Delta)
                        {
                            delta = true;
                        }
                    });
                    if delta {
                        // The connection task must outlive the sender for the body to flow.
                        drop(sender);
                        return Ok((body, scanner));
                    }
                }
            }
        }
    }
}

async fn keep_reading(mut body: Body, mut scanner: Scanner, mut stop: watch::Receiver<bool>) {
    loop {
        tokio::select! {
            changed = stop.changed() => {
                if changed.is_err() || *stop.borrow() {
                    return;
                }
            }
            frame = body.frame() => match frame {
                Some(Ok(frame)) => {
                    if let Ok(data) = frame.into_data() {
                        scanner.feed(&data, |_| {});
                    }
                }
                _ => return,
            }
        }
    }
}

/// The memory figure: many streams held open.
#[derive(Debug)]
pub struct Hold {
    pub requested: usize,
    pub opened: usize,
    pub failed: usize,
    pub open_secs: f64,
    pub rss_before_kib: u64,
    pub rss_holding_kib: u64,
    pub files_before: usize,
    pub files_holding: usize,
    pub files_limit: u64,
    pub errors: Vec<String>,
    /// The tasks holding the streams; dropped (aborted) to close them.
    pub holders: Option<JoinSet<()>>,
    /// The holders go on reading until this is dropped (with the `Hold`), so that a profiler
    /// attached during `--hold-secs` sees the streams still open.
    _stop: watch::Sender<bool>,
}

impl Hold {
    /// Resident memory per open stream, KiB.
    #[must_use]
    #[allow(clippy::cast_precision_loss)]
    pub fn kib_per_stream(&self) -> Option<f64> {
        (self.opened > 0).then(|| {
            (self.rss_holding_kib.saturating_sub(self.rss_before_kib)) as f64 / self.opened as f64
        })
    }
}
