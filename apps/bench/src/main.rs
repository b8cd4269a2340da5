#![doc = include_str!("../README.md")]

mod bare_relay;
mod callgrind;
mod carry;
mod client;
mod data;
mod floor;
mod live;
mod live_memory;
mod load;
mod procfs;
mod read;
mod report;
mod seed;
mod server;
mod stats;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use confab_tests::fake_provider::FakeProvider;

use crate::bare_relay::BareRelay;
use crate::data::{DataPart, DataPlan, DataRun};
use crate::live::{Cluster, PairPlan};
use crate::load::{Bench, LevelPlan, Shape};
use crate::report::{BackendReport, HoldSummary, LevelSummary, LiveReport, Report};
use crate::server::{Api, Backend, Database, Launch, ServerProcess, Upstream};

/// What can stop a benchmark run.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    #[error("I/O: {0}")]
    Io(#[from] std::io::Error),
    #[error("HTTP: {0}")]
    Hyper(#[from] hyper::Error),
    #[error("HTTP (setup): {0}")]
    Reqwest(#[from] reqwest::Error),
    #[error("PostgreSQL: {0}")]
    Postgres(#[from] tokio_postgres::Error),
    #[error("{0}")]
    Setup(String),
}

/// A group of benchmarks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum Suite {
    /// Concurrent chat streams through the server against the fake provider directly, and
    /// memory per open stream (`--n`, `--hold`, …).
    Load,
    /// Live replies (issue 15): reconnects, the Redis hop, followed streams over two
    /// replicas, memory per buffered reply (`--live-parts`, …).
    Live,
    /// Large tables (issues 16, 18, 19): the quota check at 100 concurrent sends, usage
    /// reports over 1,000,000 ledger rows, search over 1,000,000 messages, knowledge retrieval
    /// at 10,000 and 100,000 chunks (`--data-parts`, …). Not in the default run.
    Data,
    /// Export and import (issue 18): an import of generated ChatGPT conversations
    /// (`--carry-conversations` × `--carry-messages`), then the export of that account as a
    /// zip, with the server's memory growth during each. Not in the default run.
    Carry,
    /// The read path (issue 20): a page of 50 messages, one message, the lists of projects,
    /// conversations and files, and `GET /api/me`, each driven by `--read-connections`
    /// keep-alive connections for `--read-secs` (req/s, p50/p99); with `--callgrind`, the
    /// instructions per request instead. Not in the default run.
    Read,
}

/// One benchmark of the live suite.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum LivePart {
    /// Time from a reconnect (`GET …/stream` with `Last-Event-ID` in the middle of a live
    /// reply) to its first replayed event, in-process and through Redis.
    Reconnect,
    /// What the Redis hop adds per delta: `--hop-n` streams sent on replica A and followed on
    /// B, against sender and follower on one replica without Redis.
    Hop,
    /// `--fanout-n` streams spread over two replicas, each followed on the other: stalls and
    /// failures.
    Fanout,
    /// Memory per finished reply buffered by the in-process adapter for its retention.
    Memory,
    /// The server's CPU per relayed delta against a bare relay (the fake's stream re-sent as
    /// SSE with hyper, no auth, no database), measured in the same run at each `--relay-n`
    /// (issue 20). Not in the default run: `--live-parts relay`.
    Relay,
}

/// The benchmarks of the confab server. Only ever talks to 127.0.0.1.
///
/// The default run is every suite: the load benchmark (`--suites load`) on SQLite (and on
/// PostgreSQL with DATABASE_URL), then the live-reply benchmarks (`--suites live`), whose
/// two-replica parts need DATABASE_URL=postgres://… and a Redis at `--redis-url` (skipped,
/// with a message, without them).
#[derive(Debug, Parser)]
#[command(name = "confab-bench", about, long_about)]
struct Args {
    /// Which suites to run.
    #[arg(long, value_enum, value_delimiter = ',', default_values_t = [Suite::Load, Suite::Live])]
    suites: Vec<Suite>,
    /// Conversations of the carry suite's generated ChatGPT export.
    #[arg(long, default_value_t = 1000)]
    carry_conversations: usize,
    /// Messages of each of those conversations (1,000 × 100: the 100,000 messages exported).
    #[arg(long, default_value_t = 100)]
    carry_messages: usize,
    /// Which parts of the live suite to run.
    #[arg(long, value_enum, value_delimiter = ',', default_values_t = [LivePart::Reconnect, LivePart::Hop, LivePart::Fanout, LivePart::Memory])]
    live_parts: Vec<LivePart>,
    /// Which parts of the data suite to run.
    #[arg(long, value_enum, value_delimiter = ',', default_values_t = [DataPart::Quota, DataPart::Usage, DataPart::Search, DataPart::Knowledge, DataPart::KnowledgeTtfd])]
    data_parts: Vec<DataPart>,
    /// Concurrent sends of the quota part (each of its rounds at the pace of `--pace-ms`).
    #[arg(long, default_value_t = 100)]
    quota_n: usize,
    /// Rounds through each server (with and without quotas, alternated) in the quota part.
    #[arg(long, default_value_t = 4)]
    quota_rounds: usize,
    /// Streams each slot sends one after the other in a quota round.
    #[arg(long, default_value_t = 2)]
    quota_streams_per_slot: usize,
    /// Ledger entries of each sending user this month in the quota part.
    #[arg(long, default_value_t = 10_000)]
    quota_ledger: usize,
    /// Ledger rows of the usage part.
    #[arg(long, default_value_t = 1_000_000)]
    ledger_rows: usize,
    /// Users, models and days the ledger rows are spread over.
    #[arg(long, default_value_t = 1_000)]
    ledger_users: usize,
    #[arg(long, default_value_t = 20)]
    ledger_models: usize,
    #[arg(long, default_value_t = 90)]
    ledger_days: usize,
    /// Messages of the search part.
    #[arg(long, default_value_t = 1_000_000)]
    search_messages: usize,
    /// Users owning them (each with one project).
    #[arg(long, default_value_t = 300)]
    search_users: usize,
    /// Conversations of each user.
    #[arg(long, default_value_t = 10)]
    search_conversations_per_user: usize,
    /// Knowledge chunks in the index, one fresh database each.
    #[arg(long, value_delimiter = ',', default_values_t = [10_000usize, 100_000])]
    knowledge_chunks: Vec<usize>,
    /// Projects the chunks are spread over (the searched one holds its share).
    #[arg(long, default_value_t = 10)]
    knowledge_projects: usize,
    /// Chunks a retrieval returns.
    #[arg(long, default_value_t = 8)]
    knowledge_limit: u32,
    /// Ready chunks in each sending user's project in the knowledge-ttfd part (which sends
    /// as the quota part: `--quota-n`, `--quota-rounds`, `--quota-streams-per-slot`).
    #[arg(long, default_value_t = 200)]
    knowledge_ttfd_chunks: usize,
    /// Keep the data suite's databases (SQLite files under `--data-dir`, PostgreSQL
    /// `confab_bench_<part>_<pid>`) for `EXPLAIN`; their URLs are printed.
    #[arg(long)]
    data_keep: bool,
    /// Where the data suite's SQLite files go (default: a temporary folder, removed at the end).
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Timed requests per query of the usage, search and knowledge parts.
    #[arg(long, default_value_t = 50)]
    data_requests: usize,
    /// The Redis the two replicas of the live suite share (keys under a prefix of this run's
    /// own, `confab-bench:<pid>:`, which expire after the retention).
    #[arg(
        long,
        env = "CONFAB_BENCH_REDIS_URL",
        default_value = "redis://127.0.0.1:6379"
    )]
    redis_url: String,
    /// Reconnects to measure on each path (in-process, Redis).
    #[arg(long, default_value_t = 400)]
    reconnects: usize,
    /// Live replies reconnected to at once.
    #[arg(long, default_value_t = 10)]
    reconnect_replies: usize,
    /// Concurrent followed streams for the Redis hop.
    #[arg(long, default_value_t = 100)]
    hop_n: usize,
    /// Streams each slot sends one after the other for the Redis hop.
    #[arg(long, default_value_t = 3)]
    hop_streams_per_slot: usize,
    /// Concurrent streams over two replicas, each followed on the other.
    #[arg(long, default_value_t = 1000)]
    fanout_n: usize,
    /// Pause between deltas in the fan-out, ms: at 1,000 streams and two readers each, 100 ms
    /// delivers the 20,000 deltas/s of the load benchmark's 1,000 streams at `--slow-pace-ms`.
    #[arg(long, default_value_t = 100)]
    fanout_pace_ms: u64,
    /// Streams each slot sends one after the other in the fan-out.
    #[arg(long, default_value_t = 2)]
    fanout_streams_per_slot: usize,
    /// Concurrent streams of the relay comparison (`--live-parts relay`); from `--slow-from`
    /// on at `--slow-pace-ms`, else at `--pace-ms`.
    #[arg(long, value_delimiter = ',', default_values_t = [100usize, 1000])]
    relay_n: Vec<usize>,
    /// Streams each slot sends one after the other in the relay comparison.
    #[arg(long, default_value_t = 2)]
    relay_streams_per_slot: usize,
    /// Turns (a user message and a reply each) of the read suite's conversation.
    #[arg(long, default_value_t = 25)]
    read_turns: usize,
    /// Keep-alive connections of the read suite.
    #[arg(long, default_value_t = 50)]
    read_connections: usize,
    /// Seconds each route of the read suite is measured (after `--read-warmup-secs`).
    #[arg(long, default_value_t = 10)]
    read_secs: u64,
    #[arg(long, default_value_t = 2)]
    read_warmup_secs: u64,
    /// Requests per route of the read suite under `--callgrind`.
    #[arg(long, default_value_t = 200)]
    read_callgrind_requests: usize,
    /// Internal: serve as the bare relay of the fake provider at this base URL (the harness
    /// runs itself so for `--live-parts relay`).
    #[arg(long, hide = true)]
    bare_relay: Option<String>,
    /// Finished replies buffered for the memory figure.
    #[arg(long, default_value_t = 10_000)]
    memory_replies: usize,
    /// Deltas per reply for the memory figure (one measurement, in a fresh process, each).
    #[arg(long, value_delimiter = ',', default_values_t = [64usize, 512])]
    memory_deltas: Vec<usize>,
    /// Internal: measure the memory of buffered replies of this many deltas in this process
    /// and print it as JSON (the harness runs itself so for each `--memory-deltas`).
    #[arg(long, hide = true)]
    measure_live_memory: Option<usize>,
    /// Concurrency levels (concurrent streams).
    #[arg(long, value_delimiter = ',', default_values_t = [1usize, 100, 1000])]
    n: Vec<usize>,
    /// Deltas in each reply.
    #[arg(long, default_value_t = 64)]
    deltas: usize,
    /// Pause between deltas at the fake provider, ms.
    #[arg(long, default_value_t = 20)]
    pace_ms: u64,
    /// From this concurrency on, `--slow-pace-ms` is used instead (a 20 ms pace at 1,000
    /// streams is 50,000 deltas/s, which saturates 2 shared cores before the server is measured).
    #[arg(long, default_value_t = 1000)]
    slow_from: usize,
    /// The pace from `--slow-from` on, ms.
    #[arg(long, default_value_t = 50)]
    slow_pace_ms: u64,
    /// Time to first token at the fake provider, ms.
    #[arg(long, default_value_t = 20)]
    ttft_ms: u64,
    /// A/B pairs per level (default: 4, and 3 from `--slow-from` on).
    #[arg(long)]
    pairs: Option<usize>,
    /// Streams each slot sends one after the other in a round (default: 8 at N=1, 3 up to
    /// N=100, 2 above).
    #[arg(long)]
    streams_per_slot: Option<usize>,
    /// Streams to hold open for the memory figure (0: skip).
    #[arg(long, default_value_t = 9000)]
    hold: usize,
    /// How the server talks to the fake provider: the rounds use the first one listed, and the
    /// hold runs once with each (a fresh server process each time).
    #[arg(long, value_enum, value_delimiter = ',', default_values_t = [Upstream::Http1, Upstream::Http2])]
    upstream: Vec<Upstream>,
    /// Databases to run on (default: sqlite, plus postgres when DATABASE_URL is a postgres URL).
    #[arg(long, value_enum, value_delimiter = ',')]
    backends: Vec<Backend>,
    /// The PostgreSQL server to make a fresh database on (`postgres://…`).
    #[arg(long, env = "DATABASE_URL")]
    database_url: Option<String>,
    /// The confab binary (default: target/release/confab, built first).
    #[arg(long)]
    server_bin: Option<PathBuf>,
    /// Do not run `cargo build --release -p confab-server` first.
    #[arg(long)]
    no_build: bool,
    /// Measure only once the 1-minute load is below this.
    #[arg(long, default_value_t = 0.5)]
    max_load: f64,
    /// Wait at most this long for the load to fall (checking each minute).
    #[arg(long, default_value_t = 20)]
    load_wait_minutes: u64,
    /// Where to write report.md and report.json (default: target/bench).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Extra environment of the server process, `KEY=VALUE` (for experiments, e.g.
    /// `MALLOC_ARENA_MAX=1`).
    #[arg(long = "server-env", value_parser = parse_pair)]
    server_env: Vec<(String, String)>,
    /// Keep the held streams open this many seconds after the memory is read (to attach a
    /// profiler, e.g. `vgdb --pid <pid> detailed_snapshot`).
    #[arg(long, default_value_t = 0)]
    hold_secs: u64,
    /// Longest a single stream may take, s.
    #[arg(long, default_value_t = 120)]
    stream_timeout_secs: u64,
    /// Run the live suite's replicas (and the read suite's server: instructions per request)
    /// under `valgrind --tool=callgrind` and report the
    /// instructions they execute per 1,000 delivered deltas in each followed-streams round (a
    /// cost other load on the machine does not change; about 50 times slower, so use a small
    /// round, e.g. `--live-parts fanout --fanout-n 20 --fanout-streams-per-slot 1`). The
    /// dumps stay in `<out>/callgrind` for `callgrind_annotate`.
    #[arg(long)]
    callgrind: bool,
}

