//! The chat stream: the event sequence and its headers, what the provider is sent, replies
//! that outlive their client, cancel, provider failures, timeouts, 409 and 429, and a
//! graceful shutdown with a reply in flight.

use std::time::Duration;

use confab_api_types as api;
use confab_core::error::LlmError;
use confab_core::model::{MessageStatus, Role};
use confab_memory::{Script, ScriptedLlm};
use confab_tests::http::{
    ALICE, Answer, AppOptions, TestApp, bearer, deltas_text, eventually, spawn_app, spawn_scripted,
};
use serde_json::{Value, json};
use tokio::io::AsyncWriteExt;
use uuid::Uuid;

/// A project and a conversation of Alice's.
/// Sends a message as Alice over a raw connection and reads nothing of the answer.
async fn send_without_reading(
    app: &TestApp,
    conversation: Uuid,
    content: &str,
) -> tokio::net::TcpStream {
    let body = json!({ "content": content }).to_string();
    let request = format!(
        "POST /api/conversations/{conversation}/messages HTTP/1.1\r\nhost: {}\r\n\
         authorization: {}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
        app.addr,
        bearer(ALICE),
        body.len()
    );
    let mut socket = tokio::net::TcpStream::connect(app.addr).await.unwrap();
    socket.write_all(request.as_bytes()).await.unwrap();
    socket
}

async fn conversation(app: &TestApp) -> (api::Project, api::Conversation) {
    let project = app.new_project(ALICE, "Chat").await;
    let conversation = app.new_conversation(ALICE, project.id).await;
    (project, conversation)
}

fn upstream_error() -> LlmError {
    LlmError::Upstream {
        status: Some(500),
        code: Some("server_error".to_owned()),
        message: "the upstream broke".to_owned(),
    }
}

#[tokio::test]
async fn a_send_streams_user_message_assistant_message_deltas_and_done_with_increasing_ids() {
    let app = spawn_scripted(ScriptedLlm::replying(&["Hel", "lo", " world"]), &[]).await;
    let (_, conversation) = conversation(&app).await;
    let reply = app.send(ALICE, conversation.id, "Hi there").await;

    let header = |name: &str| reply.headers.get(name).and_then(|v| v.to_str().ok());
    assert!(
        header("content-type")
            .unwrap_or_default()
            .starts_with("text/event-stream"),
        "{:?}",
        reply.headers
    );
    assert_eq!(header("cache-control"), Some("no-cache"));
    assert_eq!(header("x-accel-buffering"), Some("no"));

    assert_eq!(
        reply.names(),
        [
            "user_message",
            "assistant_message",
            "delta",
            "delta",
            "delta",
            "done"
        ]
    );
    let ids: Vec<&str> = reply.frames.iter().map(|f| f.id.as_str()).collect();
    assert_eq!(ids, ["1", "2", "3", "4", "5", "6"]);

    let user: Value = reply.frames[0].value();
    assert_eq!(user["role"], "user");
    assert_eq!(user["status"], "complete");
    assert_eq!(user["content"], "Hi there");
    assert_eq!(user["conversation_id"], conversation.id.to_string());
    assert_eq!(user["model"], Value::Null);
    assert_eq!(user["usage"], Value::Null);
    assert_eq!(user["error"], Value::Null);

    let pending: api::Message = reply.frames[1].json();
    assert_eq!(pending.role, api::Role::Assistant);
    assert_eq!(pending.status, api::MessageStatus::Streaming);
    assert_eq!(pending.content, "");
    assert_eq!(pending.conversation_id, conversation.id);

    let texts: Vec<String> = reply.frames[2..5]
        .iter()
        .map(|f| {
            let delta: api::Delta = f.json();
            assert_eq!(delta.message_id, pending.id, "deltas name the reply");
            delta.text
        })
        .collect();
    assert_eq!(texts, ["Hel", "lo", " world"]);

    let done = reply.done();
    assert_eq!(done.id, pending.id);
    assert_eq!(done.status, api::MessageStatus::Complete);
    assert_eq!(done.content, "Hello world");
    assert_eq!(reply.text(), done.content, "the deltas make up the content");
    assert_eq!(done.model.as_deref(), Some(ScriptedLlm::DEFAULT_MODEL));
    assert_eq!(
        done.usage,
        Some(api::Usage {
            input_tokens: 10,
            output_tokens: 3
        })
    );
    assert_eq!(done.error, None);

    // What is stored is what was streamed (the branch read adds each message's versions).
    let mut page: api::Page<api::Message> =
        app.list_messages(ALICE, conversation.id, "").await.ok(200);
    assert_eq!(page.items.len(), 2);
    for item in &mut page.items {
        assert_eq!(item.sibling_ids.take(), Some(vec![item.id]));
    }
    assert_eq!(page.items[0], reply.frames[0].json::<api::Message>());
    assert_eq!(page.items[1], done);
}

