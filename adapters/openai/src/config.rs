//! Settings of the provider adapters. The API key is a `SecretString`: its `Debug` prints
//! `[REDACTED]`, and the adapters put it only into the `Authorization` header.

use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};

/// OpenAI's API, the default `base_url`.
pub const DEFAULT_BASE_URL: &str = "https://api.openai.com/v1";

/// The model used when the configuration names none.
pub const DEFAULT_MODEL: &str = "gpt-4.1-mini";

/// How the adapters talk to a provider over the network: timeouts, retries, HTTP version.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProviderConfig {
    /// Longest wait for a TCP (and TLS) connection. Default 10 s.
    pub connect_timeout: Duration,
    /// Longest wait from sending a request to its response's first byte of body (the
    /// status line and headers included). Default 60 s.
    pub first_byte_timeout: Duration,
    /// Longest silence between two pieces of a streaming answer. Default 60 s.
    pub idle_timeout: Duration,
    /// How many times a request is repeated after a connect error (or a connection closed
    /// before any answer), 408, 409, 429 or 5xx, always before any text was produced.
    /// A first-byte or idle timeout is not repeated: the provider may be generating already.
    /// Default 2.
    pub max_retries: u32,
    /// The first pause before a retry; it doubles on each further retry. Default 0.5 s.
    pub initial_backoff: Duration,
    /// The longest pause before a retry. Default 8 s.
    pub max_backoff: Duration,
    /// Speak HTTP/2 from the first byte ("prior knowledge"), which an `http://` base URL
    /// needs for HTTP/2 (h2c): then every reply streams over one shared connection instead
    /// of a connection each. Only for servers that speak HTTP/2 without TLS; an `https://`
    /// provider that offers HTTP/2 is spoken to in HTTP/2 anyway (negotiated in the TLS
    /// handshake), so the option is ignored for one. Default false.
    pub http2_prior_knowledge: bool,
}

impl Default for ProviderConfig {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(10),
            first_byte_timeout: Duration::from_secs(60),
            idle_timeout: Duration::from_secs(60),
            max_retries: 2,
            initial_backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(8),
            http2_prior_knowledge: false,
        }
    }
}

/// Everything an adapter needs: where the provider is, the key, the model and the network
/// settings. `Debug` never shows the key.
#[derive(Clone, Debug)]
pub struct OpenAiConfig {
    /// Sent as `Authorization: Bearer <key>`; an empty key sends no `Authorization` header
    /// (local OpenAI-compatible servers such as Ollama need none).
    pub api_key: SecretString,
    /// The API's root, e.g. `https://api.openai.com/v1` or `http://localhost:11434/v1`.
    pub base_url: String,
    /// The model asked for when a request names none (`default_model()`).
    pub model: String,
    /// The cap on a reply's length when a request sets none; `None` leaves it to the provider.
    pub max_output_tokens: Option<u32>,
    /// Timeouts and retries.
    pub provider: ProviderConfig,
}

impl OpenAiConfig {
    /// OpenAI's API with this key, the default model and default network settings.
    #[must_use]
    pub fn new(api_key: SecretString) -> Self {
        Self {
            api_key,
            base_url: DEFAULT_BASE_URL.to_owned(),
            model: DEFAULT_MODEL.to_owned(),
            max_output_tokens: None,
            provider: ProviderConfig::default(),
        }
    }

    /// The same configuration pointed at another API root.
    #[must_use]
    pub fn with_base_url(mut self, base_url: impl Into<String>) -> Self {
        self.base_url = base_url.into();
        self
    }

    /// The same configuration with another default model.
    #[must_use]
    pub fn with_model(mut self, model: impl Into<String>) -> Self {
        self.model = model.into();
        self
    }

    /// The same configuration with other network settings.
    #[must_use]
    pub fn with_provider(mut self, provider: ProviderConfig) -> Self {
        self.provider = provider;
        self
    }

    /// Checks the settings and returns the validated API root (no trailing slash).
    pub(crate) fn validate(&self) -> Result<reqwest::Url, ConfigError> {
        let trimmed = self.base_url.trim().trim_end_matches('/');
        let url = reqwest::Url::parse(trimmed).map_err(|e| ConfigError::InvalidBaseUrl {
            // A URL with userinfo may carry a password: never repeat it.
            url: if trimmed.contains('@') {
                "[REDACTED]".to_owned()
            } else {
                trimmed.to_owned()
            },
            reason: e.to_string(),
        })?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(ConfigError::InvalidBaseUrl {
                url: trimmed.to_owned(),
                reason: "the scheme must be http or https".to_owned(),
            });
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(ConfigError::InvalidBaseUrl {
                url: format!("{}://{}", url.scheme(), url.host_str().unwrap_or("")),
                reason: "credentials in the URL are not allowed (they would be logged); set the API key instead"
                    .to_owned(),
            });
        }
        if url.query().is_some() || url.fragment().is_some() {
            return Err(ConfigError::InvalidBaseUrl {
                // The query may hold a key (`?api_key=`): only where the URL points is said.
                url: format!(
                    "{}://{}{}",
                    url.scheme(),
                    url.host_str().unwrap_or(""),
                    url.path()
                ),
                reason: "a query or fragment is not allowed".to_owned(),
            });
        }
        if self.model.trim().is_empty() {
            return Err(ConfigError::MissingModel);
        }
        let key = self.api_key.expose_secret();
        if reqwest::header::HeaderValue::from_str(&format!("Bearer {key}")).is_err() {
            return Err(ConfigError::InvalidApiKey);
        }
        if self.provider.first_byte_timeout.is_zero() || self.provider.idle_timeout.is_zero() {
            return Err(ConfigError::InvalidTimeout);
        }
        Ok(url)
    }
}

