//! Sign-in in the browser at a REAL OpenID provider: the certified `oidc-provider` package
//! (tests/oidc-provider, pinned by its package-lock.json), run with Node on loopback. The
//! HTTP tests here play the browser with a cookie jar: they follow the redirects, fill the
//! provider's login form, and check what `confab` accepts and refuses.
//!
//! Needs `node` and `npm` (`npm ci` runs in tests/oidc-provider when its node_modules is
//! missing): outside CI a missing `node` skips the tests loudly, with `CI` set they fail.

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use reqwest::header;
use serde_json::Value;

use crate::harness::{Scratch, Server, base_env, free_port, set};

pub const CLIENT_ID: &str = "confab-test";
pub const CLIENT_SECRET: &str = "a-client-secret-for-tests-only";
pub const DISPLAY_NAME: &str = "Test ID";

fn provider_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/oidc-provider")
}

/// Whether `node` is usable (with the provider's packages installed); outside CI a missing
/// `node` skips the test, with `CI` set it fails.
pub fn node_ready() -> bool {
    let node = Command::new("node").arg("--version").output();
    if !node.is_ok_and(|o| o.status.success()) {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI is set but `node` is missing: the OIDC tests need it (.ci/run installs it)"
        );
        eprintln!("SKIPPED: `node` is not installed; the OIDC sign-in tests need it");
        return false;
    }
    let dir = provider_dir();
    if !dir.join("node_modules/oidc-provider").is_dir() {
        let status = Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund"])
            .current_dir(&dir)
            .status()
            .expect("npm runs");
        assert!(status.success(), "`npm ci` failed in {}", dir.display());
    }
    true
}

/// A running `oidc-provider`.
pub struct Provider {
    child: Child,
    pub base: String,
}