#[tokio::test]
async fn the_echo_models_deltas_make_up_exactly_the_stored_reply() {
    let app = spawn_app().await;
    let (_, conversation) = conversation(&app).await;
    let reply = app.send(ALICE, conversation.id, "Tell me something").await;
    let done = reply.done();
    assert!(reply.names().iter().filter(|n| **n == "delta").count() > 3);
    assert_eq!(reply.text(), done.content);
    assert!(
        done.content.contains("Tell me something"),
        "{}",
        done.content
    );
    let stored = app.stored_messages(ALICE, conversation.id).await;
    assert_eq!(stored.len(), 2);
    assert_eq!(stored[1].content, done.content);
    assert_eq!(stored[1].status, MessageStatus::Complete);
}

#[tokio::test]
async fn the_provider_gets_the_active_prompt_as_instructions_and_the_history_in_order() {
    let app = spawn_scripted(ScriptedLlm::replying(&["Sure", "."]), &[]).await;
    let (project, conversation) = conversation(&app).await;
    app.new_prompt(ALICE, project.id, "Be brief.", true).await;
    app.new_prompt(ALICE, project.id, "Not this one.", false)
        .await;

    app.send(ALICE, conversation.id, "First question")
        .await
        .done();
    app.send(ALICE, conversation.id, "Second question")
        .await
        .done();

    let requests = app.scripted().requests();
    assert_eq!(requests.len(), 2);
    for request in &requests {
        assert_eq!(request.instructions.as_deref(), Some("Be brief."));
        assert_eq!(request.model, ScriptedLlm::DEFAULT_MODEL);
    }
    let turns = |i: usize| -> Vec<(Role, String)> {
        requests[i]
            .messages
            .iter()
            .map(|m| (m.role, m.content.clone()))
            .collect()
    };
    assert_eq!(turns(0), [(Role::User, "First question".to_owned())]);
    assert_eq!(
        turns(1),
        [
            (Role::User, "First question".to_owned()),
            (Role::Assistant, "Sure.".to_owned()),
            (Role::User, "Second question".to_owned()),
        ]
    );
}

#[tokio::test]
async fn without_an_active_prompt_the_provider_gets_no_instructions() {
    let app = spawn_scripted(ScriptedLlm::replying(&["ok"]), &[]).await;
    let (project, conversation) = conversation(&app).await;
    app.new_prompt(ALICE, project.id, "stored inactive", false)
        .await;
    app.send(ALICE, conversation.id, "hi").await.done();
    assert_eq!(app.scripted().requests()[0].instructions, None);
}

