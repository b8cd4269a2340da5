//! Share links: "Share" in a chat's header makes one and shows it to copy; project settings
//! list the project's links, each with "Revoke".

use confab_api_types::{Conversation, ShareCreated, ShareInfo};
use uuid::Uuid;
use wasm_bindgen_futures::spawn_local;
use web_sys::HtmlInputElement;
use yew::prelude::*;

use crate::{
    components::sidebar::conversation_title,
    hooks::use_session,
    services::{api::Api, browser},
    wording::ApiError,
};

/// The link a person shares: the server's `/s/{token}` made absolute with the page's origin.
pub fn absolute_url(origin: &str, url: &str) -> String {
    if url.starts_with("http://") || url.starts_with("https://") {
        url.to_owned()
    } else {
        format!(
            "{}/{}",
            origin.trim_end_matches('/'),
            url.trim_start_matches('/')
        )
    }
}

/// Makes a share link of the conversation; the absolute URL.
pub async fn create_share(api: &Api, conversation: Uuid) -> Result<String, ApiError> {
    let created: ShareCreated = api
        .post_empty(&format!("/api/conversations/{conversation}/shares"))
        .await?;
    let origin = browser::window()
        .and_then(|w| w.location().origin().ok())
        .unwrap_or_default();
    Ok(absolute_url(&origin, &created.url))
}

#[derive(Properties, PartialEq)]
pub struct ShareBoxProps {
    /// The link, absolute.
    pub url: String,
    pub on_close: Callback<()>,
}

