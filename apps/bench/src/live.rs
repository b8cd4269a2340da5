//! The live-reply benchmarks of issue 15: a reconnect's time to its first replayed event,
//! what the Redis hop adds per delta, many streams each followed from the other replica —
//! with the in-process live replies (one replica) and with Redis (two replicas on one
//! PostgreSQL database).

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use confab_tests::fake_provider::FakeProvider;
use tokio::sync::oneshot;
use tokio::task::JoinSet;

use crate::BenchError;
use crate::client::{self, Numbered, Progress, Sender};
use crate::load::{SLOTS_PER_USER, Shape, server_request};
use crate::procfs;
use crate::server::{Api, ServerProcess, Tenant};
use crate::stats::{Samples, signed_percentile};

/// The number of a reply's `assistant_message` event (after `user_message`, 1): once the
/// sender has read it, the reply exists and can be followed.
const ASSISTANT_MESSAGE_ID: u64 = 2;
/// A reconnect asks for the events after this many before the newest the sender has read,
/// so that it lands in the middle of the live reply and has events to replay.
const RECONNECT_BEHIND: u64 = 5;
/// The pause between two reconnects to the same reply.
const RECONNECT_SPACING: Duration = Duration::from_millis(40);

/// Whether a Redis server answers `PING` at `url` (`redis://host:port…`), within a second.
/// `Err` says why not, for the message that skips the Redis parts.
pub fn redis_reachable(url: &str) -> Result<(), String> {
    let parsed = url::Url::parse(url).map_err(|e| format!("{url} is not a URL: {e}"))?;
    let host = parsed.host_str().unwrap_or("127.0.0.1");
    let port = parsed.port().unwrap_or(6379);
    let addr = std::net::ToSocketAddrs::to_socket_addrs(&(host, port))
        .map_err(|e| format!("{host}:{port}: {e}"))?
        .next()
        .ok_or_else(|| format!("{host}:{port} has no address"))?;
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(1))
        .map_err(|e| format!("cannot connect to {addr}: {e}"))?;
    stream
        .set_read_timeout(Some(Duration::from_secs(1)))
        .map_err(|e| e.to_string())?;
    stream
        .write_all(b"*1\r\n$4\r\nPING\r\n")
        .map_err(|e| format!("{addr}: {e}"))?;
    let mut answer = [0_u8; 64];
    let read = stream
        .read(&mut answer)
        .map_err(|e| format!("{addr} did not answer PING: {e}"))?;
    // `+PONG`, or an error such as `-NOAUTH` that the server's own client will handle.
    match answer.get(..read).and_then(|a| a.first()) {
        Some(b'+' | b'-') => Ok(()),
        _ => Err(format!("{addr} does not speak Redis")),
    }
}

/// The replicas under test: one (in-process live replies) or two (Redis between them).
pub struct Cluster<'a> {
    pub replicas: &'a [ServerProcess],
    pub fake: &'a FakeProvider,
    /// The API of the first replica, for setting up users and conversations.
    pub api: &'a Api<'a>,
    pub stream_timeout: Duration,
    /// The replicas run under callgrind, dumping here: count their instructions per round.
    pub callgrind: Option<&'a std::path::Path>,
}

/// A reply's stream shape and how many run at once.
#[derive(Clone, Copy, Debug)]
pub struct PairPlan {
    pub n: usize,
    pub streams_per_slot: usize,
    pub shape: Shape,
    /// Slot i sends on replica i mod 2 and follows on the other (else: send on the first,
    /// follow on the last).
    pub spread: bool,
}

/// Reconnect figures: from opening a connection to the read that completed the first
/// replayed event.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct ReconnectFigures {
    pub samples: usize,
    pub p50_us: Option<u32>,
    pub p99_us: Option<u32>,
    pub max_us: Option<u32>,
    /// Reconnects that got no event, or not the one after `Last-Event-ID`.
    pub failures: usize,
    pub errors: Vec<String>,
}

