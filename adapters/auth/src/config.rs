//! Configuration of the auth adapters, as the server reads it from the environment, and the
//! rules that derive what is missing (Clerk's issuer and JWKS URL from the publishable key).
//! Every error names the environment variable to fix.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use base64::alphabet;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use jsonwebtoken::DecodingKey;
use reqwest::Url;
use secrecy::{ExposeSecret, SecretString};

use confab_core::clock::{Clock, SystemClock};

/// A setting that is missing or cannot be used. Never carries a secret's value.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// A required setting is not set.
    #[error("{variable} is not set: {hint}")]
    Missing {
        /// The environment variable to set.
        variable: &'static str,
        /// What it is needed for, or what to set instead.
        hint: &'static str,
    },
    /// A setting is set but unusable.
    #[error("{variable} is invalid: {reason}")]
    Invalid {
        /// The environment variable to fix.
        variable: &'static str,
        /// Why it cannot be used (never its value when it is a secret).
        reason: String,
    },
    /// The HTTP client that fetches signing keys could not be built.
    #[error("the HTTP client for fetching signing keys could not be built: {0}")]
    HttpClient(String),
}

fn invalid(variable: &'static str, reason: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        variable,
        reason: reason.into(),
    }
}

/// How signing keys are fetched and cached. The defaults suit production; tests shorten them
/// or inject a [`ManualClock`](confab_core::clock::ManualClock).
///
/// How long a fetched key set is used before it is refreshed is not set here: the issuer
/// says it with `Cache-Control: max-age`, bounded by [`crate::jwks::MIN_MAX_AGE`] and
/// [`crate::jwks::MAX_MAX_AGE`] (see [`crate::jwks`]).
#[derive(Clone, Debug)]
pub struct JwksOptions {
    /// A token naming an unknown `kid` refetches the key set at most this often (default 60 s).
    pub unknown_kid_refetch_interval: Duration,
    /// While no key set was ever fetched, a failed fetch is retried at most this often
    /// (default 5 s); requests in between are answered `Unavailable` at once.
    pub cold_retry_interval: Duration,
    /// After a failed fetch of a set that is cached already, the next attempt waits this long
    /// (default 30 s), doubling with each further failure up to `retry_backoff_max`.
    /// Requests in between are served from the cached set without touching the network.
    pub retry_backoff_initial: Duration,
    /// The longest wait between two attempts while the issuer keeps failing (default 10 min).
    pub retry_backoff_max: Duration,
    /// Timeout to establish the connection to the issuer (default 5 s).
    pub connect_timeout: Duration,
    /// Timeout of one whole request, body included (default 10 s).
    pub request_timeout: Duration,
    /// A key set or discovery document larger than this is refused (default 1 MiB).
    pub max_document_bytes: usize,
    /// The time the cache reads for expiry, backoff and rate limits (default the system's).
    pub clock: Arc<dyn Clock>,
}

impl Default for JwksOptions {
    fn default() -> Self {
        Self {
            unknown_kid_refetch_interval: Duration::from_secs(60),
            cold_retry_interval: Duration::from_secs(5),
            retry_backoff_initial: Duration::from_secs(30),
            retry_backoff_max: Duration::from_secs(600),
            connect_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_secs(10),
            max_document_bytes: 1024 * 1024,
            clock: Arc::new(SystemClock),
        }
    }
}

/// Clerk settings as given (`CLERK_*` variables); empty strings count as unset.
/// [`ClerkConfig::resolve`] derives what is missing.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ClerkConfig {
    /// `CLERK_PUBLISHABLE_KEY`: `pk_test_…`/`pk_live_…`; encodes the Frontend API host.
    pub publishable_key: Option<String>,
    /// `CLERK_JWKS_URL`; default `https://<frontend-api-host>/.well-known/jwks.json`.
    pub jwks_url: Option<String>,
    /// `CLERK_ISSUER`; default `https://<frontend-api-host>`.
    pub issuer: Option<String>,
    /// `CLERK_JWT_KEY`: the instance's PEM public key, for verification with no network.
    /// When set, the JWKS is never fetched.
    pub jwt_key_pem: Option<String>,
    /// `CLERK_AUTHORIZED_PARTIES`: allowed `azp` values (origins). Empty: `azp` is not checked.
    pub authorized_parties: Vec<String>,
}

