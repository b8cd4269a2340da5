//! The cost of one live reply in `MemoryLiveReplies` — open, publish a delta, finish — with
//! 0, 10,000 or 50,000 finished replies kept for their retention (`cargo bench -p
//! confab-memory --bench live_replies`). Every iteration reopens the same reply id, so the
//! number of replies kept stays what the case says.
// Bench code: a failed unwrap is a failed bench.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use confab_core::CancelToken;
use confab_core::ids::MessageId;
use confab_core::live::{LiveEvent, LiveOptions};
use confab_core::ports::LiveReplies;
use confab_memory::MemoryLiveReplies;
use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};

async fn one_reply(live: &MemoryLiveReplies, reply: MessageId) {
    let mut publisher = live.open(reply, CancelToken::new()).await;
    publisher.publish(LiveEvent::new(
        1,
        "delta",
        r#"{"message_id":"0193a7c2-5b1f-7d2e-8a10-1b2c3d4e5f60","text":" tok00"}"#,
    ));
    publisher.publish(LiveEvent::last(2, "done", r#"{"status":"complete"}"#));
}

fn open_publish_finish(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let mut group = c.benchmark_group("live_open_publish_finish");
    group
        .sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    for kept in [0_usize, 10_000, 50_000] {
        let live = MemoryLiveReplies::new(LiveOptions::default());
        runtime.block_on(async {
            for _ in 0..kept {
                one_reply(&live, MessageId::new()).await;
            }
        });
        let reply = MessageId::new();
        group.bench_with_input(BenchmarkId::new("kept", kept), &kept, |b, _| {
            b.iter(|| runtime.block_on(one_reply(&live, reply)));
        });
    }
    group.finish();
}

criterion_group!(benches, open_publish_finish);
criterion_main!(benches);
