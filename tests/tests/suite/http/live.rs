//! Following a conversation's live reply (`GET /api/conversations/{id}/stream`, issue 15):
//! from the start, from a `Last-Event-ID`, after the end within the retention, 204 when
//! nothing is live, another user's 404; and a cancel that reaches the reply's replica through
//! the live port. Two replicas here are two servers sharing one store and one
//! `MemoryLiveReplies`, as two processes share one database and one Redis.

use std::sync::Arc;

use confab_api_types as api;
use confab_core::CancelToken;
use confab_core::live::{LiveEvent, LivePublisher};
use confab_memory::ScriptedLlm;
use confab_tests::http::{
    ALICE, AppOptions, BOB, SseFrame, SseStream, TestApp, eventually, spawn_app, spawn_scripted,
};
use reqwest::StatusCode;

async fn conversation(app: &TestApp) -> api::Conversation {
    let project = app.new_project(ALICE, "Live").await;
    app.new_conversation(ALICE, project.id).await
}

/// Reads `k` events of `stream`, keeping the stream open.
async fn read(stream: &mut SseStream, k: usize) -> Vec<SseFrame> {
    let mut frames = Vec::with_capacity(k);
    for _ in 0..k {
        frames.push(stream.expect_next().await);
    }
    frames
}

async fn follow_stream(app: &TestApp, conversation: uuid::Uuid, after: Option<&str>) -> SseStream {
    SseStream::new(app.follow(ALICE, conversation, after).await)
}

#[tokio::test]
async fn a_follower_from_the_start_gets_the_same_events_as_the_send_and_the_same_headers() {
    let app = spawn_scripted(ScriptedLlm::hanging_after(&["Hel", "lo"]), &[]).await;
    let conversation = conversation(&app).await;
    let mut send = app.open_stream(ALICE, conversation.id, "Go on").await;
    let mut sent = read(&mut send, 4).await;

    let mut follower = follow_stream(&app, conversation.id, None).await;
    for name in ["cache-control", "x-accel-buffering"] {
        assert_eq!(
            follower.headers.get(name),
            send.headers.get(name),
            "the follower's {name}"
        );
    }
    let mut followed = read(&mut follower, 4).await;
    assert_eq!(followed, sent);

    app.cancel(ALICE, conversation.id).await.assert_status(202);
    sent.extend(send.rest().await);
    followed.extend(follower.rest().await);
    assert_eq!(sent.last().map(|f| f.event.as_str()), Some("done"));
    assert_eq!(followed, sent, "every event, id and data alike, to the end");
}

#[tokio::test]
async fn a_last_event_id_in_the_middle_gives_exactly_the_rest() {
    let app = spawn_scripted(ScriptedLlm::hanging_after(&["Hel", "lo", "!"]), &[]).await;
    let conversation = conversation(&app).await;
    let mut send = app.open_stream(ALICE, conversation.id, "Go on").await;
    let mut sent = read(&mut send, 5).await;

    let mut from_header = follow_stream(&app, conversation.id, Some("2")).await;
    let mut header_frames = read(&mut from_header, 3).await;
    assert_eq!(header_frames, sent[2..]);
    let query = app
        .request(
            reqwest::Method::GET,
            &format!("/api/conversations/{}/stream?after=4", conversation.id),
            Some(ALICE),
        )
        .send()
        .await
        .unwrap();
    let mut from_query = SseStream::new(query);
    let mut query_frames = read(&mut from_query, 1).await;
    assert_eq!(query_frames, sent[4..]);

    app.cancel(ALICE, conversation.id).await.assert_status(202);
    sent.extend(send.rest().await);
    header_frames.extend(from_header.rest().await);
    query_frames.extend(from_query.rest().await);
    assert_eq!(header_frames, sent[2..]);
    assert_eq!(query_frames, sent[4..]);
}

#[tokio::test]
async fn an_invalid_last_event_id_is_400_and_another_users_conversation_is_404() {
    let app = spawn_app().await;
    let conversation = conversation(&app).await;
    for bad in ["x", "-1", "1.5"] {
        let answer =
            confab_tests::http::Answer::read(app.follow(ALICE, conversation.id, Some(bad)).await)
                .await;
        answer.problem(400, "bad_request");
    }
    let answer =
        confab_tests::http::Answer::read(app.follow(BOB, conversation.id, None).await).await;
    answer.problem(404, "not_found");
}

