//! Serving the application (built by `compose`) and shutting it down gracefully.

use std::net::{SocketAddr, TcpListener};
use std::time::Duration;

use actix_web::dev::ServerHandle;
use actix_web::middleware::{Compress, DefaultHeaders, from_fn};
use actix_web::{App, HttpServer, web};
use confab_core::CancelReason;

pub use crate::compose::{Adapters, build_state};
use crate::config::Settings;
use crate::extract::{path_error, query_error};
use crate::state::AppState;
use crate::{routes, telemetry};

/// How long the replies stopped at the end of the grace period get to be stored: with the
/// default grace (8 s) this ends before an orchestrator's SIGKILL (`docker stop`: 10 s).
/// A reply that could not be stored by then is ended by the next sweep or start.
pub const STORE_AFTER_GRACE: Duration = Duration::from_millis(1_500);

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
            // Innermost: every error answer of the routes (and of the authentication middleware
            // of the `/api` scope, routes/mod.rs) leaves as problem+json, before compression.
            .wrap(from_fn(crate::error::problems))
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
        if tokio::time::timeout(STORE_AFTER_GRACE, self.state.tasks.wait())
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
