//! Start-up, restarts, crashes and signals of the real process.

use std::time::{Duration, Instant};

use crate::harness::{Client, Scratch, Server, base_env, command, free_port};

fn set(env: &mut Vec<(String, String)>, key: &str, value: &str) {
    env.retain(|(k, _)| k != key);
    env.push((key.to_owned(), value.to_owned()));
}

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

#[tokio::test]
async fn a_reply_cut_by_a_crash_is_marked_interrupted_and_the_chat_goes_on() {
    let dir = Scratch::new("crash");
    let mut env = base_env(dir.path(), free_port());
    set(&mut env, "CONFAB_ECHO_PACE_MS", "300");
    set(&mut env, "CONFAB_REPLY_LEASE_SECS", "1");
    let mut server = Server::start(dir.path(), &env).await;
    let client = Client::sign_in(&server.base, "bob").await;
    let (_, chat) = client.project_and_chat().await;
    let (status, events) = client.send(&chat, "one two three four five", 3).await;
    assert_eq!(status, 200);
    assert_eq!(events[2].0, "delta");
    server.signal("KILL");
    server.wait_exit(Duration::from_secs(10)).await;

    set(&mut env, "CONFAB_ECHO_PACE_MS", "0");
    let server = Server::start(dir.path(), &env).await;
    let client = Client::sign_in(&server.base, "bob").await;
    let started = Instant::now();
    loop {
        let (status, events) = client.send(&chat, "are you there?", 100).await;
        if status == 200 {
            assert_eq!(events.last().map(|e| e.0.as_str()), Some("done"));
            break;
        }
        assert_eq!(status, 409, "only the lease may hold the conversation");
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the stale reply was never released"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let messages = client.messages(&chat).await;
    assert_eq!(messages[1]["status"], "failed");
    assert!(
        messages[1]["error"]
            .as_str()
            .unwrap_or_default()
            .to_lowercase()
            .contains("interrupt"),
        "{}",
        messages[1]
    );
    assert_eq!(messages.len(), 4);
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
