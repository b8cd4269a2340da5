//! The figures of a run, as JSON and as the Markdown tables of `docs/benchmarks.md`.

use std::fmt::Write as _;

use serde::Serialize;

use crate::floor::{Latency, PostgresFloor};
use crate::live::{PairFigures, ReconnectFigures, RelayComparison};
use crate::live_memory::MemoryFigure;
use crate::load::{Hold, Level};
use crate::procfs::Machine;
use crate::server::Upstream;
use crate::server::{Backend, ClientAsset};
use crate::stats::added;

/// One level's figures, all times in microseconds.
#[derive(Clone, Debug, Serialize)]
pub struct LevelSummary {
    pub n: usize,
    pub pace_ms: u128,
    pub time_to_first_token_ms: u128,
    pub deltas_per_stream: usize,
    pub pairs: usize,
    pub streams_per_slot: usize,
    pub server_streams: usize,
    pub direct_streams: usize,
    /// Time to the response head through the server (the send's work before the provider).
    pub server_head_p50: Option<u32>,
    pub server_head_p99: Option<u32>,
    pub server_ttfd_p50: Option<u32>,
    pub server_ttfd_p99: Option<u32>,
    pub direct_ttfd_p50: Option<u32>,
    pub direct_ttfd_p99: Option<u32>,
    pub added_ttfd_p50: Option<i64>,
    pub added_ttfd_p99: Option<i64>,
    /// The smallest and largest per-pair added p99 (how much the pairs disagree).
    pub added_ttfd_p99_pair_range: Option<(i64, i64)>,
    pub server_gap_p50: Option<u32>,
    pub server_gap_p99: Option<u32>,
    pub server_gap_max: Option<u32>,
    pub direct_gap_p50: Option<u32>,
    pub direct_gap_p99: Option<u32>,
    pub added_gap_p50: Option<i64>,
    pub added_gap_p99: Option<i64>,
    pub server_stalls: usize,
    pub direct_stalls: usize,
    pub server_failures: usize,
    pub direct_failures: usize,
    pub server_errors: Vec<String>,
    pub direct_errors: Vec<String>,
    pub deltas_relayed: usize,
    pub server_cpu_secs: f64,
    pub server_cpu_per_1000_deltas: Option<f64>,
    /// The share of the server's CPU spent in the kernel (system time).
    pub server_system_share: f64,
    pub server_cpu_share: f64,
    pub server_idle_cpu_secs: f64,
    pub harness_cpu_secs: f64,
}

