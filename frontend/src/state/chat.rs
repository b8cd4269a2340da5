//! The chat view's state: the messages of one conversation and the reply being streamed.
//!
//! [`ChatState`] is a Yew [`Reducible`]; every change goes through an [`Action`], and the chat
//! stream's events become actions through [`StreamEvent`], so the whole flow is testable
//! without a browser.

use std::rc::Rc;

use confab_api_types::{
    Delta, Message, MessageFile, MessageStatus, Role, Source, StreamError, TitleEvent, events,
};
use uuid::Uuid;
use yew::Reducible;

use crate::{json, wording::describe_stream_error};

/// Where one shown message stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EntryStatus {
    /// The user's turn, sent but not yet confirmed by the server.
    Sending,
    /// The user's turn, refused by the server or never delivered (see `error`).
    Rejected,
    /// A reply still being generated.
    Streaming,
    /// Done.
    Complete,
    /// The reply failed (see `error`); it keeps the text written so far.
    Failed,
    /// The user stopped the reply; it keeps the text written so far.
    Cancelled,
}

impl From<MessageStatus> for EntryStatus {
    fn from(s: MessageStatus) -> Self {
        match s {
            MessageStatus::Complete => Self::Complete,
            MessageStatus::Streaming => Self::Streaming,
            MessageStatus::Failed => Self::Failed,
            MessageStatus::Cancelled => Self::Cancelled,
        }
    }
}

/// One message as the chat view shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// The server's id, or the `client_message_id` while a send is not yet confirmed.
    pub id: Uuid,
    pub role: Role,
    pub content: String,
    pub status: EntryStatus,
    /// Why it failed or was refused, in words for a person.
    pub error: Option<String>,
    pub model: Option<String>,
    /// The message this one answers or follows (`None` for the first message, and while a
    /// send is not yet confirmed).
    pub parent_id: Option<Uuid>,
    /// The versions of this message (its siblings, itself included), in order; empty when
    /// the server did not say (messages from a stream).
    pub sibling_ids: Vec<Uuid>,
    /// The files attached to a user message, in order.
    pub files: Vec<MessageFile>,
    /// The passages of the project's files a reply was given, numbered as it cites them.
    pub sources: Vec<Source>,
}

impl Entry {
    /// Where this message stands among its versions: (1-based position, count); `None`
    /// when it has no other version.
    pub fn version(&self) -> Option<(usize, usize)> {
        version_position(self.id, &self.sibling_ids)
    }

    /// The version `step` places away (-1: previous, +1: next), if there is one.
    pub fn version_beside(&self, step: isize) -> Option<Uuid> {
        version_beside(self.id, &self.sibling_ids, step)
    }
}

/// Where `id` stands among `siblings` (itself included): (1-based position, count); `None`
/// when it has no other version or is not among them.
pub fn version_position(id: Uuid, siblings: &[Uuid]) -> Option<(usize, usize)> {
    if siblings.len() < 2 {
        return None;
    }
    let pos = siblings.iter().position(|s| *s == id)?;
    Some((pos + 1, siblings.len()))
}

/// The "2 / 3" text under a message with versions.
pub fn version_label((position, count): (usize, usize)) -> String {
    format!("{position} / {count}")
}

/// The sibling `step` places from `id` (-1: the previous version, +1: the next); `None`
/// past either end.
pub fn version_beside(id: Uuid, siblings: &[Uuid], step: isize) -> Option<Uuid> {
    let pos = siblings.iter().position(|s| *s == id)?;
    let target = pos.checked_add_signed(step)?;
    siblings.get(target).copied()
}

impl From<Message> for Entry {
    fn from(m: Message) -> Self {
        let status = EntryStatus::from(m.status);
        let error = match status {
            EntryStatus::Failed => Some(
                m.error
                    .filter(|e| !e.trim().is_empty())
                    .unwrap_or_else(|| "The model could not finish this reply.".to_owned()),
            ),
            _ => None,
        };
        Self {
            id: m.id,
            role: m.role,
            content: m.content,
            status,
            error,
            model: m.model,
            parent_id: m.parent_id,
            sibling_ids: m.sibling_ids.unwrap_or_default(),
            files: m.files,
            sources: m.sources,
        }
    }
}

