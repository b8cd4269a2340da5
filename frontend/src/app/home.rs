//! The pages without a conversation: welcome, a project's start page, not found.

use super::Route;
use crate::{
    components::nav_link::NavLink,
    hooks::{use_data_version, use_session},
};
use confab_api_types::Project;
use uuid::Uuid;
use wasm_bindgen_futures::spawn_local;
use yew::prelude::*;

/// `/`: what to do first.
#[component]
pub fn Home() -> Html {
    let session = use_session();
    let name = session
        .user
        .as_ref()
        .map(|u| u.name.clone())
        .unwrap_or_default();
    html! {
        <section class="page empty-state">
            <h1>{ format!("Welcome, {name}") }</h1>
            <p>{ "Create a project with " }<strong>{ "New project" }</strong>
               { ", give it a system prompt and files in its settings, then start a chat." }</p>
            <p class="muted">{ "Projects and their chats are listed in the sidebar." }</p>
        </section>
    }
}

#[derive(Properties, PartialEq)]
pub struct ProjectHomeProps {
    pub project: Uuid,
}

/// `/p/{project}`: the project's start page.
#[component]
pub fn ProjectHome(props: &ProjectHomeProps) -> Html {
    let session = use_session();
    let data = use_data_version();
    let project = use_state(|| None::<Result<Project, String>>);
    {
        let (project, api, id) = (project.clone(), session.api.clone(), props.project);
        use_effect_with((id, data.version), move |_| {
            spawn_local(async move {
                let result = api.get::<Project>(&format!("/api/projects/{id}")).await;
                project.set(Some(result.map_err(|e| e.describe())));
            });
        });
    }
    match &*project {
        None => {
            html! { <section class="page"><p class="muted" role="status">{ "Loading…" }</p></section> }
        }
        Some(Err(e)) => html! {
            <section class="page"><p class="error" role="alert">{ e }</p></section>
        },
        Some(Ok(p)) => html! {
            <section class="page empty-state">
                <h1>{ &p.name }</h1>
                if let Some(d) = p.description.as_ref().filter(|d| !d.is_empty()) {
                    <p>{ d }</p>
                }
                <p>{ "Start a chat with " }<strong>{ "New chat" }</strong>
                   { " in the sidebar, or open one of this project's chats." }</p>
                <p class="muted">{ "The project's system prompt and files are in " }
                   <strong>{ "Project settings" }</strong>{ "." }</p>
            </section>
        },
    }
}

/// Any other path.
#[component]
pub fn NotFound() -> Html {
    html! {
        <section class="page empty-state">
            <h1>{ "Page not found" }</h1>
            <p><NavLink to={Route::Home}>{ "Go to the start page" }</NavLink></p>
        </section>
    }
}
