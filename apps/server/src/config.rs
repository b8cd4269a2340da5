//! Settings: defaults < `confab.toml` < `.env` < the process environment.
//!
//! One table, [`KEYS`], gives every setting's variable, kind, default, allowed values, whether
//! it is a secret, and what it is for. It drives parsing and validation (every value is
//! checked at start, numbers against their range), `confab config` (each value with its
//! source) and the README's configuration table (a test keeps the two equal). The layers are
//! merged by figment, whose metadata tells where a value came from ([`sources`]).
//! `confab.toml`'s keys are the variables' names in any case. Secrets are `SecretString`s.

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use confab_auth::{
    ClerkConfig, DevConfig, JwksOptions, LocalConfig, OidcClientConfig, OidcConfig, SignUpMode,
};
use confab_core::{ChatSettings, Limits};
use confab_openai::{DEFAULT_MODEL, OpenAiConfig, ProviderConfig};
use confab_sql::PoolOptions;
use secrecy::SecretString;

use self::keys::*;
pub use self::keys::{DefaultValue, KEYS, Key, Kind, markdown_table};
use self::sources::Values;
pub use self::sources::{Source, Sources};

mod keys;
mod sources;
#[cfg(test)]
mod tests;

/// A setting that could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{var}: {message}")]
    Invalid { var: &'static str, message: String },
    #[error("{path}: {message}")]
    File { path: String, message: String },
    #[error(transparent)]
    Auth(#[from] confab_auth::ConfigError),
}

fn invalid(key: &Key, message: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        var: key.name,
        message: message.into(),
    }
}

/// Human-readable or JSON log lines.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    Human,
    Json,
}

/// How users sign in: the auth adapters' own configuration.
#[derive(Clone, Debug)]
pub enum AuthSettings {
    /// Tokens the server signs itself for a username. For local use.
    Dev {
        config: DevConfig,
        allow_remote: bool,
    },
    Clerk(ClerkConfig),
    /// An OpenID Connect issuer's bearer tokens; with a client, the browser signs in there too.
    Oidc {
        config: OidcConfig,
        client: Option<Box<OidcClientConfig>>,
        /// `OIDC_DISPLAY_NAME`.
        display_name: String,
        /// `OIDC_REDIRECT_URL`.
        redirect_url: Option<String>,
    },
    /// Built-in accounts, stored in the database.
    Local(LocalConfig),
}

impl AuthSettings {
    #[must_use]
    pub const fn provider(&self) -> &'static str {
        match self {
            Self::Dev { .. } => "dev",
            Self::Clerk(_) => "clerk",
            Self::Oidc { .. } => "oidc",
            Self::Local(_) => "local",
        }
    }
}

/// Which model answers: the built-in demo model, or the OpenAI adapters' own configuration.
#[derive(Clone, Debug)]
pub enum LlmSettings {
    Echo {
        pace: Duration,
    },
    /// The Responses API, or (`compatible`) an OpenAI-compatible Chat Completions server.
    OpenAi {
        compatible: bool,
        config: OpenAiConfig,
        /// Attached images go to Chat Completions as `image_url` parts (`CONFAB_LLM_VISION`).
        vision: bool,
    },
}

/// Where the database is, and its pool.
#[derive(Clone, Debug)]
pub struct DatabaseSettings {
    /// May hold a password: printed only through [`redact_url`].
    pub url: SecretString,
    pub pool: PoolOptions,
}

/// Where uploaded files' bytes live.
#[derive(Clone, Debug)]
pub enum FilesSettings {
    Dir(PathBuf),
    /// `s3://…`, `file:///…` or `memory:`. May hold a secret: printed only redacted.
    Url(SecretString),
}

/// One line of `confab config`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Shown {
    pub name: &'static str,
    /// Secrets masked, URLs redacted.
    pub value: String,
    pub source: Source,
}

/// Where replies' live events go: this process, or Redis shared by every replica.
#[derive(Clone, Debug)]
pub struct LiveSettings {
    /// `CONFAB_REDIS_URL`; `None`: in this process.
    pub redis_url: Option<SecretString>,
    /// Every Redis key begins with it.
    pub redis_prefix: String,
    /// How long a finished reply stays readable.
    pub retention: Duration,
}

