//! `SlidingWindowLimiter`: at most N accepted sends per user in any minute.
//!
//! A sliding-window log: for each user, the instants of the sends accepted in the last
//! minute, oldest first. A send is accepted while fewer than N are logged, and each logged
//! send leaves the log when it is a minute old. (A token bucket refilling continuously at N
//! per minute would let up to 2N sends through in some minute: a full bucket, then
//! everything refilled while it was being spent; a counter per fixed minute, 2N across the
//! boundary of two.)

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use confab_core::clock::{Clock, SystemClock};

use confab_core::ids::UserId;
use confab_core::ports::SendLimiter;

/// How long an accepted send counts against its user.
const WINDOW: Duration = Duration::from_secs(60);

/// When the user map holds this many users, users with no send in the last minute are forgotten.
const PRUNE_AT: usize = 1024;

struct Logs {
    /// For each user, when each send of the last minute was accepted, oldest first.
    taken: HashMap<UserId, VecDeque<Instant>>,
    prune_at: usize,
}

/// A per-user `SendLimiter`: at most `per_minute` accepted sends in any minute.
pub struct SlidingWindowLimiter {
    capacity: usize,
    clock: Arc<dyn Clock>,
    logs: Mutex<Logs>,
}

impl SlidingWindowLimiter {
    /// A limiter of `per_minute` sends per user per minute on the system clock.
    /// With `0`, every send is refused.
    #[must_use]
    pub fn new(per_minute: u32) -> Self {
        Self::with_clock(per_minute, Arc::new(SystemClock))
    }

    /// The same, reading the time from `clock`.
    #[must_use]
    pub fn with_clock(per_minute: u32, clock: Arc<dyn Clock>) -> Self {
        Self {
            capacity: usize::try_from(per_minute).unwrap_or(usize::MAX),
            clock,
            logs: Mutex::new(Logs {
                taken: HashMap::new(),
                prune_at: PRUNE_AT,
            }),
        }
    }
}

/// Rounds up to whole seconds, within 1..=60 (what `Retry-After` may say).
fn whole_seconds(wait: Duration) -> Duration {
    let mut secs = wait.as_secs();
    if wait.subsec_nanos() > 0 {
        secs += 1;
    }
    Duration::from_secs(secs.clamp(1, 60))
}

fn expire(taken: &mut VecDeque<Instant>, now: Instant) {
    while taken
        .front()
        .is_some_and(|at| now.saturating_duration_since(*at) >= WINDOW)
    {
        taken.pop_front();
    }
}

#[async_trait::async_trait]
impl SendLimiter for SlidingWindowLimiter {
    async fn try_acquire(&self, user: &UserId) -> Result<(), Duration> {
        Self::try_acquire(self, user)
    }

    async fn refund(&self, user: &UserId) {
        Self::refund(self, user);
    }
}

impl SlidingWindowLimiter {
    /// [`SendLimiter::try_acquire`], decided at once (it never waits).
    pub fn try_acquire(&self, user: &UserId) -> Result<(), Duration> {
        if self.capacity == 0 {
            return Err(WINDOW);
        }
        let now = self.clock.now();
        let mut logs = self.logs.lock().unwrap_or_else(PoisonError::into_inner);
        if logs.taken.len() >= logs.prune_at {
            logs.taken.retain(|_, taken| {
                expire(taken, now);
                !taken.is_empty()
            });
            logs.prune_at = PRUNE_AT.max(logs.taken.len() * 2);
        }
        if !logs.taken.contains_key(user) {
            logs.taken.insert(user.clone(), VecDeque::new());
        }
        let Some(taken) = logs.taken.get_mut(user) else {
            return Err(WINDOW);
        };
        expire(taken, now);
        if taken.len() < self.capacity {
            taken.push_back(now);
            return Ok(());
        }
        let oldest = taken.front().copied().unwrap_or(now);
        Err(whole_seconds(
            WINDOW.saturating_sub(now.saturating_duration_since(oldest)),
        ))
    }

    /// [`SendLimiter::refund`], at once.
    pub fn refund(&self, user: &UserId) {
        let mut logs = self.logs.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(taken) = logs.taken.get_mut(user) {
            taken.pop_back();
        }
    }
}

#[cfg(test)]
mod tests {

    use super::*;
    use confab_core::clock::ManualClock;

    fn user(name: &str) -> UserId {
        UserId::new(name).unwrap()
    }

    fn limiter(n: u32) -> (SlidingWindowLimiter, Arc<ManualClock>) {
        let clock = Arc::new(ManualClock::new());
        (SlidingWindowLimiter::with_clock(n, clock.clone()), clock)
    }

