//! The `LiveReplies` contract, run against every adapter (in-process; Redis).
//!
//! The factory is given the options a case needs (a short retention for the case that
//! watches a reply being forgotten, a small buffer for the slow-follower case) and returns a
//! fresh adapter with nothing of other cases in it. Cases wait for events, never for time,
//! except the one that checks a reply is forgotten, which waits (polling) for its retention
//! to pass; every wait has a generous limit so a broken adapter fails instead of hanging.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use confab_core::ids::MessageId;
use confab_core::live::{LiveError, LiveEvent, LiveOptions};
use confab_core::ports::{LiveEventStream, LiveReplies};
use confab_core::{CancelReason, CancelToken};
use futures::StreamExt;

/// The longest a case waits for one event or the end of a stream.
const PATIENCE: Duration = Duration::from_secs(20);

/// Runs every case of the `LiveReplies` contract, each on a fresh adapter from `fresh`.
pub async fn live_replies_contract<F, Fut>(fresh: F)
where
    F: Fn(LiveOptions) -> Fut,
    Fut: Future<Output = Arc<dyn LiveReplies>>,
{
    let default = || fresh(LiveOptions::default());
    crate::run_cases!(
        "LiveReplies",
        default,
        [
            a_finished_reply_is_read_from_the_start_from_any_number_and_from_its_last,
            a_follower_gets_the_events_published_after_it_came_in_order,
            several_followers_get_the_same_events_in_the_same_order,
            a_follower_that_goes_away_takes_nothing_from_the_others,
            a_follower_resumes_exactly_after_its_number_inside_coalesced_batches,
            an_event_out_of_sequence_is_ignored,
            a_dropped_publisher_ends_its_followers_with_interrupted,
            reading_an_unknown_reply_is_not_found,
            an_opened_reply_is_followed_before_its_first_event,
            cancel_reaches_the_producer_of_a_live_reply,
            a_cancel_before_the_reply_is_opened_reaches_its_producer_as_it_opens,
            cancelling_an_unknown_or_finished_reply_does_nothing,
        ]
    );
    crate::run_cases!(
        "LiveReplies (retention 500 ms)",
        || fresh(LiveOptions {
            retention: Duration::from_millis(500),
            ..LiveOptions::default()
        }),
        [a_finished_reply_is_forgotten_after_its_retention_and_not_before]
    );
    crate::run_cases!(
        "LiveReplies (16 events kept)",
        || fresh(LiveOptions {
            max_events: 16,
            ..LiveOptions::default()
        }),
        [a_slow_follower_holds_back_neither_the_producer_nor_the_others]
    );
}

fn event(id: u64, total: u64) -> LiveEvent {
    let name = match id {
        1 => "user_message",
        2 => "assistant_message",
        _ if id == total => "done",
        _ => "delta",
    };
    let data = format!("{{\"n\":{id},\"text\":\"piece \\\"{id}\\\"\\n\"}}");
    if id == total {
        LiveEvent::last(id, name, data)
    } else {
        LiveEvent::new(id, name, data)
    }
}

/// The events 1..=total of a reply of `total` events, the last one last.
fn reply_events(total: u64) -> Vec<LiveEvent> {
    (1..=total).map(|id| event(id, total)).collect()
}

async fn follow(live: &Arc<dyn LiveReplies>, reply: MessageId, after: u64) -> LiveEventStream {
    match tokio::time::timeout(PATIENCE, live.follow(reply, after)).await {
        Ok(Ok(stream)) => stream,
        Ok(Err(e)) => panic!("follow({after}) failed: {e:?}"),
        Err(_) => panic!("follow({after}) did not answer in {PATIENCE:?}"),
    }
}

/// Reads the stream to its end.
async fn read_to_end(stream: LiveEventStream) -> Vec<Result<LiveEvent, LiveError>> {
    match tokio::time::timeout(PATIENCE, stream.collect::<Vec<_>>()).await {
        Ok(items) => items,
        Err(_) => panic!("the stream did not end within {PATIENCE:?}"),
    }
}

/// Reads `n` items.
async fn read_n(stream: &mut LiveEventStream, n: usize) -> Vec<LiveEvent> {
    let mut out = Vec::with_capacity(n);
    while out.len() < n {
        match tokio::time::timeout(PATIENCE, stream.next()).await {
            Ok(Some(Ok(event))) => out.push(event),
            Ok(Some(Err(e))) => panic!("after {} events the stream failed: {e:?}", out.len()),
            Ok(None) => panic!("the stream ended after {} of {n} events", out.len()),
            Err(_) => panic!("no event within {PATIENCE:?} after {}", out.len()),
        }
    }
    out
}

