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
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// One version of a project's system prompt.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct Prompt {
    pub id: Uuid,
    pub project_id: Uuid,
    pub version: i32,
    pub content: String,
    pub is_active: bool,
    pub created_at: DateTime<Utc>,
}

/// A conversation under a project. `title` is `null` while untitled.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct Conversation {
    pub id: Uuid,
    pub project_id: Uuid,
    pub title: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// The reply being generated in it (follow it with `GET …/stream`); `null` when nothing
    /// is being generated.
    #[serde(default)]
    pub active_reply_id: Option<Uuid>,
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
    pub role: Role,
    pub content: String,
    pub status: MessageStatus,
    pub model: Option<String>,
    pub usage: Option<Usage>,
    pub error: Option<String>,
    pub created_at: DateTime<Utc>,
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

/// `PATCH /api/conversations/{id}`
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct UpdateConversation {
    pub title: Option<String>,
}

/// `POST /api/conversations/{id}/messages`
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct SendMessage {
    pub content: String,
    /// Makes a retried send safe: a second send with the same id is refused with 409.
    #[serde(default)]
    pub client_message_id: Option<Uuid>,
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
    pub expires_at: DateTime<Utc>,
}

/// `GET /api/me`
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct Me {
    pub user_id: String,
}

/// Which sign-in the client must offer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct AuthConfig {
    /// `clerk`, `oidc` or `dev`.
    pub provider: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clerk_publishable_key: Option<String>,
    /// With Clerk: the host of the instance's Frontend API (`clerk.example.com`), which the
    /// server derives from the publishable key, so the client loads Clerk's script from it
    /// without decoding the key itself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clerk_frontend_api: Option<String>,
}

/// Which model answers.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct LlmConfig {
    pub provider: String,
    pub model: String,
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

#[cfg(test)]
mod tests {
    use super::*;

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
