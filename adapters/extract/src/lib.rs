#![doc = include_str!("../README.md")]

mod bounds;
mod docx;
mod html;
mod pdf;

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::{Duration, Instant};

pub use bounds::Budget;

/// Every bound one extraction runs under.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Wall time for one file; past it the extraction stops with `TimedOut`.
    pub timeout: Duration,
    /// Text kept, in bytes; longer text is cut at a character boundary (`truncated`).
    pub max_output_bytes: usize,
    /// PDFs with more pages are refused.
    pub max_pdf_pages: usize,
    /// Bytes all compressed parts of one file (PDF streams, DOCX entries) may inflate to.
    pub max_inflated_bytes: u64,
    /// How many times its compressed size one part may inflate to (past `RATIO_FLOOR` bytes).
    pub max_ratio: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(30),
            max_output_bytes: 2 * 1024 * 1024,
            max_pdf_pages: 2_000,
            max_inflated_bytes: 256 * 1024 * 1024,
            max_ratio: 200,
        }
    }
}

/// Parts smaller than this once inflated are never refused for their ratio: a page of
/// repeated whitespace compresses very well and is no bomb.
pub const RATIO_FLOOR: u64 = 1024 * 1024;

/// What a file yielded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Extracted {
    /// The file's text (possibly empty for an empty text file).
    Text {
        text: String,
        /// The text was cut at `max_output_bytes`.
        truncated: bool,
    },
    /// Not a document with text: an image, audio, video or other binary.
    NoText,
}

/// Why a file's text could not be read. Each message is a sentence for a person.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ExtractError {
    #[error("The PDF is protected by a password, so its text cannot be read.")]
    Encrypted,
    #[error("The PDF has no text layer (it may be a scan); its text cannot be read.")]
    NoTextLayer,
    #[error("The PDF has {pages} pages; at most {limit} are read.")]
    TooManyPages { pages: usize, limit: usize },
    #[error("The file decompresses to far more data than it holds and was refused as unsafe.")]
    DecompressionBomb,
    #[error("Reading the file's text took longer than {0} seconds.")]
    TimedOut(u64),
    #[error("The file is not valid UTF-8 text.")]
    NotUtf8,
    #[error("The file looks damaged and its text cannot be read ({0}).")]
    Corrupt(String),
}

/// The kinds of document this crate reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Pdf,
    Docx,
    Html,
    /// Declared text: invalid UTF-8 fails.
    Text,
    /// Anything else: text when it sniffs as UTF-8, else none.
    Unknown,
    /// Images, audio, video: never read.
    Media,
}

const DOCX_TYPE: &str = "application/vnd.openxmlformats-officedocument.wordprocessingml.document";

fn kind_of(content_type: &str, filename: &str) -> Kind {
    let content_type = content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    let extension = filename
        .rsplit_once('.')
        .map(|(_, ext)| ext.to_ascii_lowercase())
        .unwrap_or_default();
    match (content_type.as_str(), extension.as_str()) {
        ("application/pdf", _) | (_, "pdf") => Kind::Pdf,
        (DOCX_TYPE, _) | ("application/zip", "docx") => Kind::Docx,
        ("text/html" | "application/xhtml+xml", _) | (_, "html" | "htm") => Kind::Html,
        (t, _) if t.starts_with("image/") || t.starts_with("audio/") || t.starts_with("video/") => {
            Kind::Media
        }
        (t, _)
            if t.starts_with("text/")
                || matches!(
                    t,
                    "application/json"
                        | "application/x-ndjson"
                        | "application/yaml"
                        | "application/toml"
                        | "application/xml"
                ) =>
        {
            Kind::Text
        }
        _ => Kind::Unknown,
    }
}

/// Extracts the text of one file under `limits`. Pure CPU work: run it off the async
/// runtime. A panic in a parser is caught and reported as `Corrupt`.
pub fn extract(
    bytes: &[u8],
    content_type: &str,
    filename: &str,
    limits: &Limits,
) -> Result<Extracted, ExtractError> {
    let budget = Budget::new(limits, Instant::now());
    let kind = kind_of(content_type, filename);
    let outcome = catch_unwind(AssertUnwindSafe(|| match kind {
        Kind::Pdf => pdf::extract(bytes, &budget),
        Kind::Docx => docx::extract(bytes, &budget),
        Kind::Html => html::extract(bytes, &budget),
        Kind::Text => plain(bytes, &budget)?.ok_or(ExtractError::NotUtf8),
        Kind::Unknown => Ok(plain(bytes, &budget)?.unwrap_or(Extracted::NoText)),
        Kind::Media => Ok(Extracted::NoText),
    }));
    outcome.unwrap_or_else(|_| {
        Err(ExtractError::Corrupt(
            "the parser stopped on an unexpected structure".to_owned(),
        ))
    })
}

/// UTF-8 text (a byte-order mark dropped), or `None` when the bytes are not text: invalid
/// UTF-8, or NUL bytes, which no text format uses.
fn plain(bytes: &[u8], budget: &Budget) -> Result<Option<Extracted>, ExtractError> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    if bytes.contains(&0) {
        return Ok(None);
    }
    let Ok(text) = std::str::from_utf8(bytes) else {
        return Ok(None);
    };
    budget.check_time()?;
    Ok(Some(budget.finish(text.to_owned(), false)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_come_from_the_type_then_the_extension() {
        assert_eq!(kind_of("application/pdf", "x"), Kind::Pdf);
        assert_eq!(kind_of("application/octet-stream", "A.PDF"), Kind::Pdf);
        assert_eq!(kind_of(DOCX_TYPE, "x"), Kind::Docx);
        assert_eq!(kind_of("application/zip", "report.docx"), Kind::Docx);
        assert_eq!(kind_of("application/zip", "archive.zip"), Kind::Unknown);
        assert_eq!(kind_of("text/html; charset=utf-8", "x"), Kind::Html);
        assert_eq!(kind_of("text/csv", "x.csv"), Kind::Text);
        assert_eq!(kind_of("application/json", "x.json"), Kind::Text);
        assert_eq!(kind_of("image/png", "x.png"), Kind::Media);
    }
}