fn ok(items: Vec<Result<LiveEvent, LiveError>>) -> Vec<LiveEvent> {
    items
        .into_iter()
        .map(|item| item.unwrap_or_else(|e| panic!("the stream yielded an error: {e:?}")))
        .collect()
}

fn ids(events: &[LiveEvent]) -> Vec<u64> {
    events.iter().map(|e| e.id).collect()
}

async fn a_finished_reply_is_read_from_the_start_from_any_number_and_from_its_last(
    live: Arc<dyn LiveReplies>,
) {
    let reply = MessageId::new();
    let mut publisher = live.open(reply, CancelToken::new()).await;
    let all = reply_events(6);
    for e in all.clone() {
        publisher.publish(e);
    }
    drop(publisher);
    assert_eq!(
        ok(read_to_end(follow(&live, reply, 0).await).await),
        all,
        "from 0: every event, as published"
    );
    assert_eq!(
        ok(read_to_end(follow(&live, reply, 2).await).await),
        all[2..],
        "from 2: the events after 2"
    );
    assert_eq!(
        ok(read_to_end(follow(&live, reply, 6).await).await),
        Vec::<LiveEvent>::new(),
        "from the last: nothing, and the stream ends"
    );
}

async fn a_follower_gets_the_events_published_after_it_came_in_order(live: Arc<dyn LiveReplies>) {
    let reply = MessageId::new();
    let all = reply_events(40);
    let mut publisher = live.open(reply, CancelToken::new()).await;
    publisher.publish(all[0].clone());
    publisher.publish(all[1].clone());
    let mut stream = follow(&live, reply, 0).await;
    assert_eq!(read_n(&mut stream, 2).await, all[..2], "the events so far");
    let mut read = 2;
    for (i, e) in all[2..].iter().enumerate() {
        publisher.publish(e.clone());
        if i % 5 == 0 {
            // Now and then the follower catches up with the producer, which otherwise
            // races ahead.
            let caught_up = read_n(&mut stream, e.id as usize - read).await;
            assert_eq!(caught_up, all[read..e.id as usize], "up to event {}", e.id);
            read = e.id as usize;
        }
    }
    let rest = ok(read_to_end(stream).await);
    assert_eq!(rest, all[read..], "the rest, to the end");
    assert_eq!(
        rest.last(),
        all.last(),
        "the stream ends with the last event"
    );
}

async fn several_followers_get_the_same_events_in_the_same_order(live: Arc<dyn LiveReplies>) {
    let reply = MessageId::new();
    let all = reply_events(300);
    let mut publisher = live.open(reply, CancelToken::new()).await;
    let early = follow(&live, reply, 0).await;
    let mut readers = vec![tokio::spawn(read_to_end(early))];
    for (i, e) in all.iter().enumerate() {
        publisher.publish(e.clone());
        if i == 100 || i == 200 {
            let late = follow(&live, reply, 0).await;
            readers.push(tokio::spawn(read_to_end(late)));
            tokio::task::yield_now().await;
        }
    }
    for (i, reader) in readers.into_iter().enumerate() {
        let got = ok(reader.await.unwrap_or_else(|e| panic!("reader {i}: {e}")));
        assert_eq!(ids(&got), ids(&all), "follower {i} got another sequence");
        assert_eq!(got, all, "follower {i} got other contents");
    }
}

async fn a_follower_that_goes_away_takes_nothing_from_the_others(live: Arc<dyn LiveReplies>) {
    let reply = MessageId::new();
    let all = reply_events(50);
    let mut publisher = live.open(reply, CancelToken::new()).await;
    let mut gone = follow(&live, reply, 0).await;
    let mut staying = follow(&live, reply, 0).await;
    for e in &all[..10] {
        publisher.publish(e.clone());
    }
    assert_eq!(read_n(&mut gone, 3).await, all[..3]);
    assert_eq!(read_n(&mut staying, 10).await, all[..10]);
    // The tab closes in the middle of the reply.
    drop(gone);
    for e in &all[10..] {
        publisher.publish(e.clone());
    }
    drop(publisher);
    assert_eq!(ok(read_to_end(staying).await), all[10..]);
    assert_eq!(
        ok(read_to_end(follow(&live, reply, 3).await).await),
        all[3..],
        "the one that went away comes back and resumes where it was"
    );
}

