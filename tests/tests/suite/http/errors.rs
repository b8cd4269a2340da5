//! Every error status of API.md's table that the server produces, as
//! `application/problem+json` with its `code`, and the order in which the checks apply.
//! (409 and 429 of the chat stream are in `chat.rs`, upload errors in `files.rs`.)

use std::sync::Arc;
use std::time::Duration;

use confab_api_types as api;
use confab_core::error::AuthError;
use confab_core::model::Principal;
use confab_core::ports::AuthVerifier;
use confab_memory::FakeAuth;
use confab_tests::http::{ALICE, Answer, AppOptions, TestApp, bearer, spawn_app};
use futures::stream;
use reqwest::Method;
use serde_json::{Value, json};
use uuid::Uuid;

/// A raw request with a body and an optional Content-Type, signed in as `user` when given.
async fn raw(
    app: &TestApp,
    method: Method,
    path: &str,
    user: Option<&str>,
    content_type: Option<&str>,
    body: &str,
) -> Answer {
    let mut builder = app.request(method, path, user).body(body.to_owned());
    if let Some(content_type) = content_type {
        builder = builder.header("Content-Type", content_type);
    }
    app.send_request(builder).await
}

/// A request with this `Authorization` header value (or none).
async fn with_authorization(
    app: &TestApp,
    method: Method,
    path: &str,
    value: Option<&str>,
) -> Answer {
    let mut builder = app.request(method, path, None);
    if let Some(value) = value {
        builder = builder.header("Authorization", value);
    }
    app.send_request(builder).await
}

#[track_caller]
fn unauthenticated(answer: &Answer) {
    answer.problem(401, "unauthenticated");
    assert_eq!(
        answer.header("www-authenticate"),
        Some("Bearer"),
        "a 401 carries the Bearer challenge"
    );
}

// ---- 400 -----------------------------------------------------------------------------

#[tokio::test]
async fn a_body_that_is_not_json_is_400() {
    let app = spawn_app().await;
    for body in [
        "{",
        "{\"name\": }",
        "not json",
        "{\"name\": \"x\"} trailing",
    ] {
        raw(
            &app,
            Method::POST,
            "/api/projects",
            Some(ALICE),
            Some("application/json"),
            body,
        )
        .await
        .problem(400, "bad_request");
    }
    let project = app.new_project(ALICE, "Bot").await;
    let conversation = app.new_conversation(ALICE, project.id).await;
    raw(
        &app,
        Method::POST,
        &format!("/api/conversations/{}/messages", conversation.id),
        Some(ALICE),
        Some("application/json"),
        "{\"content\": ",
    )
    .await
    .problem(400, "bad_request");
    raw(
        &app,
        Method::PATCH,
        &format!("/api/projects/{}", project.id),
        Some(ALICE),
        Some("application/json"),
        "[1,",
    )
    .await
    .problem(400, "bad_request");
}

#[tokio::test]
async fn a_path_id_that_is_not_a_uuid_is_400_on_every_route_that_takes_one() {
    let app = spawn_app().await;
    let project = app.new_project(ALICE, "Bot").await;
    let routes = [
        (Method::GET, "/api/projects/not-a-uuid".to_owned()),
        (Method::PATCH, "/api/projects/123".to_owned()),
        (Method::DELETE, "/api/projects/123".to_owned()),
        (Method::GET, "/api/projects/xyz/prompts".to_owned()),
        (Method::GET, "/api/projects/xyz/prompts/active".to_owned()),
        (
            Method::POST,
            format!("/api/projects/{}/prompts/nope/activate", project.id),
        ),
        (Method::GET, "/api/projects/xyz/conversations".to_owned()),
        (Method::POST, "/api/projects/xyz/conversations".to_owned()),
        (Method::GET, "/api/conversations/xyz".to_owned()),
        (Method::DELETE, "/api/conversations/xyz".to_owned()),
        (Method::GET, "/api/conversations/xyz/messages".to_owned()),
        (Method::POST, "/api/conversations/xyz/cancel".to_owned()),
        (Method::GET, "/api/projects/xyz/files".to_owned()),
        (Method::GET, "/api/files/xyz".to_owned()),
        (Method::DELETE, "/api/files/xyz".to_owned()),
        (Method::GET, "/api/files/xyz/content".to_owned()),
    ];
    for (method, path) in routes {
        let answer = app
            .send_request(app.request(method.clone(), &path, Some(ALICE)))
            .await;
        assert_eq!(
            answer.status.as_u16(),
            400,
            "{method} {path}: {}",
            answer.text()
        );
        answer.problem(400, "bad_request");
    }
    // JSON routes too, with a valid body.
    app.patch_conversation(ALICE, "1234", &json!({ "title": "t" }))
        .await
        .problem(400, "bad_request");
    let answer = app
        .send_message(ALICE, "zzz", &json!({ "content": "hi" }))
        .await;
    Answer::read(answer).await.problem(400, "bad_request");
}