/// `{base}/{path}` for a validated base URL.
pub(crate) fn endpoint(base: &reqwest::Url, path: &str) -> Result<reqwest::Url, ConfigError> {
    let joined = format!("{}/{path}", base.as_str().trim_end_matches('/'));
    reqwest::Url::parse(&joined).map_err(|e| ConfigError::InvalidBaseUrl {
        url: joined,
        reason: e.to_string(),
    })
}

/// Why an adapter could not be built from its configuration. Never contains the key.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The base URL is not an absolute http(s) URL.
    #[error("the provider base URL {url:?} is invalid: {reason}")]
    InvalidBaseUrl { url: String, reason: String },
    /// No model was configured.
    #[error("no model is configured for the provider")]
    MissingModel,
    /// The key contains characters an HTTP header cannot carry.
    #[error("the API key contains characters that cannot be sent in an HTTP header")]
    InvalidApiKey,
    /// A first-byte or idle timeout of zero.
    #[error("the provider's first-byte and idle timeouts must be longer than zero")]
    InvalidTimeout,
    /// The HTTP client could not be built (e.g. no TLS roots).
    #[error("the HTTP client could not be built: {0}")]
    Client(String),
}

#[cfg(test)]
mod tests {

    use super::*;

    fn config(base_url: &str) -> OpenAiConfig {
        OpenAiConfig::new(SecretString::from("sk-test")).with_base_url(base_url)
    }

    #[test]
    fn defaults_are_the_documented_ones() {
        let c = OpenAiConfig::new(SecretString::from("sk-test"));
        assert_eq!(c.base_url, "https://api.openai.com/v1");
        assert_eq!(c.model, "gpt-4.1-mini");
        assert_eq!(c.provider.connect_timeout, Duration::from_secs(10));
        assert_eq!(c.provider.first_byte_timeout, Duration::from_secs(60));
        assert_eq!(c.provider.idle_timeout, Duration::from_secs(60));
        assert_eq!(c.provider.max_retries, 2);
        assert!(!c.provider.http2_prior_knowledge);
    }

    #[test]
    fn a_trailing_slash_is_dropped_from_the_base_url() {
        let url = config("http://localhost:11434/v1/").validate().unwrap();
        assert_eq!(url.as_str(), "http://localhost:11434/v1");
    }

    #[test]
    fn endpoints_are_appended_to_the_base_url() {
        let base = config("http://localhost:11434/v1/").validate().unwrap();
        assert_eq!(
            endpoint(&base, "chat/completions").unwrap().as_str(),
            "http://localhost:11434/v1/chat/completions"
        );
        let bare = config("https://llm.example").validate().unwrap();
        assert_eq!(
            endpoint(&bare, "responses").unwrap().as_str(),
            "https://llm.example/responses"
        );
    }

    #[test]
    fn base_urls_that_are_not_http_are_refused() {
        for bad in [
            "localhost:8080",
            "ftp://example.com/v1",
            "not a url",
            "http://h/v1?x=1",
            "https://user:pw@h/v1",
        ] {
            assert!(
                matches!(
                    config(bad).validate(),
                    Err(ConfigError::InvalidBaseUrl { .. })
                ),
                "{bad} was accepted"
            );
        }
    }

    #[test]
    fn credentials_in_the_base_url_are_refused_without_being_shown() {
        let err = config("https://user:hunter2@h/v1").validate().unwrap_err();
        assert!(!format!("{err} {err:?}").contains("hunter2"));
        let err = config("https://gw/v1?api_key=hunter2")
            .validate()
            .unwrap_err();
        assert!(!format!("{err} {err:?}").contains("hunter2"), "{err}");
    }

    #[test]
    fn an_empty_model_is_refused() {
        let c = config("http://localhost/v1").with_model(" ");
        assert!(matches!(c.validate(), Err(ConfigError::MissingModel)));
    }

    #[test]
    fn a_key_that_cannot_be_a_header_is_refused_without_being_shown() {
        let c = OpenAiConfig::new(SecretString::from("sk-line\nbreak"));
        let err = c.validate().unwrap_err();
        assert!(matches!(err, ConfigError::InvalidApiKey));
        assert!(!format!("{err} {err:?}").contains("sk-line"));
    }

    #[test]
    fn debug_output_never_shows_the_key() {
        let c = OpenAiConfig::new(SecretString::from("sk-very-secret-123"));
        assert!(!format!("{c:?}").contains("sk-very-secret-123"));
    }
}
