//! `ScriptedLlm`: a model that plays back a script, for tests of everything that consumes
//! an `LlmStream`. It records what it was asked and notices when a stream is dropped early.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use confab_core::error::LlmError;
use confab_core::model::Usage;
use confab_core::ports::{Completion, LlmEvent, LlmEventStream, LlmRequest, LlmStream};

/// How a script ends after its deltas.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Ending {
    /// `Completed` with this completion.
    Complete(Completion),
    /// This error, and nothing after it.
    Fail(LlmError),
    /// The stream just ends, with no terminal event (a truncated reply).
    EndOfStream,
    /// The stream never yields again and never ends, until it is dropped.
    Hang,
}

/// One reply: deltas, an optional pause before each, and how it ends.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Script {
    /// The text pieces, in order.
    pub deltas: Vec<String>,
    /// Slept before each delta (`Duration::ZERO`: no pause).
    pub delay: Duration,
    /// What follows the last delta.
    pub ending: Ending,
}

fn owned(deltas: &[&str]) -> Vec<String> {
    deltas.iter().map(|d| (*d).to_owned()).collect()
}

impl Script {
    /// The deltas, then `Completed` with [`Script::default_completion`].
    #[must_use]
    pub fn replying(deltas: &[&str]) -> Self {
        Self {
            deltas: owned(deltas),
            delay: Duration::ZERO,
            ending: Ending::Complete(Self::default_completion(deltas.len())),
        }
    }

    /// The deltas, then `error` (so the error comes at step `deltas.len()`).
    #[must_use]
    pub fn failing_after(deltas: &[&str], error: LlmError) -> Self {
        Self {
            deltas: owned(deltas),
            delay: Duration::ZERO,
            ending: Ending::Fail(error),
        }
    }

    /// The deltas, then the end of the stream without a terminal event.
    #[must_use]
    pub fn truncated_after(deltas: &[&str]) -> Self {
        Self {
            deltas: owned(deltas),
            delay: Duration::ZERO,
            ending: Ending::EndOfStream,
        }
    }

    /// The deltas, then nothing ever again: the stream only ends when dropped.
    #[must_use]
    pub fn hanging_after(deltas: &[&str]) -> Self {
        Self {
            deltas: owned(deltas),
            delay: Duration::ZERO,
            ending: Ending::Hang,
        }
    }

    /// Pauses `delay` before each delta.
    #[must_use]
    pub fn with_delay(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }

    /// Ends with `Completed(completion)` instead.
    #[must_use]
    pub fn with_completion(mut self, completion: Completion) -> Self {
        self.ending = Ending::Complete(completion);
        self
    }

    /// What `replying` completes with: usage `{input_tokens: 10, output_tokens: <deltas>}`,
    /// nothing else.
    #[must_use]
    pub fn default_completion(deltas: usize) -> Completion {
        Completion {
            usage: Some(Usage {
                input_tokens: 10,
                output_tokens: u32::try_from(deltas).unwrap_or(u32::MAX),
            }),
            ..Completion::default()
        }
    }

    /// The whole text of the reply: the deltas joined.
    #[must_use]
    pub fn text(&self) -> String {
        self.deltas.concat()
    }
}

#[derive(Default)]
struct Shared {
    requests: Mutex<Vec<LlmRequest>>,
    started: AtomicUsize,
    finished: AtomicUsize,
    dropped_early: AtomicUsize,
}

/// A model that plays scripts: the n-th stream plays the n-th script, and the last script
/// repeats for every later stream. Clones share the recorded requests and counters.
///
/// ```
/// use std::time::Duration;
/// use confab_core::LlmError;
/// use confab_memory::ScriptedLlm;
///
/// let llm = ScriptedLlm::replying(&["Hel", "lo"]).with_delay(Duration::from_millis(5));
/// let failing = ScriptedLlm::failing_after(&["a", "b"], LlmError::Truncated);
/// let hanging = ScriptedLlm::hanging_after(&["a"]);
/// ```
#[derive(Clone)]
pub struct ScriptedLlm {
    scripts: Vec<Script>,
    model: String,
    shared: Arc<Shared>,
}

impl ScriptedLlm {
    /// The provider name it reports.
    pub const PROVIDER: &'static str = "scripted";
    /// The default model it reports.
    pub const DEFAULT_MODEL: &'static str = "scripted-1";

    /// Every stream plays `script`.
    #[must_use]
    pub fn new(script: Script) -> Self {
        Self::sequence(vec![script])
    }

    /// The n-th stream plays `scripts[n]`; the last one repeats. With no script at all,
    /// every stream ends at once without a terminal event.
    #[must_use]
    pub fn sequence(scripts: Vec<Script>) -> Self {
        Self {
            scripts,
            model: Self::DEFAULT_MODEL.to_owned(),
            shared: Arc::default(),
        }
    }

