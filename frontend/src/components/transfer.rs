//! Export and import (issue 18): "Export everything" downloads the account's zip; "Import
//! conversations" sends a Confab export or ChatGPT's `conversations.json` into the project,
//! with a progress bar while it uploads, then "Importing…" while the server stores it, then
//! what was imported and what was skipped, and why.

use std::collections::BTreeMap;

use confab_api_types::ImportReport;
use uuid::Uuid;
use wasm_bindgen_futures::spawn_local;
use web_sys::HtmlInputElement;
use yew::prelude::*;

use crate::{
    components::files::percent,
    hooks::{use_data_version, use_session},
    services::{browser, upload::import_file},
    wording::describe_import,
};

/// Where the account's export is downloaded from.
pub const EXPORT_PATH: &str = "/api/export";

#[derive(Properties, PartialEq)]
pub struct TransferPanelProps {
    pub project: Uuid,
}

/// Where an import is.
#[derive(Clone, PartialEq)]
enum Phase {
    Idle,
    Uploading {
        name: String,
        sent: f64,
        total: f64,
    },
    /// Every byte is sent; the server reads and stores the file.
    Importing {
        name: String,
    },
}

fn plural(n: u64, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// The sentence that tells what an import did: "Imported 2 conversations, 10 messages;
/// skipped 3: system message, image-only message (2)." Reasons are listed once each, with
/// how often they came when more than once, most frequent first.
pub fn summary(report: &ImportReport) -> String {
    let counts = &report.imported;
    let mut imported = format!(
        "Imported {}, {}",
        plural(counts.conversations, "conversation", "conversations"),
        plural(counts.messages, "message", "messages")
    );
    if counts.prompts > 0 {
        imported.push_str(&format!(
            " and {}",
            plural(counts.prompts, "prompt version", "prompt versions")
        ));
    }
    if report.skipped.is_empty() {
        return format!("{imported}.");
    }
    let mut reasons = BTreeMap::<&str, usize>::new();
    for skip in &report.skipped {
        *reasons.entry(skip.why.as_str()).or_default() += 1;
    }
    let mut reasons: Vec<(&str, usize)> = reasons.into_iter().collect();
    // Most frequent first; alphabetical among equals (the map's order, kept by a stable sort).
    reasons.sort_by_key(|r| std::cmp::Reverse(r.1));
    let reasons = reasons
        .iter()
        .map(|(why, n)| {
            if *n > 1 {
                format!("{why} ({n})")
            } else {
                (*why).to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join(", ");
    format!("{imported}; skipped {}: {reasons}.", report.skipped.len())
}

#[component]
pub fn TransferPanel(props: &TransferPanelProps) -> Html {
    let session = use_session();
    let data = use_data_version();
    let phase = use_state(|| Phase::Idle);
    let result = use_state(|| None::<Result<String, String>>);
    let export_status = use_state(|| None::<Result<String, String>>);
    let exporting = use_state(|| false);
    let picker = use_node_ref();
    let project = props.project;

    // The link names the export; a click fetches it with the session's token, which a plain
    // link would not send, and saves it under the server's name.
    let export = {
        let (api, status, exporting) = (
            session.api.clone(),
            export_status.clone(),
            exporting.clone(),
        );
        Callback::from(move |e: MouseEvent| {
            e.prevent_default();
            if *exporting {
                return;
            }
            exporting.set(true);
            status.set(Some(Ok("Preparing the export…".into())));
            let (api, status, exporting) = (api.clone(), status.clone(), exporting.clone());
            spawn_local(async move {
                match api.get_download(EXPORT_PATH).await {
                    Ok((blob, name)) => {
                        let name = name.unwrap_or_else(|| "confab-export.zip".to_owned());
                        if browser::save_blob(&blob, &name).is_err() {
                            status.set(Some(Err("The browser refused the download.".into())));
                        } else {
                            status.set(Some(Ok(format!("Downloaded “{name}”."))));
                        }
                    }
                    Err(e) => status.set(Some(Err(e.describe()))),
                }
                exporting.set(false);
            });
        })
    };

    let open_picker = {
        let picker = picker.clone();
        Callback::from(move |_| {
            if let Some(input) = picker.cast::<HtmlInputElement>() {
                input.click();
            }
        })
    };
    let on_pick = {
        let (api, phase, result, bump) = (
            session.api.clone(),
            phase.clone(),
            result.clone(),
            data.bump.clone(),
        );
        Callback::from(move |e: Event| {
            let Some(input) = e.target_dyn_into::<HtmlInputElement>() else {
                return;
            };
            let Some(file) = input.files().and_then(|list| list.get(0)) else {
                return;
            };
            input.set_value("");
            let name = file.name();
            if file.size() <= 0.0 {
                result.set(Some(Err(format!("“{name}” is empty."))));
                return;
            }
            result.set(None);
            phase.set(Phase::Uploading {
                name: name.clone(),
                sent: 0.0,
                total: file.size(),
            });
            let on_progress = {
                let (phase, name) = (phase.clone(), name.clone());
                Callback::from(move |(sent, total): (f64, f64)| {
                    phase.set(Phase::Uploading {
                        name: name.clone(),
                        sent,
                        total,
                    });
                })
            };
            let on_sent = {
                let (phase, name) = (phase.clone(), name.clone());
                Callback::from(move |()| phase.set(Phase::Importing { name: name.clone() }))
            };
            let (api, phase, result, bump) =
                (api.clone(), phase.clone(), result.clone(), bump.clone());
            spawn_local(async move {
                match import_file(&api, project, &file, on_progress, on_sent).await {
                    Ok(report) => {
                        result.set(Some(Ok(summary(&report))));
                        // The sidebar lists the project's conversations anew.
                        bump.emit(());
                    }
                    Err(e) => result.set(Some(Err(describe_import(&e)))),
                }
                phase.set(Phase::Idle);
            });
        })
    };

    let busy = *phase != Phase::Idle;
    let progress = match &*phase {
        Phase::Idle => html! {},
        Phase::Uploading { name, sent, total } => {
            let pct = percent(*sent, *total);
            html! {
                <div class="upload" role="status">
                    <span class="small">{ format!("Uploading “{name}” — {pct}%") }</span>
                    <progress max="100" value={pct.to_string()} aria-label="Import progress"></progress>
                </div>
            }
        }
        Phase::Importing { name } => html! {
            <div class="upload" role="status">
                <span class="small">{ format!("Importing “{name}”…") }</span>
                // No value: an indeterminate bar while the server works.
                <progress max="100" aria-label="Import progress"></progress>
            </div>
        },
    };

    html! {
        <section class="panel" aria-labelledby="transfer-heading">
            <h2 id="transfer-heading">{ "Export and import" }</h2>
            <p class="muted">{ "Export everything: every project, prompt version, chat and file of your account, as a zip." }</p>
            <div class="row">
                <a class="button" href={EXPORT_PATH} download="" onclick={export}
                    aria-disabled={(*exporting).then_some("true")}>{ "Export everything" }</a>
            </div>
            { match &*export_status {
                Some(Ok(m)) => html! { <p class="muted" role="status">{ m }</p> },
                Some(Err(m)) => html! { <p class="error" role="alert">{ m }</p> },
                None => html! {},
            } }
            <p class="muted" id="import-help">{ "Import into this project a Confab export (JSON) or ChatGPT's conversations.json. Chats imported before are skipped." }</p>
            <div class="row">
                <button type="button" class="button" onclick={open_picker} disabled={busy}
                    aria-describedby="import-help">{ "Import conversations" }</button>
                <input ref={picker} id="import-file" type="file" accept=".json,application/json"
                    class="visually-hidden" tabindex="-1" aria-hidden="true" onchange={on_pick} />
            </div>
            { progress }
            { match &*result {
                Some(Ok(m)) => html! { <p class="success" role="status">{ m }</p> },
                Some(Err(m)) => html! { <p class="error" role="alert">{ m }</p> },
                None => html! {},
            } }
        </section>
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use confab_api_types::{ImportCounts, ImportSkip};

    fn skip(why: &str) -> ImportSkip {
        ImportSkip {
            what: "conversations[0]".into(),
            why: why.into(),
        }
    }

    #[test]
    fn an_import_summary_counts_what_was_stored_and_names_each_reason_once() {
        let report = ImportReport {
            format: "chatgpt".into(),
            imported: ImportCounts {
                conversations: 2,
                messages: 10,
                prompts: 0,
            },
            skipped: vec![
                skip("system message"),
                skip("image-only message"),
                skip("system message"),
            ],
        };
        assert_eq!(
            summary(&report),
            "Imported 2 conversations, 10 messages; skipped 3: system message (2), image-only message."
        );
    }

    #[test]
    fn an_import_summary_without_skips_ends_after_the_counts() {
        let report = ImportReport {
            format: "confab".into(),
            imported: ImportCounts {
                conversations: 1,
                messages: 1,
                prompts: 3,
            },
            skipped: Vec::new(),
        };
        assert_eq!(
            summary(&report),
            "Imported 1 conversation, 1 message and 3 prompt versions."
        );
    }
}
