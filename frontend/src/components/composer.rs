//! The message box: Enter sends, Shift+Enter starts a new line; Stop during generation.
//! Files are attached with "Attach files", by dropping them onto the box or by pasting them:
//! each is uploaded to the project at once and shown as a chip (progress, error, "Remove").

use std::{cell::RefCell, collections::HashSet, rc::Rc};

use confab_api_types::MessageFile;
use uuid::Uuid;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::spawn_local;
use web_sys::{HtmlInputElement, HtmlTextAreaElement};
use yew::prelude::*;

use crate::{
    components::files::percent,
    services::{api::Api, browser, upload::upload_file},
    state::attachments::{Attachments, Chip, ChipAction, ChipState, MAX_FILES},
    wording::describe_upload,
};

#[derive(Properties, PartialEq)]
pub struct ComposerProps {
    /// A message to send: its text and the files uploaded for it, in order.
    pub on_send: Callback<(String, Vec<MessageFile>)>,
    pub on_stop: Callback<()>,
    pub generating: bool,
    /// The server's limit on a message's length (characters).
    pub max_chars: usize,
    /// The project the conversation belongs to: attachments are uploaded to it.
    pub project: Uuid,
    /// The server's limit on a file's size (bytes).
    pub max_bytes: u64,
    /// Text handed back after the server refused its send (a quota): put back in the box.
    #[prop_or_default]
    pub returned: Option<Returned>,
}

/// A refused message's text and files, handed back to the composer; `seq` tells two
/// hand-backs of the same text apart.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Returned {
    pub seq: u32,
    pub text: String,
    pub files: Vec<MessageFile>,
}

/// What the box holds once a refused message's text comes back: the refused text, followed by
/// whatever was typed since the send (nothing typed is lost, the refused text comes first).
pub fn text_after_refusal(refused: &str, typed_since: &str) -> String {
    if typed_since.trim().is_empty() {
        refused.to_owned()
    } else if typed_since == refused {
        typed_since.to_owned()
    } else {
        format!("{refused}\n\n{typed_since}")
    }
}

/// True when a key press should send rather than insert a new line.
pub fn is_send_key(key: &str, shift: bool, composing: bool) -> bool {
    key == "Enter" && !shift && !composing
}

/// Why a picked file is not uploaded (before asking the server), or `None`.
pub fn refusal(name: &str, size: f64, max_bytes: u64, room: usize) -> Option<String> {
    if room == 0 {
        Some(format!(
            "“{name}” was not added: at most {MAX_FILES} files go with one message."
        ))
    } else if size <= 0.0 {
        Some(format!("“{name}” is empty."))
    } else if size > max_bytes as f64 {
        Some(format!(
            "“{name}” is {}; the limit is {}.",
            browser::format_bytes(size as u64),
            browser::format_bytes(max_bytes)
        ))
    } else {
        None
    }
}

/// The files of a file list (a picker's, a drop's or a paste's).
fn files_of(list: Option<web_sys::FileList>) -> Vec<web_sys::File> {
    list.map(|l| (0..l.length()).filter_map(|i| l.get(i)).collect())
        .unwrap_or_default()
}

/// Whether a drag carries files (not text or a link).
fn drags_files(e: &DragEvent) -> bool {
    e.data_transfer()
        .is_some_and(|d| d.types().includes(&"Files".into(), 0))
}

/// Uploads `files` as chips of `attachments`.
struct Uploader {
    api: Api,
    project: Uuid,
    max_bytes: u64,
    dispatch: UseReducerDispatcher<Attachments>,
    next_key: Rc<RefCell<u32>>,
    /// Chips removed while their upload ran: the file is deleted once uploaded.
    removed: Rc<RefCell<HashSet<u32>>>,
}

impl Uploader {
    fn key(&self) -> u32 {
        let mut next = self.next_key.borrow_mut();
        let key = *next;
        *next = next.wrapping_add(1);
        key
    }

