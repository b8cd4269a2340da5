//! The `UsageLedger` contract: entries summed by day, model, project and user; a user's
//! day and month for the quota check; overrides; and the quota check of two sends at once —
//! also as `ChatHistory::begin_turn` makes it, in the transaction that stores the turn, on
//! two stores of one database (two replicas).

use std::future::Future;
use std::sync::Arc;

use chrono::{TimeZone as _, Utc};
use confab_core::error::{Conflict, StoreError};
use confab_core::ids::{ConversationId, FileId, UserId};
use confab_core::model::{Parent, Timestamp};
use confab_core::ports::{ChatHistory, NewTurn, Turn};
use confab_core::usage::{
    Accounting, GroupBy, NaiveDate, Period, Purpose, QuotaDefaults, QuotaExceeded, QuotaOverride,
    TokenCounts, TurnQuota, UsageEntry, UsageLedger,
};
use uuid::Uuid;

use super::Stores;
use super::fixtures::{
    begun_turn, conflict, not_found, ok, plus_mins, stored_conversation, stored_file,
    stored_project, turn, user,
};

/// The stores (for the conversations entries are written for) and the ledger of one adapter.
pub struct Ledger {
    pub stores: Stores,
    pub ledger: Arc<dyn UsageLedger>,
    /// Another store of the same data, as a second server process sharing the database has
    /// (for the memory adapter: the same store).
    pub replica: Stores,
}

/// Runs every case of the `UsageLedger` contract, each on a fresh store from `fresh`.
pub async fn usage_ledger_contract<F, Fut>(fresh: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = Ledger>,
{
    crate::run_cases!(
        "UsageLedger",
        fresh,
        [
            entries_are_summed_by_day_model_project_and_user,
            the_quota_state_counts_the_day_and_the_month_so_far,
            an_entry_outlives_its_conversation_and_ids_are_unique,
            overrides_are_set_replaced_and_cleared,
            two_sends_at_the_limit_are_both_refused_and_below_it_both_pass,
            without_defaults_an_override_alone_refuses_its_user_only,
            a_turn_over_the_quota_is_refused_and_stores_nothing,
            a_turn_without_defaults_is_limited_by_its_users_override_only,
            a_missing_conversation_a_conflict_or_a_foreign_file_is_reported_before_the_quota,
            two_replicas_beginning_turns_at_the_limit_at_once_are_both_refused,
        ]
    );
}

fn at(y: i32, m: u32, d: u32, h: u32) -> Timestamp {
    Utc.with_ymd_and_hms(y, m, d, h, 0, 0)
        .single()
        .unwrap_or_default()
}

fn day(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).unwrap_or_default()
}

fn entry(
    who: &UserId,
    conversation: Option<ConversationId>,
    model: &str,
    input: u64,
    output: u64,
    when: Timestamp,
) -> UsageEntry {
    UsageEntry {
        id: Uuid::now_v7(),
        user_id: who.clone(),
        conversation_id: conversation,
        message_id: None,
        model: model.to_owned(),
        purpose: Purpose::Chat,
        tokens: TokenCounts {
            input,
            cached_input: input / 2,
            output,
            reasoning: 1,
        },
        estimated: false,
        cost_micros: Some(10),
        created_at: when,
    }
}

async fn record(l: &Ledger, e: &UsageEntry) {
    ok(l.ledger.record(e).await, "record");
}