impl Provider {
    /// Starts the provider for a `confab` at `confab_base`; `issuer` overrides the issuer it
    /// names (the wrong-issuer test).
    pub async fn start(confab_base: &str, issuer: Option<&str>) -> Self {
        let port = free_port();
        let mut cmd = Command::new("node");
        cmd.arg("provider.mjs")
            .current_dir(provider_dir())
            .env("PORT", port.to_string())
            .env("CLIENT_ID", CLIENT_ID)
            .env("CLIENT_SECRET", CLIENT_SECRET)
            .env("REDIRECT_URI", format!("{confab_base}/auth/oidc/callback"))
            .env("POST_LOGOUT_REDIRECT_URI", format!("{confab_base}/"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        if let Some(issuer) = issuer {
            cmd.env("ISSUER", issuer);
        }
        let child = cmd.spawn().expect("node starts");
        let provider = Self {
            child,
            base: format!("http://127.0.0.1:{port}"),
        };
        let started = Instant::now();
        let discovery = format!("{}/.well-known/openid-configuration", provider.base);
        while !reqwest::get(&discovery)
            .await
            .is_ok_and(|r| r.status() == 200)
        {
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "oidc-provider did not start"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        provider
    }
}

impl Drop for Provider {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The environment of a `confab` signing in at `provider`.
pub fn oidc_env(dir: &std::path::Path, port: u16, issuer: &str) -> Vec<(String, String)> {
    let mut env = base_env(dir, port);
    set(&mut env, "CONFAB_AUTH", "oidc");
    set(&mut env, "OIDC_ISSUER", issuer);
    set(&mut env, "OIDC_CLIENT_ID", CLIENT_ID);
    set(&mut env, "OIDC_CLIENT_SECRET", CLIENT_SECRET);
    set(&mut env, "OIDC_DISPLAY_NAME", DISPLAY_NAME);
    env
}

/// A browser's cookies and redirects, by hand (both servers are on 127.0.0.1, and cookies
/// do not tell ports apart; the names do not collide).
#[derive(Clone)]
struct Browser {
    http: reqwest::Client,
    cookies: HashMap<String, String>,
}

struct Answer {
    status: u16,
    location: Option<String>,
    body: String,
}

impl Browser {
    fn new() -> Self {
        Self {
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            cookies: HashMap::new(),
        }
    }

    fn cookie_header(&self) -> String {
        self.cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    async fn send(&mut self, request: reqwest::RequestBuilder) -> Answer {
        let mut request = request;
        if !self.cookies.is_empty() {
            request = request.header(header::COOKIE, self.cookie_header());
        }
        let response = request.send().await.unwrap();
        let url = response.url().clone();
        for set in response.headers().get_all(header::SET_COOKIE) {
            let set = set.to_str().unwrap();
            let (pair, attributes) = set.split_once(';').unwrap_or((set, ""));
            let (name, value) = pair.split_once('=').unwrap();
            let attributes = attributes.to_ascii_lowercase();
            if value.is_empty()
                || attributes.contains("max-age=0")
                || attributes.contains("expires=thu, 01 jan 1970")
            {
                self.cookies.remove(name.trim());
            } else {
                self.cookies
                    .insert(name.trim().to_owned(), value.trim().to_owned());
            }
        }
        let status = response.status().as_u16();
        let location = response
            .headers()
            .get(header::LOCATION)
            .map(|l| url.join(l.to_str().unwrap()).unwrap().to_string());
        Answer {
            status,
            location,
            body: response.text().await.unwrap_or_default(),
        }
    }

    async fn get(&mut self, url: &str) -> Answer {
        let request = self.http.get(url);
        self.send(request).await
    }

    /// Follows redirects from `url`, filling the provider's login form as `login`, until a
    /// redirect to a URL for which `stop` holds; returns that URL.
    async fn follow_until(
        &mut self,
        url: &str,
        login: &str,
        stop: impl Fn(&str) -> bool,
    ) -> String {
        let mut url = url.to_owned();
        for _ in 0..20 {
            let answer = self.get(&url).await;
            match answer.location {
                Some(next) if stop(&next) => return next,
                Some(next) => url = next,
                None if answer.body.contains("name=\"login\"") => {
                    let action = answer
                        .body
                        .split("action=\"")
                        .nth(1)
                        .and_then(|s| s.split('"').next())
                        .unwrap();
                    let target = reqwest::Url::parse(&url).unwrap().join(action).unwrap();
                    let body = format!("prompt=login&login={login}&password=anything");
                    let request = self
                        .http
                        .post(target)
                        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                        .body(body);
                    let posted = self.send(request).await;
                    url = posted.location.expect("the login form redirects");
                    if stop(&url) {
                        return url;
                    }
                }
                None => panic!(
                    "stuck at {url}: {} {}",
                    answer.status,
                    &answer.body[..answer.body.len().min(500)]
                ),
            }
        }
        panic!("too many redirects");
    }

    /// `confab`'s sign-in redirect: the provider's authorization URL.
    async fn start(&mut self, confab: &str) -> String {
        let answer = self.get(&format!("{confab}/auth/oidc/sign-in")).await;
        assert_eq!(answer.status, 303);
        assert!(self.cookies.contains_key("confab_oidc_flow"));
        answer.location.unwrap()
    }

    /// Signs in at the provider from `authorization_url`; returns the callback URL.
    async fn authorize(&mut self, confab: &str, authorization_url: &str, login: &str) -> String {
        let callback = format!("{confab}/auth/oidc/callback");
        self.follow_until(authorization_url, login, |u| u.starts_with(&callback))
            .await
    }

    /// Where `confab`'s callback sends the browser.
    async fn callback(&mut self, url: &str) -> String {
        let answer = self.get(url).await;
        assert_eq!(answer.status, 303, "{}", answer.body);
        answer.location.unwrap()
    }

    async fn token(&mut self, confab: &str) -> (u16, Value) {
        let request = self
            .http
            .post(format!("{confab}/api/auth/oidc/token"))
            .header("X-Confab-CSRF", "1");
        let answer = self.send(request).await;
        (
            answer.status,
            serde_json::from_str(&answer.body).unwrap_or(Value::Null),
        )
    }
}

async fn me(confab: &str, token: &str) -> (u16, Value) {
    let response = reqwest::Client::new()
        .get(format!("{confab}/api/me"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

fn error_of(location: &str) -> String {
    location
        .split("sign_in_error=")
        .nth(1)
        .unwrap_or("(none)")
        .to_owned()
}

/// Replaces a query parameter's value in a URL.
fn with_param(url: &str, name: &str, value: &str) -> String {
    let mut url = reqwest::Url::parse(url).unwrap();
    let pairs: Vec<(String, String)> = url
        .query_pairs()
        .map(|(k, v)| {
            let v = if k == name {
                value.to_owned()
            } else {
                v.into_owned()
            };
            (k.into_owned(), v)
        })
        .collect();
    url.query_pairs_mut().clear().extend_pairs(pairs);
    url.to_string()
}

#[tokio::test]
async fn oidc_sign_in_gives_a_session_whose_tokens_name_the_user_and_replays_are_refused() {
    if !node_ready() {
        return;
    }
    let dir = Scratch::new("oidc");
    let port = free_port();
    let confab = format!("http://127.0.0.1:{port}");
    let provider = Provider::start(&confab, None).await;
    let server = Server::start(dir.path(), &oidc_env(dir.path(), port, &provider.base)).await;

    let config: Value = reqwest::get(format!("{confab}/api/config"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(config["auth"]["provider"], "oidc");
    assert_eq!(config["auth"]["display_name"], DISPLAY_NAME);

    let mut browser = Browser::new();
    let authorization = browser.start(&confab).await;
    assert!(authorization.starts_with(&format!("{}/auth?", provider.base)));
    assert!(authorization.contains("code_challenge_method=S256"));
    let callback = browser.authorize(&confab, &authorization, "alice").await;
    let flow_cookie = browser.cookies.get("confab_oidc_flow").cloned().unwrap();
    assert_eq!(browser.callback(&callback).await, format!("{confab}/"));
    assert!(browser.cookies.contains_key("confab_session"));
    assert!(!browser.cookies.contains_key("confab_oidc_flow"));

    // The session gives bearer tokens naming the user, with the ID token's name and e-mail.
    let (status, token) = browser.token(&confab).await;
    assert_eq!(status, 200, "{token}");
    let bearer = token["token"].as_str().unwrap().to_owned();
    assert!(token["expires_at"].is_string());
    let (status, who) = me(&confab, &bearer).await;
    assert_eq!(status, 200);
    assert_eq!(who["user_id"], "alice");
    assert_eq!(who["name"], "Alice Tester");
    assert_eq!(who["email"], "alice@example.test");
    // …and the API works with it.
    let status = reqwest::Client::new()
        .get(format!("{confab}/api/projects"))
        .bearer_auth(&bearer)
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, 200);

    // CSRF: without the header, or from another origin, no token.
    let cookie = browser.cookie_header();
    let plain = reqwest::Client::new();
    let status = plain
        .post(format!("{confab}/api/auth/oidc/token"))
        .header(header::COOKIE, &cookie)
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, 403);
    let status = plain
        .post(format!("{confab}/api/auth/oidc/token"))
        .header(header::COOKIE, &cookie)
        .header("X-Confab-CSRF", "1")
        .header(header::ORIGIN, "https://evil.example")
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, 403);
    // No session cookie: 401.
    let (status, _) = Browser::new().token(&confab).await;
    assert_eq!(status, 401);

    // The same callback again: its flow was used up (the cookie is gone)…
    let mut replay = browser.clone();
    replay.cookies.remove("confab_session");
    assert_eq!(
        error_of(&replay.callback(&callback).await),
        "state_mismatch"
    );
    // …and with the flow cookie kept, the provider refuses the used code.
    replay
        .cookies
        .insert("confab_oidc_flow".to_owned(), flow_cookie);
    assert_eq!(error_of(&replay.callback(&callback).await), "code_rejected");
    assert!(!replay.cookies.contains_key("confab_session"));

    // Sign-out ends the session and its tokens, and goes to the provider's sign-out.
    let request = browser
        .http
        .post(format!("{confab}/auth/oidc/sign-out"))
        .header("X-Confab-CSRF", "1");
    let answer = browser.send(request).await;
    assert_eq!(answer.status, 200);
    let out: Value = serde_json::from_str(&answer.body).unwrap();
    let to = out["redirect_to"].as_str().unwrap();
    assert!(
        to.starts_with(&format!("{}/session/end?", provider.base)),
        "{to}"
    );
    assert!(to.contains("post_logout_redirect_uri="));
    assert!(!browser.cookies.contains_key("confab_session"));
    assert_eq!(me(&confab, &bearer).await.0, 401);
    // The old cookie, replayed, no longer gives tokens.
    let status = plain
        .post(format!("{confab}/api/auth/oidc/token"))
        .header(header::COOKIE, &cookie)
        .header("X-Confab-CSRF", "1")
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, 401);
    drop(server);
}

#[tokio::test]
async fn oidc_tampered_state_wrong_nonce_and_provider_errors_are_refused() {
    if !node_ready() {
        return;
    }
    let dir = Scratch::new("oidc-tamper");
    let port = free_port();
    let confab = format!("http://127.0.0.1:{port}");
    let provider = Provider::start(&confab, None).await;
    let server = Server::start(dir.path(), &oidc_env(dir.path(), port, &provider.base)).await;

    // The state the provider returns is not the flow's.
    let mut browser = Browser::new();
    let authorization = browser.start(&confab).await;
    let tampered = with_param(&authorization, "state", "an-attackers-state");
    let callback = browser.authorize(&confab, &tampered, "bob").await;
    assert_eq!(
        error_of(&browser.callback(&callback).await),
        "state_mismatch"
    );
    assert!(!browser.cookies.contains_key("confab_session"));

    // The provider signs an ID token for another nonce.
    let mut browser = Browser::new();
    let authorization = browser.start(&confab).await;
    let tampered = with_param(&authorization, "nonce", "another-nonce");
    let callback = browser.authorize(&confab, &tampered, "bob").await;
    assert_eq!(
        error_of(&browser.callback(&callback).await),
        "nonce_mismatch"
    );
    assert!(!browser.cookies.contains_key("confab_session"));

    // The provider answers with an error (here: the PKCE challenge was removed).
    let mut browser = Browser::new();
    let authorization = browser.start(&confab).await;
    let tampered = with_param(&authorization, "code_challenge_method", "plain");
    let callback = browser.authorize(&confab, &tampered, "bob").await;
    assert_eq!(
        error_of(&browser.callback(&callback).await),
        "provider_error"
    );

    // A callback meant for one browser, delivered to another (login CSRF): the other
    // browser's flow has another state.
    let mut first = Browser::new();
    let authorization = first.start(&confab).await;
    let callback = first.authorize(&confab, &authorization, "mallory").await;
    let mut second = Browser::new();
    second.start(&confab).await;
    assert_eq!(
        error_of(&second.callback(&callback).await),
        "state_mismatch"
    );
    drop(server);
}

#[tokio::test]
async fn oidc_a_provider_naming_another_issuer_is_refused() {
    if !node_ready() {
        return;
    }
    let dir = Scratch::new("oidc-issuer");
    let port = free_port();
    let confab = format!("http://127.0.0.1:{port}");
    let provider = Provider::start(&confab, Some("https://issuer.example")).await;
    let server = Server::start(dir.path(), &oidc_env(dir.path(), port, &provider.base)).await;
    let mut browser = Browser::new();
    let answer = browser.get(&format!("{confab}/auth/oidc/sign-in")).await;
    assert_eq!(answer.status, 303);
    assert_eq!(error_of(&answer.location.unwrap()), "wrong_issuer");
    assert!(server.logs().contains("another issuer"));
}

/// Issue 21: a browser sign-out on replica A ends the session on replica B too (two
/// processes on one database, one `CONFAB_OIDC_SESSION_SECRET`): B refuses the session's
/// bearer token and its cookie once its "not signed out" cache (≤ 2 s) has run out.
#[tokio::test]
async fn oidc_a_sign_out_on_one_replica_ends_the_session_on_the_other() {
    if !node_ready() {
        return;
    }
    let dir = Scratch::new("oidc-replicas");
    let port = free_port();
    let confab = format!("http://127.0.0.1:{port}");
    let provider = Provider::start(&confab, None).await;
    let mut env = oidc_env(dir.path(), port, &provider.base);
    set(
        &mut env,
        "CONFAB_OIDC_SESSION_SECRET",
        "a-fixed-oidc-session-secret-0123456789",
    );
    let (a, b) = crate::harness::two_replicas(dir.path(), &env).await;
    assert_eq!(a.base, confab);

    let mut browser = Browser::new();
    let authorization = browser.start(&confab).await;
    let callback = browser.authorize(&confab, &authorization, "alice").await;
    assert_eq!(browser.callback(&callback).await, format!("{confab}/"));
    let (status, token) = browser.token(&confab).await;
    assert_eq!(status, 200, "{token}");
    let bearer = token["token"].as_str().unwrap().to_owned();
    // B accepts A's session and its tokens (one secret, one database).
    assert_eq!(me(&b.base, &bearer).await.0, 200);
    let (status, _) = browser.clone().token(&b.base).await;
    assert_eq!(status, 200);
    let cookie = browser.cookie_header();

    let request = browser
        .http
        .post(format!("{confab}/auth/oidc/sign-out"))
        .header("X-Confab-CSRF", "1");
    assert_eq!(browser.send(request).await.status, 200);
    assert_eq!(me(&confab, &bearer).await.0, 401, "at once on A");
    // On B within its cache window (2 s); the deadline is a safety net only.
    let deadline = Instant::now() + Duration::from_secs(20);
    while me(&b.base, &bearer).await.0 != 401 {
        assert!(
            Instant::now() < deadline,
            "B still accepts the signed-out token"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let status = reqwest::Client::new()
        .post(format!("{}/api/auth/oidc/token", b.base))
        .header(header::COOKIE, &cookie)
        .header("X-Confab-CSRF", "1")
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, 401, "the old cookie gives no token on B");
}