fn parse_pair(raw: &str) -> Result<(String, String), String> {
    raw.split_once('=')
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .ok_or_else(|| format!("expected KEY=VALUE, got {raw:?}"))
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap_or_else(|_| PathBuf::from("."))
}

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map_or_else(|| workspace_root().join("target"), PathBuf::from)
}

fn build_server() -> Result<(), BenchError> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    eprintln!("building the server: cargo build --release -p confab-server --bin confab");
    let status = std::process::Command::new(cargo)
        .args([
            "build",
            "--release",
            "-p",
            "confab-server",
            "--bin",
            "confab",
        ])
        .current_dir(workspace_root())
        .status()?;
    if status.success() {
        Ok(())
    } else {
        Err(BenchError::Setup(format!(
            "building the server failed: {status}"
        )))
    }
}

async fn wait_for_quiet(max_load: f64, minutes: u64) -> Option<f64> {
    let mut load = procfs::load1();
    for waited in 0..minutes {
        match load {
            Some(l) if l >= max_load => {
                eprintln!(
                    "1-minute load is {l:.2} (want < {max_load}); waiting a minute ({waited}/{minutes})"
                );
                tokio::time::sleep(Duration::from_secs(60)).await;
                load = procfs::load1();
            }
            _ => break,
        }
    }
    load
}

