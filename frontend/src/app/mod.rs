//! The application: start-up, the session, routes and pages.

mod chat;
mod home;
mod layout;
pub mod router;
mod settings;
mod sign_in;
mod usage;

pub use router::Route;

use std::rc::Rc;

use confab_api_types::ClientConfig;
use wasm_bindgen_futures::spawn_local;
use yew::prelude::*;

use crate::{
    hooks::{Session, SignedIn},
    services::{
        api::{Api, Credentials},
        clerk, oidc, session_store,
    },
    wording::ApiError,
};

#[derive(Clone, PartialEq)]
enum Boot {
    Loading,
    Failed(String),
    Ready(Rc<ClientConfig>),
}

const SESSION_ENDED: &str = "Your session has ended. Please sign in again.";

/// The root component: the router, around everything else.
#[component]
pub fn App() -> Html {
    html! { <router::Router><Root /></router::Router> }
}

/// Loads `/api/config`, restores the session and shows the sign-in page or the signed-in
/// layout.
#[component]
fn Root() -> Html {
    let navigator = router::use_navigator();
    let boot = use_state(|| Boot::Loading);
    let user = use_state(|| None::<Rc<SignedIn>>);
    // A refused sign-in at the identity provider comes back as `/?sign_in_error=…`.
    let notice = use_state(oidc::sign_in_error);
    let attempt = use_state(|| 0u32);

    {
        let (boot, user) = (boot.clone(), user.clone());
        use_effect_with(*attempt, move |_| {
            spawn_local(async move {
                match start(&user).await {
                    Ok(config) => boot.set(Boot::Ready(Rc::new(config))),
                    Err(message) => boot.set(Boot::Failed(message)),
                }
            });
        });
    }

    let is_clerk = matches!(&*boot, Boot::Ready(c) if c.auth.provider == "clerk");
    // Whether someone is signed in as of the last render, for Clerk's listener below: the
    // listener outlives renders, so a state handle it captured would hold a stale value.
    let shown_signed_in = use_mut_ref(|| false);
    *shown_signed_in.borrow_mut() = user.is_some();
    {
        // Follow Clerk's sign-in and sign-out (its own form and other tabs).
        let (user, navigator) = (user.clone(), navigator.clone());
        use_effect_with(is_clerk, move |is_clerk| {
            let listener = is_clerk.then(|| {
                clerk::listen(move || {
                    let signed_in = clerk::is_signed_in();
                    if signed_in == *shown_signed_in.borrow() {
                        return;
                    }
                    *shown_signed_in.borrow_mut() = signed_in;
                    if !signed_in && let Some(navigator) = &navigator {
                        // As with our own "Sign out": the next person starts at `/`.
                        navigator.replace(&Route::Home);
                    }
                    user.set(signed_in.then(|| {
                        Rc::new(SignedIn {
                            name: clerk::user_label(),
                            credentials: Credentials::Clerk,
                        })
                    }));
                })
            });
            move || drop(listener)
        });
    }

    let sign_in = {
        let (user, notice) = (user.clone(), notice.clone());
        Callback::from(move |signed_in: SignedIn| {
            notice.set(None);
            user.set(Some(Rc::new(signed_in)));
        })
    };
    let end_session = {
        let user = user.clone();
        move |is_clerk: bool| {
            session_store::clear();
            oidc::forget();
            if is_clerk {
                spawn_local(clerk::sign_out());
            }
            // Whoever signs in next starts at `/`: the address names the last person's
            // project and chat, which are not theirs to ask for.
            if let Some(navigator) = &navigator {
                navigator.replace(&Route::Home);
            }
            user.set(None);
        }
    };
    let sign_out = {
        let (end_session, notice) = (end_session.clone(), notice.clone());
        Callback::from(move |()| {
            notice.set(None);
            end_session(is_clerk);
        })
    };
    let on_unauthorized = {
        let (notice, user) = (notice.clone(), user.clone());
        Callback::from(move |()| {
            // What the person was typing waits for their return.
            if let Some(person) = user.as_ref() {
                crate::services::draft::interrupt(&person.name);
            }
            notice.set(Some(SESSION_ENDED.to_owned()));
            end_session(is_clerk);
        })
    };

    match &*boot {
        Boot::Loading => html! {
            <div class="boot" role="status"><span class="spinner" aria-hidden="true"></span>{ "Loading…" }</div>
        },
        Boot::Failed(message) => {
            let retry = {
                let (attempt, boot) = (attempt.clone(), boot.clone());
                Callback::from(move |_| {
                    boot.set(Boot::Loading);
                    attempt.set(*attempt + 1);
                })
            };
            html! {
                <main class="boot">
                    <div class="card">
                        <h1>{ "Confab could not start" }</h1>
                        <p role="alert">{ message }</p>
                        <button type="button" class="button primary" onclick={retry}>{ "Try again" }</button>
                    </div>
                </main>
            }
        }
        Boot::Ready(config) => {
            let api = match user.as_deref() {
                Some(u) => Api::new(u.credentials.clone(), on_unauthorized),
                None => Api::anonymous(),
            };
            let session = Session {
                config: config.clone(),
                user: (*user).clone(),
                api,
                sign_in,
                sign_out,
                notice: (*notice).clone(),
            };
            // Keyed by the person: nothing one person's pages loaded (lists, chats, drafts)
            // outlives their session.
            let person = user.as_ref().map(|u| u.name.clone());
            html! {
                <ContextProvider<Session> context={session}>
                    if let Some(person) = person {
                        <layout::Layout key={person} />
                    } else {
                        <sign_in::SignIn />
                    }
                </ContextProvider<Session>>
            }
        }
    }
}