/// Everything the server needs to start.
#[derive(Clone, Debug)]
pub struct Settings {
    pub bind: SocketAddr,
    pub database: DatabaseSettings,
    pub files: FilesSettings,
    pub auth: AuthSettings,
    pub llm: LlmSettings,
    pub chat: ChatSettings,
    pub limits: Limits,
    pub max_json_bytes: usize,
    /// The largest file an import reads (`CONFAB_IMPORT_MAX_BYTES`).
    pub import_max_bytes: u64,
    /// MiB of encoded pages of messages kept (`CONFAB_PAGE_CACHE_MB`); 0: none.
    pub page_cache_mb: u64,
    pub sends_per_minute: u32,
    pub llm_timeout: Duration,
    /// The model that writes titles (`CONFAB_TITLE_MODEL`); `None`: the chat model.
    pub title_model: Option<String>,
    /// Every user's token quotas (`CONFAB_QUOTA_TOKENS_PER_*`).
    pub quotas: confab_core::usage::QuotaDefaults,
    /// The administrators' token subjects (`CONFAB_ADMINS`).
    pub admins: Vec<String>,
    /// The reverse proxies whose `X-Forwarded-For` is believed (`CONFAB_TRUSTED_PROXIES`).
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// The price table's file (`CONFAB_PRICES`).
    pub prices: Option<PathBuf>,
    pub shutdown_grace: Duration,
    pub live: LiveSettings,
    pub log_format: LogFormat,
    pub workers: usize,
    /// Every key's effective value and its source, in the table's order.
    pub shown: Vec<Shown>,
}

impl Settings {
    /// Reads the settings from the usual layers.
    pub fn load() -> Result<Self, ConfigError> {
        Self::from_sources(&Sources::load()?)
    }

    /// Builds settings from explicit layers.
    pub fn from_sources(sources: &Sources) -> Result<Self, ConfigError> {
        let mut v = Values::check(sources)?;
        let database_url = v.text(&DATABASE_URL).unwrap_or_default();
        if !["sqlite:", "postgres://", "postgresql://", "memory:"]
            .iter()
            .any(|prefix| database_url.starts_with(prefix))
        {
            return Err(invalid(
                &DATABASE_URL,
                "expected sqlite://path, sqlite::memory:, postgres://… or memory:",
            ));
        }
        let default_workers = std::thread::available_parallelism().map_or(2, usize::from);
        let workers = v.number(&WORKERS)?.unwrap_or(default_workers);
        v.derive(&WORKERS, workers.to_string());
        let files = match v.text(&FILES_URL) {
            Some(url) => FilesSettings::Url(SecretString::from(url)),
            None => FilesSettings::Dir(PathBuf::from(v.text(&FILES_DIR).unwrap_or_default())),
        };
        let auth = auth(&mut v)?;
        if matches!(&auth, AuthSettings::Local(local) if local.secret.is_none())
            && v.is_given(&REDIS_URL)
        {
            // Each replica would sign with its own random key and refuse the others' tokens.
            return Err(invalid(
                &LOCAL_AUTH_SECRET,
                "must be set (32+ random bytes, the same on every replica) when \
                 CONFAB_REDIS_URL is: several replicas must sign sessions with one key",
            ));
        }
        let llm = llm(&mut v)?;
        let context_tokens: u32 = v.required(&CONTEXT_TOKENS)?;
        let max_output_tokens = v.number(&MAX_OUTPUT_TOKENS)?;
        let reply_lease = v.secs(&REPLY_LEASE_SECS)?;
        let chrono_lease = chrono::Duration::from_std(reply_lease)
            .map_err(|_| invalid(&REPLY_LEASE_SECS, "is out of range"))?;
        let chat = ChatSettings {
            model: v.text(&MODEL),
            models: v.list(&MODELS),
            context_tokens,
            output_reserve: max_output_tokens.unwrap_or(2_000).min(context_tokens / 2),
            max_output_tokens,
            reply_lease: chrono_lease,
            touch_every: chrono_lease / 4,
            knowledge_chunks: v.required(&KNOWLEDGE_CHUNKS)?,
            ..ChatSettings::default()
        };
        Ok(Self {
            bind: v
                .text(&BIND)
                .unwrap_or_default()
                .parse()
                .map_err(|_| invalid(&BIND, "expected an address like 127.0.0.1:8000"))?,
            database: DatabaseSettings {
                url: SecretString::from(database_url),
                pool: PoolOptions {
                    max_size: v.required(&DB_POOL_SIZE)?,
                    threads: workers,
                    connect_timeout: v.secs(&DB_CONNECT_TIMEOUT_SECS)?,
                    wait_timeout: v.secs(&DB_WAIT_TIMEOUT_SECS)?,
                    sqlite_cache_mib: v.required(&SQLITE_CACHE_MB)?,
                },
            },
            files,
            auth,
            llm,
            chat,
            limits: Limits {
                upload_bytes: v.required(&MAX_UPLOAD_BYTES)?,
                ..Limits::default()
            },
            max_json_bytes: v.required(&MAX_JSON_BYTES)?,
            import_max_bytes: v.required(&IMPORT_MAX_BYTES)?,
            page_cache_mb: v.required(&PAGE_CACHE_MB)?,
            sends_per_minute: v.required(&SENDS_PER_MINUTE)?,
            llm_timeout: v.secs(&LLM_TIMEOUT_SECS)?,
            title_model: v.text(&TITLE_MODEL),
            quotas: confab_core::usage::QuotaDefaults {
                tokens_per_day: v.number(&QUOTA_TOKENS_PER_DAY)?,
                tokens_per_month: v.number(&QUOTA_TOKENS_PER_MONTH)?,
            },
            admins: v.list(&ADMINS),
            trusted_proxies: v
                .list(&TRUSTED_PROXIES)
                .iter()
                .map(|entry| crate::client_address::parse_proxy(entry))
                .collect::<Result<_, _>>()
                .map_err(|e| invalid(&TRUSTED_PROXIES, e))?,
            prices: v.text(&PRICES).map(PathBuf::from),
            shutdown_grace: v.secs(&SHUTDOWN_GRACE_SECS)?,
            live: LiveSettings {
                redis_url: v.text(&REDIS_URL).map(SecretString::from),
                redis_prefix: v.text(&REDIS_PREFIX).unwrap_or_default(),
                retention: v.secs(&LIVE_RETENTION_SECS)?,
            },
            log_format: match v.get(&LOG_FORMAT) {
                Some("json") => LogFormat::Json,
                _ => LogFormat::Human,
            },
            workers,
            shown: v.shown(),
        })
    }

