//! The `LlmStream` contract, run against every model: the echo demo model, `ScriptedLlm`,
//! and both HTTP adapters pointed at the fake provider.
//!
//! The factory is given the text pieces a case would like the reply to consist of. A subject
//! that can be told what to say (a scripted model, the fake provider) says exactly that and
//! sets `follows_script`; one that cannot (the echo model) says what it likes, and only the
//! shape of its stream is checked.

use std::any::Any;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use confab_core::LlmError;
use confab_core::model::Role;
use confab_core::ports::{Completion, LlmEvent, LlmEventStream, LlmMessage, LlmRequest, LlmStream};
use futures::StreamExt;

use super::Suite;

/// The longest a case waits for a whole reply before it fails instead of hanging.
const PATIENCE: Duration = Duration::from_secs(20);

/// One model to check, made fresh for each case.
pub struct LlmSubject {
    /// The model under test.
    pub llm: Arc<dyn LlmStream>,
    /// `true` when the model replies with exactly the deltas the factory was given.
    pub follows_script: bool,
    /// Whatever must live as long as the model (e.g. the fake provider it talks to).
    pub guard: Option<Box<dyn Any + Send + Sync>>,
}

impl LlmSubject {
    /// A subject that says what it likes (the echo model).
    #[must_use]
    pub fn free(llm: Arc<dyn LlmStream>) -> Self {
        Self {
            llm,
            follows_script: false,
            guard: None,
        }
    }

    /// A subject that says exactly the script it was given.
    #[must_use]
    pub fn scripted(llm: Arc<dyn LlmStream>) -> Self {
        Self {
            llm,
            follows_script: true,
            guard: None,
        }
    }

    /// Keeps `guard` alive as long as the subject.
    #[must_use]
    pub fn keeping(mut self, guard: impl Any + Send + Sync) -> Self {
        self.guard = Some(Box::new(guard));
        self
    }
}

/// A whole reply as the contract reads it.
struct Reply {
    deltas: Vec<String>,
    completion: Completion,
}

/// Runs every case of the contract on subjects made by `fresh(deltas)`.
pub async fn llm_stream_contract<F, Fut>(fresh: F)
where
    F: Fn(&'static [&'static str]) -> Fut,
    Fut: Future<Output = LlmSubject>,
{
    let mut suite = Suite::new("LlmStream");
    suite
        .case(
            "names_are_not_empty",
            names_are_not_empty(fresh(HELLO).await),
        )
        .await;
    suite
        .case(
            "a_reply_is_deltas_in_order_then_exactly_one_completed",
            a_reply_is_deltas_in_order_then_exactly_one_completed(fresh(HELLO).await),
        )
        .await;
    suite
        .case(
            "the_text_survives_unicode_and_whitespace",
            the_text_survives_unicode_and_whitespace(fresh(UNICODE).await),
        )
        .await;
    suite
        .case(
            "a_request_without_instructions_or_limit_is_answered",
            a_request_without_instructions_or_limit_is_answered(fresh(HELLO).await),
        )
        .await;
    suite
        .case(
            "the_stream_is_static_and_send",
            the_stream_is_static_and_send(fresh(HELLO).await),
        )
        .await;
    suite
        .case(
            "dropping_mid_stream_does_not_panic_and_the_model_stays_usable",
            dropping_mid_stream_does_not_panic_and_the_model_stays_usable(fresh(HELLO).await),
        )
        .await;
    suite
        .case(
            "dropping_before_polling_does_not_panic",
            dropping_before_polling_does_not_panic(fresh(HELLO).await),
        )
        .await;
    suite
        .case(
            "concurrent_replies_do_not_interfere",
            concurrent_replies_do_not_interfere(fresh(HELLO).await),
        )
        .await;
    suite.finish();
}

const HELLO: &[&str] = &["Hello", ", ", "world", "!"];
const UNICODE: &[&str] = &["Grüße ", "👋🏽", " \n", "日本語", "  done."];

fn request(instructions: Option<&str>, max_output_tokens: Option<u32>) -> LlmRequest {
    LlmRequest {
        model: String::new(),
        instructions: instructions.map(str::to_owned),
        messages: vec![
            LlmMessage {
                role: Role::User,
                content: "Say hello.".to_owned(),
            },
            LlmMessage {
                role: Role::Assistant,
                content: "Hello!".to_owned(),
            },
            LlmMessage {
                role: Role::User,
                content: "Say it again, please.".to_owned(),
            },
        ],
        max_output_tokens,
        attachments: Vec::new(),
        sources: Vec::new(),
    }
}

