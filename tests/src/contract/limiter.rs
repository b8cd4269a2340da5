//! The `SendLimiter` contract, run against every limiter.
//!
//! The factory is given the allowance N (sends per user per minute) and returns the limiter
//! with a handle on the clock it reads: the cases move that clock instead of waiting, so
//! they take no time and do not depend on the machine's speed. The suite runs every case
//! with N = 1 and with N = 3.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use confab_core::ids::UserId;
use confab_core::ports::SendLimiter;

use super::fixtures;

/// One limiter to check, made fresh for each case.
pub struct LimiterSubject {
    /// The limiter under test.
    pub limiter: Arc<dyn SendLimiter>,
    /// Moves the clock the limiter reads forward (and nothing else: no real time passes).
    pub advance: Box<dyn Fn(Duration) + Send + Sync>,
}

impl LimiterSubject {
    /// A limiter and the way to move its clock.
    pub fn new(
        limiter: Arc<dyn SendLimiter>,
        advance: impl Fn(Duration) + Send + Sync + 'static,
    ) -> Self {
        Self {
            limiter,
            advance: Box::new(advance),
        }
    }
}

/// Runs every case of the `SendLimiter` contract, each on a fresh limiter from `fresh`,
/// which is given the allowance N.
pub async fn send_limiter_contract<F, Fut>(fresh: F)
where
    F: Fn(u32) -> Fut,
    Fut: Future<Output = LimiterSubject>,
{
    crate::run_cases!(
        "SendLimiter (N = 1)",
        || subject(&fresh, 1),
        [
            n_sends_are_accepted_and_the_next_is_told_when_the_oldest_leaves,
            a_send_no_longer_counts_from_exactly_one_minute_on,
            a_refused_attempt_does_not_count,
            users_do_not_share_an_allowance,
            every_attempt_is_decided_by_the_sends_of_the_last_minute,
            a_refund_lets_the_user_send_again_at_once,
            a_refund_with_no_send_taken_gives_nothing,
            a_refund_touches_no_other_user,
        ]
    );
    crate::run_cases!(
        "SendLimiter (N = 3)",
        || subject(&fresh, 3),
        [
            n_sends_are_accepted_and_the_next_is_told_when_the_oldest_leaves,
            a_send_no_longer_counts_from_exactly_one_minute_on,
            a_refused_attempt_does_not_count,
            users_do_not_share_an_allowance,
            every_attempt_is_decided_by_the_sends_of_the_last_minute,
            a_refund_lets_the_user_send_again_at_once,
            a_refund_with_no_send_taken_gives_nothing,
            a_refund_touches_no_other_user,
        ]
    );
}

/// What a case works on: the subject, its allowance, and the time the case has moved its
/// clock by.
struct Case {
    subject: LimiterSubject,
    n: u32,
    elapsed: Duration,
}

async fn subject<F, Fut>(fresh: &F, n: u32) -> Case
where
    F: Fn(u32) -> Fut,
    Fut: Future<Output = LimiterSubject>,
{
    Case {
        subject: fresh(n).await,
        n,
        elapsed: Duration::ZERO,
    }
}

impl Case {
    async fn try_acquire(&self, user: &UserId) -> Result<(), Duration> {
        self.subject.limiter.try_acquire(user).await
    }

    async fn refund(&self, user: &UserId) {
        self.subject.limiter.refund(user).await;
    }

    /// Moves the clock forward by `by`.
    fn advance(&mut self, by: Duration) {
        (self.subject.advance)(by);
        self.elapsed += by;
    }

    /// Takes the user's whole allowance, each send accepted, at the current instant.
    async fn take_all(&self, user: &UserId) {
        for i in 0..self.n {
            assert_eq!(
                self.try_acquire(user).await,
                Ok(()),
                "send {} of {} at {:?} was refused",
                i + 1,
                self.n,
                self.elapsed
            );
        }
    }

    async fn expect_refused(&self, user: &UserId, wait: Duration, what: &str) {
        assert_eq!(
            self.try_acquire(user).await,
            Err(wait),
            "{what} (at {:?}, N = {})",
            self.elapsed,
            self.n
        );
    }
}

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

fn millis(ms: u64) -> Duration {
    Duration::from_millis(ms)
}

async fn n_sends_are_accepted_and_the_next_is_told_when_the_oldest_leaves(mut c: Case) {
    let alice = fixtures::user("alice");
    // The oldest send at 0 s, the others spread over the next 20 s.
    assert_eq!(
        c.try_acquire(&alice).await,
        Ok(()),
        "the first send was refused"
    );
    for _ in 1..c.n {
        c.advance(secs(20) / c.n);
        assert_eq!(
            c.try_acquire(&alice).await,
            Ok(()),
            "send within N was refused"
        );
    }
    c.advance(secs(25) - c.elapsed);
    // The oldest send leaves the window at 60 s: 35 s from now.
    c.expect_refused(
        &alice,
        secs(35),
        "send N+1 must wait until the oldest is 60 s old",
    )
    .await;
    c.advance(secs(35));
    assert_eq!(
        c.try_acquire(&alice).await,
        Ok(()),
        "the send was still refused after the wait it was given"
    );
}

