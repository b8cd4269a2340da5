//! Two `confab` processes on one PostgreSQL database and one Redis (issue 15): a reply sent
//! on A is followed on B, from the start and from a `Last-Event-ID` in the middle, with the
//! same events; a cancel sent to B stops A's reply.
//!
//! Needs PostgreSQL (`TEST_DATABASE_URL`) and Redis (`TEST_REDIS_URL`, default
//! `redis://127.0.0.1:6379`): outside CI a missing one skips the test loudly, with `CI` set
//! it fails.

use std::time::{Duration, Instant};

use confab_core::live::LiveOptions;
use serde_json::Value;

use crate::harness::{Client, Events, Scratch, Server, base_env, free_port, set, two_replicas};

/// The longest wait for one event before the test fails (a safety net only).
const PATIENCE: Duration = Duration::from_secs(30);

fn test_redis_url() -> String {
    std::env::var("TEST_REDIS_URL")
        .ok()
        .filter(|url| !url.is_empty())
        .unwrap_or_else(|| "redis://127.0.0.1:6379".to_owned())
}

/// Whether Redis answers; outside CI a missing Redis skips the test, with `CI` set it fails.
/// A replica's environment on the shared `database` and `redis`, under a key prefix of the
/// test's own.
fn redis_env(dir: &std::path::Path, database: &str, redis: &str) -> Vec<(String, String)> {
    let mut env = base_env(dir, free_port());
    set(&mut env, "DATABASE_URL", database);
    set(&mut env, "CONFAB_REDIS_URL", redis);
    let prefix = format!("confab-test:{}:", uuid::Uuid::now_v7().simple());
    set(&mut env, "CONFAB_REDIS_PREFIX", &prefix);
    env
}

async fn redis_reachable(url: &str) -> bool {
    match confab_redis::RedisLiveReplies::connect(url, "confab-probe:", LiveOptions::default())
        .await
    {
        Ok(_) => true,
        Err(e) => {
            assert!(
                std::env::var_os("CI").is_none(),
                "Redis at {url} is unreachable ({e}), and CI is set: this test must run"
            );
            eprintln!(
                "\n!!! SKIPPED: Redis at {url} is unreachable ({e}).\n\
                 !!! Start Redis or set TEST_REDIS_URL; with CI set this test fails.\n"
            );
            false
        }
    }
}

/// One event as the stream numbers it: (`id`, name, data).
type Numbered = (String, String, Value);

/// Reads `k` events (each within [`PATIENCE`]).
async fn read(events: &mut Events, k: usize) -> Vec<Numbered> {
    let mut out = Vec::with_capacity(k);
    for _ in 0..k {
        let (name, data) = tokio::time::timeout(PATIENCE, events.next())
            .await
            .expect("an event in time")
            .expect("another event before the end of the stream");
        out.push((events.last_id().to_owned(), name, data));
    }
    out
}

/// Reads every remaining event, to the end of the stream.
async fn rest(events: &mut Events) -> Vec<Numbered> {
    let mut out = Vec::new();
    while let Some((name, data)) = tokio::time::timeout(PATIENCE, events.next())
        .await
        .expect("the next event or the end in time")
    {
        out.push((events.last_id().to_owned(), name, data));
    }
    out
}

