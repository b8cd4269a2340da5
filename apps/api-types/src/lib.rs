#![doc = include_str!("../README.md")]

#[cfg(not(target_arch = "wasm32"))]
use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer, Serialize};
use uuid::Uuid;

#[cfg(feature = "openapi")]
use utoipa::ToSchema;

pub mod browser_time;
// The browser build reads timestamps as checked RFC 3339 text (see `browser_time`): the same
// field declarations, without chrono in the wasm.
#[cfg(target_arch = "wasm32")]
use browser_time::{DateTime, Utc};

/// A timestamp: RFC 3339 in UTC (`chrono::DateTime<Utc>`, or [`browser_time::DateTime`] on wasm32).
pub type Timestamp = DateTime<Utc>;

/// Writes a timestamp as chrono's own `Serialize` does (RFC 3339, `Z`, as many fractional
/// digits as needed: 0, 3, 6 or 9), but formatted into a string first: chrono's goes through
/// `collect_str`, where serde_json escapes the text one character at a time (about 2,500
/// instructions a timestamp, 9 % of a page of 50 messages).
///
/// # Errors
/// The serializer's.
#[cfg(not(target_arch = "wasm32"))]
pub fn rfc3339<S: serde::Serializer>(at: &DateTime<Utc>, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&at.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true))
}

/// [`rfc3339`] for an optional timestamp (`null` when absent).
///
/// # Errors
/// The serializer's.
#[cfg(not(target_arch = "wasm32"))]
pub fn rfc3339_opt<S: serde::Serializer>(
    at: &Option<DateTime<Utc>>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    match at {
        Some(at) => rfc3339(at, serializer),
        None => serializer.serialize_none(),
    }
}

/// One page of a list. `next_cursor` is `null` on the last page.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_cursor: Option<String>,
}

/// A project: one chatbot.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct Project {
    pub id: Uuid,
    pub name: String,
    pub description: Option<String>,
    #[cfg_attr(not(target_arch = "wasm32"), serde(serialize_with = "crate::rfc3339"))]
    pub created_at: DateTime<Utc>,
    #[cfg_attr(not(target_arch = "wasm32"), serde(serialize_with = "crate::rfc3339"))]
    pub updated_at: DateTime<Utc>,
    /// Whether the texts of the project's files are given to the model as numbered sources
    /// (on by default; `PATCH` with `"knowledge": false` turns it off).
    #[serde(default = "on")]
    pub knowledge: bool,
    /// The language the project's knowledge is searched in: one of PostgreSQL's built-in
    /// text search configurations ([`KNOWLEDGE_LANGUAGES`]; `simple`: no language), `english`
    /// by default. On PostgreSQL, words are matched as written and by their stem in this
    /// language; SQLite's index is language-neutral (words as written) and only keeps it.
    #[serde(default = "english")]
    #[cfg_attr(feature = "openapi", schema(example = "english"))]
    pub language: String,
}

const fn on() -> bool {
    true
}

fn english() -> String {
    "english".to_owned()
}

/// The values of `Project.language` (the server's list; the client's menu shows them).
pub const KNOWLEDGE_LANGUAGES: &[&str] = &[
    "arabic",
    "danish",
    "dutch",
    "english",
    "finnish",
    "french",
    "german",
    "greek",
    "hungarian",
    "indonesian",
    "irish",
    "italian",
    "lithuanian",
    "nepali",
    "norwegian",
    "portuguese",
    "romanian",
    "russian",
    "simple",
    "spanish",
    "swedish",
    "tamil",
    "turkish",
];

/// One version of a project's system prompt.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct Prompt {
    pub id: Uuid,
    pub project_id: Uuid,
    pub version: i32,
    pub content: String,
    pub is_active: bool,
    #[cfg_attr(not(target_arch = "wasm32"), serde(serialize_with = "crate::rfc3339"))]
    pub created_at: DateTime<Utc>,
}

