//! The verification path every adapter shares: cheap structural checks before any key is
//! looked up, then `jsonwebtoken::decode` with the algorithm pinned by the server (from the
//! key, never from the token), then the adapter's own claim checks.

use std::sync::Arc;

use confab_core::{AuthError, Principal, UserId};
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, Header, Validation};
use serde::de::DeserializeOwned;

/// Tokens longer than this are refused before any parsing (Clerk's are about 1–2 KB).
pub const MAX_TOKEN_BYTES: usize = 16 * 1024;

/// Allowed clock skew for `exp`, `nbf` and `iat`, in seconds.
pub const CLOCK_SKEW_SECS: u64 = 5;

/// A public key (or the dev secret) with the one algorithm it may verify.
#[derive(Clone, Debug)]
pub struct VerifyingKey {
    /// Pinned by the server from the key's type; a token naming another `alg` is refused.
    pub algorithm: Algorithm,
    /// The key material.
    pub key: DecodingKey,
}

pub(crate) fn unauthenticated(reason: impl Into<String>) -> AuthError {
    AuthError::Unauthenticated(reason.into())
}

/// Structural checks and the (unverified) header. Refuses empty, oversized and non-JWS
/// input, `alg: none` (not a known algorithm) and any `crit` header.
pub(crate) fn precheck(token: &str) -> Result<Header, AuthError> {
    if token.is_empty() {
        return Err(unauthenticated("empty token"));
    }
    if token.len() > MAX_TOKEN_BYTES {
        return Err(unauthenticated("token too long"));
    }
    let base64url_or_dot = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.');
    if !token.bytes().all(base64url_or_dot) || token.split('.').count() != 3 {
        return Err(unauthenticated("not a compact JWS"));
    }
    let header = jsonwebtoken::decode_header(token)
        .map_err(|e| unauthenticated(format!("unreadable header: {}", describe(e.kind()))))?;
    if header.crit.is_some() {
        return Err(unauthenticated("unsupported critical header parameters"));
    }
    Ok(header)
}

/// A `kid` we are willing to look up: 1–256 visible ASCII characters, no `..`.
/// It is only ever a map key, never a path or URL, but a refusal here saves a refetch.
pub(crate) fn acceptable_kid(kid: &str) -> bool {
    !kid.is_empty()
        && kid.len() <= 256
        && kid.bytes().all(|b| b.is_ascii_graphic())
        && !kid.contains("..")
}

/// The validation every adapter starts from: `exp` required and checked, `nbf` checked
/// when present, 5 s of skew, no audience check (adapters that need one turn it on).
pub(crate) fn base_validation(algorithm: Algorithm) -> Validation {
    let mut validation = Validation::new(algorithm);
    validation.leeway = CLOCK_SKEW_SECS;
    validation.validate_exp = true;
    validation.validate_nbf = true;
    validation.validate_aud = false;
    validation.set_required_spec_claims(&["exp"]);
    validation
}

/// Verifies the signature with `key` and its pinned algorithm, applies `validation` and
/// deserializes the claims.
pub(crate) fn decode_claims<T: DeserializeOwned>(
    token: &str,
    key: &VerifyingKey,
    validation: &Validation,
) -> Result<T, AuthError> {
    let mut validation = validation.clone();
    validation.algorithms = vec![key.algorithm];
    jsonwebtoken::decode::<T>(token, &key.key, &validation)
        .map(|data| data.claims)
        .map_err(|e| unauthenticated(describe(e.kind())))
}

/// `iat`, when present, must not be in the future (beyond the skew).
pub(crate) fn check_issued_at(iat: Option<f64>) -> Result<(), AuthError> {
    let Some(iat) = iat else { return Ok(()) };
    let now = chrono::Utc::now().timestamp() as f64;
    if !iat.is_finite() || iat > now + CLOCK_SKEW_SECS as f64 {
        return Err(unauthenticated("token issued in the future"));
    }
    Ok(())
}

