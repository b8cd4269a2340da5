//! The `ProjectStore` contract.

use std::future::Future;

use confab_core::error::Conflict;
use confab_core::ids::ProjectId;
use confab_core::model::{MessageStatus, Project, ProjectPatch, now};
use confab_core::values::SearchLanguage;

use super::Stores;
use super::fixtures::{
    at_micros, begun_turn, conflict, finished_turn, new_prompt, not_found, ok, plus_mins,
    plus_secs, project, stored_conversation, stored_file, stored_project, user,
};

/// Runs every case of the `ProjectStore` contract, each on a fresh store from `fresh`.
pub async fn project_store_contract<F, Fut>(fresh: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = Stores>,
{
    crate::run_cases!(
        "ProjectStore",
        fresh,
        [
            insert_then_get_returns_the_project_unchanged,
            insert_refuses_a_duplicate_id_and_keeps_the_first,
            get_of_a_missing_project_is_not_found,
            list_returns_only_the_owners_projects_newest_first,
            list_respects_the_limit,
            list_pages_return_every_project_exactly_once,
            projects_inserted_between_two_pages_are_never_repeated_or_skipped,
            update_applies_only_the_fields_present_and_sets_updated_at,
            update_of_a_missing_project_is_not_found,
            another_owner_gets_not_found_on_every_method_and_nothing_changes,
            delete_removes_the_project_with_everything_under_it_and_returns_its_storage_keys,
            delete_of_a_project_without_files_returns_no_keys,
            ping_answers_ok,
        ]
    );
}

async fn insert_then_get_returns_the_project_unchanged(stores: Stores) {
    let alice = user("alice");
    let created = at_micros(1_700_000_000_123_457);
    let full = Project {
        description: Some("Ünïcode 😀 and \"quotes\"\nand lines".to_owned()),
        created_at: created,
        updated_at: plus_secs(created, 90) + chrono::TimeDelta::microseconds(1),
        language: SearchLanguage::new("french").unwrap(),
        ..project(&alice, "Support bot")
    };
    let bare = Project {
        description: None,
        ..project(&alice, "Bare")
    };
    for p in [&full, &bare] {
        ok(stores.projects.insert_project(p).await, "insert_project");
        let got = ok(
            stores.projects.get_project(&alice, p.id).await,
            "get_project",
        );
        assert_eq!(
            &got, p,
            "a stored project came back changed (timestamps must keep microseconds, UTC)"
        );
    }
}

async fn insert_refuses_a_duplicate_id_and_keeps_the_first(stores: Stores) {
    let alice = user("alice");
    let first = stored_project(&stores, &alice, "First").await;
    let again = Project {
        name: "Second".to_owned(),
        ..first.clone()
    };
    conflict(
        stores.projects.insert_project(&again).await,
        Conflict::DuplicateId,
        "insert_project with an existing id",
    );
    let got = ok(
        stores.projects.get_project(&alice, first.id).await,
        "get_project",
    );
    assert_eq!(got, first);
}

async fn get_of_a_missing_project_is_not_found(stores: Stores) {
    not_found(
        stores
            .projects
            .get_project(&user("alice"), ProjectId::new())
            .await,
        "get_project of an unknown id",
    );
}

async fn list_returns_only_the_owners_projects_newest_first(stores: Stores) {
    let alice = user("alice");
    let bob = user("bob");
    // Made in id order, inserted out of it, interleaved with another owner's.
    let mut mine: Vec<Project> = Vec::new();
    let mut theirs: Vec<Project> = Vec::new();
    for i in 0..4 {
        mine.push(project(&alice, &format!("a{i}")));
        if i < 3 {
            theirs.push(project(&bob, &format!("b{i}")));
        }
    }
    for index in [2, 0, 3, 1] {
        ok(
            stores.projects.insert_project(&mine[index]).await,
            "insert_project",
        );
        if let Some(p) = theirs.get(index) {
            ok(stores.projects.insert_project(p).await, "insert_project");
        }
    }
    let listed = ok(
        stores.projects.list_projects(&alice, None, 100).await,
        "list_projects",
    );
    let mut expected = mine.clone();
    expected.reverse();
    assert_eq!(
        listed, expected,
        "list_projects must be the owner's projects, id descending"
    );
    let listed = ok(
        stores.projects.list_projects(&bob, None, 100).await,
        "list_projects",
    );
    assert!(
        listed.iter().all(|p| p.owner_id == bob),
        "another owner's project was listed"
    );
    assert_eq!(listed.len(), 3);
    let nobody = ok(
        stores
            .projects
            .list_projects(&user("carol"), None, 100)
            .await,
        "list_projects",
    );
    assert!(nobody.is_empty(), "a user without projects sees {nobody:?}");
}

async fn list_respects_the_limit(stores: Stores) {
    let alice = user("alice");
    let mut made = Vec::new();
    for i in 0..3 {
        made.push(stored_project(&stores, &alice, &format!("p{i}")).await);
    }
    let one = ok(
        stores.projects.list_projects(&alice, None, 1).await,
        "list_projects",
    );
    assert_eq!(
        one,
        vec![made[2].clone()],
        "limit 1 must give the newest project"
    );
    let two = ok(
        stores.projects.list_projects(&alice, None, 2).await,
        "list_projects",
    );
    assert_eq!(two.len(), 2);
}

async fn list_pages_return_every_project_exactly_once(stores: Stores) {
    let alice = user("alice");
    let mut expected = Vec::new();
    for i in 0..7 {
        expected.push(stored_project(&stores, &alice, &format!("p{i}")).await);
    }
    expected.reverse();
    let projects = &stores.projects;
    let all = super::fixtures::all_pages(
        3,
        |after| projects.list_projects(&alice, after, 3),
        |p: &Project| p.id,
        || async {},
    )
    .await;
    assert_eq!(
        all, expected,
        "pages of 3 must hold every project once, newest first"
    );
    // A cursor past the last row gives an empty page.
    let last = expected.last().map(|p| p.id);
    let after_last = ok(
        projects.list_projects(&alice, last, 3).await,
        "list_projects",
    );
    assert!(after_last.is_empty());
}

async fn projects_inserted_between_two_pages_are_never_repeated_or_skipped(stores: Stores) {
    let alice = user("alice");
    let mut expected = Vec::new();
    for i in 0..6 {
        expected.push(stored_project(&stores, &alice, &format!("p{i}")).await);
    }
    expected.reverse();
    let projects = &stores.projects;
    let mut added = Vec::new();
    let all = super::fixtures::all_pages(
        3,
        |after| projects.list_projects(&alice, after, 3),
        |p: &Project| p.id,
        || async {
            for i in 0..2 {
                added.push(stored_project(&stores, &alice, &format!("new{i}")).await);
            }
        },
    )
    .await;
    assert_eq!(
        all, expected,
        "newer projects inserted after the first page must not show up on later pages, and no older one may be skipped"
    );
    let everything = ok(
        projects.list_projects(&alice, None, 100).await,
        "list_projects",
    );
    assert_eq!(everything.len(), 8);
    assert_eq!(everything[0].id, added[1].id);
}

async fn update_applies_only_the_fields_present_and_sets_updated_at(stores: Stores) {
    let alice = user("alice");
    let original = stored_project(&stores, &alice, "Old").await;
    let t1 = plus_secs(original.updated_at, 10);
    let renamed = ok(
        stores
            .projects
            .update_project(
                &alice,
                original.id,
                &ProjectPatch {
                    name: Some("New".to_owned()),
                    description: None,
                    knowledge: None,
                    language: None,
                },
                t1,
            )
            .await,
        "update_project",
    );
    let expected = Project {
        name: "New".to_owned(),
        updated_at: t1,
        ..original.clone()
    };
    assert_eq!(renamed, expected, "only the name and updated_at may change");
    assert_eq!(
        ok(
            stores.projects.get_project(&alice, original.id).await,
            "get_project"
        ),
        expected
    );

    let t2 = plus_secs(t1, 10);
    let cleared = ok(
        stores
            .projects
            .update_project(
                &alice,
                original.id,
                &ProjectPatch {
                    name: None,
                    description: Some(None),
                    knowledge: None,
                    language: None,
                },
                t2,
            )
            .await,
        "update_project",
    );
    assert_eq!(
        cleared.description, None,
        "description Some(None) must clear it"
    );
    assert_eq!(cleared.name, "New");
    assert_eq!(cleared.updated_at, t2);

    let t3 = plus_secs(t2, 10);
    let described = ok(
        stores
            .projects
            .update_project(
                &alice,
                original.id,
                &ProjectPatch {
                    name: None,
                    description: Some(Some("Described".to_owned())),
                    knowledge: None,
                    language: None,
                },
                t3,
            )
            .await,
        "update_project",
    );
    assert_eq!(described.description.as_deref(), Some("Described"));

    let t4 = plus_secs(t3, 10);
    let touched = ok(
        stores
            .projects
            .update_project(&alice, original.id, &ProjectPatch::default(), t4)
            .await,
        "update_project",
    );
    assert_eq!(
        touched,
        Project {
            name: "New".to_owned(),
            description: Some("Described".to_owned()),
            updated_at: t4,
            ..original
        },
        "an empty patch changes only updated_at"
    );
    assert!(touched.knowledge, "a project's knowledge is on by default");

    let t5 = plus_secs(t4, 10);
    let off = ok(
        stores
            .projects
            .update_project(
                &alice,
                original.id,
                &ProjectPatch {
                    knowledge: Some(false),
                    ..ProjectPatch::default()
                },
                t5,
            )
            .await,
        "update_project",
    );
    assert_eq!(
        off,
        Project {
            knowledge: false,
            updated_at: t5,
            ..touched
        },
        "knowledge Some(false) turns it off and changes nothing else"
    );
    assert!(
        !ok(
            stores.projects.get_project(&alice, original.id).await,
            "get_project"
        )
        .knowledge
    );
    assert_eq!(off.language, SearchLanguage::ENGLISH, "english by default");

    let t6 = plus_secs(t5, 10);
    let french = SearchLanguage::new("french").unwrap();
    let changed = ok(
        stores
            .projects
            .update_project(
                &alice,
                original.id,
                &ProjectPatch {
                    language: Some(french),
                    ..ProjectPatch::default()
                },
                t6,
            )
            .await,
        "update_project",
    );
    assert_eq!(
        changed,
        Project {
            language: french,
            updated_at: t6,
            ..off
        },
        "language Some(french) changes it and nothing else"
    );
    assert_eq!(
        ok(
            stores.projects.get_project(&alice, original.id).await,
            "get_project"
        )
        .language,
        french,
        "the language is kept"
    );
}

async fn update_of_a_missing_project_is_not_found(stores: Stores) {
    not_found(
        stores
            .projects
            .update_project(
                &user("alice"),
                ProjectId::new(),
                &ProjectPatch::default(),
                now(),
            )
            .await,
        "update_project of an unknown id",
    );
}

async fn another_owner_gets_not_found_on_every_method_and_nothing_changes(stores: Stores) {
    let alice = user("alice");
    let mallory = user("mallory");
    let mine = stored_project(&stores, &alice, "Mine").await;
    let prompt = ok(
        stores
            .prompts
            .create_prompt(&alice, &new_prompt(mine.id, "Be kind.", true))
            .await,
        "create_prompt",
    );
    let conversation = stored_conversation(&stores, &alice, mine.id).await;
    let file = stored_file(&stores, &alice, mine.id, "notes.txt").await;

    not_found(
        stores.projects.get_project(&mallory, mine.id).await,
        "get_project by another owner",
    );
    let patch = ProjectPatch {
        name: Some("Hijacked".to_owned()),
        description: Some(None),
        knowledge: Some(false),
        language: Some(SearchLanguage::new("german").unwrap()),
    };
    not_found(
        stores
            .projects
            .update_project(&mallory, mine.id, &patch, plus_mins(now(), 5))
            .await,
        "update_project by another owner",
    );
    not_found(
        stores.projects.delete_project(&mallory, mine.id).await,
        "delete_project by another owner",
    );
    let listed = ok(
        stores.projects.list_projects(&mallory, None, 100).await,
        "list_projects",
    );
    assert!(listed.is_empty(), "another owner's list shows {listed:?}");

    assert_eq!(
        ok(
            stores.projects.get_project(&alice, mine.id).await,
            "get_project"
        ),
        mine,
        "the project changed after another owner's attempts"
    );
    assert_eq!(
        ok(
            stores.prompts.active_prompt(&alice, mine.id).await,
            "active_prompt"
        ),
        Some(prompt)
    );
    ok(
        stores
            .history
            .get_conversation(&alice, conversation.id)
            .await,
        "get_conversation",
    );
    assert_eq!(
        ok(stores.files.get_file(&alice, file.id).await, "get_file"),
        file
    );
}

async fn delete_removes_the_project_with_everything_under_it_and_returns_its_storage_keys(
    stores: Stores,
) {
    let alice = user("alice");
    let doomed = stored_project(&stores, &alice, "Doomed").await;
    let kept = stored_project(&stores, &alice, "Kept").await;

    for (content, activate) in [("v1", true), ("v2", false)] {
        ok(
            stores
                .prompts
                .create_prompt(&alice, &new_prompt(doomed.id, content, activate))
                .await,
            "create_prompt",
        );
    }
    ok(
        stores
            .prompts
            .create_prompt(&alice, &new_prompt(kept.id, "k1", true))
            .await,
        "create_prompt",
    );
    let doomed_chat = stored_conversation(&stores, &alice, doomed.id).await;
    let (doomed_user, doomed_reply) = begun_turn(&stores, &alice, doomed_chat.id, "hello").await;
    let kept_chat = stored_conversation(&stores, &alice, kept.id).await;
    finished_turn(&stores, &alice, kept_chat.id, "hi").await;
    let f1 = stored_file(&stores, &alice, doomed.id, "a.txt").await;
    let f2 = stored_file(&stores, &alice, doomed.id, "b.txt").await;
    let kept_file = stored_file(&stores, &alice, kept.id, "c.txt").await;

    let mut keys = ok(
        stores.projects.delete_project(&alice, doomed.id).await,
        "delete_project",
    );
    keys.sort();
    let mut expected = vec![f1.storage_key.clone(), f2.storage_key.clone()];
    expected.sort();
    assert_eq!(
        keys, expected,
        "delete_project must return the storage keys of the project's files"
    );

    not_found(
        stores.projects.get_project(&alice, doomed.id).await,
        "get_project after delete",
    );
    not_found(
        stores
            .prompts
            .list_prompts(&alice, doomed.id, None, 10)
            .await,
        "list_prompts after delete",
    );
    not_found(
        stores.prompts.active_prompt(&alice, doomed.id).await,
        "active_prompt after delete",
    );
    not_found(
        stores
            .history
            .get_conversation(&alice, doomed_chat.id)
            .await,
        "get_conversation after delete",
    );
    not_found(
        stores
            .history
            .list_messages(&alice, doomed_chat.id, None, 10)
            .await,
        "list_messages after delete",
    );
    not_found(
        stores
            .history
            .list_conversations(&alice, doomed.id, None, 10)
            .await,
        "list_conversations after delete",
    );
    for f in [&f1, &f2] {
        not_found(
            stores.files.get_file(&alice, f.id).await,
            "get_file after delete",
        );
    }
    not_found(
        stores.files.list_files(&alice, doomed.id, None, 10).await,
        "list_files after delete",
    );
    // The deleted conversation's messages are gone: its streaming reply is not failed later,
    // and finishing it finds nothing.
    assert_eq!(
        ok(
            stores
                .history
                .fail_stale_replies(plus_mins(now(), 60))
                .await,
            "fail_stale_replies"
        ),
        0,
        "a deleted project's streaming reply was still stored"
    );
    let _ = doomed_user;
    not_found(
        stores.history.finish_reply(&doomed_reply, now()).await,
        "finish_reply of a deleted project's reply",
    );

    // The other project is whole.
    assert_eq!(
        ok(
            stores.projects.list_projects(&alice, None, 10).await,
            "list_projects"
        ),
        vec![kept.clone()]
    );
    assert_eq!(
        ok(
            stores.prompts.list_prompts(&alice, kept.id, None, 10).await,
            "list_prompts"
        )
        .len(),
        1
    );
    let messages = ok(
        stores
            .history
            .list_messages(&alice, kept_chat.id, None, 10)
            .await,
        "list_messages",
    );
    assert_eq!(messages.len(), 2);
    assert!(messages.iter().all(|m| m.status == MessageStatus::Complete));
    assert_eq!(
        ok(
            stores.files.get_file(&alice, kept_file.id).await,
            "get_file"
        ),
        kept_file
    );

    not_found(
        stores.projects.delete_project(&alice, doomed.id).await,
        "a second delete_project",
    );
}

async fn delete_of_a_project_without_files_returns_no_keys(stores: Stores) {
    let alice = user("alice");
    let p = stored_project(&stores, &alice, "Empty").await;
    let keys = ok(
        stores.projects.delete_project(&alice, p.id).await,
        "delete_project",
    );
    assert!(keys.is_empty(), "keys {keys:?} for a project without files");
    not_found(
        stores.projects.get_project(&alice, p.id).await,
        "get_project after delete",
    );
}

async fn ping_answers_ok(stores: Stores) {
    ok(stores.projects.ping().await, "ping");
}