/// A conversation under a project. `title` is `null` while untitled.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct Conversation {
    pub id: Uuid,
    pub project_id: Uuid,
    pub title: Option<String>,
    #[cfg_attr(not(target_arch = "wasm32"), serde(serialize_with = "crate::rfc3339"))]
    pub created_at: DateTime<Utc>,
    #[cfg_attr(not(target_arch = "wasm32"), serde(serialize_with = "crate::rfc3339"))]
    pub updated_at: DateTime<Utc>,
    /// The reply being generated in it (follow it with `GET …/stream`); `null` when nothing
    /// is being generated.
    #[serde(default)]
    pub active_reply_id: Option<Uuid>,
    /// The last message of the branch being shown (`GET …/messages` reads the branch that
    /// ends here); `null` while the conversation is empty.
    #[serde(default)]
    pub leaf_id: Option<Uuid>,
    /// The model its replies are asked of (one of `GET /api/config`'s `llm.models`); `null`
    /// for the default.
    #[serde(default)]
    pub model: Option<String>,
}

/// One search result (`GET /api/search`): a message, or a conversation whose title matched
/// (`message_id` and `role` are `null` then, and `created_at` is the conversation's).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct SearchResult {
    pub conversation_id: Uuid,
    /// The conversation's project (for a link to it).
    pub project_id: Uuid,
    pub conversation_title: Option<String>,
    pub message_id: Option<Uuid>,
    pub role: Option<Role>,
    #[cfg_attr(not(target_arch = "wasm32"), serde(serialize_with = "crate::rfc3339"))]
    pub created_at: DateTime<Utc>,
    /// A passage of the matched text, HTML-escaped, each matched word in
    /// `<mark>`…`</mark>`: no other markup can occur in it.
    pub snippet: String,
}

/// A new share link (`POST /api/conversations/{id}/shares`). `url` (`/s/{token}`, relative
/// to the server) is shown this once: only a hash of its token is kept.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct ShareCreated {
    pub id: Uuid,
    pub url: String,
    #[cfg_attr(not(target_arch = "wasm32"), serde(serialize_with = "crate::rfc3339"))]
    pub created_at: DateTime<Utc>,
}

/// A live share link of a conversation (`GET /api/conversations/{id}/shares`). Its URL
/// cannot be shown again (only a hash of the token is kept).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct ShareInfo {
    pub id: Uuid,
    #[cfg_attr(not(target_arch = "wasm32"), serde(serialize_with = "crate::rfc3339"))]
    pub created_at: DateTime<Utc>,
}

/// What a share link shows (`GET /api/shared/{token}`): the conversation's title and its
/// shown branch when the link was made, oldest first.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct SharedConversation {
    pub title: Option<String>,
    pub messages: Vec<SharedMessage>,
}

/// One message of a shared conversation.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct SharedMessage {
    pub role: Role,
    pub content: String,
    /// The model that wrote a reply; `null` on user messages.
    pub model: Option<String>,
    #[cfg_attr(not(target_arch = "wasm32"), serde(serialize_with = "crate::rfc3339"))]
    pub created_at: DateTime<Utc>,
}

/// Who wrote a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum Role {
    User,
    Assistant,
}

/// Where a message stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum MessageStatus {
    Complete,
    Streaming,
    Failed,
    Cancelled,
}

/// Tokens the provider counted for a reply.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct Usage {
    pub input_tokens: u32,
    pub output_tokens: u32,
}

/// One turn of a conversation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct Message {
    pub id: Uuid,
    pub conversation_id: Uuid,
    /// The message it follows in its branch: a reply follows its user message, a user
    /// message the reply before it; `null` for a first message.
    #[serde(default)]
    pub parent_id: Option<Uuid>,
    /// In branch reads (`GET …/messages`): the messages with the same parent, oldest first,
    /// itself included — the versions a client can move between ("2 / 3"). Absent in stream
    /// events.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sibling_ids: Option<Vec<Uuid>>,
    pub role: Role,
    pub content: String,
    pub status: MessageStatus,
    pub model: Option<String>,
    pub usage: Option<Usage>,
    pub error: Option<String>,
    #[cfg_attr(not(target_arch = "wasm32"), serde(serialize_with = "crate::rfc3339"))]
    pub created_at: DateTime<Utc>,
    /// The files attached to a user message, in the order they were given; empty on
    /// replies and on messages sent without files.
    #[serde(default)]
    pub files: Vec<MessageFile>,
    /// The passages of the project's files a reply was given as numbered sources (it cites
    /// them as `[1]`, `[2]`); empty on user messages and on replies given none.
    #[serde(default)]
    pub sources: Vec<Source>,
}

