//! The OpenAPI 3.1 document, generated from the handlers, and offline interactive docs.
//!
//! The handlers' attributes and the api types give the operations and the shapes; the
//! [`Exact`] modifier then makes the document say exactly what the server does, from the same
//! values the server validates with, so that the two cannot drift apart:
//!
//! - every error answer is `application/problem+json` ([`api::Problem`]), and each operation
//!   lists the statuses its extractors produce, derived from its shape (bearer security → 401
//!   and 503; path parameters → 400 and 404; a JSON body → 400, 413, 415 and 422; paging →
//!   400 and 422), besides those its attribute names (409, 429, …);
//! - field constraints come from the [`Limits`] the services validate with (lengths count
//!   Unicode scalar values, as JSON Schema's do), from [`PageLimit`] and from the cursor and
//!   username formats. Where the server trims a value before it counts it, or tells blank from
//!   empty, the rule is a `pattern` whose whitespace is exactly what `str::trim` removes.
//!
//! The limits are read from the running server's services, so the document states the
//! configured values (today only the upload limit and the JSON body limit are configurable;
//! the text limits are [`Limits::default`]). It is built once per distinct setting.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use actix_web::{HttpResponse, web};
use confab_api_types as api;
use confab_core::values::PageLimit;
use confab_core::{Limits, cursor};
use serde_json::json;
use utoipa::openapi::content::ContentBuilder;
use utoipa::openapi::extensions::Extensions;
use utoipa::openapi::header::HeaderBuilder;
use utoipa::openapi::path::{Operation, ParameterIn};
use utoipa::openapi::response::{Response, ResponseBuilder};
use utoipa::openapi::schema::{
    AdditionalProperties, Object, ObjectBuilder, OneOfBuilder, Schema, SchemaType, Type,
};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{Ref, RefOr};
use utoipa::{Modify, OpenApi, ToSchema};
use utoipa_swagger_ui::{Config, SwaggerUi};

use crate::routes::{chat, files, local, oidc, ops, projects, search, shares, transfer, usage};
use crate::state::AppState;

/// The media type of every error answer (RFC 9457).
pub const PROBLEM_JSON: &str = "application/problem+json";

/// What `str::trim` and `char::is_whitespace` count as white space (Unicode `White_Space`), as
/// the body of a regular-expression class. Spelled out, because `\s` means something slightly
/// different in ECMA-262, Python and Rust.
const WHITE_SPACE: &str =
    r"\t\n\x0B\x0C\r \x85\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000";

/// What `char::is_control` counts as a control character (category `Cc`), as a class body.
const CONTROL: &str = r"\x00-\x1F\x7F-\x9F";

/// The text forms `Uuid::try_parse` reads: simple, hyphenated, braced and URN.
const UUID_TEXT: &str = concat!(
    "(?:[0-9A-Fa-f]{32}",
    "|[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}",
    r"|\{[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}\}",
    "|[Uu][Rr][Nn]:[Uu][Uu][Ii][Dd]:",
    "[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12})",
);

/// What the document states beyond the code: the values the server validates with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DocumentSettings {
    pub limits: Limits,
    pub max_json_bytes: usize,
    pub sends_per_minute: u32,
    /// The models a conversation may choose (`CONFAB_MODELS`); empty: not stated.
    pub models: Vec<String>,
}

impl DocumentSettings {
    /// The values this server's services were given.
    #[must_use]
    pub fn of(state: &AppState) -> Self {
        Self {
            limits: Limits {
                project_name_chars: state.projects.limits().project_name_chars,
                description_chars: state.projects.limits().description_chars,
                prompt_chars: state.prompts.limits().prompt_chars,
                message_chars: state.chat.limits().message_chars,
                title_chars: state.conversations.limits().title_chars,
                upload_bytes: state.files.max_bytes(),
            },
            max_json_bytes: state.max_json_bytes,
            sends_per_minute: state.client_config.limits.sends_per_minute,
            models: state.client_config.llm.models.clone(),
        }
    }
}

impl Default for DocumentSettings {
    /// The defaults of API.md.
    fn default() -> Self {
        Self {
            limits: Limits::default(),
            max_json_bytes: 1024 * 1024,
            sends_per_minute: 20,
            models: Vec::new(),
        }
    }
}

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        );
    }
}

/// The form of an upload: one field `file` with the bytes. Other fields are ignored; their
/// names hold no control characters but tab, no quote and no backslash.
#[derive(ToSchema)]
#[allow(dead_code)] // Only its schema is used.
pub struct UploadForm {
    /// The file's bytes (at least one); its name is kept, its type is detected from the bytes.
    #[schema(value_type = String, content_media_type = "application/octet-stream", min_length = 1)]
    file: Vec<u8>,
}

