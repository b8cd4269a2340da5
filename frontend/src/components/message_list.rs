//! The conversation's messages: a `role="log"` live region that follows new text unless the
//! person has scrolled up.

use confab_api_types::Role;
use uuid::Uuid;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::spawn_local;
use yew::prelude::*;

use crate::{
    hooks::use_session,
    markdown,
    services::browser,
    state::chat::{Entry, EntryStatus, version_label},
};

/// Where a source's file is downloaded (with the session's token: a click fetches it).
fn file_url(file_id: Uuid) -> String {
    format!("/api/files/{file_id}/content")
}

/// How close to the bottom (px) still counts as "at the bottom".
const STICK_THRESHOLD: i32 = 48;

#[derive(Properties, PartialEq)]
pub struct MessageListProps {
    pub entries: Vec<Entry>,
    pub loaded: bool,
    pub generating: bool,
    /// "Retry" on a failed reply or a refused send.
    pub on_retry: Callback<Uuid>,
    /// "Save and send" of an edited user message: (its id, the new text).
    pub on_edit: Callback<(Uuid, String)>,
    /// "Regenerate" on a reply: its id.
    pub on_regenerate: Callback<Uuid>,
    /// "Previous version" / "Next version": the sibling to show.
    pub on_version: Callback<Uuid>,
    /// A message to scroll to and highlight once loaded (a search result).
    #[prop_or_default]
    pub highlight: Option<Uuid>,
}

/// What one message's buttons do, and which message is open in the editor.
struct Handlers<'a> {
    props: &'a MessageListProps,
    editing: &'a UseStateHandle<Option<Uuid>>,
}

#[component]
pub fn MessageList(props: &MessageListProps) -> Html {
    let scroller = use_node_ref();
    let at_bottom = use_state_eq(|| true);

    {
        // After each render: keep the newest text in view while the person is at the bottom.
        let (scroller, at_bottom) = (scroller.clone(), *at_bottom);
        use_effect(move || {
            if at_bottom && let Some(el) = scroller.cast::<web_sys::Element>() {
                el.set_scroll_top(el.scroll_height());
            }
        });
    }

    {
        // A search result: scroll its message into view (once loaded) and stop following
        // the newest text.
        let at_bottom = at_bottom.clone();
        use_effect_with(
            (props.highlight, props.loaded),
            move |(highlight, loaded)| {
                if let (Some(id), true) = (highlight, loaded)
                    && let Some(el) = browser::window()
                        .and_then(|w| w.document())
                        .and_then(|d| d.get_element_by_id(&format!("message-{id}")))
                {
                    el.scroll_into_view_with_bool(true);
                    at_bottom.set(false);
                }
            },
        );
    }

    let onscroll = {
        let (scroller, at_bottom) = (scroller.clone(), at_bottom.clone());
        Callback::from(move |_: Event| {
            if let Some(el) = scroller.cast::<web_sys::Element>() {
                let distance = el.scroll_height() - el.scroll_top() - el.client_height();
                at_bottom.set(distance <= STICK_THRESHOLD);
            }
        })
    };
    let jump_to_latest = {
        let (scroller, at_bottom) = (scroller.clone(), at_bottom.clone());
        Callback::from(move |_| {
            if let Some(el) = scroller.cast::<web_sys::Element>() {
                el.set_scroll_top(el.scroll_height());
            }
            at_bottom.set(true);
        })
    };
    // Copy buttons and links live inside rendered Markdown, so clicks are handled here.
    let api = use_session().api;
    let onclick = Callback::from(move |e: MouseEvent| {
        let Some(target) = e
            .target()
            .and_then(|t| t.dyn_into::<web_sys::Element>().ok())
        else {
            return;
        };
        if let Ok(Some(button)) = target.closest("[data-copy-code]") {
            let code = button
                .parent_element()
                .and_then(|block| block.query_selector("pre").ok().flatten())
                .and_then(|pre| pre.text_content())
                .unwrap_or_default();
            spawn_local(async move {
                let label = if browser::copy_text(&code).await {
                    "Copied"
                } else {
                    "Copy failed"
                };
                button.set_text_content(Some(label));
                browser::sleep(1500).await;
                button.set_text_content(Some("Copy"));
            });
        } else if let Ok(Some(link)) = target.closest("a[href^='/api/files/']") {
            // A source (in the list under a reply, or cited as [n] in it): the file is
            // fetched with the session's token and offered as a download.
            e.prevent_default();
            let Some(href) = link.get_attribute("href") else {
                return;
            };
            let filename = link
                .get_attribute("data-filename")
                .or_else(|| link.get_attribute("title"))
                .unwrap_or_else(|| "download".to_owned());
            let api = api.clone();
            spawn_local(async move {
                if let Ok(blob) = api.get_blob(&href).await {
                    let _ = browser::save_blob(&blob, &filename);
                }
            });
        } else if let Ok(Some(link)) = target.closest(".markdown a[href^='http']") {
            // Links from the model open in a new tab, without access to this page.
            if let (Some(href), Some(w)) = (link.get_attribute("href"), browser::window()) {
                e.prevent_default();
                let _ =
                    w.open_with_url_and_target_and_features(&href, "_blank", "noopener,noreferrer");
            }
        }
    });

    let editing = use_state(|| None::<Uuid>);
    let body = if !props.loaded {
        html! { <p class="muted center" role="status">{ "Loading messages…" }</p> }
    } else if props.entries.is_empty() {
        html! {
            <div class="chat-empty">
                <p class="chat-empty-title">{ "How can I help?" }</p>
                <p class="muted">{ "Write a message below. Enter sends it, Shift+Enter starts a new line." }</p>
            </div>
        }
    } else {
        let handlers = Handlers {
            props,
            editing: &editing,
        };
        html! { { for props.entries.iter().map(|e| view_entry(e, &handlers)) } }
    };

    html! {
        <div class="messages-wrap">
            <div class="messages" ref={scroller} {onscroll} {onclick} role="log" aria-live="polite"
                aria-relevant="additions text" aria-label="Messages" aria-busy={props.generating.to_string()}
                tabindex="0">
                <div class="messages-inner">{ body }</div>
            </div>
            if !*at_bottom && props.loaded && !props.entries.is_empty() {
                <button type="button" class="button small jump" onclick={jump_to_latest}>
                    { "Scroll to latest" }
                </button>
            }
        </div>
    }
}

