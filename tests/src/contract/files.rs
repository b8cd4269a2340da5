//! The `FileStore` contract.

use std::future::Future;

use confab_core::ids::{FileId, ProjectId};
use confab_core::model::{FileMeta, TextOutcome, TextStatus};

use super::Stores;
use super::fixtures::{
    all_pages, at_micros, file, not_found, ok, stored_file, stored_project, user,
};

/// Runs every case of the `FileStore` contract, each on a fresh store from `fresh`.
pub async fn file_store_contract<F, Fut>(fresh: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = Stores>,
{
    crate::run_cases!(
        "FileStore",
        fresh,
        [
            insert_then_get_returns_the_metadata_unchanged,
            insert_refuses_a_missing_or_another_owners_project_and_stores_nothing,
            get_of_a_missing_file_is_not_found,
            another_owner_gets_not_found_on_every_method_and_nothing_changes,
            list_is_newest_first_and_only_the_projects_files,
            list_pages_return_every_file_exactly_once_with_inserts_between_pages,
            list_of_a_missing_project_is_not_found,
            delete_returns_the_metadata_and_removes_it,
            a_ready_outcome_stores_the_text_for_its_owner_only,
            failed_and_none_outcomes_store_no_text_and_replace_an_earlier_one,
            an_outcome_for_a_missing_file_is_not_found_and_stores_nothing,
            deleting_a_file_deletes_its_text,
            a_twin_is_a_finished_file_of_the_same_project_with_the_same_bytes,
            pending_files_are_every_owners_pending_files_oldest_first_in_pages,
        ]
    );
}

async fn insert_then_get_returns_the_metadata_unchanged(stores: Stores) {
    let alice = user("alice");
    let p = stored_project(&stores, &alice, "Bot").await;
    let big = FileMeta {
        filename: "Quarterly report ü 😀.pdf".to_owned(),
        content_type: "application/pdf".to_owned(),
        // Over 4 GiB: sizes must not be truncated to 32 bits.
        size_bytes: 5_368_709_121,
        sha256: "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08".to_owned(),
        created_at: at_micros(1_700_000_000_999_999),
        ..file(&alice, p.id, "x")
    };
    let small = file(&alice, p.id, "notes.txt");
    for f in [&big, &small] {
        ok(stores.files.insert_file(f).await, "insert_file");
        let got = ok(stores.files.get_file(&alice, f.id).await, "get_file");
        assert_eq!(&got, f, "file metadata came back changed");
    }
}

async fn insert_refuses_a_missing_or_another_owners_project_and_stores_nothing(stores: Stores) {
    let alice = user("alice");
    let mallory = user("mallory");
    let p = stored_project(&stores, &alice, "Bot").await;
    let orphan = file(&alice, ProjectId::new(), "orphan.txt");
    not_found(
        stores.files.insert_file(&orphan).await,
        "insert_file under a missing project",
    );
    let intruder = file(&mallory, p.id, "planted.txt");
    not_found(
        stores.files.insert_file(&intruder).await,
        "insert_file under another owner's project",
    );
    for (owner, f) in [
        (&alice, &orphan),
        (&mallory, &intruder),
        (&alice, &intruder),
    ] {
        not_found(
            stores.files.get_file(owner, f.id).await,
            "get_file of a refused file",
        );
    }
    let listed = ok(
        stores.files.list_files(&alice, p.id, None, 10).await,
        "list_files",
    );
    assert!(listed.is_empty(), "a refused file was stored: {listed:?}");
}

async fn get_of_a_missing_file_is_not_found(stores: Stores) {
    not_found(
        stores.files.get_file(&user("alice"), FileId::new()).await,
        "get_file of an unknown id",
    );
}

async fn another_owner_gets_not_found_on_every_method_and_nothing_changes(stores: Stores) {
    let alice = user("alice");
    let mallory = user("mallory");
    let p = stored_project(&stores, &alice, "Bot").await;
    let f = stored_file(&stores, &alice, p.id, "secret.txt").await;
    not_found(
        stores.files.get_file(&mallory, f.id).await,
        "get_file by another owner",
    );
    not_found(
        stores.files.list_files(&mallory, p.id, None, 10).await,
        "list_files by another owner",
    );
    not_found(
        stores.files.delete_file(&mallory, f.id).await,
        "delete_file by another owner",
    );
    assert_eq!(ok(stores.files.get_file(&alice, f.id).await, "get_file"), f);
    assert_eq!(
        ok(
            stores.files.list_files(&alice, p.id, None, 10).await,
            "list_files"
        ),
        vec![f]
    );
}

async fn list_is_newest_first_and_only_the_projects_files(stores: Stores) {
    let alice = user("alice");
    let p = stored_project(&stores, &alice, "Bot").await;
    let other = stored_project(&stores, &alice, "Other").await;
    let mut mine = Vec::new();
    for i in 0..4 {
        mine.push(file(&alice, p.id, &format!("f{i}.txt")));
    }
    // Inserted out of id order, interleaved with another project's files.
    for index in [1, 3, 0, 2] {
        ok(stores.files.insert_file(&mine[index]).await, "insert_file");
        stored_file(&stores, &alice, other.id, "other.txt").await;
    }
    mine.reverse();
    let listed = ok(
        stores.files.list_files(&alice, p.id, None, 100).await,
        "list_files",
    );
    assert_eq!(
        listed, mine,
        "list_files must be the project's files, id descending"
    );
    let limited = ok(
        stores.files.list_files(&alice, p.id, None, 3).await,
        "list_files",
    );
    assert_eq!(limited, mine[..3].to_vec());
}

async fn list_pages_return_every_file_exactly_once_with_inserts_between_pages(stores: Stores) {
    let alice = user("alice");
    let p = stored_project(&stores, &alice, "Bot").await;
    let mut expected = Vec::new();
    for i in 0..7 {
        expected.push(stored_file(&stores, &alice, p.id, &format!("f{i}")).await);
    }
    expected.reverse();
    let files = &stores.files;
    let owner = &alice;
    let stores_ref = &stores;
    let all = all_pages(
        3,
        |after| files.list_files(owner, p.id, after, 3),
        |f: &FileMeta| f.id,
        || async move {
            stored_file(stores_ref, owner, p.id, "late").await;
        },
    )
    .await;
    assert_eq!(
        all, expected,
        "pages must hold every file once, newest first; a newer file added between pages is not repeated"
    );
    assert_eq!(
        ok(files.list_files(owner, p.id, None, 100).await, "list_files").len(),
        8
    );
}

async fn list_of_a_missing_project_is_not_found(stores: Stores) {
    not_found(
        stores
            .files
            .list_files(&user("alice"), ProjectId::new(), None, 10)
            .await,
        "list_files of a missing project",
    );
}

async fn delete_returns_the_metadata_and_removes_it(stores: Stores) {
    let alice = user("alice");
    let p = stored_project(&stores, &alice, "Bot").await;
    let doomed = stored_file(&stores, &alice, p.id, "doomed.txt").await;
    let kept = stored_file(&stores, &alice, p.id, "kept.txt").await;
    let deleted = ok(
        stores.files.delete_file(&alice, doomed.id).await,
        "delete_file",
    );
    assert_eq!(
        deleted, doomed,
        "delete_file must return the deleted metadata (with its storage key)"
    );
    not_found(
        stores.files.get_file(&alice, doomed.id).await,
        "get_file after delete",
    );
    not_found(
        stores.files.delete_file(&alice, doomed.id).await,
        "a second delete_file",
    );
    assert_eq!(
        ok(
            stores.files.list_files(&alice, p.id, None, 10).await,
            "list_files"
        ),
        vec![kept]
    );
}

async fn a_ready_outcome_stores_the_text_for_its_owner_only(stores: Stores) {
    let alice = user("alice");
    let p = stored_project(&stores, &alice, "Bot").await;
    let f = stored_file(&stores, &alice, p.id, "notes.txt").await;
    assert_eq!(
        ok(
            stores.files.get_file_text(&alice, f.id).await,
            "get_file_text"
        ),
        None,
        "a pending file has no text yet"
    );
    let text = "Quokkas live on Rottnest Island. ü 😀\n".repeat(1000);
    ok(
        stores
            .files
            .set_file_text(f.id, &TextOutcome::Ready(text.clone()))
            .await,
        "set_file_text",
    );
    let got = ok(stores.files.get_file(&alice, f.id).await, "get_file");
    assert_eq!(got.text_status, TextStatus::Ready);
    assert_eq!(got.text_error, None);
    assert_eq!(
        ok(
            stores.files.get_file_text(&alice, f.id).await,
            "get_file_text"
        ),
        Some(text),
        "the text must come back unchanged"
    );
    not_found(
        stores.files.get_file_text(&user("mallory"), f.id).await,
        "get_file_text by another owner",
    );
    not_found(
        stores.files.get_file_text(&alice, FileId::new()).await,
        "get_file_text of a missing file",
    );
}

async fn failed_and_none_outcomes_store_no_text_and_replace_an_earlier_one(stores: Stores) {
    let alice = user("alice");
    let p = stored_project(&stores, &alice, "Bot").await;
    let f = stored_file(&stores, &alice, p.id, "scan.pdf").await;
    ok(
        stores
            .files
            .set_file_text(f.id, &TextOutcome::Ready("old".to_owned()))
            .await,
        "set_file_text ready",
    );
    let reason = "The PDF has no text layer (it may be a scan); its text cannot be read.";
    ok(
        stores
            .files
            .set_file_text(f.id, &TextOutcome::Failed(reason.to_owned()))
            .await,
        "set_file_text failed",
    );
    let got = ok(stores.files.get_file(&alice, f.id).await, "get_file");
    assert_eq!(got.text_status, TextStatus::Failed);
    assert_eq!(got.text_error.as_deref(), Some(reason));
    assert_eq!(
        ok(
            stores.files.get_file_text(&alice, f.id).await,
            "get_file_text"
        ),
        None,
        "a failed file must have no text, not the earlier one"
    );
    ok(
        stores.files.set_file_text(f.id, &TextOutcome::None).await,
        "set_file_text none",
    );
    let got = ok(stores.files.get_file(&alice, f.id).await, "get_file");
    assert_eq!(
        (got.text_status, got.text_error.as_deref()),
        (TextStatus::None, None)
    );
    let listed = ok(
        stores.files.list_files(&alice, p.id, None, 10).await,
        "list_files",
    );
    assert_eq!(listed, vec![got], "lists carry the status too");
}

async fn an_outcome_for_a_missing_file_is_not_found_and_stores_nothing(stores: Stores) {
    let alice = user("alice");
    let p = stored_project(&stores, &alice, "Bot").await;
    let gone = stored_file(&stores, &alice, p.id, "gone.txt").await;
    ok(
        stores.files.delete_file(&alice, gone.id).await,
        "delete_file",
    );
    not_found(
        stores
            .files
            .set_file_text(gone.id, &TextOutcome::Ready("late".to_owned()))
            .await,
        "set_file_text of a file deleted while it was read",
    );
    // The same id inserted again starts without text.
    ok(stores.files.insert_file(&gone).await, "insert_file again");
    assert_eq!(
        ok(
            stores.files.get_file_text(&alice, gone.id).await,
            "get_file_text"
        ),
        None
    );
}

async fn deleting_a_file_deletes_its_text(stores: Stores) {
    let alice = user("alice");
    let p = stored_project(&stores, &alice, "Bot").await;
    let f = stored_file(&stores, &alice, p.id, "notes.txt").await;
    ok(
        stores
            .files
            .set_file_text(f.id, &TextOutcome::Ready("secret".to_owned()))
            .await,
        "set_file_text",
    );
    ok(stores.files.delete_file(&alice, f.id).await, "delete_file");
    not_found(
        stores.files.get_file_text(&alice, f.id).await,
        "get_file_text after delete",
    );
    // Inserted again under the same id, the file must not find its old text.
    ok(stores.files.insert_file(&f).await, "insert_file again");
    assert_eq!(
        ok(
            stores.files.get_file_text(&alice, f.id).await,
            "get_file_text"
        ),
        None,
        "the text must have been deleted with its file"
    );
    let later = FileMeta {
        id: FileId::new(),
        ..f.clone()
    };
    ok(stores.files.insert_file(&later).await, "insert_file");
    assert_eq!(
        ok(stores.files.extracted_twin(&later).await, "extracted_twin"),
        None,
        "a deleted file is no twin"
    );
}

async fn a_twin_is_a_finished_file_of_the_same_project_with_the_same_bytes(stores: Stores) {
    let alice = user("alice");
    let p = stored_project(&stores, &alice, "Bot").await;
    let other = stored_project(&stores, &alice, "Other").await;
    let first = stored_file(&stores, &alice, p.id, "a.txt").await;
    let again = FileMeta {
        id: FileId::new(),
        ..first.clone()
    };
    ok(stores.files.insert_file(&again).await, "insert_file");
    assert_eq!(
        ok(stores.files.extracted_twin(&again).await, "extracted_twin"),
        None,
        "a pending twin has nothing to give"
    );
    ok(
        stores
            .files
            .set_file_text(first.id, &TextOutcome::Ready("shared text".to_owned()))
            .await,
        "set_file_text",
    );
    assert_eq!(
        ok(stores.files.extracted_twin(&again).await, "extracted_twin"),
        Some(TextOutcome::Ready("shared text".to_owned()))
    );
    assert_eq!(
        ok(stores.files.extracted_twin(&first).await, "extracted_twin"),
        None,
        "a file is not its own twin"
    );
    let elsewhere = FileMeta {
        id: FileId::new(),
        project_id: other.id,
        ..first.clone()
    };
    ok(stores.files.insert_file(&elsewhere).await, "insert_file");
    assert_eq!(
        ok(
            stores.files.extracted_twin(&elsewhere).await,
            "extracted_twin"
        ),
        None,
        "another project's file is no twin"
    );
    let different = FileMeta {
        id: FileId::new(),
        sha256: "0".repeat(64),
        ..first.clone()
    };
    ok(stores.files.insert_file(&different).await, "insert_file");
    assert_eq!(
        ok(
            stores.files.extracted_twin(&different).await,
            "extracted_twin"
        ),
        None,
        "other bytes are no twin"
    );
    ok(
        stores
            .files
            .set_file_text(first.id, &TextOutcome::Failed("Encrypted.".to_owned()))
            .await,
        "set_file_text",
    );
    assert_eq!(
        ok(stores.files.extracted_twin(&again).await, "extracted_twin"),
        Some(TextOutcome::Failed("Encrypted.".to_owned()))
    );
}

async fn pending_files_are_every_owners_pending_files_oldest_first_in_pages(stores: Stores) {
    let alice = user("alice");
    let bob = user("bob");
    let pa = stored_project(&stores, &alice, "A").await;
    let pb = stored_project(&stores, &bob, "B").await;
    let mut pending = Vec::new();
    for i in 0..5 {
        let (owner, project) = if i % 2 == 0 {
            (&alice, pa.id)
        } else {
            (&bob, pb.id)
        };
        pending.push(stored_file(&stores, owner, project, &format!("p{i}")).await);
    }
    let done = stored_file(&stores, &alice, pa.id, "done").await;
    ok(
        stores
            .files
            .set_file_text(done.id, &TextOutcome::None)
            .await,
        "set_file_text",
    );
    let image = FileMeta {
        text_status: TextStatus::None,
        ..file(&alice, pa.id, "image.png")
    };
    ok(stores.files.insert_file(&image).await, "insert_file");

    let first = ok(stores.files.pending_files(None, 3).await, "pending_files");
    assert_eq!(
        first,
        pending[..3].to_vec(),
        "oldest first, at most the limit"
    );
    let rest = ok(
        stores.files.pending_files(Some(first[2].id), 3).await,
        "pending_files",
    );
    assert_eq!(
        rest,
        pending[3..].to_vec(),
        "strictly after the cursor, only pending ones"
    );
}