#[derive(OpenApi)]
#[openapi(
    info(title = "Confab API", description = "Projects, versioned system prompts, conversations with streamed replies (Server-Sent Events), and file uploads. Errors are application/problem+json with a stable `code`."),
    modifiers(&BearerAuth),
    paths(
        ops::client_config, ops::dev_login, ops::me, serve,
        projects::list_projects, projects::create_project, projects::get_project, projects::update_project, projects::delete_project,
        projects::list_prompts, projects::create_prompt, projects::active_prompt, projects::activate_prompt,
        projects::list_conversations, projects::create_conversation,
        projects::get_conversation, projects::update_conversation, projects::delete_conversation,
        projects::list_messages, chat::send_message, chat::follow, chat::cancel,
        chat::regenerate, projects::choose_leaf, search::search,
        shares::create_share, shares::list_shares, shares::revoke_share, shares::shared_json,
        transfer::export_conversation, transfer::export_account, transfer::import,
        files::upload_file, files::list_files, files::get_file, files::delete_file, files::download_file,
        local::sign_up, local::sign_in, local::refresh, local::list_sessions, local::end_session,
        local::list_activity, local::read_activity,
        local::reset, local::sign_out, local::sign_out_all,
        local::change_password, local::delete_account, local::create_invite, local::create_reset,
        usage::my_usage, usage::admin_users, usage::set_quota, usage::admin_usage,
        oidc::sign_in, oidc::callback, oidc::token, oidc::sign_out,
    ),
    components(schemas(
        api::Project, api::Prompt, api::Conversation, api::Message, api::MessageFile, api::Source, api::FileInfo, api::TextStatus, api::Usage, api::Role, api::MessageStatus,
        api::CreateProject, api::UpdateProject, api::CreatePrompt, api::CreateConversation, api::UpdateConversation,
        api::SendMessage, api::ChooseLeaf, api::DevLogin, api::DevToken, api::Me, api::ClientConfig, api::AuthConfig, api::LlmConfig,
        api::LimitsConfig, api::Problem, api::Delta, api::StreamError, api::TitleEvent, UploadForm,
        api::LocalSignUp, api::LocalSignIn, api::SessionToken, api::RefreshRequest, api::SessionInfo, api::SecurityEventInfo, api::SecurityEventKind, api::ReadActivity, api::PasswordChange, api::PasswordReset,
        api::AccountDeletion, api::ResetRequest, api::LinkCreated, api::SearchResult,
        api::ShareCreated, api::ShareInfo, api::SharedConversation, api::SharedMessage,
        api::ExportFormat, api::ExportDocument, api::ExportConversation, api::ExportMessage, api::ExportAttachment,
        api::ImportReport, api::ImportCounts, api::ImportSkip,
        api::TokenSums, api::UsageGroup, api::QuotaStatus, api::UsageReport, api::QuotaOverride, api::AdminUser, api::SignedOut,
    )),
    tags(
        (name = "session", description = "Sign-in and client settings"),
        (name = "projects"), (name = "prompts"), (name = "conversations"),
        (name = "messages", description = "History and the chat stream"),
        (name = "files"),
        (name = "search", description = "Full-text search over your messages and conversation titles"),
        (name = "shares", description = "Read-only share links; `/api/shared/{token}` needs no sign-in"),
        (name = "export", description = "Export (a conversation as JSON or Markdown, the whole account as a zip) and import (a Confab export or ChatGPT's conversations.json); the format is in docs/export.md"),
        (name = "accounts", description = "Built-in accounts (`CONFAB_AUTH=local`)"),
        (name = "usage", description = "Token usage and quotas; `/api/admin/*` answers administrators only (404 for anyone else)"),
    )
)]
pub struct ApiDoc;

/// The document for a server with these settings.
#[must_use]
pub fn build(settings: &DocumentSettings) -> utoipa::openapi::OpenApi {
    let mut doc = ApiDoc::openapi();
    Exact(settings).modify(&mut doc);
    doc
}

/// The document as JSON, built once per distinct settings (a process usually has one server).
pub fn document(settings: &DocumentSettings) -> Arc<str> {
    static LAST: Mutex<Option<(DocumentSettings, Arc<str>)>> = Mutex::new(None);
    let mut last = LAST
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some((built_for, json)) = last.as_ref()
        && built_for == settings
    {
        return Arc::clone(json);
    }
    let json: Arc<str> = build(settings).to_json().unwrap_or_default().into();
    *last = Some((settings.clone(), Arc::clone(&json)));
    json
}

