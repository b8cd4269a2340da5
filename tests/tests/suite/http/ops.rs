//! Operational and public routes: health, readiness, metrics, client config, the OpenAPI
//! document, the interactive docs, and dev sign-in when it is not configured.

use std::sync::Arc;

use confab_memory::ScriptedLlm;
use confab_tests::http::{ALICE, AppOptions, spawn_app, spawn_scripted};
use serde_json::{Value, json};

use super::essence;

#[tokio::test]
async fn healthz_answers_ok_while_the_process_runs() {
    let app = spawn_app().await;
    let answer = app.healthz().await;
    let body: Value = answer.ok(200);
    assert_eq!(body, json!({ "status": "ok" }));
}

#[tokio::test]
async fn readyz_answers_200_when_the_store_answers_and_503_when_it_does_not() {
    let app = spawn_app().await;
    app.readyz().await.assert_status(200);

    app.store.set_unavailable(true);
    let answer = app.readyz().await;
    answer.problem(503, "unavailable");
    app.store.set_unavailable(false);
    app.readyz().await.assert_status(200);
}

#[tokio::test]
async fn metrics_are_prometheus_text_with_request_counters() {
    let app = spawn_app().await;
    app.list_projects(ALICE, "").await.assert_status(200);
    let answer = app.metrics().await;
    answer.assert_status(200);
    let content_type = essence(answer.header("content-type"));
    assert!(
        content_type == "text/plain" || content_type == "application/openmetrics-text",
        "a Prometheus exposition format, got {content_type}"
    );
    let text = answer.text();
    assert!(text.contains("# TYPE "), "{text}");
    assert!(
        text.lines()
            .any(|line| line.starts_with("confab_http_requests_total{")
                && line.contains("route=\"/api/projects\"")
                && line.contains("status=\"200\"")),
        "the request to /api/projects is counted: {text}"
    );
}

#[tokio::test]
async fn api_config_is_public_and_names_the_providers_and_limits() {
    let app = spawn_app().await;
    let config: Value = app.config().await.ok(200);
    assert_eq!(config["auth"]["provider"], "dev");
    assert_eq!(config["llm"]["provider"], "echo");
    assert_eq!(config["llm"]["model"], "echo-1");
    assert_eq!(config["limits"]["project_name_chars"], 200);
    assert_eq!(config["limits"]["message_chars"], 32_000);
    assert_eq!(config["limits"]["upload_bytes"], 25 * 1024 * 1024);
    assert_eq!(config["limits"]["sends_per_minute"], 20);

    // Public routes ignore a token, even a bad one.
    for path in ["/api/config", "/api/openapi.json"] {
        let answer = app
            .send_request(
                app.request(reqwest::Method::GET, path, None)
                    .header("Authorization", "Bearer garbage"),
            )
            .await;
        answer.assert_status(200);
    }

    let scripted = spawn_scripted(
        ScriptedLlm::replying(&["x"]),
        &[("CONFAB_SENDS_PER_MINUTE", "7"), ("CONFAB_MODEL", "m-2")],
    )
    .await;
    let config: Value = scripted.config().await.ok(200);
    assert_eq!(config["llm"]["provider"], "scripted");
    assert_eq!(config["llm"]["model"], "m-2");
    assert_eq!(config["limits"]["sends_per_minute"], 7);
}

