//! `/api/projects`: create, read, list, update, delete.

use confab_api_types as api;
use confab_tests::http::{ALICE, spawn_app};
use serde_json::{Value, json};

#[tokio::test]
async fn creating_a_project_answers_201_with_the_project() {
    let app = spawn_app().await;
    let answer = app
        .create_project(
            ALICE,
            &json!({ "name": "  Support bot  ", "description": "Answers questions" }),
        )
        .await;
    let body: Value = answer.ok(201);
    let keys: Vec<&String> = body.as_object().unwrap().keys().collect();
    assert_eq!(
        keys.len(),
        7,
        "Project is {{id, name, description, created_at, updated_at, knowledge, language}}: {body}"
    );
    assert_eq!(body["knowledge"], true, "knowledge is on by default");
    assert_eq!(
        body["language"], "english",
        "knowledge is searched in English by default"
    );
    let project: api::Project = answer.json();
    assert_eq!(project.name, "Support bot", "names are trimmed");
    assert_eq!(project.description.as_deref(), Some("Answers questions"));
    assert_eq!(project.created_at, project.updated_at);
    assert_eq!(project.id.get_version_num(), 7, "ids are UUID v7");
    assert!(
        body["created_at"].as_str().unwrap().ends_with('Z'),
        "timestamps are RFC 3339 in UTC: {body}"
    );

    let fetched: api::Project = app.get_project(ALICE, project.id).await.ok(200);
    assert_eq!(fetched, project);
}

#[tokio::test]
async fn an_omitted_description_is_null() {
    let app = spawn_app().await;
    let body: Value = app
        .create_project(ALICE, &json!({ "name": "Bot" }))
        .await
        .ok(201);
    assert_eq!(body["description"], Value::Null);
}

#[tokio::test]
async fn projects_are_listed_newest_first() {
    let app = spawn_app().await;
    let mut created = Vec::new();
    for name in ["one", "two", "three"] {
        created.push(app.new_project(ALICE, name).await);
    }
    let page: api::Page<api::Project> = app.list_projects(ALICE, "").await.ok(200);
    let names: Vec<&str> = page.items.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["three", "two", "one"]);
    assert_eq!(page.next_cursor, None);
    created.reverse();
    assert_eq!(page.items, created);
}

#[tokio::test]
async fn a_list_with_nothing_in_it_is_an_empty_page() {
    let app = spawn_app().await;
    let body: Value = app.list_projects(ALICE, "").await.ok(200);
    assert_eq!(body, json!({ "items": [], "next_cursor": null }));
}

#[tokio::test]
async fn patching_a_project_changes_only_the_given_fields_and_bumps_updated_at() {
    let app = spawn_app().await;
    let project: api::Project = app
        .create_project(ALICE, &json!({ "name": "Bot", "description": "first" }))
        .await
        .ok(201);

    let renamed: api::Project = app
        .patch_project(ALICE, project.id, &json!({ "name": "Better bot" }))
        .await
        .ok(200);
    assert_eq!(renamed.name, "Better bot");
    assert_eq!(
        renamed.description.as_deref(),
        Some("first"),
        "absent stays"
    );
    assert_eq!(renamed.created_at, project.created_at);
    assert!(renamed.updated_at >= project.updated_at);

    let described: api::Project = app
        .patch_project(ALICE, project.id, &json!({ "description": "second" }))
        .await
        .ok(200);
    assert_eq!(described.name, "Better bot");
    assert_eq!(described.description.as_deref(), Some("second"));

    let stored: api::Project = app.get_project(ALICE, project.id).await.ok(200);
    assert_eq!(stored, described);
}

