//! Project knowledge: a file's text split into chunks of about [`CHUNK_TOKENS`] tokens on
//! paragraph boundaries, each starting with the end of the one before ([`OVERLAP_TOKENS`]),
//! so that a passage cut by a boundary is still whole in one chunk. Stores index the chunks
//! of every `ready` file for full-text search (`KnowledgeIndex`).

/// About how many tokens one chunk holds.
pub const CHUNK_TOKENS: usize = 1_000;
/// About how many tokens of the previous chunk a chunk repeats.
pub const OVERLAP_TOKENS: usize = 150;
/// Characters per token, the usual estimate for English text.
const CHARS_PER_TOKEN: usize = 4;

/// One passage found by a search.
#[derive(Clone, Debug, PartialEq)]
pub struct KnowledgeHit {
    pub file_id: crate::ids::FileId,
    /// The name of the file it is from.
    pub filename: String,
    /// The chunk's place in its file, from 0.
    pub ordinal: u32,
    pub text: String,
}

/// A passage a reply was given, numbered as it is cited (`[n]`), stored with the reply.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Source {
    /// From 1, in the order the sources were given.
    pub n: u32,
    pub file_id: crate::ids::FileId,
    pub filename: String,
    /// See [`excerpt`].
    pub excerpt: String,
}

/// About how many characters a source's excerpt holds.
pub const EXCERPT_CHARS: usize = 300;

/// What a client shows of a passage: about [`EXCERPT_CHARS`] characters around the first
/// word of the query it contains (from the start when that word is near it, or when it has
/// none), cut at whitespace, with `…` where text was left out.
#[must_use]
pub fn excerpt(text: &str, query: &str) -> String {
    let text = text.trim();
    let lower = text.to_lowercase();
    // Lowercasing may change byte lengths: find the word in the lowercased text only when
    // it kept them.
    let first = if lower.len() == text.len() {
        query_words(query)
            .iter()
            .filter_map(|word| find_word(&lower, word))
            .min()
    } else {
        None
    };
    let start = match first {
        Some(at) if at > EXCERPT_CHARS / 3 => {
            let mut from = at - EXCERPT_CHARS / 3;
            while !text.is_char_boundary(from) {
                from -= 1;
            }
            // Start at a word.
            text[from..at]
                .find(char::is_whitespace)
                .map_or(from, |space| from + space + 1)
        }
        _ => 0,
    };
    let rest = &text[start..];
    let end = rest
        .char_indices()
        .nth(EXCERPT_CHARS)
        .map_or(rest.len(), |(i, _)| i);
    let mut cut = &rest[..end];
    if end < rest.len()
        && let Some(space) = cut.rfind(char::is_whitespace).filter(|&i| i > 0)
    {
        cut = &cut[..space];
    }
    let mut out = String::new();
    if start > 0 {
        out.push('…');
    }
    out.push_str(cut.trim());
    if end < rest.len() {
        out.push('…');
    }
    out
}

/// The byte offset of `word` in `lower` as a whole word.
fn find_word(lower: &str, word: &str) -> Option<usize> {
    lower.match_indices(word).map(|(i, _)| i).find(|&i| {
        let before = lower[..i].chars().next_back();
        let after = lower[i + word.len()..].chars().next();
        !before.is_some_and(char::is_alphanumeric) && !after.is_some_and(char::is_alphanumeric)
    })
}

/// The query a send searches with: the user's message and, for a follow-up question, the
/// previous user message of its branch.
#[must_use]
pub fn send_query(message: &str, previous: Option<&str>) -> String {
    match previous {
        Some(previous) => format!("{message}\n{previous}"),
        None => message.to_owned(),
    }
}

/// The instruction that opens the sources message.
pub const SOURCES_INSTRUCTION: &str = "The numbered passages below come from the project's files and may help you answer. \
Use them when they are relevant and cite each one you use by its number in square brackets, \
like [1] or [2]. Do not cite a number that is not listed; if the passages do not answer the \
question, say so or answer without them.";

/// One source as it is written into the message a model is given.
fn source_block(n: u32, filename: &str, text: &str) -> String {
    format!("[{n}] {filename}\n{text}")
}

/// The one system message that gives a model its sources: [`SOURCES_INSTRUCTION`], then each
/// source as `[n] <filename>` and its text. `None` without sources.
#[must_use]
pub fn sources_message(sources: &[crate::ports::LlmSource]) -> Option<String> {
    if sources.is_empty() {
        return None;
    }
    let mut message = SOURCES_INSTRUCTION.to_owned();
    for source in sources {
        message.push_str("\n\n");
        message.push_str(&source_block(source.n, &source.filename, &source.text));
    }
    Some(message)
}

