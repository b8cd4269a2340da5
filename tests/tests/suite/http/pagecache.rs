//! The cache of pages of messages (issue 20): a page is served again only while the
//! conversation's revision is unchanged, on every replica sharing the store; its weak `ETag`
//! answers `If-None-Match` with `304`; another owner is a 404, never a cached page; each
//! `cursor`, `leaf` and `limit` is its own page.

use std::time::Duration;

use confab_api_types as api;
use confab_memory::ScriptedLlm;
use confab_tests::http::{ALICE, AppOptions, BOB, TestApp, eventually, spawn_app};
use serde_json::json;
use uuid::Uuid;

/// The page at `query`, its `ETag`, and that it is fresh JSON.
async fn page(app: &TestApp, conversation: Uuid, query: &str) -> (Vec<api::Message>, String) {
    let answer = app.list_messages(ALICE, conversation, query).await;
    let read: api::Page<api::Message> = answer.ok(200);
    let etag = answer.header("etag").expect("an ETag").to_owned();
    assert!(etag.starts_with("W/\""), "a weak validator: {etag}");
    assert_eq!(answer.header("cache-control"), Some("private, no-cache"));
    (read.items, etag)
}

/// The same page, read twice on `app` (the second from its cache): both the same.
async fn page_twice(app: &TestApp, conversation: Uuid, query: &str) -> Vec<api::Message> {
    let first = page(app, conversation, query).await;
    let again = page(app, conversation, query).await;
    assert_eq!(first, again, "a page read again is the same page");
    first.0
}

fn ids(messages: &[api::Message]) -> Vec<Uuid> {
    messages.iter().map(|m| m.id).collect()
}

#[tokio::test]
async fn a_replica_never_serves_a_page_older_than_another_replicas_write() {
    let a = spawn_app().await;
    let b = AppOptions::new()
        .scripted(ScriptedLlm::replying(&["Slow", " reply"]).with_delay(Duration::from_millis(300)))
        .replica_of(&a)
        .spawn()
        .await;
    let project = a.new_project(ALICE, "Cache").await;
    let c = a.new_conversation(ALICE, project.id).await;
    let file = a.new_file(ALICE, project.id, "notes.txt").await;
    a.send_body(
        ALICE,
        c.id,
        &json!({"content": "One.", "file_ids": [file.id]}),
    )
    .await;
    let first = page_twice(&a, c.id, "").await;
    assert_eq!(first.len(), 2);
    let (u1, r1) = (first[0].id, first[1].id);

    // A new message through B (a new first message: another branch): A shows it.
    let two = b
        .send_body(ALICE, c.id, &json!({"content": "Two.", "parent_id": null}))
        .await;
    let grown = page_twice(&a, c.id, "").await;
    assert_eq!(grown.len(), 2, "A shows B's turn");
    assert_eq!(grown[1].id, two.done().id);

    // The leaf chosen through B: A shows the chosen branch.
    b.choose_leaf(ALICE, c.id, &json!({"message_id": r1}))
        .await
        .assert_status(200);
    assert_eq!(ids(&page_twice(&a, c.id, "").await), vec![u1, r1]);

    // The attached file deleted through B: A shows it as deleted.
    assert!(!first[0].files.is_empty() && !first[0].files[0].deleted);
    b.delete_file(ALICE, file.id).await.assert_status(204);
    let shown = page_twice(&a, c.id, "").await;
    assert!(shown[0].files[0].deleted, "A shows the file as deleted");

    // A reply generated through B: streaming on A while it is, then finished.
    let mut stream = b.open_stream(ALICE, c.id, "Three.").await;
    stream.until("user_message").await;
    // Read once: the reply's text may be saved (a new revision) between two reads.
    let (streaming, _) = page(&a, c.id, "").await;
    let reply = streaming.last().expect("the new reply");
    assert_eq!(reply.status, api::MessageStatus::Streaming, "{reply:?}");
    stream.rest().await;
    let done = eventually("A shows B's reply finished", || async {
        let shown = page(&a, c.id, "").await.0;
        let last = shown.last()?.clone();
        (last.status == api::MessageStatus::Complete).then_some(last)
    })
    .await;
    assert_eq!(done.content, "Slow reply");
    assert_eq!(page_twice(&a, c.id, "").await.len(), 4);
}

