//! The `ImportStore` contract: an imported conversation is stored whole (every branch, its
//! leaf, every field of every message) in one step, at most once per project and key, and
//! never into another user's project.

use std::future::Future;
use std::sync::Arc;

use confab_core::ids::{FileId, ProjectId};
use confab_core::model::{MessageFile, MessageStatus, Role, Usage};
use confab_core::transfer::{
    ImportConversation, ImportMessage, ImportOutcome, ImportStore, NewImport, plan,
};

use super::Stores;
use super::fixtures::{at_micros, not_found, ok, stored_project, user};

/// The stores and the import store of one adapter.
pub struct Imports {
    pub stores: Stores,
    pub imports: Arc<dyn ImportStore>,
}

/// Runs every case of the `ImportStore` contract, each on a fresh store from `fresh`.
pub async fn import_store_contract<F, Fut>(fresh: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = Imports>,
{
    crate::run_cases!(
        "ImportStore",
        fresh,
        [
            an_import_is_stored_whole_with_every_branch_and_its_leaf,
            the_same_key_is_imported_once_per_project,
            racing_imports_of_one_key_store_it_once,
            another_users_project_is_not_found_and_nothing_is_stored,
            deleting_an_imported_conversation_frees_its_key,
        ]
    );
}

fn message(id: &str, parent: Option<&str>, role: Role, micros: i64) -> ImportMessage {
    ImportMessage {
        source_id: id.to_owned(),
        parent: parent.map(str::to_owned),
        role,
        content: format!("{id}: héllo ✓"),
        status: MessageStatus::Complete,
        model: (role == Role::Assistant).then(|| "gpt-test".to_owned()),
        usage: (role == Role::Assistant).then_some(Usage {
            input_tokens: 11,
            output_tokens: 22,
        }),
        error: None,
        created_at: at_micros(micros),
        files: Vec::new(),
    }
}

/// A conversation with two branches: q1 → (a1 | a2 (failed) → q2 → a3); a3 is shown.
fn source(key: &str) -> ImportConversation {
    let mut q1 = message("q1", None, Role::User, 1_700_000_000_000_001);
    q1.files.push(MessageFile {
        id: FileId::new(),
        filename: "notes.txt".to_owned(),
        content_type: "text/plain".to_owned(),
        size_bytes: 12,
        deleted: false,
    });
    let mut a2 = message("a2", Some("q1"), Role::Assistant, 1_700_000_000_000_003);
    a2.status = MessageStatus::Failed;
    a2.error = Some("upstream error".to_owned());
    a2.usage = None;
    ImportConversation {
        key: key.to_owned(),
        title: Some("Imported".to_owned()),
        model: Some("gpt-test".to_owned()),
        created_at: at_micros(1_700_000_000_000_000),
        updated_at: at_micros(1_700_000_000_000_009),
        current: Some("a3".to_owned()),
        messages: vec![
            q1,
            message("a1", Some("q1"), Role::Assistant, 1_700_000_000_000_002),
            a2,
            message("q2", Some("a2"), Role::User, 1_700_000_000_000_004),
            message("a3", Some("q2"), Role::Assistant, 1_700_000_000_000_005),
        ],
    }
}

fn planned(owner: &confab_core::UserId, project: ProjectId, key: &str) -> NewImport {
    match plan(owner, project, &source(key)) {
        Ok(import) => import,
        Err(e) => panic!("plan: {e}"),
    }
}

async fn an_import_is_stored_whole_with_every_branch_and_its_leaf(s: Imports) {
    let alice = user("alice");
    let project = stored_project(&s.stores, &alice, "P").await;
    let import = planned(&alice, project.id, "test:1");
    assert_eq!(
        ok(s.imports.import_conversation(&import).await, "import"),
        ImportOutcome::Imported
    );
    let id = import.conversation.id;
    let stored = ok(
        s.stores.history.get_conversation(&alice, id).await,
        "get_conversation",
    );
    assert_eq!(stored.title.as_deref(), Some("Imported"));
    assert_eq!(stored.model.as_deref(), Some("gpt-test"));
    assert_eq!(stored.created_at, import.conversation.created_at);
    assert_eq!(stored.updated_at, import.conversation.updated_at);
    assert_eq!(stored.leaf_id, Some(import.messages[4].id));
    assert_eq!(stored.active_reply_id, None);
    let messages = ok(
        s.stores.history.list_messages(&alice, id, None, 50).await,
        "list_messages",
    );
    assert_eq!(messages, import.messages, "every message as given");
    // The shown branch is the one through a2.
    let branch = ok(
        s.stores
            .history
            .list_branch(&alice, id, None, None, 50)
            .await,
        "list_branch",
    );
    let contents: Vec<&str> = branch
        .messages
        .iter()
        .map(|m| m.message.content.as_str())
        .collect();
    assert_eq!(
        contents,
        ["q1: héllo ✓", "a2: héllo ✓", "q2: héllo ✓", "a3: héllo ✓"]
    );
    assert_eq!(
        branch.messages[1].sibling_ids,
        vec![import.messages[1].id, import.messages[2].id]
    );
    // The conversation is listed in its project.
    let listed = ok(
        s.stores
            .history
            .list_conversations(&alice, project.id, None, 10)
            .await,
        "list_conversations",
    );
    assert_eq!(listed.len(), 1);
}

async fn the_same_key_is_imported_once_per_project(s: Imports) {
    let alice = user("alice");
    let project = stored_project(&s.stores, &alice, "P").await;
    let other = stored_project(&s.stores, &alice, "Q").await;
    let first = planned(&alice, project.id, "test:1");
    ok(s.imports.import_conversation(&first).await, "import");
    let again = planned(&alice, project.id, "test:1");
    assert_eq!(
        ok(s.imports.import_conversation(&again).await, "import again"),
        ImportOutcome::AlreadyImported
    );
    not_found(
        s.stores
            .history
            .get_conversation(&alice, again.conversation.id)
            .await,
        "the second import's conversation",
    );
    let listed = ok(
        s.stores
            .history
            .list_conversations(&alice, project.id, None, 10)
            .await,
        "list_conversations",
    );
    assert_eq!(listed.len(), 1, "nothing added the second time");
    // Another key, or the same key in another project, is imported.
    let another = planned(&alice, project.id, "test:2");
    assert_eq!(
        ok(s.imports.import_conversation(&another).await, "another key"),
        ImportOutcome::Imported
    );
    let elsewhere = planned(&alice, other.id, "test:1");
    assert_eq!(
        ok(
            s.imports.import_conversation(&elsewhere).await,
            "another project"
        ),
        ImportOutcome::Imported
    );
}

async fn racing_imports_of_one_key_store_it_once(s: Imports) {
    let alice = user("alice");
    let project = stored_project(&s.stores, &alice, "P").await;
    let imports: Vec<NewImport> = (0..4)
        .map(|_| planned(&alice, project.id, "test:race"))
        .collect();
    let outcomes = futures::future::join_all(
        imports
            .iter()
            .map(|import| s.imports.import_conversation(import)),
    )
    .await;
    let outcomes: Vec<ImportOutcome> = outcomes
        .into_iter()
        .map(|o| ok(o, "racing import"))
        .collect();
    assert_eq!(
        outcomes
            .iter()
            .filter(|o| **o == ImportOutcome::Imported)
            .count(),
        1,
        "{outcomes:?}"
    );
    let listed = ok(
        s.stores
            .history
            .list_conversations(&alice, project.id, None, 10)
            .await,
        "list_conversations",
    );
    assert_eq!(listed.len(), 1);
}

async fn another_users_project_is_not_found_and_nothing_is_stored(s: Imports) {
    let alice = user("alice");
    let bob = user("bob");
    let project = stored_project(&s.stores, &alice, "P").await;
    let import = planned(&bob, project.id, "test:1");
    not_found(
        s.imports.import_conversation(&import).await,
        "import into another user's project",
    );
    not_found(
        s.stores
            .history
            .get_conversation(&bob, import.conversation.id)
            .await,
        "bob's conversation",
    );
    let listed = ok(
        s.stores
            .history
            .list_conversations(&alice, project.id, None, 10)
            .await,
        "list_conversations",
    );
    assert!(listed.is_empty());
    let missing = planned(&alice, ProjectId::new(), "test:1");
    not_found(
        s.imports.import_conversation(&missing).await,
        "import into a missing project",
    );
}

async fn deleting_an_imported_conversation_frees_its_key(s: Imports) {
    let alice = user("alice");
    let project = stored_project(&s.stores, &alice, "P").await;
    let first = planned(&alice, project.id, "test:1");
    ok(s.imports.import_conversation(&first).await, "import");
    ok(
        s.stores
            .history
            .delete_conversation(&alice, first.conversation.id)
            .await,
        "delete_conversation",
    );
    let again = planned(&alice, project.id, "test:1");
    assert_eq!(
        ok(s.imports.import_conversation(&again).await, "import again"),
        ImportOutcome::Imported
    );
}