#[tokio::test]
async fn failed_replies_with_text_are_sent_as_history_and_empty_ones_are_left_out() {
    let llm = ScriptedLlm::sequence(vec![
        Script::failing_after(&[], upstream_error()),
        Script::failing_after(&["half ", "done"], LlmError::Truncated),
        Script::replying(&["fine"]),
    ]);
    let app = spawn_scripted(llm, &[]).await;
    let (_, conversation) = conversation(&app).await;
    assert_eq!(
        app.send(ALICE, conversation.id, "one").await.last().event,
        "error"
    );
    assert_eq!(
        app.send(ALICE, conversation.id, "two").await.last().event,
        "error"
    );
    app.send(ALICE, conversation.id, "three").await.done();
    let request = &app.scripted().requests()[2];
    let turns: Vec<(Role, &str)> = request
        .messages
        .iter()
        .map(|m| (m.role, m.content.as_str()))
        .collect();
    assert_eq!(
        turns,
        [
            (Role::User, "one"),
            (Role::User, "two"),
            (Role::Assistant, "half done"),
            (Role::User, "three"),
        ]
    );
}

#[tokio::test]
async fn a_client_that_disconnects_after_the_second_delta_still_gets_the_whole_reply_stored() {
    let deltas = ["one ", "two ", "three ", "four ", "five ", "six"];
    let llm = ScriptedLlm::replying(&deltas).with_delay(Duration::from_millis(25));
    let app = spawn_scripted(llm, &[]).await;
    let (_, conversation) = conversation(&app).await;

    let stream = app.open_stream(ALICE, conversation.id, "count").await;
    let frames = stream.take(4).await; // user_message, assistant_message, delta, delta; then gone
    let names: Vec<&str> = frames.iter().map(|f| f.event.as_str()).collect();
    assert_eq!(
        names,
        ["user_message", "assistant_message", "delta", "delta"]
    );
    assert_eq!(deltas_text(&frames), "one two ");
    let reply_id = frames[1].json::<api::Message>().id;

    let stored = app
        .stored_message_when(
            ALICE,
            conversation.id,
            reply_id,
            "the reply is stored complete",
            |m| m.status != MessageStatus::Streaming,
        )
        .await;
    assert_eq!(stored.status, MessageStatus::Complete);
    assert_eq!(stored.content, deltas.concat());
    assert_eq!(
        app.scripted().streams_dropped_early(),
        0,
        "generation was not stopped"
    );
    assert_eq!(app.scripted().streams_finished(), 1);

    // And the API shows it too.
    let page: api::Page<api::Message> = app.list_messages(ALICE, conversation.id, "").await.ok(200);
    assert_eq!(page.items[1].content, deltas.concat());
    assert_eq!(page.items[1].status, api::MessageStatus::Complete);
}

#[tokio::test]
async fn a_client_that_goes_away_before_the_answer_still_gets_its_reply_generated_and_stored() {
    // The prompt is read beside the turn's transaction: while it takes its time, the turn is
    // stored and the client goes away, which makes actix drop the request's handler.
    let app = AppOptions::new()
        .slow_prompt_reads(Duration::from_millis(500))
        .spawn()
        .await;
    let (_, conversation) = conversation(&app).await;
    let socket = send_without_reading(&app, conversation.id, "are you there?").await;
    eventually("the turn is stored", || async {
        (app.stored_messages(ALICE, conversation.id).await.len() == 2).then_some(())
    })
    .await;
    drop(socket);

    let reply = eventually("the reply is stored finished", || async {
        app.stored_messages(ALICE, conversation.id)
            .await
            .into_iter()
            .find(|m| m.role == Role::Assistant && m.status != MessageStatus::Streaming)
    })
    .await;
    assert_eq!(reply.status, MessageStatus::Complete, "{reply:?}");
    assert!(
        !reply.content.is_empty(),
        "the echo model's reply was stored"
    );
}

