//! `/api/projects/{id}/prompts`: versions, activation, the active prompt.

use confab_api_types as api;
use confab_tests::http::{ALICE, spawn_app};
use serde_json::{Value, json};

#[tokio::test]
async fn creating_a_prompt_answers_201_and_activates_it_by_default() {
    let app = spawn_app().await;
    let project = app.new_project(ALICE, "Bot").await;
    let answer = app
        .create_prompt(ALICE, project.id, &json!({ "content": "Be brief." }))
        .await;
    let body: Value = answer.ok(201);
    assert_eq!(
        body.as_object().unwrap().len(),
        6,
        "Prompt is {{id, project_id, version, content, is_active, created_at}}: {body}"
    );
    let prompt: api::Prompt = answer.json();
    assert_eq!(prompt.version, 1);
    assert_eq!(prompt.project_id, project.id);
    assert_eq!(prompt.content, "Be brief.");
    assert!(prompt.is_active, "activate defaults to true");

    let active: api::Prompt = app.active_prompt(ALICE, project.id).await.ok(200);
    assert_eq!(active, prompt);
}

#[tokio::test]
async fn a_prompt_created_with_activate_false_leaves_the_active_one() {
    let app = spawn_app().await;
    let project = app.new_project(ALICE, "Bot").await;
    let first = app.new_prompt(ALICE, project.id, "v1", true).await;
    let second: api::Prompt = app
        .create_prompt(
            ALICE,
            project.id,
            &json!({ "content": "v2", "activate": false }),
        )
        .await
        .ok(201);
    assert_eq!(second.version, 2, "version = previous + 1");
    assert!(!second.is_active);

    let active: api::Prompt = app.active_prompt(ALICE, project.id).await.ok(200);
    assert_eq!(active.id, first.id);
    assert!(active.is_active);
}

#[tokio::test]
async fn prompts_are_listed_highest_version_first() {
    let app = spawn_app().await;
    let project = app.new_project(ALICE, "Bot").await;
    for content in ["v1", "v2", "v3"] {
        app.new_prompt(ALICE, project.id, content, false).await;
    }
    let page: api::Page<api::Prompt> = app.list_prompts(ALICE, project.id, "").await.ok(200);
    let versions: Vec<i32> = page.items.iter().map(|p| p.version).collect();
    assert_eq!(versions, [3, 2, 1]);
    let contents: Vec<&str> = page.items.iter().map(|p| p.content.as_str()).collect();
    assert_eq!(contents, ["v3", "v2", "v1"]);
    assert_eq!(page.next_cursor, None);
}

#[tokio::test]
async fn activating_a_prompt_leaves_exactly_one_active() {
    let app = spawn_app().await;
    let project = app.new_project(ALICE, "Bot").await;
    let first = app.new_prompt(ALICE, project.id, "v1", true).await;
    let second = app.new_prompt(ALICE, project.id, "v2", true).await;
    let third = app.new_prompt(ALICE, project.id, "v3", false).await;

    for target in [&first, &third, &second, &second] {
        let activated: api::Prompt = app
            .activate_prompt(ALICE, project.id, target.id)
            .await
            .ok(200);
        assert_eq!(activated.id, target.id);
        assert!(activated.is_active);
        let page: api::Page<api::Prompt> = app.list_prompts(ALICE, project.id, "").await.ok(200);
        let active: Vec<uuid::Uuid> = page
            .items
            .iter()
            .filter(|p| p.is_active)
            .map(|p| p.id)
            .collect();
        assert_eq!(active, [target.id], "exactly one prompt is active");
        let current: api::Prompt = app.active_prompt(ALICE, project.id).await.ok(200);
        assert_eq!(current.id, target.id);
    }
}

#[tokio::test]
async fn the_active_prompt_is_404_when_none_is_active() {
    let app = spawn_app().await;
    let project = app.new_project(ALICE, "Bot").await;
    app.active_prompt(ALICE, project.id)
        .await
        .problem(404, "not_found");
    app.new_prompt(ALICE, project.id, "stored inactive", false)
        .await;
    app.active_prompt(ALICE, project.id)
        .await
        .problem(404, "not_found");
}

#[tokio::test]
async fn activating_a_prompt_of_another_project_is_404() {
    let app = spawn_app().await;
    let one = app.new_project(ALICE, "One").await;
    let two = app.new_project(ALICE, "Two").await;
    let prompt = app.new_prompt(ALICE, one.id, "v1", false).await;
    app.activate_prompt(ALICE, two.id, prompt.id)
        .await
        .problem(404, "not_found");
    app.active_prompt(ALICE, one.id)
        .await
        .problem(404, "not_found");
}

#[tokio::test]
async fn a_blank_or_missing_prompt_is_422() {
    let app = spawn_app().await;
    let project = app.new_project(ALICE, "Bot").await;
    app.create_prompt(ALICE, project.id, &json!({ "content": "" }))
        .await
        .problem(422, "validation_failed");
    app.create_prompt(ALICE, project.id, &json!({}))
        .await
        .problem(422, "validation_failed");
    app.create_prompt(
        ALICE,
        project.id,
        &json!({ "content": "x", "activate": "yes" }),
    )
    .await
    .problem(422, "validation_failed");
    let page: api::Page<api::Prompt> = app.list_prompts(ALICE, project.id, "").await.ok(200);
    assert!(page.items.is_empty(), "nothing was stored");
}