impl Args {
    fn plan(&self, n: usize) -> LevelPlan {
        let slow = n >= self.slow_from;
        LevelPlan {
            n,
            shape: Shape {
                deltas: self.deltas,
                time_to_first_token: Duration::from_millis(self.ttft_ms),
                pace: Duration::from_millis(if slow {
                    self.slow_pace_ms
                } else {
                    self.pace_ms
                }),
            },
            pairs: self.pairs.unwrap_or(if slow { 3 } else { 4 }),
            streams_per_slot: self.streams_per_slot.unwrap_or(match n {
                0..=1 => 8,
                2..=100 => 3,
                _ => 2,
            }),
        }
    }

    fn data_plan(&self) -> DataPlan {
        let plan = self.plan(self.quota_n);
        DataPlan {
            parts: self.data_parts.clone(),
            quota_n: self.quota_n,
            quota_shape: plan.shape,
            quota_rounds: self.quota_rounds,
            quota_streams_per_slot: self.quota_streams_per_slot,
            quota_ledger: self.quota_ledger,
            ledger_rows: self.ledger_rows,
            ledger_users: self.ledger_users,
            ledger_models: self.ledger_models,
            ledger_days: self.ledger_days,
            search_messages: self.search_messages,
            search_users: self.search_users,
            search_conversations_per_user: self.search_conversations_per_user,
            knowledge_chunks: self.knowledge_chunks.clone(),
            knowledge_projects: self.knowledge_projects,
            knowledge_limit: self.knowledge_limit,
            knowledge_ttfd_chunks: self.knowledge_ttfd_chunks,
            requests: self.data_requests,
            stream_timeout: Duration::from_secs(self.stream_timeout_secs),
            keep: self.data_keep,
        }
    }

