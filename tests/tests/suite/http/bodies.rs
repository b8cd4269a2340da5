//! What a JSON body must be, on every route that reads one: a JSON object. An array, `null`, a
//! number, a string or a boolean is 422 `validation_failed`, even when its items would fill
//! the fields in order (serde's derived `Deserialize` accepts a sequence for a struct, so
//! `["name"]` used to create a project named "name"). An empty body on a route whose fields
//! are all optional still counts as `{}`; a repeated key is 422; unknown keys are ignored.

use std::sync::Arc;
use std::time::Duration;

use confab_api_types as api;
use confab_auth::{DevAuth, DevConfig};
use confab_tests::http::{ALICE, Answer, AppOptions, TestApp, spawn_app};
use reqwest::Method;
use serde_json::json;

/// Sends `body` as it is, declared as JSON, signed in as `user` when given.
async fn send_json_text(
    app: &TestApp,
    method: Method,
    path: &str,
    user: Option<&str>,
    body: &str,
) -> Answer {
    app.send_request(
        app.request(method, path, user)
            .header("Content-Type", "application/json")
            .body(body.to_owned()),
    )
    .await
}

/// Asserts the 422 for a body that is not an object, naming what was expected.
#[track_caller]
fn not_an_object(answer: &Answer, what: &str) {
    assert_eq!(
        answer.status.as_u16(),
        422,
        "{what}: {}",
        String::from_utf8_lossy(&answer.body)
    );
    let problem = answer.problem(422, "validation_failed");
    assert!(
        problem.detail.contains("object"),
        "{what}: the detail says a JSON object is expected: {}",
        problem.detail
    );
}

/// JSON texts that are valid JSON but not objects, for a route whose first fields are
/// `first` (a JSON array of values that a sequence-accepting parser would take in order).
fn non_objects(first: &str) -> Vec<String> {
    vec![
        first.to_owned(),
        format!(" \n\t{first} "),
        "[]".to_owned(),
        "null".to_owned(),
        "0".to_owned(),
        "1.5".to_owned(),
        "\"text\"".to_owned(),
        "true".to_owned(),
        "false".to_owned(),
    ]
}

#[tokio::test]
async fn every_json_route_refuses_a_body_that_is_not_an_object() {
    let app = spawn_app().await;
    let project = app.new_project(ALICE, "Bot").await;
    let conversation = app.new_conversation(ALICE, project.id).await;
    // Each route with an array that fills its fields in order.
    let routes = [
        (
            Method::POST,
            "/api/projects".to_owned(),
            r#"["name", null]"#,
        ),
        (
            Method::PATCH,
            format!("/api/projects/{}", project.id),
            r#"["renamed", "described"]"#,
        ),
        (
            Method::POST,
            format!("/api/projects/{}/prompts", project.id),
            r#"["You are terse.", true]"#,
        ),
        (
            Method::POST,
            format!("/api/projects/{}/conversations", project.id),
            r#"["a title"]"#,
        ),
        (
            Method::PATCH,
            format!("/api/conversations/{}", conversation.id),
            r#"["a title"]"#,
        ),
        (
            Method::POST,
            format!("/api/conversations/{}/messages", conversation.id),
            r#"["hello", null]"#,
        ),
    ];
    for (method, path, array) in &routes {
        for body in non_objects(array) {
            let answer = send_json_text(&app, method.clone(), path, Some(ALICE), &body).await;
            not_an_object(&answer, &format!("{method} {path} with {body}"));
        }
    }

    // Nothing was created or changed.
    let projects: api::Page<api::Project> = app.list_projects(ALICE, "").await.ok(200);
    assert_eq!(projects.items.len(), 1, "no project was created");
    assert_eq!(projects.items[0].name, "Bot", "the project was not renamed");
    assert_eq!(projects.items[0].description, None);
    let prompts: api::Page<api::Prompt> = app.list_prompts(ALICE, project.id, "").await.ok(200);
    assert!(prompts.items.is_empty(), "no prompt was stored");
    let conversations: api::Page<api::Conversation> =
        app.list_conversations(ALICE, project.id, "").await.ok(200);
    assert_eq!(conversations.items.len(), 1, "no conversation was created");
    assert_eq!(conversations.items[0].title, None, "nor renamed");
    assert!(
        app.stored_messages(ALICE, conversation.id).await.is_empty(),
        "no message was stored"
    );
}

#[tokio::test]
async fn dev_login_refuses_a_body_that_is_not_an_object() {
    let dev = Arc::new(
        DevAuth::new(&DevConfig {
            secret: None,
            ttl: Duration::from_secs(3600),
        })
        .expect("a dev signer"),
    );
    let app = AppOptions::new()
        .auth(dev.clone())
        .dev_tokens(dev)
        .spawn()
        .await;
    for body in non_objects(r#"["alice"]"#) {
        let answer = send_json_text(&app, Method::POST, "/api/auth/dev-login", None, &body).await;
        not_an_object(&answer, &format!("dev-login with {body}"));
    }
    app.dev_login(&json!({ "username": "alice" }))
        .await
        .assert_status(200);
}

#[tokio::test]
async fn an_empty_body_is_still_an_empty_object_where_every_field_is_optional() {
    let app = spawn_app().await;
    let project = app.new_project(ALICE, "Bot").await;
    let path = format!("/api/projects/{}/conversations", project.id);
    for body in ["", "  \n"] {
        let conversation: api::Conversation =
            send_json_text(&app, Method::POST, &path, Some(ALICE), body)
                .await
                .ok(201);
        assert_eq!(conversation.title, None);
    }
    let patched: api::Project = send_json_text(
        &app,
        Method::PATCH,
        &format!("/api/projects/{}", project.id),
        Some(ALICE),
        "",
    )
    .await
    .ok(200);
    assert_eq!(patched.name, "Bot", "an empty patch changes nothing");
}

#[tokio::test]
async fn a_repeated_key_is_422_and_an_unknown_key_is_ignored() {
    let app = spawn_app().await;
    send_json_text(
        &app,
        Method::POST,
        "/api/projects",
        Some(ALICE),
        r#"{"name": "a", "name": "b"}"#,
    )
    .await
    .problem(422, "validation_failed");
    let page: api::Page<api::Project> = app.list_projects(ALICE, "").await.ok(200);
    assert!(page.items.is_empty(), "nothing was stored");

    // Unknown properties are ignored (the OpenAPI document does not forbid them).
    let project: api::Project = send_json_text(
        &app,
        Method::POST,
        "/api/projects",
        Some(ALICE),
        r#"{"name": "a", "colour": "blue"}"#,
    )
    .await
    .ok(201);
    assert_eq!(project.name, "a");
}

#[tokio::test]
async fn a_non_object_is_422_only_once_it_is_valid_json() {
    let app = spawn_app().await;
    // A broken array is still a body that is not JSON.
    for body in ["[", "[\"name\",", "nul", "\"open"] {
        send_json_text(&app, Method::POST, "/api/projects", Some(ALICE), body)
            .await
            .problem(400, "bad_request");
    }
}
