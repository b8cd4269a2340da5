//! The auth adapters: the `AuthVerifier` contract run against each of them, the catalogue
//! of attacks a verifier must refuse, and the behaviour of the shared JWKS cache against a
//! local issuer: the JWKS cache contract (refresh after `max-age`, withdrawal, outages,
//! backoff, single-flight rate-limited refetch, rotation) run against Clerk and OIDC, on a
//! manual clock, plus what is particular to one adapter.

use std::sync::Arc;
use std::time::Duration;

use confab_auth::{
    ClerkConfig, ClerkVerifier, DevAuth, DevConfig, JwksOptions, ManualClock, OidcConfig,
    OidcVerifier,
};
use confab_core::error::AuthError;
use confab_core::ports::AuthVerifier;
use confab_memory::FakeAuth;
use confab_tests::contract::auth::{
    AuthSubject, JwksVerifierFactory, Minted, auth_verifier_contract, jwks_cache_contract,
};
use confab_tests::jwks_server::{
    JwksServer, Mode, RSA_A_PUBLIC_PEM, TestKey, b64url, now_secs, unreachable_url,
};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};

const KID_A: &str = "ins_key_a";
const PARTY: &str = "https://chat.example.com";
const AUDIENCE: &str = "confab-api";

fn clerk_claims(issuer: &str, sub: &str) -> Value {
    let now = now_secs();
    json!({
        "v": 2, "iss": issuer, "sub": sub, "sid": "sess_2abc", "azp": PARTY,
        "iat": now - 1, "nbf": now - 10, "exp": now + 60,
        "fva": [0, -1], "sts": "active",
    })
}

fn oidc_claims(issuer: &str, sub: &str) -> Value {
    let now = now_secs();
    json!({
        "iss": issuer, "sub": sub, "aud": AUDIENCE,
        "iat": now - 1, "nbf": now - 10, "exp": now + 60,
    })
}

/// `claims` with each `(name, value)` set, or removed when the value is `null`.
fn patched(claims: &Value, patch: &[(&str, Value)]) -> Value {
    let mut out = claims.clone();
    for (name, value) in patch {
        if value.is_null() {
            out.as_object_mut().unwrap().remove(*name);
        } else {
            out[*name] = value.clone();
        }
    }
    out
}

/// Waits for `work`, failing the test after a minute: a safety net against a hang, never
/// a measure of speed.
async fn within_a_minute<T>(work: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(60), work)
        .await
        .unwrap_or_else(|_| panic!("still not done after a minute"))
}

fn clerk_for(server: &JwksServer, options: JwksOptions) -> ClerkVerifier {
    let config = ClerkConfig {
        jwks_url: Some(server.jwks_url()),
        issuer: Some(server.issuer()),
        authorized_parties: vec![PARTY.to_owned()],
        ..ClerkConfig::default()
    };
    ClerkVerifier::with_options(&config, options).unwrap()
}

fn oidc_for(server: &JwksServer, jwks_url: Option<String>, options: JwksOptions) -> OidcVerifier {
    let config = OidcConfig {
        issuer: server.issuer(),
        jwks_url,
        audience: Some(AUDIENCE.to_owned()),
    };
    OidcVerifier::with_options(&config, options).unwrap()
}

fn is_unauthenticated(result: &Result<confab_core::model::Principal, AuthError>) -> bool {
    matches!(result, Err(AuthError::Unauthenticated(_)))
}

/// Verifies each `(name, token)` and panics listing every one that was not refused as
/// `Unauthenticated`.
async fn assert_all_refused(verifier: &dyn AuthVerifier, attacks: Vec<(&str, String)>) {
    let mut accepted = Vec::new();
    for (name, token) in attacks {
        let result = verifier.verify(&token).await;
        if !is_unauthenticated(&result) {
            accepted.push(format!("{name}: {result:?}"));
        }
    }
    assert!(
        accepted.is_empty(),
        "not refused as Unauthenticated:\n  {}",
        accepted.join("\n  ")
    );
}