/// Figures of streams each read by its sender and by one follower.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct PairFigures {
    pub n: usize,
    pub pace_ms: u128,
    pub deltas_per_stream: usize,
    pub streams: usize,
    /// Per delta: its arrival at the follower minus its arrival at the sender, µs.
    pub lag_samples: usize,
    pub lag_p50_us: Option<i64>,
    pub lag_p99_us: Option<i64>,
    pub lag_max_us: Option<i64>,
    pub sender_gap_p99_us: Option<u32>,
    pub follower_gap_p99_us: Option<u32>,
    /// Gaps between deltas over twice the pace (as in the load benchmark).
    pub sender_stalls: usize,
    pub follower_stalls: usize,
    pub sender_failures: usize,
    pub follower_failures: usize,
    pub errors: Vec<String>,
    /// CPU (user + system) of every replica together during the round(s).
    pub servers_cpu_secs: f64,
    /// This process's CPU meanwhile (load generator and fake provider).
    pub harness_cpu_secs: f64,
    /// Deltas read by senders and followers together (64 per stream and reader).
    pub delivered_deltas: usize,
    /// Instructions every replica executed during the round(s) (`--callgrind`).
    pub servers_instructions: Option<u64>,
    pub wall_secs: f64,
}

/// One stream as its sender and its follower read it.
#[derive(Debug, Default)]
struct PairOutcome {
    /// Deltas read by the sender and the follower together.
    delivered: usize,
    sender_gaps: Vec<u32>,
    follower_gaps: Vec<u32>,
    lags: Vec<i64>,
    sender_error: Option<String>,
    follower_error: Option<String>,
}

fn micros(d: Duration) -> u32 {
    u32::try_from(d.as_micros()).unwrap_or(u32::MAX)
}

fn gaps(read: &Numbered) -> Vec<u32> {
    read.deltas()
        .zip(read.deltas().skip(1))
        .map(|(a, b)| micros(b.at - a.at))
        .collect()
}

/// Per delta seen by both: follower's arrival − sender's arrival, µs; only deltas the
/// sender read after the follower's response head, so that a follower's catch-up (events
/// published before it was following) is not counted as lag.
fn lags(sender: &Numbered, follower: &Numbered) -> Vec<i64> {
    let Some(head) = follower.head else {
        return Vec::new();
    };
    let followed: std::collections::HashMap<u64, Instant> =
        follower.deltas().map(|e| (e.id, e.at)).collect();
    sender
        .deltas()
        .filter(|e| e.at >= head)
        .filter_map(|e| {
            let at = followed.get(&e.id)?;
            let lag = if *at >= e.at {
                i64::try_from((*at - e.at).as_micros()).unwrap_or(i64::MAX)
            } else {
                -i64::try_from((e.at - *at).as_micros()).unwrap_or(i64::MAX)
            };
            Some(lag)
        })
        .collect()
}

/// Reuses a slot's connection if it is still open, else opens one.
async fn connection(slot: &mut Option<Sender>, addr: SocketAddr) -> Result<Sender, String> {
    match slot.take() {
        Some(s) if !s.is_closed() => Ok(s),
        _ => client::connect(addr)
            .await
            .map_err(|e| format!("cannot connect: {e}")),
    }
}

/// CPU seconds (user + system) used so far by these processes together.
fn cpu_of(pids: impl Iterator<Item = u32>) -> f64 {
    let tps = procfs::ticks_per_second();
    pids.filter_map(procfs::cpu_ticks)
        .map(|(u, s)| {
            #[allow(clippy::cast_precision_loss)]
            let secs = (u + s) as f64 / tps;
            secs
        })
        .sum()
}

