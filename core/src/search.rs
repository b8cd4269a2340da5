//! Full-text search over a user's messages and conversation titles (issue 18).
//!
//! A query is parsed once, here, into words folded the way every store folds text
//! (lowercase, diacritics removed: "Café" is "cafe"): quoted phrases, other words, and the
//! last word — when the query does not end after it — matched as a prefix (search as you
//! type). Words hold letters and digits only, so no user input can become query syntax of
//! a database's full-text engine; each adapter writes its own expression from them
//! ([`SearchQuery::fts5`], [`SearchQuery::websearch`]).
//!
//! Snippets are made here too, from the stored text: HTML-escaped, with the matched words
//! in `<mark>`…`</mark>` and nothing else that could be markup.

use unicode_normalization::UnicodeNormalization;
use unicode_normalization::char::is_combining_mark;

use crate::ids::{ConversationId, MessageId, ProjectId};
use crate::model::{Role, Timestamp};
use crate::values::ValidationError;

/// The longest query, in characters.
pub const MAX_QUERY_CHARS: usize = 500;
/// At most this many words of a query are searched.
pub const MAX_QUERY_WORDS: usize = 32;
/// About how many characters of text a snippet shows.
pub const SNIPPET_CHARS: usize = 160;
/// How many words before the first match a snippet starts.
const SNIPPET_LEAD_WORDS: usize = 6;

/// A parsed search query. Every word is folded ([`fold`]) and holds letters and digits only.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SearchQuery {
    /// Phrases (a single word is a phrase of one), each to be found as written.
    phrases: Vec<Vec<String>>,
    /// The last word, matched as a prefix of a word.
    prefix: Option<String>,
}

impl SearchQuery {
    /// Parses `raw`: `"…"` quotes a phrase (an unclosed quote runs to the end), other words
    /// stand alone; all must occur. The last word is a prefix when `raw` ends with it
    /// (unquoted, no space after it). Blank or too long (over [`MAX_QUERY_CHARS`]) →
    /// `ValidationError` on `q`. A query without any letter or digit is empty: it finds
    /// nothing.
    pub fn parse(raw: &str) -> Result<Self, ValidationError> {
        if raw.trim().is_empty() {
            return Err(ValidationError::new("q", "must not be blank"));
        }
        if raw.chars().count() > MAX_QUERY_CHARS {
            return Err(ValidationError::new(
                "q",
                format!("must be at most {MAX_QUERY_CHARS} characters"),
            ));
        }
        let mut phrases: Vec<Vec<String>> = Vec::new();
        let mut quoted = false;
        for (i, part) in raw.split('"').enumerate() {
            quoted = i % 2 == 1;
            let words: Vec<String> = words_of(part).map(|(_, _, w)| w).collect();
            if words.is_empty() {
                continue;
            }
            if quoted {
                phrases.push(words);
            } else {
                phrases.extend(words.into_iter().map(|w| vec![w]));
            }
        }
        let ends_in_word = raw.chars().last().is_some_and(char::is_alphanumeric);
        let mut prefix = None;
        if ends_in_word && !quoted && phrases.last().is_some_and(|p| p.len() == 1) {
            prefix = phrases.pop().and_then(|mut p| p.pop());
        }
        // Bound the work: at most MAX_QUERY_WORDS words in all.
        let mut left = MAX_QUERY_WORDS - usize::from(prefix.is_some());
        phrases.retain_mut(|p| {
            p.truncate(left);
            left -= p.len();
            !p.is_empty()
        });
        phrases.dedup();
        Ok(Self { phrases, prefix })
    }