async fn entries_are_summed_by_day_model_project_and_user(l: Ledger) {
    let alice = user("alice");
    let bob = user("bob");
    let p = stored_project(&l.stores, &alice, "P").await;
    let c = stored_conversation(&l.stores, &alice, p.id).await;
    record(
        &l,
        &entry(&alice, Some(c.id), "m1", 10, 5, at(2026, 12, 1, 9)),
    )
    .await;
    record(
        &l,
        &entry(&alice, Some(c.id), "m2", 20, 7, at(2026, 12, 1, 23)),
    )
    .await;
    record(&l, &entry(&alice, None, "m1", 1, 1, at(2026, 12, 2, 0))).await;
    record(&l, &entry(&bob, None, "m1", 100, 100, at(2026, 12, 1, 9))).await;
    // Outside the range.
    record(
        &l,
        &entry(&alice, None, "m1", 1000, 1000, at(2026, 12, 3, 0)),
    )
    .await;

    let (from, to) = (day(2026, 12, 1), day(2026, 12, 2));
    let by_day = ok(
        l.ledger.summary(Some(&alice), from, to, GroupBy::Day).await,
        "summary",
    );
    let keys: Vec<(&str, u64, u64, u64)> = by_day
        .iter()
        .map(|r| (r.key.as_str(), r.tokens.input, r.tokens.output, r.calls))
        .collect();
    assert_eq!(
        keys,
        vec![("2026-12-01", 30, 12, 2), ("2026-12-02", 1, 1, 1)]
    );
    assert_eq!(by_day[0].tokens.cached_input, 15);
    assert_eq!(by_day[0].tokens.reasoning, 2);
    assert_eq!(by_day[0].cost_micros, 20);

    let by_model = ok(
        l.ledger
            .summary(Some(&alice), from, to, GroupBy::Model)
            .await,
        "summary",
    );
    let keys: Vec<(&str, u64)> = by_model
        .iter()
        .map(|r| (r.key.as_str(), r.tokens.total()))
        .collect();
    assert_eq!(keys, vec![("m1", 17), ("m2", 27)]);

    let by_project = ok(
        l.ledger
            .summary(Some(&alice), from, to, GroupBy::Project)
            .await,
        "summary",
    );
    let keys: Vec<(String, u64)> = by_project
        .iter()
        .map(|r| (r.key.clone(), r.tokens.total()))
        .collect();
    assert_eq!(keys, vec![(String::new(), 2), (p.id.to_string(), 42)]);

    let by_user = ok(
        l.ledger.summary(None, from, to, GroupBy::User).await,
        "summary",
    );
    let mut keys: Vec<(String, u64)> = by_user
        .iter()
        .map(|r| (r.key.clone(), r.tokens.total()))
        .collect();
    keys.sort();
    let mut want = vec![(alice.to_string(), 44), (bob.to_string(), 200)];
    want.sort();
    // Other cases' users may share a database only on a shared store; this one is fresh.
    assert_eq!(keys, want);
}

async fn the_quota_state_counts_the_day_and_the_month_so_far(l: Ledger) {
    let alice = user("alice");
    let bob = user("bob");
    record(&l, &entry(&alice, None, "m", 10, 5, at(2026, 11, 30, 12))).await;
    record(&l, &entry(&alice, None, "m", 20, 5, at(2026, 12, 1, 12))).await;
    record(&l, &entry(&alice, None, "m", 30, 5, at(2026, 12, 7, 1))).await;
    record(&l, &entry(&alice, None, "m", 40, 5, at(2026, 12, 8, 1))).await;
    record(&l, &entry(&bob, None, "m", 1000, 5, at(2026, 12, 7, 1))).await;
    let state = ok(
        l.ledger.quota_state(&alice, day(2026, 12, 7)).await,
        "quota_state",
    );
    assert_eq!(state.used_day, 35);
    assert_eq!(state.used_month, 60);
    assert_eq!(state.quota, QuotaOverride::default());
    let nobody = ok(
        l.ledger.quota_state(&user("carol"), day(2026, 12, 7)).await,
        "quota_state",
    );
    assert_eq!((nobody.used_day, nobody.used_month), (0, 0));
}

async fn an_entry_outlives_its_conversation_and_ids_are_unique(l: Ledger) {
    let alice = user("alice");
    let p = stored_project(&l.stores, &alice, "P").await;
    let c = stored_conversation(&l.stores, &alice, p.id).await;
    let e = entry(&alice, Some(c.id), "m", 3, 4, at(2026, 12, 7, 1));
    record(&l, &e).await;
    ok(
        l.stores.history.delete_conversation(&alice, c.id).await,
        "delete_conversation",
    );
    let state = ok(
        l.ledger.quota_state(&alice, day(2026, 12, 7)).await,
        "quota_state",
    );
    assert_eq!(state.used_day, 7);
    // Written after its conversation is gone: no project.
    record(
        &l,
        &entry(&alice, Some(c.id), "m", 1, 1, at(2026, 12, 7, 2)),
    )
    .await;
    let rows = ok(
        l.ledger
            .summary(
                Some(&alice),
                day(2026, 12, 7),
                day(2026, 12, 7),
                GroupBy::Project,
            )
            .await,
        "summary",
    );
    let keys: Vec<(String, u64)> = rows
        .iter()
        .map(|r| (r.key.clone(), r.tokens.total()))
        .collect();
    assert_eq!(keys, vec![(String::new(), 2), (p.id.to_string(), 7)]);
    assert!(matches!(
        l.ledger.record(&e).await,
        Err(StoreError::Conflict(Conflict::DuplicateId))
    ));
}