/// The principal of a verified `sub`.
pub(crate) fn principal(sub: Option<String>) -> Result<Principal, AuthError> {
    let sub = sub.ok_or_else(|| unauthenticated("missing claim sub"))?;
    let user_id = UserId::new(sub).map_err(|e| unauthenticated(format!("unusable sub: {e}")))?;
    Ok(Principal { user_id })
}

/// A short reason for logs; never the token or a key.
fn describe(kind: &ErrorKind) -> String {
    match kind {
        ErrorKind::ExpiredSignature => "token expired".into(),
        ErrorKind::ImmatureSignature => "token not valid yet (nbf)".into(),
        ErrorKind::InvalidIssuer => "wrong issuer".into(),
        ErrorKind::InvalidAudience => "wrong audience".into(),
        ErrorKind::InvalidSignature => "bad signature".into(),
        ErrorKind::InvalidAlgorithm | ErrorKind::InvalidAlgorithmName => {
            "algorithm not allowed for this key".into()
        }
        ErrorKind::MissingRequiredClaim(claim) => format!("missing claim {claim}"),
        ErrorKind::InvalidClaimFormat(claim) => format!("malformed claim {claim}"),
        ErrorKind::Json(_) => "malformed JSON".into(),
        ErrorKind::Base64(_) | ErrorKind::Utf8(_) => "malformed encoding".into(),
        ErrorKind::InvalidToken => "malformed token".into(),
        _ => "token refused".into(),
    }
}

/// Makes sure jsonwebtoken has its crypto backend. The workspace enables exactly one
/// (`aws_lc_rs`), which jsonwebtoken picks on its own; installing it explicitly keeps
/// verification working (instead of panicking) should another crate ever enable
/// `rust_crypto` as well.
pub(crate) fn ensure_crypto_provider() {
    // An `Err` only means a provider is installed already, which is what we want.
    let _ = jsonwebtoken::crypto::aws_lc::DEFAULT_PROVIDER.install_default();
}

/// Shared, cheaply cloned key.
pub(crate) type SharedKey = Arc<VerifyingKey>;

#[cfg(test)]
mod tests {

    use super::*;

    #[test]
    fn structural_garbage_is_refused_before_any_key_lookup() {
        for bad in [
            "",
            "garbage",
            "a.b",
            "a.b.c.d",
            "Bearer a.b.c",
            "a.b.c\n",
            "é.b.c",
            "a..c",
            "eyJhbGciOiJub25lIn0.e30.",
        ] {
            assert!(
                matches!(precheck(bad), Err(AuthError::Unauthenticated(_))),
                "{bad:?} was not refused"
            );
        }
        let huge = "a".repeat(MAX_TOKEN_BYTES + 1);
        assert!(
            matches!(precheck(&huge), Err(AuthError::Unauthenticated(m)) if m == "token too long")
        );
    }

    #[test]
    fn a_crit_header_is_refused() {
        use base64::Engine as _;
        let b64 = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
        let token = format!(
            "{}.{}.c2ln",
            b64(r#"{"alg":"RS256","kid":"k","crit":["exp"]}"#),
            b64("{}")
        );
        assert!(matches!(
            precheck(&token),
            Err(AuthError::Unauthenticated(_))
        ));
    }

    #[test]
    fn kids_with_traversal_or_control_characters_are_not_looked_up() {
        assert!(acceptable_kid("ins_2abcDEF"));
        assert!(acceptable_kid("nOo3ZDrODXEK1jKWhXslHR_KXEg"));
        assert!(!acceptable_kid(""));
        assert!(!acceptable_kid("../../etc/passwd"));
        assert!(!acceptable_kid("a b"));
        assert!(!acceptable_kid("a\u{0}b"));
        assert!(!acceptable_kid(&"k".repeat(257)));
    }

    #[test]
    fn a_future_iat_is_refused_but_a_small_skew_is_not() {
        let now = chrono::Utc::now().timestamp() as f64;
        assert!(check_issued_at(None).is_ok());
        assert!(check_issued_at(Some(now)).is_ok());
        assert!(check_issued_at(Some(now + 3.0)).is_ok());
        assert!(check_issued_at(Some(now + 60.0)).is_err());
        assert!(check_issued_at(Some(f64::NAN)).is_err());
    }
}
