//! Paged lists: `?limit=` walks every list exactly once, the last page says so, and rows
//! inserted between two page fetches neither repeat nor skip one.

use std::collections::HashSet;

use confab_tests::http::{ALICE, TestApp, spawn_app};
use serde_json::Value;

fn ids(items: &[Value]) -> Vec<String> {
    items
        .iter()
        .map(|item| item["id"].as_str().expect("an id").to_owned())
        .collect()
}

/// Walks `path` with `limit`, asserting page sizes, and returns the ids in order.
async fn walk_ids(app: &TestApp, path: &str, limit: u32) -> Vec<String> {
    let pages = app.walk(ALICE, path, limit).await;
    let (last, full) = pages.split_last().expect("at least one page");
    for page in full {
        assert_eq!(
            page.len(),
            limit as usize,
            "every page but the last is full"
        );
    }
    assert!(
        !last.is_empty() || pages.len() == 1,
        "the page that ends a list is not an empty extra page"
    );
    pages.iter().flat_map(|page| ids(page)).collect()
}

/// All ids of `path` in one page.
async fn all_ids(app: &TestApp, path: &str) -> Vec<String> {
    let page = app.page(ALICE, path, 200, None).await;
    assert_eq!(page.next_cursor, None);
    ids(&page.items)
}

#[track_caller]
fn assert_no_repeats(ids: &[String]) {
    let unique: HashSet<&String> = ids.iter().collect();
    assert_eq!(unique.len(), ids.len(), "no id is repeated: {ids:?}");
}

#[tokio::test]
async fn limit_2_walks_every_list_exactly_once_in_order() {
    let app = spawn_app().await;
    let project = app.new_project(ALICE, "Paged").await;
    for n in 0..4 {
        app.new_project(ALICE, &format!("p{n}")).await;
        app.new_prompt(ALICE, project.id, &format!("v{n}"), n % 2 == 0)
            .await;
        app.new_file(ALICE, project.id, &format!("f{n}.txt")).await;
    }
    let conversation = app.new_conversation(ALICE, project.id).await;
    for n in 0..3 {
        app.new_conversation(ALICE, project.id).await;
        app.send(ALICE, conversation.id, &format!("m{n}"))
            .await
            .done();
    }
    let lists = [
        "/api/projects".to_owned(),
        format!("/api/projects/{}/prompts", project.id),
        format!("/api/projects/{}/conversations", project.id),
        format!("/api/conversations/{}/messages", conversation.id),
        format!("/api/projects/{}/files", project.id),
    ];
    for list in &lists {
        let everything = all_ids(&app, list).await;
        assert!(everything.len() >= 4, "{list} has enough rows to page");
        for limit in [1, 2, 3] {
            let walked = walk_ids(&app, list, limit).await;
            assert_eq!(walked, everything, "{list} with limit={limit}");
        }
    }
}

#[tokio::test]
async fn a_list_that_fills_its_last_page_exactly_ends_with_a_null_cursor() {
    let app = spawn_app().await;
    for n in 0..4 {
        app.new_project(ALICE, &format!("p{n}")).await;
    }
    let pages = app.walk(ALICE, "/api/projects", 2).await;
    let sizes: Vec<usize> = pages.iter().map(Vec::len).collect();
    assert_eq!(sizes, [2, 2], "no empty third page");
    let first = app.page(ALICE, "/api/projects", 4, None).await;
    assert_eq!(first.items.len(), 4);
    assert_eq!(first.next_cursor, None);
}

#[tokio::test]
async fn projects_inserted_between_page_fetches_are_neither_repeated_nor_skipped() {
    let app = spawn_app().await;
    for n in 0..5 {
        app.new_project(ALICE, &format!("p{n}")).await;
    }
    let before = all_ids(&app, "/api/projects").await;
    let first = app.page(ALICE, "/api/projects", 2, None).await;
    let mut seen = ids(&first.items);
    let mut cursor = first.next_cursor;
    while let Some(next) = cursor {
        // Someone creates a project between every two fetches.
        app.new_project(ALICE, "inserted").await;
        let page = app.page(ALICE, "/api/projects", 2, Some(&next)).await;
        seen.extend(ids(&page.items));
        cursor = page.next_cursor;
    }
    assert_no_repeats(&seen);
    assert_eq!(
        seen, before,
        "the walk saw exactly the rows that were there"
    );
}

#[tokio::test]
async fn conversations_and_prompts_inserted_between_page_fetches_are_neither_repeated_nor_skipped()
{
    let app = spawn_app().await;
    let project = app.new_project(ALICE, "Paged").await;
    for n in 0..5 {
        app.new_conversation(ALICE, project.id).await;
        app.new_prompt(ALICE, project.id, &format!("v{n}"), true)
            .await;
    }
    for list in ["conversations", "prompts"] {
        let path = format!("/api/projects/{}/{list}", project.id);
        let before = all_ids(&app, &path).await;
        let first = app.page(ALICE, &path, 2, None).await;
        let mut seen = ids(&first.items);
        let mut cursor = first.next_cursor;
        while let Some(next) = cursor {
            app.new_conversation(ALICE, project.id).await;
            app.new_prompt(ALICE, project.id, "inserted", false).await;
            let page = app.page(ALICE, &path, 2, Some(&next)).await;
            seen.extend(ids(&page.items));
            cursor = page.next_cursor;
        }
        assert_no_repeats(&seen);
        assert_eq!(seen, before, "{list}");
    }
}

#[tokio::test]
async fn messages_added_between_page_fetches_are_seen_once_at_the_end() {
    let app = spawn_app().await;
    let project = app.new_project(ALICE, "Paged").await;
    let conversation = app.new_conversation(ALICE, project.id).await;
    for n in 0..3 {
        app.send(ALICE, conversation.id, &format!("m{n}"))
            .await
            .done();
    }
    let path = format!("/api/conversations/{}/messages", conversation.id);
    let first = app.page(ALICE, &path, 2, None).await;
    let mut seen = ids(&first.items);
    let mut cursor = first.next_cursor;
    let mut added = 0;
    while let Some(next) = cursor {
        if added < 2 {
            app.send(ALICE, conversation.id, "later").await.done();
            added += 1;
        }
        let page = app.page(ALICE, &path, 2, Some(&next)).await;
        seen.extend(ids(&page.items));
        cursor = page.next_cursor;
    }
    assert_no_repeats(&seen);
    let after = all_ids(&app, &path).await;
    assert_eq!(after.len(), 10, "3 + 2 exchanges");
    assert_eq!(
        seen, after,
        "oldest first, every message once, the new ones at the end"
    );
}
