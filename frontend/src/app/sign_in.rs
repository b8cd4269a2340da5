//! The sign-in page: a username form with dev auth, Clerk's own form with Clerk, and
//! "Username or email" / "Password" (or "Create account") with built-in accounts.

use confab_api_types::{
    ClientConfig, DevLogin, DevToken, LocalSignIn as SignInBody, LocalSignUp, SessionToken,
};
use wasm_bindgen_futures::spawn_local;
use web_sys::HtmlInputElement;
use yew::prelude::*;

use crate::{
    components::password::PasswordInput,
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
        "local" => html! { <LocalSignIn /> },
        "oidc" if session.config.auth.display_name.is_some() => {
            let name = session.config.auth.display_name.clone().unwrap_or_default();
            html! {
                <a class="button primary wide" href="/auth/oidc/sign-in">{ format!("Sign in with {name}") }</a>
            }
        }
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
                            refresh_token: None,
                            renew_at_ms: None,
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

/// The secret of an invite link (`/#invite=…`), if the page was opened with one.
fn invite_from_location() -> Option<String> {
    let hash = web_sys::window()?.location().hash().ok()?;
    let secret = hash.strip_prefix("#invite=")?;
    (!secret.is_empty()).then(|| secret.to_owned())
}

/// Takes the used invite's secret out of the address (and so out of the history).
fn forget_invite() {
    if let Some(history) = web_sys::window().and_then(|w| w.history().ok()) {
        let _ = history.replace_state_with_url(&wasm_bindgen::JsValue::NULL, "", Some("/"));
    }
}

fn field_value(field: &NodeRef) -> String {
    field
        .cast::<HtmlInputElement>()
        .map(|input| input.value())
        .unwrap_or_default()
}

/// Built-in accounts: sign in, or create an account when sign-up is open or an invite link
/// was followed.
#[component]
fn LocalSignIn() -> Html {
    let session = use_session();
    let invite = use_memo((), |_| invite_from_location());
    // Whether no account exists yet; asked again on every visit of this page, since the
    // first account may have been made since the client started.
    let first_state = use_state(|| session.config.auth.first_account);
    let first = *first_state;
    let can_create =
        first || invite.is_some() || session.config.auth.signup.as_deref() == Some("open");
    let creating = use_state(|| first || invite.is_some());
    {
        let (first_state, creating, invited) =
            (first_state.clone(), creating.clone(), invite.is_some());
        use_effect_with((), move |_| {
            spawn_local(async move {
                if let Ok(config) = Api::anonymous().get::<ClientConfig>("/api/config").await {
                    let now = config.auth.first_account;
                    if now != *first_state {
                        first_state.set(now);
                        if !invited {
                            creating.set(now);
                        }
                    }
                }
            });
        });
    }
    let (login, email, password) = (use_node_ref(), use_node_ref(), use_node_ref());
    let error = use_state(|| None::<String>);
    let busy = use_state(|| false);
    // The username as typed, which a new password must not contain (the strength meter).
    let typed_name = use_state(AttrValue::default);

    let onsubmit = {
        let (login, email, password) = (login.clone(), email.clone(), password.clone());
        let (error, busy, creating) = (error.clone(), busy.clone(), creating.clone());
        let (sign_in, invite) = (session.sign_in.clone(), invite.clone());
        Callback::from(move |e: SubmitEvent| {
            e.prevent_default();
            let name = field_value(&login).trim().to_owned();
            let secret = field_value(&password);
            if name.is_empty() || secret.is_empty() {
                error.set(Some("Fill in every field.".into()));
                return;
            }
            let email = field_value(&email).trim().to_owned();
            busy.set(true);
            error.set(None);
            let (error, busy, sign_in) = (error.clone(), busy.clone(), sign_in.clone());
            let (creating, invite) = (*creating, (*invite).clone());
            let used_invite = creating && invite.is_some();
            spawn_local(async move {
                let answer = if creating {
                    let body = LocalSignUp {
                        username: name.clone(),
                        email: (!email.is_empty()).then_some(email),
                        password: secret,
                        invite,
                    };
                    Api::anonymous()
                        .send::<_, SessionToken>("POST", "/api/auth/local/sign-up", &body)
                        .await
                } else {
                    let body = SignInBody {
                        login: name.clone(),
                        password: secret,
                    };
                    Api::anonymous()
                        .send::<_, SessionToken>("POST", "/api/auth/local/sign-in", &body)
                        .await
                };
                match answer {
                    Ok(t) => {
                        if used_invite {
                            forget_invite();
                        }
                        let stored = StoredSession::of(name.clone(), &t, js_sys::Date::now());
                        session_store::save(&stored);
                        sign_in.emit(SignedIn {
                            name,
                            credentials: stored.credentials(),
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
    let on_name = {
        let typed_name = typed_name.clone();
        Callback::from(move |e: InputEvent| {
            if let Some(input) = e.target_dyn_into::<HtmlInputElement>() {
                typed_name.set(AttrValue::from(input.value()));
            }
        })
    };
    let toggle = {
        let (creating, error) = (creating.clone(), error.clone());
        Callback::from(move |_: MouseEvent| {
            error.set(None);
            creating.set(!*creating);
        })
    };

    html! {
        <form class="stack" {onsubmit} novalidate=true>
            if first && *creating {
                <p class="notice" role="status">
                    { "No account exists yet: the first one created administers this server and can invite others." }
                </p>
            }
            <div class="field">
                <label for="login">{ if *creating { "Username" } else { "Username or email" } }</label>
                <input ref={login} id="login" name="username" type="text" autocomplete="username"
                    autocapitalize="none" spellcheck="false" required=true maxlength="320"
                    oninput={on_name} />
            </div>
            if *creating {
                <div class="field">
                    <label for="email">{ "Email (optional)" }</label>
                    <input ref={email} id="email" name="email" type="email" autocomplete="email" />
                </div>
            }
            <PasswordInput id="password" label="Password"
                autocomplete={if *creating { "new-password" } else { "current-password" }}
                input={password} meter={*creating} username={(*typed_name).clone()}
                error_id={error.is_some().then_some(AttrValue::from("password-error"))} />
            if let Some(e) = &*error {
                <p id="password-error" class="error" role="alert">{ e }</p>
            }
            <button type="submit" class="button primary wide" disabled={*busy}>
                { if *creating { "Create account" } else { "Sign in" } }
            </button>
            if can_create {
                <button type="button" class="button wide" onclick={toggle}>
                    { if *creating { "I have an account" } else { "Create account" } }
                </button>
            }
        </form>
    }
}