async fn overrides_are_set_replaced_and_cleared(l: Ledger) {
    let alice = user("alice");
    let bob = user("bob");
    let today = day(2026, 12, 7);
    let q = QuotaOverride {
        tokens_per_day: Some(50),
        tokens_per_month: None,
    };
    ok(l.ledger.set_quota(&alice, &q).await, "set_quota");
    assert_eq!(
        ok(l.ledger.quota_state(&alice, today).await, "state").quota,
        q
    );
    let q2 = QuotaOverride {
        tokens_per_day: None,
        tokens_per_month: Some(900),
    };
    ok(l.ledger.set_quota(&alice, &q2).await, "set_quota");
    assert_eq!(
        ok(l.ledger.quota_state(&alice, today).await, "state").quota,
        q2
    );
    record(&l, &entry(&bob, None, "m", 5, 5, at(2026, 12, 7, 3))).await;
    let users = ok(l.ledger.users(today).await, "users");
    let listed: Vec<(UserId, u64, Option<u64>)> = users
        .iter()
        .map(|u| {
            (
                u.user_id.clone(),
                u.state.used_day,
                u.state.quota.tokens_per_month,
            )
        })
        .collect();
    let mut want = vec![(alice.clone(), 0, Some(900)), (bob.clone(), 10, None)];
    want.sort();
    assert_eq!(listed, want);
    ok(
        l.ledger.set_quota(&alice, &QuotaOverride::default()).await,
        "set_quota",
    );
    assert_eq!(
        ok(l.ledger.quota_state(&alice, today).await, "state").quota,
        QuotaOverride::default()
    );
    let users = ok(l.ledger.users(today).await, "users");
    assert_eq!(users.len(), 1, "{users:?}");
}

/// Two replicas check one user at once: at the limit both are refused; just below it both
/// pass (the replies then running are what a quota may be exceeded by).
async fn two_sends_at_the_limit_are_both_refused_and_below_it_both_pass(l: Ledger) {
    let alice = user("alice");
    let now = confab_core::model::now();
    let mut accounting = Accounting::new(Arc::clone(&l.ledger));
    accounting.defaults = QuotaDefaults {
        tokens_per_day: Some(100),
        tokens_per_month: None,
    };
    let other = accounting.clone();
    record(&l, &entry(&alice, None, "m", 60, 39, now)).await;
    let (a, b) = futures::join!(accounting.check(&alice, now), other.check(&alice, now));
    assert!(ok(a, "check").is_ok());
    assert!(ok(b, "check").is_ok());
    record(&l, &entry(&alice, None, "m", 1, 0, now)).await;
    let (a, b) = futures::join!(accounting.check(&alice, now), other.check(&alice, now));
    let refused = ok(a, "check").expect_err("at the limit");
    assert_eq!(refused.limit, 100);
    assert!(ok(b, "check").is_err());
}

/// No default quota: the check reads only the override of a user without one (`quota`),
/// and a user with an override is still refused at its limit.
async fn without_defaults_an_override_alone_refuses_its_user_only(l: Ledger) {
    let alice = user("alice");
    let bob = user("bob");
    let now = confab_core::model::now();
    let accounting = Accounting::new(Arc::clone(&l.ledger));
    let q = QuotaOverride {
        tokens_per_day: None,
        tokens_per_month: Some(100),
    };
    ok(l.ledger.set_quota(&alice, &q).await, "set_quota");
    assert_eq!(ok(l.ledger.quota(&alice).await, "quota"), q);
    assert_eq!(
        ok(l.ledger.quota(&bob).await, "quota"),
        QuotaOverride::default()
    );
    record(&l, &entry(&alice, None, "m", 60, 40, now)).await;
    record(&l, &entry(&bob, None, "m", 600, 400, now)).await;
    let refused = ok(accounting.check(&alice, now).await, "check").expect_err("over the override");
    assert_eq!(refused.limit, 100);
    assert!(ok(accounting.check(&bob, now).await, "check").is_ok());
    ok(
        l.ledger.set_quota(&alice, &QuotaOverride::default()).await,
        "set_quota",
    );
    assert_eq!(
        ok(l.ledger.quota(&alice).await, "quota"),
        QuotaOverride::default()
    );
    assert!(ok(accounting.check(&alice, now).await, "check").is_ok());
}

/// A send's turn in `conversation`, checked against `quota`: a new user message after the
/// leaf, with `file_ids`, and its reply, created at `quota.at`.
async fn quota_turn(
    history: &dyn ChatHistory,
    owner: &UserId,
    conversation: ConversationId,
    file_ids: Vec<FileId>,
    quota: TurnQuota,
) -> Result<Turn, StoreError> {
    let (user, reply) = turn(conversation, "Hello", None, quota.at);
    let new = NewTurn {
        user: Some(user),
        parent: Parent::Leaf,
        reply,
        file_ids,
        quota: Some(quota),
    };
    history
        .begin_turn(owner, &new, plus_mins(quota.at, -60), 200)
        .await
}

