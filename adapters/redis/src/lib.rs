#![doc = include_str!("../README.md")]

mod limiter;
mod live;

pub use limiter::RedisSendLimiter;
pub use live::{RedisLiveReplies, RedisLiveStats};