#[tokio::test]
async fn if_none_match_is_304_until_the_page_changes_and_another_owner_is_404() {
    for cache_mb in ["64", "0"] {
        let a = AppOptions::new()
            .setting("CONFAB_PAGE_CACHE_MB", cache_mb)
            .spawn()
            .await;
        let b = AppOptions::new().replica_of(&a).spawn().await;
        let project = a.new_project(ALICE, "Cache").await;
        let c = a.new_conversation(ALICE, project.id).await;
        a.send(ALICE, c.id, "One.").await;
        let (_, etag) = page(&a, c.id, "").await;

        let conditional = |user: &'static str, tag: String| {
            let a = &a;
            async move {
                a.send_request(
                    a.request(
                        reqwest::Method::GET,
                        &format!("/api/conversations/{}/messages", c.id),
                        Some(user),
                    )
                    .header("If-None-Match", tag),
                )
                .await
            }
        };
        let same = conditional(ALICE, etag.clone()).await;
        same.assert_status(304);
        assert!(same.body.is_empty(), "a 304 has no body");
        assert_eq!(same.header("etag"), Some(etag.as_str()), "cache {cache_mb}");
        conditional(ALICE, format!("\"other\", {etag}"))
            .await
            .assert_status(304);

        // Another owner: 404 with or without the validator, never the page.
        a.list_messages(BOB, c.id, "")
            .await
            .problem(404, "not_found");
        conditional(BOB, etag.clone())
            .await
            .problem(404, "not_found");

        // A write on the other replica: the old validator gets the new page.
        b.send(ALICE, c.id, "Two.").await;
        let changed = conditional(ALICE, etag.clone()).await;
        let read: api::Page<api::Message> = changed.ok(200);
        assert_eq!(read.items.len(), 4, "cache {cache_mb}");
        let new_etag = changed.header("etag").expect("an ETag").to_owned();
        assert_ne!(new_etag, etag);
        conditional(ALICE, new_etag).await.assert_status(304);

        // A deleted conversation: 404, not the cached page.
        a.delete_conversation(ALICE, c.id).await.assert_status(204);
        a.list_messages(ALICE, c.id, "")
            .await
            .problem(404, "not_found");
    }
}

#[tokio::test]
async fn each_cursor_leaf_and_limit_is_its_own_cached_page() {
    let app = spawn_app().await;
    let project = app.new_project(ALICE, "Cache").await;
    let c = app.new_conversation(ALICE, project.id).await;
    app.send(ALICE, c.id, "One.").await;
    app.send(ALICE, c.id, "Two.").await;
    let all = page_twice(&app, c.id, "").await;
    assert_eq!(all.len(), 4);

    let answer = app.list_messages(ALICE, c.id, "?limit=1").await;
    let one: api::Page<api::Message> = answer.ok(200);
    assert_eq!(ids(&one.items), vec![all[0].id]);
    let cursor = one.next_cursor.expect("a next page");
    let (_, etag_one) = page(&app, c.id, "?limit=1").await;
    let next_query = format!("?limit=1&cursor={cursor}");
    let next = page_twice(&app, c.id, &next_query).await;
    assert_eq!(
        ids(&next),
        vec![all[1].id],
        "the cursor's page, not the first"
    );
    let (_, etag_next) = page(&app, c.id, &next_query).await;
    assert_ne!(etag_one, etag_next);

    let leaf_query = format!("?leaf={}", all[1].id);
    let to_leaf = page_twice(&app, c.id, &leaf_query).await;
    assert_eq!(
        ids(&to_leaf),
        ids(&all[..2]),
        "the branch to the asked leaf"
    );
    let (_, etag_all) = page(&app, c.id, "").await;
    let (_, etag_leaf) = page(&app, c.id, &leaf_query).await;
    assert_ne!(etag_all, etag_leaf);
    // Each again, after the others were cached: still its own.
    assert_eq!(page_twice(&app, c.id, "").await, all);
    assert_eq!(
        ids(&page_twice(&app, c.id, "?limit=1").await),
        vec![all[0].id]
    );
}
