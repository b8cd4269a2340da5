//! What a model receives of the files attached to the message it answers.
//!
//! PDFs and images (PNG, JPEG, WebP, GIF) are loaded as bytes, at most
//! [`MAX_ATTACHMENT_BYTES`] in all per send, in attachment order: a file that would pass the
//! bound is not loaded (the provider then gets its text, or its name). Every document with
//! extracted text (PDFs included, for providers that take no files) is loaded as text, which
//! counts against the context budget (`crate::budget`): a text that does not fit what is
//! left is cut with a visible note. Any file that cannot be read is named only; loading never
//! fails a send.

use std::sync::Arc;

use futures::StreamExt;

use crate::budget::cut_to_fit;
use crate::ids::UserId;
use crate::model::{MessageFile, TextStatus};
use crate::ports::{BlobStore, FileStore, LlmAttachment};

/// At most this many bytes of files (PDFs and images) are sent with one message: 20 MiB,
/// under the request size limits of hosted providers (OpenAI accepts up to 50 MB per request,
/// images up to 20 MB each).
pub const MAX_ATTACHMENT_BYTES: u64 = 20 * 1024 * 1024;

/// The types sent as bytes to providers that take files.
#[must_use]
pub fn sent_as_bytes(content_type: &str) -> bool {
    is_pdf(content_type) || is_image(content_type)
}

#[must_use]
pub fn is_pdf(content_type: &str) -> bool {
    content_type.eq_ignore_ascii_case("application/pdf")
}

/// PNG, JPEG, WebP or GIF: the images providers take.
#[must_use]
pub fn is_image(content_type: &str) -> bool {
    ["image/png", "image/jpeg", "image/webp", "image/gif"]
        .iter()
        .any(|t| content_type.eq_ignore_ascii_case(t))
}

/// Where attached files are read from.
#[derive(Clone)]
pub struct AttachmentSource {
    pub files: Arc<dyn FileStore>,
    pub blobs: Arc<dyn BlobStore>,
}

impl AttachmentSource {
    /// Loads `attached` (deleted files left out by the caller) for `owner`. Texts share
    /// `text_tokens`; returns the attachments, in order, and the tokens their texts use.
    pub async fn load(
        &self,
        owner: &UserId,
        attached: &[MessageFile],
        text_tokens: u32,
    ) -> (Vec<LlmAttachment>, u32) {
        let mut bytes_left = MAX_ATTACHMENT_BYTES;
        let mut tokens_left = text_tokens;
        let mut loaded = Vec::with_capacity(attached.len());
        for file in attached {
            let mut attachment =
                LlmAttachment::named(&file.filename, &file.content_type, file.size_bytes);
            let meta = match self.files.get_file(owner, file.id).await {
                Ok(meta) => meta,
                Err(e) => {
                    tracing::warn!(file_id = %file.id, error = %e, "an attached file could not be read; it is named only");
                    loaded.push(attachment);
                    continue;
                }
            };
            if sent_as_bytes(&meta.content_type) && meta.size_bytes <= bytes_left {
                match self.read_blob(&meta.storage_key, bytes_left).await {
                    Ok(bytes) => {
                        bytes_left -= bytes.len() as u64;
                        attachment.bytes = Some(bytes);
                    }
                    Err(e) => {
                        tracing::warn!(file_id = %file.id, error = %e, "the bytes of an attached file could not be read");
                    }
                }
            }
            if meta.text_status == TextStatus::Ready {
                match self.files.get_file_text(owner, file.id).await {
                    Ok(Some(text)) => {
                        let (sent, cost) = cut_to_fit(&text, tokens_left);
                        tokens_left = tokens_left.saturating_sub(cost);
                        attachment.text = Some(sent);
                    }
                    Ok(None) => {}
                    Err(e) => {
                        tracing::warn!(file_id = %file.id, error = %e, "the text of an attached file could not be read");
                    }
                }
            }
            loaded.push(attachment);
        }
        (loaded, text_tokens - tokens_left)
    }

    /// The bytes under `key`, refused past `limit`.
    async fn read_blob(&self, key: &str, limit: u64) -> Result<bytes::Bytes, String> {
        let mut stream = self.blobs.get(key).await.map_err(|e| e.to_string())?;
        let mut buffer = bytes::BytesMut::new();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| e.to_string())?;
            if (buffer.len() + chunk.len()) as u64 > limit {
                return Err(format!("more than {limit} bytes"));
            }
            buffer.extend_from_slice(&chunk);
        }
        Ok(buffer.freeze())
    }
}
