//! Start-up, restarts, crashes and signals of the real process.

use std::time::{Duration, Instant};

use crate::harness::{
    Client, Events, Scratch, Server, base_env, command, free_port, set, two_replicas,
};

#[tokio::test]
async fn an_invalid_setting_stops_the_start_and_names_the_variable() {
    let dir = Scratch::new("badconfig");
    let mut env = base_env(dir.path(), free_port());
    set(&mut env, "CONFAB_SENDS_PER_MINUTE", "lots");
    let output = command(dir.path(), &env).output().unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("CONFAB_SENDS_PER_MINUTE"), "{stderr}");
}

#[tokio::test]
async fn dev_sign_in_refuses_a_public_address_and_says_why() {
    let dir = Scratch::new("remote");
    let mut env = base_env(dir.path(), free_port());
    set(&mut env, "CONFAB_BIND", &format!("0.0.0.0:{}", free_port()));
    let output = command(dir.path(), &env).output().unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("CONFAB_DEV_AUTH_ALLOW_REMOTE"), "{stderr}");
}

#[tokio::test]
async fn confab_config_prints_settings_with_secrets_masked() {
    let dir = Scratch::new("config");
    let mut env = base_env(dir.path(), free_port());
    set(&mut env, "OPENAI_API_KEY", "sk-test-very-secret");
    let mut cmd = command(dir.path(), &env);
    let output = cmd.arg("config").output().unwrap();
    assert!(output.status.success());
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("CONFAB_LLM = openai"), "{stdout}");
    assert!(!stdout.contains("sk-test-very-secret"), "{stdout}");
    assert!(!stdout.contains("a-fixed-secret"), "{stdout}");
}

#[tokio::test]
async fn data_survives_a_restart_on_sqlite() {
    let dir = Scratch::new("restart");
    let env = base_env(dir.path(), free_port());
    let mut server = Server::start(dir.path(), &env).await;
    let client = Client::sign_in(&server.base, "alice").await;
    let (_, chat) = client.project_and_chat().await;
    let (status, events) = client.send(&chat, "remember me", 100).await;
    assert_eq!(status, 200);
    assert_eq!(events.last().map(|e| e.0.as_str()), Some("done"));
    server.signal("TERM");
    assert!(server.wait_exit(Duration::from_secs(20)).await.success());

    let server = Server::start(dir.path(), &env).await;
    let client = Client::sign_in(&server.base, "alice").await;
    let messages = client.messages(&chat).await;
    assert_eq!(messages.len(), 2);
    assert_eq!(messages[0]["content"], "remember me");
    assert_eq!(messages[1]["status"], "complete");
}

/// The deltas of an open stream as they arrive, each with the time it arrived.
async fn read_deltas(stream: &mut Events, count: usize) -> Vec<(Instant, String)> {
    let mut deltas = Vec::new();
    tokio::time::timeout(Duration::from_secs(60), async {
        while deltas.len() < count {
            let (name, data) = stream.next().await.expect("the stream goes on");
            if name == "delta" {
                deltas.push((Instant::now(), data["text"].as_str().unwrap().to_owned()));
            }
        }
    })
    .await
    .expect("the deltas arrive");
    deltas
}

/// A long message: the echo model repeats it word by word.
fn long_message(words: usize) -> String {
    (0..words).map(|i| format!("word{i} ")).collect()
}

/// The text of the deltas that arrived at or before `by`.
fn text_by(deltas: &[(Instant, String)], by: Instant) -> String {
    deltas
        .iter()
        .filter(|(at, _)| *at <= by)
        .map(|(_, text)| text.as_str())
        .collect()
}

/// How far behind the streamed text the saved text may be: the 2 s between two saves, plus
/// the save's own write and scheduling on a busy machine.
const SAVE_LAG: Duration = Duration::from_millis(2_500);

#[tokio::test]
async fn after_kill_9_on_sqlite_no_reply_is_streaming_once_ready_and_the_text_so_far_is_kept() {
    let dir = Scratch::new("crash");
    let mut env = base_env(dir.path(), free_port());
    set(&mut env, "CONFAB_ECHO_PACE_MS", "100");
    let mut server = Server::start(dir.path(), &env).await;
    let client = Client::sign_in(&server.base, "bob").await;
    let (_, chat) = client.project_and_chat().await;
    let mut stream = client.open_stream(&chat, &long_message(200)).await.unwrap();
    // About 4 s of a 20 s reply: at least one save of the text so far has happened.
    let deltas = read_deltas(&mut stream, 40).await;
    server.signal("KILL");
    let killed = Instant::now();
    server.wait_exit(Duration::from_secs(10)).await;
    let streamed = text_by(&deltas, killed);

    set(&mut env, "CONFAB_ECHO_PACE_MS", "0");
    let server = Server::start(dir.path(), &env).await;
    let client = Client::sign_in(&server.base, "bob").await;
    // Once the server answers, the reply is ended: no waiting for a lease.
    let messages = client.messages(&chat).await;
    assert_eq!(messages[1]["status"], "failed", "{}", messages[1]);
    assert!(
        messages[1]["error"]
            .as_str()
            .unwrap_or_default()
            .to_lowercase()
            .contains("interrupt"),
        "{}",
        messages[1]
    );
    let stored = messages[1]["content"].as_str().unwrap();
    assert!(
        streamed.starts_with(stored),
        "the stored text is what was streamed: {stored:?}"
    );
    let saved_by = text_by(&deltas, killed - SAVE_LAG);
    assert!(
        stored.len() >= saved_by.len() && !stored.is_empty(),
        "the text streamed up to {SAVE_LAG:?} before the kill ({} bytes) is stored; got {} bytes",
        saved_by.len(),
        stored.len()
    );
    // And the conversation goes on at once.
    let (status, events) = client.send(&chat, "are you there?", 100).await;
    assert_eq!(
        status, 200,
        "the crashed reply does not hold the conversation"
    );
    assert_eq!(events.last().map(|e| e.0.as_str()), Some("done"));
    assert_eq!(client.messages(&chat).await.len(), 4);
}