    /// Whether the query has no word at all (it finds nothing).
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.phrases.is_empty() && self.prefix.is_none()
    }

    /// The phrases to find (single words are phrases of one).
    #[must_use]
    pub fn phrases(&self) -> &[Vec<String>] {
        &self.phrases
    }

    /// The last word, matched as the start of a word.
    #[must_use]
    pub fn prefix(&self) -> Option<&str> {
        self.prefix.as_deref()
    }

    /// An FTS5 MATCH expression: each phrase in double quotes, the prefix as `"word"*`,
    /// implicitly AND-ed. Words are letters and digits, so nothing is FTS5 syntax.
    #[must_use]
    pub fn fts5(&self) -> String {
        let mut parts: Vec<String> = self
            .phrases
            .iter()
            .map(|p| format!("\"{}\"", p.join(" ")))
            .collect();
        if let Some(prefix) = &self.prefix {
            parts.push(format!("\"{prefix}\"*"));
        }
        parts.join(" ")
    }

    /// Whether the query has a phrase of more than one word (whose words' order and
    /// adjacency a store may check on the text: [`SearchQuery::fts5_words`]).
    #[must_use]
    pub fn has_phrase(&self) -> bool {
        self.phrases.iter().any(|p| p.len() > 1)
    }

    /// An FTS5 MATCH expression of the query's words without their order: every word of
    /// every phrase quoted on its own, and the prefix as `"word"*`, implicitly AND-ed. It
    /// matches every text that [`SearchQuery::fts5`] matches (and more: a phrase's words
    /// apart); [`SearchQuery::matches`] on the text then decides. FTS5 finds a phrase by
    /// checking positions in every row that has all its words, whoever wrote it; the words
    /// alone it finds by seeking through the entries asked for (e.g. one owner's).
    #[must_use]
    pub fn fts5_words(&self) -> String {
        let mut words: Vec<&str> = self.phrases.iter().flatten().map(String::as_str).collect();
        words.sort_unstable();
        words.dedup();
        let mut parts: Vec<String> = words.iter().map(|w| format!("\"{w}\"")).collect();
        if let Some(prefix) = &self.prefix {
            parts.push(format!("\"{prefix}\"*"));
        }
        parts.join(" ")
    }

    /// The phrases for PostgreSQL's `websearch_to_tsquery`, quoted (`"a b" "c"`); empty when
    /// the query is only a prefix. The prefix goes to `to_tsquery` as `word:*`.
    #[must_use]
    pub fn websearch(&self) -> String {
        self.phrases
            .iter()
            .map(|p| format!("\"{}\"", p.join(" ")))
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// Whether `text` matches: every phrase occurs as consecutive words and some word starts
    /// with the prefix. The reference semantics (the in-memory store uses it).
    #[must_use]
    pub fn matches(&self, text: &str) -> bool {
        self.occurrences(text) > 0
    }

    /// Whether `text` has every word of the query's phrases (in any order, apart or not)
    /// and a word starting with the prefix: what [`SearchQuery::fts5_words`] matches. A
    /// store that finds phrases by their words alone may ask how many of its candidates
    /// have them, to tell common words from telling ones.
    #[must_use]
    pub fn has_words(&self, text: &str) -> bool {
        if self.is_empty() {
            return false;
        }
        let words = folded_words(text);
        self.phrases
            .iter()
            .flatten()
            .all(|wanted| words.iter().any(|w| same(w.as_bytes(), wanted.as_bytes())))
            && self
                .prefix
                .as_deref()
                .is_none_or(|p| words.iter().any(|w| starts(w.as_bytes(), p.as_bytes())))
    }

    /// How many matching words `text` has, or 0 when it does not match.
    ///
    /// One pass over the text's words, without collecting them: each phrase is followed
    /// with a bit set of how many of its first words the last words read match (shift-and;
    /// a query has at most [`MAX_QUERY_WORDS`] words, so a phrase fits in a `u64`). A
    /// phrase search checks up to thousands of candidate texts, so this is its inner loop:
    /// a word whose length no query word has (and shorter than the prefix) matches nothing,
    /// which one bit test tells, and most words of a text are such words. Scoring 3,333
    /// texts like the search benchmark's (463 KB) for `"of the"`: 15.4 M → 11.2 M
    /// instructions, with the loop's body inlined and bytes classified by a table.
    #[must_use]
    pub fn occurrences(&self, text: &str) -> usize {
        if self.is_empty() {
            return 0;
        }
        if text.is_ascii() {
            self.occurrences_in(ascii_words(text))
        } else {
            self.occurrences_in(words_of(text).map(|(_, _, w)| w))
        }
    }

    /// [`SearchQuery::occurrences`] over a text's folded words (or ASCII words as written:
    /// the comparisons ignore ASCII case). One loop per kind of word source, so that the
    /// loop's body is inlined into it.
    fn occurrences_in<W: AsRef<[u8]>>(&self, words: impl Iterator<Item = W>) -> usize {
        let phrases = &self.phrases[..self.phrases.len().min(MAX_QUERY_WORDS)];
        let lengths = self.word_lengths();
        let prefix = self.prefix.as_deref().map(str::as_bytes);
        let mut states = [0_u64; MAX_QUERY_WORDS];
        let mut found = [0_usize; MAX_QUERY_WORDS];
        let mut prefixed = 0_usize;
        // Whether some phrase has its first words matched by the last words read.
        let mut open = false;
        for word in words {
            let word = word.as_ref();
            if lengths & length_bit(word.len()) == 0 {
                if open {
                    states.fill(0);
                    open = false;
                }
                continue;
            }
            open = false;
            for ((phrase, state), found) in phrases.iter().zip(&mut states).zip(&mut found) {
                // Bit j of `candidates`: the words before this one match the phrase's
                // first j.
                let mut candidates = (*state << 1) | 1;
                let mut next = 0_u64;
                while candidates != 0 {
                    let j = candidates.trailing_zeros() as usize;
                    candidates &= candidates - 1;
                    if phrase
                        .get(j)
                        .is_some_and(|wanted| same(word, wanted.as_bytes()))
                    {
                        next |= 1 << j;
                    }
                }
                if next >> (phrase.len() - 1) & 1 == 1 {
                    *found += 1;
                }
                *state = next;
                open |= next != 0;
            }
            if prefix.is_some_and(|p| starts(word, p)) {
                prefixed += 1;
            }
        }
        let mut total = 0;
        for (phrase, found) in phrases.iter().zip(found) {
            if found == 0 {
                return 0;
            }
            total += found * phrase.len();
        }
        if prefix.is_some() {
            if prefixed == 0 {
                return 0;
            }
            total += prefixed;
        }
        total
    }

    /// The [`length_bit`]s of every length a word matching the query may have: its words'
    /// lengths, and every length from the prefix's up.
    fn word_lengths(&self) -> u64 {
        let words = self.phrases.iter().flatten().map(|w| length_bit(w.len()));
        let prefix = self
            .prefix
            .as_deref()
            .map_or(0, |p| !0_u64 << p.len().min(63));
        words.fold(prefix, |all, bit| all | bit)
    }

    /// The relevance of `text` to the query, from the text alone (how many of its words
    /// match, damped by its length), or `None` when it does not match. It depends on no
    /// other document — not on anyone else's messages — so a score, and a cursor holding
    /// one, tells nothing of what others wrote, and it stays put while others write.
    #[must_use]
    pub fn score(&self, text: &str) -> Option<f64> {
        let found = self.occurrences(text);
        if found == 0 {
            return None;
        }
        #[expect(clippy::cast_precision_loss, reason = "a score, not a count")]
        let score = found as f64 / (1.0 + whitespace_words(text) as f64).sqrt();
        Some(score)
    }

    /// Whether a folded word of a text is one the query looks for (for snippets).
    fn marks(&self, word: &str) -> bool {
        self.phrases.iter().flatten().any(|w| w == word)
            || self.prefix.as_deref().is_some_and(|p| word.starts_with(p))
    }
}

