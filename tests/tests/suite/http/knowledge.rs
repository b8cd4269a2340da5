//! Project knowledge (issue 16): the texts of a project's files are searched at each send and
//! the passages found given to the model as numbered sources, which the `assistant_message`
//! and `done` events, the stored reply and every read carry; never another project's or
//! another user's file; off with the project's `knowledge` setting or
//! `CONFAB_KNOWLEDGE_CHUNKS=0`. The echo model lists the sources it was given.

use confab_api_types as api;
use confab_tests::http::{ALICE, AppOptions, BOB, SseStream, TestApp, spawn_app};
use serde_json::json;

const FACT: &str = "Company trivia.\n\nOur office mascot is a quokka named Zephyrine; \
    she was adopted in 2019 and eats only clover.\n\nThe car park closes at ten.";

/// A project of `user` with a ready `facts.txt` holding [`FACT`].
async fn project_with_facts(app: &TestApp, user: &str) -> (api::Project, api::FileInfo) {
    let project = app.new_project(user, "Knowledge").await;
    let file = upload_text(app, user, project.id, "facts.txt", FACT).await;
    (project, file)
}

async fn upload_text(
    app: &TestApp,
    user: &str,
    project: uuid::Uuid,
    name: &str,
    text: &str,
) -> api::FileInfo {
    let file: api::FileInfo = app
        .upload_file(user, project, name, "text/plain", text.as_bytes().to_vec())
        .await
        .ok(201);
    let file = app.text_read(user, file.id).await;
    assert_eq!(file.text_status, api::TextStatus::Ready);
    file
}

fn announced(reply: &confab_tests::http::Reply) -> api::Message {
    reply.first("assistant_message").json()
}

#[tokio::test]
async fn a_question_about_a_projects_file_is_answered_with_it_as_a_numbered_source() {
    let app = spawn_app().await;
    let (project, file) = project_with_facts(&app, ALICE).await;
    assert!(project.knowledge, "knowledge is on by default");
    let conversation = app.new_conversation(ALICE, project.id).await;

    let reply = app
        .send(ALICE, conversation.id, "What does Zephyrine eat?")
        .await;

    let done = reply.done();
    assert_eq!(done.sources.len(), 1, "{:?}", done.sources);
    let source = &done.sources[0];
    assert_eq!(
        (source.n, source.file_id, source.filename.as_str()),
        (1, file.id, "facts.txt")
    );
    assert!(
        source.excerpt.contains("Zephyrine") && source.excerpt.chars().count() <= 302,
        "the excerpt shows the match: {:?}",
        source.excerpt
    );
    assert!(
        done.content.ends_with("Sources: [1] facts.txt"),
        "the model was given the source: {}",
        done.content
    );
    assert_eq!(
        announced(&reply).sources,
        done.sources,
        "assistant_message announces the sources"
    );
    let user: serde_json::Value = reply.first("user_message").value();
    assert_eq!(user["sources"], json!([]), "a user message has none");

    let page: api::Page<api::Message> = app.list_messages(ALICE, conversation.id, "").await.ok(200);
    assert_eq!(
        page.items[1].sources, done.sources,
        "the stored reply has them"
    );
    assert!(page.items[0].sources.is_empty());
}

#[tokio::test]
async fn a_follower_of_the_reply_gets_the_same_sources() {
    let app = spawn_app().await;
    let (project, _) = project_with_facts(&app, ALICE).await;
    let conversation = app.new_conversation(ALICE, project.id).await;
    let reply = app.send(ALICE, conversation.id, "Who is Zephyrine?").await;
    let replay = SseStream::new(app.follow(ALICE, conversation.id, None).await)
        .rest()
        .await;
    assert_eq!(replay, reply.frames, "the replay is the same events");
    assert_eq!(reply.done().sources.len(), 1);
}

#[tokio::test]
async fn a_follow_up_question_is_searched_with_the_previous_user_message() {
    let app = spawn_app().await;
    let (project, file) = project_with_facts(&app, ALICE).await;
    let conversation = app.new_conversation(ALICE, project.id).await;
    app.send(ALICE, conversation.id, "Who is Zephyrine?")
        .await
        .done();

    let reply = app.send(ALICE, conversation.id, "Tell me more!").await;
    let done = reply.done();
    assert_eq!(
        done.sources.iter().map(|s| s.file_id).collect::<Vec<_>>(),
        vec![file.id],
        "found through the question before"
    );
}