#[tokio::test]
async fn a_reply_on_one_process_is_followed_and_cancelled_from_another_through_redis() {
    let Some(database) = confab_sql::testing::postgres_database().await else {
        return;
    };
    let redis = test_redis_url();
    if !redis_reachable(&redis).await {
        return;
    }
    let dir = Scratch::new("replicas");
    let mut env_a = redis_env(dir.path(), database.url(), &redis);
    // 200 words at 50 ms: 10 s, far longer than the test needs before its cancel.
    set(&mut env_a, "CONFAB_ECHO_PACE_MS", "50");
    let (a, b) = two_replicas(dir.path(), &env_a).await;
    assert!(
        a.logs().contains("redis"),
        "A logs its live adapter: {}",
        a.logs()
    );

    let on_a = Client::sign_in(&a.base, "grace").await;
    let on_b = Client::sign_in(&b.base, "grace").await;
    let (_, chat) = on_a.project_and_chat().await;
    let words: Vec<String> = (0..200).map(|i| format!("w{i}")).collect();
    let mut sent = on_a.open_stream(&chat, &words.join(" ")).await.unwrap();
    let mut from_a = read(&mut sent, 6).await;

    let mut from_start = on_b.follow(&chat, None).await.unwrap();
    let mut followed = read(&mut from_start, 6).await;
    assert_eq!(followed, from_a, "B from the start gives A's events");

    let middle = from_a[3].0.clone();
    let mut from_middle = on_b.follow(&chat, Some(&middle)).await.unwrap();
    let mut rest_of = read(&mut from_middle, 2).await;
    assert_eq!(rest_of, from_a[4..], "B after id {middle} gives the rest");

    // B generates nothing itself: the cancel reaches A through Redis.
    let (status, _) = on_b
        .post(&format!("/api/conversations/{chat}/cancel"), Value::Null)
        .await;
    assert_eq!(status, 202);

    from_a.extend(rest(&mut sent).await);
    followed.extend(rest(&mut from_start).await);
    rest_of.extend(rest(&mut from_middle).await);
    let (_, last, done) = from_a.last().unwrap();
    assert_eq!(last, "done");
    assert_eq!(done["status"], "cancelled", "{done}");
    assert!(
        from_a.len() < 2 + 200 + 1,
        "the reply was stopped before its end"
    );
    assert_eq!(followed, from_a);
    assert_eq!(rest_of, from_a[4..]);
    let messages = on_b.messages(&chat).await;
    assert_eq!(messages[1]["status"], "cancelled");
}

/// A `redis-server` of this test's own on a loopback port, killed when dropped.
struct PrivateRedis {
    port: u16,
    child: Option<std::process::Child>,
}