/// `text.split_whitespace().count()`, without decoding characters when the text is ASCII
/// (most messages; a phrase search scores up to thousands of them): the ASCII characters
/// that are Unicode white space are `\t`, `\n`, vertical tab, form feed, `\r` and space.
fn whitespace_words(text: &str) -> usize {
    if !text.is_ascii() {
        return text.split_whitespace().count();
    }
    let mut words = 0;
    let mut inside = false;
    for &b in text.as_bytes() {
        let space = matches!(b, b'\t'..=b'\r' | b' ');
        words += usize::from(inside && space);
        inside = !space;
    }
    words + usize::from(inside)
}

/// A database store ranks at most this many of the newest matching messages of the
/// searcher's (and as many titles), so that a common word or a short prefix costs a bounded
/// amount of work however many messages match (the in-memory store ranks every match).
pub const RANKED_CANDIDATES: u32 = 1_000;

/// `word` lowercased, with its diacritics removed ("Çafé" → "cafe").
#[must_use]
pub fn fold(word: &str) -> String {
    // Most words are ASCII: nothing to decompose, and lowercasing is a byte map (every
    // search ranks up to RANKED_CANDIDATES texts word by word, so this is its inner loop).
    if word.is_ascii() {
        return word.to_ascii_lowercase();
    }
    word.nfd()
        .filter(|c| !is_combining_mark(*c))
        .flat_map(char::to_lowercase)
        .collect()
}

