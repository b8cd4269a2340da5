//! Ranking a question's chunks by which of its words they have (SQLite retrieval of a
//! query of several words), without FTS5's `bm25()`.
//!
//! `bm25()` first counts, for every word of the query, the chunks that have it in the
//! **whole** index (every project's): FTS5 steps through each word's entire entry list
//! once per query. For a question of several fairly common words (each in a third of the
//! chunks) that count is most of the query's work, however few chunks are then ranked
//! (docs/benchmarks.md, "Large tables"). Here each word's newest matches in the project are
//! read instead (at most `cap` each, straight from the index), and a chunk scores the sum
//! of the weights of the words it has, a word weighing more the fewer of the candidates
//! have it (an inverse document frequency within the candidates): a chunk with every
//! word comes before one with some, a rare word counts for more than a common one, and
//! ties go to the newest chunk. The best few of those ([`by_words`]) are then read and
//! ranked by BM25 over their text ([`by_frequency`]: how often each word occurs, against
//! the chunk's length), with the same weights, so that among chunks with the same words
//! the one about them comes first.

use std::collections::HashMap;

/// The weight of each word and the `n` best chunk ids given, for each word, the ids of the project's chunks that have
/// it, newest (largest) first, at most `cap` of them. A list shorter than `cap` holds
/// every chunk with its word; a full one every chunk down to its last id. Below the
/// highest of the full lists' last ids some words' presence is unknown: those chunks are
/// scored by the words known (none is dropped, so a rare word's old match still counts).
#[must_use]
pub(crate) fn by_words(lists: &[Vec<i64>], cap: usize, n: usize) -> (Vec<f64>, Vec<i64>) {
    // Which words each chunk has (a bit per word; queries have at most a few words).
    let mut found: HashMap<i64, u64> = HashMap::new();
    for (i, list) in lists.iter().enumerate().take(64) {
        for id in list {
            *found.entry(*id).or_default() |= 1 << i;
        }
    }
    // Down to `floor` every word's presence is known: the window the weights come from.
    let floor = lists
        .iter()
        .filter(|list| list.len() >= cap)
        .filter_map(|list| list.last().copied())
        .max();
    let in_window = |id: i64| floor.is_none_or(|f| id >= f);
    let window: Vec<u64> = found
        .iter()
        .filter(|(id, _)| in_window(**id))
        .map(|(_, bits)| *bits)
        .collect();
    #[expect(clippy::cast_precision_loss, reason = "weights, not counts")]
    let weights: Vec<f64> = (0..lists.len().min(64))
        .map(|i| {
            let with = window.iter().filter(|bits| *bits & (1 << i) != 0).count();
            // A word none of the window's chunks has (a rare word's older matches) weighs
            // as if half of one had it: more than any word the window has.
            (1.0 + window.len().max(1) as f64 / (with as f64).max(0.5)).ln()
        })
        .collect();
    let mut scored: Vec<(f64, i64)> = found
        .into_iter()
        .map(|(id, bits)| {
            let score = weights
                .iter()
                .enumerate()
                .filter(|(i, _)| bits & (1 << i) != 0)
                .map(|(_, w)| w)
                .sum();
            (score, id)
        })
        .collect();
    scored.sort_by(|a, b| b.0.total_cmp(&a.0).then(b.1.cmp(&a.1)));
    let best = scored.into_iter().take(n).map(|(_, id)| id).collect();
    (weights, best)
}

/// BM25's saturation of a word's count (`k1`).
const K1: f64 = 1.2;
/// BM25's weight of a chunk's length against the average (`b`).
const B: f64 = 0.75;

