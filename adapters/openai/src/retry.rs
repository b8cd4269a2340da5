//! When a failed request is repeated, and after how long. Pure functions, so that every rule
//! has a unit test.

use std::time::{Duration, SystemTime};

use reqwest::header::HeaderMap;

use crate::config::ProviderConfig;

/// The longest `retry-after` a provider may ask for and be obeyed; longer (or unparsable)
/// values fall back to the computed backoff, as OpenAI's own SDKs do.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(60);

/// Whether a request that got `status` should be repeated. One that ran out of quota (no
/// credit left: retrying cannot help) and 400, 401, 403, 404 never are; otherwise
/// `x-should-retry` decides when present, else the status (408, 409, 429, 5xx).
pub(crate) fn should_retry(
    status: u16,
    should_retry_header: Option<bool>,
    out_of_quota: bool,
) -> bool {
    if out_of_quota || matches!(status, 400 | 401 | 403 | 404) {
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
/// `retry-after` (whole or fractional seconds, or an HTTP date). Only waits in (0, 60 s] are
/// taken; anything else (longer, zero, negative, NaN, infinite, unreadable, a date in the
/// past) gives `None`, and the computed backoff is used instead, as OpenAI's own SDKs do.
///
/// The header is the provider's input: no value may panic here (`Duration::from_secs_f64`
/// panics on one too large for a `Duration`, e.g. `1e30`, and this runs inside a reply's task).
pub(crate) fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    retry_after_at(headers, SystemTime::now())
}

/// `retry_after` with the current time given, for an HTTP date.
fn retry_after_at(headers: &HeaderMap, now: SystemTime) -> Option<Duration> {
    let header = |name: &str| -> Option<&str> {
        Some(headers.get(name)?.to_str().ok()?.trim()).filter(|v| !v.is_empty())
    };
    if let Some(wait) = header("retry-after-ms").and_then(|v| seconds(v, 1000.0)) {
        return Some(wait);
    }
    let value = header("retry-after")?;
    seconds(value, 1.0).or_else(|| until_date(value, now))
}

/// `value` as a number of units (`per_second` of them make a second), when it is a wait
/// in (0, `MAX_RETRY_AFTER`].
fn seconds(value: &str, per_second: f64) -> Option<Duration> {
    let number = value.parse::<f64>().ok()?;
    let wait = Duration::try_from_secs_f64(number / per_second).ok()?;
    reasonable(wait)
}

/// The time from `now` to the HTTP date `value` (`Wed, 21 Oct 2015 07:28:00 GMT`).
fn until_date(value: &str, now: SystemTime) -> Option<Duration> {
    let at = httpdate::parse_http_date(value).ok()?;
    reasonable(at.duration_since(now).ok()?)
}

fn reasonable(wait: Duration) -> Option<Duration> {
    (!wait.is_zero() && wait <= MAX_RETRY_AFTER).then_some(wait)
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
            assert!(should_retry(status, None, false), "{status}");
        }
    }

    #[test]
    fn client_errors_are_not_retried() {
        for status in [400, 401, 403, 404, 422] {
            assert!(!should_retry(status, None, false), "{status}");
        }
    }

    #[test]
    fn insufficient_quota_is_not_retried_even_on_429_or_when_the_header_says_so() {
        assert!(!should_retry(429, None, true));
        assert!(!should_retry(429, Some(true), true));
    }

    #[test]
    fn the_should_retry_header_overrides_the_status() {
        assert!(!should_retry(500, Some(false), false));
        assert!(!should_retry(429, Some(false), false));
        assert!(should_retry(422, Some(true), false));
    }

    #[test]
    fn the_should_retry_header_never_retries_auth_and_bad_requests() {
        for status in [400, 401, 403, 404] {
            assert!(!should_retry(status, Some(true), false), "{status}");
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
        for value in ["0", "-1", "3600", "60.001", "soon", "", "  ", "0x10", "1e"] {
            assert_eq!(
                retry_after(&headers(&[("retry-after", value)])),
                None,
                "{value}"
            );
        }
        assert_eq!(retry_after(&headers(&[("retry-after-ms", "NaN")])), None);
    }

    /// Values that made `Duration::from_secs_f64` panic inside the reply's task: too large
    /// for a `Duration`, infinite, NaN, negative zero, subnormal.
    #[test]
    fn no_retry_after_value_panics() {
        let values = [
            "1e30",
            "-1e30",
            "1e308",
            "1.8e308",
            "inf",
            "-inf",
            "infinity",
            "NaN",
            "-NaN",
            "-0",
            "-0.0",
            "5e-324",
            "18446744073709551616",
            "340282366920938463463374607431768211456",
            "9999999999999999999999999999999999999",
        ];
        for value in values {
            for name in ["retry-after-ms", "retry-after"] {
                assert_eq!(
                    retry_after(&headers(&[(name, value)])),
                    None,
                    "{name}: {value}"
                );
            }
        }
    }

    #[test]
    fn an_unusable_retry_after_ms_falls_back_to_retry_after() {
        let h = headers(&[("retry-after-ms", "1e30"), ("retry-after", "2")]);
        assert_eq!(retry_after(&h), Some(Duration::from_secs(2)));
    }

    #[test]
    fn the_longest_wait_obeyed_is_sixty_seconds() {
        assert_eq!(
            retry_after(&headers(&[("retry-after", "60")])),
            Some(Duration::from_secs(60))
        );
        assert_eq!(
            retry_after(&headers(&[("retry-after-ms", "60000")])),
            Some(Duration::from_secs(60))
        );
        assert_eq!(retry_after(&headers(&[("retry-after-ms", "60001")])), None);
    }

    #[test]
    fn retry_after_as_an_http_date_is_the_time_until_then() {
        let now = httpdate::parse_http_date("Wed, 21 Oct 2015 07:28:00 GMT").unwrap();
        let at = |value: &'static str| retry_after_at(&headers(&[("retry-after", value)]), now);
        assert_eq!(
            at("Wed, 21 Oct 2015 07:28:30 GMT"),
            Some(Duration::from_secs(30))
        );
        assert_eq!(at("Wed, 21 Oct 2015 07:28:00 GMT"), None, "now");
        assert_eq!(at("Wed, 21 Oct 2015 07:27:00 GMT"), None, "past");
        assert_eq!(at("Wed, 21 Oct 2015 09:28:00 GMT"), None, "too far");
        assert_eq!(at("Fri, 31 Dec 9999 23:59:59 GMT"), None, "far future");
        assert_eq!(at("Wed, 99 Oct 2015 07:28:00 GMT"), None, "not a date");
        assert_eq!(
            retry_after(&headers(&[(
                "retry-after",
                "Wed, 21 Oct 2015 07:28:00 GMT"
            )])),
            None,
            "a date in the past"
        );
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
