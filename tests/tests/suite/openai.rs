//! The LLM adapters: the `LlmStream` contract against every model, then the two HTTP
//! adapters against the fake provider — the requests they send, how they read both wire
//! formats, retries, timeouts, broken streams, and that the API key never leaks.

use std::sync::Arc;
use std::time::{Duration, Instant};

use confab_core::LlmError;
use confab_core::model::{Role, Usage};
use confab_core::ports::{Completion, Incomplete, LlmEvent, LlmMessage, LlmRequest, LlmStream};
use confab_memory::{EchoLlm, ScriptedLlm};
use confab_openai::{ChatCompletionsLlm, ConfigError, OpenAiConfig, ProviderConfig, ResponsesLlm};
use confab_tests::contract::{LlmSubject, llm_stream_contract};
use confab_tests::fake_provider::{FakeConfig, FakeProvider, FakeUsage, Fault, Finish, Protocol};
use futures::StreamExt;
use secrecy::SecretString;
use serde_json::json;

const KEY: &str = "sk-test-Zq8v2-never-to-be-shown";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Api {
    Responses,
    Chat,
}

const BOTH: [Api; 2] = [Api::Responses, Api::Chat];

/// Short timeouts and backoffs, so that fault tests are quick.
fn quick() -> ProviderConfig {
    ProviderConfig {
        connect_timeout: Duration::from_secs(2),
        first_byte_timeout: Duration::from_secs(5),
        idle_timeout: Duration::from_secs(5),
        max_retries: 2,
        initial_backoff: Duration::from_millis(10),
        max_backoff: Duration::from_millis(40),
        http2_prior_knowledge: false,
    }
}

fn config_for(fake: &FakeProvider, provider: ProviderConfig) -> OpenAiConfig {
    OpenAiConfig::new(SecretString::from(KEY))
        .with_base_url(fake.base_url())
        .with_model("gpt-test-mini")
        .with_provider(provider)
}

fn adapter_with(api: Api, config: OpenAiConfig) -> Arc<dyn LlmStream> {
    match api {
        Api::Responses => Arc::new(ResponsesLlm::new(config).unwrap()),
        Api::Chat => Arc::new(ChatCompletionsLlm::new(config).unwrap()),
    }
}

fn adapter(api: Api, fake: &FakeProvider) -> Arc<dyn LlmStream> {
    adapter_with(api, config_for(fake, quick()))
}

async fn start_fake(config: FakeConfig) -> FakeProvider {
    FakeProvider::start(config).await.unwrap()
}

fn request() -> LlmRequest {
    LlmRequest {
        model: "gpt-test-mini".to_owned(),
        instructions: Some("You are terse.".to_owned()),
        messages: vec![
            LlmMessage {
                role: Role::User,
                content: "first question".to_owned(),
            },
            LlmMessage {
                role: Role::Assistant,
                content: "first answer".to_owned(),
            },
            LlmMessage {
                role: Role::User,
                content: "second question".to_owned(),
            },
        ],
        max_output_tokens: Some(256),
        attachments: Vec::new(),
        sources: Vec::new(),
    }
}

/// A reply read to its end: the deltas, then how it ended.
#[derive(Debug)]
struct Outcome {
    deltas: Vec<String>,
    end: Result<Completion, LlmError>,
}

impl Outcome {
    fn completion(&self) -> &Completion {
        self.end
            .as_ref()
            .unwrap_or_else(|e| panic!("the reply failed: {e:?}"))
    }

    fn error(&self) -> &LlmError {
        match &self.end {
            Err(e) => e,
            Ok(c) => panic!("the reply completed: {c:?} after {:?}", self.deltas),
        }
    }
}

/// Reads a reply, checking that nothing follows its terminal event.
async fn read(llm: &Arc<dyn LlmStream>, request: LlmRequest) -> Outcome {
    let mut stream = llm.stream(request);
    let mut deltas = Vec::new();
    let end = tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            match stream.next().await {
                Some(Ok(LlmEvent::Delta(text))) => deltas.push(text),
                Some(Ok(LlmEvent::Completed(c))) => break Ok(c),
                Some(Err(e)) => break Err(e),
                None => panic!("the stream ended without a terminal event after {deltas:?}"),
            }
        }
    })
    .await
    .expect("the reply did not end within 20 s");
    assert!(
        stream.next().await.is_none(),
        "something followed the terminal event"
    );
    Outcome { deltas, end }
}

// ---- the contract ---------------------------------------------------------------------

async fn fake_subject(api: Api, deltas: &'static [&'static str]) -> LlmSubject {
    let fake = start_fake(FakeConfig::replying(deltas)).await;
    LlmSubject::scripted(adapter(api, &fake)).keeping(fake)
}

#[tokio::test]
async fn the_responses_adapter_keeps_the_llm_stream_contract() {
    llm_stream_contract(|deltas| fake_subject(Api::Responses, deltas)).await;
}

#[tokio::test]
async fn the_chat_completions_adapter_keeps_the_llm_stream_contract() {
    llm_stream_contract(|deltas| fake_subject(Api::Chat, deltas)).await;
}

#[tokio::test]
async fn the_echo_model_keeps_the_llm_stream_contract() {
    llm_stream_contract(|_| async { LlmSubject::free(Arc::new(EchoLlm::new(Duration::ZERO))) })
        .await;
}

#[tokio::test]
async fn the_scripted_model_keeps_the_llm_stream_contract() {
    llm_stream_contract(|deltas| async move {
        LlmSubject::scripted(Arc::new(ScriptedLlm::replying(deltas)))
    })
    .await;
}

/// A model that breaks the contract: it keeps talking after `Completed`.
struct Chatterbox;

impl LlmStream for Chatterbox {
    fn provider(&self) -> &str {
        "chatterbox"
    }

    fn default_model(&self) -> &str {
        "chatter-1"
    }

    fn stream(&self, _: LlmRequest) -> confab_core::ports::LlmEventStream {
        Box::pin(futures::stream::iter([
            Ok(LlmEvent::Delta("Hello".to_owned())),
            Ok(LlmEvent::Completed(Completion::default())),
            Ok(LlmEvent::Delta("one more thing".to_owned())),
        ]))
    }
}

#[tokio::test]
#[should_panic(expected = "LlmStream contract")]
async fn the_contract_fails_a_model_that_speaks_after_completed() {
    llm_stream_contract(|_| async { LlmSubject::free(Arc::new(Chatterbox)) }).await;
}

// ---- names and configuration ----------------------------------------------------------

