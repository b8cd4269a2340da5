//! The sign-in page: a username form with dev auth, Clerk's own form with Clerk.

use confab_api_types::{DevLogin, DevToken};
use wasm_bindgen_futures::spawn_local;
use web_sys::HtmlInputElement;
use yew::prelude::*;

use crate::{
    hooks::{SignedIn, use_session},
    services::{
        api::{Api, Credentials},
        clerk,
        session_store::{self, StoredSession},
    },
};

/// Shown while signed out.
#[component]
pub fn SignIn() -> Html {
    let session = use_session();
    let body = match session.config.auth.provider.as_str() {
        "dev" => html! { <DevSignIn /> },
        "clerk" => html! { <ClerkSignIn /> },
        other => html! {
            <p class="error" role="alert">
                { format!("This server signs people in with “{other}”, which this web client does not support yet.") }
            </p>
        },
    };
    html! {
        <main class="auth-page">
            <div class="card auth-card">
                <div class="logo" aria-hidden="true">{ "C" }</div>
                <h1>{ "Sign in to Confab" }</h1>
                if let Some(notice) = &session.notice {
                    <p class="notice" role="status">{ notice }</p>
                }
                { body }
            </div>
        </main>
    }
}

#[component]
fn DevSignIn() -> Html {
    let session = use_session();
    let input = use_node_ref();
    let error = use_state(|| None::<String>);
    let busy = use_state(|| false);

    let onsubmit = {
        let (input, error, busy, sign_in) = (
            input.clone(),
            error.clone(),
            busy.clone(),
            session.sign_in.clone(),
        );
        Callback::from(move |e: SubmitEvent| {
            e.prevent_default();
            let Some(field) = input.cast::<HtmlInputElement>() else {
                return;
            };
            let username = field.value().trim().to_owned();
            if username.is_empty() {
                error.set(Some("Enter a username.".into()));
                let _ = field.focus();
                return;
            }
            busy.set(true);
            error.set(None);
            let (error, busy, sign_in) = (error.clone(), busy.clone(), sign_in.clone());
            spawn_local(async move {
                let body = DevLogin {
                    username: username.clone(),
                };
                match Api::anonymous()
                    .send::<_, DevToken>("POST", "/api/auth/dev-login", &body)
                    .await
                {
                    Ok(t) => {
                        session_store::save(&StoredSession {
                            username: username.clone(),
                            token: t.token.clone(),
                            expires_at_ms: t.expires_at.timestamp_millis(),
                        });
                        sign_in.emit(SignedIn {
                            name: username,
                            credentials: Credentials::Dev { token: t.token },
                        });
                    }
                    Err(e) => {
                        busy.set(false);
                        error.set(Some(e.describe()));
                    }
                }
            });
        })
    };

    html! {
        <form class="stack" {onsubmit} novalidate=true>
            <div class="field">
                <label for="username">{ "Username" }</label>
                <input ref={input} id="username" name="username" type="text" autocomplete="username"
                    autocapitalize="none" spellcheck="false" required=true maxlength="200"
                    aria-invalid={error.is_some().to_string()}
                    aria-describedby={error.is_some().then_some("username-error")} />
            </div>
            if let Some(e) = &*error {
                <p id="username-error" class="error" role="alert">{ e }</p>
            }
            <button type="submit" class="button primary wide" disabled={*busy}>{ "Sign in" }</button>
            <p class="muted small">{ "Development sign-in: any username opens that person's own projects." }</p>
        </form>
    }
}

#[component]
fn ClerkSignIn() -> Html {
    let mount = use_node_ref();
    {
        let mount = mount.clone();
        use_effect_with((), move |_| {
            let el = mount.cast::<web_sys::Element>();
            if let Some(el) = &el {
                clerk::mount_sign_in(el);
            }
            move || {
                if let Some(el) = &el {
                    clerk::unmount_sign_in(el);
                }
            }
        });
    }
    html! { <div ref={mount} class="clerk-mount"></div> }
}
