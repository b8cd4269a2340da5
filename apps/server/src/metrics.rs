//! Prometheus metrics at `/metrics`.

use std::sync::Mutex;
use std::time::Duration;

use actix_web::http::{Method, StatusCode};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// The labels of a request. Every one takes a bounded set of values whatever a client sends
/// (before authentication too): `route` is a pattern of the route table,
/// [`UNMATCHED_ROUTE`] or [`UNKNOWN_ROUTE`], `method` one of [`KNOWN_METHODS`] or `other`, and `status` one the
/// server answers with (a `StatusCode` is 100–999, and the server writes a fixed few).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct HttpLabels {
    pub route: String,
    pub method: &'static str,
    pub status: u16,
}

/// The route label of a request that matched no route (an unknown path, under `/api` too).
pub const UNMATCHED_ROUTE: &str = "unmatched";

/// The route label of a request that ended in an error instead of an answer (a panic), when
/// its route is not known any more.
pub const UNKNOWN_ROUTE: &str = "unknown";

/// The methods that are labelled by name (RFC 9110's); any other is `other`.
pub const KNOWN_METHODS: [&str; 9] = [
    "GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "CONNECT", "TRACE",
];

/// The label of `method`: its name when it is a known one, else `other`.
#[must_use]
pub fn method_label(method: &Method) -> &'static str {
    KNOWN_METHODS
        .iter()
        .find(|known| **known == method.as_str())
        .copied()
        .unwrap_or("other")
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteLabels {
    pub route: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabels {
    pub kind: String,
}

/// The labels of counted tokens: the model, and `input`, `cached_input`, `output` or
/// `reasoning`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TokenLabels {
    pub model: String,
    pub kind: &'static str,
}

type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

fn latency_histogram() -> Histogram {
    // 100 µs … ~3.3 s
    Histogram::new(exponential_buckets(0.000_1, 2.0, 16))
}

/// Every metric the server exports.
pub struct Metrics {
    registry: Mutex<Registry>,
    pub requests: Family<HttpLabels, Counter>,
    pub request_seconds: HistogramFamily<RouteLabels>,
    pub open_streams: Gauge,
    pub followers: Gauge,
    pub time_to_first_token: Histogram,
    pub relay_overhead: Histogram,
    pub deltas_relayed: Counter,
    pub replies: Family<KindLabels, Counter>,
    pub provider_errors: Family<KindLabels, Counter>,
    pub tokens: Family<TokenLabels, Counter>,
    pub quota_refusals: Counter,
}

impl Metrics {
    #[must_use]
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("confab");
        let requests = Family::<HttpLabels, Counter>::default();
        let request_seconds: HistogramFamily<RouteLabels> =
            Family::new_with_constructor(latency_histogram);
        let open_streams = Gauge::default();
        let followers = Gauge::default();
        let time_to_first_token = Histogram::new(exponential_buckets(0.001, 2.0, 16));
        let relay_overhead = latency_histogram();
        let deltas_relayed = Counter::default();
        let replies = Family::<KindLabels, Counter>::default();
        let provider_errors = Family::<KindLabels, Counter>::default();
        let tokens = Family::<TokenLabels, Counter>::default();
        let quota_refusals = Counter::default();
        registry.register(
            "tokens",
            "Tokens of model calls recorded in the usage ledger, by model and kind",
            tokens.clone(),
        );
        registry.register(
            "quota_refusals",
            "Sends refused for a user's token quota",
            quota_refusals.clone(),
        );
        registry.register(
            "http_requests",
            "HTTP requests by route, method and status",
            requests.clone(),
        );
        registry.register(
            "http_request_duration_seconds",
            "Time to the response head, by route",
            request_seconds.clone(),
        );
        registry.register(
            "chat_open_streams",
            "Chat streams being relayed now",
            open_streams.clone(),
        );
        registry.register(
            "chat_followers",
            "Followers of live replies (GET …/stream) being relayed now",
            followers.clone(),
        );
        registry.register(
            "chat_time_to_first_token_seconds",
            "From the send request to the first delta relayed",
            time_to_first_token.clone(),
        );
        registry.register(
            "chat_relay_overhead_seconds",
            "What the server adds before the provider is called: authentication, validation and every database write",
            relay_overhead.clone(),
        );
        registry.register(
            "chat_deltas_relayed",
            "Deltas relayed to clients",
            deltas_relayed.clone(),
        );
        registry.register(
            "chat_replies",
            "Finished replies by outcome",
            replies.clone(),
        );
        registry.register(
            "chat_provider_errors",
            "Provider failures by kind",
            provider_errors.clone(),
        );
        Self {
            registry: Mutex::new(registry),
            requests,
            request_seconds,
            open_streams,
            followers,
            time_to_first_token,
            relay_overhead,
            deltas_relayed,
            replies,
            provider_errors,
            tokens,
            quota_refusals,
        }
    }

    /// Counts the tokens of one recorded model call.
    pub fn observe_tokens(&self, model: &str, tokens: &confab_core::usage::TokenCounts) {
        for (kind, n) in [
            ("input", tokens.input),
            ("cached_input", tokens.cached_input),
            ("output", tokens.output),
            ("reasoning", tokens.reasoning),
        ] {
            self.tokens
                .get_or_create(&TokenLabels {
                    model: model.to_owned(),
                    kind,
                })
                .inc_by(n);
        }
    }

    /// Counts one answered request. `route` is the pattern of the route that matched (from
    /// `HttpRequest::match_pattern`, never the raw path), `None` when none did.
    pub fn observe_request(
        &self,
        route: Option<&str>,
        method: &Method,
        status: StatusCode,
        elapsed: Duration,
    ) {
        let route = route.unwrap_or(UNMATCHED_ROUTE);
        self.requests
            .get_or_create(&HttpLabels {
                route: route.to_owned(),
                method: method_label(method),
                status: status.as_u16(),
            })
            .inc();
        self.request_seconds
            .get_or_create(&RouteLabels {
                route: route.to_owned(),
            })
            .observe(elapsed.as_secs_f64());
    }

    /// The text exposition format.
    #[must_use]
    pub fn render(&self) -> String {
        let mut out = String::new();
        let registry = self
            .registry
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if encode(&mut out, &registry).is_err() {
            out.clear();
        }
        out
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rendered_metrics_contain_what_was_observed() {
        let metrics = Metrics::new();
        metrics.observe_request(
            Some("/api/projects"),
            &Method::GET,
            StatusCode::OK,
            Duration::from_millis(3),
        );
        metrics.deltas_relayed.inc_by(5);
        let text = metrics.render();
        assert!(text.contains("confab_http_requests_total{route=\"/api/projects\",method=\"GET\",status=\"200\"} 1"), "{text}");
        assert!(
            text.contains("confab_chat_deltas_relayed_total 5"),
            "{text}"
        );
    }

    #[test]
    fn made_up_methods_and_unmatched_paths_share_one_label_each() {
        let metrics = Metrics::new();
        for n in 0..50 {
            let method = Method::from_bytes(format!("FOO{n}").as_bytes()).unwrap();
            metrics.observe_request(None, &method, StatusCode::NOT_FOUND, Duration::ZERO);
        }
        for known in KNOWN_METHODS {
            let method = Method::from_bytes(known.as_bytes()).unwrap();
            assert_eq!(method_label(&method), known);
        }
        let text = metrics.render();
        let series = text
            .lines()
            .filter(|line| line.starts_with("confab_http_requests_total{"))
            .collect::<Vec<_>>();
        assert_eq!(
            series,
            ["confab_http_requests_total{route=\"unmatched\",method=\"other\",status=\"404\"} 50"]
        );
    }
}