impl Cluster<'_> {
    fn first(&self) -> Result<&ServerProcess, BenchError> {
        self.replicas
            .first()
            .ok_or_else(|| BenchError::Setup("no replica".to_owned()))
    }

    fn last(&self) -> Result<&ServerProcess, BenchError> {
        self.replicas
            .last()
            .ok_or_else(|| BenchError::Setup("no replica".to_owned()))
    }

    /// Users (one per 100 slots, signed in on the first replica; the token holds on every
    /// replica) and one conversation for each of `count` streams.
    async fn conversations(
        &self,
        tenants: &mut Vec<Tenant>,
        slots: usize,
        per_slot: usize,
    ) -> Result<Vec<String>, BenchError> {
        while tenants.len() < slots.div_ceil(SLOTS_PER_USER) {
            let name = format!("live-user-{}", tenants.len());
            tenants.push(self.api.tenant(&name).await?);
        }
        let owners: Vec<usize> = (0..slots * per_slot)
            .map(|k| k / per_slot / SLOTS_PER_USER)
            .collect();
        self.api.conversations(tenants, &owners).await
    }

    /// The sends of `slots` × `per_slot` streams to the first replica, each in a conversation
    /// of its own.
    pub async fn sends(
        &self,
        tenants: &mut Vec<Tenant>,
        slots: usize,
        per_slot: usize,
    ) -> Result<Vec<client::Prepared>, BenchError> {
        let conversations = self.conversations(tenants, slots, per_slot).await?;
        conversations
            .iter()
            .enumerate()
            .map(|(k, conversation)| {
                let tenant = tenants
                    .get(k / per_slot / SLOTS_PER_USER)
                    .ok_or_else(|| BenchError::Setup("a tenant is missing".to_owned()))?;
                Ok(server_request(
                    tenant,
                    conversation,
                    "Benchmark: a reply to relay.",
                ))
            })
            .collect()
    }

    /// Reconnects to live replies sent on the first replica, on the last one: `replies`
    /// replies at once, each reconnected every 40 ms while it is generated, until `target`
    /// reconnects are measured.
    pub async fn reconnects(
        &self,
        tenants: &mut Vec<Tenant>,
        replies: usize,
        target: usize,
    ) -> Result<ReconnectFigures, BenchError> {
        // 200 deltas at 20 ms: 4 s of live reply per round.
        let shape = Shape {
            deltas: 200,
            time_to_first_token: Duration::from_millis(20),
            pace: Duration::from_millis(20),
        };
        self.fake.set_config(shape.config());
        let replies = replies.max(1);
        let per_reply = target.div_ceil(replies).max(1);
        let send = self.first()?.addr;
        let follow = self.last()?.addr;
        let mut samples = Samples::default();
        let mut figures = ReconnectFigures::default();
        // A round gives about 4 s / 40 ms ≈ 80 reconnects per reply; a few rounds at most.
        for _ in 0..(1 + per_reply / 40).min(20) {
            if samples.count() >= target {
                break;
            }
            let conversations = self.conversations(tenants, replies, 1).await?;
            let mut set = JoinSet::new();
            for (i, conversation) in conversations.into_iter().enumerate() {
                let tenant = tenants
                    .get(i / SLOTS_PER_USER)
                    .cloned()
                    .ok_or_else(|| BenchError::Setup("a tenant is missing".to_owned()))?;
                let timeout = self.stream_timeout;
                set.spawn(reconnect_to_one(
                    send,
                    follow,
                    tenant,
                    conversation,
                    shape.deltas,
                    per_reply,
                    timeout,
                ));
            }
            while let Some(joined) = set.join_next().await {
                let Ok((times, failures)) = joined else {
                    continue;
                };
                for t in times {
                    samples.push(t);
                }
                figures.failures += failures.len();
                for e in failures {
                    if figures.errors.len() < 5 {
                        figures.errors.push(e);
                    }
                }
            }
            self.fake.clear_requests();
        }
        figures.samples = samples.count();
        figures.p50_us = samples.percentile(50.0);
        figures.p99_us = samples.percentile(99.0);
        figures.max_us = samples.max();
        Ok(figures)
    }

    /// Streams sent on one replica and each followed (from its start) on another, or on the
    /// same one when there is only one: `n` slots, each sending `streams_per_slot` streams
    /// one after the other, slot i starting i/n of a stream's length after slot 0.
    pub async fn pairs(
        &self,
        tenants: &mut Vec<Tenant>,
        plan: PairPlan,
    ) -> Result<PairFigures, BenchError> {
        let PairPlan {
            n,
            streams_per_slot,
            shape,
            spread,
        } = plan;
        self.fake.set_config(shape.config());
        let conversations = self.conversations(tenants, n, streams_per_slot).await?;
        let addrs: Vec<SocketAddr> = self.replicas.iter().map(|r| r.addr).collect();
        let (first, last) = (self.first()?.addr, self.last()?.addr);
        let stagger = shape.duration();
        if self.callgrind.is_some() {
            for r in self.replicas {
                crate::callgrind::zero(r.pid)
                    .await
                    .map_err(BenchError::Setup)?;
            }
        }
        let cpu0 = cpu_of(self.replicas.iter().map(|r| r.pid));
        let me0 = cpu_of(std::iter::once(std::process::id()));
        let started = Instant::now();
        let mut set = JoinSet::new();
        for (slot, mine) in conversations.chunks(streams_per_slot).enumerate() {
            let tenant = tenants
                .get(slot / SLOTS_PER_USER)
                .cloned()
                .ok_or_else(|| BenchError::Setup("a tenant is missing".to_owned()))?;
            let (send, follow) = if spread && addrs.len() > 1 {
                (addrs[slot % addrs.len()], addrs[(slot + 1) % addrs.len()])
            } else {
                (first, last)
            };
            #[allow(clippy::cast_precision_loss)]
            let delay = stagger.mul_f64(slot as f64 / n.max(1) as f64);
            let mine = mine.to_vec();
            let timeout = self.stream_timeout;
            set.spawn(async move {
                tokio::time::sleep(delay).await;
                let (mut sending, mut following) = (None, None);
                let mut outcomes = Vec::with_capacity(mine.len());
                for conversation in &mine {
                    let outcome = tokio::time::timeout(
                        timeout,
                        pair_one(
                            (send, &mut sending),
                            (follow, &mut following),
                            &tenant,
                            conversation,
                            shape.deltas,
                        ),
                    )
                    .await
                    .unwrap_or_else(|_| PairOutcome {
                        sender_error: Some(format!("no end after {timeout:?}")),
                        ..PairOutcome::default()
                    });
                    outcomes.push(outcome);
                }
                outcomes
            });
        }
        let mut figures = PairFigures {
            n,
            pace_ms: shape.pace.as_millis(),
            deltas_per_stream: shape.deltas,
            ..PairFigures::default()
        };
        let stall = micros(shape.pace * 2);
        let (mut sender_gaps, mut follower_gaps, mut all_lags) =
            (Samples::default(), Samples::default(), Vec::new());
        while let Some(joined) = set.join_next().await {
            let Ok(outcomes) = joined else {
                figures.sender_failures += 1;
                continue;
            };
            for o in outcomes {
                figures.streams += 1;
                figures.delivered_deltas += o.delivered;
                figures.sender_stalls += o.sender_gaps.iter().filter(|g| **g > stall).count();
                figures.follower_stalls += o.follower_gaps.iter().filter(|g| **g > stall).count();
                sender_gaps.extend(&o.sender_gaps);
                follower_gaps.extend(&o.follower_gaps);
                all_lags.extend(o.lags);
                for (count, error, who) in [
                    (&mut figures.sender_failures, o.sender_error, "sender"),
                    (&mut figures.follower_failures, o.follower_error, "follower"),
                ] {
                    if let Some(e) = error {
                        *count += 1;
                        if figures.errors.len() < 5 {
                            figures.errors.push(format!("{who}: {e}"));
                        }
                    }
                }
            }
        }
        figures.wall_secs = started.elapsed().as_secs_f64();
        figures.servers_cpu_secs = cpu_of(self.replicas.iter().map(|r| r.pid)) - cpu0;
        figures.harness_cpu_secs = cpu_of(std::iter::once(std::process::id())) - me0;
        if let Some(dir) = self.callgrind {
            let mut total = 0;
            for r in self.replicas {
                total += crate::callgrind::dump(dir, r.pid)
                    .await
                    .map_err(BenchError::Setup)?;
            }
            figures.servers_instructions = Some(total);
        }
        figures.lag_samples = all_lags.len();
        figures.lag_p50_us = signed_percentile(&mut all_lags, 50.0);
        figures.lag_p99_us = signed_percentile(&mut all_lags, 99.0);
        figures.lag_max_us = signed_percentile(&mut all_lags, 100.0);
        figures.sender_gap_p99_us = sender_gaps.percentile(99.0);
        figures.follower_gap_p99_us = follower_gaps.percentile(99.0);
        self.fake.clear_requests();
        Ok(figures)
    }
}