    fn backends(&self) -> Vec<Backend> {
        if !self.backends.is_empty() {
            return self.backends.clone();
        }
        let mut backends = vec![Backend::Sqlite];
        if self.postgres_url().is_some() {
            backends.push(Backend::Postgres);
        }
        backends
    }

    fn postgres_url(&self) -> Option<&str> {
        self.database_url
            .as_deref()
            .filter(|u| u.starts_with("postgres://") || u.starts_with("postgresql://"))
    }
}

struct Run<'a> {
    args: &'a Args,
    /// Where the servers' callgrind dumps go (`--callgrind`).
    callgrind: Option<&'a Path>,
    binary: &'a Path,
    fake: &'a FakeProvider,
    provider_base_url: &'a str,
    http: &'a reqwest::Client,
    dir: &'a Path,
}

impl Run<'_> {
    /// The read suite on `backend`: a server of its own (under callgrind with `--callgrind`).
    async fn read(&self, backend: Backend) -> Result<read::ReadBackend, BenchError> {
        let database = match backend {
            Backend::Sqlite => Database::sqlite(self.dir, "read.db"),
            Backend::Postgres => {
                let url = self.args.postgres_url().ok_or_else(|| {
                    BenchError::Setup("PostgreSQL needs DATABASE_URL=postgres://…".to_owned())
                })?;
                Database::postgres(url).await?
            }
        };
        let launch = Launch {
            binary: self.binary,
            database_url: &database.url,
            provider_base_url: self.provider_base_url,
            upstream: Upstream::Http1,
            dir: self.dir,
            extra_env: &self.args.server_env,
            callgrind: self.callgrind,
        };
        if self.callgrind.is_some() {
            launch.migrate().await?;
        }
        let server = ServerProcess::start(&launch, self.http).await?;
        eprintln!("read: {} server pid {}", backend.label(), server.pid);
        let api = Api {
            http: self.http,
            base: format!("http://{}", server.addr),
        };
        let plan = read::ReadPlan {
            turns: self.args.read_turns,
            connections: self.args.read_connections,
            duration: Duration::from_secs(self.args.read_secs),
            warmup: Duration::from_secs(self.args.read_warmup_secs),
            callgrind_requests: self.args.read_callgrind_requests,
        };
        let outcome = read::run(
            backend,
            &api,
            self.fake,
            server.addr,
            server.pid,
            self.callgrind,
            &plan,
        )
        .await;
        if outcome.is_err() {
            eprintln!("server log:\n{}", server.log_tail());
        }
        server.stop().await;
        database.remove().await?;
        outcome
    }

    /// The carry suite on SQLite: a server of its own, one tenant.
    async fn carry(&self) -> Result<carry::CarryReport, BenchError> {
        let database = Database::sqlite(self.dir, "carry.db");
        let mut extra_env = self.args.server_env.clone();
        extra_env.push((
            "CONFAB_IMPORT_MAX_BYTES".to_owned(),
            (4_u64 << 30).to_string(),
        ));
        let launch = Launch {
            binary: self.binary,
            database_url: &database.url,
            provider_base_url: self.provider_base_url,
            upstream: Upstream::Http1,
            dir: self.dir,
            extra_env: &extra_env,
            callgrind: None,
        };
        let server = ServerProcess::start(&launch, self.http).await?;
        let base = format!("http://{}", server.addr);
        let api = Api {
            http: self.http,
            base: base.clone(),
        };
        let outcome = async {
            let tenant = api.tenant("carry").await?;
            carry::run(
                self.http,
                &base,
                server.pid,
                &tenant,
                self.args.carry_conversations,
                self.args.carry_messages,
            )
            .await
        }
        .await;
        server.stop().await;
        database.remove().await?;
        outcome
    }

    async fn backend(
        &self,
        backend: Backend,
        client: &mut Vec<server::ClientAsset>,
    ) -> Result<BackendReport, BenchError> {
        let database = match backend {
            Backend::Sqlite => Database::sqlite(self.dir, "bench.db"),
            Backend::Postgres => {
                let url = self.args.postgres_url().ok_or_else(|| {
                    BenchError::Setup("PostgreSQL needs DATABASE_URL=postgres://…".to_owned())
                })?;
                Database::postgres(url).await?
            }
        };
        let floor = match backend {
            Backend::Sqlite => None,
            Backend::Postgres => {
                eprintln!("PostgreSQL: measuring its own latency (floor)");
                floor::postgres(&database.url).await?
            }
        };
        let outcome = self.on(backend, &database, client).await.map(|mut report| {
            report.postgres_floor = floor;
            report
        });
        database.remove().await?;
        outcome
    }

    async fn on(
        &self,
        backend: Backend,
        database: &Database,
        client: &mut Vec<server::ClientAsset>,
    ) -> Result<BackendReport, BenchError> {
        let base_url = self.fake.base_url();
        let upstreams = if self.args.upstream.is_empty() {
            vec![Upstream::Http1]
        } else {
            self.args.upstream.clone()
        };
        let launch_with = |upstream| Launch {
            binary: self.binary,
            database_url: &database.url,
            provider_base_url: &base_url,
            upstream,
            dir: self.dir,
            extra_env: &self.args.server_env,
            callgrind: None,
        };
        let launch = launch_with(upstreams[0]);
        let load1_at_start = procfs::load1();
        let server = ServerProcess::start(&launch, self.http).await?;
        let start_to_ready_fresh_ms = server.start_to_ready.as_secs_f64() * 1000.0;
        eprintln!(
            "{}: server pid {} ready in {:.0} ms",
            backend.label(),
            server.pid,
            server.start_to_ready.as_secs_f64() * 1000.0
        );
        let api = Api {
            http: self.http,
            base: format!("http://{}", server.addr),
        };
        if client.is_empty() {
            match api.client_size().await {
                Ok(assets) => *client = assets,
                Err(e) => eprintln!("the client's size could not be measured: {e}"),
            }
        }
        let ticks_per_second = procfs::ticks_per_second();
        let stream_timeout = Duration::from_secs(self.args.stream_timeout_secs);
        let bench = Bench {
            fake: self.fake,
            server: &server,
            api: &api,
            ticks_per_second,
            stream_timeout,
        };
        let mut tenants = Vec::new();
        // Warm-up, not reported: first connections, pools, caches.
        let mut warm = self.args.plan(10);
        warm.pairs = 1;
        warm.streams_per_slot = 1;
        bench.level(warm, &mut tenants).await?;

        let mut levels = Vec::new();
        for &n in &self.args.n {
            let plan = self.args.plan(n);
            eprintln!(
                "{}: N={n}, pace {:?}, {} pairs of rounds, {} streams per slot",
                backend.label(),
                plan.shape.pace,
                plan.pairs,
                plan.streams_per_slot
            );
            match bench.level(plan, &mut tenants).await {
                Ok(mut level) => {
                    let summary = LevelSummary::of(&mut level);
                    eprintln!("{summary:?}");
                    levels.push(summary);
                }
                Err(e) => {
                    eprintln!(
                        "N={n} could not be measured: {e}\nserver log:\n{}",
                        server.log_tail()
                    );
                    return Err(e);
                }
            }
        }
        server.stop().await;

        let mut start_to_ready_existing_ms = None;
        let mut holds = Vec::new();
        for &upstream in upstreams.iter().filter(|_| self.args.hold > 0) {
            // A fresh process, so that the memory before is not what earlier rounds left.
            let server = ServerProcess::start(&launch_with(upstream), self.http).await?;
            start_to_ready_existing_ms.get_or_insert(server.start_to_ready.as_secs_f64() * 1000.0);
            let api = Api {
                http: self.http,
                base: format!("http://{}", server.addr),
            };
            let bench = Bench {
                fake: self.fake,
                server: &server,
                api: &api,
                ticks_per_second,
                stream_timeout,
            };
            eprintln!(
                "{}: holding {} streams, {} upstream",
                backend.label(),
                self.args.hold,
                upstream.label()
            );
            let mut tenants = Vec::new();
            let mut held = bench.hold(self.args.hold, &mut tenants).await?;
            let summary = HoldSummary::of(&held, upstream);
            eprintln!("{summary:?}");
            if self.args.hold_secs > 0 {
                eprintln!(
                    "holding for {} s more (server pid {})",
                    self.args.hold_secs, server.pid
                );
                tokio::time::sleep(Duration::from_secs(self.args.hold_secs)).await;
            }
            server.kill().await;
            drop(held.holders.take());
            holds.push(summary);
            // Let the fake's connections see the server gone.
            tokio::time::sleep(Duration::from_secs(2)).await;
        }
        Ok(BackendReport {
            backend,
            load1_at_start,
            load1_at_end: procfs::load1(),
            start_to_ready_fresh_ms,
            start_to_ready_existing_ms,
            levels,
            holds,
            postgres_floor: None,
        })
    }
}

