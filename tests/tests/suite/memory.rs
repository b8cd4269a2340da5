//! Every contract suite against the in-memory adapters.

use std::sync::Arc;

use confab_core::ports::BlobStore;
use confab_memory::{MemoryBlobStore, MemoryStore};
use confab_tests::contract::{self, Stores};

fn memory_stores() -> Stores {
    Stores::from_one(Arc::new(MemoryStore::new()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_store_honours_the_project_store_contract() {
    contract::project_store_contract(|| async { memory_stores() }).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_store_honours_the_prompt_store_contract() {
    contract::prompt_store_contract(|| async { memory_stores() }).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_store_honours_the_chat_history_contract() {
    contract::chat_history_contract(|| async { memory_stores() }).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_store_honours_the_conversation_tree_contract() {
    contract::conversation_tree_contract(|| async { memory_stores() }).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_store_honours_the_file_store_contract() {
    contract::file_store_contract(|| async { memory_stores() }).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_blob_store_honours_the_blob_store_contract() {
    contract::blob_store_contract(|| async {
        Arc::new(MemoryBlobStore::new()) as Arc<dyn BlobStore>
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_accounts_honour_the_account_store_contract() {
    contract::account_store_contract(|| async {
        Arc::new(confab_memory::MemoryAccounts::new())
            as Arc<dyn confab_core::accounts::AccountStore>
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_store_honours_the_knowledge_index_contract() {
    contract::knowledge_index_contract(|| async { memory_stores() }).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_store_honours_the_message_search_contract() {
    contract::message_search_contract(|| async { memory_stores() }).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_store_honours_the_usage_ledger_contract() {
    contract::usage_ledger_contract(|| async {
        let store = Arc::new(MemoryStore::new());
        contract::Ledger {
            stores: Stores::from_one(store.clone()),
            replica: Stores::from_one(store.clone()),
            ledger: store,
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_store_honours_the_message_files_contract() {
    contract::message_files_contract(|| async { memory_stores() }).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_store_honours_the_share_store_contract() {
    contract::share_store_contract(|| async {
        let store = Arc::new(MemoryStore::new());
        contract::Shares {
            stores: Stores::from_one(store.clone()),
            shares: store,
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_store_honours_the_import_store_contract() {
    contract::import_store_contract(|| async {
        let store = Arc::new(MemoryStore::new());
        contract::Imports {
            stores: Stores::from_one(store.clone()),
            imports: store,
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_store_honours_the_sign_in_state_contract() {
    contract::sign_in_state_contract(|| async {
        let store = confab_memory::MemoryAccounts::new();
        contract::SignInStores {
            replica: Arc::new(store.clone()),
            store: Arc::new(store),
        }
    })
    .await;
}