/// The words of `text` as [`words_of`] folds them, compared with [`same`] and [`starts`]:
/// for an ASCII text (most messages) the words as written, borrowed — an ASCII word
/// folds to its lowercase, which the comparisons ignore — so that checking a candidate
/// allocates once, not once per word (a phrase search checks up to thousands of texts).
fn folded_words(text: &str) -> Vec<std::borrow::Cow<'_, str>> {
    if text.is_ascii() {
        ascii_words(text).map(std::borrow::Cow::Borrowed).collect()
    } else {
        words_of(text)
            .map(|(_, _, w)| std::borrow::Cow::Owned(w))
            .collect()
    }
}

/// The words of an ASCII `text` (runs of ASCII letters and digits), as
/// `text.split(|c: char| !c.is_ascii_alphanumeric()).filter(|w| !w.is_empty())` gives them,
/// found byte by byte: the `char` splitter decodes every character, and a search scores up
/// to thousands of candidate texts word by word (SQLite, `"of the"` at 1,000,000 messages:
/// 62.3 M → 60.2 M instructions a search).
fn ascii_words(text: &str) -> impl Iterator<Item = &str> + '_ {
    let bytes = text.as_bytes();
    let mut at = 0;
    std::iter::from_fn(move || {
        let rest = bytes.get(at..)?;
        let start = at + rest.iter().position(|&b| ALPHANUMERIC[usize::from(b)])?;
        let word = bytes.get(start..)?;
        let len = word
            .iter()
            .position(|&b| !ALPHANUMERIC[usize::from(b)])
            .unwrap_or(word.len());
        at = start + len;
        // Every byte of an ASCII text is a character boundary.
        text.get(start..at)
    })
}

/// Whether each byte is an ASCII letter or digit: one load a byte where
/// `u8::is_ascii_alphanumeric` compares ranges.
static ALPHANUMERIC: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 256 {
        #[expect(clippy::cast_possible_truncation, reason = "b < 256")]
        let byte = b as u8;
        table[b] = byte.is_ascii_alphanumeric();
        b += 1;
    }
    table
};

/// The bit of a word's length in [`SearchQuery::word_lengths`]: bit `len`, and bit 63 for
/// every length from 63 up.
const fn length_bit(len: usize) -> u64 {
    1 << if len < 63 { len } else { 63 }
}

/// Whether a word of [`folded_words`] is `wanted` (a folded query word).
fn same(word: &[u8], wanted: &[u8]) -> bool {
    word.eq_ignore_ascii_case(wanted)
}

/// Whether a word of [`folded_words`] starts with `prefix` (a folded query word).
fn starts(word: &[u8], prefix: &[u8]) -> bool {
    word.get(..prefix.len())
        .is_some_and(|head| head.eq_ignore_ascii_case(prefix))
}

/// The words of `text` (runs of letters, digits and combining marks), each with its byte
/// range and folded form.
fn words_of(text: &str) -> impl Iterator<Item = (usize, usize, String)> + '_ {
    let mut rest = text.char_indices().peekable();
    std::iter::from_fn(move || {
        let is_word = |c: char| c.is_alphanumeric() || is_combining_mark(c);
        let (start, _) = loop {
            let (i, c) = rest.next()?;
            if c.is_alphanumeric() {
                break (i, c);
            }
        };
        let mut end = text.len();
        while let Some(&(i, c)) = rest.peek() {
            if !is_word(c) {
                end = i;
                break;
            }
            rest.next();
        }
        let word = fold(&text[start..end]);
        Some((start, end, word))
    })
    .filter(|(_, _, w)| !w.is_empty())
}