#[tokio::test]
async fn with_the_projects_knowledge_off_a_reply_has_no_sources() {
    let app = spawn_app().await;
    let (project, _) = project_with_facts(&app, ALICE).await;
    let conversation = app.new_conversation(ALICE, project.id).await;

    let off: api::Project = app
        .patch_project(ALICE, project.id, &json!({ "knowledge": false }))
        .await
        .ok(200);
    assert!(!off.knowledge);
    let read: api::Project = app.get_project(ALICE, project.id).await.ok(200);
    assert!(!read.knowledge, "the setting is stored");

    let done = app
        .send(ALICE, conversation.id, "What does Zephyrine eat?")
        .await
        .done();
    assert!(done.sources.is_empty(), "{:?}", done.sources);
    assert!(!done.content.contains("Sources:"), "{}", done.content);

    let on: api::Project = app
        .patch_project(
            ALICE,
            project.id,
            &json!({ "knowledge": true, "name": "Again" }),
        )
        .await
        .ok(200);
    assert!(on.knowledge);
    let done = app
        .send(ALICE, conversation.id, "What does Zephyrine eat?")
        .await
        .done();
    assert_eq!(done.sources.len(), 1, "on again");
}

#[tokio::test]
async fn a_knowledge_setting_that_is_not_a_boolean_is_refused() {
    let app = spawn_app().await;
    let project = app.new_project(ALICE, "Typed").await;
    let answer = app
        .patch_project(ALICE, project.id, &json!({ "knowledge": "yes" }))
        .await;
    assert!(
        matches!(answer.status.as_u16(), 400 | 422),
        "{} {}",
        answer.status,
        answer.text()
    );
}

#[tokio::test]
async fn knowledge_chunks_zero_turns_sources_off_for_every_project() {
    let app = AppOptions::new()
        .setting("CONFAB_KNOWLEDGE_CHUNKS", "0")
        .spawn()
        .await;
    let (project, _) = project_with_facts(&app, ALICE).await;
    let conversation = app.new_conversation(ALICE, project.id).await;
    let done = app
        .send(ALICE, conversation.id, "What does Zephyrine eat?")
        .await
        .done();
    assert!(done.sources.is_empty());
}

#[tokio::test]
async fn another_users_or_another_projects_file_is_never_a_source() {
    let app = spawn_app().await;
    // Bob's project, and another project of Alice's, know about Zephyrine.
    project_with_facts(&app, BOB).await;
    project_with_facts(&app, ALICE).await;
    let project = app.new_project(ALICE, "Unrelated").await;
    upload_text(&app, ALICE, project.id, "hours.txt", "We open at nine.").await;
    let conversation = app.new_conversation(ALICE, project.id).await;

    let done = app
        .send(
            ALICE,
            conversation.id,
            "What does Zephyrine eat? When do we open?",
        )
        .await
        .done();
    assert_eq!(
        done.sources
            .iter()
            .map(|s| s.filename.as_str())
            .collect::<Vec<_>>(),
        vec!["hours.txt"],
        "only this project's file"
    );
}

#[tokio::test]
async fn a_deleted_file_is_no_longer_a_source() {
    let app = spawn_app().await;
    let (project, file) = project_with_facts(&app, ALICE).await;
    let conversation = app.new_conversation(ALICE, project.id).await;
    app.delete_file(ALICE, file.id).await.assert_status(204);
    let done = app
        .send(ALICE, conversation.id, "What does Zephyrine eat?")
        .await
        .done();
    assert!(done.sources.is_empty());
}

#[tokio::test]
async fn a_real_adapter_gives_the_provider_the_sources_after_the_instructions() {
    use confab_openai::{OpenAiConfig, ResponsesLlm};
    use confab_tests::fake_provider::{FakeConfig, FakeProvider};

    let provider = FakeProvider::start(FakeConfig::replying(&["Clover [1]."]))
        .await
        .expect("the fake provider starts");
    let config = OpenAiConfig::new(secrecy::SecretString::from("sk-test".to_owned()))
        .with_base_url(provider.base_url())
        .with_model("fake-model");
    let llm = std::sync::Arc::new(ResponsesLlm::new(config).expect("an adapter"));
    let app = confab_tests::http::spawn_app_with(llm, &[]).await;
    let (project, _) = project_with_facts(&app, ALICE).await;
    app.new_prompt(ALICE, project.id, "Be brief.", true).await;
    let conversation = app.new_conversation(ALICE, project.id).await;

    let done = app
        .send(ALICE, conversation.id, "What does Zephyrine eat?")
        .await
        .done();
    assert_eq!(done.content, "Clover [1].");
    assert_eq!(done.sources.len(), 1);

    let requests = provider.requests();
    let body = &requests[0].body;
    assert_eq!(body["instructions"], "Be brief.");
    let input = body["input"].as_array().expect("input messages");
    assert_eq!(input[0]["role"], "developer", "{body}");
    let given = input[0]["content"].as_str().unwrap_or_default();
    assert!(given.contains("[1] facts.txt\n"), "{given}");
    assert!(given.contains("eats only clover"), "{given}");
    assert_eq!(input.last().map(|m| m["role"].clone()), Some(json!("user")));
}
