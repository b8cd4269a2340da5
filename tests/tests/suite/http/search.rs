//! `GET /api/search`: the signed-in user's messages and titles, escaped snippets, paging,
//! validation and isolation.

use std::collections::HashSet;

use confab_api_types as api;
use confab_tests::http::{ALICE, Answer, BOB, TestApp, spawn_app};
use reqwest::Method;
use serde_json::Value;

async fn search(app: &TestApp, user: &str, query: &str) -> Answer {
    app.send_request(app.request(Method::GET, &format!("/api/search?{query}"), Some(user)))
        .await
}

#[tokio::test]
async fn search_finds_my_messages_with_escaped_marked_snippets_and_never_another_users() {
    let app = spawn_app().await;
    let project = app.new_project(ALICE, "Bot").await;
    let chat = app.new_conversation(ALICE, project.id).await;
    app.send(ALICE, chat.id, "<b>Quokka</b> island & café")
        .await;
    let theirs = app.new_project(BOB, "Bot").await;
    let bobs = app.new_conversation(BOB, theirs.id).await;
    app.send(BOB, bobs.id, "my quokka too").await;

    let page: api::Page<Value> = search(&app, ALICE, "q=quokka").await.ok(200);
    assert!(!page.items.is_empty(), "{page:?}");
    assert_eq!(page.next_cursor, None);
    let user_hit = page
        .items
        .iter()
        .find(|h| h["role"] == "user")
        .unwrap_or_else(|| panic!("the user message is found: {page:?}"));
    let keys: HashSet<&str> = user_hit
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
        HashSet::from([
            "conversation_id",
            "project_id",
            "conversation_title",
            "message_id",
            "role",
            "created_at",
            "snippet"
        ])
    );
    assert_eq!(
        user_hit["snippet"],
        "&lt;b&gt;<mark>Quokka</mark>&lt;/b&gt; island &amp; café"
    );
    assert_eq!(user_hit["project_id"], project.id.to_string());
    for hit in &page.items {
        assert_eq!(hit["conversation_id"], chat.id.to_string(), "{page:?}");
    }
    // Diacritics and a prefix being typed.
    let page: api::Page<api::SearchResult> = search(&app, ALICE, "q=CAFE").await.ok(200);
    assert!(!page.items.is_empty());
    let page: api::Page<api::SearchResult> = search(&app, ALICE, "q=isla").await.ok(200);
    assert!(!page.items.is_empty());
    // A project filter.
    let page: api::Page<api::SearchResult> =
        search(&app, ALICE, &format!("q=quokka&project_id={}", project.id))
            .await
            .ok(200);
    assert!(!page.items.is_empty());
    search(&app, ALICE, &format!("q=quokka&project_id={}", theirs.id))
        .await
        .problem(404, "not_found");
}

#[tokio::test]
async fn search_pages_follow_each_other() {
    let app = spawn_app().await;
    let project = app.new_project(ALICE, "Bot").await;
    let chat = app.new_conversation(ALICE, project.id).await;
    for i in 0..4 {
        app.send(ALICE, chat.id, &format!("wombat number {i}"))
            .await;
    }
    let all: api::Page<Value> = search(&app, ALICE, "q=wombat&limit=200").await.ok(200);
    let pages = app.walk(ALICE, "/api/search?q=wombat", 3).await;
    assert!(pages.len() > 1);
    let walked: Vec<Value> = pages.into_iter().flatten().collect();
    assert_eq!(walked, all.items);
}

#[tokio::test]
async fn a_blank_or_long_query_is_422_a_wordless_one_finds_nothing_and_a_bad_parameter_400() {
    let app = spawn_app().await;
    let page: api::Page<Value> = search(&app, ALICE, "q=%21%2A%22").await.ok(200);
    assert!(page.items.is_empty() && page.next_cursor.is_none());
    search(&app, ALICE, "q=x&cursor=t.1.nope")
        .await
        .problem(400, "bad_request");
    for query in ["", "q=", "q=%20%20", &format!("q={}", "a".repeat(501))] {
        search(&app, ALICE, query)
            .await
            .problem(422, "validation_failed");
    }
    search(&app, ALICE, "q=x&limit=0")
        .await
        .problem(422, "validation_failed");
    search(&app, ALICE, "q=x&project_id=nope")
        .await
        .problem(400, "bad_request");
    let answer = app
        .send_request(app.request(Method::GET, "/api/search?q=x", None))
        .await;
    answer.problem(401, "unauthenticated");
}