#[tokio::test]
async fn a_follower_after_the_end_within_the_retention_gets_a_replay_and_else_204() {
    let app = AppOptions::new()
        .setting("CONFAB_LIVE_RETENTION_SECS", "1")
        .spawn()
        .await;
    let conversation = conversation(&app).await;
    assert_eq!(
        app.follow(ALICE, conversation.id, None).await.status(),
        StatusCode::NO_CONTENT,
        "nothing was ever generated"
    );
    let reply = app.send(ALICE, conversation.id, "hello there").await;
    let replay = follow_stream(&app, conversation.id, None)
        .await
        .rest()
        .await;
    assert_eq!(replay, reply.frames);
    // The stream's last event: the title written after the first reply's `done`.
    assert_eq!(reply.titles.len(), 1, "the first reply is titled");
    let last_id = reply.titles[0].id.clone();
    let rest = follow_stream(&app, conversation.id, Some("3"))
        .await
        .rest()
        .await;
    assert_eq!(rest, reply.frames[3..]);
    assert_eq!(
        app.follow(ALICE, conversation.id, Some(&last_id))
            .await
            .status(),
        StatusCode::NO_CONTENT,
        "nothing after the last event"
    );
    eventually(
        "the finished reply is forgotten after its retention",
        || async {
            (app.follow(ALICE, conversation.id, None).await.status() == StatusCode::NO_CONTENT)
                .then_some(())
        },
    )
    .await;
}

#[tokio::test]
async fn a_reply_on_one_replica_is_followed_and_cancelled_from_another() {
    let a = spawn_scripted(ScriptedLlm::hanging_after(&["Hel", "lo"]), &[]).await;
    let b = AppOptions::new().replica_of(&a).spawn().await;
    let conversation = conversation(&a).await;
    let mut send = a.open_stream(ALICE, conversation.id, "Go on").await;
    let mut sent = read(&mut send, 4).await;

    let mut follower = follow_stream(&b, conversation.id, None).await;
    let mut followed = read(&mut follower, 4).await;
    assert_eq!(followed, sent);

    // B generates nothing itself: the cancel reaches A through the live port.
    b.cancel(ALICE, conversation.id).await.assert_status(202);
    sent.extend(send.rest().await);
    followed.extend(follower.rest().await);
    assert_eq!(followed, sent);
    let done: api::Message = sent.last().unwrap().json();
    assert_eq!(done.status, api::MessageStatus::Cancelled);
    assert_eq!(done.content, "Hello");

    b.cancel(ALICE, conversation.id)
        .await
        .problem(409, "conflict");
}

#[tokio::test]
async fn a_conversation_names_its_reply_while_it_is_generated_and_null_after() {
    let app = spawn_scripted(ScriptedLlm::hanging_after(&["Hel"]), &[]).await;
    let conversation = conversation(&app).await;
    assert_eq!(conversation.active_reply_id, None, "as created");
    let mut send = app.open_stream(ALICE, conversation.id, "Go on").await;
    let frames = read(&mut send, 3).await;
    let reply: api::Message = frames[1].json();

    let got: api::Conversation = app.get_conversation(ALICE, conversation.id).await.ok(200);
    assert_eq!(got.active_reply_id, Some(reply.id), "GET while streaming");
    let listed: api::Page<api::Conversation> = app
        .list_conversations(ALICE, conversation.project_id, "")
        .await
        .ok(200);
    assert_eq!(listed.items[0].active_reply_id, Some(reply.id), "list");
    let patched: api::Conversation = app
        .patch_conversation(
            ALICE,
            conversation.id,
            &serde_json::json!({"title": "Busy"}),
        )
        .await
        .ok(200);
    assert_eq!(patched.active_reply_id, Some(reply.id), "PATCH");

    app.cancel(ALICE, conversation.id).await.assert_status(202);
    send.rest().await;
    let got: api::Conversation = app.get_conversation(ALICE, conversation.id).await.ok(200);
    assert_eq!(got.active_reply_id, None, "after the reply ended");
}

/// The followers being relayed now, as `/metrics` counts them.
async fn followers(app: &TestApp) -> i64 {
    let metrics = app.metrics().await.text();
    metrics
        .lines()
        .find_map(|line| line.strip_prefix("confab_chat_followers "))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("no follower gauge: {metrics}"))
}

