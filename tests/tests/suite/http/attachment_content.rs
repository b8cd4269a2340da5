//! What the model receives of attached files, end to end: uploaded through the server, sent
//! with `file_ids`, recorded by the fake provider behind the real OpenAI adapters.

use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use confab_core::ports::LlmStream;
use confab_openai::{ChatCompletionsLlm, OpenAiConfig, ResponsesLlm};
use confab_tests::fake_provider::{FakeConfig, FakeProvider};
use confab_tests::http::{ALICE, TestApp, spawn_app_with};
use secrecy::SecretString;
use serde_json::{Value, json};

async fn fake() -> FakeProvider {
    FakeProvider::start(FakeConfig::replying(&["Read."]))
        .await
        .expect("the fake provider starts")
}

fn config(provider: &FakeProvider) -> OpenAiConfig {
    OpenAiConfig::new(SecretString::from("sk-e2e-secret".to_owned()))
        .with_base_url(provider.base_url())
        .with_model("fake-model")
}

/// A PDF header and some bytes (its text cannot be read: sent as a file, or named).
fn pdf_bytes() -> Vec<u8> {
    let mut bytes = b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n".to_vec();
    bytes.extend((0..=255u8).cycle().take(3_000));
    bytes
}

/// A PNG signature and some bytes.
fn png_bytes() -> Vec<u8> {
    let mut bytes = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR".to_vec();
    bytes.extend((0..=255u8).rev().cycle().take(1_000));
    bytes
}

/// Uploads the file and waits for its text to be read; returns its id.
async fn upload(
    app: &TestApp,
    project: uuid::Uuid,
    name: &str,
    ty: &str,
    bytes: Vec<u8>,
) -> uuid::Uuid {
    let file: confab_api_types::FileInfo = app
        .upload_file(ALICE, project, name, ty, bytes)
        .await
        .ok(201);
    app.text_read(ALICE, file.id).await.id
}

/// Sends `content` with the files and returns the user message's content as the provider
/// received it (the last message of `input` or `messages`).
async fn sent_with_files(
    llm: Arc<dyn LlmStream>,
    provider: &FakeProvider,
    settings: &[(&str, &str)],
    files: &[(&str, &str, Vec<u8>)],
) -> Value {
    let app = spawn_app_with(llm, settings).await;
    let project = app.new_project(ALICE, "Files").await;
    let conversation = app.new_conversation(ALICE, project.id).await;
    let mut ids = Vec::new();
    for (name, ty, bytes) in files {
        ids.push(upload(&app, project.id, name, ty, bytes.clone()).await);
    }
    let reply = app
        .send_body(
            ALICE,
            conversation.id,
            &json!({"content": "Read these.", "file_ids": ids}),
        )
        .await;
    assert_eq!(reply.done().content, "Read.");
    let requests = provider.requests();
    assert_eq!(requests.len(), 1);
    let body = &requests[0].body;
    let messages = body
        .get("input")
        .or_else(|| body.get("messages"))
        .and_then(Value::as_array)
        .expect("a list of messages");
    messages.last().expect("the user message")["content"].clone()
}

#[tokio::test]
async fn the_responses_adapter_sends_the_pdf_and_image_bytes_and_quotes_other_documents() {
    let provider = fake().await;
    let llm = Arc::new(ResponsesLlm::new(config(&provider)).expect("an adapter"));
    let content = sent_with_files(
        llm,
        &provider,
        &[],
        &[
            ("report.pdf", "application/pdf", pdf_bytes()),
            ("photo.png", "image/png", png_bytes()),
            (
                "notes.txt",
                "text/plain",
                b"first line\nsecond line\n".to_vec(),
            ),
        ],
    )
    .await;
    assert_eq!(
        content,
        json!([
            {"type": "input_text", "text": "Read these."},
            {"type": "input_file", "filename": "report.pdf",
             "file_data": format!("data:application/pdf;base64,{}", STANDARD.encode(pdf_bytes()))},
            {"type": "input_image",
             "image_url": format!("data:image/png;base64,{}", STANDARD.encode(png_bytes()))},
            {"type": "input_text", "text": "From notes.txt:\n> first line\n> second line"},
        ])
    );
}

#[tokio::test]
async fn chat_completions_inline_the_text_and_name_images_without_vision() {
    let provider = fake().await;
    let llm = Arc::new(ChatCompletionsLlm::new(config(&provider)).expect("an adapter"));
    let content = sent_with_files(
        llm,
        &provider,
        &[],
        &[
            (
                "notes.txt",
                "text/plain",
                b"first line\nsecond line\n".to_vec(),
            ),
            ("photo.png", "image/png", png_bytes()),
        ],
    )
    .await;
    let size = png_bytes().len();
    assert_eq!(
        content,
        json!(format!(
            "Read these.\n\nFrom notes.txt:\n> first line\n> second line\n\n\
             [Attached file photo.png (image/png, {size} bytes): its content is not sent]"
        ))
    );
}

#[tokio::test]
async fn chat_completions_send_images_as_image_url_parts_with_vision() {
    let provider = fake().await;
    let llm = Arc::new(
        ChatCompletionsLlm::new(config(&provider))
            .expect("an adapter")
            .with_vision(true),
    );
    let content = sent_with_files(
        llm,
        &provider,
        &[],
        &[
            ("notes.txt", "text/plain", b"first line\n".to_vec()),
            ("photo.png", "image/png", png_bytes()),
        ],
    )
    .await;
    assert_eq!(
        content,
        json!([
            {"type": "text", "text": "Read these.\n\nFrom notes.txt:\n> first line"},
            {"type": "image_url", "image_url":
                {"url": format!("data:image/png;base64,{}", STANDARD.encode(png_bytes()))}},
        ])
    );
}

#[tokio::test]
async fn a_text_longer_than_the_context_budget_is_cut_with_a_note_and_the_message_is_kept() {
    let provider = fake().await;
    let llm = Arc::new(ChatCompletionsLlm::new(config(&provider)).expect("an adapter"));
    let long = "word ".repeat(2_000);
    let content = sent_with_files(
        llm,
        &provider,
        &[("CONFAB_CONTEXT_TOKENS", "1000")],
        &[("long.txt", "text/plain", long.clone().into_bytes())],
    )
    .await;
    let text = content.as_str().expect("inlined text");
    assert!(
        text.starts_with("Read these.\n\nFrom long.txt:\n> word word"),
        "{text}"
    );
    let (kept, note) = text.rsplit_once("\n> ").expect("the note is a quoted line");
    let kept_words = kept.matches("word").count();
    assert!(
        kept_words > 100 && kept_words < 500,
        "{kept_words} words kept"
    );
    let cut: usize = note
        .strip_prefix("[… cut: ")
        .and_then(|n| n.strip_suffix(" characters not sent]"))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no cut note: {note:?}"));
    // The extracted text may be trimmed: what was kept and what was cut make up the text.
    assert!(cut > 7_000 && cut < long.len(), "{cut} characters cut");
}
