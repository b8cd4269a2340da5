//! "Sessions" in the user menu of built-in accounts (ASVS 3.3.4): the account's signed-in
//! sessions, each with "Sign out" (the current one is marked, and signed out with the
//! sidebar's own "Sign out").

use confab_api_types::SessionInfo;
use uuid::Uuid;
use wasm_bindgen_futures::spawn_local;
use yew::prelude::*;

use crate::hooks::use_session;
use crate::services::{api::Api, browser};

/// What a listed session shows: its browser and address at sign-in, and when it was last
/// renewed.
pub fn describe(session: &SessionInfo) -> String {
    let device = session
        .user_agent
        .as_deref()
        .filter(|ua| !ua.trim().is_empty())
        .unwrap_or("Unknown browser");
    let place = session
        .address
        .as_deref()
        .map(|a| format!(" from {a}"))
        .unwrap_or_default();
    format!("{device}{place}")
}

async fn load(api: Api, list: UseStateHandle<Option<Result<Vec<SessionInfo>, String>>>) {
    let answer = api
        .get::<Vec<SessionInfo>>("/api/auth/local/sessions")
        .await
        .map_err(|e| e.describe());
    list.set(Some(answer));
}

#[derive(Properties, PartialEq)]
pub struct SessionsProps {
    /// Opens the list (and reloads it) each time it changes from what it was, when above 0:
    /// the security notice's "Review sessions".
    #[prop_or_default]
    pub open_request: u32,
}

/// "Sessions": a toggle that lists the sessions, with "Sign out" for each other one.
#[component]
pub fn Sessions(props: &SessionsProps) -> Html {
    let session = use_session();
    let open = use_state(|| false);
    let list = use_state(|| None::<Result<Vec<SessionInfo>, String>>);
    {
        let (open, list, api) = (open.clone(), list.clone(), session.api.clone());
        use_effect_with(props.open_request, move |request| {
            if *request > 0 {
                open.set(true);
                list.set(None);
                spawn_local(load(api, list));
            }
        });
    }
    if session.config.auth.provider != "local" {
        return html! {};
    }
    let toggle = {
        let (open, list, api) = (open.clone(), list.clone(), session.api.clone());
        Callback::from(move |_: MouseEvent| {
            let opening = !*open;
            open.set(opening);
            if opening {
                list.set(None);
                spawn_local(load(api.clone(), list.clone()));
            }
        })
    };
    let end = {
        let (list, api) = (list.clone(), session.api.clone());
        Callback::from(move |id: Uuid| {
            let (list, api) = (list.clone(), api.clone());
            spawn_local(async move {
                if let Err(e) = api
                    .call("DELETE", &format!("/api/auth/local/sessions/{id}"))
                    .await
                {
                    list.set(Some(Err(e.describe())));
                    return;
                }
                load(api, list).await;
            });
        })
    };
    html! {
        <div class="stack">
            <button type="button" class="button ghost small" onclick={toggle}
                aria-expanded={open.to_string()}>{ "Sessions" }</button>
            if *open {
                { match &*list {
                    None => html! { <p class="muted" role="status">{ "Loading sessions…" }</p> },
                    Some(Err(text)) => html! { <p class="error" role="alert">{ text.clone() }</p> },
                    Some(Ok(items)) => html! {
                        <ul class="stack sessions" aria-label="Signed-in sessions">
                            { for items.iter().map(|s| {
                                let id = s.id;
                                let end = end.clone();
                                html! {
                                    <li key={id.to_string()}>
                                        <span class="truncate" title={describe(s)}>{ describe(s) }</span>
                                        <span class="muted">{ format!(" · last active {}", browser::local_time(&s.last_used_at)) }</span>
                                        if s.current {
                                            <span class="muted">{ " · this device" }</span>
                                        } else {
                                            <button type="button" class="button ghost small"
                                                onclick={Callback::from(move |_: MouseEvent| end.emit(id))}>{ "Sign out" }</button>
                                        }
                                    </li>
                                }
                            }) }
                        </ul>
                    },
                } }
            }
        </div>
    }
}
