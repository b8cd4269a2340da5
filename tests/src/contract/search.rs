//! The `MessageSearch` contract: an owner's finished messages and conversation titles, found
//! by words (case and diacritics ignored), phrases and a last-word prefix; ranked, ties newest
//! first; keyset paging; escaped snippets; never another owner's.

use std::collections::HashSet;
use std::future::Future;

use confab_core::ids::{ConversationId, ProjectId, UserId};
use confab_core::model::{MessageStatus, Project, now};
use confab_core::search::{SearchHit, SearchKey, SearchQuery};
use uuid::Uuid;

use super::Stores;
use super::fixtures::{
    begun_turn, completed, finished_turn, not_found, ok, stored_conversation, stored_project, user,
};

/// Runs every case of the `MessageSearch` contract, each on a fresh store from `fresh`.
pub async fn message_search_contract<F, Fut>(fresh: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = Stores>,
{
    crate::run_cases!(
        "MessageSearch",
        fresh,
        [
            messages_are_found_by_a_word_whatever_its_case_and_diacritics,
            a_reply_is_found_once_it_is_finished_not_while_it_streams,
            more_occurrences_rank_higher,
            equal_scores_come_newest_first,
            a_quoted_phrase_must_occur_as_written,
            a_phrase_matches_across_case_and_diacritics_never_its_words_apart,
            an_old_phrase_is_found_behind_many_newer_messages_with_its_words,
            a_common_word_in_more_messages_than_are_ranked_pages_from_the_best,
            the_last_word_is_a_prefix_unless_a_space_follows_it,
            titles_are_found_without_a_message_and_follow_renames,
            search_never_shows_another_owners_messages_and_filters_by_project,
            pages_follow_each_other_without_repeats_or_gaps,
            phrase_pages_of_tied_scores_follow_each_other_without_repeats_or_gaps,
            snippets_are_escaped_and_only_marks_are_markup,
            a_deleted_conversations_messages_are_not_found,
            what_others_write_changes_neither_my_scores_nor_my_order,
        ]
    );
}

fn query(raw: &str) -> SearchQuery {
    match SearchQuery::parse(raw) {
        Ok(q) => q,
        Err(e) => panic!("query {raw:?} is invalid: {e}"),
    }
}

async fn search_page(
    stores: &Stores,
    owner: &UserId,
    raw: &str,
    project: Option<ProjectId>,
    after: Option<SearchKey>,
    limit: u32,
) -> Vec<SearchHit> {
    ok(
        stores
            .search
            .search_messages(owner, &query(raw), project, after, limit)
            .await,
        "search_messages",
    )
}

async fn search(stores: &Stores, owner: &UserId, raw: &str) -> Vec<SearchHit> {
    search_page(stores, owner, raw, None, None, 200).await
}

/// A project and a conversation of a new user.
async fn setup(stores: &Stores, name: &str) -> (UserId, Project, ConversationId) {
    let owner = user(name);
    let p = stored_project(stores, &owner, "Bot").await;
    let c = stored_conversation(stores, &owner, p.id).await;
    (owner, p, c.id)
}

/// Turns that match nothing the cases look for (so no word is in most texts, which bm25
/// would score as almost nothing).
async fn fillers(stores: &Stores, owner: &UserId, c: ConversationId, n: usize) {
    for i in 0..n {
        finished_turn(
            stores,
            owner,
            c,
            &format!("filler number {i} about the weather"),
        )
        .await;
    }
}

fn marks(hit: &SearchHit) -> usize {
    hit.snippet.matches("<mark>").count()
}

async fn messages_are_found_by_a_word_whatever_its_case_and_diacritics(stores: Stores) {
    let (alice, p, c) = setup(&stores, "alice").await;
    fillers(&stores, &alice, c, 3).await;
    let (u, r) = finished_turn(&stores, &alice, c, "Un CAFÉ noir, s'il vous plaît").await;

    for raw in ["cafe ", "Café ", "CAFE noir", "plait "] {
        let hits = search(&stores, &alice, raw).await;
        let ids: HashSet<_> = hits.iter().map(|h| h.message_id).collect();
        assert_eq!(
            ids,
            HashSet::from([Some(u.id), Some(r.id)]),
            "{raw}: {hits:?}"
        );
        let hit = hits.iter().find(|h| h.message_id == Some(u.id)).unwrap();
        assert_eq!(hit.conversation_id, c);
        assert_eq!(hit.project_id, p.id);
        assert_eq!(hit.conversation_title.as_deref(), Some("Chat"));
        assert_eq!(hit.role, Some(confab_core::model::Role::User));
        assert_eq!(hit.created_at, u.created_at);
    }
    assert!(search(&stores, &alice, "croissant ").await.is_empty());
    // A query without a word finds nothing (and no FTS syntax reaches the store).
    assert!(search(&stores, &alice, "*** \"\" (").await.is_empty());
}

async fn a_reply_is_found_once_it_is_finished_not_while_it_streams(stores: Stores) {
    let (alice, _, c) = setup(&stores, "alice").await;
    fillers(&stores, &alice, c, 3).await;
    let (_, reply) = begun_turn(&stores, &alice, c, "tell me").await;
    assert!(ok(
        stores
            .history
            .touch_reply(reply.id, "half a sentence about zanzibar", now())
            .await,
        "touch_reply"
    ));
    assert!(search(&stores, &alice, "zanzibar ").await.is_empty());

    let done = completed(&reply, "a whole sentence about zanzibar");
    assert_eq!(done.status, MessageStatus::Complete);
    ok(
        stores.history.finish_reply(&done, now()).await,
        "finish_reply",
    );
    let hits = search(&stores, &alice, "zanzibar ").await;
    assert_eq!(hits.len(), 1, "{hits:?}");
    assert_eq!(hits[0].message_id, Some(reply.id));
    assert!(hits[0].snippet.contains("whole"), "{hits:?}");
    assert!(search(&stores, &alice, "half ").await.is_empty());
}

async fn more_occurrences_rank_higher(stores: Stores) {
    let (alice, _, c) = setup(&stores, "alice").await;
    finished_turn(
        &stores,
        &alice,
        c,
        "a quokka sat on a long branch above the river today",
    )
    .await;
    finished_turn(&stores, &alice, c, "quokka quokka quokka").await;
    fillers(&stores, &alice, c, 6).await;

    let hits = search(&stores, &alice, "quokka ").await;
    assert_eq!(hits.len(), 4, "{hits:?}");
    assert!(
        hits.windows(2).all(|w| w[0].score >= w[1].score),
        "{hits:?}"
    );
    assert_eq!(marks(&hits[0]), 3, "{hits:?}");
    assert_eq!(marks(&hits[1]), 3, "{hits:?}");
    assert_eq!(marks(&hits[3]), 1, "{hits:?}");
    assert!(hits[0].score > hits[3].score);
}

async fn equal_scores_come_newest_first(stores: Stores) {
    let (alice, _, c) = setup(&stores, "alice").await;
    fillers(&stores, &alice, c, 6).await;
    let (first, _) = finished_turn(&stores, &alice, c, "zebra crossing").await;
    let (second, _) = finished_turn(&stores, &alice, c, "zebra crossing").await;

    let hits = search(&stores, &alice, "zebra ").await;
    assert_eq!(hits.len(), 4, "{hits:?}");
    for w in hits.windows(2) {
        let (a, b) = (w[0].key(), w[1].key());
        assert!(b.is_after(&a), "{hits:?}");
    }
    let users: Vec<_> = hits
        .iter()
        .filter(|h| h.role == Some(confab_core::model::Role::User))
        .map(|h| h.message_id)
        .collect();
    assert_eq!(users, [Some(second.id), Some(first.id)]);
    let of = |id| {
        hits.iter()
            .find(|h| h.message_id == Some(id))
            .unwrap()
            .score
    };
    assert_eq!(of(first.id), of(second.id), "equal texts score equal");
}

async fn a_quoted_phrase_must_occur_as_written(stores: Stores) {
    let (alice, _, c) = setup(&stores, "alice").await;
    fillers(&stores, &alice, c, 4).await;
    let (yes, _) = finished_turn(&stores, &alice, c, "the brown fox jumps").await;
    let (no, _) = finished_turn(&stores, &alice, c, "the fox is brown").await;

    let users = |hits: Vec<SearchHit>| -> HashSet<_> {
        hits.iter()
            .filter(|h| h.role == Some(confab_core::model::Role::User))
            .map(|h| h.message_id)
            .collect()
    };
    let phrase = search(&stores, &alice, "\"brown fox\"").await;
    assert_eq!(users(phrase), HashSet::from([Some(yes.id)]));
    let words = search(&stores, &alice, "brown fox ").await;
    assert_eq!(users(words), HashSet::from([Some(yes.id), Some(no.id)]));
}

/// SQLite finds a phrase's candidates by its words and checks the phrase on their text:
/// the words apart, in the other order or split by another word are no match, and case,
/// diacritics and punctuation between the words are no obstacle.
async fn a_phrase_matches_across_case_and_diacritics_never_its_words_apart(stores: Stores) {
    let (alice, _, c) = setup(&stores, "alice").await;
    fillers(&stores, &alice, c, 3).await;
    let (old, _) = finished_turn(&stores, &alice, c, "We ate CRÈME brûlée, twice.").await;
    let (dashed, _) = finished_turn(&stores, &alice, c, "creme-brulee for dessert").await;
    // Newer messages with both words, never as the phrase.
    for text in [
        "brûlée then crème",
        "crème fraîche, not brûlée",
        "the brulee of the creme",
    ] {
        finished_turn(&stores, &alice, c, text).await;
    }
    let users = |hits: &[SearchHit]| -> HashSet<_> {
        hits.iter()
            .filter(|h| h.role == Some(confab_core::model::Role::User))
            .map(|h| h.message_id)
            .collect()
    };
    let expected = HashSet::from([Some(old.id), Some(dashed.id)]);
    for raw in ["\"crème brûlée\"", "\"creme brulee\"", "\"CREME BRÛLÉE\" "] {
        let hits = search(&stores, &alice, raw).await;
        assert_eq!(users(&hits), expected, "{raw}: {hits:?}");
    }
    // A phrase with a prefix after it: both must hold.
    let hits = search(&stores, &alice, "\"creme brulee\" twi").await;
    assert_eq!(users(&hits), HashSet::from([Some(old.id)]), "{hits:?}");
    assert!(
        hits.iter()
            .all(|h| h.snippet.contains("<mark>brûlée</mark>")),
        "{hits:?}"
    );
    // The words alone find all five.
    assert_eq!(
        users(&search(&stores, &alice, "creme brulee ").await).len(),
        5
    );
    let reversed: Vec<_> = search(&stores, &alice, "\"brulee creme\"")
        .await
        .into_iter()
        .filter(|h| h.role == Some(confab_core::model::Role::User))
        .collect();
    assert!(reversed.is_empty(), "{reversed:?}");
}

/// A phrase written once, before more than `RANKED_CANDIDATES` newer messages that have
/// its words apart, is still found (SQLite reads the words' matches a batch at a time).
async fn an_old_phrase_is_found_behind_many_newer_messages_with_its_words(stores: Stores) {
    let (alice, _, c) = setup(&stores, "alice").await;
    let (old, _) = finished_turn(&stores, &alice, c, "the quokka smiles").await;
    let turns = confab_core::search::RANKED_CANDIDATES / 2 + 50;
    for i in 0..turns {
        finished_turn(&stores, &alice, c, &format!("smiles for a quokka, {i}")).await;
    }
    let hits = search(&stores, &alice, "\"quokka smiles\"").await;
    let users: HashSet<_> = hits
        .iter()
        .filter(|h| h.role == Some(confab_core::model::Role::User))
        .map(|h| h.message_id)
        .collect();
    assert_eq!(users, HashSet::from([Some(old.id)]), "{hits:?}");
    assert_eq!(hits.len(), 2, "the message and its reply: {hits:?}");
}

/// A common word in more of the owner's messages than a store ranks (`RANKED_CANDIDATES`),
/// with texts without it among them, and the best (three occurrences) newest: they come
/// first, newest first on ties, and pages follow each other as one longer page goes
/// (SQLite reads the owner's newest texts a batch at a time, sized by how many matched).
async fn a_common_word_in_more_messages_than_are_ranked_pages_from_the_best(stores: Stores) {
    let (alice, _, c) = setup(&stores, "alice").await;
    let (bob, _, theirs) = setup(&stores, "bob").await;
    finished_turn(&stores, &bob, theirs, "common common common bob").await;
    let turns = confab_core::search::RANKED_CANDIDATES / 2 + 100;
    for i in 0..turns {
        let text = if i % 4 == 3 {
            format!("nothing to see {i}")
        } else {
            format!("a common sight {i}")
        };
        finished_turn(&stores, &alice, c, &text).await;
    }
    let mut best = Vec::new();
    for i in 0..6 {
        let (u, r) = finished_turn(&stores, &alice, c, &format!("common common common {i}")).await;
        best.push((u.id, r.id));
    }
    // The six messages and their replies ("Re: …"), three occurrences each, first (how a
    // reply's extra word weighs is the store's ranking); best first, newest first on ties.
    let expected: HashSet<_> = best
        .iter()
        .flat_map(|(u, r)| [Some(*u), Some(*r)])
        .collect();
    let long = search_page(&stores, &alice, "common ", None, None, 18).await;
    assert_eq!(long.len(), 18, "{long:?}");
    let first: HashSet<_> = long[..12].iter().map(|h| h.message_id).collect();
    assert_eq!(first, expected, "{long:?}");
    assert!(
        long.windows(2).all(|w| w[0].score > w[1].score
            || (w[0].score == w[1].score && w[0].created_at >= w[1].created_at)),
        "{long:?}"
    );
    assert!(long.iter().all(|h| marks(h) >= 1), "{long:?}");
    let mut paged: Vec<SearchHit> = Vec::new();
    let mut after = None;
    for _ in 0..3 {
        let page = search_page(&stores, &alice, "common ", None, after, 6).await;
        assert_eq!(page.len(), 6, "{page:?}");
        after = page.last().map(SearchHit::key);
        paged.extend(page);
    }
    let keys = |hits: &[SearchHit]| -> Vec<Uuid> { hits.iter().map(|h| h.key().id).collect() };
    assert_eq!(keys(&paged), keys(&long));
}

async fn the_last_word_is_a_prefix_unless_a_space_follows_it(stores: Stores) {
    let (alice, _, c) = setup(&stores, "alice").await;
    fillers(&stores, &alice, c, 4).await;
    let (u, _) = finished_turn(&stores, &alice, c, "quokkas are marsupials").await;

    let hits = search(&stores, &alice, "quokkas marsu").await;
    assert_eq!(hits.len(), 2, "{hits:?}");
    assert!(hits.iter().any(|h| h.message_id == Some(u.id)));
    assert!(
        hits.iter()
            .all(|h| h.snippet.contains("<mark>marsupials</mark>")),
        "{hits:?}"
    );
    assert!(search(&stores, &alice, "marsu ").await.is_empty());
    assert_eq!(search(&stores, &alice, "MARSÚ").await.len(), 2);
}

async fn titles_are_found_without_a_message_and_follow_renames(stores: Stores) {
    let (alice, p, c) = setup(&stores, "alice").await;
    fillers(&stores, &alice, c, 3).await;
    let trip = stored_conversation(&stores, &alice, p.id).await;
    ok(
        stores
            .history
            .rename_conversation(&alice, trip.id, Some("Holiday in Zanzibar".into()), now())
            .await,
        "rename_conversation",
    );

    let hits = search(&stores, &alice, "zanzibar ").await;
    assert_eq!(hits.len(), 1, "{hits:?}");
    assert_eq!(hits[0].conversation_id, trip.id);
    assert_eq!(hits[0].message_id, None);
    assert_eq!(hits[0].role, None);
    assert_eq!(hits[0].created_at, trip.created_at);
    assert_eq!(
        hits[0].conversation_title.as_deref(),
        Some("Holiday in Zanzibar")
    );
    assert_eq!(hits[0].snippet, "Holiday in <mark>Zanzibar</mark>");

    ok(
        stores
            .history
            .rename_conversation(&alice, trip.id, Some("Holiday in Mombasa".into()), now())
            .await,
        "rename_conversation",
    );
    assert!(search(&stores, &alice, "zanzibar ").await.is_empty());
    assert_eq!(search(&stores, &alice, "mombasa ").await.len(), 1);
}

async fn search_never_shows_another_owners_messages_and_filters_by_project(stores: Stores) {
    let (alice, p, c) = setup(&stores, "alice").await;
    let (bob, bob_p, bob_c) = setup(&stores, "bob").await;
    fillers(&stores, &alice, c, 3).await;
    fillers(&stores, &bob, bob_c, 3).await;
    let other = stored_project(&stores, &alice, "Other").await;
    let other_c = stored_conversation(&stores, &alice, other.id).await;
    let (mine, _) = finished_turn(&stores, &alice, c, "the secret is wombat").await;
    let (elsewhere, _) = finished_turn(&stores, &alice, other_c.id, "wombat again").await;
    let (bobs, _) = finished_turn(&stores, &bob, bob_c, "my wombat secret").await;

    let all = search(&stores, &alice, "wombat ").await;
    assert_eq!(all.len(), 4, "{all:?}");
    assert!(all.iter().all(|h| h.conversation_id != bob_c), "{all:?}");
    assert!(all.iter().any(|h| h.message_id == Some(elsewhere.id)));

    let in_p = search_page(&stores, &alice, "wombat ", Some(p.id), None, 200).await;
    assert_eq!(in_p.len(), 2, "{in_p:?}");
    assert!(in_p.iter().any(|h| h.message_id == Some(mine.id)));
    assert!(in_p.iter().all(|h| h.conversation_id == c));

    let bob_hits = search(&stores, &bob, "wombat ").await;
    assert_eq!(bob_hits.len(), 2, "{bob_hits:?}");
    assert!(bob_hits.iter().any(|h| h.message_id == Some(bobs.id)));

    not_found(
        stores
            .search
            .search_messages(&alice, &query("wombat"), Some(bob_p.id), None, 10)
            .await,
        "search_messages in another owner's project",
    );
    not_found(
        stores
            .search
            .search_messages(&alice, &query("wombat"), Some(ProjectId::new()), None, 10)
            .await,
        "search_messages in a missing project",
    );
}

async fn pages_follow_each_other_without_repeats_or_gaps(stores: Stores) {
    let (alice, _, c) = setup(&stores, "alice").await;
    fillers(&stores, &alice, c, 8).await;
    for i in 0..4 {
        let text = format!("pangolin {}", "pangolin ".repeat(i % 2));
        finished_turn(&stores, &alice, c, &text).await;
    }
    let all = search(&stores, &alice, "pangolin ").await;
    assert_eq!(all.len(), 8, "{all:?}");

    let mut paged: Vec<SearchHit> = Vec::new();
    let mut after = None;
    loop {
        let page = search_page(&stores, &alice, "pangolin ", None, after, 3).await;
        assert!(page.len() <= 3);
        if page.is_empty() {
            break;
        }
        after = page.last().map(SearchHit::key);
        paged.extend(page);
        assert!(paged.len() <= all.len(), "pages repeat: {paged:?}");
    }
    let ids = |hits: &[SearchHit]| -> Vec<Uuid> { hits.iter().map(|h| h.key().id).collect() };
    assert_eq!(ids(&paged), ids(&all));
}

/// A phrase of common words ("of the": most texts have both words, so a store may read
/// the owner's texts and rank them itself) over many texts of equal length — equal scores —
/// and a few of other lengths: pages smaller than a run of ties follow each other exactly as
/// the whole list goes, whichever rows a store reads in full for a page.
async fn phrase_pages_of_tied_scores_follow_each_other_without_repeats_or_gaps(stores: Stores) {
    let (alice, _, c) = setup(&stores, "alice").await;
    fillers(&stores, &alice, c, 4).await;
    for i in 0..14 {
        let text = match i % 5 {
            0 => format!("the end of the road number {i} and more of the same"),
            1 => format!("the map of the valley {i}"),
            _ => format!("the edge of the field {i}"),
        };
        finished_turn(&stores, &alice, c, &text).await;
        // The words, not the phrase: found by the words alone, never by the phrase.
        finished_turn(&stores, &alice, c, &format!("the roof, of course {i}")).await;
    }
    let all = search(&stores, &alice, "\"of the\"").await;
    // Each of the 14 texts and its reply ("Re: …").
    assert_eq!(all.len(), 28, "{all:?}");
    assert!(
        all.windows(2).any(|w| w[0].score == w[1].score),
        "the case needs ties: {all:?}"
    );
    for size in [1, 3, 5] {
        let mut paged: Vec<SearchHit> = Vec::new();
        let mut after = None;
        loop {
            let page = search_page(&stores, &alice, "\"of the\"", None, after, size).await;
            assert!(page.len() <= size as usize);
            if page.is_empty() {
                break;
            }
            after = page.last().map(SearchHit::key);
            paged.extend(page);
            assert!(
                paged.len() <= all.len(),
                "pages of {size} repeat: {paged:?}"
            );
        }
        let ids = |hits: &[SearchHit]| -> Vec<Uuid> { hits.iter().map(|h| h.key().id).collect() };
        assert_eq!(ids(&paged), ids(&all), "pages of {size}");
    }
}

async fn snippets_are_escaped_and_only_marks_are_markup(stores: Stores) {
    let (alice, _, c) = setup(&stores, "alice").await;
    fillers(&stores, &alice, c, 3).await;
    finished_turn(
        &stores,
        &alice,
        c,
        "<script>alert('x')</script> & <mark>needle</mark> <img src=x onerror=alert(1)>",
    )
    .await;

    let hits = search(&stores, &alice, "needle ").await;
    assert_eq!(hits.len(), 2, "{hits:?}");
    for hit in &hits {
        assert!(hit.snippet.contains("&lt;script&gt;"), "{hit:?}");
        assert!(hit.snippet.contains("&amp;"), "{hit:?}");
        assert!(
            hit.snippet
                .contains("&lt;mark&gt;<mark>needle</mark>&lt;/mark&gt;"),
            "{hit:?}"
        );
        let rest = hit.snippet.replace("<mark>", "").replace("</mark>", "");
        assert!(!rest.contains('<') && !rest.contains('>'), "{hit:?}");
        assert!(!rest.contains('"') && !rest.contains('\''), "{hit:?}");
    }
}

async fn a_deleted_conversations_messages_are_not_found(stores: Stores) {
    let (alice, p, c) = setup(&stores, "alice").await;
    fillers(&stores, &alice, c, 3).await;
    let gone = stored_conversation(&stores, &alice, p.id).await;
    finished_turn(&stores, &alice, gone.id, "ephemeral axolotl").await;
    assert_eq!(search(&stores, &alice, "axolotl ").await.len(), 2);
    ok(
        stores.history.delete_conversation(&alice, gone.id).await,
        "delete_conversation",
    );
    assert!(search(&stores, &alice, "axolotl ").await.is_empty());
}

/// A score (and the cursor that carries it) must not tell how often other people wrote a
/// word: alice's results for a word are the same before and after bob writes it many times.
async fn what_others_write_changes_neither_my_scores_nor_my_order(stores: Stores) {
    let (alice, _, c) = setup(&stores, "alice").await;
    let (bob, _, bob_c) = setup(&stores, "bob").await;
    fillers(&stores, &alice, c, 2).await;
    finished_turn(&stores, &alice, c, "the codename is zanthor and quilbex").await;
    finished_turn(&stores, &alice, c, "zanthor twice zanthor, with quilbex").await;
    let keys = |hits: &[SearchHit]| hits.iter().map(SearchHit::key).collect::<Vec<_>>();
    let before = keys(&search(&stores, &alice, "zanthor quilbex").await);
    assert!(before.len() >= 2, "{before:?}");
    for i in 0..12 {
        finished_turn(&stores, &bob, bob_c, &format!("zanthor number {i}")).await;
    }
    let after = keys(&search(&stores, &alice, "zanthor quilbex").await);
    assert_eq!(before, after, "bob's messages moved alice's scores");
}
