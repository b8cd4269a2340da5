//! File uploads with progress, through `XMLHttpRequest` (fetch reports no upload progress).

use confab_api_types::{FileInfo, ImportReport, Problem};
use js_sys::Promise;
use serde::de::DeserializeOwned;
use uuid::Uuid;
use wasm_bindgen::{JsCast, JsValue, closure::Closure};
use wasm_bindgen_futures::JsFuture;
use yew::Callback;

use crate::{services::api::Api, wording::ApiError};

/// Uploads `file` to the project; `on_progress` gets `(bytes sent, bytes total)`.
pub async fn upload_file(
    api: &Api,
    project: Uuid,
    file: &web_sys::File,
    on_progress: Callback<(f64, f64)>,
) -> Result<FileInfo, ApiError> {
    post_file(
        api,
        &format!("/api/projects/{project}/files"),
        file,
        on_progress,
        None,
    )
    .await
}

/// Sends `file` to the project's import (a Confab export or ChatGPT's `conversations.json`);
/// `on_progress` gets `(bytes sent, bytes total)`, `on_sent` runs once the last byte is sent
/// (the server then reads and stores the file before it answers).
pub async fn import_file(
    api: &Api,
    project: Uuid,
    file: &web_sys::File,
    on_progress: Callback<(f64, f64)>,
    on_sent: Callback<()>,
) -> Result<ImportReport, ApiError> {
    post_file(
        api,
        &format!("/api/projects/{project}/import"),
        file,
        on_progress,
        Some(on_sent),
    )
    .await
}

/// `POST`s a form with one field `file` to `path` and reads the JSON answer.
async fn post_file<T: DeserializeOwned>(
    api: &Api,
    path: &str,
    file: &web_sys::File,
    on_progress: Callback<(f64, f64)>,
    on_sent: Option<Callback<()>>,
) -> Result<T, ApiError> {
    let js = |_e: JsValue| ApiError::network();
    let token = api.bearer().await?;
    let xhr = web_sys::XmlHttpRequest::new().map_err(js)?;
    xhr.open_with_async("POST", path, true).map_err(js)?;
    xhr.set_request_header("Accept", "application/json")
        .map_err(js)?;
    if let Some(token) = token {
        xhr.set_request_header("Authorization", &format!("Bearer {token}"))
            .map_err(js)?;
    }
    let progress =
        Closure::<dyn FnMut(web_sys::ProgressEvent)>::new(move |e: web_sys::ProgressEvent| {
            if e.length_computable() {
                on_progress.emit((e.loaded(), e.total()));
            }
        });
    let upload = xhr.upload().map_err(js)?;
    upload.set_onprogress(Some(progress.as_ref().unchecked_ref()));
    let sent = on_sent.map(|on_sent| {
        let sent = Closure::<dyn FnMut()>::new(move || on_sent.emit(()));
        upload.set_onload(Some(sent.as_ref().unchecked_ref()));
        sent
    });

    let form = web_sys::FormData::new().map_err(js)?;
    form.append_with_blob_and_filename("file", file, &file.name())
        .map_err(js)?;

    // Resolves when the request ends, whatever the outcome; the status tells which.
    let mut on_end: Option<Closure<dyn FnMut()>> = None;
    let finished = Promise::new(&mut |resolve, _reject| {
        let done = Closure::<dyn FnMut()>::new(move || {
            let _ = resolve.call0(&JsValue::NULL);
        });
        xhr.set_onloadend(Some(done.as_ref().unchecked_ref()));
        on_end = Some(done);
    });
    xhr.send_with_opt_form_data(Some(&form)).map_err(js)?;
    let _ = JsFuture::from(finished).await;
    drop(on_end);
    drop(progress);
    drop(sent);

    let status = xhr.status().unwrap_or(0);
    let text = xhr.response_text().ok().flatten().unwrap_or_default();
    match status {
        0 => Err(ApiError::network()),
        200..=299 => crate::json::decode(&text).map_err(|_| ApiError::unreadable()),
        _ => {
            let retry_after = xhr
                .get_response_header("Retry-After")
                .ok()
                .flatten()
                .and_then(|v| v.trim().parse().ok());
            let err = ApiError::from_status(
                status,
                crate::json::decode::<Problem>(&text).ok(),
                retry_after,
            );
            if err.is_unauthenticated() {
                // Let the session notice, as `Api::request` does.
                let _ = api
                    .request("GET", "/api/me", None, "application/json", None)
                    .await;
            }
            Err(err)
        }
    }
}