/// Asserts `QuotaExceeded` and returns it.
#[track_caller]
fn exceeded<T: std::fmt::Debug>(result: Result<T, StoreError>, call: &str) -> QuotaExceeded {
    match result {
        Err(StoreError::QuotaExceeded(refused)) => refused,
        other => panic!("{call}: expected QuotaExceeded, got {other:?}"),
    }
}

fn daily(limit: u64, at: Timestamp) -> TurnQuota {
    TurnQuota {
        defaults: QuotaDefaults {
            tokens_per_day: Some(limit),
            tokens_per_month: None,
        },
        at,
    }
}

async fn messages_of(l: &Ledger, owner: &UserId, conversation: ConversationId) -> usize {
    ok(
        l.stores
            .history
            .list_messages(owner, conversation, None, 200)
            .await,
        "list_messages",
    )
    .len()
}

/// MUST of `begin_turn`: over a limit the turn is refused with `QuotaExceeded` and nothing
/// is stored; under it, or without a quota, the turn is stored. Only the day and month of
/// the send count, and only the user's own tokens.
async fn a_turn_over_the_quota_is_refused_and_stores_nothing(l: Ledger) {
    let alice = user("alice");
    let bob = user("bob");
    let now = confab_core::model::now();
    let p = stored_project(&l.stores, &alice, "P").await;
    let c = stored_conversation(&l.stores, &alice, p.id).await;
    record(&l, &entry(&alice, None, "m", 60, 40, now)).await;
    // Yesterday's tokens (in another month on the 1st) and another user's do not count today.
    record(
        &l,
        &entry(&alice, None, "m", 500, 500, plus_mins(now, -24 * 60)),
    )
    .await;
    record(&l, &entry(&bob, None, "m", 500, 500, now)).await;

    let refused = exceeded(
        quota_turn(
            &*l.stores.history,
            &alice,
            c.id,
            Vec::new(),
            daily(100, now),
        )
        .await,
        "begin_turn at the daily limit",
    );
    assert_eq!((refused.period, refused.limit), (Period::Day, 100));
    assert_eq!(
        messages_of(&l, &alice, c.id).await,
        0,
        "a refused turn stored messages"
    );
    let conversation = ok(
        l.stores.history.get_conversation(&alice, c.id).await,
        "get_conversation",
    );
    assert_eq!(conversation.leaf_id, None, "a refused turn moved the leaf");

    let monthly = TurnQuota {
        defaults: QuotaDefaults {
            tokens_per_day: None,
            tokens_per_month: Some(100),
        },
        at: now,
    };
    // Today's 100 alone reach the monthly limit (yesterday's count too, unless it was last
    // month).
    let refused = exceeded(
        quota_turn(&*l.stores.history, &alice, c.id, Vec::new(), monthly).await,
        "begin_turn at the monthly limit",
    );
    assert_eq!((refused.period, refused.limit), (Period::Month, 100));

    let began = ok(
        quota_turn(
            &*l.stores.history,
            &alice,
            c.id,
            Vec::new(),
            daily(101, now),
        )
        .await,
        "begin_turn under the daily limit",
    );
    assert_eq!(began.history.len(), 0);
    assert_eq!(messages_of(&l, &alice, c.id).await, 2);
}

/// Without default quotas only a user with an override has a limit.
async fn a_turn_without_defaults_is_limited_by_its_users_override_only(l: Ledger) {
    let alice = user("alice");
    let bob = user("bob");
    let now = confab_core::model::now();
    let unlimited = TurnQuota {
        defaults: QuotaDefaults::default(),
        at: now,
    };
    let p = stored_project(&l.stores, &alice, "P").await;
    let c = stored_conversation(&l.stores, &alice, p.id).await;
    let pb = stored_project(&l.stores, &bob, "P").await;
    let cb = stored_conversation(&l.stores, &bob, pb.id).await;
    record(&l, &entry(&alice, None, "m", 60, 40, now)).await;
    record(&l, &entry(&bob, None, "m", 6000, 4000, now)).await;
    let q = QuotaOverride {
        tokens_per_day: None,
        tokens_per_month: Some(100),
    };
    ok(l.ledger.set_quota(&alice, &q).await, "set_quota");

    let refused = exceeded(
        quota_turn(&*l.stores.history, &alice, c.id, Vec::new(), unlimited).await,
        "begin_turn over the override",
    );
    assert_eq!((refused.period, refused.limit), (Period::Month, 100));
    assert_eq!(messages_of(&l, &alice, c.id).await, 0);
    ok(
        quota_turn(&*l.stores.history, &bob, cb.id, Vec::new(), unlimited).await,
        "begin_turn of a user without an override",
    );
    // An override replaces a default per field: a higher own limit lets alice send.
    let higher = QuotaOverride {
        tokens_per_day: Some(1000),
        tokens_per_month: None,
    };
    ok(l.ledger.set_quota(&alice, &higher).await, "set_quota");
    ok(
        quota_turn(&*l.stores.history, &alice, c.id, Vec::new(), daily(10, now)).await,
        "begin_turn under the user's own daily limit",
    );
}