/// The CPU cost of relaying one reply's deltas to its sender, on one path (the server or
/// the bare relay), over one round.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct RelayCost {
    pub streams: usize,
    /// Deltas the readers got.
    pub deltas: usize,
    pub failures: usize,
    pub errors: Vec<String>,
    /// CPU (user + system) of the relaying process during the round.
    pub cpu_secs: f64,
    /// Its instructions meanwhile (`--callgrind`).
    pub instructions: Option<u64>,
    pub wall_secs: f64,
    /// Added time to first delta (from sending the request to the read that completed the
    /// first delta, less the provider's time to first token), p50 and p99, in µs: issue
    /// 20's item 3, against the bare relay's in the same run.
    pub added_ttfd_p50_us: Option<i64>,
    pub added_ttfd_p99_us: Option<i64>,
}

impl RelayCost {
    /// CPU ms per 1,000 deltas.
    #[must_use]
    pub fn cpu_ms_per_1000(&self) -> Option<f64> {
        #[allow(clippy::cast_precision_loss)]
        let deltas = self.deltas as f64;
        (self.deltas > 0).then(|| self.cpu_secs * 1e6 / deltas)
    }

    /// Instructions per 1,000 deltas.
    #[must_use]
    pub fn instructions_per_1000(&self) -> Option<f64> {
        #[allow(clippy::cast_precision_loss)]
        let deltas = self.deltas as f64;
        #[allow(clippy::cast_precision_loss)]
        self.instructions
            .filter(|_| self.deltas > 0)
            .map(|i| i as f64 * 1000.0 / deltas)
    }
}

