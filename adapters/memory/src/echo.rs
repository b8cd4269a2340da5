//! `EchoLlm`: the built-in demo model. It needs no network and no key: it repeats the last
//! user message back, word by word, so the whole chat path can be tried out locally.

use std::time::Duration;

use confab_core::budget::{estimate_message_tokens, estimate_text_tokens};
use confab_core::model::{Role, Usage};
use confab_core::ports::{Completion, LlmEvent, LlmEventStream, LlmRequest, LlmStream};

/// The demo model: a deterministic reply built from the last user message, streamed one word
/// at a time with `pace` between words, then `Completed` with an estimated `Usage`.
#[derive(Clone, Debug)]
pub struct EchoLlm {
    pace: Duration,
}

impl EchoLlm {
    /// The provider name reported in logs and `/api/config`.
    pub const PROVIDER: &'static str = "echo";
    /// The model used when a request names none.
    pub const DEFAULT_MODEL: &'static str = "echo-1";

    /// A demo model pausing `pace` between words (`Duration::ZERO`: no pause at all).
    #[must_use]
    pub const fn new(pace: Duration) -> Self {
        Self { pace }
    }

    /// The full reply the model streams for `request`: it names the files attached to the
    /// message, with their sizes, and ends with the sources it was given, cited as a real
    /// model would (`Sources: [1] facts.txt, [2] …`).
    #[must_use]
    pub fn reply_to(request: &LlmRequest) -> String {
        let said = request
            .messages
            .iter()
            .rev()
            .find(|m| m.role == Role::User)
            .map_or("", |m| m.content.as_str());
        let note = match request.instructions.as_deref().map(str::trim) {
            Some(instructions) if !instructions.is_empty() => format!(
                "I am the echo demo model; I was given instructions ({} characters) but I only repeat what I hear.",
                instructions.chars().count()
            ),
            _ => "I am the echo demo model and I was given no instructions.".to_owned(),
        };
        let files = request
            .attachments
            .iter()
            .map(|file| format!("{} ({} bytes)", file.filename, file.size_bytes))
            .collect::<Vec<_>>();
        let mut reply = if files.is_empty() {
            format!("You said: \"{said}\". {note}")
        } else {
            format!(
                "You said: \"{said}\". You attached {}. {note}",
                files.join(", ")
            )
        };
        if !request.sources.is_empty() {
            let cited = request
                .sources
                .iter()
                .map(|source| format!("[{}] {}", source.n, source.filename))
                .collect::<Vec<_>>();
            reply.push_str("\n\nSources: ");
            reply.push_str(&cited.join(", "));
        }
        reply
    }

    /// The usage the model reports for `request` and its `reply`, estimated as the context
    /// budget estimates it.
    #[must_use]
    pub fn usage_for(request: &LlmRequest, reply: &str) -> Usage {
        let sources = confab_core::knowledge::sources_message(&request.sources)
            .map_or(0, |message| estimate_text_tokens(&message));
        let input = request.messages.iter().map(estimate_message_tokens).fold(
            request
                .instructions
                .as_deref()
                .map_or(0, estimate_text_tokens)
                .saturating_add(sources),
            u32::saturating_add,
        );
        Usage {
            input_tokens: input,
            output_tokens: estimate_text_tokens(reply),
        }
    }
}

impl LlmStream for EchoLlm {
    fn provider(&self) -> &str {
        Self::PROVIDER
    }

    fn default_model(&self) -> &str {
        Self::DEFAULT_MODEL
    }

    fn stream(&self, request: LlmRequest) -> LlmEventStream {
        let reply = Self::reply_to(&request);
        let completion = Completion {
            usage: Some(Self::usage_for(&request, &reply)),
            model: Some(if request.model.is_empty() {
                Self::DEFAULT_MODEL.to_owned()
            } else {
                request.model
            }),
            ..Completion::default()
        };
        let words: Vec<String> = reply
            .split_inclusive(char::is_whitespace)
            .map(str::to_owned)
            .collect();
        let pace = self.pace;
        Box::pin(async_stream::stream! {
            for (index, word) in words.into_iter().enumerate() {
                if index > 0 && !pace.is_zero() {
                    tokio::time::sleep(pace).await;
                }
                yield Ok(LlmEvent::Delta(word));
            }
            yield Ok(LlmEvent::Completed(completion));
        })
    }
}

#[cfg(test)]
mod tests {

    use super::*;
    use confab_core::ports::LlmMessage;
    use futures::StreamExt;
    use tokio::time::Instant;

    fn request(instructions: Option<&str>, messages: &[(Role, &str)]) -> LlmRequest {
        LlmRequest {
            model: String::new(),
            instructions: instructions.map(str::to_owned),
            messages: messages
                .iter()
                .map(|(role, content)| LlmMessage {
                    role: *role,
                    content: (*content).to_owned(),
                })
                .collect(),
            max_output_tokens: None,
            attachments: Vec::new(),
            sources: Vec::new(),
        }
    }

    async fn collect(stream: LlmEventStream) -> (Vec<String>, Vec<Completion>) {
        let events: Vec<_> = stream.collect().await;
        let mut deltas = Vec::new();
        let mut completions = Vec::new();
        for event in events {
            match event.unwrap() {
                LlmEvent::Delta(text) => {
                    assert!(completions.is_empty(), "a delta came after Completed");
                    deltas.push(text);
                }
                LlmEvent::Completed(c) => completions.push(c),
            }
        }
        (deltas, completions)
    }