#[tokio::test]
async fn the_adapters_name_their_provider_and_default_model() {
    let fake = start_fake(FakeConfig::default()).await;
    let responses = adapter(Api::Responses, &fake);
    let chat = adapter(Api::Chat, &fake);
    assert_eq!(responses.provider(), "openai");
    assert_eq!(chat.provider(), "openai-compatible");
    assert_eq!(responses.default_model(), "gpt-test-mini");
    let default = ResponsesLlm::new(OpenAiConfig::new(SecretString::from(KEY))).unwrap();
    assert_eq!(default.default_model(), "gpt-4.1-mini");
    assert_eq!(default.url(), "https://api.openai.com/v1/responses");
}

#[test]
fn invalid_configurations_are_refused() {
    let bad_url = OpenAiConfig::new(SecretString::from(KEY)).with_base_url("api.openai.com");
    assert!(matches!(
        ResponsesLlm::new(bad_url.clone()),
        Err(ConfigError::InvalidBaseUrl { .. })
    ));
    assert!(matches!(
        ChatCompletionsLlm::new(bad_url),
        Err(ConfigError::InvalidBaseUrl { .. })
    ));
    let no_model = OpenAiConfig::new(SecretString::from(KEY)).with_model("");
    assert!(matches!(
        ResponsesLlm::new(no_model),
        Err(ConfigError::MissingModel)
    ));
}

// ---- what is sent ---------------------------------------------------------------------

#[tokio::test]
async fn the_responses_request_streams_unstored_with_instructions_history_in_order_and_limit() {
    let fake = start_fake(FakeConfig::default()).await;
    read(&adapter(Api::Responses, &fake), request())
        .await
        .completion();
    let requests = fake.requests();
    assert_eq!(requests.len(), 1);
    let sent = &requests[0];
    assert_eq!(sent.method, "POST");
    assert_eq!(sent.path, "/v1/responses");
    assert_eq!(
        sent.header("authorization"),
        Some(format!("Bearer {KEY}").as_str())
    );
    assert!(
        sent.header("content-type")
            .unwrap()
            .starts_with("application/json")
    );
    assert_eq!(sent.header("accept"), Some("text/event-stream"));
    assert_eq!(
        sent.body,
        json!({
            "model": "gpt-test-mini",
            "instructions": "You are terse.",
            "input": [
                {"role": "user", "content": "first question"},
                {"role": "assistant", "content": "first answer"},
                {"role": "user", "content": "second question"},
            ],
            "stream": true,
            "store": false,
            "max_output_tokens": 256,
        })
    );
}

#[tokio::test]
async fn absent_instructions_and_limit_are_left_out_of_the_responses_request() {
    let fake = start_fake(FakeConfig::default()).await;
    let mut r = request();
    r.instructions = None;
    r.max_output_tokens = None;
    read(&adapter(Api::Responses, &fake), r).await.completion();
    let body = &fake.requests()[0].body;
    assert!(body.get("instructions").is_none(), "{body}");
    assert!(body.get("max_output_tokens").is_none(), "{body}");
    assert_eq!(body["input"].as_array().unwrap().len(), 3);
}

#[tokio::test]
async fn the_chat_request_sends_instructions_as_a_first_system_message_and_asks_for_usage() {
    let fake = start_fake(FakeConfig::default()).await;
    read(&adapter(Api::Chat, &fake), request())
        .await
        .completion();
    let sent = &fake.requests()[0];
    assert_eq!(sent.method, "POST");
    assert_eq!(sent.path, "/v1/chat/completions");
    assert_eq!(
        sent.header("authorization"),
        Some(format!("Bearer {KEY}").as_str())
    );
    assert_eq!(
        sent.body,
        json!({
            "model": "gpt-test-mini",
            "messages": [
                {"role": "system", "content": "You are terse."},
                {"role": "user", "content": "first question"},
                {"role": "assistant", "content": "first answer"},
                {"role": "user", "content": "second question"},
            ],
            "stream": true,
            "stream_options": {"include_usage": true},
            "max_tokens": 256,
        })
    );
}

#[tokio::test]
async fn without_instructions_the_chat_request_has_no_system_message() {
    let fake = start_fake(FakeConfig::default()).await;
    let mut r = request();
    r.instructions = None;
    read(&adapter(Api::Chat, &fake), r).await.completion();
    let messages = fake.requests()[0].body["messages"].clone();
    assert_eq!(
        messages[0],
        json!({"role": "user", "content": "first question"})
    );
    assert_eq!(messages.as_array().unwrap().len(), 3);
}

#[tokio::test]
async fn an_empty_api_key_sends_no_authorization_header() {
    let fake = start_fake(FakeConfig::default()).await;
    let mut config = config_for(&fake, quick());
    config.api_key = SecretString::from("");
    read(&adapter_with(Api::Chat, config), request())
        .await
        .completion();
    assert_eq!(fake.requests()[0].header("authorization"), None);
}

#[tokio::test]
async fn the_configured_model_and_limit_fill_in_for_a_request_without_them() {
    let fake = start_fake(FakeConfig::default()).await;
    let mut config = config_for(&fake, quick());
    config.max_output_tokens = Some(99);
    let mut r = request();
    r.model = String::new();
    r.max_output_tokens = None;
    for api in BOTH {
        read(&adapter_with(api, config.clone()), r.clone())
            .await
            .completion();
    }
    let requests = fake.requests();
    assert_eq!(requests[0].body["model"], "gpt-test-mini");
    assert_eq!(requests[0].body["max_output_tokens"], 99);
    assert_eq!(requests[1].body["model"], "gpt-test-mini");
    assert_eq!(requests[1].body["max_tokens"], 99);
}

// ---- how replies are read -------------------------------------------------------------

#[tokio::test]
async fn a_reply_yields_its_deltas_in_order_then_usage_with_cached_and_reasoning_tokens() {
    let usage = FakeUsage {
        input_tokens: 120,
        output_tokens: 7,
        cached_tokens: 64,
        reasoning_tokens: 3,
    };
    let fake =
        start_fake(FakeConfig::replying(&["The ", "answer", " is 42."]).with_usage(Some(usage)))
            .await;
    for api in BOTH {
        let outcome = read(&adapter(api, &fake), request()).await;
        assert_eq!(outcome.deltas, ["The ", "answer", " is 42."], "{api:?}");
        assert_eq!(
            outcome.completion(),
            &Completion {
                usage: Some(Usage {
                    input_tokens: 120,
                    output_tokens: 7
                }),
                cached_tokens: Some(64),
                reasoning_tokens: Some(3),
                model: Some("gpt-test-mini".to_owned()),
                incomplete: None,
            },
            "{api:?}"
        );
    }
}