fn view_entry(entry: &Entry, handlers: &Handlers<'_>) -> Html {
    let props = handlers.props;
    let highlighted = props.highlight == Some(entry.id);
    let is_user = entry.role == Role::User;
    let retry = {
        let (on_retry, id) = (props.on_retry.clone(), entry.id);
        Callback::from(move |_| on_retry.emit(id))
    };
    let editing = **handlers.editing == Some(entry.id);
    let content = if editing {
        let on_done = {
            let (state, on_edit, id) = (handlers.editing.clone(), props.on_edit.clone(), entry.id);
            Callback::from(move |text: Option<String>| {
                state.set(None);
                if let Some(text) = text {
                    on_edit.emit((id, text));
                }
            })
        };
        html! { <EditBox content={entry.content.clone()} {on_done} /> }
    } else if is_user {
        html! { <div class="msg-text plain">{ &entry.content }</div> }
    } else if entry.content.is_empty() && entry.status == EntryStatus::Streaming {
        html! { <div class="msg-text"><span class="typing" aria-hidden="true"><i></i><i></i><i></i></span></div> }
    } else {
        // `[n]` of a source it was given links to that source's file.
        let cited = entry
            .sources
            .iter()
            .map(|source| (source.n, file_url(source.file_id), source.filename.as_str()));
        html! {
            <div class="msg-text markdown">{ Html::from_html_unchecked(markdown::render_cited(&entry.content, cited).into()) }</div>
        }
    };
    let sources = if entry.sources.is_empty() || is_user || editing {
        html! {}
    } else {
        let label_id = format!("sources-{}", entry.id);
        html! {
            <nav class="msg-sources" aria-labelledby={label_id.clone()}>
                <span class="msg-sources-label muted" id={label_id}>{ "Sources" }</span>
                <ol>
                    { for entry.sources.iter().map(|source| html! {
                        <li key={source.n.to_string()}>
                            <a href={file_url(source.file_id)} class="source-link"
                                data-filename={source.filename.clone()} title={source.excerpt.clone()}>
                                { &source.filename }
                            </a>
                        </li>
                    }) }
                </ol>
            </nav>
        }
    };
    let error_id = format!("error-{}", entry.id);
    let status = match entry.status {
        EntryStatus::Complete => match (&entry.model, is_user) {
            (Some(model), false) => html! { <span class="muted">{ model }</span> },
            _ => html! {},
        },
        EntryStatus::Sending => html! { <span class="muted">{ "Sending…" }</span> },
        EntryStatus::Streaming => html! {
            <span class="status generating"><span class="pulse" aria-hidden="true"></span>{ "Generating…" }</span>
        },
        EntryStatus::Cancelled => html! { <span class="status stopped">{ "Stopped" }</span> },
        EntryStatus::Failed | EntryStatus::Rejected => html! {
            <>
                <span class="status failed">{ if entry.status == EntryStatus::Failed { "Failed" } else { "Not sent" } }</span>
                if let Some(err) = &entry.error {
                    <span class="error-text" id={error_id.clone()}>{ err }</span>
                }
                <button type="button" class="button small" onclick={retry} aria-describedby={error_id.clone()}>
                    { "Retry" }
                </button>
            </>
        },
    };
    // Edit, Regenerate and the versions: on stored messages, while no reply is generated.
    let settled = !props.generating
        && matches!(
            entry.status,
            EntryStatus::Complete | EntryStatus::Failed | EntryStatus::Cancelled
        );
    let actions = if !settled || editing {
        html! {}
    } else if is_user {
        let edit = {
            let (state, id) = (handlers.editing.clone(), entry.id);
            Callback::from(move |_| state.set(Some(id)))
        };
        html! { <button type="button" class="button ghost small" onclick={edit}>{ "Edit" }</button> }
    } else {
        let regenerate = {
            let (on_regenerate, id) = (props.on_regenerate.clone(), entry.id);
            Callback::from(move |_| on_regenerate.emit(id))
        };
        html! { <button type="button" class="button ghost small" onclick={regenerate}>{ "Regenerate" }</button> }
    };
    let versions = match entry.version() {
        Some(position) => {
            let go = |step: isize| {
                let target = entry.version_beside(step);
                let on_version = props.on_version.clone();
                let onclick = Callback::from(move |_| {
                    if let Some(t) = target {
                        on_version.emit(t);
                    }
                });
                (onclick, target.is_none() || props.generating)
            };
            let ((prev, prev_off), (next, next_off)) = (go(-1), go(1));
            html! {
                <span class="msg-versions">
                    <button type="button" class="button ghost small" aria-label="Previous version"
                        title="Previous version" onclick={prev} disabled={prev_off}>{ "‹" }</button>
                    <span class="muted">{ version_label(position) }</span>
                    <button type="button" class="button ghost small" aria-label="Next version"
                        title="Next version" onclick={next} disabled={next_off}>{ "›" }</button>
                </span>
            }
        }
        None => html! {},
    };
    html! {
        <article key={entry.id.to_string()} id={format!("message-{}", entry.id)}
            class={classes!("msg", if is_user { "msg-user" } else { "msg-assistant" },
                highlighted.then_some("msg-highlight"))}
            data-highlighted={highlighted.then_some("true")}
            aria-label={if is_user { "You" } else { "Assistant" }}>
            if editing || !entry.content.is_empty() || entry.status == EntryStatus::Streaming {
                <div class="msg-bubble">{ content }</div>
            }
            if !entry.files.is_empty() {
                <crate::components::attached_files::AttachedFiles files={entry.files.clone()} />
            }
            { sources }
            <div class="msg-meta">{ versions }{ status }{ actions }</div>
        </article>
    }
}

