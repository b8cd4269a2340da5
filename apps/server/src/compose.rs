//! The composition root: one adapter per port, chosen from the settings, and one log line
//! saying what was chosen (never a secret).

use std::sync::Arc;

use confab_auth::{ClerkConfig, ClerkVerifier, DevAuth, DevConfig, OidcConfig, OidcVerifier};
use confab_core::ports::{
    AuthVerifier, BlobStore, ChatHistory, FileStore, LlmStream, ProjectStore, PromptStore,
};
use confab_files::ObjectBlobStore;
use confab_limits::SlidingWindowLimiter;
use confab_memory::{EchoLlm, MemoryBlobStore, MemoryStore};
use confab_openai::{ChatCompletionsLlm, OpenAiConfig, ProviderConfig, ResponsesLlm};
use confab_sql::{PoolOptions, SqlStore};
use secrecy::ExposeSecret;

use crate::app::Adapters;
use crate::config::{AuthSettings, LlmSettings, Settings, redact_url};
use crate::state::DevTokens;

/// Why the server could not be composed.
#[derive(Debug, thiserror::Error)]
pub enum ComposeError {
    #[error("{0}")]
    Auth(#[from] confab_auth::ConfigError),
    #[error("{0}")]
    Llm(#[from] confab_openai::ConfigError),
    #[error("the database could not be opened ({url}): {cause}")]
    Database {
        url: String,
        cause: confab_sql::SqlError,
    },
    #[error("file storage could not be opened: {0}")]
    Files(#[from] confab_files::OpenError),
}

impl DevTokens for DevAuth {
    fn issue(&self, username: &str) -> Result<(String, chrono::DateTime<chrono::Utc>), String> {
        Self::issue(self, username).map_err(|e| e.to_string())
    }
}

fn pool_options(settings: &Settings) -> PoolOptions {
    PoolOptions {
        max_size: settings.db_pool_size,
        threads: settings.workers,
        connect_timeout: settings.db_connect_timeout,
        wait_timeout: settings.db_wait_timeout,
    }
}

/// Opens the database (and applies its migrations).
pub async fn database(settings: &Settings) -> Result<SqlStore, ComposeError> {
    confab_sql::connect(&settings.database_url, pool_options(settings))
        .await
        .map_err(|cause| ComposeError::Database {
            url: redact_url(&settings.database_url),
            cause,
        })
}

/// Applies the database migrations (`confab migrate`).
pub async fn migrate(settings: &Settings) -> Result<(), ComposeError> {
    let store = database(settings).await?;
    tracing::info!(database = %redact_url(&settings.database_url), backend = store.backend(), "migrations applied");
    Ok(())
}

/// Builds every adapter from the settings.
pub async fn adapters(settings: &Settings) -> Result<Adapters, ComposeError> {
    let (auth, dev_tokens, clerk_host, clerk_publishable_key) = auth(settings)?;
    let llm = llm(settings)?;
    let (blobs, files_description): (Arc<dyn BlobStore>, String) = match &settings.files_url {
        Some(url) if url == "memory:" => (Arc::new(MemoryBlobStore::new()), "memory".to_owned()),
        Some(url) => {
            let store = ObjectBlobStore::from_url(url)?;
            let description = store.describe();
            (Arc::new(store), description)
        }
        None => {
            let store = ObjectBlobStore::local(&settings.files_dir)?;
            let description = store.describe();
            (Arc::new(store), description)
        }
    };
    let limiter = Arc::new(SlidingWindowLimiter::new(settings.sends_per_minute));
    let database_description = format!("{} ", redact_url(&settings.database_url));
    let (projects, prompts, history, files) = if settings.database_url == "memory:" {
        stores(Arc::new(MemoryStore::new()))
    } else {
        stores(Arc::new(database(settings).await?))
    };
    let adapters = Adapters {
        projects,
        prompts,
        history,
        files,
        blobs,
        auth,
        dev_tokens,
        llm: Arc::clone(&llm),
        limiter,
        clerk_host,
        clerk_publishable_key,
    };
    tracing::info!(
        auth = settings.auth.provider(),
        llm = llm.provider(),
        model = %settings.model_name(),
        database = %database_description.trim_end(),
        files = %files_description,
        "composed adapters"
    );
    Ok(adapters)
}

type Stores = (
    Arc<dyn ProjectStore>,
    Arc<dyn PromptStore>,
    Arc<dyn ChatHistory>,
    Arc<dyn FileStore>,
);

/// One store that implements every storage port, handed out once per port.
fn stores<S: ProjectStore + PromptStore + ChatHistory + FileStore>(store: Arc<S>) -> Stores {
    (store.clone(), store.clone(), store.clone(), store)
}

type AuthParts = (
    Arc<dyn AuthVerifier>,
    Option<Arc<dyn DevTokens>>,
    Option<String>,
    Option<String>,
);

fn auth(settings: &Settings) -> Result<AuthParts, ComposeError> {
    Ok(match &settings.auth {
        AuthSettings::Dev { secret, ttl, .. } => {
            let dev = Arc::new(DevAuth::new(&DevConfig {
                secret: secret.clone(),
                ttl: *ttl,
            })?);
            let tokens: Arc<dyn DevTokens> = dev.clone();
            (dev, Some(tokens), None, None)
        }
        AuthSettings::Clerk {
            publishable_key,
            jwks_url,
            issuer,
            jwt_key_pem,
            authorized_parties,
        } => {
            let config = ClerkConfig {
                publishable_key: publishable_key.clone(),
                jwks_url: jwks_url.clone(),
                issuer: issuer.clone(),
                jwt_key_pem: jwt_key_pem.as_ref().map(|k| k.expose_secret().to_owned()),
                authorized_parties: authorized_parties.clone(),
            };
            let host = publishable_key
                .as_deref()
                .and_then(|key| confab_auth::config::frontend_api_host(key).ok());
            (
                Arc::new(ClerkVerifier::new(&config)?),
                None,
                host,
                publishable_key.clone(),
            )
        }
        AuthSettings::Oidc {
            issuer,
            jwks_url,
            audience,
        } => {
            let config = OidcConfig {
                issuer: issuer.clone(),
                jwks_url: jwks_url.clone(),
                audience: audience.clone(),
            };
            (Arc::new(OidcVerifier::new(&config)?), None, None, None)
        }
    })
}

fn llm(settings: &Settings) -> Result<Arc<dyn LlmStream>, ComposeError> {
    Ok(match &settings.llm {
        LlmSettings::Echo { pace } => Arc::new(EchoLlm::new(*pace)),
        LlmSettings::OpenAi {
            compatible,
            api_key,
            base_url,
            connect_timeout,
            first_byte_timeout,
            idle_timeout,
            max_retries,
            http2_prior_knowledge,
        } => {
            let config = OpenAiConfig {
                api_key: api_key.clone(),
                base_url: base_url.clone(),
                model: settings.model_name(),
                max_output_tokens: settings.max_output_tokens,
                provider: ProviderConfig {
                    connect_timeout: *connect_timeout,
                    first_byte_timeout: *first_byte_timeout,
                    idle_timeout: *idle_timeout,
                    max_retries: *max_retries,
                    http2_prior_knowledge: *http2_prior_knowledge,
                    ..ProviderConfig::default()
                },
            };
            if *compatible {
                Arc::new(ChatCompletionsLlm::new(config)?)
            } else {
                Arc::new(ResponsesLlm::new(config)?)
            }
        }
    })
}
