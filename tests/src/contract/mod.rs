//! Contract suites: one factory-driven async function per port, run against every adapter.
//!
//! Each suite runs many named cases, each on a fresh store made by the factory, and every
//! MUST sentence of `confab_core::ports` is an assertion of some case. A suite runs all its
//! cases, then panics listing the ones that failed (each failure's own panic message, with
//! its line, is printed as it happens).

use std::any::Any;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;

use confab_core::ports::{
    ChatHistory, FileStore, KnowledgeIndex, MessageSearch, ProjectStore, PromptStore,
};
use futures::FutureExt;

pub mod accounts;
pub mod attachments;
pub mod auth;
pub mod blobs;
pub mod files;
pub mod fixtures;
pub mod history;
pub mod imports;
pub mod knowledge;
pub mod limiter;
pub mod live;
pub mod llm;
pub mod projects;
pub mod prompts;
pub mod search;
pub mod shares;
pub mod sign_in;
pub mod tree;
pub mod usage;

pub use accounts::account_store_contract;
pub use attachments::message_files_contract;
pub use blobs::blob_store_contract;
pub use files::file_store_contract;
pub use history::chat_history_contract;
pub use imports::{Imports, import_store_contract};
pub use knowledge::{knowledge_index_contract, knowledge_stemming_contract};
pub use limiter::{LimiterSubject, send_limiter_contract};
pub use live::live_replies_contract;
pub use llm::{LlmSubject, llm_stream_contract};
pub use projects::project_store_contract;
pub use prompts::prompt_store_contract;
pub use search::message_search_contract;
pub use shares::{Shares, share_store_contract};
pub use sign_in::{SignInStores, sign_in_state_contract};
pub use tree::conversation_tree_contract;
pub use usage::{Ledger, usage_ledger_contract};

/// The storage ports of one adapter, sharing one backing store (a fresh one per case).
#[derive(Clone)]
pub struct Stores {
    /// Projects.
    pub projects: Arc<dyn ProjectStore>,
    /// Versioned prompts.
    pub prompts: Arc<dyn PromptStore>,
    /// Conversations and messages.
    pub history: Arc<dyn ChatHistory>,
    /// File metadata and text.
    pub files: Arc<dyn FileStore>,
    /// Full-text search over the files' text.
    pub knowledge: Arc<dyn KnowledgeIndex>,
    /// Full-text search over messages and titles.
    pub search: Arc<dyn MessageSearch>,
}

impl Stores {
    /// Every storage port served by one adapter value.
    pub fn from_one<S>(store: Arc<S>) -> Self
    where
        S: ProjectStore + PromptStore + ChatHistory + FileStore + KnowledgeIndex + MessageSearch,
    {
        Self {
            projects: store.clone(),
            prompts: store.clone(),
            history: store.clone(),
            files: store.clone(),
            knowledge: store.clone(),
            search: store,
        }
    }
}

/// Runs the named cases of one suite and reports every failure at the end.
pub struct Suite {
    name: &'static str,
    ran: usize,
    failures: Vec<String>,
}

impl Suite {
    /// A suite called `name` (the port it checks).
    #[must_use]
    pub fn new(name: &'static str) -> Self {
        Self {
            name,
            ran: 0,
            failures: Vec::new(),
        }
    }

    /// Runs one case; a panic inside it is recorded as that case's failure.
    pub async fn case(&mut self, case: &'static str, body: impl Future<Output = ()>) {
        self.ran += 1;
        if let Err(payload) = AssertUnwindSafe(body).catch_unwind().await {
            let message = panic_message(payload.as_ref());
            eprintln!("{} contract: case `{case}` FAILED: {message}", self.name);
            self.failures.push(format!("{case}: {message}"));
        }
    }

    /// Panics when a case failed, naming each.
    pub fn finish(self) {
        assert!(
            self.failures.is_empty(),
            "{} contract: {} of {} cases failed:\n  - {}",
            self.name,
            self.failures.len(),
            self.ran,
            self.failures.join("\n  - ")
        );
    }
}

fn panic_message(payload: &(dyn Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "a panic without a message".to_owned()
    }
}

/// `run_cases!(suite_name, fresh, [case_fn, ...])`: runs each `async fn case_fn(S)` on
/// `fresh().await`, as a case named after the function.
#[macro_export]
macro_rules! run_cases {
    ($suite:expr, $fresh:expr, [$($case:ident),* $(,)?]) => {{
        let mut suite = $crate::contract::Suite::new($suite);
        $(
            suite
                .case(stringify!($case), async { $case(($fresh)().await).await })
                .await;
        )*
        suite.finish();
    }};
}