    #[test]
    fn the_reply_names_the_attached_files_and_their_sizes_in_order() {
        let mut req = request(None, &[(Role::User, "read these")]);
        assert!(!EchoLlm::reply_to(&req).contains("attached"));
        req.attachments = [("plan.pdf", 2_048), ("notes.txt", 11)]
            .into_iter()
            .map(|(name, size)| {
                confab_core::ports::LlmAttachment::named(name, "application/pdf", size)
            })
            .collect();
        let text = EchoLlm::reply_to(&req);
        assert!(
            text.starts_with(
                "You said: \"read these\". You attached plan.pdf (2048 bytes), notes.txt (11 bytes). "
            ),
            "{text}"
        );
    }

    #[test]
    fn the_reply_ends_with_the_sources_it_was_given_and_counts_them_as_input() {
        let mut req = request(None, &[(Role::User, "who is the mascot?")]);
        let bare = EchoLlm::usage_for(&req, "x").input_tokens;
        req.sources = ["facts.txt", "more.md"]
            .into_iter()
            .zip(1..)
            .map(|(filename, n)| confab_core::ports::LlmSource {
                n,
                filename: filename.to_owned(),
                text: "The mascot is a quokka.".to_owned(),
            })
            .collect();
        let text = EchoLlm::reply_to(&req);
        assert!(
            text.ends_with("\n\nSources: [1] facts.txt, [2] more.md"),
            "{text}"
        );
        assert!(EchoLlm::usage_for(&req, "x").input_tokens > bare);
    }

    #[tokio::test]
    async fn the_reply_repeats_the_last_user_message_word_by_word() {
        let req = request(
            None,
            &[
                (Role::User, "first"),
                (Role::Assistant, "ok"),
                (Role::User, "hello there"),
            ],
        );
        let (deltas, completions) = collect(EchoLlm::new(Duration::ZERO).stream(req.clone())).await;
        let text = deltas.concat();
        assert_eq!(text, EchoLlm::reply_to(&req));
        assert!(text.starts_with("You said: \"hello there\". "), "{text}");
        assert!(text.contains("no instructions"), "{text}");
        assert_eq!(deltas[0], "You ");
        assert!(deltas.len() > 5);
        for delta in &deltas[..deltas.len() - 1] {
            assert!(
                delta.ends_with(' '),
                "{delta:?} is not a word and its space"
            );
            assert_eq!(delta.split_whitespace().count(), 1);
        }
        assert_eq!(completions.len(), 1, "exactly one Completed");
    }

    #[tokio::test]
    async fn the_reply_says_whether_there_are_instructions() {
        let req = request(Some("Be brief."), &[(Role::User, "hi")]);
        let text = EchoLlm::reply_to(&req);
        assert!(text.contains("instructions (9 characters)"), "{text}");
        let blank = request(Some("   "), &[(Role::User, "hi")]);
        assert!(EchoLlm::reply_to(&blank).contains("no instructions"));
    }

    #[tokio::test]
    async fn the_completion_reports_an_estimated_usage_and_the_model() {
        let mut req = request(Some("abcdefgh"), &[(Role::User, "abcd")]);
        let (deltas, completions) = collect(EchoLlm::new(Duration::ZERO).stream(req.clone())).await;
        let completion = &completions[0];
        let usage = completion.usage.unwrap();
        // instructions 2 tokens; the message 1 + 4 framing.
        assert_eq!(usage.input_tokens, 7);
        assert_eq!(usage.output_tokens, estimate_text_tokens(&deltas.concat()));
        assert_eq!(completion.model.as_deref(), Some("echo-1"));
        req.model = "echo-2".to_owned();
        let (_, completions) = collect(EchoLlm::new(Duration::ZERO).stream(req)).await;
        assert_eq!(completions[0].model.as_deref(), Some("echo-2"));
    }

    #[tokio::test(start_paused = true)]
    async fn words_are_paced() {
        let req = request(None, &[(Role::User, "one two")]);
        let words = EchoLlm::reply_to(&req)
            .split_inclusive(char::is_whitespace)
            .count();
        let started = Instant::now();
        let (deltas, _) = collect(EchoLlm::new(Duration::from_millis(30)).stream(req)).await;
        assert_eq!(deltas.len(), words);
        let pauses = u32::try_from(words - 1).unwrap();
        assert_eq!(started.elapsed(), Duration::from_millis(30) * pauses);
    }

    #[tokio::test(start_paused = true)]
    async fn zero_pace_never_sleeps() {
        let req = request(None, &[(Role::User, "fast")]);
        let started = Instant::now();
        let _ = collect(EchoLlm::new(Duration::ZERO).stream(req)).await;
        assert_eq!(started.elapsed(), Duration::ZERO);
    }

    #[test]
    fn it_names_itself() {
        let echo = EchoLlm::new(Duration::ZERO);
        assert_eq!(echo.provider(), "echo");
        assert_eq!(echo.default_model(), "echo-1");
    }

    #[tokio::test]
    async fn without_a_user_message_it_still_completes() {
        let (deltas, completions) =
            collect(EchoLlm::new(Duration::ZERO).stream(request(None, &[]))).await;
        assert!(deltas.concat().starts_with("You said: \"\"."));
        assert_eq!(completions.len(), 1);
    }
}
