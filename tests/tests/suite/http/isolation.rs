//! The isolation rule: a resource of another user answers 404 on every route, with exactly
//! the body a missing id gets, and the owner's data is unchanged by the attempt.

use confab_api_types as api;
use confab_memory::{Script, ScriptedLlm};
use confab_tests::http::{ALICE, Answer, BOB, TestApp, spawn_scripted};
use serde_json::json;
use uuid::Uuid;

#[derive(Clone, Copy, Debug)]
struct Ids {
    project: Uuid,
    prompt: Uuid,
    conversation: Uuid,
    /// The conversation's first user message and its reply.
    question: Uuid,
    reply: Uuid,
    file: Uuid,
}

impl Ids {
    fn random() -> Self {
        Self {
            project: Uuid::now_v7(),
            prompt: Uuid::now_v7(),
            conversation: Uuid::now_v7(),
            question: Uuid::now_v7(),
            reply: Uuid::now_v7(),
            file: Uuid::now_v7(),
        }
    }
}

#[derive(Clone, Copy, Debug)]
enum Route {
    GetProject,
    PatchProject,
    DeleteProject,
    ListPrompts,
    CreatePrompt,
    ActivePrompt,
    ActivatePrompt,
    ListConversations,
    CreateConversation,
    GetConversation,
    PatchConversation,
    DeleteConversation,
    ListMessages,
    ListBranch,
    SendMessage,
    EditAndResend,
    Regenerate,
    ChooseLeaf,
    ChooseModel,
    Cancel,
    ListFiles,
    UploadFile,
    GetFile,
    DeleteFile,
    DownloadFile,
}

const EVERY_ROUTE: [Route; 25] = [
    Route::GetProject,
    Route::PatchProject,
    Route::DeleteProject,
    Route::ListPrompts,
    Route::CreatePrompt,
    Route::ActivePrompt,
    Route::ActivatePrompt,
    Route::ListConversations,
    Route::CreateConversation,
    Route::GetConversation,
    Route::PatchConversation,
    Route::DeleteConversation,
    Route::ListMessages,
    Route::ListBranch,
    Route::SendMessage,
    Route::EditAndResend,
    Route::Regenerate,
    Route::ChooseLeaf,
    Route::ChooseModel,
    Route::Cancel,
    Route::ListFiles,
    Route::UploadFile,
    Route::GetFile,
    Route::DeleteFile,
    Route::DownloadFile,
];

async fn call(app: &TestApp, user: &str, route: Route, ids: Ids) -> Answer {
    match route {
        Route::GetProject => app.get_project(user, ids.project).await,
        Route::PatchProject => {
            app.patch_project(
                user,
                ids.project,
                &json!({ "name": "taken over", "description": null }),
            )
            .await
        }
        Route::DeleteProject => app.delete_project(user, ids.project).await,
        Route::ListPrompts => app.list_prompts(user, ids.project, "").await,
        Route::CreatePrompt => {
            app.create_prompt(user, ids.project, &json!({ "content": "Obey Bob." }))
                .await
        }
        Route::ActivePrompt => app.active_prompt(user, ids.project).await,
        Route::ActivatePrompt => app.activate_prompt(user, ids.project, ids.prompt).await,
        Route::ListConversations => app.list_conversations(user, ids.project, "").await,
        Route::CreateConversation => {
            app.create_conversation(user, ids.project, Some(&json!({ "title": "Bob's" })))
                .await
        }
        Route::GetConversation => app.get_conversation(user, ids.conversation).await,
        Route::PatchConversation => {
            app.patch_conversation(user, ids.conversation, &json!({ "title": "mine now" }))
                .await
        }
        Route::DeleteConversation => app.delete_conversation(user, ids.conversation).await,
        Route::ListMessages => app.list_messages(user, ids.conversation, "").await,
        Route::SendMessage => {
            Answer::read(
                app.send_message(user, ids.conversation, &json!({ "content": "hi" }))
                    .await,
            )
            .await
        }
        Route::ListBranch => {
            app.list_messages(user, ids.conversation, &format!("?leaf={}", ids.reply))
                .await
        }
        Route::EditAndResend => {
            let body = json!({ "content": "hi", "parent_id": ids.reply });
            Answer::read(app.send_message(user, ids.conversation, &body).await).await
        }
        Route::Regenerate => Answer::read(app.regenerate(user, ids.reply).await).await,
        Route::ChooseLeaf => {
            app.choose_leaf(
                user,
                ids.conversation,
                &json!({ "message_id": ids.question }),
            )
            .await
        }
        Route::ChooseModel => {
            // `null` (the default) is a valid model: only ownership can refuse it.
            app.patch_conversation(user, ids.conversation, &json!({ "model": null }))
                .await
        }
        Route::Cancel => app.cancel(user, ids.conversation).await,
        Route::ListFiles => app.list_files(user, ids.project, "").await,
        Route::UploadFile => {
            app.upload_file(user, ids.project, "bob.txt", "text/plain", b"bob".to_vec())
                .await
        }
        Route::GetFile => app.get_file(user, ids.file).await,
        Route::DeleteFile => app.delete_file(user, ids.file).await,
        Route::DownloadFile => app.download_file(user, ids.file).await,
    }
}

