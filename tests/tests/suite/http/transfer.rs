//! Export and import (issue 18): a conversation as JSON (every branch) and Markdown (the
//! shown one), the account as a streamed zip, a Confab export's round trip through an
//! empty account, and ChatGPT's `conversations.json` with its branches and skips — each
//! never reaching another user's data.

use std::collections::HashMap;
use std::io::Read as _;

use confab_api_types as api;
use confab_tests::http::{ALICE, Answer, AppOptions, BOB, TestApp, spawn_app};
use reqwest::Method;
use serde_json::{Value, json};

const CAROL: &str = "carol";

async fn export(
    app: &TestApp,
    user: &str,
    conversation: impl std::fmt::Display,
    query: &str,
) -> Answer {
    app.send_request(app.request(
        Method::GET,
        &format!("/api/conversations/{conversation}/export{query}"),
        Some(user),
    ))
    .await
}

async fn import(
    app: &TestApp,
    user: &str,
    project: impl std::fmt::Display,
    bytes: Vec<u8>,
) -> Answer {
    let part = reqwest::multipart::Part::bytes(bytes)
        .file_name("conversations.json")
        .mime_str("application/json")
        .expect("a valid MIME type");
    let form = reqwest::multipart::Form::new().part("file", part);
    app.send_request(
        app.request(
            Method::POST,
            &format!("/api/projects/{project}/import"),
            Some(user),
        )
        .multipart(form),
    )
    .await
}

fn whys(report: &api::ImportReport) -> Vec<&str> {
    report.skipped.iter().map(|s| s.why.as_str()).collect()
}

/// The document with every id replaced by its order of first appearance and every date
/// left out: two exports of the same content compare equal.
fn normalized(mut doc: Value) -> Value {
    fn walk(value: &mut Value, ids: &mut HashMap<String, usize>) {
        match value {
            Value::Object(map) => {
                for (key, v) in map.iter_mut() {
                    let is_id = key == "id" || key.ends_with("_id");
                    let is_date = key.ends_with("_at");
                    if is_date {
                        *v = Value::Null;
                    } else if is_id && let Value::String(s) = v {
                        let n = ids.len();
                        let label = *ids.entry(s.clone()).or_insert(n);
                        *v = json!(format!("id#{label}"));
                    } else {
                        walk(v, ids);
                    }
                }
            }
            Value::Array(items) => items.iter_mut().for_each(|v| walk(v, ids)),
            _ => {}
        }
    }
    walk(&mut doc, &mut HashMap::new());
    doc
}

/// A conversation of `user` with two branches (the first question edited), a unicode
/// follow-up on the shown one, and two prompt versions in its project.
async fn branched(app: &TestApp, user: &str) -> (api::Project, api::Conversation) {
    let project: api::Project = app
        .create_project(user, &json!({"name": "Bot", "description": "Answers"}))
        .await
        .ok(201);
    app.new_prompt(user, project.id, "Be brief.", true).await;
    app.new_prompt(user, project.id, "Be kind.", false).await;
    let chat = app.new_conversation(user, project.id).await;
    app.send(user, chat.id, "first question").await;
    app.send_body(
        user,
        chat.id,
        &json!({"content": "edited question", "parent_id": null}),
    )
    .await;
    app.send(user, chat.id, "follow-up: grüße, 你好, 👋").await;
    (project, chat)
}

