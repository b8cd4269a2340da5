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
    /// The chunk's place in its file, from 0.
    pub ordinal: u32,
    pub text: String,
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

/// The words of a search query, lowercased: letters and digits only, so that no word can
/// carry query syntax into a database's full-text engine.
#[must_use]
pub fn query_words(query: &str) -> Vec<String> {
    let mut words: Vec<String> = query
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect();
    words.sort();
    words.dedup();
    words.truncate(32);
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
    fn query_words_drop_syntax() {
        assert_eq!(
            query_words("Quokka AND \"island\"* OR (NEAR) quokka's"),
            ["and", "island", "near", "or", "quokka", "s"]
        );
    }
}
