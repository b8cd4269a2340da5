//! Building the application from adapters, serving it, and shutting it down gracefully.

use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::time::Duration;

use actix_web::dev::ServerHandle;
use actix_web::middleware::{Compress, DefaultHeaders, from_fn};
use actix_web::{App, HttpServer, web};
use confab_api_types as api;
use confab_core::files::FileService;
use confab_core::ports::{
    AuthVerifier, BlobStore, ChatHistory, FileStore, LlmStream, ProjectStore, PromptStore,
    SendLimiter,
};
use confab_core::services::{ConversationService, ProjectService, PromptService};
use confab_core::{CancelReason, ChatService, ChatSettings};
use tokio_util::task::TaskTracker;

use crate::config::Settings;
use crate::extract::{path_error, query_error};
use crate::generations::Generations;
use crate::metrics::Metrics;
use crate::state::{AppState, DevTokens};
use crate::{routes, telemetry};

/// The adapters the application runs on, one per port.
pub struct Adapters {
    pub projects: Arc<dyn ProjectStore>,
    pub prompts: Arc<dyn PromptStore>,
    pub history: Arc<dyn ChatHistory>,
    pub files: Arc<dyn FileStore>,
    pub blobs: Arc<dyn BlobStore>,
    pub auth: Arc<dyn AuthVerifier>,
    pub dev_tokens: Option<Arc<dyn DevTokens>>,
    pub llm: Arc<dyn LlmStream>,
    pub limiter: Arc<dyn SendLimiter>,
    /// Host of the Clerk Frontend API, in Clerk mode.
    pub clerk_host: Option<String>,
    pub clerk_publishable_key: Option<String>,
}

/// Wires the use cases to the adapters.
#[must_use]
pub fn build_state(adapters: Adapters, settings: &Settings) -> AppState {
    let limits = settings.limits;
    let chat_settings = ChatSettings {
        model: settings.model.clone(),
        context_tokens: settings.context_tokens,
        output_reserve: settings
            .max_output_tokens
            .unwrap_or(2_000)
            .min(settings.context_tokens / 2),
        max_output_tokens: settings.max_output_tokens,
        reply_lease: chrono::Duration::from_std(settings.reply_lease)
            .unwrap_or(chrono::Duration::seconds(60)),
        touch_every: chrono::Duration::from_std(settings.reply_lease / 4)
            .unwrap_or(chrono::Duration::seconds(15)),
        ..ChatSettings::default()
    };
    let chat = ChatService::new(
        Arc::clone(&adapters.history),
        Arc::clone(&adapters.prompts),
        Arc::clone(&adapters.llm),
        adapters.limiter,
        chat_settings,
        limits,
    );
    let client_config = api::ClientConfig {
        auth: api::AuthConfig {
            provider: settings.auth.provider().to_owned(),
            clerk_publishable_key: adapters.clerk_publishable_key,
            clerk_frontend_api: adapters.clerk_host.clone(),
        },
        llm: api::LlmConfig {
            provider: adapters.llm.provider().to_owned(),
            model: chat.model().to_owned(),
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
    AppState {
        projects: ProjectService::new(
            Arc::clone(&adapters.projects),
            Arc::clone(&adapters.blobs),
            limits,
        ),
        prompts: PromptService::new(adapters.prompts, limits),
        conversations: ConversationService::new(Arc::clone(&adapters.history), limits),
        files: FileService::new(
            adapters.projects,
            adapters.files,
            adapters.blobs,
            limits.upload_bytes,
        ),
        chat,
        history: adapters.history,
        auth: adapters.auth,
        dev_tokens: adapters.dev_tokens,
        client_config,
        generations: Generations::default(),
        tasks: TaskTracker::new(),
        metrics: Arc::new(Metrics::new()),
        max_json_bytes: settings.max_json_bytes,
        llm_timeout: settings.llm_timeout,
        clerk_host: adapters.clerk_host,
    }
}

/// A server that is running.
pub struct RunningServer {
    pub addr: SocketAddr,
    pub state: web::Data<AppState>,
    handle: ServerHandle,
    server: tokio::task::JoinHandle<std::io::Result<()>>,
}

/// Binds `settings.bind` and starts serving `state`.
pub fn start(state: AppState, settings: &Settings) -> std::io::Result<RunningServer> {
    let listener = TcpListener::bind(settings.bind)?;
    start_on(listener, state, settings.workers)
}

/// Starts serving `state` on an already bound listener.
pub fn start_on(
    listener: TcpListener,
    state: AppState,
    workers: usize,
) -> std::io::Result<RunningServer> {
    let addr = listener.local_addr()?;
    let state = web::Data::new(state);
    let data = state.clone();
    let server = HttpServer::new(move || {
        App::new()
            .app_data(data.clone())
            .app_data(web::PathConfig::default().error_handler(path_error))
            .app_data(web::QueryConfig::default().error_handler(query_error))
            .wrap(from_fn(crate::extract::authenticate))
            .wrap(Compress::default())
            .wrap(
                DefaultHeaders::new()
                    .add(("X-Content-Type-Options", "nosniff"))
                    .add(("Referrer-Policy", "no-referrer")),
            )
            .wrap(from_fn(telemetry::observe))
            .configure(routes::configure)
            .default_service(web::to(routes::fallback))
    })
    .workers(workers.max(1))
    // Deltas are small writes: without TCP_NODELAY, Nagle holds each one until the client's
    // delayed ACK (up to 40 ms) on a reused keep-alive connection (docs/benchmarks.md).
    .tcp_nodelay(true)
    .backlog(4096)
    .max_connection_rate(1024)
    .disable_signals()
    .shutdown_timeout(30)
    .listen(listener)?
    .run();
    let handle = server.handle();
    let server = tokio::spawn(server);
    Ok(RunningServer {
        addr,
        state,
        handle,
        server,
    })
}

impl RunningServer {
    /// Stops accepting connections, lets replies in flight finish for up to `grace`, then
    /// stops the rest (stored `failed`, `interrupted`) and closes.
    pub async fn shutdown(self, grace: Duration) {
        self.handle.pause().await;
        let generations = &self.state.generations;
        let deadline = tokio::time::Instant::now() + grace;
        while !generations.is_empty() && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let stopped = generations.cancel_all(CancelReason::Shutdown);
        if stopped > 0 {
            tracing::warn!(
                stopped,
                "stopped replies still being generated at shutdown; they are stored as failed"
            );
        }
        self.state.tasks.close();
        if tokio::time::timeout(Duration::from_secs(10), self.state.tasks.wait())
            .await
            .is_err()
        {
            tracing::error!("some replies could not be stored before shutdown");
        }
        self.handle.stop(true).await;
        let _ = self.server.await;
    }

    /// Stops at once (tests of crashes use a real process kill instead).
    pub async fn stop_now(self) {
        self.handle.stop(false).await;
        let _ = self.server.await;
    }
}
