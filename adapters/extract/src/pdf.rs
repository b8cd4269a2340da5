//! PDF: `pdf-extract` lays out the text of each page from lopdf's parse. Before either sees
//! the file, every zlib stream in it is inflated once into nothing under the budget, so a
//! stream that inflates past its ratio or the file's total is refused before a parser would
//! hold it in memory.

use flate2::read::ZlibDecoder;
use lopdf::Document;
use pdf_extract::{MediaBox, OutputDev, OutputError, PlainTextOutput, Transform};

use crate::{Budget, ExtractError, Extracted};

pub(crate) fn extract(bytes: &[u8], budget: &Budget) -> Result<Extracted, ExtractError> {
    let header_end = bytes.len().min(1024);
    if find(&bytes[..header_end], b"%PDF-", 0).is_none() {
        return Err(ExtractError::Corrupt("it has no PDF header".to_owned()));
    }
    check_streams(bytes, budget)?;
    let mut document = Document::load_mem(bytes)
        .map_err(|e| ExtractError::Corrupt(format!("the PDF cannot be parsed: {e}")))?;
    if document.is_encrypted() && document.decrypt("").is_err() {
        return Err(ExtractError::Encrypted);
    }
    let pages = document.get_pages().len();
    if pages > budget.max_pdf_pages {
        return Err(ExtractError::TooManyPages {
            pages,
            limit: budget.max_pdf_pages,
        });
    }
    if pages == 0 {
        return Err(ExtractError::Corrupt("the PDF has no pages".to_owned()));
    }
    budget.check_time()?;

    let mut text = String::new();
    let mut sink = Bounded {
        inner: PlainTextOutput::new(&mut text),
        budget,
        written: 0,
        calls: 0,
        stop: None,
    };
    let result = pdf_extract::output_doc(&document, &mut sink);
    let stop = sink.stop.take();
    drop(sink);
    match (stop, result) {
        (Some(e), _) => Err(e),
        (None, Err(OutputError::IoError(e))) if e.kind() == CAP_REACHED => {
            Ok(budget.finish(text.trim().to_owned(), true))
        }
        (None, Err(e)) => Err(ExtractError::Corrupt(format!(
            "its pages cannot be read: {e}"
        ))),
        (None, Ok(())) if text.trim().is_empty() => Err(ExtractError::NoTextLayer),
        (None, Ok(())) => Ok(budget.finish(text.trim().to_owned(), false)),
    }
}

/// The error kind a full output stops `output_doc` with.
const CAP_REACHED: std::io::ErrorKind = std::io::ErrorKind::FileTooLarge;

/// Inflates each `stream … endstream` body that is a zlib stream, counting against the budget;
/// image streams are skipped (text extraction never decodes them).
fn check_streams(bytes: &[u8], budget: &Budget) -> Result<(), ExtractError> {
    let mut at = 0;
    while let Some(keyword) = find(bytes, b"stream", at) {
        at = keyword + b"stream".len();
        if bytes[..keyword].ends_with(b"end") {
            continue;
        }
        let start = match bytes.get(at..) {
            Some([b'\r', b'\n', ..]) => at + 2,
            Some([b'\n' | b'\r', ..]) => at + 1,
            _ => continue,
        };
        let end = find(bytes, b"endstream", start).unwrap_or(bytes.len());
        let dictionary_start = bytes[..keyword]
            .windows(3)
            .rposition(|w| w == b"obj")
            .unwrap_or(0);
        if find(&bytes[dictionary_start..keyword], b"/Image", 0).is_some() {
            at = end;
            continue;
        }
        let body = &bytes[start..end];
        budget.inflate(
            ZlibDecoder::new(body),
            body.len() as u64,
            &mut std::io::sink(),
        )?;
        at = end;
    }
    Ok(())
}

fn find(haystack: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    haystack
        .get(from..)?
        .windows(needle.len())
        .position(|w| w == needle)
        .map(|i| i + from)
}

/// Passes characters on to the plain-text layout until the output cap or the deadline.
struct Bounded<'a, 'b> {
    inner: PlainTextOutput<&'a mut String>,
    budget: &'b Budget,
    written: usize,
    calls: u32,
    stop: Option<ExtractError>,
}

impl Bounded<'_, '_> {
    fn check(&mut self) -> Result<(), OutputError> {
        self.calls = self.calls.wrapping_add(1);
        if self.calls.is_multiple_of(256)
            && let Err(e) = self.budget.check_time()
        {
            self.stop = Some(e);
            return Err(OutputError::IoError(std::io::Error::other("out of time")));
        }
        Ok(())
    }
}

impl OutputDev for Bounded<'_, '_> {
    fn begin_page(
        &mut self,
        page_num: u32,
        media_box: &MediaBox,
        art_box: Option<(f64, f64, f64, f64)>,
    ) -> Result<(), OutputError> {
        if let Err(e) = self.budget.check_time() {
            self.stop = Some(e);
            return Err(OutputError::IoError(std::io::Error::other("out of time")));
        }
        self.inner.begin_page(page_num, media_box, art_box)
    }

    fn end_page(&mut self) -> Result<(), OutputError> {
        self.inner.end_page()
    }

    fn output_character(
        &mut self,
        trm: &Transform,
        width: f64,
        spacing: f64,
        font_size: f64,
        char: &str,
    ) -> Result<(), OutputError> {
        self.check()?;
        // The layout adds at most a space or a line break before each character.
        self.written += char.len() + 1;
        if self.written > self.budget.max_output_bytes + 1 {
            return Err(OutputError::IoError(CAP_REACHED.into()));
        }
        self.inner
            .output_character(trm, width, spacing, font_size, char)
    }

    fn begin_word(&mut self) -> Result<(), OutputError> {
        self.inner.begin_word()
    }

    fn end_word(&mut self) -> Result<(), OutputError> {
        self.inner.end_word()
    }

    fn end_line(&mut self) -> Result<(), OutputError> {
        self.check()?;
        self.inner.end_line()
    }
}
