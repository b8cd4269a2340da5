//! The data benchmarks (`--suites data`): what large tables cost.
//!
//! - `quota` (issue 19): the load benchmark's concurrent sends against two servers on one
//!   database, one with quotas configured (too high to refuse) and one without, their rounds
//!   alternated; the users have a ledger of `--quota-ledger` entries this month.
//! - `usage` (issue 19): `GET /api/admin/usage` (by user, model, day), `/api/admin/users` and
//!   a user's `GET /api/usage` over `--ledger-rows` ledger rows.
//! - `search` (issue 18): `GET /api/search` for common, medium and rare words, phrases and
//!   prefixes over `--search-messages` messages of `--search-users` users.
//! - `knowledge` (issue 16): `KnowledgeIndex::search` in this process at each
//!   `--knowledge-chunks`, and the chunking and indexing throughput of `set_file_text`.
//! - `knowledge-ttfd` (issue 16): the quota part's shape (`--quota-n` concurrent sends,
//!   `--quota-rounds`, `--quota-streams-per-slot`) against two servers on one database, one
//!   with knowledge (`CONFAB_KNOWLEDGE_CHUNKS` at its default) and one without
//!   (`CONFAB_KNOWLEDGE_CHUNKS=0`: no search at all), their rounds alternated; each sending
//!   user's project holds `--knowledge-ttfd-chunks` ready chunks, and each message has words
//!   of them.
//!
//! Rows are written straight into the database ([`crate::seed`]) after the migrations ran;
//! seeding is timed and reported apart, never mixed into a measurement.

use std::str::FromStr as _;
use std::time::{Duration, Instant};

use chrono::{Datelike as _, Utc};
use confab_core::ids::{FileId, ProjectId, UserId};
use confab_core::model::TextOutcome;
use confab_core::ports::{FileStore as _, KnowledgeIndex as _};
use serde::Serialize;

use crate::BenchError;
use crate::client::{Outcome, Sender, Wire};
use crate::load::{self, Shape, Target};
use crate::seed::{self, Seeder, Vocabulary};
use crate::server::{Api, Backend, Database, Launch, ServerProcess, Tenant};
use crate::stats::Samples;

/// One part of the data suite.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DataPart {
    Quota,
    Usage,
    Search,
    Knowledge,
    #[serde(rename = "knowledge-ttfd")]
    KnowledgeTtfd,
}

/// The sizes and counts of the data suite.
#[derive(Clone, Debug)]
pub struct DataPlan {
    pub parts: Vec<DataPart>,
    /// Concurrent sends of the quota part, and its shape.
    pub quota_n: usize,
    pub quota_shape: Shape,
    pub quota_rounds: usize,
    pub quota_streams_per_slot: usize,
    /// Ledger entries of each sending user this month.
    pub quota_ledger: usize,
    pub ledger_rows: usize,
    pub ledger_users: usize,
    pub ledger_models: usize,
    pub ledger_days: usize,
    pub search_messages: usize,
    pub search_users: usize,
    pub search_conversations_per_user: usize,
    pub knowledge_chunks: Vec<usize>,
    pub knowledge_projects: usize,
    pub knowledge_limit: u32,
    /// Ready chunks in each sending user's project of the knowledge-ttfd part.
    pub knowledge_ttfd_chunks: usize,
    /// Timed requests per query (after 3 not timed).
    pub requests: usize,
    pub stream_timeout: Duration,
    /// Keep each part's database (for `EXPLAIN`): its URL is printed, nothing is dropped.
    pub keep: bool,
}

/// The time of one query, repeated.
#[derive(Clone, Debug, Serialize)]
pub struct QueryFigure {
    pub part: DataPart,
    pub backend: &'static str,
    /// What was asked, e.g. `GET /api/admin/usage?group_by=user` or `common word "the "`.
    pub query: String,
    /// Rows (groups, results, chunks) in the answer.
    pub rows: usize,
    pub requests: usize,
    pub failures: usize,
    pub p50_us: Option<u32>,
    pub p99_us: Option<u32>,
    pub max_us: Option<u32>,
}

/// The quota part's figures on one backend, times in µs.
#[derive(Clone, Debug, Serialize)]
pub struct QuotaFigure {
    pub backend: &'static str,
    pub n: usize,
    pub ledger_entries_per_user: usize,
    pub streams_each: usize,
    pub failures_without: usize,
    pub failures_with: usize,
    pub ttfd_p50_without: Option<u32>,
    pub ttfd_p99_without: Option<u32>,
    pub ttfd_p50_with: Option<u32>,
    pub ttfd_p99_with: Option<u32>,
    pub added_p50: Option<i64>,
    pub added_p99: Option<i64>,
    pub errors: Vec<String>,
}

/// The knowledge-ttfd part's figures on one backend, times in µs.
#[derive(Clone, Debug, Serialize)]
pub struct KnowledgeTtfdFigure {
    pub backend: &'static str,
    pub n: usize,
    pub chunks_per_project: usize,
    pub streams_each: usize,
    /// Requests of the server with knowledge that reached the provider with sources (each
    /// should: the messages' words are in every project).
    pub requests_with_sources: usize,
    pub failures_off: usize,
    pub failures_on: usize,
    pub ttfd_p50_off: Option<u32>,
    pub ttfd_p99_off: Option<u32>,
    pub ttfd_p50_on: Option<u32>,
    pub ttfd_p99_on: Option<u32>,
    pub added_p50: Option<i64>,
    pub added_p99: Option<i64>,
    pub errors: Vec<String>,
}

/// How long seeding took (not a figure of the product; for planning runs).
#[derive(Clone, Debug, Serialize)]
pub struct SeedFigure {
    pub backend: &'static str,
    pub what: String,
    pub rows: usize,
    pub secs: f64,
}

