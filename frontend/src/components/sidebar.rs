//! The sidebar: projects, the selected project's chats, "New project", "New chat",
//! "Project settings", "Sign out" and (built-in accounts) "Change password".

use confab_api_types::{Conversation, CreateConversation, CreateProject, Project};
use uuid::Uuid;
use wasm_bindgen_futures::spawn_local;
use web_sys::HtmlInputElement;
use yew::prelude::*;

use crate::{
    app::{Route, router::use_navigator},
    components::{
        activity::SecurityActivity, nav_link::NavLink, password::ChangePassword, search::Search,
        sessions::Sessions,
    },
    hooks::{use_data_version, use_session},
};

#[derive(Properties, PartialEq)]
pub struct SidebarProps {
    pub project: Option<Uuid>,
    pub conversation: Option<Uuid>,
    /// The selected project's own page is shown (not its settings or a chat).
    #[prop_or_default]
    pub on_project_page: bool,
    /// Bumped by the security notice's "Review sessions": opens "Sessions".
    #[prop_or_default]
    pub sessions_request: u32,
}

/// The title shown for a conversation.
pub fn conversation_title(c: &Conversation) -> String {
    match c.title.as_deref().map(str::trim) {
        Some(t) if !t.is_empty() => t.to_owned(),
        _ => "New chat".to_owned(),
    }
}

/// The letter on a project's badge (ASCII case mapping only: Unicode tables would grow the wasm).
fn initial(name: &str) -> String {
    name.trim()
        .chars()
        .next()
        .map(|c| c.to_ascii_uppercase().to_string())
        .unwrap_or_default()
}