    /// The model replies are asked of when a request names none.
    #[must_use]
    pub fn model_name(&self) -> String {
        match (&self.llm, &self.chat.model) {
            (LlmSettings::OpenAi { config, .. }, _) => config.model.clone(),
            (LlmSettings::Echo { .. }, Some(model)) => model.clone(),
            (LlmSettings::Echo { .. }, None) => "echo-1".to_owned(),
        }
    }

    /// Refuses configurations that are unsafe to serve.
    pub fn check_safe_to_serve(&self) -> Result<(), ConfigError> {
        let open_dev = matches!(
            self.auth,
            AuthSettings::Dev {
                allow_remote: false,
                ..
            }
        );
        if open_dev && !self.bind.ip().is_loopback() {
            return Err(invalid(
                &BIND,
                format!(
                    "{} is reachable from other machines, but dev sign-in lets anyone sign in as \
                     anyone. Configure Clerk or OIDC (CONFAB_AUTH), bind to 127.0.0.1, or set \
                     CONFAB_DEV_AUTH_ALLOW_REMOTE=1 if you really mean it",
                    self.bind
                ),
            ));
        }
        Ok(())
    }
}

fn auth(v: &mut Values) -> Result<AuthSettings, ConfigError> {
    let clerk_key_given =
        v.get(&CLERK_PUBLISHABLE_KEY).is_some() || v.get(&CLERK_JWKS_URL).is_some();
    let provider = match v.get(&AUTH) {
        Some(provider) => provider.to_owned(),
        None if clerk_key_given => "clerk".to_owned(),
        None => "dev".to_owned(),
    };
    v.derive(&AUTH, provider.as_str());
    let auth = match provider.as_str() {
        "clerk" => {
            let config = ClerkConfig {
                publishable_key: v.text(&CLERK_PUBLISHABLE_KEY),
                jwks_url: v.text(&CLERK_JWKS_URL),
                issuer: v.text(&CLERK_ISSUER),
                jwt_key_pem: v.text(&CLERK_JWT_KEY),
                authorized_parties: v.list(&CLERK_AUTHORIZED_PARTIES),
            };
            config.resolve()?;
            AuthSettings::Clerk(config)
        }
        "oidc" => {
            let config = OidcConfig {
                issuer: v.text(&OIDC_ISSUER).unwrap_or_default(),
                jwks_url: v.text(&OIDC_JWKS_URL),
                audience: v.text(&OIDC_AUDIENCE),
            };
            config.resolve()?;
            let client = match v.text(&OIDC_CLIENT_ID) {
                Some(client_id) => Some(Box::new(OidcClientConfig {
                    issuer: config.clone(),
                    client_id,
                    client_secret: v.secret(&OIDC_CLIENT_SECRET).ok_or_else(|| {
                        invalid(
                            &OIDC_CLIENT_SECRET,
                            "the browser sign-in (OIDC_CLIENT_ID) needs the client's secret",
                        )
                    })?,
                    scopes: v.text(&OIDC_SCOPES).unwrap_or_default(),
                    secret: v.secret(&OIDC_SESSION_SECRET),
                    session_ttl: v.secs(&SESSION_TTL_SECS)?,
                    http: JwksOptions::default(),
                })),
                None => None,
            };
            AuthSettings::Oidc {
                config,
                client,
                display_name: v.text(&OIDC_DISPLAY_NAME).unwrap_or_default(),
                redirect_url: v.text(&OIDC_REDIRECT_URL),
            }
        }
        "local" => {
            let signup = v.text(&SIGNUP).unwrap_or_else(|| "invite".to_owned());
            AuthSettings::Local(LocalConfig {
                secret: v.secret(&LOCAL_AUTH_SECRET),
                session_ttl: v.secs(&SESSION_TTL_SECS)?,
                access_ttl: v.secs(&ACCESS_TOKEN_TTL_SECS)?,
                idle_timeout: v.secs(&SESSION_IDLE_SECS)?,
                pepper: v.secret(&PASSWORD_PEPPER),
                signup: SignUpMode::parse(&signup)?,
                ..LocalConfig::default()
            })
        }
        _ => {
            let config = DevConfig {
                secret: v.secret(&DEV_AUTH_SECRET),
                ttl: v.secs(&DEV_TOKEN_TTL_SECS)?,
            };
            config.validate()?;
            AuthSettings::Dev {
                config,
                allow_remote: v.flag(&DEV_AUTH_ALLOW_REMOTE),
            }
        }
    };
    Ok(auth)
}

