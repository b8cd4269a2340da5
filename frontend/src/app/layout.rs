//! The signed-in layout: sidebar, main area and the route switch.

use super::{Route, chat::ChatPage, home, router::use_route, settings::SettingsPage, usage};
use crate::{
    components::{activity::SecurityNotice, sidebar::Sidebar},
    hooks::DataVersion,
};
use yew::prelude::*;

fn switch(route: Route) -> Html {
    match route {
        Route::Home => html! { <home::Home /> },
        Route::Project { project } => {
            html! { <home::ProjectHome key={project.to_string()} {project} /> }
        }
        Route::Settings { project } => {
            html! { <SettingsPage key={project.to_string()} {project} /> }
        }
        Route::Chat {
            project,
            conversation,
        } => html! {
            <ChatPage key={conversation.to_string()} {project} {conversation} />
        },
        Route::Message {
            project,
            conversation,
            message,
        } => html! {
            <ChatPage key={conversation.to_string()} {project} {conversation} highlight={Some(message)} />
        },
        Route::Usage => html! { <usage::UsagePage /> },
        Route::Admin => html! { <usage::AdminPage /> },
        Route::NotFound => html! { <home::NotFound /> },
    }
}

/// Sidebar and main area. On narrow screens the sidebar is a drawer opened by "Menu".
#[component]
pub fn Layout() -> Html {
    let route = use_route();
    let (project, conversation) = route.selection();
    let menu_open = use_state_eq(|| false);
    let version = use_state(|| 0u32);
    let sessions_request = use_state(|| 0u32);

    {
        // Close the drawer after navigating.
        let menu_open = menu_open.clone();
        use_effect_with(route.clone(), move |_| menu_open.set(false));
    }

    let data = DataVersion {
        version: *version,
        bump: {
            let version = version.clone();
            Callback::from(move |()| version.set(version.wrapping_add(1)))
        },
    };
    let toggle_menu = {
        let menu_open = menu_open.clone();
        Callback::from(move |_| menu_open.set(!*menu_open))
    };
    let review_sessions = {
        let (sessions_request, menu_open) = (sessions_request.clone(), menu_open.clone());
        Callback::from(move |()| {
            sessions_request.set(sessions_request.wrapping_add(1).max(1));
            // On a narrow screen the sessions are in the drawer.
            menu_open.set(true);
        })
    };
    let close_menu = {
        let menu_open = menu_open.clone();
        Callback::from(move |_| menu_open.set(false))
    };
    let onkeydown = {
        let menu_open = menu_open.clone();
        Callback::from(move |e: KeyboardEvent| {
            if e.key() == "Escape" && *menu_open {
                menu_open.set(false);
            }
        })
    };

    html! {
        <ContextProvider<DataVersion> context={data}>
            <div class={classes!("shell", menu_open.then_some("menu-open"))} {onkeydown}>
                <a class="skip-link" href="#main">{ "Skip to content" }</a>
                <header class="topbar">
                    <button type="button" class="button ghost menu-button" aria-controls="sidebar"
                        aria-expanded={menu_open.to_string()} onclick={toggle_menu}>
                        <span class="menu-icon" aria-hidden="true"></span>{ "Menu" }
                    </button>
                    <span class="brand">{ "Confab" }</span>
                </header>
                <Sidebar {project} {conversation} on_project_page={matches!(route, Route::Project { .. })}
                    sessions_request={*sessions_request} />
                <div class="scrim" aria-hidden="true" onclick={close_menu}></div>
                <main class="main" id="main" tabindex="-1">
                    <SecurityNotice on_review={review_sessions} />
                    { switch(route.clone()) }
                </main>
            </div>
        </ContextProvider<DataVersion>>
    }
}
