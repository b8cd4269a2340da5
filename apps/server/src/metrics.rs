//! Prometheus metrics at `/metrics`.

use std::sync::Mutex;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct HttpLabels {
    pub route: String,
    pub method: String,
    pub status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteLabels {
    pub route: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabels {
    pub kind: String,
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
    pub time_to_first_token: Histogram,
    pub relay_overhead: Histogram,
    pub deltas_relayed: Counter,
    pub replies: Family<KindLabels, Counter>,
    pub provider_errors: Family<KindLabels, Counter>,
}

impl Metrics {
    #[must_use]
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("confab");
        let requests = Family::<HttpLabels, Counter>::default();
        let request_seconds: HistogramFamily<RouteLabels> =
            Family::new_with_constructor(latency_histogram);
        let open_streams = Gauge::default();
        let time_to_first_token = Histogram::new(exponential_buckets(0.001, 2.0, 16));
        let relay_overhead = latency_histogram();
        let deltas_relayed = Counter::default();
        let replies = Family::<KindLabels, Counter>::default();
        let provider_errors = Family::<KindLabels, Counter>::default();
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
            time_to_first_token,
            relay_overhead,
            deltas_relayed,
            replies,
            provider_errors,
        }
    }

    /// Counts one answered request.
    pub fn observe_request(&self, route: &str, method: &str, status: u16, elapsed: Duration) {
        self.requests
            .get_or_create(&HttpLabels {
                route: route.to_owned(),
                method: method.to_owned(),
                status,
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
        metrics.observe_request("/api/projects", "GET", 200, Duration::from_millis(3));
        metrics.deltas_relayed.inc_by(5);
        let text = metrics.render();
        assert!(text.contains("confab_http_requests_total{route=\"/api/projects\",method=\"GET\",status=\"200\"} 1"), "{text}");
        assert!(
            text.contains("confab_chat_deltas_relayed_total 5"),
            "{text}"
        );
    }
}
