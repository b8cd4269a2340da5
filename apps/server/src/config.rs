//! Settings: defaults < `confab.toml` < `.env` < the process environment.
//!
//! Every setting has a safe default, so `cargo run` works with nothing set. Keys of
//! `confab.toml` are the environment variables' names, in any case
//! (`confab_bind = "0.0.0.0:8000"`). An invalid value stops the start with a message that
//! names the variable. Secrets are `SecretString`s and never printed.

use std::collections::HashMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use confab_core::Limits;
use secrecy::{ExposeSecret, SecretString};

/// A setting that could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{var}: {message}")]
    Invalid { var: String, message: String },
    #[error("{path}: {message}")]
    File { path: String, message: String },
}

fn invalid(var: &str, message: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        var: var.to_owned(),
        message: message.into(),
    }
}

/// Where a value came from, for `confab config`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Origin {
    Default,
    File,
    DotEnv,
    Env,
}

/// The raw key/value layers, merged by precedence.
#[derive(Debug, Default)]
pub struct Sources {
    values: HashMap<String, (String, Origin)>,
}

impl Sources {
    /// Reads `confab.toml` (or `CONFAB_CONFIG`), `.env` and the environment.
    pub fn load() -> Result<Self, ConfigError> {
        let env: Vec<(String, String)> = std::env::vars().collect();
        let file = env
            .iter()
            .find(|(k, _)| k == "CONFAB_CONFIG")
            .map(|(_, v)| PathBuf::from(v));
        let explicit = file.is_some();
        let file = file.unwrap_or_else(|| PathBuf::from("confab.toml"));
        Self::from_layers(&file, explicit, Path::new(".env"), env)
    }

    /// Builds the layers from a config file path, a dotenv path and environment pairs.
    pub fn from_layers(
        toml_path: &Path,
        toml_required: bool,
        dotenv_path: &Path,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, ConfigError> {
        let mut sources = Self::default();
        match std::fs::read_to_string(toml_path) {
            Ok(text) => {
                let table: toml::Table =
                    text.parse()
                        .map_err(|e: toml::de::Error| ConfigError::File {
                            path: toml_path.display().to_string(),
                            message: e.message().to_owned(),
                        })?;
                for (key, value) in table {
                    let value = match value {
                        toml::Value::String(s) => s,
                        toml::Value::Array(items) => items
                            .iter()
                            .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_owned))
                            .collect::<Vec<_>>()
                            .join(","),
                        other => other.to_string(),
                    };
                    sources.set(&key.to_ascii_uppercase(), value, Origin::File);
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !toml_required => {}
            Err(e) => {
                return Err(ConfigError::File {
                    path: toml_path.display().to_string(),
                    message: e.to_string(),
                });
            }
        }
        match dotenvy::from_path_iter(dotenv_path) {
            Ok(iter) => {
                for item in iter {
                    let (key, value) = item.map_err(|e| ConfigError::File {
                        path: dotenv_path.display().to_string(),
                        message: e.to_string(),
                    })?;
                    sources.set(&key, value, Origin::DotEnv);
                }
            }
            Err(dotenvy::Error::Io(e)) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                return Err(ConfigError::File {
                    path: dotenv_path.display().to_string(),
                    message: e.to_string(),
                });
            }
        }
        for (key, value) in env {
            sources.set(&key, value, Origin::Env);
        }
        Ok(sources)
    }

    /// Sources from explicit pairs only (tests).
    pub fn from_pairs<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Self {
        let mut sources = Self::default();
        for (k, v) in pairs {
            sources.set(k, v.to_owned(), Origin::Env);
        }
        sources
    }

    fn set(&mut self, key: &str, value: String, origin: Origin) {
        self.values.insert(key.to_owned(), (value, origin));
    }

    /// The value of `key`, ignoring empty strings.
    fn get(&self, key: &str) -> Option<&str> {
        self.values
            .get(key)
            .map(|(v, _)| v.trim())
            .filter(|v| !v.is_empty())
    }

    /// Where the value of `key` came from.
    #[must_use]
    pub fn origin(&self, key: &str) -> Origin {
        self.values.get(key).map_or(Origin::Default, |(_, o)| *o)
    }

