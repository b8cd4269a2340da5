//! The `ChatHistory` contract: conversations, messages and the turn protocol (leases of
//! streaming replies, conflicts, recovery of replies whose writer died).

use std::future::Future;
use std::sync::Arc;

use confab_core::error::{Conflict, StoreError};
use confab_core::ids::{ConversationId, MessageId, ProjectId};
use confab_core::model::{Conversation, Message, MessageStatus, Usage, now};
use confab_core::ports::FinishOutcome;
use uuid::Uuid;

use super::Stores;
use super::fixtures::{
    LinearTurns, all_pages, at_micros, begun_turn, completed, conflict, conversation,
    finished_turn, not_found, ok, plus_mins, plus_secs, stored_conversation, stored_project, turn,
    user,
};

/// The error a recovered stale reply carries.
const INTERRUPTED: &str = "interrupted";

/// Runs every case of the `ChatHistory` contract, each on a fresh store from `fresh`.
pub async fn chat_history_contract<F, Fut>(fresh: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = Stores>,
{
    crate::run_cases!(
        "ChatHistory",
        fresh,
        [
            insert_then_get_returns_the_conversation_unchanged,
            insert_refuses_a_missing_or_another_owners_project_and_stores_nothing,
            get_of_a_missing_conversation_is_not_found,
            another_owner_gets_not_found_on_every_method_and_nothing_changes,
            list_conversations_is_most_recently_updated_first_then_id_descending,
            list_conversations_pages_by_key_without_repeats_or_gaps,
            list_conversations_of_a_missing_project_is_not_found,
            list_conversations_shows_a_new_message_first,
            rename_sets_the_title_and_updated_at,
            delete_conversation_removes_it_and_its_messages,
            begin_turn_stores_the_user_message_then_the_reply_and_bumps_updated_at,
            begin_turn_refuses_a_second_streaming_reply_and_stores_nothing,
            begin_turn_refuses_a_repeated_client_message_id_and_stores_nothing,
            begin_turn_recovers_a_stale_streaming_reply_as_interrupted,
            begin_turn_in_a_missing_conversation_is_not_found,
            concurrent_turns_leave_exactly_one_streaming_reply,
            check_turn_reports_conflicts_and_changes_nothing,
            touch_reply_saves_the_text_and_renews_the_lease,
            touch_reply_does_not_change_a_reply_that_is_no_longer_streaming,
            finish_reply_stores_everything_and_bumps_updated_at,
            finish_reply_stores_failed_and_cancelled_replies,
            finish_reply_of_an_unknown_message_is_not_found,
            list_messages_is_oldest_first_and_pages_strictly_after_the_cursor,
            begin_turn_returns_the_newest_messages_before_the_turn_oldest_first,
            fail_stale_replies_fails_only_stale_streaming_replies,
            a_late_final_write_never_overwrites_a_reply_the_sweep_ended,
            touch_reply_of_an_unknown_message_is_not_found,
            timestamps_of_messages_round_trip_exactly,
            every_read_of_a_conversation_names_its_streaming_reply_and_none_after,
        ]
    );
}

async fn messages(
    stores: &Stores,
    owner: &confab_core::ids::UserId,
    id: ConversationId,
) -> Vec<Message> {
    ok(
        stores.history.list_messages(owner, id, None, 1_000).await,
        "list_messages",
    )
}

/// The messages of a linear conversation as stored: each user message follows the message
/// before it (replies already name their user message).
fn chained(mut line: Vec<Message>) -> Vec<Message> {
    for i in 1..line.len() {
        if line[i].role == confab_core::model::Role::User {
            line[i].parent_id = Some(line[i - 1].id);
        }
    }
    line
}

fn ids(messages: &[Message]) -> Vec<MessageId> {
    messages.iter().map(|m| m.id).collect()
}

async fn insert_then_get_returns_the_conversation_unchanged(stores: Stores) {
    let alice = user("alice");
    let p = stored_project(&stores, &alice, "Bot").await;
    let created = at_micros(1_600_000_000_654_321);
    let titled = Conversation {
        active_reply_id: None,
        title: Some("Plans ✈ \"2025\"".to_owned()),
        created_at: created,
        updated_at: plus_secs(created, 3_600) + chrono::TimeDelta::microseconds(7),
        ..conversation(&alice, p.id, None)
    };
    let untitled = conversation(&alice, p.id, None);
    for c in [&titled, &untitled] {
        ok(
            stores.history.insert_conversation(c).await,
            "insert_conversation",
        );
        let got = ok(
            stores.history.get_conversation(&alice, c.id).await,
            "get_conversation",
        );
        assert_eq!(
            &got, c,
            "a conversation came back changed (timestamps must keep microseconds, UTC)"
        );
    }
    assert!(messages(&stores, &alice, titled.id).await.is_empty());
}

async fn insert_refuses_a_missing_or_another_owners_project_and_stores_nothing(stores: Stores) {
    let alice = user("alice");
    let mallory = user("mallory");
    let p = stored_project(&stores, &alice, "Bot").await;
    let orphan = conversation(&alice, ProjectId::new(), None);
    not_found(
        stores.history.insert_conversation(&orphan).await,
        "insert_conversation under a missing project",
    );
    let intruder = conversation(&mallory, p.id, Some("mine now"));
    not_found(
        stores.history.insert_conversation(&intruder).await,
        "insert_conversation under another owner's project",
    );
    for (owner, c) in [
        (&alice, &orphan),
        (&mallory, &intruder),
        (&alice, &intruder),
    ] {
        not_found(
            stores.history.get_conversation(owner, c.id).await,
            "get_conversation of a refused conversation",
        );
    }
    let listed = ok(
        stores
            .history
            .list_conversations(&alice, p.id, None, 10)
            .await,
        "list_conversations",
    );
    assert!(
        listed.is_empty(),
        "a refused conversation was stored: {listed:?}"
    );
}

async fn get_of_a_missing_conversation_is_not_found(stores: Stores) {
    not_found(
        stores
            .history
            .get_conversation(&user("alice"), ConversationId::new())
            .await,
        "get_conversation of an unknown id",
    );
}

async fn another_owner_gets_not_found_on_every_method_and_nothing_changes(stores: Stores) {
    let alice = user("alice");
    let mallory = user("mallory");
    let p = stored_project(&stores, &alice, "Bot").await;
    let c = stored_conversation(&stores, &alice, p.id).await;
    let (u1, r1) = begun_turn(&stores, &alice, c.id, "secret").await;
    let before = ok(
        stores.history.get_conversation(&alice, c.id).await,
        "get_conversation",
    );
    let later = plus_mins(now(), 60);

    not_found(
        stores.history.get_conversation(&mallory, c.id).await,
        "get_conversation by another owner",
    );
    not_found(
        stores
            .history
            .list_conversations(&mallory, p.id, None, 10)
            .await,
        "list_conversations of another owner's project",
    );
    not_found(
        stores
            .history
            .rename_conversation(&mallory, c.id, Some("pwned".to_owned()), later)
            .await,
        "rename_conversation by another owner",
    );
    not_found(
        stores.history.delete_conversation(&mallory, c.id).await,
        "delete_conversation by another owner",
    );
    not_found(
        stores.history.list_messages(&mallory, c.id, None, 10).await,
        "list_messages by another owner",
    );
    not_found(
        stores
            .history
            .check_turn(&mallory, c.id, None, &[], later)
            .await,
        "check_turn by another owner",
    );
    // With a stale_before in the future, a begin_turn that got past ownership would also
    // recover Alice's streaming reply: it must do neither.
    let (u2, r2) = turn(c.id, "injected", None, now());
    not_found(
        stores
            .history
            .begin_linear_turn(&mallory, &u2, &r2, later, 200)
            .await,
        "begin_turn by another owner",
    );

    assert_eq!(
        ok(
            stores.history.get_conversation(&alice, c.id).await,
            "get_conversation"
        ),
        before,
        "another owner's attempts changed the conversation"
    );
    assert_eq!(
        messages(&stores, &alice, c.id).await,
        vec![u1, r1],
        "another owner's attempts changed the messages"
    );
}

async fn list_conversations_is_most_recently_updated_first_then_id_descending(stores: Stores) {
    let alice = user("alice");
    let p = stored_project(&stores, &alice, "Bot").await;
    let other = stored_project(&stores, &alice, "Other").await;
    let base = plus_mins(now(), -60);
    let mut made = Vec::new();
    for offset in [2, 5, 1, 5] {
        let c = Conversation {
            active_reply_id: None,
            updated_at: plus_secs(base, offset),
            ..conversation(&alice, p.id, None)
        };
        ok(
            stores.history.insert_conversation(&c).await,
            "insert_conversation",
        );
        made.push(c);
    }
    stored_conversation(&stores, &alice, other.id).await;
    let listed = ok(
        stores
            .history
            .list_conversations(&alice, p.id, None, 10)
            .await,
        "list_conversations",
    );
    // Updated at +5 (two of them, the newer id first), then +2, then +1.
    let expected = vec![
        made[3].clone(),
        made[1].clone(),
        made[0].clone(),
        made[2].clone(),
    ];
    assert_eq!(
        listed, expected,
        "conversations must be by updated_at descending, then id descending"
    );
    let limited = ok(
        stores
            .history
            .list_conversations(&alice, p.id, None, 2)
            .await,
        "list_conversations",
    );
    assert_eq!(limited, expected[..2].to_vec());
}

async fn list_conversations_pages_by_key_without_repeats_or_gaps(stores: Stores) {
    let alice = user("alice");
    let p = stored_project(&stores, &alice, "Bot").await;
    let base = plus_mins(now(), -60);
    let mut made = Vec::new();
    // Ties on updated_at across page boundaries: three conversations per second.
    for i in 0..8 {
        let c = Conversation {
            active_reply_id: None,
            updated_at: plus_secs(base, i / 3),
            ..conversation(&alice, p.id, None)
        };
        ok(
            stores.history.insert_conversation(&c).await,
            "insert_conversation",
        );
        made.push(c);
    }
    let history = &stores.history;
    let owner = &alice;
    let newest = conversation(owner, p.id, Some("newest"));
    let oldest = Conversation {
        active_reply_id: None,
        updated_at: plus_mins(base, -60),
        ..conversation(owner, p.id, Some("oldest"))
    };
    let (newest_ref, oldest_ref) = (&newest, &oldest);
    let all = all_pages(
        3,
        |after| history.list_conversations(owner, p.id, after, 3),
        |c: &Conversation| (c.updated_at, c.id),
        || async move {
            ok(
                history.insert_conversation(newest_ref).await,
                "insert_conversation",
            );
            ok(
                history.insert_conversation(oldest_ref).await,
                "insert_conversation",
            );
        },
    )
    .await;
    let mut expected = made.clone();
    expected.sort_by_key(|c| std::cmp::Reverse((c.updated_at, c.id)));
    expected.push(oldest.clone());
    assert_eq!(
        all, expected,
        "paging must give every conversation once: one updated after the first page comes before the cursor \
         and is not repeated; one that sorts after the cursor is not skipped"
    );
}

async fn list_conversations_of_a_missing_project_is_not_found(stores: Stores) {
    not_found(
        stores
            .history
            .list_conversations(&user("alice"), ProjectId::new(), None, 10)
            .await,
        "list_conversations of a missing project",
    );
}

async fn list_conversations_shows_a_new_message_first(stores: Stores) {
    let alice = user("alice");
    let p = stored_project(&stores, &alice, "Bot").await;
    let base = plus_mins(now(), -60);
    let older = Conversation {
        active_reply_id: None,
        updated_at: base,
        ..conversation(&alice, p.id, Some("older"))
    };
    let newer = Conversation {
        active_reply_id: None,
        updated_at: plus_secs(base, 1),
        ..conversation(&alice, p.id, Some("newer"))
    };
    for c in [&older, &newer] {
        ok(
            stores.history.insert_conversation(c).await,
            "insert_conversation",
        );
    }
    let order = |list: Vec<Conversation>| list.into_iter().map(|c| c.id).collect::<Vec<_>>();
    let listed = ok(
        stores
            .history
            .list_conversations(&alice, p.id, None, 10)
            .await,
        "list_conversations",
    );
    assert_eq!(order(listed), vec![newer.id, older.id]);
    begun_turn(&stores, &alice, older.id, "bump").await;
    let listed = ok(
        stores
            .history
            .list_conversations(&alice, p.id, None, 10)
            .await,
        "list_conversations",
    );
    assert_eq!(
        order(listed),
        vec![older.id, newer.id],
        "a new message must move its conversation first"
    );
}

async fn rename_sets_the_title_and_updated_at(stores: Stores) {
    let alice = user("alice");
    let p = stored_project(&stores, &alice, "Bot").await;
    let c = stored_conversation(&stores, &alice, p.id).await;
    let other = stored_conversation(&stores, &alice, p.id).await;
    let t1 = plus_secs(c.updated_at, 30);
    let renamed = ok(
        stores
            .history
            .rename_conversation(&alice, c.id, Some("Renamed".to_owned()), t1)
            .await,
        "rename_conversation",
    );
    let expected = Conversation {
        active_reply_id: None,
        title: Some("Renamed".to_owned()),
        updated_at: t1,
        ..c.clone()
    };
    assert_eq!(renamed, expected);
    assert_eq!(
        ok(
            stores.history.get_conversation(&alice, c.id).await,
            "get_conversation"
        ),
        expected
    );
    let listed = ok(
        stores
            .history
            .list_conversations(&alice, p.id, None, 10)
            .await,
        "list_conversations",
    );
    assert_eq!(
        listed.first().map(|c| c.id),
        Some(c.id),
        "a rename bumps updated_at and so the order"
    );
    let t2 = plus_secs(t1, 30);
    let untitled = ok(
        stores
            .history
            .rename_conversation(&alice, c.id, None, t2)
            .await,
        "rename_conversation",
    );
    assert_eq!(
        untitled.title, None,
        "renaming to None must clear the title"
    );
    assert_eq!(untitled.updated_at, t2);
    not_found(
        stores
            .history
            .rename_conversation(&alice, ConversationId::new(), None, t2)
            .await,
        "rename_conversation of an unknown id",
    );
    assert_eq!(
        ok(
            stores.history.get_conversation(&alice, other.id).await,
            "get_conversation"
        ),
        other
    );
}

async fn delete_conversation_removes_it_and_its_messages(stores: Stores) {
    let alice = user("alice");
    let p = stored_project(&stores, &alice, "Bot").await;
    let doomed = stored_conversation(&stores, &alice, p.id).await;
    let kept = stored_conversation(&stores, &alice, p.id).await;
    let (_, doomed_reply) = begun_turn(&stores, &alice, doomed.id, "bye").await;
    let (ku, kr) = begun_turn(&stores, &alice, kept.id, "hi").await;

    ok(
        stores.history.delete_conversation(&alice, doomed.id).await,
        "delete_conversation",
    );
    not_found(
        stores.history.get_conversation(&alice, doomed.id).await,
        "get_conversation after delete",
    );
    not_found(
        stores
            .history
            .list_messages(&alice, doomed.id, None, 10)
            .await,
        "list_messages after delete",
    );
    not_found(
        stores.history.delete_conversation(&alice, doomed.id).await,
        "a second delete_conversation",
    );
    not_found(
        stores
            .history
            .finish_reply(&completed(&doomed_reply, "late"), now())
            .await,
        "finish_reply of a deleted conversation's reply",
    );

    let listed = ok(
        stores
            .history
            .list_conversations(&alice, p.id, None, 10)
            .await,
        "list_conversations",
    );
    assert_eq!(
        listed.iter().map(|c| c.id).collect::<Vec<_>>(),
        vec![kept.id]
    );
    assert_eq!(messages(&stores, &alice, kept.id).await, vec![ku, kr]);
    let failed = ok(
        stores
            .history
            .fail_stale_replies(plus_mins(now(), 60))
            .await,
        "fail_stale_replies",
    );
    assert_eq!(
        failed, 1,
        "only the kept conversation's streaming reply may remain"
    );
}

async fn begin_turn_stores_the_user_message_then_the_reply_and_bumps_updated_at(stores: Stores) {
    let alice = user("alice");
    let p = stored_project(&stores, &alice, "Bot").await;
    let c = stored_conversation(&stores, &alice, p.id).await;
    let at = plus_secs(c.updated_at, 61);
    let (u, r) = turn(c.id, "Hello there", Some(Uuid::now_v7()), at);
    let history = ok(
        stores
            .history
            .begin_linear_turn(&alice, &u, &r, plus_mins(at, -1), 200)
            .await,
        "begin_turn",
    );
    assert!(
        history.is_empty(),
        "a first turn has no history: {history:?}"
    );
    let stored = messages(&stores, &alice, c.id).await;
    assert_eq!(
        stored,
        vec![u.clone(), r.clone()],
        "begin_turn must store the user message and then the reply as given"
    );
    assert_eq!(stored[1].status, MessageStatus::Streaming);
    assert_eq!(stored[1].content, "");
    let got = ok(
        stores.history.get_conversation(&alice, c.id).await,
        "get_conversation",
    );
    assert_eq!(
        got.updated_at, u.created_at,
        "begin_turn must set updated_at to the user message's created_at"
    );
    assert_eq!(got.created_at, c.created_at);
}

async fn begin_turn_refuses_a_second_streaming_reply_and_stores_nothing(stores: Stores) {
    let alice = user("alice");
    let p = stored_project(&stores, &alice, "Bot").await;
    let c = stored_conversation(&stores, &alice, p.id).await;
    let (u1, r1) = begun_turn(&stores, &alice, c.id, "first").await;
    let before = ok(
        stores.history.get_conversation(&alice, c.id).await,
        "get_conversation",
    );

    let at = plus_secs(now(), 1);
    let (u2, r2) = turn(c.id, "second", Some(Uuid::now_v7()), at);
    conflict(
        stores
            .history
            .begin_linear_turn(&alice, &u2, &r2, plus_mins(at, -10), 200)
            .await,
        Conflict::ReplyInProgress,
        "begin_turn while a fresh reply streams",
    );
    assert_eq!(
        messages(&stores, &alice, c.id).await,
        vec![u1, r1],
        "a refused turn stored something"
    );
    assert_eq!(
        ok(
            stores.history.get_conversation(&alice, c.id).await,
            "get_conversation"
        ),
        before,
        "a refused turn changed the conversation"
    );
    // The refused client_message_id was not used up.
    ok(
        stores
            .history
            .check_turn(&alice, c.id, u2.client_message_id, &[], plus_mins(at, 60))
            .await,
        "check_turn",
    );
}

async fn begin_turn_refuses_a_repeated_client_message_id_and_stores_nothing(stores: Stores) {
    let alice = user("alice");
    let p = stored_project(&stores, &alice, "Bot").await;
    let c = stored_conversation(&stores, &alice, p.id).await;
    let elsewhere = stored_conversation(&stores, &alice, p.id).await;
    let client_id = Uuid::now_v7();
    let at = now();
    let (u1, r1) = turn(c.id, "once", Some(client_id), at);
    ok(
        stores
            .history
            .begin_linear_turn(&alice, &u1, &r1, plus_mins(at, -1), 200)
            .await,
        "begin_turn",
    );
    let done = completed(&r1, "done");
    ok(
        stores.history.finish_reply(&done, plus_secs(at, 1)).await,
        "finish_reply",
    );
    let before = ok(
        stores.history.get_conversation(&alice, c.id).await,
        "get_conversation",
    );

    let again_at = plus_secs(at, 2);
    let (u2, r2) = turn(c.id, "twice", Some(client_id), again_at);
    conflict(
        stores
            .history
            .begin_linear_turn(&alice, &u2, &r2, plus_mins(again_at, -1), 200)
            .await,
        Conflict::DuplicateClientMessage,
        "begin_turn with a used client_message_id",
    );
    assert_eq!(
        messages(&stores, &alice, c.id).await,
        vec![u1, done],
        "a refused turn stored something"
    );
    assert_eq!(
        ok(
            stores.history.get_conversation(&alice, c.id).await,
            "get_conversation"
        ),
        before
    );

    // The same id in another conversation is fine, and so are turns without one.
    let (u3, r3) = turn(elsewhere.id, "elsewhere", Some(client_id), again_at);
    ok(
        stores
            .history
            .begin_linear_turn(&alice, &u3, &r3, plus_mins(again_at, -1), 200)
            .await,
        "begin_turn elsewhere",
    );
    for text in ["no id", "still no id"] {
        finished_turn(&stores, &alice, c.id, text).await;
    }
    assert_eq!(messages(&stores, &alice, c.id).await.len(), 6);
}

async fn begin_turn_recovers_a_stale_streaming_reply_as_interrupted(stores: Stores) {
    let alice = user("alice");
    let p = stored_project(&stores, &alice, "Bot").await;
    let c = stored_conversation(&stores, &alice, p.id).await;
    let t = plus_mins(now(), -30);
    let (u1, r1) = turn(c.id, "first", None, t);
    ok(
        stores
            .history
            .begin_linear_turn(&alice, &u1, &r1, plus_mins(t, -1), 200)
            .await,
        "begin_turn",
    );
    ok(
        stores.history.touch_reply(r1.id, "partial", t).await,
        "touch_reply",
    );

    // The writer of r1 died: its lease ran out before this turn.
    let at = now();
    let (u2, r2) = turn(c.id, "second", None, at);
    ok(
        stores
            .history
            .begin_linear_turn(&alice, &u2, &r2, plus_secs(at, 1), 200)
            .await,
        "begin_turn after a stale reply",
    );
    let stored = messages(&stores, &alice, c.id).await;
    assert_eq!(ids(&stored), vec![u1.id, r1.id, u2.id, r2.id]);
    let recovered = &stored[1];
    assert_eq!(
        recovered.status,
        MessageStatus::Failed,
        "a stale streaming reply must be failed"
    );
    assert_eq!(recovered.error.as_deref(), Some(INTERRUPTED));
    assert_eq!(
        recovered.content, "partial",
        "the text saved by touch_reply must be kept"
    );
    assert_eq!(stored[3].status, MessageStatus::Streaming);
    assert_eq!(
        ok(
            stores.history.get_conversation(&alice, c.id).await,
            "get_conversation"
        )
        .updated_at,
        u2.created_at
    );
}

async fn begin_turn_in_a_missing_conversation_is_not_found(stores: Stores) {
    let alice = user("alice");
    let (u, r) = turn(ConversationId::new(), "anyone?", None, now());
    not_found(
        stores
            .history
            .begin_linear_turn(&alice, &u, &r, plus_mins(now(), -1), 200)
            .await,
        "begin_turn in a missing conversation",
    );
}

async fn concurrent_turns_leave_exactly_one_streaming_reply(stores: Stores) {
    let alice = user("alice");
    let p = stored_project(&stores, &alice, "Bot").await;
    let c = stored_conversation(&stores, &alice, p.id).await;
    let mut tasks = Vec::new();
    for i in 0..10 {
        let history = Arc::clone(&stores.history);
        let owner = alice.clone();
        let at = now();
        let (u, r) = turn(c.id, &format!("racer {i}"), Some(Uuid::now_v7()), at);
        tasks.push(tokio::spawn(async move {
            history
                .begin_linear_turn(&owner, &u, &r, plus_mins(at, -1), 200)
                .await
        }));
    }
    let mut accepted = 0;
    for task in tasks {
        match task.await {
            Ok(Ok(_)) => accepted += 1,
            Ok(Err(StoreError::Conflict(Conflict::ReplyInProgress))) => {}
            Ok(Err(e)) => {
                panic!("a concurrent begin_turn failed with {e:?} instead of ReplyInProgress")
            }
            Err(e) => panic!("a begin_turn task panicked: {e}"),
        }
    }
    assert_eq!(accepted, 1, "{accepted} concurrent turns were accepted");
    let stored = messages(&stores, &alice, c.id).await;
    assert_eq!(stored.len(), 2, "refused turns stored messages: {stored:?}");
    assert_eq!(
        stored
            .iter()
            .filter(|m| m.status == MessageStatus::Streaming)
            .count(),
        1
    );
}

async fn check_turn_reports_conflicts_and_changes_nothing(stores: Stores) {
    let alice = user("alice");
    let p = stored_project(&stores, &alice, "Bot").await;
    let c = stored_conversation(&stores, &alice, p.id).await;
    let used = Uuid::now_v7();
    let history = &stores.history;
    let t = now();
    ok(
        history
            .check_turn(&alice, c.id, None, &[], plus_mins(t, -1))
            .await,
        "check_turn on an empty conversation",
    );
    ok(
        history
            .check_turn(&alice, c.id, Some(used), &[], plus_mins(t, -1))
            .await,
        "check_turn with a new id",
    );

    let (u1, r1) = turn(c.id, "first", Some(used), t);
    ok(
        history
            .begin_linear_turn(&alice, &u1, &r1, plus_mins(t, -1), 200)
            .await,
        "begin_turn",
    );
    conflict(
        history
            .check_turn(&alice, c.id, None, &[], plus_mins(t, -1))
            .await,
        Conflict::ReplyInProgress,
        "check_turn while a reply streams",
    );
    // Stale: not a conflict, but check_turn only reads; the reply stays streaming.
    ok(
        history
            .check_turn(&alice, c.id, None, &[], plus_mins(now(), 1))
            .await,
        "check_turn with only a stale reply",
    );
    let stored = messages(&stores, &alice, c.id).await;
    assert_eq!(
        stored,
        vec![u1.clone(), r1.clone()],
        "check_turn changed the messages"
    );

    ok(
        history.finish_reply(&completed(&r1, "ok"), now()).await,
        "finish_reply",
    );
    conflict(
        history
            .check_turn(&alice, c.id, Some(used), &[], plus_mins(t, -1))
            .await,
        Conflict::DuplicateClientMessage,
        "check_turn with a used client_message_id",
    );
    ok(
        history
            .check_turn(&alice, c.id, Some(Uuid::now_v7()), &[], plus_mins(t, -1))
            .await,
        "check_turn with a new id",
    );
    ok(
        history
            .check_turn(&alice, c.id, None, &[], plus_mins(t, -1))
            .await,
        "check_turn without an id",
    );
    not_found(
        history
            .check_turn(&alice, ConversationId::new(), None, &[], t)
            .await,
        "check_turn of a missing conversation",
    );
}

async fn touch_reply_saves_the_text_and_renews_the_lease(stores: Stores) {
    let alice = user("alice");
    let p = stored_project(&stores, &alice, "Bot").await;
    let c = stored_conversation(&stores, &alice, p.id).await;
    let t = now();
    let (u, r) = turn(c.id, "talk", None, t);
    ok(
        stores
            .history
            .begin_linear_turn(&alice, &u, &r, plus_mins(t, -1), 200)
            .await,
        "begin_turn",
    );

    assert!(
        ok(
            stores
                .history
                .touch_reply(r.id, "Hel", plus_mins(t, 10))
                .await,
            "touch_reply",
        ),
        "touch_reply of a streaming reply must return true"
    );
    let stored = messages(&stores, &alice, c.id).await;
    assert_eq!(
        stored[1].content, "Hel",
        "touch_reply must save the text so far"
    );
    assert_eq!(stored[1].status, MessageStatus::Streaming);
    // Renewed at t+10 min: not stale for a lease that began at t+5 min.
    conflict(
        stores
            .history
            .check_turn(&alice, c.id, None, &[], plus_mins(t, 5))
            .await,
        Conflict::ReplyInProgress,
        "check_turn after the lease was renewed",
    );
    assert_eq!(
        ok(
            stores.history.fail_stale_replies(plus_mins(t, 5)).await,
            "fail_stale_replies"
        ),
        0,
        "a renewed reply was failed as stale"
    );
    ok(
        stores
            .history
            .touch_reply(r.id, "Hello", plus_mins(t, 20))
            .await,
        "touch_reply",
    );
    assert_eq!(messages(&stores, &alice, c.id).await[1].content, "Hello");
    ok(
        stores
            .history
            .check_turn(&alice, c.id, None, &[], plus_mins(t, 21))
            .await,
        "check_turn once the renewed lease ran out",
    );
    assert_eq!(
        ok(
            stores.history.get_conversation(&alice, c.id).await,
            "get_conversation"
        )
        .updated_at,
        u.created_at,
        "touch_reply must not bump the conversation"
    );
}

async fn touch_reply_does_not_change_a_reply_that_is_no_longer_streaming(stores: Stores) {
    let alice = user("alice");
    let p = stored_project(&stores, &alice, "Bot").await;
    let c = stored_conversation(&stores, &alice, p.id).await;
    let (_, done) = finished_turn(&stores, &alice, c.id, "hi").await;
    assert!(
        !ok(
            stores
                .history
                .touch_reply(done.id, "overwritten", plus_mins(now(), 10))
                .await,
            "touch_reply",
        ),
        "touch_reply of a finished reply must return false: its writer lost it"
    );
    let stored = messages(&stores, &alice, c.id).await;
    assert_eq!(stored[1], done, "touch_reply changed a complete reply");

    // A reply failed as stale stays failed, with its text.
    let c2 = stored_conversation(&stores, &alice, p.id).await;
    let (_, r) = begun_turn(&stores, &alice, c2.id, "hello").await;
    ok(
        stores.history.touch_reply(r.id, "part", now()).await,
        "touch_reply",
    );
    assert_eq!(
        ok(
            stores.history.fail_stale_replies(plus_mins(now(), 1)).await,
            "fail_stale_replies"
        ),
        1
    );
    assert!(
        !ok(
            stores
                .history
                .touch_reply(r.id, "revived?", plus_mins(now(), 10))
                .await,
            "touch_reply",
        ),
        "touch_reply of a reply the sweep ended must return false"
    );
    let stored = messages(&stores, &alice, c2.id).await;
    assert_eq!(
        stored[1].status,
        MessageStatus::Failed,
        "touch_reply revived a failed reply"
    );
    assert_eq!(stored[1].content, "part");
    assert_eq!(stored[1].error.as_deref(), Some(INTERRUPTED));
}

async fn finish_reply_stores_everything_and_bumps_updated_at(stores: Stores) {
    let alice = user("alice");
    let p = stored_project(&stores, &alice, "Bot").await;
    let c = stored_conversation(&stores, &alice, p.id).await;
    let other = stored_conversation(&stores, &alice, p.id).await;
    let (u, r) = begun_turn(&stores, &alice, c.id, "question").await;
    begun_turn(&stores, &alice, other.id, "later").await;

    let finished = Message {
        content: "An answer 😀 over\nlines".to_owned(),
        status: MessageStatus::Complete,
        model: Some("model-b-2025".to_owned()),
        usage: Some(Usage {
            input_tokens: 1_234,
            output_tokens: 56,
        }),
        error: None,
        sources: vec![
            confab_core::knowledge::Source {
                n: 1,
                file_id: confab_core::ids::FileId::new(),
                filename: "facts \"ü\".txt".to_owned(),
                excerpt: "The mascot… is 😀".to_owned(),
            },
            confab_core::knowledge::Source {
                n: 2,
                file_id: confab_core::ids::FileId::new(),
                filename: "more.md".to_owned(),
                excerpt: String::new(),
            },
        ],
        ..r.clone()
    };
    let at = plus_secs(now(), 90) + chrono::TimeDelta::microseconds(3);
    ok(
        stores.history.finish_reply(&finished, at).await,
        "finish_reply",
    );
    assert_eq!(
        messages(&stores, &alice, c.id).await,
        vec![u, finished],
        "finish_reply must store content, status, model, usage and sources exactly"
    );
    let got = ok(
        stores.history.get_conversation(&alice, c.id).await,
        "get_conversation",
    );
    assert_eq!(
        got.updated_at, at,
        "finish_reply must set the conversation's updated_at to now"
    );
    let listed = ok(
        stores
            .history
            .list_conversations(&alice, p.id, None, 10)
            .await,
        "list_conversations",
    );
    assert_eq!(listed.first().map(|c| c.id), Some(c.id));
    // The reply is no longer streaming: a new turn is accepted.
    begun_turn(&stores, &alice, c.id, "next").await;
}

async fn finish_reply_stores_failed_and_cancelled_replies(stores: Stores) {
    let alice = user("alice");
    let p = stored_project(&stores, &alice, "Bot").await;
    for (status, error) in [
        (
            MessageStatus::Failed,
            Some("The model provider returned an error (status 500)."),
        ),
        (MessageStatus::Cancelled, None),
    ] {
        let c = stored_conversation(&stores, &alice, p.id).await;
        let (_, r) = begun_turn(&stores, &alice, c.id, "go").await;
        let finished = Message {
            content: "partial text".to_owned(),
            status,
            usage: None,
            error: error.map(str::to_owned),
            ..r
        };
        ok(
            stores.history.finish_reply(&finished, now()).await,
            "finish_reply",
        );
        assert_eq!(messages(&stores, &alice, c.id).await[1], finished);
    }
}

async fn finish_reply_of_an_unknown_message_is_not_found(stores: Stores) {
    let alice = user("alice");
    let p = stored_project(&stores, &alice, "Bot").await;
    let c = stored_conversation(&stores, &alice, p.id).await;
    let (_, never_begun) = turn(c.id, "x", None, now());
    not_found(
        stores
            .history
            .finish_reply(&completed(&never_begun, "x"), now())
            .await,
        "finish_reply of a message that was never stored",
    );
    assert!(
        messages(&stores, &alice, c.id).await.is_empty(),
        "finish_reply created a message"
    );
}

async fn list_messages_is_oldest_first_and_pages_strictly_after_the_cursor(stores: Stores) {
    let alice = user("alice");
    let p = stored_project(&stores, &alice, "Bot").await;
    let c = stored_conversation(&stores, &alice, p.id).await;
    let noise = stored_conversation(&stores, &alice, p.id).await;
    let mut expected = Vec::new();
    for i in 0..4 {
        let (u, r) = finished_turn(&stores, &alice, c.id, &format!("q{i}")).await;
        expected.extend([u, r]);
        finished_turn(&stores, &alice, noise.id, "noise").await;
    }
    let history = &stores.history;
    let owner = &alice;
    let stores_ref = &stores;
    let mut added = Vec::new();
    let added_ref = &mut added;
    let all = all_pages(
        3,
        |after| history.list_messages(owner, c.id, after, 3),
        |m: &Message| m.id,
        || async move {
            let (u, r) = finished_turn(stores_ref, owner, c.id, "late").await;
            added_ref.extend([u, r]);
        },
    )
    .await;
    expected.extend(added);
    let expected = chained(expected);
    assert_eq!(
        all, expected,
        "pages must hold every message once, oldest first, including those added between two fetches"
    );
    assert_eq!(messages(&stores, &alice, c.id).await, expected);
    let after_first = ok(
        history
            .list_messages(owner, c.id, Some(expected[0].id), 2)
            .await,
        "list_messages",
    );
    assert_eq!(
        ids(&after_first),
        ids(&expected[1..3]),
        "after is exclusive"
    );
}

async fn begin_turn_returns_the_newest_messages_before_the_turn_oldest_first(stores: Stores) {
    let alice = user("alice");
    let p = stored_project(&stores, &alice, "Bot").await;
    let c = stored_conversation(&stores, &alice, p.id).await;
    let other = stored_conversation(&stores, &alice, p.id).await;
    finished_turn(&stores, &alice, other.id, "elsewhere").await;
    let mut all = Vec::new();
    for i in 0..3 {
        let (u, r) = finished_turn(&stores, &alice, c.id, &format!("q{i}")).await;
        all.extend([u, r]);
    }
    // A stale reply of a dead writer is part of the history, as the sweep left it: failed.
    let t = plus_mins(now(), -30);
    let (u, r) = turn(c.id, "q3", None, t);
    ok(
        stores
            .history
            .begin_linear_turn(&alice, &u, &r, plus_mins(t, -1), 200)
            .await,
        "begin_turn",
    );
    all.push(u);

    let at = now();
    let (u4, r4) = turn(c.id, "q4", None, at);
    let history = ok(
        stores
            .history
            .begin_linear_turn(&alice, &u4, &r4, plus_secs(at, -1), 4)
            .await,
        "begin_turn",
    );
    let stored = messages(&stores, &alice, c.id).await;
    let swept = stored[7].clone();
    assert_eq!(swept.id, r.id);
    assert_eq!(swept.status, MessageStatus::Failed);
    all.push(swept);
    let mut all = chained(all);
    assert_eq!(
        history,
        all[4..].to_vec(),
        "the history of a turn must be the newest four before it, oldest first, as stored"
    );
    assert_eq!(ids(&stored[8..]), vec![u4.id, r4.id], "the turn was stored");

    // A limit above the count returns everything before the turn; 1 returns the newest.
    let done = completed(&r4, "ok");
    ok(
        stores.history.finish_reply(&done, plus_secs(at, 1)).await,
        "finish_reply",
    );
    all.extend([u4, done]);
    let all = chained(all);
    let (u5, r5) = turn(c.id, "q5", None, plus_secs(at, 2));
    let everything = ok(
        stores
            .history
            .begin_linear_turn(&alice, &u5, &r5, plus_secs(at, 1), 100)
            .await,
        "begin_turn",
    );
    assert_eq!(everything, all);
    let done = completed(&r5, "ok");
    ok(
        stores.history.finish_reply(&done, plus_secs(at, 3)).await,
        "finish_reply",
    );
    let (u6, r6) = turn(c.id, "q6", None, plus_secs(at, 4));
    let one = ok(
        stores
            .history
            .begin_linear_turn(&alice, &u6, &r6, plus_secs(at, 3), 1)
            .await,
        "begin_turn",
    );
    assert_eq!(one, vec![done]);
}

async fn fail_stale_replies_fails_only_stale_streaming_replies(stores: Stores) {
    let alice = user("alice");
    let bob = user("bob");
    let pa = stored_project(&stores, &alice, "A").await;
    let pb = stored_project(&stores, &bob, "B").await;
    let fresh_chat = stored_conversation(&stores, &alice, pa.id).await;
    let stale_chat = stored_conversation(&stores, &bob, pb.id).await;
    let done_chat = stored_conversation(&stores, &alice, pa.id).await;
    let t = now();
    let (_, fresh) = begun_turn(&stores, &alice, fresh_chat.id, "fresh").await;
    ok(
        stores
            .history
            .touch_reply(fresh.id, "still going", plus_mins(t, 10))
            .await,
        "touch_reply",
    );
    let (stale_user, stale) = begun_turn(&stores, &bob, stale_chat.id, "stale").await;
    ok(
        stores.history.touch_reply(stale.id, "partial", t).await,
        "touch_reply",
    );
    let (done_user, done) = finished_turn(&stores, &alice, done_chat.id, "done").await;
    let stale_chat_before = ok(
        stores.history.get_conversation(&bob, stale_chat.id).await,
        "get_conversation",
    );

    let failed = ok(
        stores.history.fail_stale_replies(plus_mins(t, 5)).await,
        "fail_stale_replies",
    );
    assert_eq!(
        failed, 1,
        "exactly one reply was stale, in any conversation of any owner"
    );
    let stale_now = messages(&stores, &bob, stale_chat.id).await;
    assert_eq!(stale_now[0], stale_user);
    assert_eq!(stale_now[1].status, MessageStatus::Failed);
    assert_eq!(stale_now[1].error.as_deref(), Some(INTERRUPTED));
    assert_eq!(
        stale_now[1].content, "partial",
        "the saved text of a stale reply must be kept"
    );
    assert_eq!(
        messages(&stores, &alice, fresh_chat.id).await[1].status,
        MessageStatus::Streaming
    );
    assert_eq!(
        messages(&stores, &alice, done_chat.id).await,
        vec![done_user, done]
    );
    assert_eq!(
        ok(
            stores.history.get_conversation(&bob, stale_chat.id).await,
            "get_conversation"
        )
        .id,
        stale_chat_before.id
    );

    assert_eq!(
        ok(
            stores.history.fail_stale_replies(plus_mins(t, 5)).await,
            "fail_stale_replies"
        ),
        0,
        "a second run must find nothing"
    );
    assert_eq!(
        ok(
            stores.history.fail_stale_replies(plus_mins(t, 11)).await,
            "fail_stale_replies"
        ),
        1,
        "once its lease ran out the other reply is stale too"
    );
    // Stale replies no longer block a new turn.
    begun_turn(&stores, &alice, fresh_chat.id, "again").await;
}

async fn timestamps_of_messages_round_trip_exactly(stores: Stores) {
    let alice = user("alice");
    let p = stored_project(&stores, &alice, "Bot").await;
    let c = stored_conversation(&stores, &alice, p.id).await;
    let user_at = at_micros(1_234_567_890_123_457);
    let (u, mut r) = turn(c.id, "when?", None, user_at);
    r.created_at = user_at + chrono::TimeDelta::microseconds(1);
    ok(
        stores
            .history
            .begin_linear_turn(&alice, &u, &r, plus_mins(user_at, -1), 200)
            .await,
        "begin_turn",
    );
    let stored = messages(&stores, &alice, c.id).await;
    assert_eq!(stored[0].created_at, user_at);
    assert_eq!(
        stored[1].created_at, r.created_at,
        "microseconds must survive the store"
    );
    assert_eq!(
        ok(
            stores.history.get_conversation(&alice, c.id).await,
            "get_conversation"
        )
        .updated_at,
        user_at
    );
}

async fn a_late_final_write_never_overwrites_a_reply_the_sweep_ended(stores: Stores) {
    let alice = user("alice");
    let p = stored_project(&stores, &alice, "Bot").await;
    let c = stored_conversation(&stores, &alice, p.id).await;
    let (_, r) = begun_turn(&stores, &alice, c.id, "hello").await;
    assert!(ok(
        stores.history.touch_reply(r.id, "saved so", now()).await,
        "touch_reply",
    ));
    assert_eq!(
        ok(
            stores.history.fail_stale_replies(plus_mins(now(), 1)).await,
            "fail_stale_replies"
        ),
        1
    );
    let swept = messages(&stores, &alice, c.id).await[1].clone();
    let updated_at = ok(
        stores.history.get_conversation(&alice, c.id).await,
        "get_conversation",
    )
    .updated_at;

    // The producer, cut off from the database meanwhile, writes its end late.
    let outcome = ok(
        stores
            .history
            .finish_reply(&completed(&r, "saved so far and more"), plus_mins(now(), 2))
            .await,
        "finish_reply",
    );

    assert_eq!(
        outcome,
        FinishOutcome::AlreadyEnded(swept.clone()),
        "finish_reply must tell the late writer it lost, with the reply as stored"
    );
    let stored = messages(&stores, &alice, c.id).await;
    assert_eq!(
        stored[1], swept,
        "a late final write overwrote an interrupted reply"
    );
    assert_eq!(stored[1].status, MessageStatus::Failed);
    assert_eq!(stored[1].content, "saved so");
    assert_eq!(stored[1].error.as_deref(), Some(INTERRUPTED));
    assert_eq!(
        ok(
            stores.history.get_conversation(&alice, c.id).await,
            "get_conversation"
        )
        .updated_at,
        updated_at,
        "a lost final write must not bump the conversation"
    );
    // And a second final write of a finished reply loses the same way.
    let (_, done) = finished_turn(&stores, &alice, c.id, "again").await;
    assert_eq!(
        ok(
            stores
                .history
                .finish_reply(&completed(&done, "rewritten"), now())
                .await,
            "finish_reply"
        ),
        FinishOutcome::AlreadyEnded(done.clone())
    );
}

async fn touch_reply_of_an_unknown_message_is_not_found(stores: Stores) {
    not_found(
        stores
            .history
            .touch_reply(MessageId::new(), "x", now())
            .await,
        "touch_reply of a message that was never stored",
    );
}

/// Issue 15: `active_reply_id` (get, list, rename) is the reply being generated, and
/// `latest_reply` the newest assistant message.
async fn every_read_of_a_conversation_names_its_streaming_reply_and_none_after(stores: Stores) {
    let alice = user("alice");
    let p = stored_project(&stores, &alice, "Bot").await;
    let c = stored_conversation(&stores, &alice, p.id).await;
    let quiet = stored_conversation(&stores, &alice, p.id).await;
    let reads = |expected: Option<MessageId>, when: &'static str| {
        let stores = &stores;
        let alice = &alice;
        async move {
            let got = ok(
                stores.history.get_conversation(alice, c.id).await,
                "get_conversation",
            );
            assert_eq!(got.active_reply_id, expected, "get_conversation {when}");
            let listed = ok(
                stores
                    .history
                    .list_conversations(alice, p.id, None, 10)
                    .await,
                "list_conversations",
            );
            for conversation in &listed {
                let expected = if conversation.id == c.id {
                    expected
                } else {
                    None
                };
                assert_eq!(
                    conversation.active_reply_id, expected,
                    "list_conversations {when}"
                );
            }
            assert_eq!(listed.len(), 2);
            let renamed = ok(
                stores
                    .history
                    .rename_conversation(alice, c.id, Some("Renamed".to_owned()), now())
                    .await,
                "rename_conversation",
            );
            assert_eq!(
                renamed.active_reply_id, expected,
                "rename_conversation {when}"
            );
        }
    };
    reads(None, "before any turn").await;
    assert_eq!(
        ok(
            stores.history.latest_reply(&alice, c.id).await,
            "latest_reply"
        ),
        None
    );

    let (_, reply) = begun_turn(&stores, &alice, c.id, "Hello").await;
    reads(Some(reply.id), "while the reply streams").await;
    assert_eq!(
        ok(
            stores.history.latest_reply(&alice, c.id).await,
            "latest_reply"
        ),
        Some(reply.clone())
    );
    assert_eq!(
        ok(
            stores.history.latest_reply(&alice, quiet.id).await,
            "latest_reply"
        ),
        None
    );
    assert!(matches!(
        stores.history.latest_reply(&user("mallory"), c.id).await,
        Err(StoreError::NotFound)
    ));

    let done = completed(&reply, "Hi");
    ok(
        stores.history.finish_reply(&done, now()).await,
        "finish_reply",
    );
    reads(None, "after the reply ended").await;
    assert_eq!(
        ok(
            stores.history.latest_reply(&alice, c.id).await,
            "latest_reply"
        )
        .map(|m| (m.id, m.status)),
        Some((reply.id, MessageStatus::Complete))
    );
}