/// A passage of a project's file that a reply was given, numbered as the reply cites it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct Source {
    /// The number the reply cites it by: `[n]`.
    pub n: u32,
    /// The file it is from (`GET /api/files/{file_id}/content` downloads it).
    pub file_id: Uuid,
    pub filename: String,
    /// The start of the passage, or a window around its first matched word.
    pub excerpt: String,
}

/// A file attached to a message, as it was when attached. A file deleted since stays
/// named, with `deleted: true` (its download is then 404).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct MessageFile {
    pub id: Uuid,
    pub filename: String,
    pub content_type: String,
    pub size_bytes: u64,
    #[serde(default)]
    pub deleted: bool,
}

/// An uploaded file's metadata.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct FileInfo {
    pub id: Uuid,
    pub project_id: Uuid,
    pub filename: String,
    pub content_type: String,
    pub size_bytes: u64,
    pub sha256: String,
    #[cfg_attr(not(target_arch = "wasm32"), serde(serialize_with = "crate::rfc3339"))]
    pub created_at: DateTime<Utc>,
    /// Where the reading of the file's text stands: `pending` right after the upload (it is
    /// read in the background), then `ready`, `failed` or `none` (images, binary).
    pub text_status: TextStatus,
    /// Why the text could not be read, a sentence for a person; `null` unless `failed`.
    #[serde(default)]
    pub text_error: Option<String>,
}

/// Where the reading of a file's text stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum TextStatus {
    Pending,
    Ready,
    Failed,
    None,
}

/// `POST /api/projects`
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct CreateProject {
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
}

/// `PATCH /api/projects/{id}`: absent fields stay as they are; `"description": null` clears it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct UpdateProject {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub description: Option<Option<String>>,
    /// Turns the project's knowledge on or off.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub knowledge: Option<bool>,
    /// The language the project's knowledge is searched in (see `Project.language`); 422
    /// for a name not in the list.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub language: Option<String>,
}

/// Distinguishes an absent field (`None`) from an explicit `null` (`Some(None)`).
fn present<'de, D, T>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(deserializer).map(Some)
}

/// `POST /api/projects/{id}/prompts`
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct CreatePrompt {
    pub content: String,
    /// Defaults to `true`: the new version becomes the active one.
    #[serde(default)]
    pub activate: Option<bool>,
}

/// `POST /api/projects/{id}/conversations`
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct CreateConversation {
    #[serde(default)]
    pub title: Option<String>,
}

/// `PATCH /api/conversations/{id}`: only the fields present change; an absent field stays as
/// it is (`{}` changes nothing), `null` clears one.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct UpdateConversation {
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    /// The new title, trimmed; `null` or blank clears it; absent leaves it as it is.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub title: Option<Option<String>>,
    /// One of `GET /api/config`'s `llm.models`; `null` for the default; absent leaves it as
    /// it is.
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub model: Option<Option<String>>,
}

/// `PUT /api/conversations/{id}/leaf`: show the branch through this message.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct ChooseLeaf {
    pub message_id: Uuid,
}

/// `POST /api/conversations/{id}/messages`
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct SendMessage {
    pub content: String,
    /// Makes a retried send safe: a second send with the same id is refused with 409.
    #[serde(default)]
    pub client_message_id: Option<Uuid>,
    /// The reply it follows. Absent: the conversation's `leaf_id`; `null`: a new first
    /// message. A reply other than the leaf's starts a new branch (edit and resend); the
    /// old one stays.
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Uuid>))]
    pub parent_id: Option<Option<Uuid>>,
    /// Files of the conversation's project to attach (uploaded by the sender), at most 10,
    /// none twice. Absent or empty: none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub file_ids: Vec<Uuid>,
}

/// `POST /api/auth/dev-login`
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct DevLogin {
    pub username: String,
}

/// The answer to a dev sign-in.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct DevToken {
    pub token: String,
    #[cfg_attr(not(target_arch = "wasm32"), serde(serialize_with = "crate::rfc3339"))]
    pub expires_at: DateTime<Utc>,
}