    fn parse<T: std::str::FromStr>(
        &self,
        key: &str,
        default: T,
        what: &str,
    ) -> Result<T, ConfigError> {
        match self.get(key) {
            None => Ok(default),
            Some(raw) => raw
                .parse()
                .map_err(|_| invalid(key, format!("expected {what}, got {raw:?}"))),
        }
    }

    fn secs(&self, key: &str, default: u64) -> Result<Duration, ConfigError> {
        self.parse(key, default, "a whole number of seconds")
            .map(Duration::from_secs)
    }

    fn millis(&self, key: &str, default: u64) -> Result<Duration, ConfigError> {
        self.parse(key, default, "a whole number of milliseconds")
            .map(Duration::from_millis)
    }

    fn flag(&self, key: &str) -> Result<bool, ConfigError> {
        match self.get(key).map(str::to_ascii_lowercase).as_deref() {
            None | Some("0" | "false" | "no" | "off") => Ok(false),
            Some("1" | "true" | "yes" | "on") => Ok(true),
            Some(other) => Err(invalid(
                key,
                format!("expected 1/0 or true/false, got {other:?}"),
            )),
        }
    }

    fn secret(&self, key: &str) -> Option<SecretString> {
        self.get(key).map(|v| SecretString::from(v.to_owned()))
    }

    fn string(&self, key: &str) -> Option<String> {
        self.get(key).map(str::to_owned)
    }

    fn list(&self, key: &str) -> Vec<String> {
        self.get(key)
            .map(|v| {
                v.split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// Human-readable or JSON log lines.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    Human,
    Json,
}

/// How users sign in.
#[derive(Clone, Debug)]
pub enum AuthSettings {
    /// Tokens the server signs itself for a username. For local use.
    Dev {
        secret: Option<SecretString>,
        ttl: Duration,
        allow_remote: bool,
    },
    /// Clerk session tokens.
    Clerk {
        publishable_key: Option<String>,
        jwks_url: Option<String>,
        issuer: Option<String>,
        jwt_key_pem: Option<SecretString>,
        authorized_parties: Vec<String>,
    },
    /// Any OpenID Connect issuer.
    Oidc {
        issuer: String,
        jwks_url: Option<String>,
        audience: Option<String>,
    },
}

impl AuthSettings {
    #[must_use]
    pub const fn provider(&self) -> &'static str {
        match self {
            Self::Dev { .. } => "dev",
            Self::Clerk { .. } => "clerk",
            Self::Oidc { .. } => "oidc",
        }
    }
}

/// Which model answers.
#[derive(Clone, Debug)]
pub enum LlmSettings {
    /// The built-in demo model.
    Echo { pace: Duration },
    /// The OpenAI Responses API, or an OpenAI-compatible Chat Completions server.
    OpenAi {
        compatible: bool,
        api_key: SecretString,
        base_url: String,
        connect_timeout: Duration,
        first_byte_timeout: Duration,
        idle_timeout: Duration,
        max_retries: u32,
        /// HTTP/2 from the first byte (h2c) to an `http://` base URL.
        http2_prior_knowledge: bool,
    },
}

impl LlmSettings {
    #[must_use]
    pub const fn provider(&self) -> &'static str {
        match self {
            Self::Echo { .. } => "echo",
            Self::OpenAi {
                compatible: false, ..
            } => "openai",
            Self::OpenAi {
                compatible: true, ..
            } => "openai-compatible",
        }
    }
}

/// Everything the server needs to start.
#[derive(Clone, Debug)]
pub struct Settings {
    pub bind: SocketAddr,
    pub database_url: String,
    pub db_pool_size: usize,
    pub db_connect_timeout: Duration,
    pub db_wait_timeout: Duration,
    pub files_dir: PathBuf,
    pub files_url: Option<String>,
    pub auth: AuthSettings,
    pub llm: LlmSettings,
    /// `None`: the provider's default model.
    pub model: Option<String>,
    pub limits: Limits,
    pub max_json_bytes: usize,
    pub sends_per_minute: u32,
    pub context_tokens: u32,
    pub max_output_tokens: Option<u32>,
    pub llm_timeout: Duration,
    pub reply_lease: Duration,
    pub shutdown_grace: Duration,
    pub log_format: LogFormat,
    pub workers: usize,
}

pub const DEFAULT_OPENAI_MODEL: &str = "gpt-4.1-mini";

impl Settings {
    /// Reads the settings from the usual layers.
    pub fn load() -> Result<Self, ConfigError> {
        Self::from_sources(&Sources::load()?)
    }

