//! Memory per buffered live reply of the in-process adapter (`MemoryLiveReplies`): a child
//! process of the harness (so that no earlier run's freed memory is reused) fills the adapter
//! with finished replies shaped like the server's, as it keeps them for their retention, and
//! reports the growth of its own resident memory.

use std::time::Instant;

use confab_core::CancelToken;
use confab_core::ids::MessageId;
use confab_core::live::{LiveEvent, LiveOptions};
use confab_core::ports::LiveReplies;
use confab_memory::MemoryLiveReplies;

use crate::BenchError;
use crate::procfs;

/// The figure for replies of one length.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct MemoryFigure {
    pub replies: usize,
    pub deltas_per_reply: usize,
    /// The bytes of one reply's event names and data (what any buffer must hold).
    pub payload_bytes_per_reply: usize,
    pub rss_before_kib: u64,
    pub rss_after_kib: u64,
    pub kib_per_reply: f64,
    /// Opening a reply and publishing its events, with the replies before it retained.
    pub us_per_reply: f64,
}

/// A reply's events as the server publishes them (the `data` of each SSE event): the two
/// messages, `deltas` deltas of 6 characters, and `done` with the whole text.
#[must_use]
pub fn typical_reply(deltas: usize) -> Vec<LiveEvent> {
    let (user, reply, chat) = (
        "0193a7c2-5b1e-7c3d-9f21-3a4b5c6d7e80",
        "0193a7c2-5b1f-7d2e-8a10-1b2c3d4e5f60",
        "0193a7c2-4a0d-7b2c-8e10-2a3b4c5d6e7f",
    );
    let message = |id: &str, role: &str, content: &str, status: &str, usage: &str| {
        format!(
            r#"{{"id":"{id}","conversation_id":"{chat}","role":"{role}","content":{content},"status":"{status}","model":"bench","usage":{usage},"error":null,"created_at":"2026-12-06T13:53:04.123456Z"}}"#,
            content = serde_json::Value::from(content),
        )
    };
    let texts = crate::load::reply(deltas);
    let whole: String = texts.concat();
    let mut events = vec![
        LiveEvent::new(
            1,
            "user_message",
            message(
                user,
                "user",
                "Benchmark message 0/0/0: tell me something.",
                "complete",
                "null",
            ),
        ),
        LiveEvent::new(
            2,
            "assistant_message",
            message(reply, "assistant", "", "streaming", "null"),
        ),
    ];
    for (i, text) in texts.iter().enumerate() {
        events.push(LiveEvent::new(
            3 + i as u64,
            "delta",
            format!(
                r#"{{"message_id":"{reply}","text":{}}}"#,
                serde_json::Value::from(text.as_str())
            ),
        ));
    }
    events.push(LiveEvent::last(
        3 + deltas as u64,
        "done",
        message(
            reply,
            "assistant",
            &whole,
            "complete",
            &format!(r#"{{"input_tokens":12,"output_tokens":{deltas}}}"#),
        ),
    ));
    events
}

/// Fills a `MemoryLiveReplies` (default options: kept 60 s after their end) with `replies`
/// finished replies of `deltas` deltas and reads this process's `VmRSS` before and after.
/// Run in a child process of its own (`--measure-live-memory`).
pub async fn measure(replies: usize, deltas: usize) -> Result<MemoryFigure, BenchError> {
    let me = std::process::id();
    let live = MemoryLiveReplies::new(LiveOptions::default());
    let template = typical_reply(deltas);
    let payload: usize = template.iter().map(|e| e.name.len() + e.data.len()).sum();
    // Warm up the adapter and the allocator with a few replies, then measure.
    let publish_all = |live: &MemoryLiveReplies| {
        let live = live.clone();
        let template = template.clone();
        async move {
            let mut publisher = live.open(MessageId::new(), CancelToken::new()).await;
            for event in &template {
                // Fresh strings per reply, as the server's events are.
                publisher.publish(event.clone());
            }
        }
    };
    for _ in 0..16 {
        publish_all(&live).await;
    }
    let rss_before =
        procfs::rss_kib(me).ok_or_else(|| BenchError::Setup("VmRSS cannot be read".to_owned()))?;
    let started = Instant::now();
    for _ in 0..replies {
        publish_all(&live).await;
    }
    let elapsed = started.elapsed();
    let rss_after =
        procfs::rss_kib(me).ok_or_else(|| BenchError::Setup("VmRSS cannot be read".to_owned()))?;
    #[allow(clippy::cast_precision_loss)]
    let per = |total: f64| total / replies.max(1) as f64;
    #[allow(clippy::cast_precision_loss)]
    Ok(MemoryFigure {
        replies,
        deltas_per_reply: deltas,
        payload_bytes_per_reply: payload,
        rss_before_kib: rss_before,
        rss_after_kib: rss_after,
        kib_per_reply: per(rss_after.saturating_sub(rss_before) as f64),
        us_per_reply: per(elapsed.as_secs_f64() * 1e6),
    })
}

/// Runs [`measure`] in a fresh child process (this binary with `--measure-live-memory`).
pub async fn in_child(replies: usize, deltas: usize) -> Result<MemoryFigure, BenchError> {
    let me = std::env::current_exe()?;
    let output = tokio::process::Command::new(me)
        .args([
            "--measure-live-memory",
            &deltas.to_string(),
            "--memory-replies",
            &replies.to_string(),
        ])
        .stdin(std::process::Stdio::null())
        .output()
        .await?;
    if !output.status.success() {
        return Err(BenchError::Setup(format!(
            "the memory measurement failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        )));
    }
    serde_json::from_slice(&output.stdout).map_err(|e| {
        BenchError::Setup(format!(
            "the memory measurement answered {:?}: {e}",
            String::from_utf8_lossy(&output.stdout)
        ))
    })
}

#[cfg(test)]
mod tests {

    use super::*;

    #[test]
    fn a_typical_reply_is_numbered_and_ends_with_done_holding_the_whole_text() {
        let events = typical_reply(3);
        let names: Vec<&str> = events.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "user_message",
                "assistant_message",
                "delta",
                "delta",
                "delta",
                "done"
            ]
        );
        assert!(events.iter().enumerate().all(|(i, e)| e.id == i as u64 + 1));
        assert!(events.last().is_some_and(|e| e.last));
        let done: serde_json::Value =
            serde_json::from_str(&events[5].data).expect("done's data is JSON");
        assert_eq!(done["content"], " tok00 tok01 tok02");
        let delta: serde_json::Value =
            serde_json::from_str(&events[2].data).expect("a delta's data is JSON");
        assert_eq!(delta["text"], " tok00");
    }
}
