//! Password fields of built-in accounts: [`PasswordInput`] (with "Show password" and, for a
//! new password, a strength meter) and "Change password", after which every other session
//! ends and this one goes on with the new token the server returns.

use confab_api_types::{PasswordChange, SessionToken};
use wasm_bindgen_futures::spawn_local;
use web_sys::HtmlInputElement;
use yew::prelude::*;

use crate::hooks::{SignedIn, use_session};
use crate::services::session_store::{self, StoredSession};

/// The server's rules (adapters/auth `check_password`): at least 12 characters, at most 1024,
/// not a common password, not containing the username.
pub const MIN_CHARS: usize = 12;
pub const MAX_CHARS: usize = 1024;

/// What the meter shows for a new password: a level (0–4, for `<meter>`) and a sentence.
/// Honest about what the client knows: length and the username; the server also refuses
/// common passwords, which the client cannot check (it has no list).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Strength {
    pub level: u8,
    pub text: String,
}

/// Rates `password` by the server's rules and its length.
pub fn strength(password: &str, username: &str) -> Strength {
    let chars = password.chars().count();
    let username = username.trim();
    let weak = |text: String| Strength { level: 0, text };
    if chars == 0 {
        return weak(format!("At least {MIN_CHARS} characters."));
    }
    if chars < MIN_CHARS {
        return Strength {
            level: 1,
            text: format!("Too short: {chars} of at least {MIN_CHARS} characters."),
        };
    }
    if chars > MAX_CHARS {
        return weak(format!("Too long: at most {MAX_CHARS} characters."));
    }
    if !username.is_empty() && password.to_lowercase().contains(&username.to_lowercase()) {
        return weak("It contains the username, which the server refuses.".into());
    }
    let (level, word) = match chars {
        ..16 => (2, "Fair"),
        16..20 => (3, "Good"),
        _ => (4, "Strong"),
    };
    Strength {
        level,
        text: format!(
            "{word}: {chars} characters. Longer is stronger; common passwords are refused."
        ),
    }
}

#[derive(Properties, PartialEq)]
pub struct PasswordInputProps {
    /// The input's id (its label's `for`).
    pub id: AttrValue,
    /// The visible label ("Password", "Current password", "New password").
    pub label: AttrValue,
    /// `current-password` or `new-password`, for password managers (ASVS 2.1.11).
    pub autocomplete: AttrValue,
    pub input: NodeRef,
    /// Show the strength meter (new passwords).
    #[prop_or_default]
    pub meter: bool,
    /// The username the password must not contain (for the meter).
    #[prop_or_default]
    pub username: AttrValue,
    /// The id of an error shown for the field, if any.
    #[prop_or_default]
    pub error_id: Option<AttrValue>,
}

/// A password field with a "Show …" toggle (ASVS 2.1.12) and, for a new password, a strength
/// meter (ASVS 2.1.8). Pasting is never blocked (ASVS 2.1.11).
#[component]
pub fn PasswordInput(props: &PasswordInputProps) -> Html {
    let shown = use_state(|| false);
    let typed = use_state(String::new);
    let toggle = {
        let shown = shown.clone();
        Callback::from(move |_: MouseEvent| shown.set(!*shown))
    };
    let oninput = {
        let typed = typed.clone();
        Callback::from(move |e: InputEvent| {
            if let Some(input) = e.target_dyn_into::<HtmlInputElement>() {
                typed.set(input.value());
            }
        })
    };
    let meter_id = format!("{}-strength", props.id);
    let described_by = [
        props.meter.then(|| meter_id.clone()),
        props.error_id.as_ref().map(ToString::to_string),
    ]
    .into_iter()
    .flatten()
    .collect::<Vec<_>>()
    .join(" ");
    let rated = strength(&typed, &props.username);
    let show_label = format!("Show {}", props.label.to_lowercase());
    html! {
        <div class="field">
            <label for={props.id.clone()}>{ props.label.clone() }</label>
            <div class="password-row">
                <input ref={props.input.clone()} id={props.id.clone()} name={props.id.clone()}
                    type={if *shown { "text" } else { "password" }}
                    autocomplete={props.autocomplete.clone()} autocapitalize="none"
                    spellcheck="false" required=true maxlength={MAX_CHARS.to_string()} {oninput}
                    aria-invalid={props.error_id.is_some().to_string()}
                    aria-describedby={(!described_by.is_empty()).then_some(described_by)} />
                <button type="button" class="button ghost small" onclick={toggle}
                    aria-pressed={shown.to_string()} aria-controls={props.id.clone()}>
                    { show_label }
                </button>
            </div>
            if props.meter {
                <div id={meter_id} class="password-strength small muted">
                    <meter min="0" max="4" low="2" high="3" optimum="4"
                        value={rated.level.to_string()} aria-label="Password strength" />
                    <span>{ rated.text }</span>
                </div>
            }
        </div>
    }
}

