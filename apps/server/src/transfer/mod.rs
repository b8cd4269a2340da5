//! Export and import (issue 18): Confab's export format (`confab_api_types::ExportDocument`,
//! `docs/export.md`), its Markdown rendering, the streamed account archive, and the reading
//! of an uploaded export — Confab's or ChatGPT's — one conversation at a time.

pub mod chatgpt;
pub mod zip;

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufRead as _, BufReader, Seek as _};

use confab_api_types::{self as api, ImportSkip};
use confab_core::ids::{FileId, MessageId, ProjectId};
use confab_core::model::{FileMeta, Message, MessageFile, MessageStatus, Principal, Role, Usage};
use confab_core::transfer::{ConversationDump, ImportConversation, ImportMessage};
use serde::de::{
    self, DeserializeSeed, Deserializer as _, IgnoredAny, MapAccess, SeqAccess, Visitor,
};
use serde_json::Value;

use crate::convert;
use crate::state::AppState;

/// An exported conversation: every message of every branch, oldest first.
#[must_use]
pub fn export_conversation(dump: ConversationDump) -> api::ExportConversation {
    let c = dump.conversation;
    api::ExportConversation {
        id: c.id.as_uuid(),
        project_id: c.project_id.as_uuid(),
        title: c.title,
        model: c.model,
        created_at: c.created_at,
        updated_at: c.updated_at,
        leaf_id: c.leaf_id.map(|id| id.as_uuid()),
        messages: dump.messages.into_iter().map(export_message).collect(),
    }
}

fn export_message(m: Message) -> api::ExportMessage {
    let m = convert::message(m);
    api::ExportMessage {
        id: m.id,
        parent_id: m.parent_id,
        role: m.role,
        content: m.content,
        status: m.status,
        model: m.model,
        usage: m.usage,
        error: m.error,
        created_at: m.created_at,
        files: m
            .files
            .into_iter()
            .map(|f| api::ExportAttachment {
                id: f.id,
                filename: f.filename,
                content_type: f.content_type,
                size_bytes: f.size_bytes,
            })
            .collect(),
    }
}

/// The ids of the files attached to the dump's messages, each once, in order.
#[must_use]
pub fn attached_files(dump: &ConversationDump) -> Vec<FileId> {
    let mut ids: Vec<FileId> = Vec::new();
    for file in dump.messages.iter().flat_map(|m| &m.files) {
        if !ids.contains(&file.id) {
            ids.push(file.id);
        }
    }
    ids
}

/// The shown branch (ending at the conversation's leaf), oldest first.
fn shown_branch(dump: &ConversationDump) -> Vec<&Message> {
    let by_id: HashMap<MessageId, &Message> = dump.messages.iter().map(|m| (m.id, m)).collect();
    let mut branch = Vec::new();
    let mut at = dump.conversation.leaf_id;
    while let Some(id) = at {
        let Some(message) = by_id.get(&id) else { break };
        if branch.len() > dump.messages.len() {
            break;
        }
        branch.push(*message);
        at = message.parent_id;
    }
    branch.reverse();
    branch
}

/// The shown branch as Markdown: the title, then each message under a heading naming its
/// role (and the model of a reply), with its time, attachments and status.
#[must_use]
pub fn markdown(dump: &ConversationDump) -> String {
    use std::fmt::Write as _;
    let c = &dump.conversation;
    let mut out = String::new();
    let title = c.title.as_deref().unwrap_or("Untitled conversation");
    let _ = writeln!(out, "# {}\n", title.replace('\n', " "));
    let _ = writeln!(
        out,
        "_Exported from Confab on {}; started {}._\n",
        confab_core::model::now().format("%Y-%m-%d %H:%M UTC"),
        c.created_at.format("%Y-%m-%d %H:%M UTC")
    );
    for m in shown_branch(dump) {
        let heading = match (m.role, &m.model) {
            (Role::User, _) => "User".to_owned(),
            (Role::Assistant, Some(model)) => format!("Assistant ({model})"),
            (Role::Assistant, None) => "Assistant".to_owned(),
        };
        let _ = writeln!(out, "## {heading}\n");
        let _ = writeln!(out, "_{}_\n", m.created_at.format("%Y-%m-%d %H:%M:%S UTC"));
        for f in &m.files {
            let _ = writeln!(
                out,
                "> Attached: {} ({}, {} bytes){}",
                f.filename,
                f.content_type,
                f.size_bytes,
                if f.deleted { ", deleted since" } else { "" }
            );
        }
        if !m.files.is_empty() {
            out.push('\n');
        }
        let _ = writeln!(out, "{}\n", m.content.trim_end());
        match m.status {
            MessageStatus::Complete => {}
            MessageStatus::Streaming => out.push_str("_(still being written when exported)_\n\n"),
            MessageStatus::Cancelled => out.push_str("_(stopped)_\n\n"),
            MessageStatus::Failed => {
                let _ = writeln!(
                    out,
                    "_(failed: {})_\n",
                    m.error.as_deref().unwrap_or("unknown error")
                );
            }
        }
    }
    out
}

