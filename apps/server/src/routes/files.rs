//! File uploads (streamed multipart), metadata, downloads and deletion.

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use bytes::Bytes;
use confab_api_types as api;
use confab_core::error::BlobError;
use confab_core::ports::ByteStream;
use confab_core::{FileId, ProjectId};
use futures::StreamExt;
use tokio::sync::mpsc;
use uuid::Uuid;

use crate::convert;
use crate::error::ApiError;
use crate::extract::{Authenticated, Paging};
use crate::state::AppState;

/// Room for the multipart framing around the file's bytes.
const MULTIPART_OVERHEAD: u64 = 64 * 1024;

/// Upload a file (`multipart/form-data`, field `file`). The content type is detected from the bytes.
#[utoipa::path(post, path = "/api/projects/{project_id}/files", tag = "files",
    params(("project_id" = Uuid, Path)),
    request_body(content = crate::openapi::UploadForm, content_type = "multipart/form-data", description = "a form with one field `file`"),
    responses((status = 201, body = api::FileInfo), (status = 400, body = api::Problem), (status = 401, body = api::Problem),
        (status = 404, body = api::Problem), (status = 413, body = api::Problem), (status = 415, body = api::Problem), (status = 422, body = api::Problem)),
    security(("bearer" = [])))]
pub async fn upload_file(
    Authenticated(principal): Authenticated,
    id: web::Path<Uuid>,
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let project_id = ProjectId::from_uuid(*id);
    let content_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_ascii_lowercase();
    if !content_type.starts_with("multipart/form-data") {
        return Err(ApiError::UnsupportedMediaType(
            "uploads must be multipart/form-data with a field named file".to_owned(),
        ));
    }
    let limit = state.files.max_bytes();
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|len| len > limit.saturating_add(MULTIPART_OVERHEAD)) {
        return Err(ApiError::PayloadTooLarge(format!(
            "the file is larger than the limit of {limit} bytes"
        )));
    }

    let mut form = actix_multipart::Multipart::new(req.headers(), payload);
    // The form's other fields share what the declared length allows beside the file, so a
    // chunked body cannot stream an endless field.
    let mut others = OtherFields::default();
    while let Some(field) = form.next().await {
        let field =
            field.map_err(|e| ApiError::BadRequest(format!("the form could not be read: {e}")))?;
        if field.name() != Some("file") {
            others.skip(field).await?;
            continue;
        }
        let mut field = field;
        let filename = field
            .content_disposition()
            .and_then(|cd| cd.get_filename())
            .unwrap_or("file")
            .to_owned();
        let (tx, rx) = mpsc::channel::<Result<Bytes, BlobError>>(4);
        let body: ByteStream = futures::stream::unfold(rx, |mut rx| async move {
            rx.recv().await.map(|item| (item, rx))
        })
        .boxed();
        let pump = async move {
            while let Some(chunk) = field.next().await {
                let item = chunk
                    .map_err(|e| BlobError::Aborted(format!("the upload was interrupted: {e}")));
                let failed = item.is_err();
                if tx.send(item).await.is_err() || failed {
                    break;
                }
            }
        };
        let upload = state.files.upload(&principal, project_id, &filename, body);
        let (stored, ()) = futures::join!(upload, pump);
        let stored = stored?;
        // The form is answered as a whole: a malformed or second `file` part after the file
        // undoes the upload, exactly as it would have refused it before.
        if let Err(refused) = others.read_rest(&mut form).await {
            state.files.delete(&principal, stored.id).await?;
            return Err(refused);
        }
        crate::texts::read_in_background(state.files.clone(), stored.clone());
        return Ok(HttpResponse::Created().json(convert::file(stored)));
    }
    Err(ApiError::Validation(
        "the form has no field named file".to_owned(),
    ))
}

/// The bytes of a form's fields other than `file`, bounded by [`MULTIPART_OVERHEAD`].
#[derive(Default)]
struct OtherFields {
    read: u64,
}

impl OtherFields {
    /// Reads a field that is not the file, counting its bytes.
    async fn skip(&mut self, mut field: actix_multipart::Field) -> Result<(), ApiError> {
        while let Some(chunk) = field.next().await {
            let chunk = chunk.map_err(unreadable)?;
            self.read = self.read.saturating_add(chunk.len() as u64);
            if self.read > MULTIPART_OVERHEAD {
                return Err(ApiError::PayloadTooLarge(format!(
                    "the form's fields besides the file are larger than {MULTIPART_OVERHEAD} bytes"
                )));
            }
        }
        Ok(())
    }

