//! Conversations as trees over HTTP (issue 17): edit and resend, regenerate, branch reads with
//! their versions, choosing a branch, what the provider is sent on each branch, and a model
//! per conversation.

use std::sync::Arc;

use confab_api_types as api;
use confab_core::model::Role;
use confab_memory::{Script, ScriptedLlm};
use confab_openai::{ChatCompletionsLlm, OpenAiConfig};
use confab_tests::fake_provider::{FakeConfig, FakeProvider};
use confab_tests::http::{Reply, SseStream, TestApp, spawn_app_with, spawn_scripted};
use secrecy::SecretString;
use serde_json::{Value, json};
use uuid::Uuid;

const ALICE: &str = "alice";
const BOB: &str = "bob";

async fn conversation(app: &TestApp) -> api::Conversation {
    let project = app.new_project(ALICE, "Bot").await;
    app.new_conversation(ALICE, project.id).await
}

/// The branch being shown, oldest first.
async fn shown(app: &TestApp, conversation: Uuid, query: &str) -> Vec<api::Message> {
    app.list_messages(ALICE, conversation, query)
        .await
        .ok::<api::Page<api::Message>>(200)
        .items
}

fn ids(messages: &[api::Message]) -> Vec<Uuid> {
    messages.iter().map(|m| m.id).collect()
}

/// The user and assistant ids of a reply stream.
fn turn_ids(reply: &Reply) -> (Uuid, Uuid) {
    let user = reply.first("user_message").json::<api::Message>().id;
    (user, reply.done().id)
}