impl PrivateRedis {
    /// Starts one on a free port and waits until it answers; `None` (after a loud notice)
    /// without the binary outside CI.
    async fn start() -> Option<Self> {
        let mut redis = Self {
            port: free_port(),
            child: None,
        };
        if redis.restart().await {
            Some(redis)
        } else {
            assert!(
                std::env::var_os("CI").is_none(),
                "redis-server is missing, and CI is set: this test must run"
            );
            eprintln!("\n!!! SKIPPED: no redis-server binary; with CI set this test fails.\n");
            None
        }
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Starts the server (again) on its port, empty, and waits until it answers; `false`
    /// without the binary.
    async fn restart(&mut self) -> bool {
        let Ok(child) = std::process::Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
        else {
            return false;
        };
        self.child = Some(child);
        // The server is up once an adapter connects (a safety net bounds the wait).
        let started = std::time::Instant::now();
        while confab_redis::RedisLiveReplies::connect(&self.url(), "probe:", LiveOptions::default())
            .await
            .is_err()
        {
            assert!(started.elapsed() < PATIENCE, "redis-server did not come up");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        true
    }

    /// Kills the server by its PID.
    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        self.stop();
    }
}

#[tokio::test]
async fn readyz_is_503_while_the_configured_redis_does_not_answer() {
    let Some(mut redis) = PrivateRedis::start().await else {
        return;
    };
    let dir = Scratch::new("readyz-redis");
    let mut env = base_env(dir.path(), free_port());
    set(&mut env, "CONFAB_REDIS_URL", &redis.url());
    let server = Server::start(dir.path(), &env).await;
    let readyz = || async {
        reqwest::get(format!("{}/readyz", server.base))
            .await
            .unwrap()
            .status()
            .as_u16()
    };
    assert_eq!(readyz().await, 200);

    redis.stop();
    assert_eq!(readyz().await, 503, "Redis is gone");
}

/// The text of the `delta` events among `events`.
fn text_of(events: &[Numbered]) -> String {
    events
        .iter()
        .filter(|(_, name, _)| name == "delta")
        .map(|(_, _, data)| data["text"].as_str().unwrap())
        .collect()
}

/// Issue 15: `kill -9` of the replica generating a reply. Its follower on the other replica
/// is told `interrupted` within 10 s (nobody publishes the reply's end: the sweep stores it
/// and the follower reads that), and the stored reply keeps A's text up to at most 2 s
/// before the kill (the lease renewal saves it).
#[tokio::test]
async fn a_follower_is_told_within_10_s_when_the_replica_generating_the_reply_is_killed() {
    let Some(database) = confab_sql::testing::postgres_database().await else {
        return;
    };
    let redis = test_redis_url();
    if !redis_reachable(&redis).await {
        return;
    }
    let dir = Scratch::new("replicas-kill");
    let mut env_a = redis_env(dir.path(), database.url(), &redis);
    // 400 words at 50 ms: 20 s, far longer than the test runs before the kill.
    set(&mut env_a, "CONFAB_ECHO_PACE_MS", "50");
    let (a, b) = two_replicas(dir.path(), &env_a).await;
    let on_a = Client::sign_in(&a.base, "ivan").await;
    let on_b = Client::sign_in(&b.base, "ivan").await;
    let (_, chat) = on_a.project_and_chat().await;
    let words: Vec<String> = (0..400).map(|i| format!("w{i}")).collect();
    let mut sent = on_a.open_stream(&chat, &words.join(" ")).await.unwrap();
    // What A's client has seen, and when: the text so far after each delta.
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::<(Instant, String)>::new()));
    let reader = {
        let seen = std::sync::Arc::clone(&seen);
        tokio::spawn(async move {
            let mut text = String::new();
            while let Some((name, data)) = sent.next().await {
                if name == "delta" {
                    text.push_str(data["text"].as_str().unwrap());
                    seen.lock().unwrap().push((Instant::now(), text.clone()));
                }
            }
        })
    };
    let mut followed = on_b.follow(&chat, None).await.unwrap();
    let mut from_b = read(&mut followed, 2).await;
    // Some seconds of text, so that renewals saved some of it.
    let started = Instant::now();
    while seen.lock().unwrap().len() < 80 {
        assert!(started.elapsed() < PATIENCE, "A streams its reply");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    a.signal("KILL");
    let killed = Instant::now();
    from_b.extend(rest(&mut followed).await);
    let told_after = killed.elapsed();
    let (id, last, error) = from_b.last().unwrap().clone();
    assert_eq!(last, "error", "B's follower ends with an error: {from_b:?}");
    assert_eq!(error["code"], "interrupted", "{error}");
    assert!(
        told_after < Duration::from_secs(10),
        "told after {told_after:?}"
    );
    let previous: u64 = from_b[from_b.len() - 2].0.parse().unwrap();
    assert_eq!(
        id,
        (previous + 1).to_string(),
        "the error has the next event id"
    );
    reader.await.unwrap();

    let seen = seen.lock().unwrap().clone();
    let at_kill = &seen.last().unwrap().1;
    assert!(
        at_kill.starts_with(&text_of(&from_b)),
        "B followed A's text"
    );
    let messages = on_b.messages(&chat).await;
    let stored = &messages[1];
    assert_eq!(stored["status"], "failed", "{stored}");
    assert_eq!(stored["error"], "interrupted", "{stored}");
    let content = stored["content"].as_str().unwrap();
    assert!(
        at_kill.starts_with(content),
        "the stored text is what A sent"
    );
    // What A's client had 2 s (and a margin for a loaded machine) before the kill is stored.
    let two_s_before = seen
        .iter()
        .rev()
        .find(|(at, _)| *at + Duration::from_millis(2_500) <= killed)
        .map(|(_, text)| text.as_str())
        .unwrap_or_default();
    assert!(
        content.len() >= two_s_before.len(),
        "stored {} characters, A's client had {} 2 s before the kill",
        content.len(),
        two_s_before.len()
    );
    eprintln!(
        "killed: B told after {told_after:?}; stored {} of {} characters seen",
        content.len(),
        at_kill.len()
    );
}