#[tokio::test]
async fn a_client_that_stops_reading_is_let_go_and_the_reply_is_still_stored_whole() {
    // About 24 MB of deltas: more than the sockets' buffers and the relay's channel hold, so a
    // client that never reads holds the relay up until the server lets it go (after 10 s).
    let piece = "x".repeat(4096);
    let deltas = vec![piece.as_str(); 6_000];
    let app = spawn_scripted(ScriptedLlm::replying(&deltas), &[]).await;
    let (_, conversation) = conversation(&app).await;
    let socket = send_without_reading(&app, conversation.id, "write a lot").await;
    // The socket stays open and unread.
    tokio::time::sleep(Duration::from_secs(6)).await;

    let reply = eventually("the reply is stored complete", || async {
        app.stored_messages(ALICE, conversation.id)
            .await
            .into_iter()
            .find(|m| m.role == Role::Assistant && m.status == MessageStatus::Complete)
    })
    .await;
    assert_eq!(reply.content.len(), deltas.len() * piece.len());
    assert_eq!(app.scripted().streams_dropped_early(), 0);
    drop(socket);
}

#[tokio::test]
async fn cancel_answers_202_and_the_stream_ends_with_done_cancelled_and_the_text_so_far() {
    let app = spawn_scripted(ScriptedLlm::hanging_after(&["Hel", "lo"]), &[]).await;
    let (_, conversation) = conversation(&app).await;
    let mut stream = app.open_stream(ALICE, conversation.id, "Go on").await;
    let mut frames = Vec::new();
    for _ in 0..4 {
        frames.push(stream.expect_next().await);
    }
    assert_eq!(deltas_text(&frames), "Hello");

    let answer = app.cancel(ALICE, conversation.id).await;
    answer.assert_status(202);

    frames.extend(stream.rest().await);
    let names: Vec<&str> = frames.iter().map(|f| f.event.as_str()).collect();
    assert_eq!(
        names,
        [
            "user_message",
            "assistant_message",
            "delta",
            "delta",
            "done"
        ]
    );
    let ids: Vec<&str> = frames.iter().map(|f| f.id.as_str()).collect();
    assert_eq!(ids, ["1", "2", "3", "4", "5"]);
    let done: api::Message = frames[4].json();
    assert_eq!(done.status, api::MessageStatus::Cancelled);
    assert_eq!(done.content, "Hello");

    let stored = app.stored_messages(ALICE, conversation.id).await;
    assert_eq!(stored[1].status, MessageStatus::Cancelled);
    assert_eq!(stored[1].content, "Hello");
    assert_eq!(
        app.scripted().streams_dropped_early(),
        1,
        "the provider call was aborted"
    );

    // Nothing is being generated any more.
    app.cancel(ALICE, conversation.id)
        .await
        .problem(409, "conflict");
}

#[tokio::test]
async fn cancel_with_nothing_being_generated_is_409() {
    let app = spawn_app().await;
    let (_, conversation) = conversation(&app).await;
    app.cancel(ALICE, conversation.id)
        .await
        .problem(409, "conflict");
    app.send(ALICE, conversation.id, "hi").await.done();
    app.cancel(ALICE, conversation.id)
        .await
        .problem(409, "conflict");
}

#[tokio::test]
async fn a_send_while_a_reply_is_streaming_is_409_and_stores_nothing() {
    let app = spawn_scripted(ScriptedLlm::hanging_after(&["thinking"]), &[]).await;
    let (_, conversation) = conversation(&app).await;
    let mut stream = app.open_stream(ALICE, conversation.id, "first").await;
    stream.until("delta").await;

    let second = Answer::read(
        app.send_message(ALICE, conversation.id, &json!({ "content": "second" }))
            .await,
    )
    .await;
    second.problem(409, "conflict");
    assert_eq!(app.stored_messages(ALICE, conversation.id).await.len(), 2);
    assert_eq!(app.scripted().streams_started(), 1);

    // Another conversation is not blocked.
    let project = app.new_project(ALICE, "Other").await;
    let other = app.new_conversation(ALICE, project.id).await;
    let mut other_stream = app.open_stream(ALICE, other.id, "elsewhere").await;
    other_stream.until("delta").await;

    for id in [conversation.id, other.id] {
        app.cancel(ALICE, id).await.assert_status(202);
    }
    assert_eq!(stream.rest().await.last().unwrap().event, "done");
    assert_eq!(other_stream.rest().await.last().unwrap().event, "done");
}

