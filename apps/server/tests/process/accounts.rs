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
