//! Token counts with OpenAI's own tokenizers (`tiktoken-rs`, data embedded in the crate: no
//! download), for replies whose provider reported no usage.

use confab_core::usage::TokenCounter;

/// Counts tokens for the OpenAI model families `tiktoken-rs` knows (`gpt-4o`, `gpt-4.1`,
/// `o3`, `gpt-3.5-turbo`, …); `None` for any other model (its tokens are then estimated).
#[derive(Clone, Copy, Debug, Default)]
pub struct TiktokenCounter;

impl TokenCounter for TiktokenCounter {
    fn count(&self, model: &str, text: &str) -> Option<u64> {
        tiktoken_rs::tokenizer::get_tokenizer(model)?;
        let bpe = tiktoken_rs::bpe_for_model(model).ok()?;
        u64::try_from(bpe.encode_ordinary(text).len()).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn openai_models_are_counted_and_others_are_not() {
        let counter = TiktokenCounter;
        assert_eq!(counter.count("gpt-4o-mini", "hello world"), Some(2));
        assert_eq!(counter.count("gpt-4o-mini", ""), Some(0));
        assert_eq!(counter.count("llama3.1:8b", "hello world"), None);
    }
}
