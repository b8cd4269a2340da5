//! End to end through the server with the real OpenAI adapters pointed at the fake provider.

use std::sync::Arc;

use confab_api_types as api;
use confab_core::ports::LlmStream;
use confab_openai::{ChatCompletionsLlm, OpenAiConfig, ResponsesLlm};
use confab_tests::fake_provider::{FakeConfig, FakeProvider, FakeUsage, Fault};
use confab_tests::http::spawn_app_with;
use secrecy::SecretString;

fn config(provider: &FakeProvider) -> OpenAiConfig {
    OpenAiConfig::new(SecretString::from("sk-e2e-secret".to_owned()))
        .with_base_url(provider.base_url())
        .with_model("fake-model")
}

async fn chat_through(llm: Arc<dyn LlmStream>) -> (confab_tests::http::TestApp, uuid::Uuid) {
    let app = spawn_app_with(llm, &[]).await;
    let project = app.new_project("alice", "Bot").await;
    app.new_prompt("alice", project.id, "Answer in haiku.", true)
        .await;
    let conversation = app.new_conversation("alice", project.id).await;
    (app, conversation.id)
}

#[tokio::test]
async fn a_chat_through_the_responses_adapter_streams_every_delta_and_stores_model_and_usage() {
    let deltas = ["Old ", "pond, ", "a ", "frog ", "jumps."];
    let provider = FakeProvider::start(FakeConfig::replying(&deltas).with_usage(Some(FakeUsage {
        input_tokens: 31,
        output_tokens: 5,
        cached_tokens: 0,
        reasoning_tokens: 0,
    })))
    .await
    .expect("the fake provider starts");
    let llm = Arc::new(ResponsesLlm::new(config(&provider)).expect("an adapter"));
    let (app, conversation) = chat_through(llm).await;

    let reply = app.send("alice", conversation, "Write about a frog").await;
    let deltas_seen: Vec<String> = reply
        .frames
        .iter()
        .filter(|f| f.event == "delta")
        .map(|f| f.json::<api::Delta>().text)
        .collect();
    assert_eq!(deltas_seen, deltas);
    let done = reply.done();
    assert_eq!(done.content, deltas.concat());
    assert_eq!(done.model.as_deref(), Some("fake-model"));
    assert_eq!(
        done.usage.map(|u| (u.input_tokens, u.output_tokens)),
        Some((31, 5))
    );

    let stored = app.stored_messages("alice", conversation).await;
    assert_eq!(stored[1].content, deltas.concat());
    assert_eq!(stored[1].usage.map(|u| u.output_tokens), Some(5));

    let requests = provider.requests();
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].path, "/v1/responses");
    assert_eq!(requests[0].body["instructions"], "Answer in haiku.");
    assert_eq!(requests[0].body["stream"], true);
    assert_eq!(
        requests[0].header("authorization"),
        Some("Bearer sk-e2e-secret")
    );
}

#[tokio::test]
async fn a_provider_failing_after_two_deltas_ends_the_stream_with_an_error_and_stores_their_text() {
    let provider = FakeProvider::start(
        FakeConfig::replying(&["One ", "two ", "three ", "four"])
            .with_fault(Fault::failed_after(2)),
    )
    .await
    .expect("the fake provider starts");
    let llm = Arc::new(ResponsesLlm::new(config(&provider)).expect("an adapter"));
    let (app, conversation) = chat_through(llm).await;

    let reply = app.send("alice", conversation, "Count").await;
    let last = reply.last();
    assert_eq!(last.event, "error", "{:?}", reply.names());
    let error: api::StreamError = last.json();
    assert_eq!(error.code, "upstream_error");
    assert!(!error.detail.is_empty());
    assert!(!error.detail.contains("sk-e2e-secret"));
    assert_eq!(reply.text(), "One two ");

    let stored = app.stored_messages("alice", conversation).await;
    assert_eq!(stored[0].content, "Count");
    assert_eq!(stored[1].status, confab_core::MessageStatus::Failed);
    assert_eq!(stored[1].content, "One two ");
}

#[tokio::test]
async fn a_chat_through_the_chat_completions_adapter_stores_null_usage_when_none_is_reported() {
    let provider = FakeProvider::start(FakeConfig::replying(&["Hi ", "there"]).with_usage(None))
        .await
        .expect("the fake provider starts");
    let llm = Arc::new(ChatCompletionsLlm::new(config(&provider)).expect("an adapter"));
    let (app, conversation) = chat_through(llm).await;

    let reply = app.send("alice", conversation, "Hello").await;
    let done = reply.done();
    assert_eq!(done.content, "Hi there");
    assert_eq!(done.usage, None);
    let requests = provider.requests();
    assert_eq!(requests[0].path, "/v1/chat/completions");
    assert_eq!(requests[0].body["messages"][0]["role"], "system");
    assert_eq!(
        requests[0].body["messages"][0]["content"],
        "Answer in haiku."
    );
}

#[tokio::test]
async fn openai_http2_prior_knowledge_in_the_settings_makes_the_composed_adapter_speak_h2c() {
    use confab_core::model::Role;
    use confab_core::ports::{LlmEvent, LlmMessage, LlmRequest};
    use confab_server::config::Sources;
    use confab_tests::fake_provider::Protocol;
    use futures::StreamExt;

    let provider = FakeProvider::start(FakeConfig::replying(&["over ", "h2c"]))
        .await
        .expect("the fake provider starts");
    let base_url = provider.base_url();
    for (flag, protocol) in [("0", Protocol::Http1), ("1", Protocol::Http2)] {
        let settings = confab_server::Settings::from_sources(&Sources::from_pairs([
            ("CONFAB_LLM", "openai"),
            ("OPENAI_API_KEY", "sk-e2e-secret"),
            ("OPENAI_BASE_URL", base_url.as_str()),
            ("CONFAB_LLM_HTTP2_PRIOR_KNOWLEDGE", flag),
            ("CONFAB_MODEL", "fake-model"),
            ("DATABASE_URL", "memory:"),
            ("CONFAB_FILES_URL", "memory:"),
        ]))
        .expect("valid settings");
        let adapters = confab_server::compose::adapters(&settings)
            .await
            .expect("the adapters compose");
        let mut stream = adapters.llm.stream(LlmRequest {
            model: "fake-model".to_owned(),
            instructions: None,
            messages: vec![LlmMessage {
                role: Role::User,
                content: "hello".to_owned(),
            }],
            max_output_tokens: None,
            attachments: Vec::new(),
            sources: Vec::new(),
        });
        let mut text = String::new();
        while let Some(event) = stream.next().await {
            match event.expect("no provider error") {
                LlmEvent::Delta(piece) => text.push_str(&piece),
                LlmEvent::Completed(_) => break,
            }
        }
        assert_eq!(text, "over h2c");
        let last = provider.requests().pop().expect("a request");
        assert_eq!(
            last.protocol, protocol,
            "CONFAB_LLM_HTTP2_PRIOR_KNOWLEDGE={flag}"
        );
    }
}
