//! The `KnowledgeIndex` contract: chunks of `ready` files, found by their words, only in
//! their own project, gone with their file.

use std::future::Future;

use confab_core::ids::{ConversationId, FileId, ProjectId, UserId};
use confab_core::knowledge::KnowledgeHit;
use confab_core::model::{FileMeta, Parent, Project, TextOutcome, now};
use confab_core::ports::NewTurn;
use confab_core::values::SearchLanguage;

use super::Stores;
use super::fixtures::{
    completed, not_found, ok, plus_mins, stored_conversation, stored_file, stored_project, turn,
    user,
};

/// Runs every case of the `KnowledgeIndex` contract, each on a fresh store from `fresh`.
pub async fn knowledge_index_contract<F, Fut>(fresh: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = Stores>,
{
    crate::run_cases!(
        "KnowledgeIndex",
        fresh,
        [
            a_ready_files_chunk_is_found_by_an_unusual_word,
            search_stays_in_the_owners_project,
            a_query_without_words_or_with_syntax_finds_nothing_and_does_not_fail,
            a_long_text_is_found_in_its_chunks_and_the_limit_holds,
            chunks_go_with_their_file_and_with_a_replaced_outcome,
            a_conversations_search_finds_its_projects_knowledge_only_while_it_is_on,
            a_turn_says_whether_its_project_has_knowledge_to_search,
            a_projects_language_leaves_words_as_written_found,
            a_questions_common_words_do_not_match_on_their_own,
            the_best_chunk_ranks_first_and_no_other_projects_chunk_appears,
        ]
    );
}

/// The cases of stores that stem words in the project's language (PostgreSQL): run
/// besides [`knowledge_index_contract`].
pub async fn knowledge_stemming_contract<F, Fut>(fresh: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = Stores>,
{
    crate::run_cases!(
        "KnowledgeIndex (stemming)",
        fresh,
        [
            a_french_project_finds_an_inflected_french_form,
            a_changed_language_reindexes_the_projects_chunks_and_no_other,
            a_conversations_search_stems_in_its_projects_language,
        ]
    );
}

async fn set_language(stores: &Stores, p: &Project, language: &str) -> Project {
    let patch = confab_core::model::ProjectPatch {
        language: Some(SearchLanguage::new(language).unwrap()),
        ..confab_core::model::ProjectPatch::default()
    };
    ok(
        stores
            .projects
            .update_project(&p.owner_id, p.id, &patch, confab_core::model::now())
            .await,
        "update_project",
    )
}

const FRENCH: &str = "Les chevaux mangeaient des pommes dans le verger.";

async fn a_projects_language_leaves_words_as_written_found(stores: Stores) {
    let alice = user("alice");
    let p = stored_project(&stores, &alice, "Ferme").await;
    let p = set_language(&stores, &p, "french").await;
    assert_eq!(p.language.as_str(), "french");
    let f = stored_file(&stores, &alice, p.id, "ferme.txt").await;
    ready(&stores, &f, FRENCH).await;
    let hits = search(&stores, &p, "chevaux verger", 5).await;
    assert_eq!(
        hits.len(),
        1,
        "words as written are found in any language: {hits:?}"
    );
    assert_eq!(hits[0].file_id, f.id);
    let p = set_language(&stores, &p, "simple").await;
    assert_eq!(search(&stores, &p, "pommes", 5).await.len(), 1);
}

async fn a_french_project_finds_an_inflected_french_form(stores: Stores) {
    let alice = user("alice");
    let french = set_language(
        &stores,
        &stored_project(&stores, &alice, "Ferme").await,
        "french",
    )
    .await;
    let english = stored_project(&stores, &alice, "Farm").await;
    let f = stored_file(&stores, &alice, french.id, "ferme.txt").await;
    let g = stored_file(&stores, &alice, english.id, "farm.txt").await;
    ready(&stores, &f, FRENCH).await;
    ready(&stores, &g, FRENCH).await;
    // `mangeaient` and `manger` share the French stem `mang`; `cheval` is the stem of
    // `chevaux`. Neither is a word of the text as written.
    let hits = search(&stores, &french, "manger", 5).await;
    assert_eq!(hits.len(), 1, "French stemming: {hits:?}");
    assert_eq!(hits[0].file_id, f.id);
    assert_eq!(search(&stores, &french, "cheval", 5).await.len(), 1);
    assert!(
        search(&stores, &english, "manger", 5).await.is_empty(),
        "the same text in an English project is not stemmed as French"
    );
}

async fn a_changed_language_reindexes_the_projects_chunks_and_no_other(stores: Stores) {
    let alice = user("alice");
    let p = stored_project(&stores, &alice, "Ferme").await;
    let other = stored_project(&stores, &alice, "Autre").await;
    let f = stored_file(&stores, &alice, p.id, "ferme.txt").await;
    let g = stored_file(&stores, &alice, other.id, "autre.txt").await;
    ready(&stores, &f, FRENCH).await;
    ready(&stores, &g, FRENCH).await;
    assert!(
        search(&stores, &p, "manger", 5).await.is_empty(),
        "English by default: no French stems"
    );

    let p = set_language(&stores, &p, "french").await;
    let hits = search(&stores, &p, "manger", 5).await;
    assert_eq!(
        hits.len(),
        1,
        "the stored chunks were re-indexed in French: {hits:?}"
    );
    assert!(
        search(&stores, &other, "manger", 5).await.is_empty(),
        "another project keeps its language"
    );

    // A file made ready after the change is indexed in French too.
    let h = stored_file(&stores, &alice, p.id, "recolte.txt").await;
    ready(&stores, &h, "Nous récoltions les cerises.").await;
    let hits = search(&stores, &p, "récolter", 5).await;
    assert_eq!(hits.len(), 1, "{hits:?}");
    assert_eq!(hits[0].file_id, h.id);

    let p = set_language(&stores, &p, "english").await;
    assert!(
        search(&stores, &p, "manger", 5).await.is_empty(),
        "back to English: the French stems are gone"
    );
    assert_eq!(search(&stores, &p, "mangeaient", 5).await.len(), 1);
}

async fn a_conversations_search_stems_in_its_projects_language(stores: Stores) {
    let alice = user("alice");
    let p = set_language(
        &stores,
        &stored_project(&stores, &alice, "Ferme").await,
        "french",
    )
    .await;
    let conversation = stored_conversation(&stores, &alice, p.id).await;
    let f = stored_file(&stores, &alice, p.id, "ferme.txt").await;
    ready(&stores, &f, FRENCH).await;
    let hits = ok(
        stores
            .knowledge
            .search_conversation(&alice, conversation.id, "Quel cheval ?", 5)
            .await,
        "search_conversation",
    );
    assert_eq!(hits.len(), 1, "{hits:?}");
    assert_eq!(hits[0].file_id, f.id);
}

async fn ready(stores: &Stores, file: &FileMeta, text: &str) {
    ok(
        stores
            .files
            .set_file_text(file.id, &TextOutcome::Ready(text.to_owned()))
            .await,
        "set_file_text",
    );
}

/// Alice's search in her project `p`.
async fn search(stores: &Stores, p: &Project, query: &str, limit: u32) -> Vec<KnowledgeHit> {
    ok(
        stores
            .knowledge
            .search(&p.owner_id, p.id, query, limit)
            .await,
        "search",
    )
}

async fn a_ready_files_chunk_is_found_by_an_unusual_word(stores: Stores) {
    let alice = user("alice");
    let p = stored_project(&stores, &alice, "Bot").await;
    let fact = stored_file(&stores, &alice, p.id, "fact.txt").await;
    let other = stored_file(&stores, &alice, p.id, "other.txt").await;
    let pending = stored_file(&stores, &alice, p.id, "pending.txt").await;
    ready(
        &stores,
        &fact,
        "Our mascot is a Quokka named Zephyrine.\n\nShe lives on an island.",
    )
    .await;
    ready(
        &stores,
        &other,
        "Opening hours are nine to five on weekdays.",
    )
    .await;
    let _ = pending;

    let hits = search(&stores, &p, "Who is zephyrine?", 5).await;
    assert_eq!(hits.len(), 1, "{hits:?}");
    assert_eq!(hits[0].file_id, fact.id);
    assert_eq!(hits[0].ordinal, 0);
    assert_eq!(hits[0].filename, "fact.txt", "a hit names its file");
    assert!(hits[0].text.contains("Zephyrine"), "{hits:?}");

    let hits = search(&stores, &p, "ZEPHYRINE weekdays", 5).await;
    let files: Vec<FileId> = hits.iter().map(|h| h.file_id).collect();
    assert_eq!(hits.len(), 2, "any word matches: {hits:?}");
    assert!(files.contains(&fact.id) && files.contains(&other.id));
    assert!(search(&stores, &p, "unmentioned", 5).await.is_empty());
}

async fn search_stays_in_the_owners_project(stores: Stores) {
    let alice = user("alice");
    let bob = user("bob");
    let mine = stored_project(&stores, &alice, "Mine").await;
    let also_mine = stored_project(&stores, &alice, "Also mine").await;
    let bobs = stored_project(&stores, &bob, "Bob's").await;
    let elsewhere = stored_file(&stores, &alice, also_mine.id, "x.txt").await;
    let bobs_file = stored_file(&stores, &bob, bobs.id, "y.txt").await;
    ready(&stores, &elsewhere, "zephyrine in another project").await;
    ready(&stores, &bobs_file, "zephyrine of another owner").await;

    assert!(search(&stores, &mine, "zephyrine", 5).await.is_empty());
    not_found(
        stores
            .knowledge
            .search(&alice, bobs.id, "zephyrine", 5)
            .await,
        "search in another owner's project",
    );
    not_found(
        stores
            .knowledge
            .search(&alice, ProjectId::new(), "zephyrine", 5)
            .await,
        "search in a missing project",
    );
}

async fn a_query_without_words_or_with_syntax_finds_nothing_and_does_not_fail(stores: Stores) {
    let alice = user("alice");
    let p = stored_project(&stores, &alice, "Bot").await;
    let f = stored_file(&stores, &alice, p.id, "f.txt").await;
    ready(&stores, &f, "The quokka smiles.").await;
    assert!(search(&stores, &p, "", 5).await.is_empty());
    assert!(search(&stores, &p, " ?! -- () ", 5).await.is_empty());
    let hits = search(&stores, &p, "quokka\" OR (NEAR* & !x | y:", 5).await;
    assert_eq!(hits.len(), 1, "query syntax is read as words: {hits:?}");
}

async fn a_long_text_is_found_in_its_chunks_and_the_limit_holds(stores: Stores) {
    let alice = user("alice");
    let p = stored_project(&stores, &alice, "Bot").await;
    let f = stored_file(&stores, &alice, p.id, "long.txt").await;
    let text: String = (0..40)
        .map(|i| {
            format!(
                "Paragraph {i} talks about marmots and code word w{i}x. {}\n\n",
                "Filler words here. ".repeat(40)
            )
        })
        .collect();
    ready(&stores, &f, &text).await;

    let hits = search(&stores, &p, "w33x", 5).await;
    assert_eq!(
        hits.len(),
        1,
        "{:?}",
        hits.iter().map(|h| h.ordinal).collect::<Vec<_>>()
    );
    assert!(hits[0].ordinal > 0, "a later paragraph is in a later chunk");
    assert!(hits[0].text.contains("w33x"));
    let all = search(&stores, &p, "marmots", 3).await;
    assert_eq!(all.len(), 3, "at most the limit");
    let more = search(&stores, &p, "marmots", 100).await;
    assert!(more.len() > 3, "the text is in several chunks");
}

async fn chunks_go_with_their_file_and_with_a_replaced_outcome(stores: Stores) {
    let alice = user("alice");
    let p = stored_project(&stores, &alice, "Bot").await;
    let f = stored_file(&stores, &alice, p.id, "f.txt").await;
    ready(&stores, &f, "first version mentions zephyrine").await;
    ready(&stores, &f, "second version mentions marmots").await;
    assert!(
        search(&stores, &p, "zephyrine", 5).await.is_empty(),
        "replaced text is not found"
    );
    assert_eq!(search(&stores, &p, "marmots", 5).await.len(), 1);

    ok(
        stores
            .files
            .set_file_text(f.id, &TextOutcome::Failed("Unreadable.".to_owned()))
            .await,
        "set_file_text",
    );
    assert!(
        search(&stores, &p, "marmots", 5).await.is_empty(),
        "a failed file has no chunks"
    );

    ready(&stores, &f, "third version mentions marmots").await;
    ok(stores.files.delete_file(&alice, f.id).await, "delete_file");
    assert!(
        search(&stores, &p, "marmots", 5).await.is_empty(),
        "deleted with the file"
    );

    let g = stored_file(&stores, &alice, p.id, "g.txt").await;
    ready(&stores, &g, "marmots again").await;
    ok(
        stores.projects.delete_project(&alice, p.id).await,
        "delete_project",
    );
    let fresh = stored_project(&stores, &alice, "Fresh").await;
    let h = stored_file(&stores, &alice, fresh.id, "h.txt").await;
    ready(&stores, &h, "nothing to see").await;
    assert!(search(&stores, &fresh, "marmots", 5).await.is_empty());
}

async fn a_conversations_search_finds_its_projects_knowledge_only_while_it_is_on(stores: Stores) {
    let alice = user("alice");
    let bob = user("bob");
    let p = stored_project(&stores, &alice, "Bot").await;
    let other = stored_project(&stores, &alice, "Other").await;
    let conversation = stored_conversation(&stores, &alice, p.id).await;
    let f = stored_file(&stores, &alice, p.id, "facts.txt").await;
    let elsewhere = stored_file(&stores, &alice, other.id, "x.txt").await;
    ready(&stores, &f, "The mascot is a quokka named Zephyrine.").await;
    ready(&stores, &elsewhere, "Zephyrine of another project.").await;

    let hits = ok(
        stores
            .knowledge
            .search_conversation(&alice, conversation.id, "who is zephyrine", 5)
            .await,
        "search_conversation",
    );
    assert_eq!(hits.len(), 1, "only the conversation's project: {hits:?}");
    assert_eq!(
        (hits[0].file_id, hits[0].filename.as_str()),
        (f.id, "facts.txt")
    );

    not_found(
        stores
            .knowledge
            .search_conversation(&bob, conversation.id, "zephyrine", 5)
            .await,
        "search_conversation of another owner's conversation",
    );
    not_found(
        stores
            .knowledge
            .search_conversation(
                &alice,
                confab_core::ids::ConversationId::new(),
                "zephyrine",
                5,
            )
            .await,
        "search_conversation of a missing conversation",
    );

    let off = confab_core::model::ProjectPatch {
        knowledge: Some(false),
        ..confab_core::model::ProjectPatch::default()
    };
    ok(
        stores
            .projects
            .update_project(&alice, p.id, &off, confab_core::model::now())
            .await,
        "update_project",
    );
    assert!(
        ok(
            stores
                .knowledge
                .search_conversation(&alice, conversation.id, "zephyrine", 5)
                .await,
            "search_conversation"
        )
        .is_empty(),
        "knowledge off: nothing"
    );
    assert_eq!(
        search(&stores, &p, "zephyrine", 5).await.len(),
        1,
        "the project's own search still finds it"
    );
}

/// Whether a turn in the conversation says its project has knowledge to search (the reply
/// then searches it; else it asks no search). The turn's reply is finished at once.
async fn turn_knows(stores: &Stores, owner: &UserId, conversation_id: ConversationId) -> bool {
    let at = now();
    let (user, reply) = turn(conversation_id, "What do you know?", None, at);
    let new = NewTurn {
        user: Some(user),
        parent: Parent::Leaf,
        reply: reply.clone(),
        file_ids: Vec::new(),
        quota: None,
    };
    let began = ok(
        stores
            .history
            .begin_turn(owner, &new, plus_mins(at, -60), 50)
            .await,
        "begin_turn",
    );
    ok(
        stores
            .history
            .finish_reply(&completed(&reply, "Little."), now())
            .await,
        "finish_reply",
    );
    began.knowledge
}

async fn a_turn_says_whether_its_project_has_knowledge_to_search(stores: Stores) {
    let alice = user("alice");
    let p = stored_project(&stores, &alice, "Bot").await;
    let conversation = stored_conversation(&stores, &alice, p.id).await;
    assert!(
        !turn_knows(&stores, &alice, conversation.id).await,
        "no file: nothing to search"
    );

    // Another project's ready file is not this one's knowledge.
    let other = stored_project(&stores, &alice, "Other").await;
    let elsewhere = stored_file(&stores, &alice, other.id, "x.txt").await;
    ready(&stores, &elsewhere, "Zephyrine of another project.").await;
    let f = stored_file(&stores, &alice, p.id, "facts.txt").await;
    assert!(
        !turn_knows(&stores, &alice, conversation.id).await,
        "a file whose text is not ready yet: nothing to search"
    );

    ready(&stores, &f, "The mascot is a quokka named Zephyrine.").await;
    assert!(turn_knows(&stores, &alice, conversation.id).await);

    let switch = async |on: bool| {
        let patch = confab_core::model::ProjectPatch {
            knowledge: Some(on),
            ..confab_core::model::ProjectPatch::default()
        };
        ok(
            stores
                .projects
                .update_project(&alice, p.id, &patch, now())
                .await,
            "update_project",
        );
    };
    switch(false).await;
    assert!(
        !turn_knows(&stores, &alice, conversation.id).await,
        "knowledge off: nothing to search"
    );
    switch(true).await;
    assert!(turn_knows(&stores, &alice, conversation.id).await);
    ok(
        stores.files.set_file_text(f.id, &TextOutcome::None).await,
        "set_file_text",
    );
    assert!(
        !turn_knows(&stores, &alice, conversation.id).await,
        "the file's text gone: nothing to search"
    );
}

async fn a_questions_common_words_do_not_match_on_their_own(stores: Stores) {
    let alice = user("alice");
    let p = stored_project(&stores, &alice, "Bot").await;
    let chatter = stored_file(&stores, &alice, p.id, "chatter.txt").await;
    let fact = stored_file(&stores, &alice, p.id, "fact.txt").await;
    ready(
        &stores,
        &chatter,
        "How does it go? It is what it is, and the rest is for them to say.",
    )
    .await;
    ready(&stores, &fact, "Marmots whistle when an eagle circles.").await;

    let hits = search(
        &stores,
        &p,
        "How does the marmots' whistle work for them?",
        5,
    )
    .await;
    let files: Vec<FileId> = hits.iter().map(|h| h.file_id).collect();
    assert_eq!(
        files,
        [fact.id],
        "the question's telling words find the passage; its common words alone find nothing"
    );
    // A query of common words only still looks for them.
    let hits = search(&stores, &p, "what is it", 5).await;
    assert_eq!(hits.len(), 1, "{hits:?}");
    assert_eq!(hits[0].file_id, chatter.id);
}

/// The stores rank a bounded set of the project's newest matches: the best of them still
/// comes first (written first here, so that newest-first would not find it), and chunks of
/// another project — the owner's own or another owner's, however well they match — are
/// never among the candidates nor the hits; a query of common words only finds the
/// project's chunks only.
async fn the_best_chunk_ranks_first_and_no_other_projects_chunk_appears(stores: Stores) {
    let alice = user("alice");
    let bob = user("bob");
    let p = stored_project(&stores, &alice, "Bot").await;
    let also_mine = stored_project(&stores, &alice, "Also mine").await;
    let bobs = stored_project(&stores, &bob, "Bob's").await;
    let best = stored_file(&stores, &alice, p.id, "best.txt").await;
    ready(
        &stores,
        &best,
        "Wombats dig. Wombats sleep. Wombats eat roots: wombats, wombats.",
    )
    .await;
    let mut weaker = Vec::new();
    for i in 0..4 {
        let f = stored_file(&stores, &alice, p.id, &format!("weak{i}.txt")).await;
        ready(
            &stores,
            &f,
            &format!(
                "Report {i} on the grounds, the fences and the gates, the lawns and the \
                 paths; a wombat was seen once near the shed."
            ),
        )
        .await;
        weaker.push(f.id);
    }
    for (owner, project, name) in [(&alice, &also_mine, "mine.txt"), (&bob, &bobs, "bob.txt")] {
        let f = stored_file(&stores, owner, project.id, name).await;
        ready(&stores, &f, &"The wombats and the wombats. ".repeat(20)).await;
    }

    let hits = search(&stores, &p, "wombats", 1).await;
    assert_eq!(hits.len(), 1, "{hits:?}");
    assert_eq!(hits[0].file_id, best.id, "the best chunk first: {hits:?}");
    let all = search(&stores, &p, "Where do wombats live?", 10).await;
    let files: Vec<FileId> = all.iter().map(|h| h.file_id).collect();
    assert_eq!(files.first(), Some(&best.id), "{files:?}");
    assert!(
        files.iter().all(|f| *f == best.id || weaker.contains(f)),
        "only the project's chunks: {files:?}"
    );
    let common = search(&stores, &p, "the and", 10).await;
    assert!(!common.is_empty());
    assert!(
        common
            .iter()
            .all(|h| h.file_id == best.id || weaker.contains(&h.file_id)),
        "{common:?}"
    );
}
