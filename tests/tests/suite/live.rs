//! The `LiveReplies` contract against the in-process adapter (`confab-memory`).

use std::sync::Arc;

use confab_core::ports::LiveReplies;
use confab_memory::MemoryLiveReplies;
use confab_tests::contract;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_live_replies_honour_the_live_replies_contract() {
    contract::live_replies_contract(|options| async move {
        Arc::new(MemoryLiveReplies::new(options)) as Arc<dyn LiveReplies>
    })
    .await;
}