/// Reads a whole stream, checking its shape: `Ok` deltas, one `Completed` last, nothing after.
async fn read(stream: LlmEventStream) -> Reply {
    let items: Vec<Result<LlmEvent, LlmError>> = tokio::time::timeout(PATIENCE, stream.collect())
        .await
        .unwrap_or_else(|_| panic!("the reply did not end within {PATIENCE:?}"));
    let mut deltas = Vec::new();
    let mut completion = None;
    for (i, item) in items.iter().enumerate() {
        match item {
            Ok(LlmEvent::Delta(text)) => {
                assert!(
                    completion.is_none(),
                    "a delta came after Completed: {items:?}"
                );
                deltas.push(text.clone());
            }
            Ok(LlmEvent::Completed(c)) => {
                assert!(completion.is_none(), "a second Completed: {items:?}");
                assert_eq!(
                    i,
                    items.len() - 1,
                    "something came after Completed: {items:?}"
                );
                completion = Some(c.clone());
            }
            Err(e) => panic!("the reply failed: {e} ({e:?}); stream so far: {items:?}"),
        }
    }
    let completion = completion.unwrap_or_else(|| panic!("no Completed at the end: {items:?}"));
    Reply { deltas, completion }
}

async fn names_are_not_empty(subject: LlmSubject) {
    assert!(
        !subject.llm.provider().trim().is_empty(),
        "provider() is empty"
    );
    assert!(
        !subject.llm.default_model().trim().is_empty(),
        "default_model() is empty"
    );
}

async fn a_reply_is_deltas_in_order_then_exactly_one_completed(subject: LlmSubject) {
    let reply = read(subject.llm.stream(request(Some("Be friendly."), Some(200)))).await;
    assert!(!reply.deltas.is_empty(), "no delta at all");
    let text = reply.deltas.concat();
    assert!(!text.trim().is_empty(), "the reply's text is blank");
    if subject.follows_script {
        assert_eq!(
            reply.deltas, HELLO,
            "the deltas are not the scripted ones, in order"
        );
    }
    if let Some(usage) = reply.completion.usage {
        assert!(
            usage.output_tokens > 0,
            "a reply with text reports 0 output tokens"
        );
    }
}

async fn the_text_survives_unicode_and_whitespace(subject: LlmSubject) {
    let reply = read(
        subject
            .llm
            .stream(request(Some("Answer in any language."), None)),
    )
    .await;
    let text = reply.deltas.concat();
    assert!(!text.is_empty());
    if subject.follows_script {
        assert_eq!(text, UNICODE.concat(), "the text changed on its way");
    }
}

async fn a_request_without_instructions_or_limit_is_answered(subject: LlmSubject) {
    let reply = read(subject.llm.stream(request(None, None))).await;
    assert!(!reply.deltas.concat().is_empty());
}

async fn the_stream_is_static_and_send(subject: LlmSubject) {
    fn static_and_send<T: Send + 'static>(value: T) -> T {
        value
    }
    // The request is moved in and dropped: the stream borrows nothing from the caller.
    let stream = {
        let request = request(Some("Be brief."), None);
        static_and_send(subject.llm.stream(request))
    };
    let reply = tokio::spawn(read(stream))
        .await
        .unwrap_or_else(|e| panic!("reading the stream on another task failed: {e}"));
    assert!(!reply.deltas.is_empty());
}

async fn dropping_mid_stream_does_not_panic_and_the_model_stays_usable(subject: LlmSubject) {
    let mut stream = subject.llm.stream(request(None, None));
    let first = tokio::time::timeout(PATIENCE, stream.next())
        .await
        .unwrap_or_else(|_| panic!("no first event within {PATIENCE:?}"));
    assert!(
        matches!(first, Some(Ok(LlmEvent::Delta(_)))),
        "the first event is not a delta: {first:?}"
    );
    drop(stream);
    tokio::task::yield_now().await;
    let again = read(subject.llm.stream(request(None, None))).await;
    assert!(
        !again.deltas.is_empty(),
        "the model broke after a dropped stream"
    );
    if subject.follows_script {
        assert_eq!(again.deltas, HELLO);
    }
}

async fn dropping_before_polling_does_not_panic(subject: LlmSubject) {
    drop(subject.llm.stream(request(None, None)));
    let reply = read(subject.llm.stream(request(None, None))).await;
    assert!(!reply.deltas.is_empty());
}

async fn concurrent_replies_do_not_interfere(subject: LlmSubject) {
    let streams: Vec<_> = (0..4)
        .map(|_| subject.llm.stream(request(Some("Be brief."), None)))
        .collect();
    let replies = futures::future::join_all(streams.into_iter().map(read)).await;
    for reply in &replies {
        assert!(!reply.deltas.is_empty());
        if subject.follows_script {
            assert_eq!(reply.deltas, HELLO, "concurrent replies were mixed up");
        }
    }
}