    /// Builds settings from explicit layers.
    pub fn from_sources(s: &Sources) -> Result<Self, ConfigError> {
        let bind: SocketAddr = s.parse(
            "CONFAB_BIND",
            ([127, 0, 0, 1], 8000).into(),
            "an address like 127.0.0.1:8000",
        )?;
        let database_url = s
            .string("DATABASE_URL")
            .unwrap_or_else(|| "sqlite://data/confab.db".to_owned());
        if !(database_url.starts_with("sqlite:")
            || database_url.starts_with("postgres://")
            || database_url.starts_with("postgresql://")
            || database_url == "memory:")
        {
            return Err(invalid(
                "DATABASE_URL",
                "expected sqlite://path, sqlite::memory:, postgres://… or memory:",
            ));
        }

        let auth = match s.get("CONFAB_AUTH").map(str::to_ascii_lowercase) {
            Some(p) if p == "dev" => None,
            Some(p) if p == "clerk" => Some("clerk"),
            Some(p) if p == "oidc" => Some("oidc"),
            Some(other) => {
                return Err(invalid(
                    "CONFAB_AUTH",
                    format!("expected clerk, oidc or dev, got {other:?}"),
                ));
            }
            None if s.get("CLERK_PUBLISHABLE_KEY").is_some()
                || s.get("CLERK_JWKS_URL").is_some() =>
            {
                Some("clerk")
            }
            None => None,
        };
        let auth = match auth {
            None => AuthSettings::Dev {
                secret: s.secret("CONFAB_DEV_AUTH_SECRET"),
                ttl: s.secs("CONFAB_DEV_TOKEN_TTL_SECS", 43_200)?,
                allow_remote: s.flag("CONFAB_DEV_AUTH_ALLOW_REMOTE")?,
            },
            Some("clerk") => {
                let settings = AuthSettings::Clerk {
                    publishable_key: s.string("CLERK_PUBLISHABLE_KEY"),
                    jwks_url: s.string("CLERK_JWKS_URL"),
                    issuer: s.string("CLERK_ISSUER"),
                    jwt_key_pem: s.secret("CLERK_JWT_KEY"),
                    authorized_parties: s.list("CLERK_AUTHORIZED_PARTIES"),
                };
                if let AuthSettings::Clerk {
                    publishable_key: None,
                    jwks_url: None,
                    jwt_key_pem: None,
                    ..
                } = &settings
                {
                    return Err(invalid(
                        "CLERK_PUBLISHABLE_KEY",
                        "Clerk sign-in needs CLERK_PUBLISHABLE_KEY, CLERK_JWKS_URL or CLERK_JWT_KEY",
                    ));
                }
                settings
            }
            Some(_) => AuthSettings::Oidc {
                issuer: s
                    .string("OIDC_ISSUER")
                    .ok_or_else(|| invalid("OIDC_ISSUER", "OIDC sign-in needs the issuer URL"))?,
                jwks_url: s.string("OIDC_JWKS_URL"),
                audience: s.string("OIDC_AUDIENCE"),
            },
        };

        let llm_kind = match s.get("CONFAB_LLM").map(str::to_ascii_lowercase) {
            Some(k) if ["openai", "openai-compatible", "echo"].contains(&k.as_str()) => k,
            Some(other) => {
                return Err(invalid(
                    "CONFAB_LLM",
                    format!("expected openai, openai-compatible or echo, got {other:?}"),
                ));
            }
            None if s.get("OPENAI_API_KEY").is_some() => "openai".to_owned(),
            None => "echo".to_owned(),
        };
        let llm = if llm_kind == "echo" {
            LlmSettings::Echo {
                pace: s.millis("CONFAB_ECHO_PACE_MS", 30)?,
            }
        } else {
            let compatible = llm_kind == "openai-compatible";
            let api_key = match s.secret("OPENAI_API_KEY") {
                Some(key) => key,
                // Local compatible servers (Ollama, llama.cpp) take any key.
                None if compatible => SecretString::from("none".to_owned()),
                None => {
                    return Err(invalid(
                        "OPENAI_API_KEY",
                        "CONFAB_LLM=openai needs an API key",
                    ));
                }
            };
            let base_url = s
                .string("OPENAI_BASE_URL")
                .unwrap_or_else(|| "https://api.openai.com/v1".to_owned());
            if !(base_url.starts_with("http://") || base_url.starts_with("https://")) {
                return Err(invalid(
                    "OPENAI_BASE_URL",
                    "expected an http:// or https:// URL",
                ));
            }
            LlmSettings::OpenAi {
                compatible,
                api_key,
                base_url: base_url.trim_end_matches('/').to_owned(),
                connect_timeout: s.secs("CONFAB_LLM_CONNECT_TIMEOUT_SECS", 10)?,
                first_byte_timeout: s.secs("CONFAB_LLM_FIRST_BYTE_TIMEOUT_SECS", 60)?,
                idle_timeout: s.secs("CONFAB_LLM_IDLE_TIMEOUT_SECS", 60)?,
                max_retries: s.parse("CONFAB_LLM_MAX_RETRIES", 2, "a whole number")?,
                http2_prior_knowledge: s.flag("CONFAB_LLM_HTTP2_PRIOR_KNOWLEDGE")?,
            }
        };

        let defaults = Limits::default();
        let limits = Limits {
            upload_bytes: s.parse(
                "CONFAB_MAX_UPLOAD_BYTES",
                defaults.upload_bytes,
                "a number of bytes",
            )?,
            ..defaults
        };
        let sends_per_minute: u32 = s.parse("CONFAB_SENDS_PER_MINUTE", 20, "a whole number")?;
        if sends_per_minute == 0 {
            return Err(invalid("CONFAB_SENDS_PER_MINUTE", "must be at least 1"));
        }
        let log_format = match s
            .get("CONFAB_LOG_FORMAT")
            .map(str::to_ascii_lowercase)
            .as_deref()
        {
            None | Some("human" | "text" | "pretty") => LogFormat::Human,
            Some("json") => LogFormat::Json,
            Some(other) => {
                return Err(invalid(
                    "CONFAB_LOG_FORMAT",
                    format!("expected human or json, got {other:?}"),
                ));
            }
        };
        let max_output_tokens = match s.get("CONFAB_MAX_OUTPUT_TOKENS") {
            None => None,
            Some(_) => Some(s.parse("CONFAB_MAX_OUTPUT_TOKENS", 0u32, "a whole number")?),
        };
        let default_workers = std::thread::available_parallelism().map_or(2, usize::from);
        Ok(Self {
            bind,
            database_url,
            db_pool_size: s.parse("CONFAB_DB_POOL_SIZE", 16, "a whole number")?,
            db_connect_timeout: s.secs("CONFAB_DB_CONNECT_TIMEOUT_SECS", 5)?,
            db_wait_timeout: s.secs("CONFAB_DB_WAIT_TIMEOUT_SECS", 5)?,
            files_dir: PathBuf::from(
                s.string("CONFAB_FILES_DIR")
                    .unwrap_or_else(|| "data/files".to_owned()),
            ),
            files_url: s.string("CONFAB_FILES_URL"),
            auth,
            llm,
            model: s.string("CONFAB_MODEL"),
            limits,
            max_json_bytes: s.parse("CONFAB_MAX_JSON_BYTES", 1024 * 1024, "a number of bytes")?,
            sends_per_minute,
            context_tokens: s.parse("CONFAB_CONTEXT_TOKENS", 16_000, "a whole number of tokens")?,
            max_output_tokens,
            llm_timeout: s.secs("CONFAB_LLM_TIMEOUT_SECS", 300)?,
            reply_lease: s.secs("CONFAB_REPLY_LEASE_SECS", 120)?,
            shutdown_grace: s.secs("CONFAB_SHUTDOWN_GRACE_SECS", 20)?,
            log_format,
            workers: s.parse("CONFAB_WORKERS", default_workers, "a whole number")?,
        })
    }