/// Loads the server's settings and restores a session kept from an earlier visit.
async fn start(user: &UseStateHandle<Option<Rc<SignedIn>>>) -> Result<ClientConfig, String> {
    let config: ClientConfig = Api::anonymous()
        .get("/api/config")
        .await
        .map_err(|e: ApiError| e.describe())?;
    match config.auth.provider.as_str() {
        // Built-in accounts' tokens are bearer tokens like dev ones; a revoked one is
        // answered 401, which signs the client out.
        "dev" | "local" => {
            if let Some(stored) = session_store::load() {
                user.set(Some(Rc::new(SignedIn {
                    credentials: stored.credentials(),
                    name: stored.username,
                })));
            }
        }
        "clerk" => {
            let (Some(key), Some(host)) = (
                config.auth.clerk_publishable_key.as_deref(),
                config.auth.clerk_frontend_api.as_deref(),
            ) else {
                return Err(
                    "The server uses Clerk but did not send its publishable key and Frontend API host."
                        .to_owned(),
                );
            };
            clerk::load(host, key).await?;
            if clerk::is_signed_in() {
                user.set(Some(Rc::new(SignedIn {
                    name: clerk::user_label(),
                    credentials: Credentials::Clerk,
                })));
            }
        }
        // The server holds the session (an HttpOnly cookie): if it gives a token, someone
        // is signed in, and `/api/me` says who.
        "oidc" if config.auth.display_name.is_some() && oidc::token().await.is_ok() => {
            let api = Api::new(Credentials::Oidc, Callback::noop());
            if let Ok(me) = api.get::<confab_api_types::Me>("/api/me").await {
                user.set(Some(Rc::new(SignedIn {
                    name: person_label(&me),
                    credentials: Credentials::Oidc,
                })));
            }
        }
        _ => {}
    }
    Ok(config)
}

/// How the sidebar names someone signed in at an identity provider: the name and e-mail
/// of the ID token, else the subject.
fn person_label(me: &confab_api_types::Me) -> String {
    match (&me.name, &me.email) {
        (Some(name), Some(email)) => format!("{name} · {email}"),
        (Some(name), None) => name.clone(),
        (None, Some(email)) => email.clone(),
        (None, None) => me.user_id.clone(),
    }
}
