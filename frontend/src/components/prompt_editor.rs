//! The system prompt: an editor that stores each save as a new active version, and the list
//! of versions with "Activate".

use confab_api_types::{CreatePrompt, Prompt};
use uuid::Uuid;
use wasm_bindgen_futures::spawn_local;
use web_sys::HtmlTextAreaElement;
use yew::prelude::*;

use crate::{hooks::use_session, services::browser};

#[derive(Properties, PartialEq)]
pub struct PromptEditorProps {
    pub project: Uuid,
    pub max_chars: usize,
}

#[component]
pub fn PromptEditor(props: &PromptEditorProps) -> Html {
    let session = use_session();
    let versions = use_state(|| None::<Result<Vec<Prompt>, String>>);
    let reload = use_state(|| 0u32);
    let editor = use_node_ref();
    let status = use_state(|| None::<Result<String, String>>);
    let busy = use_state(|| false);
    let project = props.project;

    {
        let (versions, api, editor) = (versions.clone(), session.api.clone(), editor.clone());
        use_effect_with((project, *reload), move |_| {
            spawn_local(async move {
                let result = api
                    .list_all::<Prompt>(&format!("/api/projects/{project}/prompts"))
                    .await;
                if let (Ok(list), Some(field)) = (&result, editor.cast::<HtmlTextAreaElement>()) {
                    // Start from the active version when the editor is untouched.
                    if field.value().is_empty()
                        && let Some(active) = list.iter().find(|p| p.is_active)
                    {
                        field.set_value(&active.content);
                    }
                }
                versions.set(Some(result.map_err(|e| e.describe())));
            });
        });
    }

    let save = {
        let (editor, status, busy, api, reload, max) = (
            editor.clone(),
            status.clone(),
            busy.clone(),
            session.api.clone(),
            reload.clone(),
            props.max_chars,
        );
        Callback::from(move |e: SubmitEvent| {
            e.prevent_default();
            let Some(field) = editor.cast::<HtmlTextAreaElement>() else {
                return;
            };
            let content = field.value();
            if content.trim().is_empty() {
                status.set(Some(Err("Write the prompt first.".into())));
                return;
            }
            if content.chars().count() > max {
                status.set(Some(Err(format!(
                    "The prompt is longer than {max} characters."
                ))));
                return;
            }
            busy.set(true);
            let (status, busy, api, reload) =
                (status.clone(), busy.clone(), api.clone(), reload.clone());
            spawn_local(async move {
                let body = CreatePrompt {
                    content,
                    activate: Some(true),
                };
                match api
                    .send::<_, Prompt>("POST", &format!("/api/projects/{project}/prompts"), &body)
                    .await
                {
                    Ok(p) => {
                        status.set(Some(Ok(format!(
                            "Saved as version {}, now active.",
                            p.version
                        ))));
                        reload.set(*reload + 1);
                    }
                    Err(e) => status.set(Some(Err(e.describe()))),
                }
                busy.set(false);
            });
        })
    };
    let activate = {
        let (status, api, reload, editor) = (
            status.clone(),
            session.api.clone(),
            reload.clone(),
            editor.clone(),
        );
        Callback::from(move |prompt: Prompt| {
            let (status, api, reload, editor) =
                (status.clone(), api.clone(), reload.clone(), editor.clone());
            spawn_local(async move {
                let path = format!("/api/projects/{project}/prompts/{}/activate", prompt.id);
                match api
                    .request("POST", &path, None, "application/json", None)
                    .await
                {
                    Ok(_) => {
                        if let Some(field) = editor.cast::<HtmlTextAreaElement>() {
                            field.set_value(&prompt.content);
                        }
                        status.set(Some(Ok(format!(
                            "Version {} is now active.",
                            prompt.version
                        ))));
                        reload.set(*reload + 1);
                    }
                    Err(e) => status.set(Some(Err(e.describe()))),
                }
            });
        })
    };

    let list = match &*versions {
        None => html! { <p class="muted" role="status">{ "Loading versions…" }</p> },
        Some(Err(e)) => html! { <p class="error" role="alert">{ e }</p> },
        Some(Ok(list)) if list.is_empty() => html! {
            <p class="muted">{ "No prompt yet: the model gets no system instructions." }</p>
        },
        Some(Ok(list)) => html! {
            <ol class="versions" role="list">
                { for list.iter().map(|p| {
                    let label_id = format!("prompt-version-{}", p.id);
                    let on_activate = {
                        let (activate, prompt) = (activate.clone(), p.clone());
                        Callback::from(move |_| activate.emit(prompt.clone()))
                    };
                    html! {
                        <li class={classes!("version", p.is_active.then_some("active"))} key={p.id.to_string()}>
                            <div class="version-head">
                                <span id={label_id.clone()} class="version-name">{ format!("Version {}", p.version) }</span>
                                <span class="muted small">{ browser::local_time(&p.created_at) }</span>
                                if p.is_active {
                                    <span class="badge">{ "Active" }</span>
                                } else {
                                    <button type="button" class="button small" aria-describedby={label_id.clone()}
                                        onclick={on_activate}>{ "Activate" }</button>
                                }
                            </div>
                            <details>
                                <summary>{ "Show text" }</summary>
                                <pre class="version-text">{ &p.content }</pre>
                            </details>
                        </li>
                    }
                }) }
            </ol>
        },
    };

    html! {
        <section class="panel" aria-labelledby="prompt-heading">
            <h2 id="prompt-heading">{ "System prompt" }</h2>
            <p class="muted">{ "Instructions the model reads before every chat in this project. Each save is kept as a version." }</p>
            <form class="stack" onsubmit={save}>
                <label for="system-prompt" class="visually-hidden">{ "System prompt" }</label>
                <textarea ref={editor} id="system-prompt" class="prompt-input" rows="8"
                    placeholder="You are a helpful assistant…" spellcheck="true" />
                <div class="row">
                    <button type="submit" class="button primary" disabled={*busy}>{ "Save prompt" }</button>
                    { match &*status {
                        Some(Ok(m)) => html! { <span class="success" role="status">{ m }</span> },
                        Some(Err(m)) => html! { <span class="error" role="alert">{ m }</span> },
                        None => html! {},
                    } }
                </div>
            </form>
            <h3>{ "Versions" }</h3>
            { list }
        </section>
    }
}
