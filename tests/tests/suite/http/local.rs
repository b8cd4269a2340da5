//! Built-in accounts (`CONFAB_AUTH=local`) through the HTTP API, with the real adapter on
//! the in-memory account store: the routes, and each attack of issue 21 as a test.

use std::sync::Arc;
use std::time::{Duration, Instant};

use confab_auth::{LocalAuth, LocalConfig, ManualClock, SignUpMode};
use confab_memory::MemoryAccounts;
use confab_tests::http::{Answer, AppOptions, TestApp};
use reqwest::Method;
use serde_json::{Value, json};

const PASSWORD: &str = "correct horse battery";
const OTHER_PASSWORD: &str = "another long passphrase";

struct Local {
    app: TestApp,
    clock: ManualClock,
}

async fn local_app(signup: SignUpMode) -> Local {
    local_app_with(LocalConfig {
        signup,
        ..LocalConfig::default()
    })
    .await
}

async fn local_app_with(config: LocalConfig) -> Local {
    local_app_behind(config, None).await
}

/// With `trusted_proxies` as `CONFAB_TRUSTED_PROXIES` (the tests' requests come from 127.0.0.1).
async fn local_app_behind(config: LocalConfig, trusted_proxies: Option<&str>) -> Local {
    let clock = ManualClock::new();
    let local = LocalAuth::with_clock(
        Arc::new(MemoryAccounts::new()),
        &config,
        Arc::new(clock.clone()),
    )
    .expect("a local adapter");
    let mut options = AppOptions::new().setting("CONFAB_AUTH", "local");
    if let Some(trusted) = trusted_proxies {
        options = options.setting("CONFAB_TRUSTED_PROXIES", trusted);
    }
    let app = options.local(Arc::new(local)).spawn().await;
    Local { app, clock }
}

async fn post(app: &TestApp, path: &str, token: Option<&str>, body: &Value) -> Answer {
    let mut request = app.request(Method::POST, path, None).json(body);
    if let Some(token) = token {
        request = request.header("Authorization", format!("Bearer {token}"));
    }
    app.send_request(request).await
}

async fn get_me(app: &TestApp, token: &str) -> Answer {
    app.send_request(
        app.request(Method::GET, "/api/me", None)
            .header("Authorization", format!("Bearer {token}")),
    )
    .await
}

fn token(answer: &Answer, status: u16) -> String {
    let body: Value = answer.ok(status);
    body["token"].as_str().expect("a token").to_owned()
}

async fn sign_up(
    app: &TestApp,
    username: &str,
    email: Option<&str>,
    invite: Option<&str>,
) -> Answer {
    let mut body = json!({ "username": username, "password": PASSWORD });
    if let Some(email) = email {
        body["email"] = json!(email);
    }
    if let Some(invite) = invite {
        body["invite"] = json!(invite);
    }
    post(app, "/api/auth/local/sign-up", None, &body).await
}

async fn sign_in(app: &TestApp, login: &str, password: &str) -> Answer {
    post(
        app,
        "/api/auth/local/sign-in",
        None,
        &json!({ "login": login, "password": password }),
    )
    .await
}

/// A sign-in that a proxy forwarded for `forwarded_for` (`X-Forwarded-For`).
async fn sign_in_via(app: &TestApp, forwarded_for: &str, login: &str, password: &str) -> Answer {
    let request = app
        .request(Method::POST, "/api/auth/local/sign-in", None)
        .header("X-Forwarded-For", forwarded_for)
        .json(&json!({ "login": login, "password": password }));
    app.send_request(request).await
}

/// The secret after `#invite=` or `#reset=` in a link's URL.
fn secret(answer: &Answer, kind: &str) -> String {
    let body: Value = answer.ok(201);
    let url = body["url"].as_str().expect("a url");
    url.split_once(&format!("#{kind}="))
        .unwrap_or_else(|| panic!("{url} has no #{kind}="))
        .1
        .to_owned()
}