/// The estimated tokens of the sources message without sources: its instruction.
#[must_use]
pub fn instruction_tokens() -> u32 {
    crate::budget::estimate_text_tokens(SOURCES_INSTRUCTION)
        .saturating_add(crate::budget::MESSAGE_OVERHEAD_TOKENS)
}

/// The hits that fit in `tokens` (best first, each whole: one that does not fit is left out
/// and the next tried), numbered from 1, as the model is given them and as the reply stores
/// them; and the tokens the sources message costs (0 without sources).
#[must_use]
pub fn choose_sources(
    hits: Vec<KnowledgeHit>,
    query: &str,
    tokens: u32,
) -> (Vec<crate::ports::LlmSource>, Vec<Source>, u32) {
    let mut left = tokens.saturating_sub(instruction_tokens());
    let mut given = Vec::new();
    let mut stored = Vec::new();
    for hit in hits {
        let n = u32::try_from(given.len())
            .unwrap_or(u32::MAX)
            .saturating_add(1);
        // The block and the blank line before it.
        let cost = crate::budget::estimate_text_tokens(&source_block(n, &hit.filename, &hit.text))
            .saturating_add(1);
        if cost > left {
            continue;
        }
        left -= cost;
        stored.push(Source {
            n,
            file_id: hit.file_id,
            filename: hit.filename.clone(),
            excerpt: excerpt(&hit.text, query),
        });
        given.push(crate::ports::LlmSource {
            n,
            filename: hit.filename,
            text: hit.text,
        });
    }
    let used = if given.is_empty() {
        0
    } else {
        tokens.saturating_sub(left)
    };
    (given, stored, used)
}

/// The chunks of `text`, in order, with the default sizes.
#[must_use]
pub fn chunks(text: &str) -> Vec<String> {
    chunks_of(
        text,
        CHUNK_TOKENS * CHARS_PER_TOKEN,
        OVERLAP_TOKENS * CHARS_PER_TOKEN,
    )
}

/// The chunks of `text`: paragraphs (split on blank lines) gathered up to `size` characters;
/// a paragraph longer than `size` is cut at whitespace. Each chunk after the first starts
/// with the trailing paragraphs of the previous one that fit in `overlap` characters.
#[must_use]
pub fn chunks_of(text: &str, size: usize, overlap: usize) -> Vec<String> {
    let size = size.max(1);
    let pieces: Vec<&str> = paragraphs(text).flat_map(|p| split_long(p, size)).collect();
    let mut out = Vec::new();
    let mut current: Vec<&str> = Vec::new();
    let mut length = 0;
    let mut fresh = 0; // pieces in `current` not carried over from the previous chunk
    for piece in pieces {
        if !current.is_empty() && length + piece.len() + 2 > size && fresh > 0 {
            out.push(current.join("\n\n"));
            let mut kept = Vec::new();
            let mut kept_len = 0;
            for p in current.iter().rev() {
                if kept_len + p.len() > overlap || kept.len() + 1 == current.len() {
                    break;
                }
                kept_len += p.len() + 2;
                kept.push(*p);
            }
            kept.reverse();
            current = kept;
            length = kept_len;
            fresh = 0;
        }
        length += piece.len() + 2;
        current.push(piece);
        fresh += 1;
    }
    if fresh > 0 {
        out.push(current.join("\n\n"));
    }
    out
}

/// Non-empty paragraphs, trimmed.
fn paragraphs(text: &str) -> impl Iterator<Item = &str> {
    text.split("\n\n")
        .flat_map(|p| p.split("\r\n\r\n"))
        .map(str::trim)
        .filter(|p| !p.is_empty())
}

/// A paragraph cut into pieces of at most `size` bytes, at whitespace when there is some.
fn split_long(paragraph: &str, size: usize) -> Vec<&str> {
    let mut pieces = Vec::new();
    let mut rest = paragraph;
    while rest.len() > size {
        let mut end = size;
        while !rest.is_char_boundary(end) {
            end -= 1;
        }
        let cut = rest[..end]
            .rfind(char::is_whitespace)
            .filter(|&i| i > 0)
            .unwrap_or(end);
        pieces.push(rest[..cut].trim_end());
        rest = rest[cut..].trim_start();
    }
    if !rest.is_empty() {
        pieces.push(rest);
    }
    pieces
}

/// A database store ranks at most this many of the newest chunks of the project that match
/// a query (scoring a chunk costs about as much as reading it: a query whose words are in
/// most of a large project's chunks stays bounded); the in-memory store ranks every match.
pub const RANKED_CHUNKS: u32 = 1_000;

/// At most this many words of a query are searched for: its most telling ones.
pub const MAX_QUERY_WORDS: usize = 5;