/// This OpenAPI 3.1 document.
#[utoipa::path(get, path = "/api/openapi.json", tag = "session",
    responses((status = 200, description = "this OpenAPI 3.1 document", content_type = "application/json")))]
pub async fn serve(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .body(document(&DocumentSettings::of(&state)).to_string())
}

/// `/docs`: Swagger UI with its assets compiled in.
pub fn docs() -> SwaggerUi {
    SwaggerUi::new("/docs/{_:.*}").config(Config::from("/api/openapi.json"))
}

/// `/docs` without the slash.
pub async fn docs_redirect() -> HttpResponse {
    HttpResponse::Found()
        .insert_header(("Location", "/docs/"))
        .finish()
}

// ---------------------------------------------------------------------------------------------
// Making the document exact

/// Completes the generated document from the server's rules (see the module's doc).
struct Exact<'a>(&'a DocumentSettings);

impl Modify for Exact<'_> {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        let settings = self.0;
        let limits = &settings.limits;
        if let Some(components) = doc.components.as_mut() {
            let schemas = &mut components.schemas;
            let name = trimmed_text(limits.project_name_chars, "");
            constrain(schemas, "CreateProject", "name", |s| {
                s.pattern = Some(name.clone())
            });
            constrain(schemas, "UpdateProject", "name", |s| {
                s.pattern = Some(name.clone())
            });
            let description = description_text(limits.description_chars);
            for schema in ["CreateProject", "UpdateProject"] {
                constrain(schemas, schema, "description", |s| {
                    s.pattern = Some(description.clone());
                });
            }
            constrain(schemas, "CreatePrompt", "content", |s| {
                non_blank(s, limits.prompt_chars);
            });
            constrain(schemas, "SendMessage", "content", |s| {
                non_blank(s, limits.message_chars);
            });
            // At most 10 attachments, none twice (422 `validation_failed` otherwise).
            if let Some(RefOr::T(Schema::Object(object))) = schemas.get_mut("SendMessage")
                && let Some(RefOr::T(Schema::Array(files))) = object.properties.get_mut("file_ids")
            {
                files.max_items = Some(confab_core::chat::MAX_ATTACHMENTS);
                files.unique_items = true;
            }
            let title = optional_trimmed_text(limits.title_chars, CONTROL);
            for schema in ["CreateConversation", "UpdateConversation"] {
                constrain(schemas, schema, "title", |s| {
                    s.pattern = Some(title.clone())
                });
            }
            if !settings.models.is_empty() {
                // A conversation's model is one of this server's, or null for the default.
                let mut models: Vec<serde_json::Value> =
                    settings.models.iter().map(|m| m.as_str().into()).collect();
                models.push(serde_json::Value::Null);
                constrain(schemas, "UpdateConversation", "model", |s| {
                    s.enum_values = Some(models);
                });
            }
            // A project's knowledge language is one of the list (422 otherwise); null: unchanged.
            let mut languages: Vec<serde_json::Value> =
                api::KNOWLEDGE_LANGUAGES.iter().map(|&l| l.into()).collect();
            languages.push(serde_json::Value::Null);
            constrain(schemas, "UpdateProject", "language", |s| {
                s.enum_values = Some(languages);
            });
            let max = confab_auth::dev::MAX_USERNAME_CHARS;
            constrain(schemas, "DevLogin", "username", |s| {
                s.min_length = Some(1);
                s.max_length = Some(max);
                s.pattern = Some(format!("^[A-Za-z0-9._-]{{1,{max}}}$"));
            });
            // A time as the server writes them (RFC 3339 in UTC): every match parses, and a
            // schema-valid body is never 422 for it (other RFC 3339 forms are accepted too).
            constrain(schemas, "ReadActivity", "up_to", |s| {
                s.pattern = Some(
                    r"^[1-9][0-9]{3}-(0[1-9]|1[0-2])-(0[1-9]|1[0-9]|2[0-8])T([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](\.[0-9]{1,9})?Z$"
                        .to_owned(),
                );
            });
            // Unknown properties of a request body are ignored (serde's default).
            for schema in [
                "CreateProject",
                "UpdateProject",
                "CreatePrompt",
                "CreateConversation",
                "UpdateConversation",
                "SendMessage",
                "ChooseLeaf",
                "DevLogin",
                "UploadForm",
                "ReadActivity",
            ] {
                if let Some(RefOr::T(Schema::Object(object))) = schemas.get_mut(schema) {
                    object.additional_properties =
                        Some(Box::new(AdditionalProperties::FreeForm(true)));
                }
            }
            // A form's field names travel quoted in a part's headers, which refuse control
            // characters; a quote or a backslash would have to be escaped, which clients
            // do differently, and a trailing backslash leaves the name unterminated.
            if let Some(RefOr::T(Schema::Object(object))) = schemas.get_mut("UploadForm") {
                object.property_names = Some(Box::new(Schema::Object(
                    ObjectBuilder::new()
                        .schema_type(Type::String)
                        .pattern(Some(r#"^[^\x00-\x08\x0A-\x1F\x7F"\\]*$"#))
                        .build(),
                )));
            }
        }
        for (path, item) in &mut doc.paths.paths {
            for operation in [
                item.get.as_mut(),
                item.post.as_mut(),
                item.patch.as_mut(),
                item.delete.as_mut(),
                item.put.as_mut(),
            ]
            .into_iter()
            .flatten()
            {
                page_parameters(path, operation);
                usage_grouping(path, operation);
                optional_body(operation);
                error_answers(operation, settings);
                stream_events(operation);
            }
        }
    }
}

