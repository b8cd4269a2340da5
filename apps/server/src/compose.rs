//! The composition root: one adapter per port, chosen from the settings; the application
//! state wired from them; the sweep of replies a dead process left; and one log line saying
//! what was composed (never a secret: URLs go through [`redact_url`]).

use std::sync::Arc;

use confab_api_types as api;
use confab_auth::{ClerkVerifier, DevAuth, LocalAuth, OidcSignIn, OidcVerifier};
use confab_core::ChatService;
use confab_core::accounts::AccountStore;
use confab_core::files::FileService;
use confab_core::ports::{
    AuthVerifier, BlobStore, ChatHistory, FileStore, KnowledgeIndex, LiveReplies, LlmStream,
    MessageSearch, ProjectStore, PromptStore, SendLimiter, Timer,
};
use confab_core::services::{ConversationService, ProjectService, PromptService};
use confab_core::shares::ShareStore;
use confab_core::titles::{FirstWords, LlmTitler, Titler};
use confab_core::transfer::{ImportStore, TransferService};
use confab_core::usage::{Accounting, UsageLedger};
use confab_files::ObjectBlobStore;
use confab_limits::SlidingWindowLimiter;
use confab_memory::{EchoLlm, MemoryAccounts, MemoryBlobStore, MemoryLiveReplies, MemoryStore};
use confab_openai::{ChatCompletionsLlm, ResponsesLlm};
use confab_sql::SqlStore;
use futures::future::BoxFuture;
use secrecy::ExposeSecret;
use tokio_util::task::TaskTracker;

use crate::texts::{BlockingExtractor, start_pending_sweep};

use crate::config::{
    AuthSettings, DatabaseSettings, FilesSettings, LiveSettings, LlmSettings, Settings,
};
use crate::generations::Generations;
use crate::metrics::Metrics;
use crate::redact::redact_url;
use crate::state::{AppState, DevTokens};