impl Run<'_> {
    /// The live-reply benchmarks: memory in child processes, then one replica with the
    /// in-process live replies, then two replicas with Redis.
    async fn live(&self) -> Result<LiveReport, BenchError> {
        let parts = &self.args.live_parts;
        let mut report = LiveReport {
            load1_at_start: procfs::load1(),
            ..LiveReport::default()
        };
        if parts.contains(&LivePart::Memory) {
            for &deltas in &self.args.memory_deltas {
                eprintln!(
                    "live: memory of {} buffered replies of {deltas} deltas",
                    self.args.memory_replies
                );
                let figure = live_memory::in_child(self.args.memory_replies, deltas).await?;
                eprintln!("{figure:?}");
                report.memory.push(figure);
            }
        }
        let pid = std::process::id();
        if [LivePart::Reconnect, LivePart::Hop, LivePart::Relay]
            .iter()
            .any(|p| parts.contains(p))
        {
            let database = match self.args.postgres_url() {
                Some(url) => {
                    Database::postgres_named(url, &format!("confab_bench_live_{pid}")).await?
                }
                None => Database::sqlite(self.dir, "live.db"),
            };
            report.in_process_database = Some(if self.args.postgres_url().is_some() {
                Backend::Postgres.label()
            } else {
                Backend::Sqlite.label()
            });
            let outcome = self.in_process(&database, &mut report).await;
            database.remove().await?;
            outcome?;
        }
        let replicated = [LivePart::Reconnect, LivePart::Hop, LivePart::Fanout];
        if replicated.iter().any(|p| parts.contains(p)) {
            let reachable = live::redis_reachable(&self.args.redis_url);
            match (self.args.postgres_url(), reachable) {
                (None, _) => {
                    report.redis_skipped = Some(
                        "two replicas need one PostgreSQL database: set DATABASE_URL=postgres://…"
                            .to_owned(),
                    );
                }
                (Some(_), Err(why)) => {
                    report.redis_skipped = Some(format!(
                        "Redis at {} is unreachable ({why}); start it or set --redis-url",
                        self.args.redis_url
                    ));
                }
                (Some(url), Ok(())) => {
                    let database =
                        Database::postgres_named(url, &format!("confab_bench_replicas_{pid}"))
                            .await?;
                    let outcome = self.replicas(&database, &mut report).await;
                    database.remove().await?;
                    outcome?;
                }
            }
            if let Some(why) = &report.redis_skipped {
                eprintln!("\n!!! live: the Redis parts are SKIPPED: {why}\n");
            }
        }
        report.load1_at_end = procfs::load1();
        Ok(report)
    }

    fn launch<'b>(&'b self, database: &'b Database, env: &'b [(String, String)]) -> Launch<'b> {
        Launch {
            binary: self.binary,
            database_url: &database.url,
            provider_base_url: self.provider_base_url,
            upstream: self
                .args
                .upstream
                .first()
                .copied()
                .unwrap_or(Upstream::Http1),
            dir: self.dir,
            extra_env: env,
            callgrind: self.callgrind,
        }
    }

    fn pair_plan(&self, spread: bool, n: usize, streams_per_slot: usize, pace: u64) -> PairPlan {
        PairPlan {
            n,
            streams_per_slot,
            shape: Shape {
                deltas: self.args.deltas,
                // Long enough for the follower to be following before the first delta.
                time_to_first_token: Duration::from_millis(100),
                pace: Duration::from_millis(pace),
            },
            spread,
        }
    }

    /// Reconnects and the hop's baseline on one replica with the in-process live replies.
    async fn in_process(
        &self,
        database: &Database,
        report: &mut LiveReport,
    ) -> Result<(), BenchError> {
        let server =
            ServerProcess::start(&self.launch(database, &self.args.server_env), self.http).await?;
        eprintln!(
            "live: one replica (in-process live replies), pid {}",
            server.pid
        );
        let replicas = [server];
        let outcome = self.measure(&replicas, report, false).await;
        for server in replicas {
            if outcome.is_err() {
                eprintln!("server log:\n{}", server.log_tail());
            }
            server.stop().await;
        }
        outcome
    }

    /// Reconnects, the hop and the fan-out on two replicas sharing `database` and Redis.
    async fn replicas(
        &self,
        database: &Database,
        report: &mut LiveReport,
    ) -> Result<(), BenchError> {
        let mut env = vec![
            ("CONFAB_REDIS_URL".to_owned(), self.args.redis_url.clone()),
            (
                "CONFAB_REDIS_PREFIX".to_owned(),
                format!("confab-bench:{}:", std::process::id()),
            ),
        ];
        env.extend(self.args.server_env.iter().cloned());
        let launch = self.launch(database, &env);
        launch.migrate().await?;
        let a = ServerProcess::start(&launch, self.http).await?;
        let b = ServerProcess::start(&launch, self.http).await?;
        eprintln!(
            "live: two replicas with Redis, pids {} and {}",
            a.pid, b.pid
        );
        let replicas = [a, b];
        let outcome = self.measure(&replicas, report, true).await;
        for server in replicas {
            if outcome.is_err() {
                eprintln!("server log:\n{}", server.log_tail());
            }
            server.stop().await;
        }
        outcome
    }

    /// The server's relay against the bare relay: at each `--relay-n`, the same streams sent
    /// once through each (the server first), read by their senders only.
    async fn relay(
        &self,
        cluster: &Cluster<'_>,
        tenants: &mut Vec<server::Tenant>,
        bare: &BareRelay,
        report: &mut LiveReport,
    ) -> Result<(), BenchError> {
        let server = cluster
            .replicas
            .first()
            .ok_or_else(|| BenchError::Setup("no replica".to_owned()))?;
        let timeout = Duration::from_secs(self.args.stream_timeout_secs);
        for &n in &self.args.relay_n {
            let pace = if n >= self.args.slow_from {
                self.args.slow_pace_ms
            } else {
                self.args.pace_ms
            };
            let shape = Shape {
                deltas: self.args.deltas,
                time_to_first_token: Duration::from_millis(self.args.ttft_ms),
                pace: Duration::from_millis(pace),
            };
            self.fake.set_config(shape.config());
            let per_slot = self.args.relay_streams_per_slot.max(1);
            let requests = cluster.sends(tenants, n, per_slot).await?;
            let streams = requests.len();
            eprintln!("live: relay cost, {n} streams through the server, pace {pace} ms");
            let target = live::RelayTarget {
                addr: server.addr,
                pid: server.pid,
                requests,
                callgrind: self.callgrind,
            };
            let server_cost = live::relay_round(target, n, shape, timeout).await?;
            eprintln!("{server_cost:?}");
            eprintln!("live: relay cost, {n} streams through the bare relay");
            let bare_request = client::Prepared {
                path: "/relay".to_owned(),
                bearer: "bench".to_owned(),
                body: bytes::Bytes::from_static(b"{}"),
            };
            let target = live::RelayTarget {
                addr: bare.addr,
                pid: bare.pid,
                requests: vec![bare_request; streams],
                callgrind: self.callgrind,
            };
            let bare_cost = live::relay_round(target, n, shape, timeout).await?;
            eprintln!("{bare_cost:?}");
            self.fake.clear_requests();
            report.relay.push(live::RelayComparison {
                n,
                pace_ms: shape.pace.as_millis(),
                server: server_cost,
                bare: bare_cost,
            });
        }
        Ok(())
    }

    async fn measure(
        &self,
        replicas: &[ServerProcess],
        report: &mut LiveReport,
        redis: bool,
    ) -> Result<(), BenchError> {
        let first = replicas
            .first()
            .ok_or_else(|| BenchError::Setup("no replica".to_owned()))?;
        let api = Api {
            http: self.http,
            base: format!("http://{}", first.addr),
        };
        let cluster = Cluster {
            replicas,
            fake: self.fake,
            api: &api,
            stream_timeout: Duration::from_secs(self.args.stream_timeout_secs),
            callgrind: self.callgrind,
        };
        let parts = &self.args.live_parts;
        let path = if redis { "Redis" } else { "in-process" };
        let mut tenants = Vec::new();
        // Warm-up, not reported: first connections, pools, caches.
        cluster
            .pairs(&mut tenants, self.pair_plan(true, 10, 1, self.args.pace_ms))
            .await?;
        if parts.contains(&LivePart::Reconnect) {
            eprintln!("live: {} reconnects, {path}", self.args.reconnects);
            let figures = cluster
                .reconnects(
                    &mut tenants,
                    self.args.reconnect_replies,
                    self.args.reconnects,
                )
                .await?;
            eprintln!("{figures:?}");
            if redis {
                report.reconnect_redis = Some(figures);
            } else {
                report.reconnect_in_process = Some(figures);
            }
        }
        if parts.contains(&LivePart::Hop) {
            let plan = self.pair_plan(
                false,
                self.args.hop_n,
                self.args.hop_streams_per_slot,
                self.args.pace_ms,
            );
            eprintln!("live: {} followed streams, {path}", plan.n);
            let figures = cluster.pairs(&mut tenants, plan).await?;
            eprintln!("{figures:?}");
            if redis {
                report.hop_redis = Some(figures);
            } else {
                report.hop_in_process = Some(figures);
            }
        }
        if !redis && parts.contains(&LivePart::Relay) {
            let relay = BareRelay::start(self.provider_base_url, self.callgrind).await?;
            eprintln!("live: the bare relay, pid {}", relay.pid);
            let outcome = self.relay(&cluster, &mut tenants, &relay, report).await;
            relay.stop().await;
            outcome?;
        }
        if redis && parts.contains(&LivePart::Fanout) {
            let plan = self.pair_plan(
                true,
                self.args.fanout_n,
                self.args.fanout_streams_per_slot,
                self.args.fanout_pace_ms,
            );
            eprintln!(
                "live: {} streams over two replicas, each followed on the other, pace {:?}",
                plan.n, plan.shape.pace
            );
            let figures = cluster.pairs(&mut tenants, plan).await?;
            eprintln!("{figures:?}");
            report.fanout = Some(figures);
        }
        Ok(())
    }
}

