//! Every storage contract suite against `confab-sql` on SQLite: each case gets a new
//! database file (WAL, a pool of several connections, so the concurrency cases really race),
//! removed when the case's stores are dropped.

use std::sync::Arc;

use confab_sql::testing;
use confab_tests::contract::{self, Stores};

async fn sqlite_stores() -> Stores {
    Stores::from_one(Arc::new(testing::sqlite_store().await))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_store_honours_the_project_store_contract() {
    contract::project_store_contract(sqlite_stores).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_store_honours_the_prompt_store_contract() {
    contract::prompt_store_contract(sqlite_stores).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_store_honours_the_chat_history_contract() {
    contract::chat_history_contract(sqlite_stores).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_store_honours_the_conversation_tree_contract() {
    contract::conversation_tree_contract(sqlite_stores).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_store_honours_the_file_store_contract() {
    contract::file_store_contract(sqlite_stores).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_store_honours_the_account_store_contract() {
    contract::account_store_contract(|| async {
        Arc::new(testing::sqlite_store().await) as Arc<dyn confab_core::accounts::AccountStore>
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_store_honours_the_knowledge_index_contract() {
    contract::knowledge_index_contract(sqlite_stores).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_store_honours_the_message_search_contract() {
    contract::message_search_contract(sqlite_stores).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_store_honours_the_usage_ledger_contract() {
    contract::usage_ledger_contract(|| async {
        let database = testing::sqlite_database();
        let store = Arc::new(database.store().await);
        contract::Ledger {
            stores: Stores::from_one(store.clone()),
            replica: Stores::from_one(Arc::new(database.store().await)),
            ledger: store,
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_store_honours_the_message_files_contract() {
    contract::message_files_contract(sqlite_stores).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_store_honours_the_share_store_contract() {
    contract::share_store_contract(|| async {
        let store = Arc::new(testing::sqlite_store().await);
        contract::Shares {
            stores: Stores::from_one(store.clone()),
            shares: store,
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_store_honours_the_import_store_contract() {
    contract::import_store_contract(|| async {
        let store = Arc::new(testing::sqlite_store().await);
        contract::Imports {
            stores: Stores::from_one(store.clone()),
            imports: store,
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_store_honours_the_sign_in_state_contract() {
    contract::sign_in_state_contract(|| async {
        let database = testing::sqlite_database();
        contract::SignInStores {
            store: Arc::new(database.store().await),
            replica: Arc::new(database.store().await),
        }
    })
    .await;
}
