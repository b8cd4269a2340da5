//! When a failed request is repeated, and after how long. Pure functions, so that every rule
//! has a unit test.

use std::time::Duration;

use reqwest::header::HeaderMap;

use crate::config::ProviderConfig;

/// The longest `retry-after` a provider may ask for and be obeyed; longer (or unparsable)
/// values fall back to the computed backoff, as OpenAI's own SDKs do.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(60);

/// The provider's error code that means "no credit left": retrying cannot help.
pub(crate) const INSUFFICIENT_QUOTA: &str = "insufficient_quota";

/// Whether a request that got `status` should be repeated. `insufficient_quota` and 400,
/// 401, 403, 404 never are; otherwise `x-should-retry` decides when present, else the status
/// (408, 409, 429, 5xx).
pub(crate) fn should_retry(
    status: u16,
    should_retry_header: Option<bool>,
    code: Option<&str>,
) -> bool {
    if code == Some(INSUFFICIENT_QUOTA) || matches!(status, 400 | 401 | 403 | 404) {
        return false;
    }
    if let Some(decided) = should_retry_header {
        return decided;
    }
    matches!(status, 408 | 409 | 429) || (500..=599).contains(&status)
}

/// The provider's `x-should-retry: true|false` header, when present and readable.
pub(crate) fn should_retry_header(headers: &HeaderMap) -> Option<bool> {
    let value = headers.get("x-should-retry")?.to_str().ok()?.trim();
    if value.eq_ignore_ascii_case("true") {
        Some(true)
    } else if value.eq_ignore_ascii_case("false") {
        Some(false)
    } else {
        None
    }
}

/// The wait the provider asked for: `retry-after-ms` (milliseconds, may be fractional), else
/// `retry-after` (whole or fractional seconds). Only values in (0, 60 s] are taken; an HTTP
/// date in `retry-after` is not, and the computed backoff is used instead.
pub(crate) fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let header = |name: &str| -> Option<f64> {
        headers
            .get(name)?
            .to_str()
            .ok()?
            .trim()
            .parse::<f64>()
            .ok()
            .filter(|v| v.is_finite() && *v > 0.0)
    };
    let wait = header("retry-after-ms")
        .map(|ms| Duration::from_secs_f64(ms / 1000.0))
        .or_else(|| header("retry-after").map(Duration::from_secs_f64))?;
    (wait <= MAX_RETRY_AFTER).then_some(wait)
}

/// The pause before retry number `attempt + 1`: `initial_backoff * 2^attempt`, at most
/// `max_backoff`, shortened by up to a quarter at random (`jitter` in [0, 1)) so that many
/// clients do not retry in lockstep.
pub(crate) fn backoff(attempt: u32, config: &ProviderConfig, jitter: f64) -> Duration {
    let factor = 2u32.saturating_pow(attempt.min(16));
    let base = config
        .initial_backoff
        .saturating_mul(factor)
        .min(config.max_backoff);
    base.mul_f64(1.0 - 0.25 * jitter.clamp(0.0, 1.0))
}

/// `backoff` with a random jitter.
pub(crate) fn jittered_backoff(attempt: u32, config: &ProviderConfig) -> Duration {
    backoff(attempt, config, rand::random::<f64>())
}

#[cfg(test)]
mod tests {

    use reqwest::header::HeaderValue;

    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, HeaderValue::from_static(value));
        }
        map
    }

    #[test]
    fn transient_statuses_are_retried() {
        for status in [408, 409, 429, 500, 502, 503, 504, 599] {
            assert!(should_retry(status, None, None), "{status}");
        }
    }

    #[test]
    fn client_errors_are_not_retried() {
        for status in [400, 401, 403, 404, 422] {
            assert!(!should_retry(status, None, None), "{status}");
        }
    }

    #[test]
    fn insufficient_quota_is_not_retried_even_on_429_or_when_the_header_says_so() {
        assert!(!should_retry(429, None, Some("insufficient_quota")));
        assert!(!should_retry(429, Some(true), Some("insufficient_quota")));
    }

    #[test]
    fn the_should_retry_header_overrides_the_status() {
        assert!(!should_retry(500, Some(false), None));
        assert!(!should_retry(429, Some(false), None));
        assert!(should_retry(422, Some(true), None));
    }

    #[test]
    fn the_should_retry_header_never_retries_auth_and_bad_requests() {
        for status in [400, 401, 403, 404] {
            assert!(!should_retry(status, Some(true), None), "{status}");
        }
    }

    #[test]
    fn the_should_retry_header_is_read_case_insensitively() {
        assert_eq!(
            should_retry_header(&headers(&[("x-should-retry", "TRUE")])),
            Some(true)
        );
        assert_eq!(
            should_retry_header(&headers(&[("x-should-retry", "false")])),
            Some(false)
        );
        assert_eq!(
            should_retry_header(&headers(&[("x-should-retry", "maybe")])),
            None
        );
        assert_eq!(should_retry_header(&HeaderMap::new()), None);
    }

    #[test]
    fn retry_after_ms_wins_over_retry_after() {
        let h = headers(&[("retry-after-ms", "250"), ("retry-after", "7")]);
        assert_eq!(retry_after(&h), Some(Duration::from_millis(250)));
    }

    #[test]
    fn retry_after_in_seconds_is_read() {
        assert_eq!(
            retry_after(&headers(&[("retry-after", "2")])),
            Some(Duration::from_secs(2))
        );
        assert_eq!(
            retry_after(&headers(&[("retry-after", "0.5")])),
            Some(Duration::from_millis(500))
        );
    }

    #[test]
    fn unreasonable_retry_after_values_are_ignored() {
        for value in ["0", "-1", "3600", "soon", "Wed, 21 Oct 2015 07:28:00 GMT"] {
            assert_eq!(
                retry_after(&headers(&[("retry-after", value)])),
                None,
                "{value}"
            );
        }
        assert_eq!(retry_after(&headers(&[("retry-after-ms", "NaN")])), None);
    }

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let config = ProviderConfig {
            initial_backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(8),
            ..ProviderConfig::default()
        };
        assert_eq!(backoff(0, &config, 0.0), Duration::from_millis(500));
        assert_eq!(backoff(1, &config, 0.0), Duration::from_secs(1));
        assert_eq!(backoff(2, &config, 0.0), Duration::from_secs(2));
        assert_eq!(backoff(10, &config, 0.0), Duration::from_secs(8));
        assert_eq!(backoff(u32::MAX, &config, 0.0), Duration::from_secs(8));
    }

    #[test]
    fn jitter_shortens_the_pause_by_at_most_a_quarter() {
        let config = ProviderConfig::default();
        assert_eq!(backoff(0, &config, 1.0), Duration::from_millis(375));
        for _ in 0..100 {
            let d = jittered_backoff(0, &config);
            assert!(
                d > Duration::from_millis(374) && d <= Duration::from_millis(500),
                "{d:?}"
            );
        }
    }
}