#[tokio::test]
async fn a_malformed_cursor_or_a_non_numeric_limit_is_400() {
    let app = spawn_app().await;
    let project = app.new_project(ALICE, "Bot").await;
    let conversation = app.new_conversation(ALICE, project.id).await;
    let lists = [
        "/api/projects".to_owned(),
        format!("/api/projects/{}/prompts", project.id),
        format!("/api/projects/{}/conversations", project.id),
        format!("/api/conversations/{}/messages", conversation.id),
        format!("/api/projects/{}/files", project.id),
    ];
    for list in &lists {
        for query in [
            "?cursor=%21%21not-a-cursor%21%21",
            "?limit=abc",
            "?limit=2.5",
            "?limit=",
        ] {
            let path = format!("{list}{query}");
            let answer = app
                .send_request(app.request(Method::GET, &path, Some(ALICE)))
                .await;
            assert_eq!(answer.status.as_u16(), 400, "GET {path}: {}", answer.text());
            answer.problem(400, "bad_request");
        }
    }
}

// ---- 401 -----------------------------------------------------------------------------

#[tokio::test]
async fn a_missing_malformed_or_untrusted_token_is_401_with_a_bearer_challenge() {
    let app = spawn_app().await;
    let project = app.new_project(ALICE, "Bot").await;
    let token = FakeAuth::token_for(ALICE);
    let basic = "Basic YWxpY2U6cGFzc3dvcmQ=".to_owned();
    let values: Vec<Option<String>> = vec![
        None,
        Some(String::new()),
        Some("Bearer".to_owned()),
        Some("Bearer ".to_owned()),
        Some(token.clone()),
        Some(format!("Bearer{token}")),
        Some(basic),
        Some(format!("Basic {token}")),
        Some("Bearer not-a-valid-token".to_owned()),
        Some(format!("Bearer {}", "x".repeat(20_000))),
    ];
    let paths = [
        (Method::GET, "/api/me".to_owned()),
        (Method::GET, "/api/projects".to_owned()),
        (Method::GET, format!("/api/projects/{}", project.id)),
        (Method::DELETE, format!("/api/projects/{}", project.id)),
        (Method::GET, format!("/api/projects/{}/files", project.id)),
        (
            Method::POST,
            format!("/api/projects/{}/conversations", project.id),
        ),
    ];
    for (method, path) in &paths {
        for value in &values {
            let answer = with_authorization(&app, method.clone(), path, value.as_deref()).await;
            assert_eq!(
                answer.status.as_u16(),
                401,
                "{method} {path} with Authorization {:?}",
                value.as_deref().map(|v| &v[..v.len().min(40)])
            );
            unauthenticated(&answer);
        }
    }
    // Nothing was done on the failed attempts.
    app.get_project(ALICE, project.id).await.assert_status(200);
}

#[tokio::test]
async fn the_bearer_scheme_is_case_insensitive() {
    let app = spawn_app().await;
    let value = format!("bearer {}", FakeAuth::token_for(ALICE));
    with_authorization(&app, Method::GET, "/api/me", Some(&value))
        .await
        .assert_status(200);
}