/// Where a Clerk verifier gets its public keys.
#[derive(Clone, Debug)]
pub enum ClerkKeys {
    /// From the instance's JWKS, chosen by the token's `kid`.
    Jwks {
        /// The JWKS URL.
        url: Url,
    },
    /// One fixed RSA public key (`CLERK_JWT_KEY`); no network at all.
    Pem(DecodingKey),
}

/// Clerk settings with everything derived and checked.
#[derive(Clone, Debug)]
pub struct ClerkSettings {
    /// The Frontend API URL, which every token's `iss` must equal.
    pub issuer: String,
    /// Where the public keys come from.
    pub keys: ClerkKeys,
    /// Allowed `azp` values; empty means `azp` is not checked.
    pub authorized_parties: Vec<String>,
}

impl ClerkConfig {
    /// Splits a comma-separated `CLERK_AUTHORIZED_PARTIES` value into origins, dropping
    /// blanks and trailing slashes.
    #[must_use]
    pub fn parse_authorized_parties(raw: &str) -> Vec<String> {
        raw.split(',')
            .map(|p| p.trim().trim_end_matches('/'))
            .filter(|p| !p.is_empty())
            .map(str::to_owned)
            .collect()
    }

    /// Derives the issuer and JWKS URL when they are not given and checks every value.
    ///
    /// - issuer: `CLERK_ISSUER`, else `https://<host>` from the publishable key, else the
    ///   origin of a `CLERK_JWKS_URL` that ends in `/.well-known/jwks.json`;
    /// - keys: `CLERK_JWT_KEY` when set (no network), else `CLERK_JWKS_URL`, else
    ///   `https://<host>/.well-known/jwks.json` from the publishable key.
    pub fn resolve(&self) -> Result<ClerkSettings, ConfigError> {
        let publishable_key = non_empty(self.publishable_key.as_deref());
        let jwks_url = non_empty(self.jwks_url.as_deref());
        let issuer = non_empty(self.issuer.as_deref());
        let jwt_key_pem = non_empty(self.jwt_key_pem.as_deref());

        if publishable_key.is_none() && jwks_url.is_none() && jwt_key_pem.is_none() {
            return Err(ConfigError::Missing {
                variable: "CLERK_PUBLISHABLE_KEY",
                hint: "Clerk authentication needs the instance's publishable key \
                       (or CLERK_JWKS_URL, or CLERK_JWT_KEY with CLERK_ISSUER)",
            });
        }

        let host = publishable_key.map(frontend_api_host).transpose()?;

        let jwks_url = jwks_url
            .map(|raw| parse_http_url("CLERK_JWKS_URL", raw))
            .transpose()?;

        let issuer = match (issuer, &host, &jwks_url) {
            (Some(raw), _, _) => {
                parse_http_url("CLERK_ISSUER", raw)?;
                raw.trim_end_matches('/').to_owned()
            }
            (None, Some(host), _) => format!("https://{host}"),
            (None, None, Some(url)) if url.path() == "/.well-known/jwks.json" => {
                url.origin().ascii_serialization()
            }
            (None, None, _) => {
                return Err(ConfigError::Missing {
                    variable: "CLERK_ISSUER",
                    hint: "the issuer cannot be derived: set CLERK_PUBLISHABLE_KEY, or \
                           CLERK_ISSUER to the instance's Frontend API URL",
                });
            }
        };

        let keys = if let Some(pem) = jwt_key_pem {
            ClerkKeys::Pem(parse_rsa_public_pem(pem)?)
        } else if let Some(url) = jwks_url {
            ClerkKeys::Jwks { url }
        } else if let Some(host) = &host {
            let raw = format!("https://{host}/.well-known/jwks.json");
            ClerkKeys::Jwks {
                url: parse_http_url("CLERK_PUBLISHABLE_KEY", &raw)?,
            }
        } else {
            return Err(ConfigError::Missing {
                variable: "CLERK_JWKS_URL",
                hint: "no source of signing keys: set CLERK_PUBLISHABLE_KEY, CLERK_JWKS_URL \
                       or CLERK_JWT_KEY",
            });
        };

        let mut authorized_parties = Vec::new();
        for party in &self.authorized_parties {
            authorized_parties.extend(Self::parse_authorized_parties(party));
        }

        Ok(ClerkSettings {
            issuer,
            keys,
            authorized_parties,
        })
    }
}