#[tokio::test]
async fn a_conversation_exports_as_json_with_every_branch_and_as_markdown_with_the_shown_one() {
    let app = spawn_app().await;
    let (project, chat) = branched(&app, ALICE).await;
    let file = app.new_file(ALICE, project.id, "notes.txt").await;
    app.send_body(
        ALICE,
        chat.id,
        &json!({"content": "see the file", "file_ids": [file.id]}),
    )
    .await;
    app.patch_conversation(ALICE, chat.id, &json!({"title": "Ünïcode / plan"}))
        .await
        .assert_status(200);

    let answer = export(&app, ALICE, chat.id, "").await;
    answer.assert_status(200);
    assert!(
        answer
            .header("content-type")
            .unwrap_or_default()
            .starts_with("application/json")
    );
    let disposition = answer
        .header("content-disposition")
        .unwrap_or_default()
        .to_owned();
    assert!(disposition.starts_with("attachment;"), "{disposition}");
    assert!(
        disposition.contains("filename*=UTF-8''%C3%9Cn%C3%AFcode%20-%20plan.json"),
        "{disposition}"
    );
    assert!(!disposition.contains('/'), "{disposition}");
    let doc: api::ExportDocument = answer.json();
    assert_eq!(doc.confab_export, 1);
    assert_eq!(doc.projects.len(), 1);
    assert_eq!(doc.projects[0].name, "Bot");
    let versions: Vec<(i32, &str, bool)> = doc
        .prompts
        .iter()
        .map(|p| (p.version, p.content.as_str(), p.is_active))
        .collect();
    assert_eq!(versions, [(1, "Be brief.", true), (2, "Be kind.", false)]);
    let c = &doc.conversations[0];
    assert_eq!(c.id, chat.id);
    // Both branches: 4 turns of a question and a reply.
    assert_eq!(c.messages.len(), 8);
    let contents: Vec<&str> = c.messages.iter().map(|m| m.content.as_str()).collect();
    assert!(contents.contains(&"first question"));
    assert!(contents.contains(&"edited question"));
    assert_eq!(c.leaf_id, c.messages.last().map(|m| m.id));
    for m in &c.messages {
        if m.role == api::Role::Assistant {
            assert!(m.model.is_some() && m.usage.is_some(), "{m:?}");
        }
    }
    let with_file = c
        .messages
        .iter()
        .find(|m| m.content == "see the file")
        .expect("the message with the file");
    assert_eq!(with_file.files[0].filename, "notes.txt");
    assert_eq!(doc.files.len(), 1);
    assert_eq!(doc.files[0].id, file.id);

    let markdown = export(&app, ALICE, chat.id, "?format=markdown").await;
    markdown.assert_status(200);
    assert!(
        markdown
            .header("content-type")
            .unwrap_or_default()
            .starts_with("text/markdown")
    );
    assert!(
        markdown
            .header("content-disposition")
            .unwrap_or_default()
            .contains(".md")
    );
    let text = markdown.text();
    assert!(text.starts_with("# Ünïcode / plan\n"), "{text}");
    assert!(text.contains("## User"), "{text}");
    assert!(
        text.contains("## Assistant ("),
        "a reply's heading names its model: {text}"
    );
    assert!(text.contains("edited question"), "{text}");
    assert!(text.contains("grüße, 你好, 👋"), "{text}");
    assert!(text.contains("> Attached: notes.txt"), "{text}");
    assert!(
        !text.contains("first question"),
        "only the shown branch: {text}"
    );

    export(&app, ALICE, chat.id, "?format=xml")
        .await
        .problem(400, "bad_request");
    export(&app, BOB, chat.id, "")
        .await
        .problem(404, "not_found");
    export(&app, BOB, chat.id, "?format=markdown")
        .await
        .problem(404, "not_found");
}

#[tokio::test]
async fn a_confab_export_round_trips_through_an_empty_account() {
    let app = spawn_app().await;
    let (_, chat) = branched(&app, ALICE).await;
    let first = export(&app, ALICE, chat.id, "").await;
    first.assert_status(200);

    let project: api::Project = app
        .create_project(CAROL, &json!({"name": "Bot", "description": "Answers"}))
        .await
        .ok(201);
    let report: api::ImportReport = import(&app, CAROL, project.id, first.body.to_vec())
        .await
        .ok(200);
    assert_eq!(report.format, "confab");
    assert_eq!(report.imported.conversations, 1);
    assert_eq!(report.imported.messages, 6);
    assert_eq!(report.imported.prompts, 2);
    assert!(report.skipped.is_empty(), "{report:?}");

    let listed: api::Page<api::Conversation> =
        app.list_conversations(CAROL, project.id, "").await.ok(200);
    assert_eq!(listed.items.len(), 1);
    let second = export(&app, CAROL, listed.items[0].id, "").await;
    second.assert_status(200);
    assert_eq!(
        normalized(second.value()),
        normalized(first.value()),
        "the same JSON apart from ids and dates"
    );

    // Again: nothing added.
    let again: api::ImportReport = import(&app, CAROL, project.id, first.body.to_vec())
        .await
        .ok(200);
    assert_eq!(again.imported, api::ImportCounts::default());
    assert!(whys(&again).contains(&"already imported"), "{again:?}");
    assert!(
        whys(&again)
            .iter()
            .any(|w| w.contains("has prompts already")),
        "{again:?}"
    );
    let listed: api::Page<api::Conversation> =
        app.list_conversations(CAROL, project.id, "").await.ok(200);
    assert_eq!(listed.items.len(), 1);
}