/// The token with its payload replaced (header and signature kept).
fn with_payload(token: &str, claims: &Value) -> String {
    let parts: Vec<&str> = token.split('.').collect();
    format!("{}.{}.{}", parts[0], b64url(claims.to_string()), parts[2])
}

/// An unsigned token (`alg: none`).
fn unsigned(kid: &str, claims: &Value) -> String {
    let header = json!({"alg": "none", "typ": "JWT", "kid": kid});
    format!(
        "{}.{}.",
        b64url(header.to_string()),
        b64url(claims.to_string())
    )
}

/// HS256 keyed with the bytes of the RSA public key: the classic algorithm confusion.
fn hs256_with_public_key(kid: &str, claims: &Value) -> String {
    let mut header = Header::new(Algorithm::HS256);
    header.kid = Some(kid.to_owned());
    jsonwebtoken::encode(
        &header,
        claims,
        &EncodingKey::from_secret(RSA_A_PUBLIC_PEM.as_bytes()),
    )
    .unwrap()
}

// ---------------------------------------------------------------------------------------
// The contract, once per adapter.

#[tokio::test]
async fn fake_auth_honours_the_auth_verifier_contract() {
    auth_verifier_contract(|| async {
        AuthSubject {
            verifier: Arc::new(FakeAuth),
            mint_valid: Box::new(|user| Minted {
                token: FakeAuth::token_for(user),
                user_id: user.to_owned(),
            }),
            mint_invalid: Box::new(|user| format!("fake-token:{user}")),
            guard: Box::new(()),
        }
    })
    .await;
}

#[tokio::test]
async fn dev_auth_honours_the_auth_verifier_contract() {
    auth_verifier_contract(|| async {
        let dev = Arc::new(DevAuth::new(&DevConfig::default()).unwrap());
        // Another start of the server: another random key.
        let other = DevAuth::new(&DevConfig::default()).unwrap();
        let issuer = Arc::clone(&dev);
        AuthSubject {
            verifier: dev,
            mint_valid: Box::new(move |user| Minted {
                token: issuer.issue(user).unwrap().0,
                user_id: format!("dev:{user}"),
            }),
            mint_invalid: Box::new(move |user| other.issue(user).unwrap().0),
            guard: Box::new(()),
        }
    })
    .await;
}

#[tokio::test]
async fn clerk_with_a_jwks_honours_the_auth_verifier_contract() {
    auth_verifier_contract(|| async {
        let key = TestKey::rsa_a(KID_A);
        let impostor = TestKey::rsa_b(KID_A);
        let server = JwksServer::start(&[&key]).await;
        let verifier = clerk_for(&server, JwksOptions::default());
        let issuer = server.issuer();
        let issuer2 = issuer.clone();
        AuthSubject {
            verifier: Arc::new(verifier),
            mint_valid: Box::new(move |user| {
                let sub = format!("user_{user}");
                Minted {
                    token: key.sign(&clerk_claims(&issuer, &sub)),
                    user_id: sub,
                }
            }),
            mint_invalid: Box::new(move |user| {
                impostor.sign(&clerk_claims(&issuer2, &format!("user_{user}")))
            }),
            guard: Box::new(server),
        }
    })
    .await;
}

#[tokio::test]
async fn clerk_with_a_pem_key_honours_the_auth_verifier_contract() {
    auth_verifier_contract(|| async {
        const ISSUER: &str = "https://clerk.example.com";
        let config = ClerkConfig {
            issuer: Some(ISSUER.to_owned()),
            jwt_key_pem: Some(RSA_A_PUBLIC_PEM.to_owned()),
            ..ClerkConfig::default()
        };
        let key = TestKey::rsa_a(KID_A);
        let verifier = ClerkVerifier::new(&config).unwrap();
        AuthSubject {
            verifier: Arc::new(verifier),
            mint_valid: Box::new(move |user| {
                let sub = format!("user_{user}");
                Minted {
                    token: key.sign(&clerk_claims(ISSUER, &sub)),
                    user_id: sub,
                }
            }),
            mint_invalid: Box::new(|user| {
                let expired = patched(
                    &clerk_claims(ISSUER, &format!("user_{user}")),
                    &[("exp", json!(now_secs() - 60))],
                );
                TestKey::rsa_a(KID_A).sign(&expired)
            }),
            guard: Box::new(()),
        }
    })
    .await;
}