#[tokio::test]
async fn a_reply_without_usage_reports_none_not_zero() {
    let fake = start_fake(FakeConfig::default().with_usage(None)).await;
    for api in BOTH {
        let outcome = read(&adapter(api, &fake), request()).await;
        assert_eq!(outcome.completion().usage, None, "{api:?}");
        assert_eq!(outcome.deltas.concat(), "Hello, world!");
    }
}

#[tokio::test]
async fn a_reply_cut_short_by_the_token_limit_or_the_content_filter_completes_with_the_reason() {
    for (reason, expected) in [
        ("max_output_tokens", Incomplete::MaxOutputTokens),
        ("content_filter", Incomplete::ContentFilter),
    ] {
        let fake = start_fake(
            FakeConfig::replying(&["Part", "ial"])
                .with_finish(Finish::Incomplete(reason.to_owned())),
        )
        .await;
        for api in BOTH {
            let outcome = read(&adapter(api, &fake), request()).await;
            assert_eq!(outcome.deltas, ["Part", "ial"]);
            assert_eq!(
                outcome.completion().incomplete,
                Some(expected.clone()),
                "{api:?} {reason}"
            );
            assert!(outcome.completion().usage.is_some());
        }
    }
}

#[tokio::test]
async fn a_chat_stream_that_ends_after_its_finish_reason_without_done_completes() {
    let fake = start_fake(FakeConfig::default().without_done_marker()).await;
    let outcome = read(&adapter(Api::Chat, &fake), request()).await;
    assert_eq!(outcome.deltas.concat(), "Hello, world!");
    assert_eq!(outcome.completion().usage.map(|u| u.input_tokens), Some(25));
}

#[tokio::test]
async fn a_slow_first_token_and_pace_within_the_timeouts_are_fine() {
    let fake = start_fake(
        FakeConfig::replying(&["a", "b", "c"])
            .with_time_to_first_token(Duration::from_millis(150))
            .with_pace(Duration::from_millis(50)),
    )
    .await;
    let provider = ProviderConfig {
        first_byte_timeout: Duration::from_millis(800),
        idle_timeout: Duration::from_millis(800),
        ..quick()
    };
    for api in BOTH {
        let outcome = read(
            &adapter_with(api, config_for(&fake, provider.clone())),
            request(),
        )
        .await;
        assert_eq!(outcome.deltas, ["a", "b", "c"], "{api:?}");
    }
}

// ---- retries --------------------------------------------------------------------------

#[tokio::test]
async fn a_500_then_success_is_retried_and_succeeds() {
    for api in BOTH {
        let fake = start_fake(
            FakeConfig::default()
                .with_fault(Fault::status(500))
                .for_first(1),
        )
        .await;
        let outcome = read(&adapter(api, &fake), request()).await;
        assert_eq!(outcome.deltas.concat(), "Hello, world!", "{api:?}");
        assert_eq!(fake.requests().len(), 2, "{api:?}");
        assert_eq!(
            fake.requests()[0].body,
            fake.requests()[1].body,
            "the retry sent another body"
        );
    }
}

#[tokio::test]
async fn every_retryable_status_is_retried() {
    for status in [408, 409, 429, 502, 503, 504] {
        let fake = start_fake(
            FakeConfig::default()
                .with_fault(Fault::status(status))
                .for_first(2),
        )
        .await;
        let outcome = read(&adapter(Api::Responses, &fake), request()).await;
        assert_eq!(outcome.deltas.concat(), "Hello, world!", "{status}");
        assert_eq!(fake.requests().len(), 3, "{status}");
    }
}

#[tokio::test]
async fn a_429_with_retry_after_ms_is_retried_after_that_wait() {
    let fault = Fault::status(429).with_header("retry-after-ms", "400");
    let fake = start_fake(FakeConfig::default().with_fault(fault).for_first(1)).await;
    let outcome = read(&adapter(Api::Responses, &fake), request()).await;
    outcome.completion();
    let requests = fake.requests();
    assert_eq!(requests.len(), 2);
    let waited = requests[1].received_at - requests[0].received_at;
    assert!(
        waited >= Duration::from_millis(400),
        "retried after {waited:?}"
    );
}

#[tokio::test]
async fn a_429_with_retry_after_in_seconds_is_honoured() {
    let fault = Fault::status(429).with_header("retry-after", "1");
    let fake = start_fake(FakeConfig::default().with_fault(fault).for_first(1)).await;
    read(&adapter(Api::Chat, &fake), request())
        .await
        .completion();
    let requests = fake.requests();
    let waited = requests[1].received_at - requests[0].received_at;
    assert!(waited >= Duration::from_secs(1), "retried after {waited:?}");
}

#[tokio::test]
async fn x_should_retry_false_is_not_retried() {
    let fake = start_fake(
        FakeConfig::default().with_fault(Fault::status(500).with_header("x-should-retry", "false")),
    )
    .await;
    let outcome = read(&adapter(Api::Responses, &fake), request()).await;
    assert!(
        matches!(
            outcome.error(),
            LlmError::Upstream {
                status: Some(500),
                ..
            }
        ),
        "{:?}",
        outcome.error()
    );
    assert_eq!(fake.requests().len(), 1);
}

#[tokio::test]
async fn x_should_retry_true_retries_a_status_that_is_otherwise_final() {
    let fault = Fault::status(422).with_header("x-should-retry", "true");
    let fake = start_fake(FakeConfig::default().with_fault(fault).for_first(1)).await;
    read(&adapter(Api::Responses, &fake), request())
        .await
        .completion();
    assert_eq!(fake.requests().len(), 2);
}

#[tokio::test]
async fn a_401_is_not_retried_and_means_the_key_was_rejected() {
    for api in BOTH {
        let fake = start_fake(FakeConfig::default().with_fault(Fault::status(401))).await;
        let outcome = read(&adapter(api, &fake), request()).await;
        assert_eq!(outcome.error(), &LlmError::Unauthorized, "{api:?}");
        assert_eq!(
            outcome.error().to_string(),
            "the provider rejected the API key"
        );
        assert!(outcome.deltas.is_empty());
        assert_eq!(fake.requests().len(), 1, "{api:?}");
    }
}

#[tokio::test]
async fn a_403_is_not_retried_and_is_unauthorized() {
    let fake = start_fake(FakeConfig::default().with_fault(Fault::status(403))).await;
    let outcome = read(&adapter(Api::Responses, &fake), request()).await;
    assert_eq!(outcome.error(), &LlmError::Unauthorized);
    assert_eq!(fake.requests().len(), 1);
}