/// A follower whose client went away is let go within seconds even while its reply
/// publishes nothing (a model that thinks): it does not wait for the reply's next event.
#[tokio::test]
async fn a_follower_whose_client_left_is_let_go_while_its_reply_is_quiet() {
    let app = spawn_scripted(ScriptedLlm::hanging_after(&["Hel"]), &[]).await;
    let conversation = conversation(&app).await;
    let mut send = app.open_stream(ALICE, conversation.id, "Go on").await;
    read(&mut send, 3).await;
    let mut follower = follow_stream(&app, conversation.id, None).await;
    read(&mut follower, 3).await;
    assert_eq!(followers(&app).await, 1);

    drop(follower);
    eventually("the follower is let go", || async {
        (followers(&app).await == 0).then_some(())
    })
    .await;
    app.cancel(ALICE, conversation.id).await.assert_status(202);
    assert_eq!(
        send.rest().await.last().map(|f| f.event.clone()),
        Some("done".to_owned())
    );
}

/// A reply stored `streaming` with no producer behind it (as one whose replica died), open
/// on the live port with its first three events: their publisher, to be kept (dropping it
/// would end the followers), and the reply.
async fn a_reply_without_a_producer(
    app: &TestApp,
    conversation: uuid::Uuid,
) -> (Box<dyn LivePublisher>, confab_core::Message) {
    use confab_core::ports::ChatHistory as _;
    let conversation = confab_core::ConversationId::from_uuid(conversation);
    let now = confab_core::now();
    let user = confab_core::Message::user(conversation, "Go on".to_owned(), None, now);
    let mut reply = confab_core::Message::pending_reply(conversation, "echo-1".to_owned(), now);
    reply.parent_id = Some(user.id);
    let turn = confab_core::ports::NewTurn {
        user: Some(user),
        parent: confab_core::Parent::Leaf,
        reply: reply.clone(),
        file_ids: Vec::new(),
        quota: None,
    };
    app.store
        .begin_turn(&confab_core::UserId::new(ALICE).unwrap(), &turn, now, 10)
        .await
        .unwrap();
    let mut publisher = app.live.open(reply.id, CancelToken::new()).await;
    for (id, name) in [(1, "user_message"), (2, "assistant_message"), (3, "delta")] {
        publisher.publish(LiveEvent::new(id, name, "{}"));
    }
    (publisher, reply)
}

/// Issue 15: a follower hears nothing more of a reply the sweep ended (its producer died on
/// another replica, so nobody publishes its end): it reads the stored reply after a quiet
/// period and ends with `error`, `interrupted`, numbered next.
#[tokio::test]
async fn a_quiet_follower_of_a_reply_the_sweep_ended_is_told_interrupted() {
    use confab_core::ports::ChatHistory as _;
    let app = spawn_app().await;
    let conversation = conversation(&app).await;
    let (_publisher, reply) = a_reply_without_a_producer(&app, conversation.id).await;
    let mut follower = follow_stream(&app, conversation.id, None).await;
    read(&mut follower, 3).await;

    let swept = app
        .store
        .fail_stale_replies(confab_core::now() + chrono::Duration::seconds(1))
        .await
        .unwrap();
    assert_eq!(swept, 1);
    let end = tokio::time::timeout(std::time::Duration::from_secs(10), follower.rest())
        .await
        .expect("the follower ends within seconds");
    assert_eq!(end.len(), 1, "{end:?}");
    assert_eq!((end[0].event.as_str(), end[0].id.as_str()), ("error", "4"));
    let error: api::StreamError = end[0].json();
    assert_eq!(error.code, "interrupted");
    assert_eq!(error.message_id, reply.id.as_uuid());
}

/// Issue 15: a reply stored finished whose last event never reaches its follower (its
/// producer stored it and died, or the live events were lost) ends the follower as stored:
/// `done` with the stored message, after one more quiet period for the real one.
#[tokio::test]
async fn a_quiet_follower_of_a_reply_stored_finished_ends_with_the_stored_message() {
    use confab_core::ports::ChatHistory as _;
    let app = spawn_app().await;
    let conversation = conversation(&app).await;
    let (_publisher, reply) = a_reply_without_a_producer(&app, conversation.id).await;
    let mut follower = follow_stream(&app, conversation.id, None).await;
    read(&mut follower, 3).await;

    let finished = confab_core::Message {
        content: "Hel".to_owned(),
        status: confab_core::MessageStatus::Complete,
        ..reply
    };
    app.store
        .finish_reply(&finished, confab_core::now())
        .await
        .unwrap();
    let end = tokio::time::timeout(std::time::Duration::from_secs(10), follower.rest())
        .await
        .expect("the follower ends within seconds");
    assert_eq!(end.len(), 1, "{end:?}");
    assert_eq!((end[0].event.as_str(), end[0].id.as_str()), ("done", "4"));
    let done: api::Message = end[0].json();
    assert_eq!(done.id, finished.id.as_uuid());
    assert_eq!(done.status, api::MessageStatus::Complete);
    assert_eq!(done.content, "Hel");
}

