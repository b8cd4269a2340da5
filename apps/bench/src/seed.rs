//! Bulk data for the data benchmarks, written straight into the database (SQLite file or
//! PostgreSQL) after the migrations ran: multi-row `INSERT`s of generated text, or
//! `generate_series` / recursive CTEs. Deterministic (a fixed-seed generator), so two runs
//! seed the same rows.

use std::fmt::Write as _;
use std::path::PathBuf;

use chrono::{Days, NaiveDate, Utc};
use diesel::Connection as _;
use diesel::RunQueryDsl as _;
use diesel::connection::SimpleConnection as _;

use crate::BenchError;
use crate::server::Database;

/// Writes SQL to the benchmark's database.
pub enum Seeder {
    Sqlite(Option<diesel::SqliteConnection>),
    Postgres(tokio_postgres::Client),
}

fn sqlite_error(e: impl std::fmt::Display) -> BenchError {
    BenchError::Setup(format!("SQLite: {e}"))
}

impl Seeder {
    /// Opens `database` (already migrated) for bulk writes: on SQLite without fsync (a
    /// crash loses the benchmark's data, nothing else).
    pub async fn open(database: &Database) -> Result<Self, BenchError> {
        if let Some(path) = database.url.strip_prefix("sqlite://") {
            let path = PathBuf::from(path);
            let conn = tokio::task::spawn_blocking(move || {
                let mut conn = diesel::SqliteConnection::establish(&path.display().to_string())
                    .map_err(sqlite_error)?;
                conn.batch_execute(
                    "PRAGMA busy_timeout = 10000; PRAGMA journal_mode = WAL; PRAGMA synchronous = OFF;",
                )
                .map_err(sqlite_error)?;
                Ok::<_, BenchError>(conn)
            })
            .await
            .map_err(|e| BenchError::Setup(format!("the SQLite seeder failed: {e}")))??;
            return Ok(Self::Sqlite(Some(conn)));
        }
        let (client, connection) =
            tokio_postgres::connect(&database.url, tokio_postgres::NoTls).await?;
        tokio::spawn(async move {
            let _ = connection.await;
        });
        client.batch_execute("SET synchronous_commit = off").await?;
        Ok(Self::Postgres(client))
    }

    /// Whether this is PostgreSQL (its SQL differs here and there).
    #[must_use]
    pub const fn pg(&self) -> bool {
        matches!(self, Self::Postgres(_))
    }

    /// Runs `sql` (one or more statements).
    pub async fn run(&mut self, sql: String) -> Result<(), BenchError> {
        match self {
            Self::Sqlite(slot) => {
                let mut conn = slot
                    .take()
                    .ok_or_else(|| BenchError::Setup("the SQLite seeder is closed".to_owned()))?;
                let (conn, outcome) = tokio::task::spawn_blocking(move || {
                    let outcome = conn.batch_execute(&sql);
                    (conn, outcome)
                })
                .await
                .map_err(|e| BenchError::Setup(format!("the SQLite seeder failed: {e}")))?;
                *slot = Some(conn);
                outcome.map_err(sqlite_error)
            }
            Self::Postgres(client) => Ok(client.batch_execute(&sql).await?),
        }
    }

