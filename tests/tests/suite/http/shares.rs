//! Read-only share links: a snapshot shown without signing in, revoked at once, escaped,
//! with the page's headers, and never another user's.

use confab_api_types as api;
use confab_tests::http::{ALICE, Answer, BOB, TestApp, spawn_app};
use reqwest::Method;

async fn create(app: &TestApp, user: &str, conversation: impl std::fmt::Display) -> Answer {
    app.send_request(app.request(
        Method::POST,
        &format!("/api/conversations/{conversation}/shares"),
        Some(user),
    ))
    .await
}

async fn get(app: &TestApp, path: &str, user: Option<&str>) -> Answer {
    app.send_request(app.request(Method::GET, path, user)).await
}

fn token_of(share: &api::ShareCreated) -> &str {
    share
        .url
        .strip_prefix("/s/")
        .unwrap_or_else(|| panic!("a share url is /s/{{token}}: {}", share.url))
}

#[tokio::test]
async fn a_share_shows_a_snapshot_without_signing_in_and_revoking_ends_it_at_once() {
    let app = spawn_app().await;
    let project = app.new_project(ALICE, "Bot").await;
    let chat = app.new_conversation(ALICE, project.id).await;
    app.send(
        ALICE,
        chat.id,
        "Tell me about <script>alert(1)</script> quokkas",
    )
    .await;
    let share: api::ShareCreated = create(&app, ALICE, chat.id).await.ok(201);
    let token = token_of(&share).to_owned();
    assert_eq!(token.len(), 22, "128 bits in base64url");
    app.send(ALICE, chat.id, "a later secret message").await;

    // The page, signed out.
    let page = get(&app, &share.url, None).await;
    page.assert_status(200);
    let html = page.text();
    assert!(
        html.contains("&lt;script&gt;alert(1)&lt;/script&gt; quokkas"),
        "{html}"
    );
    assert!(!html.contains("<script>"), "{html}");
    assert!(
        !html.contains("later secret"),
        "the snapshot does not grow: {html}"
    );
    assert!(!html.contains(ALICE), "no user id: {html}");
    assert!(html.contains("Assistant"), "{html}");
    assert!(
        page.header("content-type")
            .unwrap_or_default()
            .starts_with("text/html")
    );
    assert_eq!(page.header("x-robots-tag"), Some("noindex"));
    assert_eq!(page.header("referrer-policy"), Some("no-referrer"));
    assert_eq!(page.header("cache-control"), Some("no-store"));
    let csp = page.header("content-security-policy").unwrap_or_default();
    assert!(csp.contains("default-src 'self'"), "{csp}");
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");

    // The JSON variant, signed out.
    let shared: api::SharedConversation = get(&app, &format!("/api/shared/{token}"), None)
        .await
        .ok(200);
    let texts: Vec<&str> = shared.messages.iter().map(|m| m.content.as_str()).collect();
    assert_eq!(texts.len(), 2, "{texts:?}");
    assert_eq!(texts[0], "Tell me about <script>alert(1)</script> quokkas");
    assert_eq!(shared.messages[0].role, api::Role::User);
    assert_eq!(shared.messages[1].role, api::Role::Assistant);
    assert!(shared.messages[1].model.is_some());
    assert!(!serde_json::to_string(&shared).unwrap().contains(ALICE));

    // Listed for the owner, without the URL.
    let listed: Vec<serde_json::Value> = get(
        &app,
        &format!("/api/conversations/{}/shares", chat.id),
        Some(ALICE),
    )
    .await
    .ok(200);
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["id"], share.id.to_string());
    assert!(listed[0].get("url").is_none());

    // Revoked: 404 at once, for both.
    app.send_request(app.request(
        Method::DELETE,
        &format!("/api/shares/{}", share.id),
        Some(ALICE),
    ))
    .await
    .assert_status(204);
    let gone = get(&app, &share.url, None).await;
    gone.assert_status(404);
    assert_eq!(gone.header("x-robots-tag"), Some("noindex"));
    assert!(!gone.text().contains("quokkas"));
    assert!(
        gone.header("content-type")
            .is_some_and(|t| t.starts_with("text/html")),
        "a person is shown a page, not problem+json"
    );
    assert!(gone.text().contains("Link not found"), "{}", gone.text());
    get(&app, &format!("/api/shared/{token}"), None)
        .await
        .problem(404, "not_found");
    let listed: Vec<serde_json::Value> = get(
        &app,
        &format!("/api/conversations/{}/shares", chat.id),
        Some(ALICE),
    )
    .await
    .ok(200);
    assert!(listed.is_empty());
}

#[tokio::test]
async fn another_user_cannot_create_list_or_revoke_and_unknown_tokens_are_404() {
    let app = spawn_app().await;
    let project = app.new_project(ALICE, "Bot").await;
    let chat = app.new_conversation(ALICE, project.id).await;
    app.send(ALICE, chat.id, "mine").await;
    create(&app, BOB, chat.id).await.problem(404, "not_found");
    get(
        &app,
        &format!("/api/conversations/{}/shares", chat.id),
        Some(BOB),
    )
    .await
    .problem(404, "not_found");
    let share: api::ShareCreated = create(&app, ALICE, chat.id).await.ok(201);
    app.send_request(app.request(
        Method::DELETE,
        &format!("/api/shares/{}", share.id),
        Some(BOB),
    ))
    .await
    .problem(404, "not_found");
    get(&app, &share.url, None).await.assert_status(200);
    // Signing in is needed to create.
    app.send_request(app.request(
        Method::POST,
        &format!("/api/conversations/{}/shares", chat.id),
        None,
    ))
    .await
    .assert_status(401);

    // Two links of one conversation differ.
    let other: api::ShareCreated = create(&app, ALICE, chat.id).await.ok(201);
    assert_ne!(other.url, share.url);

    for token in [
        "AAAAAAAAAAAAAAAAAAAAAA",
        "short",
        "not-a-token-at-all-really",
    ] {
        let page = get(&app, &format!("/s/{token}"), None).await;
        page.assert_status(404);
        assert_eq!(page.header("cache-control"), Some("no-store"));
        get(&app, &format!("/api/shared/{token}"), None)
            .await
            .problem(404, "not_found");
    }
}