/// A safe download name from a title: no path separators or control characters, at most
/// 100 characters, `conversation` when nothing is left; with `extension`.
#[must_use]
pub fn download_name(title: Option<&str>, extension: &str) -> String {
    let cleaned: String = title
        .unwrap_or_default()
        .chars()
        .map(|c| {
            if matches!(c, '/' | '\\' | ':') {
                '-'
            } else {
                c
            }
        })
        .filter(|c| !c.is_control())
        .take(100)
        .collect();
    let cleaned = cleaned.trim().trim_start_matches('.').trim();
    let stem = if cleaned.is_empty() {
        "conversation"
    } else {
        cleaned
    };
    format!("{stem}.{extension}")
}

/// A file's metadata in an export.
#[must_use]
pub fn export_file(file: FileMeta) -> api::FileInfo {
    convert::file(file)
}

// ---- reading an uploaded export

/// Which export a file is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Confab,
    ChatGpt,
}

impl Format {
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Confab => "confab",
            Self::ChatGpt => "chatgpt",
        }
    }
}

/// One thing read from an export, in file order.
pub enum Item {
    /// A Confab export's projects and prompts (they come before its conversations).
    Prompts {
        projects: usize,
        prompts: Vec<api::Prompt>,
    },
    /// Conversation `index`: what to import (none when nothing in it could be), and what was
    /// left out of it.
    Conversation {
        index: usize,
        conversation: Option<ImportConversation>,
        skipped: Vec<ImportSkip>,
    },
    /// How many files a Confab export lists (their bytes are not imported).
    Files(usize),
}

/// Why reading stopped.
#[derive(Debug)]
pub enum ReadError {
    /// The file is not a well-formed export: where it broke, for a person.
    Malformed(String),
    /// The consumer of the items stopped.
    Stopped,
    Io(std::io::Error),
}

/// What the consumer of the items answers: go on, or stop (with the reason).
pub type Next = Result<(), ReadError>;

/// Reads `file` from its start, handing each item to `each` as it is read: one
/// conversation in memory at a time. Blocking: run it on a blocking thread.
///
/// # Errors
/// `Malformed` naming where the file broke, `Stopped` when `each` stopped, `Io`.
pub fn read(file: &mut File, each: &mut dyn FnMut(Item) -> Next) -> Result<Format, ReadError> {
    file.rewind().map_err(ReadError::Io)?;
    let mut reader = BufReader::with_capacity(256 * 1024, &*file);
    // The first byte that is not white space (or a byte-order mark) tells the format.
    let first = loop {
        let buf = reader.fill_buf().map_err(ReadError::Io)?;
        let Some(position) = buf
            .iter()
            .position(|b| !b.is_ascii_whitespace() && !matches!(b, 0xEF | 0xBB | 0xBF))
        else {
            if buf.is_empty() {
                return Err(ReadError::Malformed("the file is empty".to_owned()));
            }
            let n = buf.len();
            reader.consume(n);
            continue;
        };
        let byte = buf[position];
        reader.consume(position);
        break byte;
    };
    let mut failure: Option<ReadError> = None;
    let format = match first {
        b'[' => Format::ChatGpt,
        b'{' => Format::Confab,
        _ => {
            return Err(ReadError::Malformed(
                "the file is neither a Confab export (a JSON object with confab_export) nor \
                 ChatGPT's conversations.json (a JSON list)"
                    .to_owned(),
            ));
        }
    };
    let mut de = serde_json::Deserializer::from_reader(reader);
    let result = match format {
        Format::ChatGpt => Elements {
            each: &mut |index: usize, value: Value| {
                let parsed = chatgpt::conversation(index, &value).map_err(ReadError::Malformed)?;
                each(Item::Conversation {
                    index,
                    conversation: parsed.conversation,
                    skipped: parsed.skipped,
                })
            },
            failure: &mut failure,
        }
        .deserialize(&mut de)
        .and_then(|()| de.end()),
        Format::Confab => (&mut de)
            .deserialize_map(Document {
                each,
                failure: &mut failure,
            })
            .and_then(|()| de.end()),
    };
    match (result, failure) {
        (Ok(()), _) => Ok(format),
        (Err(_), Some(failure)) => Err(failure),
        (Err(e), None) => Err(ReadError::Malformed(match format {
            Format::ChatGpt => format!("conversations: {e}"),
            Format::Confab => format!("the export: {e}"),
        })),
    }
}

