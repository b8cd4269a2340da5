//! Dev sign-in through the HTTP API, with the real dev adapter.

use std::sync::Arc;
use std::time::Duration;

use confab_auth::{DevAuth, DevConfig};
use confab_tests::http::AppOptions;
use serde_json::{Value, json};

async fn dev_app(ttl: Duration) -> confab_tests::http::TestApp {
    let dev = Arc::new(DevAuth::new(&DevConfig { secret: None, ttl }).expect("a dev signer"));
    AppOptions::new()
        .auth(dev.clone())
        .dev_tokens(dev)
        .spawn()
        .await
}

#[tokio::test]
async fn dev_login_returns_a_token_that_signs_the_user_in() {
    let app = dev_app(Duration::from_secs(3600)).await;
    let answer = app.dev_login(&json!({ "username": "alice" })).await;
    let body: Value = answer.ok(200);
    let token = body["token"].as_str().expect("a token").to_owned();
    let expires_at =
        chrono::DateTime::parse_from_rfc3339(body["expires_at"].as_str().expect("expires_at"))
            .expect("an RFC 3339 time");
    let lifetime = expires_at.with_timezone(&chrono::Utc) - chrono::Utc::now();
    assert!(
        lifetime > chrono::Duration::minutes(59) && lifetime <= chrono::Duration::minutes(60),
        "{lifetime}"
    );

    let me = app
        .send_request(
            app.request(reqwest::Method::GET, "/api/me", None)
                .header("Authorization", format!("Bearer {token}")),
        )
        .await;
    let me: Value = me.ok(200);
    assert_eq!(me["user_id"], "dev:alice");

    let projects = app
        .send_request(
            app.request(reqwest::Method::POST, "/api/projects", None)
                .header("Authorization", format!("Bearer {token}"))
                .json(&json!({ "name": "Mine" })),
        )
        .await;
    projects.assert_status(201);
}

#[tokio::test]
async fn dev_login_rejects_unusable_usernames_with_422() {
    let app = dev_app(Duration::from_secs(3600)).await;
    for bad in ["", "has space", "semi;colon", &"x".repeat(65)] {
        app.dev_login(&json!({ "username": bad }))
            .await
            .problem(422, "validation_failed");
    }
    app.dev_login(&json!({}))
        .await
        .problem(422, "validation_failed");
    app.dev_login(&json!({ "username": "ok" }))
        .await
        .assert_status(200);
}

#[tokio::test]
async fn an_expired_dev_token_is_refused() {
    let app = dev_app(Duration::from_secs(1)).await;
    let body: Value = app.dev_login(&json!({ "username": "bob" })).await.ok(200);
    let token = body["token"].as_str().expect("a token").to_owned();
    // One second of lifetime, plus the five seconds of allowed clock skew, plus the second
    // that `exp` is rounded to (a token is refused once `exp < now - skew` in whole seconds).
    tokio::time::sleep(Duration::from_millis(7_500)).await;
    let me = app
        .send_request(
            app.request(reqwest::Method::GET, "/api/me", None)
                .header("Authorization", format!("Bearer {token}")),
        )
        .await;
    me.problem(401, "unauthenticated");
    assert_eq!(me.header("www-authenticate"), Some("Bearer"));
}
