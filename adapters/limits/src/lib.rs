#![doc = include_str!("../README.md")]

mod sliding_window;

pub use confab_core::clock::{Clock, ManualClock, SystemClock};
pub use sliding_window::SlidingWindowLimiter;