async fn a_send_no_longer_counts_from_exactly_one_minute_on(mut c: Case) {
    let alice = fixtures::user("alice");
    c.take_all(&alice).await;
    c.expect_refused(
        &alice,
        secs(60),
        "a full allowance taken just now frees in 60 s",
    )
    .await;
    c.advance(millis(59_999));
    c.expect_refused(
        &alice,
        secs(1),
        "1 ms before the minute is over, the wait is 1 s (rounded up, never 0)",
    )
    .await;
    c.advance(millis(1));
    // At exactly 60 s every send of the first instant has left the window.
    c.take_all(&alice).await;
    c.expect_refused(&alice, secs(60), "the allowance was taken again")
        .await;
}

async fn a_refused_attempt_does_not_count(mut c: Case) {
    let alice = fixtures::user("alice");
    c.take_all(&alice).await;
    c.advance(secs(30));
    for _ in 0..10 {
        c.expect_refused(&alice, secs(30), "the allowance is taken until 60 s")
            .await;
    }
    c.advance(secs(30));
    // Had the refused attempts at 30 s counted, they would still be in the window.
    c.take_all(&alice).await;
}

async fn users_do_not_share_an_allowance(mut c: Case) {
    let alice = fixtures::user("alice");
    let bob = fixtures::user("bob");
    c.take_all(&alice).await;
    c.advance(secs(10));
    c.take_all(&bob).await;
    c.expect_refused(
        &alice,
        secs(50),
        "alice's wait depends on alice's sends only",
    )
    .await;
    c.expect_refused(&bob, secs(60), "bob's wait depends on bob's sends only")
        .await;
    c.advance(secs(50));
    c.take_all(&alice).await;
    c.expect_refused(&bob, secs(10), "alice's sends do not free bob's")
        .await;
}

/// Attempts at irregular instants for ten minutes; each must be decided exactly as the
/// contract says from the sends accepted before it: accepted while fewer than N are under a
/// minute old, else refused with the whole seconds until the oldest of them is a minute old.
async fn every_attempt_is_decided_by_the_sends_of_the_last_minute(mut c: Case) {
    let alice = fixtures::user("alice");
    let mut accepted: Vec<Duration> = Vec::new();
    let mut refused = 0;
    // A fixed pseudo-random sequence of gaps, multiples of 250 ms from 0 to 30 s, so that
    // attempts fall at, just before and just after the moment a send leaves the window.
    let mut seed: u64 = 0x9E37_79B9_7F4A_7C15;
    while c.elapsed < secs(600) {
        let in_window: Vec<Duration> = accepted
            .iter()
            .copied()
            .filter(|at| c.elapsed - *at < secs(60))
            .collect();
        let result = c.try_acquire(&alice).await;
        if in_window.len() < c.n as usize {
            assert_eq!(
                result,
                Ok(()),
                "at {:?} only {} sends were under a minute old (N = {})",
                c.elapsed,
                in_window.len(),
                c.n
            );
            accepted.push(c.elapsed);
        } else {
            let until_oldest_leaves = secs(60) - (c.elapsed - in_window[0]);
            let expected = secs(until_oldest_leaves.as_millis().div_ceil(1000) as u64);
            assert_eq!(
                result,
                Err(expected),
                "at {:?} the oldest of the last minute's {} sends was at {:?} (N = {})",
                c.elapsed,
                in_window.len(),
                in_window[0],
                c.n
            );
            assert!(
                (secs(1)..=secs(60)).contains(&expected),
                "the model is wrong"
            );
            refused += 1;
        }
        seed = seed
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        let gap = millis(250 * ((seed >> 33) % 121));
        c.advance(gap);
    }
    assert!(
        accepted.len() >= 10 && refused >= 10,
        "the walk should both accept and refuse often: {} accepted, {refused} refused",
        accepted.len()
    );
}

async fn a_refund_lets_the_user_send_again_at_once(mut c: Case) {
    let alice = fixtures::user("alice");
    for _ in 1..c.n {
        assert_eq!(
            c.try_acquire(&alice).await,
            Ok(()),
            "send within N was refused"
        );
    }
    c.advance(secs(5));
    // The last send of the allowance is taken, then given back (the send was not accepted
    // after all, as when its conversation is busy).
    assert_eq!(c.try_acquire(&alice).await, Ok(()), "send N was refused");
    c.refund(&alice).await;
    assert_eq!(
        c.try_acquire(&alice).await,
        Ok(()),
        "a refunded send was not given back"
    );
    // The oldest send of the last minute is the first, at 0 s (or, with N = 1, this one).
    let wait = if c.n == 1 { secs(60) } else { secs(55) };
    c.expect_refused(&alice, wait, "the refund gave back one send only")
        .await;
}

async fn a_refund_with_no_send_taken_gives_nothing(mut c: Case) {
    let alice = fixtures::user("alice");
    c.refund(&alice).await;
    c.refund(&alice).await;
    c.take_all(&alice).await;
    c.expect_refused(
        &alice,
        secs(60),
        "refunds before any send raised the allowance",
    )
    .await;
    c.advance(secs(60));
    // Every send has left the window: a refund now has nothing to give back either.
    c.refund(&alice).await;
    c.take_all(&alice).await;
    c.expect_refused(
        &alice,
        secs(60),
        "a refund with no send in the window raised the allowance",
    )
    .await;
}

async fn a_refund_touches_no_other_user(c: Case) {
    let alice = fixtures::user("alice");
    let bob = fixtures::user("bob");
    c.take_all(&alice).await;
    c.take_all(&bob).await;
    c.refund(&bob).await;
    c.expect_refused(&alice, secs(60), "bob's refund gave alice a send")
        .await;
    assert_eq!(
        c.try_acquire(&bob).await,
        Ok(()),
        "bob's refund was not given back"
    );
}
