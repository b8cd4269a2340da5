#![doc = include_str!("../README.md")]

mod clock;
mod sliding_window;

pub use clock::{Clock, ManualClock, SystemClock};
pub use sliding_window::SlidingWindowLimiter;
