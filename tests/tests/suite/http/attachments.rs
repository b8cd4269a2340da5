//! Attachments of a send (`file_ids`): the rules (at most 10, the sender's files of the
//! conversation's project, else 404), the links on the stored and read messages.

use confab_api_types as api;
use confab_tests::http::{ALICE, BOB, TestApp, spawn_app};
use serde_json::json;
use uuid::Uuid;

async fn alices_conversation(app: &TestApp) -> (api::Project, api::Conversation) {
    let project = app.new_project(ALICE, "Attachments").await;
    let conversation = app.new_conversation(ALICE, project.id).await;
    (project, conversation)
}

fn link(file: &api::FileInfo) -> api::MessageFile {
    api::MessageFile {
        id: file.id,
        filename: file.filename.clone(),
        content_type: file.content_type.clone(),
        size_bytes: file.size_bytes,
        deleted: false,
    }
}

#[tokio::test]
async fn a_send_with_files_links_them_on_the_user_message_in_every_read() {
    let app = spawn_app().await;
    let (project, conversation) = alices_conversation(&app).await;
    let notes = app.new_file(ALICE, project.id, "notes.txt").await;
    let plan = app.new_file(ALICE, project.id, "plan.md").await;

    let reply = app
        .send_body(
            ALICE,
            conversation.id,
            &json!({ "content": "Read these.", "file_ids": [plan.id, notes.id] }),
        )
        .await;

    let expected = vec![link(&plan), link(&notes)];
    let user: api::Message = reply.first("user_message").json();
    assert_eq!(
        user.files, expected,
        "the user_message event names the files"
    );
    let announced: serde_json::Value = reply.first("assistant_message").value();
    assert_eq!(announced["files"], json!([]), "a reply has an empty list");
    let done = reply.done();
    assert!(done.files.is_empty());
    assert!(
        done.content
            .contains("You attached plan.md (11 bytes), notes.txt (11 bytes)."),
        "the model was given the files in order: {}",
        done.content
    );

    let page: api::Page<api::Message> = app.list_messages(ALICE, conversation.id, "").await.ok(200);
    assert_eq!(page.items[0].files, expected, "the branch read names them");
    assert!(page.items[1].files.is_empty());

    // Deleting the file keeps the message and names the file as deleted.
    app.delete_file(ALICE, plan.id).await.assert_status(204);
    let page: api::Page<api::Message> = app.list_messages(ALICE, conversation.id, "").await.ok(200);
    assert_eq!(page.items.len(), 2, "the messages stay");
    assert_eq!(
        page.items[0].files,
        vec![
            api::MessageFile {
                deleted: true,
                ..link(&plan)
            },
            link(&notes)
        ]
    );
}

#[tokio::test]
async fn attaching_another_users_file_is_404_and_stores_nothing() {
    let app = spawn_app().await;
    let (_, conversation) = alices_conversation(&app).await;
    let bobs_project = app.new_project(BOB, "Bob's").await;
    let bobs = app.new_file(BOB, bobs_project.id, "secret.txt").await;

    let answer = confab_tests::http::Answer::read(
        app.send_message(
            ALICE,
            conversation.id,
            &json!({ "content": "Read it.", "file_ids": [bobs.id] }),
        )
        .await,
    )
    .await;

    answer.problem(404, "not_found");
    assert!(app.stored_messages(ALICE, conversation.id).await.is_empty());
}

#[tokio::test]
async fn over_the_send_limit_attaching_another_users_file_is_404_not_429() {
    let app = confab_tests::http::AppOptions::new()
        .setting("CONFAB_SENDS_PER_MINUTE", "1")
        .spawn()
        .await;
    let (project, conversation) = alices_conversation(&app).await;
    let bobs_project = app.new_project(BOB, "Bob's").await;
    let bobs = app.new_file(BOB, bobs_project.id, "secret.txt").await;
    let mine = app.new_file(ALICE, project.id, "mine.txt").await;
    app.send(ALICE, conversation.id, "The one send of the minute")
        .await
        .done();

    // API.md's order: existence and ownership (404) before the rate limit (429).
    let send = |file_ids: serde_json::Value| {
        let app = &app;
        async move {
            confab_tests::http::Answer::read(
                app.send_message(
                    ALICE,
                    conversation.id,
                    &json!({ "content": "Read it.", "file_ids": file_ids }),
                )
                .await,
            )
            .await
        }
    };
    send(json!([mine.id, bobs.id]))
        .await
        .problem(404, "not_found");
    send(json!([Uuid::now_v7()]))
        .await
        .problem(404, "not_found");
    send(json!([mine.id])).await.problem(429, "rate_limited");
    assert_eq!(app.stored_messages(ALICE, conversation.id).await.len(), 2);
}

#[tokio::test]
async fn attaching_a_file_of_another_project_or_an_unknown_id_is_404() {
    let app = spawn_app().await;
    let (_, conversation) = alices_conversation(&app).await;
    let other = app.new_project(ALICE, "Other").await;
    let elsewhere = app.new_file(ALICE, other.id, "elsewhere.txt").await;

    for id in [elsewhere.id, Uuid::now_v7()] {
        let answer = confab_tests::http::Answer::read(
            app.send_message(
                ALICE,
                conversation.id,
                &json!({ "content": "Read it.", "file_ids": [id] }),
            )
            .await,
        )
        .await;
        answer.problem(404, "not_found");
    }
    assert!(app.stored_messages(ALICE, conversation.id).await.is_empty());
}

#[tokio::test]
async fn more_than_ten_files_is_422_validation_failed() {
    let app = spawn_app().await;
    let (_, conversation) = alices_conversation(&app).await;
    let eleven: Vec<Uuid> = (0..11).map(|_| Uuid::now_v7()).collect();

    let answer = confab_tests::http::Answer::read(
        app.send_message(
            ALICE,
            conversation.id,
            &json!({ "content": "Read them.", "file_ids": eleven }),
        )
        .await,
    )
    .await;

    let problem = answer.problem(422, "validation_failed");
    assert_eq!(problem.detail, "File_ids must name at most 10 files.");
    assert!(app.stored_messages(ALICE, conversation.id).await.is_empty());
}

#[tokio::test]
async fn an_edit_and_resend_carries_its_own_files() {
    let app = spawn_app().await;
    let (project, conversation) = alices_conversation(&app).await;
    let first = app.new_file(ALICE, project.id, "first.txt").await;
    let second = app.new_file(ALICE, project.id, "second.txt").await;
    app.send_body(
        ALICE,
        conversation.id,
        &json!({ "content": "One.", "file_ids": [first.id] }),
    )
    .await
    .done();

    // A new first message (parent_id null): its own files only.
    let edited = app
        .send_body(
            ALICE,
            conversation.id,
            &json!({ "content": "One, again.", "parent_id": null, "file_ids": [second.id] }),
        )
        .await;
    let user: api::Message = edited.first("user_message").json();
    assert_eq!(user.files, vec![link(&second)]);
}