/// The elements of a JSON list, one `Value` at a time.
struct Elements<'a> {
    each: &'a mut dyn FnMut(usize, Value) -> Next,
    failure: &'a mut Option<ReadError>,
}

impl<'de> DeserializeSeed<'de> for Elements<'_> {
    type Value = ();
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for Elements<'_> {
    type Value = ();
    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a list of conversations")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let mut index = 0;
        loop {
            let value = match seq.next_element::<Value>() {
                Ok(Some(value)) => value,
                Ok(None) => return Ok(()),
                Err(e) => {
                    *self.failure =
                        Some(ReadError::Malformed(format!("conversations[{index}]: {e}")));
                    return Err(e);
                }
            };
            if let Err(stop) = (self.each)(index, value) {
                *self.failure = Some(stop);
                return Err(de::Error::custom("stopped"));
            }
            index += 1;
        }
    }
}

/// A Confab export: `confab_export` first, then its lists; the conversations one at a time.
struct Document<'a> {
    each: &'a mut dyn FnMut(Item) -> Next,
    failure: &'a mut Option<ReadError>,
}

impl<'de> Visitor<'de> for Document<'_> {
    type Value = ();
    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a Confab export")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut version = None;
        let mut projects = 0;
        fn stop<E: de::Error>(failure: &mut Option<ReadError>, e: ReadError) -> E {
            *failure = Some(e);
            E::custom("stopped")
        }
        while let Some(key) = map.next_key::<String>()? {
            if key == "confab_export" {
                let v: u32 = map.next_value().map_err(|e| {
                    stop::<A::Error>(
                        self.failure,
                        ReadError::Malformed(format!("confab_export: {e}")),
                    )
                })?;
                if v != api::EXPORT_VERSION {
                    return Err(stop::<A::Error>(
                        self.failure,
                        ReadError::Malformed(format!(
                            "confab_export: version {v} is not supported (this server reads {})",
                            api::EXPORT_VERSION
                        )),
                    ));
                }
                version = Some(v);
                continue;
            }
            if version.is_none() {
                return Err(stop::<A::Error>(
                    self.failure,
                    ReadError::Malformed(
                        "confab_export: missing, or not the first field".to_owned(),
                    ),
                ));
            }
            match key.as_str() {
                "projects" => {
                    let list: Vec<IgnoredAny> = map.next_value().map_err(|e| {
                        stop::<A::Error>(
                            self.failure,
                            ReadError::Malformed(format!("projects: {e}")),
                        )
                    })?;
                    projects = list.len();
                }
                "prompts" => {
                    let prompts: Vec<api::Prompt> = map.next_value().map_err(|e| {
                        stop::<A::Error>(
                            self.failure,
                            ReadError::Malformed(format!("prompts: {e}")),
                        )
                    })?;
                    if let Err(e) = (self.each)(Item::Prompts { projects, prompts }) {
                        return Err(stop::<A::Error>(self.failure, e));
                    }
                }
                "files" => {
                    let list: Vec<IgnoredAny> = map.next_value().map_err(|e| {
                        stop::<A::Error>(self.failure, ReadError::Malformed(format!("files: {e}")))
                    })?;
                    if let Err(e) = (self.each)(Item::Files(list.len())) {
                        return Err(stop::<A::Error>(self.failure, e));
                    }
                }
                "conversations" => {
                    let each = &mut *self.each;
                    map.next_value_seed(Elements {
                        each: &mut |index: usize, value: Value| {
                            let (conversation, skipped) =
                                confab_conversation(index, value).map_err(ReadError::Malformed)?;
                            each(Item::Conversation {
                                index,
                                conversation: Some(conversation),
                                skipped,
                            })
                        },
                        failure: &mut *self.failure,
                    })?;
                }
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        if version.is_none() {
            return Err(stop::<A::Error>(
                self.failure,
                ReadError::Malformed("confab_export: missing".to_owned()),
            ));
        }
        Ok(())
    }
}