    /// The model replies are asked of.
    #[must_use]
    pub fn model_name(&self) -> String {
        match (&self.model, &self.llm) {
            (Some(model), _) => model.clone(),
            (None, LlmSettings::Echo { .. }) => "echo-1".to_owned(),
            (None, LlmSettings::OpenAi { .. }) => DEFAULT_OPENAI_MODEL.to_owned(),
        }
    }

    /// Refuses configurations that are unsafe to serve.
    pub fn check_safe_to_serve(&self) -> Result<(), ConfigError> {
        if let AuthSettings::Dev {
            allow_remote: false,
            ..
        } = self.auth
            && !self.bind.ip().is_loopback()
        {
            {
                return Err(invalid(
                    "CONFAB_BIND",
                    format!(
                        "{} is reachable from other machines, but dev sign-in lets anyone sign in as anyone. \
                         Configure Clerk or OIDC (CONFAB_AUTH), bind to 127.0.0.1, or set \
                         CONFAB_DEV_AUTH_ALLOW_REMOTE=1 if you really mean it",
                        self.bind
                    ),
                ));
            }
        }
        Ok(())
    }
}

fn mask(secret: Option<&SecretString>) -> &'static str {
    match secret {
        Some(s) if !s.expose_secret().is_empty() => "******** (set)",
        _ => "(not set)",
    }
}

