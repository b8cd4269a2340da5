//! What every handler shares: the use cases, the auth verifier, the generation registry.

use std::sync::Arc;
use std::time::Duration;

use confab_api_types::ClientConfig;
use confab_core::ChatService;
use confab_core::files::FileService;
use confab_core::ports::{AuthVerifier, ChatHistory, LiveReplies};
use confab_core::services::{ConversationService, ProjectService, PromptService};
use tokio_util::task::TaskTracker;

use crate::generations::Generations;
use crate::metrics::Metrics;

/// Issues dev tokens; present only when dev sign-in is the configured provider.
pub trait DevTokens: Send + Sync + 'static {
    /// A token for `username` and when it expires; `Err` with a sentence for a bad name.
    fn issue(&self, username: &str) -> Result<(String, chrono::DateTime<chrono::Utc>), String>;
}

/// The application state, shared by every worker.
pub struct AppState {
    pub projects: ProjectService,
    pub prompts: PromptService,
    pub conversations: ConversationService,
    pub files: FileService,
    pub search: confab_core::services::SearchService,
    /// Read-only share links.
    pub shares: confab_core::shares::ShareService,
    /// Export and import (issue 18).
    pub transfer: confab_core::transfer::TransferService,
    /// The largest file an import reads (`CONFAB_IMPORT_MAX_BYTES`).
    pub import_max_bytes: u64,
    /// Encoded pages of messages (`CONFAB_PAGE_CACHE_MB`; `None`: 0, no cache).
    pub pages: Option<Arc<crate::pages::PageCache>>,
    pub chat: ChatService,
    pub history: Arc<dyn ChatHistory>,
    pub auth: Arc<dyn AuthVerifier>,
    pub dev_tokens: Option<Arc<dyn DevTokens>>,
    /// Built-in accounts, when they are the configured provider.
    pub local: Option<Arc<confab_auth::LocalAuth>>,
    /// The browser's sign-in at an OpenID Connect issuer, when configured.
    pub oidc: Option<OidcBrowser>,
    pub client_config: ClientConfig,
    pub generations: Generations,
    /// Every reply's events, for followers on any replica, and cancels across replicas.
    pub live: Arc<dyn LiveReplies>,
    pub tasks: TaskTracker,
    /// The usage ledger and quota overrides.
    pub usage: Arc<dyn confab_core::usage::UsageLedger>,
    /// Every user's default quotas.
    pub quotas: confab_core::usage::QuotaDefaults,
    /// The administrators' token subjects (`CONFAB_ADMINS`).
    pub admins: Vec<String>,
    /// The reverse proxies whose `X-Forwarded-For` is believed (`CONFAB_TRUSTED_PROXIES`).
    pub trusted_proxies: Vec<ipnet::IpNet>,
    pub metrics: Arc<Metrics>,
    pub max_json_bytes: usize,
    pub llm_timeout: Duration,
    /// Host of the Clerk Frontend API, allowed by the page's CSP in Clerk mode.
    pub clerk_host: Option<String>,
}

/// The browser's sign-in at an OpenID Connect issuer (`CONFAB_AUTH=oidc` with a client).
pub struct OidcBrowser {
    pub sign_in: Arc<confab_auth::OidcSignIn>,
    /// `OIDC_REDIRECT_URL`; `None`: `/auth/oidc/callback` on the request's host.
    pub redirect_url: Option<String>,
}
