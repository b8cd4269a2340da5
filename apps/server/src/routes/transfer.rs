//! Export and import (issue 18): `GET /api/conversations/{id}/export?format=markdown|json`,
//! `GET /api/export` (the whole account as a zip, streamed as it is written) and
//! `POST /api/projects/{id}/import` (a Confab export or ChatGPT's `conversations.json`).

use std::io::Write as _;

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use bytes::Bytes;
use confab_api_types::{self as api, ImportCounts, ImportReport, ImportSkip};
use confab_core::ids::{ConversationId, ProjectId};
use confab_core::model::{NewPrompt, Principal};
use confab_core::transfer::{ImportConversation, ImportOutcome};
use futures::StreamExt as _;
use serde::Deserialize;
use tokio::sync::mpsc;
use uuid::Uuid;

use crate::convert;
use crate::error::ApiError;
use crate::extract::Authenticated;
use crate::routes::files::content_disposition;
use crate::state::AppState;
use crate::transfer::{self, Format, Item, ReadError, zip::ZipStream};

/// Room for the multipart framing around the file's bytes.
const MULTIPART_OVERHEAD: u64 = 64 * 1024;

/// The most skipped items listed one by one in an import's answer; the rest are counted.
const LISTED_SKIPS: usize = 1_000;

#[derive(Deserialize)]
struct ExportQuery {
    format: Option<api::ExportFormat>,
}

/// Export a conversation as a file download: `json` (the default; Confab's export format,
/// version 1, with every branch — see `ExportDocument`) or `markdown` (the shown branch).
#[utoipa::path(get, path = "/api/conversations/{conversation_id}/export", tag = "export",
    params(("conversation_id" = Uuid, Path),
        ("format" = Option<api::ExportFormat>, Query, description = "`json` (default) or `markdown`")),
    responses((status = 200, description = "the export, as an attachment named after the title",
            content((api::ExportDocument = "application/json"), (String = "text/markdown"))),
        (status = 400, body = api::Problem), (status = 401, body = api::Problem), (status = 404, body = api::Problem)),
    security(("bearer" = [])))]
pub async fn export_conversation(
    Authenticated(p): Authenticated,
    id: web::Path<Uuid>,
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let query = web::Query::<ExportQuery>::from_query(req.query_string())
        .map_err(|e| ApiError::BadRequest(format!("the query string is malformed: {e}")))?
        .into_inner();
    let markdown = query.format.unwrap_or_default() == api::ExportFormat::Markdown;
    let dump = state
        .transfer
        .conversation(&p, ConversationId::from_uuid(*id))
        .await?;
    let title = dump.conversation.title.clone();
    let (body, content_type, extension) = if markdown {
        (
            transfer::markdown(&dump).into_bytes(),
            "text/markdown; charset=utf-8",
            "md",
        )
    } else {
        let project = state
            .transfer
            .project(&p, dump.conversation.project_id)
            .await?;
        let prompts = state.transfer.prompts(&p, project.id).await?;
        let files = state
            .transfer
            .files_named(&p, &transfer::attached_files(&dump))
            .await?;
        let document = api::ExportDocument {
            confab_export: api::EXPORT_VERSION,
            exported_at: confab_core::model::now(),
            projects: vec![convert::project(project)],
            prompts: prompts.into_iter().map(convert::prompt).collect(),
            conversations: vec![transfer::export_conversation(dump)],
            files: files.into_iter().map(transfer::export_file).collect(),
        };
        let body = serde_json::to_vec_pretty(&document)
            .map_err(|e| ApiError::Internal(format!("an export could not be written: {e}")))?;
        (body, "application/json", "json")
    };
    Ok(HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, content_type))
        .insert_header((
            header::CONTENT_DISPOSITION,
            content_disposition(&transfer::download_name(title.as_deref(), extension)),
        ))
        .insert_header(("X-Content-Type-Options", "nosniff"))
        .insert_header((header::CACHE_CONTROL, "private, no-store"))
        .body(body))
}