#[tokio::test]
async fn a_400_or_404_is_not_retried_and_carries_the_providers_code_and_message() {
    for (status, code) in [(400, "invalid_request_error"), (404, "model_not_found")] {
        let fake = start_fake(FakeConfig::default().with_fault(Fault::status(status))).await;
        let outcome = read(&adapter(Api::Responses, &fake), request()).await;
        match outcome.error() {
            LlmError::Upstream {
                status: Some(s),
                code: Some(c),
                message,
            } => {
                assert_eq!((*s, c.as_str()), (status, code));
                assert!(!message.is_empty());
            }
            other => panic!("{status}: {other:?}"),
        }
        assert_eq!(fake.requests().len(), 1, "{status}");
    }
}

#[tokio::test]
async fn insufficient_quota_is_not_retried_even_on_429() {
    for api in BOTH {
        let fake = start_fake(FakeConfig::default().with_fault(Fault::insufficient_quota())).await;
        let outcome = read(&adapter(api, &fake), request()).await;
        match outcome.error() {
            LlmError::Upstream {
                status: Some(429),
                code: Some(code),
                message,
            } => {
                assert_eq!(code, "insufficient_quota");
                assert!(message.contains("quota"), "{message}");
            }
            other => panic!("{api:?}: {other:?}"),
        }
        assert_eq!(fake.requests().len(), 1, "{api:?}");
    }
}

#[tokio::test]
async fn a_429_that_persists_after_the_retries_is_rate_limited() {
    let fault = Fault::status(429).with_header("retry-after-ms", "30");
    let fake = start_fake(FakeConfig::default().with_fault(fault)).await;
    let outcome = read(&adapter(Api::Responses, &fake), request()).await;
    assert_eq!(
        outcome.error(),
        &LlmError::RateLimited {
            retry_after: Some(Duration::from_millis(30))
        }
    );
    assert_eq!(fake.requests().len(), 3, "one try and two retries");
}

#[tokio::test]
async fn a_persistent_500_gives_up_after_the_configured_retries() {
    let fake = start_fake(FakeConfig::default().with_fault(Fault::status(500))).await;
    let outcome = read(&adapter(Api::Chat, &fake), request()).await;
    assert!(matches!(
        outcome.error(),
        LlmError::Upstream {
            status: Some(500),
            ..
        }
    ));
    assert_eq!(fake.requests().len(), 3);

    let once = start_fake(FakeConfig::default().with_fault(Fault::status(500))).await;
    let provider = ProviderConfig {
        max_retries: 0,
        ..quick()
    };
    read(
        &adapter_with(Api::Chat, config_for(&once, provider)),
        request(),
    )
    .await
    .error();
    assert_eq!(once.requests().len(), 1, "max_retries 0 still retried");
}

#[tokio::test]
async fn an_abrupt_disconnect_before_the_answer_is_retried() {
    for api in BOTH {
        let fake = start_fake(
            FakeConfig::default()
                .with_fault(Fault::Disconnect)
                .for_first(1),
        )
        .await;
        let outcome = read(&adapter(api, &fake), request()).await;
        assert_eq!(outcome.deltas.concat(), "Hello, world!", "{api:?}");
        assert_eq!(fake.requests().len(), 2, "{api:?}");
    }
}

#[tokio::test]
async fn a_provider_that_always_disconnects_is_unavailable() {
    let fake = start_fake(FakeConfig::default().with_fault(Fault::Disconnect)).await;
    let outcome = read(&adapter(Api::Responses, &fake), request()).await;
    assert!(
        matches!(outcome.error(), LlmError::Unavailable(_)),
        "{:?}",
        outcome.error()
    );
    assert_eq!(fake.requests().len(), 3);
}

#[tokio::test]
async fn an_unreachable_provider_is_unavailable_after_the_retries() {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let config = OpenAiConfig::new(SecretString::from(KEY))
        .with_base_url(format!("http://127.0.0.1:{port}/v1"))
        .with_provider(quick());
    for api in BOTH {
        let outcome = read(&adapter_with(api, config.clone()), request()).await;
        assert!(
            matches!(outcome.error(), LlmError::Unavailable(_)),
            "{api:?}: {:?}",
            outcome.error()
        );
    }
}

// ---- timeouts -------------------------------------------------------------------------

#[tokio::test]
async fn a_delay_beyond_the_first_byte_timeout_is_a_timeout_and_is_not_retried() {
    let fake =
        start_fake(FakeConfig::default().with_fault(Fault::DelayFirstByte(Duration::from_secs(3))))
            .await;
    let provider = ProviderConfig {
        first_byte_timeout: Duration::from_millis(300),
        ..quick()
    };
    for api in BOTH {
        let started = Instant::now();
        let outcome = read(
            &adapter_with(api, config_for(&fake, provider.clone())),
            request(),
        )
        .await;
        assert!(
            matches!(outcome.error(), LlmError::Timeout(_)),
            "{api:?}: {:?}",
            outcome.error()
        );
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "took {:?}",
            started.elapsed()
        );
    }
    assert_eq!(
        fake.requests().len(),
        2,
        "one request per adapter, no retry"
    );
}

#[tokio::test]
async fn silence_beyond_the_idle_timeout_is_a_timeout_after_the_deltas_so_far() {
    let fake = start_fake(
        FakeConfig::replying(&["one", "two", "three"]).with_pace(Duration::from_secs(3)),
    )
    .await;
    let provider = ProviderConfig {
        idle_timeout: Duration::from_millis(300),
        ..quick()
    };
    for api in BOTH {
        let started = Instant::now();
        let outcome = read(
            &adapter_with(api, config_for(&fake, provider.clone())),
            request(),
        )
        .await;
        assert_eq!(outcome.deltas, ["one"], "{api:?}");
        assert!(
            matches!(outcome.error(), LlmError::Timeout(_)),
            "{api:?}: {:?}",
            outcome.error()
        );
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "took {:?}",
            started.elapsed()
        );
    }
}

#[tokio::test]
async fn a_slow_first_token_beyond_the_idle_timeout_is_a_timeout() {
    let fake =
        start_fake(FakeConfig::default().with_time_to_first_token(Duration::from_secs(3))).await;
    let provider = ProviderConfig {
        idle_timeout: Duration::from_millis(300),
        ..quick()
    };
    let outcome = read(
        &adapter_with(Api::Responses, config_for(&fake, provider)),
        request(),
    )
    .await;
    assert!(outcome.deltas.is_empty());
    assert!(
        matches!(outcome.error(), LlmError::Timeout(_)),
        "{:?}",
        outcome.error()
    );
}

// ---- HTTP/2 ---------------------------------------------------------------------------

fn over_h2c() -> ProviderConfig {
    ProviderConfig {
        http2_prior_knowledge: true,
        ..quick()
    }
}