#[component]
pub fn Sidebar(props: &SidebarProps) -> Html {
    let session = use_session();
    let data = use_data_version();
    let navigator = use_navigator();
    let projects = use_state(|| None::<Result<Vec<Project>, String>>);
    let conversations = use_state(Vec::<Conversation>::new);
    let creating = use_state(|| false);
    let create_error = use_state(|| None::<String>);
    let action_error = use_state(|| None::<String>);
    let name_input = use_node_ref();

    {
        let (projects, api) = (projects.clone(), session.api.clone());
        use_effect_with(data.version, move |_| {
            spawn_local(async move {
                let result = api.list_all::<Project>("/api/projects").await;
                projects.set(Some(result.map_err(|e| e.describe())));
            });
        });
    }
    {
        let (conversations, api) = (conversations.clone(), session.api.clone());
        use_effect_with((props.project, data.version), move |(project, _)| {
            if let Some(project) = *project {
                spawn_local(async move {
                    let path = format!("/api/projects/{project}/conversations");
                    if let Ok(list) = api.list_all::<Conversation>(&path).await {
                        conversations.set(list);
                    }
                });
            } else {
                conversations.set(Vec::new());
            }
        });
    }
    {
        // Focus the name field when the form opens.
        let name_input = name_input.clone();
        use_effect_with(*creating, move |open| {
            if *open && let Some(input) = name_input.cast::<HtmlInputElement>() {
                let _ = input.focus();
            }
        });
    }

    let open_create = {
        let (creating, create_error) = (creating.clone(), create_error.clone());
        Callback::from(move |_| {
            create_error.set(None);
            creating.set(true);
        })
    };
    let cancel_create = {
        let creating = creating.clone();
        Callback::from(move |_| creating.set(false))
    };
    let submit_create = {
        let (creating, create_error, api, nav, bump, input) = (
            creating.clone(),
            create_error.clone(),
            session.api.clone(),
            navigator.clone(),
            data.bump.clone(),
            name_input.clone(),
        );
        Callback::from(move |e: SubmitEvent| {
            e.prevent_default();
            let Some(field) = input.cast::<HtmlInputElement>() else {
                return;
            };
            let name = field.value().trim().to_owned();
            if name.is_empty() {
                create_error.set(Some("Give the project a name.".into()));
                return;
            }
            let (creating, create_error, api, nav, bump) = (
                creating.clone(),
                create_error.clone(),
                api.clone(),
                nav.clone(),
                bump.clone(),
            );
            spawn_local(async move {
                let body = CreateProject {
                    name,
                    description: None,
                };
                match api.send::<_, Project>("POST", "/api/projects", &body).await {
                    Ok(p) => {
                        creating.set(false);
                        bump.emit(());
                        if let Some(nav) = nav {
                            nav.push(&Route::Project { project: p.id });
                        }
                    }
                    Err(e) => create_error.set(Some(e.describe())),
                }
            });
        })
    };
    let new_chat = {
        let (api, nav, bump, action_error) = (
            session.api.clone(),
            navigator.clone(),
            data.bump.clone(),
            action_error.clone(),
        );
        let project = props.project;
        Callback::from(move |_| {
            let Some(project) = project else { return };
            let (api, nav, bump, action_error) =
                (api.clone(), nav.clone(), bump.clone(), action_error.clone());
            spawn_local(async move {
                let path = format!("/api/projects/{project}/conversations");
                match api
                    .send::<_, Conversation>("POST", &path, &CreateConversation::default())
                    .await
                {
                    Ok(c) => {
                        action_error.set(None);
                        bump.emit(());
                        if let Some(nav) = nav {
                            nav.push(&Route::Chat {
                                project,
                                conversation: c.id,
                            });
                        }
                    }
                    Err(e) => action_error.set(Some(e.describe())),
                }
            });
        })
    };
    let open_settings = {
        let nav = navigator.clone();
        let project = props.project;
        Callback::from(move |_| {
            if let (Some(nav), Some(project)) = (&nav, project) {
                nav.push(&Route::Settings { project });
            }
        })
    };
    let sign_out = {
        let sign_out = session.sign_out.clone();
        // Built-in accounts: the server revokes the session too, so a copied token dies with it.
        let revoke = (session.config.auth.provider == "local").then(|| session.api.clone());
        let provider_session = session
            .user
            .as_ref()
            .is_some_and(|u| u.credentials == crate::services::api::Credentials::Oidc);
        Callback::from(move |_| {
            // The identity provider's session: the server ends it and sends the browser to
            // the provider's sign-out page.
            if provider_session {
                wasm_bindgen_futures::spawn_local(crate::services::oidc::sign_out());
                return;
            }
            if let Some(api) = revoke.clone() {
                wasm_bindgen_futures::spawn_local(async move {
                    let _ = api.call("POST", "/api/auth/local/sign-out").await;
                });
            }
            sign_out.emit(());
        })
    };

    let project_list = match &*projects {
        None => html! { <p class="muted pad" role="status">{ "Loading projects…" }</p> },
        Some(Err(e)) => html! { <p class="error pad" role="alert">{ e }</p> },
        Some(Ok(list)) if list.is_empty() => html! {
            <p class="muted pad">{ "No projects yet." }</p>
        },
        Some(Ok(list)) => html! {
            <ul class="project-list" role="list">
                { for list.iter().map(|p| {
                    let selected = props.project == Some(p.id);
                    html! {
                        <li class={classes!("project", selected.then_some("selected"))} key={p.id.to_string()}>
                            <NavLink to={Route::Project { project: p.id }} class="project-link"
                                current={selected && props.on_project_page}>
                                <span class="project-initial" aria-hidden="true">
                                    { initial(&p.name) }
                                </span>
                                <span class="truncate">{ &p.name }</span>
                            </NavLink>
                            if selected {
                                <div class="project-tools">
                                    <button type="button" class="button small primary" onclick={new_chat.clone()}>
                                        <span aria-hidden="true" class="plus"></span>{ "New chat" }
                                    </button>
                                    <button type="button" class="button small ghost" onclick={open_settings.clone()}>
                                        { "Project settings" }
                                    </button>
                                </div>
                                if let Some(e) = &*action_error {
                                    <p class="error small pad" role="alert">{ e }</p>
                                }
                                <ul class="conversation-list" role="list" aria-label={format!("Chats in {}", p.name)}>
                                    { for conversations.iter().filter(|c| c.project_id == p.id).map(|c| html! {
                                        <li key={c.id.to_string()}>
                                            <NavLink to={Route::Chat { project: p.id, conversation: c.id }}
                                                class="conversation-link" current={props.conversation == Some(c.id)}>
                                                <span class="truncate">{ conversation_title(c) }</span>
                                            </NavLink>
                                        </li>
                                    }) }
                                </ul>
                            }
                        </li>
                    }
                }) }
            </ul>
        },
    };

    let route_is_usage = false;
    let is_admin = use_state(|| false);
    {
        let (is_admin, api) = (is_admin.clone(), session.api.clone());
        use_effect_with((), move |()| {
            wasm_bindgen_futures::spawn_local(async move {
                if let Ok(me) = api.get::<confab_api_types::Me>("/api/me").await {
                    is_admin.set(me.is_admin);
                }
            });
        });
    }
    let user_name = session
        .user
        .as_ref()
        .map(|u| u.name.clone())
        .unwrap_or_default();
    html! {
        <nav id="sidebar" class="sidebar" aria-label="Projects and chats">
            <div class="sidebar-head">
                <NavLink to={Route::Home} class="brand-link">
                    <span class="logo small" aria-hidden="true">{ "C" }</span>{ "Confab" }
                </NavLink>
            </div>
            <Search />
            <div class="sidebar-section">
                if *creating {
                    <form class="inline-form" onsubmit={submit_create} novalidate=true>
                        <label for="new-project-name">{ "Project name" }</label>
                        <input ref={name_input} id="new-project-name" type="text" required=true
                            maxlength={session.config.limits.project_name_chars.to_string()} autocomplete="off" />
                        if let Some(e) = &*create_error {
                            <p class="error small" role="alert">{ e }</p>
                        }
                        <div class="row">
                            <button type="submit" class="button primary small">{ "Create" }</button>
                            <button type="button" class="button ghost small" onclick={cancel_create}>{ "Cancel" }</button>
                        </div>
                    </form>
                } else {
                    <button type="button" class="button wide" onclick={open_create}>
                        <span aria-hidden="true" class="plus"></span>{ "New project" }
                    </button>
                }
            </div>
            <div class="sidebar-scroll">
                <h2 class="sidebar-label">{ "Projects" }</h2>
                { project_list }
            </div>
            <div class="sidebar-section">
                <NavLink to={Route::Usage} class="usage-link" current={route_is_usage}>{ "Usage" }</NavLink>
                if *is_admin {
                    <NavLink to={Route::Admin} class="admin-link" current={false}>{ "Admin" }</NavLink>
                }
            </div>
            <div class="sidebar-foot">
                <span class="user truncate" title={user_name.clone()}>{ user_name }</span>
                <button type="button" class="button ghost small" onclick={sign_out}>{ "Sign out" }</button>
                <ChangePassword />
                <Sessions open_request={props.sessions_request} />
                <SecurityActivity />
            </div>
        </nav>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_projects_badge_shows_its_first_letter() {
        assert_eq!(initial(" alpha"), "A");
        assert_eq!(initial("été"), "é");
        assert_eq!(initial(""), "");
    }

    #[test]
    fn an_untitled_conversation_is_called_new_chat() {
        let mut c: Conversation = serde_json::from_value(serde_json::json!({
            "id": Uuid::nil(), "project_id": Uuid::nil(), "title": null,
            "created_at": "2026-01-01T00:00:00Z", "updated_at": "2026-01-01T00:00:00Z"
        }))
        .unwrap();
        assert_eq!(conversation_title(&c), "New chat");
        c.title = Some("  ".into());
        assert_eq!(conversation_title(&c), "New chat");
        c.title = Some(" Trip plan ".into());
        assert_eq!(conversation_title(&c), "Trip plan");
    }
}