/// 404 (the conversation, an attachment) and 409 come before the quota's refusal.
async fn a_missing_conversation_a_conflict_or_a_foreign_file_is_reported_before_the_quota(
    l: Ledger,
) {
    let alice = user("alice");
    let mallory = user("mallory");
    let now = confab_core::model::now();
    let p = stored_project(&l.stores, &alice, "P").await;
    let c = stored_conversation(&l.stores, &alice, p.id).await;
    let pm = stored_project(&l.stores, &mallory, "M").await;
    let foreign = stored_file(&l.stores, &mallory, pm.id, "theirs.txt").await;
    record(&l, &entry(&alice, None, "m", 100, 100, now)).await;
    let over = daily(10, now);

    not_found(
        quota_turn(
            &*l.stores.history,
            &alice,
            ConversationId::new(),
            Vec::new(),
            over,
        )
        .await,
        "begin_turn in a missing conversation over the quota",
    );
    not_found(
        quota_turn(&*l.stores.history, &mallory, c.id, Vec::new(), over).await,
        "begin_turn in another owner's conversation over the quota",
    );
    not_found(
        quota_turn(&*l.stores.history, &alice, c.id, vec![foreign.id], over).await,
        "begin_turn with another owner's file over the quota",
    );
    not_found(
        l.stores
            .history
            .check_turn(&alice, c.id, None, &[foreign.id], plus_mins(now, -60))
            .await,
        "check_turn with another owner's file",
    );
    // A reply streaming (begun without a quota): 409, not 429.
    begun_turn(&l.stores, &alice, c.id, "First").await;
    conflict(
        quota_turn(&*l.stores.history, &alice, c.id, Vec::new(), over).await,
        Conflict::ReplyInProgress,
        "begin_turn while a reply streams, over the quota",
    );
    assert_eq!(messages_of(&l, &alice, c.id).await, 2);
}

/// Two replicas begin a turn for one user at once (in two conversations, so that neither
/// is a conflict): at the limit both are refused and nothing is stored; below it both pass
/// (the replies then running are what a quota may be exceeded by).
async fn two_replicas_beginning_turns_at_the_limit_at_once_are_both_refused(l: Ledger) {
    let alice = user("alice");
    let now = confab_core::model::now();
    let p = stored_project(&l.stores, &alice, "P").await;
    let c1 = stored_conversation(&l.stores, &alice, p.id).await;
    let c2 = stored_conversation(&l.stores, &alice, p.id).await;
    let quota = daily(100, now);
    record(&l, &entry(&alice, None, "m", 60, 40, now)).await;

    let (a, b) = futures::join!(
        quota_turn(&*l.stores.history, &alice, c1.id, Vec::new(), quota),
        quota_turn(&*l.replica.history, &alice, c2.id, Vec::new(), quota),
    );
    exceeded(a, "begin_turn on the first replica at the limit");
    exceeded(b, "begin_turn on the second replica at the limit");
    assert_eq!(messages_of(&l, &alice, c1.id).await, 0);
    assert_eq!(messages_of(&l, &alice, c2.id).await, 0);

    // One token under the limit: both pass, once each.
    let under = daily(101, now);
    let (a, b) = futures::join!(
        quota_turn(&*l.stores.history, &alice, c1.id, Vec::new(), under),
        quota_turn(&*l.replica.history, &alice, c2.id, Vec::new(), under),
    );
    ok(a, "begin_turn on the first replica under the limit");
    ok(b, "begin_turn on the second replica under the limit");
    assert_eq!(messages_of(&l, &alice, c1.id).await, 2);
    assert_eq!(messages_of(&l, &alice, c2.id).await, 2);
}
