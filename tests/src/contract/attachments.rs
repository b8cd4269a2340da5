//! The attachment rules of `ChatHistory::begin_turn`: a user message links files of its
//! owner in the conversation's project, in order, in the same transaction; every read of the
//! message names them, a deleted file as deleted.

use std::future::Future;

use confab_core::error::StoreError;
use confab_core::ids::{ConversationId, FileId, UserId};
use confab_core::model::{FileMeta, Message, MessageFile, Parent, now};
use confab_core::ports::{NewTurn, Turn};

use super::Stores;
use super::fixtures::{
    completed, not_found, ok, plus_mins, stored_conversation, stored_file, stored_project, turn,
    user,
};

/// Runs every case of the attachment rules, each on a fresh store from `fresh`.
pub async fn message_files_contract<F, Fut>(fresh: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = Stores>,
{
    crate::run_cases!(
        "ChatHistory attachments",
        fresh,
        [
            a_turn_links_its_files_in_order_and_every_read_names_them,
            a_message_without_files_has_none,
            another_owners_file_is_not_found_and_nothing_is_stored,
            a_file_of_another_project_is_not_found_and_nothing_is_stored,
            an_unknown_file_is_not_found_and_nothing_is_stored,
            a_deleted_file_stays_named_as_deleted,
        ]
    );
}

fn link(file: &FileMeta) -> MessageFile {
    MessageFile::from(file)
}

/// Begins a linear turn in `conversation` attaching `file_ids`.
async fn attach(
    stores: &Stores,
    owner: &UserId,
    conversation: ConversationId,
    text: &str,
    file_ids: Vec<FileId>,
) -> (Message, Message, Result<Turn, StoreError>) {
    let at = now();
    let (user, reply) = turn(conversation, text, None, at);
    let new = NewTurn {
        user: Some(user.clone()),
        parent: Parent::Leaf,
        reply: reply.clone(),
        file_ids,
        quota: None,
    };
    let began = stores
        .history
        .begin_turn(owner, &new, plus_mins(at, -60), 200)
        .await;
    (user, reply, began)
}

async fn all_messages(stores: &Stores, owner: &UserId, id: ConversationId) -> Vec<Message> {
    ok(
        stores.history.list_messages(owner, id, None, 1_000).await,
        "list_messages",
    )
}

async fn a_turn_links_its_files_in_order_and_every_read_names_them(stores: Stores) {
    let ann = user("ann");
    let project = stored_project(&stores, &ann, "Files").await;
    let conversation = stored_conversation(&stores, &ann, project.id).await;
    let notes = stored_file(&stores, &ann, project.id, "notes.txt").await;
    let plan = stored_file(&stores, &ann, project.id, "plan.pdf").await;
    let (user_message, reply, began) = attach(
        &stores,
        &ann,
        conversation.id,
        "Read these.",
        vec![plan.id, notes.id],
    )
    .await;
    let began = ok(began, "begin_turn");
    let expected = vec![link(&plan), link(&notes)];
    assert_eq!(began.files, expected, "the turn returns the links in order");

    let listed = all_messages(&stores, &ann, conversation.id).await;
    assert_eq!(listed.len(), 2);
    assert_eq!(listed[0].id, user_message.id);
    assert_eq!(listed[0].files, expected, "list_messages names the files");
    assert!(listed[1].files.is_empty(), "a reply has no files");

    let got = ok(
        stores.history.get_message(&ann, user_message.id).await,
        "get_message",
    );
    assert_eq!(got.files, expected, "get_message names the files");

    let branch = ok(
        stores
            .history
            .list_branch(&ann, conversation.id, None, None, 50)
            .await,
        "list_branch",
    );
    assert_eq!(branch.messages[0].message.files, expected);
    assert!(branch.messages[1].message.files.is_empty());

    // The next turn's history carries them too.
    ok(
        stores
            .history
            .finish_reply(&completed(&reply, "Read."), now())
            .await,
        "finish_reply",
    );
    let (_, _, next) = attach(&stores, &ann, conversation.id, "And?", Vec::new()).await;
    let next = ok(next, "begin_turn");
    assert!(next.files.is_empty());
    assert_eq!(next.history.len(), 2);
    assert_eq!(
        next.history[0].files, expected,
        "the history names the files"
    );
}

async fn a_message_without_files_has_none(stores: Stores) {
    let ann = user("ann");
    let project = stored_project(&stores, &ann, "Files").await;
    let conversation = stored_conversation(&stores, &ann, project.id).await;
    stored_file(&stores, &ann, project.id, "notes.txt").await;
    let (_, _, began) = attach(&stores, &ann, conversation.id, "Hi.", Vec::new()).await;
    assert!(ok(began, "begin_turn").files.is_empty());
    for message in all_messages(&stores, &ann, conversation.id).await {
        assert!(message.files.is_empty());
    }
}

/// Asserts the conversation holds no message: the refused turn stored nothing.
async fn nothing_stored(stores: &Stores, owner: &UserId, conversation: ConversationId) {
    assert!(
        all_messages(stores, owner, conversation).await.is_empty(),
        "a refused turn stores nothing"
    );
    let read = ok(
        stores.history.get_conversation(owner, conversation).await,
        "get_conversation",
    );
    assert_eq!(read.leaf_id, None, "a refused turn moves no leaf");
}

async fn another_owners_file_is_not_found_and_nothing_is_stored(stores: Stores) {
    let (ann, bob) = (user("ann"), user("bob"));
    let project = stored_project(&stores, &ann, "Files").await;
    let conversation = stored_conversation(&stores, &ann, project.id).await;
    let mine = stored_file(&stores, &ann, project.id, "mine.txt").await;
    let bobs_project = stored_project(&stores, &bob, "Bob's").await;
    let theirs = stored_file(&stores, &bob, bobs_project.id, "theirs.txt").await;
    let (_, _, began) = attach(
        &stores,
        &ann,
        conversation.id,
        "Read theirs.",
        vec![mine.id, theirs.id],
    )
    .await;
    not_found(began, "begin_turn with another owner's file");
    nothing_stored(&stores, &ann, conversation.id).await;
}

async fn a_file_of_another_project_is_not_found_and_nothing_is_stored(stores: Stores) {
    let ann = user("ann");
    let project = stored_project(&stores, &ann, "Files").await;
    let other = stored_project(&stores, &ann, "Other").await;
    let conversation = stored_conversation(&stores, &ann, project.id).await;
    let elsewhere = stored_file(&stores, &ann, other.id, "elsewhere.txt").await;
    let (_, _, began) = attach(
        &stores,
        &ann,
        conversation.id,
        "Read it.",
        vec![elsewhere.id],
    )
    .await;
    not_found(began, "begin_turn with a file of another project");
    nothing_stored(&stores, &ann, conversation.id).await;
}

async fn an_unknown_file_is_not_found_and_nothing_is_stored(stores: Stores) {
    let ann = user("ann");
    let project = stored_project(&stores, &ann, "Files").await;
    let conversation = stored_conversation(&stores, &ann, project.id).await;
    let (_, _, began) = attach(
        &stores,
        &ann,
        conversation.id,
        "Read it.",
        vec![FileId::new()],
    )
    .await;
    not_found(began, "begin_turn with an unknown file");
    nothing_stored(&stores, &ann, conversation.id).await;
}

async fn a_deleted_file_stays_named_as_deleted(stores: Stores) {
    let ann = user("ann");
    let project = stored_project(&stores, &ann, "Files").await;
    let conversation = stored_conversation(&stores, &ann, project.id).await;
    let kept = stored_file(&stores, &ann, project.id, "kept.txt").await;
    let gone = stored_file(&stores, &ann, project.id, "gone.txt").await;
    let (user_message, _, began) = attach(
        &stores,
        &ann,
        conversation.id,
        "Read both.",
        vec![gone.id, kept.id],
    )
    .await;
    ok(began, "begin_turn");
    ok(stores.files.delete_file(&ann, gone.id).await, "delete_file");

    let got = ok(
        stores.history.get_message(&ann, user_message.id).await,
        "get_message",
    );
    let mut deleted = link(&gone);
    deleted.deleted = true;
    assert_eq!(got.files, vec![deleted.clone(), link(&kept)]);
    let listed = all_messages(&stores, &ann, conversation.id).await;
    assert_eq!(listed[0].files, vec![deleted, link(&kept)]);
}