/// Changes one property of a component schema; a missing one fails the document's tests.
fn constrain(
    schemas: &mut BTreeMap<String, RefOr<Schema>>,
    schema: &str,
    property: &str,
    change: impl FnOnce(&mut Object),
) {
    if let Some(RefOr::T(Schema::Object(object))) = schemas.get_mut(schema)
        && let Some(RefOr::T(Schema::Object(field))) = object.properties.get_mut(property)
    {
        change(field);
    }
}

/// Text kept as given: 1..=`max` characters, not only white space.
fn non_blank(schema: &mut Object, max: usize) {
    schema.min_length = Some(1);
    schema.max_length = Some(max);
    schema.pattern = Some(format!("[^{WHITE_SPACE}]"));
}

/// The core of a trimmed value: 1..=`max` characters that start and end with neither white
/// space nor a character of `forbidden`, and hold none of `forbidden`.
fn trimmed_core(max: usize, forbidden: &str) -> String {
    let edge = format!("[^{WHITE_SPACE}{forbidden}]");
    let inner = if forbidden.is_empty() {
        r"[\s\S]".to_owned()
    } else {
        format!("[^{forbidden}]")
    };
    match max {
        0 | 1 => edge,
        _ => format!("{edge}(?:{inner}{{0,{}}}{edge})?", max - 2),
    }
}

/// A value that is trimmed before it is checked: 1..=`max` characters once trimmed.
fn trimmed_text(max: usize, forbidden: &str) -> String {
    format!(
        "^[{WHITE_SPACE}]*{}[{WHITE_SPACE}]*$",
        trimmed_core(max, forbidden)
    )
}

/// A trimmed value that may be empty (then it means none): 0..=`max` characters once trimmed.
fn optional_trimmed_text(max: usize, forbidden: &str) -> String {
    if max == 0 {
        return format!("^[{WHITE_SPACE}]*$");
    }
    format!(
        "^[{WHITE_SPACE}]*(?:{})?[{WHITE_SPACE}]*$",
        trimmed_core(max, forbidden)
    )
}

/// A description: blank (any length, then it means none) or at most `max` characters.
fn description_text(max: usize) -> String {
    format!(r"^(?:[{WHITE_SPACE}]*|[\s\S]{{0,{max}}})$")
}