/// The messages of the open conversation.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ChatState {
    /// Oldest first.
    pub entries: Vec<Entry>,
    /// The history has been loaded once.
    pub loaded: bool,
    /// This page has a send in flight and reads its stream.
    pub live: bool,
}

impl ChatState {
    /// A reply is being generated (here or, after a reload, on the server).
    pub fn generating(&self) -> bool {
        self.live
            || self
                .entries
                .iter()
                .any(|e| e.status == EntryStatus::Streaming)
    }

    /// The text of the user's turn before the entry `id`: what "Retry" sends again.
    pub fn prompt_before(&self, id: Uuid) -> Option<String> {
        self.turn_before(id).map(|e| e.content.clone())
    }

    /// The user's turn before the entry `id` (the entry itself when it is one): its text
    /// and files are what "Retry" sends again.
    pub fn turn_before(&self, id: Uuid) -> Option<&Entry> {
        let pos = self.entries.iter().position(|e| e.id == id)?;
        self.entries[..=pos]
            .iter()
            .rev()
            .find(|e| e.role == Role::User)
    }

    fn upsert(&mut self, mut entry: Entry) {
        match self.entries.iter_mut().find(|e| e.id == entry.id) {
            Some(existing) => {
                // Stream events carry no versions: keep what the history said.
                if entry.sibling_ids.is_empty() {
                    entry.sibling_ids = std::mem::take(&mut existing.sibling_ids);
                }
                *existing = entry;
            }
            None => self.entries.push(entry),
        }
    }
}

/// Everything that changes the chat view.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// The conversation's history, oldest first. Ignored while this page reads a live stream.
    Loaded(Vec<Message>),
    /// The user sent a message (with files): show it at once.
    SendStarted {
        client_id: Uuid,
        content: String,
        files: Vec<MessageFile>,
    },
    /// The send was refused or not delivered; `error` says why.
    SendRejected { client_id: Uuid, error: String },
    /// A refused send is being retried: drop its entry (a new `SendStarted` follows).
    Discard { id: Uuid },
    /// A new version of the message `id` is on its way (an edit, a regenerated reply): it
    /// and everything after it leave the view, which now shows the new branch.
    Branch { from: Uuid },
    /// The server stored the user's turn (`user_message`).
    UserMessage { client_id: Uuid, message: Message },
    /// A message to show or update (`assistant_message`).
    AppendMessage(Message),
    /// More text of a reply (`delta`).
    AppendDelta { message_id: Uuid, text: String },
    /// The reply is stored: complete, or cancelled with the text so far (`done`).
    Finish(Message),
    /// The reply failed with the text so far (`error`).
    Fail { message_id: Uuid, error: String },
    /// This page starts following a reply generated elsewhere (`GET …/stream`): it is live,
    /// so a history load does not overwrite what the stream rebuilds.
    FollowStarted,
    /// The stream this page read has ended (after its last event, or cut off).
    StreamClosed,
}

impl Reducible for ChatState {
    type Action = Action;

    fn reduce(self: Rc<Self>, action: Action) -> Rc<Self> {
        let mut next = (*self).clone();
        match action {
            Action::Loaded(messages) => {
                if next.live {
                    return self;
                }
                next.entries = messages.into_iter().map(Entry::from).collect();
                next.loaded = true;
            }
            Action::SendStarted {
                client_id,
                content,
                files,
            } => {
                next.live = true;
                next.upsert(Entry {
                    id: client_id,
                    role: Role::User,
                    content,
                    status: EntryStatus::Sending,
                    error: None,
                    model: None,
                    parent_id: None,
                    sibling_ids: Vec::new(),
                    files,
                    sources: Vec::new(),
                });
            }
            Action::SendRejected { client_id, error } => {
                next.live = false;
                if let Some(e) = next.entries.iter_mut().find(|e| e.id == client_id) {
                    e.status = EntryStatus::Rejected;
                    e.error = Some(error);
                }
            }
            Action::Discard { id } => next.entries.retain(|e| e.id != id),
            Action::Branch { from } => {
                if let Some(pos) = next.entries.iter().position(|e| e.id == from) {
                    next.entries.truncate(pos);
                }
            }
            Action::UserMessage { client_id, message } => {
                next.entries.retain(|e| e.id != client_id);
                next.upsert(message.into());
            }
            Action::AppendMessage(message) => next.upsert(message.into()),
            Action::AppendDelta { message_id, text } => {
                match next
                    .entries
                    .iter_mut()
                    .find(|e| e.id == message_id && e.status == EntryStatus::Streaming)
                {
                    Some(e) => e.content.push_str(&text),
                    None => return self,
                }
            }
            Action::Finish(message) => {
                // The reply is over: a `title` may still come on the stream, but nothing
                // the view waits for.
                next.live = false;
                next.upsert(message.into());
            }
            Action::Fail { message_id, error } => {
                next.live = false;
                if let Some(e) = next.entries.iter_mut().find(|e| e.id == message_id) {
                    e.status = EntryStatus::Failed;
                    e.error = Some(error);
                }
            }
            Action::FollowStarted => next.live = true,
            Action::StreamClosed => next.live = false,
        }
        Rc::new(next)
    }
}