/// Decodes a Clerk publishable key (`pk_test_` or `pk_live_` followed by the base64 of
/// `<frontend-api-host>$`) to its Frontend API host, e.g. `clerk.example.com`.
pub fn frontend_api_host(publishable_key: &str) -> Result<String, ConfigError> {
    const VAR: &str = "CLERK_PUBLISHABLE_KEY";
    let key = publishable_key.trim();
    let encoded = key
        .strip_prefix("pk_test_")
        .or_else(|| key.strip_prefix("pk_live_"))
        .ok_or_else(|| invalid(VAR, "must start with pk_test_ or pk_live_"))?;
    // Clerk encodes with `btoa`; browsers' `atob` does not insist on padding.
    let engine = GeneralPurpose::new(
        &alphabet::STANDARD,
        GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
    );
    let decoded = engine
        .decode(encoded)
        .map_err(|_| invalid(VAR, "the part after pk_test_/pk_live_ is not base64"))?;
    let text =
        String::from_utf8(decoded).map_err(|_| invalid(VAR, "does not decode to a host name"))?;
    let host = text
        .strip_suffix('$')
        .ok_or_else(|| invalid(VAR, "does not decode to `<host>$`"))?;
    let valid_host = !host.is_empty()
        && host.len() <= 253
        && !host.starts_with(['.', '-'])
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':'));
    if !valid_host {
        return Err(invalid(VAR, "does not decode to a valid host name"));
    }
    Ok(host.to_ascii_lowercase())
}

/// A generic OpenID Connect issuer (`OIDC_*` variables).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OidcConfig {
    /// `OIDC_ISSUER`: compared exactly with each token's `iss` (keep a trailing slash if
    /// the provider has one, as Auth0 does).
    pub issuer: String,
    /// `OIDC_JWKS_URL`; default: `jwks_uri` of `{issuer}/.well-known/openid-configuration`,
    /// fetched on first use.
    pub jwks_url: Option<String>,
    /// `OIDC_AUDIENCE`: when set, each token's `aud` must contain it. When unset, tokens
    /// for any audience of this issuer are accepted.
    pub audience: Option<String>,
}

/// OIDC settings with everything checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OidcSettings {
    /// Every token's `iss` must equal this.
    pub issuer: String,
    /// The discovery document's URL.
    pub discovery_url: Url,
    /// An explicit JWKS URL; `None`: taken from the discovery document.
    pub jwks_url: Option<Url>,
    /// The required audience, if any.
    pub audience: Option<String>,
}

impl OidcConfig {
    /// Checks the URLs and derives the discovery document's URL.
    pub fn resolve(&self) -> Result<OidcSettings, ConfigError> {
        let Some(issuer) = non_empty(Some(&self.issuer)) else {
            return Err(ConfigError::Missing {
                variable: "OIDC_ISSUER",
                hint: "OIDC authentication needs the issuer URL",
            });
        };
        parse_http_url("OIDC_ISSUER", issuer)?;
        let discovery_url = parse_http_url(
            "OIDC_ISSUER",
            &format!(
                "{}/.well-known/openid-configuration",
                issuer.trim_end_matches('/')
            ),
        )?;
        let jwks_url = non_empty(self.jwks_url.as_deref())
            .map(|raw| parse_http_url("OIDC_JWKS_URL", raw))
            .transpose()?;
        let audience = non_empty(self.audience.as_deref()).map(str::to_owned);
        Ok(OidcSettings {
            issuer: issuer.to_owned(),
            discovery_url,
            jwks_url,
            audience,
        })
    }
}

/// Dev tokens (`CONFAB_DEV_AUTH_*`): signed by the server itself with HS256.
#[derive(Clone, Debug)]
pub struct DevConfig {
    /// `CONFAB_DEV_AUTH_SECRET`: at least 32 bytes; `None`: a random 32-byte key per start
    /// (tokens do not survive a restart).
    pub secret: Option<SecretString>,
    /// `CONFAB_DEV_TOKEN_TTL_SECS`: token lifetime (default 12 h).
    pub ttl: Duration,
}

/// The default lifetime of a dev token: 12 hours.
pub const DEFAULT_DEV_TOKEN_TTL: Duration = Duration::from_secs(12 * 60 * 60);

/// The shortest accepted `CONFAB_DEV_AUTH_SECRET`, in bytes.
pub const MIN_DEV_SECRET_BYTES: usize = 32;