/// `text` with `&`, `<`, `>`, `"` and `'` escaped for HTML.
#[must_use]
pub fn escape_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A short passage of `text` around its first match, HTML-escaped, each matched word in
/// `<mark>`…`</mark>`; `…` where it was cut. Starts at the text's beginning when no word
/// matches (the store's tokenizer may split words differently).
#[must_use]
pub fn snippet(text: &str, query: &SearchQuery) -> String {
    let words: Vec<(usize, usize, String)> = words_of(text).collect();
    let first = words.iter().position(|(_, _, w)| query.marks(w));
    let start_word = first.map_or(0, |i| i.saturating_sub(SNIPPET_LEAD_WORDS));
    let start = if start_word == 0 {
        0
    } else {
        words[start_word].0
    };
    // End at a word's end once about SNIPPET_CHARS characters are shown.
    let mut end = text.len();
    let mut shown = 0;
    let mut last_end = start;
    for (_, e, _) in &words[start_word..] {
        shown += text[last_end..*e].chars().count();
        last_end = *e;
        if shown >= SNIPPET_CHARS {
            end = *e;
            break;
        }
    }
    let mut out = String::new();
    if start > 0 {
        out.push('…');
    }
    let mut at = start;
    for (s, e, w) in words[start_word..].iter().take_while(|(_, e, _)| *e <= end) {
        if query.marks(w) {
            out.push_str(&escape_html(&text[at..*s]));
            out.push_str("<mark>");
            out.push_str(&escape_html(&text[*s..*e]));
            out.push_str("</mark>");
            at = *e;
        }
    }
    out.push_str(&escape_html(text[at..end].trim_end()));
    if end < text.len() {
        out.push('…');
    }
    out
}

/// One result: a message, or a conversation whose title matched (`message_id` and `role`
/// are `None` then, and `created_at` is the conversation's).
#[derive(Clone, Debug, PartialEq)]
pub struct SearchHit {
    pub conversation_id: ConversationId,
    /// The project of the conversation.
    pub project_id: ProjectId,
    pub conversation_title: Option<String>,
    pub message_id: Option<MessageId>,
    pub role: Option<Role>,
    pub created_at: Timestamp,
    /// The matched text as [`snippet`] writes it.
    pub snippet: String,
    /// Relevance, higher is better; comparable only within one store and one query.
    pub score: f64,
}

impl SearchHit {
    /// Where this hit stands in the order of results (a cursor points after it).
    #[must_use]
    pub fn key(&self) -> SearchKey {
        SearchKey {
            score: self.score,
            created_at: self.created_at,
            id: self
                .message_id
                .map_or_else(|| self.conversation_id.as_uuid(), |m| m.as_uuid()),
        }
    }
}

/// A place in the order of results: best score first, then newest, then highest id. The
/// id is the message's, or the conversation's for a title hit.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SearchKey {
    pub score: f64,
    pub created_at: Timestamp,
    pub id: uuid::Uuid,
}

impl SearchKey {
    /// Whether a result with this key comes strictly after `cursor` in the order.
    #[must_use]
    pub fn is_after(&self, cursor: &Self) -> bool {
        self.score < cursor.score
            || (self.score == cursor.score
                && (self.created_at < cursor.created_at
                    || (self.created_at == cursor.created_at && self.id < cursor.id)))
    }

