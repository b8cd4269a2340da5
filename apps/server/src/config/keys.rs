//! The table of every setting: its variable, kind, default, allowed values, whether it is a
//! secret, and what it is for. Values are checked against it, `confab config` prints it, and
//! the README's configuration table is generated from it ([`markdown_table`]; a test fails
//! when the two differ).

use std::net::SocketAddr;

use self::DefaultValue::{Derived, Is, Unset};
use self::Kind::{Addr, Choice, Flag, List, Text, Url};
use crate::redact::redact_url;

/// What a key holds, and which values it allows.
#[derive(Clone, Copy, Debug)]
pub enum Kind {
    /// A whole number from `min` to `max` (inclusive), counted in `unit`.
    Int {
        min: u64,
        max: u64,
        unit: &'static str,
    },
    /// 1/0, true/false, yes/no, on/off.
    Flag,
    /// One of these words, in any case.
    Choice(&'static [&'static str]),
    /// An IP address and port.
    Addr,
    Text,
    /// Text that may hold a password: printed only through [`redact_url`].
    Url,
    /// Comma-separated text (a TOML array too).
    List,
}

/// A key's default.
#[derive(Clone, Copy, Debug)]
pub enum DefaultValue {
    /// This value, checked like a given one.
    Is(&'static str),
    /// Not set.
    Unset,
    /// Worked out at start (from other settings, or the machine); the text says how.
    Derived(&'static str),
}

/// One setting.
#[derive(Clone, Copy, Debug)]
pub struct Key {
    pub name: &'static str,
    pub kind: Kind,
    pub default: DefaultValue,
    /// Never printed: `confab config` says only whether it is set, errors never repeat it.
    pub secret: bool,
    pub help: &'static str,
}

impl Kind {
    /// The allowed values, for people (error messages, the README).
    #[must_use]
    pub fn allowed(&self) -> String {
        match self {
            Self::Int { min, max, unit } if *unit == " bytes" => {
                format!("{} to {}", in_bytes(*min), in_bytes(*max))
            }
            Self::Int { min, max, unit } => format!("{min} to {max}{unit}"),
            Self::Flag => "0 or 1 (or true/false, yes/no, on/off)".to_owned(),
            Self::Choice(words) => words
                .iter()
                .map(|w| format!("`{w}`"))
                .collect::<Vec<_>>()
                .join(", "),
            Self::Addr => "IP:port".to_owned(),
            Self::Text => "text".to_owned(),
            Self::Url => "URL".to_owned(),
            Self::List => "comma-separated list".to_owned(),
        }
    }

    /// Checks `raw` and returns it in its canonical form (a number, `true`, a choice's word),
    /// or why it is refused (`is out of range: expected 1 to 1000`).
    pub(super) fn check(&self, raw: &str) -> Result<String, String> {
        let refuse = |what: &str| Err(format!("is {what}: expected {}", self.allowed()));
        match self {
            Self::Int { min, max, .. } => match raw.parse::<u64>() {
                Ok(n) if (*min..=*max).contains(&n) => Ok(n.to_string()),
                Ok(_) => refuse("out of range"),
                Err(_) => refuse("not a whole number"),
            },
            Self::Flag => match raw.to_ascii_lowercase().as_str() {
                "1" | "true" | "yes" | "on" => Ok("true".to_owned()),
                "0" | "false" | "no" | "off" => Ok("false".to_owned()),
                _ => refuse("not a flag"),
            },
            Self::Choice(words) => match words.iter().find(|w| w.eq_ignore_ascii_case(raw)) {
                Some(word) => Ok((*word).to_owned()),
                None => refuse("not allowed"),
            },
            Self::Addr => match raw.parse::<SocketAddr>() {
                Ok(addr) => Ok(addr.to_string()),
                Err(_) => refuse("not an address like 127.0.0.1:8000"),
            },
            Self::Text | Self::Url | Self::List => Ok(raw.to_owned()),
        }
    }
}

/// `1073741824` as `1 GiB`; a number that is no whole count of KiB, MiB… as it is.
fn in_bytes(n: u64) -> String {
    let units = [
        (1 << 40, "TiB"),
        (1 << 30, "GiB"),
        (1 << 20, "MiB"),
        (1 << 10, "KiB"),
    ];
    match units
        .iter()
        .find(|(size, _)| n >= *size && n.is_multiple_of(*size))
    {
        Some((size, unit)) => format!("{} {unit}", n / size),
        None if n == 1 => "1 byte".to_owned(),
        None => format!("{n} bytes"),
    }
}

impl Key {
    /// A value of this key as it may be printed.
    pub(super) fn printable(&self, value: &str) -> String {
        match self.kind {
            _ if self.secret => "******** (set)".to_owned(),
            Kind::Url => redact_url(value),
            _ => value.replace('\n', "\\n"),
        }
    }
}

/// The README's configuration table, generated from [`KEYS`].
#[must_use]
pub fn markdown_table() -> String {
    let mut table = String::from("| variable | default | allowed | meaning |\n|---|---|---|---|\n");
    for key in KEYS {
        let default = match key.default {
            DefaultValue::Is(value) => match (key.kind, value.parse()) {
                (Kind::Int { unit: " bytes", .. }, Ok(n)) => format!("`{value}` ({})", in_bytes(n)),
                _ => format!("`{value}`"),
            },
            DefaultValue::Unset => "—".to_owned(),
            DefaultValue::Derived(how) => how.to_owned(),
        };
        let secret = if key.secret {
            "; secret, never printed"
        } else {
            ""
        };
        table.push_str(&format!(
            "| `{}` | {default} | {} | {}{secret} |\n",
            key.name,
            key.kind.allowed(),
            key.help
        ));
    }
    table
}

const fn int(min: u64, max: u64) -> Kind {
    Kind::Int { min, max, unit: "" }
}
const fn secs(min: u64, max: u64) -> Kind {
    Kind::Int {
        min,
        max,
        unit: " s",
    }
}
const fn millis(min: u64, max: u64) -> Kind {
    Kind::Int {
        min,
        max,
        unit: " ms",
    }
}
const fn bytes(min: u64, max: u64) -> Kind {
    Kind::Int {
        min,
        max,
        unit: " bytes",
    }
}
const PUBLIC: bool = false;
const SECRET: bool = true;

/// Declares each key as a constant and [`KEYS`] as all of them, in this order.
macro_rules! keys {
    ($($id:ident: $name:literal, $kind:expr, $default:expr, $secret:ident, $help:literal;)*) => {
        $(pub const $id: Key = Key {
            name: $name, kind: $kind, default: $default, secret: $secret, help: $help,
        };)*
        /// Every setting, in the order `confab config` and the README list them.
        pub const KEYS: &[Key] = &[$($id),*];
    };
}

keys! {
    BIND: "CONFAB_BIND", Addr, Is("127.0.0.1:8000"), PUBLIC, "listen address";
    DATABASE_URL: "DATABASE_URL", Url, Is("sqlite://data/confab.db"), PUBLIC,
        "`sqlite://relative.db`, `sqlite:///abs.db`, `sqlite::memory:`, `postgres://…`, `memory:`; a password in it (`user:password@` or `?password=`) is never printed";
    DB_POOL_SIZE: "CONFAB_DB_POOL_SIZE", int(1, 1_000), Is("16"), PUBLIC,
        "database connections (on PostgreSQL each worker thread has its own share, at least one: 16 with 2 workers is 8 each)";
    DB_CONNECT_TIMEOUT_SECS: "CONFAB_DB_CONNECT_TIMEOUT_SECS", secs(1, 600), Is("5"), PUBLIC,
        "longest wait to open a database connection";
    DB_WAIT_TIMEOUT_SECS: "CONFAB_DB_WAIT_TIMEOUT_SECS", secs(1, 600), Is("5"), PUBLIC,
        "longest wait of a request for a free connection (then 503)";
    SQLITE_CACHE_MB: "CONFAB_SQLITE_CACHE_MB", int(1, 1 << 16), Is("64"), PUBLIC,
        "MiB of SQLite's page cache in each database connection (SQLite only): pages read stay in the process instead of being read again from the file. Memory grows to at most this times the connections in use (`CONFAB_DB_POOL_SIZE` and the writer); connections are reused most recent first, so few of them grow";
    PAGE_CACHE_MB: "CONFAB_PAGE_CACHE_MB", int(0, 1 << 20), Is("64"), PUBLIC,
        "MiB of pages of messages (`GET /api/conversations/{id}/messages`, the JSON as answered) kept in the process, each served again only after the conversation's revision (one indexed read, also the ownership check) shows it unchanged, so replicas sharing a database never serve a stale page; 0: none";
    FILES_DIR: "CONFAB_FILES_DIR", Text, Is("data/files"), PUBLIC, "where uploaded bytes live";
    FILES_URL: "CONFAB_FILES_URL", Url, Unset, PUBLIC,
        "instead of `CONFAB_FILES_DIR`: `s3://bucket/prefix` (credentials from the standard `AWS_*` variables, `AWS_ENDPOINT` for S3-compatible servers) or `file:///dir`";
    REDIS_URL: "CONFAB_REDIS_URL", Url, Unset, SECRET,
        "`redis://host:6379/0`: replies' live events and cancels go through Redis, so a follower (`GET /api/conversations/{id}/stream`) or a cancel reaches a reply on any replica, and the per-user send limit holds across replicas (unset: this process only)";
    REDIS_PREFIX: "CONFAB_REDIS_PREFIX", Text, Is("confab:live:"), PUBLIC,
        "every Redis key and channel begins with it (several deployments may share one Redis)";
    LIVE_RETENTION_SECS: "CONFAB_LIVE_RETENTION_SECS", secs(1, 86_400), Is("60"), PUBLIC,
        "how long a finished reply's events can still be followed";
    AUTH: "CONFAB_AUTH", Choice(&["dev", "clerk", "oidc", "local"]), Derived("`clerk` if a Clerk key is set, else `dev`"), PUBLIC,
        "how users sign in";
    DEV_AUTH_SECRET: "CONFAB_DEV_AUTH_SECRET", Text, Derived("random per start"), SECRET,
        "signs dev tokens (a fixed secret ≥ 32 bytes keeps sessions across restarts)";
    DEV_TOKEN_TTL_SECS: "CONFAB_DEV_TOKEN_TTL_SECS", secs(1, 31_622_400), Is("43200"), PUBLIC,
        "lifetime of a dev token";
    DEV_AUTH_ALLOW_REMOTE: "CONFAB_DEV_AUTH_ALLOW_REMOTE", Flag, Is("0"), PUBLIC,
        "dev sign-in refuses a non-loopback `CONFAB_BIND` unless this is 1";
    SIGNUP: "CONFAB_SIGNUP", Choice(&["open", "invite", "closed"]), Is("invite"), PUBLIC,
        "who may create a built-in account (`CONFAB_AUTH=local`); the first account always may, and becomes the administrator";
    LOCAL_AUTH_SECRET: "CONFAB_LOCAL_AUTH_SECRET", Text, Derived("random per start"), SECRET,
        "signs built-in accounts' access tokens (a fixed secret ≥ 32 bytes keeps sessions across restarts; required with `CONFAB_REDIS_URL`, the same on every replica)";
    PASSWORD_PEPPER: "CONFAB_PASSWORD_PEPPER", Text, Unset, SECRET,
        "a secret (≥ 32 bytes, outside the database) every new built-in account's password hash is keyed with (Argon2's secret); hashes made before it was set still verify, and those made with it need it";
    SESSION_TTL_SECS: "CONFAB_SESSION_TTL_SECS", secs(60, 2_592_000), Is("43200"), PUBLIC,
        "absolute lifetime of a built-in account's session (revocable at any time; renewing does not extend it)";
    ACCESS_TOKEN_TTL_SECS: "CONFAB_ACCESS_TOKEN_TTL_SECS", secs(1, 86_400), Is("900"), PUBLIC,
        "lifetime of a built-in account's access token; the client renews it with its rotated refresh token";
    SESSION_IDLE_SECS: "CONFAB_SESSION_IDLE_SECS", secs(60, 2_592_000), Is("1800"), PUBLIC,
        "a built-in account's session not renewed for this long ends (NIST SP 800-63B AAL2: 30 min)";
    CLERK_PUBLISHABLE_KEY: "CLERK_PUBLISHABLE_KEY", Text, Unset, PUBLIC,
        "`pk_…`; the issuer and JWKS URL are derived from it";
    CLERK_JWKS_URL: "CLERK_JWKS_URL", Url, Derived("derived"), PUBLIC, "explicit JWKS URL";
    CLERK_ISSUER: "CLERK_ISSUER", Url, Derived("derived"), PUBLIC, "explicit issuer";
    CLERK_JWT_KEY: "CLERK_JWT_KEY", Text, Unset, PUBLIC,
        "a PEM public key, for verification with no network";
    CLERK_AUTHORIZED_PARTIES: "CLERK_AUTHORIZED_PARTIES", List, Unset, PUBLIC,
        "allowed `azp` origins";
    OIDC_ISSUER: "OIDC_ISSUER", Url, Unset, PUBLIC, "any OpenID Connect issuer (`CONFAB_AUTH=oidc`)";
    OIDC_JWKS_URL: "OIDC_JWKS_URL", Url, Derived("discovered"), PUBLIC, "explicit JWKS URL";
    OIDC_AUDIENCE: "OIDC_AUDIENCE", Text, Unset, PUBLIC, "the `aud` tokens must have";
    OIDC_CLIENT_ID: "OIDC_CLIENT_ID", Text, Unset, PUBLIC,
        "the client registered at the issuer: with it, the browser client signs in there (authorization code flow with PKCE; `confab` is the backend-for-frontend, see docs/security.md)";
    OIDC_CLIENT_SECRET: "OIDC_CLIENT_SECRET", Text, Unset, SECRET,
        "the client's secret (`confab` is a confidential client)";
    OIDC_SCOPES: "OIDC_SCOPES", Text, Is("openid profile email"), PUBLIC,
        "the scopes asked for at sign-in (must hold `openid`)";
    OIDC_DISPLAY_NAME: "OIDC_DISPLAY_NAME", Text, Is("your identity provider"), PUBLIC,
        "the provider's name on the sign-in page (\"Sign in with …\")";
    OIDC_REDIRECT_URL: "OIDC_REDIRECT_URL", Url, Derived("`/auth/oidc/callback` on the request's host"), PUBLIC,
        "the callback URL registered at the issuer (set it behind a proxy that changes the host or scheme)";
    OIDC_SESSION_SECRET: "CONFAB_OIDC_SESSION_SECRET", Text, Derived("random per start"), SECRET,
        "signs OIDC browser sessions and their bearer tokens (a fixed secret ≥ 32 bytes keeps sessions across restarts; the same on every replica)";
    LLM: "CONFAB_LLM", Choice(&["echo", "openai", "openai-compatible"]), Derived("`openai` if `OPENAI_API_KEY` is set, else `echo`"), PUBLIC,
        "which model answers";
    ECHO_PACE_MS: "CONFAB_ECHO_PACE_MS", millis(0, 60_000), Is("30"), PUBLIC,
        "the demo model's pause between words";
    OPENAI_API_KEY: "OPENAI_API_KEY", Text, Unset, SECRET,
        "the provider's key (`openai-compatible` servers that need none accept any)";
    OPENAI_BASE_URL: "OPENAI_BASE_URL", Url, Is("https://api.openai.com/v1"), PUBLIC,
        "the provider's API root";
    MODEL: "CONFAB_MODEL", Text, Derived("`gpt-4.1-mini` (`echo-1` for `echo`)"), PUBLIC,
        "the model replies are asked of (the default)";
    TITLE_MODEL: "CONFAB_TITLE_MODEL", Text, Derived("`CONFAB_MODEL`"), PUBLIC,
        "writes an untitled conversation's title (at most 60 characters) after its first reply, off the reply's path (the `echo` model takes the first words of the first message)";
    MODELS: "CONFAB_MODELS", List, Derived("`CONFAB_MODEL`"), PUBLIC,
        "the models a conversation may choose (`PATCH /api/conversations/{id}` `model`); the default is always among them";
    LLM_CONNECT_TIMEOUT_SECS: "CONFAB_LLM_CONNECT_TIMEOUT_SECS", secs(1, 600), Is("10"), PUBLIC,
        "longest wait to connect to the provider";
    LLM_FIRST_BYTE_TIMEOUT_SECS: "CONFAB_LLM_FIRST_BYTE_TIMEOUT_SECS", secs(1, 3_600), Is("60"), PUBLIC,
        "longest wait for the provider's answer to begin";
    LLM_IDLE_TIMEOUT_SECS: "CONFAB_LLM_IDLE_TIMEOUT_SECS", secs(1, 3_600), Is("60"), PUBLIC,
        "longest silence within a streamed answer";
    LLM_MAX_RETRIES: "CONFAB_LLM_MAX_RETRIES", int(0, 10), Is("2"), PUBLIC,
        "retries of a request that failed before any text";
    LLM_VISION: "CONFAB_LLM_VISION", Flag, Derived("on for `CONFAB_LLM=openai`, off for `openai-compatible`"), PUBLIC,
        "1: the model sees images: attached PNG, JPEG, WebP and GIF files go to Chat Completions servers as `image_url` parts (else they are named only); the Responses API always sends them";
    LLM_HTTP2_PRIOR_KNOWLEDGE: "CONFAB_LLM_HTTP2_PRIOR_KNOWLEDGE", Flag, Is("0"), PUBLIC,
        "1: speak HTTP/2 from the first byte (h2c) to an `http://` `OPENAI_BASE_URL` that supports it, so all replies share one connection instead of one each; ignored for `https://`, where HTTP/2 is negotiated anyway";
    LLM_TIMEOUT_SECS: "CONFAB_LLM_TIMEOUT_SECS", secs(1, 86_400), Is("300"), PUBLIC,
        "bounds one whole generation";
    MAX_OUTPUT_TOKENS: "CONFAB_MAX_OUTPUT_TOKENS", int(1, 1_000_000), Unset, PUBLIC,
        "the reply's limit (unset: the provider's)";
    CONTEXT_TOKENS: "CONFAB_CONTEXT_TOKENS", int(100, 10_000_000), Is("16000"), PUBLIC,
        "the context budget history is fitted into";
    KNOWLEDGE_CHUNKS: "CONFAB_KNOWLEDGE_CHUNKS", int(0, 100), Is("5"), PUBLIC,
        "at most this many passages of a project's files are given to the model as numbered sources with each message (project knowledge, when the project's `knowledge` setting is on); 0 turns it off for every project";
    SENDS_PER_MINUTE: "CONFAB_SENDS_PER_MINUTE", int(1, 1_000_000), Is("20"), PUBLIC,
        "per-user message limit (429 with `Retry-After`)";
    QUOTA_TOKENS_PER_DAY: "CONFAB_QUOTA_TOKENS_PER_DAY", int(0, 1 << 53), Unset, PUBLIC,
        "every user's tokens (input + output) per UTC day; a send over it is refused (429 `quota_exceeded`); unset: unlimited; an administrator may set a user's own";
    QUOTA_TOKENS_PER_MONTH: "CONFAB_QUOTA_TOKENS_PER_MONTH", int(0, 1 << 53), Unset, PUBLIC,
        "every user's tokens (input + output) per UTC calendar month; unset: unlimited";
    ADMINS: "CONFAB_ADMINS", List, Unset, PUBLIC,
        "token subjects (user ids) of the administrators (`/api/admin/*`: usage of every user, quotas); built-in accounts marked admin are administrators too";
    PRICES: "CONFAB_PRICES", Text, Unset, PUBLIC,
        "a TOML file of prices per million tokens by model (`[\"gpt-4.1-mini\"] input = 0.4, cached_input = 0.1, output = 1.6`): each call's cost is computed when it is recorded";
    MAX_UPLOAD_BYTES: "CONFAB_MAX_UPLOAD_BYTES", bytes(1, 1 << 40), Is("26214400"), PUBLIC,
        "largest upload (413)";
    IMPORT_MAX_BYTES: "CONFAB_IMPORT_MAX_BYTES", bytes(1, 1 << 40), Is("524288000"), PUBLIC,
        "largest file `POST /api/projects/{id}/import` reads (413): a Confab export or ChatGPT's `conversations.json`, parsed as a stream from a temporary file";
    MAX_JSON_BYTES: "CONFAB_MAX_JSON_BYTES", bytes(1, 1 << 30), Is("1048576"), PUBLIC,
        "largest JSON body (413)";
    REPLY_LEASE_SECS: "CONFAB_REPLY_LEASE_SECS", secs(3, 300), Is("6"), PUBLIC,
        "a generating process renews its replies' lease on a timer (every 2 s at most, saving the text so far); a sweep every 2 s marks a reply whose lease lapsed (its process died) failed (`interrupted`): within lease + 2 s of the death";
    SHUTDOWN_GRACE_SECS: "CONFAB_SHUTDOWN_GRACE_SECS", secs(0, 3_600), Is("8"), PUBLIC,
        "on SIGTERM, replies in flight get this long to finish; the rest are stored failed (`interrupted`) with their text before exit (8 s fits `docker stop`'s 10 s)";
    LOG_FORMAT: "CONFAB_LOG_FORMAT", Choice(&["human", "json"]), Is("human"), PUBLIC,
        "`json` for JSON lines (levels: `RUST_LOG`, default `info`)";
    TRUSTED_PROXIES: "CONFAB_TRUSTED_PROXIES", List, Unset, PUBLIC,
        "addresses or CIDR blocks of the reverse proxies in front of Confab (`10.0.0.5`, `172.30.0.0/24`, `::1`), comma-separated: for a request from one of them, the client's address is the rightmost address of `X-Forwarded-For` that is not a trusted proxy (sign-in throttling per address, logs); unset: the TCP peer's address, and `X-Forwarded-For` is ignored, so a client cannot choose its own address";
    WORKERS: "CONFAB_WORKERS", int(1, 1_024), Derived("number of cores"), PUBLIC,
        "HTTP worker threads";
}
