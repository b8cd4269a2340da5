//! A project's files: upload with a progress bar, download, delete.

use confab_api_types::{FileInfo, TextStatus};
use uuid::Uuid;
use wasm_bindgen_futures::spawn_local;
use web_sys::HtmlInputElement;
use yew::prelude::*;

use crate::{
    hooks::use_session,
    services::{browser, upload::upload_file},
};

#[derive(Properties, PartialEq)]
pub struct FilesPanelProps {
    pub project: Uuid,
    pub max_bytes: u64,
}

#[derive(Clone, PartialEq)]
struct Upload {
    name: String,
    sent: f64,
    total: f64,
}

/// Percent of an upload done, 0–100.
pub fn percent(sent: f64, total: f64) -> u32 {
    if total <= 0.0 {
        0
    } else {
        ((sent / total) * 100.0).clamp(0.0, 100.0).round() as u32
    }
}

#[component]
pub fn FilesPanel(props: &FilesPanelProps) -> Html {
    let session = use_session();
    let files = use_state(|| None::<Result<Vec<FileInfo>, String>>);
    let reload = use_state(|| 0u32);
    let uploading = use_state(|| None::<Upload>);
    let message = use_state(|| None::<Result<String, String>>);
    let confirm = use_state(|| None::<Uuid>);
    let picker = use_node_ref();
    let project = props.project;

    {
        let (files, api) = (files.clone(), session.api.clone());
        use_effect_with((project, *reload), move |_| {
            spawn_local(async move {
                let result = api
                    .list_all::<FileInfo>(&format!("/api/projects/{project}/files"))
                    .await;
                files.set(Some(result.map_err(|e| e.describe())));
            });
        });
    }

    let open_picker = {
        let picker = picker.clone();
        Callback::from(move |_| {
            if let Some(input) = picker.cast::<HtmlInputElement>() {
                input.click();
            }
        })
    };
    let on_pick = {
        let (api, uploading, message, reload, max) = (
            session.api.clone(),
            uploading.clone(),
            message.clone(),
            reload.clone(),
            props.max_bytes,
        );
        Callback::from(move |e: Event| {
            let Some(input) = e.target_dyn_into::<HtmlInputElement>() else {
                return;
            };
            let Some(file) = input.files().and_then(|list| list.get(0)) else {
                return;
            };
            input.set_value("");
            let size = file.size();
            if size <= 0.0 {
                message.set(Some(Err(format!("“{}” is empty.", file.name()))));
                return;
            }
            if size > max as f64 {
                message.set(Some(Err(format!(
                    "“{}” is {}; the limit is {}.",
                    file.name(),
                    browser::format_bytes(size as u64),
                    browser::format_bytes(max)
                ))));
                return;
            }
            message.set(None);
            uploading.set(Some(Upload {
                name: file.name(),
                sent: 0.0,
                total: size,
            }));
            let (api, uploading, message, reload) = (
                api.clone(),
                uploading.clone(),
                message.clone(),
                reload.clone(),
            );
            let on_progress = {
                let (uploading, name) = (uploading.clone(), file.name());
                Callback::from(move |(sent, total): (f64, f64)| {
                    uploading.set(Some(Upload {
                        name: name.clone(),
                        sent,
                        total,
                    }));
                })
            };
            spawn_local(async move {
                match upload_file(&api, project, &file, on_progress).await {
                    Ok(info) => message.set(Some(Ok(format!("Uploaded “{}”.", info.filename)))),
                    Err(e) => message.set(Some(Err(e.describe()))),
                }
                uploading.set(None);
                reload.set(*reload + 1);
            });
        })
    };
    let download = {
        let (api, message) = (session.api.clone(), message.clone());
        Callback::from(move |file: FileInfo| {
            let (api, message) = (api.clone(), message.clone());
            spawn_local(async move {
                match api
                    .get_blob(&format!("/api/files/{}/content", file.id))
                    .await
                {
                    Ok(blob) => {
                        if browser::save_blob(&blob, &file.filename).is_err() {
                            message.set(Some(Err("The browser refused the download.".into())));
                        }
                    }
                    Err(e) => message.set(Some(Err(e.describe()))),
                }
            });
        })
    };
    let delete = {
        let (api, message, reload, confirm) = (
            session.api.clone(),
            message.clone(),
            reload.clone(),
            confirm.clone(),
        );
        Callback::from(move |file: FileInfo| {
            let (api, message, reload, confirm) = (
                api.clone(),
                message.clone(),
                reload.clone(),
                confirm.clone(),
            );
            spawn_local(async move {
                match api.call("DELETE", &format!("/api/files/{}", file.id)).await {
                    Ok(()) => message.set(Some(Ok(format!("Deleted “{}”.", file.filename)))),
                    Err(e) => message.set(Some(Err(e.describe()))),
                }
                confirm.set(None);
                reload.set(*reload + 1);
            });
        })
    };

    let rows = match &*files {
        None => html! { <p class="muted" role="status">{ "Loading files…" }</p> },
        Some(Err(e)) => html! { <p class="error" role="alert">{ e }</p> },
        Some(Ok(list)) if list.is_empty() => html! { <p class="muted">{ "No files yet." }</p> },
        Some(Ok(list)) => html! {
            <ul class="file-list" role="list">
                { for list.iter().map(|f| {
                    let name_id = format!("file-{}", f.id);
                    let asking = *confirm == Some(f.id);
                    let on_download = { let (d, f) = (download.clone(), f.clone()); Callback::from(move |_| d.emit(f.clone())) };
                    let on_ask = { let (c, id) = (confirm.clone(), f.id); Callback::from(move |_| c.set(Some(id))) };
                    let on_cancel = { let c = confirm.clone(); Callback::from(move |_| c.set(None)) };
                    let on_delete = { let (d, f) = (delete.clone(), f.clone()); Callback::from(move |_| d.emit(f.clone())) };
                    html! {
                        <li class="file" key={f.id.to_string()}>
                            <div class="file-info">
                                <span id={name_id.clone()} class="file-name truncate">{ &f.filename }</span>
                                <span class="muted small">
                                    { format!("{} · {} · {}", browser::format_bytes(f.size_bytes), f.content_type, browser::local_time(&f.created_at)) }
                                </span>
                                if f.text_status == TextStatus::Failed {
                                    <span class="muted small" title={f.text_error.clone()}>{ "Could not read its text" }</span>
                                }
                            </div>
                            <div class="row">
                                if asking {
                                    <span class="small">{ "Delete this file?" }</span>
                                    <button type="button" class="button small danger" aria-describedby={name_id.clone()} onclick={on_delete}>{ "Yes, delete" }</button>
                                    <button type="button" class="button small ghost" onclick={on_cancel}>{ "Cancel" }</button>
                                } else {
                                    <button type="button" class="button small" aria-describedby={name_id.clone()} onclick={on_download}>{ "Download" }</button>
                                    <button type="button" class="button small ghost danger-text" aria-describedby={name_id.clone()} onclick={on_ask}>{ "Delete" }</button>
                                }
                            </div>
                        </li>
                    }
                }) }
            </ul>
        },
    };

    html! {
        <section class="panel" aria-labelledby="files-heading">
            <h2 id="files-heading">{ "Files" }</h2>
            <p class="muted">{ format!("Files kept with this project, up to {} each.", browser::format_bytes(props.max_bytes)) }</p>
            <div class="row">
                <button type="button" class="button" onclick={open_picker} disabled={uploading.is_some()}>{ "Upload file" }</button>
                <input ref={picker} type="file" class="visually-hidden" tabindex="-1" aria-hidden="true" onchange={on_pick} />
            </div>
            if let Some(u) = &*uploading {
                <div class="upload" role="status">
                    <span class="small">{ format!("Uploading “{}” — {}%", u.name, percent(u.sent, u.total)) }</span>
                    <progress max="100" value={percent(u.sent, u.total).to_string()} aria-label="Upload progress"></progress>
                </div>
            }
            { match &*message {
                Some(Ok(m)) => html! { <p class="success" role="status">{ m }</p> },
                Some(Err(m)) => html! { <p class="error" role="alert">{ m }</p> },
                None => html! {},
            } }
            { rows }
        </section>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upload_progress_is_a_whole_percent_within_bounds() {
        assert_eq!(percent(0.0, 0.0), 0);
        assert_eq!(percent(50.0, 200.0), 25);
        assert_eq!(percent(1.0, 3.0), 33);
        assert_eq!(percent(500.0, 200.0), 100);
    }
}