fn role(r: api::Role) -> Role {
    match r {
        api::Role::User => Role::User,
        api::Role::Assistant => Role::Assistant,
    }
}

fn status(s: api::MessageStatus) -> MessageStatus {
    match s {
        api::MessageStatus::Complete => MessageStatus::Complete,
        api::MessageStatus::Streaming => MessageStatus::Streaming,
        api::MessageStatus::Failed => MessageStatus::Failed,
        api::MessageStatus::Cancelled => MessageStatus::Cancelled,
    }
}

/// Conversation `index` of a Confab export.
fn confab_conversation(
    index: usize,
    value: Value,
) -> Result<(ImportConversation, Vec<ImportSkip>), String> {
    let at = format!("conversations[{index}]");
    let c: api::ExportConversation =
        serde_json::from_value(value).map_err(|e| format!("{at}: {e}"))?;
    let mut skipped = Vec::new();
    let messages = c
        .messages
        .into_iter()
        .enumerate()
        .map(|(i, m)| {
            if !m.files.is_empty() {
                skipped.push(ImportSkip {
                    what: format!("{at}.messages[{i}].files"),
                    why: format!(
                        "{} attached file(s) kept by name only: an export's JSON has no file bytes",
                        m.files.len()
                    ),
                });
            }
            ImportMessage {
                source_id: m.id.to_string(),
                parent: m.parent_id.map(|p| p.to_string()),
                role: role(m.role),
                content: m.content,
                status: status(m.status),
                model: m.model,
                usage: m.usage.map(|u| Usage {
                    input_tokens: u.input_tokens,
                    output_tokens: u.output_tokens,
                }),
                error: m.error,
                created_at: m.created_at,
                files: m
                    .files
                    .into_iter()
                    .map(|f| MessageFile {
                        id: FileId::from_uuid(f.id),
                        filename: f.filename,
                        content_type: f.content_type,
                        size_bytes: f.size_bytes,
                        deleted: false,
                    })
                    .collect(),
            }
        })
        .collect();
    Ok((
        ImportConversation {
            key: format!("confab:{}", c.id),
            title: c.title,
            model: c.model,
            created_at: c.created_at,
            updated_at: c.updated_at,
            current: c.leaf_id.map(|id| id.to_string()),
            messages,
        },
        skipped,
    ))
}

/// Checks a conversation as the import will store it (a cycle, a repeated id), without
/// storing anything.
///
/// # Errors
/// Where it broke, for a person.
pub fn check(index: usize, conversation: &ImportConversation) -> Result<(), String> {
    let owner = confab_core::UserId::new("check").map_err(|e| e.to_string())?;
    confab_core::transfer::plan(&owner, ProjectId::new(), conversation)
        .map(drop)
        .map_err(|e| format!("conversations[{index}].{}: {}", e.field, e.message))
}

// ---- the account's archive