    /// SQLite: drops the triggers that keep `index` in step with its table, for a bulk
    /// load into that table; returns their SQL, to give to [`Seeder::resume_index`]. `None` on
    /// PostgreSQL (nothing suspended). The index must hold nothing of the rows to be loaded.
    pub async fn suspend_index(
        &mut self,
        index: &FtsIndex,
    ) -> Result<Option<Vec<String>>, BenchError> {
        let Self::Sqlite(slot) = self else {
            return Ok(None);
        };
        let mut conn = slot
            .take()
            .ok_or_else(|| BenchError::Setup("the SQLite seeder is closed".to_owned()))?;
        let names = index.triggers;
        let (conn, outcome) = tokio::task::spawn_blocking(move || {
            let outcome = (|| {
                let mut kept = Vec::new();
                for name in names {
                    let row: TriggerSql = diesel::sql_query(
                        "SELECT sql FROM sqlite_master WHERE type = 'trigger' AND name = ?",
                    )
                    .bind::<diesel::sql_types::Text, _>(*name)
                    .get_result(&mut conn)?;
                    conn.batch_execute(&format!("DROP TRIGGER {name}"))?;
                    kept.push(row.sql);
                }
                Ok::<_, diesel::result::Error>(kept)
            })();
            (conn, outcome)
        })
        .await
        .map_err(|e| BenchError::Setup(format!("the SQLite seeder failed: {e}")))?;
        *slot = Some(conn);
        outcome.map(Some).map_err(sqlite_error)
    }

    /// SQLite: fills `index` from its table in one statement (what its triggers would have
    /// written row by row) and creates the triggers `suspended` again, in one transaction.
    pub async fn resume_index(
        &mut self,
        index: &FtsIndex,
        suspended: Option<Vec<String>>,
    ) -> Result<(), BenchError> {
        let Some(triggers) = suspended else {
            return Ok(());
        };
        let mut sql = format!("BEGIN; {};", index.fill);
        for trigger in triggers {
            sql.push_str(&trigger);
            sql.push(';');
        }
        sql.push_str("COMMIT;");
        self.run(sql).await
    }

    /// `ANALYZE`: the planner's statistics after a bulk load, as a live database has them.
    /// On PostgreSQL `VACUUM ANALYZE`: a live database's tables have been vacuumed too (their
    /// visibility map set, so index-only scans skip the heap), and without it autovacuum
    /// starts on the freshly loaded tables while the measurement runs.
    pub async fn analyze(&mut self) -> Result<(), BenchError> {
        let sql = if self.pg() {
            "VACUUM ANALYZE"
        } else {
            "ANALYZE"
        };
        self.run(sql.to_owned()).await
    }
}

#[derive(diesel::QueryableByName)]
struct TriggerSql {
    #[diesel(sql_type = diesel::sql_types::Text)]
    sql: String,
}

/// A SQLite FTS5 index kept by triggers (the migrations'), and how to fill it in one
/// statement from its table: exactly the entries the triggers write for the rows a seed
/// inserts (a test below compares the two). Seeding a million rows through row triggers
/// takes minutes; the bulk fill a fraction of that.
pub struct FtsIndex {
    pub triggers: &'static [&'static str],
    pub fill: &'static str,
}

/// `messages_fts` (migration `2026-12-09-000200_search_at_scale`): the text and the owner's
/// hex of each message that is not `streaming`.
pub const MESSAGES_FTS: FtsIndex = FtsIndex {
    triggers: &["messages_fts_ai", "messages_fts_ad", "messages_fts_au"],
    fill: "INSERT INTO messages_fts (rowid, content, owner) \
           SELECT m.rowid, m.content, hex(c.owner_id) \
           FROM messages m JOIN conversations c ON c.id = m.conversation_id \
           WHERE m.status <> 'streaming' ORDER BY m.rowid",
};

/// `file_chunks_fts` (same migration): each chunk's text and its project's id without hyphens.
pub const CHUNKS_FTS: FtsIndex = FtsIndex {
    triggers: &["file_chunks_ai", "file_chunks_ad"],
    fill: "INSERT INTO file_chunks_fts (rowid, text, project) \
           SELECT id, text, replace(project_id, '-', '') FROM file_chunks ORDER BY id",
};

/// A small fixed-seed generator (splitmix64): the same rows in every run.
pub struct Rng(u64);