/// Common English words that tell nothing of what a passage is about ("the", "how",
/// "does"…, and the pieces a split at an apostrophe leaves: "s", "t", "ll"…), sorted. Nearly
/// every chunk has some of them: OR-ed into a retrieval query they match most of a project
/// and rank nothing.
#[rustfmt::skip]
const STOP_WORDS: &[&str] = &[
    "a", "about", "above", "after", "again", "against", "ain", "all", "also", "am", "an", "and",
    "any", "are", "aren", "as", "at", "be", "because", "been", "before", "being", "below",
    "between", "both", "but", "by", "can", "could", "couldn", "d", "did", "didn", "do", "does",
    "doesn", "doing", "don", "down", "during", "each", "few", "for", "from", "further", "get",
    "got", "had", "hadn", "has", "hasn", "have", "haven", "having", "he", "her", "here", "hers",
    "herself", "him", "himself", "his", "how", "i", "if", "in", "into", "is", "isn", "it", "its",
    "itself", "just", "let", "ll", "m", "ma", "may", "me", "might", "mightn", "more", "most",
    "must", "mustn", "my", "myself", "needn", "no", "nor", "not", "now", "o", "of", "off", "on",
    "once", "only", "or", "other", "our", "ours", "ourselves", "out", "over", "own", "please",
    "re", "s", "same", "shall", "shan", "she", "should", "shouldn", "so", "some", "such", "t",
    "tell", "than", "that", "the", "their", "theirs", "them", "themselves", "then", "there",
    "these", "they", "this", "those", "through", "to", "too", "under", "until", "up", "ve",
    "very", "was", "wasn", "we", "were", "weren", "what", "when", "where", "which", "while",
    "who", "whom", "whose", "why", "will", "with", "won", "would", "wouldn", "y", "you", "your",
    "yours", "yourself", "yourselves",
];

/// Whether `word` (lowercase) is a common English word that tells nothing of a passage's
/// subject ([`query_words`] leaves it out when the query has other words).
#[must_use]
pub fn is_stop_word(word: &str) -> bool {
    STOP_WORDS.binary_search(&word).is_ok()
}

