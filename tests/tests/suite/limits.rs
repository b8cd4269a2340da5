//! The `SendLimiter` contract against every limiter: `confab-limits`' sliding window (the one
//! the server uses in every configuration), on a clock the cases move.

use std::sync::Arc;

use confab_limits::{ManualClock, SlidingWindowLimiter};
use confab_tests::contract::{self, LimiterSubject};

#[tokio::test]
async fn sliding_window_limiter_honours_the_send_limiter_contract() {
    contract::send_limiter_contract(|per_minute| async move {
        let clock = Arc::new(ManualClock::new());
        let limiter = SlidingWindowLimiter::with_clock(per_minute, clock.clone());
        LimiterSubject::new(Arc::new(limiter), move |by| clock.advance(by))
    })
    .await;
}
