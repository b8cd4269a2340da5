//! DOCX: the runs of text in `word/document.xml`, one paragraph a line. The entry is
//! inflated under the budget (its declared size is not trusted), so a zip bomb stops early.

use std::io::Cursor;

use quick_xml::Reader;
use quick_xml::events::Event;
use zip::ZipArchive;

use crate::bounds::Inflate;
use crate::{Budget, ExtractError, Extracted, RATIO_FLOOR};

const BODY: &str = "word/document.xml";

pub(crate) fn extract(bytes: &[u8], budget: &Budget) -> Result<Extracted, ExtractError> {
    let mut archive = ZipArchive::new(Cursor::new(bytes))
        .map_err(|e| ExtractError::Corrupt(format!("not a DOCX archive: {e}")))?;
    let entry = archive
        .by_name(BODY)
        .map_err(|_| ExtractError::Corrupt(format!("the archive has no {BODY}")))?;
    let compressed = entry.compressed_size();
    // A declared size past the ratio is refused before inflating anything.
    if entry.size() > RATIO_FLOOR.max(compressed.saturating_mul(budget.max_ratio)) {
        return Err(ExtractError::DecompressionBomb);
    }
    let mut xml = Vec::new();
    if let Inflate::Unreadable(e) = budget.inflate(entry, compressed, &mut xml)? {
        return Err(ExtractError::Corrupt(format!(
            "{BODY} cannot be inflated: {e}"
        )));
    }
    paragraphs(&xml, budget)
}

/// The text of `w:t` runs; `w:tab` as a tab, `w:br`/`w:cr` and each paragraph's end as a line.
fn paragraphs(xml: &[u8], budget: &Budget) -> Result<Extracted, ExtractError> {
    let corrupt = |e: &dyn std::fmt::Display| ExtractError::Corrupt(format!("{BODY}: {e}"));
    let mut reader = Reader::from_reader(xml);
    let mut buffer = Vec::new();
    let mut out = String::new();
    let mut in_text = false;
    let mut events = 0u32;
    loop {
        events = events.wrapping_add(1);
        if events.is_multiple_of(4096) {
            budget.check_time()?;
        }
        if out.len() > budget.max_output_bytes {
            return Ok(budget.finish(out, true));
        }
        match reader
            .read_event_into(&mut buffer)
            .map_err(|e| corrupt(&e))?
        {
            Event::Start(e) if e.name().as_ref() == b"w:t" => in_text = true,
            Event::End(e) => match e.name().as_ref() {
                b"w:t" => in_text = false,
                b"w:p" => out.push('\n'),
                _ => {}
            },
            Event::Empty(e) => match e.name().as_ref() {
                b"w:tab" => out.push('\t'),
                b"w:br" | b"w:cr" => out.push('\n'),
                _ => {}
            },
            Event::Text(t) if in_text => out.push_str(&t.xml10_content().map_err(|e| corrupt(&e))?),
            Event::CData(t) if in_text => {
                out.push_str(&t.xml10_content().map_err(|e| corrupt(&e))?)
            }
            Event::GeneralRef(r) if in_text => {
                if let Some(c) = r.resolve_char_ref().map_err(|e| corrupt(&e))? {
                    out.push(c);
                } else {
                    let name = r.decode().map_err(|e| corrupt(&e))?;
                    let resolved = quick_xml::escape::resolve_xml_entity(&name)
                        .ok_or_else(|| corrupt(&format!("unknown entity &{name};")))?;
                    out.push_str(resolved);
                }
            }
            Event::Eof => break,
            _ => {}
        }
        buffer.clear();
    }
    Ok(budget.finish(out.trim_end().to_owned(), false))
}