/// The server's relay against the bare relay at one concurrency, in the same run.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct RelayComparison {
    pub n: usize,
    pub pace_ms: u128,
    pub server: RelayCost,
    pub bare: RelayCost,
}

/// Where a relay round sends: a process and its requests, one per stream.
pub struct RelayTarget<'a> {
    pub addr: SocketAddr,
    pub pid: u32,
    pub requests: Vec<client::Prepared>,
    /// The process runs under callgrind, dumping here.
    pub callgrind: Option<&'a std::path::Path>,
}

/// `n` slots each sending `requests.len() / n` streams one after the other (read by their
/// senders only, nobody following), slot i starting i/n of a stream's length after slot 0:
/// the CPU the target used meanwhile.
pub async fn relay_round(
    target: RelayTarget<'_>,
    n: usize,
    shape: Shape,
    timeout: Duration,
) -> Result<RelayCost, BenchError> {
    let per_slot = target.requests.len().div_ceil(n.max(1)).max(1);
    let stagger = shape.duration();
    if target.callgrind.is_some() {
        crate::callgrind::zero(target.pid)
            .await
            .map_err(BenchError::Setup)?;
    }
    let cpu0 = cpu_of(std::iter::once(target.pid));
    let started = Instant::now();
    let mut set = JoinSet::new();
    let host = target.addr.to_string();
    for (slot, mine) in target.requests.chunks(per_slot).enumerate() {
        #[allow(clippy::cast_precision_loss)]
        let delay = stagger.mul_f64(slot as f64 / n.max(1) as f64);
        let (mine, host, addr) = (mine.to_vec(), host.clone(), target.addr);
        set.spawn(async move {
            tokio::time::sleep(delay).await;
            let mut sending = None;
            let mut reads = Vec::with_capacity(mine.len());
            for prepared in &mine {
                let read = async {
                    let mut connection = connection(&mut sending, addr).await?;
                    let request = client::request(&host, prepared).map_err(|e| e.to_string())?;
                    let sent = Instant::now();
                    let read = tokio::time::timeout(
                        timeout,
                        client::read_numbered(
                            &mut connection,
                            request,
                            shape.deltas,
                            false,
                            Progress::default(),
                        ),
                    )
                    .await
                    .map_err(|_| format!("no end after {timeout:?}"))?;
                    if read.error.is_none() {
                        sending = Some(connection);
                    }
                    Ok::<_, String>((sent, read))
                }
                .await;
                reads.push(read.and_then(|(sent, r)| match r.error {
                    Some(e) => Err(e),
                    None => {
                        let added = r.deltas().next().map(|first| {
                            let ttfd = first.at.saturating_duration_since(sent);
                            let added = i128::try_from(ttfd.as_micros()).unwrap_or(i128::MAX)
                                - i128::try_from(shape.time_to_first_token.as_micros())
                                    .unwrap_or(0);
                            i64::try_from(added).unwrap_or(i64::MAX)
                        });
                        Ok((r.deltas().count(), added))
                    }
                }));
            }
            reads
        });
    }
    let mut cost = RelayCost::default();
    let mut added_ttfd = Vec::new();
    while let Some(joined) = set.join_next().await {
        let Ok(reads) = joined else {
            cost.failures += 1;
            continue;
        };
        for read in reads {
            cost.streams += 1;
            match read {
                Ok((deltas, added)) => {
                    cost.deltas += deltas;
                    added_ttfd.extend(added);
                }
                Err(e) => {
                    cost.failures += 1;
                    if cost.errors.len() < 5 {
                        cost.errors.push(e);
                    }
                }
            }
        }
    }
    cost.wall_secs = started.elapsed().as_secs_f64();
    cost.cpu_secs = cpu_of(std::iter::once(target.pid)) - cpu0;
    cost.added_ttfd_p50_us = signed_percentile(&mut added_ttfd, 50.0);
    cost.added_ttfd_p99_us = signed_percentile(&mut added_ttfd, 99.0);
    if let Some(dir) = target.callgrind {
        cost.instructions = Some(
            crate::callgrind::dump(dir, target.pid)
                .await
                .map_err(BenchError::Setup)?,
        );
    }
    Ok(cost)
}