    /// The order of results: `Less` comes first.
    #[must_use]
    pub fn order(&self, other: &Self) -> std::cmp::Ordering {
        other
            .score
            .total_cmp(&self.score)
            .then(other.created_at.cmp(&self.created_at))
            .then(other.id.cmp(&self.id))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(raw: &str) -> SearchQuery {
        SearchQuery::parse(raw).unwrap()
    }

    #[test]
    fn queries_fold_words_and_keep_phrases_and_the_prefix() {
        let query = q("Café \"Brown   Fox\" jum");
        assert_eq!(
            query.phrases(),
            [vec!["cafe".to_owned()], vec!["brown".into(), "fox".into()]]
        );
        assert_eq!(query.prefix(), Some("jum"));
        assert_eq!(query.fts5(), "\"cafe\" \"brown fox\" \"jum\"*");
        assert_eq!(query.websearch(), "\"cafe\" \"brown fox\"");
        // A space (or a closing quote) after the last word: no prefix.
        assert_eq!(q("jump ").prefix(), None);
        assert_eq!(q("\"jump\"").prefix(), None);
    }

    #[test]
    fn a_phrase_s_words_stand_alone_in_the_words_expression() {
        let query = q("\"of the\" the Café th");
        assert!(query.has_phrase());
        assert_eq!(query.fts5_words(), "\"cafe\" \"of\" \"the\" \"th\"*");
        assert!(!q("of the th").has_phrase());
        // The words apart match the expression's words, not the phrase.
        assert!(!q("\"of the\"").matches("the end of it"));
        assert!(q("\"of the\"").matches("end OF THÉ day"));
    }

    #[test]
    fn a_text_has_the_words_of_a_phrase_in_any_order_and_the_prefix() {
        let phrase = q("\"of the\"");
        assert!(phrase.has_words("the end of it"), "apart, reversed");
        assert!(phrase.has_words("End OF THÉ day"), "folded");
        assert!(!phrase.has_words("the end"), "one word missing");
        assert!(
            !phrase.has_words("often there"),
            "words, not parts of words"
        );
        let with_prefix = q("\"of the\" ca");
        assert!(with_prefix.has_words("the Café of"));
        assert!(
            !with_prefix.has_words("the end of it"),
            "no word with the prefix"
        );
        assert!(
            !q("?!").has_words("anything"),
            "an empty query has no words"
        );
    }

    #[test]
    fn queries_drop_every_syntax_character() {
        let query = q("a* OR (b) NEAR/2 c:* -d ^e");
        let all: Vec<&String> = query.phrases().iter().flatten().collect();
        assert!(all.iter().all(|w| w.chars().all(char::is_alphanumeric)));
        assert_eq!(query.fts5().matches('"').count() % 2, 0);
    }

    #[test]
    fn blank_or_long_queries_are_invalid_and_wordless_ones_empty() {
        assert!(SearchQuery::parse("  ").is_err());
        assert!(q("!!! ***").is_empty());
        assert!(!q("!!! a").is_empty());
        assert!(!q("a ").is_empty());
        assert!(SearchQuery::parse(&"a".repeat(MAX_QUERY_CHARS + 1)).is_err());
        assert!(SearchQuery::parse(&"a ".repeat(MAX_QUERY_CHARS / 2)).is_ok());
    }

    #[test]
    fn at_most_so_many_words_are_searched() {
        let query = q(&"w ".repeat(100));
        assert!(query.phrases().iter().flatten().count() <= MAX_QUERY_WORDS);
    }

    /// The count of [`SearchQuery::occurrences`] as it was first written (every window of
    /// the text's collected words compared with each phrase): the oracle of the one-pass
    /// count.
    fn occurrences_by_windows(query: &SearchQuery, text: &str) -> usize {
        if query.is_empty() {
            return 0;
        }
        let words = folded_words(text);
        let mut total = 0;
        for phrase in query.phrases() {
            let found = words
                .windows(phrase.len())
                .filter(|window| {
                    window
                        .iter()
                        .zip(phrase)
                        .all(|(w, p)| same(w.as_bytes(), p.as_bytes()))
                })
                .count();
            if found == 0 {
                return 0;
            }
            total += found * phrase.len();
        }
        if let Some(prefix) = query.prefix() {
            let found = words
                .iter()
                .filter(|w| starts(w.as_bytes(), prefix.as_bytes()))
                .count();
            if found == 0 {
                return 0;
            }
            total += found;
        }
        total
    }

    #[test]
    fn whitespace_words_count_as_split_whitespace_does() {
        let mut texts: Vec<String> = (0_u8..128)
            .map(|b| format!("a{}b {}c{}", char::from(b), char::from(b), char::from(b)))
            .collect();
        texts.extend(
            [
                "",
                " ",
                "one",
                " two  words ",
                "\u{a0}x\u{2003}y",
                "é é",
                "\t\x0b\x0c\r\n",
            ]
            .map(str::to_owned),
        );
        for text in &texts {
            assert_eq!(
                whitespace_words(text),
                text.split_whitespace().count(),
                "{text:?}"
            );
        }
    }

    #[test]
    fn ascii_words_are_the_words_splitting_by_characters_gives() {
        // Every ASCII byte at every place: at the start, the end, doubled, between words.
        let mut texts: Vec<String> = (0_u8..128)
            .map(|b| {
                let c = char::from(b);
                format!("{c}a{c}{c}b9 {c}Z{c}")
            })
            .collect();
        texts.extend(["", " ", "word", "  two--words  ", "x", "1a", "\t\n"].map(str::to_owned));
        for text in &texts {
            let expected: Vec<&str> = text
                .split(|c: char| !c.is_ascii_alphanumeric())
                .filter(|w| !w.is_empty())
                .collect();
            assert_eq!(ascii_words(text).collect::<Vec<_>>(), expected, "{text:?}");
        }
    }

    #[test]
    fn the_one_pass_count_equals_the_count_over_windows() {
        // Few distinct words, so that phrases repeat, overlap ("a a a" in "a a a a") and
        // start again inside a partial match ("a b a b c"); words of lengths no query word
        // has between them, and words past the longest length told apart (63).
        let long = |n: usize, c: &str| c.repeat(n);
        let vocabulary = [
            "a".to_owned(),
            "b".to_owned(),
            "c".to_owned(),
            "Ab".to_owned(),
            "é".to_owned(),
            "e".to_owned(),
            "ab".to_owned(),
            "abc".to_owned(),
            "Abcd".to_owned(),
            long(63, "a"),
            long(64, "a"),
            long(70, "b"),
        ];
        let separators = [" ", ", ", "\n", "-", "  "];
        let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
        let mut next = move |n: usize| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            usize::try_from(seed % n as u64).unwrap()
        };
        let mut checked = 0;
        for _ in 0..400 {
            let mut raw = String::new();
            for _ in 0..1 + next(3) {
                let quoted = next(2) == 0;
                if quoted {
                    raw.push('"');
                }
                for i in 0..1 + next(4) {
                    if i > 0 {
                        raw.push(' ');
                    }
                    raw.push_str(&vocabulary[next(vocabulary.len())]);
                }
                raw.push_str(if quoted { "\" " } else { " " });
            }
            if next(3) == 0 {
                raw.push_str(&vocabulary[next(vocabulary.len())]);
            }
            let query = q(&raw);
            for _ in 0..20 {
                let mut text = String::new();
                for _ in 0..next(12) {
                    text.push_str(&vocabulary[next(vocabulary.len())]);
                    text.push_str(separators[next(separators.len())]);
                }
                let expected = occurrences_by_windows(&query, &text);
                assert_eq!(query.occurrences(&text), expected, "{raw:?} in {text:?}");
                checked += usize::from(expected > 0);
            }
        }
        // The generator makes matches, not only misses.
        assert!(checked > 500, "only {checked} texts matched");
    }