impl LevelSummary {
    /// Computes the figures of a measured level.
    #[must_use]
    pub fn of(level: &mut Level) -> Self {
        let stall_limit = u32::try_from(level.shape.pace.as_micros() * 2).unwrap_or(u32::MAX);
        let s = &mut level.server;
        let d = &mut level.direct;
        let (s50, s99) = (s.ttfd_us.percentile(50.0), s.ttfd_us.percentile(99.0));
        let (h50, h99) = (s.head_us.percentile(50.0), s.head_us.percentile(99.0));
        let (d50, d99) = (d.ttfd_us.percentile(50.0), d.ttfd_us.percentile(99.0));
        let (sg50, sg99, sgmax) = (
            s.gaps_us.percentile(50.0),
            s.gaps_us.percentile(99.0),
            s.gaps_us.max(),
        );
        let (dg50, dg99) = (d.gaps_us.percentile(50.0), d.gaps_us.percentile(99.0));
        let range = level.per_pair_added_ttfd.iter().map(|(_, p99)| *p99).fold(
            None,
            |acc: Option<(i64, i64)>, v| {
                Some(acc.map_or((v, v), |(lo, hi)| (lo.min(v), hi.max(v))))
            },
        );
        Self {
            n: level.n,
            pace_ms: level.shape.pace.as_millis(),
            time_to_first_token_ms: level.shape.time_to_first_token.as_millis(),
            deltas_per_stream: level.shape.deltas,
            pairs: level.pairs,
            streams_per_slot: level.streams_per_slot,
            server_streams: level.server.streams,
            direct_streams: level.direct.streams,
            server_head_p50: h50,
            server_head_p99: h99,
            server_ttfd_p50: s50,
            server_ttfd_p99: s99,
            direct_ttfd_p50: d50,
            direct_ttfd_p99: d99,
            added_ttfd_p50: added(s50, d50),
            added_ttfd_p99: added(s99, d99),
            added_ttfd_p99_pair_range: range,
            server_gap_p50: sg50,
            server_gap_p99: sg99,
            server_gap_max: sgmax,
            direct_gap_p50: dg50,
            direct_gap_p99: dg99,
            added_gap_p50: added(sg50, dg50),
            added_gap_p99: added(sg99, dg99),
            server_stalls: level.server.gaps_us.count_above(stall_limit),
            direct_stalls: level.direct.gaps_us.count_above(stall_limit),
            server_failures: level.server.failures,
            direct_failures: level.direct.failures,
            server_errors: level.server.errors.clone(),
            direct_errors: level.direct.errors.clone(),
            deltas_relayed: level.server.deltas,
            server_cpu_secs: level.server_cpu_secs,
            server_cpu_per_1000_deltas: level.cpu_per_1000_deltas(),
            server_system_share: if level.server_cpu_secs > 0.0 {
                level.server_system_cpu_secs / level.server_cpu_secs
            } else {
                0.0
            },
            server_cpu_share: if level.a_wall_secs > 0.0 {
                level.server_cpu_secs / level.a_wall_secs
            } else {
                0.0
            },
            server_idle_cpu_secs: level.server_idle_cpu_secs,
            harness_cpu_secs: level.harness_cpu_secs,
        }
    }
}

/// The memory figure.
#[derive(Clone, Debug, Serialize)]
pub struct HoldSummary {
    /// How the server talked to the provider.
    pub upstream: Upstream,
    pub requested: usize,
    pub opened: usize,
    pub failed: usize,
    pub open_secs: f64,
    pub rss_before_kib: u64,
    pub rss_holding_kib: u64,
    pub kib_per_stream: Option<f64>,
    pub server_files_before: usize,
    pub server_files_holding: usize,
    pub server_files_limit: u64,
    pub errors: Vec<String>,
}

impl HoldSummary {
    #[must_use]
    pub fn of(hold: &Hold, upstream: Upstream) -> Self {
        Self {
            upstream,
            requested: hold.requested,
            opened: hold.opened,
            failed: hold.failed,
            open_secs: hold.open_secs,
            rss_before_kib: hold.rss_before_kib,
            rss_holding_kib: hold.rss_holding_kib,
            kib_per_stream: hold.kib_per_stream(),
            server_files_before: hold.files_before,
            server_files_holding: hold.files_holding,
            server_files_limit: hold.files_limit,
            errors: hold.errors.clone(),
        }
    }
}

/// One backend's figures.
#[derive(Clone, Debug, Serialize)]
pub struct BackendReport {
    pub backend: Backend,
    pub load1_at_start: Option<f64>,
    pub load1_at_end: Option<f64>,
    pub start_to_ready_fresh_ms: f64,
    pub start_to_ready_existing_ms: Option<f64>,
    pub levels: Vec<LevelSummary>,
    /// One per upstream protocol.
    pub holds: Vec<HoldSummary>,
    /// PostgreSQL's own latency, measured before the server starts.
    pub postgres_floor: Option<PostgresFloor>,
}

/// A whole run.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    pub started_at: String,
    pub machine: Machine,
    pub harness_open_files_limit: u64,
    /// How long a sleeping thread takes to run once another wakes it.
    pub wake_up: Option<Latency>,
    pub client: Vec<ClientAsset>,
    pub backends: Vec<BackendReport>,
    /// The live-reply benchmarks (issue 15), when run.
    pub live: Option<LiveReport>,
    /// The data benchmarks (issues 16, 18, 19), when run.
    pub data: Option<crate::data::DataReport>,
    /// The read path (issue 20), when run.
    pub read: Option<crate::read::ReadReport>,
    /// The export and import benchmark (issue 18), when run.
    pub carry: Option<crate::carry::CarryReport>,
}

