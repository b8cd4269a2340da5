//! The chat view: history, the live reply, Stop, Retry, rename and delete.

use std::{cell::Cell, rc::Rc};

use super::{Route, router::use_navigator};
use crate::{
    components::{
        composer::{Composer, Returned},
        message_list::MessageList,
        nav_link::NavLink,
        shares::{ShareBox, create_share},
        sidebar::conversation_title,
    },
    hooks::{use_data_version, use_session},
    services::{
        api::Api,
        browser,
        chat_stream::{self, StreamEnd},
    },
    state::chat::{Action, ChatState, EntryStatus, StreamCursor, StreamEvent},
};
use confab_api_types::{
    ChooseLeaf, Conversation, Message, MessageFile, SendMessage, TitleEvent, UpdateConversation,
};
use uuid::Uuid;
use wasm_bindgen_futures::spawn_local;
use web_sys::{AbortController, HtmlInputElement, HtmlSelectElement};
use yew::prelude::*;

/// How often a reply generated elsewhere (after a reload) is checked on.
const POLL_MS: i32 = 1000;

#[derive(Properties, PartialEq)]
pub struct ChatPageProps {
    pub project: Uuid,
    pub conversation: Uuid,
    /// A message to scroll to and highlight (a search result).
    #[prop_or_default]
    pub highlight: Option<Uuid>,
}

async fn load_history(
    api: &Api,
    conversation: Uuid,
) -> Result<Vec<Message>, crate::wording::ApiError> {
    api.list_all::<Message>(&format!("/api/conversations/{conversation}/messages"))
        .await
}

/// Follows the reply being generated in the conversation (after a reload, in a second tab, or
/// when this page's own stream dropped) from after `cursor`, then, unless it ended with its
/// last event or the page left, shows the stored history. `client_id` is the send's
/// `client_message_id` when this page's own send stream dropped (nil otherwise).
async fn follow_reply(
    api: &Api,
    dispatcher: &UseReducerDispatcher<ChatState>,
    conversation: Uuid,
    signal: Option<&web_sys::AbortSignal>,
    (mut cursor, client_id): (StreamCursor, Uuid),
    on_title: &Callback<TitleEvent>,
) {
    dispatcher.dispatch(Action::FollowStarted);
    let on_event = stream_handler(api, dispatcher, conversation, client_id, on_title);
    let end = chat_stream::follow(api, conversation, signal, &mut cursor, on_event).await;
    if end == Ok(StreamEnd::Finished) {
        // `done` or `error` ended the live state already (and a newer send may be live now).
        return;
    }
    dispatcher.dispatch(Action::StreamClosed);
    let aborted = signal.is_some_and(web_sys::AbortSignal::aborted);
    if !aborted && let Ok(messages) = load_history(api, conversation).await {
        dispatcher.dispatch(Action::Loaded(messages));
    }
}

/// What a reply's stream does to the view: each event becomes an action; after the reply's
/// last event the branch is read again (the new message's versions, "2 / 3"), and a `title`
/// goes to `on_title`.
fn stream_handler(
    api: &Api,
    dispatcher: &UseReducerDispatcher<ChatState>,
    conversation: Uuid,
    client_id: Uuid,
    on_title: &Callback<TitleEvent>,
) -> impl FnMut(StreamEvent) + use<> {
    let (api, dispatcher, on_title) = (api.clone(), dispatcher.clone(), on_title.clone());
    move |ev: StreamEvent| {
        if let StreamEvent::Title(t) = ev {
            on_title.emit(t);
            return;
        }
        let last = ev.is_last();
        if let Some(action) = ev.into_action(client_id) {
            dispatcher.dispatch(action);
        }
        if last {
            let (api, dispatcher) = (api.clone(), dispatcher.clone());
            spawn_local(async move {
                if let Ok(messages) = load_history(&api, conversation).await {
                    dispatcher.dispatch(Action::Loaded(messages));
                }
            });
        }
    }
}

/// What this page asks for a reply with.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Turn {
    /// A message with its files: after the leaf (`parent` `None`), or after `parent` (an
    /// edit; `Some(None)`: a new first message). `client_id` makes a retried send safe.
    Send {
        content: String,
        files: Vec<MessageFile>,
        client_id: Uuid,
        parent: Option<Option<Uuid>>,
    },
    /// Another answer beside the reply `reply`.
    Regenerate { reply: Uuid },
}