async fn run(args: Args) -> Result<Report, BenchError> {
    let limit = rlimit::increase_nofile_limit(u64::MAX)?;
    eprintln!("open-file limit (soft, inherited by the server): {limit}");
    // Holding: two sockets per stream in the server. The fan-out: a sender, a follower and
    // the fake's side of the upstream per stream in this process.
    let needed = u64::try_from((args.hold * 2).max(args.fanout_n * 3) + 1000).unwrap_or(u64::MAX);
    if limit < needed {
        return Err(BenchError::Setup(format!(
            "holding {} streams (or following {}) needs about {needed} open files, the limit is {limit}",
            args.hold, args.fanout_n
        )));
    }
    let binary = match &args.server_bin {
        Some(path) => path.clone(),
        None => {
            if !args.no_build {
                build_server()?;
            }
            target_dir().join("release").join("confab")
        }
    };
    let machine = procfs::Machine::read();
    let started_at = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let fake = FakeProvider::start(
        Shape {
            deltas: args.deltas,
            time_to_first_token: Duration::ZERO,
            pace: Duration::ZERO,
        }
        .config(),
    )
    .await?;
    let http = reqwest::Client::builder()
        .no_proxy()
        .pool_max_idle_per_host(64)
        .timeout(Duration::from_secs(60))
        .build()?;
    let dir = tempfile::tempdir()?;
    let provider_base_url = fake.base_url();
    let callgrind_dir = args.callgrind.then(|| out_dir(&args).join("callgrind"));
    if let Some(dir) = &callgrind_dir {
        std::fs::create_dir_all(dir)?;
    }
    let run = Run {
        args: &args,
        callgrind: callgrind_dir.as_deref(),
        binary: &binary,
        fake: &fake,
        provider_base_url: &provider_base_url,
        http: &http,
        dir: dir.path(),
    };
    let load = wait_for_quiet(args.max_load, args.load_wait_minutes).await;
    eprintln!("measuring at a 1-minute load of {load:?}");
    eprintln!("measuring the machine's wake-up latency (floor)");
    let wake_up = tokio::task::spawn_blocking(floor::wake_up)
        .await
        .map_err(|e| BenchError::Setup(format!("the wake-up probe failed: {e}")))??;
    let mut client = Vec::new();
    let mut backends = Vec::new();
    if args.suites.contains(&Suite::Load) {
        for backend in args.backends() {
            backends.push(run.backend(backend, &mut client).await?);
        }
    }
    let live = if args.suites.contains(&Suite::Live) {
        Some(run.live().await?)
    } else {
        None
    };
    let data = if args.suites.contains(&Suite::Data) {
        let plan = args.data_plan();
        let data_run = DataRun {
            plan: &plan,
            binary: &binary,
            fake: &fake,
            provider_base_url: &provider_base_url,
            http: &http,
            dir: args.data_dir.as_deref().unwrap_or(dir.path()),
            postgres_url: args.postgres_url(),
            server_env: &args.server_env,
        };
        Some(data_run.run(&args.backends()).await?)
    } else {
        None
    };
    let read = if args.suites.contains(&Suite::Read) {
        let mut report = read::ReadReport::default();
        for backend in args.backends() {
            report.backends.push(run.read(backend).await?);
        }
        Some(report)
    } else {
        None
    };
    let carry = if args.suites.contains(&Suite::Carry) {
        Some(run.carry().await?)
    } else {
        None
    };
    Ok(Report {
        started_at,
        machine,
        harness_open_files_limit: limit,
        wake_up,
        client,
        backends,
        live,
        data,
        read,
        carry,
    })
}