/// The figures of the live-reply benchmarks.
#[derive(Clone, Debug, Default, Serialize)]
pub struct LiveReport {
    /// The database of the single in-process replica (PostgreSQL when given, else SQLite).
    pub in_process_database: Option<&'static str>,
    /// Why the Redis parts did not run, if they did not.
    pub redis_skipped: Option<String>,
    pub load1_at_start: Option<f64>,
    pub load1_at_end: Option<f64>,
    pub reconnect_in_process: Option<ReconnectFigures>,
    pub reconnect_redis: Option<ReconnectFigures>,
    /// Sender and follower on the one replica, no Redis.
    pub hop_in_process: Option<PairFigures>,
    /// Sender on replica A, follower on replica B, Redis between them.
    pub hop_redis: Option<PairFigures>,
    /// Streams spread over both replicas, each followed on the other.
    pub fanout: Option<PairFigures>,
    pub memory: Vec<MemoryFigure>,
    /// The server's relay against the bare relay (`--live-parts relay`).
    pub relay: Vec<RelayComparison>,
}

fn us(v: Option<u32>) -> String {
    v.map_or_else(|| "–".to_owned(), |v| ms(f64::from(v)))
}

fn signed(v: Option<i64>) -> String {
    #[allow(clippy::cast_precision_loss)]
    v.map_or_else(|| "–".to_owned(), |v| ms(v as f64))
}

/// Microseconds, written as ms with 2 decimals or as µs below 1 ms.
pub(crate) fn ms(micros: f64) -> String {
    if micros.abs() >= 1000.0 {
        format!("{:.2} ms", micros / 1000.0)
    } else {
        format!("{micros:.0} µs")
    }
}

fn verdict(met: Option<bool>) -> &'static str {
    match met {
        Some(true) => "met",
        Some(false) => "**missed**",
        None => "not measured",
    }
}

impl Report {
    /// The Markdown tables.
    #[must_use]
    pub fn markdown(&self) -> String {
        let mut out = String::new();
        let m = &self.machine;
        let _ = writeln!(out, "Run started {}.", self.started_at);
        let _ = writeln!(
            out,
            "Machine: {} CPUs ({}), {:.1} GiB memory, Linux {}; open-file limit {}.\n",
            m.cpus, m.model, m.memory_gib, m.kernel, self.harness_open_files_limit
        );
        if let Some(w) = self.wake_up {
            let _ = writeln!(
                out,
                "The machine's floor: a thread asleep for 20 ms runs again {} (p50) / {} (p99) after another thread wakes it; a delta through the server wakes one thread more than the direct path.\n",
                ms(f64::from(w.p50_us)),
                ms(f64::from(w.p99_us)),
            );
        }
        if !self.client.is_empty() {
            let _ = writeln!(out, "| client file | bytes | gzipped (as served) |");
            let _ = writeln!(out, "|---|---:|---:|");
            let (mut total, mut total_gz) = (0, 0);
            for a in &self.client {
                total += a.bytes;
                total_gz += a.gzipped_bytes;
                let _ = writeln!(
                    out,
                    "| `{}` | {} | {} ({}) |",
                    a.name, a.bytes, a.gzipped_bytes, a.encoding
                );
            }
            let _ = writeln!(out, "| **total** | {total} | **{total_gz}** |\n");
        }
        for b in &self.backends {
            self.backend_markdown(&mut out, b);
        }
        if let Some(live) = &self.live {
            live.markdown(&mut out);
        }
        if let Some(data) = &self.data {
            data.markdown(&mut out);
        }
        if let Some(read) = &self.read {
            read.markdown(&mut out);
        }
        if let Some(carry) = &self.carry {
            carry.markdown(&mut out);
        }
        out
    }

