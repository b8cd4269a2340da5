//! `RedisSendLimiter`: the per-user send limit kept in Redis, so that it holds across every
//! replica: at most N accepted sends per user in any window (a minute in production).
//!
//! The same sliding-window log as `confab-limits`' in-process limiter, as one sorted set per
//! user (`<prefix>sends:{<user>}`) of the instants of the accepted sends, read and changed by
//! one Lua script per call so that concurrent sends from several replicas cannot both take
//! the last place. Time is Redis's own (`TIME`), so replicas with skewed clocks agree.
//!
//! When Redis cannot answer, the call falls back to an in-process limiter of the same
//! allowance: the limit then holds per replica until Redis is back (counted and logged),
//! rather than refusing every send or letting every send through. After a failure the
//! fallback decides alone for a while, one call at a time asking Redis whether it is back,
//! so that a Redis that does not answer at all costs one command timeout, not one per send.
//!
//! It is the server's `SendLimiter` when `CONFAB_REDIS_URL` is set.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use confab_core::ids::UserId;
use confab_core::ports::SendLimiter;
use confab_limits::SlidingWindowLimiter;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{RedisError, Script};

/// The production window: a minute.
const MINUTE: Duration = Duration::from_secs(60);
/// Longest wait for Redis on the send path before the in-process fallback decides.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(3);
/// After a failure, Redis is asked again (by one call) only this long after.
const AWAY: Duration = Duration::from_secs(1);

// Scores are microseconds, written with `%.0f`: Lua would write them with 14 significant
// digits, rounding today's instants to 100 µs.

/// Takes a send: drops the sends that left the window, then either logs this one (answers
/// `{1, 0}`) or answers `{0, microseconds until the oldest send leaves the window}`.
const ACQUIRE: &str = r"
local key = KEYS[1]
local capacity = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
redis.call('ZREMRANGEBYSCORE', key, '-inf', string.format('%.0f', now - window))
if redis.call('ZCARD', key) < capacity then
  redis.call('ZADD', key, string.format('%.0f', now), ARGV[3])
  redis.call('PEXPIRE', key, math.ceil(window / 1000))
  return {1, 0}
end
local oldest = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
return {0, tonumber(oldest[2]) + window - now}
";

/// Gives back the newest send still in the window, if any.
const REFUND: &str = r"
local key = KEYS[1]
local window = tonumber(ARGV[1])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
redis.call('ZREMRANGEBYSCORE', key, '-inf', string.format('%.0f', now - window))
redis.call('ZPOPMAX', key)
return 0
";

/// The per-user send limit of every replica sharing one Redis.
#[derive(Clone)]
pub struct RedisSendLimiter {
    conn: ConnectionManager,
    prefix: String,
    capacity: u32,
    window: Duration,
    acquire: Arc<Script>,
    refund: Arc<Script>,
    fallback: Arc<SlidingWindowLimiter>,
    failures: Arc<AtomicU64>,
    /// Until when the fallback decides without asking Redis (`None`: Redis answers).
    away_until: Arc<Mutex<Option<Instant>>>,
}

impl RedisSendLimiter {
    /// A limiter of `per_minute` sends per user per minute on Redis at `url`, its keys under
    /// `prefix`. With `0`, every send is refused.
    ///
    /// # Errors
    /// When Redis cannot be reached now.
    pub async fn connect(
        url: &str,
        prefix: impl Into<String>,
        per_minute: u32,
    ) -> Result<Self, RedisError> {
        Self::with_window(url, prefix, per_minute, MINUTE).await
    }