#[tokio::test]
async fn a_repeated_client_message_id_is_409() {
    let app = spawn_app().await;
    let (_, conversation) = conversation(&app).await;
    let id = Uuid::now_v7();
    let body = json!({ "content": "once", "client_message_id": id });
    let first = app.send_message(ALICE, conversation.id, &body).await;
    let frames = confab_tests::http::SseStream::new(first).rest().await;
    let user: api::Message = frames[0].json();
    assert_eq!(user.content, "once");

    let again = Answer::read(app.send_message(ALICE, conversation.id, &body).await).await;
    again.problem(409, "conflict");
    let retried = Answer::read(
        app.send_message(
            ALICE,
            conversation.id,
            &json!({ "content": "different text", "client_message_id": id }),
        )
        .await,
    )
    .await;
    retried.problem(409, "conflict");
    assert_eq!(app.stored_messages(ALICE, conversation.id).await.len(), 2);

    // Another id is a new message.
    let fresh = json!({ "content": "twice", "client_message_id": Uuid::now_v7() });
    let stream =
        confab_tests::http::SseStream::new(app.send_message(ALICE, conversation.id, &fresh).await);
    assert_eq!(stream.rest().await.last().unwrap().event, "done");
    assert_eq!(app.stored_messages(ALICE, conversation.id).await.len(), 4);
}

#[tokio::test]
async fn a_provider_failure_before_the_first_token_ends_with_an_error_event_and_a_failed_reply() {
    let app = spawn_scripted(ScriptedLlm::failing_after(&[], upstream_error()), &[]).await;
    let (_, conversation) = conversation(&app).await;
    let reply = app.send(ALICE, conversation.id, "Hello?").await;
    assert_eq!(
        reply.names(),
        ["user_message", "assistant_message", "error"]
    );
    let ids: Vec<&str> = reply.frames.iter().map(|f| f.id.as_str()).collect();
    assert_eq!(ids, ["1", "2", "3"]);
    let error: api::StreamError = reply.last().json();
    assert_eq!(error.message_id, reply.reply_id());
    assert_eq!(error.code, "upstream_error");
    assert!(
        !error.detail.trim().is_empty(),
        "the detail is a sentence for a person"
    );

    let stored = app.stored_messages(ALICE, conversation.id).await;
    assert_eq!(stored.len(), 2);
    assert_eq!(stored[0].role, Role::User);
    assert_eq!(stored[0].status, MessageStatus::Complete);
    assert_eq!(stored[0].content, "Hello?");
    assert_eq!(stored[1].id.as_uuid(), error.message_id);
    assert_eq!(stored[1].status, MessageStatus::Failed);
    assert_eq!(stored[1].content, "");
    assert!(stored[1].error.is_some());

    let page: Value = app.list_messages(ALICE, conversation.id, "").await.ok(200);
    assert_eq!(page["items"][1]["status"], "failed");
    assert!(page["items"][1]["error"].is_string());
}

#[tokio::test]
async fn a_provider_failure_after_two_deltas_stores_a_failed_reply_with_their_text() {
    let llm = ScriptedLlm::failing_after(
        &["Partial ", "answer"],
        LlmError::Timeout("idle".to_owned()),
    );
    let app = spawn_scripted(llm, &[]).await;
    let (_, conversation) = conversation(&app).await;
    let reply = app.send(ALICE, conversation.id, "Explain").await;
    assert_eq!(
        reply.names(),
        [
            "user_message",
            "assistant_message",
            "delta",
            "delta",
            "error"
        ]
    );
    let error: api::StreamError = reply.last().json();
    assert_eq!(error.code, "timeout");
    assert!(!error.detail.is_empty());
    assert_eq!(reply.text(), "Partial answer");
    let stored = app.stored_messages(ALICE, conversation.id).await;
    assert_eq!(stored[1].status, MessageStatus::Failed);
    assert_eq!(stored[1].content, "Partial answer");
}

