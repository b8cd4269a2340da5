//! The `ChatHistory` contract for conversations as trees: where a turn goes (after the leaf,
//! as a new first message, after a chosen reply, or a regenerated reply beside its siblings),
//! what a turn reads (its own branch only), branch reads with their siblings, choosing a
//! branch, one streaming reply across branches, and deleting a conversation with branches.

use std::future::Future;
use std::sync::Arc;

use confab_core::error::{Conflict, StoreError};
use confab_core::ids::{ConversationId, MessageId, UserId};
use confab_core::model::{Message, Parent, Role, now};
use confab_core::ports::{Branch, NewTurn, Turn};

use super::Stores;
use super::fixtures::{
    completed, conflict, not_found, ok, plus_mins, stored_conversation, stored_file,
    stored_project, turn, user,
};

/// Runs every case of the tree contract, each on a fresh store from `fresh`.
pub async fn conversation_tree_contract<F, Fut>(fresh: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = Stores>,
{
    crate::run_cases!(
        "ChatHistory (trees)",
        fresh,
        [
            a_linear_conversation_is_a_chain_ending_at_the_leaf,
            edit_and_resend_starts_a_branch_and_the_turn_reads_only_its_own,
            a_new_first_message_is_a_root_beside_the_first_question,
            a_regenerated_reply_is_a_sibling_and_reads_the_branch_to_its_question,
            branch_reads_list_siblings_in_order_and_follow_a_chosen_leaf,
            branch_pages_keep_to_their_branch_and_start_after_the_cursor,
            choosing_a_leaf_follows_the_most_recent_child_to_the_deepest_message,
            a_parent_of_the_wrong_role_is_invalid_and_one_elsewhere_is_not_found,
            one_reply_streams_at_a_time_across_branches,
            concurrent_regenerations_leave_exactly_one_streaming_reply,
            the_conversations_model_is_read_by_the_turn,
            deleting_a_conversation_with_branches_removes_every_version,
            another_owner_gets_not_found_on_every_tree_method,
            empty_reads_are_empty_pages_and_another_owners_are_not_found,
            titles_are_written_only_into_an_empty_title,
            every_write_that_changes_a_page_changes_the_revision_and_reads_do_not,
        ]
    );
}

/// A turn's history must not depend on when its stale replies were swept: nothing is stale.
fn fresh_lease() -> confab_core::model::Timestamp {
    plus_mins(now(), -60)
}

/// Stores a user message after `parent` and its reply, finishes the reply, and returns both
/// as stored, with what the turn read.
async fn send(
    stores: &Stores,
    owner: &UserId,
    conversation: ConversationId,
    parent: Parent,
    text: &str,
) -> (Message, Message, Turn) {
    let (mut u, r) = turn(conversation, text, None, now());
    let new = NewTurn {
        user: Some(u.clone()),
        parent,
        reply: r.clone(),
        file_ids: Vec::new(),
        quota: None,
    };
    let read = ok(
        stores
            .history
            .begin_turn(owner, &new, fresh_lease(), 200)
            .await,
        "begin_turn",
    );
    u.parent_id = read.parent_id;
    let done = completed(&r, &format!("Re: {text}"));
    ok(
        stores.history.finish_reply(&done, now()).await,
        "finish_reply",
    );
    (u, done, read)
}

/// Regenerates the answer to `question` and finishes it.
async fn regenerate(
    stores: &Stores,
    owner: &UserId,
    conversation: ConversationId,
    question: MessageId,
    text: &str,
) -> (Message, Turn) {
    let (_, mut r) = turn(conversation, "unused", None, now());
    r.parent_id = Some(question);
    let new = NewTurn {
        user: None,
        parent: Parent::Message(question),
        reply: r.clone(),
        file_ids: Vec::new(),
        quota: None,
    };
    let read = ok(
        stores
            .history
            .begin_turn(owner, &new, fresh_lease(), 200)
            .await,
        "begin_turn (regenerate)",
    );
    let done = completed(&r, text);
    ok(
        stores.history.finish_reply(&done, now()).await,
        "finish_reply",
    );
    (done, read)
}

async fn branch(
    stores: &Stores,
    owner: &UserId,
    conversation: ConversationId,
    leaf: Option<MessageId>,
) -> Branch {
    ok(
        stores
            .history
            .list_branch(owner, conversation, leaf, None, 1_000)
            .await,
        "list_branch",
    )
}

fn ids(messages: &[Message]) -> Vec<MessageId> {
    messages.iter().map(|m| m.id).collect()
}

fn branch_ids(branch: &Branch) -> Vec<MessageId> {
    branch.messages.iter().map(|m| m.message.id).collect()
}

async fn leaf_of(stores: &Stores, owner: &UserId, id: ConversationId) -> Option<MessageId> {
    ok(
        stores.history.get_conversation(owner, id).await,
        "get_conversation",
    )
    .leaf_id
}

async fn a_linear_conversation_is_a_chain_ending_at_the_leaf(stores: Stores) {
    let alice = user("alice");
    let p = stored_project(&stores, &alice, "Bot").await;
    let c = stored_conversation(&stores, &alice, p.id).await;
    let empty = branch(&stores, &alice, c.id, None).await;
    assert_eq!(
        empty,
        Branch::default(),
        "an empty conversation has no branch"
    );
    assert_eq!(leaf_of(&stores, &alice, c.id).await, None);

    let (u1, r1, read1) = send(&stores, &alice, c.id, Parent::Leaf, "one").await;
    assert_eq!(read1.parent_id, None, "the first message has no parent");
    assert!(read1.history.is_empty());
    let (u2, r2, read2) = send(&stores, &alice, c.id, Parent::Leaf, "two").await;
    assert_eq!(read2.parent_id, Some(r1.id), "a send follows the leaf");
    assert_eq!(ids(&read2.history), vec![u1.id, r1.id]);
    assert_eq!(
        read2.history[0], u1,
        "the history is the messages as stored"
    );
    assert_eq!(leaf_of(&stores, &alice, c.id).await, Some(r2.id));

    let read = branch(&stores, &alice, c.id, None).await;
    assert_eq!(read.leaf_id, Some(r2.id));
    let stored: Vec<Message> = read.messages.iter().map(|m| m.message.clone()).collect();
    assert_eq!(stored, vec![u1.clone(), r1.clone(), u2.clone(), r2.clone()]);
    assert_eq!(stored[1].parent_id, Some(u1.id));
    assert_eq!(stored[2].parent_id, Some(r1.id));
    for m in &read.messages {
        assert_eq!(
            m.sibling_ids,
            vec![m.message.id],
            "a line has no other versions"
        );
    }
    let got = ok(
        stores.history.get_message(&alice, u2.id).await,
        "get_message",
    );
    assert_eq!(got, u2);
}

async fn edit_and_resend_starts_a_branch_and_the_turn_reads_only_its_own(stores: Stores) {
    let alice = user("alice");
    let p = stored_project(&stores, &alice, "Bot").await;
    let c = stored_conversation(&stores, &alice, p.id).await;
    let (u1, r1, _) = send(&stores, &alice, c.id, Parent::Leaf, "one").await;
    let (u2, r2, _) = send(&stores, &alice, c.id, Parent::Leaf, "two").await;
    let (_, _, _) = send(&stores, &alice, c.id, Parent::Leaf, "three").await;
    // Edit "two": a new user message after r1, beside u2.
    let (e2, f2, read) = send(&stores, &alice, c.id, Parent::Message(r1.id), "two, edited").await;
    assert_eq!(read.parent_id, Some(r1.id));
    assert_eq!(
        ids(&read.history),
        vec![u1.id, r1.id],
        "the turn reads its own branch, never the old one"
    );
    assert_eq!(e2.parent_id, Some(r1.id));
    assert_eq!(leaf_of(&stores, &alice, c.id).await, Some(f2.id));
    let now_shown = branch(&stores, &alice, c.id, None).await;
    assert_eq!(branch_ids(&now_shown), vec![u1.id, r1.id, e2.id, f2.id]);
    assert_eq!(now_shown.messages[2].sibling_ids, vec![u2.id, e2.id]);
    // The old branch stays, readable through its leaf.
    let old = branch(&stores, &alice, c.id, Some(r2.id)).await;
    assert_eq!(branch_ids(&old), vec![u1.id, r1.id, u2.id, r2.id]);
    assert_eq!(old.leaf_id, Some(r2.id));
    assert_eq!(old.messages[2].sibling_ids, vec![u2.id, e2.id]);
    // A send after the edit continues the new branch, with a history of it alone.
    let (_, _, next) = send(&stores, &alice, c.id, Parent::Leaf, "four").await;
    assert_eq!(ids(&next.history), vec![u1.id, r1.id, e2.id, f2.id]);
}

async fn a_new_first_message_is_a_root_beside_the_first_question(stores: Stores) {
    let alice = user("alice");
    let p = stored_project(&stores, &alice, "Bot").await;
    let c = stored_conversation(&stores, &alice, p.id).await;
    let (u1, _, _) = send(&stores, &alice, c.id, Parent::Leaf, "one").await;
    send(&stores, &alice, c.id, Parent::Leaf, "two").await;
    let (e1, f1, read) = send(&stores, &alice, c.id, Parent::Root, "one, edited").await;
    assert_eq!(read.parent_id, None);
    assert!(
        read.history.is_empty(),
        "a new first message has no history"
    );
    assert_eq!(e1.parent_id, None);
    let shown = branch(&stores, &alice, c.id, None).await;
    assert_eq!(branch_ids(&shown), vec![e1.id, f1.id]);
    assert_eq!(shown.messages[0].sibling_ids, vec![u1.id, e1.id]);
}

async fn a_regenerated_reply_is_a_sibling_and_reads_the_branch_to_its_question(stores: Stores) {
    let alice = user("alice");
    let p = stored_project(&stores, &alice, "Bot").await;
    let c = stored_conversation(&stores, &alice, p.id).await;
    let (u1, r1, _) = send(&stores, &alice, c.id, Parent::Leaf, "one").await;
    let (u2, r2, _) = send(&stores, &alice, c.id, Parent::Leaf, "two").await;
    let (u3, _, _) = send(&stores, &alice, c.id, Parent::Leaf, "three").await;
    let (again, read) = regenerate(&stores, &alice, c.id, u2.id, "Another answer").await;
    assert_eq!(read.parent_id, Some(u2.id));
    assert_eq!(
        ids(&read.history),
        vec![u1.id, r1.id, u2.id],
        "a regeneration reads the branch that ends at its question, the question last"
    );
    let stored = ok(
        stores.history.get_message(&alice, again.id).await,
        "get_message",
    );
    assert_eq!(stored.parent_id, Some(u2.id));
    assert_eq!(stored.role, Role::Assistant);
    assert_eq!(leaf_of(&stores, &alice, c.id).await, Some(again.id));
    let shown = branch(&stores, &alice, c.id, None).await;
    assert_eq!(branch_ids(&shown), vec![u1.id, r1.id, u2.id, again.id]);
    assert_eq!(shown.messages[3].sibling_ids, vec![r2.id, again.id]);
    assert!(!branch_ids(&shown).contains(&u3.id));
}

async fn branch_reads_list_siblings_in_order_and_follow_a_chosen_leaf(stores: Stores) {
    let alice = user("alice");
    let p = stored_project(&stores, &alice, "Bot").await;
    let c = stored_conversation(&stores, &alice, p.id).await;
    let (u1, r1, _) = send(&stores, &alice, c.id, Parent::Leaf, "one").await;
    let (b, _) = regenerate(&stores, &alice, c.id, u1.id, "b").await;
    let (d, _) = regenerate(&stores, &alice, c.id, u1.id, "d").await;
    for leaf in [r1.id, b.id, d.id] {
        let read = branch(&stores, &alice, c.id, Some(leaf)).await;
        assert_eq!(branch_ids(&read), vec![u1.id, leaf]);
        assert_eq!(
            read.messages[1].sibling_ids,
            vec![r1.id, b.id, d.id],
            "siblings oldest first, the same from each of them"
        );
        assert_eq!(read.messages[0].sibling_ids, vec![u1.id]);
    }
    let chosen = ok(
        stores.history.choose_leaf(&alice, c.id, b.id).await,
        "choose_leaf",
    );
    assert_eq!(chosen.leaf_id, Some(b.id));
    assert_eq!(
        branch_ids(&branch(&stores, &alice, c.id, None).await),
        vec![u1.id, b.id]
    );
    // A send goes after the chosen leaf.
    let (_, _, read) = send(&stores, &alice, c.id, Parent::Leaf, "two").await;
    assert_eq!(read.parent_id, Some(b.id));
    assert_eq!(ids(&read.history), vec![u1.id, b.id]);
}

async fn branch_pages_keep_to_their_branch_and_start_after_the_cursor(stores: Stores) {
    let alice = user("alice");
    let p = stored_project(&stores, &alice, "Bot").await;
    let c = stored_conversation(&stores, &alice, p.id).await;
    let mut line = Vec::new();
    for i in 0..3 {
        let (u, r, _) = send(&stores, &alice, c.id, Parent::Leaf, &format!("q{i}")).await;
        line.extend([u.id, r.id]);
    }
    let leaf = line[5];
    let first = ok(
        stores
            .history
            .list_branch(&alice, c.id, None, None, 4)
            .await,
        "list_branch",
    );
    assert_eq!(
        branch_ids(&first),
        line[..4].to_vec(),
        "oldest first, at most limit"
    );
    assert_eq!(first.leaf_id, Some(leaf));
    // Another branch is chosen between two pages: a page of the first still reads it.
    send(&stores, &alice, c.id, Parent::Message(line[1]), "edited").await;
    let rest = ok(
        stores
            .history
            .list_branch(&alice, c.id, Some(leaf), Some(line[3]), 4)
            .await,
        "list_branch",
    );
    assert_eq!(branch_ids(&rest), line[4..].to_vec(), "after is exclusive");
    assert_eq!(rest.leaf_id, Some(leaf));
}

async fn choosing_a_leaf_follows_the_most_recent_child_to_the_deepest_message(stores: Stores) {
    let alice = user("alice");
    let p = stored_project(&stores, &alice, "Bot").await;
    let c = stored_conversation(&stores, &alice, p.id).await;
    let (u1, r1, _) = send(&stores, &alice, c.id, Parent::Leaf, "one").await;
    let (_, r2, _) = send(&stores, &alice, c.id, Parent::Leaf, "two").await;
    // Under u1: r1 (with a child) and then b (a leaf).
    let (b, _) = regenerate(&stores, &alice, c.id, u1.id, "b").await;
    // Under r1: u2 → r2, then an edit e2 → f2 and a regeneration of e2 → g2.
    let (e2, _, _) = send(&stores, &alice, c.id, Parent::Message(r1.id), "two, edited").await;
    let (g2, _) = regenerate(&stores, &alice, c.id, e2.id, "g").await;
    let cases = [
        (u1.id, b.id, "the most recent child of u1 is b, a leaf"),
        (r1.id, g2.id, "r1 → e2 (newest) → g2 (newest)"),
        (r2.id, r2.id, "a leaf is its own deepest message"),
        (e2.id, g2.id, "e2's newest child"),
    ];
    for (from, expected, why) in cases {
        let chosen = ok(
            stores.history.choose_leaf(&alice, c.id, from).await,
            "choose_leaf",
        );
        assert_eq!(chosen.leaf_id, Some(expected), "{why}");
        assert_eq!(
            leaf_of(&stores, &alice, c.id).await,
            Some(expected),
            "{why}"
        );
    }
    let before = ok(stores.history.get_conversation(&alice, c.id).await, "get");
    let other = stored_conversation(&stores, &alice, p.id).await;
    not_found(
        stores.history.choose_leaf(&alice, other.id, r1.id).await,
        "choose_leaf with a message of another conversation",
    );
    not_found(
        stores
            .history
            .choose_leaf(&alice, c.id, MessageId::new())
            .await,
        "choose_leaf with an unknown message",
    );
    assert_eq!(
        ok(stores.history.get_conversation(&alice, c.id).await, "get"),
        before,
        "a refused choice changes nothing"
    );
}

async fn a_parent_of_the_wrong_role_is_invalid_and_one_elsewhere_is_not_found(stores: Stores) {
    let alice = user("alice");
    let p = stored_project(&stores, &alice, "Bot").await;
    let c = stored_conversation(&stores, &alice, p.id).await;
    let other = stored_conversation(&stores, &alice, p.id).await;
    let (u1, r1, _) = send(&stores, &alice, c.id, Parent::Leaf, "one").await;
    let (_, elsewhere, _) = send(&stores, &alice, other.id, Parent::Leaf, "other").await;
    let before = branch(&stores, &alice, c.id, None).await;
    let attempt = |parent: Parent, with_user: bool| {
        let (u, mut r) = turn(c.id, "x", None, now());
        if let (false, Parent::Message(q)) = (with_user, parent) {
            r.parent_id = Some(q);
        }
        NewTurn {
            user: with_user.then_some(u),
            parent,
            reply: r,
            file_ids: Vec::new(),
            quota: None,
        }
    };
    let invalid = |result: Result<Turn, StoreError>, call: &str| match result {
        Err(StoreError::Invalid(_)) => {}
        other => panic!("{call}: expected Invalid, got {other:?}"),
    };
    let h = &stores.history;
    invalid(
        h.begin_turn(
            &alice,
            &attempt(Parent::Message(u1.id), true),
            fresh_lease(),
            200,
        )
        .await,
        "a user message after a user message",
    );
    invalid(
        h.begin_turn(
            &alice,
            &attempt(Parent::Message(r1.id), false),
            fresh_lease(),
            200,
        )
        .await,
        "a regenerated reply of a reply",
    );
    not_found(
        h.begin_turn(
            &alice,
            &attempt(Parent::Message(elsewhere.id), true),
            fresh_lease(),
            200,
        )
        .await,
        "a parent in another conversation",
    );
    not_found(
        h.begin_turn(
            &alice,
            &attempt(Parent::Message(MessageId::new()), true),
            fresh_lease(),
            200,
        )
        .await,
        "an unknown parent",
    );
    not_found(
        h.list_branch(&alice, c.id, Some(elsewhere.id), None, 10)
            .await,
        "list_branch ending at a message of another conversation",
    );
    assert_eq!(
        branch(&stores, &alice, c.id, None).await,
        before,
        "refused turns store nothing"
    );
    assert_eq!(
        ok(
            h.list_messages(&alice, c.id, None, 100).await,
            "list_messages"
        )
        .len(),
        2
    );
}

async fn one_reply_streams_at_a_time_across_branches(stores: Stores) {
    let alice = user("alice");
    let p = stored_project(&stores, &alice, "Bot").await;
    let c = stored_conversation(&stores, &alice, p.id).await;
    let (u1, r1, _) = send(&stores, &alice, c.id, Parent::Leaf, "one").await;
    // A reply streams on a new branch (not finished).
    let (u, r) = turn(c.id, "edited", None, now());
    let streaming = NewTurn {
        user: Some(u),
        parent: Parent::Root,
        reply: r.clone(),
        file_ids: Vec::new(),
        quota: None,
    };
    ok(
        stores
            .history
            .begin_turn(&alice, &streaming, fresh_lease(), 200)
            .await,
        "begin_turn",
    );
    let (u2, r2) = turn(c.id, "two", None, now());
    conflict(
        stores
            .history
            .begin_turn(
                &alice,
                &NewTurn {
                    user: Some(u2),
                    parent: Parent::Message(r1.id),
                    reply: r2,
                    file_ids: Vec::new(),
                    quota: None,
                },
                fresh_lease(),
                200,
            )
            .await,
        Conflict::ReplyInProgress,
        "a send on the other branch",
    );
    let (_, mut again) = turn(c.id, "x", None, now());
    again.parent_id = Some(u1.id);
    conflict(
        stores
            .history
            .begin_turn(
                &alice,
                &NewTurn {
                    user: None,
                    parent: Parent::Message(u1.id),
                    reply: again,
                    file_ids: Vec::new(),
                    quota: None,
                },
                fresh_lease(),
                200,
            )
            .await,
        Conflict::ReplyInProgress,
        "a regeneration on the other branch",
    );
    let conversation = ok(stores.history.get_conversation(&alice, c.id).await, "get");
    assert_eq!(conversation.active_reply_id, Some(r.id));
    let latest = ok(
        stores.history.latest_reply(&alice, c.id).await,
        "latest_reply",
    );
    assert_eq!(
        latest.map(|m| m.id),
        Some(r.id),
        "the live reply is found on any branch"
    );
}

async fn concurrent_regenerations_leave_exactly_one_streaming_reply(stores: Stores) {
    let alice = user("alice");
    let p = stored_project(&stores, &alice, "Bot").await;
    let c = stored_conversation(&stores, &alice, p.id).await;
    let (u1, _, _) = send(&stores, &alice, c.id, Parent::Leaf, "one").await;
    let history = Arc::clone(&stores.history);
    let mut racers = Vec::new();
    for _ in 0..6 {
        let history = Arc::clone(&history);
        let owner = alice.clone();
        let (_, mut r) = turn(c.id, "x", None, now());
        r.parent_id = Some(u1.id);
        racers.push(tokio::spawn(async move {
            let new = NewTurn {
                user: None,
                parent: Parent::Message(u1.id),
                reply: r,
                file_ids: Vec::new(),
                quota: None,
            };
            history.begin_turn(&owner, &new, fresh_lease(), 200).await
        }));
    }
    let mut started = 0;
    for racer in racers {
        match racer.await.expect("a racer panicked") {
            Ok(_) => started += 1,
            Err(StoreError::Conflict(Conflict::ReplyInProgress)) => {}
            Err(other) => panic!("a racing regeneration failed with {other:?}"),
        }
    }
    assert_eq!(started, 1, "exactly one regeneration may start");
    let read = branch(&stores, &alice, c.id, Some(u1.id)).await;
    let siblings = &read.messages[0].sibling_ids;
    assert_eq!(siblings, &vec![u1.id]);
    let replies = ok(
        stores.history.list_messages(&alice, c.id, None, 100).await,
        "list_messages",
    );
    assert_eq!(
        replies.len(),
        3,
        "the question, its first reply and one regeneration"
    );
}

async fn the_conversations_model_is_read_by_the_turn(stores: Stores) {
    let alice = user("alice");
    let p = stored_project(&stores, &alice, "Bot").await;
    let c = stored_conversation(&stores, &alice, p.id).await;
    let (_, _, read) = send(&stores, &alice, c.id, Parent::Leaf, "one").await;
    assert_eq!(
        read.model, None,
        "a new conversation uses the default model"
    );
    let set = ok(
        stores
            .history
            .set_conversation_model(&alice, c.id, Some("model-b".to_owned()))
            .await,
        "set_conversation_model",
    );
    assert_eq!(set.model.as_deref(), Some("model-b"));
    assert_eq!(
        ok(stores.history.get_conversation(&alice, c.id).await, "get")
            .model
            .as_deref(),
        Some("model-b")
    );
    let (_, _, read) = send(&stores, &alice, c.id, Parent::Leaf, "two").await;
    assert_eq!(read.model.as_deref(), Some("model-b"));
    let cleared = ok(
        stores
            .history
            .set_conversation_model(&alice, c.id, None)
            .await,
        "set_conversation_model",
    );
    assert_eq!(cleared.model, None);
}

async fn deleting_a_conversation_with_branches_removes_every_version(stores: Stores) {
    let alice = user("alice");
    let p = stored_project(&stores, &alice, "Bot").await;
    let c = stored_conversation(&stores, &alice, p.id).await;
    let keep = stored_conversation(&stores, &alice, p.id).await;
    let (u1, r1, _) = send(&stores, &alice, c.id, Parent::Leaf, "one").await;
    let (e1, _, _) = send(&stores, &alice, c.id, Parent::Root, "one, edited").await;
    let (g, _) = regenerate(&stores, &alice, c.id, u1.id, "g").await;
    let (kept, _, _) = send(&stores, &alice, keep.id, Parent::Leaf, "kept").await;
    ok(
        stores.history.delete_conversation(&alice, c.id).await,
        "delete_conversation",
    );
    for id in [u1.id, r1.id, e1.id, g.id] {
        not_found(
            stores.history.get_message(&alice, id).await,
            "get_message of a deleted conversation's message",
        );
    }
    not_found(
        stores
            .history
            .list_branch(&alice, c.id, None, None, 10)
            .await,
        "list_branch of a deleted conversation",
    );
    assert_eq!(
        ok(
            stores.history.get_message(&alice, kept.id).await,
            "get_message"
        ),
        kept,
        "another conversation keeps its messages"
    );
}

async fn another_owner_gets_not_found_on_every_tree_method(stores: Stores) {
    let alice = user("alice");
    let mallory = user("mallory");
    let p = stored_project(&stores, &alice, "Bot").await;
    let c = stored_conversation(&stores, &alice, p.id).await;
    let (u1, r1, _) = send(&stores, &alice, c.id, Parent::Leaf, "one").await;
    let before = branch(&stores, &alice, c.id, None).await;
    let h = &stores.history;
    not_found(h.get_message(&mallory, u1.id).await, "get_message");
    not_found(
        h.list_branch(&mallory, c.id, None, None, 10).await,
        "list_branch",
    );
    not_found(
        h.list_branch(&mallory, c.id, Some(r1.id), None, 10).await,
        "list_branch with a leaf",
    );
    not_found(h.choose_leaf(&mallory, c.id, u1.id).await, "choose_leaf");
    not_found(
        h.set_conversation_model(&mallory, c.id, Some("m".to_owned()))
            .await,
        "set_conversation_model",
    );
    let (_, mut r) = turn(c.id, "x", None, now());
    r.parent_id = Some(u1.id);
    not_found(
        h.begin_turn(
            &mallory,
            &NewTurn {
                user: None,
                parent: Parent::Message(u1.id),
                reply: r,
                file_ids: Vec::new(),
                quota: None,
            },
            fresh_lease(),
            200,
        )
        .await,
        "begin_turn (regenerate) by another owner",
    );
    assert_eq!(
        branch(&stores, &alice, c.id, None).await,
        before,
        "nothing changed"
    );
    assert_eq!(
        ok(h.get_conversation(&alice, c.id).await, "get").model,
        None
    );
}

/// Titles written after a first reply never replace one (run from the tree suite).
/// The reads that find ownership and their page in one query (issue 20): an empty
/// conversation or project is an empty page, a page past the end is empty, and another
/// owner's conversation or project is `NotFound` whether it is empty or not.
async fn empty_reads_are_empty_pages_and_another_owners_are_not_found(stores: Stores) {
    let alice = user("alice");
    let mallory = user("mallory");
    let h = &stores.history;
    let empty = stored_project(&stores, &alice, "Empty").await;
    let quiet = stored_conversation(&stores, &alice, empty.id).await;
    let none = ok(
        h.list_branch(&alice, quiet.id, None, None, 10).await,
        "list_branch",
    );
    assert_eq!(none.leaf_id, None, "an empty conversation has no leaf");
    assert!(
        none.messages.is_empty(),
        "an empty conversation has no messages"
    );
    not_found(
        h.list_branch(&mallory, quiet.id, None, None, 10).await,
        "list_branch of another owner's empty conversation",
    );
    let files = ok(
        stores.files.list_files(&alice, empty.id, None, 10).await,
        "list_files of an empty project",
    );
    assert!(files.is_empty(), "no files: {files:?}");
    not_found(
        stores.files.list_files(&mallory, empty.id, None, 10).await,
        "list_files of another owner's empty project",
    );
    let bare = stored_project(&stores, &alice, "Bare").await;
    let listed = ok(
        h.list_conversations(&alice, bare.id, None, 10).await,
        "list_conversations of a project without conversations",
    );
    assert!(listed.is_empty(), "no conversations: {listed:?}");
    not_found(
        h.list_conversations(&mallory, bare.id, None, 10).await,
        "list_conversations of another owner's empty project",
    );

    let p = stored_project(&stores, &alice, "Full").await;
    let c = stored_conversation(&stores, &alice, p.id).await;
    stored_file(&stores, &alice, p.id, "notes.txt").await;
    let (u1, r1, _) = send(&stores, &alice, c.id, Parent::Leaf, "one").await;
    let read = ok(
        h.list_branch(&alice, c.id, None, None, 10).await,
        "list_branch",
    );
    assert_eq!(read.leaf_id, Some(r1.id));
    assert_eq!(branch_ids(&read), [u1.id, r1.id]);
    let past = ok(
        h.list_branch(&alice, c.id, Some(r1.id), Some(r1.id), 10)
            .await,
        "list_branch after its last message",
    );
    assert_eq!(past.leaf_id, Some(r1.id));
    assert!(past.messages.is_empty(), "a page past the end is empty");
    not_found(
        h.list_branch(&mallory, c.id, Some(r1.id), Some(r1.id), 10)
            .await,
        "list_branch of another owner's conversation after a cursor",
    );
    let listed = ok(
        h.list_conversations(&alice, p.id, None, 10).await,
        "list_conversations",
    );
    assert_eq!(listed.iter().map(|c| c.id).collect::<Vec<_>>(), [c.id]);
    not_found(
        h.list_conversations(&mallory, p.id, None, 10).await,
        "list_conversations of another owner's project",
    );
    assert_eq!(
        ok(
            stores.files.list_files(&alice, p.id, None, 10).await,
            "list_files"
        )
        .len(),
        1
    );
    not_found(
        stores.files.list_files(&mallory, p.id, None, 10).await,
        "list_files of another owner's project",
    );
    // Mallory's own project beside Alice's: Alice's rows never show in Mallory's lists.
    let own = stored_project(&stores, &mallory, "Mine").await;
    assert!(
        ok(
            h.list_conversations(&mallory, own.id, None, 10).await,
            "list_conversations"
        )
        .is_empty()
    );
    assert!(
        ok(
            stores.files.list_files(&mallory, own.id, None, 10).await,
            "list_files"
        )
        .is_empty()
    );
}

async fn titles_are_written_only_into_an_empty_title(stores: Stores) {
    let alice = user("alice");
    let p = stored_project(&stores, &alice, "Bot").await;
    let c = untitled_conversation(&stores, &alice, p.id).await;
    let before = ok(stores.history.get_conversation(&alice, c.id).await, "get");
    assert!(ok(
        stores.history.set_title_if_empty(c.id, "Lisbon trip").await,
        "set_title_if_empty"
    ));
    let titled = ok(stores.history.get_conversation(&alice, c.id).await, "get");
    assert_eq!(titled.title.as_deref(), Some("Lisbon trip"));
    assert_eq!(
        titled.updated_at, before.updated_at,
        "a title is not activity"
    );
    assert!(!ok(
        stores.history.set_title_if_empty(c.id, "Another").await,
        "set_title_if_empty"
    ));
    ok(
        stores
            .history
            .rename_conversation(&alice, c.id, Some("Mine".to_owned()), now())
            .await,
        "rename",
    );
    assert!(!ok(
        stores.history.set_title_if_empty(c.id, "Written").await,
        "set_title_if_empty"
    ));
    assert_eq!(
        ok(stores.history.get_conversation(&alice, c.id).await, "get")
            .title
            .as_deref(),
        Some("Mine"),
        "a title the user set is never replaced"
    );
    not_found(
        stores
            .history
            .set_title_if_empty(ConversationId::new(), "x")
            .await,
        "set_title_if_empty of a missing conversation",
    );
    let (_, _, read) = send(&stores, &alice, c.id, Parent::Leaf, "one").await;
    assert!(!read.untitled, "the turn reads that it has a title");
    let untitled = untitled_conversation(&stores, &alice, p.id).await;
    let (_, _, read) = send(&stores, &alice, untitled.id, Parent::Leaf, "one").await;
    assert!(read.untitled);
}

async fn untitled_conversation(
    stores: &Stores,
    owner: &UserId,
    project: confab_core::ids::ProjectId,
) -> confab_core::model::Conversation {
    let c = super::fixtures::conversation(owner, project, None);
    ok(
        stores.history.insert_conversation(&c).await,
        "insert_conversation",
    );
    c
}

/// The conversation's revision, read alone and with a page (the same when nothing was written
/// in between).
async fn revision(stores: &Stores, owner: &UserId, conversation: ConversationId) -> i64 {
    let alone = ok(
        stores
            .history
            .conversation_revision(owner, conversation)
            .await,
        "conversation_revision",
    );
    let page = branch(stores, owner, conversation, None).await;
    assert_eq!(page.revision, alone, "list_branch reads the same revision");
    alone
}

/// Asserts that `write` changed the revision (from `before`) and returns the new one.
#[track_caller]
fn changed(before: i64, after: i64, write: &str) -> i64 {
    assert_ne!(
        before, after,
        "{write} must change the conversation's revision"
    );
    after
}

async fn every_write_that_changes_a_page_changes_the_revision_and_reads_do_not(stores: Stores) {
    let alice = user("alice");
    let mallory = user("mallory");
    let p = stored_project(&stores, &alice, "Bot").await;
    let c = stored_conversation(&stores, &alice, p.id).await;
    let h = &stores.history;
    let mut rev = revision(&stores, &alice, c.id).await;

    // A turn with an attached file: the user message, its link, the streaming reply, the leaf.
    let attached = stored_file(&stores, &alice, p.id, "notes.txt").await;
    let (u1, r1) = turn(c.id, "one", None, now());
    let new = NewTurn {
        user: Some(u1.clone()),
        parent: Parent::Leaf,
        reply: r1.clone(),
        file_ids: vec![attached.id],
        quota: None,
    };
    ok(
        h.begin_turn(&alice, &new, fresh_lease(), 200).await,
        "begin_turn",
    );
    rev = changed(rev, revision(&stores, &alice, c.id).await, "begin_turn");

    // Reads change nothing.
    let mut read_revs = Vec::new();
    ok(h.get_conversation(&alice, c.id).await, "get_conversation");
    ok(h.get_message(&alice, u1.id).await, "get_message");
    ok(
        h.list_messages(&alice, c.id, None, 50).await,
        "list_messages",
    );
    ok(h.latest_reply(&alice, c.id).await, "latest_reply");
    ok(
        h.list_branch(&alice, c.id, Some(u1.id), Some(u1.id), 5)
            .await,
        "list_branch after a cursor",
    );
    read_revs.push(revision(&stores, &alice, c.id).await);
    read_revs.push(revision(&stores, &alice, c.id).await);
    assert_eq!(
        read_revs,
        vec![rev, rev],
        "reads must not change the revision"
    );

    // A streaming reply's text saved, then the reply finished (status, model, usage).
    assert!(
        ok(h.touch_reply(r1.id, "partial", now()).await, "touch_reply"),
        "the reply is still streaming"
    );
    rev = changed(rev, revision(&stores, &alice, c.id).await, "touch_reply");
    let done = completed(&r1, "Re: one");
    ok(h.finish_reply(&done, now()).await, "finish_reply");
    rev = changed(rev, revision(&stores, &alice, c.id).await, "finish_reply");

    // Regenerate: a sibling reply, streaming, then failed by the sweep of lapsed leases.
    let (_, mut r2) = turn(c.id, "unused", None, now());
    r2.parent_id = Some(u1.id);
    ok(
        h.begin_turn(
            &alice,
            &NewTurn {
                user: None,
                parent: Parent::Message(u1.id),
                reply: r2.clone(),
                file_ids: Vec::new(),
                quota: None,
            },
            fresh_lease(),
            200,
        )
        .await,
        "begin_turn (regenerate)",
    );
    rev = changed(rev, revision(&stores, &alice, c.id).await, "regenerate");
    assert!(
        ok(
            h.fail_stale_replies(plus_mins(now(), 60)).await,
            "fail_stale_replies"
        ) >= 1,
        "the regenerated reply was swept"
    );
    rev = changed(
        rev,
        revision(&stores, &alice, c.id).await,
        "fail_stale_replies",
    );

    // The leaf moved back to the first reply's branch.
    ok(h.choose_leaf(&alice, c.id, r1.id).await, "choose_leaf");
    rev = changed(rev, revision(&stores, &alice, c.id).await, "choose_leaf");

    // A file attached to a message is deleted: the message shows it as `deleted`.
    ok(
        stores.files.delete_file(&alice, attached.id).await,
        "delete_file",
    );
    let after_delete = revision(&stores, &alice, c.id).await;
    changed(rev, after_delete, "delete_file of an attached file");
    let shown = ok(h.get_message(&alice, u1.id).await, "get_message");
    assert!(
        !shown.files.is_empty() && shown.files.iter().all(|f| f.deleted),
        "the deleted file reads as deleted"
    );

    // Another owner's, a missing and a deleted conversation: NotFound.
    not_found(
        h.conversation_revision(&mallory, c.id).await,
        "conversation_revision of another owner's conversation",
    );
    not_found(
        h.conversation_revision(&alice, ConversationId::new()).await,
        "conversation_revision of a missing conversation",
    );
    ok(
        h.delete_conversation(&alice, c.id).await,
        "delete_conversation",
    );
    not_found(
        h.conversation_revision(&alice, c.id).await,
        "conversation_revision of a deleted conversation",
    );
}