/// Why the server could not be composed. Never holds a secret.
#[derive(Debug, thiserror::Error)]
pub enum ComposeError {
    #[error("{0}")]
    Auth(#[from] confab_auth::ConfigError),
    #[error("{0}")]
    Llm(#[from] confab_openai::ConfigError),
    #[error("the database could not be opened ({url}): {cause}")]
    Database {
        /// Redacted.
        url: String,
        cause: confab_sql::SqlError,
    },
    #[error("Redis could not be reached ({url}): {cause}")]
    Redis {
        /// Redacted.
        url: String,
        cause: confab_core::live::LiveError,
    },
    #[error("the send limit's Redis could not be reached ({url}): {cause}")]
    RedisLimiter {
        /// Redacted.
        url: String,
        cause: String,
    },
    #[error("{0}")]
    Prices(String),
    #[error("file storage could not be opened: {0}")]
    Files(#[from] confab_files::OpenError),
}

/// The adapters the application runs on, one per port.
pub struct Adapters {
    pub projects: Arc<dyn ProjectStore>,
    pub prompts: Arc<dyn PromptStore>,
    pub history: Arc<dyn ChatHistory>,
    pub files: Arc<dyn FileStore>,
    /// Full-text search over messages and titles.
    pub search: Arc<dyn MessageSearch>,
    /// Full-text search over the chunks of projects' files (project knowledge).
    pub knowledge: Arc<dyn KnowledgeIndex>,
    /// Read-only share links.
    pub shares: Arc<dyn ShareStore>,
    /// Imported conversations (one transaction each, with their import keys).
    pub imports: Arc<dyn ImportStore>,
    pub blobs: Arc<dyn BlobStore>,
    pub auth: Arc<dyn AuthVerifier>,
    /// Present when dev sign-in is the configured provider.
    pub dev_tokens: Option<Arc<dyn DevTokens>>,
    /// Present when built-in accounts are the configured provider.
    pub local: Option<Arc<LocalAuth>>,
    /// Present when the browser signs in at an OpenID Connect issuer (`OIDC_CLIENT_ID`).
    pub oidc: Option<Arc<OidcSignIn>>,
    pub llm: Arc<dyn LlmStream>,
    pub limiter: Arc<dyn SendLimiter>,
    /// Replies' live events: in this process, or on Redis shared by every replica.
    pub live: Arc<dyn LiveReplies>,
    /// Writes the titles of conversations after their first reply.
    pub titles: Arc<dyn Titler>,
    /// The usage ledger and quota overrides.
    pub usage: Arc<dyn UsageLedger>,
}

/// The application, ready to serve: adapters composed, state built, stale replies released.
pub async fn application(settings: &Settings) -> Result<AppState, ComposeError> {
    let adapters = adapters(settings).await?;
    let database = Arc::clone(&adapters.projects);
    let prices = match &settings.prices {
        Some(path) => crate::routes::usage::load_prices(path).map_err(ComposeError::Prices)?,
        None => confab_core::usage::PriceTable::default(),
    };
    let mut state = build_state(adapters, settings);
    if !prices.models.is_empty() {
        tracing::info!(models = prices.models.len(), "read the price table");
        if let Some(accounting) = state.chat.accounting() {
            let mut accounting = accounting.clone();
            accounting.prices = Arc::new(prices);
            state.chat = state.chat.clone().with_accounting(accounting);
        }
    }
    release_stale_replies(&state, settings).await;
    start_sweep(&state.history, database, settings.chat.reply_lease);
    start_pending_sweep(state.files.clone());
    Ok(state)
}

/// Builds every adapter from the settings and logs which ones it chose.
pub async fn adapters(settings: &Settings) -> Result<Adapters, ComposeError> {
    let llm = llm(&settings.llm)?;
    let (blobs, files) = blobs(&settings.files)?;
    let database = redact_url(settings.database.url.expose_secret());
    let (stores, accounts) = stores(&settings.database).await?;
    let sign_in = sign_in(&settings.auth, accounts)?;
    let (live, live_backend) = live(&settings.live).await?;
    let limiter = limiter(settings).await?;
    let llm_url = match &settings.llm {
        LlmSettings::OpenAi { config, .. } => redact_url(&config.base_url),
        LlmSettings::Echo { .. } => "built in".to_owned(),
    };
    tracing::info!(
        auth = settings.auth.provider(),
        llm = llm.provider(),
        %llm_url,
        model = %settings.model_name(),
        %database,
        %files,
        live = %live_backend,
        "composed adapters"
    );
    // Titles: the echo demo model takes the first words; a real model is asked for one
    // (`CONFAB_TITLE_MODEL`, else the chat model).
    let titles: Arc<dyn Titler> = match &settings.llm {
        LlmSettings::Echo { .. } => Arc::new(FirstWords),
        LlmSettings::OpenAi { .. } => Arc::new(LlmTitler::new(
            Arc::clone(&llm),
            settings
                .title_model
                .clone()
                .unwrap_or_else(|| settings.model_name()),
        )),
    };
    Ok(Adapters {
        usage: stores.clone(),
        projects: stores.clone(),
        prompts: stores.clone(),
        history: stores.clone(),
        search: stores.clone(),
        knowledge: stores.clone(),
        shares: stores.clone(),
        imports: stores.clone(),
        files: stores,
        blobs,
        auth: sign_in.verifier,
        dev_tokens: sign_in.dev_tokens,
        local: sign_in.local,
        oidc: sign_in.oidc,
        llm,
        limiter,
        live,
        titles,
    })
}

/// The per-user send limit: kept in Redis when `CONFAB_REDIS_URL` is set, so that it holds
/// across every replica (each falls back to its own count while Redis is away), else in
/// this process.
async fn limiter(settings: &Settings) -> Result<Arc<dyn SendLimiter>, ComposeError> {
    let per_minute = settings.sends_per_minute;
    let Some(url) = &settings.live.redis_url else {
        return Ok(Arc::new(SlidingWindowLimiter::new(per_minute)));
    };
    let url = url.expose_secret();
    let limiter = confab_redis::RedisSendLimiter::connect(
        url,
        settings.live.redis_prefix.clone(),
        per_minute,
    )
    .await
    .map_err(|e| ComposeError::RedisLimiter {
        url: redact_url(url),
        cause: e.to_string(),
    })?;
    Ok(Arc::new(limiter))
}

/// Replies' live events: on Redis when `CONFAB_REDIS_URL` is set (every replica shares
/// them), else in this process; and a description for the log (the URL redacted).
async fn live(settings: &LiveSettings) -> Result<(Arc<dyn LiveReplies>, String), ComposeError> {
    let options = confab_core::live::LiveOptions {
        retention: settings.retention,
        ..confab_core::live::LiveOptions::default()
    };
    let Some(url) = &settings.redis_url else {
        return Ok((
            Arc::new(MemoryLiveReplies::new(options)),
            "in process".to_owned(),
        ));
    };
    let url = url.expose_secret();
    let redis =
        confab_redis::RedisLiveReplies::connect(url, settings.redis_prefix.clone(), options)
            .await
            .map_err(|cause| ComposeError::Redis {
                url: redact_url(url),
                cause,
            })?;
    Ok((Arc::new(redis), format!("redis {}", redact_url(url))))
}

/// Every storage port is served by one store.
trait Stores:
    ProjectStore
    + PromptStore
    + ChatHistory
    + FileStore
    + MessageSearch
    + KnowledgeIndex
    + UsageLedger
    + ShareStore
    + ImportStore
{
}
impl<
    S: ProjectStore
        + PromptStore
        + ChatHistory
        + FileStore
        + MessageSearch
        + KnowledgeIndex
        + UsageLedger
        + ShareStore
        + ImportStore,
> Stores for S
{
}

/// The stores of `memory:`, or the database (migrated): every storage port, and accounts.
async fn stores(
    database: &DatabaseSettings,
) -> Result<(Arc<dyn Stores>, Arc<dyn AccountStore>), ComposeError> {
    Ok(match database.url.expose_secret() {
        "memory:" => (
            Arc::new(MemoryStore::new()),
            Arc::new(MemoryAccounts::new()),
        ),
        _ => {
            let store = Arc::new(open_database(database).await?);
            (store.clone(), store)
        }
    })
}

/// Opens the database and applies its migrations (also `confab migrate`).
pub async fn open_database(database: &DatabaseSettings) -> Result<SqlStore, ComposeError> {
    let url = database.url.expose_secret();
    let store = confab_sql::connect(url, database.pool.clone())
        .await
        .map_err(|cause| ComposeError::Database {
            url: redact_url(url),
            cause,
        })?;
    tracing::info!(database = %redact_url(url), backend = store.backend(), "database ready, migrations applied");
    Ok(store)
}

/// How users sign in: the verifier, and the dev token issuer when dev sign-in is configured.
struct SignIn {
    verifier: Arc<dyn AuthVerifier>,
    dev_tokens: Option<Arc<dyn DevTokens>>,
    local: Option<Arc<LocalAuth>>,
    oidc: Option<Arc<OidcSignIn>>,
}

fn sign_in(auth: &AuthSettings, accounts: Arc<dyn AccountStore>) -> Result<SignIn, ComposeError> {
    let verifier_only = |verifier: Arc<dyn AuthVerifier>| SignIn {
        verifier,
        dev_tokens: None,
        local: None,
        oidc: None,
    };
    Ok(match auth {
        AuthSettings::Dev { config, .. } => {
            let dev = Arc::new(DevAuth::new(config)?);
            SignIn {
                verifier: dev.clone(),
                dev_tokens: Some(dev),
                local: None,
                oidc: None,
            }
        }
        AuthSettings::Local(config) => {
            let local = Arc::new(LocalAuth::new(accounts, config)?);
            SignIn {
                verifier: local.clone(),
                dev_tokens: None,
                local: Some(local),
                oidc: None,
            }
        }
        AuthSettings::Clerk(config) => verifier_only(Arc::new(ClerkVerifier::new(config)?)),
        AuthSettings::Oidc {
            client: Some(client),
            ..
        } => {
            let oidc = Arc::new(OidcSignIn::new(client, accounts)?);
            SignIn {
                verifier: oidc.clone(),
                dev_tokens: None,
                local: None,
                oidc: Some(oidc),
            }
        }
        AuthSettings::Oidc { config, .. } => verifier_only(Arc::new(OidcVerifier::new(config)?)),
    })
}

fn llm(llm: &LlmSettings) -> Result<Arc<dyn LlmStream>, ComposeError> {
    Ok(match llm {
        LlmSettings::Echo { pace } => Arc::new(EchoLlm::new(*pace)),
        LlmSettings::OpenAi {
            compatible: true,
            config,
            vision,
        } => Arc::new(ChatCompletionsLlm::new(config.clone())?.with_vision(*vision)),
        LlmSettings::OpenAi {
            compatible: false,
            config,
            ..
        } => Arc::new(ResponsesLlm::new(config.clone())?),
    })
}

/// The blob store and a description of it for the log.
fn blobs(files: &FilesSettings) -> Result<(Arc<dyn BlobStore>, String), ComposeError> {
    let store = match files {
        FilesSettings::Url(url) if url.expose_secret() == "memory:" => {
            return Ok((Arc::new(MemoryBlobStore::new()), "memory".to_owned()));
        }
        FilesSettings::Url(url) => ObjectBlobStore::from_url(url.expose_secret())?,
        FilesSettings::Dir(dir) => ObjectBlobStore::local(dir)?,
    };
    let description = store.describe();
    Ok((Arc::new(store), description))
}

/// How often every process sweeps the database for replies whose lease has lapsed.
pub const SWEEP_EVERY: std::time::Duration = std::time::Duration::from_secs(2);

/// Replies left `streaming` by a process that died. SQLite is one process's database: every
/// reply still `streaming` when it starts belongs to a dead process and is failed at once.
/// A shared database (PostgreSQL) may hold other processes' live replies: only those whose
/// lease has lapsed are failed, by the sweep, whose first round runs at once.
async fn release_stale_replies(state: &AppState, settings: &Settings) {
    if !settings.database.url.expose_secret().starts_with("sqlite:") {
        return;
    }
    // Every reply stored before this start.
    let stale_before = confab_core::now() + chrono::Duration::seconds(1);
    match state.history.fail_stale_replies(stale_before).await {
        Ok(0) => {}
        Ok(replies) => tracing::warn!(
            replies,
            "marked replies interrupted by an earlier process as failed"
        ),
        Err(e) => tracing::warn!(error = %e, "could not check for interrupted replies"),
    }
}

/// Starts the sweep of lapsed leases: every [`SWEEP_EVERY`], a `streaming` reply whose
/// writer has not renewed its lease for `lease` (the writer died, or lost the database) is
/// stored `failed`, `interrupted`, with the text it saved. It stops when the store is
/// dropped (the application is gone).
///
/// After a round that failed, only `database` is pinged until it has answered for a whole
/// lease: the database was most likely away for the replies' writers too, which could not
/// renew their leases, and a writer that is alive renews its lease within that time.
pub fn start_sweep(
    history: &Arc<dyn ChatHistory>,
    database: Arc<dyn ProjectStore>,
    lease: chrono::Duration,
) {
    let history = Arc::downgrade(history);
    let database = Arc::downgrade(&database);
    let hold_off = lease.to_std().unwrap_or_default();
    tokio::spawn(async move {
        let mut every = tokio::time::interval(SWEEP_EVERY);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut failed_at: Option<tokio::time::Instant> = None;
        loop {
            every.tick().await;
            let (Some(history), Some(database)) = (history.upgrade(), database.upgrade()) else {
                return;
            };
            let round = if failed_at.is_some_and(|at| at.elapsed() < hold_off) {
                database.ping().await.map(|()| 0)
            } else {
                history.fail_stale_replies(confab_core::now() - lease).await
            };
            match round {
                Ok(0) => {}
                Ok(replies) => {
                    tracing::warn!(replies, "marked replies whose lease lapsed as interrupted");
                }
                Err(e) => {
                    failed_at = Some(tokio::time::Instant::now());
                    tracing::warn!(error = %e, "could not sweep replies whose lease lapsed");
                }
            }
        }
    });
}

/// The runtime's timer, for the chat use case (leases, retries).
fn tokio_timer() -> Arc<dyn Timer> {
    Arc::new(|duration| -> BoxFuture<'static, ()> { Box::pin(tokio::time::sleep(duration)) })
}

impl DevTokens for DevAuth {
    fn issue(&self, username: &str) -> Result<(String, chrono::DateTime<chrono::Utc>), String> {
        Self::issue(self, username).map_err(|e| e.to_string())
    }
}

/// Wires the use cases to the adapters.
#[must_use]
pub fn build_state(adapters: Adapters, settings: &Settings) -> AppState {
    let limits = settings.limits;
    let metrics = Arc::new(Metrics::new());
    let usage: Arc<dyn UsageLedger> = Arc::new(crate::routes::usage::MeteredLedger {
        inner: adapters.usage,
        metrics: Arc::clone(&metrics),
    });
    let mut accounting = Accounting::new(Arc::clone(&usage));
    accounting.defaults = settings.quotas;
    if matches!(settings.llm, LlmSettings::OpenAi { .. }) {
        // Replies without reported usage are counted with the model's tokenizer when known.
        accounting.tokenizer = Arc::new(confab_openai::TiktokenCounter);
    }
    let chat = ChatService::new(
        Arc::clone(&adapters.history),
        Arc::clone(&adapters.prompts),
        Arc::clone(&adapters.llm),
        adapters.limiter,
        settings.chat.clone(),
        limits,
    )
    .with_timer(tokio_timer())
    .with_titler(Arc::clone(&adapters.titles))
    .with_accounting(accounting)
    .with_attachments(Arc::clone(&adapters.files), Arc::clone(&adapters.blobs))
    .with_knowledge(Arc::clone(&adapters.knowledge));
    // Clerk's sign-in page is loaded from the instance's Frontend API (and allowed by the CSP).
    let clerk_key = match &settings.auth {
        AuthSettings::Clerk(config) => config.publishable_key.clone(),
        _ => None,
    };
    let clerk_host = clerk_key
        .as_deref()
        .and_then(|key| confab_auth::frontend_api_host(key).ok());
    let client_config = api::ClientConfig {
        auth: api::AuthConfig {
            provider: settings.auth.provider().to_owned(),
            signup: adapters
                .local
                .as_ref()
                .map(|local| local.signup_mode().as_str().to_owned()),
            first_account: false,
            clerk_publishable_key: clerk_key,
            clerk_frontend_api: clerk_host.clone(),
            display_name: match (&settings.auth, &adapters.oidc) {
                (AuthSettings::Oidc { display_name, .. }, Some(_)) => Some(display_name.clone()),
                _ => None,
            },
        },
        llm: api::LlmConfig {
            provider: adapters.llm.provider().to_owned(),
            model: chat.model().to_owned(),
            models: chat.settings().models.clone(),
        },
        limits: api::LimitsConfig {
            project_name_chars: limits.project_name_chars,
            prompt_chars: limits.prompt_chars,
            message_chars: limits.message_chars,
            title_chars: limits.title_chars,
            upload_bytes: limits.upload_bytes,
            sends_per_minute: settings.sends_per_minute,
        },
    };
    let transfer = TransferService::new(
        Arc::clone(&adapters.projects),
        Arc::clone(&adapters.prompts),
        Arc::clone(&adapters.history),
        Arc::clone(&adapters.files),
        adapters.imports,
    );
    AppState {
        transfer,
        import_max_bytes: settings.import_max_bytes,
        pages: crate::pages::PageCache::new(settings.page_cache_mb).map(Arc::new),
        projects: ProjectService::new(
            Arc::clone(&adapters.projects),
            Arc::clone(&adapters.blobs),
            limits,
        ),
        prompts: PromptService::new(adapters.prompts, limits),
        conversations: ConversationService::new(Arc::clone(&adapters.history), limits)
            .with_models(chat.settings().models.clone()),
        files: FileService::new(
            adapters.projects,
            adapters.files,
            adapters.blobs,
            Arc::new(BlockingExtractor::new(confab_extract::Limits::default())),
            limits.upload_bytes,
        ),
        search: confab_core::services::SearchService::new(adapters.search),
        shares: confab_core::shares::ShareService::new(
            Arc::clone(&adapters.history),
            adapters.shares,
        ),
        chat,
        history: adapters.history,
        auth: adapters.auth,
        dev_tokens: adapters.dev_tokens,
        local: adapters.local,
        oidc: adapters.oidc.map(|sign_in| crate::state::OidcBrowser {
            sign_in,
            redirect_url: match &settings.auth {
                AuthSettings::Oidc { redirect_url, .. } => redirect_url.clone(),
                _ => None,
            },
        }),
        client_config,
        generations: Generations::default(),
        live: adapters.live,
        tasks: TaskTracker::new(),
        metrics,
        usage,
        quotas: settings.quotas,
        admins: settings.admins.clone(),
        trusted_proxies: settings.trusted_proxies.clone(),
        max_json_bytes: settings.max_json_bytes,
        llm_timeout: settings.llm_timeout,
        clerk_host,
    }
}
