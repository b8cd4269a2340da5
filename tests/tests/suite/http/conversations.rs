//! Conversations and reading their messages.

use confab_api_types as api;
use confab_tests::http::{ALICE, spawn_app};
use reqwest::Method;
use serde_json::{Value, json};

#[tokio::test]
async fn creating_a_conversation_answers_201_with_the_conversation() {
    let app = spawn_app().await;
    let project = app.new_project(ALICE, "Bot").await;
    let answer = app
        .create_conversation(ALICE, project.id, Some(&json!({ "title": "  Planning  " })))
        .await;
    let body: Value = answer.ok(201);
    assert_eq!(
        body.as_object().unwrap().len(),
        8,
        "Conversation is {{id, project_id, title, created_at, updated_at, active_reply_id, leaf_id, model}}: {body}"
    );
    assert_eq!(
        body["active_reply_id"],
        Value::Null,
        "nothing is being generated"
    );
    let conversation: api::Conversation = answer.json();
    assert_eq!(conversation.project_id, project.id);
    assert_eq!(
        conversation.title.as_deref(),
        Some("Planning"),
        "titles are trimmed"
    );
    let fetched: api::Conversation = app.get_conversation(ALICE, conversation.id).await.ok(200);
    assert_eq!(fetched, conversation);
}

#[tokio::test]
async fn an_empty_body_creates_an_untitled_conversation() {
    let app = spawn_app().await;
    let project = app.new_project(ALICE, "Bot").await;
    // No body and no Content-Type at all.
    let body: Value = app
        .create_conversation(ALICE, project.id, None)
        .await
        .ok(201);
    assert_eq!(body["title"], Value::Null);
    // An empty body declared as JSON.
    let answer = app
        .send_request(
            app.request(
                Method::POST,
                &format!("/api/projects/{}/conversations", project.id),
                Some(ALICE),
            )
            .header("Content-Type", "application/json"),
        )
        .await;
    let body: Value = answer.ok(201);
    assert_eq!(body["title"], Value::Null);
    // `{}` is the same.
    let body: Value = app
        .create_conversation(ALICE, project.id, Some(&json!({})))
        .await
        .ok(201);
    assert_eq!(body["title"], Value::Null);
}

#[tokio::test]
async fn renaming_a_conversation_sets_or_clears_its_title() {
    let app = spawn_app().await;
    let project = app.new_project(ALICE, "Bot").await;
    let conversation = app.new_conversation(ALICE, project.id).await;
    let renamed: api::Conversation = app
        .patch_conversation(ALICE, conversation.id, &json!({ "title": "Trip" }))
        .await
        .ok(200);
    assert_eq!(renamed.title.as_deref(), Some("Trip"));
    assert!(renamed.updated_at >= conversation.updated_at);
    let cleared: Value = app
        .patch_conversation(ALICE, conversation.id, &json!({ "title": null }))
        .await
        .ok(200);
    assert_eq!(cleared["title"], Value::Null);
    let stored: api::Conversation = app.get_conversation(ALICE, conversation.id).await.ok(200);
    assert_eq!(stored.title, None);
}

#[tokio::test]
async fn a_title_over_200_characters_is_422() {
    let app = spawn_app().await;
    let project = app.new_project(ALICE, "Bot").await;
    let conversation = app.new_conversation(ALICE, project.id).await;
    let long = "é".repeat(201);
    app.patch_conversation(ALICE, conversation.id, &json!({ "title": long }))
        .await
        .problem(422, "validation_failed");
    app.create_conversation(ALICE, project.id, Some(&json!({ "title": long })))
        .await
        .problem(422, "validation_failed");
    let fits = "é".repeat(200);
    let ok: api::Conversation = app
        .patch_conversation(ALICE, conversation.id, &json!({ "title": fits }))
        .await
        .ok(200);
    assert_eq!(ok.title.as_deref(), Some(fits.as_str()));
}

