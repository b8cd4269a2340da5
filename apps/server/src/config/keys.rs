//! The table of every setting. The README's configuration table is generated from it
//! (`config::markdown_table`); a test fails when they differ.

use super::DefaultValue::{Derived, Is, Unset};
use super::Key;
use super::Kind::{self, Addr, Choice, Flag, List, Text, Url};

const fn int(min: u64, max: u64) -> Kind {
    Kind::Int { min, max, unit: "" }
}
const fn secs(min: u64, max: u64) -> Kind {
    Kind::Int { min, max, unit: " s" }
}
const fn millis(min: u64, max: u64) -> Kind {
    Kind::Int { min, max, unit: " ms" }
}
const fn bytes(min: u64, max: u64) -> Kind {
    Kind::Int { min, max, unit: " bytes" }
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
    FILES_DIR: "CONFAB_FILES_DIR", Text, Is("data/files"), PUBLIC, "where uploaded bytes live";
    FILES_URL: "CONFAB_FILES_URL", Url, Unset, PUBLIC,
        "instead of `CONFAB_FILES_DIR`: `s3://bucket/prefix` (credentials from the standard `AWS_*` variables, `AWS_ENDPOINT` for S3-compatible servers) or `file:///dir`";
    AUTH: "CONFAB_AUTH", Choice(&["dev", "clerk", "oidc"]), Derived("`clerk` if a Clerk key is set, else `dev`"), PUBLIC,
        "how users sign in";
    DEV_AUTH_SECRET: "CONFAB_DEV_AUTH_SECRET", Text, Derived("random per start"), SECRET,
        "signs dev tokens (a fixed secret ≥ 32 bytes keeps sessions across restarts)";
    DEV_TOKEN_TTL_SECS: "CONFAB_DEV_TOKEN_TTL_SECS", secs(1, 31_622_400), Is("43200"), PUBLIC,
        "lifetime of a dev token";
    DEV_AUTH_ALLOW_REMOTE: "CONFAB_DEV_AUTH_ALLOW_REMOTE", Flag, Is("0"), PUBLIC,
        "dev sign-in refuses a non-loopback `CONFAB_BIND` unless this is 1";
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
    LLM: "CONFAB_LLM", Choice(&["echo", "openai", "openai-compatible"]), Derived("`openai` if `OPENAI_API_KEY` is set, else `echo`"), PUBLIC,
        "which model answers";
    ECHO_PACE_MS: "CONFAB_ECHO_PACE_MS", millis(0, 60_000), Is("30"), PUBLIC,
        "the demo model's pause between words";
    OPENAI_API_KEY: "OPENAI_API_KEY", Text, Unset, SECRET,
        "the provider's key (`openai-compatible` servers that need none accept any)";
    OPENAI_BASE_URL: "OPENAI_BASE_URL", Url, Is("https://api.openai.com/v1"), PUBLIC,
        "the provider's API root";
    MODEL: "CONFAB_MODEL", Text, Derived("`gpt-4.1-mini` (`echo-1` for `echo`)"), PUBLIC,
        "the model replies are asked of";
    LLM_CONNECT_TIMEOUT_SECS: "CONFAB_LLM_CONNECT_TIMEOUT_SECS", secs(1, 600), Is("10"), PUBLIC,
        "longest wait to connect to the provider";
    LLM_FIRST_BYTE_TIMEOUT_SECS: "CONFAB_LLM_FIRST_BYTE_TIMEOUT_SECS", secs(1, 3_600), Is("60"), PUBLIC,
        "longest wait for the provider's answer to begin";
    LLM_IDLE_TIMEOUT_SECS: "CONFAB_LLM_IDLE_TIMEOUT_SECS", secs(1, 3_600), Is("60"), PUBLIC,
        "longest silence within a streamed answer";
    LLM_MAX_RETRIES: "CONFAB_LLM_MAX_RETRIES", int(0, 10), Is("2"), PUBLIC,
        "retries of a request that failed before any text";
    LLM_HTTP2_PRIOR_KNOWLEDGE: "CONFAB_LLM_HTTP2_PRIOR_KNOWLEDGE", Flag, Is("0"), PUBLIC,
        "1: speak HTTP/2 from the first byte (h2c) to an `http://` `OPENAI_BASE_URL` that supports it, so all replies share one connection instead of one each; ignored for `https://`, where HTTP/2 is negotiated anyway";
    LLM_TIMEOUT_SECS: "CONFAB_LLM_TIMEOUT_SECS", secs(1, 86_400), Is("300"), PUBLIC,
        "bounds one whole generation";
    MAX_OUTPUT_TOKENS: "CONFAB_MAX_OUTPUT_TOKENS", int(1, 1_000_000), Unset, PUBLIC,
        "the reply's limit (unset: the provider's)";
    CONTEXT_TOKENS: "CONFAB_CONTEXT_TOKENS", int(100, 10_000_000), Is("16000"), PUBLIC,
        "the context budget history is fitted into";
    SENDS_PER_MINUTE: "CONFAB_SENDS_PER_MINUTE", int(1, 1_000_000), Is("20"), PUBLIC,
        "per-user message limit (429 with `Retry-After`)";
    MAX_UPLOAD_BYTES: "CONFAB_MAX_UPLOAD_BYTES", bytes(1, 1 << 40), Is("26214400"), PUBLIC,
        "largest upload, 25 MiB by default (413)";
    MAX_JSON_BYTES: "CONFAB_MAX_JSON_BYTES", bytes(1, 1 << 30), Is("1048576"), PUBLIC,
        "largest JSON body (413)";
    REPLY_LEASE_SECS: "CONFAB_REPLY_LEASE_SECS", secs(1, 86_400), Is("120"), PUBLIC,
        "a reply left `streaming` by a dead process is marked failed (`interrupted`) after this";
    SHUTDOWN_GRACE_SECS: "CONFAB_SHUTDOWN_GRACE_SECS", secs(0, 3_600), Is("20"), PUBLIC,
        "on SIGTERM, replies in flight get this long to finish; the rest are stored failed";
    LOG_FORMAT: "CONFAB_LOG_FORMAT", Choice(&["human", "json"]), Is("human"), PUBLIC,
        "`json` for JSON lines (levels: `RUST_LOG`, default `info`)";
    WORKERS: "CONFAB_WORKERS", int(1, 1_024), Derived("number of cores"), PUBLIC,
        "HTTP worker threads";
}
