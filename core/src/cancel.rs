//! A runtime-free cancellation signal for a generation. The server keeps the token of each
//! generation in flight; the chat stream watches it between provider events.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::task::{Context, Poll};

use futures::task::AtomicWaker;

/// Why a generation is being stopped. It decides how the reply is stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CancelReason {
    /// The user pressed Stop: stored `cancelled` with the text so far.
    User,
    /// The whole-generation timeout passed: stored `failed` (`timeout`).
    Timeout,
    /// The server is shutting down: stored `failed` (`interrupted`).
    Shutdown,
}

impl CancelReason {
    const fn to_u8(self) -> u8 {
        match self {
            Self::User => 1,
            Self::Timeout => 2,
            Self::Shutdown => 3,
        }
    }

    const fn from_u8(v: u8) -> Option<Self> {
        match v {
            1 => Some(Self::User),
            2 => Some(Self::Timeout),
            3 => Some(Self::Shutdown),
            _ => None,
        }
    }
}

#[derive(Debug, Default)]
struct Inner {
    reason: AtomicU8,
    waker: AtomicWaker,
}

/// A cloneable cancel signal. The first `cancel` wins; later ones are ignored.
#[derive(Clone, Debug, Default)]
pub struct CancelToken {
    inner: Arc<Inner>,
}

impl CancelToken {
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Signals cancellation. Returns `true` if this call was the one that cancelled.
    pub fn cancel(&self, reason: CancelReason) -> bool {
        let won = self
            .inner
            .reason
            .compare_exchange(0, reason.to_u8(), Ordering::AcqRel, Ordering::Acquire)
            .is_ok();
        self.inner.waker.wake();
        won
    }

    #[must_use]
    pub fn reason(&self) -> Option<CancelReason> {
        CancelReason::from_u8(self.inner.reason.load(Ordering::Acquire))
    }

    /// Resolves when the token is cancelled. Meant for one waiter at a time.
    #[must_use]
    pub fn cancelled(&self) -> Cancelled {
        Cancelled {
            inner: Arc::clone(&self.inner),
        }
    }
}

/// The future returned by [`CancelToken::cancelled`].
#[derive(Debug)]
pub struct Cancelled {
    inner: Arc<Inner>,
}

impl Future for Cancelled {
    type Output = CancelReason;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<CancelReason> {
        if let Some(r) = CancelReason::from_u8(self.inner.reason.load(Ordering::Acquire)) {
            return Poll::Ready(r);
        }
        self.inner.waker.register(cx.waker());
        match CancelReason::from_u8(self.inner.reason.load(Ordering::Acquire)) {
            Some(r) => Poll::Ready(r),
            None => Poll::Pending,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_cancel_wins() {
        let token = CancelToken::new();
        assert_eq!(token.reason(), None);
        assert!(token.cancel(CancelReason::User));
        assert!(!token.cancel(CancelReason::Timeout));
        assert_eq!(token.reason(), Some(CancelReason::User));
        assert_eq!(
            futures::executor::block_on(token.cancelled()),
            CancelReason::User
        );
    }

    #[test]
    fn a_waiter_is_woken_by_a_cancel_from_another_thread() {
        let token = CancelToken::new();
        let other = token.clone();
        let handle = std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_millis(20));
            other.cancel(CancelReason::Shutdown);
        });
        assert_eq!(
            futures::executor::block_on(token.cancelled()),
            CancelReason::Shutdown
        );
        assert!(handle.join().is_ok());
    }
}
