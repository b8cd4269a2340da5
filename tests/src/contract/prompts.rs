//! The `PromptStore` contract.

use std::future::Future;
use std::sync::Arc;

use confab_core::ids::{ConversationId, ProjectId, PromptId, UserId};
use confab_core::model::{NewPrompt, Prompt};

use super::Stores;
use super::fixtures::{
    at_micros, new_prompt, not_found, ok, stored_conversation, stored_project, user,
};

/// Runs every case of the `PromptStore` contract, each on a fresh store from `fresh`.
pub async fn prompt_store_contract<F, Fut>(fresh: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = Stores>,
{
    crate::run_cases!(
        "PromptStore",
        fresh,
        [
            versions_start_at_1_and_go_up_by_one,
            versions_are_counted_per_project,
            create_returns_the_prompt_as_given_and_lists_it_unchanged,
            create_with_activate_makes_it_the_only_active_prompt,
            create_without_activate_stores_it_inactive_and_keeps_the_active_one,
            a_project_may_have_no_active_prompt,
            concurrent_creates_get_unique_gapless_versions,
            activate_makes_exactly_that_prompt_active_and_returns_it,
            activating_the_active_prompt_keeps_it_the_only_active_one,
            concurrent_activations_leave_exactly_one_active,
            list_is_highest_version_first_and_pages_strictly_below_the_cursor,
            prompts_created_between_two_pages_are_never_repeated_or_skipped,
            another_owner_gets_not_found_on_every_method_and_nothing_changes,
            a_missing_project_is_not_found,
            activating_a_prompt_of_another_project_is_not_found_and_changes_nothing,
            activating_an_unknown_prompt_is_not_found,
            conversation_prompt_is_the_active_prompt_of_the_conversations_project,
            conversation_prompt_of_a_missing_or_another_owners_conversation_is_not_found,
        ]
    );
}

fn active_versions(prompts: &[Prompt]) -> Vec<i32> {
    prompts
        .iter()
        .filter(|p| p.is_active)
        .map(|p| p.version)
        .collect()
}

fn versions(prompts: &[Prompt]) -> Vec<i32> {
    prompts.iter().map(|p| p.version).collect()
}

async fn versions_start_at_1_and_go_up_by_one(stores: Stores) {
    let alice = user("alice");
    let p = stored_project(&stores, &alice, "Bot").await;
    for expected in 1..=3 {
        let prompt = ok(
            stores
                .prompts
                .create_prompt(&alice, &new_prompt(p.id, &format!("v{expected}"), true))
                .await,
            "create_prompt",
        );
        assert_eq!(
            prompt.version, expected,
            "the versions of a project must be 1, 2, 3, …"
        );
    }
    let listed = ok(
        stores.prompts.list_prompts(&alice, p.id, None, 10).await,
        "list_prompts",
    );
    assert_eq!(versions(&listed), vec![3, 2, 1]);
}

async fn versions_are_counted_per_project(stores: Stores) {
    let alice = user("alice");
    let p1 = stored_project(&stores, &alice, "One").await;
    let p2 = stored_project(&stores, &alice, "Two").await;
    for _ in 0..2 {
        ok(
            stores
                .prompts
                .create_prompt(&alice, &new_prompt(p1.id, "x", true))
                .await,
            "create_prompt",
        );
    }
    let first = ok(
        stores
            .prompts
            .create_prompt(&alice, &new_prompt(p2.id, "y", true))
            .await,
        "create_prompt",
    );
    assert_eq!(first.version, 1, "another project's prompts must not count");
}

async fn create_returns_the_prompt_as_given_and_lists_it_unchanged(stores: Stores) {
    let alice = user("alice");
    let p = stored_project(&stores, &alice, "Bot").await;
    let new = NewPrompt {
        created_at: at_micros(1_650_000_000_000_001),
        content: "You are terse.\nÜnïcode 😀".to_owned(),
        ..new_prompt(p.id, "", true)
    };
    let created = ok(
        stores.prompts.create_prompt(&alice, &new).await,
        "create_prompt",
    );
    let expected = Prompt {
        id: new.id,
        project_id: p.id,
        version: 1,
        content: new.content.clone(),
        is_active: true,
        created_at: new.created_at,
    };
    assert_eq!(created, expected);
    let listed = ok(
        stores.prompts.list_prompts(&alice, p.id, None, 10).await,
        "list_prompts",
    );
    assert_eq!(
        listed,
        vec![expected.clone()],
        "a prompt must come back exactly as stored"
    );
    assert_eq!(
        ok(
            stores.prompts.active_prompt(&alice, p.id).await,
            "active_prompt"
        ),
        Some(expected)
    );
}

async fn create_with_activate_makes_it_the_only_active_prompt(stores: Stores) {
    let alice = user("alice");
    let p = stored_project(&stores, &alice, "Bot").await;
    ok(
        stores
            .prompts
            .create_prompt(&alice, &new_prompt(p.id, "v1", true))
            .await,
        "create_prompt",
    );
    let v2 = ok(
        stores
            .prompts
            .create_prompt(&alice, &new_prompt(p.id, "v2", true))
            .await,
        "create_prompt",
    );
    assert!(v2.is_active);
    let listed = ok(
        stores.prompts.list_prompts(&alice, p.id, None, 10).await,
        "list_prompts",
    );
    assert_eq!(
        active_versions(&listed),
        vec![2],
        "exactly the new prompt must be active"
    );
    assert_eq!(
        ok(
            stores.prompts.active_prompt(&alice, p.id).await,
            "active_prompt"
        ),
        Some(v2)
    );
}

async fn create_without_activate_stores_it_inactive_and_keeps_the_active_one(stores: Stores) {
    let alice = user("alice");
    let p = stored_project(&stores, &alice, "Bot").await;
    let v1 = ok(
        stores
            .prompts
            .create_prompt(&alice, &new_prompt(p.id, "v1", true))
            .await,
        "create_prompt",
    );
    let v2 = ok(
        stores
            .prompts
            .create_prompt(&alice, &new_prompt(p.id, "v2", false))
            .await,
        "create_prompt",
    );
    assert_eq!(v2.version, 2);
    assert!(
        !v2.is_active,
        "activate=false must store the prompt inactive"
    );
    assert_eq!(
        ok(
            stores.prompts.active_prompt(&alice, p.id).await,
            "active_prompt"
        ),
        Some(v1),
        "activate=false must leave the active prompt as it was"
    );
    let listed = ok(
        stores.prompts.list_prompts(&alice, p.id, None, 10).await,
        "list_prompts",
    );
    assert_eq!(active_versions(&listed), vec![1]);
}

async fn a_project_may_have_no_active_prompt(stores: Stores) {
    let alice = user("alice");
    let p = stored_project(&stores, &alice, "Bot").await;
    assert_eq!(
        ok(
            stores.prompts.active_prompt(&alice, p.id).await,
            "active_prompt"
        ),
        None
    );
    ok(
        stores
            .prompts
            .create_prompt(&alice, &new_prompt(p.id, "draft", false))
            .await,
        "create_prompt",
    );
    assert_eq!(
        ok(
            stores.prompts.active_prompt(&alice, p.id).await,
            "active_prompt"
        ),
        None,
        "an inactive first prompt must not become active"
    );
    let listed = ok(
        stores.prompts.list_prompts(&alice, p.id, None, 10).await,
        "list_prompts",
    );
    assert_eq!(versions(&listed), vec![1]);
    assert!(active_versions(&listed).is_empty());
}

async fn concurrent_creates_get_unique_gapless_versions(stores: Stores) {
    let alice = user("alice");
    let p = stored_project(&stores, &alice, "Bot").await;
    let mut tasks = Vec::new();
    let mut activated_ids: Vec<PromptId> = Vec::new();
    for i in 0..20 {
        let store = Arc::clone(&stores.prompts);
        let owner = alice.clone();
        let prompt = new_prompt(p.id, &format!("c{i}"), i % 2 == 0);
        if prompt.activate {
            activated_ids.push(prompt.id);
        }
        tasks.push(tokio::spawn(async move {
            store.create_prompt(&owner, &prompt).await
        }));
    }
    let mut created = Vec::new();
    for task in tasks {
        match task.await {
            Ok(result) => created.push(ok(result, "a concurrent create_prompt")),
            Err(e) => panic!("a create_prompt task panicked: {e}"),
        }
    }
    let mut got = versions(&created);
    got.sort_unstable();
    assert_eq!(
        got,
        (1..=20).collect::<Vec<_>>(),
        "concurrent creates must get versions 1..=20"
    );
    let listed = ok(
        stores.prompts.list_prompts(&alice, p.id, None, 100).await,
        "list_prompts",
    );
    assert_eq!(versions(&listed), (1..=20).rev().collect::<Vec<_>>());
    let active = active_versions(&listed);
    assert_eq!(
        active.len(),
        1,
        "exactly one prompt must be active, found versions {active:?}"
    );
    let active_one = listed.iter().find(|p| p.is_active);
    assert!(
        active_one.is_some_and(|a| activated_ids.contains(&a.id)),
        "the active prompt must be one created with activate=true"
    );
    assert_eq!(
        ok(
            stores.prompts.active_prompt(&alice, p.id).await,
            "active_prompt"
        ),
        active_one.cloned()
    );
}

async fn activate_makes_exactly_that_prompt_active_and_returns_it(stores: Stores) {
    let alice = user("alice");
    let p = stored_project(&stores, &alice, "Bot").await;
    let mut made = Vec::new();
    for i in 1..=3 {
        made.push(ok(
            stores
                .prompts
                .create_prompt(&alice, &new_prompt(p.id, &format!("v{i}"), true))
                .await,
            "create_prompt",
        ));
    }
    let activated = ok(
        stores
            .prompts
            .activate_prompt(&alice, p.id, made[0].id)
            .await,
        "activate_prompt",
    );
    let expected = Prompt {
        is_active: true,
        ..made[0].clone()
    };
    assert_eq!(
        activated, expected,
        "activate_prompt must return the prompt, now active"
    );
    assert_eq!(
        ok(
            stores.prompts.active_prompt(&alice, p.id).await,
            "active_prompt"
        ),
        Some(expected)
    );
    let listed = ok(
        stores.prompts.list_prompts(&alice, p.id, None, 10).await,
        "list_prompts",
    );
    assert_eq!(active_versions(&listed), vec![1]);
    // Activating an inactive, non-latest version in the middle works too.
    ok(
        stores
            .prompts
            .activate_prompt(&alice, p.id, made[1].id)
            .await,
        "activate_prompt",
    );
    let listed = ok(
        stores.prompts.list_prompts(&alice, p.id, None, 10).await,
        "list_prompts",
    );
    assert_eq!(active_versions(&listed), vec![2]);
}

async fn activating_the_active_prompt_keeps_it_the_only_active_one(stores: Stores) {
    let alice = user("alice");
    let p = stored_project(&stores, &alice, "Bot").await;
    ok(
        stores
            .prompts
            .create_prompt(&alice, &new_prompt(p.id, "v1", false))
            .await,
        "create_prompt",
    );
    let v2 = ok(
        stores
            .prompts
            .create_prompt(&alice, &new_prompt(p.id, "v2", true))
            .await,
        "create_prompt",
    );
    for _ in 0..2 {
        let again = ok(
            stores.prompts.activate_prompt(&alice, p.id, v2.id).await,
            "activate_prompt",
        );
        assert_eq!(again, v2);
    }
    let listed = ok(
        stores.prompts.list_prompts(&alice, p.id, None, 10).await,
        "list_prompts",
    );
    assert_eq!(active_versions(&listed), vec![2]);
}

async fn concurrent_activations_leave_exactly_one_active(stores: Stores) {
    let alice = user("alice");
    let p = stored_project(&stores, &alice, "Bot").await;
    let mut made = Vec::new();
    for i in 0..20 {
        made.push(ok(
            stores
                .prompts
                .create_prompt(&alice, &new_prompt(p.id, &format!("v{i}"), false))
                .await,
            "create_prompt",
        ));
    }
    let mut tasks = Vec::new();
    for prompt in &made {
        let store = Arc::clone(&stores.prompts);
        let owner = alice.clone();
        let (project_id, prompt_id) = (p.id, prompt.id);
        tasks.push(tokio::spawn(async move {
            store.activate_prompt(&owner, project_id, prompt_id).await
        }));
    }
    for (task, prompt) in tasks.into_iter().zip(&made) {
        match task.await {
            Ok(result) => {
                let activated = ok(result, "a concurrent activate_prompt");
                assert_eq!(activated.id, prompt.id);
                assert!(activated.is_active);
            }
            Err(e) => panic!("an activate_prompt task panicked: {e}"),
        }
    }
    let listed = ok(
        stores.prompts.list_prompts(&alice, p.id, None, 100).await,
        "list_prompts",
    );
    let active: Vec<&Prompt> = listed.iter().filter(|p| p.is_active).collect();
    assert_eq!(
        active.len(),
        1,
        "20 concurrent activations left {} prompts active",
        active.len()
    );
    assert_eq!(
        ok(
            stores.prompts.active_prompt(&alice, p.id).await,
            "active_prompt"
        )
        .as_ref(),
        active.first().copied()
    );
}

async fn list_is_highest_version_first_and_pages_strictly_below_the_cursor(stores: Stores) {
    let alice = user("alice");
    let p = stored_project(&stores, &alice, "Bot").await;
    let mut made = Vec::new();
    for i in 1..=7 {
        made.push(ok(
            stores
                .prompts
                .create_prompt(&alice, &new_prompt(p.id, &format!("v{i}"), i == 3))
                .await,
            "create_prompt",
        ));
    }
    made.reverse();
    let prompts = &stores.prompts;
    let all = super::fixtures::all_pages(
        3,
        |before| prompts.list_prompts(&alice, p.id, before, 3),
        |p: &Prompt| p.version,
        || async {},
    )
    .await;
    assert_eq!(
        all, made,
        "pages of 3 must hold every version once, highest first"
    );
    let below_5 = ok(
        prompts.list_prompts(&alice, p.id, Some(5), 2).await,
        "list_prompts",
    );
    assert_eq!(
        versions(&below_5),
        vec![4, 3],
        "before_version is exclusive"
    );
    let below_1 = ok(
        prompts.list_prompts(&alice, p.id, Some(1), 10).await,
        "list_prompts",
    );
    assert!(below_1.is_empty());
}

async fn prompts_created_between_two_pages_are_never_repeated_or_skipped(stores: Stores) {
    let alice = user("alice");
    let p = stored_project(&stores, &alice, "Bot").await;
    for i in 1..=5 {
        ok(
            stores
                .prompts
                .create_prompt(&alice, &new_prompt(p.id, &format!("v{i}"), true))
                .await,
            "create_prompt",
        );
    }
    let prompts = &stores.prompts;
    let owner = &alice;
    let all = super::fixtures::all_pages(
        2,
        |before| prompts.list_prompts(owner, p.id, before, 2),
        |p: &Prompt| p.version,
        || async move {
            ok(
                prompts
                    .create_prompt(owner, &new_prompt(p.id, "v6", true))
                    .await,
                "create_prompt",
            );
        },
    )
    .await;
    assert_eq!(versions(&all), vec![5, 4, 3, 2, 1]);
    // The pages were read while v5 and then v6 were active; each page saw one state.
    let listed = ok(
        prompts.list_prompts(owner, p.id, None, 10).await,
        "list_prompts",
    );
    assert_eq!(versions(&listed), vec![6, 5, 4, 3, 2, 1]);
    assert_eq!(active_versions(&listed), vec![6]);
}

async fn another_owner_gets_not_found_on_every_method_and_nothing_changes(stores: Stores) {
    let alice = user("alice");
    let mallory = user("mallory");
    let p = stored_project(&stores, &alice, "Bot").await;
    let v1 = ok(
        stores
            .prompts
            .create_prompt(&alice, &new_prompt(p.id, "v1", true))
            .await,
        "create_prompt",
    );
    let v2 = ok(
        stores
            .prompts
            .create_prompt(&alice, &new_prompt(p.id, "v2", false))
            .await,
        "create_prompt",
    );

    not_found(
        stores
            .prompts
            .create_prompt(&mallory, &new_prompt(p.id, "evil", true))
            .await,
        "create_prompt in another owner's project",
    );
    not_found(
        stores.prompts.list_prompts(&mallory, p.id, None, 10).await,
        "list_prompts by another owner",
    );
    not_found(
        stores.prompts.active_prompt(&mallory, p.id).await,
        "active_prompt by another owner",
    );
    not_found(
        stores.prompts.activate_prompt(&mallory, p.id, v2.id).await,
        "activate_prompt by another owner",
    );

    let listed = ok(
        stores.prompts.list_prompts(&alice, p.id, None, 10).await,
        "list_prompts",
    );
    assert_eq!(
        listed,
        vec![v2, v1.clone()],
        "another owner's attempts changed the prompts"
    );
    assert_eq!(
        ok(
            stores.prompts.active_prompt(&alice, p.id).await,
            "active_prompt"
        ),
        Some(v1)
    );
    let v3 = ok(
        stores
            .prompts
            .create_prompt(&alice, &new_prompt(p.id, "v3", false))
            .await,
        "create_prompt",
    );
    assert_eq!(v3.version, 3, "a refused create must not use up a version");
}

async fn a_missing_project_is_not_found(stores: Stores) {
    let alice = user("alice");
    let missing = ProjectId::new();
    not_found(
        stores
            .prompts
            .create_prompt(&alice, &new_prompt(missing, "x", true))
            .await,
        "create_prompt in a missing project",
    );
    not_found(
        stores.prompts.list_prompts(&alice, missing, None, 10).await,
        "list_prompts of a missing project",
    );
    not_found(
        stores.prompts.active_prompt(&alice, missing).await,
        "active_prompt of a missing project",
    );
    not_found(
        stores
            .prompts
            .activate_prompt(&alice, missing, PromptId::new())
            .await,
        "activate_prompt in a missing project",
    );
}

async fn activating_a_prompt_of_another_project_is_not_found_and_changes_nothing(stores: Stores) {
    let alice = user("alice");
    let p1 = stored_project(&stores, &alice, "One").await;
    let p2 = stored_project(&stores, &alice, "Two").await;
    let a1 = ok(
        stores
            .prompts
            .create_prompt(&alice, &new_prompt(p1.id, "a1", true))
            .await,
        "create_prompt",
    );
    let b1 = ok(
        stores
            .prompts
            .create_prompt(&alice, &new_prompt(p2.id, "b1", false))
            .await,
        "create_prompt",
    );
    not_found(
        stores.prompts.activate_prompt(&alice, p1.id, b1.id).await,
        "activate_prompt with a prompt of another project",
    );
    assert_eq!(
        ok(
            stores.prompts.active_prompt(&alice, p1.id).await,
            "active_prompt"
        ),
        Some(a1)
    );
    assert_eq!(
        ok(
            stores.prompts.active_prompt(&alice, p2.id).await,
            "active_prompt"
        ),
        None
    );
}

async fn activating_an_unknown_prompt_is_not_found(stores: Stores) {
    let alice = user("alice");
    let p = stored_project(&stores, &alice, "Bot").await;
    let v1 = ok(
        stores
            .prompts
            .create_prompt(&alice, &new_prompt(p.id, "v1", true))
            .await,
        "create_prompt",
    );
    not_found(
        stores
            .prompts
            .activate_prompt(&alice, p.id, PromptId::new())
            .await,
        "activate_prompt of an unknown prompt",
    );
    assert_eq!(
        ok(
            stores.prompts.active_prompt(&alice, p.id).await,
            "active_prompt"
        ),
        Some(v1)
    );
}

async fn conversation_prompt(
    stores: &Stores,
    owner: &UserId,
    conversation_id: ConversationId,
) -> Option<Prompt> {
    ok(
        stores
            .prompts
            .conversation_prompt(owner, conversation_id)
            .await,
        "conversation_prompt",
    )
}

async fn conversation_prompt_is_the_active_prompt_of_the_conversations_project(stores: Stores) {
    let alice = user("alice");
    let p = stored_project(&stores, &alice, "Bot").await;
    let other = stored_project(&stores, &alice, "Other bot").await;
    let c = stored_conversation(&stores, &alice, p.id).await;
    ok(
        stores
            .prompts
            .create_prompt(
                &alice,
                &new_prompt(other.id, "Other project's prompt", true),
            )
            .await,
        "create_prompt",
    );
    assert_eq!(
        conversation_prompt(&stores, &alice, c.id).await,
        None,
        "no prompt is active in the conversation's project"
    );
    let v1 = ok(
        stores
            .prompts
            .create_prompt(&alice, &new_prompt(p.id, "Be brief.", true))
            .await,
        "create_prompt",
    );
    ok(
        stores
            .prompts
            .create_prompt(&alice, &new_prompt(p.id, "A draft", false))
            .await,
        "create_prompt",
    );
    assert_eq!(
        conversation_prompt(&stores, &alice, c.id).await,
        Some(v1.clone())
    );
    let v3 = ok(
        stores
            .prompts
            .create_prompt(&alice, &new_prompt(p.id, "Be thorough.", true))
            .await,
        "create_prompt",
    );
    assert_eq!(
        conversation_prompt(&stores, &alice, c.id).await,
        Some(v3),
        "the newly activated version is the conversation's prompt"
    );
    let again = ok(
        stores.prompts.activate_prompt(&alice, p.id, v1.id).await,
        "activate_prompt",
    );
    assert_eq!(
        conversation_prompt(&stores, &alice, c.id).await,
        Some(again)
    );
}

async fn conversation_prompt_of_a_missing_or_another_owners_conversation_is_not_found(
    stores: Stores,
) {
    let alice = user("alice");
    let mallory = user("mallory");
    let p = stored_project(&stores, &alice, "Bot").await;
    let c = stored_conversation(&stores, &alice, p.id).await;
    ok(
        stores
            .prompts
            .create_prompt(&alice, &new_prompt(p.id, "secret instructions", true))
            .await,
        "create_prompt",
    );
    not_found(
        stores.prompts.conversation_prompt(&mallory, c.id).await,
        "conversation_prompt of another owner's conversation",
    );
    not_found(
        stores
            .prompts
            .conversation_prompt(&alice, ConversationId::new())
            .await,
        "conversation_prompt of a missing conversation",
    );
}