#[tokio::test]
async fn oidc_honours_the_auth_verifier_contract() {
    auth_verifier_contract(|| async {
        let ec = TestKey::ec_p256("ec-1");
        let rsa = TestKey::rsa_a("rsa-1");
        let server = JwksServer::start(&[&rsa, &ec]).await;
        let verifier = oidc_for(&server, None, JwksOptions::default());
        let issuer = server.issuer();
        let issuer2 = issuer.clone();
        AuthSubject {
            verifier: Arc::new(verifier),
            mint_valid: Box::new(move |user| {
                let sub = format!("auth0|{user}");
                Minted {
                    token: ec.sign(&oidc_claims(&issuer, &sub)),
                    user_id: sub,
                }
            }),
            mint_invalid: Box::new(move |user| {
                let claims = patched(
                    &oidc_claims(&issuer2, &format!("auth0|{user}")),
                    &[("aud", json!("another-api"))],
                );
                rsa.sign(&claims)
            }),
            guard: Box::new(server),
        }
    })
    .await;
}

// ---------------------------------------------------------------------------------------
// The JWKS cache contract, once per verifier that fetches keys.

#[tokio::test]
async fn clerk_honours_the_jwks_cache_contract() {
    jwks_cache_contract(JwksVerifierFactory {
        build: Box::new(|server, options| Arc::new(clerk_for(server, options))),
        sign: Box::new(|server, key, user| {
            key.sign(&clerk_claims(&server.issuer(), &format!("user_{user}")))
        }),
    })
    .await;
}

#[tokio::test]
async fn oidc_honours_the_jwks_cache_contract() {
    jwks_cache_contract(JwksVerifierFactory {
        build: Box::new(|server, options| {
            Arc::new(oidc_for(server, Some(server.jwks_url()), options))
        }),
        sign: Box::new(|server, key, user| key.sign(&oidc_claims(&server.issuer(), user))),
    })
    .await;
}

// ---------------------------------------------------------------------------------------
// The attack catalogue.

