#![doc = include_str!("../README.md")]

mod limiter;
mod live;
mod subscriber;
#[cfg(test)]
mod testing;

pub use limiter::RedisSendLimiter;
pub use live::{RedisLiveReplies, RedisLiveStats};