#[tokio::test]
async fn a_rate_limited_provider_is_reported_as_rate_limited() {
    let llm = ScriptedLlm::failing_after(
        &[],
        LlmError::RateLimited {
            retry_after: Some(Duration::from_secs(3)),
        },
    );
    let app = spawn_scripted(llm, &[]).await;
    let (_, conversation) = conversation(&app).await;
    let reply = app.send(ALICE, conversation.id, "hi").await;
    let error: api::StreamError = reply.last().json();
    assert_eq!(error.code, "rate_limited");
}

#[tokio::test]
async fn a_generation_over_the_time_limit_ends_with_a_timeout_error() {
    let app = spawn_scripted(
        ScriptedLlm::hanging_after(&["slow"]),
        &[("CONFAB_LLM_TIMEOUT_SECS", "1")],
    )
    .await;
    let (_, conversation) = conversation(&app).await;
    let reply = app.send(ALICE, conversation.id, "hi").await;
    assert_eq!(reply.last().event, "error");
    let error: api::StreamError = reply.last().json();
    assert_eq!(error.code, "timeout");
    let stored = app.stored_messages(ALICE, conversation.id).await;
    assert_eq!(stored[1].status, MessageStatus::Failed);
    assert_eq!(stored[1].content, "slow");
}

#[tokio::test]
async fn sends_past_the_per_minute_limit_are_429_with_retry_after() {
    let app = spawn_app_with_limit(2).await;
    let (_, conversation) = conversation(&app).await;
    app.send(ALICE, conversation.id, "one").await.done();
    app.send(ALICE, conversation.id, "two").await.done();

    let answer = Answer::read(
        app.send_message(ALICE, conversation.id, &json!({ "content": "three" }))
            .await,
    )
    .await;
    answer.problem(429, "rate_limited");
    let retry_after: u64 = answer
        .header("retry-after")
        .expect("a Retry-After header")
        .parse()
        .expect("whole seconds");
    assert!((1..=60).contains(&retry_after), "Retry-After {retry_after}");
    assert_eq!(
        app.stored_messages(ALICE, conversation.id).await.len(),
        4,
        "the refused send stored nothing"
    );

    // The limit is per user.
    let bob_project = app.new_project(confab_tests::http::BOB, "Bob").await;
    let bob_conversation = app
        .new_conversation(confab_tests::http::BOB, bob_project.id)
        .await;
    app.send(confab_tests::http::BOB, bob_conversation.id, "hi")
        .await
        .done();
}

async fn spawn_app_with_limit(per_minute: u32) -> TestApp {
    let limit = per_minute.to_string();
    confab_tests::http::AppOptions::new()
        .setting("CONFAB_SENDS_PER_MINUTE", &limit)
        .spawn()
        .await
}

#[tokio::test]
async fn refused_sends_do_not_count_toward_the_limit() {
    let app = spawn_app_with_limit(2).await;
    let (_, conversation) = conversation(&app).await;
    let id = Uuid::now_v7();
    let first = app
        .send_message(
            ALICE,
            conversation.id,
            &json!({ "content": "one", "client_message_id": id }),
        )
        .await;
    confab_tests::http::SseStream::new(first).rest().await;

    let refused = [
        (json!({ "content": "   " }), conversation.id, 422),
        (json!({ "content": 5 }), conversation.id, 422),
        (json!({ "content": "hi" }), Uuid::now_v7(), 404),
        (
            json!({ "content": "again", "client_message_id": id }),
            conversation.id,
            409,
        ),
        (
            json!({ "content": "again", "client_message_id": id }),
            conversation.id,
            409,
        ),
    ];
    for (body, target, status) in &refused {
        let answer = Answer::read(app.send_message(ALICE, target, body).await).await;
        assert_eq!(answer.status.as_u16(), *status, "{body}: {}", answer.text());
    }

    app.send(ALICE, conversation.id, "two").await.done();
    Answer::read(
        app.send_message(ALICE, conversation.id, &json!({ "content": "three" }))
            .await,
    )
    .await
    .problem(429, "rate_limited");
}