/// `limit` and `cursor` of a list: the bounds of [`PageLimit`] and the format of the cursor
/// this list hands out (`confab_core::cursor`).
fn page_parameters(path: &str, operation: &mut Operation) {
    // Plain digits up to a bound of all nines: at most that many digits after leading zeros.
    let number = |max: u64| format!("0*[0-9]{{1,{}}}", max.to_string().len());
    let cursor = if path.ends_with("/prompts") {
        // A prompt version.
        format!(r"v\.{}", number(cursor::MAX_VERSION.into()))
    } else if path.ends_with("/conversations") {
        // When it was updated (microseconds since the epoch) and the id.
        format!(r"t\.{}\.{UUID_TEXT}", number(cursor::MAX_TIME_MICROS))
    } else if path.ends_with("/search") {
        // The score (an f64's bits in hex), the time (microseconds) and the id.
        format!(
            r"r\.[0-9a-fA-F]{{16}}\.{}\.{UUID_TEXT}",
            number(cursor::MAX_TIME_MICROS)
        )
    } else if path.ends_with("/messages") {
        // The branch's leaf and the last message read, or (before branches) only the latter.
        format!(r"b\.{UUID_TEXT}\.{UUID_TEXT}|i\.{UUID_TEXT}")
    } else {
        // An id.
        format!(r"i\.{UUID_TEXT}")
    };
    for parameter in operation.parameters.iter_mut().flatten() {
        if parameter.parameter_in != ParameterIn::Query {
            continue;
        }
        match parameter.name.as_str() {
            "limit" => {
                parameter.description = Some(format!(
                    "How many items the page holds: {}–{}, default {}.",
                    PageLimit::MIN,
                    PageLimit::MAX,
                    PageLimit::DEFAULT
                ));
                parameter.schema = Some(RefOr::T(Schema::Object(
                    ObjectBuilder::new()
                        .schema_type(Type::Integer)
                        .minimum(Some(PageLimit::MIN))
                        .maximum(Some(PageLimit::MAX))
                        .default(Some(json!(PageLimit::DEFAULT)))
                        .build(),
                )));
            }
            "q" => {
                let mut schema = ObjectBuilder::new().schema_type(Type::String).build();
                non_blank(&mut schema, confab_core::search::MAX_QUERY_CHARS);
                parameter.schema = Some(RefOr::T(Schema::Object(schema)));
            }
            "cursor" => {
                parameter.description = Some(
                    "The `next_cursor` of the previous page; empty or absent for the first page."
                        .to_owned(),
                );
                parameter.schema = Some(RefOr::T(Schema::Object(
                    ObjectBuilder::new()
                        .schema_type(Type::String)
                        .pattern(Some(format!("^(?:{cursor})?$")))
                        .build(),
                )));
            }
            _ => {}
        }
    }
}

/// `group_by` of a usage report: exactly the groupings its route answers (422 otherwise).
fn usage_grouping(path: &str, operation: &mut Operation) {
    let allowed: &[&str] = match path {
        "/api/usage" => crate::routes::usage::MY_GROUPINGS,
        "/api/admin/usage" => crate::routes::usage::ADMIN_GROUPINGS,
        _ => return,
    };
    for parameter in operation.parameters.iter_mut().flatten() {
        if parameter.name == "group_by" {
            parameter.schema = Some(RefOr::T(Schema::Object(
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .enum_values(Some(allowed.iter().copied()))
                    .default(Some(json!(allowed[0])))
                    .build(),
            )));
        }
    }
}

/// A body whose fields are all optional may be left out (`request_body = Option<T>`, not
/// required), which utoipa also spells as `null` being allowed; the server reads an empty body
/// as `{}` but refuses a JSON `null`.
fn optional_body(operation: &mut Operation) {
    let Some(body) = operation.request_body.as_mut() else {
        return;
    };
    for content in body.content.values_mut() {
        if let Some(RefOr::T(Schema::OneOf(one_of))) = content.schema.as_ref() {
            let not_null: Vec<&RefOr<Schema>> = one_of
                .items
                .iter()
                .filter(|item| {
                    !matches!(item, RefOr::T(Schema::Object(o)) if o.schema_type == SchemaType::Type(Type::Null))
                })
                .collect();
            if let [only] = not_null[..] {
                content.schema = Some(only.clone());
            }
        }
    }
}

/// The event of a chat stream, as each `text/event-stream` answer's schema (OpenAPI 3.1 has
/// `schema` describe one event): its name, its number and one line of JSON in `data`.
fn stream_events(operation: &mut Operation) {
    use api::events;
    let kinds = [
        (events::USER_MESSAGE, "Message"),
        (events::ASSISTANT_MESSAGE, "Message"),
        (events::DELTA, "Delta"),
        (events::DONE, "Message"),
        (events::ERROR, "StreamError"),
        (events::TITLE, "TitleEvent"),
    ];
    let event = |name: &str, data_schema: &str| {
        let mut data = ObjectBuilder::new()
            .schema_type(Type::String)
            .content_media_type("application/json")
            .build();
        data.extensions = Some(Extensions::from_iter([(
            "contentSchema",
            json!({ "$ref": format!("#/components/schemas/{data_schema}") }),
        )]));
        ObjectBuilder::new()
            .schema_type(Type::Object)
            .property(
                "event",
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .enum_values(Some([name])),
            )
            .property(
                "id",
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .pattern(Some("^[1-9][0-9]*$")),
            )
            .property("data", data)
            .required("event")
            .required("id")
            .required("data")
            .build()
    };
    let one_of = kinds
        .iter()
        .fold(OneOfBuilder::new(), |one_of, (name, data)| {
            one_of.item(event(name, data))
        })
        .description(Some(
            "One event of the chat stream: `user_message`, `assistant_message`, `delta`…, then \
             `done` or `error`; after the `done` of an untitled conversation's first reply, \
             its `title`."
                .to_owned(),
        ))
        .build();
    for response in operation.responses.responses.values_mut() {
        if let RefOr::T(response) = response
            && let Some(content) = response.content.get_mut("text/event-stream")
        {
            content.schema = Some(RefOr::T(Schema::OneOf(one_of.clone())));
        }
    }
}