    fn add(&self, files: Vec<web_sys::File>, mut room: usize) {
        for file in files {
            let (key, name, size) = (self.key(), file.name(), file.size());
            if let Some(reason) = refusal(&name, size, self.max_bytes, room) {
                self.dispatch
                    .dispatch(ChipAction::Refused { key, name, reason });
                continue;
            }
            room -= 1;
            self.dispatch.dispatch(ChipAction::Started {
                key,
                name,
                total: size,
            });
            let on_progress = {
                let dispatch = self.dispatch.clone();
                Callback::from(move |(sent, total): (f64, f64)| {
                    dispatch.dispatch(ChipAction::Progress { key, sent, total });
                })
            };
            let (api, project, dispatch, removed) = (
                self.api.clone(),
                self.project,
                self.dispatch.clone(),
                self.removed.clone(),
            );
            spawn_local(async move {
                match upload_file(&api, project, &file, on_progress).await {
                    Ok(info) if removed.borrow().contains(&key) => {
                        // Removed before it was up: it goes with no message.
                        let _ = api.call("DELETE", &format!("/api/files/{}", info.id)).await;
                    }
                    Ok(info) => dispatch.dispatch(ChipAction::Uploaded { key, file: info }),
                    Err(e) => dispatch.dispatch(ChipAction::Failed {
                        key,
                        reason: describe_upload(&e),
                    }),
                }
            });
        }
    }
}