fn node(id: &str, parent: Option<&str>, children: &[&str], message: Value) -> (String, Value) {
    (
        id.to_owned(),
        json!({"id": id, "parent": parent, "children": children, "message": message}),
    )
}

fn message(id: &str, role: &str, t: f64, content: Value) -> Value {
    json!({
        "id": id, "author": {"role": role, "name": null, "metadata": {}},
        "create_time": t, "update_time": null, "content": content,
        "status": "finished_successfully", "end_turn": true, "weight": 1.0,
        "metadata": {"model_slug": "gpt-4o", "is_visually_hidden_from_conversation": role == "system"},
        "recipient": "all"
    })
}

fn text(parts: &[&str]) -> Value {
    json!({"content_type": "text", "parts": parts})
}

/// ChatGPT's `conversations.json` as its data export writes it: a tree with an edited
/// question (two branches), a hidden system message, a code call and its tool output, an
/// image with text, an image alone; a conversation with no text; and a CJK one.
fn chatgpt_export() -> Vec<u8> {
    let t = 1_700_000_000.5;
    let mapping: serde_json::Map<String, Value> = [
        node("root", None, &["sys"], Value::Null),
        node("sys", Some("root"), &["u1", "u2"], message("sys", "system", t, text(&[""]))),
        node("u1", Some("sys"), &["a1"], message("u1", "user", t + 1.0, text(&["Hello 👋, ünïcode?"]))),
        node("a1", Some("u1"), &[], message("a1", "assistant", t + 2.0, text(&["Hi there!"]))),
        node("u2", Some("sys"), &["a2"], message("u2", "user", t + 3.0, text(&["Hello again"]))),
        node("a2", Some("u2"), &["u3"], message("a2", "assistant", t + 4.0, text(&["Hi again!"]))),
        node("u3", Some("a2"), &["c1"], message("u3", "user", t + 5.0, text(&["Compute 2+2"]))),
        node("c1", Some("u3"), &["tool"], message("c1", "assistant", t + 6.0,
            json!({"content_type": "code", "language": "python", "text": "print(2+2)"}))),
        node("tool", Some("c1"), &["a3"], message("tool", "tool", t + 7.0,
            json!({"content_type": "execution_output", "text": "4"}))),
        node("a3", Some("tool"), &["u4"], message("a3", "assistant", t + 8.0, text(&["It is 4."]))),
        node("u4", Some("a3"), &["u5"], message("u4", "user", t + 9.0, json!({
            "content_type": "multimodal_text",
            "parts": [{"content_type": "image_asset_pointer", "asset_pointer": "file-service://x"}, "What is this?"]}))),
        node("u5", Some("u4"), &[], message("u5", "user", t + 10.0, json!({
            "content_type": "multimodal_text",
            "parts": [{"content_type": "image_asset_pointer", "asset_pointer": "file-service://y"}]}))),
    ]
    .into_iter()
    .collect();
    let conversations = json!([
        {"title": "Greetings", "create_time": t, "update_time": t + 10.0, "mapping": mapping,
         "current_node": "u5", "conversation_id": "conv-1", "id": "conv-1",
         "moderation_results": [], "plugin_ids": null, "is_archived": false},
        {"title": "Nothing to see", "create_time": t, "update_time": t, "current_node": "s",
         "mapping": {"s": {"id": "s", "parent": null, "children": [],
            "message": message("s", "system", t, text(&["You are ChatGPT"]))}},
         "conversation_id": "conv-2", "id": "conv-2"},
        {"title": "日本語の会話", "create_time": t, "update_time": t + 1.0, "current_node": "j2",
         "mapping": {
            "j1": {"id": "j1", "parent": null, "children": ["j2"], "message": message("j1", "user", t, text(&["こんにちは"]))},
            "j2": {"id": "j2", "parent": "j1", "children": [], "message": message("j2", "assistant", t + 1.0, text(&["こんにちは！"]))}},
         "conversation_id": "conv-3", "id": "conv-3"}
    ]);
    serde_json::to_vec_pretty(&conversations).expect("JSON")
}