/// The error answers an operation can give, from its shape, all as problem+json.
fn error_answers(operation: &mut Operation, settings: &DocumentSettings) {
    let protected = operation
        .security
        .as_ref()
        .is_some_and(|requirements| !requirements.is_empty());
    let parameters = operation.parameters.as_deref().unwrap_or_default();
    let has_path = parameters
        .iter()
        .any(|p| p.parameter_in == ParameterIn::Path);
    let pages = parameters
        .iter()
        .any(|p| p.parameter_in == ParameterIn::Query && p.name == "limit");
    let body_types: Vec<String> = operation
        .request_body
        .as_ref()
        .map(|body| body.content.keys().cloned().collect())
        .unwrap_or_default();
    let json_body = body_types.iter().any(|t| t == "application/json");
    let has_body = !body_types.is_empty();

    let mut wanted: Vec<(u16, String)> = Vec::new();
    if protected {
        wanted.push((
            401,
            "No, a malformed, an expired or an untrusted bearer token.".into(),
        ));
        wanted.push((
            503,
            "The database or the identity provider cannot be reached; try again shortly.".into(),
        ));
    }
    if has_path {
        wanted.push((400, "A path parameter is not a UUID.".into()));
        wanted.push((
            404,
            "No such resource, or it belongs to someone else.".into(),
        ));
    }
    if pages {
        wanted.push((
            400,
            "`limit` is not a whole number, or `cursor` is not one this list handed out.".into(),
        ));
        wanted.push((422, "`limit` is out of range.".into()));
    }
    if json_body {
        wanted.push((400, "The body is not JSON.".into()));
        wanted.push((
            413,
            format!("The body is larger than {} bytes.", settings.max_json_bytes),
        ));
        wanted.push((
            415,
            "The `Content-Type` is not JSON (`application/json` or `application/*+json`).".into(),
        ));
        wanted.push((
            422,
            "The body is JSON, but not an object with valid fields.".into(),
        ));
    } else if has_body {
        wanted.push((
            413,
            format!(
                "The file is larger than {} bytes.",
                settings.limits.upload_bytes
            ),
        ));
    }
    let responses = &mut operation.responses.responses;
    for (status, description) in wanted {
        let entry = responses
            .entry(status.to_string())
            .or_insert_with(|| RefOr::T(Response::new(String::new())));
        if let RefOr::T(response) = entry {
            if response.description.is_empty() {
                response.description = description;
            } else if !response.description.contains(&description) {
                response.description = format!("{} {description}", response.description);
            }
        }
    }
    for (status, response) in responses.iter_mut() {
        let Ok(status) = status.parse::<u16>() else {
            continue;
        };
        let RefOr::T(response) = response else {
            continue;
        };
        if status >= 400 {
            *response = problem(status, std::mem::take(&mut response.description), settings);
        }
    }
}

/// A problem+json answer with the headers that come with its status.
fn problem(status: u16, description: String, settings: &DocumentSettings) -> Response {
    let description = if description.is_empty() {
        default_description(status).to_owned()
    } else {
        description
    };
    let mut builder = ResponseBuilder::new().description(description).content(
        PROBLEM_JSON,
        ContentBuilder::new()
            .schema(Some(Ref::from_schema_name("Problem")))
            .build(),
    );
    let retry_after = |description: &str| {
        HeaderBuilder::new()
            .schema(
                ObjectBuilder::new()
                    .schema_type(Type::Integer)
                    .minimum(Some(1))
                    .maximum(Some(60)),
            )
            .description(Some(description.to_owned()))
            .build()
    };
    match status {
        401 => {
            builder = builder.header(
                "WWW-Authenticate",
                HeaderBuilder::new()
                    .schema(ObjectBuilder::new().schema_type(Type::String))
                    .description(Some("`Bearer`".to_owned()))
                    .build(),
            );
        }
        429 => {
            builder = builder.header(
                "Retry-After",
                retry_after(&format!(
                    "Seconds until a send is accepted again (at most {} sends a minute); with `quota_exceeded` (a user's daily or monthly tokens, `CONFAB_QUOTA_TOKENS_PER_*` or their own), seconds until the quota resets when that is within a day, at most 60 (a client that comes back sooner is told again; the detail names the reset time).",
                    settings.sends_per_minute
                )),
            );
        }
        503 => {
            builder = builder.header("Retry-After", retry_after("Seconds to wait."));
        }
        _ => {}
    }
    builder.build()
}