/// The words of a search query to look for, lowercased, sorted: letters and digits only, so
/// that no word can carry query syntax into a database's full-text engine. Common words
/// ([`is_stop_word`]) are left out unless the query has nothing else, and of the rest at
/// most [`MAX_QUERY_WORDS`] are kept, the longest (in text, a longer word is on the whole a
/// rarer one): a question of nine words is searched by its few telling ones, not by OR-ing
/// words that each match most of the chunks.
#[must_use]
pub fn query_words(query: &str) -> Vec<String> {
    let mut words: Vec<String> = query
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect();
    words.sort();
    words.dedup();
    if words.iter().any(|w| !is_stop_word(w)) {
        words.retain(|w| !is_stop_word(w));
    }
    if words.len() > MAX_QUERY_WORDS {
        words.sort_by(|a, b| {
            b.chars()
                .count()
                .cmp(&a.chars().count())
                .then_with(|| a.cmp(b))
        });
        words.truncate(MAX_QUERY_WORDS);
        words.sort();
    }
    words
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_text_is_one_chunk() {
        assert_eq!(chunks("One.\n\nTwo."), ["One.\n\nTwo."]);
        assert!(chunks("  \n\n ").is_empty());
    }

    #[test]
    fn chunks_end_on_paragraphs_and_repeat_the_previous_end() {
        let text = "aaaa\n\nbbbb\n\ncccc\n\ndddd";
        assert_eq!(
            chunks_of(text, 12, 4),
            ["aaaa\n\nbbbb", "bbbb\n\ncccc", "cccc\n\ndddd"]
        );
        assert_eq!(chunks_of(text, 12, 0), ["aaaa\n\nbbbb", "cccc\n\ndddd"]);
    }

    #[test]
    fn a_long_paragraph_is_cut_at_whitespace_within_the_size() {
        let text = "word ".repeat(10);
        let got = chunks_of(&text, 12, 0);
        assert!(got.iter().all(|c| c.len() <= 12), "{got:?}");
        assert_eq!(got.join(" ").split_whitespace().count(), 10);
        let unbroken = "é".repeat(10);
        let got = chunks_of(&unbroken, 5, 0);
        assert_eq!(got.concat(), unbroken);
    }

    #[test]
    fn every_word_of_a_long_text_is_in_some_chunk() {
        let text: String =
            (0..3000).map(|i| format!("w{i} ")).collect::<String>() + "\n\n" + "end of text.";
        let got = chunks(&text);
        assert!(got.len() > 1);
        for i in (0..3000).step_by(97) {
            let word = format!("w{i}");
            assert!(
                got.iter().any(|c| c.split_whitespace().any(|w| w == word)),
                "{word}"
            );
        }
        assert!(
            got.iter()
                .all(|c| c.len() <= CHUNK_TOKENS * CHARS_PER_TOKEN)
        );
    }

    #[test]
    fn an_excerpt_is_a_short_text_whole_or_a_window_around_the_first_matched_word() {
        assert_eq!(
            excerpt("  The quokka smiles. ", "quokka"),
            "The quokka smiles."
        );
        let long = format!(
            "{} Zephyrine is a quokka. {}",
            "lead ".repeat(200),
            "tail ".repeat(200)
        );
        let got = excerpt(&long, "who is ZEPHYRINE?");
        assert!(got.starts_with('…') && got.ends_with('…'), "{got}");
        assert!(got.contains("Zephyrine is a quokka."), "{got}");
        assert!(got.chars().count() <= EXCERPT_CHARS + 2, "{got}");
        assert!(got[3..].starts_with("lead"), "starts at a word: {got}");
        let unmatched = excerpt(&long, "marmot");
        assert!(unmatched.starts_with("lead lead") && unmatched.ends_with('…'));
        // A word inside another word is not a match.
        let inside = format!("{} quokkas. {}", "a ".repeat(200), "quokka");
        assert!(excerpt(&inside, "quokka").starts_with('…'));
        assert!(!excerpt(&"é".repeat(400), "é").is_empty());
    }

    #[test]
    fn the_sources_message_asks_for_citations_and_numbers_each_source() {
        assert_eq!(sources_message(&[]), None);
        let given = [1, 2].map(|n| crate::ports::LlmSource {
            n,
            filename: format!("f{n}.txt"),
            text: format!("text {n}"),
        });
        let message = sources_message(&given).unwrap();
        assert!(message.starts_with(SOURCES_INSTRUCTION));
        assert!(message.contains("[1] or [2]"));
        assert!(
            message.ends_with("\n\n[1] f1.txt\ntext 1\n\n[2] f2.txt\ntext 2"),
            "{message}"
        );
    }

    #[test]
    fn chosen_sources_fit_the_tokens_given_and_are_numbered_in_order() {
        let hit = |name: &str, chars: usize| KnowledgeHit {
            file_id: crate::ids::FileId::new(),
            filename: name.to_owned(),
            ordinal: 0,
            text: "w ".repeat(chars / 2),
        };
        let hits = vec![hit("a", 400), hit("big", 4_000), hit("c", 400)];
        let (given, stored, used) = choose_sources(hits.clone(), "w", 400);
        assert_eq!(
            given
                .iter()
                .map(|s| (s.n, s.filename.as_str()))
                .collect::<Vec<_>>(),
            [(1, "a"), (2, "c")]
        );
        assert_eq!(stored.len(), 2);
        assert_eq!((stored[1].n, stored[1].file_id), (2, hits[2].file_id));
        let message = sources_message(&given).unwrap();
        let cost =
            crate::budget::estimate_text_tokens(&message) + crate::budget::MESSAGE_OVERHEAD_TOKENS;
        assert!(used >= cost && used <= 400, "{used} vs {cost}");
        assert_eq!(choose_sources(hits, "w", 10), (Vec::new(), Vec::new(), 0));
    }

    #[test]
    fn query_words_drop_syntax() {
        assert_eq!(
            query_words("Quokka AND \"island\"* OR (NEAR) quokka's"),
            ["island", "near", "quokka"]
        );
    }

    #[test]
    fn stop_words_are_sorted_lowercase_and_unique() {
        assert!(STOP_WORDS.windows(2).all(|w| w[0] < w[1]));
        assert!(STOP_WORDS.iter().all(|w| *w == w.to_lowercase()));
        assert!(is_stop_word("the") && is_stop_word("how") && !is_stop_word("server"));
    }

    #[test]
    fn query_words_keep_the_telling_words_of_a_question() {
        assert_eq!(
            query_words("How does the server build an index for each query?"),
            ["build", "index", "query", "server"]
        );
        // Only common words: they are all there is to search for.
        assert_eq!(query_words("The"), ["the"]);
        assert_eq!(query_words("what is it"), ["is", "it", "what"]);
        // At most so many, the longest; the same set whatever the order of the words.
        let many = "alpha bravo charlie delta echo foxtrot golf hotel indigo juliett kilo";
        let kept = query_words(many);
        assert_eq!(kept, ["alpha", "charlie", "foxtrot", "indigo", "juliett"]);
        let reversed: Vec<&str> = many.split(' ').rev().collect();
        assert_eq!(query_words(&reversed.join(" ")), kept);
        assert_eq!(query_words("a b c d e f g h").len(), MAX_QUERY_WORDS);
    }
}