/// Issue 17: the title written after a first reply's `done` reaches the reply's followers
/// too — live, with the send's number, and from the retained events — and a follower's
/// stream ends with it.
#[tokio::test]
async fn a_follower_gets_the_title_that_follows_done() {
    let llm =
        ScriptedLlm::replying(&["Hel", "lo"]).with_delay(std::time::Duration::from_millis(200));
    let app = spawn_scripted(llm, &[]).await;
    let conversation = conversation(&app).await;
    let mut send = app
        .open_stream(ALICE, conversation.id, "Tides of the Atlantic")
        .await;
    let mut sent = read(&mut send, 2).await;
    let follower = follow_stream(&app, conversation.id, None).await;
    let (followed, followed_titles) = follower.rest_with_titles().await;
    let (rest, titles) = send.rest_with_titles().await;
    sent.extend(rest);
    assert_eq!(sent.last().map(|f| f.event.as_str()), Some("done"));
    assert_eq!(followed, sent, "the follower got every event of the reply");
    assert_eq!(titles.len(), 1, "the send's stream has the title");
    assert_eq!(
        followed_titles, titles,
        "the follower got the same title event"
    );
    let title: api::TitleEvent = titles[0].json();
    assert_eq!(title.title, "Tides of the Atlantic");
    assert_eq!(
        titles[0].id.parse::<u64>().ok(),
        sent.last()
            .and_then(|f| f.id.parse::<u64>().ok())
            .map(|n| n + 1),
        "the title is numbered right after done"
    );

    // Within the retention, a replay ends with the title too.
    let (replayed, replayed_titles) = follow_stream(&app, conversation.id, None)
        .await
        .rest_with_titles()
        .await;
    assert_eq!(replayed, sent);
    assert_eq!(replayed_titles, titles);

    // The second reply writes no title: its followers end with its `done`.
    let mut send = app
        .open_stream(ALICE, conversation.id, "And the moon")
        .await;
    let mut sent = read(&mut send, 2).await;
    let (followed, followed_titles) = follow_stream(&app, conversation.id, None)
        .await
        .rest_with_titles()
        .await;
    sent.extend(send.rest().await);
    assert_eq!(followed, sent);
    assert!(followed_titles.is_empty());
}

/// A title model that fails after `delay`.
struct FailingTitler(std::time::Duration);

#[async_trait::async_trait]
impl confab_core::titles::Titler for FailingTitler {
    async fn title(&self, _first: &str) -> Result<String, confab_core::LlmError> {
        tokio::time::sleep(self.0).await;
        Err(confab_core::LlmError::Upstream {
            status: Some(503),
            code: Some("server_error".to_owned()),
            message: "the title model is down".to_owned(),
        })
    }
}

/// A first reply whose title cannot be written ends with its `done`: a follower that comes
/// back right after `done` (its `Last-Event-ID`), while the title is still being tried, is
/// told there is nothing more (204), never that the reply was interrupted; one from the
/// start gets the reply's events and an end without an error.
#[tokio::test]
async fn a_follower_back_after_done_of_a_reply_whose_title_failed_is_not_told_interrupted() {
    let app = AppOptions::new()
        .titler(Arc::new(FailingTitler(std::time::Duration::from_millis(
            500,
        ))))
        .spawn()
        .await;
    let conversation = conversation(&app).await;
    let mut send = app
        .open_stream(ALICE, conversation.id, "Rivers of Europe")
        .await;
    let mut sent = Vec::new();
    loop {
        let frame = send.expect_next().await;
        let done = frame.event == "done";
        sent.push(frame);
        if done {
            break;
        }
    }
    let done_id = sent.last().map(|f| f.id.clone()).unwrap_or_default();
    // Right after `done`: the title is still being tried.
    let back = app.follow(ALICE, conversation.id, Some(&done_id)).await;
    assert_eq!(
        back.status(),
        StatusCode::NO_CONTENT,
        "nothing follows done when the title fails"
    );
    let (rest, titles) = send.rest_with_titles().await;
    assert!(rest.is_empty() && titles.is_empty(), "{rest:?} {titles:?}");
    let (replayed, replayed_titles) = follow_stream(&app, conversation.id, None)
        .await
        .rest_with_titles()
        .await;
    assert_eq!(replayed, sent, "the replay is the reply, ending with done");
    assert!(replayed_titles.is_empty());
}