fn llm(v: &mut Values) -> Result<LlmSettings, ConfigError> {
    let provider = match v.get(&LLM) {
        Some(provider) => provider.to_owned(),
        None if v.is_given(&OPENAI_API_KEY) => "openai".to_owned(),
        None => "echo".to_owned(),
    };
    v.derive(&LLM, provider.as_str());
    if provider == "echo" {
        v.derive(
            &MODEL,
            v.text(&MODEL).unwrap_or_else(|| "echo-1".to_owned()),
        );
        let pace = v.required(&ECHO_PACE_MS).map(Duration::from_millis)?;
        return Ok(LlmSettings::Echo { pace });
    }
    let compatible = provider == "openai-compatible";
    let api_key = match v.secret(&OPENAI_API_KEY) {
        Some(key) => key,
        // Local compatible servers (Ollama, llama.cpp) take any key.
        None if compatible => SecretString::from("none".to_owned()),
        None => {
            return Err(invalid(
                &OPENAI_API_KEY,
                "CONFAB_LLM=openai needs an API key",
            ));
        }
    };
    let base_url = v.text(&OPENAI_BASE_URL).unwrap_or_default();
    if !(base_url.starts_with("http://") || base_url.starts_with("https://")) {
        return Err(invalid(
            &OPENAI_BASE_URL,
            "expected an http:// or https:// URL",
        ));
    }
    let model = v.text(&MODEL).unwrap_or_else(|| DEFAULT_MODEL.to_owned());
    v.derive(&MODEL, model.as_str());
    let config = OpenAiConfig {
        api_key,
        base_url: base_url.trim_end_matches('/').to_owned(),
        model,
        max_output_tokens: v.number(&MAX_OUTPUT_TOKENS)?,
        provider: ProviderConfig {
            connect_timeout: v.secs(&LLM_CONNECT_TIMEOUT_SECS)?,
            first_byte_timeout: v.secs(&LLM_FIRST_BYTE_TIMEOUT_SECS)?,
            idle_timeout: v.secs(&LLM_IDLE_TIMEOUT_SECS)?,
            max_retries: v.required(&LLM_MAX_RETRIES)?,
            http2_prior_knowledge: v.flag(&LLM_HTTP2_PRIOR_KNOWLEDGE),
            ..ProviderConfig::default()
        },
    };
    let vision = if v.is_given(&LLM_VISION) {
        v.flag(&LLM_VISION)
    } else {
        !compatible
    };
    v.derive(&LLM_VISION, if vision { "1" } else { "0" });
    Ok(LlmSettings::OpenAi {
        compatible,
        config,
        vision,
    })
}

/// `confab config`: every key, its effective value (secrets masked, URLs redacted) and where
/// it came from.
impl fmt::Display for Settings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for line in &self.shown {
            writeln!(f, "{} = {}   # {}", line.name, line.value, line.source)?;
        }
        Ok(())
    }
}