#[tokio::test]
async fn by_default_replies_stream_over_http_1_1_one_connection_each() {
    for api in BOTH {
        let fake =
            start_fake(FakeConfig::replying(&["a", "b"]).with_pace(Duration::from_millis(20)))
                .await;
        let llm = adapter(api, &fake);
        let outcomes = futures::future::join_all((0..3).map(|_| read(&llm, request()))).await;
        for outcome in &outcomes {
            assert_eq!(outcome.deltas, ["a", "b"], "{api:?}");
        }
        assert!(
            fake.requests()
                .iter()
                .all(|r| r.protocol == Protocol::Http1),
            "{api:?}"
        );
        assert_eq!(fake.connections_accepted(), 3, "{api:?}");
    }
}

/// A runtime for one thread, like an actix worker's.
fn worker_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// One reply on a thread of its own with a runtime of its own, like an actix worker, which
/// then runs a moment longer (the connection goes back to its pool once the body's end is
/// read) and stays, idle, with the thread. `None` when the reply took over 5 s.
fn reply_on_thread(
    llm: &Arc<dyn LlmStream>,
    runtime: &tokio::runtime::Runtime,
) -> Option<Vec<String>> {
    runtime.block_on(async {
        let reply = tokio::time::timeout(Duration::from_secs(5), read(llm, request())).await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        reply.ok().map(|outcome| outcome.deltas)
    })
}

#[tokio::test]
async fn each_thread_streams_over_connections_of_its_own() {
    // A connection's I/O runs on the runtime that opened it: shared between threads, each
    // delta would cross to the opener's thread and back. The first thread's runtime is idle
    // (like a busy worker) while the second streams, over a connection of its own.
    for api in BOTH {
        let fake = start_fake(FakeConfig::replying(&["a", "b"])).await;
        let llm = adapter(api, &fake);
        let (first_done, first_idle) = tokio::sync::oneshot::channel();
        let (go_on, again) = std::sync::mpsc::channel::<()>();
        let first = std::thread::spawn({
            let llm = Arc::clone(&llm);
            move || {
                let runtime = worker_runtime();
                let once = reply_on_thread(&llm, &runtime);
                let _ = first_done.send(once);
                again.recv().unwrap();
                reply_on_thread(&llm, &runtime)
            }
        });
        let once = first_idle.await.unwrap();
        assert_eq!(once.as_deref(), Some(&["a", "b"].map(String::from)[..]));

        let (second_done, second_reply) = tokio::sync::oneshot::channel();
        std::thread::spawn({
            let llm = Arc::clone(&llm);
            move || {
                let runtime = worker_runtime();
                let _ = second_done.send(reply_on_thread(&llm, &runtime));
            }
        });
        let second = second_reply.await.unwrap();
        assert_eq!(second.map(|d| d.concat()).as_deref(), Some("ab"), "{api:?}");
        assert_eq!(
            fake.connections_accepted(),
            2,
            "{api:?}: the second thread opens a connection of its own"
        );

        go_on.send(()).unwrap();
        let first = tokio::task::spawn_blocking(move || first.join().unwrap())
            .await
            .unwrap();
        assert_eq!(first.map(|d| d.concat()).as_deref(), Some("ab"), "{api:?}");
        assert_eq!(
            fake.connections_accepted(),
            2,
            "{api:?}: the first thread's second reply reuses its own connection"
        );
    }
}

#[tokio::test]
async fn a_reply_dropped_at_its_terminal_event_leaves_its_connection_reusable() {
    // As the chat use case does: stop reading at the completion and drop the stream, while the
    // provider sends the end of the body a moment later. The next reply must not pay a new
    // TCP (and, in production, TLS) handshake.
    for api in BOTH {
        let fake =
            start_fake(FakeConfig::replying(&["Hi"]).with_end_delay(Duration::from_millis(50)))
                .await;
        let llm = adapter(api, &fake);
        for round in 1..=3 {
            let mut stream = llm.stream(request());
            loop {
                match stream.next().await {
                    Some(Ok(LlmEvent::Completed(_))) => break,
                    Some(Ok(LlmEvent::Delta(_))) => {}
                    other => panic!("{api:?} round {round}: unexpected {other:?}"),
                }
            }
            drop(stream);
            // Longer than the provider's pause before the body's end.
            tokio::time::sleep(Duration::from_millis(150)).await;
        }
        assert_eq!(
            fake.connections_accepted(),
            1,
            "{api:?}: every reply after the first must reuse the pooled connection"
        );
    }
}

#[tokio::test]
async fn with_http2_prior_knowledge_concurrent_replies_stream_over_one_h2c_connection() {
    for api in BOTH {
        let fake = start_fake(
            FakeConfig::replying(&["Hel", "lo"])
                .with_pace(Duration::from_millis(20))
                .with_usage(Some(FakeUsage {
                    input_tokens: 7,
                    output_tokens: 2,
                    cached_tokens: 0,
                    reasoning_tokens: 0,
                })),
        )
        .await;
        let llm = adapter_with(api, config_for(&fake, over_h2c()));
        let outcomes = futures::future::join_all((0..3).map(|_| read(&llm, request()))).await;
        for outcome in &outcomes {
            assert_eq!(outcome.deltas, ["Hel", "lo"], "{api:?}");
            let usage = outcome.completion().usage.expect("usage");
            assert_eq!((usage.input_tokens, usage.output_tokens), (7, 2), "{api:?}");
        }
        let requests = fake.requests();
        assert_eq!(requests.len(), 3, "{api:?}");
        for r in &requests {
            assert_eq!(r.protocol, Protocol::Http2, "{api:?}");
            assert_eq!(r.method, "POST");
            assert_eq!(
                r.header("authorization"),
                Some(format!("Bearer {KEY}").as_str())
            );
            assert_eq!(r.body["model"], "gpt-test-mini");
        }
        assert_eq!(
            fake.connections_accepted(),
            1,
            "{api:?}: one connection for all three"
        );
        assert_eq!(fake.streams_completed(), 3, "{api:?}");
    }
}

#[tokio::test]
async fn over_h2c_a_500_is_retried_and_a_reset_stream_is_truncated() {
    for api in BOTH {
        let fake = start_fake(
            FakeConfig::default()
                .with_fault(Fault::status(500))
                .for_first(1),
        )
        .await;
        let outcome = read(&adapter_with(api, config_for(&fake, over_h2c())), request()).await;
        assert_eq!(outcome.deltas.concat(), "Hello, world!", "{api:?}");
        assert_eq!(fake.requests().len(), 2, "{api:?}");

        let fake = start_fake(FakeConfig::default().with_fault(Fault::CutAfter(2))).await;
        let outcome = read(&adapter_with(api, config_for(&fake, over_h2c())), request()).await;
        assert_eq!(outcome.deltas, ["Hello", ", "], "{api:?}");
        assert_eq!(outcome.error(), &LlmError::Truncated, "{api:?}");
        assert_eq!(fake.requests().len(), 1, "{api:?}");
        assert!(
            fake.requests()
                .iter()
                .all(|r| r.protocol == Protocol::Http2)
        );
    }
}

