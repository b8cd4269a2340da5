//! Fitting a conversation into the model's context window.
//!
//! The estimate: a message costs `ceil(chars / 4) + 4` tokens (about four characters per
//! token for English text with BPE tokenizers, plus the per-message framing), and the
//! instructions cost `ceil(chars / 4)`. The budget is the configured context size minus the
//! tokens reserved for the reply. Whole messages are dropped from the oldest end until the
//! rest fits; the instructions and the new message are always kept, even when they alone
//! exceed the budget (the provider then decides).

use crate::ports::LlmMessage;

/// Tokens reserved per message for role and framing.
pub const MESSAGE_OVERHEAD_TOKENS: u32 = 4;

/// The estimated token count of a piece of text.
#[must_use]
pub fn estimate_text_tokens(text: &str) -> u32 {
    let chars = u32::try_from(text.chars().count()).unwrap_or(u32::MAX);
    chars.div_ceil(4)
}

/// The estimated token count of one message, framing included.
#[must_use]
pub fn estimate_message_tokens(message: &LlmMessage) -> u32 {
    estimate_text_tokens(&message.content).saturating_add(MESSAGE_OVERHEAD_TOKENS)
}

/// Keeps the newest messages of `history` that fit in `context_tokens - output_reserve`
/// next to `instructions` and `new_message`. Returns the kept history, oldest first.
#[must_use]
pub fn fit_history(
    instructions: Option<&str>,
    history: Vec<LlmMessage>,
    new_message: &LlmMessage,
    context_tokens: u32,
    output_reserve: u32,
) -> Vec<LlmMessage> {
    let fixed = instructions
        .map_or(0, estimate_text_tokens)
        .saturating_add(estimate_message_tokens(new_message));
    let mut left = context_tokens
        .saturating_sub(output_reserve)
        .saturating_sub(fixed);
    let mut keep_from = history.len();
    for (index, message) in history.iter().enumerate().rev() {
        let cost = estimate_message_tokens(message);
        if cost > left {
            break;
        }
        left -= cost;
        keep_from = index;
    }
    history.into_iter().skip(keep_from).collect()
}

/// Cuts `text` to at most `tokens` estimated tokens. Returns the text as sent and its cost.
/// A text that does not fit keeps its beginning and ends with a visible note
/// `[… cut: N characters not sent]` (N counts the characters left out), itself inside the
/// budget when there is room for it; with no room at all only the note remains.
#[must_use]
pub fn cut_to_fit(text: &str, tokens: u32) -> (String, u32) {
    let cost = estimate_text_tokens(text);
    if cost <= tokens {
        return (text.to_owned(), cost);
    }
    let total = text.chars().count();
    // The note's length with the largest N it could carry: the real note is no longer.
    let note_chars = cut_note(total).chars().count();
    let room = usize::try_from(tokens)
        .unwrap_or(usize::MAX)
        .saturating_mul(4)
        .saturating_sub(note_chars + 1);
    let kept_end = text.char_indices().nth(room).map_or(text.len(), |(i, _)| i);
    let kept = &text[..kept_end];
    let cut = total - kept.chars().count();
    let sent = if kept.is_empty() {
        cut_note(cut)
    } else {
        format!("{kept}\n{}", cut_note(cut))
    };
    let cost = estimate_text_tokens(&sent);
    (sent, cost)
}

/// The note that ends a text cut to fit the budget.
#[must_use]
pub fn cut_note(characters: usize) -> String {
    format!("[… cut: {characters} characters not sent]")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Role;

    fn msg(role: Role, text: &str) -> LlmMessage {
        LlmMessage {
            role,
            content: text.to_owned(),
        }
    }

    #[test]
    fn a_text_that_fits_is_sent_whole() {
        assert_eq!(cut_to_fit("abcdefgh", 2), ("abcdefgh".to_owned(), 2));
    }

    #[test]
    fn a_text_that_does_not_fit_is_cut_with_a_note_inside_the_budget() {
        let text = "é".repeat(1_000);
        let (sent, cost) = cut_to_fit(&text, 50);
        assert!(cost <= 50, "{cost}");
        assert_eq!(cost, estimate_text_tokens(&sent));
        let (kept, note) = sent.split_once('\n').unwrap();
        assert!(kept.chars().all(|c| c == 'é') && !kept.is_empty());
        let cut = 1_000 - kept.chars().count();
        assert_eq!(note, format!("[… cut: {cut} characters not sent]"));
        // Nothing fits: only the note is sent.
        assert_eq!(cut_to_fit(&text, 0).0, "[… cut: 1000 characters not sent]");
    }

    #[test]
    fn estimates_round_up() {
        assert_eq!(estimate_text_tokens(""), 0);
        assert_eq!(estimate_text_tokens("abcd"), 1);
        assert_eq!(estimate_text_tokens("abcde"), 2);
        assert_eq!(estimate_message_tokens(&msg(Role::User, "abcd")), 5);
    }

    #[test]
    fn everything_is_kept_when_it_fits() {
        let history = vec![msg(Role::User, "a"), msg(Role::Assistant, "b")];
        let kept = fit_history(
            Some("sys"),
            history.clone(),
            &msg(Role::User, "c"),
            1000,
            100,
        );
        assert_eq!(kept, history);
    }

    #[test]
    fn the_oldest_messages_are_dropped_first() {
        // Each message of 40 chars costs 14 tokens.
        let text = "x".repeat(40);
        let history: Vec<_> = (0..5).map(|_| msg(Role::User, &text)).collect();
        let new = msg(Role::User, &text);
        // Budget 100 - reserve 30 = 70; new message 14 → 56 left → 4 history messages fit.
        let kept = fit_history(None, history, &new, 100, 30);
        assert_eq!(kept.len(), 4);
        // With a 12-token prompt only 3 fit.
        let history: Vec<_> = (0..5)
            .map(|i| msg(Role::User, &format!("{i}{}", "x".repeat(39))))
            .collect();
        let kept = fit_history(Some(&"p".repeat(48)), history, &new, 100, 30);
        assert_eq!(kept.len(), 3);
        assert!(
            kept[0].content.starts_with('2'),
            "the newest three remain, oldest first"
        );
    }

    #[test]
    fn a_newer_message_that_does_not_fit_stops_older_ones_from_jumping_the_gap() {
        let history = vec![
            msg(Role::User, "old"),
            msg(Role::Assistant, &"y".repeat(400)),
        ];
        let kept = fit_history(None, history, &msg(Role::User, "q"), 60, 10);
        assert!(kept.is_empty());
    }

    #[test]
    fn the_new_message_is_kept_even_when_over_budget() {
        let kept = fit_history(
            Some("p"),
            vec![msg(Role::User, "h")],
            &msg(Role::User, &"z".repeat(10_000)),
            100,
            50,
        );
        assert!(kept.is_empty());
    }
}