fn value(field: &NodeRef) -> String {
    field
        .cast::<HtmlInputElement>()
        .map(|input| input.value())
        .unwrap_or_default()
}

/// A button that opens the form; shown only with built-in accounts.
#[component]
pub fn ChangePassword() -> Html {
    let session = use_session();
    let open = use_state(|| false);
    let (current, new) = (use_node_ref(), use_node_ref());
    let message = use_state(|| None::<(bool, String)>);
    let busy = use_state(|| false);
    if session.config.auth.provider != "local" {
        return html! {};
    }
    let username = session
        .user
        .as_ref()
        .map(|u| AttrValue::from(u.name.clone()))
        .unwrap_or_default();
    let toggle = {
        let (open, message) = (open.clone(), message.clone());
        Callback::from(move |_: MouseEvent| {
            message.set(None);
            open.set(!*open);
        })
    };
    let onsubmit = {
        let (current, new, message, busy, open) = (
            current.clone(),
            new.clone(),
            message.clone(),
            busy.clone(),
            open.clone(),
        );
        let (api, sign_in, user) = (
            session.api.clone(),
            session.sign_in.clone(),
            session.user.clone(),
        );
        Callback::from(move |e: SubmitEvent| {
            e.prevent_default();
            let body = PasswordChange {
                current: value(&current),
                new: value(&new),
            };
            busy.set(true);
            let (api, sign_in, user) = (api.clone(), sign_in.clone(), user.clone());
            let (message, busy, open) = (message.clone(), busy.clone(), open.clone());
            spawn_local(async move {
                let answer = api
                    .send::<_, SessionToken>("POST", "/api/auth/local/password", &body)
                    .await;
                busy.set(false);
                match answer {
                    Ok(t) => {
                        let name = user.map(|u| u.name.clone()).unwrap_or_default();
                        let stored = StoredSession::of(name.clone(), &t, js_sys::Date::now());
                        session_store::save(&stored);
                        open.set(false);
                        message.set(Some((
                            true,
                            "Password changed; other devices are signed out.".into(),
                        )));
                        sign_in.emit(SignedIn {
                            name,
                            credentials: stored.credentials(),
                        });
                    }
                    Err(e) => message.set(Some((false, e.describe()))),
                }
            });
        })
    };
    html! {
        <div class="stack">
            <button type="button" class="button ghost small" onclick={toggle}>{ "Change password" }</button>
            if *open {
                <form class="stack" {onsubmit} novalidate=true>
                    <PasswordInput id="current-password" label="Current password"
                        autocomplete="current-password" input={current} />
                    <PasswordInput id="new-password" label="New password"
                        autocomplete="new-password" input={new} meter=true username={username} />
                    <button type="submit" class="button primary" disabled={*busy}>{ "Change password" }</button>
                </form>
            }
            if let Some((ok, text)) = &*message {
                <p class={if *ok { "notice" } else { "error" }} role={if *ok { "status" } else { "alert" }}>{ text }</p>
            }
        </div>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_meter_follows_the_servers_rules_and_length() {
        assert_eq!(strength("", "ada").level, 0);
        let short = strength("abcdefghijk", "ada");
        assert_eq!(short.level, 1);
        assert_eq!(short.text, "Too short: 11 of at least 12 characters.");
        // Characters, not bytes: 12 "é" are 12 characters.
        assert_eq!(strength(&"é".repeat(12), "").level, 2);
        assert_eq!(strength("correct horse", "").level, 2);
        assert_eq!(strength("correct horse ba", "").level, 3);
        assert_eq!(strength("correct horse battery staple", "").level, 4);
        assert!(
            strength("correct horse battery staple", "")
                .text
                .starts_with("Strong: 28 characters.")
        );
        let named = strength("my name is ADA lovelace", "ada");
        assert_eq!(named.level, 0);
        assert!(named.text.contains("username"));
        assert_eq!(strength(&"x".repeat(MAX_CHARS + 1), "").level, 0);
    }
}