#[tokio::test]
async fn an_unknown_api_path_is_401_without_a_token_and_404_with_one() {
    let app = spawn_app().await;
    for path in ["/api/x", "/api/projects/x/y/z", "/api", "/api/"] {
        for method in [Method::GET, Method::POST, Method::DELETE] {
            let answer = with_authorization(&app, method.clone(), path, None).await;
            unauthenticated(&answer);
            let answer = with_authorization(&app, method.clone(), path, Some("Basic abc")).await;
            unauthenticated(&answer);
            let answer = app
                .send_request(app.request(method.clone(), path, Some(ALICE)))
                .await;
            assert_eq!(
                answer.status.as_u16(),
                404,
                "{method} {path}: {}",
                answer.text()
            );
            answer.problem(404, "not_found");
        }
    }
}

// ---- 404 -----------------------------------------------------------------------------

#[tokio::test]
async fn an_unknown_id_is_404_on_every_route() {
    let app = spawn_app().await;
    let project = app.new_project(ALICE, "Bot").await;
    let missing = Uuid::now_v7();
    let answers = [
        app.get_project(ALICE, missing).await,
        app.patch_project(ALICE, missing, &json!({ "name": "x" }))
            .await,
        app.delete_project(ALICE, missing).await,
        app.list_prompts(ALICE, missing, "").await,
        app.create_prompt(ALICE, missing, &json!({ "content": "x" }))
            .await,
        app.active_prompt(ALICE, missing).await,
        app.activate_prompt(ALICE, missing, missing).await,
        app.activate_prompt(ALICE, project.id, missing).await,
        app.list_conversations(ALICE, missing, "").await,
        app.create_conversation(ALICE, missing, None).await,
        app.get_conversation(ALICE, missing).await,
        app.patch_conversation(ALICE, missing, &json!({ "title": "x" }))
            .await,
        app.delete_conversation(ALICE, missing).await,
        app.list_messages(ALICE, missing, "").await,
        Answer::read(
            app.send_message(ALICE, missing, &json!({ "content": "hi" }))
                .await,
        )
        .await,
        app.cancel(ALICE, missing).await,
        app.list_files(ALICE, missing, "").await,
        app.upload_file(ALICE, missing, "a.txt", "text/plain", b"abc".to_vec())
            .await,
        app.get_file(ALICE, missing).await,
        app.delete_file(ALICE, missing).await,
        app.download_file(ALICE, missing).await,
    ];
    for (index, answer) in answers.iter().enumerate() {
        assert_eq!(
            answer.status.as_u16(),
            404,
            "route #{index}: {}",
            answer.text()
        );
        answer.problem(404, "not_found");
    }
    assert!(
        app.blobs.is_empty(),
        "an upload to a missing project leaves no bytes"
    );
}

// ---- 405 -----------------------------------------------------------------------------

