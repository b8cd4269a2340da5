#![doc = include_str!("../README.md")]

pub mod bff;
pub mod clerk;
pub mod config;
pub mod dev;
pub mod jwks;
pub mod local;
pub mod oidc;
pub mod token;

pub use bff::{OidcClientConfig, OidcFlowError, OidcSignIn};
pub use clerk::ClerkVerifier;
pub use confab_core::clock::{Clock, ManualClock, SystemClock};
pub use config::{
    ClerkConfig, ClerkKeys, ClerkSettings, ConfigError, DevConfig, JwksOptions, OidcConfig,
    OidcSettings, frontend_api_host,
};
pub use dev::{DevAuth, DevAuthError, validate_username};
pub use jwks::{
    DEFAULT_MAX_AGE, JwksCache, JwksSource, KeyLookupError, KeyPolicy, MAX_MAX_AGE, MIN_MAX_AGE,
};
pub use local::{LocalAuth, LocalAuthError, LocalConfig, SignUpMode};
pub use oidc::OidcVerifier;
pub use token::{CLOCK_SKEW_SECS, MAX_TOKEN_BYTES, VerifyingKey};