    fn backend_markdown(&self, out: &mut String, b: &BackendReport) {
        let _ = writeln!(out, "### {}\n", b.backend.label());
        let _ = writeln!(
            out,
            "1-minute load at start {}, at end {}. Start to ready (spawn → `/healthz` 200): {:.0} ms on a fresh database (migrations included){}.\n",
            b.load1_at_start
                .map_or("?".to_owned(), |l| format!("{l:.2}")),
            b.load1_at_end.map_or("?".to_owned(), |l| format!("{l:.2}")),
            b.start_to_ready_fresh_ms,
            b.start_to_ready_existing_ms
                .map(|v| format!(", {v:.0} ms on the existing one"))
                .unwrap_or_default()
        );
        if let Some(f) = b.postgres_floor {
            let _ = writeln!(
                out,
                "PostgreSQL alone, one client, one request every 20 ms: `SELECT 1` {} / {}; a durable write transaction sent in one round trip (`BEGIN`, a two-row insert, an update, `COMMIT`) {} / {} (p50 / p99) — the floor under a send's turn.\n",
                ms(f64::from(f.select_one.p50_us)),
                ms(f64::from(f.select_one.p99_us)),
                ms(f64::from(f.write_transaction.p50_us)),
                ms(f64::from(f.write_transaction.p99_us)),
            );
        }
        let _ = writeln!(
            out,
            "| N | pace | streams (each path) | added TTFD p50 | added TTFD p99 (pairs' range) | response head p50 / p99 via server | TTFD p50 / p99 via server | TTFD p50 / p99 direct | gap p99 via server / direct | added gap p99 | max gap via server | stalls | failures (server / direct) | server CPU per 1,000 deltas (kernel share) | server CPU share of one core |"
        );
        let _ = writeln!(
            out,
            "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
        );
        for l in &b.levels {
            let range = l
                .added_ttfd_p99_pair_range
                .map(|(lo, hi)| format!(" ({} … {})", signed(Some(lo)), signed(Some(hi))))
                .unwrap_or_default();
            let _ = writeln!(
                out,
                "| {} | {} ms | {} | {} | {}{} | {} / {} | {} / {} | {} / {} | {} / {} | {} | {} | {} | {} / {} | {} | {:.0} % |",
                l.n,
                l.pace_ms,
                l.server_streams,
                signed(l.added_ttfd_p50),
                signed(l.added_ttfd_p99),
                range,
                us(l.server_head_p50),
                us(l.server_head_p99),
                us(l.server_ttfd_p50),
                us(l.server_ttfd_p99),
                us(l.direct_ttfd_p50),
                us(l.direct_ttfd_p99),
                us(l.server_gap_p99),
                us(l.direct_gap_p99),
                signed(l.added_gap_p99),
                us(l.server_gap_max),
                l.server_stalls,
                l.server_failures,
                l.direct_failures,
                l.server_cpu_per_1000_deltas
                    .map_or("–".to_owned(), |c| format!(
                        "{:.3} s ({:.0} %)",
                        c,
                        l.server_system_share * 100.0
                    )),
                l.server_cpu_share * 100.0,
            );
        }
        let _ = writeln!(out);
        for l in &b.levels {
            for e in l.server_errors.iter().chain(&l.direct_errors) {
                let _ = writeln!(out, "- N={} failure: {}", l.n, e.replace('\n', " "));
            }
        }
        for h in &b.holds {
            let _ = writeln!(
                out,
                "Holding {} streams, {} upstream ({} opened in {:.1} s, {} failed): server VmRSS {} KiB before, {} KiB while holding → **{} KiB per open stream**; server open files {} → {} (limit {}).\n",
                h.requested,
                h.upstream.label(),
                h.opened,
                h.open_secs,
                h.failed,
                h.rss_before_kib,
                h.rss_holding_kib,
                h.kib_per_stream
                    .map_or("–".to_owned(), |k| format!("{k:.1}")),
                h.server_files_before,
                h.server_files_holding,
                h.server_files_limit,
            );
            for e in &h.errors {
                let _ = writeln!(out, "- hold failure: {}", e.replace('\n', " "));
            }
        }
        let _ = writeln!(out, "Targets:\n");
        let at = |n: usize| b.levels.iter().find(|l| l.n == n);
        let ttfd = at(100).and_then(|l| l.added_ttfd_p99).map(|v| v <= 2_000);
        let _ = writeln!(
            out,
            "- added time to first delta p99 ≤ 2 ms at N=100: {} ({})",
            verdict(ttfd),
            signed(at(100).and_then(|l| l.added_ttfd_p99))
        );
        for l in &b.levels {
            let _ = writeln!(
                out,
                "- added gap p99 ≤ 100 µs at N={}: {} ({})",
                l.n,
                verdict(l.added_gap_p99.map(|v| v <= 100)),
                signed(l.added_gap_p99)
            );
        }
        let clean = at(1000).map(|l| l.server_stalls == 0 && l.server_failures == 0);
        let _ = writeln!(
            out,
            "- zero stalls and failures at N=1000: {} ({} stalls, {} failures)",
            verdict(clean),
            at(1000).map_or(0, |l| l.server_stalls),
            at(1000).map_or(0, |l| l.server_failures)
        );
        if b.holds.is_empty() {
            let _ = writeln!(
                out,
                "- ≤ 16 KiB per open stream at 9,000: {}",
                verdict(None)
            );
        }
        for h in &b.holds {
            let memory = h
                .kib_per_stream
                .map(|k| k <= 16.0 && h.opened == h.requested);
            let _ = writeln!(
                out,
                "- ≤ 16 KiB per open stream at 9,000, {} upstream: {} ({})",
                h.upstream.label(),
                verdict(memory),
                h.kib_per_stream
                    .map_or("–".to_owned(), |k| format!("{k:.1} KiB"))
            );
        }
        let _ = writeln!(out);
    }
}