/// Debug without the secrets: these types hold passwords and link secrets.
macro_rules! redacted_debug {
    ($ty:ident { $($shown:ident),* }) => {
        impl std::fmt::Debug for $ty {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.debug_struct(stringify!($ty))
                    $(.field(stringify!($shown), &self.$shown))*
                    .finish_non_exhaustive()
            }
        }
    };
}

/// `POST /api/auth/local/sign-up`
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct LocalSignUp {
    pub username: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// 12 to 1024 characters, not a common password.
    pub password: String,
    /// The secret of an invite link (required when sign-up is by invitation).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub invite: Option<String>,
}
redacted_debug!(LocalSignUp { username, email });

/// `POST /api/auth/local/sign-in`
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct LocalSignIn {
    /// Username or e-mail.
    pub login: String,
    pub password: String,
}
redacted_debug!(LocalSignIn { login });

/// A session's access token (sign-up, sign-in, password change, refresh).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct SessionToken {
    pub token: String,
    /// When the access token expires (built-in accounts: 15 minutes by default; renew it
    /// with `refresh_token`).
    #[cfg_attr(not(target_arch = "wasm32"), serde(serialize_with = "crate::rfc3339"))]
    pub expires_at: DateTime<Utc>,
    /// Built-in accounts only: the single-use secret that renews the session at
    /// `POST /api/auth/local/refresh`; each use returns a new one and ends the old one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
}
redacted_debug!(SessionToken { expires_at });

/// `POST /api/auth/local/refresh`
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct RefreshRequest {
    pub refresh_token: String,
}
redacted_debug!(RefreshRequest {});

/// One live session of the caller's (`GET /api/auth/local/sessions`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct SessionInfo {
    pub id: Uuid,
    /// The sign-in.
    #[cfg_attr(not(target_arch = "wasm32"), serde(serialize_with = "crate::rfc3339"))]
    pub created_at: DateTime<Utc>,
    /// The sign-in or the last renewal of its access token.
    #[cfg_attr(not(target_arch = "wasm32"), serde(serialize_with = "crate::rfc3339"))]
    pub last_used_at: DateTime<Utc>,
    /// When it ends at the latest, however active.
    #[cfg_attr(not(target_arch = "wasm32"), serde(serialize_with = "crate::rfc3339"))]
    pub expires_at: DateTime<Utc>,
    /// The browser's `User-Agent` at sign-in (shortened), if it sent one.
    pub user_agent: Option<String>,
    /// The client's address at sign-in, if known.
    pub address: Option<String>,
    /// Whether this is the session of the token that asked.
    pub current: bool,
}

/// What a [`SecurityEventInfo`] records.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum SecurityEventKind {
    /// The password was changed by the account's owner, signed in.
    PasswordChanged,
    /// A new password was set with an administrator's reset link.
    PasswordReset,
    /// A sign-in (or the sign-up): a new session.
    SignedIn,
    /// Every session was signed out.
    SignedOutEverywhere,
}

/// One entry of the caller's security history (`GET /api/auth/local/activity`): never a
/// token or secret, only what happened, when and from which client.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct SecurityEventInfo {
    pub id: Uuid,
    pub kind: SecurityEventKind,
    #[cfg_attr(not(target_arch = "wasm32"), serde(serialize_with = "crate::rfc3339"))]
    pub at: DateTime<Utc>,
    /// The client's `User-Agent` (shortened), if it sent one.
    pub user_agent: Option<String>,
    /// The client's address, if known.
    pub address: Option<String>,
    /// Not marked read yet (`POST /api/auth/local/activity/read`).
    pub unread: bool,
    /// It came from, or started, the session of the token that asked.
    pub current: bool,
}

/// `POST /api/auth/local/activity/read`: which events were seen.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct ReadActivity {
    /// Mark only the events at or before this (the `at` of the newest event the client
    /// showed), so that one that happened meanwhile stays unread; absent: everything so far.
    #[serde(default)]
    #[cfg_attr(
        not(target_arch = "wasm32"),
        serde(serialize_with = "crate::rfc3339_opt")
    )]
    pub up_to: Option<DateTime<Utc>>,
}

/// `POST /auth/oidc/sign-out` (with `X-Confab-CSRF`): where the browser goes next, the
/// identity provider's sign-out page or `/`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct SignedOut {
    pub redirect_to: String,
}

