//! Built-in accounts on the real process and a SQLite file: the migrations, sessions that
//! survive a restart (with a fixed secret) and revocations that do too, and passwords that
//! never reach the log.

use serde_json::{Value, json};

use crate::harness::{Scratch, Server, base_env, free_port, set};

const PASSWORD: &str = "never-in-the-log passphrase 7f3a";

async fn post(base: &str, path: &str, token: Option<&str>, body: Value) -> (u16, Value) {
    let mut request = reqwest::Client::new()
        .post(format!("{base}{path}"))
        .json(&body);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn me(base: &str, token: &str) -> u16 {
    reqwest::Client::new()
        .get(format!("{base}/api/me"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test]
async fn accounts_and_revocations_survive_a_restart_and_passwords_stay_out_of_the_log() {
    let dir = Scratch::new("accounts");
    let mut env = base_env(dir.path(), free_port());
    set(&mut env, "CONFAB_AUTH", "local");
    set(
        &mut env,
        "CONFAB_LOCAL_AUTH_SECRET",
        "a-fixed-local-secret-0123456789abcdef",
    );
    set(&mut env, "RUST_LOG", "debug");
    let server = Server::start(dir.path(), &env).await;
    let base = server.base.clone();
    let (status, config) = reqwest::get(format!("{base}/api/config"))
        .await
        .unwrap()
        .json::<Value>()
        .await
        .map(|c| (200, c))
        .unwrap();
    assert_eq!(status, 200);
    assert_eq!(config["auth"]["provider"], "local");
    assert_eq!(config["auth"]["signup"], "invite");
    // No account yet: the client offers "Create account" without an invite.
    assert_eq!(config["auth"]["first_account"], true);

    let (status, _) = post(
        &base,
        "/api/auth/local/sign-up",
        None,
        json!({ "username": "ada", "password": PASSWORD }),
    )
    .await;
    assert_eq!(status, 201);
    let config: Value = reqwest::get(format!("{base}/api/config"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        config["auth"].get("first_account").is_none(),
        "once an account exists, no first-account offer: {config}"
    );
    let sign_in = || {
        post(
            &base,
            "/api/auth/local/sign-in",
            None,
            json!({ "login": "ada", "password": PASSWORD }),
        )
    };
    let (status, kept) = sign_in().await;
    assert_eq!(status, 200);
    let (_, revoked) = sign_in().await;
    let (kept, revoked) = (
        kept["token"].as_str().unwrap().to_owned(),
        revoked["token"].as_str().unwrap().to_owned(),
    );
    let (status, _) = post(&base, "/api/auth/local/sign-out", Some(&revoked), json!({})).await;
    assert_eq!(status, 204);
    let (status, _) = post(
        &base,
        "/api/auth/local/sign-in",
        None,
        json!({ "login": "ada", "password": "a wrong passphrase, logged?" }),
    )
    .await;
    assert_eq!(status, 401);
    let logs = server.logs();
    drop(server);

    let server = Server::start(dir.path(), &env).await;
    assert_eq!(
        me(&server.base, &kept).await,
        200,
        "a session survives a restart"
    );
    assert_eq!(
        me(&server.base, &revoked).await,
        401,
        "a revocation survives a restart"
    );
    let logs = logs + &server.logs();
    for secret in [PASSWORD, "a wrong passphrase", kept.as_str()] {
        assert!(!logs.contains(secret), "the log holds a secret: {secret}");
    }
}

/// Issue 21: two replicas on one PostgreSQL database share the guessing throttle. Five
/// wrong guesses on A use up the pair's free failures everywhere: B throttles within its
/// first few guesses (alone it would let five through), and then A does too. With the
/// database away, a sign-in is 503, never a guess let through uncounted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_postgres_guesses_on_one_replica_throttle_the_other() {
    let Some(database) = confab_sql::testing::postgres_database().await else {
        return;
    };
    let (proxy, url) = crate::harness::CutProxy::in_front_of(database.url()).await;
    let dir = Scratch::new("accounts-replicas");
    let mut env = base_env(dir.path(), free_port());
    set(&mut env, "DATABASE_URL", url.as_str());
    set(&mut env, "CONFAB_AUTH", "local");
    set(
        &mut env,
        "CONFAB_LOCAL_AUTH_SECRET",
        "a-fixed-local-secret-0123456789abcdef",
    );
    let (a, b) = crate::harness::two_replicas(dir.path(), &env).await;
    let (status, _) = post(
        &a.base,
        "/api/auth/local/sign-up",
        None,
        json!({ "username": "ada", "password": PASSWORD }),
    )
    .await;
    assert_eq!(status, 201);
    let guess = |base: String| async move {
        let response = reqwest::Client::new()
            .post(format!("{base}/api/auth/local/sign-in"))
            .json(&json!({ "login": "ada", "password": "a wrong guess, again" }))
            .send()
            .await
            .unwrap();
        let retry_after = response
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
        (response.status().as_u16(), retry_after)
    };
    for _ in 0..5 {
        assert_eq!(guess(a.base.clone()).await.0, 401);
    }
    // B counts A's five: its first guess is the sixth (counted, starting the backoff), its
    // next waits. (A slow machine may let one wait pass; B alone would allow five.)
    let mut on_b = Vec::new();
    for _ in 0..4 {
        let answer = guess(b.base.clone()).await;
        on_b.push(answer.0);
        if answer.0 == 429 {
            assert!(answer.1.is_some_and(|s| s >= 1), "429 has a Retry-After");
            break;
        }
    }
    assert_eq!(on_b.first(), Some(&401), "{on_b:?}");
    assert_eq!(on_b.last(), Some(&429), "B throttles A's guesses: {on_b:?}");
    assert_eq!(guess(a.base.clone()).await.0, 429, "and A B's");

    proxy.cut();
    let (status, body) = post(
        &b.base,
        "/api/auth/local/sign-in",
        None,
        json!({ "login": "grace", "password": "any password at all" }),
    )
    .await;
    assert_eq!(status, 503, "{body}");
}

/// Two replicas on one PostgreSQL: a refresh token rotated on A is current on B, and the
/// one it replaced, presented to B (two rotations later), is taken for a stolen copy: the
/// session ends on both replicas.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_postgres_a_refresh_on_one_replica_is_seen_by_the_other() {
    let Some(database) = confab_sql::testing::postgres_database().await else {
        return;
    };
    let dir = Scratch::new("sessions-replicas");
    let mut env = base_env(dir.path(), free_port());
    set(&mut env, "DATABASE_URL", database.url());
    set(&mut env, "CONFAB_AUTH", "local");
    set(
        &mut env,
        "CONFAB_LOCAL_AUTH_SECRET",
        "a-fixed-local-secret-0123456789abcdef",
    );
    let (a, b) = crate::harness::two_replicas(dir.path(), &env).await;
    let refresh_token = |body: &Value| body["refresh_token"].as_str().unwrap().to_owned();
    let (status, body) = post(
        &a.base,
        "/api/auth/local/sign-up",
        None,
        json!({ "username": "ada", "password": PASSWORD }),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let r0 = refresh_token(&body);
    let (status, body) = post(
        &a.base,
        "/api/auth/local/refresh",
        None,
        json!({ "refresh_token": r0 }),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let r1 = refresh_token(&body);
    let (status, body) = post(
        &b.base,
        "/api/auth/local/refresh",
        None,
        json!({ "refresh_token": r1 }),
    )
    .await;
    assert_eq!(status, 200, "B renews with the token A handed out: {body}");
    let r2 = refresh_token(&body);
    let access = body["token"].as_str().unwrap().to_owned();
    assert_eq!(me(&a.base, &access).await, 200);

    let (status, body) = post(
        &b.base,
        "/api/auth/local/refresh",
        None,
        json!({ "refresh_token": r0 }),
    )
    .await;
    assert_eq!(status, 401, "a used-up token: {body}");
    assert_eq!(body["code"], "unauthenticated");
    let (status, _) = post(
        &a.base,
        "/api/auth/local/refresh",
        None,
        json!({ "refresh_token": r2 }),
    )
    .await;
    assert_eq!(status, 401, "the session ended on A too");
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    assert_eq!(me(&a.base, &access).await, 401);
}