#[tokio::test]
async fn deleting_a_conversation_answers_204_and_removes_its_messages() {
    let app = spawn_app().await;
    let project = app.new_project(ALICE, "Bot").await;
    let conversation = app.new_conversation(ALICE, project.id).await;
    app.send(ALICE, conversation.id, "hello").await.done();
    let answer = app.delete_conversation(ALICE, conversation.id).await;
    answer.assert_status(204);
    assert!(answer.body.is_empty());
    app.get_conversation(ALICE, conversation.id)
        .await
        .problem(404, "not_found");
    app.list_messages(ALICE, conversation.id, "")
        .await
        .problem(404, "not_found");
    assert!(app.stored_messages(ALICE, conversation.id).await.is_empty());
    app.delete_conversation(ALICE, conversation.id)
        .await
        .problem(404, "not_found");
    let page: api::Page<api::Conversation> =
        app.list_conversations(ALICE, project.id, "").await.ok(200);
    assert!(page.items.is_empty());
}

#[tokio::test]
async fn conversations_are_listed_most_recently_updated_first_and_a_message_bumps_one() {
    let app = spawn_app().await;
    let project = app.new_project(ALICE, "Bot").await;
    let first = app.new_conversation(ALICE, project.id).await;
    let second = app.new_conversation(ALICE, project.id).await;
    let third = app.new_conversation(ALICE, project.id).await;
    let ids = |page: &api::Page<api::Conversation>| -> Vec<uuid::Uuid> {
        page.items.iter().map(|c| c.id).collect()
    };

    let page: api::Page<api::Conversation> =
        app.list_conversations(ALICE, project.id, "").await.ok(200);
    assert_eq!(ids(&page), [third.id, second.id, first.id]);

    app.send(ALICE, first.id, "bump").await.done();
    let page: api::Page<api::Conversation> =
        app.list_conversations(ALICE, project.id, "").await.ok(200);
    assert_eq!(ids(&page), [first.id, third.id, second.id]);
    let bumped: api::Conversation = app.get_conversation(ALICE, first.id).await.ok(200);
    assert!(
        bumped.updated_at > first.updated_at,
        "a new message bumps updated_at"
    );
    assert_eq!(page.items[0], bumped);
}

#[tokio::test]
async fn messages_are_listed_oldest_first_with_nulls_on_user_messages() {
    let app = spawn_app().await;
    let project = app.new_project(ALICE, "Bot").await;
    let conversation = app.new_conversation(ALICE, project.id).await;
    let first = app.send(ALICE, conversation.id, "one").await.done();
    let second = app.send(ALICE, conversation.id, "two").await.done();

    let answer = app.list_messages(ALICE, conversation.id, "").await;
    let body: Value = answer.ok(200);
    assert_eq!(body["next_cursor"], Value::Null);
    let items = body["items"].as_array().unwrap();
    assert_eq!(items.len(), 4);
    let roles: Vec<&str> = items.iter().map(|m| m["role"].as_str().unwrap()).collect();
    assert_eq!(roles, ["user", "assistant", "user", "assistant"]);
    assert_eq!(items[0]["content"], "one");
    assert_eq!(items[2]["content"], "two");
    for user_message in [&items[0], &items[2]] {
        assert_eq!(user_message["status"], "complete");
        assert_eq!(user_message["model"], Value::Null);
        assert_eq!(user_message["usage"], Value::Null);
        assert_eq!(user_message["error"], Value::Null);
        assert_eq!(
            user_message.as_object().unwrap().len(),
            13,
            "Message has its nine fields, its parent_id, files, sources and (in a branch read) sibling_ids: {user_message}"
        );
        assert_eq!(user_message["sources"], serde_json::json!([]), "no sources");
        assert_eq!(
            user_message["files"],
            serde_json::json!([]),
            "no attachments"
        );
    }
    let mut page: api::Page<api::Message> = answer.json();
    for item in &mut page.items {
        assert_eq!(
            item.sibling_ids.take(),
            Some(vec![item.id]),
            "a line has one version"
        );
    }
    assert_eq!(page.items[1], first);
    assert_eq!(page.items[3], second);
    assert_eq!(first.model.as_deref(), Some("echo-1"));
    assert!(first.usage.is_some(), "the echo model reports an estimate");
}