/// The administrator (first account) and a second account made with an invite.
async fn admin_and_bob(app: &TestApp) -> (String, String) {
    let admin = token(
        &sign_up(app, "ada", Some("ada@example.com"), None).await,
        201,
    );
    let invite = post(app, "/api/admin/invites", Some(&admin), &json!({})).await;
    let invite = secret(&invite, "invite");
    let bob = token(&sign_up(app, "bob", None, Some(&invite)).await, 201);
    (admin, bob)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_first_account_administers_and_the_others_need_a_single_use_invite() {
    let Local { app, .. } = local_app(SignUpMode::Invite).await;
    let config: Value = app
        .send_request(app.request(Method::GET, "/api/config", None))
        .await
        .ok(200);
    assert_eq!(config["auth"]["provider"], "local");
    assert_eq!(config["auth"]["signup"], "invite");

    let admin = token(&sign_up(&app, "Ada", None, None).await, 201);
    let me: Value = get_me(&app, &admin).await.ok(200);
    assert!(
        me["user_id"].as_str().unwrap().starts_with("local:"),
        "{me}"
    );

    sign_up(&app, "bob", None, None)
        .await
        .problem(403, "forbidden");
    let created = post(&app, "/api/admin/invites", Some(&admin), &json!({})).await;
    let body: Value = created.ok(201);
    let expires_at = chrono::DateTime::parse_from_rfc3339(body["expires_at"].as_str().unwrap())
        .unwrap()
        .with_timezone(&chrono::Utc);
    let lifetime = expires_at - chrono::Utc::now();
    assert!(lifetime > chrono::Duration::days(7) - chrono::Duration::minutes(1));
    assert!(lifetime <= chrono::Duration::days(7));
    let invite = secret(&created, "invite");

    let bob = token(&sign_up(&app, "bob", None, Some(&invite)).await, 201);
    sign_up(&app, "cy", None, Some(&invite))
        .await
        .problem(400, "bad_request");
    sign_up(&app, "cy", None, Some("not-an-invite"))
        .await
        .problem(400, "bad_request");
    // Only the administrator invites.
    post(&app, "/api/admin/invites", Some(&bob), &json!({}))
        .await
        .problem(403, "forbidden");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn of_first_sign_ups_at_once_only_one_skips_the_invite() {
    let Local { app, .. } = local_app(SignUpMode::Invite).await;
    let names = ["ada", "bob", "cy", "dee"];
    let answers =
        futures::future::join_all(names.iter().map(|name| sign_up(&app, name, None, None))).await;
    let created: Vec<&Answer> = answers.iter().filter(|a| a.status == 201).collect();
    assert_eq!(
        created.len(),
        1,
        "{} first accounts were created",
        created.len()
    );
    for refused in answers.iter().filter(|a| a.status != 201) {
        refused.problem(403, "forbidden");
    }
    let admin = token(created[0], 201);
    // The one created administers: it can invite.
    post(&app, "/api/admin/invites", Some(&admin), &json!({}))
        .await
        .ok::<Value>(201);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_up_with_a_bogus_invite_does_not_tell_which_names_are_taken() {
    let Local { app, .. } = local_app(SignUpMode::Invite).await;
    let admin = token(
        &sign_up(&app, "ada", Some("ada@example.com"), None).await,
        201,
    );
    // Taken or free, a bogus invite gets the same answer.
    for (username, email) in [
        ("ada", None),
        ("someone", Some("ada@example.com")),
        ("someone", None),
    ] {
        sign_up(&app, username, email, Some("not-an-invite"))
            .await
            .problem(400, "bad_request");
    }
    // With a valid invite, a taken name is told, and the invite still works afterwards.
    let invite = secret(
        &post(&app, "/api/admin/invites", Some(&admin), &json!({})).await,
        "invite",
    );
    sign_up(&app, "ada", None, Some(&invite))
        .await
        .problem(409, "conflict");
    sign_up(&app, "bob", Some("ada@example.com"), Some(&invite))
        .await
        .problem(409, "conflict");
    sign_up(&app, "bob", None, Some(&invite))
        .await
        .assert_status(201);
    sign_up(&app, "cy", None, Some(&invite))
        .await
        .problem(400, "bad_request");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_and_closed_sign_up() {
    let Local { app, .. } = local_app(SignUpMode::Open).await;
    sign_up(&app, "ada", None, None).await.assert_status(201);
    sign_up(&app, "bob", None, None).await.assert_status(201);
    sign_up(&app, "BOB", None, None)
        .await
        .problem(409, "conflict");

    let Local { app, .. } = local_app(SignUpMode::Closed).await;
    sign_up(&app, "ada", None, None).await.assert_status(201);
    sign_up(&app, "bob", None, None)
        .await
        .problem(403, "forbidden");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn passwords_are_checked_for_length_and_commonness_and_long_ones_are_accepted() {
    let Local { app, .. } = local_app(SignUpMode::Open).await;
    for bad in [
        "elevenchars",
        "Password1234",
        "qwerty123456",
        "adaisnotsafe!",
    ] {
        post(
            &app,
            "/api/auth/local/sign-up",
            None,
            &json!({ "username": "ada", "password": bad }),
        )
        .await
        .problem(422, "validation_failed");
    }
    post(
        &app,
        "/api/auth/local/sign-up",
        None,
        &json!({ "username": "bob", "password": "x".repeat(1025) }),
    )
    .await
    .problem(422, "validation_failed");
    let long = "é ".repeat(100);
    post(
        &app,
        "/api/auth/local/sign-up",
        None,
        &json!({ "username": "ada", "password": long }),
    )
    .await
    .assert_status(201);
    sign_in(&app, "ada", &long).await.assert_status(200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_in_by_username_or_email_and_no_answer_or_timing_reveals_an_account() {
    let Local { app, .. } = local_app(SignUpMode::Invite).await;
    sign_up(&app, "ada", Some("Ada@Example.com"), None)
        .await
        .assert_status(201);
    let by_name = token(&sign_in(&app, "ADA", PASSWORD).await, 200);
    let by_email = token(&sign_in(&app, "ada@example.COM", PASSWORD).await, 200);
    assert_ne!(by_name, by_email, "each sign-in is a session of its own");

    let mut known = Vec::new();
    let mut unknown = Vec::new();
    for _ in 0..3 {
        let started = Instant::now();
        let wrong_password = sign_in(&app, "ada", OTHER_PASSWORD).await;
        known.push(started.elapsed());
        let started = Instant::now();
        let no_account = sign_in(&app, "ghost", OTHER_PASSWORD).await;
        unknown.push(started.elapsed());
        let a = wrong_password.problem(401, "invalid_credentials");
        let b = no_account.problem(401, "invalid_credentials");
        assert_eq!(a.detail, b.detail);
    }
    known.sort();
    unknown.sort();
    let (k, u) = (known[1].as_secs_f64(), unknown[1].as_secs_f64());
    assert!(
        k / u < 3.0 && u / k < 3.0,
        "a wrong password took {k:.3} s, an unknown account {u:.3} s"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guessing_is_throttled_per_account_with_backoff_that_ends() {
    let Local { app, clock } = local_app(SignUpMode::Invite).await;
    sign_up(&app, "ada", None, None).await.assert_status(201);
    for _ in 0..5 {
        sign_in(&app, "ada", OTHER_PASSWORD)
            .await
            .problem(401, "invalid_credentials");
    }
    // The sixth failure starts the backoff: 1 s, then 2 s, …
    sign_in(&app, "ada", OTHER_PASSWORD)
        .await
        .problem(401, "invalid_credentials");
    let throttled = sign_in(&app, "ada", PASSWORD).await;
    throttled.problem(429, "rate_limited");
    assert_eq!(throttled.header("retry-after"), Some("1"));
    clock.advance(Duration::from_secs(1));
    sign_in(&app, "ada", OTHER_PASSWORD)
        .await
        .problem(401, "invalid_credentials");
    let doubled = sign_in(&app, "ada", PASSWORD).await;
    assert_eq!(doubled.header("retry-after"), Some("2"));
    // No lockout: once the wait is over, the right password gets in and clears the count.
    clock.advance(Duration::from_secs(2));
    sign_in(&app, "ada", PASSWORD).await.assert_status(200);
    sign_in(&app, "ada", OTHER_PASSWORD)
        .await
        .problem(401, "invalid_credentials");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parallel_guesses_meet_the_throttle_too() {
    let Local { app, .. } = local_app(SignUpMode::Invite).await;
    sign_up(&app, "ada", None, None).await.assert_status(201);
    let guesses = (0..12).map(|_| sign_in(&app, "ada", OTHER_PASSWORD));
    let answers = futures::future::join_all(guesses).await;
    let statuses: Vec<u16> = answers.iter().map(|a| a.status.as_u16()).collect();
    let wrong = statuses.iter().filter(|s| **s == 401).count();
    // The five free failures and the one that starts the backoff; the rest wait.
    assert_eq!(wrong, 6, "{statuses:?}");
    assert_eq!(
        statuses.iter().filter(|s| **s == 429).count(),
        6,
        "{statuses:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hashing_is_bounded_and_the_overflow_is_told_to_come_back() {
    let Local { app, .. } = local_app_with(LocalConfig {
        max_parallel_hashes: 1,
        hash_queue_wait: Duration::ZERO,
        ..LocalConfig::default()
    })
    .await;
    sign_up(&app, "ada", None, None).await.assert_status(201);
    let logins: Vec<String> = (0..8).map(|n| format!("user{n}")).collect();
    let attempts = logins
        .iter()
        .map(|login| sign_in(&app, login, OTHER_PASSWORD));
    let answers = futures::future::join_all(attempts).await;
    let busy: Vec<&Answer> = answers.iter().filter(|a| a.status == 503).collect();
    assert!(!busy.is_empty(), "one slot, eight hashes at once, no wait");
    for answer in &busy {
        answer.problem(503, "unavailable");
        assert!(answer.header("retry-after").is_some());
    }
    assert!(answers.iter().any(|a| a.status == 401));
    // The slots are given back: a sign-in alone goes through.
    sign_in(&app, "ada", PASSWORD).await.assert_status(200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guessing_is_throttled_per_address_across_accounts() {
    let Local { app, clock } = local_app(SignUpMode::Invite).await;
    sign_up(&app, "ada", None, None).await.assert_status(201);
    for n in 0..20 {
        sign_in(&app, &format!("user{n}"), OTHER_PASSWORD)
            .await
            .problem(401, "invalid_credentials");
    }
    sign_in(&app, "user20", OTHER_PASSWORD)
        .await
        .problem(401, "invalid_credentials");
    sign_in(&app, "ada", PASSWORD)
        .await
        .problem(429, "rate_limited");
    clock.advance(Duration::from_secs(1));
    sign_in(&app, "ada", PASSWORD).await.assert_status(200);
}

/// Behind a trusted proxy, the address throttled is the client's that the proxy forwards: one
/// client's guesses do not lock out the others who share the proxy. Without the setting the
/// header is not believed (a guesser could otherwise name a new address with every guess).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_address_throttled_is_the_one_a_trusted_proxy_forwards() {
    for trusted in [Some("127.0.0.0/8"), None] {
        let Local { app, .. } = local_app_behind(LocalConfig::default(), trusted).await;
        sign_up(&app, "ada", None, None).await.assert_status(201);
        for n in 0..21 {
            // Each guess claims another address on the left; the proxy appended the real one.
            let forwarded = format!("192.0.2.{n}, 198.51.100.1");
            sign_in_via(&app, &forwarded, &format!("user{n}"), OTHER_PASSWORD)
                .await
                .problem(401, "invalid_credentials");
        }
        sign_in_via(&app, "198.51.100.1", "ada", PASSWORD)
            .await
            .problem(429, "rate_limited");
        let other_client = sign_in_via(&app, "198.51.100.2", "ada", PASSWORD).await;
        if trusted.is_some() {
            other_client.assert_status(200);
        } else {
            other_client.problem(429, "rate_limited");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_out_ends_this_session_and_sign_out_all_ends_every_one() {
    let Local { app, .. } = local_app(SignUpMode::Invite).await;
    let first = token(&sign_up(&app, "ada", None, None).await, 201);
    let second = token(&sign_in(&app, "ada", PASSWORD).await, 200);
    let third = token(&sign_in(&app, "ada", PASSWORD).await, 200);
    post(&app, "/api/auth/local/sign-out", Some(&first), &json!({}))
        .await
        .assert_status(204);
    get_me(&app, &first).await.problem(401, "unauthenticated");
    get_me(&app, &second).await.assert_status(200);
    post(
        &app,
        "/api/auth/local/sign-out-all",
        Some(&second),
        &json!({}),
    )
    .await
    .assert_status(204);
    get_me(&app, &second).await.problem(401, "unauthenticated");
    get_me(&app, &third).await.problem(401, "unauthenticated");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_password_change_revokes_every_session_and_returns_a_new_one() {
    let Local { app, .. } = local_app(SignUpMode::Invite).await;
    let here = token(&sign_up(&app, "ada", None, None).await, 201);
    let elsewhere = token(&sign_in(&app, "ada", PASSWORD).await, 200);
    post(
        &app,
        "/api/auth/local/password",
        Some(&here),
        &json!({ "current": OTHER_PASSWORD, "new": "a brand new passphrase" }),
    )
    .await
    .problem(401, "invalid_credentials");
    let fresh = token(
        &post(
            &app,
            "/api/auth/local/password",
            Some(&here),
            &json!({ "current": PASSWORD, "new": "a brand new passphrase" }),
        )
        .await,
        200,
    );
    get_me(&app, &here).await.problem(401, "unauthenticated");
    get_me(&app, &elsewhere)
        .await
        .problem(401, "unauthenticated");
    get_me(&app, &fresh).await.assert_status(200);
    sign_in(&app, "ada", PASSWORD)
        .await
        .problem(401, "invalid_credentials");
    sign_in(&app, "ada", "a brand new passphrase")
        .await
        .assert_status(200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reset_link_is_for_administrators_single_use_and_revokes_sessions() {
    let Local { app, .. } = local_app(SignUpMode::Invite).await;
    let (admin, bob) = admin_and_bob(&app).await;
    post(
        &app,
        "/api/admin/password-resets",
        Some(&bob),
        &json!({ "login": "ada" }),
    )
    .await
    .problem(403, "forbidden");
    post(
        &app,
        "/api/admin/password-resets",
        Some(&admin),
        &json!({ "login": "nobody" }),
    )
    .await
    .problem(404, "not_found");
    let created = post(
        &app,
        "/api/admin/password-resets",
        Some(&admin),
        &json!({ "login": "bob" }),
    )
    .await;
    let body: Value = created.ok(201);
    let expires_at = chrono::DateTime::parse_from_rfc3339(body["expires_at"].as_str().unwrap())
        .unwrap()
        .with_timezone(&chrono::Utc);
    let lifetime = expires_at - chrono::Utc::now();
    assert!(lifetime > chrono::Duration::minutes(59) && lifetime <= chrono::Duration::hours(1));
    let reset = secret(&created, "reset");

    // A refused password does not use the link up (this one holds the username).
    let refused = json!({ "token": reset, "new": "bob's fresh passphrase" });
    post(&app, "/api/auth/local/reset", None, &refused)
        .await
        .problem(422, "validation_failed");
    let new = json!({ "token": reset, "new": "a fresh passphrase here" });
    post(&app, "/api/auth/local/reset", None, &new)
        .await
        .assert_status(204);
    post(&app, "/api/auth/local/reset", None, &new)
        .await
        .problem(400, "bad_request");
    get_me(&app, &bob).await.problem(401, "unauthenticated");
    sign_in(&app, "bob", "a fresh passphrase here")
        .await
        .assert_status(200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_an_account_takes_its_data_and_its_sessions() {
    let Local { app, .. } = local_app(SignUpMode::Open).await;
    let ada = token(&sign_up(&app, "ada", None, None).await, 201);
    let bob = token(&sign_up(&app, "bob", None, None).await, 201);
    for (who, name) in [(&ada, "Ada's"), (&bob, "Bob's")] {
        post(&app, "/api/projects", Some(who), &json!({ "name": name }))
            .await
            .assert_status(201);
    }
    let delete = |password: &str| {
        app.request(Method::DELETE, "/api/auth/local/account", None)
            .header("Authorization", format!("Bearer {ada}"))
            .json(&json!({ "password": password }))
    };
    app.send_request(delete(OTHER_PASSWORD))
        .await
        .problem(401, "invalid_credentials");
    app.send_request(delete(PASSWORD)).await.assert_status(204);
    get_me(&app, &ada).await.problem(401, "unauthenticated");
    sign_in(&app, "ada", PASSWORD)
        .await
        .problem(401, "invalid_credentials");
    let again = token(&sign_up(&app, "ada", None, None).await, 201);
    let projects: Value = app
        .send_request(
            app.request(Method::GET, "/api/projects", None)
                .header("Authorization", format!("Bearer {again}")),
        )
        .await
        .ok(200);
    assert_eq!(projects["items"], json!([]));
    let theirs: Value = app
        .send_request(
            app.request(Method::GET, "/api/projects", None)
                .header("Authorization", format!("Bearer {bob}")),
        )
        .await
        .ok(200);
    assert_eq!(theirs["items"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn the_routes_are_404_when_another_provider_is_configured() {
    let app = AppOptions::new().spawn().await;
    sign_in(&app, "ada", PASSWORD)
        .await
        .problem(404, "not_found");
    sign_up(&app, "ada", None, None)
        .await
        .problem(404, "not_found");
}

// --- Sessions: short-lived access tokens, rotated refresh tokens, idle timeout, the list.

/// The answer's access and refresh tokens.
fn pair(answer: &Answer, status: u16) -> (String, String) {
    let body: Value = answer.ok(status);
    (
        body["token"].as_str().expect("a token").to_owned(),
        body["refresh_token"]
            .as_str()
            .expect("a refresh token")
            .to_owned(),
    )
}

async fn refresh(app: &TestApp, refresh_token: &str) -> Answer {
    post(
        app,
        "/api/auth/local/refresh",
        None,
        &json!({ "refresh_token": refresh_token }),
    )
    .await
}

async fn call(app: &TestApp, method: Method, path: &str, token: &str) -> Answer {
    app.send_request(
        app.request(method, path, None)
            .header("Authorization", format!("Bearer {token}")),
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn access_tokens_are_short_lived_and_a_refresh_rotates_the_refresh_token() {
    let Local { app, clock } = local_app(SignUpMode::Invite).await;
    let answer = sign_up(&app, "ada", None, None).await;
    let body: Value = answer.ok(201);
    let expires_at: chrono::DateTime<chrono::Utc> =
        body["expires_at"].as_str().unwrap().parse().unwrap();
    let lifetime = expires_at - chrono::Utc::now();
    assert!(
        lifetime <= chrono::Duration::seconds(900) && lifetime > chrono::Duration::seconds(890),
        "an access token lives 15 minutes, not {lifetime}"
    );
    let (access, first) = pair(&answer, 201);

    let (renewed, second) = pair(&refresh(&app, &first).await, 200);
    assert_ne!(second, first, "each refresh hands out a new refresh token");
    get_me(&app, &renewed).await.assert_status(200);
    get_me(&app, &access).await.assert_status(200);
    let (_, third) = pair(&refresh(&app, &second).await, 200);

    // The first one, used up two rotations ago and past the grace: someone holds a copy.
    // The whole session ends, for the copy's holder and the rightful one alike.
    clock.advance(Duration::from_secs(31));
    refresh(&app, &first).await.problem(401, "unauthenticated");
    refresh(&app, &third).await.problem(401, "unauthenticated");
    get_me(&app, &renewed).await.problem(401, "unauthenticated");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_refresh_token_just_replaced_is_refused_after_the_grace_and_revokes_the_session() {
    let Local { app, clock } = local_app(SignUpMode::Invite).await;
    let (_, first) = pair(&sign_up(&app, "ada", None, None).await, 201);
    let (access, second) = pair(&refresh(&app, &first).await, 200);
    clock.advance(Duration::from_secs(31));
    refresh(&app, &first).await.problem(401, "unauthenticated");
    get_me(&app, &access).await.problem(401, "unauthenticated");
    refresh(&app, &second).await.problem(401, "unauthenticated");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_tabs_refreshing_at_once_both_stay_signed_in_with_the_same_new_token() {
    let Local { app, .. } = local_app(SignUpMode::Invite).await;
    let (_, first) = pair(&sign_up(&app, "ada", None, None).await, 201);
    let (a, b) = tokio::join!(refresh(&app, &first), refresh(&app, &first));
    let (access_a, refresh_a) = pair(&a, 200);
    let (access_b, refresh_b) = pair(&b, 200);
    assert_eq!(refresh_a, refresh_b, "the replay gets the same new secret");
    get_me(&app, &access_a).await.assert_status(200);
    get_me(&app, &access_b).await.assert_status(200);
    // And that one goes on rotating: nobody was signed out.
    let (access, _) = pair(&refresh(&app, &refresh_a).await, 200);
    get_me(&app, &access).await.assert_status(200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_not_renewed_for_the_idle_timeout_ends() {
    let Local { app, clock } = local_app(SignUpMode::Invite).await;
    let (_, first) = pair(&sign_up(&app, "ada", None, None).await, 201);
    clock.advance(Duration::from_secs(29 * 60));
    let (access, second) = pair(&refresh(&app, &first).await, 200);
    get_me(&app, &access).await.assert_status(200);
    clock.advance(Duration::from_secs(30 * 60 + 1));
    refresh(&app, &second).await.problem(401, "unauthenticated");
    get_me(&app, &access).await.problem(401, "unauthenticated");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn renewing_never_outlives_the_sessions_absolute_lifetime() {
    let Local { app, clock } = local_app_with(LocalConfig {
        session_ttl: Duration::from_secs(300),
        access_ttl: Duration::from_secs(60),
        idle_timeout: Duration::from_secs(120),
        ..LocalConfig::default()
    })
    .await;
    let (_, mut current) = pair(&sign_up(&app, "ada", None, None).await, 201);
    for _ in 0..4 {
        clock.advance(Duration::from_secs(60));
        let answer = refresh(&app, &current).await;
        let body: Value = answer.ok(200);
        current = body["refresh_token"].as_str().unwrap().to_owned();
    }
    clock.advance(Duration::from_secs(61));
    refresh(&app, &current)
        .await
        .problem(401, "unauthenticated");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_and_unknown_refresh_tokens_are_401() {
    let Local { app, .. } = local_app(SignUpMode::Invite).await;
    let (_, good) = pair(&sign_up(&app, "ada", None, None).await, 201);
    for bad in [
        "",
        "nonsense",
        &format!("{}.{}", uuid::Uuid::now_v7(), "a".repeat(64)),
        &good.replace('.', ""),
    ] {
        refresh(&app, bad).await.problem(401, "unauthenticated");
    }
    // None of those touched the real session.
    refresh(&app, &good).await.assert_status(200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_out_all_and_a_password_change_end_refresh_tokens_too() {
    let Local { app, .. } = local_app(SignUpMode::Invite).await;
    let (access, first) = pair(&sign_up(&app, "ada", None, None).await, 201);
    let (_, other) = pair(&sign_in(&app, "ada", PASSWORD).await, 200);
    let changed = post(
        &app,
        "/api/auth/local/password",
        Some(&access),
        &json!({ "current": PASSWORD, "new": OTHER_PASSWORD }),
    )
    .await;
    let (access, fresh) = pair(&changed, 200);
    refresh(&app, &first).await.problem(401, "unauthenticated");
    refresh(&app, &other).await.problem(401, "unauthenticated");
    post(
        &app,
        "/api/auth/local/sign-out-all",
        Some(&access),
        &json!({}),
    )
    .await
    .assert_status(204);
    refresh(&app, &fresh).await.problem(401, "unauthenticated");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sessions_list_shows_ones_own_sessions_and_ends_them_but_not_anothers() {
    let Local { app, .. } = local_app(SignUpMode::Invite).await;
    let (admin, bob) = admin_and_bob(&app).await;
    let laptop = app
        .send_request(
            app.request(Method::POST, "/api/auth/local/sign-in", None)
                .header("User-Agent", "Laptop Browser/1.0")
                .json(&json!({ "login": "ada", "password": PASSWORD })),
        )
        .await;
    let (laptop, laptop_refresh) = pair(&laptop, 200);

    let listed: Value = call(&app, Method::GET, "/api/auth/local/sessions", &admin)
        .await
        .ok(200);
    let items = listed.as_array().expect("an array");
    assert_eq!(items.len(), 2, "Ada's two sessions, not Bob's: {listed}");
    assert_eq!(items[0]["user_agent"], "Laptop Browser/1.0", "newest first");
    assert_eq!(items[0]["address"], "127.0.0.1");
    assert_eq!(items[0]["current"], false);
    assert_eq!(items[1]["current"], true);
    for item in items {
        for field in ["id", "created_at", "last_used_at", "expires_at"] {
            assert!(item[field].is_string(), "{field} in {item}");
        }
    }
    let laptop_id = items[0]["id"].as_str().unwrap().to_owned();

    let bobs: Value = call(&app, Method::GET, "/api/auth/local/sessions", &bob)
        .await
        .ok(200);
    let bob_id = bobs[0]["id"].as_str().unwrap().to_owned();
    call(
        &app,
        Method::DELETE,
        &format!("/api/auth/local/sessions/{bob_id}"),
        &admin,
    )
    .await
    .problem(404, "not_found");
    get_me(&app, &bob).await.assert_status(200);
    call(
        &app,
        Method::DELETE,
        "/api/auth/local/sessions/not-a-uuid",
        &admin,
    )
    .await
    .problem(400, "bad_request");

    call(
        &app,
        Method::DELETE,
        &format!("/api/auth/local/sessions/{laptop_id}"),
        &admin,
    )
    .await
    .assert_status(204);
    get_me(&app, &laptop).await.problem(401, "unauthenticated");
    refresh(&app, &laptop_refresh)
        .await
        .problem(401, "unauthenticated");
    call(
        &app,
        Method::DELETE,
        &format!("/api/auth/local/sessions/{laptop_id}"),
        &admin,
    )
    .await
    .problem(404, "not_found");
    let listed: Value = call(&app, Method::GET, "/api/auth/local/sessions", &admin)
        .await
        .ok(200);
    assert_eq!(listed.as_array().unwrap().len(), 1);
    call(&app, Method::GET, "/api/auth/local/sessions", "nonsense")
        .await
        .problem(401, "unauthenticated");
}

/// A request with a `User-Agent`, as a browser sends one.
async fn post_from(
    app: &TestApp,
    user_agent: &str,
    path: &str,
    token: Option<&str>,
    body: &Value,
) -> Answer {
    let mut request = app
        .request(Method::POST, path, None)
        .header("User-Agent", user_agent)
        .json(body);
    if let Some(token) = token {
        request = request.header("Authorization", format!("Bearer {token}"));
    }
    app.send_request(request).await
}

async fn activity(app: &TestApp, token: &str) -> Vec<Value> {
    let listed: Value = call(app, Method::GET, "/api/auth/local/activity", token)
        .await
        .ok(200);
    listed.as_array().expect("an array").clone()
}

fn kinds(events: &[Value]) -> Vec<&str> {
    events
        .iter()
        .map(|e| e["kind"].as_str().expect("a kind"))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_password_change_from_another_session_shows_as_unread_here_until_marked_read() {
    let Local { app, clock } = local_app(SignUpMode::Invite).await;
    let laptop = post_from(
        &app,
        "Laptop Browser/1.0",
        "/api/auth/local/sign-up",
        None,
        &json!({ "username": "ada", "password": PASSWORD }),
    )
    .await;
    let laptop = token(&laptop, 201);
    let own = activity(&app, &laptop).await;
    assert_eq!(kinds(&own), ["signed_in"]);
    assert_eq!(own[0]["current"], true, "the laptop's own sign-up: {own:?}");
    assert_eq!(own[0]["unread"], true);
    assert_eq!(own[0]["user_agent"], "Laptop Browser/1.0");
    assert_eq!(own[0]["address"], "127.0.0.1");
    for field in ["id", "at"] {
        assert!(own[0][field].is_string(), "{field} in {:?}", own[0]);
    }

    // Someone signs in on a phone and changes the password there.
    let phone = post_from(
        &app,
        "Phone Browser/2.0",
        "/api/auth/local/sign-in",
        None,
        &json!({ "login": "ada", "password": PASSWORD }),
    )
    .await;
    let phone = token(&phone, 200);
    let changed = post_from(
        &app,
        "Phone Browser/2.0",
        "/api/auth/local/password",
        Some(&phone),
        &json!({ "current": PASSWORD, "new": OTHER_PASSWORD }),
    )
    .await;
    let phone = token(&changed, 200);
    let on_phone = activity(&app, &phone).await;
    assert_eq!(
        kinds(&on_phone),
        ["password_changed", "signed_in", "signed_in"],
        "newest first"
    );
    assert_eq!(
        on_phone[0]["current"], true,
        "the change continues in the phone's new session"
    );
    assert_eq!(on_phone[0]["user_agent"], "Phone Browser/2.0");

    // The laptop was signed out by the change; signed in again, it sees the change as
    // unread and not its own.
    get_me(&app, &laptop).await.problem(401, "unauthenticated");
    clock.advance(Duration::from_secs(1));
    let laptop = post_from(
        &app,
        "Laptop Browser/1.0",
        "/api/auth/local/sign-in",
        None,
        &json!({ "login": "ada", "password": OTHER_PASSWORD }),
    )
    .await;
    let laptop = token(&laptop, 200);
    let seen = activity(&app, &laptop).await;
    assert_eq!(
        kinds(&seen),
        ["signed_in", "password_changed", "signed_in", "signed_in"]
    );
    assert_eq!(seen[0]["current"], true);
    assert_eq!(seen[1]["current"], false, "changed from another session");
    assert_eq!(seen[1]["unread"], true);
    assert_eq!(seen[1]["user_agent"], "Phone Browser/2.0");
    let text = serde_json::to_string(&seen).unwrap();
    for secret in [PASSWORD, OTHER_PASSWORD, laptop.as_str(), phone.as_str()] {
        assert!(!text.contains(secret), "a secret in the activity: {text}");
    }

    // Read up to what a client showed: the newer sign-in stays unread.
    post(
        &app,
        "/api/auth/local/activity/read",
        Some(&laptop),
        &json!({ "up_to": seen[1]["at"] }),
    )
    .await
    .assert_status(204);
    let partly = activity(&app, &laptop).await;
    assert_eq!(partly[0]["unread"], true, "newer than up_to: {partly:?}");
    assert!(
        partly[1..].iter().all(|e| e["unread"] == false),
        "{partly:?}"
    );
    post(
        &app,
        "/api/auth/local/activity/read",
        Some(&laptop),
        &json!({ "up_to": "not a time" }),
    )
    .await
    .problem(422, "validation_failed");
    // No body: everything so far.
    call(&app, Method::POST, "/api/auth/local/activity/read", &laptop)
        .await
        .assert_status(204);
    let read = activity(&app, &laptop).await;
    assert!(
        read.iter().all(|e| e["unread"] == false),
        "all read: {read:?}"
    );
    // Read is per account: the phone sees them read too; a new event is unread again.
    post_from(
        &app,
        "Tablet/3.0",
        "/api/auth/local/sign-in",
        None,
        &json!({ "login": "ada", "password": OTHER_PASSWORD }),
    )
    .await
    .assert_status(200);
    let on_phone = activity(&app, &phone).await;
    assert_eq!(on_phone[0]["kind"], "signed_in");
    assert_eq!(on_phone[0]["user_agent"], "Tablet/3.0");
    assert_eq!(on_phone[0]["unread"], true);
    assert!(on_phone[1..].iter().all(|e| e["unread"] == false));

    for (method, path) in [
        (Method::GET, "/api/auth/local/activity"),
        (Method::POST, "/api/auth/local/activity/read"),
    ] {
        call(&app, method.clone(), path, "nonsense")
            .await
            .problem(401, "unauthenticated");
        app.send_request(app.request(method, path, None))
            .await
            .problem(401, "unauthenticated");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reset_and_sign_out_everywhere_are_noted_and_another_users_events_never_show() {
    let Local { app, .. } = local_app(SignUpMode::Invite).await;
    let (admin, bob) = admin_and_bob(&app).await;
    let bobs_before = activity(&app, &bob).await;
    assert_eq!(kinds(&bobs_before), ["signed_in"]);
    let created = post(
        &app,
        "/api/admin/password-resets",
        Some(&admin),
        &json!({ "login": "bob" }),
    )
    .await;
    let reset = secret(&created, "reset");
    post_from(
        &app,
        "Bob's Browser/4.0",
        "/api/auth/local/reset",
        None,
        &json!({ "token": reset, "new": OTHER_PASSWORD }),
    )
    .await
    .assert_status(204);
    let bob = token(&sign_in(&app, "bob", OTHER_PASSWORD).await, 200);
    let bobs = activity(&app, &bob).await;
    assert_eq!(kinds(&bobs), ["signed_in", "password_reset", "signed_in"]);
    assert_eq!(bobs[1]["current"], false);
    assert_eq!(bobs[1]["user_agent"], "Bob's Browser/4.0");

    post(
        &app,
        "/api/auth/local/sign-out-all",
        Some(&admin),
        &json!({}),
    )
    .await
    .assert_status(204);
    let admin = token(&sign_in(&app, "ada", PASSWORD).await, 200);
    let adas = activity(&app, &admin).await;
    assert_eq!(
        kinds(&adas),
        ["signed_in", "signed_out_everywhere", "signed_in"]
    );
    assert_eq!(adas[1]["current"], false, "that session is over");

    // Neither sees the other's, and marking read is one's own.
    let ada_ids: Vec<&Value> = adas.iter().map(|e| &e["id"]).collect();
    let bobs = activity(&app, &bob).await;
    assert_eq!(bobs.len(), 3, "bob's own only: {bobs:?}");
    assert!(bobs.iter().all(|e| !ada_ids.contains(&&e["id"])));
    call(&app, Method::POST, "/api/auth/local/activity/read", &bob)
        .await
        .assert_status(204);
    assert!(
        activity(&app, &admin)
            .await
            .iter()
            .all(|e| e["unread"] == true),
        "bob's reading does not mark ada's"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_activity_keeps_the_newest_fifty_and_nothing_older_than_ninety_days() {
    let Local { app, clock } = local_app(SignUpMode::Invite).await;
    let first = token(&sign_up(&app, "ada", None, None).await, 201);
    let first_event = activity(&app, &first).await[0]["id"].clone();
    let mut last = first;
    for _ in 0..confab_auth::local::EVENTS_KEPT {
        last = token(&sign_in(&app, "ada", PASSWORD).await, 200);
    }
    let kept = activity(&app, &last).await;
    assert_eq!(kept.len(), 50, "bounded to the newest 50");
    assert!(
        kept.iter().all(|e| e["id"] != first_event),
        "the oldest went first"
    );
    assert_eq!(kept[0]["current"], true, "the newest is kept");

    clock.advance(Duration::from_secs(91 * 24 * 3600));
    let later = token(&sign_in(&app, "ada", PASSWORD).await, 200);
    let kept = activity(&app, &later).await;
    assert_eq!(kinds(&kept), ["signed_in"], "the 91-day-old ones are gone");
}