/// The files of a message that can go with it again (not deleted since).
fn live_files(files: &[MessageFile]) -> Vec<MessageFile> {
    files.iter().filter(|f| !f.deleted).cloned().collect()
}

/// A new abort controller for this page's stream, replacing (and aborting) the previous one.
fn new_abort(slot: &std::cell::RefCell<Option<AbortController>>) -> Option<web_sys::AbortSignal> {
    let controller = AbortController::new().ok();
    let signal = controller.as_ref().map(AbortController::signal);
    if let Some(old) = std::mem::replace(&mut *slot.borrow_mut(), controller) {
        old.abort();
    }
    signal
}

/// The formats of `GET /api/conversations/{id}/export`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ExportFormat {
    Markdown,
    Json,
}

impl ExportFormat {
    fn query(self) -> &'static str {
        match self {
            Self::Markdown => "markdown",
            Self::Json => "json",
        }
    }

    fn extension(self) -> &'static str {
        match self {
            Self::Markdown => "md",
            Self::Json => "json",
        }
    }
}

/// The name an export is saved under when the server gave none: the title, with only
/// letters, digits, spaces, `-` and `_` kept ("chat" when nothing is left).
fn export_filename(title: &str, extension: &str) -> String {
    let kept: String = title
        .chars()
        .map(|c| {
            if c.is_alphanumeric() || matches!(c, ' ' | '-' | '_') {
                c
            } else {
                '_'
            }
        })
        .take(80)
        .collect();
    let kept = kept.trim().trim_matches('_');
    let stem = if kept.is_empty() { "chat" } else { kept };
    format!("{stem}.{extension}")
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum HeaderMode {
    View,
    Rename,
    ConfirmDelete,
}

#[component]
pub fn ChatPage(props: &ChatPageProps) -> Html {
    let session = use_session();
    let data = use_data_version();
    let navigator = use_navigator();
    let chat = use_reducer(ChatState::default);
    let conversation = use_state(|| None::<Conversation>);
    let page_error = use_state(|| None::<String>);
    let notice = use_state(|| None::<String>);
    let header_mode = use_state(|| HeaderMode::View);
    // A share link just made (absolute), shown below the header to copy.
    let share_link = use_state(|| None::<String>);
    // The "Conversation actions" menu (Export) is open.
    let actions_open = use_state(|| false);
    let abort = use_mut_ref(|| None::<AbortController>);
    let id = props.conversation;

    // A title written for the conversation (a `title` event): show it here and in the sidebar.
    let on_title = {
        let (api, conversation, bump) =
            (session.api.clone(), conversation.clone(), data.bump.clone());
        Callback::from(move |t: TitleEvent| {
            if t.conversation_id != id {
                return;
            }
            let (api, conversation, bump) = (api.clone(), conversation.clone(), bump.clone());
            spawn_local(async move {
                if let Ok(c) = api
                    .get::<Conversation>(&format!("/api/conversations/{id}"))
                    .await
                {
                    conversation.set(Some(c));
                }
                bump.emit(());
            });
        })
    };
    {
        // Load the conversation and its whole history, oldest first; then follow the reply
        // being generated in it, if any.
        let on_title = on_title.clone();
        let (api, dispatcher, conversation, page_error, abort, bump) = (
            session.api.clone(),
            chat.dispatcher(),
            conversation.clone(),
            page_error.clone(),
            abort.clone(),
            data.bump.clone(),
        );
        use_effect_with(id, move |id| {
            let id = *id;
            spawn_local(async move {
                let active = match api
                    .get::<Conversation>(&format!("/api/conversations/{id}"))
                    .await
                {
                    Ok(c) => {
                        let active = c.active_reply_id;
                        conversation.set(Some(c));
                        active
                    }
                    Err(e) => {
                        page_error.set(Some(e.describe()));
                        return;
                    }
                };
                match load_history(&api, id).await {
                    Ok(messages) => dispatcher.dispatch(Action::Loaded(messages)),
                    Err(e) => {
                        page_error.set(Some(e.describe()));
                        return;
                    }
                }
                if active.is_some() {
                    // From 0: the stored reply may be partial; the stream replays it from its
                    // `assistant_message` (content "") and every delta.
                    let signal = new_abort(&abort);
                    let from = (StreamCursor::default(), Uuid::nil());
                    follow_reply(&api, &dispatcher, id, signal.as_ref(), from, &on_title).await;
                    // The stored reply may change the conversation's place in the sidebar.
                    bump.emit(());
                }
            });
        });
    }
    {
        // Leaving the page stops reading the stream; the server still finishes and stores the reply.
        let abort = abort.clone();
        use_effect_with((), move |_| {
            move || {
                if let Some(c) = abort.borrow_mut().take() {
                    c.abort();
                }
            }
        });
    }
    {
        // A reply being generated that this page is not streaming (after a reload, or a cut
        // stream): check on it until it is stored.
        let waiting = chat.loaded && !chat.live && chat.generating();
        let (api, dispatcher, bump) = (session.api.clone(), chat.dispatcher(), data.bump.clone());
        use_effect_with(waiting, move |waiting| {
            let stop = Rc::new(Cell::new(false));
            if *waiting {
                let stop = stop.clone();
                spawn_local(async move {
                    while !stop.get() {
                        browser::sleep(POLL_MS).await;
                        if stop.get() {
                            break;
                        }
                        match load_history(&api, id).await {
                            Ok(messages) => {
                                let done = !messages.iter().any(|m| {
                                    m.status == confab_api_types::MessageStatus::Streaming
                                });
                                dispatcher.dispatch(Action::Loaded(messages));
                                if done {
                                    bump.emit(());
                                    break;
                                }
                            }
                            Err(e) if e.is_unauthenticated() => break,
                            Err(_) => {}
                        }
                    }
                });
            }
            move || stop.set(true)
        });
    }

    // A refused send's text, handed back to the composer.
    let returned = use_state(|| None::<Returned>);
    let send = {
        let (api, dispatcher, abort, bump, on_title) = (
            session.api.clone(),
            chat.dispatcher(),
            abort.clone(),
            data.bump.clone(),
            on_title.clone(),
        );
        let (notice, returned) = (notice.clone(), returned.clone());
        Callback::from(move |turn: Turn| {
            notice.set(None);
            let client_id = match &turn {
                Turn::Send {
                    content,
                    files,
                    client_id,
                    ..
                } => {
                    dispatcher.dispatch(Action::SendStarted {
                        client_id: *client_id,
                        content: content.clone(),
                        files: files.clone(),
                    });
                    *client_id
                }
                Turn::Regenerate { reply } => {
                    dispatcher.dispatch(Action::Branch { from: *reply });
                    dispatcher.dispatch(Action::FollowStarted);
                    Uuid::nil()
                }
            };
            let signal = new_abort(&abort);
            let (api, dispatcher, bump, on_title, notice, returned) = (
                api.clone(),
                dispatcher.clone(),
                bump.clone(),
                on_title.clone(),
                notice.clone(),
                returned.clone(),
            );
            let sent = match &turn {
                Turn::Send { content, files, .. } => Some((content.clone(), files.clone())),
                Turn::Regenerate { .. } => None,
            };
            spawn_local(async move {
                let on_event = stream_handler(&api, &dispatcher, id, client_id, &on_title);
                let mut cursor = StreamCursor::default();
                let result = match turn {
                    Turn::Send {
                        content,
                        files,
                        client_id,
                        parent,
                    } => {
                        let body = SendMessage {
                            content,
                            client_message_id: Some(client_id),
                            parent_id: parent,
                            file_ids: files.iter().map(|f| f.id).collect(),
                        };
                        chat_stream::send_message(
                            &api,
                            id,
                            &body,
                            signal.as_ref(),
                            &mut cursor,
                            on_event,
                        )
                        .await
                    }
                    Turn::Regenerate { reply } => {
                        chat_stream::regenerate(&api, reply, signal.as_ref(), &mut cursor, on_event)
                            .await
                    }
                };
                let aborted = signal.as_ref().is_some_and(web_sys::AbortSignal::aborted);
                match result {
                    // `done` or `error` ended the live state and read the branch again.
                    Ok(StreamEnd::Finished) => {}
                    Ok(StreamEnd::CutOff | StreamEnd::Over) if aborted => {
                        dispatcher.dispatch(Action::StreamClosed);
                    }
                    // Dropped before its end: go on from the last event taken.
                    Ok(StreamEnd::CutOff | StreamEnd::Over) => {
                        let from = (cursor, client_id);
                        follow_reply(&api, &dispatcher, id, signal.as_ref(), from, &on_title).await;
                    }
                    Err(e) if aborted => {
                        let _ = e;
                        dispatcher.dispatch(Action::StreamClosed);
                    }
                    Err(e) if client_id.is_nil() => {
                        // A regenerate that was refused: show the branch as it is.
                        dispatcher.dispatch(Action::StreamClosed);
                        if let Ok(messages) = load_history(&api, id).await {
                            dispatcher.dispatch(Action::Loaded(messages));
                        }
                        notice.set(Some(e.describe()));
                    }
                    // Over a quota: nothing was stored. The text and files go back into the box
                    // and the server's sentence (which limit, when it resets) is shown.
                    Err(e) if e.code.as_deref() == Some("quota_exceeded") => {
                        dispatcher.dispatch(Action::Discard { id: client_id });
                        dispatcher.dispatch(Action::StreamClosed);
                        // An edit had cut the branch short: show it as the server has it.
                        if let Ok(messages) = load_history(&api, id).await {
                            dispatcher.dispatch(Action::Loaded(messages));
                        }
                        notice.set(Some(e.describe()));
                        if let Some((text, files)) = sent {
                            let seq = returned.as_ref().map_or(0, |r| r.seq.wrapping_add(1));
                            returned.set(Some(Returned { seq, text, files }));
                        }
                    }
                    Err(e) => dispatcher.dispatch(Action::SendRejected {
                        client_id,
                        error: e.describe(),
                    }),
                }
                bump.emit(());
            });
        })
    };
    // The quota left, read after each change: a quiet warning below 10%.
    let quota_warning = use_state(|| None::<String>);
    {
        let (quota_warning, api) = (quota_warning.clone(), session.api.clone());
        use_effect_with(chat.generating(), move |generating| {
            if !*generating {
                spawn_local(async move {
                    let today = js_sys::Date::new_0()
                        .to_iso_string()
                        .as_string()
                        .unwrap_or_default();
                    let day = today.get(..10).unwrap_or_default().to_owned();
                    let path = format!("/api/usage?from={day}&to={day}");
                    if let Ok(report) = api.get::<confab_api_types::UsageReport>(&path).await {
                        quota_warning.set(
                            report
                                .quota
                                .as_ref()
                                .and_then(super::usage::low_quota_warning),
                        );
                    }
                });
            }
        });
    }
    let on_send = {
        let send = send.clone();
        Callback::from(move |(content, files): (String, Vec<MessageFile>)| {
            send.emit(Turn::Send {
                content,
                files,
                client_id: browser::random_uuid(),
                parent: None,
            });
        })
    };
    let on_retry = {
        let (send, chat, dispatcher) = (send.clone(), chat.clone(), chat.dispatcher());
        Callback::from(move |entry_id: Uuid| {
            let Some(entry) = chat.entries.iter().find(|e| e.id == entry_id) else {
                return;
            };
            if entry.status == EntryStatus::Rejected {
                // Never delivered or refused: send it again under the same id, so a send that
                // did reach the server is not stored twice.
                let (content, files) = (entry.content.clone(), live_files(&entry.files));
                dispatcher.dispatch(Action::Discard { id: entry_id });
                send.emit(Turn::Send {
                    content,
                    files,
                    client_id: entry_id,
                    parent: None,
                });
            } else if let Some(turn) = chat.turn_before(entry_id) {
                send.emit(Turn::Send {
                    content: turn.content.clone(),
                    files: live_files(&turn.files),
                    client_id: browser::random_uuid(),
                    parent: None,
                });
            }
        })
    };
    let on_edit = {
        let (send, chat, dispatcher) = (send.clone(), chat.clone(), chat.dispatcher());
        Callback::from(move |(entry_id, content): (Uuid, String)| {
            let Some(entry) = chat.entries.iter().find(|e| e.id == entry_id) else {
                return;
            };
            if chat.generating() || entry.role != confab_api_types::Role::User {
                return;
            }
            // A new version of the message, with its files: after the same reply (none for
            // the first).
            let parent = Some(entry.parent_id);
            let files = live_files(&entry.files);
            dispatcher.dispatch(Action::Branch { from: entry_id });
            send.emit(Turn::Send {
                content,
                files,
                client_id: browser::random_uuid(),
                parent,
            });
        })
    };
    let on_regenerate = {
        let (send, chat) = (send.clone(), chat.clone());
        Callback::from(move |reply: Uuid| {
            if !chat.generating() {
                send.emit(Turn::Regenerate { reply });
            }
        })
    };
    let on_version = {
        let (api, dispatcher, conversation, notice) = (
            session.api.clone(),
            chat.dispatcher(),
            conversation.clone(),
            notice.clone(),
        );
        Callback::from(move |message_id: Uuid| {
            let (api, dispatcher, conversation, notice) = (
                api.clone(),
                dispatcher.clone(),
                conversation.clone(),
                notice.clone(),
            );
            spawn_local(async move {
                let body = ChooseLeaf { message_id };
                match api
                    .send::<_, Conversation>("PUT", &format!("/api/conversations/{id}/leaf"), &body)
                    .await
                {
                    Ok(c) => conversation.set(Some(c)),
                    Err(e) => {
                        notice.set(Some(e.describe()));
                        return;
                    }
                }
                match load_history(&api, id).await {
                    Ok(messages) => dispatcher.dispatch(Action::Loaded(messages)),
                    Err(e) => notice.set(Some(e.describe())),
                }
            });
        })
    };
    let on_stop = {
        let (api, notice, dispatcher) = (session.api.clone(), notice.clone(), chat.dispatcher());
        Callback::from(move |()| {
            let (api, notice, dispatcher) = (api.clone(), notice.clone(), dispatcher.clone());
            spawn_local(async move {
                match api
                    .call("POST", &format!("/api/conversations/{id}/cancel"))
                    .await
                {
                    Ok(()) => {}
                    // Nothing left to stop: it just finished. Show what was stored.
                    Err(e) if e.status == 409 => {
                        if let Ok(messages) = load_history(&api, id).await {
                            dispatcher.dispatch(Action::Loaded(messages));
                        }
                    }
                    Err(e) => notice.set(Some(e.describe())),
                }
            });
        })
    };

    if let Some(e) = &*page_error {
        return html! {
            <section class="page">
                <p class="error" role="alert">{ e }</p>
                <p><NavLink to={Route::Project { project: props.project }}>{ "Back to the project" }</NavLink></p>
            </section>
        };
    }

    let title = conversation
        .as_ref()
        .map(conversation_title)
        .unwrap_or_default();
    let header = match *header_mode {
        HeaderMode::View => {
            let (rename, delete) = {
                let (m1, m2) = (header_mode.clone(), header_mode.clone());
                (
                    Callback::from(move |_| m1.set(HeaderMode::Rename)),
                    Callback::from(move |_| m2.set(HeaderMode::ConfirmDelete)),
                )
            };
            let share = {
                let (api, share_link, notice) =
                    (session.api.clone(), share_link.clone(), notice.clone());
                Callback::from(move |_| {
                    let (api, share_link, notice) =
                        (api.clone(), share_link.clone(), notice.clone());
                    spawn_local(async move {
                        match create_share(&api, id).await {
                            Ok(url) => share_link.set(Some(url)),
                            Err(e) => notice.set(Some(e.describe())),
                        }
                    });
                })
            };
            let toggle_actions = {
                let open = actions_open.clone();
                Callback::from(move |_| open.set(!*open))
            };
            // Export: the server's file, fetched with the bearer token and saved.
            let export = {
                let (api, notice, open, title) = (
                    session.api.clone(),
                    notice.clone(),
                    actions_open.clone(),
                    title.clone(),
                );
                Callback::from(move |format: ExportFormat| {
                    open.set(false);
                    let (api, notice) = (api.clone(), notice.clone());
                    let fallback = export_filename(&title, format.extension());
                    spawn_local(async move {
                        let path =
                            format!("/api/conversations/{id}/export?format={}", format.query());
                        match api.get_download(&path).await {
                            Ok((blob, name)) => {
                                let name = name.unwrap_or(fallback);
                                if browser::save_blob(&blob, &name).is_err() {
                                    notice.set(Some("The browser refused the download.".into()));
                                }
                            }
                            Err(e) => notice.set(Some(e.describe())),
                        }
                    });
                })
            };
            let export_markdown = {
                let export = export.clone();
                Callback::from(move |_| export.emit(ExportFormat::Markdown))
            };
            let export_json = Callback::from(move |_| export.emit(ExportFormat::Json));
            let models = &session.config.llm.models;
            let picker = if models.len() > 1 {
                // The conversation's model; none chosen: the default.
                let current = conversation
                    .as_ref()
                    .and_then(|c| c.model.clone())
                    .unwrap_or_else(|| session.config.llm.model.clone());
                let onchange = {
                    let (api, conversation, notice) =
                        (session.api.clone(), conversation.clone(), notice.clone());
                    Callback::from(move |e: Event| {
                        let Some(select) = e.target_dyn_into::<HtmlSelectElement>() else {
                            return;
                        };
                        let model = select.value();
                        let (api, conversation, notice) =
                            (api.clone(), conversation.clone(), notice.clone());
                        spawn_local(async move {
                            let body = UpdateConversation {
                                title: None,
                                model: Some(Some(model)),
                            };
                            match api
                                .send::<_, Conversation>(
                                    "PATCH",
                                    &format!("/api/conversations/{id}"),
                                    &body,
                                )
                                .await
                            {
                                Ok(c) => conversation.set(Some(c)),
                                Err(e) => notice.set(Some(e.describe())),
                            }
                        });
                    })
                };
                html! {
                    <span class="model-picker">
                        <label for="model-picker" class="muted small">{ "Model" }</label>
                        <select id="model-picker" {onchange}>
                            { for models.iter().map(|m| html! {
                                <option value={m.clone()} selected={*m == current}>{ m }</option>
                            }) }
                        </select>
                    </span>
                }
            } else {
                html! {}
            };
            html! {
                <>
                    <h1 class="chat-title truncate">{ &title }</h1>
                    <div class="row">
                        { picker }
                        <button type="button" class="button ghost small" onclick={share}>{ "Share" }</button>
                        <button type="button" class="button ghost small" onclick={rename}>{ "Rename" }</button>
                        <button type="button" class="button ghost small danger-text" onclick={delete}>{ "Delete" }</button>
                        <div class="actions-menu">
                            <button type="button" class="button ghost small" aria-label="Conversation actions"
                                title="Conversation actions" aria-expanded={actions_open.to_string()}
                                aria-controls="conversation-actions" onclick={toggle_actions}>
                                <span aria-hidden="true">{ "⋯" }</span>
                            </button>
                            if *actions_open {
                                <div id="conversation-actions" class="actions-list" role="group"
                                    aria-label="Export this chat">
                                    <button type="button" class="button ghost small" onclick={export_markdown}>{ "Export as Markdown" }</button>
                                    <button type="button" class="button ghost small" onclick={export_json}>{ "Export as JSON" }</button>
                                </div>
                            }
                        </div>
                    </div>
                </>
            }
        }
        HeaderMode::Rename => html! {
            <RenameForm {id} title={conversation.as_ref().and_then(|c| c.title.clone()).unwrap_or_default()}
                on_done={
                    let (mode, conversation, bump) = (header_mode.clone(), conversation.clone(), data.bump.clone());
                    Callback::from(move |updated: Option<Conversation>| {
                        if let Some(c) = updated {
                            conversation.set(Some(c));
                            bump.emit(());
                        }
                        mode.set(HeaderMode::View);
                    })
                } />
        },
        HeaderMode::ConfirmDelete => {
            let cancel = {
                let mode = header_mode.clone();
                Callback::from(move |_| mode.set(HeaderMode::View))
            };
            let confirm = {
                let (api, nav, bump, notice, project) = (
                    session.api.clone(),
                    navigator.clone(),
                    data.bump.clone(),
                    notice.clone(),
                    props.project,
                );
                Callback::from(move |_| {
                    let (api, nav, bump, notice) =
                        (api.clone(), nav.clone(), bump.clone(), notice.clone());
                    spawn_local(async move {
                        match api
                            .call("DELETE", &format!("/api/conversations/{id}"))
                            .await
                        {
                            Ok(()) => {
                                bump.emit(());
                                if let Some(nav) = nav {
                                    nav.push(&Route::Project { project });
                                }
                            }
                            Err(e) => notice.set(Some(e.describe())),
                        }
                    });
                })
            };
            html! {
                <div class="confirm" role="group" aria-label="Delete this chat">
                    <span>{ format!("Delete “{title}” and all its messages?") }</span>
                    <button type="button" class="button danger small" onclick={confirm}>{ "Yes, delete" }</button>
                    <button type="button" class="button ghost small" onclick={cancel}>{ "Cancel" }</button>
                </div>
            }
        }
    };

    html! {
        <section class="chat" aria-label={if title.is_empty() { "Chat".to_owned() } else { title.clone() }}>
            <header class="chat-header">{ header }</header>
            if let Some(url) = &*share_link {
                <ShareBox url={url.clone()} on_close={
                    let share_link = share_link.clone();
                    Callback::from(move |()| share_link.set(None))
                } />
            }
            <MessageList entries={chat.entries.clone()} loaded={chat.loaded}
                generating={chat.generating()} {on_retry} {on_edit} {on_regenerate} {on_version}
                highlight={props.highlight} />
            if let Some(n) = &*notice {
                <p class="error notice-bar" role="alert">{ n }</p>
            }
            if let Some(w) = &*quota_warning {
                <p class="muted small quota-warning" role="status">{ w }</p>
            }
            <Composer {on_send} {on_stop} generating={chat.generating()}
                returned={(*returned).clone()}
                max_chars={session.config.limits.message_chars}
                project={props.project} max_bytes={session.config.limits.upload_bytes} />
        </section>
    }
}

#[derive(Properties, PartialEq)]
struct RenameFormProps {
    id: Uuid,
    title: String,
    on_done: Callback<Option<Conversation>>,
}

#[component]
fn RenameForm(props: &RenameFormProps) -> Html {
    let session = use_session();
    let input = use_node_ref();
    let error = use_state(|| None::<String>);
    {
        let input = input.clone();
        use_effect_with((), move |_| {
            if let Some(i) = input.cast::<HtmlInputElement>() {
                let _ = i.focus();
                i.select();
            }
        });
    }
    let onsubmit = {
        let (input, error, api, on_done, id) = (
            input.clone(),
            error.clone(),
            session.api.clone(),
            props.on_done.clone(),
            props.id,
        );
        Callback::from(move |e: SubmitEvent| {
            e.prevent_default();
            let Some(field) = input.cast::<HtmlInputElement>() else {
                return;
            };
            let title = field.value().trim().to_owned();
            let (error, api, on_done) = (error.clone(), api.clone(), on_done.clone());
            spawn_local(async move {
                let body = UpdateConversation {
                    title: Some(Some(title).filter(|t| !t.is_empty())),
                    model: None,
                };
                match api
                    .send::<_, Conversation>("PATCH", &format!("/api/conversations/{id}"), &body)
                    .await
                {
                    Ok(c) => on_done.emit(Some(c)),
                    Err(e) => error.set(Some(e.describe())),
                }
            });
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
        <form class="rename-form" {onsubmit} {onkeydown}>
            <label for="chat-title">{ "Chat title" }</label>
            <input ref={input} id="chat-title" type="text" value={props.title.clone()}
                maxlength={session.config.limits.title_chars.to_string()} autocomplete="off" />
            <button type="submit" class="button primary small">{ "Save" }</button>
            <button type="button" class="button ghost small" onclick={cancel}>{ "Cancel" }</button>
            if let Some(e) = &*error {
                <p class="error small" role="alert">{ e }</p>
            }
        </form>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_export_without_a_server_name_is_named_after_the_title() {
        assert_eq!(export_filename("Trip to Porto", "md"), "Trip to Porto.md");
        assert_eq!(export_filename("a/b\\c: d?", "json"), "a_b_c_ d.json");
        assert_eq!(export_filename("  ", "md"), "chat.md");
        assert_eq!(export_filename("../..", "md"), "chat.md");
    }
}