// ---- broken streams -------------------------------------------------------------------

#[tokio::test]
async fn a_stream_cut_after_two_deltas_is_truncated_and_not_retried() {
    for api in BOTH {
        let fake = start_fake(FakeConfig::default().with_fault(Fault::CutAfter(2))).await;
        let outcome = read(&adapter(api, &fake), request()).await;
        assert_eq!(outcome.deltas, ["Hello", ", "], "{api:?}");
        assert_eq!(outcome.error(), &LlmError::Truncated, "{api:?}");
        assert_eq!(fake.requests().len(), 1, "{api:?}");
    }
}

#[tokio::test]
async fn a_stream_that_ends_cleanly_without_a_terminal_event_is_truncated() {
    for api in BOTH {
        let fake = start_fake(FakeConfig::default().with_fault(Fault::EndAfter(3))).await;
        let outcome = read(&adapter(api, &fake), request()).await;
        assert_eq!(outcome.deltas, ["Hello", ", ", "world"], "{api:?}");
        assert_eq!(outcome.error(), &LlmError::Truncated, "{api:?}");
    }
}

#[tokio::test]
async fn a_failure_after_two_deltas_yields_them_then_the_providers_error() {
    for api in BOTH {
        let fake = start_fake(FakeConfig::default().with_fault(Fault::failed_after(2))).await;
        let outcome = read(&adapter(api, &fake), request()).await;
        assert_eq!(outcome.deltas, ["Hello", ", "], "{api:?}");
        match outcome.error() {
            LlmError::Upstream { code, message, .. } => {
                assert_eq!(code.as_deref(), Some("server_error"), "{api:?}");
                assert!(message.contains("failed to generate"), "{message}");
            }
            other => panic!("{api:?}: {other:?}"),
        }
        assert_eq!(
            fake.requests().len(),
            1,
            "an error after deltas was retried"
        );
    }
}

#[tokio::test]
async fn an_error_event_carries_the_providers_code() {
    let fault = Fault::ErrorEventAfter {
        deltas: 0,
        code: "insufficient_quota".to_owned(),
        message: "You exceeded your current quota.".to_owned(),
    };
    let fake = start_fake(FakeConfig::default().with_fault(fault)).await;
    for api in BOTH {
        let outcome = read(&adapter(api, &fake), request()).await;
        assert!(outcome.deltas.is_empty());
        assert!(
            matches!(outcome.error(), LlmError::Upstream { code: Some(c), .. } if c == "insufficient_quota"),
            "{api:?}: {:?}",
            outcome.error()
        );
    }
}

#[tokio::test]
async fn malformed_json_is_a_bad_response() {
    for api in BOTH {
        let fake = start_fake(FakeConfig::default().with_fault(Fault::MalformedAfter(1))).await;
        let outcome = read(&adapter(api, &fake), request()).await;
        assert_eq!(outcome.deltas, ["Hello"], "{api:?}");
        assert!(
            matches!(outcome.error(), LlmError::BadResponse(_)),
            "{api:?}: {:?}",
            outcome.error()
        );
    }
}

#[tokio::test]
async fn a_wrong_endpoint_is_a_clear_error() {
    let fake = start_fake(FakeConfig::default()).await;
    let config = OpenAiConfig::new(SecretString::from(KEY))
        .with_base_url(format!("http://{}/wrong", fake.addr()))
        .with_provider(quick());
    let outcome = read(&adapter_with(Api::Responses, config), request()).await;
    assert!(matches!(
        outcome.error(),
        LlmError::Upstream {
            status: Some(404),
            ..
        }
    ));
    assert_eq!(fake.requests().len(), 1);
}

#[tokio::test]
async fn dropping_the_stream_drops_the_request_upstream() {
    for api in BOTH {
        let deltas: Vec<&str> = vec!["tick "; 200];
        let fake =
            start_fake(FakeConfig::replying(&deltas).with_pace(Duration::from_millis(20))).await;
        let llm = adapter(api, &fake);
        let mut stream = llm.stream(request());
        assert!(matches!(stream.next().await, Some(Ok(LlmEvent::Delta(_)))));
        drop(stream);
        let deadline = Instant::now() + Duration::from_secs(5);
        while fake.streams_aborted_by_client() == 0 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(
            fake.streams_aborted_by_client(),
            1,
            "{api:?}: the server kept generating"
        );
        assert_eq!(fake.streams_completed(), 0, "{api:?}");
    }
}

// ---- secrets --------------------------------------------------------------------------

#[tokio::test]
async fn the_api_key_never_appears_in_an_error_or_debug_output() {
    let echoing = Fault::status(400).with_message(&format!("Incorrect API key provided: {KEY}."));
    let faults = [
        echoing.clone(),
        Fault::status(401).with_message(&format!("Incorrect API key provided: {KEY}.")),
        Fault::status(403),
        Fault::status(500).with_message(&format!("boom {KEY}")),
        Fault::status(429),
        Fault::insufficient_quota(),
        Fault::FailAfter {
            deltas: 1,
            code: "server_error".to_owned(),
            message: format!("failed for key {KEY}"),
        },
        Fault::ErrorEventAfter {
            deltas: 0,
            code: "bad".to_owned(),
            message: format!("key {KEY}"),
        },
        Fault::CutAfter(1),
        Fault::MalformedAfter(0),
        Fault::Disconnect,
    ];
    for fault in faults {
        for api in BOTH {
            let fake = start_fake(FakeConfig::default().with_fault(fault.clone())).await;
            let outcome = read(&adapter(api, &fake), request()).await;
            let error = outcome.error();
            let shown = format!("{error} {error:?}");
            assert!(!shown.contains(KEY), "{api:?} {fault:?}: {shown}");
        }
    }
    let fake = start_fake(FakeConfig::default().with_fault(echoing)).await;
    let config = config_for(&fake, quick());
    assert!(!format!("{config:?}").contains(KEY));
    assert!(!format!("{:?}", ResponsesLlm::new(config.clone()).unwrap()).contains(KEY));
    assert!(!format!("{:?}", ChatCompletionsLlm::new(config).unwrap()).contains(KEY));
}

// ---- provider input that must not panic ------------------------------------------------

