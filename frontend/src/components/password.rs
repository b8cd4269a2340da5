//! "Change password" for built-in accounts: every other session ends, and this one goes on
//! with the new token the server returns.

use confab_api_types::{PasswordChange, SessionToken};
use wasm_bindgen_futures::spawn_local;
use web_sys::HtmlInputElement;
use yew::prelude::*;

use crate::hooks::{SignedIn, use_session};
use crate::services::api::Credentials;
use crate::services::session_store::{self, StoredSession};

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
                        session_store::save(&StoredSession {
                            username: name.clone(),
                            token: t.token.clone(),
                            expires_at_ms: t.expires_at.timestamp_millis(),
                        });
                        open.set(false);
                        message.set(Some((
                            true,
                            "Password changed; other devices are signed out.".into(),
                        )));
                        sign_in.emit(SignedIn {
                            name,
                            credentials: Credentials::Dev { token: t.token },
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
                    <div class="field">
                        <label for="current-password">{ "Current password" }</label>
                        <input ref={current} id="current-password" type="password" autocomplete="current-password" required=true />
                    </div>
                    <div class="field">
                        <label for="new-password">{ "New password" }</label>
                        <input ref={new} id="new-password" type="password" autocomplete="new-password" required=true maxlength="1024" />
                    </div>
                    <button type="submit" class="button primary" disabled={*busy}>{ "Change password" }</button>
                </form>
            }
            if let Some((ok, text)) = &*message {
                <p class={if *ok { "notice" } else { "error" }} role={if *ok { "status" } else { "alert" }}>{ text }</p>
            }
        </div>
    }
}