/// Chunking or indexing throughput.
#[derive(Clone, Debug, Serialize)]
pub struct ThroughputFigure {
    pub backend: &'static str,
    /// `chunking` (in memory) or `set_file_text` (chunks written and indexed).
    pub what: &'static str,
    pub files: usize,
    pub bytes: usize,
    pub chunks: usize,
    pub secs: f64,
}

/// The data suite's figures.
#[derive(Clone, Debug, Default, Serialize)]
pub struct DataReport {
    pub load1_at_start: Option<f64>,
    pub load1_at_end: Option<f64>,
    pub quota: Vec<QuotaFigure>,
    pub knowledge_ttfd: Vec<KnowledgeTtfdFigure>,
    pub queries: Vec<QueryFigure>,
    pub throughput: Vec<ThroughputFigure>,
    pub seeding: Vec<SeedFigure>,
}

/// What the data suite runs with.
pub struct DataRun<'a> {
    pub plan: &'a DataPlan,
    pub binary: &'a std::path::Path,
    pub fake: &'a confab_tests::fake_provider::FakeProvider,
    pub provider_base_url: &'a str,
    pub http: &'a reqwest::Client,
    pub dir: &'a std::path::Path,
    pub postgres_url: Option<&'a str>,
    pub server_env: &'a [(String, String)],
}

/// Drops `database` unless it is to be kept.
async fn finish(database: Database, keep: bool) -> Result<(), BenchError> {
    if keep {
        eprintln!("data: kept {}", database.url);
        Ok(())
    } else {
        database.remove().await
    }
}

/// The vocabulary of every generated text.
const VOCABULARY: usize = 20_000;

/// The dev user who owns the knowledge-ttfd part's projects.
const KNOWLEDGE_TTFD_USER: &str = "bench-knowledge-ttfd";

/// What the quota part's stream `k` of slot `slot` says.
fn quota_message(slot: usize, k: usize) -> String {
    format!("Quota benchmark {slot}/{k}: tell me something.")
}