    /// Reads the parts of a form after its file: each must be well formed, none another
    /// `file`, all within the bound.
    async fn read_rest(&mut self, form: &mut actix_multipart::Multipart) -> Result<(), ApiError> {
        while let Some(field) = form.next().await {
            let field = field.map_err(unreadable)?;
            if field.name() == Some("file") {
                return Err(ApiError::Validation(
                    "the form has more than one field named file".to_owned(),
                ));
            }
            self.skip(field).await?;
        }
        Ok(())
    }
}

fn unreadable(e: actix_multipart::MultipartError) -> ApiError {
    ApiError::BadRequest(format!("the form could not be read: {e}"))
}

/// A project's files, newest first.
#[utoipa::path(get, path = "/api/projects/{project_id}/files", tag = "files",
    params(("project_id" = Uuid, Path), ("limit" = Option<u32>, Query), ("cursor" = Option<String>, Query)),
    responses((status = 200, body = api::Page<api::FileInfo>), (status = 401, body = api::Problem), (status = 404, body = api::Problem)),
    security(("bearer" = [])))]
pub async fn list_files(
    Authenticated(principal): Authenticated,
    id: web::Path<Uuid>,
    Paging(page): Paging,
    state: web::Data<AppState>,
) -> Result<web::Json<api::Page<api::FileInfo>>, ApiError> {
    let page = state
        .files
        .list(&principal, ProjectId::from_uuid(*id), &page)
        .await?;
    Ok(web::Json(convert::page(page, convert::file)))
}

/// A file's metadata.
#[utoipa::path(get, path = "/api/files/{file_id}", tag = "files",
    params(("file_id" = Uuid, Path)),
    responses((status = 200, body = api::FileInfo), (status = 401, body = api::Problem), (status = 404, body = api::Problem)),
    security(("bearer" = [])))]
pub async fn get_file(
    Authenticated(principal): Authenticated,
    id: web::Path<Uuid>,
    state: web::Data<AppState>,
) -> Result<web::Json<api::FileInfo>, ApiError> {
    let meta = state.files.get(&principal, FileId::from_uuid(*id)).await?;
    Ok(web::Json(convert::file(meta)))
}

/// Delete a file: metadata and bytes.
#[utoipa::path(delete, path = "/api/files/{file_id}", tag = "files",
    params(("file_id" = Uuid, Path)),
    responses((status = 204), (status = 401, body = api::Problem), (status = 404, body = api::Problem)),
    security(("bearer" = [])))]
pub async fn delete_file(
    Authenticated(principal): Authenticated,
    id: web::Path<Uuid>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    state
        .files
        .delete(&principal, FileId::from_uuid(*id))
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Download a file's bytes, as an attachment.
#[utoipa::path(get, path = "/api/files/{file_id}/content", tag = "files",
    params(("file_id" = Uuid, Path)),
    responses((status = 200, description = "the bytes, with the type detected at upload", content_type = "*/*", body = String),
        (status = 401, body = api::Problem), (status = 404, body = api::Problem)),
    security(("bearer" = [])))]
pub async fn download_file(
    Authenticated(principal): Authenticated,
    id: web::Path<Uuid>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let (meta, bytes) = state
        .files
        .download(&principal, FileId::from_uuid(*id))
        .await?;
    let body = bytes
        .map(|chunk| chunk.map_err(|e| actix_web::error::ErrorInternalServerError(e.to_string())));
    Ok(HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, meta.content_type.as_str()))
        .insert_header((
            header::CONTENT_DISPOSITION,
            content_disposition(&meta.filename),
        ))
        .insert_header(("X-Content-Type-Options", "nosniff"))
        .insert_header(("Content-Security-Policy", "sandbox; default-src 'none'"))
        .insert_header((header::CACHE_CONTROL, "private, no-store"))
        .no_chunking(meta.size_bytes)
        .streaming(body))
}

/// `attachment; filename="<ascii>"; filename*=UTF-8''<percent-encoded>` (RFC 6266).
#[must_use]
pub fn content_disposition(filename: &str) -> String {
    let ascii: String = filename
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() && c != '"' && c != '\\' || c == ' ' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let mut encoded = String::new();
    for byte in filename.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            encoded.push(char::from(byte));
        } else {
            encoded.push_str(&format!("%{byte:02X}"));
        }
    }
    format!("attachment; filename=\"{ascii}\"; filename*=UTF-8''{encoded}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dispositions_carry_an_ascii_fallback_and_the_utf8_name() {
        assert_eq!(
            content_disposition("report 1.pdf"),
            "attachment; filename=\"report 1.pdf\"; filename*=UTF-8''report%201.pdf"
        );
        assert_eq!(
            content_disposition("résumé\".txt"),
            "attachment; filename=\"r_sum__.txt\"; filename*=UTF-8''r%C3%A9sum%C3%A9%22.txt"
        );
    }
}