    #[test]
    fn n_sends_are_allowed_then_refused() {
        let (limiter, _) = limiter(3);
        let alice = user("alice");
        for _ in 0..3 {
            assert_eq!(limiter.try_acquire(&alice), Ok(()));
        }
        assert_eq!(limiter.try_acquire(&alice), Err(Duration::from_secs(60)));
    }

    #[test]
    fn users_have_separate_logs() {
        let (limiter, _) = limiter(1);
        assert_eq!(limiter.try_acquire(&user("alice")), Ok(()));
        assert!(limiter.try_acquire(&user("alice")).is_err());
        assert_eq!(limiter.try_acquire(&user("bob")), Ok(()));
    }

    #[test]
    fn the_wait_is_until_the_oldest_send_is_a_minute_old_rounded_up() {
        let (limiter, clock) = limiter(2);
        let alice = user("alice");
        limiter.try_acquire(&alice).unwrap();
        clock.advance(Duration::from_millis(10_500));
        limiter.try_acquire(&alice).unwrap();
        // The first send leaves the window at 60 s: 49.5 s from now, rounded up to 50.
        assert_eq!(limiter.try_acquire(&alice), Err(Duration::from_secs(50)));
        clock.advance(Duration::from_millis(49_400));
        // 0.1 s left: still at least one whole second.
        assert_eq!(limiter.try_acquire(&alice), Err(Duration::from_secs(1)));
        clock.advance(Duration::from_millis(100));
        assert_eq!(limiter.try_acquire(&alice), Ok(()));
        // The second leaves at 70.5 s; it is now 60 s.
        assert_eq!(limiter.try_acquire(&alice), Err(Duration::from_secs(11)));
    }

    #[test]
    fn there_are_never_more_than_n_sends_in_any_minute() {
        let (limiter, clock) = limiter(5);
        let alice = user("alice");
        let mut accepted: Vec<Duration> = Vec::new();
        let mut at = Duration::ZERO;
        // Try a send every 700 ms for five minutes.
        for _ in 0..430 {
            if limiter.try_acquire(&alice).is_ok() {
                accepted.push(at);
            }
            clock.advance(Duration::from_millis(700));
            at += Duration::from_millis(700);
        }
        for (i, start) in accepted.iter().enumerate() {
            let in_window = accepted[i..]
                .iter()
                .take_while(|t| **t - *start < Duration::from_secs(60))
                .count();
            assert!(
                in_window <= 5,
                "{in_window} sends in the minute from {start:?}"
            );
        }
        // ... and the allowance is used: 5 per minute over five minutes.
        assert!(
            accepted.len() >= 25,
            "only {} sends were accepted",
            accepted.len()
        );
    }

    #[test]
    fn refund_gives_a_send_back_but_never_above_capacity() {
        let (limiter, _) = limiter(2);
        let alice = user("alice");
        limiter.refund(&alice);
        limiter.refund(&alice);
        limiter.try_acquire(&alice).unwrap();
        limiter.try_acquire(&alice).unwrap();
        assert!(
            limiter.try_acquire(&alice).is_err(),
            "refunds before any send added sends"
        );
        limiter.refund(&alice);
        assert_eq!(limiter.try_acquire(&alice), Ok(()));
        assert!(limiter.try_acquire(&alice).is_err());
    }

    #[test]
    fn a_zero_limit_refuses_everything() {
        let (limiter, _) = limiter(0);
        assert_eq!(
            limiter.try_acquire(&user("alice")),
            Err(Duration::from_secs(60))
        );
    }

    #[test]
    fn waits_are_whole_seconds_between_1_and_60() {
        assert_eq!(whole_seconds(Duration::ZERO), Duration::from_secs(1));
        assert_eq!(
            whole_seconds(Duration::from_millis(1)),
            Duration::from_secs(1)
        );
        assert_eq!(
            whole_seconds(Duration::from_millis(1_001)),
            Duration::from_secs(2)
        );
        assert_eq!(
            whole_seconds(Duration::from_secs(7)),
            Duration::from_secs(7)
        );
        assert_eq!(
            whole_seconds(Duration::from_secs(600)),
            Duration::from_secs(60)
        );
    }

    #[test]
    fn idle_users_are_forgotten() {
        let (limiter, clock) = limiter(1);
        for i in 0..PRUNE_AT {
            limiter.try_acquire(&user(&format!("u{i}"))).unwrap();
        }
        clock.advance(WINDOW);
        limiter.try_acquire(&user("late")).unwrap();
        let logs = limiter.logs.lock().unwrap();
        assert_eq!(logs.taken.len(), 1);
    }
}