fn default_description(status: u16) -> &'static str {
    match status {
        400 => "Malformed request.",
        401 => "Not signed in.",
        404 => "Not found.",
        409 => "Conflict with the current state.",
        413 => "The body is too large.",
        415 => "Wrong `Content-Type`.",
        422 => "Invalid fields.",
        429 => {
            "Too many requests (`rate_limited`), or the user's token quota is used (`quota_exceeded`, nothing stored; the detail says which limit and when it resets)."
        }
        503 => "A dependency is unavailable.",
        _ => "Error.",
    }
}

#[cfg(test)]
mod tests {
    use confab_core::values::{self, MessageContent, ProjectName, PromptContent, Title};
    use serde_json::Value;

    use super::*;

    fn doc() -> Value {
        serde_json::from_str(&build(&DocumentSettings::default()).to_json().unwrap()).unwrap()
    }

    /// A JSON Schema string's `minLength`, `maxLength` (in Unicode scalar values) and `pattern`
    /// (unanchored, as JSON Schema reads it), compiled once.
    struct StringRule {
        min: u64,
        max: u64,
        pattern: Option<regex::Regex>,
    }

    impl StringRule {
        fn of(schema: &Value) -> Self {
            Self {
                min: schema["minLength"].as_u64().unwrap_or(0),
                max: schema["maxLength"].as_u64().unwrap_or(u64::MAX),
                pattern: schema["pattern"]
                    .as_str()
                    .map(|p| regex::Regex::new(p).unwrap()),
            }
        }

        fn admits(&self, value: &str) -> bool {
            let length = value.chars().count() as u64;
            length >= self.min
                && length <= self.max
                && self.pattern.as_ref().is_none_or(|p| p.is_match(value))
        }
    }

    /// Every string of up to three characters of an alphabet of edge cases (white space that
    /// is and is not a control character, controls, characters other dialects call space),
    /// and long ones around each limit.
    fn samples(limits: &Limits) -> Vec<String> {
        let alphabet = [
            "a", "é", " ", "\t", "\n", "\u{1}", "\u{1c}", "\u{7f}", "\u{85}", "\u{a0}", "\u{2028}",
            "\u{feff}", "\u{3000}", "😀",
        ];
        let mut out = vec![String::new()];
        let mut last = vec![String::new()];
        for _ in 0..3 {
            let next: Vec<String> = last
                .iter()
                .flat_map(|s| alphabet.iter().map(move |c| format!("{s}{c}")))
                .collect();
            out.extend(next.iter().cloned());
            last = next;
        }
        for n in [
            limits.project_name_chars,
            limits.description_chars,
            limits.title_chars,
            64,
        ] {
            for len in [n - 1, n, n + 1] {
                out.push("é".repeat(len));
                out.push(format!(" {} ", "a".repeat(len)));
                out.push(format!("a{}a", " ".repeat(len)));
                out.push(format!("a{}a", "\t".repeat(len)));
                out.push(" ".repeat(len + 3));
            }
        }
        out
    }

