//! Browser end-to-end test: headless Chromium, driven through chromedriver (W3C WebDriver),
//! uses the real Yew client served by the real `confab` process.
//!
//! Elements are found by their accessible names, the contract the client implements (text
//! field "Username", buttons "Sign in", "New project", "Send", "Stop", …), and each name found
//! is checked against the label Chromium itself computes for its accessibility tree.
//!
//! When `chromium` or `chromedriver` is not on the PATH the test prints a notice and passes,
//! except under `CI`, where it fails. With `CONFAB_SCREENSHOTS=1` it also writes the pictures of
//! the main screens shown in the README to `docs/screenshots/`.

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::harness::{Client, Scratch, Server, base_env, free_port};

/// The key under which W3C WebDriver passes element references.
const ELEMENT_KEY: &str = "element-6066-11e4-a52e-4f735466cecf";
/// How long any wait for an element or a condition lasts before the test fails.
const WAIT: Duration = Duration::from_secs(10);
/// The echo model's pause between words: slow enough to see a reply grow and to stop it.
const PACE_MS: &str = "100";
/// Desktop and phone viewports of the screenshots.
const DESKTOP: (u32, u32) = (1280, 800);
const PHONE: (u32, u32) = (390, 844);

// ---------------------------------------------------------------------------------------------
// Finding the browser

fn on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
}

/// `chromium` and `chromedriver`, or `None` (with a loud notice) outside CI when one is missing.
fn browser_tools() -> Option<(PathBuf, PathBuf)> {
    match (on_path("chromium"), on_path("chromedriver")) {
        (Some(chromium), Some(driver)) => Some((chromium, driver)),
        (chromium, driver) => {
            let missing = [
                ("chromium", chromium.is_none()),
                ("chromedriver", driver.is_none()),
            ]
            .iter()
            .filter(|(_, gone)| *gone)
            .map(|(name, _)| *name)
            .collect::<Vec<_>>()
            .join(" and ");
            assert!(
                std::env::var_os("CI").is_none(),
                "CI is set but the PATH lacks {missing}: the browser end-to-end test needs \
                 Debian's `chromium` and `chromium-driver` packages"
            );
            eprintln!("\n{}", "=".repeat(78));
            eprintln!("SKIPPED: browser end-to-end test: {missing} not found on the PATH.");
            eprintln!("Install them (Debian: apt-get install chromium chromium-driver) to run it.");
            eprintln!("{}\n", "=".repeat(78));
            None
        }
    }
}

// ---------------------------------------------------------------------------------------------
// chromedriver and a small W3C WebDriver client

/// A `chromedriver` child process in its own process group; on drop it is asked to shut down
/// (closing its browsers), then the group is killed.
struct Chromedriver {
    child: Child,
    base: String,
    log: PathBuf,
}

impl Chromedriver {
    async fn start(binary: &Path, dir: &Path) -> Self {
        let port = free_port();
        let log = dir.join("chromedriver.log");
        let child = Command::new(binary)
            .arg(format!("--port={port}"))
            .arg(format!("--log-path={}", log.display()))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .unwrap();
        let driver = Self {
            child,
            base: format!("http://127.0.0.1:{port}"),
            log,
        };
        let started = Instant::now();
        loop {
            let ready = match reqwest::get(format!("{}/status", driver.base)).await {
                Ok(r) => r
                    .json::<Value>()
                    .await
                    .is_ok_and(|v| v["value"]["ready"] == true),
                Err(_) => false,
            };
            if ready {
                return driver;
            }
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "chromedriver did not become ready: {}",
                std::fs::read_to_string(&driver.log).unwrap_or_default()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for Chromedriver {
    fn drop(&mut self) {
        // `/shutdown` closes the browsers chromedriver started; a plain blocking request because
        // drop cannot await.
        let addr = self.base.trim_start_matches("http://");
        if let Ok(mut stream) = TcpStream::connect(addr) {
            let _ = stream.set_read_timeout(Some(Duration::from_secs(3)));
            let _ = write!(
                stream,
                "GET /shutdown HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
            );
            let _ = stream.read_to_end(&mut Vec::new());
        }
        let deadline = Instant::now() + Duration::from_secs(3);
        while Instant::now() < deadline {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        // Whatever is left of the group we started (its id is chromedriver's pid).
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.child.id())])
            .stderr(Stdio::null())
            .status();
        let _ = self.child.wait();
    }
}

/// An error answered by the WebDriver server (`{"value": {"error", "message"}}`).
#[derive(Debug)]
struct WdError {
    error: String,
    message: String,
}

impl std::fmt::Display for WdError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.error, self.message)
    }
}

impl WdError {
    /// Errors worth retrying while the page re-renders.
    fn is_transient(&self) -> bool {
        matches!(
            self.error.as_str(),
            "stale element reference"
                | "element click intercepted"
                | "element not interactable"
                | "no such element"
        )
    }
}

/// A reference to an element of the page.
#[derive(Clone, Debug)]
struct Element(String);

/// The kinds of element looked up by accessible name.
#[derive(Clone, Copy, Debug)]
enum Role {
    Button,
    Link,
    Field,
}

impl Role {
    fn as_str(self) -> &'static str {
        match self {
            Self::Button => "button",
            Self::Link => "link",
            Self::Field => "field",
        }
    }

    /// The role Chromium's accessibility tree gives such an element.
    fn accepts(self, computed: &str) -> bool {
        match self {
            Self::Button => computed == "button",
            Self::Link => computed == "link",
            Self::Field => matches!(computed, "textbox" | "searchbox" | "combobox"),
        }
    }
}

/// The visible elements of a kind whose accessible name is `arguments[1]`: `aria-label`,
/// `aria-labelledby`, `<label for>`, or (buttons and links) their text without `aria-hidden`
/// parts, spaces collapsed.
const FIND_BY_NAME: &str = r#"
const [role, name] = arguments;
const norm = s => (s || '').replace(/\s+/g, ' ').trim();
const text = node => {
  if (node.nodeType === Node.TEXT_NODE) return node.nodeValue;
  if (node.nodeType !== Node.ELEMENT_NODE || node.getAttribute('aria-hidden') === 'true') return '';
  return Array.from(node.childNodes).map(text).join('');
};
const label = el => {
  const aria = el.getAttribute('aria-label');
  if (aria && aria.trim()) return norm(aria);
  const ids = el.getAttribute('aria-labelledby');
  if (ids) return norm(ids.split(/\s+/).map(id => document.getElementById(id)).filter(Boolean).map(text).join(' '));
  if (el.labels && el.labels.length) return norm(Array.from(el.labels).map(text).join(' '));
  return role === 'field' ? '' : norm(text(el));
};
const selectors = {
  button: 'button, [role=button], input[type=submit], input[type=button]',
  link: 'a[href], [role=link]',
  field: 'input:not([type=hidden]):not([type=file]), textarea, select, [role=textbox]',
};
const visible = el => {
  const r = el.getBoundingClientRect();
  return r.width > 0 && r.height > 0 && getComputedStyle(el).visibility !== 'hidden';
};
return Array.from(document.querySelectorAll(selectors[role])).filter(el => visible(el) && label(el) === name);
"#;

/// Text of the conversation's log region (`role="log"`), or null.
const LOG_TEXT: &str = r#"
const log = document.querySelector('[role=log]');
return log ? log.innerText : null;
"#;

/// The assistant replies in the log: their count and the text of the last one.
const LAST_REPLY: &str = r#"
const log = document.querySelector('[role=log]');
if (!log) return { count: 0, text: null };
const replies = log.querySelectorAll('[aria-label=Assistant]');
const last = replies[replies.length - 1];
return { count: replies.length, text: last ? last.innerText : null };
"#;

/// A WebDriver session of one headless Chromium.
struct Browser {
    http: reqwest::Client,
    session: String,
    /// Whether chromedriver answers `computedlabel` / `computedrole`.
    accessibility_checks: bool,
}

impl Browser {
    async fn open(driver: &Chromedriver, chromium: &Path, profile: &Path) -> Self {
        let http = reqwest::Client::new();
        let args = [
            "--headless=new".to_owned(),
            "--no-sandbox".into(),
            "--disable-gpu".into(),
            "--disable-dev-shm-usage".into(),
            "--disable-quic".into(),
            "--no-first-run".into(),
            "--disable-background-networking".into(),
            "--disable-component-update".into(),
            "--disable-sync".into(),
            "--hide-scrollbars".into(),
            format!("--user-data-dir={}", profile.display()),
            format!("--window-size={},{}", DESKTOP.0, DESKTOP.1),
        ];
        let capabilities = json!({
            "capabilities": { "alwaysMatch": {
                "browserName": "chrome",
                "pageLoadStrategy": "normal",
                "goog:chromeOptions": { "binary": chromium.display().to_string(), "args": args },
            }}
        });
        let response = http
            .post(format!("{}/session", driver.base))
            .json(&capabilities)
            .send()
            .await
            .unwrap();
        let answer: Value = response.json().await.unwrap();
        let id = answer["value"]["sessionId"].as_str().unwrap_or_else(|| {
            panic!(
                "chromedriver did not start Chromium: {answer}\n{}",
                std::fs::read_to_string(&driver.log).unwrap_or_default()
            )
        });
        let mut browser = Self {
            http,
            session: format!("{}/session/{id}", driver.base),
            accessibility_checks: true,
        };
        browser.set_viewport(DESKTOP).await;
        browser
    }

    /// One WebDriver command; `path` is relative to the session.
    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value, WdError> {
        let mut request = self.http.request(method, format!("{}{path}", self.session));
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let ok = response.status().is_success();
        let mut answer: Value = response.json().await.unwrap();
        let value = answer["value"].take();
        if ok {
            Ok(value)
        } else {
            Err(WdError {
                error: value["error"].as_str().unwrap_or("unknown").to_owned(),
                message: value["message"]
                    .as_str()
                    .unwrap_or_default()
                    .chars()
                    .take(500)
                    .collect(),
            })
        }
    }

    async fn get(&self, path: &str) -> Result<Value, WdError> {
        self.call(reqwest::Method::GET, path, None).await
    }

    async fn post(&self, path: &str, body: Value) -> Result<Value, WdError> {
        self.call(reqwest::Method::POST, path, Some(body)).await
    }

    async fn goto(&self, url: &str) {
        self.post("/url", json!({ "url": url })).await.unwrap();
    }

    async fn refresh(&self) {
        self.post("/refresh", json!({})).await.unwrap();
    }

    async fn current_url(&self) -> String {
        self.get("/url").await.unwrap().as_str().unwrap().to_owned()
    }

    async fn execute(&self, script: &str, args: Value) -> Value {
        self.post("/execute/sync", json!({ "script": script, "args": args }))
            .await
            .unwrap_or_else(|e| panic!("script failed: {e}"))
    }

    /// Resizes the window so that the page's viewport is `width` x `height`.
    async fn set_viewport(&mut self, (width, height): (u32, u32)) {
        for _ in 0..3 {
            let inner = self
                .execute("return [window.innerWidth, window.innerHeight];", json!([]))
                .await;
            let rect = self.get("/window/rect").await.unwrap();
            let (iw, ih) = (inner[0].as_i64().unwrap(), inner[1].as_i64().unwrap());
            if iw == i64::from(width) && ih == i64::from(height) {
                return;
            }
            let (ow, oh) = (
                rect["width"].as_i64().unwrap(),
                rect["height"].as_i64().unwrap(),
            );
            let body = json!({ "width": ow - iw + i64::from(width), "height": oh - ih + i64::from(height) });
            self.post("/window/rect", body).await.unwrap();
        }
    }

    async fn screenshot_png(&self) -> Vec<u8> {
        let encoded = self.get("/screenshot").await.unwrap();
        base64_decode(encoded.as_str().unwrap())
    }

    async fn quit(self) {
        let _ = self.call(reqwest::Method::DELETE, "", None).await;
    }

    /// A short excerpt of what the page shows, for failure messages.
    async fn page_text(&self) -> String {
        let text = self
            .execute(
                "return document.body ? document.body.innerText : '';",
                json!([]),
            )
            .await;
        let text = text.as_str().unwrap_or_default();
        format!(
            "{} — page text: {:?}",
            self.current_url().await,
            text.chars().take(1500).collect::<String>()
        )
    }

    /// The visible elements of `role` named `name`.
    async fn find_all(&self, role: Role, name: &str) -> Vec<Element> {
        let found = self
            .execute(FIND_BY_NAME, json!([role.as_str(), name]))
            .await;
        found
            .as_array()
            .map(|list| {
                list.iter()
                    .filter_map(|e| e[ELEMENT_KEY].as_str().map(|id| Element(id.to_owned())))
                    .collect()
            })
            .unwrap_or_default()
    }

    async fn find(&self, role: Role, name: &str) -> Option<Element> {
        self.find_all(role, name).await.into_iter().next()
    }