/// `POST /api/auth/local/password`
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct PasswordChange {
    pub current: String,
    pub new: String,
}
redacted_debug!(PasswordChange {});

/// `POST /api/auth/local/reset`: a new password with an administrator's reset link.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct PasswordReset {
    /// The secret of the reset link.
    pub token: String,
    pub new: String,
}
redacted_debug!(PasswordReset {});

/// `DELETE /api/auth/local/account`: the password again, to delete the account and its data.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct AccountDeletion {
    pub password: String,
}
redacted_debug!(AccountDeletion {});

/// `POST /api/admin/password-resets`
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct ResetRequest {
    /// The username or e-mail of the account.
    pub login: String,
}

/// A single-use link (invite or password reset): its URL carries the secret after `#`, so
/// that it never reaches a server's access log.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct LinkCreated {
    pub url: String,
    #[cfg_attr(not(target_arch = "wasm32"), serde(serialize_with = "crate::rfc3339"))]
    pub expires_at: DateTime<Utc>,
}
redacted_debug!(LinkCreated { expires_at });

/// `GET /api/me`
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct Me {
    pub user_id: String,
    /// Whether the caller is an administrator (`CONFAB_ADMINS`, or a built-in account marked
    /// admin): the `/api/admin/*` routes answer them.
    #[serde(default)]
    pub is_admin: bool,
    /// The display name the identity provider gave at sign-in (browser OIDC sessions).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The e-mail address the identity provider gave at sign-in (browser OIDC sessions).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
}

/// Tokens of model calls: `cached_input` is part of `input`, `reasoning` part of `output`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct TokenSums {
    pub input_tokens: u64,
    pub cached_input_tokens: u64,
    pub output_tokens: u64,
    pub reasoning_tokens: u64,
    /// `input_tokens + output_tokens`: what quotas count.
    pub total_tokens: u64,
    /// The summed cost by `CONFAB_PRICES` at the time of each call, in millionths of the
    /// price table's currency unit (calls without a price count 0).
    pub cost_micros: i64,
    /// How many model calls.
    pub calls: u64,
}

/// One group of a usage report.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct UsageGroup {
    /// The day (`YYYY-MM-DD`), model, project id (`""`: no project, e.g. a deleted one) or
    /// user id, by `group_by`.
    pub key: String,
    #[serde(flatten)]
    pub sums: TokenSums,
}

/// A user's quota and what is left of it; limits are `null` when unlimited.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct QuotaStatus {
    pub tokens_per_day: Option<u64>,
    pub tokens_per_month: Option<u64>,
    /// Tokens used this UTC day and this UTC month.
    pub used_today: u64,
    pub used_this_month: u64,
    pub remaining_today: Option<u64>,
    pub remaining_this_month: Option<u64>,
}

/// `GET /api/usage` and `GET /api/admin/usage`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct UsageReport {
    /// The first and last UTC day of the report (`YYYY-MM-DD`, inclusive).
    pub from: String,
    pub to: String,
    /// `day`, `model`, `project` or `user`.
    pub group_by: String,
    pub groups: Vec<UsageGroup>,
    pub total: TokenSums,
    /// The caller's quota (`GET /api/usage` only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quota: Option<QuotaStatus>,
}

/// A user's own limits (`PUT /api/admin/users/{user_id}/quota`); `null` or absent: the
/// default (`CONFAB_QUOTA_TOKENS_PER_*`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct QuotaOverride {
    #[serde(default)]
    pub tokens_per_day: Option<u64>,
    #[serde(default)]
    pub tokens_per_month: Option<u64>,
}

/// A user as administrators see them (`GET /api/admin/users`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct AdminUser {
    pub user_id: String,
    /// The limits in force and the usage this day and month.
    pub quota: QuotaStatus,
    /// The user's own limits, when an administrator set them.
    #[serde(rename = "override")]
    pub quota_override: QuotaOverride,
}