#[tokio::test]
async fn clerk_accepts_a_valid_token_and_refuses_every_attack_in_the_catalogue() {
    let key = TestKey::rsa_a(KID_A);
    let server = JwksServer::start(&[&key]).await;
    let clerk = clerk_for(&server, JwksOptions::default());
    let claims = clerk_claims(&server.issuer(), "user_2victim");
    let valid = key.sign(&claims);

    let principal = clerk.verify(&valid).await.unwrap();
    assert_eq!(principal.user_id.as_str(), "user_2victim");

    let now = now_secs();
    let signed = |patch: &[(&str, Value)]| key.sign(&patched(&claims, patch));
    let tampered_signature = {
        let (head, sig) = valid.rsplit_once('.').unwrap();
        let mut sig: Vec<char> = sig.chars().collect();
        let middle = sig.len() / 2;
        sig[middle] = if sig[middle] == 'A' { 'B' } else { 'A' };
        format!("{head}.{}", sig.into_iter().collect::<String>())
    };
    let mut embedded_jwk = Header::new(Algorithm::RS256);
    embedded_jwk.kid = Some("attacker".to_owned());
    embedded_jwk.jku = Some("https://evil.example.com/jwks.json".to_owned());
    embedded_jwk.jwk = serde_json::from_value(TestKey::rsa_b("attacker").jwk()).ok();
    let rs512 = {
        let mut header = Header::new(Algorithm::RS512);
        header.kid = Some(KID_A.to_owned());
        key.sign_with_header(&header, &claims)
    };
    let ps256 = {
        let mut header = Header::new(Algorithm::PS256);
        header.kid = Some(KID_A.to_owned());
        key.sign_with_header(&header, &claims)
    };

    let attacks: Vec<(&str, String)> = vec![
        ("alg none", unsigned(KID_A, &claims)),
        (
            "alg none keeping the signature",
            format!(
                "{}{}",
                unsigned(KID_A, &claims),
                valid.rsplit_once('.').unwrap().1
            ),
        ),
        (
            "HS256 keyed with the RSA public key",
            hs256_with_public_key(KID_A, &claims),
        ),
        ("RS512 with the right key", rs512),
        ("PS256 with the right key", ps256),
        ("expired", signed(&[("exp", json!(now - 60))])),
        ("nbf in the future", signed(&[("nbf", json!(now + 60))])),
        ("iat in the future", signed(&[("iat", json!(now + 600))])),
        (
            "wrong iss",
            signed(&[("iss", json!("https://evil.example.com"))]),
        ),
        (
            "iss with a trailing slash",
            signed(&[("iss", json!(format!("{}/", server.issuer())))]),
        ),
        (
            "azp not allowed",
            signed(&[("azp", json!("https://evil.example.com"))]),
        ),
        ("pending session", signed(&[("sts", json!("pending"))])),
        ("unknown kid", key.with_kid("ins_unknown").sign(&claims)),
        (
            "no kid",
            key.sign_with_header(&Header::new(Algorithm::RS256), &claims),
        ),
        (
            "another key with the known kid",
            TestKey::rsa_b(KID_A).sign(&claims),
        ),
        (
            "embedded jwk and jku headers",
            TestKey::rsa_b("attacker").sign_with_header(&embedded_jwk, &claims),
        ),
        (
            "tampered payload",
            with_payload(&valid, &patched(&claims, &[("sub", json!("user_2admin"))])),
        ),
        ("tampered signature", tampered_signature),
        (
            "signature removed",
            format!("{}.", valid.rsplit_once('.').unwrap().0),
        ),
        ("missing sub", signed(&[("sub", Value::Null)])),
        ("empty sub", signed(&[("sub", json!(""))])),
        (
            "sub with a control character",
            signed(&[("sub", json!("user\u{7}x"))]),
        ),
        ("missing sid", signed(&[("sid", Value::Null)])),
        ("missing exp", signed(&[("exp", Value::Null)])),
        (
            "exp as a string",
            signed(&[("exp", json!((now + 60).to_string()))]),
        ),
        (
            "nbf as a string",
            signed(&[("nbf", json!((now - 10).to_string()))]),
        ),
        ("empty token", String::new()),
        ("garbage", "not-a-token".to_owned()),
        ("three dots", "...".to_owned()),
        (
            "a 100 KB token",
            signed(&[("pad", json!("x".repeat(100 * 1024)))]),
        ),
        (
            "kid with ../",
            key.with_kid("../../../etc/passwd").sign(&claims),
        ),
        ("kid with a NUL", key.with_kid("a\u{0}b").sign(&claims)),
    ];
    assert_all_refused(&clerk, attacks).await;

    // The key set was fetched once; no attack made the verifier refetch within the interval.
    assert_eq!(server.jwks_fetches(), 1);
    // And the valid token still works after all that.
    assert!(clerk.verify(&valid).await.is_ok());
}

#[tokio::test]
async fn clerk_accepts_a_token_without_azp_even_with_authorized_parties() {
    let key = TestKey::rsa_a(KID_A);
    let server = JwksServer::start(&[&key]).await;
    let clerk = clerk_for(&server, JwksOptions::default());
    let claims = patched(
        &clerk_claims(&server.issuer(), "user_2noazp"),
        &[("azp", Value::Null)],
    );
    let principal = clerk.verify(&key.sign(&claims)).await.unwrap();
    assert_eq!(principal.user_id.as_str(), "user_2noazp");
}