impl DataRun<'_> {
    /// Every part asked for, on every backend.
    pub async fn run(&self, backends: &[Backend]) -> Result<DataReport, BenchError> {
        let mut report = DataReport {
            load1_at_start: crate::procfs::load1(),
            ..DataReport::default()
        };
        std::fs::create_dir_all(self.dir)?;
        for &backend in backends {
            for &part in &self.plan.parts {
                eprintln!("data: {part:?} on {}", backend.label());
                match part {
                    DataPart::Quota => {
                        let database = self.database(backend, "quota").await?;
                        let outcome = self.quota(backend, &database, &mut report).await;
                        finish(database, self.plan.keep).await?;
                        outcome?;
                    }
                    DataPart::Usage => {
                        let database = self.database(backend, "usage").await?;
                        let outcome = self.usage(backend, &database, &mut report).await;
                        finish(database, self.plan.keep).await?;
                        outcome?;
                    }
                    DataPart::Search => {
                        let database = self.database(backend, "search").await?;
                        let outcome = self.search(backend, &database, &mut report).await;
                        finish(database, self.plan.keep).await?;
                        outcome?;
                    }
                    DataPart::KnowledgeTtfd => {
                        let database = self.database(backend, "knowledge_ttfd").await?;
                        let outcome = self.knowledge_ttfd(backend, &database, &mut report).await;
                        finish(database, self.plan.keep).await?;
                        outcome?;
                    }
                    DataPart::Knowledge => {
                        for (i, &chunks) in self.plan.knowledge_chunks.iter().enumerate() {
                            let database = self
                                .database(backend, &format!("knowledge{chunks}"))
                                .await?;
                            let outcome = self
                                .knowledge(backend, &database, chunks, i == 0, &mut report)
                                .await;
                            finish(database, self.plan.keep).await?;
                            outcome?;
                        }
                    }
                }
            }
        }
        report.load1_at_end = crate::procfs::load1();
        Ok(report)
    }

    async fn database(&self, backend: Backend, name: &str) -> Result<Database, BenchError> {
        match (backend, self.postgres_url) {
            (Backend::Sqlite, _) => Ok(Database::sqlite(self.dir, &format!("{name}.db"))),
            (Backend::Postgres, Some(url)) => {
                Database::postgres_named(
                    url,
                    &format!("confab_bench_{name}_{}", std::process::id()),
                )
                .await
            }
            (Backend::Postgres, None) => Err(BenchError::Setup(
                "PostgreSQL needs DATABASE_URL=postgres://…".to_owned(),
            )),
        }
    }

    fn launch<'b>(&'b self, database: &'b Database, env: &'b [(String, String)]) -> Launch<'b> {
        Launch {
            binary: self.binary,
            database_url: &database.url,
            provider_base_url: self.provider_base_url,
            upstream: crate::server::Upstream::Http1,
            dir: self.dir,
            extra_env: env,
            callgrind: None,
        }
    }

    /// Runs `statements`, 20 to a transaction.
    async fn seed_statements(
        seeder: &mut Seeder,
        statements: Vec<String>,
    ) -> Result<(), BenchError> {
        // A transaction per batch: SQLite otherwise commits every statement.
        for batch in statements.chunks(20) {
            let mut sql = String::from("BEGIN;");
            for s in batch {
                sql.push_str(s);
                sql.push(';');
            }
            sql.push_str("COMMIT;");
            seeder.run(sql).await?;
        }
        Ok(())
    }

    /// Issue 19: the quota check's cost in the time to first delta.
    async fn quota(
        &self,
        backend: Backend,
        database: &Database,
        report: &mut DataReport,
    ) -> Result<(), BenchError> {
        let mut quota_env: Vec<(String, String)> = vec![
            // Never refused: far above anything the run uses.
            (
                "CONFAB_QUOTA_TOKENS_PER_DAY".to_owned(),
                (1u64 << 50).to_string(),
            ),
            (
                "CONFAB_QUOTA_TOKENS_PER_MONTH".to_owned(),
                (1u64 << 52).to_string(),
            ),
        ];
        quota_env.extend(self.server_env.iter().cloned());
        let without = self.launch(database, self.server_env);
        without.migrate().await?;
        let a = ServerProcess::start(&without, self.http).await?;
        let b = match ServerProcess::start(&self.launch(database, &quota_env), self.http).await {
            Ok(b) => b,
            Err(e) => {
                a.stop().await;
                return Err(e);
            }
        };
        eprintln!(
            "data: quota, server without quotas pid {}, with quotas pid {}",
            a.pid, b.pid
        );
        let outcome = self.quota_rounds(backend, database, &a, &b, report).await;
        if outcome.is_err() {
            eprintln!(
                "without quotas:\n{}\nwith quotas:\n{}",
                a.log_tail(),
                b.log_tail()
            );
        }
        a.stop().await;
        b.stop().await;
        outcome
    }

    async fn quota_rounds(
        &self,
        backend: Backend,
        database: &Database,
        a: &ServerProcess,
        b: &ServerProcess,
        report: &mut DataReport,
    ) -> Result<(), BenchError> {
        let plan = self.plan;
        let n = plan.quota_n.max(1);
        let api_a = Api {
            http: self.http,
            base: format!("http://{}", a.addr),
        };
        let api_b = Api {
            http: self.http,
            base: format!("http://{}", b.addr),
        };
        // The users of the load benchmark (one per 100 slots), each with a ledger this month.
        let users = n.div_ceil(load::SLOTS_PER_USER);
        let mut tenants = Vec::new();
        for u in 0..users {
            tenants.push(api_a.tenant(&format!("bench-user-{u}")).await?);
        }
        let today = Utc::now().date_naive();
        let mut seeder = Seeder::open(database).await?;
        let started = Instant::now();
        let rows = plan.quota_ledger * users;
        if rows > 0 {
            seeder
                .run(seed::ledger_sql(
                    seeder.pg(),
                    rows,
                    users,
                    5,
                    today.day() as usize,
                    today,
                    "dev:bench-user-",
                    0x0001_ed9e,
                ))
                .await?;
        }
        seeder.analyze().await?;
        drop(seeder);
        report.seeding.push(SeedFigure {
            backend: backend.label(),
            what: format!(
                "{} ledger entries this month for each of {users} users",
                plan.quota_ledger
            ),
            rows,
            secs: started.elapsed().as_secs_f64(),
        });
        self.fake.set_config(plan.quota_shape.config());
        let servers = [(a, &api_a), (b, &api_b)];
        // Warm-up, not reported.
        for (server, api) in servers {
            self.quota_round(server, api, &tenants, 10, 1, &quota_message)
                .await?;
        }
        let mut without = Samples::default();
        let mut with = Samples::default();
        let (mut failures_without, mut failures_with) = (0, 0);
        let mut errors = Vec::new();
        let mut streams_each = 0;
        for round in 0..plan.quota_rounds.max(1) {
            // Alternate which goes first, so that neither always follows the other.
            let order = if round % 2 == 0 { [0, 1] } else { [1, 0] };
            for which in order {
                let (server, api) = servers[which];
                let outcomes = self
                    .quota_round(
                        server,
                        api,
                        &tenants,
                        n,
                        plan.quota_streams_per_slot,
                        &quota_message,
                    )
                    .await?;
                let (samples, failures) = if which == 0 {
                    streams_each += outcomes.len();
                    (&mut without, &mut failures_without)
                } else {
                    (&mut with, &mut failures_with)
                };
                for o in outcomes {
                    if let Some(t) = o.ttfd {
                        samples.push(u32::try_from(t.as_micros()).unwrap_or(u32::MAX));
                    }
                    if let Some(e) = o.error {
                        *failures += 1;
                        if errors.len() < 5 {
                            errors.push(e);
                        }
                    }
                }
            }
            eprintln!("  quota round {}/{}", round + 1, plan.quota_rounds);
        }
        self.fake.clear_requests();
        let (p50a, p99a) = (without.percentile(50.0), without.percentile(99.0));
        let (p50b, p99b) = (with.percentile(50.0), with.percentile(99.0));
        let figure = QuotaFigure {
            backend: backend.label(),
            n,
            ledger_entries_per_user: plan.quota_ledger,
            streams_each,
            failures_without,
            failures_with,
            ttfd_p50_without: p50a,
            ttfd_p99_without: p99a,
            ttfd_p50_with: p50b,
            ttfd_p99_with: p99b,
            added_p50: crate::stats::added(p50b, p50a),
            added_p99: crate::stats::added(p99b, p99a),
            errors,
        };
        eprintln!("{figure:?}");
        report.quota.push(figure);
        Ok(())
    }

    /// One round of `n` slots through `server`, each sending `per_slot` streams in turn,
    /// stream `k` of slot `slot` saying `text(slot, k)`.
    async fn quota_round(
        &self,
        server: &ServerProcess,
        api: &Api<'_>,
        tenants: &[Tenant],
        n: usize,
        per_slot: usize,
        text: &(dyn Fn(usize, usize) -> String + Sync),
    ) -> Result<Vec<Outcome>, BenchError> {
        let per_slot = per_slot.max(1);
        let owners: Vec<usize> = (0..n * per_slot)
            .map(|k| (k / per_slot) / load::SLOTS_PER_USER)
            .collect();
        let conversations = api.conversations(tenants, &owners).await?;
        let mut ids = conversations.iter();
        let mut plan = Vec::with_capacity(n);
        for slot in 0..n {
            let tenant = tenants
                .get(slot / load::SLOTS_PER_USER)
                .ok_or_else(|| BenchError::Setup("a tenant is missing".to_owned()))?;
            let mut streams = Vec::with_capacity(per_slot);
            for k in 0..per_slot {
                let id = ids
                    .next()
                    .ok_or_else(|| BenchError::Setup("a conversation is missing".to_owned()))?;
                streams.push(load::server_request(tenant, id, &text(slot, k)));
            }
            plan.push(streams);
        }
        let target = Target::new(server.addr, Wire::Confab);
        let mut slots: Vec<Option<Sender>> = std::iter::repeat_with(|| None).take(n).collect();
        load::connect_all(target.addr, &mut slots).await?;
        Ok(load::round(
            &target,
            &mut slots,
            plan,
            self.plan.quota_shape.duration(),
            self.plan.quota_shape.deltas,
            self.plan.stream_timeout,
        )
        .await)
    }

    /// Issue 16: what searching the project's knowledge adds to the time to first delta.
    async fn knowledge_ttfd(
        &self,
        backend: Backend,
        database: &Database,
        report: &mut DataReport,
    ) -> Result<(), BenchError> {
        let mut off_env: Vec<(String, String)> =
            vec![("CONFAB_KNOWLEDGE_CHUNKS".to_owned(), "0".to_owned())];
        off_env.extend(self.server_env.iter().cloned());
        let on = self.launch(database, self.server_env);
        on.migrate().await?;
        // The projects, files and chunks, before the servers start.
        let plan = self.plan;
        let n = plan.quota_n.max(1);
        let users = n.div_ceil(load::SLOTS_PER_USER);
        let per_project = plan.knowledge_ttfd_chunks.max(1);
        let vocabulary = Vocabulary::new(VOCABULARY);
        let shape = seed::Knowledge {
            owner: format!("dev:{KNOWLEDGE_TTFD_USER}"),
            projects: users,
            chunks: per_project * users,
            chunks_per_file: 40,
            chunk_words: 700,
        };
        let started = Instant::now();
        let mut seeder = Seeder::open(database).await?;
        let mut rng = seed::Rng::new(1_016);
        Self::seed_statements(&mut seeder, shape.files_sql(0)).await?;
        let statements = shape.chunks_sql(&vocabulary, &mut rng, 0, shape.chunks);
        Self::seed_statements(&mut seeder, statements).await?;
        seeder.analyze().await?;
        drop(seeder);
        report.seeding.push(SeedFigure {
            backend: backend.label(),
            what: format!(
                "knowledge chunks of ~{} words, {per_project} in each of {users} projects",
                shape.chunk_words
            ),
            rows: shape.chunks,
            secs: started.elapsed().as_secs_f64(),
        });

        let a = ServerProcess::start(&self.launch(database, &off_env), self.http).await?;
        let b = match ServerProcess::start(&on, self.http).await {
            Ok(b) => b,
            Err(e) => {
                a.stop().await;
                return Err(e);
            }
        };
        eprintln!(
            "data: knowledge-ttfd, server without knowledge pid {}, with knowledge pid {}",
            a.pid, b.pid
        );
        let outcome = self
            .knowledge_ttfd_rounds(backend, users, per_project, &vocabulary, &a, &b, report)
            .await;
        if outcome.is_err() {
            eprintln!(
                "without knowledge:\n{}\nwith knowledge:\n{}",
                a.log_tail(),
                b.log_tail()
            );
        }
        a.stop().await;
        b.stop().await;
        outcome
    }

    #[expect(clippy::too_many_arguments, reason = "one private step of one part")]
    async fn knowledge_ttfd_rounds(
        &self,
        backend: Backend,
        users: usize,
        per_project: usize,
        vocabulary: &Vocabulary,
        a: &ServerProcess,
        b: &ServerProcess,
        report: &mut DataReport,
    ) -> Result<(), BenchError> {
        let plan = self.plan;
        let n = plan.quota_n.max(1);
        let api_a = Api {
            http: self.http,
            base: format!("http://{}", a.addr),
        };
        let api_b = Api {
            http: self.http,
            base: format!("http://{}", b.addr),
        };
        // One user owns every seeded project; slot `s` sends in project `s / 100`.
        let token = api_a.token(KNOWLEDGE_TTFD_USER).await?;
        let tenants: Vec<Tenant> = (0..users)
            .map(|p| Tenant {
                token: token.clone(),
                project_id: seed::Knowledge::project_id(p),
            })
            .collect();
        // Words of the chunks: two of the 300 after the most frequent 300, different for
        // each stream, in a question of common words (which match too).
        let message = |slot: usize, k: usize| {
            let pick = |salt: usize| vocabulary.word(300 + (slot * 31 + k * 7 + salt) % 300);
            format!(
                "Knowledge benchmark {slot}/{k}: what do the files say about {} and {}?",
                pick(0),
                pick(150)
            )
        };
        self.fake.set_config(plan.quota_shape.config());
        let servers = [(a, &api_a), (b, &api_b)];
        for (server, api) in servers {
            self.quota_round(server, api, &tenants, 10, 1, &message)
                .await?;
        }
        self.fake.clear_requests();
        let mut off = Samples::default();
        let mut on = Samples::default();
        let (mut failures_off, mut failures_on) = (0, 0);
        let mut errors = Vec::new();
        let mut streams_each = 0;
        let mut requests_with_sources = 0;
        for round in 0..plan.quota_rounds.max(1) {
            let order = if round % 2 == 0 { [0, 1] } else { [1, 0] };
            for which in order {
                let (server, api) = servers[which];
                let outcomes = self
                    .quota_round(
                        server,
                        api,
                        &tenants,
                        n,
                        plan.quota_streams_per_slot,
                        &message,
                    )
                    .await?;
                let (samples, failures) = if which == 0 {
                    streams_each += outcomes.len();
                    (&mut off, &mut failures_off)
                } else {
                    requests_with_sources += self
                        .fake
                        .requests()
                        .iter()
                        .filter(|r| r.body.to_string().contains("come from the project's files"))
                        .count();
                    (&mut on, &mut failures_on)
                };
                self.fake.clear_requests();
                for o in outcomes {
                    if let Some(t) = o.ttfd {
                        samples.push(u32::try_from(t.as_micros()).unwrap_or(u32::MAX));
                    }
                    if let Some(e) = o.error {
                        *failures += 1;
                        if errors.len() < 5 {
                            errors.push(e);
                        }
                    }
                }
            }
            eprintln!("  knowledge-ttfd round {}/{}", round + 1, plan.quota_rounds);
        }
        let (p50a, p99a) = (off.percentile(50.0), off.percentile(99.0));
        let (p50b, p99b) = (on.percentile(50.0), on.percentile(99.0));
        let figure = KnowledgeTtfdFigure {
            backend: backend.label(),
            n,
            chunks_per_project: per_project,
            streams_each,
            requests_with_sources,
            failures_off,
            failures_on,
            ttfd_p50_off: p50a,
            ttfd_p99_off: p99a,
            ttfd_p50_on: p50b,
            ttfd_p99_on: p99b,
            added_p50: crate::stats::added(p50b, p50a),
            added_p99: crate::stats::added(p99b, p99a),
            errors,
        };
        eprintln!("{figure:?}");
        report.knowledge_ttfd.push(figure);
        Ok(())
    }

    /// Issue 19: the administrators' and a user's usage reports over a large ledger.
    async fn usage(
        &self,
        backend: Backend,
        database: &Database,
        report: &mut DataReport,
    ) -> Result<(), BenchError> {
        let plan = self.plan;
        let mut env = vec![("CONFAB_ADMINS".to_owned(), "dev:bench-admin".to_owned())];
        env.extend(self.server_env.iter().cloned());
        let launch = self.launch(database, &env);
        launch.migrate().await?;
        let today = Utc::now().date_naive();
        let mut seeder = Seeder::open(database).await?;
        let started = Instant::now();
        seeder
            .run(seed::ledger_sql(
                seeder.pg(),
                plan.ledger_rows,
                plan.ledger_users,
                plan.ledger_models,
                plan.ledger_days,
                today,
                "dev:bench-usage-",
                0x00a5_a9e0,
            ))
            .await?;
        seeder.analyze().await?;
        drop(seeder);
        report.seeding.push(SeedFigure {
            backend: backend.label(),
            what: format!(
                "ledger: {} users, {} models, {} days",
                plan.ledger_users, plan.ledger_models, plan.ledger_days
            ),
            rows: plan.ledger_rows,
            secs: started.elapsed().as_secs_f64(),
        });
        let server = ServerProcess::start(&launch, self.http).await?;
        let outcome = self.usage_queries(backend, &server, today, report).await;
        if outcome.is_err() {
            eprintln!("server log:\n{}", server.log_tail());
        }
        server.stop().await;
        outcome
    }

    async fn usage_queries(
        &self,
        backend: Backend,
        server: &ServerProcess,
        today: chrono::NaiveDate,
        report: &mut DataReport,
    ) -> Result<(), BenchError> {
        let plan = self.plan;
        let api = Api {
            http: self.http,
            base: format!("http://{}", server.addr),
        };
        let admin = api.token("bench-admin").await?;
        if !api.is_admin(&admin).await? {
            return Err(BenchError::Setup(
                "dev:bench-admin is not an administrator (CONFAB_ADMINS)".to_owned(),
            ));
        }
        let user = api.token("bench-usage-7").await?;
        let from = seed::days_before(today, plan.ledger_days.saturating_sub(1) as u64);
        let range = format!("from={from}&to={today}");
        let mut queries: Vec<(String, String, String)> = ["user", "model", "day"]
            .iter()
            .map(|g| {
                (
                    format!("GET /api/admin/usage?{range}&group_by={g}"),
                    format!("/api/admin/usage?{range}&group_by={g}"),
                    admin.clone(),
                )
            })
            .collect();
        queries.push((
            "GET /api/admin/users (this month)".to_owned(),
            "/api/admin/users".to_owned(),
            admin.clone(),
        ));
        for g in ["day", "model"] {
            queries.push((
                format!("GET /api/usage?{range}&group_by={g} (one user)"),
                format!("/api/usage?{range}&group_by={g}"),
                user.clone(),
            ));
        }
        for (label, path, token) in queries {
            let figure = self
                .time_get(DataPart::Usage, backend, &label, &api, &path, &token)
                .await?;
            eprintln!("{figure:?}");
            report.queries.push(figure);
        }
        Ok(())
    }

    /// `requests` sequential GETs of `path` (after 3 not timed), one connection.
    async fn time_get(
        &self,
        part: DataPart,
        backend: Backend,
        label: &str,
        api: &Api<'_>,
        path: &str,
        token: &str,
    ) -> Result<QueryFigure, BenchError> {
        self.time_gets(
            part,
            backend,
            label,
            api,
            &[(path.to_owned(), token.to_owned())],
        )
        .await
    }

    /// [`Self::time_get`] cycling through `targets` (path and token).
    async fn time_gets(
        &self,
        part: DataPart,
        backend: Backend,
        label: &str,
        api: &Api<'_>,
        targets: &[(String, String)],
    ) -> Result<QueryFigure, BenchError> {
        let mut samples = Samples::default();
        let mut failures = 0;
        let mut rows = 0;
        let total = self.plan.requests + 3;
        for i in 0..total {
            let Some((path, token)) = targets.get(i % targets.len().max(1)) else {
                break;
            };
            let started = Instant::now();
            let answer = api
                .http
                .get(format!("{}{path}", api.base))
                .bearer_auth(token)
                .send()
                .await;
            let answer = match answer {
                Ok(r) if r.status().is_success() => r.bytes().await.ok(),
                _ => None,
            };
            let elapsed = started.elapsed();
            let Some(body) = answer else {
                failures += 1;
                continue;
            };
            if i >= 3 {
                samples.push(u32::try_from(elapsed.as_micros()).unwrap_or(u32::MAX));
            }
            if i == total - 1 {
                rows = count_rows(&body);
            }
        }
        Ok(QueryFigure {
            part,
            backend: backend.label(),
            query: label.to_owned(),
            rows,
            requests: samples.count(),
            failures,
            p50_us: samples.percentile(50.0),
            p99_us: samples.percentile(99.0),
            max_us: samples.max(),
        })
    }

    /// Issue 18: search over many messages of many users.
    async fn search(
        &self,
        backend: Backend,
        database: &Database,
        report: &mut DataReport,
    ) -> Result<(), BenchError> {
        let plan = self.plan;
        let launch = self.launch(database, self.server_env);
        launch.migrate().await?;
        let vocabulary = Vocabulary::new(VOCABULARY);
        let shape = seed::Conversations {
            users: plan.search_users.max(1),
            conversations_per_user: plan.search_conversations_per_user.max(1),
            messages: plan.search_messages,
            user_prefix: "dev:bench-search-".to_owned(),
            days: 90,
        };
        let mut rng = seed::Rng::new(18);
        let mut seeder = Seeder::open(database).await?;
        let started = Instant::now();
        if seeder.pg() {
            // One GIN build after the load is much faster than maintaining it row by row;
            // the index is the migration's own.
            seeder
                .run("DROP INDEX messages_search_idx".to_owned())
                .await?;
        }
        // SQLite: the index filled in one statement after the load, its triggers dropped
        // meanwhile and created again (their definitions unchanged).
        let suspended = seeder.suspend_index(&seed::MESSAGES_FTS).await?;
        Self::seed_statements(&mut seeder, shape.owners_sql(&vocabulary, &mut rng)).await?;
        let step = 50_000;
        let mut from = 0;
        while from < plan.search_messages {
            let to = (from + step).min(plan.search_messages);
            let statements = shape.messages_sql(&vocabulary, &mut rng, from, to);
            Self::seed_statements(&mut seeder, statements).await?;
            from = to;
            eprintln!(
                "  {from} messages ({:.0} s)",
                started.elapsed().as_secs_f64()
            );
        }
        seeder.resume_index(&seed::MESSAGES_FTS, suspended).await?;
        if seeder.pg() {
            seeder
                .run("CREATE INDEX messages_search_idx ON messages USING GIN (search)".to_owned())
                .await?;
        }
        seeder.analyze().await?;
        drop(seeder);
        report.seeding.push(SeedFigure {
            backend: backend.label(),
            what: format!(
                "messages of {} users ({} conversations each), indexed",
                shape.users, shape.conversations_per_user
            ),
            rows: plan.search_messages,
            secs: started.elapsed().as_secs_f64(),
        });
        let server = ServerProcess::start(&launch, self.http).await?;
        let outcome = self
            .search_queries(backend, &server, &vocabulary, report)
            .await;
        if outcome.is_err() {
            eprintln!("server log:\n{}", server.log_tail());
        }
        server.stop().await;
        outcome
    }

    async fn search_queries(
        &self,
        backend: Backend,
        server: &ServerProcess,
        vocabulary: &Vocabulary,
        report: &mut DataReport,
    ) -> Result<(), BenchError> {
        let api = Api {
            http: self.http,
            base: format!("http://{}", server.addr),
        };
        // Ten searchers, taken in turn.
        let mut tokens = Vec::new();
        for u in 0..10.min(self.plan.search_users.max(1)) {
            tokens.push(api.token(&format!("bench-search-{u}")).await?);
        }
        for (label, q) in search_queries(vocabulary) {
            let path = format!("/api/search?q={}", encode(&q));
            let targets: Vec<(String, String)> =
                tokens.iter().map(|t| (path.clone(), t.clone())).collect();
            let figure = self
                .time_gets(
                    DataPart::Search,
                    backend,
                    &format!("{label}: q={q:?}"),
                    &api,
                    &targets,
                )
                .await?;
            eprintln!("{figure:?}");
            report.queries.push(figure);
        }
        Ok(())
    }

    /// Issue 16: retrieval over `chunks` chunks in this process, and (`throughput`) the
    /// chunking and indexing throughput.
    async fn knowledge(
        &self,
        backend: Backend,
        database: &Database,
        chunks: usize,
        throughput: bool,
        report: &mut DataReport,
    ) -> Result<(), BenchError> {
        let plan = self.plan;
        let store = confab_sql::connect(
            &database.url,
            confab_sql::PoolOptions {
                max_size: 4,
                threads: 1,
                connect_timeout: Duration::from_secs(10),
                wait_timeout: Duration::from_secs(30),
                sqlite_cache_mib: confab_sql::DEFAULT_SQLITE_CACHE_MIB,
            },
        )
        .await
        .map_err(|e| BenchError::Setup(format!("the store: {e}")))?;
        let vocabulary = Vocabulary::new(VOCABULARY);
        let owner = "dev:bench-knowledge";
        let shape = seed::Knowledge {
            owner: owner.to_owned(),
            projects: plan.knowledge_projects.max(1),
            chunks,
            chunks_per_file: 40,
            // About the chunker's 1,000 tokens.
            chunk_words: 700,
        };
        const INDEXED_FILES: usize = 20;
        let mut rng = seed::Rng::new(16);
        let mut seeder = Seeder::open(database).await?;
        let started = Instant::now();
        if seeder.pg() {
            // As for the messages: one GIN build after the load (the migration's index).
            seeder
                .run("DROP INDEX file_chunks_search_idx".to_owned())
                .await?;
        }
        let suspended = seeder.suspend_index(&seed::CHUNKS_FTS).await?;
        Self::seed_statements(&mut seeder, shape.files_sql(INDEXED_FILES)).await?;
        let step = 10_000;
        let mut from = 0;
        while from < chunks {
            let to = (from + step).min(chunks);
            let statements = shape.chunks_sql(&vocabulary, &mut rng, from, to);
            Self::seed_statements(&mut seeder, statements).await?;
            from = to;
            eprintln!("  {from} chunks ({:.0} s)", started.elapsed().as_secs_f64());
        }
        seeder.resume_index(&seed::CHUNKS_FTS, suspended).await?;
        if seeder.pg() {
            seeder
                .run(
                    "CREATE INDEX file_chunks_search_idx ON file_chunks USING GIN (search)"
                        .to_owned(),
                )
                .await?;
        }
        seeder.analyze().await?;
        drop(seeder);
        report.seeding.push(SeedFigure {
            backend: backend.label(),
            what: format!(
                "knowledge chunks of ~{} words in {} projects, indexed",
                shape.chunk_words, shape.projects
            ),
            rows: chunks,
            secs: started.elapsed().as_secs_f64(),
        });
        let user =
            UserId::new(owner).map_err(|e| BenchError::Setup(format!("the owner's id: {e}")))?;
        let project = ProjectId::from_str(&seed::Knowledge::project_id(0))
            .map_err(|e| BenchError::Setup(format!("a project id: {e}")))?;
        let queries = [
            ("common word", "the".to_owned()),
            ("medium word", vocabulary.word(600)),
            ("rare word", vocabulary.word(15_000)),
            (
                "question",
                "how does the server build an index for each query".to_owned(),
            ),
        ];
        for (label, q) in queries {
            let mut samples = Samples::default();
            let mut failures = 0;
            let mut rows = 0;
            for i in 0..plan.requests + 3 {
                let started = Instant::now();
                let found = store.search(&user, project, &q, plan.knowledge_limit).await;
                let elapsed = started.elapsed();
                match found {
                    Ok(hits) => {
                        rows = hits.len();
                        if i >= 3 {
                            samples.push(u32::try_from(elapsed.as_micros()).unwrap_or(u32::MAX));
                        }
                    }
                    Err(e) => {
                        failures += 1;
                        if failures == 1 {
                            eprintln!("knowledge search failed: {e}");
                        }
                    }
                }
            }
            let figure = QueryFigure {
                part: DataPart::Knowledge,
                backend: backend.label(),
                query: format!(
                    "{chunks} chunks, {} in the project, limit {}: {label} {q:?}",
                    chunks / shape.projects,
                    plan.knowledge_limit
                ),
                rows,
                requests: samples.count(),
                failures,
                p50_us: samples.percentile(50.0),
                p99_us: samples.percentile(99.0),
                max_us: samples.max(),
            };
            eprintln!("{figure:?}");
            report.queries.push(figure);
        }
        if throughput {
            // Texts of about 200 KB, as extracted from a long document.
            let texts: Vec<String> = (0..INDEXED_FILES)
                .map(|_| vocabulary.text(&mut rng, 33_000))
                .collect();
            let bytes: usize = texts.iter().map(String::len).sum();
            let started = Instant::now();
            let mut pieces = 0;
            for text in &texts {
                pieces += std::hint::black_box(confab_core::knowledge::chunks(text)).len();
            }
            report.throughput.push(ThroughputFigure {
                backend: "–",
                what: "chunking",
                files: texts.len(),
                bytes,
                chunks: pieces,
                secs: started.elapsed().as_secs_f64(),
            });
            let started = Instant::now();
            for (k, text) in texts.iter().enumerate() {
                let id = FileId::from_str(&seed::Knowledge::file_id(shape.files() + k))
                    .map_err(|e| BenchError::Setup(format!("a file id: {e}")))?;
                store
                    .set_file_text(id, &TextOutcome::Ready(text.clone()))
                    .await
                    .map_err(|e| BenchError::Setup(format!("set_file_text: {e}")))?;
            }
            let figure = ThroughputFigure {
                backend: backend.label(),
                what: "set_file_text",
                files: texts.len(),
                bytes,
                chunks: pieces,
                secs: started.elapsed().as_secs_f64(),
            };
            eprintln!("{figure:?}");
            report.throughput.push(figure);
        }
        drop(store);
        Ok(())
    }
}

