//! The files sent with a user message: each a link to its download, or named as deleted.

use confab_api_types::MessageFile;
use wasm_bindgen_futures::spawn_local;
use yew::prelude::*;

use crate::{hooks::use_session, services::browser};

/// Where a file's bytes are downloaded from.
pub fn download_path(file: &MessageFile) -> String {
    format!("/api/files/{}/content", file.id)
}

#[derive(Properties, PartialEq)]
pub struct AttachedFilesProps {
    pub files: Vec<MessageFile>,
}

#[component]
pub fn AttachedFiles(props: &AttachedFilesProps) -> Html {
    let session = use_session();
    let error = use_state(|| None::<String>);
    // The download needs the bearer token, which a plain link does not send: the click
    // fetches the bytes and offers them under the file's name.
    let download = {
        let (api, error) = (session.api.clone(), error.clone());
        Callback::from(move |file: MessageFile| {
            let (api, error) = (api.clone(), error.clone());
            spawn_local(async move {
                match api.get_blob(&download_path(&file)).await {
                    Ok(blob) => {
                        if browser::save_blob(&blob, &file.filename).is_err() {
                            error.set(Some("The browser refused the download.".into()));
                        }
                    }
                    Err(e) => error.set(Some(e.describe())),
                }
            });
        })
    };
    html! {
        <div class="msg-files">
            <ul class="msg-file-list" aria-label="Attached files">
                { for props.files.iter().map(|f| {
                    let size = browser::format_bytes(f.size_bytes);
                    if f.deleted {
                        html! {
                            <li class="msg-file deleted" key={f.id.to_string()}>
                                <span class="msg-file-name">{ &f.filename }</span>
                                <span class="small">{ " (deleted)" }</span>
                            </li>
                        }
                    } else {
                        let onclick = {
                            let (download, file) = (download.clone(), f.clone());
                            Callback::from(move |e: MouseEvent| {
                                e.prevent_default();
                                download.emit(file.clone());
                            })
                        };
                        html! {
                            <li class="msg-file" key={f.id.to_string()}>
                                <a class="msg-file-name" href={download_path(f)}
                                    download={f.filename.clone()} {onclick}>{ &f.filename }</a>
                                <span class="small">{ format!(" · {size}") }</span>
                            </li>
                        }
                    }
                }) }
            </ul>
            if let Some(e) = &*error {
                <p class="error small" role="alert">{ e }</p>
            }
        </div>
    }
}