    /// The same with another window than a minute (tests use a second). Waits are still
    /// whole seconds, 1–60.
    ///
    /// # Errors
    /// When Redis cannot be reached now.
    pub async fn with_window(
        url: &str,
        prefix: impl Into<String>,
        capacity: u32,
        window: Duration,
    ) -> Result<Self, RedisError> {
        let client = crate::client(url)?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(COMMAND_TIMEOUT))
            .set_response_timeout(Some(COMMAND_TIMEOUT))
            .set_number_of_retries(1);
        let conn = ConnectionManager::new_with_config(client, config).await?;
        Ok(Self {
            conn,
            prefix: prefix.into(),
            capacity,
            window: window.max(Duration::from_millis(1)),
            acquire: Arc::new(Script::new(ACQUIRE)),
            refund: Arc::new(Script::new(REFUND)),
            fallback: Arc::new(SlidingWindowLimiter::new(capacity)),
            failures: Arc::default(),
            away_until: Arc::default(),
        })
    }

    /// Calls that Redis could not answer (the in-process fallback decided them, and decides
    /// alone for a while after each).
    #[must_use]
    pub fn failures(&self) -> u64 {
        self.failures.load(Ordering::Relaxed)
    }

    fn key(&self, user: &UserId) -> String {
        format!("{}sends:{{{user}}}", self.prefix)
    }

    fn window_micros(&self) -> u64 {
        u64::try_from(self.window.as_micros()).unwrap_or(u64::MAX)
    }

    /// Whether this call should leave Redis alone: it failed lately. Once that while is
    /// over, the first call asks it again, and the others wait as long as it may take.
    fn away(&self) -> bool {
        let mut until = self
            .away_until
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        match *until {
            None => false,
            Some(at) if Instant::now() < at => true,
            Some(_) => {
                *until = Some(Instant::now() + COMMAND_TIMEOUT);
                false
            }
        }
    }

    fn answered(&self) {
        let mut until = self
            .away_until
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if until.take().is_some() {
            tracing::info!("send limit: Redis answers again");
        }
    }

    fn failed(&self, what: &str, e: &RedisError) {
        *self
            .away_until
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(Instant::now() + AWAY);
        if self.failures.fetch_add(1, Ordering::Relaxed) == 0 {
            tracing::warn!(error = %e, "send limit: Redis cannot {what}; the in-process limit decides meanwhile");
        }
    }

    /// Takes one send from the user's allowance, or says how long until one is free: the
    /// contract of `SendLimiter::try_acquire`, across replicas.
    pub async fn try_acquire(&self, user: &UserId) -> Result<(), Duration> {
        if self.capacity == 0 {
            return Err(MINUTE);
        }
        if self.away() {
            return self.fallback.try_acquire(user);
        }
        let mut conn = self.conn.clone();
        let member = uuid::Uuid::now_v7().simple().to_string();
        let answer: Result<(i64, i64), RedisError> = self
            .acquire
            .key(self.key(user))
            .arg(self.capacity)
            .arg(self.window_micros())
            .arg(member)
            .invoke_async(&mut conn)
            .await;
        if answer.is_ok() {
            self.answered();
        }
        match answer {
            Ok((1, _)) => Ok(()),
            Ok((_, wait_micros)) => Err(whole_seconds(Duration::from_micros(
                u64::try_from(wait_micros).unwrap_or(0),
            ))),
            Err(e) => {
                self.failed("take a send", &e);
                self.fallback.try_acquire(user)
            }
        }
    }

    /// Gives back a send taken by `try_acquire` that was not accepted after all: the
    /// contract of `SendLimiter::refund`, across replicas.
    pub async fn refund(&self, user: &UserId) {
        if self.away() {
            self.fallback.refund(user);
            return;
        }
        let mut conn = self.conn.clone();
        let answer: Result<i64, RedisError> = self
            .refund
            .key(self.key(user))
            .arg(self.window_micros())
            .invoke_async(&mut conn)
            .await;
        if let Err(e) = answer {
            self.failed("give a send back", &e);
            self.fallback.refund(user);
        }
    }
}

/// Rounds up to whole seconds, within 1..=60 (what `Retry-After` may say).
#[async_trait::async_trait]
impl SendLimiter for RedisSendLimiter {
    async fn try_acquire(&self, user: &UserId) -> Result<(), Duration> {
        Self::try_acquire(self, user).await
    }

    async fn refund(&self, user: &UserId) {
        Self::refund(self, user).await;
    }
}