    /// See [`Script::replying`].
    #[must_use]
    pub fn replying(deltas: &[&str]) -> Self {
        Self::new(Script::replying(deltas))
    }

    /// See [`Script::failing_after`].
    #[must_use]
    pub fn failing_after(deltas: &[&str], error: LlmError) -> Self {
        Self::new(Script::failing_after(deltas, error))
    }

    /// See [`Script::truncated_after`].
    #[must_use]
    pub fn truncated_after(deltas: &[&str]) -> Self {
        Self::new(Script::truncated_after(deltas))
    }

    /// See [`Script::hanging_after`].
    #[must_use]
    pub fn hanging_after(deltas: &[&str]) -> Self {
        Self::new(Script::hanging_after(deltas))
    }

    /// Pauses `delay` before each delta of every script.
    #[must_use]
    pub fn with_delay(mut self, delay: Duration) -> Self {
        for script in &mut self.scripts {
            script.delay = delay;
        }
        self
    }

    /// Every script that completes completes with `completion`.
    #[must_use]
    pub fn with_completion(mut self, completion: Completion) -> Self {
        for script in &mut self.scripts {
            if matches!(script.ending, Ending::Complete(_)) {
                script.ending = Ending::Complete(completion.clone());
            }
        }
        self
    }

    /// Reports `model` as its default model.
    #[must_use]
    pub fn with_default_model(mut self, model: impl Into<String>) -> Self {
        self.model = model.into();
        self
    }

    /// Every request received so far, in order.
    #[must_use]
    pub fn requests(&self) -> Vec<LlmRequest> {
        self.shared
            .requests
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// How many streams were started.
    #[must_use]
    pub fn streams_started(&self) -> usize {
        self.shared.started.load(Ordering::SeqCst)
    }

    /// How many streams delivered their terminal event or their end.
    #[must_use]
    pub fn streams_finished(&self) -> usize {
        self.shared.finished.load(Ordering::SeqCst)
    }

    /// How many streams were dropped before they finished (the upstream call was stopped).
    #[must_use]
    pub fn streams_dropped_early(&self) -> usize {
        self.shared.dropped_early.load(Ordering::SeqCst)
    }
}

/// Lives inside a stream; counts the stream as dropped early unless it finished.
struct Watch {
    shared: Arc<Shared>,
    finished: bool,
}

impl Watch {
    fn finish(&mut self) {
        if !self.finished {
            self.finished = true;
            self.shared.finished.fetch_add(1, Ordering::SeqCst);
        }
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        if !self.finished {
            self.shared.dropped_early.fetch_add(1, Ordering::SeqCst);
        }
    }
}

impl LlmStream for ScriptedLlm {
    fn provider(&self) -> &str {
        Self::PROVIDER
    }

    fn default_model(&self) -> &str {
        &self.model
    }

    fn stream(&self, request: LlmRequest) -> LlmEventStream {
        self.shared
            .requests
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(request);
        let n = self.shared.started.fetch_add(1, Ordering::SeqCst);
        let script = self
            .scripts
            .get(n.min(self.scripts.len().saturating_sub(1)))
            .cloned()
            .unwrap_or_else(|| Script::truncated_after(&[]));
        let mut watch = Watch {
            shared: Arc::clone(&self.shared),
            finished: false,
        };
        Box::pin(async_stream::stream! {
            for delta in script.deltas {
                if !script.delay.is_zero() {
                    tokio::time::sleep(script.delay).await;
                }
                yield Ok(LlmEvent::Delta(delta));
            }
            match script.ending {
                Ending::Complete(completion) => {
                    watch.finish();
                    yield Ok(LlmEvent::Completed(completion));
                }
                Ending::Fail(error) => {
                    watch.finish();
                    yield Err(error);
                }
                Ending::EndOfStream => watch.finish(),
                Ending::Hang => futures::future::pending::<()>().await,
            }
        })
    }
}

#[cfg(test)]
mod tests {

    use super::*;
    use confab_core::model::Role;
    use confab_core::ports::LlmMessage;
    use futures::StreamExt;
    use tokio::time::Instant;

    fn request(text: &str) -> LlmRequest {
        LlmRequest {
            model: "m".to_owned(),
            instructions: Some("sys".to_owned()),
            messages: vec![LlmMessage {
                role: Role::User,
                content: text.to_owned(),
            }],
            max_output_tokens: Some(100),
            attachments: Vec::new(),
            sources: Vec::new(),
        }
    }

    #[tokio::test]
    async fn replying_streams_the_deltas_then_completes() {
        let llm = ScriptedLlm::replying(&["Hel", "lo"]);
        let events: Vec<_> = llm.stream(request("hi")).collect().await;
        assert_eq!(
            events,
            vec![
                Ok(LlmEvent::Delta("Hel".into())),
                Ok(LlmEvent::Delta("lo".into())),
                Ok(LlmEvent::Completed(Script::default_completion(2))),
            ]
        );
        assert_eq!(llm.streams_finished(), 1);
        assert_eq!(llm.streams_dropped_early(), 0);
    }