/// Which sign-in the client must offer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct AuthConfig {
    /// `clerk`, `oidc`, `dev` or `local`.
    pub provider: String,
    /// With `local`: who may create an account, `open`, `invite` or `closed`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signup: Option<String>,
    /// With `local`: true while no account exists, so the next sign-up needs no invite and
    /// makes an administrator; omitted (false) otherwise.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub first_account: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clerk_publishable_key: Option<String>,
    /// With Clerk: the host of the instance's Frontend API (`clerk.example.com`), which the
    /// server derives from the publishable key, so the client loads Clerk's script from it
    /// without decoding the key itself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clerk_frontend_api: Option<String>,
    /// With `oidc`, when the browser signs in at the issuer (`GET /auth/oidc/sign-in`): the
    /// provider's name for "Sign in with …" (`OIDC_DISPLAY_NAME`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
}

/// Which model answers.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct LlmConfig {
    pub provider: String,
    /// The default model.
    pub model: String,
    /// The models a conversation may choose (`CONFAB_MODELS`), the default among them.
    #[serde(default)]
    pub models: Vec<String>,
}

/// The limits the server enforces, so the client can check before sending.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct LimitsConfig {
    pub project_name_chars: usize,
    pub prompt_chars: usize,
    pub message_chars: usize,
    pub title_chars: usize,
    pub upload_bytes: u64,
    pub sends_per_minute: u32,
}

/// `GET /api/config`: public settings of this server.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct ClientConfig {
    pub auth: AuthConfig,
    pub llm: LlmConfig,
    pub limits: LimitsConfig,
}

/// An error (RFC 9457 problem details) with a stable machine `code`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct Problem {
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
    pub code: String,
}

/// `GET /healthz`
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct Health {
    pub status: String,
}

/// Names of the chat stream's events.
pub mod events {
    pub const USER_MESSAGE: &str = "user_message";
    pub const ASSISTANT_MESSAGE: &str = "assistant_message";
    pub const DELTA: &str = "delta";
    pub const DONE: &str = "done";
    pub const ERROR: &str = "error";
    /// After `done` of an untitled conversation's first reply, while the stream is open.
    pub const TITLE: &str = "title";
}

/// The data of a `title` event: the title written for the conversation, stored.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct TitleEvent {
    pub conversation_id: Uuid,
    pub title: String,
}

/// The data of a `delta` event.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct Delta {
    pub message_id: Uuid,
    pub text: String,
}

/// The data of an `error` event: the reply is stored `failed` with the text so far.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct StreamError {
    pub message_id: Uuid,
    /// `upstream_error`, `rate_limited`, `timeout`, `truncated`, `interrupted`,
    /// `content_filter` or `unavailable`.
    pub code: String,
    pub detail: String,
}

/// The `format` of `GET /api/conversations/{id}/export`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum ExportFormat {
    /// Confab's export format (`ExportDocument`), every branch.
    #[default]
    Json,
    /// The shown branch, with role headings and models.
    Markdown,
}

/// The version of Confab's export format, the value of `confab_export`.
pub const EXPORT_VERSION: u32 = 1;

/// Confab's export (`GET /api/conversations/{id}/export?format=json`, and `export.json` in
/// the zip of `GET /api/export`), version 1. `docs/export.md` describes it. Readers MUST
/// ignore fields they do not know; a change that old readers would misread gets a new
/// version. `confab_export` comes first, so an importer knows the version before it reads
/// the rest.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct ExportDocument {
    /// Always `1` for this format.
    pub confab_export: u32,
    #[cfg_attr(not(target_arch = "wasm32"), serde(serialize_with = "crate::rfc3339"))]
    pub exported_at: DateTime<Utc>,
    /// The projects exported (for a conversation's export: its project).
    pub projects: Vec<Project>,
    /// Every version of the projects' prompts, each project's lowest version first.
    pub prompts: Vec<Prompt>,
    pub conversations: Vec<ExportConversation>,
    /// The metadata of the files exported (for a conversation: those attached to its
    /// messages that still exist). The zip of `GET /api/export` holds each one's bytes at
    /// `files/{id}/{filename}`.
    pub files: Vec<FileInfo>,
}