#[tokio::test]
async fn oidc_pins_the_algorithm_by_key_type_and_checks_the_audience() {
    let rsa = TestKey::rsa_a("rsa-1");
    let ec = TestKey::ec_p256("ec-1");
    let server = JwksServer::start(&[&rsa, &ec]).await;
    let oidc = oidc_for(&server, None, JwksOptions::default());
    let claims = oidc_claims(&server.issuer(), "user-42");

    for (name, token) in [("RS256", rsa.sign(&claims)), ("ES256", ec.sign(&claims))] {
        let principal = oidc
            .verify(&token)
            .await
            .unwrap_or_else(|e| panic!("{name}: {e:?}"));
        assert_eq!(principal.user_id.as_str(), "user-42");
    }
    let in_a_list = patched(&claims, &[("aud", json!(["other", AUDIENCE]))]);
    assert!(
        oidc.verify(&rsa.sign(&in_a_list)).await.is_ok(),
        "aud as a list holding ours"
    );

    let rs256_on_the_ec_kid = {
        let mut header = Header::new(Algorithm::RS256);
        header.kid = Some("ec-1".to_owned());
        rsa.sign_with_header(&header, &claims)
    };
    let es256_on_the_rsa_kid = {
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some("rsa-1".to_owned());
        ec.sign_with_header(&header, &claims)
    };
    let attacks: Vec<(&str, String)> = vec![
        ("RS256 header on the EC key's kid", rs256_on_the_ec_kid),
        ("ES256 header on the RSA key's kid", es256_on_the_rsa_kid),
        (
            "HS256 keyed with the RSA public key",
            hs256_with_public_key("rsa-1", &claims),
        ),
        ("alg none", unsigned("rsa-1", &claims)),
        (
            "wrong aud",
            rsa.sign(&patched(&claims, &[("aud", json!("another-api"))])),
        ),
        (
            "aud list without ours",
            rsa.sign(&patched(&claims, &[("aud", json!(["a", "b"]))])),
        ),
        (
            "missing aud",
            rsa.sign(&patched(&claims, &[("aud", Value::Null)])),
        ),
        (
            "wrong iss",
            rsa.sign(&patched(&claims, &[("iss", json!("https://evil.example"))])),
        ),
        (
            "expired",
            ec.sign(&patched(&claims, &[("exp", json!(now_secs() - 60))])),
        ),
        (
            "missing sub",
            ec.sign(&patched(&claims, &[("sub", Value::Null)])),
        ),
        (
            "another key with a known kid",
            TestKey::rsa_b("rsa-1").sign(&claims),
        ),
    ];
    assert_all_refused(&oidc, attacks).await;
}

// ---------------------------------------------------------------------------------------
// The JWKS cache.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_concurrent_verifications_with_unknown_kids_fetch_the_key_set_once() {
    let key = TestKey::rsa_a(KID_A);
    let server = JwksServer::start(&[&key]).await;
    // A clock that stands still: however long the crowd takes, the interval never passes.
    let options = JwksOptions {
        clock: Arc::new(ManualClock::new()),
        ..JwksOptions::default()
    };
    let clerk = Arc::new(clerk_for(&server, options));
    let claims = clerk_claims(&server.issuer(), "user_2crowd");
    let valid = key.sign(&claims);

    let tasks: Vec<_> = (0..200)
        .map(|i| {
            let token = if i % 4 == 0 {
                valid.clone()
            } else {
                key.with_kid(&format!("unknown-{i}")).sign(&claims)
            };
            let clerk = Arc::clone(&clerk);
            tokio::spawn(async move { (i, clerk.verify(&token).await) })
        })
        .collect();
    for task in tasks {
        let (i, result) = task.await.unwrap();
        if i % 4 == 0 {
            assert!(result.is_ok(), "valid token {i}: {result:?}");
        } else {
            assert!(is_unauthenticated(&result), "unknown kid {i}: {result:?}");
        }
    }
    // The first to take the flight fetches; the rest find the set fetched just now and
    // may not refetch for their unknown kids within the interval.
    assert_eq!(
        server.jwks_fetches(),
        1,
        "JWKS fetches for 200 verifications"
    );
}