/// A `retry-after-ms` or `Retry-After` of `1e30` made `Duration::from_secs_f64` panic inside
/// the reply's task (the reply then stayed `streaming` until its lease ran out). Such a wait
/// is not obeyed: the computed backoff is used, and a 429 that persists is `rate_limited`.
#[tokio::test]
async fn a_retry_after_too_large_for_a_duration_is_ignored_without_panicking() {
    for header in ["retry-after-ms", "retry-after"] {
        for value in ["1e30", "inf", "NaN", "-5", "Wed, 21 Oct 2015 07:28:00 GMT"] {
            for api in BOTH {
                let fault = Fault::status(429).with_header(header, value);
                let fake = start_fake(FakeConfig::default().with_fault(fault)).await;
                let outcome = read(&adapter(api, &fake), request()).await;
                assert_eq!(
                    outcome.error(),
                    &LlmError::RateLimited { retry_after: None },
                    "{api:?} {header}: {value}"
                );
                assert_eq!(fake.requests().len(), 3, "{api:?} {header}: {value}");
            }
        }
    }
}

#[tokio::test]
async fn after_a_429_with_a_huge_retry_after_the_retry_succeeds() {
    for api in BOTH {
        let fault = Fault::status(429)
            .with_header("retry-after-ms", "1e30")
            .with_header("retry-after", "1e30");
        let fake = start_fake(FakeConfig::default().with_fault(fault).for_first(1)).await;
        let outcome = read(&adapter(api, &fake), request()).await;
        assert_eq!(outcome.deltas.concat(), "Hello, world!", "{api:?}");
        assert_eq!(fake.requests().len(), 2, "{api:?}");
    }
}

// ---- what a person is told when the provider fails -------------------------------------

/// A provider failure, as each wire format carries it.
struct FailureCase {
    name: &'static str,
    fault: fn(Api) -> Fault,
    /// The stream error code (API.md) the user gets.
    code: &'static str,
    /// Words the `detail` sentence must contain.
    words: &'static str,
}

/// LiteLLM's answer for an unknown model: the meaning is only in the message, and the code
/// is a number (as a string here, a number in other versions).
const LITELLM_UNKNOWN_MODEL: &str = "litellm.BadRequestError: Invalid model name passed in model=gpt-9. Call `/v1/models` to view available models for your key.";

/// OpenAI's answer for a wrong key (it masks the key, but part of it is shown).
const OPENAI_WRONG_KEY: &str = "Incorrect API key provided: sk-abc12***********************************wxyz. You can find your API key at https://platform.openai.com/account/api-keys.";

fn json_status(status: u16, body: &serde_json::Value) -> Fault {
    Fault::status_with_body(status, "application/json", &body.to_string())
}

/// An HTML error page of about 50 KB, as a proxy in front of a provider sends.
fn html_page() -> String {
    format!(
        "<!DOCTYPE html><html><head><title>503 Service Unavailable</title></head><body>{}</body></html>",
        "<p>The upstream server is unavailable. Contact admin@internal.example with sk-proj-HiddenKey0123456789abcdefXYZ.</p>".repeat(450)
    )
}

/// The same error report, inside the stream of each format: a Responses `error` event, a
/// Chat Completions `{"error": …}` chunk.
fn in_stream(api: Api, deltas: usize, error: serde_json::Value) -> Fault {
    match api {
        Api::Responses => {
            let mut data = error.clone();
            data["type"] = json!("error");
            Fault::raw_event_after(deltas, "error", &data)
        }
        Api::Chat => Fault::raw_event_after(deltas, "message", &json!({ "error": error })),
    }
}