    #[test]
    fn matching_follows_phrases_prefix_and_diacritics() {
        assert!(q("cafe").matches("Un CAFÉ noir"));
        assert!(q("\"brown fox\"").matches("the brown fox"));
        assert!(!q("\"brown fox\"").matches("the fox is brown"));
        assert!(q("quok").matches("a quokka"));
        assert!(!q("quok ").matches("a quokka"));
        assert!(!q("cafe noir").matches("un cafe"));
    }

    #[test]
    fn folding_ascii_is_lowercasing_and_the_rest_drops_marks() {
        assert_eq!(fold("QuOkKa42"), "quokka42");
        assert_eq!(fold("Çafé"), "cafe");
        assert_eq!(fold("ÉCOLE"), "ecole");
    }

    #[test]
    fn snippets_escape_everything_but_the_marks() {
        let text = "<script>alert('x')</script> & the quokka <b>smiles</b>";
        let got = snippet(text, &q("quokka "));
        assert_eq!(
            got,
            "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; the <mark>quokka</mark> \
             &lt;b&gt;smiles&lt;/b&gt;"
        );
        let marked = snippet("<mark>café</mark>", &q("cafe "));
        assert_eq!(marked, "&lt;mark&gt;<mark>café</mark>&lt;/mark&gt;");
    }

    #[test]
    fn snippets_show_the_passage_around_the_first_match() {
        let text = format!("{} needle {}", "before ".repeat(100), "after ".repeat(100));
        let got = snippet(&text, &q("needle "));
        assert!(got.starts_with('…') && got.ends_with('…'), "{got}");
        assert!(got.contains("<mark>needle</mark>"));
        assert!(got.chars().count() < SNIPPET_CHARS + 60, "{got}");
        assert_eq!(snippet("no match here", &q("zebra ")), "no match here");
    }

    #[test]
    fn keys_order_best_then_newest_then_highest_id() {
        let at = crate::model::now();
        let older = at - chrono::Duration::seconds(1);
        let a = SearchKey {
            score: 2.0,
            created_at: older,
            id: uuid::Uuid::now_v7(),
        };
        let b = SearchKey {
            score: 1.0,
            created_at: at,
            id: uuid::Uuid::now_v7(),
        };
        let c = SearchKey {
            score: 1.0,
            created_at: older,
            id: uuid::Uuid::now_v7(),
        };
        assert!(b.is_after(&a) && c.is_after(&b) && !a.is_after(&b));
        let mut keys = [c, a, b];
        keys.sort_by(SearchKey::order);
        assert_eq!(keys, [a, b, c]);
    }
}
