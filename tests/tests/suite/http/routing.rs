//! How requests are routed and counted: the metric labels stay bounded whatever a client
//! sends (made-up methods, random paths), the public `/api` routes take no token, and every
//! other `/api` path is behind authentication.

use std::collections::BTreeSet;

use confab_tests::http::{ALICE, Answer, TestApp, spawn_app};
use reqwest::Method;
use uuid::Uuid;

/// The sample lines of the exposition (every line that is not a comment).
fn samples(app_metrics: &Answer) -> Vec<String> {
    app_metrics
        .text()
        .lines()
        .filter(|line| !line.starts_with('#') && !line.trim().is_empty())
        .map(str::to_owned)
        .collect()
}

/// The label set of a sample line (`name{labels}`), without its value.
fn series(line: &str) -> &str {
    line.rsplit_once(' ').map_or(line, |(series, _)| series)
}

/// One request of each kind a client can make up with `method`: on a random path outside the
/// API, a random `/api` path without and with a token, a public path and a protected path.
async fn made_up_round(app: &TestApp, method: &Method, marker: &str) {
    let requests = [
        (format!("/{marker}"), None, 404),
        (format!("/{marker}/deeper/{marker}"), None, 404),
        (format!("/api/{marker}"), None, 401),
        (format!("/api/{marker}"), Some(ALICE), 404),
        (format!("/api/projects/{marker}/x"), Some(ALICE), 404),
        ("/healthz".to_owned(), None, 405),
        ("/api/config".to_owned(), None, 405),
        ("/api/projects".to_owned(), None, 401),
        ("/api/projects".to_owned(), Some(ALICE), 405),
        (
            format!("/api/projects/{}", Uuid::now_v7()),
            Some(ALICE),
            405,
        ),
    ];
    for (path, user, status) in requests {
        let answer = app
            .send_request(app.request(method.clone(), &path, user))
            .await;
        assert_eq!(
            answer.status.as_u16(),
            status,
            "{method} {path} ({user:?}): {}",
            answer.text()
        );
    }
}

#[tokio::test]
async fn made_up_methods_and_random_paths_do_not_grow_the_metrics() {
    let app = spawn_app().await;
    let method = |n: usize| Method::from_bytes(format!("FOO{n}").as_bytes()).expect("a token");
    // The first round creates every series these kinds of request can create.
    made_up_round(&app, &method(0), &Uuid::now_v7().simple().to_string()).await;
    app.metrics().await.assert_status(200);
    let before = samples(&app.metrics().await);

    let mut markers = Vec::new();
    for n in 1..=50 {
        let marker = Uuid::now_v7().simple().to_string();
        made_up_round(&app, &method(n), &marker).await;
        markers.push(marker);
    }
    let after = samples(&app.metrics().await);
    let series_before: BTreeSet<&str> = before.iter().map(|l| series(l)).collect();
    let series_after: BTreeSet<&str> = after.iter().map(|l| series(l)).collect();
    let added: Vec<&&str> = series_after.difference(&series_before).collect();
    assert!(
        added.is_empty(),
        "50 made-up methods on random paths added {} series (of {} before), e.g. {:?}",
        added.len(),
        series_before.len(),
        &added[..added.len().min(5)]
    );
    assert_eq!(series_after, series_before);
    let text = after.join("\n");
    assert!(!text.contains("FOO"), "no raw method is a label: {text}");
    for marker in &markers {
        assert!(!text.contains(marker.as_str()), "no raw path is a label");
    }
    assert!(
        text.contains(r#"method="other""#),
        "made-up methods count as `other`: {text}"
    );
    assert!(
        text.contains(r#"route="unmatched""#),
        "unmatched paths share one label: {text}"
    );
}

#[tokio::test]
async fn the_route_label_is_the_matched_pattern() {
    let app = spawn_app().await;
    let project = app.new_project(ALICE, "Bot").await;
    app.get_project(ALICE, project.id).await.assert_status(200);
    // A protected path refused before its handler (401) is still counted by its pattern.
    app.send_request(app.request(
        Method::DELETE,
        &format!("/api/projects/{}", project.id),
        None,
    ))
    .await
    .assert_status(401);
    let text = app.metrics().await.text();
    let counted = |method: &str, status: u16| {
        text.lines().any(|line| {
            line.starts_with("confab_http_requests_total{")
                && line.contains(r#"route="/api/projects/{project_id}""#)
                && line.contains(&format!(r#"method="{method}""#))
                && line.contains(&format!(r#"status="{status}""#))
        })
    };
    assert!(counted("GET", 200), "{text}");
    assert!(counted("DELETE", 401), "{text}");
    assert!(
        !text.contains(&project.id.to_string()),
        "no raw path is a label: {text}"
    );
}

#[tokio::test]
async fn public_api_routes_take_no_token_and_ignore_a_bad_one() {
    let app = spawn_app().await;
    for path in ["/api/config", "/api/openapi.json", "/healthz", "/metrics"] {
        for authorization in [None, Some("Bearer nope"), Some("Basic abc")] {
            let mut builder = app.request(Method::GET, path, None);
            if let Some(value) = authorization {
                builder = builder.header("Authorization", value);
            }
            let answer = app.send_request(builder).await;
            assert_eq!(
                answer.status.as_u16(),
                200,
                "GET {path} with {authorization:?}: {}",
                answer.text()
            );
        }
    }
    // Without dev sign-in configured, dev-login is a 404, not a 401.
    app.send_request(
        app.request(Method::POST, "/api/auth/dev-login", None)
            .json(&serde_json::json!({ "username": "alice" })),
    )
    .await
    .problem(404, "not_found");
}

#[tokio::test]
async fn paths_under_a_public_route_or_beside_api_are_not_public_api_routes() {
    let app = spawn_app().await;
    // Below a public path: an unknown `/api` path, behind authentication.
    for path in [
        "/api/config/x",
        "/api/openapi.json/x",
        "/api/auth",
        "/api/auth/x",
    ] {
        app.send_request(app.request(Method::GET, path, None))
            .await
            .problem(401, "unauthenticated");
        app.send_request(app.request(Method::GET, path, Some(ALICE)))
            .await
            .problem(404, "not_found");
    }
    // `/apix` is not under `/api`: the browser client's, and a POST there is a plain 404.
    app.send_request(app.request(Method::POST, "/apix", None))
        .await
        .problem(404, "not_found");
    let page = app
        .send_request(app.request(Method::GET, "/apix", None))
        .await;
    assert_ne!(page.status.as_u16(), 401, "{}", page.text());
}