#[component]
pub fn Composer(props: &ComposerProps) -> Html {
    let input = use_node_ref();
    let picker = use_node_ref();
    let session = crate::hooks::use_session();
    let attachments = use_reducer(Attachments::default);
    let next_key = use_mut_ref(|| 0u32);
    let removed = use_mut_ref(HashSet::<u32>::new);
    let dragging = use_state_eq(|| false);
    let person = session.user.as_ref().map(|u| u.name.clone());
    // Text typed when the last session ended (the same person's), restored once.
    let restored = use_memo((), move |_| {
        person.and_then(|p| crate::services::draft::take(&p))
    });
    let draft = {
        let restored = restored.clone();
        use_state(move || (*restored).clone().unwrap_or_default())
    };
    {
        let (input, restored) = (input.clone(), restored.clone());
        use_effect_with((), move |_| {
            if let (Some(text), Some(field)) = (&*restored, input.cast::<HtmlTextAreaElement>()) {
                field.set_value(text);
                crate::services::draft::typed(text);
            }
        });
    }

    {
        let (input, draft, dispatch, next_key) = (
            input.clone(),
            draft.clone(),
            attachments.dispatcher(),
            next_key.clone(),
        );
        use_effect_with(props.returned.clone(), move |returned| {
            if let Some(r) = returned {
                if !r.files.is_empty() {
                    let first_key = {
                        let mut next = next_key.borrow_mut();
                        let first = *next;
                        *next = next.wrapping_add(r.files.len() as u32);
                        first
                    };
                    dispatch.dispatch(ChipAction::Restore {
                        first_key,
                        files: r.files.clone(),
                    });
                }
                if let Some(field) = input.cast::<HtmlTextAreaElement>() {
                    let text = text_after_refusal(&r.text, &field.value());
                    field.set_value(&text);
                    crate::services::draft::typed(&text);
                    draft.set(text);
                    let _ = field.focus();
                }
            }
        });
    }

    let uploading = attachments.uploading();
    let add_files = {
        let uploader = Rc::new(Uploader {
            api: session.api.clone(),
            project: props.project,
            max_bytes: props.max_bytes,
            dispatch: attachments.dispatcher(),
            next_key: next_key.clone(),
            removed: removed.clone(),
        });
        let room = attachments.room();
        Callback::from(move |files: Vec<web_sys::File>| uploader.add(files, room))
    };

    let submit = {
        let (input, draft, on_send, generating, max_chars, attachments) = (
            input.clone(),
            draft.clone(),
            props.on_send.clone(),
            props.generating,
            props.max_chars,
            attachments.clone(),
        );
        Callback::from(move |()| {
            let Some(field) = input.cast::<HtmlTextAreaElement>() else {
                return;
            };
            let text = field.value();
            if generating
                || attachments.uploading()
                || text.trim().is_empty()
                || text.chars().count() > max_chars
            {
                return;
            }
            on_send.emit((text, attachments.ready()));
            attachments.dispatch(ChipAction::Clear);
            field.set_value("");
            draft.set(String::new());
            crate::services::draft::typed("");
            let _ = field.focus();
        })
    };
    let onsubmit = {
        let submit = submit.clone();
        Callback::from(move |e: SubmitEvent| {
            e.prevent_default();
            submit.emit(());
        })
    };
    let onkeydown = {
        let submit = submit.clone();
        Callback::from(move |e: KeyboardEvent| {
            if is_send_key(&e.key(), e.shift_key(), e.is_composing()) {
                e.prevent_default();
                submit.emit(());
            }
        })
    };
    let oninput = {
        let draft = draft.clone();
        Callback::from(move |e: InputEvent| {
            if let Some(t) = e.target_dyn_into::<HtmlTextAreaElement>() {
                crate::services::draft::typed(&t.value());
                draft.set(t.value());
            }
        })
    };
    // Files pasted into the box are attached; pasted text is left to the browser.
    let onpaste = {
        let add_files = add_files.clone();
        Callback::from(move |e: Event| {
            let event: &wasm_bindgen::JsValue = e.as_ref();
            let files = js_sys::Reflect::get(event, &"clipboardData".into())
                .ok()
                .and_then(|d| d.dyn_into::<web_sys::DataTransfer>().ok())
                .map(|d| files_of(d.files()))
                .unwrap_or_default();
            if !files.is_empty() {
                e.prevent_default();
                add_files.emit(files);
            }
        })
    };
    let ondragover = {
        let dragging = dragging.clone();
        Callback::from(move |e: DragEvent| {
            if drags_files(&e) {
                e.prevent_default();
                dragging.set(true);
            }
        })
    };
    let ondragleave = {
        let dragging = dragging.clone();
        Callback::from(move |_: DragEvent| dragging.set(false))
    };
    let ondrop = {
        let (dragging, add_files) = (dragging.clone(), add_files.clone());
        Callback::from(move |e: DragEvent| {
            dragging.set(false);
            let files = files_of(e.data_transfer().and_then(|d| d.files()));
            if !files.is_empty() {
                e.prevent_default();
                add_files.emit(files);
            }
        })
    };
    let open_picker = {
        let picker = picker.clone();
        Callback::from(move |_| {
            if let Some(p) = picker.cast::<HtmlInputElement>() {
                p.click();
            }
        })
    };
    let on_pick = {
        let add_files = add_files.clone();
        Callback::from(move |e: Event| {
            let Some(p) = e.target_dyn_into::<HtmlInputElement>() else {
                return;
            };
            let files = files_of(p.files());
            p.set_value("");
            add_files.emit(files);
        })
    };
    let remove = {
        let (dispatch, removed, api, input) = (
            attachments.dispatcher(),
            removed.clone(),
            session.api.clone(),
            input.clone(),
        );
        Callback::from(move |chip: Chip| {
            removed.borrow_mut().insert(chip.key);
            dispatch.dispatch(ChipAction::Remove { key: chip.key });
            if let ChipState::Ready(file) = chip.state {
                // Uploaded for this message only: it leaves the project with the chip.
                let api = api.clone();
                spawn_local(async move {
                    let _ = api.call("DELETE", &format!("/api/files/{}", file.id)).await;
                });
            }
            if let Some(field) = input.cast::<HtmlTextAreaElement>() {
                let _ = field.focus();
            }
        })
    };
    let stop = {
        let on_stop = props.on_stop.clone();
        Callback::from(move |_| on_stop.emit(()))
    };
    let count = draft.chars().count();
    let too_long = count > props.max_chars;
    let chips = if attachments.chips.is_empty() {
        html! {}
    } else {
        html! {
            <ul class="chips" aria-label="Attachments">
                { for attachments.chips.iter().map(|chip| view_chip(chip, &remove)) }
            </ul>
        }
    };

    html! {
        <form class={classes!("composer", dragging.then_some("dragging"))} {onsubmit}
            {ondragover} {ondragleave} {ondrop}>
            <label for="message-input" class="visually-hidden">{ "Message" }</label>
            { chips }
            <div class="composer-box">
                <button type="button" class="button ghost attach" aria-label="Attach files"
                    title="Attach files" onclick={open_picker}>
                    <span aria-hidden="true">{ "📎" }</span>
                </button>
                <input ref={picker} type="file" multiple=true class="visually-hidden" tabindex="-1"
                    aria-hidden="true" onchange={on_pick} />
                <textarea ref={input} id="message-input" name="message" rows="1"
                    placeholder="Write a message…" {onkeydown} {oninput} {onpaste}
                    aria-describedby="composer-hint" aria-invalid={too_long.to_string()} />
                <div class="composer-actions">
                    if props.generating {
                        <button type="button" class="button stop" onclick={stop}>
                            <span class="stop-icon" aria-hidden="true"></span>{ "Stop" }
                        </button>
                    }
                    <button type="submit" class="button primary"
                        disabled={props.generating || uploading}>{ "Send" }</button>
                </div>
            </div>
            <p id="composer-hint" class={classes!("composer-hint", too_long.then_some("error"))}>
                if too_long {
                    { format!("{count} of {} characters: shorten the message to send it.", props.max_chars) }
                } else if uploading {
                    { "Send waits until the files are uploaded." }
                } else {
                    { "Enter to send · Shift+Enter for a new line · drop or paste files to attach them" }
                }
            </p>
        </form>
    }
}