/// Issue 15: Redis stopped for 10 s mid-reply, then started again on its port, empty. The
/// reply finishes and is stored on the replica generating it; its follower on the other
/// replica is told `unavailable`; sends work on both replicas meanwhile; afterwards following
/// across replicas works again with no restart.
#[tokio::test]
async fn a_redis_outage_mid_reply_loses_no_reply_and_following_resumes_after_it() {
    let Some(database) = confab_sql::testing::postgres_database().await else {
        return;
    };
    let Some(mut redis) = PrivateRedis::start().await else {
        return;
    };
    let dir = Scratch::new("replicas-redis-outage");
    let mut env_a = base_env(dir.path(), free_port());
    set(&mut env_a, "DATABASE_URL", database.url());
    set(&mut env_a, "CONFAB_ECHO_PACE_MS", "50");
    set(&mut env_a, "CONFAB_REDIS_URL", &redis.url());
    set(&mut env_a, "CONFAB_SENDS_PER_MINUTE", "100");
    let (a, b) = two_replicas(dir.path(), &env_a).await;
    let on_a = Client::sign_in(&a.base, "judy").await;
    let on_b = Client::sign_in(&b.base, "judy").await;
    let (project, chat) = on_a.project_and_chat().await;
    let another_chat = || async {
        let (status, chat) = on_a
            .post(
                &format!("/api/projects/{project}/conversations"),
                serde_json::json!({}),
            )
            .await;
        assert_eq!(status, 201);
        chat["id"].as_str().unwrap().to_owned()
    };
    // 300 words at 50 ms: 15 s, outlasting the outage's start.
    let words: Vec<String> = (0..300).map(|i| format!("w{i}")).collect();
    let mut sent = on_a.open_stream(&chat, &words.join(" ")).await.unwrap();
    let mut from_a = read(&mut sent, 4).await;
    let mut followed = on_b.follow(&chat, None).await.unwrap();
    let mut from_b = read(&mut followed, 4).await;

    redis.stop();
    let stopped = Instant::now();
    from_b.extend(rest(&mut followed).await);
    let (_, last, error) = from_b.last().unwrap();
    assert_eq!(last, "error", "{from_b:?}");
    assert_eq!(error["code"], "unavailable", "{error}");

    // Chatting needs no Redis: a send on each replica is answered and stored.
    for client in [&on_a, &on_b] {
        let chat = another_chat().await;
        let begun = Instant::now();
        let (status, events) = client.send(&chat, "still here", 100).await;
        assert_eq!(status, 200);
        let (name, done) = events.last().unwrap();
        assert_eq!(name, "done", "{events:?}");
        assert_eq!(done["status"], "complete");
        eprintln!("a send during the outage took {:?}", begun.elapsed());
    }

    tokio::time::sleep(Duration::from_secs(10).saturating_sub(stopped.elapsed())).await;
    assert!(redis.restart().await);
    from_a.extend(rest(&mut sent).await);
    let (_, last, done) = from_a.last().unwrap();
    assert_eq!(last, "done", "A's own stream ends normally");
    assert_eq!(done["status"], "complete");
    let stored = &on_b.messages(&chat).await[1];
    assert_eq!(stored["status"], "complete");
    assert_eq!(stored["content"].as_str().unwrap(), text_of(&from_a));

    // Following across replicas works again, with no restart of either.
    let chat = another_chat().await;
    let mut sent = on_a.open_stream(&chat, "back again at last").await.unwrap();
    let mut from_a = read(&mut sent, 2).await;
    let mut followed = on_b.follow(&chat, None).await.unwrap();
    from_a.extend(rest(&mut sent).await);
    let from_b = rest(&mut followed).await;
    assert_eq!(from_b, from_a, "B follows A's reply again");
}

