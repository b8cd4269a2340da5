#![doc = include_str!("../README.md")]

mod live;

pub use live::{RedisLiveReplies, RedisLiveStats};