#[tokio::test]
async fn a_cold_cache_with_the_issuer_unreachable_is_unavailable() {
    let key = TestKey::rsa_a(KID_A);
    let base = unreachable_url().await;
    let config = ClerkConfig {
        jwks_url: Some(format!("{base}/.well-known/jwks.json")),
        issuer: Some(base.clone()),
        ..ClerkConfig::default()
    };
    let clerk = ClerkVerifier::new(&config).unwrap();
    let valid = key.sign(&clerk_claims(&base, "user_2cold"));
    let result = clerk.verify(&valid).await;
    assert!(
        matches!(result, Err(AuthError::Unavailable(_))),
        "{result:?}"
    );
    // Garbage is still refused as garbage: no key is needed to know it is not a token.
    assert!(is_unauthenticated(&clerk.verify("garbage").await));
}

#[tokio::test]
async fn a_cold_cache_with_a_failing_or_hanging_issuer_is_unavailable_after_the_timeout() {
    for mode in [Mode::Fail, Mode::Garbage, Mode::Hang] {
        let key = TestKey::rsa_a(KID_A);
        let server = JwksServer::start(&[&key]).await;
        server.set_mode(mode);
        // A hanging issuer answers never: only the request timeout ends the fetch. Its
        // length does not matter to the outcome; a short one keeps the test short.
        let options = JwksOptions {
            request_timeout: Duration::from_secs(1),
            ..JwksOptions::default()
        };
        let clerk = clerk_for(&server, options);
        let valid = key.sign(&clerk_claims(&server.issuer(), "user_2cold"));
        let result = within_a_minute(clerk.verify(&valid)).await;
        assert!(
            matches!(result, Err(AuthError::Unavailable(_))),
            "{mode:?}: {result:?}"
        );
    }
}

#[tokio::test]
async fn oidc_fetches_the_discovery_document_and_the_key_set_lazily_and_once() {
    let key = TestKey::rsa_a("rsa-1");
    let server = JwksServer::start(&[&key]).await;
    let oidc = oidc_for(&server, None, JwksOptions::default());
    assert_eq!((server.discovery_fetches(), server.jwks_fetches()), (0, 0));

    let claims = oidc_claims(&server.issuer(), "user-1");
    assert!(oidc.verify(&key.sign(&claims)).await.is_ok());
    assert!(oidc.verify(&key.sign(&claims)).await.is_ok());
    assert_eq!((server.discovery_fetches(), server.jwks_fetches()), (1, 1));
}

#[tokio::test]
async fn oidc_refreshes_an_expired_key_set_from_the_discovered_url_without_rediscovery() {
    let kept = TestKey::rsa_a("rsa-1");
    let withdrawn = TestKey::ec_p256("ec-1");
    let server = JwksServer::start(&[&kept, &withdrawn]).await;
    server.set_cache_control(Some("max-age=300"));
    let clock = ManualClock::new();
    let options = JwksOptions {
        clock: Arc::new(clock.clone()),
        ..JwksOptions::default()
    };
    let oidc = oidc_for(&server, None, options);
    let claims = oidc_claims(&server.issuer(), "user-1");
    assert!(oidc.verify(&withdrawn.sign(&claims)).await.is_ok());

    server.set_keys(&[&kept]);
    clock.advance(Duration::from_secs(300));
    assert!(is_unauthenticated(
        &oidc.verify(&withdrawn.sign(&claims)).await
    ));
    assert!(oidc.verify(&kept.sign(&claims)).await.is_ok());
    assert_eq!((server.discovery_fetches(), server.jwks_fetches()), (1, 2));
}