/// Writes the principal's whole account to `zip`: `export.json` (streamed, one conversation
/// at a time), then each file's bytes at `files/{id}/{filename}`.
///
/// # Errors
/// A sentence for the log when a read or the client failed.
pub async fn write_account(
    state: &AppState,
    principal: &Principal,
    mut zip: zip::ZipStream,
) -> Result<(), String> {
    let t = &state.transfer;
    let fail = |e: confab_core::ServiceError| e.to_string();
    let io = |e: std::io::Error| e.to_string();
    let mut projects = Vec::new();
    let mut after = None;
    loop {
        let page = t.projects_page(principal, after).await.map_err(fail)?;
        after = page.last().map(|p| p.id);
        let full = page.len() >= confab_core::transfer::EXPORT_PAGE as usize;
        projects.extend(page);
        if !full || after.is_none() {
            break;
        }
    }
    zip.start("export.json", true).await.map_err(io)?;
    let head = format!(
        "{{\"confab_export\":{},\"exported_at\":{},\"projects\":[",
        api::EXPORT_VERSION,
        serde_json::to_string(&confab_core::model::now()).map_err(|e| e.to_string())?
    );
    zip.write(head.as_bytes()).await.map_err(io)?;
    let mut list = List::default();
    for p in &projects {
        list.item(&mut zip, &convert::project(p.clone())).await?;
    }
    zip.write(b"],\"prompts\":[").await.map_err(io)?;
    let mut list = List::default();
    for p in &projects {
        for prompt in t.prompts(principal, p.id).await.map_err(fail)? {
            list.item(&mut zip, &convert::prompt(prompt)).await?;
        }
    }
    zip.write(b"],\"conversations\":[").await.map_err(io)?;
    let mut list = List::default();
    for p in &projects {
        let mut after = None;
        loop {
            let page = t
                .conversations_page(principal, p.id, after)
                .await
                .map_err(fail)?;
            after = page.last().map(|c| (c.updated_at, c.id));
            let full = page.len() >= confab_core::transfer::EXPORT_PAGE as usize;
            for c in page {
                match t.conversation(principal, c.id).await {
                    Ok(dump) => list.item(&mut zip, &export_conversation(dump)).await?,
                    // Deleted while the export ran.
                    Err(confab_core::ServiceError::NotFound) => {}
                    Err(e) => return Err(e.to_string()),
                }
            }
            if !full || after.is_none() {
                break;
            }
        }
    }
    zip.write(b"],\"files\":[").await.map_err(io)?;
    let mut list = List::default();
    for p in &projects {
        let mut after = None;
        loop {
            let page = t.files_page(principal, p.id, after).await.map_err(fail)?;
            after = page.last().map(|f| f.id);
            let full = page.len() >= confab_core::transfer::EXPORT_PAGE as usize;
            for f in page {
                list.item(&mut zip, &export_file(f)).await?;
            }
            if !full || after.is_none() {
                break;
            }
        }
    }
    zip.write(b"]}").await.map_err(io)?;
    for p in &projects {
        let mut after = None;
        loop {
            let page = t.files_page(principal, p.id, after).await.map_err(fail)?;
            after = page.last().map(|f| f.id);
            let full = page.len() >= confab_core::transfer::EXPORT_PAGE as usize;
            for f in page {
                let bytes = match state.files.download(principal, f.id).await {
                    Ok((_, bytes)) => bytes,
                    Err(confab_core::ServiceError::NotFound) => continue,
                    Err(e) => return Err(e.to_string()),
                };
                let name = format!(
                    "files/{}/{}",
                    f.id,
                    confab_core::files::sanitize_filename(&f.filename)
                );
                zip.start(&name, false).await.map_err(io)?;
                let mut bytes = bytes;
                while let Some(chunk) = futures::StreamExt::next(&mut bytes).await {
                    let chunk = chunk.map_err(|e| e.to_string())?;
                    zip.write(&chunk).await.map_err(io)?;
                }
            }
            if !full || after.is_none() {
                break;
            }
        }
    }
    zip.finish().await.map_err(io)
}

/// The items of a JSON list being written: commas between them.
#[derive(Default)]
struct List {
    started: bool,
}

impl List {
    async fn item<T: serde::Serialize>(
        &mut self,
        zip: &mut zip::ZipStream,
        value: &T,
    ) -> Result<(), String> {
        let mut bytes = Vec::new();
        if self.started {
            bytes.push(b',');
        }
        self.started = true;
        serde_json::to_writer(&mut bytes, value).map_err(|e| e.to_string())?;
        zip.write(&bytes).await.map_err(|e| e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn download_names_are_safe() {
        assert_eq!(download_name(Some("a/b: c"), "md"), "a-b- c.md");
        assert_eq!(download_name(Some("  "), "json"), "conversation.json");
        assert_eq!(download_name(None, "json"), "conversation.json");
        assert_eq!(download_name(Some("..x"), "json"), "x.json");
    }
}