impl LiveReport {
    /// The tables of the section "Live replies".
    pub fn markdown(&self, out: &mut String) {
        let _ = writeln!(out, "### Live replies\n");
        let _ = writeln!(
            out,
            "1-minute load at start {}, at end {}. In-process replica on {}.{}\n",
            self.load1_at_start
                .map_or("?".to_owned(), |l| format!("{l:.2}")),
            self.load1_at_end
                .map_or("?".to_owned(), |l| format!("{l:.2}")),
            self.in_process_database.unwrap_or("–"),
            self.redis_skipped
                .as_ref()
                .map(|why| format!(" **Redis parts skipped**: {why}"))
                .unwrap_or_default()
        );
        let reconnects = [
            ("in-process (one replica)", &self.reconnect_in_process),
            ("Redis (sent on A, reconnect on B)", &self.reconnect_redis),
        ];
        if reconnects.iter().any(|(_, r)| r.is_some()) {
            let _ = writeln!(
                out,
                "| reconnect with `Last-Event-ID` | reconnects | first replayed event p50 | p99 | max | failures |"
            );
            let _ = writeln!(out, "|---|---:|---:|---:|---:|---:|");
            for (label, r) in reconnects {
                if let Some(r) = r {
                    let _ = writeln!(
                        out,
                        "| {label} | {} | {} | {} | {} | {} |",
                        r.samples,
                        us(r.p50_us),
                        us(r.p99_us),
                        us(r.max_us),
                        r.failures
                    );
                }
            }
            let _ = writeln!(out);
        }
        let pairs = [
            (
                "in-process: send and follow on one replica",
                &self.hop_in_process,
            ),
            ("Redis: send on A, follow on B", &self.hop_redis),
            (
                "Redis: spread over A and B, each followed on the other",
                &self.fanout,
            ),
        ];
        if pairs.iter().any(|(_, p)| p.is_some()) {
            let _ = writeln!(
                out,
                "| followed streams | N | pace | streams | follower − sender per delta p50 / p99 / max (samples) | gap p99 sender / follower | stalls sender / follower | failures sender / follower | CPU s of the replicas / harness (wall s) |"
            );
            let _ = writeln!(out, "|---|---:|---:|---:|---:|---:|---:|---:|---:|");
            for (label, p) in pairs {
                if let Some(p) = p {
                    let _ = writeln!(
                        out,
                        "| {label} | {} | {} ms | {} | {} / {} / {} ({}) | {} / {} | {} / {} | {} / {} | {:.1} / {:.1} ({:.1}) |",
                        p.n,
                        p.pace_ms,
                        p.streams,
                        signed(p.lag_p50_us),
                        signed(p.lag_p99_us),
                        signed(p.lag_max_us),
                        p.lag_samples,
                        us(p.sender_gap_p99_us),
                        us(p.follower_gap_p99_us),
                        p.sender_stalls,
                        p.follower_stalls,
                        p.sender_failures,
                        p.follower_failures,
                        p.servers_cpu_secs,
                        p.harness_cpu_secs,
                        p.wall_secs,
                    );
                }
            }
            let _ = writeln!(out);
            let _ = writeln!(
                out,
                "| cost per 1,000 delivered deltas (senders' and followers' together) | delivered deltas | replicas' CPU ms | replicas' instructions (`--callgrind`) |"
            );
            let _ = writeln!(out, "|---|---:|---:|---:|");
            for (label, p) in pairs {
                if let Some(p) = p {
                    let _ = writeln!(
                        out,
                        "| {label} | {} | {} | {} |",
                        p.delivered_deltas,
                        per_thousand(p.servers_cpu_secs * 1000.0, p.delivered_deltas)
                            .map_or_else(|| "—".to_owned(), |v| format!("{v:.1}")),
                        p.servers_instructions
                            .and_then(|i| {
                                #[allow(clippy::cast_precision_loss)]
                                let i = i as f64;
                                per_thousand(i, p.delivered_deltas)
                            })
                            .map_or_else(|| "—".to_owned(), |v| format!("{:.1} M", v / 1e6)),
                    );
                }
            }
            let _ = writeln!(out);
            for (label, p) in pairs {
                for e in p.iter().flat_map(|p| &p.errors) {
                    let _ = writeln!(out, "- {label}: {}", e.replace('\n', " "));
                }
            }
            for (label, r) in reconnects {
                for e in r.iter().flat_map(|r| &r.errors) {
                    let _ = writeln!(out, "- reconnect, {label}: {}", e.replace('\n', " "));
                }
            }
        }
        if !self.relay.is_empty() {
            let _ = writeln!(
                out,
                "| relay cost per 1,000 deltas (senders only, one replica) | N | pace | streams server / bare | CPU ms server / bare (ratio) | instructions server / bare (ratio, `--callgrind`) | added TTFD p50 / p99 server | added TTFD p50 / p99 bare (p99 ratio) | failures server / bare |"
            );
            let _ = writeln!(out, "|---|---:|---:|---:|---:|---:|---:|---:|---:|");
            for r in &self.relay {
                let pair = |a: Option<f64>, b: Option<f64>, scale: f64, unit: &str| match (a, b) {
                    (Some(a), Some(b)) if b > 0.0 => {
                        format!(
                            "{:.1}{unit} / {:.1}{unit} ({:.2}×)",
                            a / scale,
                            b / scale,
                            a / b
                        )
                    }
                    _ => "—".to_owned(),
                };
                let ms = |us: Option<i64>| {
                    #[allow(clippy::cast_precision_loss)]
                    us.map_or_else(|| "—".to_owned(), |us| format!("{:.2} ms", us as f64 / 1e3))
                };
                #[allow(clippy::cast_precision_loss)]
                let ttfd_ratio = match (r.server.added_ttfd_p99_us, r.bare.added_ttfd_p99_us) {
                    (Some(a), Some(b)) if b > 0 => format!(" ({:.2}×)", a as f64 / b as f64),
                    _ => String::new(),
                };
                let _ = writeln!(
                    out,
                    "| the server against the bare relay | {} | {} ms | {} / {} | {} | {} | {} / {} | {} / {}{} | {} / {} |",
                    r.n,
                    r.pace_ms,
                    r.server.streams,
                    r.bare.streams,
                    pair(
                        r.server.cpu_ms_per_1000(),
                        r.bare.cpu_ms_per_1000(),
                        1.0,
                        ""
                    ),
                    pair(
                        r.server.instructions_per_1000(),
                        r.bare.instructions_per_1000(),
                        1e6,
                        " M"
                    ),
                    ms(r.server.added_ttfd_p50_us),
                    ms(r.server.added_ttfd_p99_us),
                    ms(r.bare.added_ttfd_p50_us),
                    ms(r.bare.added_ttfd_p99_us),
                    ttfd_ratio,
                    r.server.failures,
                    r.bare.failures,
                );
            }
            let _ = writeln!(out);
            for r in &self.relay {
                for e in r.server.errors.iter().chain(&r.bare.errors) {
                    let _ = writeln!(out, "- relay, N={}: {}", r.n, e.replace('\n', " "));
                }
            }
        }
        if !self.memory.is_empty() {
            let _ = writeln!(
                out,
                "| buffered finished replies (`MemoryLiveReplies`) | deltas each | payload per reply | VmRSS before → after | per reply | open + publish per reply |"
            );
            let _ = writeln!(out, "|---:|---:|---:|---:|---:|---:|");
            for m in &self.memory {
                let _ = writeln!(
                    out,
                    "| {} | {} | {} B | {} → {} KiB | **{:.1} KiB** | {:.1} µs |",
                    m.replies,
                    m.deltas_per_reply,
                    m.payload_bytes_per_reply,
                    m.rss_before_kib,
                    m.rss_after_kib,
                    m.kib_per_reply,
                    m.us_per_reply
                );
            }
            let _ = writeln!(out);
        }
        let _ = writeln!(out, "Targets:\n");
        for (label, r) in reconnects {
            let _ = writeln!(
                out,
                "- reconnect to first replayed event p99 ≤ 5 ms, {label}: {} ({})",
                verdict(r.as_ref().and_then(|r| r.p99_us).map(|v| v <= 5_000)),
                us(r.as_ref().and_then(|r| r.p99_us))
            );
        }
        // The hop's own cost: its lag p99 minus that of a follower on the sender's replica.
        let hop = match (
            self.hop_redis.as_ref().and_then(|p| p.lag_p99_us),
            self.hop_in_process.as_ref().and_then(|p| p.lag_p99_us),
        ) {
            (Some(redis), Some(local)) => Some(redis - local),
            _ => None,
        };
        let _ = writeln!(
            out,
            "- Redis hop adds ≤ 0.5 ms per delta at p99 (follower − sender p99 through Redis, minus the same in-process): {} ({})",
            verdict(hop.map(|v| v <= 500)),
            signed(hop)
        );
        let clean = self.fanout.as_ref().map(|f| {
            f.sender_stalls + f.follower_stalls + f.sender_failures + f.follower_failures == 0
        });
        let _ = writeln!(
            out,
            "- zero stalls and failures, {} streams over two replicas each followed on the other: {}\n",
            self.fanout
                .as_ref()
                .map_or_else(|| "the".to_owned(), |f| f.n.to_string()),
            verdict(clean)
        );
    }
}

/// `value` per 1,000 of `count` (`None` for none).
fn per_thousand(value: f64, count: usize) -> Option<f64> {
    #[allow(clippy::cast_precision_loss)]
    let count = count as f64;
    (count > 0.0).then(|| value * 1000.0 / count)
}

#[cfg(test)]
mod tests {

    use super::*;

    #[test]
    fn small_times_are_microseconds_and_large_ones_milliseconds() {
        assert_eq!(ms(850.0), "850 µs");
        assert_eq!(ms(2_345.0), "2.35 ms");
        assert_eq!(signed(Some(-120)), "-120 µs");
        assert_eq!(us(None), "–");
    }
}