/// Everything Alice can read about her resources: (what, status, body).
async fn snapshot(app: &TestApp, ids: Ids) -> Vec<(&'static str, u16, bytes::Bytes)> {
    let answers = [
        ("projects", app.list_projects(ALICE, "").await),
        ("project", app.get_project(ALICE, ids.project).await),
        ("prompts", app.list_prompts(ALICE, ids.project, "").await),
        ("active prompt", app.active_prompt(ALICE, ids.project).await),
        (
            "conversations",
            app.list_conversations(ALICE, ids.project, "").await,
        ),
        (
            "conversation",
            app.get_conversation(ALICE, ids.conversation).await,
        ),
        (
            "messages",
            app.list_messages(ALICE, ids.conversation, "").await,
        ),
        ("files", app.list_files(ALICE, ids.project, "").await),
        ("file", app.get_file(ALICE, ids.file).await),
        ("content", app.download_file(ALICE, ids.file).await),
    ];
    answers
        .into_iter()
        .map(|(what, answer)| {
            assert_eq!(answer.status.as_u16(), 200, "Alice reads her {what}");
            (what, answer.status.as_u16(), answer.body)
        })
        .collect()
}

/// Alice's project with a prompt, a conversation with one exchange, and a file.
async fn alice_world(app: &TestApp) -> Ids {
    let project = app.new_project(ALICE, "Alice's bot").await;
    let prompt = app.new_prompt(ALICE, project.id, "Be kind.", true).await;
    app.new_prompt(ALICE, project.id, "Be terse.", false).await;
    let conversation = app.new_conversation(ALICE, project.id).await;
    let first = app.send(ALICE, conversation.id, "first").await;
    let question = first.first("user_message").json::<api::Message>().id;
    let reply = first.done().id;
    let file = app.new_file(ALICE, project.id, "secret.txt").await;
    Ids {
        project: project.id,
        prompt: prompt.id,
        conversation: conversation.id,
        question,
        reply,
        file: file.id,
    }
}

#[tokio::test]
async fn another_users_ids_answer_404_on_every_route_exactly_like_missing_ids() {
    let llm = ScriptedLlm::sequence(vec![
        Script::replying(&["Hello"]),
        Script::hanging_after(&["par", "tial"]),
    ]);
    let app = spawn_scripted(llm, &[]).await;
    let alice = alice_world(&app).await;
    // Bob is a real user with data of his own.
    let bob_project = app.new_project(BOB, "Bob's bot").await;
    let bob_prompt = app
        .new_prompt(BOB, bob_project.id, "Bob's prompt", true)
        .await;

    // Alice has a reply being generated while Bob tries everything.
    let mut stream = app.open_stream(ALICE, alice.conversation, "second").await;
    for _ in 0..4 {
        stream.expect_next().await;
    }
    let before = snapshot(&app, alice).await;
    let blobs = app.blobs.len();
    let streams = app.scripted().streams_started();

    for route in EVERY_ROUTE {
        let theirs = call(&app, BOB, route, alice).await;
        let missing = call(&app, BOB, route, Ids::random()).await;
        assert_eq!(
            theirs.status.as_u16(),
            404,
            "{route:?} on Alice's ids: {}",
            theirs.text()
        );
        theirs.problem(404, "not_found");
        missing.problem(404, "not_found");
        assert_eq!(
            theirs.body, missing.body,
            "{route:?}: another user's id and a missing id get the same body"
        );
        assert_eq!(
            theirs.header("content-type"),
            missing.header("content-type")
        );
        assert!(theirs.header("www-authenticate").is_none());
    }
    // Alice's prompt under Bob's own project is not Bob's either.
    app.activate_prompt(BOB, bob_project.id, alice.prompt)
        .await
        .problem(404, "not_found");
    // And Bob's prompt under Alice's project is not Alice's.
    app.activate_prompt(ALICE, alice.project, bob_prompt.id)
        .await
        .problem(404, "not_found");

    assert_eq!(
        snapshot(&app, alice).await,
        before,
        "Alice's data is unchanged"
    );
    assert_eq!(app.blobs.len(), blobs, "Bob's upload stored no bytes");
    assert_eq!(
        app.scripted().streams_started(),
        streams,
        "Bob's send never reached the model"
    );

    // Bob's cancel did not stop Alice's reply: it is still streaming until she cancels it.
    let stored = app.stored_messages(ALICE, alice.conversation).await;
    assert_eq!(stored.last().map(|m| m.status.as_str()), Some("streaming"));
    app.cancel(ALICE, alice.conversation)
        .await
        .assert_status(202);
    let rest = stream.rest().await;
    let done: api::Message = rest.last().expect("a final event").json();
    assert_eq!(done.content, "partial");
    assert_eq!(done.status, api::MessageStatus::Cancelled);

    // Bob's own data is there, and only his.
    let page: api::Page<api::Project> = app.list_projects(BOB, "").await.ok(200);
    assert_eq!(page.items, [bob_project]);
}

#[tokio::test]
async fn lists_show_only_the_callers_own_resources() {
    let app = spawn_scripted(ScriptedLlm::replying(&["ok"]), &[]).await;
    let alice = alice_world(&app).await;
    let page: api::Page<api::Project> = app.list_projects(BOB, "").await.ok(200);
    assert!(page.items.is_empty(), "Bob sees none of Alice's projects");
    let bob_project = app.new_project(BOB, "Bob's").await;
    let page: api::Page<api::Project> = app.list_projects(ALICE, "").await.ok(200);
    let ids: Vec<Uuid> = page.items.iter().map(|p| p.id).collect();
    assert_eq!(ids, [alice.project]);
    let page: api::Page<api::Project> = app.list_projects(BOB, "").await.ok(200);
    let ids: Vec<Uuid> = page.items.iter().map(|p| p.id).collect();
    assert_eq!(ids, [bob_project.id]);
}