#[derive(Properties, PartialEq)]
struct EditBoxProps {
    content: String,
    /// `Some(text)`: "Save and send"; `None`: "Cancel".
    on_done: Callback<Option<String>>,
}

/// A user message open in place for editing.
#[component]
fn EditBox(props: &EditBoxProps) -> Html {
    let input = use_node_ref();
    {
        let input = input.clone();
        use_effect_with((), move |_| {
            if let Some(field) = input.cast::<web_sys::HtmlTextAreaElement>() {
                let _ = field.focus();
            }
        });
    }
    let save = {
        let (input, on_done) = (input.clone(), props.on_done.clone());
        Callback::from(move |e: SubmitEvent| {
            e.prevent_default();
            let Some(field) = input.cast::<web_sys::HtmlTextAreaElement>() else {
                return;
            };
            let text = field.value();
            if !text.trim().is_empty() {
                on_done.emit(Some(text));
            }
        })
    };
    let cancel = {
        let on_done = props.on_done.clone();
        Callback::from(move |_| on_done.emit(None))
    };
    let onkeydown = {
        let on_done = props.on_done.clone();
        Callback::from(move |e: KeyboardEvent| {
            if e.key() == "Escape" {
                on_done.emit(None);
            }
        })
    };
    html! {
        <form class="edit-form" onsubmit={save} {onkeydown}>
            <textarea ref={input} class="edit-input" aria-label="Edit message" rows="3"
                value={props.content.clone()} />
            <div class="row">
                <button type="submit" class="button primary small">{ "Save and send" }</button>
                <button type="button" class="button ghost small" onclick={cancel}>{ "Cancel" }</button>
            </div>
        </form>
    }
}