async fn a_follower_resumes_exactly_after_its_number_inside_coalesced_batches(
    live: Arc<dyn LiveReplies>,
) {
    // Published in one burst, so an adapter that coalesces does so: every position must
    // still resume exactly after its number.
    let reply = MessageId::new();
    let all = reply_events(60);
    let mut publisher = live.open(reply, CancelToken::new()).await;
    for e in all.clone() {
        publisher.publish(e);
    }
    drop(publisher);
    for after in 0..=60u64 {
        let got = ok(read_to_end(follow(&live, reply, after).await).await);
        assert_eq!(
            ids(&got),
            ((after + 1)..=60).collect::<Vec<_>>(),
            "resuming after {after}"
        );
    }
}

async fn an_event_out_of_sequence_is_ignored(live: Arc<dyn LiveReplies>) {
    let reply = MessageId::new();
    let all = reply_events(3);
    let mut publisher = live.open(reply, CancelToken::new()).await;
    publisher.publish(all[0].clone());
    publisher.publish(LiveEvent::new(3, "delta", "skipped ahead"));
    publisher.publish(LiveEvent::new(1, "delta", "again"));
    publisher.publish(all[1].clone());
    publisher.publish(all[2].clone());
    publisher.publish(LiveEvent::new(4, "delta", "after the last"));
    drop(publisher);
    assert_eq!(ok(read_to_end(follow(&live, reply, 0).await).await), all);
}

async fn a_dropped_publisher_ends_its_followers_with_interrupted(live: Arc<dyn LiveReplies>) {
    let reply = MessageId::new();
    let all = reply_events(10);
    let mut publisher = live.open(reply, CancelToken::new()).await;
    let mut live_follower = follow(&live, reply, 0).await;
    for e in &all[..4] {
        publisher.publish(e.clone());
    }
    assert_eq!(read_n(&mut live_follower, 4).await, all[..4]);
    drop(publisher);
    let rest = read_to_end(live_follower).await;
    assert_eq!(rest, [Err(LiveError::Interrupted)], "the live follower");
    let late = read_to_end(follow(&live, reply, 1).await).await;
    assert_eq!(
        late,
        [
            Ok(all[1].clone()),
            Ok(all[2].clone()),
            Ok(all[3].clone()),
            Err(LiveError::Interrupted)
        ],
        "a follower that comes later"
    );
}

async fn reading_an_unknown_reply_is_not_found(live: Arc<dyn LiveReplies>) {
    let result = live.follow(MessageId::new(), 0).await;
    assert!(
        matches!(result, Err(LiveError::NotFound)),
        "an unknown reply: {:?}",
        result.err()
    );
}

async fn an_opened_reply_is_followed_before_its_first_event(live: Arc<dyn LiveReplies>) {
    let reply = MessageId::new();
    let publisher = live.open(reply, CancelToken::new()).await;
    let mut stream = follow(&live, reply, 0).await;
    let mut publisher = publisher;
    let all = reply_events(3);
    publisher.publish(all[0].clone());
    assert_eq!(read_n(&mut stream, 1).await, all[..1]);
    publisher.publish(all[1].clone());
    publisher.publish(all[2].clone());
    assert_eq!(ok(read_to_end(stream).await), all[1..]);
}

async fn cancel_reaches_the_producer_of_a_live_reply(live: Arc<dyn LiveReplies>) {
    let reply = MessageId::new();
    let token = CancelToken::new();
    let mut publisher = live.open(reply, token.clone()).await;
    publisher.publish(event(1, 5));
    live.cancel(reply)
        .await
        .unwrap_or_else(|e| panic!("cancel failed: {e:?}"));
    match tokio::time::timeout(PATIENCE, token.cancelled()).await {
        Ok(reason) => assert_eq!(reason, CancelReason::User),
        Err(_) => panic!("the producer's token was not cancelled within {PATIENCE:?}"),
    }
}

/// A cancel may come between the reply's storing and its opening (on another replica).
async fn a_cancel_before_the_reply_is_opened_reaches_its_producer_as_it_opens(
    live: Arc<dyn LiveReplies>,
) {
    let reply = MessageId::new();
    live.cancel(reply)
        .await
        .unwrap_or_else(|e| panic!("cancel failed: {e:?}"));
    let token = CancelToken::new();
    let _publisher = live.open(reply, token.clone()).await;
    match tokio::time::timeout(PATIENCE, token.cancelled()).await {
        Ok(reason) => assert_eq!(reason, CancelReason::User),
        Err(_) => panic!("the early cancel did not reach the producer within {PATIENCE:?}"),
    }
    let other = CancelToken::new();
    let _other = live.open(MessageId::new(), other.clone()).await;
    assert_eq!(other.reason(), None, "another reply is not cancelled");
}