/// The effective configuration for `confab config`; secrets masked.
impl fmt::Display for Settings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "CONFAB_BIND = {}", self.bind)?;
        writeln!(f, "DATABASE_URL = {}", redact_url(&self.database_url))?;
        writeln!(f, "CONFAB_FILES_DIR = {}", self.files_dir.display())?;
        if let Some(url) = &self.files_url {
            writeln!(f, "CONFAB_FILES_URL = {}", redact_url(url))?;
        }
        writeln!(f, "CONFAB_AUTH = {}", self.auth.provider())?;
        match &self.auth {
            AuthSettings::Dev {
                secret,
                ttl,
                allow_remote,
            } => {
                writeln!(f, "CONFAB_DEV_AUTH_SECRET = {}", mask(secret.as_ref()))?;
                writeln!(f, "CONFAB_DEV_TOKEN_TTL_SECS = {}", ttl.as_secs())?;
                writeln!(f, "CONFAB_DEV_AUTH_ALLOW_REMOTE = {allow_remote}")?;
            }
            AuthSettings::Clerk {
                publishable_key,
                jwks_url,
                issuer,
                jwt_key_pem,
                authorized_parties,
            } => {
                writeln!(
                    f,
                    "CLERK_PUBLISHABLE_KEY = {}",
                    publishable_key.as_deref().unwrap_or("(not set)")
                )?;
                writeln!(
                    f,
                    "CLERK_JWKS_URL = {}",
                    jwks_url.as_deref().unwrap_or("(derived)")
                )?;
                writeln!(
                    f,
                    "CLERK_ISSUER = {}",
                    issuer.as_deref().unwrap_or("(derived)")
                )?;
                writeln!(f, "CLERK_JWT_KEY = {}", mask(jwt_key_pem.as_ref()))?;
                writeln!(
                    f,
                    "CLERK_AUTHORIZED_PARTIES = {}",
                    authorized_parties.join(",")
                )?;
            }
            AuthSettings::Oidc {
                issuer,
                jwks_url,
                audience,
            } => {
                writeln!(f, "OIDC_ISSUER = {issuer}")?;
                writeln!(
                    f,
                    "OIDC_JWKS_URL = {}",
                    jwks_url.as_deref().unwrap_or("(discovered)")
                )?;
                writeln!(
                    f,
                    "OIDC_AUDIENCE = {}",
                    audience.as_deref().unwrap_or("(not checked)")
                )?;
            }
        }
        writeln!(f, "CONFAB_LLM = {}", self.llm.provider())?;
        match &self.llm {
            LlmSettings::Echo { pace } => {
                writeln!(f, "CONFAB_ECHO_PACE_MS = {}", pace.as_millis())?
            }
            LlmSettings::OpenAi {
                api_key,
                base_url,
                connect_timeout,
                first_byte_timeout,
                idle_timeout,
                max_retries,
                http2_prior_knowledge,
                ..
            } => {
                writeln!(f, "OPENAI_API_KEY = {}", mask(Some(api_key)))?;
                writeln!(f, "OPENAI_BASE_URL = {base_url}")?;
                writeln!(
                    f,
                    "CONFAB_LLM_CONNECT_TIMEOUT_SECS = {}",
                    connect_timeout.as_secs()
                )?;
                writeln!(
                    f,
                    "CONFAB_LLM_FIRST_BYTE_TIMEOUT_SECS = {}",
                    first_byte_timeout.as_secs()
                )?;
                writeln!(
                    f,
                    "CONFAB_LLM_IDLE_TIMEOUT_SECS = {}",
                    idle_timeout.as_secs()
                )?;
                writeln!(f, "CONFAB_LLM_MAX_RETRIES = {max_retries}")?;
                writeln!(
                    f,
                    "CONFAB_LLM_HTTP2_PRIOR_KNOWLEDGE = {http2_prior_knowledge}"
                )?;
            }
        }
        writeln!(f, "CONFAB_MODEL = {}", self.model_name())?;
        writeln!(f, "CONFAB_MAX_UPLOAD_BYTES = {}", self.limits.upload_bytes)?;
        writeln!(f, "CONFAB_MAX_JSON_BYTES = {}", self.max_json_bytes)?;
        writeln!(f, "CONFAB_SENDS_PER_MINUTE = {}", self.sends_per_minute)?;
        writeln!(f, "CONFAB_CONTEXT_TOKENS = {}", self.context_tokens)?;
        writeln!(
            f,
            "CONFAB_LLM_TIMEOUT_SECS = {}",
            self.llm_timeout.as_secs()
        )?;
        writeln!(
            f,
            "CONFAB_REPLY_LEASE_SECS = {}",
            self.reply_lease.as_secs()
        )?;
        writeln!(
            f,
            "CONFAB_SHUTDOWN_GRACE_SECS = {}",
            self.shutdown_grace.as_secs()
        )?;
        writeln!(
            f,
            "CONFAB_LOG_FORMAT = {}",
            if self.log_format == LogFormat::Json {
                "json"
            } else {
                "human"
            }
        )
    }
}