#[tokio::test]
async fn on_postgres_a_killed_processs_reply_is_ended_by_another_processs_sweep_within_10_s() {
    let Some(database) = confab_sql::testing::postgres_database().await else {
        return;
    };
    let dir = Scratch::new("sweep-pg");
    let mut env_a = base_env(dir.path(), free_port());
    set(&mut env_a, "DATABASE_URL", database.url());
    set(&mut env_a, "CONFAB_ECHO_PACE_MS", "100");
    let (mut a, b) = two_replicas(dir.path(), &env_a).await;

    let on_a = Client::sign_in(&a.base, "frank").await;
    let (_, chat) = on_a.project_and_chat().await;
    let mut stream = on_a.open_stream(&chat, &long_message(200)).await.unwrap();
    let deltas = read_deltas(&mut stream, 30).await;
    a.signal("KILL");
    let killed = Instant::now();
    a.wait_exit(Duration::from_secs(10)).await;
    let streamed = text_by(&deltas, killed);

    let on_b = Client::sign_in(&b.base, "frank").await;
    let reply = loop {
        let messages = on_b.messages(&chat).await;
        if messages[1]["status"] != "streaming" {
            break messages[1].clone();
        }
        assert!(
            killed.elapsed() < Duration::from_secs(15),
            "the reply is still streaming {:?} after the kill",
            killed.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let ended_after = killed.elapsed();
    assert_eq!(reply["status"], "failed", "{reply}");
    assert_eq!(reply["error"], "interrupted", "{reply}");
    assert!(
        ended_after <= Duration::from_secs(10),
        "the sweep took {ended_after:?}"
    );
    let stored = reply["content"].as_str().unwrap();
    assert!(
        !stored.is_empty() && streamed.starts_with(stored),
        "{reply}"
    );
    assert!(
        stored.len() >= text_by(&deltas, killed - SAVE_LAG).len(),
        "{reply}"
    );
    // B takes the conversation on at once.
    let (status, events) = on_b.send(&chat, "still there?", 1_000).await;
    assert_eq!(status, 200);
    assert_eq!(events.last().map(|e| e.0.as_str()), Some("done"));
}

#[tokio::test]
async fn sigterm_with_the_default_grace_stores_a_long_reply_interrupted_before_docker_kills() {
    let dir = Scratch::new("docker-stop");
    let mut env = base_env(dir.path(), free_port());
    // About 60 s for the whole reply: still going when the default grace (8 s) is over.
    set(&mut env, "CONFAB_ECHO_PACE_MS", "300");
    let mut server = Server::start(dir.path(), &env).await;
    let client = Client::sign_in(&server.base, "grace").await;
    let (_, chat) = client.project_and_chat().await;
    let mut stream = client.open_stream(&chat, &long_message(200)).await.unwrap();
    let deltas = read_deltas(&mut stream, 2).await;
    server.signal("TERM");
    let termed = Instant::now();
    let events = stream.collect(1_000).await;
    let status = server.wait_exit(Duration::from_secs(20)).await;
    assert!(
        termed.elapsed() < Duration::from_secs(10),
        "`docker stop` would have killed it: it took {:?}",
        termed.elapsed()
    );
    assert!(status.success());
    let last = events.last().unwrap();
    assert_eq!(last.0, "error", "{events:?}");
    assert_eq!(last.1["code"], "interrupted");
    let streamed: String = deltas
        .iter()
        .map(|(_, t)| t.clone())
        .chain(
            events
                .iter()
                .filter(|e| e.0 == "delta")
                .map(|e| e.1["text"].as_str().unwrap().to_owned()),
        )
        .collect();

    let server = Server::start(dir.path(), &env).await;
    let client = Client::sign_in(&server.base, "grace").await;
    let messages = client.messages(&chat).await;
    assert_eq!(messages[1]["status"], "failed");
    assert_eq!(
        messages[1]["content"].as_str(),
        Some(streamed.as_str()),
        "all the text streamed is stored"
    );
}

#[tokio::test]
async fn sigterm_lets_a_reply_in_flight_finish_and_store() {
    let dir = Scratch::new("sigterm");
    let mut env = base_env(dir.path(), free_port());
    set(&mut env, "CONFAB_ECHO_PACE_MS", "100");
    let mut server = Server::start(dir.path(), &env).await;
    let client = Client::sign_in(&server.base, "carol").await;
    let (_, chat) = client.project_and_chat().await;
    let mut stream = client
        .open_stream(&chat, "please finish this reply")
        .await
        .unwrap();
    // The reply is under way once its first piece has arrived: then stop the server.
    let mut events = stream.until("delta", Duration::from_secs(30)).await;
    server.signal("TERM");
    events.extend(stream.collect(1_000).await);
    assert_eq!(
        events.last().map(|e| e.0.as_str()),
        Some("done"),
        "{events:?}"
    );
    assert_eq!(events.last().unwrap().1["status"], "complete");
    assert!(server.wait_exit(Duration::from_secs(20)).await.success());
}

#[tokio::test]
async fn sigterm_past_the_grace_period_stores_the_reply_as_failed() {
    let dir = Scratch::new("grace");
    let mut env = base_env(dir.path(), free_port());
    // About 20 s for the whole reply: far longer than the signal takes to arrive.
    set(&mut env, "CONFAB_ECHO_PACE_MS", "1000");
    set(&mut env, "CONFAB_SHUTDOWN_GRACE_SECS", "0");
    let mut server = Server::start(dir.path(), &env).await;
    let client = Client::sign_in(&server.base, "dave").await;
    let (_, chat) = client.project_and_chat().await;
    let mut stream = client
        .open_stream(&chat, "a long answer please")
        .await
        .unwrap();
    // The reply is under way once its first piece has arrived; the other pieces come every
    // second, so it is still being generated when the grace period (none) is over.
    let mut events = stream.until("delta", Duration::from_secs(30)).await;
    server.signal("TERM");
    events.extend(stream.collect(1_000).await);
    let last = events.last().unwrap();
    assert_eq!(last.0, "error", "{events:?}");
    assert_eq!(last.1["code"], "interrupted");
    assert!(server.wait_exit(Duration::from_secs(20)).await.success());

    let server = Server::start(dir.path(), &env).await;
    let client = Client::sign_in(&server.base, "dave").await;
    let messages = client.messages(&chat).await;
    assert_eq!(messages[1]["status"], "failed");
}

#[tokio::test]
async fn data_survives_a_restart_on_postgres() {
    let Some(database) = confab_sql::testing::postgres_database().await else {
        return;
    };
    let dir = Scratch::new("restart-pg");
    let mut env = base_env(dir.path(), free_port());
    set(&mut env, "DATABASE_URL", database.url());
    let migrate = command(dir.path(), &env).arg("migrate").output().unwrap();
    assert!(
        migrate.status.success(),
        "{}",
        String::from_utf8_lossy(&migrate.stderr)
    );

    let mut server = Server::start(dir.path(), &env).await;
    let client = Client::sign_in(&server.base, "erin").await;
    let (_, chat) = client.project_and_chat().await;
    let (status, events) = client.send(&chat, "kept in postgres", 100).await;
    assert_eq!(status, 200);
    assert_eq!(events.last().map(|e| e.0.as_str()), Some("done"));
    server.signal("TERM");
    assert!(server.wait_exit(Duration::from_secs(20)).await.success());

    let server = Server::start(dir.path(), &env).await;
    let client = Client::sign_in(&server.base, "erin").await;
    let messages = client.messages(&chat).await;
    assert_eq!(messages.len(), 2);
    assert_eq!(messages[0]["content"], "kept in postgres");
    assert!(server.logs().contains("postgres"), "{}", server.logs());
}

/// A second `confab` started by mistake on the same address and SQLite file stops at the
/// taken address, before its start-up sweep (which on SQLite ends every `streaming` reply)
/// could end the reply the first one is generating.
#[tokio::test]
async fn a_second_process_on_the_same_address_leaves_the_first_ones_reply_alone() {
    let dir = Scratch::new("second");
    let mut env = base_env(dir.path(), free_port());
    set(&mut env, "CONFAB_ECHO_PACE_MS", "50");
    let server = Server::start(dir.path(), &env).await;
    let client = Client::sign_in(&server.base, "erin").await;
    let (_, chat) = client.project_and_chat().await;
    let mut stream = client
        .open_stream(&chat, "one two three four five six")
        .await
        .unwrap();
    let mut events = stream.until("delta", Duration::from_secs(30)).await;
    let second = tokio::task::spawn_blocking({
        let mut cmd = command(dir.path(), &env);
        move || cmd.output().unwrap()
    })
    .await
    .unwrap();
    assert!(!second.status.success(), "the second process exits");
    let said = String::from_utf8_lossy(&second.stderr);
    assert!(said.contains("cannot listen"), "{said}");
    events.extend(stream.collect(1_000).await);
    let last = events.last().unwrap();
    assert_eq!(last.0, "done", "{events:?}");
    assert_eq!(last.1["status"], "complete");
}
