//! Usage and quotas (issue 19): a send over quota is 429 `quota_exceeded` and stores
//! nothing; `/api/usage` sums equal the stored replies' usage; `/api/admin/*` is 404 for
//! anyone but an administrator; an administrator's override replaces the default.

use confab_api_types as api;
use confab_tests::http::{ALICE, AppOptions, BOB, TestApp, spawn_app};
use reqwest::Method;
use serde_json::{Value, json};

async fn conversation(app: &TestApp, user: &str) -> api::Conversation {
    let project = app.new_project(user, "Chat").await;
    app.new_conversation(user, project.id).await
}

async fn get(app: &TestApp, user: &str, path: &str) -> confab_tests::http::Answer {
    app.send_request(app.request(Method::GET, path, Some(user)))
        .await
}

async fn put(app: &TestApp, user: &str, path: &str, body: &Value) -> confab_tests::http::Answer {
    app.send_request(app.request(Method::PUT, path, Some(user)).json(body))
        .await
}

async fn send_refused(
    app: &TestApp,
    user: &str,
    conversation: uuid::Uuid,
) -> confab_tests::http::Answer {
    confab_tests::http::Answer::read(
        app.send_message(user, conversation, &json!({ "content": "one more" }))
            .await,
    )
    .await
}

#[tokio::test]
async fn a_send_over_the_daily_quota_is_429_quota_exceeded_and_stores_nothing() {
    let app = AppOptions::new()
        .setting("CONFAB_QUOTA_TOKENS_PER_DAY", "1")
        .spawn()
        .await;
    let c = conversation(&app, ALICE).await;
    app.send(ALICE, c.id, "Hello there").await.done();
    assert_eq!(app.stored_messages(ALICE, c.id).await.len(), 2);

    let answer = send_refused(&app, ALICE, c.id).await;
    let problem = answer.problem(429, "quota_exceeded");
    assert!(
        problem.detail.contains("daily quota of 1 tokens") && problem.detail.contains("UTC"),
        "{}",
        problem.detail
    );
    let retry_after: u64 = answer
        .header("retry-after")
        .expect("a Retry-After header: the day resets within a day")
        .parse()
        .expect("whole seconds");
    // API.md: 1–60 s on every 429 (the detail names the reset time).
    assert!((1..=60).contains(&retry_after), "{retry_after}");
    assert_eq!(
        app.stored_messages(ALICE, c.id).await.len(),
        2,
        "the refused send stored nothing"
    );
    // Regenerating is a send too.
    let reply = app.stored_messages(ALICE, c.id).await[1].id;
    let answer = app
        .send_request(app.request(
            Method::POST,
            &format!("/api/messages/{reply}/regenerate"),
            Some(ALICE),
        ))
        .await;
    answer.problem(429, "quota_exceeded");
    assert_eq!(app.stored_messages(ALICE, c.id).await.len(), 2);

    // Another user is not affected; a missing conversation is still 404 first.
    let b = conversation(&app, BOB).await;
    app.send(BOB, b.id, "hi").await.done();
    send_refused(&app, ALICE, uuid::Uuid::now_v7())
        .await
        .problem(404, "not_found");

    let metrics = app.metrics().await.text();
    assert!(
        metrics.contains("confab_quota_refusals_total 2"),
        "{metrics}"
    );
    assert!(
        metrics.contains("confab_tokens_total{model=\"echo-1\",kind=\"output\"}"),
        "{metrics}"
    );
}

#[tokio::test]
async fn usage_sums_equal_the_stored_replies_usage() {
    let app = spawn_app().await;
    let c1 = conversation(&app, ALICE).await;
    let c2 = conversation(&app, ALICE).await;
    app.send(ALICE, c1.id, "The first question").await.done();
    app.send(ALICE, c1.id, "A second, longer question about it")
        .await
        .done();
    app.send(ALICE, c2.id, "Elsewhere").await.done();
    app.send(BOB, conversation(&app, BOB).await.id, "Bob's")
        .await
        .done();

    let mut input = 0;
    let mut output = 0;
    for c in [c1.id, c2.id] {
        for m in app.stored_messages(ALICE, c).await {
            if let Some(usage) = m.usage {
                input += u64::from(usage.input_tokens);
                output += u64::from(usage.output_tokens);
            }
        }
    }
    assert!(input > 0 && output > 0);

    let answer = get(&app, ALICE, "/api/usage").await;
    answer.assert_status(200);
    let report: api::UsageReport = answer.json();
    let today = chrono::Utc::now().format("%Y-%m-%d").to_string();
    assert_eq!(report.group_by, "day");
    assert_eq!(report.to, today);
    assert_eq!(report.groups.len(), 1, "{report:?}");
    assert_eq!(report.groups[0].key, today);
    assert_eq!(report.groups[0].sums.input_tokens, input);
    assert_eq!(report.groups[0].sums.output_tokens, output);
    assert_eq!(report.groups[0].sums.total_tokens, input + output);
    assert_eq!(report.groups[0].sums.calls, 3);
    let quota = report.quota.expect("the caller's quota");
    assert_eq!(quota.used_today, input + output);
    assert_eq!(quota.tokens_per_day, None);

    let by_project: api::UsageReport = get(&app, ALICE, "/api/usage?group_by=project").await.json();
    let mut keys: Vec<String> = by_project.groups.iter().map(|g| g.key.clone()).collect();
    keys.sort();
    let mut want = vec![c1.project_id.to_string(), c2.project_id.to_string()];
    want.sort();
    assert_eq!(keys, want);
    assert_eq!(by_project.total.total_tokens, input + output);

    let by_model: api::UsageReport = get(&app, ALICE, "/api/usage?group_by=model").await.json();
    assert_eq!(by_model.groups.len(), 1);
    assert_eq!(by_model.groups[0].key, "echo-1");

    get(&app, ALICE, "/api/usage?group_by=user")
        .await
        .problem(422, "validation_failed");
    get(&app, ALICE, "/api/usage?from=2026-13-01")
        .await
        .problem(422, "validation_failed");
    let empty: api::UsageReport = get(&app, ALICE, "/api/usage?from=2026-01-02&to=2026-01-01")
        .await
        .json();
    assert_eq!(
        empty.total.total_tokens, 0,
        "from after to is an empty range"
    );
    // Any range is a report (grouped in the store), from the oldest date on.
    let long: api::UsageReport = get(&app, ALICE, "/api/usage?from=2000-01-01&to=2999-12-31")
        .await
        .json();
    assert_eq!(long.total.total_tokens, input + output);
    let oldest: api::UsageReport = get(&app, ALICE, "/api/usage?to=-262143-01-01").await.json();
    assert_eq!(oldest.total.total_tokens, 0);
}