/// A URL with any password replaced by `***`.
#[must_use]
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let (authority, path) = rest.split_once('/').map_or((rest, ""), |(a, p)| (a, p));
    let Some((userinfo, host)) = authority.rsplit_once('@') else {
        return url.to_owned();
    };
    let user = userinfo.split_once(':').map_or(userinfo, |(u, _)| u);
    let slash = if rest.contains('/') { "/" } else { "" };
    if userinfo.contains(':') {
        format!("{scheme}://{user}:***@{host}{slash}{path}")
    } else {
        format!("{scheme}://{user}@{host}{slash}{path}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nothing_set_gives_dev_auth_echo_and_sqlite() {
        let s = Settings::from_sources(&Sources::default()).unwrap();
        assert_eq!(s.bind.to_string(), "127.0.0.1:8000");
        assert_eq!(s.database_url, "sqlite://data/confab.db");
        assert_eq!(s.auth.provider(), "dev");
        assert_eq!(s.llm.provider(), "echo");
        assert_eq!(s.sends_per_minute, 20);
        assert_eq!(s.limits.upload_bytes, 25 * 1024 * 1024);
    }

    #[test]
    fn an_invalid_value_names_its_variable() {
        let err =
            Settings::from_sources(&Sources::from_pairs([("CONFAB_BIND", "nope")])).unwrap_err();
        assert!(err.to_string().starts_with("CONFAB_BIND:"), "{err}");
        let err =
            Settings::from_sources(&Sources::from_pairs([("CONFAB_LLM", "gpt")])).unwrap_err();
        assert!(err.to_string().starts_with("CONFAB_LLM:"), "{err}");
        let err = Settings::from_sources(&Sources::from_pairs([("CONFAB_SENDS_PER_MINUTE", "-1")]))
            .unwrap_err();
        assert!(
            err.to_string().starts_with("CONFAB_SENDS_PER_MINUTE:"),
            "{err}"
        );
    }

    #[test]
    fn an_openai_key_selects_openai_and_is_never_printed() {
        let s = Settings::from_sources(&Sources::from_pairs([("OPENAI_API_KEY", "sk-secret-123")]))
            .unwrap();
        assert_eq!(s.llm.provider(), "openai");
        let printed = s.to_string();
        assert!(!printed.contains("sk-secret-123"));
        assert!(printed.contains("OPENAI_API_KEY = ******** (set)"));
        assert!(!format!("{s:?}").contains("sk-secret-123"));
    }

    #[test]
    fn http2_prior_knowledge_is_off_unless_asked_for() {
        let llm = |pairs: &[(&str, &str)]| {
            let mut all = vec![("OPENAI_API_KEY", "sk-x")];
            all.extend_from_slice(pairs);
            Settings::from_sources(&Sources::from_pairs(all)).map(|s| s.llm)
        };
        assert!(matches!(
            llm(&[]).unwrap(),
            LlmSettings::OpenAi {
                http2_prior_knowledge: false,
                ..
            }
        ));
        let on = llm(&[("CONFAB_LLM_HTTP2_PRIOR_KNOWLEDGE", "true")]).unwrap();
        assert!(matches!(
            on,
            LlmSettings::OpenAi {
                http2_prior_knowledge: true,
                ..
            }
        ));
        let err = llm(&[("CONFAB_LLM_HTTP2_PRIOR_KNOWLEDGE", "maybe")]).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("CONFAB_LLM_HTTP2_PRIOR_KNOWLEDGE:"),
            "{err}"
        );
    }

    #[test]
    fn a_clerk_key_selects_clerk() {
        let s = Settings::from_sources(&Sources::from_pairs([(
            "CLERK_PUBLISHABLE_KEY",
            "pk_test_abc",
        )]))
        .unwrap();
        assert_eq!(s.auth.provider(), "clerk");
    }

    #[test]
    fn dev_auth_refuses_a_public_address_unless_allowed() {
        let s = Settings::from_sources(&Sources::from_pairs([("CONFAB_BIND", "0.0.0.0:8000")]))
            .unwrap();
        let err = s.check_safe_to_serve().unwrap_err().to_string();
        assert!(err.contains("CONFAB_DEV_AUTH_ALLOW_REMOTE"), "{err}");
        let s = Settings::from_sources(&Sources::from_pairs([
            ("CONFAB_BIND", "0.0.0.0:8000"),
            ("CONFAB_DEV_AUTH_ALLOW_REMOTE", "1"),
        ]))
        .unwrap();
        assert!(s.check_safe_to_serve().is_ok());
    }

    #[test]
    fn environment_beats_dotenv_beats_toml() {
        let dir = std::env::temp_dir().join(format!("confab-config-{}", uuid::Uuid::now_v7()));
        std::fs::create_dir_all(&dir).unwrap();
        let toml = dir.join("confab.toml");
        let dotenv = dir.join(".env");
        std::fs::write(
            &toml,
            "confab_sends_per_minute = 5\nCONFAB_CONTEXT_TOKENS = 1000\nCONFAB_ECHO_PACE_MS = 7\n",
        )
        .unwrap();
        std::fs::write(
            &dotenv,
            "CONFAB_CONTEXT_TOKENS=2000\nCONFAB_ECHO_PACE_MS=8\n",
        )
        .unwrap();
        let sources = Sources::from_layers(
            &toml,
            true,
            &dotenv,
            [("CONFAB_ECHO_PACE_MS".to_owned(), "9".to_owned())],
        )
        .unwrap();
        let s = Settings::from_sources(&sources).unwrap();
        assert_eq!(s.sends_per_minute, 5);
        assert_eq!(s.context_tokens, 2000);
        assert!(matches!(s.llm, LlmSettings::Echo { pace } if pace == Duration::from_millis(9)));
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn passwords_in_urls_are_redacted() {
        assert_eq!(
            redact_url("postgres://u:pw@h:5432/db"),
            "postgres://u:***@h:5432/db"
        );
        assert_eq!(redact_url("postgres://u@h/db"), "postgres://u@h/db");
        assert_eq!(
            redact_url("sqlite://data/confab.db"),
            "sqlite://data/confab.db"
        );
    }
}