fn whole_seconds(wait: Duration) -> Duration {
    let mut secs = wait.as_secs();
    if wait.subsec_nanos() > 0 {
        secs += 1;
    }
    Duration::from_secs(secs.clamp(1, 60))
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use super::*;

    async fn limiter(capacity: u32, window: Duration) -> Option<RedisSendLimiter> {
        let url = std::env::var("TEST_REDIS_URL")
            .ok()
            .filter(|u| !u.is_empty())
            .unwrap_or_else(|| "redis://127.0.0.1:6379".to_owned());
        let prefix = format!("confab-test:{}:", uuid::Uuid::now_v7().simple());
        match RedisSendLimiter::with_window(&url, prefix, capacity, window).await {
            Ok(limiter) => Some(limiter),
            Err(e) => {
                assert!(
                    std::env::var_os("CI").is_none(),
                    "Redis at {url} is unreachable ({e}) and CI is set"
                );
                eprintln!("\n!!! SKIPPED: Redis at {url} is unreachable ({e}).\n");
                None
            }
        }
    }

    fn user(name: &str) -> UserId {
        UserId::new(format!("{name}-{}", uuid::Uuid::now_v7().simple())).unwrap()
    }

    /// The wait of a refusal right after the allowance was taken, `elapsed` ago: a whole
    /// minute less the whole seconds that have passed, rounded up.
    fn assert_wait(wait: Result<(), Duration>, elapsed: Duration) {
        let Err(wait) = wait else {
            panic!("a send over the allowance was accepted");
        };
        let low = MINUTE.saturating_sub(elapsed + Duration::from_secs(1));
        assert!(
            wait <= MINUTE && wait >= low,
            "wait {wait:?}, {elapsed:?} after the first send"
        );
    }

    #[tokio::test]
    async fn n_sends_are_accepted_then_refused_with_the_wait_until_the_oldest_leaves() {
        for n in [1, 3] {
            let Some(limiter) = limiter(n, MINUTE).await else {
                return;
            };
            let alice = user("alice");
            let started = Instant::now();
            for _ in 0..n {
                assert_eq!(limiter.try_acquire(&alice).await, Ok(()));
            }
            assert_wait(limiter.try_acquire(&alice).await, started.elapsed());
            assert_eq!(limiter.failures(), 0);
        }
    }

    #[tokio::test]
    async fn refused_attempts_do_not_count_and_a_refund_gives_back_one_send() {
        let Some(limiter) = limiter(2, MINUTE).await else {
            return;
        };
        let alice = user("alice");
        limiter.refund(&alice).await;
        limiter.refund(&alice).await;
        let started = Instant::now();
        assert_eq!(limiter.try_acquire(&alice).await, Ok(()));
        assert_eq!(limiter.try_acquire(&alice).await, Ok(()));
        for _ in 0..5 {
            assert_wait(limiter.try_acquire(&alice).await, started.elapsed());
        }
        limiter.refund(&alice).await;
        assert_eq!(
            limiter.try_acquire(&alice).await,
            Ok(()),
            "a refund did not give a send back (or refused attempts counted)"
        );
        assert_wait(limiter.try_acquire(&alice).await, started.elapsed());
    }

    #[tokio::test]
    async fn users_do_not_share_an_allowance_but_replicas_do() {
        let Some(one) = limiter(1, MINUTE).await else {
            return;
        };
        // A second replica: its own connection, the same prefix.
        let other = RedisSendLimiter {
            conn: ConnectionManager::new(
                redis::Client::open(
                    std::env::var("TEST_REDIS_URL")
                        .ok()
                        .filter(|u| !u.is_empty())
                        .unwrap_or_else(|| "redis://127.0.0.1:6379".to_owned()),
                )
                .unwrap(),
            )
            .await
            .unwrap(),
            fallback: Arc::new(SlidingWindowLimiter::new(1)),
            failures: Arc::default(),
            ..one.clone()
        };
        let alice = user("alice");
        let bob = user("bob");
        let started = Instant::now();
        assert_eq!(one.try_acquire(&alice).await, Ok(()));
        assert_wait(other.try_acquire(&alice).await, started.elapsed());
        assert_eq!(other.try_acquire(&bob).await, Ok(()));
        assert_wait(one.try_acquire(&bob).await, started.elapsed());
    }

    #[tokio::test]
    async fn a_send_counts_for_exactly_its_window() {
        let window = Duration::from_secs(1);
        let Some(limiter) = limiter(2, window).await else {
            return;
        };
        let alice = user("alice");
        let before = Instant::now();
        assert_eq!(limiter.try_acquire(&alice).await, Ok(()));
        // The first send was taken before this instant.
        let taken = Instant::now();
        // The second send comes later, so that the first leaves the window while the second
        // (and the user's key) is still there.
        tokio::time::sleep(window / 2).await;
        assert_eq!(limiter.try_acquire(&alice).await, Ok(()));
        assert_eq!(
            limiter.try_acquire(&alice).await,
            Err(Duration::from_secs(1)),
            "with a 1 s window the wait is at most 1 s, and never 0"
        );
        // Poll until a send is accepted again: no sooner than the window after the first
        // send (taken after `before`), and by the first attempt that starts a window after
        // it was taken (a few ms of slack for the two clocks' resolution).
        loop {
            let attempt = Instant::now();
            if limiter.try_acquire(&alice).await.is_ok() {
                assert!(
                    before.elapsed() >= window,
                    "accepted {:?} after the first send, inside its window",
                    before.elapsed()
                );
                break;
            }
            assert!(
                attempt.duration_since(taken) < window + Duration::from_millis(5),
                "refused {:?} after the first send was taken, past its window",
                attempt.duration_since(taken)
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Redis goes away (a private `redis-server`, killed): the in-process limit decides, so
    /// sends are neither all refused nor all let through.
    #[tokio::test]
    async fn while_redis_is_away_the_in_process_limit_decides() {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .unwrap();
        let Ok(mut server) = std::process::Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(std::process::Stdio::null())
            .spawn()
        else {
            assert!(
                std::env::var_os("CI").is_none(),
                "redis-server is missing and CI is set"
            );
            eprintln!("\n!!! SKIPPED: the redis-server binary is missing.\n");
            return;
        };
        let url = format!("redis://127.0.0.1:{port}");
        let started = Instant::now();
        let limiter = loop {
            match RedisSendLimiter::with_window(&url, "t:", 2, MINUTE).await {
                Ok(limiter) => break limiter,
                Err(e) => assert!(
                    started.elapsed() < Duration::from_secs(30),
                    "the private redis-server did not come up: {e}"
                ),
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        let alice = user("alice");
        assert_eq!(limiter.try_acquire(&alice).await, Ok(()));
        let _ = server.kill();
        let _ = server.wait();
        let away = Instant::now();
        // The fallback has its own allowance of 2: two accepted, then refused.
        assert_eq!(limiter.try_acquire(&alice).await, Ok(()));
        assert_eq!(limiter.try_acquire(&alice).await, Ok(()));
        assert_wait(limiter.try_acquire(&alice).await, away.elapsed());
        // One failure is enough: Redis is left alone for a while after it.
        assert!(limiter.failures() >= 1, "failures: {}", limiter.failures());
    }

    /// A Redis that does not answer at all (frozen) costs one command timeout, not one per
    /// send: the in-process limit decides meanwhile, and Redis again once it answers.
    #[tokio::test]
    async fn a_redis_that_does_not_answer_holds_up_one_send_not_each() {
        let Some(redis) = crate::testing::PrivateRedis::start() else {
            return;
        };
        let started = Instant::now();
        let limiter = loop {
            match RedisSendLimiter::with_window(&redis.url(), "t:", 100, MINUTE).await {
                Ok(limiter) => break limiter,
                Err(e) => assert!(started.elapsed() < Duration::from_secs(30), "{e}"),
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        let alice = user("alice");
        assert_eq!(limiter.try_acquire(&alice).await, Ok(()));

        redis.signal("STOP");
        assert_eq!(
            limiter.try_acquire(&alice).await,
            Ok(()),
            "the fallback decides"
        );
        let failures = limiter.failures();
        assert!(failures >= 1);
        for _ in 0..5 {
            let asked = Instant::now();
            assert_eq!(limiter.try_acquire(&alice).await, Ok(()));
            assert!(
                asked.elapsed() < Duration::from_millis(500),
                "a send waited {:?} for a Redis known to be away",
                asked.elapsed()
            );
        }

        redis.signal("CONT");
        let thawed = Instant::now();
        loop {
            tokio::time::sleep(AWAY).await;
            let before = limiter.failures();
            assert_eq!(limiter.try_acquire(&alice).await, Ok(()));
            if limiter.failures() == before && limiter.away_until.lock().unwrap().is_none() {
                break;
            }
            assert!(
                thawed.elapsed() < Duration::from_secs(30),
                "Redis is asked again"
            );
        }
    }
}