    /// Waits for one element of `role` named `name` and checks Chromium's own accessible name
    /// and role for it.
    async fn wait_for(&mut self, role: Role, name: &str) -> Element {
        let started = Instant::now();
        loop {
            if let Some(element) = self.find(role, name).await {
                self.check_accessibility(&element, role, name).await;
                return element;
            }
            if started.elapsed() > WAIT {
                panic!(
                    "no {} named {name:?} appeared: {}",
                    role.as_str(),
                    self.page_text().await
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn check_accessibility(&mut self, element: &Element, role: Role, name: &str) {
        if !self.accessibility_checks {
            return;
        }
        let label = self
            .get(&format!("/element/{}/computedlabel", element.0))
            .await;
        let computed_role = self
            .get(&format!("/element/{}/computedrole", element.0))
            .await;
        match (label, computed_role) {
            (Ok(label), Ok(computed_role)) => {
                assert_eq!(
                    label.as_str().map(str::trim),
                    Some(name),
                    "Chromium computes another accessible name for the {} found as {name:?}",
                    role.as_str()
                );
                let computed_role = computed_role.as_str().unwrap_or_default();
                assert!(
                    role.accepts(computed_role),
                    "the element named {name:?} has the role {computed_role:?}, not {}",
                    role.as_str()
                );
            }
            (Err(e), _) | (_, Err(e)) if e.error == "unknown command" => {
                self.accessibility_checks = false
            }
            // The page re-rendered under us: the next lookup checks again.
            (Err(e), _) | (_, Err(e)) if e.is_transient() => {}
            (Err(e), _) | (_, Err(e)) => panic!("accessibility query failed: {e}"),
        }
    }

    /// Finds the element and clicks it, retrying while the page re-renders.
    async fn click(&mut self, role: Role, name: &str) {
        let started = Instant::now();
        loop {
            let element = self.wait_for(role, name).await;
            match self
                .post(&format!("/element/{}/click", element.0), json!({}))
                .await
            {
                Ok(_) => return,
                Err(e) if e.is_transient() && started.elapsed() < WAIT => {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err(e) => panic!("clicking the {} {name:?} failed: {e}", role.as_str()),
            }
        }
    }

    /// Replaces the text of the field labelled `name` by typing `text` into it.
    async fn type_into(&mut self, name: &str, text: &str) {
        let started = Instant::now();
        loop {
            let field = self.wait_for(Role::Field, name).await;
            let typed = match self
                .post(&format!("/element/{}/clear", field.0), json!({}))
                .await
            {
                Ok(_) => {
                    self.post(
                        &format!("/element/{}/value", field.0),
                        json!({ "text": text }),
                    )
                    .await
                }
                Err(e) => Err(e),
            };
            match typed {
                Ok(_) => return,
                Err(e) if e.is_transient() && started.elapsed() < WAIT => {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err(e) => panic!("typing into {name:?} failed: {e}"),
            }
        }
    }

    /// Polls `script` until it returns something other than null/false; returns that value.
    async fn wait_until(&self, what: &str, script: &str, args: Value) -> Value {
        let started = Instant::now();
        loop {
            let value = self.execute(script, args.clone()).await;
            if !(value.is_null() || value == false) {
                return value;
            }
            if started.elapsed() > WAIT {
                panic!("timed out waiting until {what}: {}", self.page_text().await);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits until the message log shows every one of `needles`.
    async fn wait_for_log(&self, needles: &[&str]) -> String {
        let script = format!(
            "const log = document.querySelector('[role=log]'); const t = log ? log.innerText : '';\
             return {} ? t : null;",
            serde_json::to_string(needles).unwrap() + ".every(n => t.includes(n))"
        );
        let value = self
            .wait_until(
                &format!("the message log shows {needles:?}"),
                &script,
                json!([]),
            )
            .await;
        value.as_str().unwrap().to_owned()
    }

    async fn last_reply(&self) -> (u64, Option<String>) {
        let value = self.execute(LAST_REPLY, json!([])).await;
        (
            value["count"].as_u64().unwrap_or(0),
            value["text"].as_str().map(str::to_owned),
        )
    }

    /// Saves a screenshot to `docs/screenshots/<name>.png` when `CONFAB_SCREENSHOTS=1`.
    async fn screenshot(&self, name: &str) {
        if std::env::var("CONFAB_SCREENSHOTS").as_deref() != Ok("1") {
            return;
        }
        // Let transitions and the caret settle.
        tokio::time::sleep(Duration::from_millis(400)).await;
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/screenshots");
        std::fs::create_dir_all(&dir).unwrap();
        let png = self.screenshot_png().await;
        assert!(png.starts_with(b"\x89PNG"), "the screenshot is not a PNG");
        let path = dir.join(format!("{name}.png"));
        std::fs::write(&path, &png).unwrap();
        eprintln!("saved {} ({} bytes)", path.display(), png.len());
    }
}

/// Standard base64 (the encoding of WebDriver screenshots).
fn base64_decode(text: &str) -> Vec<u8> {
    let value = |c: u8| -> u32 {
        match c {
            b'A'..=b'Z' => u32::from(c - b'A'),
            b'a'..=b'z' => u32::from(c - b'a') + 26,
            b'0'..=b'9' => u32::from(c - b'0') + 52,
            b'+' => 62,
            b'/' => 63,
            other => panic!("not base64: {other}"),
        }
    };
    let clean: Vec<u8> = text
        .bytes()
        .filter(|c| !c.is_ascii_whitespace() && *c != b'=')
        .collect();
    let mut out = Vec::with_capacity(clean.len() * 3 / 4);
    for chunk in clean.chunks(4) {
        let mut n = 0u32;
        for (i, c) in chunk.iter().enumerate() {
            n |= value(*c) << (18 - 6 * i);
        }
        let bytes = n.to_be_bytes();
        out.extend_from_slice(&bytes[1..chunk.len()]);
    }
    out
}

/// How many characters of `expected` are visible: the longest prefix of it found in `shown`.
fn visible_prefix(expected: &str, shown: &str) -> usize {
    let ends: Vec<usize> = expected
        .char_indices()
        .map(|(i, _)| i)
        .skip(1)
        .chain([expected.len()])
        .collect();
    ends.iter()
        .rev()
        .find(|end| shown.contains(&expected[..**end]))
        .map_or(0, |end| expected[..*end].chars().count())
}

/// What the echo demo model answers to `said` under a system prompt of `prompt_chars` characters.
fn echo_reply(said: &str, prompt_chars: usize) -> String {
    format!(
        "You said: \"{said}\". I am the echo demo model; I was given instructions ({prompt_chars} \
         characters) but I only repeat what I hear."
    )
}

// ---------------------------------------------------------------------------------------------
// The test

#[tokio::test]
async fn a_person_chats_in_a_real_browser_and_another_person_sees_none_of_it() {
    let Some((chromium, chromedriver)) = browser_tools() else {
        return;
    };
    let scratch = Scratch::new("browser");
    let port = free_port();
    let mut env = base_env(scratch.path(), port);
    env.retain(|(k, _)| k != "CONFAB_ECHO_PACE_MS");
    env.push(("CONFAB_ECHO_PACE_MS".into(), PACE_MS.into()));
    let server = Server::start(scratch.path(), &env).await;
    let driver = Chromedriver::start(&chromedriver, scratch.path()).await;
    let profile = scratch.path().join("chromium-profile");
    std::fs::create_dir_all(&profile).unwrap();
    let mut b = Browser::open(&driver, &chromium, &profile).await;

    // Dev sign-in.
    eprintln!("step: sign in");
    b.goto(&format!("{}/", server.base)).await;
    b.wait_for(Role::Field, "Username").await;
    b.wait_for(Role::Button, "Sign in").await;
    b.screenshot("sign-in").await;
    b.type_into("Username", "alice").await;
    b.click(Role::Button, "Sign in").await;

    // Create a project.
    eprintln!("step: create a project");
    b.click(Role::Button, "New project").await;
    b.type_into("Project name", "Travel helper").await;
    b.click(Role::Button, "Create").await;
    b.wait_for(Role::Link, "Travel helper").await;

    // Write two prompt versions, then activate the first again.
    eprintln!("step: write and activate a prompt");
    let first_prompt = "You are a friendly travel guide for Portugal.";
    let second_prompt = "Answer in one short sentence.";
    b.click(Role::Button, "Project settings").await;
    b.type_into("System prompt", first_prompt).await;
    b.click(Role::Button, "Save prompt").await;
    b.wait_until(
        "the first prompt version is listed",
        "return document.body.innerText.includes('Version 1');",
        json!([]),
    )
    .await;
    b.type_into("System prompt", second_prompt).await;
    b.click(Role::Button, "Save prompt").await;
    // Version 2 is saved active: the only "Activate" button belongs to version 1.
    b.wait_until(
        "version 2 is saved and version 1 can be activated",
        "return document.body.innerText.includes('Version 2');",
        json!([]),
    )
    .await;
    let activate = b.find_all(Role::Button, "Activate").await;
    assert_eq!(
        activate.len(),
        1,
        "one inactive version: {}",
        b.page_text().await
    );
    b.click(Role::Button, "Activate").await;
    // Now version 2 is the inactive one: its row holds the only "Activate" button.
    b.wait_until(
        "version 1 is active again",
        r#"
        const buttons = Array.from(document.querySelectorAll('button'))
          .filter(b => b.innerText.trim() === 'Activate');
        return buttons.length === 1 && buttons[0].closest('li').innerText.includes('Version 2');
        "#,
        json!([]),
    )
    .await;

    // A small file, so that the settings screen shows one.
    eprintln!("step: upload a file");
    b.wait_for(Role::Button, "Upload file").await;
    let notes = scratch.path().join("packing-list.txt");
    std::fs::write(&notes, "passport\nsunscreen\ncomfortable shoes\n").unwrap();
    let picker = b
        .execute(
            "return document.querySelector('input[type=file]');",
            json!([]),
        )
        .await;
    let picker = Element(
        picker[ELEMENT_KEY]
            .as_str()
            .expect("a file input next to \"Upload file\"")
            .to_owned(),
    );
    b.post(
        &format!("/element/{}/value", picker.0),
        json!({ "text": notes.display().to_string() }),
    )
    .await
    .unwrap();
    b.wait_until(
        "the uploaded file is listed",
        "return document.body.innerText.includes('packing-list.txt') && !document.body.innerText.includes('Uploading');",
        json!([]),
    )
    .await;
    b.execute(
        r#"
        document.activeElement && document.activeElement.blur();
        const heading = Array.from(document.querySelectorAll('h2'))
          .find(h => h.innerText.trim() === 'System prompt');
        if (heading) heading.scrollIntoView({ block: 'start' });
        "#,
        json!([]),
    )
    .await;
    b.screenshot("settings").await;

    // New chat, send, and watch the reply grow.
    eprintln!("step: new chat and send");
    b.click(Role::Button, "New chat").await;
    b.wait_for(Role::Link, "New chat").await;
    let question = "Which three towns should I visit in spring?";
    b.type_into("Message", question).await;
    let (replies_before, _) = b.last_reply().await;
    b.click(Role::Button, "Send").await;
    let expected = echo_reply(question, first_prompt.chars().count());
    let full = expected.chars().count();
    let mut seen: Vec<usize> = Vec::new();
    let started = Instant::now();
    loop {
        let (count, text) = b.last_reply().await;
        if count > replies_before {
            let shown = visible_prefix(&expected, text.as_deref().unwrap_or_default());
            if shown == full {
                break;
            }
            if shown > 0 && seen.last() != Some(&shown) {
                seen.push(shown);
            }
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the reply did not complete; visible lengths {seen:?}: {}",
            b.page_text().await
        );
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
    eprintln!("visible reply lengths while streaming: {seen:?} (complete: {full})");
    assert!(
        seen.len() >= 3,
        "the reply should grow in at least three visible steps before it is complete, saw {seen:?}"
    );
    assert!(
        seen.windows(2).all(|w| w[0] < w[1]),
        "the reply only grows: {seen:?}"
    );
    // Complete: Send is usable again and Stop is gone.
    b.wait_until(
        "the reply is complete",
        "return !Array.from(document.querySelectorAll('button')).some(b => b.innerText.trim() === 'Stop');",
        json!([]),
    )
    .await;
    let chat_url = b.current_url().await;
    b.execute(
        "document.activeElement && document.activeElement.blur();",
        json!([]),
    )
    .await;
    b.screenshot("chat").await;

    // A reload shows the whole conversation.
    eprintln!("step: reload");
    b.refresh().await;
    b.wait_for(Role::Field, "Message").await;
    b.wait_for_log(&[question, &expected]).await;
    // The echo model titled the conversation with the first words of its first message.
    b.wait_for(Role::Link, question).await;

    // Stop a reply mid-way.
    eprintln!("step: stop a reply");
    let long_question = "Tell me about Lisbon and Porto and Coimbra and Braga and Faro and Evora and \
                         Sintra and Cascais and Aveiro and Guimaraes and Obidos and Tomar and Lagos";
    let long_expected = echo_reply(long_question, first_prompt.chars().count());
    let (replies_before, _) = b.last_reply().await;
    b.type_into("Message", long_question).await;
    b.click(Role::Button, "Send").await;
    let threshold = "You said: \"Tell me about Lisbon and".chars().count();
    let started = Instant::now();
    loop {
        let (count, text) = b.last_reply().await;
        if count > replies_before
            && visible_prefix(&long_expected, text.as_deref().unwrap_or_default()) >= threshold
        {
            break;
        }
        assert!(
            started.elapsed() < WAIT,
            "the second reply did not start: {}",
            b.page_text().await
        );
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
    b.click(Role::Button, "Stop").await;
    let stopped = b
        .wait_until(
            "the reply is marked stopped",
            r#"
            const log = document.querySelector('[role=log]');
            const replies = log ? log.querySelectorAll('[aria-label=Assistant]') : [];
            const last = replies[replies.length - 1];
            return last && /\bStopped\b/.test(last.innerText) ? last.innerText : null;
            "#,
            json!([]),
        )
        .await;
    let stopped = stopped.as_str().unwrap().to_owned();
    let shown = visible_prefix(&long_expected, &stopped);
    assert!(
        shown >= threshold && shown < long_expected.chars().count(),
        "a stopped reply keeps its partial text only: {stopped:?}"
    );
    // It stays stopped: in 1.5 s the echo model would add some 15 words, but at most a word
    // already in flight when Stop was pressed may still show up.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let (_, later) = b.last_reply().await;
    let later = later.unwrap_or_default();
    let later_shown = visible_prefix(&long_expected, &later);
    assert!(
        later.contains("Stopped") && later_shown >= shown && later_shown <= shown + 16,
        "the stopped reply went on growing: {stopped:?}, then {later:?}"
    );
    b.wait_for(Role::Button, "Send").await;
    // And so it is stored.
    b.refresh().await;
    b.wait_for_log(&[question, &expected, long_question, "Stopped"])
        .await;
    let (_, stored) = b.last_reply().await;
    let stored = stored.unwrap_or_default();
    let stored_prefix = visible_prefix(&long_expected, &stored);
    assert!(
        stored.contains("Stopped")
            && stored_prefix >= shown
            && stored_prefix < long_expected.chars().count(),
        "after a reload the reply is still partial and stopped: {stored:?}"
    );

    // The phone layout.
    eprintln!("step: phone width");
    b.set_viewport(PHONE).await;
    b.wait_for(Role::Field, "Message").await;
    b.execute(
        "document.activeElement && document.activeElement.blur();",
        json!([]),
    )
    .await;
    b.screenshot("phone").await;
    b.set_viewport(DESKTOP).await;

    // A table in a reply: its columns are aligned by the stylesheet (the page's CSP blocks
    // inline styles, so an inline `text-align` would never show).
    eprintln!("step: a table with aligned columns");
    // Shift+Enter (WebDriver keys: Shift down, Enter, all keys up) starts a new line.
    let new_line = "\u{E008}\u{E007}\u{E000}";
    let table = [
        "Town | Left | Centre | Right",
        "--|:--|:-:|--:",
        "Porto | a | b | c",
        "",
        "Prices in euros.",
    ]
    .join(new_line);
    b.type_into("Message", &table).await;
    b.click(Role::Button, "Send").await;
    let aligned = b
        .wait_until(
            "the reply shows its table and is complete",
            r#"
            const replies = document.querySelectorAll('[role=log] [aria-label=Assistant]');
            const last = replies[replies.length - 1];
            const row = last ? last.querySelector('table tbody tr') : null;
            if (!row || row.cells.length !== 4) return null;
            if (!last.innerText.includes('only repeat what I hear')) return null;
            return Array.from(row.cells).slice(1, 4).map(c => getComputedStyle(c).textAlign);
            "#,
            json!([]),
        )
        .await;
    b.wait_for(Role::Button, "Send").await;
    assert_eq!(
        aligned,
        json!(["left", "center", "right"]),
        "the table's columns are aligned as its delimiter row says"
    );
    b.execute(
        "document.activeElement && document.activeElement.blur();",
        json!([]),
    )
    .await;
    b.screenshot("table").await;

    // Sign out; a second person, in the same tab, sees none of the first one's work and the
    // client asks for nothing of it.
    eprintln!("step: a second user");
    let alice_ids: Vec<String> = chat_url
        .split('/')
        .filter(|segment| segment.len() == 36 && segment.matches('-').count() == 4)
        .map(str::to_owned)
        .collect();
    assert_eq!(alice_ids.len(), 2, "a project and a chat id in {chat_url}");
    b.click(Role::Button, "Sign out").await;
    b.wait_for(Role::Field, "Username").await;
    assert_eq!(
        b.current_url().await,
        format!("{}/", server.base),
        "signing out returns to the start page"
    );
    // From here on, the browser's list of requests holds only those made for bob.
    b.execute("performance.clearResourceTimings();", json!([]))
        .await;
    b.type_into("Username", "bob").await;
    b.click(Role::Button, "Sign in").await;
    b.wait_until(
        "bob's start page and empty project list",
        "return document.body.innerText.includes('Welcome, bob') \
            && document.body.innerText.includes('No projects yet.');",
        json!([]),
    )
    .await;
    assert_eq!(
        b.current_url().await,
        format!("{}/", server.base),
        "bob starts on the start page"
    );
    let requests = b
        .execute(
            "return performance.getEntriesByType('resource')\
                .map(e => ({ url: e.name, status: e.responseStatus || 0 }));",
            json!([]),
        )
        .await;
    let requests = requests.as_array().cloned().unwrap_or_default();
    assert!(
        requests.iter().any(|r| r["url"]
            .as_str()
            .is_some_and(|u| u.ends_with("/api/projects?limit=200"))),
        "bob's projects were asked for: {requests:?}"
    );
    for request in &requests {
        let url = request["url"].as_str().unwrap_or_default();
        assert!(
            !alice_ids.iter().any(|id| url.contains(id.as_str())),
            "after signing in, bob's client asked for alice's {url}"
        );
        assert!(
            request["status"].as_u64().is_none_or(|s| s < 400),
            "a request of bob's session failed: {request}"
        );
    }
    assert!(
        b.find(Role::Link, "Travel helper").await.is_none(),
        "bob sees alice's project: {}",
        b.page_text().await
    );
    b.click(Role::Button, "New project").await;
    b.type_into("Project name", "Bob's notes").await;
    b.click(Role::Button, "Create").await;
    b.wait_for(Role::Link, "Bob's notes").await;
    assert!(
        b.find(Role::Link, "Travel helper").await.is_none(),
        "bob sees alice's project: {}",
        b.page_text().await
    );
    b.goto(&chat_url).await;
    b.wait_until(
        "the other person's chat is refused",
        "return document.querySelector('[role=alert]') !== null;",
        json!([]),
    )
    .await;
    let text = b.page_text().await;
    assert!(
        !text.contains(question),
        "bob can read alice's chat: {text}"
    );
    assert!(
        b.find(Role::Link, "Travel helper").await.is_none(),
        "bob sees alice's project: {text}"
    );
    let log = b.execute(LOG_TEXT, json!([])).await;
    assert!(
        log.as_str().is_none_or(|t| !t.contains(question)),
        "bob's page shows alice's messages"
    );

    b.quit().await;
    drop(driver);
    drop(server);
}

/// Wraps the page's `fetch`: the body of the next `POST …/messages` errors after four chunks
/// (a dropped connection), and the `Last-Event-ID` of each `GET …/stream` is noted in
/// `window.__followedFrom`.
const CUT_THE_SEND_STREAM: &str = r#"
const original = window.fetch.bind(window);
window.__followedFrom = [];
window.fetch = async (request, init) => {
  const url = typeof request === 'string' ? request : request.url;
  if (typeof request !== 'string' && url.includes('/stream')) {
    window.__followedFrom.push(request.headers.get('Last-Event-ID'));
  }
  const response = await original(request, init);
  const isSend = typeof request !== 'string' && request.method === 'POST' && url.endsWith('/messages');
  if (!isSend || window.__cut || !response.body) return response;
  window.__cut = true;
  const reader = response.body.getReader();
  let chunks = 0;
  const body = new ReadableStream({
    async pull(controller) {
      if (chunks++ >= 4) {
        reader.cancel();
        controller.error(new TypeError('connection dropped'));
        return;
      }
      const { done, value } = await reader.read();
      if (done) controller.close(); else controller.enqueue(value);
    }
  });
  return new Response(body, { status: response.status, headers: response.headers });
};
"#;

/// What the echo demo model answers to `said` in a project without a system prompt.
fn echo_reply_without_prompt(said: &str) -> String {
    format!("You said: \"{said}\". I am the echo demo model and I was given no instructions.")
}

/// The visible lengths (of `expected`) the last reply shows until it is complete, polled.
async fn watch_reply_grow(b: &Browser, expected: &str, what: &str) -> Vec<usize> {
    let full = expected.chars().count();
    let mut seen: Vec<usize> = Vec::new();
    let started = Instant::now();
    loop {
        let (_, text) = b.last_reply().await;
        let shown = visible_prefix(expected, text.as_deref().unwrap_or_default());
        if shown > 0 && seen.last() != Some(&shown) {
            seen.push(shown);
        }
        if shown == full {
            return seen;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "{what}: the reply did not complete; visible lengths {seen:?}: {}",
            b.page_text().await
        );
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
}

/// The requests the page made whose address contains `part`.
async fn requests_to(b: &Browser, part: &str) -> usize {
    let n = b
        .execute(
            "return performance.getEntriesByType('resource').filter(e => e.name.includes(arguments[0])).length;",
            json!([part]),
        )
        .await;
    usize::try_from(n.as_u64().unwrap_or(0)).unwrap_or(0)
}

/// Issue 15: a reply goes on growing after a reload (the client follows `GET …/stream`) and
/// ends with exactly the stored text; a second window of the same person shows it live, and
/// Stop there stops it in both.
#[tokio::test]
async fn a_live_reply_is_followed_after_a_reload_and_in_a_second_window() {
    let Some((chromium, chromedriver)) = browser_tools() else {
        return;
    };
    let scratch = Scratch::new("browser-follow");
    let port = free_port();
    let mut env = base_env(scratch.path(), port);
    env.retain(|(k, _)| k != "CONFAB_ECHO_PACE_MS");
    env.push(("CONFAB_ECHO_PACE_MS".into(), "150".into()));
    let server = Server::start(scratch.path(), &env).await;
    let api = Client::sign_in(&server.base, "carol").await;
    let (project, chat) = api.project_and_chat().await;
    let chat_url = format!("{}/p/{project}/c/{chat}", server.base);
    let driver = Chromedriver::start(&chromedriver, scratch.path()).await;
    let mut windows = Vec::new();
    for name in ["first", "second"] {
        let profile = scratch.path().join(format!("chromium-{name}"));
        std::fs::create_dir_all(&profile).unwrap();
        let mut w = Browser::open(&driver, &chromium, &profile).await;
        w.goto(&format!("{}/", server.base)).await;
        w.type_into("Username", "carol").await;
        w.click(Role::Button, "Sign in").await;
        w.wait_for(Role::Link, "Bot").await;
        w.goto(&chat_url).await;
        w.wait_for(Role::Field, "Message").await;
        windows.push(w);
    }
    let [mut a, mut b]: [Browser; 2] = windows.try_into().unwrap_or_else(|_| unreachable!());

    // Send in the first window, reload it mid-reply: the reply goes on growing to its end.
    eprintln!("step: reload mid-reply");
    let question = "Walk me through Lisbon and Porto and Coimbra and Braga and Faro and Evora";
    a.type_into("Message", question).await;
    a.click(Role::Button, "Send").await;
    let expected = echo_reply_without_prompt(question);
    a.wait_until(
        "the reply has started",
        "const r = document.querySelectorAll('[role=log] [aria-label=Assistant]'); \
         return r.length > 0 && r[r.length - 1].innerText.includes('Walk me');",
        json!([]),
    )
    .await;
    a.refresh().await;
    a.wait_for(Role::Button, "Stop").await;
    let seen = watch_reply_grow(&a, &expected, "after the reload").await;
    eprintln!("visible lengths after the reload: {seen:?}");
    // The stored partial text may show for a moment before the replayed reply overtakes it;
    // from its shortest showing on, the reply only grows, in several steps, to its end.
    let lowest = seen
        .iter()
        .enumerate()
        .min_by_key(|(_, n)| **n)
        .map_or(0, |(i, _)| i);
    let growth = &seen[lowest..];
    assert!(
        growth.len() >= 3 && growth.windows(2).all(|w| w[0] < w[1]),
        "after the reload the reply grows step by step: {seen:?}"
    );
    // A request's resource timing entry is made when its response ends: the stream's, once
    // its last event is sent (after the reply is stored).
    a.wait_until(
        "the reloaded page has followed the reply's stream",
        "return performance.getEntriesByType('resource').some(e => e.name.includes(arguments[0]));",
        json!([format!("/api/conversations/{chat}/stream")]),
    )
    .await;
    a.wait_until(
        "the reply is complete",
        "return !Array.from(document.querySelectorAll('button')).some(b => b.innerText.trim() === 'Stop');",
        json!([]),
    )
    .await;
    let (_, shown) = a.last_reply().await;
    let shown = shown.unwrap_or_default();
    let (status, messages) = api
        .get(&format!("/api/conversations/{chat}/messages?limit=200"))
        .await;
    assert_eq!(status, 200);
    let stored = messages["items"]
        .as_array()
        .and_then(|m| m.last())
        .and_then(|m| m["content"].as_str())
        .unwrap_or_default()
        .to_owned();
    assert_eq!(stored, expected, "the stored reply is the whole echo");
    assert!(
        shown.contains(&stored) && shown.matches("You said").count() == 1,
        "the followed reply shows exactly the stored text, no word twice: {shown:?}"
    );

    // A second reply, sent in the first window: the second window (opened on the chat after
    // the send) shows it live; Stop there stops it in both.
    eprintln!("step: a second window follows and stops the reply");
    let question = "Then tell me about Sintra and Cascais and Aveiro and Guimaraes and Obidos and \
                    Tomar and Lagos and Tavira and Viseu and Leiria and Setubal and Nazare";
    let expected = echo_reply_without_prompt(question);
    a.type_into("Message", question).await;
    a.click(Role::Button, "Send").await;
    a.wait_until(
        "the second reply has started",
        "const r = document.querySelectorAll('[role=log] [aria-label=Assistant]'); \
         return r.length > 1 && r[r.length - 1].innerText.includes('Then tell');",
        json!([]),
    )
    .await;
    b.refresh().await;
    b.wait_for(Role::Button, "Stop").await;
    let mut seen: Vec<usize> = Vec::new();
    let started = Instant::now();
    while seen.len() < 3 {
        let (_, text) = b.last_reply().await;
        let shown = visible_prefix(&expected, text.as_deref().unwrap_or_default());
        if shown > 0 && seen.last() != Some(&shown) {
            seen.push(shown);
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the second window does not show the reply growing: {seen:?}: {}",
            b.page_text().await
        );
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
    assert!(
        seen.windows(2).all(|w| w[0] < w[1]),
        "the reply grows in the second window: {seen:?}"
    );
    b.click(Role::Button, "Stop").await;
    let stopped_script = r#"
        const replies = document.querySelectorAll('[role=log] [aria-label=Assistant]');
        const last = replies[replies.length - 1];
        return last && /\bStopped\b/.test(last.innerText) ? last.innerText : null;
        "#;
    let in_b = b
        .wait_until(
            "the second window shows it stopped",
            stopped_script,
            json!([]),
        )
        .await;
    let in_a = a
        .wait_until(
            "the first window shows it stopped",
            stopped_script,
            json!([]),
        )
        .await;
    let (in_a, in_b) = (
        in_a.as_str().unwrap_or_default().to_owned(),
        in_b.as_str().unwrap_or_default().to_owned(),
    );
    let shown = visible_prefix(&expected, &in_b);
    assert!(
        shown < expected.chars().count(),
        "the stopped reply is partial: {in_b:?}"
    );
    assert_eq!(
        visible_prefix(&expected, &in_a),
        shown,
        "both windows show the same stopped reply: {in_a:?} / {in_b:?}"
    );
    a.wait_for(Role::Button, "Send").await;
    b.wait_for(Role::Button, "Send").await;

    // The send's stream is cut after a few chunks (the page's `fetch` is wrapped so that the
    // body errors, as a dropped connection does): the client reconnects to `GET …/stream` with
    // `Last-Event-ID` and the reply ends with exactly the stored text.
    eprintln!("step: a dropped stream reconnects");
    a.execute(CUT_THE_SEND_STREAM, json!([])).await;
    let question = "Finally Madeira and the Azores";
    let expected = echo_reply_without_prompt(question);
    a.type_into("Message", question).await;
    a.click(Role::Button, "Send").await;
    watch_reply_grow(&a, &expected, "after the cut").await;
    a.wait_for(Role::Button, "Send").await;
    let (_, shown) = a.last_reply().await;
    let shown = shown.unwrap_or_default();
    assert!(
        shown.contains(&expected) && shown.matches("You said").count() == 1,
        "the reconnected reply shows exactly the whole text, no word twice: {shown:?}"
    );
    let resumed = a
        .execute(
            "return window.__cut ? window.__followedFrom : null;",
            json!([]),
        )
        .await;
    let resumed: Vec<u64> = resumed
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|v| v.as_str()?.parse().ok())
        .collect();
    eprintln!("Last-Event-ID of the reconnects: {resumed:?}");
    assert!(
        resumed.first().is_some_and(|n| *n > 0),
        "the client reconnected with the last event's number as Last-Event-ID: {resumed:?}"
    );

    a.quit().await;
    b.quit().await;
    drop(driver);
    drop(server);
}

/// A public key for Clerk's session tokens (`CLERK_JWT_KEY`): with it the server verifies
/// tokens without fetching Clerk's JWKS, so it starts in Clerk mode with no network.
const CLERK_TEST_KEY: &str = "-----BEGIN PUBLIC KEY-----
MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAsS+1Y7EZ6h1NaRzjOQXT
pmP8Wp47DH2N/ZfG1qChESKQHBxqhnkX8jCn9gd/9vuR8PlzgX7zMCWhXQGu5qtw
xkGqaoRPqun4c5DK9+7Nf+iAYjMNunywRQwR1XO99QSDlTSlKhMrjDGwl9w5KNL7
KHjfsMyny/oI8ZI4IA6LgtTsauvWqEF65QuIFSVFmXJSgnW6BYmGVe2xvvrX4Ssu
gAPUh//xcr6SNCKnc9Rx7RmfpyPjjHiidwb9aIjQ/D1F6oWb205SrO67perdvG4+
M33poATCHh2x7UHuFPlmCtGPzV9mrhZTEQUd9YlO8xAFux62+wzDqieo08LVV0Mh
UwIDAQAB
-----END PUBLIC KEY-----";

/// The browser client loads Clerk's script from the host that `/api/config` names (it no
/// longer decodes the publishable key itself), and the page's CSP allows that same host.
#[tokio::test]
async fn with_clerk_the_client_is_told_the_frontend_api_host() {
    let scratch = Scratch::new("clerk-config");
    let port = free_port();
    let mut env = base_env(scratch.path(), port);
    // base64("clerk.example.com$")
    env.push((
        "CLERK_PUBLISHABLE_KEY".into(),
        "pk_test_Y2xlcmsuZXhhbXBsZS5jb20k".into(),
    ));
    env.push(("CLERK_JWT_KEY".into(), CLERK_TEST_KEY.into()));
    let server = Server::start(scratch.path(), &env).await;

    let config: Value = reqwest::get(format!("{}/api/config", server.base))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(config["auth"]["provider"], "clerk", "{config}");
    assert_eq!(
        config["auth"]["clerk_frontend_api"], "clerk.example.com",
        "{config}"
    );
    let page = reqwest::get(format!("{}/", server.base)).await.unwrap();
    let csp = page
        .headers()
        .get("content-security-policy")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    assert!(
        csp.contains("https://clerk.example.com"),
        "the CSP allows the host the client is told: {csp}"
    );
    drop(server);
}

#[tokio::test]
async fn without_clerk_the_config_names_no_frontend_api_host() {
    let scratch = Scratch::new("dev-config");
    let port = free_port();
    let server = Server::start(scratch.path(), &base_env(scratch.path(), port)).await;
    let config: Value = reqwest::get(format!("{}/api/config", server.base))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(config["auth"]["provider"], "dev", "{config}");
    assert!(
        config["auth"].get("clerk_frontend_api").is_none(),
        "{config}"
    );
    drop(server);
}

/// Issue 17: a question edited in place is sent as a new version and answered; "Previous
/// version" goes back to the first version and its answer; "Regenerate" adds a version of a
/// reply; the title written after the first reply shows in the sidebar without a reload; and
/// the "Model" picker chooses the model of the conversation's next replies.
#[tokio::test]
async fn a_question_is_edited_a_reply_regenerated_and_versions_browsed_in_a_real_browser() {
    let Some((chromium, chromedriver)) = browser_tools() else {
        return;
    };
    let scratch = Scratch::new("browser-trees");
    let port = free_port();
    let mut env = base_env(scratch.path(), port);
    env.push(("CONFAB_MODELS".into(), "echo-1,echo-2".into()));
    let server = Server::start(scratch.path(), &env).await;
    let api = Client::sign_in(&server.base, "dora").await;
    let (project, chat) = api.project_and_chat().await;
    let chat_url = format!("{}/p/{project}/c/{chat}", server.base);
    let driver = Chromedriver::start(&chromedriver, scratch.path()).await;
    let profile = scratch.path().join("chromium");
    std::fs::create_dir_all(&profile).unwrap();
    let mut b = Browser::open(&driver, &chromium, &profile).await;
    b.goto(&format!("{}/", server.base)).await;
    b.type_into("Username", "dora").await;
    b.click(Role::Button, "Sign in").await;
    b.wait_for(Role::Link, "Bot").await;
    b.goto(&chat_url).await;
    b.wait_for(Role::Field, "Message").await;

    // The first question: answered, and the conversation is titled in the sidebar while the
    // page stays loaded (a reload would drop the marker).
    eprintln!("step: first question and its title");
    b.execute("window.__stillLoaded = true;", json!([])).await;
    let first = "Which birds live in oak trees";
    b.type_into("Message", first).await;
    b.click(Role::Button, "Send").await;
    b.wait_for_log(&[first, &echo_reply_without_prompt(first)])
        .await;
    b.wait_for(Role::Link, first).await;
    assert_eq!(
        b.execute("return window.__stillLoaded === true;", json!([]))
            .await,
        true,
        "the title appeared without a reload"
    );

    // Edit the question in place: a new version, answered.
    eprintln!("step: edit and resend");
    b.click(Role::Button, "Edit").await;
    let edited = "Which birds live in pine trees";
    b.type_into("Edit message", edited).await;
    b.click(Role::Button, "Save and send").await;
    b.wait_for_log(&[edited, &echo_reply_without_prompt(edited), "2 / 2"])
        .await;
    let log = b.execute(LOG_TEXT, json!([])).await;
    assert!(
        !log.as_str().unwrap_or_default().contains(first),
        "the old version is not shown beside the new one: {log}"
    );
    b.wait_for(Role::Button, "Next version").await;

    // Back to the first version, with its own answer.
    eprintln!("step: previous version");
    b.click(Role::Button, "Previous version").await;
    let log = b
        .wait_for_log(&[first, &echo_reply_without_prompt(first), "1 / 2"])
        .await;
    assert!(
        !log.contains(edited),
        "the first version's branch only: {log}"
    );
    let (status, conversation) = api.get(&format!("/api/conversations/{chat}")).await;
    assert_eq!(status, 200);
    let (status, messages) = api
        .get(&format!("/api/conversations/{chat}/messages?limit=200"))
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        messages["items"][1]["id"], conversation["leaf_id"],
        "the server shows the chosen branch too"
    );
    assert_eq!(messages["items"][0]["content"], first);

    // Another answer to the first version: "2 / 2" under the reply.
    eprintln!("step: regenerate");
    b.click(Role::Button, "Regenerate").await;
    let versions = b
        .wait_until(
            "the user message shows 1 / 2 and the reply 2 / 2",
            "const v = Array.from(document.querySelectorAll('[role=log] .msg-versions'))\
               .map(v => v.innerText.replace(/\\s+/g, ' ').replace(/[‹›]/g, '').trim());\
             return v.length === 2 && v[0] === '1 / 2' && v[1] === '2 / 2' ? v : null;",
            json!([]),
        )
        .await;
    eprintln!("versions shown: {versions}");
    b.wait_for_log(&[first, &echo_reply_without_prompt(first)])
        .await;
    b.wait_for(Role::Button, "Send").await;

    // The model picker: the default is shown; choosing another one sets the conversation's
    // model, and the next reply is written by it.
    eprintln!("step: model picker");
    b.wait_for(Role::Field, "Model").await;
    let shown = b
        .execute(
            "return document.getElementById('model-picker').value;",
            json!([]),
        )
        .await;
    assert_eq!(shown, "echo-1", "the default model is shown");
    b.execute(
        "const s = document.getElementById('model-picker'); s.value = 'echo-2'; \
         s.dispatchEvent(new Event('change', { bubbles: true }));",
        json!([]),
    )
    .await;
    let started = Instant::now();
    loop {
        let (_, conversation) = api.get(&format!("/api/conversations/{chat}")).await;
        if conversation["model"] == "echo-2" {
            break;
        }
        assert!(
            started.elapsed() < WAIT,
            "the picker did not set the conversation's model: {conversation}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let question = "And in the willows";
    b.type_into("Message", question).await;
    b.click(Role::Button, "Send").await;
    b.wait_for_log(&[&echo_reply_without_prompt(question)])
        .await;
    b.wait_until(
        "the last reply names the chosen model",
        "const r = document.querySelectorAll('[role=log] [aria-label=Assistant]'); \
         return r.length > 0 && r[r.length - 1].innerText.includes('echo-2');",
        json!([]),
    )
    .await;

    b.quit().await;
    drop(driver);
    drop(server);
}

/// Issue 18: the sidebar's "Search" finds a word from an earlier conversation and opens it,
/// scrolled to the message and highlighted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn search_finds_a_word_from_an_earlier_conversation_and_opens_it() {
    let Some((chromium, chromedriver)) = browser_tools() else {
        return;
    };
    let scratch = Scratch::new("browser-search");
    let port = free_port();
    let env = base_env(scratch.path(), port);
    let server = Server::start(scratch.path(), &env).await;
    let api = Client::sign_in(&server.base, "erin").await;
    let (project, earlier) = api.project_and_chat().await;
    let (status, _) = api
        .send(&earlier, "Remember the axolotl called Quetzalina", 500)
        .await;
    assert_eq!(status, 200);
    // A later conversation, so the earlier one is not simply the newest.
    let (status, _) = api
        .post(&format!("/api/projects/{project}/conversations"), json!({}))
        .await;
    assert_eq!(status, 201);

    let driver = Chromedriver::start(&chromedriver, scratch.path()).await;
    let profile = scratch.path().join("chromium-profile");
    std::fs::create_dir_all(&profile).unwrap();
    let mut b = Browser::open(&driver, &chromium, &profile).await;
    b.goto(&format!("{}/", server.base)).await;
    b.type_into("Username", "erin").await;
    b.click(Role::Button, "Sign in").await;
    b.wait_for(Role::Link, "Bot").await;

    eprintln!("step: search as you type");
    b.type_into("Search", "quetzal").await;
    let href = b
        .wait_until(
            "a search result links to the message",
            "const l = document.querySelector('[aria-label=\"Search results\"] a[href*=\"/m/\"]'); \
             return l ? l.getAttribute('href') : null;",
            json!([]),
        )
        .await;
    let href = href.as_str().unwrap_or_default().to_owned();
    assert!(
        href.starts_with(&format!("/p/{project}/c/{earlier}/m/")),
        "{href}"
    );
    let marked = b
        .execute(
            "const l = document.querySelector('[aria-label=\"Search results\"] a[href*=\"/m/\"]'); \
             return l.querySelector('mark') ? l.querySelector('mark').innerText : null;",
            json!([]),
        )
        .await;
    assert_eq!(marked, json!("Quetzalina"), "the match is marked");
    b.screenshot("search-results").await;

    eprintln!("step: open the result");
    b.execute(
        "document.querySelector('[aria-label=\"Search results\"] a[href*=\"/m/\"]').click(); return true;",
        json!([]),
    )
    .await;
    let shown = b
        .wait_until(
            "the found message is shown, highlighted",
            "const m = document.querySelector('[role=log] [data-highlighted=true]'); \
             return m ? m.innerText : null;",
            json!([]),
        )
        .await;
    assert!(
        shown.as_str().unwrap_or_default().contains("Quetzalina"),
        "{shown}"
    );
    assert!(b.current_url().await.ends_with(&href));
    b.quit().await;
}

// ---------------------------------------------------------------------------------------------
// Issue 21: the core scenario, once per sign-in kind (dev, OIDC at a real provider, built-in
// accounts): a wrong credential refused, sign in, create a project, chat (the reply streams),
// reload (still signed in, the conversation still there), sign out (back at the sign-in page).

/// The label of the OIDC sign-in link.
fn oidc_sign_in_label() -> String {
    format!("Sign in with {}", crate::oidc::DISPLAY_NAME)
}

/// How a person signs in from the sign-in page.
enum SignInKind {
    /// Dev sign-in: a username.
    Dev { username: String },
    /// At the identity provider (`oidc-provider`, see oidc.rs): its own login form.
    Oidc { provider: String, login: String },
    /// Built-in accounts: "Username or email" and "Password".
    Local { login: String, password: String },
}

/// The session the client keeps in `sessionStorage` (dev and built-in accounts), and whether
/// `localStorage` holds one (it must not: ASVS 3.2.3).
const STORED_SESSIONS: &str = r#"
return { session: sessionStorage.getItem('confab.session'),
         local: localStorage.getItem('confab.session') };
"#;

impl SignInKind {
    /// Waits for this kind's sign-in page.
    async fn wait_for_sign_in_page(&self, b: &mut Browser) {
        match self {
            Self::Dev { .. } => {
                b.wait_for(Role::Field, "Username").await;
                b.wait_for(Role::Button, "Sign in").await;
            }
            Self::Oidc { .. } => {
                b.wait_for(Role::Link, &oidc_sign_in_label()).await;
            }
            Self::Local { .. } => {
                b.wait_for(Role::Field, "Username or email").await;
                b.wait_for(Role::Field, "Password").await;
                b.wait_for(Role::Button, "Sign in").await;
            }
        }
    }

    /// The sign-in page refuses a wrong credential, with the server's sentence where the
    /// server judges it; the person stays on the sign-in page.
    async fn refuses_a_wrong_credential(&self, b: &mut Browser, base: &str) {
        let says =
            |text: &'static str| format!("return document.body.innerText.includes({text:?});");
        match self {
            Self::Dev { .. } => {
                // Dev sign-in has no secret: only a blank name is refused (by the client).
                b.goto(&format!("{base}/")).await;
                b.type_into("Username", "   ").await;
                b.click(Role::Button, "Sign in").await;
                b.wait_until(
                    "a blank name is refused",
                    &says("Enter a username."),
                    json!([]),
                )
                .await;
            }
            Self::Oidc { .. } => {
                // The provider's answer failed a check: the sign-in page explains it.
                b.goto(&format!("{base}/?sign_in_error=nonce_mismatch"))
                    .await;
                b.wait_for(Role::Link, &oidc_sign_in_label()).await;
                b.wait_until(
                    "the refusal is explained",
                    &says("Sign-in failed: the identity provider's answer was not made for this sign-in."),
                    json!([]),
                )
                .await;
            }
            Self::Local { login, password } => {
                b.goto(&format!("{base}/")).await;
                b.type_into("Username or email", login).await;
                b.type_into("Password", &format!("{password} but wrong"))
                    .await;
                b.click(Role::Button, "Sign in").await;
                b.wait_until(
                    "the server's sentence for a wrong password is shown",
                    &says("The username, e-mail or password is wrong."),
                    json!([]),
                )
                .await;
            }
        }
        self.wait_for_sign_in_page(b).await;
        assert!(
            b.find(Role::Button, "New project").await.is_none(),
            "signed in with a wrong credential: {}",
            b.page_text().await
        );
    }

    /// Signs in from a fresh sign-in page; the token is never kept in `localStorage`.
    async fn sign_in(&self, b: &mut Browser, base: &str) {
        b.goto(&format!("{base}/")).await;
        match self {
            Self::Dev { username } => {
                b.type_into("Username", username).await;
                b.click(Role::Button, "Sign in").await;
            }
            Self::Oidc { provider, login } => {
                b.click(Role::Link, &oidc_sign_in_label()).await;
                b.wait_until(
                    "the provider's login form is shown",
                    "return document.querySelector('input[name=login]') !== null;",
                    json!([]),
                )
                .await;
                assert!(b.current_url().await.starts_with(provider.as_str()));
                b.execute(
                    "document.querySelector('input[name=login]').value = arguments[0];\
                     document.querySelector('input[name=password]').value = 'anything';\
                     document.querySelector('input[name=login]').form.submit();",
                    json!([login]),
                )
                .await;
            }
            Self::Local { login, password } => {
                self.wait_for_sign_in_page(b).await;
                b.type_into("Username or email", login).await;
                b.type_into("Password", password).await;
                b.click(Role::Button, "Sign in").await;
            }
        }
        b.wait_for(Role::Button, "New project").await;
        assert!(b.current_url().await.starts_with(base));
        let stored = b.execute(STORED_SESSIONS, json!([])).await;
        assert!(
            stored["local"].is_null(),
            "a token in localStorage: {stored}"
        );
        match self {
            // With OIDC the bearer token lives in memory only (the session is a cookie).
            Self::Oidc { .. } => assert!(stored["session"].is_null(), "{stored}"),
            _ => assert!(stored["session"].is_string(), "{stored}"),
        }
    }

    /// Signs out (at the provider too with OIDC): back at the sign-in page.
    async fn sign_out(&self, b: &mut Browser, base: &str) {
        b.click(Role::Button, "Sign out").await;
        if let Self::Oidc { provider, .. } = self {
            b.wait_until(
                "the provider's sign-out page is shown",
                "return location.href.startsWith(arguments[0]);",
                json!([provider]),
            )
            .await;
            b.click(Role::Button, "Yes, sign me out").await;
        }
        self.wait_for_sign_in_page(b).await;
        assert!(b.current_url().await.starts_with(base));
        let stored = b.execute(STORED_SESSIONS, json!([])).await;
        assert!(
            stored["session"].is_null() && stored["local"].is_null(),
            "a token is kept after signing out: {stored}"
        );
    }
}

/// Opens `project` (creating it when the sidebar does not list it), sends `question` in a new
/// chat and watches the reply stream in; then reloads: still signed in, the conversation
/// still there.
async fn chat_and_reload(b: &mut Browser, project: &str, question: &str) {
    b.wait_for(Role::Button, "New project").await;
    if b.find(Role::Link, project).await.is_none() {
        b.click(Role::Button, "New project").await;
        b.type_into("Project name", project).await;
        b.click(Role::Button, "Create").await;
    }
    b.click(Role::Link, project).await;
    b.click(Role::Button, "New chat").await;
    b.wait_for(Role::Link, "New chat").await;
    b.type_into("Message", question).await;
    b.click(Role::Button, "Send").await;
    let expected = echo_reply_without_prompt(question);
    let seen = watch_reply_grow(b, &expected, "the reply").await;
    assert!(
        seen.len() >= 2,
        "the reply should stream in (grow in steps), saw {seen:?}"
    );
    b.refresh().await;
    b.wait_for(Role::Button, "Sign out").await;
    b.wait_for_log(&[question, &expected]).await;
}

/// The core scenario for one kind: a wrong credential refused, sign in, chat, reload, sign out.
async fn core_scenario(b: &mut Browser, base: &str, kind: &SignInKind, project: &str) {
    eprintln!("step: a wrong credential is refused");
    kind.refuses_a_wrong_credential(b, base).await;
    eprintln!("step: sign in");
    kind.sign_in(b, base).await;
    eprintln!("step: chat and reload");
    chat_and_reload(b, project, &format!("Hello from {project}")).await;
    eprintln!("step: sign out");
    kind.sign_out(b, base).await;
}

/// Paces the echo model, so that a reply is seen growing.
fn paced(env: &mut Vec<(String, String)>) {
    crate::harness::set(env, "CONFAB_ECHO_PACE_MS", PACE_MS);
}

/// Issue 21: the core scenario with dev sign-in.
#[tokio::test]
async fn the_core_scenario_with_dev_sign_in() {
    let Some((chromium, chromedriver)) = browser_tools() else {
        return;
    };
    let scratch = Scratch::new("browser-dev-kind");
    let mut env = base_env(scratch.path(), free_port());
    paced(&mut env);
    let server = Server::start(scratch.path(), &env).await;
    let driver = Chromedriver::start(&chromedriver, scratch.path()).await;
    let profile = scratch.path().join("chromium-profile");
    std::fs::create_dir_all(&profile).unwrap();
    let mut b = Browser::open(&driver, &chromium, &profile).await;
    let kind = SignInKind::Dev {
        username: "dora".into(),
    };
    core_scenario(&mut b, &server.base, &kind, "Dev kind").await;
    // Signing in again finds the conversation.
    kind.sign_in(&mut b, &server.base).await;
    b.wait_for(Role::Link, "Dev kind").await;
    b.quit().await;
    drop(server);
}

/// Issue 21: the core scenario at a real OpenID provider (`oidc-provider`, see oidc.rs): the
/// sidebar names the person by the ID token, the session revoked while typing sends the
/// person back to sign-in with a notice and the text kept, and signing out ends the
/// provider's session too.
#[tokio::test]
async fn a_person_signs_in_at_the_identity_provider_chats_reloads_and_signs_out() {
    let Some((chromium, chromedriver)) = browser_tools() else {
        return;
    };
    if !crate::oidc::node_ready() {
        return;
    }
    let scratch = Scratch::new("browser-oidc");
    let port = free_port();
    let confab = format!("http://127.0.0.1:{port}");
    let provider = crate::oidc::Provider::start(&confab, None).await;
    let mut env = crate::oidc::oidc_env(scratch.path(), port, &provider.base);
    paced(&mut env);
    let server = Server::start(scratch.path(), &env).await;
    let driver = Chromedriver::start(&chromedriver, scratch.path()).await;
    let profile = scratch.path().join("chromium-profile");
    std::fs::create_dir_all(&profile).unwrap();
    let mut b = Browser::open(&driver, &chromium, &profile).await;
    let sign_in = oidc_sign_in_label();
    let kind = SignInKind::Oidc {
        provider: provider.base.clone(),
        login: "carol".into(),
    };

    eprintln!("step: a refused sign-in comes back with a notice");
    kind.refuses_a_wrong_credential(&mut b, &confab).await;
    eprintln!("step: sign in at the provider");
    kind.sign_in(&mut b, &confab).await;
    let who = "Carol Tester · carol@example.test";
    b.wait_until(
        "the sidebar names the person by the ID token",
        "return document.body.innerText.includes(arguments[0]);",
        json!([who]),
    )
    .await;

    eprintln!("step: chat and reload");
    let question = "Am I signed in through the provider?";
    chat_and_reload(&mut b, "Provider test", question).await;
    b.wait_until(
        "the sidebar still names the person",
        "return document.body.innerText.includes(arguments[0]);",
        json!([who]),
    )
    .await;

    eprintln!("step: the session ends while typing; the text waits for the return");
    b.type_into("Message", "words not sent yet").await;
    b.execute(
        "fetch('/auth/oidc/sign-out', { method: 'POST', headers: { 'X-Confab-CSRF': '1' } });",
        json!([]),
    )
    .await;
    // Give the sign-out time to land; the next request is then refused: back to sign-in,
    // with a notice.
    tokio::time::sleep(Duration::from_millis(300)).await;
    b.click(Role::Link, "Provider test").await;
    b.wait_for(Role::Link, &sign_in).await;
    b.wait_until(
        "the sign-in page says the session ended",
        "return document.body.innerText.includes('Your session has ended');",
        json!([]),
    )
    .await;
    // The provider still knows the person: no form this time.
    b.click(Role::Link, &sign_in).await;
    b.wait_for(Role::Button, "New project").await;
    b.click(Role::Link, "Provider test").await;
    b.click(Role::Button, "New chat").await;
    b.wait_until(
        "the composer holds the text typed before",
        "const t = document.getElementById('message-input'); return t && t.value === 'words not sent yet';",
        json!([]),
    )
    .await;

    eprintln!("step: sign out at the provider");
    kind.sign_out(&mut b, &confab).await;
    // Signing in again goes through the provider's form: its session ended too.
    b.click(Role::Link, &sign_in).await;
    b.wait_until(
        "the provider asks for the login again",
        "return document.querySelector('input[name=login]') !== null;",
        json!([]),
    )
    .await;
    b.quit().await;
    drop(server);
}

/// The attributes password managers and the ASVS rows rely on, of the field labelled
/// `name`: `[type, autocomplete]`.
async fn field_attributes(b: &mut Browser, name: &str) -> (String, String) {
    let field = b.wait_for(Role::Field, name).await;
    let value = b
        .execute(
            "return [arguments[0].type, arguments[0].getAttribute('autocomplete')];",
            json!([{ ELEMENT_KEY: field.0 }]),
        )
        .await;
    (
        value[0].as_str().unwrap_or_default().to_owned(),
        value[1].as_str().unwrap_or_default().to_owned(),
    )
}

/// The strength meter's sentence under the field with id `id`, once it contains `part`.
async fn strength_says(b: &Browser, id: &str, part: &str) -> String {
    let value = b
        .wait_until(
            &format!("the strength meter of #{id} says {part:?}"),
            "const m = document.getElementById(arguments[0] + '-strength');\
             return m && m.innerText.includes(arguments[1]) ? m.innerText : null;",
            json!([id, part]),
        )
        .await;
    value.as_str().unwrap_or_default().to_owned()
}

/// Whether a paste into the field labelled `name` is let through (no handler cancels it).
async fn paste_is_allowed(b: &mut Browser, name: &str) -> bool {
    let field = b.wait_for(Role::Field, name).await;
    let allowed = b
        .execute(
            "const e = new ClipboardEvent('paste', { bubbles: true, cancelable: true });\
             return arguments[0].dispatchEvent(e);",
            json!([{ ELEMENT_KEY: field.0 }]),
        )
        .await;
    allowed == true
}

/// Issue 21: the core scenario with built-in accounts (`CONFAB_AUTH=local`, invite mode):
/// the first account is created in the browser without an invite, signs in by e-mail,
/// changes its password (the old one is refused after), and an invite link created by the
/// administrator opens "Create account" in a second browser. The password forms are checked
/// against ASVS 2.1.8 (strength meter), 2.1.11 (autocomplete, paste), 2.1.12 (show the
/// password) and 3.2.3 (the token in `sessionStorage`, never `localStorage`).
#[tokio::test]
async fn with_built_in_accounts_a_person_creates_the_first_account_chats_changes_the_password_and_invites_another()
 {
    let Some((chromium, chromedriver)) = browser_tools() else {
        return;
    };
    const PASSWORD: &str = "a long and quiet river 42";
    const NEW_PASSWORD: &str = "another calm mountain lake 7";
    let scratch = Scratch::new("browser-local");
    let mut env = base_env(scratch.path(), free_port());
    crate::harness::set(&mut env, "CONFAB_AUTH", "local");
    paced(&mut env);
    let server = Server::start(scratch.path(), &env).await;
    let base = server.base.clone();
    let driver = Chromedriver::start(&chromedriver, scratch.path()).await;
    let profile = scratch.path().join("chromium-profile");
    std::fs::create_dir_all(&profile).unwrap();
    let mut b = Browser::open(&driver, &chromium, &profile).await;

    eprintln!("step: the first account, without an invite");
    b.goto(&format!("{base}/")).await;
    b.wait_until(
        "the page offers the first account",
        "return document.body.innerText.includes('No account exists yet');",
        json!([]),
    )
    .await;
    b.wait_for(Role::Button, "Create account").await;
    assert_eq!(
        field_attributes(&mut b, "Username").await,
        ("text".into(), "username".into())
    );
    assert_eq!(
        field_attributes(&mut b, "Email (optional)").await,
        ("email".into(), "email".into())
    );
    assert_eq!(
        field_attributes(&mut b, "Password").await,
        ("password".into(), "new-password".into())
    );
    assert!(paste_is_allowed(&mut b, "Username").await);
    assert!(paste_is_allowed(&mut b, "Password").await);
    b.type_into("Username", "ada").await;
    b.type_into("Email (optional)", "ada@example.test").await;
    // The meter: length and the server's rules.
    b.type_into("Password", "short").await;
    strength_says(&b, "password", "Too short: 5 of at least 12 characters.").await;
    b.type_into("Password", "ada's password here").await;
    strength_says(&b, "password", "contains the username").await;
    b.type_into("Password", PASSWORD).await;
    strength_says(&b, "password", "Strong: 25 characters.").await;
    // "Show password" shows it, and hides it again.
    b.click(Role::Button, "Show password").await;
    assert_eq!(field_attributes(&mut b, "Password").await.0, "text");
    b.click(Role::Button, "Show password").await;
    assert_eq!(field_attributes(&mut b, "Password").await.0, "password");
    b.click(Role::Button, "Create account").await;
    b.wait_for(Role::Button, "New project").await;
    let kind = SignInKind::Local {
        login: "ada@example.test".into(),
        password: PASSWORD.into(),
    };
    kind.sign_out(&mut b, &base).await;
    // Now an account exists: the sign-in form, with a current-password field.
    assert_eq!(
        field_attributes(&mut b, "Password").await,
        ("password".into(), "current-password".into())
    );
    assert!(
        b.find(Role::Button, "Create account").await.is_none(),
        "invite mode offers no sign-up once an account exists: {}",
        b.page_text().await
    );

    eprintln!("step: the core scenario, signed in by e-mail");
    core_scenario(&mut b, &base, &kind, "Accounts").await;

    eprintln!("step: change the password");
    kind.sign_in(&mut b, &base).await;
    let stored = b.execute(STORED_SESSIONS, json!([])).await;
    let old_token =
        serde_json::from_str::<Value>(stored["session"].as_str().unwrap()).unwrap()["token"]
            .as_str()
            .unwrap()
            .to_owned();
    b.click(Role::Button, "Change password").await;
    assert_eq!(
        field_attributes(&mut b, "Current password").await,
        ("password".into(), "current-password".into())
    );
    assert_eq!(
        field_attributes(&mut b, "New password").await,
        ("password".into(), "new-password".into())
    );
    assert!(paste_is_allowed(&mut b, "New password").await);
    b.click(Role::Button, "Show new password").await;
    assert_eq!(field_attributes(&mut b, "New password").await.0, "text");
    // A wrong current password: the server's sentence, and the session goes on.
    b.type_into("Current password", "not my password at all")
        .await;
    b.type_into("New password", NEW_PASSWORD).await;
    strength_says(&b, "new-password", "Strong: 28 characters.").await;
    b.type_into("New password", &format!("{NEW_PASSWORD}\u{E007}"))
        .await;
    b.wait_until(
        "a wrong current password is refused with the server's sentence",
        "return document.body.innerText.includes('The username, e-mail or password is wrong.');",
        json!([]),
    )
    .await;
    b.wait_for(Role::Button, "New project").await;
    b.type_into("Current password", PASSWORD).await;
    b.type_into("New password", &format!("{NEW_PASSWORD}\u{E007}"))
        .await;
    b.wait_until(
        "the password is changed",
        "return document.body.innerText.includes('Password changed; other devices are signed out.');",
        json!([]),
    )
    .await;
    let status = reqwest::Client::new()
        .get(format!("{base}/api/me"))
        .bearer_auth(&old_token)
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, 401, "the session before the change was revoked");
    // Still signed in, with the new token.
    b.refresh().await;
    b.wait_for(Role::Link, "Accounts").await;
    kind.sign_out(&mut b, &base).await;
    // The old password is refused now (on a fresh page: no earlier message); the new one
    // signs in.
    b.goto(&format!("{base}/")).await;
    kind.wait_for_sign_in_page(&mut b).await;
    b.type_into("Username or email", "ada").await;
    b.type_into("Password", PASSWORD).await;
    b.click(Role::Button, "Sign in").await;
    b.wait_until(
        "the old password is refused",
        "return document.body.innerText.includes('The username, e-mail or password is wrong.');",
        json!([]),
    )
    .await;
    let kind = SignInKind::Local {
        login: "ada".into(),
        password: NEW_PASSWORD.into(),
    };
    kind.sign_in(&mut b, &base).await;
    b.wait_for(Role::Link, "Accounts").await;

    eprintln!("step: an invite link opens Create account in another browser");
    let answer: Value = reqwest::Client::new()
        .post(format!("{base}/api/auth/local/sign-in"))
        .json(&json!({ "login": "ada", "password": NEW_PASSWORD }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let admin = answer["token"].as_str().unwrap().to_owned();
    let invite = reqwest::Client::new()
        .post(format!("{base}/api/admin/invites"))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(invite.status(), 201);
    let invite: Value = invite.json().await.unwrap();
    let url = invite["url"].as_str().unwrap();
    assert!(url.starts_with("/#invite="), "{url}");
    let guest_profile = scratch.path().join("chromium-guest");
    std::fs::create_dir_all(&guest_profile).unwrap();
    let mut g = Browser::open(&driver, &chromium, &guest_profile).await;
    g.goto(&format!("{base}{url}")).await;
    g.wait_for(Role::Button, "Create account").await;
    g.wait_for(Role::Field, "Email (optional)").await;
    g.type_into("Username", "grace").await;
    g.type_into("Password", "a different long passphrase").await;
    strength_says(&g, "password", "Strong").await;
    g.click(Role::Button, "Create account").await;
    g.wait_until(
        "grace is signed in, with none of ada's projects",
        "return document.body.innerText.includes('Welcome, grace') \
            && document.body.innerText.includes('No projects yet.');",
        json!([]),
    )
    .await;
    assert_eq!(
        g.current_url().await,
        format!("{base}/"),
        "the used invite is taken out of the address"
    );
    g.quit().await;
    b.quit().await;
    drop(server);
}

/// Clicks the "Sign out" of the row of the Sessions list that shows `device`; false while
/// there is no such row.
const END_LISTED_SESSION: &str = r#"
const list = document.querySelector('ul[aria-label="Signed-in sessions"]');
if (!list) return false;
const row = [...list.querySelectorAll('li')].find(li => li.innerText.includes(arguments[0]));
if (!row) return false;
const button = [...row.querySelectorAll('button')].find(b => b.innerText.trim() === 'Sign out');
if (!button) return false;
button.click();
return true;
"#;

/// A sign-in over HTTP from a client that says `user_agent`: its access and refresh tokens.
async fn http_sign_in(
    base: &str,
    user_agent: &str,
    login: &str,
    password: &str,
) -> (String, String) {
    let answer = reqwest::Client::new()
        .post(format!("{base}/api/auth/local/sign-in"))
        .header("User-Agent", user_agent)
        .json(&json!({ "login": login, "password": password }))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);
    let body: Value = answer.json().await.unwrap();
    (
        body["token"].as_str().unwrap().to_owned(),
        body["refresh_token"].as_str().unwrap().to_owned(),
    )
}

async fn status_of_me(base: &str, token: &str) -> u16 {
    reqwest::Client::new()
        .get(format!("{base}/api/me"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

/// Issue 21, built-in accounts' sessions in the browser, with 3-second access tokens:
/// (a) renewal is silent: past the access token's lifetime (and the 5 s of allowed clock
/// skew) a message typed before still goes and is answered, with no sign-in page; (b) a
/// session made elsewhere shows in "Sessions" and its "Sign out" ends it (its tokens are
/// refused after); (c) a password changed from another session is told in a notice after
/// the next sign-in (ASVS 2.2.3), whose "Review sessions" opens Sessions and "Dismiss" marks
/// it read for good.
#[tokio::test]
async fn with_built_in_accounts_tokens_renew_silently_sessions_end_from_the_list_and_a_change_elsewhere_is_told()
 {
    let Some((chromium, chromedriver)) = browser_tools() else {
        return;
    };
    const PASSWORD: &str = "a long and quiet river 42";
    const NEW_PASSWORD: &str = "another calm mountain lake 7";
    const ACCESS_TTL_SECS: u64 = 3;
    let scratch = Scratch::new("browser-local-sessions");
    let mut env = base_env(scratch.path(), free_port());
    crate::harness::set(&mut env, "CONFAB_AUTH", "local");
    crate::harness::set(
        &mut env,
        "CONFAB_ACCESS_TOKEN_TTL_SECS",
        &ACCESS_TTL_SECS.to_string(),
    );
    let server = Server::start(scratch.path(), &env).await;
    let base = server.base.clone();
    let http = reqwest::Client::new();
    // The first account, made over HTTP (no User-Agent): its sign-up is a sign-in from
    // elsewhere, which the browser's first visit tells of.
    let created = http
        .post(format!("{base}/api/auth/local/sign-up"))
        .json(&json!({ "username": "ada", "password": PASSWORD }))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    let driver = Chromedriver::start(&chromedriver, scratch.path()).await;
    let profile = scratch.path().join("chromium-profile");
    std::fs::create_dir_all(&profile).unwrap();
    let mut b = Browser::open(&driver, &chromium, &profile).await;
    let kind = SignInKind::Local {
        login: "ada".into(),
        password: PASSWORD.into(),
    };
    kind.sign_in(&mut b, &base).await;
    b.wait_until(
        "the sign-up over HTTP is told as a sign-in from elsewhere",
        "return document.body.innerText.includes('New sign-in on') \
            && document.body.innerText.includes('from an unknown browser, 127.0.0.1');",
        json!([]),
    )
    .await;
    b.click(Role::Button, "Dismiss").await;
    b.wait_until(
        "the notice is gone",
        "return !document.body.innerText.includes('New sign-in on');",
        json!([]),
    )
    .await;

    eprintln!("step (a): a message typed before the access token expires goes after it");
    b.click(Role::Button, "New project").await;
    b.type_into("Project name", "Renewals").await;
    b.click(Role::Button, "Create").await;
    b.click(Role::Link, "Renewals").await;
    b.click(Role::Button, "New chat").await;
    b.wait_for(Role::Link, "New chat").await;
    let stored = b.execute(STORED_SESSIONS, json!([])).await;
    let before: Value = serde_json::from_str(stored["session"].as_str().unwrap()).unwrap();
    let old_token = before["token"].as_str().unwrap().to_owned();
    let question = "Still here after the token expired";
    b.type_into("Message", question).await;
    // Past the token's lifetime and the 5 s of clock skew the server allows.
    tokio::time::sleep(Duration::from_secs(ACCESS_TTL_SECS + 6)).await;
    assert_eq!(
        status_of_me(&base, &old_token).await,
        401,
        "the access token from before the wait has expired"
    );
    assert_eq!(composer_text(&b).await, question, "nothing typed is lost");
    b.click(Role::Button, "Send").await;
    b.wait_for_log(&[question, &echo_reply_without_prompt(question)])
        .await;
    assert!(
        b.find(Role::Field, "Username or email").await.is_none(),
        "no sign-in page: {}",
        b.page_text().await
    );
    assert!(
        requests_to(&b, "/api/auth/local/refresh").await >= 1,
        "the client renewed the session"
    );
    let stored = b.execute(STORED_SESSIONS, json!([])).await;
    let after: Value = serde_json::from_str(stored["session"].as_str().unwrap()).unwrap();
    assert_ne!(
        after["token"], before["token"],
        "a new access token is kept"
    );
    assert_eq!(
        status_of_me(&base, after["token"].as_str().unwrap()).await,
        200
    );

    eprintln!("step (b): a session made elsewhere is listed and signed out from the list");
    let (second, second_refresh) = http_sign_in(&base, "Second Device/1.0", "ada", PASSWORD).await;
    b.click(Role::Button, "Sessions").await;
    b.wait_until(
        "the second session is listed",
        "const l = document.querySelector('ul[aria-label=\"Signed-in sessions\"]');\
         return l && l.innerText.includes('Second Device/1.0') && l.innerText.includes('this device');",
        json!([]),
    )
    .await;
    b.wait_until(
        "its Sign out is clicked",
        END_LISTED_SESSION,
        json!(["Second Device/1.0"]),
    )
    .await;
    b.wait_until(
        "the ended session leaves the list",
        "const l = document.querySelector('ul[aria-label=\"Signed-in sessions\"]');\
         return l && !l.innerText.includes('Second Device/1.0') && l.innerText.includes('this device');",
        json!([]),
    )
    .await;
    assert_eq!(
        status_of_me(&base, &second).await,
        401,
        "the ended session's token is refused"
    );
    let renewed = http
        .post(format!("{base}/api/auth/local/refresh"))
        .json(&json!({ "refresh_token": second_refresh }))
        .send()
        .await
        .unwrap();
    assert_eq!(renewed.status(), 401, "and it cannot be renewed");
    b.click(Role::Button, "Sessions").await;

    eprintln!("step (c): a password changed from another session is told after the next sign-in");
    let (other, _) = http_sign_in(&base, "Other Browser/9.0", "ada", PASSWORD).await;
    let changed = http
        .post(format!("{base}/api/auth/local/password"))
        .header("User-Agent", "Other Browser/9.0")
        .bearer_auth(&other)
        .json(&json!({ "current": PASSWORD, "new": NEW_PASSWORD }))
        .send()
        .await
        .unwrap();
    assert_eq!(changed.status(), 200);
    // This tab's session was ended by the change: the next visit asks to sign in.
    let kind = SignInKind::Local {
        login: "ada".into(),
        password: NEW_PASSWORD.into(),
    };
    kind.sign_in(&mut b, &base).await;
    b.wait_until(
        "the notice tells of the change, with when and where",
        "const n = document.querySelector('[aria-label=\"Security notice\"]');\
         return n && n.innerText.includes('Your password was changed on') \
             && n.innerText.includes('(Other Browser/9.0)') \
             && n.innerText.includes('New sign-in on');",
        json!([]),
    )
    .await;
    let notice = b
        .execute(
            "return document.querySelector('[aria-label=\"Security notice\"]').innerText;",
            json!([]),
        )
        .await;
    let notice = notice.as_str().unwrap();
    assert!(
        notice.contains("from Second Device/1.0, 127.0.0.1"),
        "the earlier sign-in elsewhere, not dismissed yet, is told too: {notice}"
    );
    assert!(
        !notice.contains("unknown browser"),
        "the sign-up dismissed before is not told again: {notice}"
    );
    b.click(Role::Button, "Review sessions").await;
    b.wait_until(
        "Review sessions opens the Sessions list",
        "const l = document.querySelector('ul[aria-label=\"Signed-in sessions\"]');\
         return l && l.innerText.includes('this device');",
        json!([]),
    )
    .await;
    b.click(Role::Button, "Dismiss").await;
    b.wait_until(
        "the notice is gone",
        "return document.querySelector('[aria-label=\"Security notice\"]') === null;",
        json!([]),
    )
    .await;
    b.click(Role::Button, "Security activity").await;
    b.wait_until(
        "Security activity lists the change",
        "const l = document.querySelector('ul[aria-label=\"Security activity\"]');\
         return l && l.innerText.includes('Your password was changed on');",
        json!([]),
    )
    .await;
    b.refresh().await;
    b.wait_for(Role::Button, "New project").await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        !b.page_text().await.contains("Your password was changed on"),
        "dismissed for good, not only on this page"
    );
    b.quit().await;
    drop(server);
}

/// Signs in with the dev sign-in as `name` on a fresh page.
async fn dev_sign_in(b: &mut Browser, base: &str, name: &str) {
    b.goto(&format!("{base}/")).await;
    b.type_into("Username", name).await;
    b.click(Role::Button, "Sign in").await;
    b.wait_for(Role::Link, "Usage").await;
}

/// The text of the message box.
async fn composer_text(b: &Browser) -> String {
    let text = b
        .execute(
            "const t = document.getElementById('message-input'); return t ? t.value : null;",
            json!([]),
        )
        .await;
    text.as_str().unwrap_or_default().to_owned()
}

/// Issue 19: after a chat, the sidebar's "Usage" opens the page whose table "Tokens per day"
/// has a row for today with tokens.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_usage_page_shows_todays_tokens_after_a_chat() {
    let Some((chromium, chromedriver)) = browser_tools() else {
        return;
    };
    let scratch = Scratch::new("browser-usage");
    let port = free_port();
    let env = base_env(scratch.path(), port);
    let server = Server::start(scratch.path(), &env).await;
    let api = Client::sign_in(&server.base, "uma").await;
    let (project, chat) = api.project_and_chat().await;

    let driver = Chromedriver::start(&chromedriver, scratch.path()).await;
    let profile = scratch.path().join("chromium-profile");
    std::fs::create_dir_all(&profile).unwrap();
    let mut b = Browser::open(&driver, &chromium, &profile).await;
    dev_sign_in(&mut b, &server.base, "uma").await;

    eprintln!("step: chat");
    b.goto(&format!("{}/p/{project}/c/{chat}", server.base))
        .await;
    b.type_into("Message", "How many tokens is this?").await;
    b.click(Role::Button, "Send").await;
    b.wait_for_log(&["How many tokens is this?"]).await;
    b.wait_until(
        "the reply is finished",
        "const s = Array.from(document.querySelectorAll('button')).some(b => b.innerText.trim() === 'Stop'); \
         const r = document.querySelectorAll('[role=log] [aria-label=Assistant]'); \
         return !s && r.length > 0;",
        json!([]),
    )
    .await;

    eprintln!("step: open Usage");
    b.click(Role::Link, "Usage").await;
    let today = b
        .execute("return new Date().toISOString().slice(0, 10);", json!([]))
        .await;
    let row = b
        .wait_until(
            "the table \"Tokens per day\" has a row for today",
            "const t = Array.from(document.querySelectorAll('table')).find(t => \
               t.caption && t.caption.innerText.trim() === 'Tokens per day'); \
             if (!t) return null; \
             const r = Array.from(t.querySelectorAll('tbody tr')).find(r => \
               r.cells[0] && r.cells[0].innerText.trim() === arguments[0]); \
             return r ? Array.from(r.cells).map(c => c.innerText.trim()) : null;",
            json!([today]),
        )
        .await;
    let tokens: u64 = row[1]
        .as_str()
        .unwrap_or_default()
        .replace([',', ' '], "")
        .parse()
        .unwrap_or_else(|_| panic!("the Tokens cell is a number: {row}"));
    assert!(tokens > 0, "today's row counts tokens: {row}");
    let bar = b
        .execute(
            "const s = document.querySelector('svg.usage-chart'); \
             return s ? s.textContent.includes(arguments[0]) : false;",
            json!([today]),
        )
        .await;
    assert_eq!(
        bar,
        json!(true),
        "the chart labels today's bar: {}",
        b.page_text().await
    );
    b.screenshot("usage").await;
    b.quit().await;
}

/// Issue 19: an administrator sets a user's daily quota to 1 token on the "Admin" page; that
/// user's next send is refused with the server's sentence and the typed text stays in the box,
/// its attached file too (issue 16).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_administrator_sets_a_quota_and_the_user_is_refused_with_the_text_kept() {
    let Some((chromium, chromedriver)) = browser_tools() else {
        return;
    };
    let scratch = Scratch::new("browser-quota");
    let port = free_port();
    let mut env = base_env(scratch.path(), port);
    // Dev sign-in subjects are `dev:<username>`.
    env.push(("CONFAB_ADMINS".into(), "dev:ada".into()));
    let server = Server::start(scratch.path(), &env).await;
    // Bob has used some tokens, so the administrator's list shows him.
    let bob = Client::sign_in(&server.base, "bob").await;
    let (project, chat) = bob.project_and_chat().await;
    let (status, _) = bob.send(&chat, "A first question", 500).await;
    assert_eq!(status, 200);

    let driver = Chromedriver::start(&chromedriver, scratch.path()).await;
    let profile = scratch.path().join("chromium-profile");
    std::fs::create_dir_all(&profile).unwrap();
    let mut b = Browser::open(&driver, &chromium, &profile).await;

    eprintln!("step: the administrator sets bob's daily quota");
    dev_sign_in(&mut b, &server.base, "ada").await;
    b.click(Role::Link, "Admin").await;
    b.type_into("Daily quota for dev:bob", "1").await;
    let field = b.wait_for(Role::Field, "Daily quota for dev:bob").await;
    // Enter submits the row's form.
    b.post(
        &format!("/element/{}/value", field.0),
        json!({ "text": "\u{E007}" }),
    )
    .await
    .unwrap();
    let admin = Client::sign_in(&server.base, "ada").await;
    let started = Instant::now();
    loop {
        let (status, users) = admin.get("/api/admin/users").await;
        assert_eq!(status, 200);
        let set = users
            .as_array()
            .into_iter()
            .flatten()
            .any(|u| u["user_id"] == "dev:bob" && u["override"]["tokens_per_day"] == json!(1));
        if set {
            break;
        }
        assert!(
            started.elapsed() < WAIT,
            "the quota was not saved: {users} — {}",
            b.page_text().await
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    b.click(Role::Button, "Sign out").await;

    eprintln!("step: bob is refused and keeps his text");
    dev_sign_in(&mut b, &server.base, "bob").await;
    b.goto(&format!("{}/p/{project}/c/{chat}", server.base))
        .await;
    b.wait_for_log(&["A first question"]).await;
    // A file attached to the refused message comes back with its text (issue 16).
    let attachment = scratch.path().join("itinerary.txt");
    std::fs::write(&attachment, "day 1: Lisbon\n").unwrap();
    let picker = file_input(&b, ".composer input[type=file]").await;
    b.post(
        &format!("/element/{}/value", picker.0),
        json!({ "text": attachment.display().to_string() }),
    )
    .await
    .unwrap();
    b.wait_until(
        "the attachment is uploaded",
        "return document.querySelectorAll('.composer .chip.ready').length === 1;",
        json!([]),
    )
    .await;
    let typed = "One more question, please";
    b.type_into("Message", typed).await;
    b.click(Role::Button, "Send").await;
    let said = b
        .wait_until(
            "the refusal is shown",
            "const a = Array.from(document.querySelectorAll('[role=alert]')) \
               .map(e => e.innerText.trim()).filter(t => t.length > 0); \
             return a.length ? a.join(' | ') : null;",
            json!([]),
        )
        .await;
    let said = said.as_str().unwrap_or_default().to_owned();
    assert!(
        said.contains("You have used your daily quota of 1 tokens. It resets tomorrow"),
        "the server's sentence names the limit and when it resets: {said}"
    );
    b.wait_until(
        "the typed text is back in the message box",
        "const t = document.getElementById('message-input'); return t && t.value === arguments[0];",
        json!([typed]),
    )
    .await;
    assert_eq!(composer_text(&b).await, typed);
    b.wait_for(Role::Button, "Remove itinerary.txt").await;
    let log = b.execute(LOG_TEXT, json!([])).await;
    assert!(
        !log.as_str().unwrap_or_default().contains(typed),
        "the refused message is not shown as sent: {log}"
    );
    // Nothing was stored.
    let (status, messages) = bob
        .get(&format!("/api/conversations/{chat}/messages"))
        .await;
    assert_eq!(status, 200);
    assert!(
        !messages.to_string().contains(typed),
        "a refused send stores nothing: {messages}"
    );
    b.quit().await;
}

/// The file input `selector` finds, to be given file paths (WebDriver types them into it).
async fn file_input(b: &Browser, selector: &str) -> Element {
    let found = b
        .execute(
            "return document.querySelector(arguments[0]);",
            json!([selector]),
        )
        .await;
    match found[ELEMENT_KEY].as_str() {
        Some(id) => Element(id.to_owned()),
        None => panic!("no file input {selector}: {}", b.page_text().await),
    }
}

/// The names of the files of a project, via the API.
async fn project_file_names(api: &Client, project: &str) -> Vec<String> {
    let (status, page) = api.get(&format!("/api/projects/{project}/files")).await;
    assert_eq!(status, 200, "{page}");
    page["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|f| f["filename"].as_str().map(str::to_owned))
        .collect()
}

/// Issue 16: two files picked through "Attach files" become chips; "Remove notes.txt" takes
/// one away (and out of the project); the message goes with the other, a small PDF, which the
/// echo model names; the sent message shows it as a link to its download, and as deleted
/// (no link) once the file is deleted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_attached_in_the_composer_go_with_the_message_and_show_as_links() {
    let Some((chromium, chromedriver)) = browser_tools() else {
        return;
    };
    let scratch = Scratch::new("browser-attach");
    let port = free_port();
    let env = base_env(scratch.path(), port);
    let server = Server::start(scratch.path(), &env).await;
    let api = Client::sign_in(&server.base, "ines").await;
    let (project, chat) = api.project_and_chat().await;
    // A small PDF (a header and some bytes, as the attachment tests make one) and a note.
    let mut pdf_bytes = b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n".to_vec();
    pdf_bytes.extend((0..=255u8).cycle().take(2_000));
    let pdf = scratch.path().join("report.pdf");
    std::fs::write(&pdf, &pdf_bytes).unwrap();
    let notes = scratch.path().join("notes.txt");
    std::fs::write(&notes, "bring an umbrella\n").unwrap();

    let driver = Chromedriver::start(&chromedriver, scratch.path()).await;
    let profile = scratch.path().join("chromium-profile");
    std::fs::create_dir_all(&profile).unwrap();
    let mut b = Browser::open(&driver, &chromium, &profile).await;
    dev_sign_in(&mut b, &server.base, "ines").await;
    b.goto(&format!("{}/p/{project}/c/{chat}", server.base))
        .await;
    b.wait_for(Role::Field, "Message").await;

    eprintln!("step: attach two files");
    b.wait_for(Role::Button, "Attach files").await;
    let picker = file_input(&b, ".composer input[type=file]").await;
    b.post(
        &format!("/element/{}/value", picker.0),
        json!({ "text": format!("{}\n{}", pdf.display(), notes.display()) }),
    )
    .await
    .unwrap();
    b.wait_for(Role::Button, "Remove report.pdf").await;
    b.wait_for(Role::Button, "Remove notes.txt").await;
    b.wait_until(
        "both uploads are done",
        "return document.querySelectorAll('.composer .chip.ready').length === 2;",
        json!([]),
    )
    .await;
    assert_eq!(
        project_file_names(&api, &project).await.len(),
        2,
        "both files were uploaded to the project"
    );

    eprintln!("step: remove the second chip");
    b.click(Role::Button, "Remove notes.txt").await;
    b.wait_until(
        "the notes.txt chip is gone",
        "const c = Array.from(document.querySelectorAll('.composer .chip')); \
         return c.length === 1 && !c[0].innerText.includes('notes.txt');",
        json!([]),
    )
    .await;
    assert!(b.find(Role::Button, "Remove report.pdf").await.is_some());
    let started = Instant::now();
    while project_file_names(&api, &project).await != ["report.pdf"] {
        assert!(
            started.elapsed() < WAIT,
            "the removed file left the project: {:?}",
            project_file_names(&api, &project).await
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    eprintln!("step: send with the PDF");
    let question = "What does the report say";
    b.type_into("Message", question).await;
    b.click(Role::Button, "Send").await;
    let named = format!("You attached report.pdf ({} bytes).", pdf_bytes.len());
    let log = b.wait_for_log(&[question, &named]).await;
    assert!(!log.contains("notes.txt"), "only the PDF went: {log}");
    b.wait_until(
        "the chips are cleared after the send",
        "return document.querySelectorAll('.composer .chip').length === 0;",
        json!([]),
    )
    .await;
    b.screenshot("attachments").await;

    eprintln!("step: the sent message links its file");
    let messages = api.messages(&chat).await;
    let files = messages[0]["files"].as_array().cloned().unwrap_or_default();
    assert_eq!(files.len(), 1, "{messages:?}");
    assert_eq!(files[0]["filename"], "report.pdf");
    let file_id = files[0]["id"].as_str().unwrap().to_owned();
    b.wait_for(Role::Link, "report.pdf").await;
    let href = b
        .execute(
            "const a = document.querySelector('[role=log] [aria-label=You] a'); \
             return a ? a.getAttribute('href') : null;",
            json!([]),
        )
        .await;
    assert_eq!(href, json!(format!("/api/files/{file_id}/content")));

    eprintln!("step: a deleted file is named, not linked");
    let deleted = reqwest::Client::new()
        .delete(format!("{}/api/files/{file_id}", server.base))
        .bearer_auth(&api.token)
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status().as_u16(), 204);
    b.refresh().await;
    b.wait_for_log(&["report.pdf (deleted)", &named]).await;
    assert!(
        b.find(Role::Link, "report.pdf").await.is_none(),
        "a deleted file has no link: {}",
        b.page_text().await
    );
    b.quit().await;
}

/// Issue 18: "Share" in a chat's header shows the link in the read-only box "Share link" with
/// "Copy link"; the link opens the chat in a fresh, signed-out browser; "Revoke" in project
/// settings ends it (the link then answers the not-found page).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shared_chat_opens_signed_out_until_its_link_is_revoked() {
    let Some((chromium, chromedriver)) = browser_tools() else {
        return;
    };
    let scratch = Scratch::new("browser-share");
    let port = free_port();
    let env = base_env(scratch.path(), port);
    let server = Server::start(scratch.path(), &env).await;
    let api = Client::sign_in(&server.base, "sam").await;
    let (project, chat) = api.project_and_chat().await;
    let question = "Tell me about quokkas";
    let (status, _) = api.send(&chat, question, 500).await;
    assert_eq!(status, 200);

    let driver = Chromedriver::start(&chromedriver, scratch.path()).await;
    let profile = scratch.path().join("chromium-profile");
    std::fs::create_dir_all(&profile).unwrap();
    let mut b = Browser::open(&driver, &chromium, &profile).await;
    dev_sign_in(&mut b, &server.base, "sam").await;
    b.goto(&format!("{}/p/{project}/c/{chat}", server.base))
        .await;
    b.wait_for_log(&[question, &echo_reply_without_prompt(question)])
        .await;

    eprintln!("step: share");
    b.click(Role::Button, "Share").await;
    b.wait_for(Role::Field, "Share link").await;
    let link = b
        .wait_until(
            "the share link is shown",
            "const f = document.getElementById('share-link'); \
             return f && f.value && f.readOnly ? f.value : null;",
            json!([]),
        )
        .await;
    let link = link.as_str().unwrap_or_default().to_owned();
    assert!(
        link.starts_with(&format!("{}/s/", server.base)),
        "an absolute link to /s/{{token}}: {link}"
    );
    b.click(Role::Button, "Copy link").await;
    b.wait_until(
        "the copy is confirmed, or the link selected to copy by hand",
        "const s = Array.from(document.querySelectorAll('.share-box [role=status]')) \
           .map(e => e.innerText).join(' '); \
         return s.includes('Link copied') || s.includes('Ctrl+C');",
        json!([]),
    )
    .await;
    b.screenshot("share").await;

    eprintln!("step: open the link signed out, in a fresh browser");
    let guest_profile = scratch.path().join("chromium-guest");
    std::fs::create_dir_all(&guest_profile).unwrap();
    let guest = Browser::open(&driver, &chromium, &guest_profile).await;
    guest.goto(&link).await;
    let shown = guest
        .wait_until(
            "the shared chat shows its messages",
            "const t = document.body ? document.body.innerText : ''; \
             return t.includes(arguments[0]) && t.includes(arguments[1]) ? t : null;",
            json!([question, echo_reply_without_prompt(question)]),
        )
        .await;
    assert!(
        !shown.as_str().unwrap_or_default().contains("dev:sam"),
        "no user id on the shared page: {shown}"
    );

    eprintln!("step: revoke in project settings");
    b.goto(&format!("{}/p/{project}/settings", server.base))
        .await;
    b.click(Role::Button, "Revoke").await;
    b.wait_until(
        "no link is listed any more",
        "return document.body.innerText.includes('No chat of this project is shared.');",
        json!([]),
    )
    .await;
    guest.refresh().await;
    guest
        .wait_until(
            "the revoked link shows the not-found page",
            "return document.body.innerText.includes('Link not found');",
            json!([]),
        )
        .await;
    assert_eq!(reqwest::get(&link).await.unwrap().status().as_u16(), 404);
    guest.quit().await;
    b.quit().await;
}

/// Issue 16: a project file with an unusual fact is uploaded; asked about it, the reply lists
/// it under "Sources" with a link to the file, and cites it as [1] linking there too; the
/// settings' "Use project files as knowledge" turns it off.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reply_lists_the_project_file_it_was_given_as_a_linked_source() {
    let Some((chromium, chromedriver)) = browser_tools() else {
        return;
    };
    let scratch = Scratch::new("browser-knowledge");
    let port = free_port();
    let env = base_env(scratch.path(), port);
    let server = Server::start(scratch.path(), &env).await;
    let api = Client::sign_in(&server.base, "kim").await;
    let (project, chat) = api.project_and_chat().await;
    let (status, file) = api
        .upload(
            &project,
            "facts.txt",
            b"Our office mascot is a quokka named Zephyrine; she eats only clover.",
        )
        .await;
    assert_eq!(status, 201, "{file}");
    let file = file["id"].as_str().unwrap_or_default().to_owned();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let (_, info) = api.get(&format!("/api/files/{file}")).await;
        if info["text_status"] == "ready" {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the file's text is read: {info}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let driver = Chromedriver::start(&chromedriver, scratch.path()).await;
    let profile = scratch.path().join("chromium-profile");
    std::fs::create_dir_all(&profile).unwrap();
    let mut b = Browser::open(&driver, &chromium, &profile).await;
    dev_sign_in(&mut b, &server.base, "kim").await;

    eprintln!("step: ask about the fact");
    b.goto(&format!("{}/p/{project}/c/{chat}", server.base))
        .await;
    b.type_into("Message", "What does Zephyrine eat?").await;
    b.click(Role::Button, "Send").await;
    let source = b
        .wait_until(
            "a source is listed under the reply",
            "const n = document.querySelector('[role=log] [aria-label=Assistant] nav.msg-sources'); \
             if (!n) return null; \
             const a = n.querySelector('a'); \
             return { label: n.innerText, href: a.getAttribute('href'), name: a.innerText.trim() };",
            json!([]),
        )
        .await;
    let href = format!("/api/files/{file}/content");
    assert_eq!(source["href"], json!(href), "{source}");
    assert_eq!(source["name"], json!("facts.txt"), "{source}");
    assert!(
        source["label"]
            .as_str()
            .unwrap_or_default()
            .contains("Sources"),
        "{source}"
    );
    let cited = b
        .wait_until(
            "the reply's [1] links to the source",
            "const a = document.querySelector('[role=log] .markdown a[href^=\"/api/files/\"]'); \
             return a ? { href: a.getAttribute('href'), text: a.innerText } : null;",
            json!([]),
        )
        .await;
    assert_eq!(cited["href"], json!(href), "{cited}");
    assert_eq!(cited["text"], json!("1"), "the citation's number: {cited}");
    b.screenshot("knowledge-sources").await;

    eprintln!("step: turn knowledge off in the settings");
    b.goto(&format!("{}/p/{project}/settings", server.base))
        .await;
    b.wait_until(
        "the knowledge checkbox is shown, checked",
        "const c = document.getElementById('project-knowledge'); return c && c.checked ? true : null;",
        json!([]),
    )
    .await;
    b.execute(
        "document.getElementById('project-knowledge').click(); return true;",
        json!([]),
    )
    .await;
    b.wait_until(
        "the change is confirmed",
        "return document.body.innerText.includes('Project files are not used as knowledge.') ? true : null;",
        json!([]),
    )
    .await;
    let (_, stored) = api.get(&format!("/api/projects/{project}")).await;
    assert_eq!(stored["knowledge"], json!(false), "{stored}");
    b.quit().await;
}

/// A ChatGPT `conversations.json` of one chat ("Quokka facts": a system message, then a
/// question and its answer).
fn small_chatgpt_export() -> Vec<u8> {
    let t = 1_700_000_000.0;
    let message = |id: &str, role: &str, at: f64, text: &str| {
        json!({"id": id, "author": {"role": role}, "create_time": at,
               "content": {"content_type": "text", "parts": [text]}, "status": "finished_successfully"})
    };
    let conversations = json!([{
        "title": "Quokka facts", "create_time": t, "update_time": t + 2.0,
        "current_node": "a1", "conversation_id": "quokka-1", "id": "quokka-1",
        "mapping": {
            "root": {"id": "root", "parent": null, "children": ["sys"], "message": null},
            "sys": {"id": "sys", "parent": "root", "children": ["u1"],
                    "message": message("sys", "system", t, "You are ChatGPT")},
            "u1": {"id": "u1", "parent": "sys", "children": ["a1"],
                   "message": message("u1", "user", t + 1.0, "Where do quokkas live?")},
            "a1": {"id": "a1", "parent": "u1", "children": [],
                   "message": message("a1", "assistant", t + 2.0, "Mostly on Rottnest Island.")}
        }
    }]);
    serde_json::to_vec_pretty(&conversations).unwrap()
}

/// Issue 18: in project settings, "Import conversations" takes a ChatGPT conversations.json
/// (a progress bar while it goes), says what it imported and skipped, and the imported chat
/// shows in the sidebar and opens with its messages; a malformed file is refused with the
/// server's sentence; "Export everything" links /api/export and downloads the account's zip.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conversations_are_imported_in_settings_and_everything_exported() {
    let Some((chromium, chromedriver)) = browser_tools() else {
        return;
    };
    let scratch = Scratch::new("browser-import");
    let port = free_port();
    let env = base_env(scratch.path(), port);
    let server = Server::start(scratch.path(), &env).await;
    let api = Client::sign_in(&server.base, "uma").await;
    let (project, _chat) = api.project_and_chat().await;
    let good = scratch.path().join("conversations.json");
    std::fs::write(&good, small_chatgpt_export()).unwrap();
    let bad = scratch.path().join("broken.json");
    std::fs::write(&bad, b"[{\"title\": 3, \"mapping\": ").unwrap();

    let driver = Chromedriver::start(&chromedriver, scratch.path()).await;
    let profile = scratch.path().join("chromium-profile");
    std::fs::create_dir_all(&profile).unwrap();
    let mut b = Browser::open(&driver, &chromium, &profile).await;
    dev_sign_in(&mut b, &server.base, "uma").await;
    b.goto(&format!("{}/p/{project}/settings", server.base))
        .await;
    b.wait_for(Role::Button, "Import conversations").await;

    eprintln!("step: a malformed file is refused with the server's sentence");
    let picker = file_input(&b, "#import-file").await;
    b.post(
        &format!("/element/{}/value", picker.0),
        json!({ "text": bad.display().to_string() }),
    )
    .await
    .unwrap();
    let refused = b
        .wait_until(
            "the import is refused",
            "const a = Array.from(document.querySelectorAll('[role=alert]')) \
               .map(e => e.innerText).find(t => t.includes('not a valid export')); \
             return a || null;",
            json!([]),
        )
        .await;
    assert!(
        refused
            .as_str()
            .unwrap_or_default()
            .starts_with("The file is not a valid export"),
        "{refused}"
    );

    eprintln!("step: import ChatGPT's conversations.json");
    let picker = file_input(&b, "#import-file").await;
    b.post(
        &format!("/element/{}/value", picker.0),
        json!({ "text": good.display().to_string() }),
    )
    .await
    .unwrap();
    b.wait_until(
        "the import's summary is shown",
        "return document.body.innerText \
           .includes('Imported 1 conversation, 2 messages; skipped 1: system message.') ? true : null;",
        json!([]),
    )
    .await;
    assert!(
        b.execute(
            "return document.querySelector('.settings progress') === null;",
            json!([])
        )
        .await
            == json!(true),
        "the progress bar is gone once the import is done"
    );
    b.screenshot("import").await;

    eprintln!("step: the imported chat is in the sidebar and opens");
    b.click(Role::Link, "Quokka facts").await;
    b.wait_for_log(&["Where do quokkas live?", "Mostly on Rottnest Island."])
        .await;

    eprintln!("step: export everything");
    b.goto(&format!("{}/p/{project}/settings", server.base))
        .await;
    let link = b.wait_for(Role::Link, "Export everything").await;
    let href = b
        .execute(
            "return arguments[0].getAttribute('href');",
            json!([{ ELEMENT_KEY: link.0 }]),
        )
        .await;
    assert_eq!(href, json!("/api/export"));
    b.click(Role::Link, "Export everything").await;
    b.wait_until(
        "the export was fetched and saved under the server's name",
        "return document.body.innerText.includes('Downloaded “confab-export-') ? true : null;",
        json!([]),
    )
    .await;
    let zip = reqwest::Client::new()
        .get(format!("{}/api/export", server.base))
        .bearer_auth(&api.token)
        .send()
        .await
        .unwrap();
    assert_eq!(zip.status().as_u16(), 200);
    assert_eq!(
        zip.headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok()),
        Some("application/zip")
    );
    let bytes = zip.bytes().await.unwrap();
    assert!(bytes.starts_with(b"PK\x03\x04"), "a zip archive");
    assert!(
        bytes.windows(11).any(|w| w == b"export.json"),
        "the archive holds export.json"
    );
    b.quit().await;
}