#[tokio::test]
async fn a_known_path_with_another_method_is_405_with_an_allow_header() {
    let app = spawn_app().await;
    let id = Uuid::now_v7();
    let cases = [
        (Method::PUT, "/api/projects".to_owned(), "GET, POST"),
        (Method::DELETE, "/api/projects".to_owned(), "GET, POST"),
        (
            Method::POST,
            format!("/api/projects/{id}"),
            "GET, PATCH, DELETE",
        ),
        (
            Method::DELETE,
            format!("/api/projects/{id}/prompts"),
            "GET, POST",
        ),
        (
            Method::POST,
            format!("/api/projects/{id}/prompts/active"),
            "GET",
        ),
        (
            Method::GET,
            format!("/api/projects/{id}/prompts/{id}/activate"),
            "POST",
        ),
        (
            Method::PUT,
            format!("/api/projects/{id}/conversations"),
            "GET, POST",
        ),
        (
            Method::PUT,
            format!("/api/conversations/{id}"),
            "GET, PATCH, DELETE",
        ),
        (
            Method::DELETE,
            format!("/api/conversations/{id}/messages"),
            "GET, POST",
        ),
        (
            Method::GET,
            format!("/api/conversations/{id}/cancel"),
            "POST",
        ),
        (
            Method::PATCH,
            format!("/api/projects/{id}/files"),
            "GET, POST",
        ),
        (Method::POST, format!("/api/files/{id}"), "GET, DELETE"),
        (Method::DELETE, format!("/api/files/{id}/content"), "GET"),
        (Method::POST, "/api/me".to_owned(), "GET"),
    ];
    for (method, path, allow) in &cases {
        let answer = app
            .send_request(app.request(method.clone(), path, Some(ALICE)))
            .await;
        assert_eq!(
            answer.status.as_u16(),
            405,
            "{method} {path}: {}",
            answer.text()
        );
        answer.problem(405, "method_not_allowed");
        assert_eq!(answer.header("allow"), Some(*allow), "{method} {path}");
        // Authentication still comes first on protected paths.
        let anonymous = app
            .send_request(app.request(method.clone(), path, None))
            .await;
        unauthenticated(&anonymous);
    }
    let public = [
        (Method::POST, "/healthz", "GET"),
        (Method::DELETE, "/readyz", "GET"),
        (Method::POST, "/metrics", "GET"),
        (Method::POST, "/api/config", "GET"),
        (Method::GET, "/api/auth/dev-login", "POST"),
        (Method::PUT, "/api/openapi.json", "GET"),
    ];
    for (method, path, allow) in public {
        let answer = app
            .send_request(app.request(method.clone(), path, None))
            .await;
        answer.problem(405, "method_not_allowed");
        assert_eq!(answer.header("allow"), Some(allow), "{method} {path}");
    }
}

// ---- 413 -----------------------------------------------------------------------------

#[tokio::test]
async fn a_json_body_over_the_limit_is_413_whether_declared_or_streamed() {
    let app = AppOptions::new()
        .setting("CONFAB_MAX_JSON_BYTES", "64")
        .spawn()
        .await;
    let big = json!({ "name": "n".repeat(100) });
    app.create_project(ALICE, &big)
        .await
        .problem(413, "payload_too_large");

    // Without a Content-Length (chunked), the limit still holds.
    let text = big.to_string();
    let chunks: Vec<Result<String, std::io::Error>> = text
        .as_bytes()
        .chunks(16)
        .map(|c| Ok(String::from_utf8(c.to_vec()).unwrap()))
        .collect();
    let answer = app
        .send_request(
            app.request(Method::POST, "/api/projects", Some(ALICE))
                .header("Content-Type", "application/json")
                .body(reqwest::Body::wrap_stream(stream::iter(chunks))),
        )
        .await;
    answer.problem(413, "payload_too_large");

    let page: api::Page<api::Project> = app.list_projects(ALICE, "").await.ok(200);
    assert!(page.items.is_empty(), "nothing was stored");
    // A body within the limit is fine.
    app.create_project(ALICE, &json!({ "name": "small" }))
        .await
        .assert_status(201);
}

// ---- 415 -----------------------------------------------------------------------------

