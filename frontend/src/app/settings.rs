//! Project settings: name and description, the system prompt, files, knowledge, share links,
//! export and import, deletion.

use super::{Route, router::use_navigator};
use crate::{
    components::{
        files::FilesPanel, nav_link::NavLink, prompt_editor::PromptEditor, shares::SharesPanel,
        transfer::TransferPanel,
    },
    hooks::{use_data_version, use_session},
};
use confab_api_types::{KNOWLEDGE_LANGUAGES, Project, UpdateProject};
use uuid::Uuid;
use wasm_bindgen_futures::spawn_local;
use web_sys::{HtmlInputElement, HtmlSelectElement, HtmlTextAreaElement};
use yew::prelude::*;

#[derive(Properties, PartialEq)]
pub struct SettingsPageProps {
    pub project: Uuid,
}

#[component]
pub fn SettingsPage(props: &SettingsPageProps) -> Html {
    let session = use_session();
    let data = use_data_version();
    let navigator = use_navigator();
    let project = use_state(|| None::<Result<Project, String>>);
    let name_input = use_node_ref();
    let description_input = use_node_ref();
    let details_status = use_state(|| None::<Result<String, String>>);
    let confirm_delete = use_state(|| false);
    let delete_error = use_state(|| None::<String>);
    let id = props.project;

    {
        let (project, api) = (project.clone(), session.api.clone());
        use_effect_with(id, move |id| {
            let id = *id;
            spawn_local(async move {
                let result = api.get::<Project>(&format!("/api/projects/{id}")).await;
                project.set(Some(result.map_err(|e| e.describe())));
            });
        });
    }

    let save_details = {
        let (name_input, description_input, status, api, project, bump) = (
            name_input.clone(),
            description_input.clone(),
            details_status.clone(),
            session.api.clone(),
            project.clone(),
            data.bump.clone(),
        );
        Callback::from(move |e: SubmitEvent| {
            e.prevent_default();
            let (Some(name), Some(description)) = (
                name_input.cast::<HtmlInputElement>(),
                description_input.cast::<HtmlTextAreaElement>(),
            ) else {
                return;
            };
            let name = name.value().trim().to_owned();
            if name.is_empty() {
                status.set(Some(Err("Give the project a name.".into())));
                return;
            }
            let description = description.value().trim().to_owned();
            let body = UpdateProject {
                name: Some(name),
                description: Some(Some(description).filter(|d| !d.is_empty())),
                ..UpdateProject::default()
            };
            let (status, api, project, bump) =
                (status.clone(), api.clone(), project.clone(), bump.clone());
            spawn_local(async move {
                match api
                    .send::<_, Project>("PATCH", &format!("/api/projects/{id}"), &body)
                    .await
                {
                    Ok(p) => {
                        project.set(Some(Ok(p)));
                        status.set(Some(Ok("Saved.".into())));
                        bump.emit(());
                    }
                    Err(e) => status.set(Some(Err(e.describe()))),
                }
            });
        })
    };
    let knowledge_status = use_state(|| None::<Result<String, String>>);
    let toggle_knowledge = {
        let (status, api, project) = (
            knowledge_status.clone(),
            session.api.clone(),
            project.clone(),
        );
        Callback::from(move |e: Event| {
            let Some(input) = e.target_dyn_into::<HtmlInputElement>() else {
                return;
            };
            let on = input.checked();
            let body = UpdateProject {
                knowledge: Some(on),
                ..UpdateProject::default()
            };
            let (status, api, project) = (status.clone(), api.clone(), project.clone());
            spawn_local(async move {
                match api
                    .send::<_, Project>("PATCH", &format!("/api/projects/{id}"), &body)
                    .await
                {
                    Ok(p) => {
                        project.set(Some(Ok(p)));
                        status.set(Some(Ok(if on {
                            "Project files are used as knowledge.".into()
                        } else {
                            "Project files are not used as knowledge.".into()
                        })));
                    }
                    Err(e) => {
                        input.set_checked(!on);
                        status.set(Some(Err(e.describe())));
                    }
                }
            });
        })
    };
    let change_language = {
        let (status, api, project) = (
            knowledge_status.clone(),
            session.api.clone(),
            project.clone(),
        );
        Callback::from(move |e: Event| {
            let Some(select) = e.target_dyn_into::<HtmlSelectElement>() else {
                return;
            };
            let previous = match &*project {
                Some(Ok(p)) => p.language.clone(),
                _ => return,
            };
            let language = select.value();
            let body = UpdateProject {
                language: Some(language.clone()),
                ..UpdateProject::default()
            };
            let (status, api, project) = (status.clone(), api.clone(), project.clone());
            status.set(Some(Ok("Re-indexing the project's files…".into())));
            spawn_local(async move {
                match api
                    .send::<_, Project>("PATCH", &format!("/api/projects/{id}"), &body)
                    .await
                {
                    Ok(p) => {
                        project.set(Some(Ok(p)));
                        status.set(Some(Ok(format!(
                            "Knowledge is searched in {}.",
                            language_name(&language)
                        ))));
                    }
                    Err(e) => {
                        select.set_value(&previous);
                        status.set(Some(Err(e.describe())));
                    }
                }
            });
        })
    };
    let ask_delete = {
        let confirm_delete = confirm_delete.clone();
        Callback::from(move |_| confirm_delete.set(true))
    };
    let cancel_delete = {
        let confirm_delete = confirm_delete.clone();
        Callback::from(move |_| confirm_delete.set(false))
    };
    let delete = {
        let (api, nav, bump, delete_error) = (
            session.api.clone(),
            navigator.clone(),
            data.bump.clone(),
            delete_error.clone(),
        );
        Callback::from(move |_| {
            let (api, nav, bump, delete_error) =
                (api.clone(), nav.clone(), bump.clone(), delete_error.clone());
            spawn_local(async move {
                match api.call("DELETE", &format!("/api/projects/{id}")).await {
                    Ok(()) => {
                        bump.emit(());
                        if let Some(nav) = nav {
                            nav.push(&Route::Home);
                        }
                    }
                    Err(e) => delete_error.set(Some(e.describe())),
                }
            });
        })
    };

    let p = match &*project {
        None => {
            return html! { <section class="page"><p class="muted" role="status">{ "Loading…" }</p></section> };
        }
        Some(Err(e)) => {
            return html! { <section class="page"><p class="error" role="alert">{ e }</p></section> };
        }
        Some(Ok(p)) => p.clone(),
    };
    let limits = &session.config.limits;

    html! {
        <section class="page settings">
            <header class="page-header">
                <p class="eyebrow">{ "Project settings" }</p>
                <h1>{ &p.name }</h1>
                <NavLink to={Route::Project { project: id }} class="back-link">{ "← Back to the project" }</NavLink>
            </header>

            <section class="panel" aria-labelledby="details-heading">
                <h2 id="details-heading">{ "Details" }</h2>
                <form class="stack" onsubmit={save_details}>
                    <div class="field">
                        <label for="project-name-edit">{ "Name" }</label>
                        <input ref={name_input} id="project-name-edit" type="text" value={p.name.clone()}
                            maxlength={limits.project_name_chars.to_string()} required=true />
                    </div>
                    <div class="field">
                        <label for="project-description">{ "Description" }</label>
                        <textarea ref={description_input} id="project-description" rows="2"
                            defaultvalue={p.description.clone().unwrap_or_default()} />
                    </div>
                    <div class="row">
                        <button type="submit" class="button primary">{ "Save details" }</button>
                        { match &*details_status {
                            Some(Ok(m)) => html! { <span class="success" role="status">{ m }</span> },
                            Some(Err(m)) => html! { <span class="error" role="alert">{ m }</span> },
                            None => html! {},
                        } }
                    </div>
                </form>
            </section>

            <PromptEditor project={id} max_chars={limits.prompt_chars} />
            <FilesPanel project={id} max_bytes={limits.upload_bytes} />
            <SharesPanel project={id} />

            <section class="panel" aria-labelledby="knowledge-heading">
                <h2 id="knowledge-heading">{ "Knowledge" }</h2>
                <div class="row">
                    <input type="checkbox" id="project-knowledge" checked={p.knowledge}
                        onchange={toggle_knowledge} aria-describedby="knowledge-help" />
                    <label for="project-knowledge">{ "Use project files as knowledge" }</label>
                </div>
                <p class="muted" id="knowledge-help">{ "With each message, the passages of this project's files that match it are given to the model, which cites them as [1], [2]; they are listed under the reply." }</p>
                <div class="field">
                    <label for="project-language">{ "Knowledge language" }</label>
                    <select id="project-language" onchange={change_language} aria-describedby="language-help">
                        { for KNOWLEDGE_LANGUAGES.iter().map(|l| html! {
                            <option value={*l} selected={p.language == *l}>{ language_name(l) }</option>
                        }) }
                    </select>
                </div>
                <p class="muted" id="language-help">{ "Words of your files are also matched by their stem in this language (on PostgreSQL), so “horses” finds “horse”. “None” matches words only as written." }</p>
                { match &*knowledge_status {
                    Some(Ok(m)) => html! { <p class="success" role="status">{ m }</p> },
                    Some(Err(m)) => html! { <p class="error" role="alert">{ m }</p> },
                    None => html! {},
                } }
            </section>

            <TransferPanel project={id} />

            <section class="panel danger-zone" aria-labelledby="danger-heading">
                <h2 id="danger-heading">{ "Delete project" }</h2>
                <p class="muted">{ "Deletes the project with all its chats, prompt versions and files. This cannot be undone." }</p>
                if *confirm_delete {
                    <div class="confirm" role="group" aria-label="Confirm deletion">
                        <span>{ format!("Delete “{}” for good?", p.name) }</span>
                        <button type="button" class="button danger" onclick={delete}>{ "Yes, delete project" }</button>
                        <button type="button" class="button ghost" onclick={cancel_delete}>{ "Cancel" }</button>
                    </div>
                } else {
                    <button type="button" class="button danger-outline" onclick={ask_delete}>{ "Delete project" }</button>
                }
                if let Some(e) = &*delete_error {
                    <p class="error" role="alert">{ e }</p>
                }
            </section>
        </section>
    }
}

/// The name shown for a knowledge language (PostgreSQL's configuration name).
pub fn language_name(language: &str) -> String {
    if language == "simple" {
        return "None (words as written)".to_owned();
    }
    let mut chars = language.chars();
    chars.next().map_or_else(String::new, |c| {
        c.to_uppercase().chain(chars).collect::<String>()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn knowledge_languages_are_named_for_people() {
        assert_eq!(language_name("french"), "French");
        assert_eq!(language_name("simple"), "None (words as written)");
    }
}