#[tokio::test]
async fn a_chatgpt_export_is_imported_with_its_branches_and_its_skips_counted() {
    let app = spawn_app().await;
    let project = app.new_project(ALICE, "Imported").await;
    let report: api::ImportReport = import(&app, ALICE, project.id, chatgpt_export())
        .await
        .ok(200);
    assert_eq!(report.format, "chatgpt");
    assert_eq!(report.imported.conversations, 2, "{report:?}");
    // u1 a1 u2 a2 u3 c1 a3 u4, and the two of the third conversation.
    assert_eq!(report.imported.messages, 10, "{report:?}");
    let reasons = whys(&report);
    for expected in [
        "system message",
        "tool message",
        "image-only message",
        "1 non-text part(s) left out (image_asset_pointer)",
        "no message with text",
    ] {
        assert!(reasons.contains(&expected), "{expected}: {report:?}");
    }
    assert!(
        report
            .skipped
            .iter()
            .any(|s| s.what == "conversations[0].mapping.u5" && s.why == "image-only message"),
        "{report:?}"
    );

    let listed: api::Page<api::Conversation> =
        app.list_conversations(ALICE, project.id, "").await.ok(200);
    let greetings = listed
        .items
        .iter()
        .find(|c| c.title.as_deref() == Some("Greetings"))
        .expect("the first conversation");
    assert!(
        listed
            .items
            .iter()
            .any(|c| c.title.as_deref() == Some("日本語の会話"))
    );
    // The shown branch is current_node's (u5, left out → its parent u4).
    let shown: api::Page<api::Message> = app.list_messages(ALICE, greetings.id, "").await.ok(200);
    let contents: Vec<&str> = shown.items.iter().map(|m| m.content.as_str()).collect();
    assert_eq!(
        contents,
        [
            "Hello again",
            "Hi again!",
            "Compute 2+2",
            "```python\nprint(2+2)\n```",
            "It is 4.",
            "What is this?"
        ]
    );
    assert_eq!(shown.items[1].model.as_deref(), Some("gpt-4o"));
    assert_eq!(shown.items[0].sibling_ids.as_ref().map(Vec::len), Some(2));
    // Every branch is kept.
    let doc: api::ExportDocument = export(&app, ALICE, greetings.id, "").await.ok(200);
    let all: Vec<&str> = doc.conversations[0]
        .messages
        .iter()
        .map(|m| m.content.as_str())
        .collect();
    assert!(
        all.contains(&"Hello 👋, ünïcode?") && all.contains(&"Hi there!"),
        "{all:?}"
    );

    // The same file again adds nothing.
    let again: api::ImportReport = import(&app, ALICE, project.id, chatgpt_export())
        .await
        .ok(200);
    assert_eq!(again.imported.conversations, 0, "{again:?}");
    assert_eq!(
        again
            .skipped
            .iter()
            .filter(|s| s.why == "already imported")
            .count(),
        2,
        "{again:?}"
    );

    // Another user can neither import into the project nor see what was imported.
    import(&app, BOB, project.id, chatgpt_export())
        .await
        .problem(404, "not_found");
    export(&app, BOB, greetings.id, "")
        .await
        .problem(404, "not_found");
}