#[tokio::test]
async fn oidc_reads_the_discovery_document_again_when_the_key_set_keeps_failing() {
    let key = TestKey::rsa_a("rsa-1");
    let server = JwksServer::start(&[&key]).await;
    server.set_cache_control(Some("max-age=300"));
    let clock = ManualClock::new();
    let options = JwksOptions {
        clock: Arc::new(clock.clone()),
        ..JwksOptions::default()
    };
    let oidc = oidc_for(&server, None, options.clone());
    let claims = oidc_claims(&server.issuer(), "user-1");
    assert!(oidc.verify(&key.sign(&claims)).await.is_ok());
    assert_eq!(server.discovery_fetches(), 1);

    server.set_mode(Mode::Fail);
    clock.advance(Duration::from_secs(300));
    assert!(oidc.verify(&key.sign(&claims)).await.is_ok(), "stale set");
    clock.advance(options.retry_backoff_initial);
    assert!(oidc.verify(&key.sign(&claims)).await.is_ok(), "stale set");
    assert_eq!(
        server.discovery_fetches(),
        1,
        "two failures use the known URL"
    );

    server.set_mode(Mode::Serve);
    clock.advance(options.retry_backoff_initial * 2);
    assert!(oidc.verify(&key.sign(&claims)).await.is_ok());
    assert_eq!(
        server.discovery_fetches(),
        2,
        "then discovery is asked again"
    );
}

#[tokio::test]
async fn oidc_with_an_explicit_jwks_url_skips_discovery() {
    let key = TestKey::rsa_a("rsa-1");
    let server = JwksServer::start(&[&key]).await;
    let oidc = oidc_for(&server, Some(server.jwks_url()), JwksOptions::default());
    let claims = oidc_claims(&server.issuer(), "user-1");
    assert!(oidc.verify(&key.sign(&claims)).await.is_ok());
    assert_eq!((server.discovery_fetches(), server.jwks_fetches()), (0, 1));
}

#[tokio::test]
async fn a_discovery_document_naming_another_issuer_is_not_trusted() {
    let key = TestKey::rsa_a("rsa-1");
    let server = JwksServer::start(&[&key]).await;
    server.set_discovery_issuer("https://evil.example.com");
    let oidc = oidc_for(&server, None, JwksOptions::default());
    let result = oidc
        .verify(&key.sign(&oidc_claims(&server.issuer(), "user-1")))
        .await;
    assert!(
        matches!(result, Err(AuthError::Unavailable(_))),
        "{result:?}"
    );
    assert_eq!(
        server.jwks_fetches(),
        0,
        "keys were fetched from an untrusted document"
    );
}

/// A local account's token is only valid while its session is: the adapter's own invalid
/// token is one whose session was signed out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_auth_honours_the_auth_verifier_contract() {
    use confab_auth::local::SignUp;
    use confab_auth::{LocalAuth, LocalConfig, SignUpMode};
    use secrecy::SecretString;

    fn block_on<T>(work: impl std::future::Future<Output = T>) -> T {
        tokio::task::block_in_place(|| tokio::runtime::Handle::current().block_on(work))
    }
    const PASSWORD: &str = "a long enough passphrase";

    auth_verifier_contract(|| async {
        let local = Arc::new(
            LocalAuth::new(
                Arc::new(confab_memory::MemoryAccounts::new()),
                &LocalConfig {
                    signup: SignUpMode::Open,
                    ..LocalConfig::default()
                },
            )
            .unwrap(),
        );
        // A session of `user` (the account is made on first use).
        let signed_in = {
            let local = Arc::clone(&local);
            move |user: &str| {
                block_on(async {
                    let signed_up = local
                        .sign_up(SignUp {
                            username: user.to_owned(),
                            email: None,
                            password: SecretString::from(PASSWORD),
                            invite: None,
                        })
                        .await;
                    let token = match signed_up {
                        Ok((_, issued)) => issued.token,
                        Err(_) => {
                            local
                                .sign_in(user, &SecretString::from(PASSWORD), None)
                                .await
                                .unwrap()
                                .token
                        }
                    };
                    let (account, session) = local.session_of(&token).await.unwrap();
                    (token, account, session)
                })
            }
        };
        let valid = signed_in.clone();
        let issuer = Arc::clone(&local);
        AuthSubject {
            verifier: local,
            mint_valid: Box::new(move |user| {
                let (token, account, _) = valid(user);
                Minted {
                    token,
                    user_id: format!("local:{}", account.id),
                }
            }),
            mint_invalid: Box::new(move |user| {
                let (token, _, session) = signed_in(user);
                block_on(issuer.sign_out(session)).unwrap();
                token
            }),
            guard: Box::new(()),
        }
    })
    .await;
}