/// A new share link in a read-only box, with "Copy link".
#[component]
pub fn ShareBox(props: &ShareBoxProps) -> Html {
    let field = use_node_ref();
    let copied = use_state(|| None::<&'static str>);
    {
        // Shown selected, so that Ctrl+C copies it too.
        let field = field.clone();
        use_effect_with(props.url.clone(), move |_| {
            if let Some(f) = field.cast::<HtmlInputElement>() {
                let _ = f.focus();
                f.select();
            }
        });
    }
    let copy = {
        let (field, copied, url) = (field.clone(), copied.clone(), props.url.clone());
        Callback::from(move |_| {
            let (field, copied, url) = (field.clone(), copied.clone(), url.clone());
            spawn_local(async move {
                if browser::copy_text(&url).await {
                    copied.set(Some("Link copied."));
                } else {
                    // No clipboard access (an insecure origin, a denied permission): the
                    // link is selected for the person to copy.
                    if let Some(f) = field.cast::<HtmlInputElement>() {
                        let _ = f.focus();
                        f.select();
                    }
                    copied.set(Some("Press Ctrl+C (⌘C) to copy the selected link."));
                }
            });
        })
    };
    let select_all = Callback::from(|e: FocusEvent| {
        if let Some(f) = e.target_dyn_into::<HtmlInputElement>() {
            f.select();
        }
    });
    let close = {
        let on_close = props.on_close.clone();
        Callback::from(move |_| on_close.emit(()))
    };
    html! {
        <div class="share-box" role="group" aria-label="Share this chat">
            <label for="share-link" class="small">{ "Share link" }</label>
            <div class="row">
                <input ref={field} id="share-link" type="text" readonly=true value={props.url.clone()}
                    onfocus={select_all} aria-describedby="share-note" />
                <button type="button" class="button primary small" onclick={copy}>{ "Copy link" }</button>
                <button type="button" class="button ghost small" onclick={close}>{ "Close" }</button>
            </div>
            <p id="share-note" class="muted small">
                { "Anyone with the link can read this chat as it is now, without signing in. Revoke it in the project's settings." }
            </p>
            if let Some(m) = *copied {
                <p class="success small" role="status">{ m }</p>
            }
        </div>
    }
}

#[derive(Properties, PartialEq)]
pub struct SharesPanelProps {
    pub project: Uuid,
}

/// A live share link with its conversation.
#[derive(Clone, PartialEq)]
struct Shared {
    conversation: Conversation,
    share: ShareInfo,
}

/// The live share links of the project's chats, newest chat first.
async fn load(api: &Api, project: Uuid) -> Result<Vec<Shared>, ApiError> {
    let conversations = api
        .list_all::<Conversation>(&format!("/api/projects/{project}/conversations"))
        .await?;
    let mut rows = Vec::new();
    for conversation in conversations {
        let shares = match api
            .get::<Vec<ShareInfo>>(&format!("/api/conversations/{}/shares", conversation.id))
            .await
        {
            Ok(s) => s,
            // Deleted meanwhile: nothing shared.
            Err(e) if e.status == 404 => continue,
            Err(e) => return Err(e),
        };
        rows.extend(shares.into_iter().map(|share| Shared {
            conversation: conversation.clone(),
            share,
        }));
    }
    Ok(rows)
}

/// Project settings: the project's share links, each with "Revoke".
#[component]
pub fn SharesPanel(props: &SharesPanelProps) -> Html {
    let session = use_session();
    let rows = use_state(|| None::<Result<Vec<Shared>, String>>);
    let reload = use_state(|| 0u32);
    let message = use_state(|| None::<Result<String, String>>);
    let project = props.project;
    {
        let (rows, api) = (rows.clone(), session.api.clone());
        use_effect_with((project, *reload), move |_| {
            spawn_local(async move {
                let result = load(&api, project).await;
                rows.set(Some(result.map_err(|e| e.describe())));
            });
        });
    }
    let revoke = {
        let (api, message, reload) = (session.api.clone(), message.clone(), reload.clone());
        Callback::from(move |row: Shared| {
            let (api, message, reload) = (api.clone(), message.clone(), reload.clone());
            spawn_local(async move {
                match api
                    .call("DELETE", &format!("/api/shares/{}", row.share.id))
                    .await
                {
                    Ok(()) => message.set(Some(Ok(format!(
                        "Revoked a link to “{}”: it no longer opens.",
                        conversation_title(&row.conversation)
                    )))),
                    Err(e) => message.set(Some(Err(e.describe()))),
                }
                reload.set(*reload + 1);
            });
        })
    };
    let list = match &*rows {
        None => html! { <p class="muted" role="status">{ "Loading share links…" }</p> },
        Some(Err(e)) => html! { <p class="error" role="alert">{ e }</p> },
        Some(Ok(list)) if list.is_empty() => {
            html! { <p class="muted">{ "No chat of this project is shared." }</p> }
        }
        Some(Ok(list)) => html! {
            <ul class="file-list" role="list" aria-label="Share links">
                { for list.iter().map(|row| {
                    let name_id = format!("share-{}", row.share.id);
                    let onclick = {
                        let (revoke, row) = (revoke.clone(), row.clone());
                        Callback::from(move |_| revoke.emit(row.clone()))
                    };
                    html! {
                        <li class="file" key={row.share.id.to_string()}>
                            <div class="file-info">
                                <span id={name_id.clone()} class="file-name truncate">
                                    { conversation_title(&row.conversation) }
                                </span>
                                <span class="muted small">
                                    { format!("Shared {}", browser::local_time(&row.share.created_at)) }
                                </span>
                            </div>
                            <button type="button" class="button small danger-outline"
                                aria-describedby={name_id} {onclick}>{ "Revoke" }</button>
                        </li>
                    }
                }) }
            </ul>
        },
    };
    html! {
        <section class="panel" aria-labelledby="shares-heading">
            <h2 id="shares-heading">{ "Share links" }</h2>
            <p class="muted">
                { "Anyone with a share link can read that chat as it was when the link was made, without signing in. A revoked link stops working at once." }
            </p>
            { match &*message {
                Some(Ok(m)) => html! { <p class="success" role="status">{ m }</p> },
                Some(Err(m)) => html! { <p class="error" role="alert">{ m }</p> },
                None => html! {},
            } }
            { list }
        </section>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_share_link_is_made_absolute_with_the_pages_origin() {
        assert_eq!(
            absolute_url("http://127.0.0.1:8000", "/s/abc"),
            "http://127.0.0.1:8000/s/abc"
        );
        assert_eq!(
            absolute_url("https://chat.example.com/", "/s/abc"),
            "https://chat.example.com/s/abc"
        );
        assert_eq!(
            absolute_url("https://chat.example.com", "https://other.example/s/x"),
            "https://other.example/s/x"
        );
    }
}
