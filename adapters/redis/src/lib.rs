#![doc = include_str!("../README.md")]

mod limiter;
mod live;
mod subscriber;
#[cfg(test)]
mod testing;

pub use limiter::RedisSendLimiter;
pub use live::{RedisLiveReplies, RedisLiveStats};

use redis::IntoConnectionInfo as _;
use redis::io::tcp::TcpSettings;

/// A client for `url` whose connections send at once: `TCP_NODELAY`, which the `redis` crate
/// leaves off by default. With Nagle's algorithm on, a small write (an entry, a publish) waits
/// while an earlier one is unacknowledged — on a connection shared by every reply of the
/// process, that is most of them (docs/benchmarks.md, "Live replies").
pub(crate) fn client(url: &str) -> redis::RedisResult<redis::Client> {
    let info = url
        .into_connection_info()?
        .set_tcp_settings(TcpSettings::default().set_nodelay(true));
    redis::Client::open(info)
}