    fn property<'a>(doc: &'a Value, schema: &str, property: &str) -> &'a Value {
        let found = &doc["components"]["schemas"][schema]["properties"][property];
        assert!(
            found.is_object(),
            "{schema}.{property} is not in the document"
        );
        found
    }

    #[test]
    fn text_fields_accept_exactly_what_the_server_accepts() {
        let doc = doc();
        let limits = Limits::default();
        type Rule = Box<dyn Fn(&str) -> bool>;
        let rules: Vec<(&str, &str, Rule)> = vec![
            (
                "CreateProject",
                "name",
                Box::new(move |s| ProjectName::new(s, &limits).is_ok()),
            ),
            (
                "UpdateProject",
                "name",
                Box::new(move |s| ProjectName::new(s, &limits).is_ok()),
            ),
            (
                "CreateProject",
                "description",
                Box::new(move |s| values::description(Some(s), &limits).is_ok()),
            ),
            (
                "UpdateProject",
                "description",
                Box::new(move |s| values::description(Some(s), &limits).is_ok()),
            ),
            (
                "CreatePrompt",
                "content",
                Box::new(move |s| PromptContent::new(s, &limits).is_ok()),
            ),
            (
                "SendMessage",
                "content",
                Box::new(move |s| MessageContent::new(s, &limits).is_ok()),
            ),
            (
                "CreateConversation",
                "title",
                Box::new(move |s| Title::new(Some(s), &limits).is_ok()),
            ),
            (
                "UpdateConversation",
                "title",
                Box::new(move |s| Title::new(Some(s), &limits).is_ok()),
            ),
            (
                "DevLogin",
                "username",
                Box::new(|s| confab_auth::validate_username(s).is_ok()),
            ),
        ];
        let samples = samples(&limits);
        for (schema, field, accepts) in &rules {
            let declared = property(&doc, schema, field);
            let rule = StringRule::of(declared);
            for sample in &samples {
                assert_eq!(
                    rule.admits(sample),
                    accepts(sample),
                    "{schema}.{field} and the server disagree on {sample:?} (schema: {declared})"
                );
            }
        }
    }

    #[test]
    fn page_parameters_state_the_bounds_and_cursor_formats_of_the_server() {
        // The patterns bound cursor numbers by their count of digits: exact for all nines.
        for max in [cursor::MAX_TIME_MICROS, cursor::MAX_VERSION.into()] {
            assert!(max.to_string().bytes().all(|b| b == b'9'), "{max}");
        }
        let doc = doc();
        let id = uuid::Uuid::now_v7();
        let cursors = [
            ("/api/projects", confab_core::cursor::encode_id(id)),
            (
                "/api/projects/{project_id}/files",
                confab_core::cursor::encode_id(id),
            ),
            (
                "/api/conversations/{conversation_id}/messages",
                confab_core::cursor::encode_id(id),
            ),
            (
                "/api/projects/{project_id}/prompts",
                confab_core::cursor::encode_version(7),
            ),
            (
                "/api/projects/{project_id}/conversations",
                confab_core::cursor::encode_time_id(confab_core::model::now(), id),
            ),
        ];
        for (path, cursor) in cursors {
            let parameters = doc["paths"][path]["get"]["parameters"].as_array().unwrap();
            let find = |name: &str| {
                parameters
                    .iter()
                    .find(|p| p["name"] == name)
                    .unwrap_or_else(|| panic!("{path} has no {name}"))
            };
            let limit = &find("limit")["schema"];
            assert_eq!(limit["minimum"], PageLimit::MIN, "{path}");
            assert_eq!(limit["maximum"], PageLimit::MAX, "{path}");
            let pattern = find("cursor")["schema"]["pattern"].as_str().unwrap();
            let pattern = regex::Regex::new(pattern).unwrap();
            assert!(pattern.is_match(&cursor), "{path}: {cursor}");
            assert!(
                pattern.is_match(""),
                "{path}: an empty cursor is the first page"
            );
            assert!(!pattern.is_match("x"), "{path}");
        }
    }

    #[test]
    fn every_error_answer_is_problem_json_and_extractor_statuses_are_documented() {
        let doc = doc();
        for (path, item) in doc["paths"].as_object().unwrap() {
            for (method, operation) in item.as_object().unwrap() {
                let label = format!("{method} {path}");
                let responses = operation["responses"].as_object().unwrap();
                for (status, response) in responses {
                    if status.as_str() >= "400" {
                        let content = response["content"].as_object().unwrap();
                        assert_eq!(
                            content.keys().collect::<Vec<_>>(),
                            [PROBLEM_JSON],
                            "{label} {status}"
                        );
                    }
                }
                let has = |status: &str| responses.contains_key(status);
                if operation.get("security").is_some() {
                    assert!(has("401") && has("503"), "{label}");
                    assert!(
                        responses["401"]["headers"]
                            .get("WWW-Authenticate")
                            .is_some(),
                        "{label}"
                    );
                }
                if path.contains('{') {
                    assert!(has("400") && has("404"), "{label}");
                }
                if operation["requestBody"]["content"]
                    .get("application/json")
                    .is_some()
                {
                    for status in ["400", "413", "415", "422"] {
                        assert!(has(status), "{label} {status}");
                    }
                }
            }
        }
    }

    #[test]
    fn request_bodies_ignore_unknown_properties_as_the_server_does() {
        let doc = doc();
        for schema in [
            "CreateProject",
            "UpdateProject",
            "SendMessage",
            "UploadForm",
        ] {
            assert_eq!(
                doc["components"]["schemas"][schema]["additionalProperties"], true,
                "{schema}"
            );
        }
        let upload: confab_api_types::CreateProject =
            serde_json::from_str(r#"{"name": "x", "unknown": 1}"#).unwrap();
        assert_eq!(upload.name, "x");
    }
}