async fn cancelling_an_unknown_or_finished_reply_does_nothing(live: Arc<dyn LiveReplies>) {
    let finished = MessageId::new();
    let finished_token = CancelToken::new();
    let mut publisher = live.open(finished, finished_token.clone()).await;
    for e in reply_events(3) {
        publisher.publish(e);
    }
    drop(publisher);
    // Wait until the reply is finished for followers too.
    let _ = read_to_end(follow(&live, finished, 0).await).await;
    assert_eq!(
        live.cancel(MessageId::new()).await,
        Ok(()),
        "an unknown reply"
    );
    assert_eq!(live.cancel(finished).await, Ok(()), "a finished reply");
    // A cancel of a live reply after them: once it has arrived, so have the two before.
    let witness = MessageId::new();
    let witness_token = CancelToken::new();
    let _witness_publisher = live.open(witness, witness_token.clone()).await;
    assert_eq!(live.cancel(witness).await, Ok(()));
    if tokio::time::timeout(PATIENCE, witness_token.cancelled())
        .await
        .is_err()
    {
        panic!("the live reply's cancel did not arrive");
    }
    assert_eq!(
        finished_token.reason(),
        None,
        "a finished reply's producer was cancelled"
    );
}

async fn a_finished_reply_is_forgotten_after_its_retention_and_not_before(
    live: Arc<dyn LiveReplies>,
) {
    let retention = Duration::from_millis(500);
    let reply = MessageId::new();
    let mut publisher = live.open(reply, CancelToken::new()).await;
    let all = reply_events(3);
    publisher.publish(all[0].clone());
    publisher.publish(all[1].clone());
    let finished_at = Instant::now();
    publisher.publish(all[2].clone());
    drop(publisher);
    let started = Instant::now();
    loop {
        match live.follow(reply, 0).await {
            Ok(stream) => {
                // Still kept: it must be whole. (It may be forgotten while being read.)
                let items = read_to_end(stream).await;
                if items.iter().all(Result::is_ok) {
                    assert_eq!(ok(items), all, "a kept reply is replayed whole");
                }
            }
            Err(LiveError::NotFound) => {
                assert!(
                    finished_at.elapsed() >= retention,
                    "forgotten {:?} after its last event, before its retention",
                    finished_at.elapsed()
                );
                return;
            }
            Err(e) => panic!("following a finished reply failed: {e:?}"),
        }
        assert!(
            started.elapsed() < PATIENCE,
            "the reply was still kept {PATIENCE:?} after its retention of {retention:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn a_slow_follower_holds_back_neither_the_producer_nor_the_others(
    live: Arc<dyn LiveReplies>,
) {
    let reply = MessageId::new();
    let all = reply_events(100);
    let mut publisher = live.open(reply, CancelToken::new()).await;
    publisher.publish(all[0].clone());
    // The slow follower reads one event, then nothing while the whole reply is published.
    let mut slow = follow(&live, reply, 0).await;
    assert_eq!(read_n(&mut slow, 1).await, all[..1]);
    // The fast one reads each event as it comes; the producer goes on as soon as the fast
    // one has it, far past what the adapter keeps for the slow one.
    let mut fast = follow(&live, reply, 0).await;
    assert_eq!(read_n(&mut fast, 1).await, all[..1]);
    for e in &all[1..] {
        publisher.publish(e.clone());
        assert_eq!(
            read_n(&mut fast, 1).await,
            std::slice::from_ref(e),
            "the fast follower was held back at {}",
            e.id
        );
    }
    drop(publisher);
    assert!(
        read_to_end(fast).await.is_empty(),
        "the fast follower's stream goes on after the last event"
    );
    // The slow one now gets either the rest, or `Trimmed` where events were dropped: never
    // a gap, never another order.
    let mut expected = 2;
    for item in read_to_end(slow).await {
        match item {
            Ok(e) => {
                assert_eq!(e.id, expected, "the slow follower skipped events");
                expected += 1;
            }
            Err(LiveError::Trimmed { after }) => {
                assert_eq!(after, expected - 1, "Trimmed names where the follower was");
                return;
            }
            Err(e) => panic!("the slow follower got {e:?}"),
        }
    }
    assert_eq!(expected, 101, "the slow follower's stream ended early");
}