/// `chunks` (id and text, in [`by_words`]'s order) ranked by BM25 of `words` (compared
/// folded, as the index folds) with `weights` as their inverse document frequencies, the average
/// length taken over these chunks; ties keep the given order.
#[must_use]
pub(crate) fn by_frequency(words: &[String], weights: &[f64], chunks: &[(i64, &str)]) -> Vec<i64> {
    let words: Vec<String> = words.iter().map(|w| confab_core::search::fold(w)).collect();
    let counted: Vec<(Vec<usize>, usize)> = chunks
        .iter()
        .map(|(_, text)| {
            let mut counts = vec![0_usize; words.len()];
            let mut length = 0;
            for word in text
                .split(|c: char| !c.is_alphanumeric())
                .filter(|w| !w.is_empty())
            {
                length += 1;
                // An ASCII word needs no folding (nor an allocation) to be compared.
                let at = if word.is_ascii() {
                    words.iter().position(|w| w.eq_ignore_ascii_case(word))
                } else {
                    let folded = confab_core::search::fold(word);
                    words.iter().position(|w| *w == folded)
                };
                if let Some(at) = at {
                    counts[at] += 1;
                }
            }
            (counts, length)
        })
        .collect();
    #[expect(clippy::cast_precision_loss, reason = "scores, not counts")]
    let average = counted.iter().map(|(_, l)| *l as f64).sum::<f64>() / chunks.len().max(1) as f64;
    let mut scored: Vec<(f64, usize)> = counted
        .iter()
        .enumerate()
        .map(|(at, (counts, length))| {
            #[expect(clippy::cast_precision_loss, reason = "scores, not counts")]
            let norm = K1 * (1.0 - B + B * *length as f64 / average.max(1.0));
            let score = counts
                .iter()
                .zip(weights)
                .filter(|(count, _)| **count > 0)
                .map(|(count, weight)| {
                    #[expect(clippy::cast_precision_loss, reason = "scores, not counts")]
                    let tf = *count as f64;
                    weight * tf * (K1 + 1.0) / (tf + norm)
                })
                .sum();
            (score, at)
        })
        .collect();
    scored.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
    scored.into_iter().map(|(_, at)| chunks[at].0).collect()
}

#[cfg(test)]
mod tests {
    use super::{by_frequency, by_words};

    fn best(lists: &[Vec<i64>], cap: usize, n: usize) -> Vec<i64> {
        by_words(lists, cap, n).1
    }

    #[test]
    fn a_chunk_with_every_word_comes_first_then_the_rarer_word() {
        // Word 0 in chunks 1..=9, word 1 in 3 and 5 only: 5 and 3 have both.
        let lists = vec![(1..=9).rev().collect(), vec![5, 3]];
        assert_eq!(best(&lists, 100, 3), [5, 3, 9]);
        // Word 1 alone (the rarer) beats word 0 alone.
        let lists = vec![(1..=9).rev().collect(), vec![10]];
        assert_eq!(best(&lists, 100, 2), [10, 9]);
    }

    #[test]
    fn ties_go_to_the_newest_and_the_limit_holds() {
        let lists = vec![vec![7, 4, 1], vec![8, 4]];
        assert_eq!(best(&lists, 100, 10), [4, 8, 7, 1]);
        assert_eq!(best(&lists, 100, 1), [4]);
        assert!(best(&[vec![], vec![]], 100, 5).is_empty());
    }

    #[test]
    fn a_rare_words_old_match_outside_the_window_still_ranks_first() {
        // Word 0 is capped (the window is 20..=11), word 1's only match is old (3).
        let common: Vec<i64> = (11..=20).rev().collect();
        let lists = vec![common, vec![3]];
        assert_eq!(best(&lists, 10, 2), [3, 20]);
    }

    #[test]
    fn among_chunks_with_the_same_words_the_one_about_them_comes_first() {
        let words = vec!["wombats".to_owned(), "live".to_owned()];
        let weights = [1.0, 1.0];
        let chunks = [
            (
                9,
                "Wombats live here, and foxes too, and many other animals live there.",
            ),
            (
                8,
                "WOMBATS live in burrows; wombats dig them, and wombats sleep in them.",
            ),
            (7, "Foxes live in dens."),
        ];
        assert_eq!(by_frequency(&words, &weights, &chunks), [8, 9, 7]);
        // A rarer word (a heavier weight) outweighs repeats of a common one.
        let weights = [3.0, 0.2];
        let chunks = [(2, "live live live live wombats"), (1, "wombats wombats")];
        assert_eq!(by_frequency(&words, &weights, &chunks), [1, 2]);
        // Ties keep the given order.
        assert_eq!(
            by_frequency(&words, &[1.0, 1.0], &[(5, "x"), (4, "y")]),
            [5, 4]
        );
    }
}