    #[tokio::test]
    async fn failing_after_yields_the_error_last() {
        let error = LlmError::Upstream {
            status: Some(500),
            code: None,
            message: "boom".into(),
        };
        let llm = ScriptedLlm::failing_after(&["a", "b"], error.clone());
        let events: Vec<_> = llm.stream(request("hi")).collect().await;
        assert_eq!(
            events,
            vec![
                Ok(LlmEvent::Delta("a".into())),
                Ok(LlmEvent::Delta("b".into())),
                Err(error)
            ]
        );
        let at_once: Vec<_> = ScriptedLlm::failing_after(&[], LlmError::ContentFilter)
            .stream(request("x"))
            .collect()
            .await;
        assert_eq!(at_once, vec![Err(LlmError::ContentFilter)]);
    }

    #[tokio::test]
    async fn truncated_streams_end_without_a_terminal_event() {
        let llm = ScriptedLlm::truncated_after(&["a"]);
        let events: Vec<_> = llm.stream(request("hi")).collect().await;
        assert_eq!(events, vec![Ok(LlmEvent::Delta("a".into()))]);
        assert_eq!(llm.streams_dropped_early(), 0);
    }

    #[tokio::test]
    async fn it_records_every_request() {
        let llm = ScriptedLlm::replying(&["x"]);
        let _ = llm.stream(request("one")).collect::<Vec<_>>().await;
        let clone = llm.clone();
        let _ = clone.stream(request("two")).collect::<Vec<_>>().await;
        assert_eq!(llm.requests(), vec![request("one"), request("two")]);
        assert_eq!(llm.streams_started(), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn a_hanging_stream_never_ends_and_counts_as_dropped_early() {
        let llm = ScriptedLlm::hanging_after(&["a"]);
        let mut stream = llm.stream(request("hi"));
        assert_eq!(stream.next().await, Some(Ok(LlmEvent::Delta("a".into()))));
        let next = tokio::time::timeout(Duration::from_secs(3600), stream.next()).await;
        assert!(next.is_err(), "a hanging stream yielded {next:?}");
        assert_eq!(llm.streams_dropped_early(), 0);
        drop(stream);
        assert_eq!(llm.streams_dropped_early(), 1);
        assert_eq!(llm.streams_finished(), 0);
    }

    #[tokio::test]
    async fn a_stream_dropped_before_its_end_is_counted_and_a_finished_one_is_not() {
        let llm = ScriptedLlm::replying(&["a", "b"]);
        let mut stream = llm.stream(request("hi"));
        let _ = stream.next().await;
        drop(stream);
        drop(llm.stream(request("never polled")));
        assert_eq!(llm.streams_dropped_early(), 2);
        // Dropping right after the terminal event (without polling for the end) is not early.
        let mut stream = llm.stream(request("hi"));
        while let Some(Ok(LlmEvent::Delta(_))) = stream.next().await {}
        drop(stream);
        assert_eq!(llm.streams_dropped_early(), 2);
        assert_eq!(llm.streams_finished(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn with_delay_pauses_before_each_delta() {
        let llm = ScriptedLlm::replying(&["a", "b", "c"]).with_delay(Duration::from_millis(100));
        let started = Instant::now();
        let events: Vec<_> = llm.stream(request("hi")).collect().await;
        assert_eq!(events.len(), 4);
        assert_eq!(started.elapsed(), Duration::from_millis(300));
    }

    #[tokio::test]
    async fn a_sequence_plays_scripts_in_order_and_repeats_the_last() {
        let llm = ScriptedLlm::sequence(vec![
            Script::failing_after(&[], LlmError::Truncated),
            Script::replying(&["ok"]),
        ]);
        let first: Vec<_> = llm.stream(request("1")).collect().await;
        assert_eq!(first, vec![Err(LlmError::Truncated)]);
        for _ in 0..2 {
            let next: Vec<_> = llm.stream(request("n")).collect().await;
            assert_eq!(next[0], Ok(LlmEvent::Delta("ok".into())));
        }
    }

    #[tokio::test]
    async fn with_completion_and_default_model_override_the_defaults() {
        let completion = Completion {
            usage: None,
            model: Some("other".into()),
            ..Completion::default()
        };
        let llm = ScriptedLlm::replying(&["a"])
            .with_completion(completion.clone())
            .with_default_model("m-9");
        assert_eq!(llm.default_model(), "m-9");
        assert_eq!(llm.provider(), "scripted");
        let events: Vec<_> = llm.stream(request("hi")).collect().await;
        assert_eq!(events.last(), Some(&Ok(LlmEvent::Completed(completion))));
    }
}