#[tokio::test]
async fn with_redis_the_send_limit_holds_across_processes() {
    let Some(database) = confab_sql::testing::postgres_database().await else {
        return;
    };
    let redis = test_redis_url();
    if !redis_reachable(&redis).await {
        return;
    }
    let dir = Scratch::new("replicas-limit");
    let mut env_a = redis_env(dir.path(), database.url(), &redis);
    set(&mut env_a, "CONFAB_SENDS_PER_MINUTE", "1");
    let (a, b) = two_replicas(dir.path(), &env_a).await;
    let on_a = Client::sign_in(&a.base, "heidi").await;
    let on_b = Client::sign_in(&b.base, "heidi").await;
    let (_, first) = on_a.project_and_chat().await;
    let (_, second) = on_b.project_and_chat().await;
    let (status, _) = on_a.send(&first, "one", 1_000).await;
    assert_eq!(status, 200);
    // The user's one send of the minute was taken on A: B refuses the next.
    let refused = on_b.open_stream(&second, "two").await.err();
    assert_eq!(refused, Some(429), "B counts A's send");
}

/// Issue 19: two processes on one PostgreSQL database send for one user at once. Below the
/// daily quota both sends are accepted (the replies then running are what a quota may be
/// exceeded by); once the usage recorded is at or over it, two sends at once, one on each
/// process, are both refused with 429 `quota_exceeded` — the check reads the usage in the
/// transaction that would store the turn — and store nothing.
#[tokio::test]
async fn two_processes_sending_for_one_user_at_once_at_the_quota_are_both_refused() {
    let Some(database) = confab_sql::testing::postgres_database().await else {
        return;
    };
    let dir = Scratch::new("replicas-quota");
    let mut env = base_env(dir.path(), free_port());
    set(&mut env, "DATABASE_URL", database.url());
    set(&mut env, "CONFAB_QUOTA_TOKENS_PER_DAY", "1");
    // Replies that take a while (50 ms a word), so that both sends below start while the
    // other's reply is still running.
    set(&mut env, "CONFAB_ECHO_PACE_MS", "50");
    let (a, b) = two_replicas(dir.path(), &env).await;
    let on_a = Client::sign_in(&a.base, "quinn").await;
    let on_b = Client::sign_in(&b.base, "quinn").await;
    let (_, first) = on_a.project_and_chat().await;
    let (_, second) = on_b.project_and_chat().await;

    let ((status_a, events_a), (status_b, events_b)) = tokio::join!(
        on_a.send(&first, "Hello from A", 1_000),
        on_b.send(&second, "Hello from B", 1_000),
    );
    assert_eq!(
        (status_a, status_b),
        (200, 200),
        "below the quota both pass"
    );
    for events in [&events_a, &events_b] {
        assert!(
            events.iter().any(|(name, _)| name == "done"),
            "each reply ends: {events:?}"
        );
    }
    // The replies' usage is recorded as they end: wait until both count.
    let started = Instant::now();
    loop {
        let (status, usage) = on_b.get("/api/usage").await;
        assert_eq!(status, 200);
        if usage["groups"][0]["calls"].as_u64() >= Some(2) {
            break;
        }
        assert!(started.elapsed() < PATIENCE, "usage recorded: {usage}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let (path_a, path_b) = (
        format!("/api/conversations/{first}/messages"),
        format!("/api/conversations/{second}/messages"),
    );
    let body = || serde_json::json!({ "content": "one more" });
    let ((status_a, problem_a), (status_b, problem_b)) =
        tokio::join!(on_a.post(&path_a, body()), on_b.post(&path_b, body()),);
    for (status, problem) in [(status_a, &problem_a), (status_b, &problem_b)] {
        assert_eq!(status, 429, "{problem}");
        assert_eq!(problem["code"], "quota_exceeded", "{problem}");
    }
    assert_eq!(on_a.messages(&first).await.len(), 2, "A stored nothing");
    assert_eq!(on_b.messages(&second).await.len(), 2, "B stored nothing");
}