/// One attachment: its name, then its progress or its error, and "Remove <filename>".
fn view_chip(chip: &Chip, remove: &Callback<Chip>) -> Html {
    let onclick = {
        let (remove, chip) = (remove.clone(), chip.clone());
        Callback::from(move |_| remove.emit(chip.clone()))
    };
    let (class, detail) = match &chip.state {
        ChipState::Uploading { sent, total } => {
            let pct = percent(*sent, *total);
            (
                "uploading",
                html! {
                    <>
                        <progress max="100" value={pct.to_string()}
                            aria-label={format!("Uploading {}", chip.name)}></progress>
                        <span class="muted small">{ format!("{pct}%") }</span>
                    </>
                },
            )
        }
        ChipState::Ready(file) => (
            "ready",
            html! { <span class="muted small">{ browser::format_bytes(file.size_bytes) }</span> },
        ),
        ChipState::Failed(reason) => (
            "failed",
            html! { <span class="error small" role="alert">{ reason }</span> },
        ),
    };
    html! {
        <li class={classes!("chip", class)} key={chip.key.to_string()}>
            <span class="chip-name truncate" title={chip.name.clone()}>{ &chip.name }</span>
            { detail }
            <button type="button" class="chip-remove" aria-label={format!("Remove {}", chip.name)}
                title={format!("Remove {}", chip.name)} {onclick}>
                <span aria-hidden="true">{ "×" }</span>
            </button>
        </li>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enter_sends_and_shift_enter_does_not() {
        assert!(is_send_key("Enter", false, false));
        assert!(!is_send_key("Enter", true, false));
        assert!(!is_send_key("a", false, false));
    }

    #[test]
    fn a_refused_message_comes_back_into_an_empty_box() {
        assert_eq!(text_after_refusal("Hello there", ""), "Hello there");
        assert_eq!(text_after_refusal("Hello there", "  \n"), "Hello there");
    }

    #[test]
    fn a_refused_message_comes_back_before_what_was_typed_since() {
        assert_eq!(
            text_after_refusal("Hello there", "and more"),
            "Hello there\n\nand more"
        );
        assert_eq!(text_after_refusal("same", "same"), "same");
    }

    #[test]
    fn a_file_that_cannot_go_is_refused_with_a_reason_before_any_upload() {
        assert_eq!(refusal("a.pdf", 10.0, 100, 1), None);
        assert_eq!(
            refusal("a.pdf", 0.0, 100, 1).as_deref(),
            Some("“a.pdf” is empty.")
        );
        assert_eq!(
            refusal("big.bin", 2_000_000.0, 1_000_000, 1).as_deref(),
            Some("“big.bin” is 2.0 MB; the limit is 1.0 MB.")
        );
        assert!(
            refusal("eleventh.txt", 10.0, 100, 0).is_some_and(|r| r.contains("at most 10 files"))
        );
    }

    #[test]
    fn enter_while_composing_text_with_an_input_method_does_not_send() {
        assert!(!is_send_key("Enter", false, true));
    }
}