/// Where a reader of a reply's stream stands: the number (`id:`) of the last event it took,
/// sent as `Last-Event-ID` when it reconnects, so no event is taken twice.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StreamCursor {
    /// `None` before the first numbered event: a follow then starts from 0 (the whole reply).
    pub last_id: Option<u64>,
}

impl StreamCursor {
    /// Takes note of an event's `id:` and says whether the event is new. An event numbered at
    /// or below the last one taken is a repeat (a reconnect that overlapped) and is skipped;
    /// an event without a number is taken.
    pub fn accept(&mut self, id: &str) -> bool {
        let Ok(n) = id.trim().parse::<u64>() else {
            return true;
        };
        if self.last_id.is_some_and(|last| n <= last) {
            return false;
        }
        self.last_id = Some(n);
        true
    }

    /// The value of `Last-Event-ID` for the next connection.
    pub fn last_event_id(&self) -> u64 {
        self.last_id.unwrap_or(0)
    }
}

/// How many times in a row a dropped stream is reconnected before giving up (the view then
/// falls back to checking the stored history).
pub const MAX_RECONNECTS: u32 = 6;

/// The wait before reconnect number `attempt` (0-based) of a dropped stream: 0.5 s, doubling,
/// capped at 10 s; `None` once [`MAX_RECONNECTS`] tries have failed in a row.
pub fn reconnect_delay_ms(attempt: u32) -> Option<i32> {
    (attempt < MAX_RECONNECTS).then(|| 500_i32.saturating_mul(1 << attempt.min(5)).min(10_000))
}

/// One event of the chat stream (`POST …/messages`), decoded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StreamEvent {
    UserMessage(Message),
    AssistantMessage(Message),
    Delta(Delta),
    Done(Message),
    Error(StreamError),
    /// The conversation's title, written after its first reply (after `done`).
    Title(TitleEvent),
}

impl StreamEvent {
    /// Decodes an event by name; `Ok(None)` for names this client does not know (the server
    /// may add events), `Err` for data that does not decode.
    pub fn parse(name: &str, data: &str) -> Result<Option<Self>, json::Error> {
        Ok(Some(match name {
            events::USER_MESSAGE => Self::UserMessage(json::decode(data)?),
            events::ASSISTANT_MESSAGE => Self::AssistantMessage(json::decode(data)?),
            events::DELTA => Self::Delta(json::decode(data)?),
            events::DONE => Self::Done(json::decode(data)?),
            events::ERROR => Self::Error(json::decode(data)?),
            events::TITLE => Self::Title(json::decode(data)?),
            _ => return Ok(None),
        }))
    }

    /// `done` and `error` end the reply (only a `title` may follow `done`).
    pub fn is_last(&self) -> bool {
        matches!(self, Self::Done(_) | Self::Error(_))
    }