#[tokio::test]
async fn the_openapi_document_is_openapi_3_1_and_describes_every_api_route() {
    let app = spawn_app().await;
    let doc: Value = app.openapi().await.ok(200);
    let version = doc["openapi"].as_str().unwrap_or_default();
    assert!(version.starts_with("3.1"), "OpenAPI version {version}");
    let paths = doc["paths"].as_object().expect("a paths object");
    let expected: &[(&str, &[&str])] = &[
        ("/api/config", &["get"]),
        ("/api/auth/dev-login", &["post"]),
        ("/api/me", &["get"]),
        ("/api/projects", &["get", "post"]),
        ("/api/projects/{project_id}", &["get", "patch", "delete"]),
        ("/api/projects/{project_id}/prompts", &["get", "post"]),
        ("/api/projects/{project_id}/prompts/active", &["get"]),
        (
            "/api/projects/{project_id}/prompts/{prompt_id}/activate",
            &["post"],
        ),
        ("/api/projects/{project_id}/conversations", &["get", "post"]),
        (
            "/api/conversations/{conversation_id}",
            &["get", "patch", "delete"],
        ),
        (
            "/api/conversations/{conversation_id}/messages",
            &["get", "post"],
        ),
        ("/api/conversations/{conversation_id}/leaf", &["put"]),
        ("/api/messages/{message_id}/regenerate", &["post"]),
        ("/api/conversations/{conversation_id}/stream", &["get"]),
        ("/api/conversations/{conversation_id}/cancel", &["post"]),
        ("/api/projects/{project_id}/files", &["get", "post"]),
        ("/api/files/{file_id}", &["get", "delete"]),
        ("/api/files/{file_id}/content", &["get"]),
        ("/api/search", &["get"]),
        // Issue 18: read-only share links.
        (
            "/api/conversations/{conversation_id}/shares",
            &["get", "post"],
        ),
        ("/api/shares/{share_id}", &["delete"]),
        ("/api/shared/{token}", &["get"]),
        // Issue 18: export and import.
        ("/api/conversations/{conversation_id}/export", &["get"]),
        ("/api/export", &["get"]),
        ("/api/projects/{project_id}/import", &["post"]),
        ("/api/openapi.json", &["get"]),
        ("/api/auth/local/sign-up", &["post"]),
        ("/api/auth/local/sign-in", &["post"]),
        // Issue 21: sessions (rotated refresh tokens, the sessions list).
        ("/api/auth/local/refresh", &["post"]),
        ("/api/auth/local/sessions", &["get"]),
        ("/api/auth/local/sessions/{session_id}", &["delete"]),
        // Issue 21: the security history (ASVS 2.2.3, 2.5.5).
        ("/api/auth/local/activity", &["get"]),
        ("/api/auth/local/activity/read", &["post"]),
        ("/api/auth/local/reset", &["post"]),
        ("/api/auth/local/sign-out", &["post"]),
        ("/api/auth/local/sign-out-all", &["post"]),
        ("/api/auth/local/password", &["post"]),
        ("/api/auth/local/account", &["delete"]),
        ("/api/admin/invites", &["post"]),
        ("/api/admin/password-resets", &["post"]),
        ("/api/usage", &["get"]),
        ("/api/admin/users", &["get"]),
        ("/api/admin/users/{user_id}/quota", &["put"]),
        ("/api/admin/usage", &["get"]),
        // Issue 21: the browser's sign-in at an OpenID Connect provider.
        ("/api/auth/oidc/token", &["post"]),
        ("/auth/oidc/sign-in", &["get"]),
        ("/auth/oidc/callback", &["get"]),
        ("/auth/oidc/sign-out", &["post"]),
    ];
    let mut missing = Vec::new();
    for (path, methods) in expected {
        for method in *methods {
            if paths.get(*path).and_then(|p| p.get(*method)).is_none() {
                missing.push(format!("{} {path}", method.to_uppercase()));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "not in the OpenAPI document: {missing:?}"
    );
    let documented: Vec<&String> = paths.keys().filter(|p| p.starts_with("/api")).collect();
    for path in documented {
        assert!(
            expected.iter().any(|(p, _)| p == path),
            "the document describes {path}, which API.md does not have"
        );
    }
}

#[tokio::test]
async fn the_interactive_docs_are_served_as_html() {
    let app = spawn_app().await;
    for path in ["/docs/", "/docs"] {
        let answer = app
            .send_request(app.request(reqwest::Method::GET, path, None))
            .await;
        answer.assert_status(200);
        assert_eq!(
            essence(answer.header("content-type")),
            "text/html",
            "{path}"
        );
        assert!(
            answer.text().to_ascii_lowercase().contains("swagger"),
            "{path} serves the API docs: {}",
            answer.text()
        );
    }
}

#[tokio::test]
async fn dev_login_is_404_when_dev_sign_in_is_not_configured() {
    let app = AppOptions::new().spawn().await;
    let answer = app.dev_login(&json!({ "username": "alice" })).await;
    answer.problem(404, "not_found");
    // And it takes no token: no WWW-Authenticate challenge, even with a bad one.
    assert!(answer.header("www-authenticate").is_none());
    let with_bad_token = app
        .send_request(
            app.request(reqwest::Method::POST, "/api/auth/dev-login", None)
                .header("Authorization", "Basic eDp5")
                .json(&json!({ "username": "alice" })),
        )
        .await;
    with_bad_token.problem(404, "not_found");
}

#[tokio::test]
async fn api_me_returns_the_tokens_subject() {
    let app = spawn_app().await;
    let me: Value = app.me(ALICE).await.ok(200);
    assert_eq!(me, json!({ "user_id": "alice", "is_admin": false }));
}

#[tokio::test]
async fn a_server_can_run_on_any_llm_given_as_a_trait_object() {
    let llm = ScriptedLlm::replying(&["fine"]);
    let app = confab_tests::http::spawn_app_with(Arc::new(llm), &[]).await;
    let project = app.new_project(ALICE, "p").await;
    let conversation = app.new_conversation(ALICE, project.id).await;
    let reply = app.send(ALICE, conversation.id, "hi").await;
    assert_eq!(reply.done().content, "fine");
}

#[tokio::test]
async fn every_answer_carries_a_request_id_and_nosniff() {
    let app = spawn_app().await;
    for answer in [
        app.healthz().await,
        app.list_projects("alice", "").await,
        app.me("nobody-token-less").await,
    ] {
        assert_eq!(answer.header("x-content-type-options"), Some("nosniff"));
        assert_eq!(answer.header("referrer-policy"), Some("no-referrer"));
        assert!(
            answer
                .header("x-request-id")
                .is_some_and(|id| !id.is_empty())
        );
    }
}