#[tokio::test]
async fn a_projects_knowledge_language_is_patched_and_validated() {
    let app = spawn_app().await;
    let project = app.new_project(ALICE, "Ferme").await;
    assert_eq!(project.language, "english");

    let french: api::Project = app
        .patch_project(ALICE, project.id, &json!({ "language": "french" }))
        .await
        .ok(200);
    assert_eq!(french.language, "french");
    assert_eq!((french.name.as_str(), french.knowledge), ("Ferme", true));
    let stored: api::Project = app.get_project(ALICE, project.id).await.ok(200);
    assert_eq!(stored.language, "french");

    for bad in [
        json!("klingon"),
        json!("French"),
        json!(""),
        json!("french'; --"),
    ] {
        let problem = app
            .patch_project(ALICE, project.id, &json!({ "language": bad }))
            .await
            .problem(422, "validation_failed");
        assert!(
            problem.detail.starts_with("Language must be one of")
                && problem.detail.contains("spanish"),
            "the detail names the field and the choices: {}",
            problem.detail
        );
    }
    let not_text = app
        .patch_project(ALICE, project.id, &json!({ "language": 3 }))
        .await;
    assert!(
        matches!(not_text.status.as_u16(), 400 | 422),
        "a language that is not text is refused: {}",
        not_text.status
    );
    let kept: api::Project = app.get_project(ALICE, project.id).await.ok(200);
    assert_eq!(kept.language, "french", "a refused change changes nothing");

    // Every value of the published list is accepted.
    for language in api::KNOWLEDGE_LANGUAGES {
        let p: api::Project = app
            .patch_project(ALICE, project.id, &json!({ "language": language }))
            .await
            .ok(200);
        assert_eq!(p.language, *language);
    }
}

#[tokio::test]
async fn patching_the_description_to_null_clears_it() {
    let app = spawn_app().await;
    let project: api::Project = app
        .create_project(ALICE, &json!({ "name": "Bot", "description": "something" }))
        .await
        .ok(201);
    let cleared: Value = app
        .patch_project(ALICE, project.id, &json!({ "description": null }))
        .await
        .ok(200);
    assert_eq!(cleared["description"], Value::Null);
    assert_eq!(cleared["name"], "Bot");
    let stored: Value = app.get_project(ALICE, project.id).await.ok(200);
    assert_eq!(stored["description"], Value::Null);
}

#[tokio::test]
async fn deleting_a_project_answers_204_and_removes_everything_under_it() {
    let app = spawn_app().await;
    let project = app.new_project(ALICE, "Doomed").await;
    let keep = app.new_project(ALICE, "Kept").await;
    let prompt = app.new_prompt(ALICE, project.id, "Be brief.", true).await;
    let conversation = app.new_conversation(ALICE, project.id).await;
    app.send(ALICE, conversation.id, "hello").await.done();
    let file = app.new_file(ALICE, project.id, "notes.txt").await;
    let kept_file = app.new_file(ALICE, keep.id, "kept.txt").await;
    assert_eq!(app.blobs.len(), 2);

    let answer = app.delete_project(ALICE, project.id).await;
    answer.assert_status(204);
    assert!(answer.body.is_empty(), "204 has no body");

    app.get_project(ALICE, project.id)
        .await
        .problem(404, "not_found");
    app.list_prompts(ALICE, project.id, "")
        .await
        .problem(404, "not_found");
    app.activate_prompt(ALICE, project.id, prompt.id)
        .await
        .problem(404, "not_found");
    app.get_conversation(ALICE, conversation.id)
        .await
        .problem(404, "not_found");
    app.list_messages(ALICE, conversation.id, "")
        .await
        .problem(404, "not_found");
    assert!(app.stored_messages(ALICE, conversation.id).await.is_empty());
    app.get_file(ALICE, file.id).await.problem(404, "not_found");
    app.download_file(ALICE, file.id)
        .await
        .problem(404, "not_found");
    assert_eq!(
        app.blobs.len(),
        1,
        "the deleted project's file bytes are removed"
    );

    // The other project is untouched.
    app.get_project(ALICE, keep.id).await.assert_status(200);
    app.download_file(ALICE, kept_file.id)
        .await
        .assert_status(200);

    app.delete_project(ALICE, project.id)
        .await
        .problem(404, "not_found");
}