    /// The change to the chat view; `client_id` is the send's `client_message_id`. `None`
    /// for a `title`, which changes the conversation, not its messages.
    pub fn into_action(self, client_id: Uuid) -> Option<Action> {
        Some(match self {
            Self::UserMessage(message) => Action::UserMessage { client_id, message },
            Self::AssistantMessage(message) => Action::AppendMessage(message),
            Self::Delta(d) => Action::AppendDelta {
                message_id: d.message_id,
                text: d.text,
            },
            Self::Done(message) => Action::Finish(message),
            Self::Error(e) => Action::Fail {
                message_id: e.message_id,
                error: describe_stream_error(&e.code, &e.detail),
            },
            Self::Title(_) => return None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(id: u128, role: Role, content: &str, status: MessageStatus) -> Message {
        let mut m: Message = serde_json::from_value(serde_json::json!({
            "id": Uuid::from_u128(id),
            "conversation_id": Uuid::from_u128(99),
            "role": "user",
            "content": content,
            "status": "complete",
            "model": null,
            "usage": null,
            "error": null,
            "created_at": "2026-01-01T00:00:00Z",
        }))
        .unwrap();
        m.role = role;
        m.status = status;
        m
    }

    fn reduce_all(actions: impl IntoIterator<Item = Action>) -> Rc<ChatState> {
        actions
            .into_iter()
            .fold(Rc::new(ChatState::default()), |s, a| s.reduce(a))
    }

    /// Feeds raw SSE events through the parser and the reducer, as the chat view does.
    fn run_stream(state: Rc<ChatState>, client_id: Uuid, raw: &[(&str, String)]) -> Rc<ChatState> {
        raw.iter().fold(state, |s, (name, data)| {
            match StreamEvent::parse(name, data).unwrap() {
                Some(ev) => ev.into_action(client_id).map_or(s.clone(), |a| s.reduce(a)),
                None => s,
            }
        })
    }

    #[test]
    fn deltas_are_appended_in_order() {
        let s = reduce_all([
            Action::AppendMessage(msg(2, Role::Assistant, "", MessageStatus::Streaming)),
            Action::AppendDelta {
                message_id: Uuid::from_u128(2),
                text: "Hel".into(),
            },
            Action::AppendDelta {
                message_id: Uuid::from_u128(2),
                text: "lo, ".into(),
            },
            Action::AppendDelta {
                message_id: Uuid::from_u128(2),
                text: "world".into(),
            },
        ]);
        assert_eq!(s.entries[0].content, "Hello, world");
        assert_eq!(s.entries[0].status, EntryStatus::Streaming);
    }

    #[test]
    fn a_delta_for_an_unknown_or_finished_reply_changes_nothing() {
        let s = reduce_all([
            Action::AppendMessage(msg(2, Role::Assistant, "done", MessageStatus::Complete)),
            Action::AppendDelta {
                message_id: Uuid::from_u128(2),
                text: "late".into(),
            },
            Action::AppendDelta {
                message_id: Uuid::from_u128(7),
                text: "stray".into(),
            },
        ]);
        assert_eq!(s.entries.len(), 1);
        assert_eq!(s.entries[0].content, "done");
    }

    #[test]
    fn the_users_turn_shows_at_once_and_is_replaced_by_the_stored_one() {
        let client = Uuid::from_u128(1000);
        let s = reduce_all([Action::SendStarted {
            client_id: client,
            content: "hi".into(),
            files: Vec::new(),
        }]);
        assert_eq!(s.entries.len(), 1);
        assert_eq!(s.entries[0].status, EntryStatus::Sending);
        assert!(s.generating());

        let s = s.reduce(Action::UserMessage {
            client_id: client,
            message: msg(1, Role::User, "hi", MessageStatus::Complete),
        });
        assert_eq!(s.entries.len(), 1);
        assert_eq!(s.entries[0].id, Uuid::from_u128(1));
        assert_eq!(s.entries[0].status, EntryStatus::Complete);
    }

    #[test]
    fn a_full_stream_ends_with_the_stored_reply() {
        let client = Uuid::from_u128(1000);
        let user = msg(1, Role::User, "hi", MessageStatus::Complete);
        let started = msg(2, Role::Assistant, "", MessageStatus::Streaming);
        let mut done = msg(2, Role::Assistant, "Hello there", MessageStatus::Complete);
        done.model = Some("echo".into());
        let s = reduce_all([Action::SendStarted {
            client_id: client,
            content: "hi".into(),
            files: Vec::new(),
        }]);
        let s = run_stream(
            s,
            client,
            &[
                ("user_message", serde_json::to_string(&user).unwrap()),
                (
                    "assistant_message",
                    serde_json::to_string(&started).unwrap(),
                ),
                (
                    "delta",
                    format!(r#"{{"message_id":"{}","text":"Hello"}}"#, started.id),
                ),
                ("some_future_event", "{}".into()),
                (
                    "delta",
                    format!(r#"{{"message_id":"{}","text":" there"}}"#, started.id),
                ),
            ],
        );
        assert_eq!(s.entries[1].content, "Hello there");
        assert_eq!(s.entries[1].status, EntryStatus::Streaming);
        let s = run_stream(
            s,
            client,
            &[("done", serde_json::to_string(&done).unwrap())],
        );
        let s = s.reduce(Action::StreamClosed);
        assert_eq!(s.entries.len(), 2);
        assert_eq!(s.entries[1].status, EntryStatus::Complete);
        assert_eq!(s.entries[1].model.as_deref(), Some("echo"));
        assert!(!s.generating());
    }

    #[test]
    fn an_error_event_keeps_the_partial_text_and_says_why() {
        let client = Uuid::from_u128(1000);
        let started = msg(2, Role::Assistant, "", MessageStatus::Streaming);
        let s = run_stream(
            Rc::new(ChatState::default()),
            client,
            &[
                (
                    "assistant_message",
                    serde_json::to_string(&started).unwrap(),
                ),
                (
                    "delta",
                    format!(r#"{{"message_id":"{}","text":"Half"}}"#, started.id),
                ),
                (
                    "error",
                    format!(
                        r#"{{"message_id":"{}","code":"timeout","detail":"The model took too long."}}"#,
                        started.id
                    ),
                ),
            ],
        );
        assert_eq!(s.entries[0].content, "Half");
        assert_eq!(s.entries[0].status, EntryStatus::Failed);
        assert_eq!(
            s.entries[0].error.as_deref(),
            Some("The model took too long.")
        );
    }

    #[test]
    fn a_refused_send_stays_visible_with_the_reason() {
        let client = Uuid::from_u128(1000);
        let s = reduce_all([
            Action::SendStarted {
                client_id: client,
                content: "hi".into(),
                files: Vec::new(),
            },
            Action::SendRejected {
                client_id: client,
                error: "Too quick.".into(),
            },
        ]);
        assert_eq!(s.entries[0].status, EntryStatus::Rejected);
        assert_eq!(s.entries[0].error.as_deref(), Some("Too quick."));
        assert!(!s.generating());
        let s = s.reduce(Action::Discard { id: client });
        assert!(s.entries.is_empty());
    }

    #[test]
    fn history_loaded_during_a_live_stream_is_ignored() {
        let client = Uuid::from_u128(1000);
        let s = reduce_all([
            Action::SendStarted {
                client_id: client,
                content: "hi".into(),
                files: Vec::new(),
            },
            Action::Loaded(vec![]),
        ]);
        assert_eq!(s.entries.len(), 1);
        let s = s
            .reduce(Action::StreamClosed)
            .reduce(Action::Loaded(vec![msg(
                1,
                Role::User,
                "hi",
                MessageStatus::Complete,
            )]));
        assert_eq!(s.entries[0].id, Uuid::from_u128(1));
        assert!(s.loaded);
    }

    #[test]
    fn a_reply_still_streaming_after_a_reload_counts_as_generating() {
        let s = reduce_all([Action::Loaded(vec![
            msg(1, Role::User, "hi", MessageStatus::Complete),
            msg(2, Role::Assistant, "par", MessageStatus::Streaming),
        ])]);
        assert!(s.generating());
        assert!(!s.live);
    }

    #[test]
    fn retry_finds_the_users_turn_before_a_failed_reply() {
        let mut failed = msg(2, Role::Assistant, "x", MessageStatus::Failed);
        failed.error = Some("boom".into());
        let s = reduce_all([Action::Loaded(vec![
            msg(1, Role::User, "question", MessageStatus::Complete),
            failed,
        ])]);
        assert_eq!(s.entries[1].error.as_deref(), Some("boom"));
        assert_eq!(
            s.prompt_before(Uuid::from_u128(2)).as_deref(),
            Some("question")
        );
        assert_eq!(
            s.prompt_before(Uuid::from_u128(1)).as_deref(),
            Some("question")
        );
        assert_eq!(s.prompt_before(Uuid::from_u128(3)), None);
    }

    #[test]
    fn a_send_shows_its_files_at_once_and_retry_finds_them() {
        let file = MessageFile {
            id: Uuid::from_u128(50),
            filename: "report.pdf".into(),
            content_type: "application/pdf".into(),
            size_bytes: 1234,
            deleted: false,
        };
        let client = Uuid::from_u128(1000);
        let s = reduce_all([Action::SendStarted {
            client_id: client,
            content: "read it".into(),
            files: vec![file.clone()],
        }]);
        assert_eq!(s.entries[0].files, vec![file.clone()]);
        let s = s.reduce(Action::SendRejected {
            client_id: client,
            error: "Too quick.".into(),
        });
        let turn = s.turn_before(client).unwrap();
        assert_eq!(
            (turn.content.as_str(), &turn.files),
            ("read it", &vec![file.clone()])
        );

        // Stored: the history's files are shown; a failed reply's retry finds them.
        let mut user = msg(1, Role::User, "read it", MessageStatus::Complete);
        user.files = vec![file.clone()];
        let s = s.reduce(Action::Loaded(vec![
            user,
            msg(2, Role::Assistant, "x", MessageStatus::Failed),
        ]));
        assert_eq!(s.entries[0].files, vec![file.clone()]);
        assert!(s.entries[1].files.is_empty());
        assert_eq!(s.turn_before(Uuid::from_u128(2)).unwrap().files, vec![file]);
    }

    #[test]
    fn a_resumed_stream_skips_the_events_already_taken() {
        let mut cursor = StreamCursor::default();
        assert_eq!(cursor.last_event_id(), 0);
        assert!(cursor.accept("1"));
        assert!(cursor.accept("2"));
        assert!(cursor.accept("3"));
        assert_eq!(cursor.last_event_id(), 3);
        // The reconnect sent `Last-Event-ID: 3`; a server (or proxy) that repeats some is
        // not believed.
        assert!(!cursor.accept("2"));
        assert!(!cursor.accept("3"));
        assert!(cursor.accept("4"));
        assert!(cursor.accept(""), "an event without a number is taken");
        assert_eq!(cursor.last_id, Some(4));
    }

    #[test]
    fn reconnects_back_off_from_half_a_second_to_ten_and_give_up() {
        let delays: Vec<_> = (0..=MAX_RECONNECTS).map(reconnect_delay_ms).collect();
        assert_eq!(
            delays,
            [
                Some(500),
                Some(1000),
                Some(2000),
                Some(4000),
                Some(8000),
                Some(10_000),
                None
            ]
        );
        assert_eq!(reconnect_delay_ms(40), None);
    }

    /// A reload mid-reply: the stored reply is partial; following from 0 replays the reply's
    /// `assistant_message` (content "") and every delta, so the text is rebuilt exactly, and a
    /// reconnect after event 4 goes on without repeating a word.
    #[test]
    fn following_after_a_reload_rebuilds_the_partial_reply_without_repeats() {
        let user = msg(1, Role::User, "one two three", MessageStatus::Complete);
        let partial = msg(2, Role::Assistant, "one tw", MessageStatus::Streaming);
        let started = msg(2, Role::Assistant, "", MessageStatus::Streaming);
        let done = msg(2, Role::Assistant, "one two three", MessageStatus::Complete);
        let s = reduce_all([
            Action::Loaded(vec![user.clone(), partial]),
            Action::FollowStarted,
        ]);
        assert!(s.live && s.generating());
        // A history poll while following does not put the partial text back.
        let s = s.reduce(Action::Loaded(vec![]));
        assert_eq!(s.entries.len(), 2);

        let delta = |t: &str| format!(r#"{{"message_id":"{}","text":"{t}"}}"#, started.id);
        let all = [
            ("1", "user_message", serde_json::to_string(&user).unwrap()),
            (
                "2",
                "assistant_message",
                serde_json::to_string(&started).unwrap(),
            ),
            ("3", "delta", delta("one ")),
            ("4", "delta", delta("two ")),
            ("5", "delta", delta("three")),
            ("6", "done", serde_json::to_string(&done).unwrap()),
        ];
        let mut cursor = StreamCursor::default();
        let feed =
            |s: Rc<ChatState>, cursor: &mut StreamCursor, events: &[(&str, &str, String)]| {
                events.iter().fold(s, |s, (id, name, data)| {
                    if !cursor.accept(id) {
                        return s;
                    }
                    match StreamEvent::parse(name, data).unwrap() {
                        Some(ev) => ev
                            .into_action(Uuid::nil())
                            .map_or(s.clone(), |a| s.reduce(a)),
                        None => s,
                    }
                })
            };
        // First connection: cut after event 4.
        let s = feed(s, &mut cursor, &all[..4]);
        assert_eq!(s.entries[1].content, "one two ");
        assert_eq!(cursor.last_event_id(), 4);
        // The reconnect overlaps (repeats 3 and 4): they are skipped.
        let s = feed(s, &mut cursor, &all[2..]);
        assert_eq!(s.entries.len(), 2);
        assert_eq!(s.entries[1].content, "one two three");
        assert_eq!(s.entries[1].status, EntryStatus::Complete);
        let s = s.reduce(Action::StreamClosed);
        assert!(!s.generating());
    }

    #[test]
    fn malformed_event_data_is_an_error_not_a_panic() {
        assert!(StreamEvent::parse("delta", "{not json").is_err());
        assert_eq!(StreamEvent::parse("ping", "whatever").unwrap(), None);
    }
    #[test]
    fn the_version_text_says_where_a_message_stands_among_its_siblings() {
        let ids: Vec<Uuid> = (1..=3).map(Uuid::from_u128).collect();
        assert_eq!(version_position(ids[1], &ids), Some((2, 3)));
        assert_eq!(version_label((2, 3)), "2 / 3");
        assert_eq!(
            version_position(ids[0], &ids[..1]),
            None,
            "one version: no text"
        );
        assert_eq!(version_position(Uuid::from_u128(9), &ids), None);
        assert_eq!(version_beside(ids[1], &ids, -1), Some(ids[0]));
        assert_eq!(version_beside(ids[1], &ids, 1), Some(ids[2]));
        assert_eq!(
            version_beside(ids[0], &ids, -1),
            None,
            "no version before the first"
        );
        assert_eq!(
            version_beside(ids[2], &ids, 1),
            None,
            "no version after the last"
        );
    }

    #[test]
    fn versions_from_the_history_survive_the_streams_copy_of_a_message() {
        let mut user = msg(1, Role::User, "hi", MessageStatus::Complete);
        user.sibling_ids = Some(vec![Uuid::from_u128(0), Uuid::from_u128(1)]);
        let s = reduce_all([Action::Loaded(vec![user.clone()])]);
        assert_eq!(s.entries[0].version(), Some((2, 2)));
        // A regenerate's stream repeats the user message without `sibling_ids`.
        user.sibling_ids = None;
        let s = s.reduce(Action::UserMessage {
            client_id: Uuid::nil(),
            message: user,
        });
        assert_eq!(s.entries[0].version(), Some((2, 2)));
        assert_eq!(s.entries[0].version_beside(-1), Some(Uuid::from_u128(0)));
    }

    #[test]
    fn a_new_version_replaces_the_message_and_what_follows_it() {
        let s = reduce_all([
            Action::Loaded(vec![
                msg(1, Role::User, "one", MessageStatus::Complete),
                msg(2, Role::Assistant, "one", MessageStatus::Complete),
                msg(3, Role::User, "two", MessageStatus::Complete),
                msg(4, Role::Assistant, "two", MessageStatus::Complete),
            ]),
            Action::Branch {
                from: Uuid::from_u128(3),
            },
        ]);
        assert_eq!(s.entries.len(), 2);
        let s = s.reduce(Action::Branch {
            from: Uuid::from_u128(7),
        });
        assert_eq!(s.entries.len(), 2, "an unknown message changes nothing");
    }

    #[test]
    fn done_ends_the_live_state_while_the_stream_waits_for_the_title() {
        let client = Uuid::from_u128(1000);
        let done = msg(2, Role::Assistant, "hi", MessageStatus::Complete);
        let s = reduce_all([Action::SendStarted {
            client_id: client,
            content: "hi".into(),
            files: Vec::new(),
        }]);
        let s = run_stream(
            s,
            client,
            &[("done", serde_json::to_string(&done).unwrap())],
        );
        assert!(!s.live && !s.generating(), "a new send is possible at once");
        let title = format!(
            r#"{{"conversation_id":"{}","title":"Hi there"}}"#,
            Uuid::from_u128(99)
        );
        let ev = StreamEvent::parse("title", &title).unwrap().unwrap();
        assert!(!ev.is_last());
        assert_eq!(
            ev.clone(),
            StreamEvent::Title(TitleEvent {
                conversation_id: Uuid::from_u128(99),
                title: "Hi there".into(),
            })
        );
        assert_eq!(ev.into_action(client), None, "a title changes no message");
    }
}