/// One live reply sent on `send`; while the sender reads it, reconnects on `follow` with
/// `Last-Event-ID` a few events behind the sender, each on a fresh connection, timed from
/// the connect to the read that completes the first replayed event. Returns the times (µs)
/// and the failures.
async fn reconnect_to_one(
    send: SocketAddr,
    follow: SocketAddr,
    tenant: Tenant,
    conversation: String,
    deltas: usize,
    wanted: usize,
    timeout: Duration,
) -> (Vec<u32>, Vec<String>) {
    let newest = Arc::new(AtomicU64::new(0));
    let finished = Arc::new(AtomicBool::new(false));
    let sender = {
        let (newest, finished, tenant, conversation) = (
            Arc::clone(&newest),
            Arc::clone(&finished),
            tenant.clone(),
            conversation.clone(),
        );
        tokio::spawn(async move {
            let error = async {
                let mut connection = client::connect(send).await.map_err(|e| e.to_string())?;
                let prepared = server_request(
                    &tenant,
                    &conversation,
                    "Benchmark: a reply to reconnect to.",
                );
                let request =
                    client::request(&send.to_string(), &prepared).map_err(|e| e.to_string())?;
                let progress = Progress {
                    newest: Some(newest),
                    reached: None,
                };
                let read = tokio::time::timeout(
                    timeout,
                    client::read_numbered(&mut connection, request, deltas, false, progress),
                )
                .await
                .map_err(|_| format!("the sender saw no end after {timeout:?}"))?;
                read.error.map_or(Ok(()), Err)
            }
            .await
            .err();
            finished.store(true, Ordering::SeqCst);
            error
        })
    };
    let (mut times, mut failures) = (Vec::new(), Vec::new());
    let host = follow.to_string();
    while times.len() < wanted && !finished.load(Ordering::SeqCst) {
        let seen = newest.load(Ordering::SeqCst);
        if seen < ASSISTANT_MESSAGE_ID + RECONNECT_BEHIND + 1 {
            tokio::time::sleep(Duration::from_millis(5)).await;
            continue;
        }
        let after = seen - RECONNECT_BEHIND;
        let started = Instant::now();
        let attempt = async {
            let mut connection = client::connect(follow).await.map_err(|e| e.to_string())?;
            let request = client::follow_request(&host, &conversation, &tenant.token, Some(after))
                .map_err(|e| e.to_string())?;
            let read = tokio::time::timeout(
                Duration::from_secs(10),
                client::read_numbered(&mut connection, request, 0, true, Progress::default()),
            )
            .await
            .map_err(|_| "no first event in 10 s".to_owned())?;
            if let Some(e) = read.error {
                return Err(e);
            }
            match read.events.first() {
                Some(first) if first.id == after + 1 => Ok(micros(first.at - started)),
                Some(first) => Err(format!(
                    "after {after} the first event was {} ({:?})",
                    first.id, first.kind
                )),
                None => Err("no event".to_owned()),
            }
        };
        match attempt.await {
            Ok(t) => times.push(t),
            // A reply that ended meanwhile answers 204 or replays its end: not a failure.
            Err(_) if finished.load(Ordering::SeqCst) => break,
            Err(e) => failures.push(e),
        }
        tokio::time::sleep(RECONNECT_SPACING).await;
    }
    match sender.await {
        Ok(None) => {}
        Ok(Some(e)) => failures.push(format!("sender: {e}")),
        Err(e) => failures.push(format!("sender task: {e}")),
    }
    (times, failures)
}

