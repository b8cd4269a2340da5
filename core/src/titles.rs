//! Titles written for a conversation after its first reply (issue 17): by a model, or — for
//! the echo demo model — from the first words of the first message. Pure: the chat use case
//! runs a [`Titler`] after `done`, off the reply's path.

use std::sync::Arc;

use async_trait::async_trait;
use futures::StreamExt as _;

use crate::error::LlmError;
use crate::model::Role;
use crate::ports::{Completion, LlmEvent, LlmMessage, LlmRequest, LlmStream};

/// The longest title, in characters.
pub const MAX_TITLE_CHARS: usize = 60;

/// Writes a conversation's title from its first message.
#[async_trait]
pub trait Titler: Send + Sync + 'static {
    /// A title for a conversation that begins with `first_message`; cleaned by the caller.
    async fn title(&self, first_message: &str) -> Result<String, LlmError>;

    /// [`Titler::title`], with the model call it made (for the usage ledger); `None` when it
    /// asked no model.
    async fn title_with_call(
        &self,
        first_message: &str,
    ) -> (Result<String, LlmError>, Option<TitleCall>) {
        (self.title(first_message).await, None)
    }
}

/// The model call a title took: what was asked, what came back, and the provider's end.
#[derive(Clone, Debug)]
pub struct TitleCall {
    pub request: LlmRequest,
    pub output: String,
    pub completion: Option<Completion>,
}

/// The first words of the first message (what the echo demo model does).
#[derive(Clone, Copy, Debug, Default)]
pub struct FirstWords;

#[async_trait]
impl Titler for FirstWords {
    async fn title(&self, first_message: &str) -> Result<String, LlmError> {
        Ok(first_message.to_owned())
    }
}

/// Asks a model for the title.
pub struct LlmTitler {
    llm: Arc<dyn LlmStream>,
    model: String,
}

impl LlmTitler {
    #[must_use]
    pub fn new(llm: Arc<dyn LlmStream>, model: String) -> Self {
        Self { llm, model }
    }
}

/// What the title model is told.
const INSTRUCTIONS: &str = "Write a short title (at most 60 characters) for a conversation \
    that begins with the user's message below, in the language of that message. Answer with \
    the title only: no quotes, no final period.";

#[async_trait]
impl Titler for LlmTitler {
    async fn title(&self, first_message: &str) -> Result<String, LlmError> {
        self.title_with_call(first_message).await.0
    }

    async fn title_with_call(
        &self,
        first_message: &str,
    ) -> (Result<String, LlmError>, Option<TitleCall>) {
        let request = LlmRequest {
            model: self.model.clone(),
            instructions: Some(INSTRUCTIONS.to_owned()),
            messages: vec![LlmMessage {
                role: Role::User,
                content: first_message.to_owned(),
            }],
            max_output_tokens: Some(32),
            attachments: Vec::new(),
            sources: Vec::new(),
        };
        let mut events = self.llm.stream(request.clone());
        let mut text = String::new();
        let mut completion = None;
        let result = loop {
            match events.next().await {
                Some(Ok(LlmEvent::Delta(piece))) => text.push_str(&piece),
                Some(Ok(LlmEvent::Completed(done))) => {
                    completion = Some(done);
                    break Ok(text.clone());
                }
                Some(Err(e)) => break Err(e),
                None => break Err(LlmError::Truncated),
            }
        };
        let call = TitleCall {
            request,
            output: text,
            completion,
        };
        (result, Some(call))
    }
}

/// A title as stored: its first line, without quotes, white space collapsed, at most
/// [`MAX_TITLE_CHARS`] characters (cut at a word when one ends late enough); `None` when
/// nothing is left.
#[must_use]
pub fn clean_title(raw: &str) -> Option<String> {
    let line = raw.lines().map(str::trim).find(|l| !l.is_empty())?;
    let unquoted: String = line
        .chars()
        .filter(|c| !matches!(c, '"' | '\'' | '“' | '”' | '‘' | '’' | '«' | '»' | '`'))
        .collect();
    let words: Vec<&str> = unquoted.split_whitespace().collect();
    let mut title = String::new();
    for word in words {
        let wanted = title.chars().count() + usize::from(!title.is_empty()) + word.chars().count();
        if wanted > MAX_TITLE_CHARS {
            if title.chars().count() < MAX_TITLE_CHARS / 2 {
                // One long word: cut it.
                if !title.is_empty() {
                    title.push(' ');
                }
                title.push_str(word);
                title = title.chars().take(MAX_TITLE_CHARS).collect();
            }
            break;
        }
        if !title.is_empty() {
            title.push(' ');
        }
        title.push_str(word);
    }
    let title = title.trim_end_matches(['.', ' ']).to_owned();
    (!title.is_empty()).then_some(title)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_title_is_one_line_without_quotes_and_at_most_60_characters() {
        assert_eq!(
            clean_title("  \"Trip to Lisbon.\"\nmore").as_deref(),
            Some("Trip to Lisbon")
        );
        assert_eq!(clean_title(" \n  ").as_deref(), None);
        assert_eq!(clean_title("“”").as_deref(), None);
        let long = "word ".repeat(30);
        let cut = clean_title(&long).unwrap();
        assert!(cut.chars().count() <= MAX_TITLE_CHARS, "{cut}");
        assert!(cut.ends_with("word"), "cut at a word: {cut}");
        let one = "x".repeat(100);
        assert_eq!(clean_title(&one).unwrap().chars().count(), MAX_TITLE_CHARS);
        let accents = "é".repeat(70);
        assert_eq!(
            clean_title(&accents).unwrap().chars().count(),
            MAX_TITLE_CHARS
        );
    }

    #[test]
    fn first_words_keeps_the_message_for_cleaning() {
        let title = futures::executor::block_on(FirstWords.title("Plan a trip to Lisbon in May"));
        assert_eq!(
            clean_title(&title.unwrap()).as_deref(),
            Some("Plan a trip to Lisbon in May")
        );
    }
}
