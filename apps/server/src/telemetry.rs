//! Logs and per-request observation: a request id on every log line and response, and
//! request metrics by route pattern, with labels bounded whatever a client sends (metrics.rs).

use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::web;
use tracing::Instrument;
use tracing_subscriber::EnvFilter;

use crate::config::LogFormat;
use crate::metrics::UNKNOWN_ROUTE;
use crate::state::AppState;

pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Installs the global subscriber (once; later calls are ignored). `RUST_LOG` overrides the
/// default level `info`.
pub fn init_logging(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info,actix_server=warn,actix_web=warn"));
    // Logs go to stderr, coloured only on a terminal.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    let _ = match format {
        LogFormat::Human => builder.try_init(),
        LogFormat::Json => builder
            .json()
            .with_current_span(true)
            .with_span_list(false)
            .try_init(),
    };
}

/// A request id from the client when it is short and plain, else a new one.
fn request_id(req: &ServiceRequest) -> String {
    req.headers()
        .get(&REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|v| {
            !v.is_empty()
                && v.len() <= 64
                && v.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
        })
        .map_or_else(|| uuid::Uuid::now_v7().to_string(), str::to_owned)
}

/// Wraps every request in a span with its id, and counts it.
pub async fn observe(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let id = request_id(&req);
    let metrics = req
        .app_data::<web::Data<AppState>>()
        .map(|state| std::sync::Arc::clone(&state.metrics));
    let span = tracing::info_span!("request", request_id = %id, method = %req.method(), path = %req.path());
    let started = Instant::now();
    let method = req.method().clone();
    let outcome = next.call(req).instrument(span.clone()).await;
    let elapsed = started.elapsed();
    let mut response = match outcome {
        Ok(response) => response,
        Err(error) => {
            // No answer (a handler panicked, error.rs): actix answers from the error, and
            // the route is not known any more.
            let status = error.as_response_error().status_code();
            if let Some(metrics) = metrics {
                metrics.observe_request(Some(UNKNOWN_ROUTE), &method, status, elapsed);
            }
            span.in_scope(|| {
                tracing::warn!(
                    status = status.as_u16(),
                    elapsed_ms = elapsed.as_secs_f64() * 1e3,
                    "answered from an error"
                );
            });
            return Err(error);
        }
    };
    let status = response.status();
    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert(REQUEST_ID, value);
    }
    if let Some(metrics) = metrics {
        // The pattern, never the raw path: the labels stay bounded (metrics.rs).
        let route = response.request().match_pattern();
        metrics.observe_request(route.as_deref(), &method, status, elapsed);
    }
    let status = status.as_u16();
    span.in_scope(|| {
        if status >= 500 {
            tracing::warn!(status, elapsed_ms = elapsed.as_secs_f64() * 1e3, "answered");
        } else {
            tracing::info!(status, elapsed_ms = elapsed.as_secs_f64() * 1e3, "answered");
        }
    });
    Ok(response)
}
