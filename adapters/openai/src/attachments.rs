//! How attached files are written into a user message, shared by both APIs.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use confab_core::attachments::{is_image, is_pdf};
use confab_core::ports::LlmAttachment;
use serde_json::{Value, json};

/// A `data:` URL of the file's bytes.
pub(crate) fn data_url(content_type: &str, bytes: &[u8]) -> String {
    format!("data:{content_type};base64,{}", STANDARD.encode(bytes))
}

/// A document's text as a quoted block headed by its file name.
pub(crate) fn quoted(filename: &str, text: &str) -> String {
    let mut block = format!("From {filename}:");
    for line in text.lines() {
        block.push_str("\n> ");
        block.push_str(line);
    }
    block
}

/// A file whose content is not sent: its name, type and size.
pub(crate) fn named(file: &LlmAttachment) -> String {
    format!(
        "[Attached file {} ({}, {} bytes): its content is not sent]",
        file.filename, file.content_type, file.size_bytes
    )
}

/// The file as text: its quoted text when it has some, else its name.
pub(crate) fn as_text(file: &LlmAttachment) -> String {
    file.text
        .as_deref()
        .map_or_else(|| named(file), |text| quoted(&file.filename, text))
}

/// The content of the new user message for the Responses API: the message text as
/// `input_text`, then each file: a PDF as `input_file`, an image as `input_image`, any
/// other document (or a file whose bytes were not loaded) as text.
pub(crate) fn responses_content(message: &str, files: &[LlmAttachment]) -> Value {
    let mut parts = vec![json!({"type": "input_text", "text": message})];
    for file in files {
        let part = match &file.bytes {
            Some(bytes) if is_pdf(&file.content_type) => json!({
                "type": "input_file",
                "filename": file.filename,
                "file_data": data_url("application/pdf", bytes),
            }),
            Some(bytes) if is_image(&file.content_type) => json!({
                "type": "input_image",
                "image_url": data_url(&file.content_type, bytes),
            }),
            _ => json!({"type": "input_text", "text": as_text(file)}),
        };
        parts.push(part);
    }
    Value::Array(parts)
}

/// The content of the new user message for Chat Completions: the message text with every
/// file inlined as text (PDFs included); with `vision`, images go as `image_url` parts
/// (the content is then an array of parts).
pub(crate) fn chat_content(message: &str, files: &[LlmAttachment], vision: bool) -> Value {
    let mut text = message.to_owned();
    let mut images = Vec::new();
    for file in files {
        match &file.bytes {
            Some(bytes) if vision && is_image(&file.content_type) => images.push(json!({
                "type": "image_url",
                "image_url": {"url": data_url(&file.content_type, bytes)},
            })),
            _ => {
                text.push_str("\n\n");
                text.push_str(&as_text(file));
            }
        }
    }
    if images.is_empty() {
        return Value::String(text);
    }
    let mut parts = vec![json!({"type": "text", "text": text})];
    parts.extend(images);
    Value::Array(parts)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(
        name: &str,
        content_type: &str,
        bytes: Option<&[u8]>,
        text: Option<&str>,
    ) -> LlmAttachment {
        LlmAttachment {
            bytes: bytes.map(bytes::Bytes::copy_from_slice),
            text: text.map(str::to_owned),
            ..LlmAttachment::named(name, content_type, 3)
        }
    }

    #[test]
    fn a_text_is_quoted_under_its_file_name() {
        assert_eq!(quoted("a.md", "one\ntwo"), "From a.md:\n> one\n> two");
    }

    #[test]
    fn responses_send_pdfs_and_images_as_files_and_documents_as_text() {
        let files = [
            file("r.pdf", "application/pdf", Some(b"%PD"), Some("pdf text")),
            file("p.png", "image/png", Some(b"png"), None),
            file("n.txt", "text/plain", None, Some("hello")),
            file("big.pdf", "application/pdf", None, None),
        ];
        assert_eq!(
            responses_content("look", &files),
            json!([
                {"type": "input_text", "text": "look"},
                {"type": "input_file", "filename": "r.pdf", "file_data": "data:application/pdf;base64,JVBE"},
                {"type": "input_image", "image_url": "data:image/png;base64,cG5n"},
                {"type": "input_text", "text": "From n.txt:\n> hello"},
                {"type": "input_text", "text": "[Attached file big.pdf (application/pdf, 3 bytes): its content is not sent]"},
            ])
        );
    }

    #[test]
    fn chat_completions_inline_text_and_send_images_only_with_vision() {
        let files = [
            file("r.pdf", "application/pdf", Some(b"%PD"), Some("pdf text")),
            file("p.png", "image/png", Some(b"png"), None),
        ];
        let named_png = "[Attached file p.png (image/png, 3 bytes): its content is not sent]";
        assert_eq!(
            chat_content("look", &files, false),
            json!(format!("look\n\nFrom r.pdf:\n> pdf text\n\n{named_png}"))
        );
        assert_eq!(
            chat_content("look", &files, true),
            json!([
                {"type": "text", "text": "look\n\nFrom r.pdf:\n> pdf text"},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,cG5n"}},
            ])
        );
    }
}