fn failure_cases() -> Vec<FailureCase> {
    vec![
        FailureCase {
            name: "LiteLLM unknown model, code as a string",
            fault: |_| {
                json_status(
                    400,
                    &json!({"error": {"message": LITELLM_UNKNOWN_MODEL,
                    "type": "invalid_request_error", "param": "model", "code": "400"}}),
                )
            },
            code: "upstream_error",
            words: "does not offer the model",
        },
        FailureCase {
            name: "LiteLLM unknown model, code as a number",
            fault: |_| {
                json_status(
                    400,
                    &json!({"error": {"message": LITELLM_UNKNOWN_MODEL,
                    "type": "invalid_request_error", "param": "model", "code": 400}}),
                )
            },
            code: "upstream_error",
            words: "does not offer the model",
        },
        FailureCase {
            name: "OpenAI model_not_found",
            fault: |_| Fault::status(404),
            code: "upstream_error",
            words: "does not offer the model",
        },
        FailureCase {
            name: "vLLM's bare error object",
            fault: |_| {
                json_status(
                    404,
                    &json!({"object": "error", "message": "The model `gpt-9` does not exist.",
                    "type": "NotFoundError", "param": null, "code": 404}),
                )
            },
            code: "upstream_error",
            words: "does not offer the model",
        },
        FailureCase {
            name: "Ollama's error string",
            fault: |_| {
                json_status(
                    404,
                    &json!({"error": "model \"gpt-9\" not found, try pulling it first"}),
                )
            },
            code: "upstream_error",
            words: "does not offer the model",
        },
        FailureCase {
            name: "OpenAI wrong key, echoed masked",
            fault: |_| Fault::status(401).with_message(OPENAI_WRONG_KEY),
            code: "upstream_error",
            words: "rejected the API key",
        },
        FailureCase {
            name: "a wrong key echoed in full in a 400",
            fault: |_| {
                json_status(
                    400,
                    &json!({"error": {"message": format!("Incorrect API key provided: {KEY}."),
                    "type": "invalid_request_error", "code": "invalid_api_key"}}),
                )
            },
            code: "upstream_error",
            words: "rejected the API key",
        },
        FailureCase {
            name: "FastAPI's detail",
            fault: |_| {
                json_status(
                    401,
                    &json!({"detail": "Invalid bearer token sk-live-0123456789abcdefABCDEF"}),
                )
            },
            code: "upstream_error",
            words: "rejected the API key",
        },
        FailureCase {
            name: "OpenAI insufficient_quota",
            fault: |_| Fault::insufficient_quota(),
            code: "upstream_error",
            words: "run out of quota",
        },
        FailureCase {
            name: "a rate limit",
            fault: |_| Fault::status(429),
            code: "rate_limited",
            words: "rate limiting",
        },
        FailureCase {
            name: "Azure's content filter",
            fault: |_| {
                json_status(
                    400,
                    &json!({"error": {"message": "The response was filtered due to the prompt triggering Azure OpenAI's content management policy.",
                    "type": null, "param": "prompt", "code": "content_filter", "status": 400}}),
                )
            },
            code: "content_filter",
            words: "content filter",
        },
        FailureCase {
            name: "the context window",
            fault: |_| {
                json_status(
                    400,
                    &json!({"error": {"message": "This model's maximum context length is 8192 tokens. However, your messages resulted in 9000 tokens.",
                    "type": "invalid_request_error", "param": "messages", "code": "context_length_exceeded"}}),
                )
            },
            code: "upstream_error",
            words: "too long for the model",
        },
        FailureCase {
            name: "overloaded (529)",
            fault: |_| {
                json_status(
                    529,
                    &json!({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}),
                )
            },
            code: "unavailable",
            words: "overloaded",
        },
        FailureCase {
            name: "a 50 KB HTML page (503)",
            fault: |_| Fault::status_with_body(503, "text/html", &html_page()),
            code: "unavailable",
            words: "overloaded",
        },
        FailureCase {
            name: "a bad request",
            fault: |_| {
                json_status(
                    400,
                    &json!({"error": {"message": "Unsupported parameter: 'max_tokens' is not supported with this model.",
                    "type": "invalid_request_error", "param": "max_tokens", "code": "unsupported_parameter"}}),
                )
            },
            code: "upstream_error",
            words: "rejected the request as invalid (status 400)",
        },
        FailureCase {
            name: "a 500 with an HTML page",
            fault: |_| Fault::status_with_body(500, "text/html", &html_page()),
            code: "upstream_error",
            words: "internal error (status 500)",
        },
        // Inside the stream, after a delta.
        FailureCase {
            name: "in the stream: LiteLLM unknown model, numeric code",
            fault: |api| {
                in_stream(
                    api,
                    1,
                    json!({"message": LITELLM_UNKNOWN_MODEL, "type": "invalid_request_error", "param": "model", "code": 400}),
                )
            },
            code: "upstream_error",
            words: "does not offer the model",
        },
        FailureCase {
            name: "in the stream: quota",
            fault: |api| match api {
                Api::Responses => Fault::raw_event_after(
                    1,
                    "response.failed",
                    &json!({"type": "response.failed", "response": {"status": "failed",
                        "error": {"code": "insufficient_quota", "message": "You exceeded your current quota."}}}),
                ),
                Api::Chat => in_stream(
                    api,
                    1,
                    json!({"message": "You exceeded your current quota.", "type": "insufficient_quota", "code": "insufficient_quota"}),
                ),
            },
            code: "upstream_error",
            words: "run out of quota",
        },
        FailureCase {
            name: "in the stream: a wrong key, echoed",
            fault: |api| {
                in_stream(
                    api,
                    0,
                    json!({"message": OPENAI_WRONG_KEY, "type": "invalid_request_error", "code": "invalid_api_key"}),
                )
            },
            code: "upstream_error",
            words: "rejected the API key",
        },
        FailureCase {
            name: "in the stream: content filter",
            fault: |api| {
                in_stream(
                    api,
                    1,
                    json!({"message": "Filtered.", "type": "invalid_request_error", "code": "content_filter"}),
                )
            },
            code: "content_filter",
            words: "content filter",
        },
        FailureCase {
            name: "in the stream: overloaded",
            fault: |api| {
                in_stream(
                    api,
                    1,
                    json!({"message": "The engine is currently overloaded, please try again later.", "type": "server_error", "code": null}),
                )
            },
            code: "unavailable",
            words: "overloaded",
        },
        FailureCase {
            name: "in the stream: vLLM's bare error chunk",
            fault: |api| match api {
                Api::Responses => Fault::raw_event_after(
                    1,
                    "error",
                    &json!({"type": "error", "error": {"message": "The model `gpt-9` does not exist.", "type": "NotFoundError", "code": 404}}),
                ),
                Api::Chat => Fault::raw_event_after(
                    1,
                    "message",
                    &json!({"object": "error", "message": "The model `gpt-9` does not exist.", "type": "NotFoundError", "param": null, "code": 404}),
                ),
            },
            code: "upstream_error",
            words: "does not offer the model",
        },
    ]
}

/// Each provider failure, in both wire formats, ends the reply with a stream error whose
/// `detail` says in words what happened, is short, and shows no key.
#[tokio::test]
async fn provider_failures_are_told_in_words_without_any_key() {
    for case in failure_cases() {
        for api in BOTH {
            let fault = (case.fault)(api);
            let fake = start_fake(FakeConfig::default().with_fault(fault)).await;
            let outcome = read(&adapter(api, &fake), request()).await;
            let what = format!("{} ({api:?})", case.name);
            let error = outcome.error();
            let (code, detail) = confab_core::chat::describe(error);
            assert_eq!(code.as_str(), case.code, "{what}: {error:?}");
            assert!(
                detail.contains(case.words),
                "{what}: {detail:?} does not say {:?}",
                case.words
            );
            assert!(
                detail.ends_with('.') && detail.len() <= 200,
                "{what}: not a short sentence: {detail:?}"
            );
            for shown in [detail.clone(), format!("{error} {error:?}")] {
                assert!(
                    !shown.contains("sk-") && !shown.contains(KEY),
                    "{what}: a key is shown: {shown}"
                );
            }
        }
    }
}

/// Through the server: the SSE `error` event and the stored reply tell the user in words that
/// the model is unknown (LiteLLM's answer), and a `retry-after` of `1e30` ends the reply as
/// `rate_limited` instead of leaving it `streaming`.
#[tokio::test]
async fn through_the_server_a_provider_failure_is_told_in_words_and_stored() {
    use confab_api_types as api;
    use confab_tests::http::spawn_app_with;

    let litellm = json_status(
        400,
        &json!({"error": {"message": LITELLM_UNKNOWN_MODEL,
            "type": "invalid_request_error", "param": "model", "code": "400"}}),
    );
    let huge_wait = Fault::status(429).with_header("retry-after-ms", "1e30");
    for (fault, code, words) in [
        (litellm, "upstream_error", "does not offer the model"),
        (huge_wait, "rate_limited", "rate limiting"),
    ] {
        for api in BOTH {
            let fake = start_fake(FakeConfig::default().with_fault(fault.clone())).await;
            let app = spawn_app_with(adapter(api, &fake), &[]).await;
            let project = app.new_project("alice", "Bot").await;
            let conversation = app.new_conversation("alice", project.id).await;

            let reply = app.send("alice", conversation.id, "Hi").await;
            let last = reply.last();
            assert_eq!(last.event, "error", "{api:?}: {:?}", reply.names());
            let error: api::StreamError = last.json();
            assert_eq!(error.code, code, "{api:?}");
            assert!(error.detail.contains(words), "{api:?}: {}", error.detail);
            assert!(!error.detail.contains("sk-"), "{}", error.detail);

            let stored = app.stored_messages("alice", conversation.id).await;
            assert_eq!(stored.len(), 2, "{api:?}");
            assert_eq!(stored[1].status, confab_core::MessageStatus::Failed);
            assert_eq!(stored[1].error.as_deref(), Some(error.detail.as_str()));
        }
    }
}