#[tokio::test]
async fn a_json_route_without_a_json_content_type_is_415() {
    let app = spawn_app().await;
    let project = app.new_project(ALICE, "Bot").await;
    let conversation = app.new_conversation(ALICE, project.id).await;
    let routes = [
        (Method::POST, "/api/projects".to_owned(), r#"{"name":"x"}"#),
        (
            Method::PATCH,
            format!("/api/projects/{}", project.id),
            r#"{"name":"x"}"#,
        ),
        (
            Method::POST,
            format!("/api/projects/{}/prompts", project.id),
            r#"{"content":"x"}"#,
        ),
        (
            Method::POST,
            format!("/api/projects/{}/conversations", project.id),
            r#"{"title":"x"}"#,
        ),
        (
            Method::PATCH,
            format!("/api/conversations/{}", conversation.id),
            r#"{"title":"x"}"#,
        ),
        (
            Method::POST,
            format!("/api/conversations/{}/messages", conversation.id),
            r#"{"content":"x"}"#,
        ),
    ];
    for (method, path, body) in &routes {
        for content_type in [
            None,
            Some("text/plain"),
            Some("application/x-www-form-urlencoded"),
        ] {
            let answer = raw(&app, method.clone(), path, Some(ALICE), content_type, body).await;
            assert_eq!(
                answer.status.as_u16(),
                415,
                "{method} {path} with {content_type:?}: {}",
                answer.text()
            );
            answer.problem(415, "unsupported_media_type");
        }
    }
    // `application/json; charset=utf-8` is JSON.
    raw(
        &app,
        Method::POST,
        "/api/projects",
        Some(ALICE),
        Some("application/json; charset=utf-8"),
        r#"{"name":"x"}"#,
    )
    .await
    .assert_status(201);
    assert!(app.stored_messages(ALICE, conversation.id).await.is_empty());
}

#[tokio::test]
async fn a_post_whose_fields_are_required_refuses_an_empty_body() {
    let app = spawn_app().await;
    // No Content-Type and no body on a route that needs one: 415 (a JSON route without one).
    raw(&app, Method::POST, "/api/projects", Some(ALICE), None, "")
        .await
        .problem(415, "unsupported_media_type");
    // Declared JSON, but empty: not JSON.
    raw(
        &app,
        Method::POST,
        "/api/projects",
        Some(ALICE),
        Some("application/json"),
        "",
    )
    .await
    .problem(400, "bad_request");
}

// ---- 422 -----------------------------------------------------------------------------

#[tokio::test]
async fn invalid_project_fields_are_422() {
    let app = spawn_app().await;
    let bodies = [
        json!({ "name": "" }),
        json!({ "name": "   " }),
        json!({ "name": "\t\n" }),
        json!({ "name": "n".repeat(201) }),
        json!({ "name": "é".repeat(201) }),
        json!({ "name": 3 }),
        json!({ "name": null }),
        json!({ "name": ["x"] }),
        json!({}),
        json!({ "name": "ok", "description": 5 }),
        json!([]),
        json!("name"),
    ];
    for body in &bodies {
        let answer = app.create_project(ALICE, body).await;
        assert_eq!(answer.status.as_u16(), 422, "{body}: {}", answer.text());
        answer.problem(422, "validation_failed");
    }
    let page: api::Page<api::Project> = app.list_projects(ALICE, "").await.ok(200);
    assert!(page.items.is_empty(), "nothing was stored");

    // 200 characters (not bytes) is the limit.
    let fits = "é".repeat(200);
    let project: api::Project = app
        .create_project(ALICE, &json!({ "name": fits }))
        .await
        .ok(201);
    assert_eq!(project.name, fits);
    for body in [
        json!({ "name": "  " }),
        json!({ "name": "n".repeat(201) }),
        json!({ "name": 1 }),
    ] {
        app.patch_project(ALICE, project.id, &body)
            .await
            .problem(422, "validation_failed");
    }
    let stored: api::Project = app.get_project(ALICE, project.id).await.ok(200);
    assert_eq!(stored.name, fits, "a refused patch changes nothing");
}

#[tokio::test]
async fn a_blank_empty_or_too_long_message_is_422() {
    let app = spawn_app().await;
    let project = app.new_project(ALICE, "Bot").await;
    let conversation = app.new_conversation(ALICE, project.id).await;
    let bodies = [
        json!({ "content": "" }),
        json!({ "content": "   \n\t " }),
        json!({ "content": "x".repeat(32_001) }),
        json!({ "content": 42 }),
        json!({}),
        json!({ "content": "hi", "client_message_id": "not-a-uuid" }),
    ];
    for body in &bodies {
        let answer = Answer::read(app.send_message(ALICE, conversation.id, body).await).await;
        assert_eq!(answer.status.as_u16(), 422, "{}", answer.text());
        answer.problem(422, "validation_failed");
    }
    assert!(app.stored_messages(ALICE, conversation.id).await.is_empty());
}

#[tokio::test]
async fn a_limit_outside_1_to_200_is_422() {
    let app = spawn_app().await;
    let project = app.new_project(ALICE, "Bot").await;
    for query in ["?limit=0", "?limit=201", "?limit=-1", "?limit=100000"] {
        app.list_projects(ALICE, query)
            .await
            .problem(422, "validation_failed");
        app.list_conversations(ALICE, project.id, query)
            .await
            .problem(422, "validation_failed");
    }
    app.list_projects(ALICE, "?limit=1")
        .await
        .assert_status(200);
    app.list_projects(ALICE, "?limit=200")
        .await
        .assert_status(200);
}

// ---- order of checks -----------------------------------------------------------------

#[tokio::test]
async fn authentication_is_checked_before_everything_else() {
    let app = spawn_app().await;
    let bad_token = "Bearer nope";
    // A bad token with a bad body, a bad id, a bad content type, a bad limit.
    let answers = [
        raw(
            &app,
            Method::POST,
            "/api/projects",
            None,
            Some("application/json"),
            "{",
        )
        .await,
        app.send_request(
            app.request(Method::POST, "/api/projects", None)
                .header("Authorization", bad_token)
                .header("Content-Type", "application/json")
                .body("{"),
        )
        .await,
        raw(
            &app,
            Method::GET,
            "/api/projects/not-a-uuid",
            None,
            None,
            "",
        )
        .await,
        raw(
            &app,
            Method::POST,
            "/api/projects",
            None,
            Some("text/plain"),
            "x",
        )
        .await,
        raw(&app, Method::GET, "/api/projects?limit=0", None, None, "").await,
        raw(
            &app,
            Method::PATCH,
            "/api/projects/nope",
            None,
            Some("text/plain"),
            "{",
        )
        .await,
        raw(
            &app,
            Method::POST,
            "/api/projects",
            None,
            Some("application/json"),
            r#"{"name":""}"#,
        )
        .await,
    ];
    for answer in &answers {
        unauthenticated(answer);
    }
}

#[tokio::test]
async fn path_parameters_are_checked_before_the_content_type_and_the_body() {
    let app = spawn_app().await;
    raw(
        &app,
        Method::PATCH,
        "/api/projects/nope",
        Some(ALICE),
        Some("text/plain"),
        "{",
    )
    .await
    .problem(400, "bad_request");
    raw(
        &app,
        Method::POST,
        "/api/conversations/nope/messages",
        Some(ALICE),
        None,
        r#"{"content":""}"#,
    )
    .await
    .problem(400, "bad_request");
}

#[tokio::test]
async fn the_content_type_is_checked_before_the_body_is_parsed() {
    let app = spawn_app().await;
    raw(
        &app,
        Method::POST,
        "/api/projects",
        Some(ALICE),
        Some("text/plain"),
        "{",
    )
    .await
    .problem(415, "unsupported_media_type");
    // Before the size limit too.
    let small = AppOptions::new()
        .setting("CONFAB_MAX_JSON_BYTES", "8")
        .spawn()
        .await;
    raw(
        &small,
        Method::POST,
        "/api/projects",
        Some(ALICE),
        Some("text/plain"),
        &"x".repeat(100),
    )
    .await
    .problem(415, "unsupported_media_type");
}

#[tokio::test]
async fn parsing_is_checked_before_validation_and_validation_before_existence() {
    let app = spawn_app().await;
    let missing = Uuid::now_v7();
    // Invalid JSON whose visible part would also be invalid: 400.
    raw(
        &app,
        Method::POST,
        &format!("/api/conversations/{missing}/messages"),
        Some(ALICE),
        Some("application/json"),
        r#"{"content": "", "#,
    )
    .await
    .problem(400, "bad_request");
    // Valid JSON, invalid fields, missing resource: 422.
    Answer::read(
        app.send_message(ALICE, missing, &json!({ "content": "  " }))
            .await,
    )
    .await
    .problem(422, "validation_failed");
    app.patch_project(ALICE, missing, &json!({ "name": "" }))
        .await
        .problem(422, "validation_failed");
    app.create_prompt(ALICE, missing, &json!({ "content": "" }))
        .await
        .problem(422, "validation_failed");
}

#[tokio::test]
async fn the_problem_body_never_carries_internals() {
    let app = spawn_app().await;
    let answer = raw(
        &app,
        Method::POST,
        "/api/projects",
        Some(ALICE),
        Some("application/json"),
        "{",
    )
    .await;
    let problem: Value = answer.value();
    let mut fields: Vec<&String> = problem.as_object().unwrap().keys().collect();
    fields.sort();
    assert_eq!(fields, ["code", "detail", "status", "title", "type"]);
    let unauthorized = with_authorization(&app, Method::GET, "/api/me", Some(&bearer(""))).await;
    unauthenticated(&unauthorized);
    assert!(
        !unauthorized.text().contains("test-token"),
        "{}",
        unauthorized.text()
    );
}

/// `FakeAuth` answering after a pause, as a verifier that must fetch its keys first does.
struct SlowAuth;

#[async_trait::async_trait]
impl AuthVerifier for SlowAuth {
    async fn verify(&self, token: &str) -> Result<Principal, AuthError> {
        tokio::time::sleep(Duration::from_millis(20)).await;
        FakeAuth.verify(token).await
    }
}

#[tokio::test]
async fn authentication_comes_first_even_when_the_verifier_has_to_wait() {
    let app = AppOptions::new().auth(Arc::new(SlowAuth)).spawn().await;
    app.me(ALICE).await.assert_status(200);
    let bad = Some("Bearer nope");
    let cases = [
        (Method::GET, "/api/projects/not-a-uuid", None, ""),
        (
            Method::PATCH,
            "/api/projects/not-a-uuid",
            Some("text/plain"),
            "{",
        ),
        (Method::POST, "/api/projects", Some("text/plain"), "x"),
        (Method::POST, "/api/projects", Some("application/json"), "{"),
        (
            Method::POST,
            "/api/projects",
            Some("application/json"),
            r#"{"name":""}"#,
        ),
        (Method::GET, "/api/projects?limit=abc", None, ""),
        (Method::GET, "/api/projects?limit=0", None, ""),
    ];
    for (method, path, content_type, body) in cases {
        for authorization in [None, bad] {
            let mut builder = app.request(method.clone(), path, None).body(body);
            if let Some(content_type) = content_type {
                builder = builder.header("Content-Type", content_type);
            }
            if let Some(authorization) = authorization {
                builder = builder.header("Authorization", authorization);
            }
            let answer = app.send_request(builder).await;
            assert_eq!(
                answer.status.as_u16(),
                401,
                "{method} {path} ({content_type:?}, {body:?}) with {authorization:?}: {}",
                answer.text()
            );
            unauthenticated(&answer);
        }
    }
}

// ---- 500 -----------------------------------------------------------------------------

/// A verifier with a bug: it panics.
struct PanickingAuth;

#[async_trait::async_trait]
impl AuthVerifier for PanickingAuth {
    async fn verify(&self, token: &str) -> Result<Principal, AuthError> {
        panic!("the verifier broke on {token}")
    }
}

#[tokio::test]
async fn a_panic_is_a_500_problem_that_hides_it_and_the_server_keeps_serving() {
    let app = AppOptions::new()
        .auth(Arc::new(PanickingAuth))
        .spawn()
        .await;
    for _ in 0..3 {
        let answer = app.me(ALICE).await;
        let problem = answer.problem(500, "internal");
        assert!(
            !problem.detail.contains("broke") && !answer.text().contains("test-token"),
            "{}",
            answer.text()
        );
    }
    app.healthz().await.assert_status(200);
    let metrics = app.metrics().await.text();
    assert!(
        metrics
            .lines()
            .any(|line| line.starts_with("confab_http_requests_total{")
                && line.contains(r#"status="500""#)
                && line.ends_with(" 3")),
        "the 500s are counted: {metrics}"
    );
}