/// The `(role, content)` of every message the provider was sent, system first.
fn sent(body: &Value) -> Vec<(String, String)> {
    body["messages"]
        .as_array()
        .expect("a messages array")
        .iter()
        .map(|m| {
            (
                m["role"].as_str().unwrap_or_default().to_owned(),
                m["content"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(r, c)| ((*r).to_owned(), (*c).to_owned()))
        .collect()
}

#[tokio::test]
async fn the_provider_is_sent_only_the_chosen_branch_after_edit_regenerate_and_leaf_changes() {
    let provider = FakeProvider::start(FakeConfig::replying(&["Fine."]))
        .await
        .expect("the fake provider starts");
    let config = OpenAiConfig::new(SecretString::from("sk-tree".to_owned()))
        .with_base_url(provider.base_url())
        .with_model("fake-model");
    let llm = Arc::new(ChatCompletionsLlm::new(config).expect("an adapter"));
    let app = spawn_app_with(llm, &[]).await;
    let c = conversation(&app).await;

    let (u1, r1) = turn_ids(&app.send(ALICE, c.id, "one").await);
    let (u2, r2) = turn_ids(&app.send(ALICE, c.id, "two").await);

    // Edit and resend "two": the old branch stays, the provider never sees it.
    let edited = app
        .send_body(
            ALICE,
            c.id,
            &json!({"content": "two, edited", "parent_id": r1}),
        )
        .await;
    let (e2, f2) = turn_ids(&edited);
    let user_event = edited.first("user_message").json::<api::Message>();
    assert_eq!(user_event.parent_id, Some(r1));
    let last = provider.requests().pop().expect("a request");
    assert_eq!(
        sent(&last.body),
        pairs(&[
            ("user", "one"),
            ("assistant", "Fine."),
            ("user", "two, edited")
        ])
    );

    // Regenerate the first reply: a sibling, asked with the branch up to its question.
    let again = Reply::read(app.regenerate(ALICE, r1).await).await;
    assert_eq!(
        again.names()[..2],
        ["user_message", "assistant_message"],
        "the same events as a send"
    );
    assert_eq!(again.first("user_message").json::<api::Message>().id, u1);
    let g1 = again.done().id;
    assert_eq!(again.done().parent_id, Some(u1));
    let last = provider.requests().pop().expect("a request");
    assert_eq!(sent(&last.body), pairs(&[("user", "one")]));
    let now = app
        .get_conversation(ALICE, c.id)
        .await
        .ok::<api::Conversation>(200);
    assert_eq!(now.leaf_id, Some(g1));
    let branch = shown(&app, c.id, "").await;
    assert_eq!(ids(&branch), vec![u1, g1]);
    assert_eq!(branch[1].sibling_ids, Some(vec![r1, g1]), "\"2 / 2\"");

    // Back to the first version of the reply, then to the old "two": its deepest leaf.
    let chosen = app
        .choose_leaf(ALICE, c.id, &json!({"message_id": r1}))
        .await
        .ok::<api::Conversation>(200);
    assert_eq!(
        chosen.leaf_id,
        Some(f2),
        "r1's most recent child is the edit"
    );
    let chosen = app
        .choose_leaf(ALICE, c.id, &json!({"message_id": u2}))
        .await
        .ok::<api::Conversation>(200);
    assert_eq!(chosen.leaf_id, Some(r2));
    let branch = shown(&app, c.id, "").await;
    assert_eq!(ids(&branch), vec![u1, r1, u2, r2]);
    assert_eq!(branch[1].sibling_ids, Some(vec![r1, g1]));
    assert_eq!(branch[2].sibling_ids, Some(vec![u2, e2]));
    assert_eq!(branch[0].sibling_ids, Some(vec![u1]));

    // A send continues the chosen branch; the provider gets it and nothing else.
    app.send(ALICE, c.id, "three").await.done();
    let last = provider.requests().pop().expect("a request");
    assert_eq!(
        sent(&last.body),
        pairs(&[
            ("user", "one"),
            ("assistant", "Fine."),
            ("user", "two"),
            ("assistant", "Fine."),
            ("user", "three"),
        ])
    );
    // `?leaf=` reads another branch without choosing it.
    let other = shown(&app, c.id, &format!("?leaf={f2}")).await;
    assert_eq!(ids(&other), vec![u1, r1, e2, f2]);
    assert_eq!(shown(&app, c.id, "").await.len(), 6);
}

#[tokio::test]
async fn a_null_parent_edits_the_first_question_and_pages_keep_to_their_branch() {
    let app = spawn_scripted(ScriptedLlm::replying(&["ok"]), &[]).await;
    let c = conversation(&app).await;
    let mut line = Vec::new();
    for text in ["a", "b", "c"] {
        let (u, r) = turn_ids(&app.send(ALICE, c.id, text).await);
        line.extend([u, r]);
    }
    let first = app
        .list_messages(ALICE, c.id, "?limit=4")
        .await
        .ok::<api::Page<api::Message>>(200);
    assert_eq!(ids(&first.items), line[..4].to_vec());
    let cursor = first.next_cursor.expect("a next page");
    // A new first message between two pages: the next page still reads the first branch.
    let edit = app
        .send_body(
            ALICE,
            c.id,
            &json!({"content": "a, edited", "parent_id": null}),
        )
        .await;
    let (e, _) = turn_ids(&edit);
    assert_eq!(
        edit.first("user_message").json::<api::Message>().parent_id,
        None
    );
    let rest = app
        .list_messages(ALICE, c.id, &format!("?limit=4&cursor={cursor}"))
        .await
        .ok::<api::Page<api::Message>>(200);
    assert_eq!(ids(&rest.items), line[4..].to_vec());
    assert_eq!(rest.next_cursor, None);
    let now = shown(&app, c.id, "").await;
    assert_eq!(now.len(), 2);
    assert_eq!(now[0].id, e);
    assert_eq!(now[0].sibling_ids, Some(vec![line[0], e]));
    let requests = app.scripted().requests();
    let last = requests.last().expect("a request");
    assert_eq!(last.messages.len(), 1, "a new first message is sent alone");
    assert_eq!(last.messages[0].content, "a, edited");
}

#[tokio::test]
async fn regenerate_refuses_a_user_message_a_stranger_and_a_busy_conversation() {
    let llm = ScriptedLlm::sequence(vec![
        Script::replying(&["first"]),
        Script::hanging_after(&["thinking"]),
    ]);
    let app = spawn_scripted(llm, &[]).await;
    let c = conversation(&app).await;
    let (u1, r1) = turn_ids(&app.send(ALICE, c.id, "one").await);

    let answer = confab_tests::http::Answer::read(app.regenerate(ALICE, u1).await).await;
    answer.problem(422, "validation_failed");
    let answer = confab_tests::http::Answer::read(app.regenerate(BOB, r1).await).await;
    answer.problem(404, "not_found");
    let answer =
        confab_tests::http::Answer::read(app.regenerate(ALICE, Uuid::now_v7()).await).await;
    answer.problem(404, "not_found");
    let answer = confab_tests::http::Answer::read(
        app.request(
            reqwest::Method::POST,
            "/api/messages/not-a-uuid/regenerate",
            Some(ALICE),
        )
        .send()
        .await
        .unwrap(),
    )
    .await;
    answer.problem(400, "bad_request");

    // One regeneration streams (and hangs); a second, or a send on any branch, is 409.
    let mut busy = SseStream::new(app.regenerate(ALICE, r1).await);
    busy.until("delta").await;
    let answer = confab_tests::http::Answer::read(app.regenerate(ALICE, r1).await).await;
    answer.problem(409, "conflict");
    let edit = app
        .send_message(ALICE, c.id, &json!({"content": "x", "parent_id": null}))
        .await;
    confab_tests::http::Answer::read(edit)
        .await
        .problem(409, "conflict");
    let live = app
        .get_conversation(ALICE, c.id)
        .await
        .ok::<api::Conversation>(200);
    assert!(
        live.active_reply_id.is_some(),
        "the regenerated reply is the live one"
    );
    assert_eq!(app.stored_messages(ALICE, c.id).await.len(), 3);
    app.cancel(ALICE, c.id).await.assert_status(202);
    let end = busy.until("done").await;
    assert!(!end.is_empty());
}

#[tokio::test]
async fn a_parent_or_leaf_that_is_not_in_the_conversation_is_refused() {
    let app = spawn_scripted(ScriptedLlm::replying(&["ok"]), &[]).await;
    let c = conversation(&app).await;
    let other = conversation(&app).await;
    let (u1, _) = turn_ids(&app.send(ALICE, c.id, "one").await);
    let (_, elsewhere) = turn_ids(&app.send(ALICE, other.id, "other").await);
    let refused = |response| async move { confab_tests::http::Answer::read(response).await };
    refused(
        app.send_message(ALICE, c.id, &json!({"content": "x", "parent_id": u1}))
            .await,
    )
    .await
    .problem(422, "validation_failed");
    refused(
        app.send_message(
            ALICE,
            c.id,
            &json!({"content": "x", "parent_id": elsewhere}),
        )
        .await,
    )
    .await
    .problem(404, "not_found");
    app.choose_leaf(ALICE, c.id, &json!({"message_id": elsewhere}))
        .await
        .problem(404, "not_found");
    app.choose_leaf(BOB, c.id, &json!({"message_id": u1}))
        .await
        .problem(404, "not_found");
    app.choose_leaf(ALICE, c.id, &json!({"message_id": "nope"}))
        .await
        .problem(422, "validation_failed");
    app.list_messages(ALICE, c.id, &format!("?leaf={elsewhere}"))
        .await
        .problem(404, "not_found");
    app.list_messages(BOB, c.id, &format!("?leaf={u1}"))
        .await
        .problem(404, "not_found");
    app.list_messages(ALICE, c.id, "?leaf=nope")
        .await
        .problem(400, "bad_request");
    // An empty id is malformed too (the OpenAPI document says `format: uuid`), not "absent".
    app.list_messages(ALICE, c.id, "?leaf=")
        .await
        .problem(400, "bad_request");
    assert_eq!(
        app.stored_messages(ALICE, c.id).await.len(),
        2,
        "nothing was stored"
    );
    assert_eq!(app.scripted().requests().len(), 2);
}

#[tokio::test]
async fn a_conversation_chooses_its_model_among_the_configured_ones() {
    let app = spawn_scripted(
        ScriptedLlm::replying(&["ok"]),
        &[("CONFAB_MODELS", "model-b, model-c")],
    )
    .await;
    let config = app.config().await.ok::<api::ClientConfig>(200);
    assert_eq!(config.llm.model, ScriptedLlm::DEFAULT_MODEL);
    assert_eq!(
        config.llm.models,
        vec![ScriptedLlm::DEFAULT_MODEL, "model-b", "model-c"],
        "the default is offered first"
    );
    let c = conversation(&app).await;
    assert_eq!(c.model, None);
    app.patch_conversation(ALICE, c.id, &json!({"model": "model-x"}))
        .await
        .problem(422, "validation_failed");
    app.patch_conversation(BOB, c.id, &json!({"model": "model-b"}))
        .await
        .problem(404, "not_found");
    let titled = app
        .patch_conversation(ALICE, c.id, &json!({"title": "Kept"}))
        .await
        .ok::<api::Conversation>(200);
    let chosen = app
        .patch_conversation(ALICE, c.id, &json!({"model": "model-b"}))
        .await
        .ok::<api::Conversation>(200);
    assert_eq!(chosen.model.as_deref(), Some("model-b"));
    assert_eq!(
        chosen.title, titled.title,
        "a patch leaves absent fields alone"
    );
    let untouched = app
        .patch_conversation(ALICE, c.id, &json!({}))
        .await
        .ok::<api::Conversation>(200);
    assert_eq!(
        (untouched.title, untouched.model),
        (titled.title.clone(), chosen.model.clone()),
        "an empty patch changes nothing, it clears no title"
    );
    app.send(ALICE, c.id, "first").await.done();
    let back = app
        .patch_conversation(ALICE, c.id, &json!({"model": null}))
        .await
        .ok::<api::Conversation>(200);
    assert_eq!(back.model, None);
    app.send(ALICE, c.id, "second").await.done();
    let models: Vec<String> = app
        .scripted()
        .requests()
        .into_iter()
        .map(|r| r.model)
        .collect();
    assert_eq!(models, vec!["model-b", ScriptedLlm::DEFAULT_MODEL]);
    let stored = app.stored_messages(ALICE, c.id).await;
    let replies: Vec<Option<String>> = stored
        .iter()
        .filter(|m| m.role == Role::Assistant)
        .map(|m| m.model.clone())
        .collect();
    assert_eq!(
        replies,
        vec![
            Some("model-b".to_owned()),
            Some(ScriptedLlm::DEFAULT_MODEL.to_owned())
        ],
        "each reply stores the model that wrote it"
    );
}

#[tokio::test]
async fn deleting_a_conversation_with_branches_removes_every_version() {
    let app = spawn_scripted(ScriptedLlm::replying(&["ok"]), &[]).await;
    let c = conversation(&app).await;
    let (_, r1) = turn_ids(&app.send(ALICE, c.id, "one").await);
    Reply::read(app.regenerate(ALICE, r1).await).await.done();
    app.send_body(ALICE, c.id, &json!({"content": "edit", "parent_id": null}))
        .await
        .done();
    assert_eq!(app.stored_messages(ALICE, c.id).await.len(), 5);
    app.delete_conversation(ALICE, c.id)
        .await
        .assert_status(204);
    assert!(app.stored_messages(ALICE, c.id).await.is_empty());
    confab_tests::http::Answer::read(app.regenerate(ALICE, r1).await)
        .await
        .problem(404, "not_found");
}

#[tokio::test]
async fn the_first_reply_of_an_untitled_conversation_is_followed_by_its_title_and_a_set_title_is_kept()
 {
    let app = spawn_scripted(ScriptedLlm::replying(&["ok"]), &[]).await;
    let c = conversation(&app).await;
    let first = app
        .send(
            ALICE,
            c.id,
            "  Plan a \"weekend\" trip to Lisbon in May with two children please  ",
        )
        .await;
    first.done();
    let titles: Vec<api::TitleEvent> = first.titles.iter().map(|f| f.json()).collect();
    // The first words, without quotes, cut at a whole word within 60 characters.
    let expected = "Plan a weekend trip to Lisbon in May with two children";
    assert_eq!(
        titles,
        vec![api::TitleEvent {
            conversation_id: c.id,
            title: expected.to_owned(),
        }],
        "after done, one title event"
    );
    let stored = app
        .get_conversation(ALICE, c.id)
        .await
        .ok::<api::Conversation>(200);
    assert_eq!(stored.title.as_deref(), Some(expected));
    assert_eq!(
        app.scripted().requests().len(),
        1,
        "the title asked no model (echo-style titler)"
    );

    // The second reply writes none.
    assert!(app.send(ALICE, c.id, "more").await.titles.is_empty());
    // A conversation the user titled keeps its title.
    let project = app.new_project(ALICE, "Other").await;
    let titled = app
        .create_conversation(ALICE, project.id, Some(&json!({"title": "Mine"})))
        .await
        .ok::<api::Conversation>(201);
    assert!(
        app.send(ALICE, titled.id, "hello there")
            .await
            .titles
            .is_empty()
    );
    let kept = app
        .get_conversation(ALICE, titled.id)
        .await
        .ok::<api::Conversation>(200);
    assert_eq!(kept.title.as_deref(), Some("Mine"));
}

/// A title model that takes its time: the title comes `delay` after it is asked.
struct SlowTitler(std::time::Duration);

#[async_trait::async_trait]
impl confab_core::titles::Titler for SlowTitler {
    async fn title(&self, first: &str) -> Result<String, confab_core::LlmError> {
        tokio::time::sleep(self.0).await;
        Ok(first.to_owned())
    }
}

/// `done` is the reply's end even while its stream waits for the title: a send right after
/// `done` is accepted and answered before the first stream's title comes, which still comes.
#[tokio::test]
async fn a_send_right_after_done_is_accepted_while_the_title_is_still_being_written() {
    let app = confab_tests::http::AppOptions::new()
        .titler(Arc::new(SlowTitler(std::time::Duration::from_secs(3))))
        .spawn()
        .await;
    let c = conversation(&app).await;
    let mut first = app.open_stream(ALICE, c.id, "Rivers of Europe").await;
    let started = std::time::Instant::now();
    loop {
        let frame = first.expect_next().await;
        if frame.event == "done" {
            break;
        }
    }
    let second = app.send(ALICE, c.id, "And of Asia").await;
    assert!(second.done().content.contains("And of Asia"));
    assert!(
        started.elapsed() < std::time::Duration::from_secs(3),
        "the second send did not wait for the first one's title"
    );
    assert!(second.titles.is_empty(), "only the first reply is titled");
    let (rest, titles) = first.rest_with_titles().await;
    assert!(
        rest.is_empty(),
        "nothing but the title after done: {rest:?}"
    );
    let title: api::TitleEvent = titles
        .first()
        .expect("the first stream gets its title after all")
        .json();
    assert_eq!(title.title, "Rivers of Europe");
}
