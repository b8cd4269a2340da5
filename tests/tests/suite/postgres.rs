//! Every storage contract suite against `confab-sql` on PostgreSQL (`TEST_DATABASE_URL`,
//! default `postgres://postgres@127.0.0.1:5432/postgres`). Each case gets a private schema,
//! migrated, and dropped when the case's stores are dropped, so cases run in parallel.
//! Without a reachable database these tests fail when `CI` is set, and otherwise print a
//! loud notice and return.

use std::sync::Arc;

use confab_sql::testing;
use confab_tests::contract::{self, Stores};

async fn postgres_stores() -> Stores {
    let store = testing::postgres_store()
        .await
        .expect("PostgreSQL was reachable when the test started");
    Stores::from_one(Arc::new(store))
}

/// Whether PostgreSQL can be used; panics instead when it cannot and `CI` is set.
async fn reachable() -> bool {
    testing::postgres_admin().await.is_some()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_store_honours_the_project_store_contract() {
    if reachable().await {
        contract::project_store_contract(postgres_stores).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_store_honours_the_prompt_store_contract() {
    if reachable().await {
        contract::prompt_store_contract(postgres_stores).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_store_honours_the_chat_history_contract() {
    if reachable().await {
        contract::chat_history_contract(postgres_stores).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_store_honours_the_conversation_tree_contract() {
    if reachable().await {
        contract::conversation_tree_contract(postgres_stores).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_store_honours_the_file_store_contract() {
    if reachable().await {
        contract::file_store_contract(postgres_stores).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_store_honours_the_account_store_contract() {
    if reachable().await {
        contract::account_store_contract(|| async {
            Arc::new(
                testing::postgres_store()
                    .await
                    .expect("PostgreSQL was reachable when the test started"),
            ) as Arc<dyn confab_core::accounts::AccountStore>
        })
        .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_store_honours_the_knowledge_index_contract() {
    if reachable().await {
        contract::knowledge_index_contract(postgres_stores).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_store_stems_knowledge_in_the_projects_language() {
    if reachable().await {
        contract::knowledge_stemming_contract(postgres_stores).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_store_honours_the_message_search_contract() {
    if reachable().await {
        contract::message_search_contract(postgres_stores).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_store_honours_the_usage_ledger_contract() {
    if reachable().await {
        contract::usage_ledger_contract(|| async {
            let database = testing::postgres_database()
                .await
                .expect("PostgreSQL was reachable when the test started");
            let store = Arc::new(database.store().await);
            contract::Ledger {
                stores: Stores::from_one(store.clone()),
                replica: Stores::from_one(Arc::new(database.store().await)),
                ledger: store,
            }
        })
        .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_store_honours_the_message_files_contract() {
    if reachable().await {
        contract::message_files_contract(postgres_stores).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_store_honours_the_share_store_contract() {
    if reachable().await {
        contract::share_store_contract(|| async {
            let store = Arc::new(
                testing::postgres_store()
                    .await
                    .expect("PostgreSQL was reachable when the test started"),
            );
            contract::Shares {
                stores: Stores::from_one(store.clone()),
                shares: store,
            }
        })
        .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_store_honours_the_import_store_contract() {
    if reachable().await {
        contract::import_store_contract(|| async {
            let store = Arc::new(
                testing::postgres_store()
                    .await
                    .expect("PostgreSQL was reachable when the test started"),
            );
            contract::Imports {
                stores: Stores::from_one(store.clone()),
                imports: store,
            }
        })
        .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_store_honours_the_sign_in_state_contract() {
    if reachable().await {
        contract::sign_in_state_contract(|| async {
            let database = testing::postgres_database()
                .await
                .expect("PostgreSQL was reachable when the test started");
            contract::SignInStores {
                store: Arc::new(database.store().await),
                replica: Arc::new(database.store().await),
            }
        })
        .await;
    }
}