#[tokio::test]
async fn admin_routes_are_404_for_anyone_but_an_administrator() {
    let app = AppOptions::new()
        .setting("CONFAB_ADMINS", "alice")
        .spawn()
        .await;
    let c = conversation(&app, BOB).await;
    app.send(BOB, c.id, "hello").await.done();

    let me: api::Me = app.me(BOB).await.json();
    assert!(!me.is_admin);
    let me: api::Me = app.me(ALICE).await.json();
    assert!(me.is_admin);

    for path in [
        "/api/admin/users",
        "/api/admin/usage",
        "/api/admin/usage?group_by=user",
    ] {
        get(&app, BOB, path).await.problem(404, "not_found");
        get(&app, ALICE, path).await.assert_status(200);
    }
    put(
        &app,
        BOB,
        "/api/admin/users/bob/quota",
        &json!({ "tokens_per_day": 5 }),
    )
    .await
    .problem(404, "not_found");

    let users: Vec<api::AdminUser> = get(&app, ALICE, "/api/admin/users").await.json();
    let bob = users
        .iter()
        .find(|u| u.user_id == BOB)
        .expect("bob is listed");
    assert!(bob.quota.used_today > 0);
    let usage: api::UsageReport = get(&app, ALICE, "/api/admin/usage?group_by=user")
        .await
        .json();
    assert_eq!(usage.groups.len(), 1);
    assert_eq!(usage.groups[0].key, BOB);
    assert_eq!(usage.groups[0].sums.total_tokens, bob.quota.used_today);
}

#[tokio::test]
async fn an_administrators_override_replaces_the_default_quota() {
    let app = AppOptions::new()
        .settings(&[
            ("CONFAB_ADMINS", "alice"),
            ("CONFAB_QUOTA_TOKENS_PER_DAY", "1000000"),
        ])
        .spawn()
        .await;
    let c = conversation(&app, BOB).await;
    app.send(BOB, c.id, "first").await.done();

    let answer = put(
        &app,
        ALICE,
        "/api/admin/users/bob/quota",
        &json!({ "tokens_per_day": 1 }),
    )
    .await;
    answer.assert_status(200);
    let set: api::AdminUser = answer.json();
    assert_eq!(set.quota.tokens_per_day, Some(1));
    assert_eq!(set.quota.remaining_today, Some(0));
    send_refused(&app, BOB, c.id)
        .await
        .problem(429, "quota_exceeded");

    let status: api::UsageReport = get(&app, BOB, "/api/usage").await.json();
    assert_eq!(status.quota.expect("a quota").remaining_today, Some(0));

    put(
        &app,
        ALICE,
        "/api/admin/users/bob/quota",
        &json!({ "tokens_per_day": null }),
    )
    .await
    .assert_status(200);
    app.send(BOB, c.id, "again").await.done();
}

#[tokio::test]
async fn two_replicas_sending_for_one_user_at_once_at_the_quota_are_both_refused() {
    // Replies that take a while (50 ms a word), so that both sends below start while the
    // other's reply is still running.
    let slow = || {
        std::sync::Arc::new(confab_memory::EchoLlm::new(
            std::time::Duration::from_millis(50),
        ))
    };
    let app = AppOptions::new()
        .llm(slow())
        .setting("CONFAB_QUOTA_TOKENS_PER_DAY", "1")
        .spawn()
        .await;
    let replica = AppOptions::new()
        .llm(slow())
        .setting("CONFAB_QUOTA_TOKENS_PER_DAY", "1")
        .replica_of(&app)
        .spawn()
        .await;
    let first = conversation(&app, ALICE).await;
    let second = conversation(&replica, ALICE).await;
    // Below the quota both pass: the replies then running may take the user past it.
    let (a, b) = tokio::join!(
        app.send(ALICE, first.id, "Hello from one"),
        replica.send(ALICE, second.id, "Hello from the other"),
    );
    a.done();
    b.done();

    let (a, b) = tokio::join!(
        send_refused(&app, ALICE, first.id),
        send_refused(&replica, ALICE, second.id),
    );
    a.problem(429, "quota_exceeded");
    b.problem(429, "quota_exceeded");
    assert_eq!(app.stored_messages(ALICE, first.id).await.len(), 2);
    assert_eq!(replica.stored_messages(ALICE, second.id).await.len(), 2);
}