/// Export the whole account as a zip: `export.json` (every project, prompt version,
/// conversation with every branch, and file's metadata; see `ExportDocument`) and each
/// file's bytes at `files/{id}/{filename}`. Streamed as it is written: the server holds a
/// piece at a time, whatever the account's size.
#[utoipa::path(get, path = "/api/export", tag = "export",
    responses((status = 200, description = "a zip archive", content_type = "application/zip", body = String),
        (status = 401, body = api::Problem)),
    security(("bearer" = [])))]
pub async fn export_account(
    Authenticated(p): Authenticated,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let (tx, rx) = mpsc::channel::<Result<Bytes, std::io::Error>>(4);
    let now = confab_core::model::now();
    let zip = ZipStream::new(tx.clone(), now);
    let producer = state.clone();
    actix_web::rt::spawn(async move {
        if let Err(e) = transfer::write_account(&producer, &p, zip).await {
            tracing::warn!(error = %e, "an account export stopped");
            // The archive is cut short: the client sees a failed download, not a valid zip.
            let _ = tx
                .send(Err(std::io::Error::other("the export failed")))
                .await;
        }
    });
    let body = futures::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    });
    let name = format!("confab-export-{}.zip", now.format("%Y-%m-%d"));
    Ok(HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, "application/zip"))
        .insert_header((header::CONTENT_DISPOSITION, content_disposition(&name)))
        .insert_header(("X-Content-Type-Options", "nosniff"))
        .insert_header((header::CACHE_CONTROL, "private, no-store"))
        .streaming(body))
}

/// Import a Confab export (its conversations go into this project; its prompt versions
/// too, when it has one project and this project has none) or ChatGPT's
/// `conversations.json` (every branch kept, `current_node` shown). `multipart/form-data`
/// with one field `file`, at most `CONFAB_IMPORT_MAX_BYTES` (413 beyond). A malformed file
/// is refused whole (422, naming where it broke) before anything is stored; each
/// conversation is stored in one transaction. Importing the same export again adds nothing:
/// its conversations are reported skipped, `already imported`.
#[utoipa::path(post, path = "/api/projects/{project_id}/import", tag = "export",
    params(("project_id" = Uuid, Path)),
    request_body(content = crate::openapi::UploadForm, content_type = "multipart/form-data", description = "a form with one field `file`: a Confab export (JSON) or ChatGPT's conversations.json"),
    responses((status = 200, body = api::ImportReport), (status = 400, body = api::Problem), (status = 401, body = api::Problem),
        (status = 404, body = api::Problem), (status = 413, body = api::Problem), (status = 415, body = api::Problem), (status = 422, body = api::Problem)),
    security(("bearer" = [])))]
pub async fn import(
    Authenticated(p): Authenticated,
    id: web::Path<Uuid>,
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<web::Json<ImportReport>, ApiError> {
    let project_id = ProjectId::from_uuid(*id);
    let content_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_ascii_lowercase();
    if !content_type.starts_with("multipart/form-data") {
        return Err(ApiError::UnsupportedMediaType(
            "an import must be multipart/form-data with a field named file".to_owned(),
        ));
    }
    let limit = state.import_max_bytes;
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|len| len > limit.saturating_add(MULTIPART_OVERHEAD)) {
        return Err(too_large(limit));
    }
    state.transfer.check_project(&p, project_id).await?;
    let file = receive(&req, payload, limit).await?;
    let (file, format) = run_blocking(move || validate(file)).await?;
    import_file(&state, &p, project_id, file, format)
        .await
        .map(web::Json)
}

fn too_large(limit: u64) -> ApiError {
    ApiError::PayloadTooLarge(format!(
        "the file is larger than the import limit of {limit} bytes"
    ))
}