/// A conversation with every message of every branch.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct ExportConversation {
    pub id: Uuid,
    pub project_id: Uuid,
    pub title: Option<String>,
    /// The model its replies are asked of; `null` for the server's default.
    #[serde(default)]
    pub model: Option<String>,
    #[cfg_attr(not(target_arch = "wasm32"), serde(serialize_with = "crate::rfc3339"))]
    pub created_at: DateTime<Utc>,
    #[cfg_attr(not(target_arch = "wasm32"), serde(serialize_with = "crate::rfc3339"))]
    pub updated_at: DateTime<Utc>,
    /// The last message of the branch being shown; `null` when it has no messages.
    #[serde(default)]
    pub leaf_id: Option<Uuid>,
    /// Every message, oldest first (a parent always comes before its children); the
    /// branches are the paths from a message with `parent_id: null` along `parent_id`.
    pub messages: Vec<ExportMessage>,
}

/// One message of an exported conversation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct ExportMessage {
    pub id: Uuid,
    #[serde(default)]
    pub parent_id: Option<Uuid>,
    pub role: Role,
    pub content: String,
    pub status: MessageStatus,
    #[serde(default)]
    pub model: Option<String>,
    #[serde(default)]
    pub usage: Option<Usage>,
    #[serde(default)]
    pub error: Option<String>,
    #[cfg_attr(not(target_arch = "wasm32"), serde(serialize_with = "crate::rfc3339"))]
    pub created_at: DateTime<Utc>,
    /// The files attached to a user message, as they were when attached.
    #[serde(default)]
    pub files: Vec<ExportAttachment>,
}

/// A file attached to an exported message, named as it was when attached.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct ExportAttachment {
    pub id: Uuid,
    pub filename: String,
    pub content_type: String,
    pub size_bytes: u64,
}

/// What `POST /api/projects/{id}/import` did.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct ImportReport {
    /// `"confab"` or `"chatgpt"`: the format the file was read as.
    pub format: String,
    pub imported: ImportCounts,
    /// What was left out, and why (an image-only message, a system message, a
    /// conversation imported before …).
    pub skipped: Vec<ImportSkip>,
}

/// How much an import stored.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct ImportCounts {
    pub conversations: u64,
    pub messages: u64,
    /// Prompt versions (from a Confab export of one project, into a project without any).
    #[serde(default)]
    pub prompts: u64,
}

/// Something an import left out.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct ImportSkip {
    /// Where in the file: `conversations[3]`, `conversations[3].mapping.<node id>`, `files` …
    pub what: String,
    /// A sentence for a person: `already imported`, `system message`, `image-only message` …
    pub why: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_written_as_chrono_writes_them() {
        use chrono::TimeZone as _;
        let second = Utc.with_ymd_and_hms(2026, 12, 7, 2, 30, 5).unwrap();
        for nanos in [
            0,
            1,
            999,
            1_000,
            120_000_000,
            123_456_000,
            123_456_789,
            999_999_999,
        ] {
            let at = second + chrono::Duration::nanoseconds(nanos);
            let project = Project {
                id: Uuid::nil(),
                name: "p".into(),
                description: None,
                created_at: at,
                updated_at: at,
                knowledge: true,
                language: "english".into(),
            };
            let ours = serde_json::to_value(&project).unwrap();
            let chrono_s = serde_json::to_value(at).unwrap();
            assert_eq!(ours["created_at"], chrono_s, "{nanos}");
            assert_eq!(ours["updated_at"], chrono_s, "{nanos}");
            let back: Project = serde_json::from_value(ours).unwrap();
            assert_eq!(back.created_at, at);
        }
    }

    #[test]
    fn patch_distinguishes_absent_from_null() {
        let absent: UpdateProject = serde_json::from_str(r#"{"name":"x"}"#).unwrap();
        assert_eq!(absent.description, None);
        let null: UpdateProject = serde_json::from_str(r#"{"description":null}"#).unwrap();
        assert_eq!(null.description, Some(None));
        let set: UpdateProject = serde_json::from_str(r#"{"description":"d"}"#).unwrap();
        assert_eq!(set.description, Some(Some("d".into())));
    }

    #[test]
    fn problem_serializes_type_field() {
        let p = Problem {
            kind: "about:blank".into(),
            title: "Not Found".into(),
            status: 404,
            detail: "d".into(),
            code: "not_found".into(),
        };
        let v = serde_json::to_value(&p).unwrap();
        assert_eq!(v["type"], "about:blank");
        assert_eq!(v["code"], "not_found");
    }
}