impl Rng {
    #[must_use]
    pub const fn new(seed: u64) -> Self {
        Self(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (`n` > 0).
    pub fn below(&mut self, n: usize) -> usize {
        usize::try_from(self.next_u64() % (n.max(1) as u64)).unwrap_or(0)
    }

    /// A uniform number in `[0, 1)`.
    #[allow(clippy::cast_precision_loss)]
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// The most frequent English words, most frequent first: the head of the vocabulary.
const COMMON: &[&str] = &[
    "the", "of", "and", "to", "a", "in", "is", "it", "you", "that", "he", "was", "for", "on",
    "are", "with", "as", "i", "his", "they", "be", "at", "one", "have", "this", "from", "or",
    "had", "by", "not", "word", "but", "what", "some", "we", "can", "out", "other", "were", "all",
    "there", "when", "up", "use", "your", "how", "said", "an", "each", "she", "which", "do",
    "their", "time", "if", "will", "way", "about", "many", "then", "them", "write", "would",
    "like", "so", "these", "her", "long", "make", "thing", "see", "him", "two", "has", "look",
    "more", "day", "could", "go", "come", "did", "number", "sound", "no", "most", "people", "my",
    "over", "know", "water", "than", "call", "first", "who", "may", "down", "side", "been", "now",
    "find", "any", "new", "work", "part", "take", "get", "place", "made", "live", "where", "after",
    "back", "little", "only", "round", "man", "year", "came", "show", "every", "good", "me",
    "give", "our", "under", "name", "very", "through", "just", "form", "sentence", "great",
    "think", "say", "help", "low", "line", "differ", "turn", "cause", "much", "mean", "before",
    "move", "right", "boy", "old", "too", "same", "tell", "does", "set", "three", "want", "air",
    "well", "also", "play", "small", "end", "put", "home", "read", "hand", "port", "large",
    "spell", "add", "even", "land", "here", "must", "big", "high", "such", "follow", "act", "why",
    "ask", "men", "change", "went", "light", "kind", "off", "need", "house", "picture", "try",
    "us", "again", "animal", "point", "mother", "world", "near", "build", "self", "earth",
    "father", "database", "server", "query", "index", "function", "error", "request", "model",
    "token", "project", "answer", "question", "example", "code", "value",
];

const SYLLABLES: &[&str] = &[
    "ka", "lo", "mi", "ne", "ru", "ta", "vo", "shi", "pe", "da", "gu", "fi", "zo", "be", "ri",
    "an", "el", "or", "um", "is",
];

/// Words of the generated texts: the common English words, then made-up words of three or
/// four syllables (a long tail of rare words). Word `k` is drawn with a probability about
/// proportional to 1 / (k + 1) (log-uniform ranks, Zipf's law of natural text).
pub struct Vocabulary {
    size: usize,
}

impl Vocabulary {
    #[must_use]
    pub const fn new(size: usize) -> Self {
        Self { size }
    }

    /// Word number `k` (0 is the most frequent).
    #[must_use]
    pub fn word(&self, k: usize) -> String {
        if let Some(w) = COMMON.get(k) {
            return (*w).to_owned();
        }
        let mut n = k - COMMON.len();
        let mut out = String::new();
        for _ in 0..3 {
            out.push_str(SYLLABLES[n % SYLLABLES.len()]);
            n /= SYLLABLES.len();
        }
        while n > 0 {
            out.push_str(SYLLABLES[n % SYLLABLES.len()]);
            n /= SYLLABLES.len();
        }
        out
    }

    /// A word's rank, drawn log-uniformly.
    #[allow(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        clippy::cast_precision_loss
    )]
    pub fn draw(&self, rng: &mut Rng) -> usize {
        let rank = (self.size as f64).powf(rng.unit()) as usize;
        rank.saturating_sub(1).min(self.size - 1)
    }

    /// A text of `words` words with sentence punctuation.
    pub fn text(&self, rng: &mut Rng, words: usize) -> String {
        let mut out = String::new();
        let mut sentence = 0;
        for i in 0..words {
            let word = self.word(self.draw(rng));
            if sentence == 0 {
                let mut chars = word.chars();
                if let Some(first) = chars.next() {
                    out.extend(first.to_uppercase());
                    out.push_str(chars.as_str());
                }
            } else {
                out.push_str(&word);
            }
            sentence += 1;
            if i + 1 == words || (sentence > 4 && rng.below(8) == 0) {
                out.push('.');
                sentence = 0;
            }
            if i + 1 < words {
                out.push(' ');
            }
        }
        out
    }
}

/// A UUID-shaped id (version 7 layout) made of a kind and a number: unique per (kind, n),
/// valid for PostgreSQL's `uuid` and SQLite's 36-character ids.
#[must_use]
pub fn id(kind: u32, n: u64) -> String {
    format!("{kind:08x}-0000-7000-8000-{n:012x}")
}

/// A timestamp as SQLite stores it (27 characters, microseconds), which PostgreSQL reads too.
#[must_use]
pub fn timestamp(at: chrono::DateTime<Utc>) -> String {
    at.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
}

/// `day` minus `n` days.
#[must_use]
pub fn days_before(day: NaiveDate, n: u64) -> NaiveDate {
    day.checked_sub_days(Days::new(n)).unwrap_or(day)
}

/// The ledger rows of the usage benchmark: `rows` calls of `users` users
/// (`<user_prefix>0…`) over `models` models and the `days` days that end with `last`.
#[must_use]
#[expect(
    clippy::too_many_arguments,
    reason = "the shape of the ledger, each named at the call"
)]
pub fn ledger_sql(
    pg: bool,
    rows: usize,
    users: usize,
    models: usize,
    days: usize,
    last: NaiveDate,
    user_prefix: &str,
    kind: u32,
) -> String {
    let first = days_before(last, days.saturating_sub(1) as u64);
    let (rows, users, models, days) = (rows.max(1), users.max(1), models.max(1), days.max(1));
    // The day is the row's number over the users (each user's calls spread over every day);
    // the model is mixed in so that the users do not each keep to one.
    if pg {
        format!(
            "INSERT INTO usage_entries (id, user_id, project_id, conversation_id, message_id, model, purpose, day, \
               input_tokens, cached_input_tokens, output_tokens, reasoning_tokens, estimated, cost_micros, created_at) \
             SELECT (lpad(to_hex({kind}::bigint), 8, '0') || '-0000-7000-8000-' || lpad(to_hex(i), 12, '0'))::uuid, \
               '{user_prefix}' || (i % {users}), NULL, NULL, NULL, \
               'model-' || ((i * 31 + i / {users}) % {models}), 'chat', \
               to_char(date '{first}' + ((i / {users}) % {days})::int, 'YYYY-MM-DD'), \
               500 + i % 1500, i % 300, 100 + i % 700, 0, false, 50 + i % 1000, \
               timestamptz '{first} 00:00:00+00' + make_interval(days => ((i / {users}) % {days})::int, secs => (i % 86400)::float8) \
             FROM generate_series(0::bigint, {last_i}) AS i",
            last_i = rows - 1,
        )
    } else {
        format!(
            "WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < {last_i}) \
             INSERT INTO usage_entries (id, user_id, project_id, conversation_id, message_id, model, purpose, day, \
               input_tokens, cached_input_tokens, output_tokens, reasoning_tokens, estimated, cost_micros, created_at) \
             SELECT printf('%08x-0000-7000-8000-%012x', {kind}, i), \
               '{user_prefix}' || (i % {users}), NULL, NULL, NULL, \
               'model-' || ((i * 31 + i / {users}) % {models}), 'chat', \
               date('{first}', '+' || ((i / {users}) % {days}) || ' days'), \
               500 + i % 1500, i % 300, 100 + i % 700, 0, 0, 50 + i % 1000, \
               strftime('%Y-%m-%dT%H:%M:%S.000000Z', '{first}', '+' || ((i / {users}) % {days}) || ' days', '+' || (i % 86400) || ' seconds') \
             FROM n",
            last_i = rows - 1,
        )
    }
}