/// Writes the form's `file` field to a temporary file (removed when dropped), counting
/// its bytes against `limit`.
async fn receive(
    req: &HttpRequest,
    payload: web::Payload,
    limit: u64,
) -> Result<std::fs::File, ApiError> {
    let mut form = actix_multipart::Multipart::new(req.headers(), payload);
    let unreadable = |e: actix_multipart::MultipartError| {
        ApiError::BadRequest(format!("the form could not be read: {e}"))
    };
    let io = |e: std::io::Error| ApiError::Internal(format!("the import's temporary file: {e}"));
    let mut skipped_bytes = 0_u64;
    while let Some(field) = form.next().await {
        let mut field = field.map_err(unreadable)?;
        if field.name() != Some("file") {
            while let Some(chunk) = field.next().await {
                skipped_bytes += chunk.map_err(unreadable)?.len() as u64;
                if skipped_bytes > MULTIPART_OVERHEAD {
                    return Err(ApiError::PayloadTooLarge(format!(
                        "the form's fields besides the file are larger than {MULTIPART_OVERHEAD} bytes"
                    )));
                }
            }
            continue;
        }
        let temp = run_blocking(move || tempfile::tempfile().map_err(io)).await?;
        let mut writer = std::io::BufWriter::with_capacity(256 * 1024, temp);
        let mut size = 0_u64;
        let mut pending: Vec<u8> = Vec::new();
        while let Some(chunk) = field.next().await {
            let chunk = chunk.map_err(unreadable)?;
            size += chunk.len() as u64;
            if size > limit {
                return Err(too_large(limit));
            }
            pending.extend_from_slice(&chunk);
            // Written on a blocking thread a few hundred KiB at a time.
            if pending.len() >= 256 * 1024 {
                let batch = std::mem::take(&mut pending);
                writer = run_blocking(move || {
                    writer.write_all(&batch).map_err(io)?;
                    Ok(writer)
                })
                .await?;
            }
        }
        if size == 0 {
            return Err(ApiError::Validation("the file is empty".to_owned()));
        }
        return run_blocking(move || {
            writer.write_all(&pending).map_err(io)?;
            writer.into_inner().map_err(|e| io(e.into_error()))
        })
        .await;
    }
    Err(ApiError::Validation(
        "the form has no field named file".to_owned(),
    ))
}

/// Runs blocking work (file I/O, parsing) off the async workers.
async fn run_blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    actix_web::rt::task::spawn_blocking(work)
        .await
        .map_err(|e| ApiError::Internal(format!("a blocking task failed: {e}")))?
}

fn read_error(e: ReadError) -> ApiError {
    match e {
        // Not the path first: the answer's detail is made a sentence (a capital first letter).
        ReadError::Malformed(where_) => {
            ApiError::Validation(format!("the file is not a valid export: {where_}"))
        }
        ReadError::Stopped => ApiError::Internal("an import's reader was stopped".to_owned()),
        ReadError::Io(e) => ApiError::Internal(format!("an import's file could not be read: {e}")),
    }
}

/// The first pass: reads the whole file and checks every conversation as it would be
/// stored, storing nothing. A malformed file is refused before anything is imported.
fn validate(mut file: std::fs::File) -> Result<(std::fs::File, Format), ApiError> {
    let format = transfer::read(&mut file, &mut |item: Item| {
        match &item {
            Item::Conversation {
                index,
                conversation: Some(conversation),
                ..
            } => transfer::check(*index, conversation).map_err(ReadError::Malformed)?,
            Item::Prompts { prompts, .. } => {
                for (i, prompt) in prompts.iter().enumerate() {
                    confab_core::values::PromptContent::new(
                        &prompt.content,
                        &confab_core::values::Limits::default(),
                    )
                    .map_err(|e| {
                        ReadError::Malformed(format!("prompts[{i}].{}: {}", e.field, e.message))
                    })?;
                }
            }
            Item::Conversation { .. } | Item::Files(_) => {}
        }
        Ok(())
    })
    .map_err(read_error)?;
    Ok((file, format))
}