/// The searches of the search part: (what, query). A word followed by a space is a whole
/// word; a query ending in a word matches it as a prefix (search as you type).
#[must_use]
pub fn search_queries(vocabulary: &Vocabulary) -> Vec<(&'static str, String)> {
    let medium = vocabulary.word(600);
    let rare = vocabulary.word(15_000);
    let prefix: String = vocabulary.word(3_000).chars().take(4).collect();
    vec![
        ("common word", "the ".to_owned()),
        ("common prefix", "th".to_owned()),
        ("two common words", "time water ".to_owned()),
        ("phrase of common words", "\"of the\"".to_owned()),
        ("medium word", format!("{medium} ")),
        ("rare word", format!("{rare} ")),
        ("prefix of made-up words", prefix),
    ]
}

/// `text` percent-encoded for a query string.
#[must_use]
pub fn encode(text: &str) -> String {
    let mut out = String::new();
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The rows of an answer: `groups` of a usage report, `items` of a page, or a list's length.
fn count_rows(body: &[u8]) -> usize {
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(body) else {
        return 0;
    };
    ["groups", "items"]
        .iter()
        .find_map(|k| value[k].as_array().map(Vec::len))
        .or_else(|| value.as_array().map(Vec::len))
        .unwrap_or(0)
}

fn time(v: Option<u32>) -> String {
    v.map_or_else(|| "–".to_owned(), |v| crate::report::ms(f64::from(v)))
}

fn signed(v: Option<i64>) -> String {
    #[allow(clippy::cast_precision_loss)]
    v.map_or_else(|| "–".to_owned(), |v| crate::report::ms(v as f64))
}

impl DataReport {
    /// The Markdown tables of the data suite.
    pub fn markdown(&self, out: &mut String) {
        use std::fmt::Write as _;
        let _ = writeln!(
            out,
            "### Data suite\n\n1-minute load at start {}, at end {}.\n",
            self.load1_at_start
                .map_or("?".to_owned(), |l| format!("{l:.2}")),
            self.load1_at_end
                .map_or("?".to_owned(), |l| format!("{l:.2}"))
        );
        if !self.quota.is_empty() {
            let _ = writeln!(
                out,
                "Quota check (issue 19; target: added TTFD ≤ 0.2 ms p99 over no quota):\n\n| backend | N | ledger entries per user this month | streams each | TTFD p50 / p99 without quotas | TTFD p50 / p99 with quotas | added p50 | added p99 | failures (without / with) |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|"
            );
            for q in &self.quota {
                let _ = writeln!(
                    out,
                    "| {} | {} | {} | {} | {} / {} | {} / {} | {} | {} | {} / {} |",
                    q.backend,
                    q.n,
                    q.ledger_entries_per_user,
                    q.streams_each,
                    time(q.ttfd_p50_without),
                    time(q.ttfd_p99_without),
                    time(q.ttfd_p50_with),
                    time(q.ttfd_p99_with),
                    signed(q.added_p50),
                    signed(q.added_p99),
                    q.failures_without,
                    q.failures_with
                );
            }
            let _ = writeln!(out);
        }
        if !self.knowledge_ttfd.is_empty() {
            let _ = writeln!(
                out,
                "Knowledge in the time to first delta (issue 16; added TTFD with knowledge on over off):\n\n| backend | N | ready chunks per project | streams each | requests with sources | TTFD p50 / p99 knowledge off | TTFD p50 / p99 knowledge on | added p50 | added p99 | failures (off / on) |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
            );
            for q in &self.knowledge_ttfd {
                let _ = writeln!(
                    out,
                    "| {} | {} | {} | {} | {} | {} / {} | {} / {} | {} | {} | {} / {} |",
                    q.backend,
                    q.n,
                    q.chunks_per_project,
                    q.streams_each,
                    q.requests_with_sources,
                    time(q.ttfd_p50_off),
                    time(q.ttfd_p99_off),
                    time(q.ttfd_p50_on),
                    time(q.ttfd_p99_on),
                    signed(q.added_p50),
                    signed(q.added_p99),
                    q.failures_off,
                    q.failures_on
                );
            }
            let _ = writeln!(out);
        }
        for (part, title) in [
            (DataPart::Usage, "Usage reports (issue 19)"),
            (
                DataPart::Search,
                "Search (issue 18; target: p99 ≤ 20 ms at 1,000,000 messages)",
            ),
            (
                DataPart::Knowledge,
                "Knowledge retrieval, `KnowledgeIndex::search` in process (issue 16; target: p99 ≤ 10 ms at 100,000 chunks on SQLite)",
            ),
        ] {
            let rows: Vec<&QueryFigure> = self.queries.iter().filter(|q| q.part == part).collect();
            if rows.is_empty() {
                continue;
            }
            let _ = writeln!(
                out,
                "{title}:\n\n| backend | query | rows | requests | p50 | p99 | max | failures |\n|---|---|---:|---:|---:|---:|---:|---:|"
            );
            for q in rows {
                let _ = writeln!(
                    out,
                    "| {} | {} | {} | {} | {} | {} | {} | {} |",
                    q.backend,
                    q.query.replace('|', "\\|"),
                    q.rows,
                    q.requests,
                    time(q.p50_us),
                    time(q.p99_us),
                    time(q.max_us),
                    q.failures
                );
            }
            let _ = writeln!(out);
        }
        if !self.throughput.is_empty() {
            let _ = writeln!(
                out,
                "Chunking and indexing (issue 16):\n\n| backend | what | files | MB | chunks | s | MB/s | chunks/s |\n|---|---|---:|---:|---:|---:|---:|---:|"
            );
            for t in &self.throughput {
                #[allow(clippy::cast_precision_loss)]
                let mb = t.bytes as f64 / 1e6;
                #[allow(clippy::cast_precision_loss)]
                let chunks = t.chunks as f64;
                let secs = t.secs.max(1e-9);
                let _ = writeln!(
                    out,
                    "| {} | {} | {} | {mb:.1} | {} | {:.3} | {:.1} | {:.0} |",
                    t.backend,
                    t.what,
                    t.files,
                    t.chunks,
                    t.secs,
                    mb / secs,
                    chunks / secs
                );
            }
            let _ = writeln!(out);
        }
        if !self.seeding.is_empty() {
            let _ = writeln!(
                out,
                "Seeding (not a product figure):\n\n| backend | what | rows | s |\n|---|---|---:|---:|"
            );
            for s in &self.seeding {
                let _ = writeln!(
                    out,
                    "| {} | {} | {} | {:.1} |",
                    s.backend, s.what, s.rows, s.secs
                );
            }
            let _ = writeln!(out);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_are_percent_encoded() {
        assert_eq!(encode("\"of the\""), "%22of%20the%22");
        assert_eq!(encode("th"), "th");
    }

    #[test]
    fn rows_are_counted_in_groups_items_or_a_list() {
        assert_eq!(count_rows(br#"{"groups":[1,2],"total":{}}"#), 2);
        assert_eq!(count_rows(br#"{"items":[1],"next_cursor":null}"#), 1);
        assert_eq!(count_rows(b"[1,2,3]"), 3);
        assert_eq!(count_rows(b"nope"), 0);
    }

    #[test]
    fn the_search_queries_cover_each_kind() {
        let queries = search_queries(&Vocabulary::new(VOCABULARY));
        assert_eq!(queries.len(), 7);
        assert!(queries.iter().all(|(_, q)| !q.trim().is_empty()));
    }
}