/// Projects, conversations and messages of the search benchmark, in statements of at most
/// 500 rows, calling `sink` with each batch of statements (about `batch_rows` rows).
pub struct Conversations {
    pub users: usize,
    pub conversations_per_user: usize,
    pub messages: usize,
    /// User ids are `<user_prefix><n>`.
    pub user_prefix: String,
    /// The messages' times: spread over the `days` days up to now.
    pub days: u64,
}

/// Single-quoted SQL text (the generated texts have no quote; this is for safety).
fn quoted(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

impl Conversations {
    /// The id of user `u`'s project.
    #[must_use]
    pub fn project_id(u: usize) -> String {
        id(0x5e_a4c0, u as u64)
    }

    /// The projects and conversations (one statement each kind).
    #[must_use]
    pub fn owners_sql(&self, vocabulary: &Vocabulary, rng: &mut Rng) -> Vec<String> {
        let now =
            timestamp(Utc::now() - chrono::Duration::days(i64::try_from(self.days).unwrap_or(90)));
        let mut statements = Vec::new();
        for chunk in (0..self.users).collect::<Vec<_>>().chunks(500) {
            let mut sql = String::from(
                "INSERT INTO projects (id, owner_id, name, description, created_at, updated_at) VALUES ",
            );
            for (k, u) in chunk.iter().enumerate() {
                let sep = if k == 0 { "" } else { "," };
                let _ = write!(
                    sql,
                    "{sep}({}, {}, 'Search benchmark', NULL, {}, {})",
                    quoted(&Self::project_id(*u)),
                    quoted(&format!("{}{u}", self.user_prefix)),
                    quoted(&now),
                    quoted(&now),
                );
            }
            statements.push(sql);
        }
        let total = self.users * self.conversations_per_user;
        for chunk in (0..total).collect::<Vec<_>>().chunks(500) {
            let mut sql = String::from(
                "INSERT INTO conversations (id, project_id, owner_id, title, created_at, updated_at) VALUES ",
            );
            for (k, c) in chunk.iter().enumerate() {
                let u = c % self.users;
                let sep = if k == 0 { "" } else { "," };
                let words = 2 + rng.below(4);
                let title = vocabulary.text(rng, words);
                let _ = write!(
                    sql,
                    "{sep}({}, {}, {}, {}, {}, {})",
                    quoted(&self.conversation_id(*c)),
                    quoted(&Self::project_id(u)),
                    quoted(&format!("{}{u}", self.user_prefix)),
                    quoted(title.trim_end_matches('.')),
                    quoted(&now),
                    quoted(&now),
                );
            }
            statements.push(sql);
        }
        statements
    }

    fn conversation_id(&self, c: usize) -> String {
        id(0xc0_0000, c as u64)
    }

    /// The messages `from..to` (message `m` is in conversation `m % conversations`, so
    /// every conversation grows in step and each user has `messages / users` of them), as
    /// statements of 500 rows.
    #[must_use]
    pub fn messages_sql(
        &self,
        vocabulary: &Vocabulary,
        rng: &mut Rng,
        from: usize,
        to: usize,
    ) -> Vec<String> {
        let conversations = (self.users * self.conversations_per_user).max(1);
        let start = Utc::now() - chrono::Duration::days(i64::try_from(self.days).unwrap_or(90));
        #[allow(clippy::cast_precision_loss)]
        let step_us = (self.days as f64 * 86_400e6 / self.messages.max(1) as f64).max(1.0);
        let mut statements = Vec::new();
        let mut sql = String::new();
        for m in from..to {
            if (m - from).is_multiple_of(500) {
                if !sql.is_empty() {
                    statements.push(std::mem::take(&mut sql));
                }
                sql.push_str(
                    "INSERT INTO messages (id, conversation_id, role, content, status, created_at, touched_at) VALUES ",
                );
            } else {
                sql.push(',');
            }
            #[allow(clippy::cast_possible_truncation, clippy::cast_precision_loss)]
            let at = timestamp(start + chrono::Duration::microseconds((m as f64 * step_us) as i64));
            let role = if (m / conversations).is_multiple_of(2) {
                "user"
            } else {
                "assistant"
            };
            let words = if role == "user" {
                4 + rng.below(20)
            } else {
                10 + rng.below(50)
            };
            let _ = write!(
                sql,
                "({}, {}, '{role}', {}, 'complete', {}, {})",
                quoted(&id(0x3e55_a9e0, m as u64)),
                quoted(&self.conversation_id(m % conversations)),
                quoted(&vocabulary.text(rng, words)),
                quoted(&at),
                quoted(&at),
            );
        }
        if !sql.is_empty() {
            statements.push(sql);
        }
        statements
    }
}

/// Projects, files and chunks of the knowledge benchmark: `chunks` chunks of about
/// `chunk_words` words, in files of `chunks_per_file`, spread over `projects` projects of
/// one owner. Chunk ids are their numbers + 1.
pub struct Knowledge {
    pub owner: String,
    pub projects: usize,
    pub chunks: usize,
    pub chunks_per_file: usize,
    pub chunk_words: usize,
}

impl Knowledge {
    /// The id of project `p`.
    #[must_use]
    pub fn project_id(p: usize) -> String {
        id(0x6b_0000, p as u64)
    }

    /// The id of file `f`.
    #[must_use]
    pub fn file_id(f: usize) -> String {
        id(0x6b_f11e, f as u64)
    }

    /// How many files.
    #[must_use]
    pub fn files(&self) -> usize {
        self.chunks.div_ceil(self.chunks_per_file.max(1))
    }

    /// The projects and files (marked `ready`), as statements of 500 rows.
    #[must_use]
    pub fn files_sql(&self, extra_files: usize) -> Vec<String> {
        let now = timestamp(Utc::now());
        let mut statements = Vec::new();
        let mut sql = String::from(
            "INSERT INTO projects (id, owner_id, name, description, created_at, updated_at) VALUES ",
        );
        for p in 0..self.projects.max(1) {
            let sep = if p == 0 { "" } else { "," };
            let _ = write!(
                sql,
                "{sep}({}, {}, 'Knowledge benchmark', NULL, {}, {})",
                quoted(&Self::project_id(p)),
                quoted(&self.owner),
                quoted(&now),
                quoted(&now)
            );
        }
        statements.push(sql);
        let files = self.files() + extra_files;
        for chunk in (0..files).collect::<Vec<_>>().chunks(500) {
            let mut sql = String::from(
                "INSERT INTO file_metadata (id, project_id, owner_id, filename, content_type, size_bytes, sha256, storage_key, created_at, text_status) VALUES ",
            );
            for (k, f) in chunk.iter().enumerate() {
                let sep = if k == 0 { "" } else { "," };
                let _ = write!(
                    sql,
                    "{sep}({}, {}, {}, 'doc-{f}.txt', 'text/plain', 0, '', 'bench/{f}', {}, 'ready')",
                    quoted(&Self::file_id(*f)),
                    quoted(&Self::project_id(f % self.projects.max(1))),
                    quoted(&self.owner),
                    quoted(&now),
                );
            }
            statements.push(sql);
        }
        statements
    }

    /// The chunks `from..to`, as statements of 200 rows (chunks are long).
    #[must_use]
    pub fn chunks_sql(
        &self,
        vocabulary: &Vocabulary,
        rng: &mut Rng,
        from: usize,
        to: usize,
    ) -> Vec<String> {
        let mut statements = Vec::new();
        let mut sql = String::new();
        let per_file = self.chunks_per_file.max(1);
        for c in from..to {
            if (c - from).is_multiple_of(200) {
                if !sql.is_empty() {
                    statements.push(std::mem::take(&mut sql));
                }
                sql.push_str(
                    "INSERT INTO file_chunks (file_id, project_id, ordinal, text) VALUES ",
                );
            } else {
                sql.push(',');
            }
            let f = c / per_file;
            let _ = write!(
                sql,
                "({}, {}, {}, {})",
                quoted(&Self::file_id(f)),
                quoted(&Self::project_id(f % self.projects.max(1))),
                c % per_file,
                quoted(&vocabulary.text(rng, self.chunk_words)),
            );
        }
        if !sql.is_empty() {
            statements.push(sql);
        }
        statements
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone as _;

    #[test]
    fn words_are_distinct_and_common_ones_come_first() {
        let v = Vocabulary::new(20_000);
        assert_eq!(v.word(0), "the");
        let words: std::collections::HashSet<String> = (0..20_000).map(|k| v.word(k)).collect();
        assert_eq!(words.len(), 20_000);
        let mut rng = Rng::new(1);
        let draws: Vec<usize> = (0..10_000).map(|_| v.draw(&mut rng)).collect();
        let the = draws.iter().filter(|k| **k == 0).count();
        let rare = draws.iter().filter(|k| **k > 10_000).count();
        assert!(the > 500, "{the}");
        assert!(rare < 1500, "{rare}");
        assert!(draws.iter().all(|k| *k < 20_000));
    }

    #[test]
    fn ids_look_like_uuids_and_times_like_sqlites() {
        assert_eq!(id(1, 2), "00000001-0000-7000-8000-000000000002");
        assert_eq!(id(1, 2).len(), 36);
        let at = Utc.from_utc_datetime(
            &NaiveDate::from_ymd_opt(2026, 12, 8)
                .unwrap_or_default()
                .and_time(chrono::NaiveTime::MIN),
        );
        assert_eq!(timestamp(at), "2026-12-08T00:00:00.000000Z");
    }

    /// A seeded SQLite database in `dir`: messages and chunks loaded with the FTS triggers
    /// (`bulk` false) or with them suspended and the indexes filled after (`bulk` true), then
    /// a few writes through the triggers again.
    async fn seeded(dir: &std::path::Path, name: &str, bulk: bool) -> Database {
        let database = Database::sqlite(dir, name);
        let options = confab_sql::PoolOptions {
            max_size: 1,
            threads: 1,
            connect_timeout: std::time::Duration::from_secs(10),
            wait_timeout: std::time::Duration::from_secs(10),
            sqlite_cache_mib: confab_sql::DEFAULT_SQLITE_CACHE_MIB,
        };
        drop(confab_sql::connect(&database.url, options).await.unwrap());
        let mut seeder = Seeder::open(&database).await.unwrap();
        let (messages, chunks) = if bulk {
            (
                seeder.suspend_index(&MESSAGES_FTS).await.unwrap(),
                seeder.suspend_index(&CHUNKS_FTS).await.unwrap(),
            )
        } else {
            (None, None)
        };
        let vocabulary = Vocabulary::new(2_000);
        let mut rng = Rng::new(3);
        let shape = Conversations {
            users: 3,
            conversations_per_user: 2,
            messages: 300,
            user_prefix: "dev:seed-".to_owned(),
            days: 10,
        };
        let knowledge = Knowledge {
            owner: "dev:seed-k".to_owned(),
            projects: 2,
            chunks: 30,
            chunks_per_file: 4,
            chunk_words: 60,
        };
        let mut statements = shape.owners_sql(&vocabulary, &mut rng);
        statements.extend(shape.messages_sql(&vocabulary, &mut rng, 0, 300));
        statements.extend(knowledge.files_sql(0));
        statements.extend(knowledge.chunks_sql(&vocabulary, &mut rng, 0, 30));
        for sql in statements {
            seeder.run(sql).await.unwrap();
        }
        if bulk {
            assert!(messages.is_some() && chunks.is_some());
            assert!(
                entries(&database, "messages_fts").is_empty(),
                "nothing indexed yet"
            );
        }
        seeder.resume_index(&MESSAGES_FTS, messages).await.unwrap();
        seeder.resume_index(&CHUNKS_FTS, chunks).await.unwrap();
        // The triggers are back: later writes reach the indexes.
        seeder
            .run(
                "UPDATE messages SET content = 'zebra crossing' WHERE rowid = 5; \
                 UPDATE messages SET status = 'streaming' WHERE rowid = 7; \
                 DELETE FROM messages WHERE rowid = 9; \
                 DELETE FROM file_chunks WHERE id = 3;"
                    .to_owned(),
            )
            .await
            .unwrap();
        database
    }

    /// Every entry of an FTS5 index: (term, rowid, column, offset), in order.
    fn entries(database: &Database, table: &str) -> Vec<(String, i64, String, i64)> {
        #[derive(diesel::QueryableByName, Debug, PartialEq)]
        struct Entry {
            #[diesel(sql_type = diesel::sql_types::Text)]
            term: String,
            #[diesel(sql_type = diesel::sql_types::BigInt)]
            doc: i64,
            #[diesel(sql_type = diesel::sql_types::Text)]
            col: String,
            #[diesel(sql_type = diesel::sql_types::BigInt)]
            offset: i64,
        }
        let path = database.url.trim_start_matches("sqlite://");
        let mut conn = diesel::SqliteConnection::establish(path).unwrap();
        conn.batch_execute(&format!(
            "CREATE VIRTUAL TABLE temp.entries USING fts5vocab(main, {table}, instance)"
        ))
        .unwrap();
        let rows: Vec<Entry> = diesel::sql_query(
            "SELECT term, doc, col, \"offset\" FROM temp.entries ORDER BY 1, 2, 3, 4",
        )
        .load(&mut conn)
        .unwrap();
        rows.into_iter()
            .map(|e| (e.term, e.doc, e.col, e.offset))
            .collect()
    }

    fn triggers(database: &Database) -> Vec<(String, String)> {
        #[derive(diesel::QueryableByName)]
        struct Trigger {
            #[diesel(sql_type = diesel::sql_types::Text)]
            name: String,
            #[diesel(sql_type = diesel::sql_types::Text)]
            sql: String,
        }
        let path = database.url.trim_start_matches("sqlite://");
        let mut conn = diesel::SqliteConnection::establish(path).unwrap();
        let rows: Vec<Trigger> = diesel::sql_query(
            "SELECT name, sql FROM sqlite_master WHERE type = 'trigger' ORDER BY name",
        )
        .load(&mut conn)
        .unwrap();
        rows.into_iter().map(|t| (t.name, t.sql)).collect()
    }

    #[tokio::test]
    async fn a_bulk_filled_index_is_the_one_the_triggers_write() {
        let dir = tempfile::tempdir().unwrap();
        let by_triggers = seeded(dir.path(), "triggers.db", false).await;
        let bulk = seeded(dir.path(), "bulk.db", true).await;
        for table in ["messages_fts", "file_chunks_fts"] {
            let expected = entries(&by_triggers, table);
            assert!(expected.len() > 1_000, "{table}: {}", expected.len());
            assert_eq!(entries(&bulk, table), expected, "{table}");
        }
        let zebra = entries(&bulk, "messages_fts");
        assert!(zebra.iter().any(|e| e.0 == "zebra" && e.1 == 5));
        assert!(!zebra.iter().any(|e| e.1 == 7 || e.1 == 9));
        assert!(!entries(&bulk, "file_chunks_fts").iter().any(|e| e.1 == 3));
        assert_eq!(triggers(&bulk), triggers(&by_triggers));
    }

    #[test]
    fn texts_have_the_words_asked_for() {
        let v = Vocabulary::new(5_000);
        let mut rng = Rng::new(7);
        let text = v.text(&mut rng, 12);
        assert_eq!(text.split(' ').count(), 12);
        assert!(text.ends_with('.'));
    }
}