fn out_dir(args: &Args) -> PathBuf {
    args.out
        .clone()
        .unwrap_or_else(|| target_dir().join("bench"))
}

fn write_report(report: &Report, out: &Path) -> Result<(), BenchError> {
    std::fs::create_dir_all(out)?;
    let json = serde_json::to_string_pretty(report)
        .map_err(|e| BenchError::Setup(format!("the report could not be written: {e}")))?;
    std::fs::write(out.join("report.json"), json)?;
    std::fs::write(out.join("report.md"), report.markdown())?;
    Ok(())
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    if let Some(provider) = &args.bare_relay {
        return match bare_relay::serve(provider).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("confab-bench --bare-relay: {e}");
                ExitCode::FAILURE
            }
        };
    }
    if let Some(deltas) = args.measure_live_memory {
        return match live_memory::measure(args.memory_replies, deltas).await {
            Ok(figure) => match serde_json::to_string(&figure) {
                Ok(json) => {
                    println!("{json}");
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("confab-bench: {e}");
                    ExitCode::FAILURE
                }
            },
            Err(e) => {
                eprintln!("confab-bench: {e}");
                ExitCode::FAILURE
            }
        };
    }
    let out = out_dir(&args);
    match run(args).await {
        Ok(report) => {
            println!("{}", report.markdown());
            match write_report(&report, &out) {
                Ok(()) => {
                    eprintln!("written: {}/report.md and report.json", out.display());
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("confab-bench: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Err(e) => {
            eprintln!("confab-bench: {e}");
            ExitCode::FAILURE
        }
    }
}
