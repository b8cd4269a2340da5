//! The OpenAPI 3.1 document, generated from the handlers, and offline interactive docs.

use actix_web::HttpResponse;
use confab_api_types as api;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_swagger_ui::{Config, SwaggerUi};

use crate::routes::{chat, files, ops, projects};

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
        projects::list_messages, chat::send_message, chat::cancel,
        files::upload_file, files::list_files, files::get_file, files::delete_file, files::download_file,
    ),
    components(schemas(
        api::Project, api::Prompt, api::Conversation, api::Message, api::FileInfo, api::Usage, api::Role, api::MessageStatus,
        api::CreateProject, api::UpdateProject, api::CreatePrompt, api::CreateConversation, api::UpdateConversation,
        api::SendMessage, api::DevLogin, api::DevToken, api::Me, api::ClientConfig, api::AuthConfig, api::LlmConfig,
        api::LimitsConfig, api::Problem, api::Delta, api::StreamError,
    )),
    tags(
        (name = "session", description = "Sign-in and client settings"),
        (name = "projects"), (name = "prompts"), (name = "conversations"),
        (name = "messages", description = "History and the chat stream"),
        (name = "files"),
    )
)]
pub struct ApiDoc;

/// The document, built once.
pub fn document() -> &'static str {
    static DOC: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DOC.get_or_init(|| ApiDoc::openapi().to_json().unwrap_or_default())
}

/// This OpenAPI 3.1 document.
#[utoipa::path(get, path = "/api/openapi.json", tag = "session",
    responses((status = 200, description = "this OpenAPI 3.1 document", content_type = "application/json")))]
pub async fn serve() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .body(document())
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