/// The second pass: reads the file again on a blocking thread and imports each
/// conversation as it arrives, one transaction each.
async fn import_file(
    state: &AppState,
    principal: &Principal,
    project_id: ProjectId,
    mut file: std::fs::File,
    format: Format,
) -> Result<ImportReport, ApiError> {
    let (tx, mut rx) = mpsc::channel::<Item>(2);
    let reader = actix_web::rt::task::spawn_blocking(move || {
        transfer::read(&mut file, &mut |item: Item| {
            tx.blocking_send(item).map_err(|_| ReadError::Stopped)
        })
    });
    let mut report = Report::new(format);
    while let Some(item) = rx.recv().await {
        match item {
            Item::Prompts { projects, prompts } => {
                import_prompts(state, principal, project_id, projects, prompts, &mut report)
                    .await?;
            }
            Item::Files(0) => {}
            Item::Files(n) => report.skip(
                "files".to_owned(),
                format!("{n} file(s) not imported: an export's JSON has no file bytes"),
            ),
            Item::Conversation {
                index,
                conversation,
                skipped,
            } => {
                for s in skipped {
                    report.skip(s.what, s.why);
                }
                let Some(conversation) = conversation else {
                    continue;
                };
                import_one(
                    state,
                    principal,
                    project_id,
                    index,
                    &conversation,
                    &mut report,
                )
                .await?;
            }
        }
    }
    match reader.await {
        Ok(Ok(_)) => Ok(report.finish()),
        Ok(Err(e)) => Err(read_error(e)),
        Err(e) => Err(ApiError::Internal(format!(
            "an import's reader failed: {e}"
        ))),
    }
}

async fn import_one(
    state: &AppState,
    principal: &Principal,
    project_id: ProjectId,
    index: usize,
    conversation: &ImportConversation,
    report: &mut Report,
) -> Result<(), ApiError> {
    match state
        .transfer
        .import(principal, project_id, conversation)
        .await?
    {
        ImportOutcome::Imported => {
            report.counts.conversations += 1;
            report.counts.messages += conversation.messages.len() as u64;
        }
        ImportOutcome::AlreadyImported => report.skip(
            format!("conversations[{index}]"),
            "already imported".to_owned(),
        ),
    }
    Ok(())
}

/// A Confab export's prompt versions go into the project when the export has one project
/// and the project has no prompt yet (so a second import adds none).
async fn import_prompts(
    state: &AppState,
    principal: &Principal,
    project_id: ProjectId,
    projects: usize,
    prompts: Vec<api::Prompt>,
    report: &mut Report,
) -> Result<(), ApiError> {
    if prompts.is_empty() {
        return Ok(());
    }
    if projects != 1 {
        report.skip(
            "prompts".to_owned(),
            format!(
                "{} prompt version(s) not imported: the export has {projects} projects",
                prompts.len()
            ),
        );
        return Ok(());
    }
    if !state
        .prompts
        .list(principal, project_id, &Default::default())
        .await?
        .items
        .is_empty()
    {
        report.skip(
            "prompts".to_owned(),
            format!(
                "{} prompt version(s) not imported: this project has prompts already",
                prompts.len()
            ),
        );
        return Ok(());
    }
    let mut prompts = prompts;
    prompts.sort_by_key(|p| p.version);
    for prompt in prompts {
        state
            .transfer
            .import_prompt(
                principal,
                &NewPrompt {
                    id: confab_core::ids::PromptId::new(),
                    project_id,
                    content: prompt.content,
                    activate: prompt.is_active,
                    created_at: prompt.created_at,
                },
            )
            .await?;
        report.counts.prompts += 1;
    }
    Ok(())
}

/// An import's answer as it grows: the first [`LISTED_SKIPS`] skips listed, the rest counted.
struct Report {
    format: Format,
    counts: ImportCounts,
    skipped: Vec<ImportSkip>,
    unlisted: u64,
}

impl Report {
    fn new(format: Format) -> Self {
        Self {
            format,
            counts: ImportCounts::default(),
            skipped: Vec::new(),
            unlisted: 0,
        }
    }

    fn skip(&mut self, what: String, why: String) {
        if self.skipped.len() < LISTED_SKIPS {
            self.skipped.push(ImportSkip { what, why });
        } else {
            self.unlisted += 1;
        }
    }

    fn finish(mut self) -> ImportReport {
        if self.unlisted > 0 {
            self.skipped.push(ImportSkip {
                what: format!("{} more", self.unlisted),
                why: format!("only the first {LISTED_SKIPS} skipped items are listed"),
            });
        }
        ImportReport {
            format: self.format.as_str().to_owned(),
            imported: self.counts,
            skipped: self.skipped,
        }
    }
}