#[tokio::test]
async fn a_streaming_reply_is_409_before_the_rate_limit_is_429() {
    let llm = ScriptedLlm::hanging_after(&["..."]);
    let app = spawn_scripted(llm, &[("CONFAB_SENDS_PER_MINUTE", "1")]).await;
    let (project, busy) = conversation(&app).await;
    let idle = app.new_conversation(ALICE, project.id).await;
    let mut stream = app.open_stream(ALICE, busy.id, "first").await;
    stream.until("delta").await;

    Answer::read(
        app.send_message(ALICE, busy.id, &json!({ "content": "x" }))
            .await,
    )
    .await
    .problem(409, "conflict");
    Answer::read(
        app.send_message(ALICE, idle.id, &json!({ "content": "x" }))
            .await,
    )
    .await
    .problem(429, "rate_limited");
    app.cancel(ALICE, busy.id).await.assert_status(202);
    stream.rest().await;
}

#[tokio::test]
async fn a_graceful_shutdown_stores_a_reply_in_flight_as_failed_and_ends_its_stream_with_an_error()
{
    let mut app = spawn_scripted(ScriptedLlm::hanging_after(&["partial ", "text"]), &[]).await;
    let (_, conversation) = conversation(&app).await;
    let mut stream = app
        .open_stream(ALICE, conversation.id, "Long answer please")
        .await;
    let mut frames = Vec::new();
    for _ in 0..4 {
        frames.push(stream.expect_next().await);
    }
    let reply_id = frames[1].json::<api::Message>().id;

    let url = app.url("/healthz");
    let client = app.client.clone();
    let (rest, ()) = tokio::join!(stream.rest(), app.shutdown(Duration::from_millis(100)));
    frames.extend(rest);

    let last = frames.last().unwrap();
    assert_eq!(last.event, "error", "{frames:?}");
    let error: api::StreamError = last.json();
    assert_eq!(error.code, "interrupted");
    assert_eq!(error.message_id, reply_id);
    assert!(!error.detail.is_empty());
    assert_eq!(deltas_text(&frames), "partial text");

    let stored = app.stored_messages(ALICE, conversation.id).await;
    assert_eq!(stored[1].status, MessageStatus::Failed);
    assert_eq!(stored[1].content, "partial text");
    assert!(stored[1].error.is_some());
    assert!(
        client.get(url).send().await.is_err(),
        "the server no longer answers"
    );
}

#[tokio::test]
async fn the_stream_is_not_compressed_even_for_a_client_that_accepts_gzip() {
    let app = spawn_scripted(ScriptedLlm::replying(&["plain ", "text"]), &[]).await;
    let (_, conversation) = conversation(&app).await;
    let response = app
        .request(
            reqwest::Method::POST,
            &format!("/api/conversations/{}/messages", conversation.id),
            Some(ALICE),
        )
        .header("Accept-Encoding", "gzip, br")
        .json(&json!({ "content": "hi" }))
        .send()
        .await
        .unwrap();
    let encoding = response
        .headers()
        .get("content-encoding")
        .map(|v| v.to_str().unwrap().to_owned());
    assert!(
        encoding.is_none() || encoding.as_deref() == Some("identity"),
        "events must reach the client as they are written: {encoding:?}"
    );
    let frames = confab_tests::http::SseStream::new(response).rest().await;
    assert_eq!(deltas_text(&frames), "plain text");
}