impl Default for DevConfig {
    fn default() -> Self {
        Self {
            secret: None,
            ttl: DEFAULT_DEV_TOKEN_TTL,
        }
    }
}

impl DevConfig {
    /// Checks the secret's length and the lifetime (1 s to 366 days).
    pub fn validate(&self) -> Result<(), ConfigError> {
        if let Some(secret) = &self.secret
            && secret.expose_secret().len() < MIN_DEV_SECRET_BYTES
        {
            return Err(invalid(
                "CONFAB_DEV_AUTH_SECRET",
                format!("must be at least {MIN_DEV_SECRET_BYTES} bytes long"),
            ));
        }
        if self.ttl < Duration::from_secs(1) || self.ttl > Duration::from_secs(366 * 24 * 3600) {
            return Err(invalid(
                "CONFAB_DEV_TOKEN_TTL_SECS",
                "must be between 1 second and 366 days",
            ));
        }
        Ok(())
    }
}

fn non_empty(value: Option<&str>) -> Option<&str> {
    value.map(str::trim).filter(|v| !v.is_empty())
}

/// Parses an `http(s)` URL with a host. Plain `http` to a non-loopback host is allowed
/// (a Keycloak in docker-compose) but logged as a warning: keys fetched over it can be forged.
fn parse_http_url(variable: &'static str, raw: &str) -> Result<Url, ConfigError> {
    let url = Url::parse(raw.trim()).map_err(|e| invalid(variable, format!("not a URL: {e}")))?;
    match url.scheme() {
        "https" => {}
        "http" => {
            let loopback = matches!(url.host_str(), Some("localhost" | "127.0.0.1" | "[::1]"));
            if !loopback {
                tracing::warn!(
                    variable,
                    "signing keys are fetched over plain http from a non-loopback host; \
                     anyone on the path can forge tokens"
                );
            }
        }
        other => {
            return Err(invalid(
                variable,
                format!("must be an http(s) URL, not {other}:"),
            ));
        }
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(invalid(variable, "the URL has no host"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(invalid(variable, "the URL must not carry credentials"));
    }
    Ok(url)
}

/// Parses `CLERK_JWT_KEY`: a PEM RSA public key. Accepts it on one line with `\n` escapes
/// (as .env files often hold it) or with its line breaks lost.
fn parse_rsa_public_pem(raw: &str) -> Result<DecodingKey, ConfigError> {
    const VAR: &str = "CLERK_JWT_KEY";
    const BEGIN: &str = "-----BEGIN PUBLIC KEY-----";
    const END: &str = "-----END PUBLIC KEY-----";
    let unescaped = raw.replace("\\n", "\n");
    if let Ok(key) = DecodingKey::from_rsa_pem(unescaped.as_bytes()) {
        return Ok(key);
    }
    // Rebuild the PEM from its base64 body, as Clerk's SDK does.
    let body: String = unescaped
        .trim()
        .strip_prefix(BEGIN)
        .and_then(|rest| rest.strip_suffix(END))
        .ok_or_else(|| invalid(VAR, "must be a PEM public key (-----BEGIN PUBLIC KEY-----)"))?
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    let mut rebuilt = String::with_capacity(body.len() + 80);
    rebuilt.push_str(BEGIN);
    rebuilt.push('\n');
    for line in body.as_bytes().chunks(64) {
        rebuilt.push_str(&String::from_utf8_lossy(line));
        rebuilt.push('\n');
    }
    rebuilt.push_str(END);
    rebuilt.push('\n');
    DecodingKey::from_rsa_pem(rebuilt.as_bytes())
        .map_err(|_| invalid(VAR, "is not a valid PEM RSA public key"))
}

#[cfg(test)]
mod tests {

    use super::*;

    const PUBLIC_PEM: &str = include_str!("../../../tests/fixtures/jwt/rsa-a.pub.pem");

    fn pk(prefix: &str, decoded: &str) -> String {
        format!(
            "{prefix}{}",
            base64::engine::general_purpose::STANDARD.encode(decoded)
        )
    }

    #[test]
    fn a_publishable_key_decodes_to_its_frontend_api_host() {
        let key = pk("pk_test_", "clerk.example.com$");
        assert_eq!(frontend_api_host(&key).unwrap(), "clerk.example.com");
        let live = pk("pk_live_", "clerk.chat.example.org$");
        assert_eq!(frontend_api_host(&live).unwrap(), "clerk.chat.example.org");
    }

    #[test]
    fn a_publishable_key_without_padding_still_decodes() {
        let key = pk("pk_test_", "ab.clerk.accounts.dev$");
        let unpadded = key.trim_end_matches('=');
        assert_ne!(key, unpadded, "the fixture must need padding");
        assert_eq!(
            frontend_api_host(unpadded).unwrap(),
            "ab.clerk.accounts.dev"
        );
    }

    #[test]
    fn malformed_publishable_keys_are_refused_naming_the_variable() {
        for bad in [
            "sk_test_abc".to_owned(),
            "pk_test_%%%".to_owned(),
            pk("pk_test_", "clerk.example.com"),
            pk("pk_test_", "$"),
            pk("pk_test_", "evil.com/path$"),
            pk("pk_test_", "user@evil.com$"),
            pk("pk_live_", ".example.com$"),
        ] {
            let err = frontend_api_host(&bad).unwrap_err();
            assert!(
                matches!(
                    err,
                    ConfigError::Invalid {
                        variable: "CLERK_PUBLISHABLE_KEY",
                        ..
                    }
                ),
                "{bad}: {err}"
            );
        }
    }

    #[test]
    fn the_issuer_and_jwks_url_are_derived_from_the_publishable_key() {
        let config = ClerkConfig {
            publishable_key: Some(pk("pk_live_", "clerk.example.com$")),
            ..ClerkConfig::default()
        };
        let settings = config.resolve().unwrap();
        assert_eq!(settings.issuer, "https://clerk.example.com");
        match settings.keys {
            ClerkKeys::Jwks { url } => {
                assert_eq!(
                    url.as_str(),
                    "https://clerk.example.com/.well-known/jwks.json"
                );
            }
            ClerkKeys::Pem(_) => panic!("expected a JWKS source"),
        }
        assert!(settings.authorized_parties.is_empty());
    }

    #[test]
    fn explicit_urls_win_over_the_publishable_key() {
        let config = ClerkConfig {
            publishable_key: Some(pk("pk_test_", "clerk.example.com$")),
            jwks_url: Some("http://127.0.0.1:9999/jwks".into()),
            issuer: Some("http://127.0.0.1:9999/".into()),
            ..ClerkConfig::default()
        };
        let settings = config.resolve().unwrap();
        assert_eq!(settings.issuer, "http://127.0.0.1:9999");
        assert!(
            matches!(settings.keys, ClerkKeys::Jwks { url } if url.as_str() == "http://127.0.0.1:9999/jwks")
        );
    }

    #[test]
    fn the_issuer_is_derived_from_a_frontend_api_jwks_url() {
        let config = ClerkConfig {
            jwks_url: Some("https://clerk.example.com/.well-known/jwks.json".into()),
            ..ClerkConfig::default()
        };
        assert_eq!(
            config.resolve().unwrap().issuer,
            "https://clerk.example.com"
        );
    }

    #[test]
    fn a_jwks_url_that_is_not_a_frontend_api_url_needs_an_issuer() {
        let config = ClerkConfig {
            jwks_url: Some("https://api.clerk.com/v1/jwks".into()),
            ..ClerkConfig::default()
        };
        let err = config.resolve().unwrap_err();
        assert!(
            matches!(
                err,
                ConfigError::Missing {
                    variable: "CLERK_ISSUER",
                    ..
                }
            ),
            "{err}"
        );
    }

    #[test]
    fn nothing_set_names_the_publishable_key_variable() {
        let err = ClerkConfig {
            publishable_key: Some("   ".into()),
            ..ClerkConfig::default()
        }
        .resolve()
        .unwrap_err();
        assert!(matches!(
            err,
            ConfigError::Missing {
                variable: "CLERK_PUBLISHABLE_KEY",
                ..
            }
        ));
        assert!(err.to_string().contains("CLERK_PUBLISHABLE_KEY"));
    }

    #[test]
    fn a_pem_key_replaces_the_jwks_and_accepts_escaped_or_flattened_newlines() {
        let escaped = PUBLIC_PEM.trim().replace('\n', "\\n");
        let flattened = PUBLIC_PEM.replace('\n', " ");
        for pem in [PUBLIC_PEM.to_owned(), escaped, flattened] {
            let config = ClerkConfig {
                issuer: Some("https://clerk.example.com".into()),
                jwt_key_pem: Some(pem),
                ..ClerkConfig::default()
            };
            let settings = config.resolve().unwrap();
            assert!(matches!(settings.keys, ClerkKeys::Pem(_)));
        }
    }

    #[test]
    fn a_pem_key_without_an_issuer_is_refused_naming_clerk_issuer() {
        let config = ClerkConfig {
            jwt_key_pem: Some(PUBLIC_PEM.into()),
            ..ClerkConfig::default()
        };
        let err = config.resolve().unwrap_err();
        assert!(matches!(
            err,
            ConfigError::Missing {
                variable: "CLERK_ISSUER",
                ..
            }
        ));
    }

    #[test]
    fn a_broken_pem_key_is_refused_naming_clerk_jwt_key() {
        let config = ClerkConfig {
            issuer: Some("https://clerk.example.com".into()),
            jwt_key_pem: Some("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----".into()),
            ..ClerkConfig::default()
        };
        let err = config.resolve().unwrap_err();
        assert!(
            matches!(
                err,
                ConfigError::Invalid {
                    variable: "CLERK_JWT_KEY",
                    ..
                }
            ),
            "{err}"
        );
    }

    #[test]
    fn non_http_urls_are_refused_naming_the_variable() {
        let config = ClerkConfig {
            jwks_url: Some("file:///etc/passwd".into()),
            issuer: Some("https://clerk.example.com".into()),
            ..ClerkConfig::default()
        };
        let err = config.resolve().unwrap_err();
        assert!(
            matches!(
                err,
                ConfigError::Invalid {
                    variable: "CLERK_JWKS_URL",
                    ..
                }
            ),
            "{err}"
        );
    }

    #[test]
    fn authorized_parties_are_split_on_commas_and_trimmed() {
        assert_eq!(
            ClerkConfig::parse_authorized_parties(
                " https://a.example.com/ ,, http://localhost:3000"
            ),
            vec!["https://a.example.com", "http://localhost:3000"]
        );
        let config = ClerkConfig {
            publishable_key: Some(pk("pk_test_", "clerk.example.com$")),
            authorized_parties: vec!["https://a.example.com,https://b.example.com/".into()],
            ..ClerkConfig::default()
        };
        assert_eq!(
            config.resolve().unwrap().authorized_parties,
            vec!["https://a.example.com", "https://b.example.com"]
        );
    }

    #[test]
    fn the_oidc_discovery_url_keeps_the_issuer_exactly() {
        let settings = OidcConfig {
            issuer: "https://tenant.auth0.com/".into(),
            jwks_url: None,
            audience: Some("https://api.example.com".into()),
        }
        .resolve()
        .unwrap();
        assert_eq!(settings.issuer, "https://tenant.auth0.com/");
        assert_eq!(
            settings.discovery_url.as_str(),
            "https://tenant.auth0.com/.well-known/openid-configuration"
        );
        assert_eq!(settings.jwks_url, None);
    }

    #[test]
    fn an_empty_oidc_issuer_is_refused_naming_oidc_issuer() {
        let err = OidcConfig::default().resolve().unwrap_err();
        assert!(matches!(
            err,
            ConfigError::Missing {
                variable: "OIDC_ISSUER",
                ..
            }
        ));
    }

    #[test]
    fn a_short_dev_secret_is_refused_without_echoing_it() {
        let config = DevConfig {
            secret: Some(SecretString::from("hunter2")),
            ..DevConfig::default()
        };
        let err = config.validate().unwrap_err();
        assert!(matches!(
            err,
            ConfigError::Invalid {
                variable: "CONFAB_DEV_AUTH_SECRET",
                ..
            }
        ));
        assert!(!err.to_string().contains("hunter2"));
    }

    #[test]
    fn a_zero_dev_token_lifetime_is_refused() {
        let config = DevConfig {
            ttl: Duration::ZERO,
            ..DevConfig::default()
        };
        assert!(matches!(
            config.validate().unwrap_err(),
            ConfigError::Invalid {
                variable: "CONFAB_DEV_TOKEN_TTL_SECS",
                ..
            }
        ));
        assert_eq!(DevConfig::default().ttl, Duration::from_secs(43_200));
    }
}