#[tokio::test]
async fn a_malformed_import_names_where_it_broke_and_stores_nothing() {
    let app = spawn_app().await;
    let project = app.new_project(ALICE, "Imported").await;
    let mut conversations: Value = serde_json::from_slice(&chatgpt_export()).expect("JSON");
    conversations[1]["mapping"] = json!(["not", "an", "object"]);
    let problem = import(
        &app,
        ALICE,
        project.id,
        serde_json::to_vec(&conversations).expect("JSON"),
    )
    .await
    .problem(422, "validation_failed");
    assert!(
        problem.detail.contains("conversations[1].mapping"),
        "{problem:?}"
    );

    let mut truncated = chatgpt_export();
    truncated.truncate(truncated.len() / 2);
    let problem = import(&app, ALICE, project.id, truncated)
        .await
        .problem(422, "validation_failed");
    assert!(problem.detail.contains("conversations["), "{problem:?}");

    let problem = import(&app, ALICE, project.id, br#"{"confab_export": 2}"#.to_vec())
        .await
        .problem(422, "validation_failed");
    assert!(problem.detail.contains("confab_export"), "{problem:?}");
    import(&app, ALICE, project.id, b"hello".to_vec())
        .await
        .problem(422, "validation_failed");

    // The first conversation was well formed, and still nothing was imported.
    let listed: api::Page<api::Conversation> =
        app.list_conversations(ALICE, project.id, "").await.ok(200);
    assert!(listed.items.is_empty(), "{listed:?}");

    let not_a_form = app
        .send_request(
            app.request(
                Method::POST,
                &format!("/api/projects/{}/import", project.id),
                Some(ALICE),
            )
            .json(&json!([])),
        )
        .await;
    not_a_form.problem(415, "unsupported_media_type");
}

#[tokio::test]
async fn an_import_over_the_limit_is_refused() {
    let app = AppOptions::new()
        .setting("CONFAB_IMPORT_MAX_BYTES", "1000")
        .spawn()
        .await;
    let project = app.new_project(ALICE, "Imported").await;
    import(&app, ALICE, project.id, chatgpt_export())
        .await
        .problem(413, "payload_too_large");
}

#[tokio::test]
async fn the_account_exports_as_a_streamed_zip_of_the_json_and_the_bytes() {
    let app = spawn_app().await;
    let (project, chat) = branched(&app, ALICE).await;
    let other = app.new_project(ALICE, "Second").await;
    let bytes = "a file's bytes: ünïcode\n".repeat(5_000).into_bytes();
    let file: api::FileInfo = app
        .upload_file(
            ALICE,
            other.id,
            "big notes.txt",
            "text/plain",
            bytes.clone(),
        )
        .await
        .ok(201);
    let bob_project = app.new_project(BOB, "Bob's").await;
    let bob_chat = app.new_conversation(BOB, bob_project.id).await;
    app.send(BOB, bob_chat.id, "bob's secret").await;

    let answer = app
        .send_request(app.request(Method::GET, "/api/export", Some(ALICE)))
        .await;
    answer.assert_status(200);
    assert_eq!(answer.header("content-type"), Some("application/zip"));
    assert!(
        answer
            .header("content-disposition")
            .unwrap_or_default()
            .contains("confab-export-")
    );
    let mut archive =
        zip::ZipArchive::new(std::io::Cursor::new(answer.body.to_vec())).expect("a valid zip");
    let mut json = String::new();
    archive
        .by_name("export.json")
        .expect("export.json")
        .read_to_string(&mut json)
        .expect("UTF-8");
    let doc: api::ExportDocument = serde_json::from_str(&json).expect("an ExportDocument");
    assert_eq!(doc.confab_export, 1);
    let mut names: Vec<&str> = doc.projects.iter().map(|p| p.name.as_str()).collect();
    names.sort_unstable();
    assert_eq!(names, ["Bot", "Second"]);
    assert_eq!(doc.prompts.len(), 2);
    assert_eq!(doc.conversations.len(), 1);
    assert_eq!(doc.conversations[0].id, chat.id);
    assert_eq!(doc.conversations[0].project_id, project.id);
    assert_eq!(doc.conversations[0].messages.len(), 6);
    assert_eq!(doc.files.len(), 1);
    assert!(
        !json.contains("bob's secret") && !json.contains("Bob's"),
        "{json}"
    );
    let mut stored = Vec::new();
    archive
        .by_name(&format!("files/{}/big notes.txt", file.id))
        .expect("the file's bytes")
        .read_to_end(&mut stored)
        .expect("readable");
    assert_eq!(stored, bytes);
    assert_eq!(archive.len(), 2);

    // Bob's archive has Bob's conversation only.
    let bobs = app
        .send_request(app.request(Method::GET, "/api/export", Some(BOB)))
        .await;
    let mut archive =
        zip::ZipArchive::new(std::io::Cursor::new(bobs.body.to_vec())).expect("a valid zip");
    let mut json = String::new();
    archive
        .by_name("export.json")
        .expect("export.json")
        .read_to_string(&mut json)
        .expect("UTF-8");
    let doc: api::ExportDocument = serde_json::from_str(&json).expect("an ExportDocument");
    assert_eq!(doc.conversations.len(), 1);
    assert_eq!(doc.conversations[0].id, bob_chat.id);
    assert!(!json.contains("first question"), "{json}");
}