/// One stream sent on `send` and, once its reply exists, followed from its start on `follow`.
async fn pair_one(
    (send, sending): (SocketAddr, &mut Option<Sender>),
    (follow, following): (SocketAddr, &mut Option<Sender>),
    tenant: &Tenant,
    conversation: &str,
    deltas: usize,
) -> PairOutcome {
    let mut outcome = PairOutcome::default();
    let (reached_tx, reached_rx) = oneshot::channel();
    let sender = async {
        let mut connection = connection(sending, send).await?;
        let prepared = server_request(tenant, conversation, "Benchmark: a reply to follow.");
        let request = client::request(&send.to_string(), &prepared).map_err(|e| e.to_string())?;
        let progress = Progress {
            newest: None,
            reached: Some((ASSISTANT_MESSAGE_ID, reached_tx)),
        };
        let read = client::read_numbered(&mut connection, request, deltas, false, progress).await;
        if read.error.is_none() {
            *sending = Some(connection);
        }
        Ok::<_, String>(read)
    };
    let follower = async {
        // The sender failed before its reply existed: nothing to follow.
        reached_rx.await.map_err(|_| None)?;
        let mut connection = connection(following, follow).await.map_err(Some)?;
        let request =
            client::follow_request(&follow.to_string(), conversation, &tenant.token, None)
                .map_err(|e| Some(e.to_string()))?;
        let read =
            client::read_numbered(&mut connection, request, deltas, false, Progress::default())
                .await;
        if read.error.is_none() {
            *following = Some(connection);
        }
        Ok::<_, Option<String>>(read)
    };
    let (sent, followed) = tokio::join!(sender, follower);
    match &sent {
        Ok(read) => {
            outcome.sender_gaps = gaps(read);
            outcome.delivered += read.deltas().count();
            outcome.sender_error.clone_from(&read.error);
        }
        Err(e) => outcome.sender_error = Some(e.clone()),
    }
    match &followed {
        Ok(read) => {
            outcome.follower_gaps = gaps(read);
            outcome.delivered += read.deltas().count();
            outcome.follower_error.clone_from(&read.error);
            if let Ok(sent) = &sent {
                outcome.lags = lags(sent, read);
            }
        }
        Err(Some(e)) => outcome.follower_error = Some(e.clone()),
        Err(None) => {}
    }
    outcome
}

#[cfg(test)]
mod tests {

    use super::*;
    use crate::client::{Kind, Seen};

    fn read(head_ms: u64, deltas: &[(u64, u64)], base: Instant) -> Numbered {
        Numbered {
            head: Some(base + Duration::from_millis(head_ms)),
            events: deltas
                .iter()
                .map(|(id, ms)| Seen {
                    at: base + Duration::from_millis(*ms),
                    id: *id,
                    kind: Kind::Delta,
                })
                .collect(),
            error: None,
        }
    }

    #[test]
    fn the_lag_pairs_deltas_by_number_and_skips_the_followers_catch_up() {
        let base = Instant::now();
        let sender = read(0, &[(3, 10), (4, 30), (5, 50), (6, 70)], base);
        // The follower's head came at 20 ms: delta 3 (read by the sender at 10 ms) was
        // published before it followed. Delta 6 never reached it.
        let follower = read(20, &[(3, 21), (4, 31), (5, 49)], base);
        assert_eq!(lags(&sender, &follower), [1_000, -1_000]);
    }

    #[test]
    fn gaps_are_between_successive_deltas() {
        let base = Instant::now();
        let sender = read(0, &[(3, 10), (4, 30), (5, 75)], base);
        assert_eq!(gaps(&sender), [20_000, 45_000]);
    }

    #[test]
    fn an_absent_redis_is_reported_not_fatal() {
        // Port 1 on loopback: nothing listens there.
        assert!(redis_reachable("redis://127.0.0.1:1").is_err());
        assert!(redis_reachable("not a url").is_err());
    }
}
