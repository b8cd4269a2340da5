//! Extraction on real files the tests make: PDFs written with lopdf, DOCX written with zip.
// Test code: a failed expect is a failed test (clippy.toml covers only #[test] functions).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Write;
use std::time::Duration;

use confab_extract::{ExtractError, Extracted, Limits, extract};
use flate2::Compression;
use flate2::write::ZlibEncoder;
use lopdf::content::{Content, Operation};
use lopdf::{
    Document, EncryptionState, EncryptionVersion, Object, Permissions, Stream, dictionary,
};
use zip::write::SimpleFileOptions;

const PDF: &str = "application/pdf";
const DOCX: &str = "application/vnd.openxmlformats-officedocument.wordprocessingml.document";

fn text_of(result: Result<Extracted, ExtractError>) -> String {
    match result {
        Ok(Extracted::Text { text, .. }) => text,
        other => panic!("expected text, got {other:?}"),
    }
}

/// A PDF whose pages draw the given operations, with a Helvetica font as `F1`.
fn pdf_with(pages: Vec<Vec<Operation>>) -> Document {
    let mut doc = Document::with_version("1.5");
    let pages_id = doc.new_object_id();
    let font_id = doc.add_object(dictionary! {
        "Type" => "Font", "Subtype" => "Type1", "BaseFont" => "Helvetica",
    });
    let resources_id = doc.add_object(dictionary! { "Font" => dictionary! { "F1" => font_id } });
    let mut kids = Vec::new();
    for operations in pages {
        let content = Content { operations }.encode().expect("content encodes");
        let content_id = doc.add_object(Stream::new(dictionary! {}, content));
        let page_id = doc.add_object(dictionary! {
            "Type" => "Page", "Parent" => pages_id, "Contents" => content_id,
        });
        kids.push(Object::from(page_id));
    }
    let count = i64::try_from(kids.len()).expect("few pages");
    doc.objects.insert(
        pages_id,
        Object::Dictionary(dictionary! {
            "Type" => "Pages", "Kids" => kids, "Count" => count, "Resources" => resources_id,
            "MediaBox" => vec![0.into(), 0.into(), 595.into(), 842.into()],
        }),
    );
    let catalog_id = doc.add_object(dictionary! { "Type" => "Catalog", "Pages" => pages_id });
    doc.trailer.set("Root", catalog_id);
    doc
}

fn lines(lines: &[&str]) -> Vec<Operation> {
    let mut ops = vec![
        Operation::new("BT", vec![]),
        Operation::new("Tf", vec!["F1".into(), 12.into()]),
        Operation::new("TL", vec![16.into()]),
        Operation::new("Td", vec![72.into(), 770.into()]),
    ];
    for line in lines {
        ops.push(Operation::new("Tj", vec![Object::string_literal(*line)]));
        ops.push(Operation::new("T*", vec![]));
    }
    ops.push(Operation::new("ET", vec![]));
    ops
}

fn save(mut doc: Document) -> Vec<u8> {
    doc.compress();
    let mut bytes = Vec::new();
    doc.save_to(&mut bytes).expect("pdf saves");
    bytes
}

#[test]
fn a_pdf_yields_the_text_of_every_page() {
    let bytes = save(pdf_with(vec![
        lines(&["The quokka lives on Rottnest Island.", "Second line."]),
        lines(&["Page two mentions zebras."]),
    ]));
    let text = text_of(extract(&bytes, PDF, "facts.pdf", &Limits::default()));
    assert!(
        text.contains("The quokka lives on Rottnest Island."),
        "{text:?}"
    );
    assert!(text.contains("Second line."), "{text:?}");
    assert!(text.contains("Page two mentions zebras."), "{text:?}");
}

#[test]
fn a_pdf_without_a_text_layer_fails_as_scanned() {
    let rectangle = vec![
        Operation::new("re", vec![10.into(), 10.into(), 200.into(), 300.into()]),
        Operation::new("f", vec![]),
    ];
    let bytes = save(pdf_with(vec![rectangle]));
    let result = extract(&bytes, PDF, "scan.pdf", &Limits::default());
    assert_eq!(result, Err(ExtractError::NoTextLayer));
}

#[test]
fn a_pdf_locked_with_a_password_fails_as_encrypted() {
    let mut doc = pdf_with(vec![lines(&["Secret plans."])]);
    let file_id = Object::string_literal(b"0123456789abcdef".to_vec());
    doc.trailer.set("ID", vec![file_id.clone(), file_id]);
    let version = EncryptionVersion::V2 {
        document: &doc,
        owner_password: "owner",
        user_password: "secret",
        key_length: 128,
        permissions: Permissions::all(),
    };
    let state = EncryptionState::try_from(version).expect("encryption state");
    doc.encrypt(&state).expect("encrypts");
    let mut bytes = Vec::new();
    doc.save_to(&mut bytes).expect("pdf saves");
    assert!(!String::from_utf8_lossy(&bytes).contains("Secret plans"));

    let result = extract(&bytes, PDF, "locked.pdf", &Limits::default());
    assert_eq!(result, Err(ExtractError::Encrypted));
}

#[test]
fn a_damaged_pdf_fails_as_corrupt() {
    let bytes = save(pdf_with(vec![lines(&["Cut short."])]));
    let result = extract(
        &bytes[..bytes.len() / 3],
        PDF,
        "cut.pdf",
        &Limits::default(),
    );
    assert!(
        matches!(result, Err(ExtractError::Corrupt(_))),
        "{result:?}"
    );
    let result = extract(b"%PDF-1.7\nnot really", PDF, "x.pdf", &Limits::default());
    assert!(
        matches!(result, Err(ExtractError::Corrupt(_))),
        "{result:?}"
    );
    let result = extract(b"hello", PDF, "x.pdf", &Limits::default());
    assert!(
        matches!(result, Err(ExtractError::Corrupt(_))),
        "{result:?}"
    );
}

#[test]
fn a_pdf_stream_that_inflates_too_far_is_refused() {
    let mut encoder = ZlibEncoder::new(Vec::new(), Compression::best());
    encoder
        .write_all(&vec![b' '; 8 * 1024 * 1024])
        .expect("compresses");
    let bomb = encoder.finish().expect("compresses");
    let mut doc = pdf_with(vec![lines(&["Hello."])]);
    doc.add_object(
        Stream::new(dictionary! { "Filter" => "FlateDecode" }, bomb).with_compression(false),
    );
    let mut bytes = Vec::new();
    doc.save_to(&mut bytes).expect("pdf saves");

    let result = extract(&bytes, PDF, "bomb.pdf", &Limits::default());
    assert_eq!(result, Err(ExtractError::DecompressionBomb));
}

#[test]
fn pdf_page_count_output_size_and_time_are_bounded() {
    let three = save(pdf_with(vec![
        lines(&["one"]),
        lines(&["two"]),
        lines(&["three"]),
    ]));
    let few_pages = Limits {
        max_pdf_pages: 2,
        ..Limits::default()
    };
    assert_eq!(
        extract(&three, PDF, "x.pdf", &few_pages),
        Err(ExtractError::TooManyPages { pages: 3, limit: 2 })
    );

    let long = save(pdf_with(vec![lines(&["A rather long line of text."; 40])]));
    let small = Limits {
        max_output_bytes: 64,
        ..Limits::default()
    };
    match extract(&long, PDF, "x.pdf", &small) {
        Ok(Extracted::Text { text, truncated }) => {
            assert!(truncated);
            assert!(
                text.len() <= 64 && text.starts_with("A rather long"),
                "{text:?}"
            );
        }
        other => panic!("expected cut text, got {other:?}"),
    }

    let no_time = Limits {
        timeout: Duration::ZERO,
        ..Limits::default()
    };
    assert_eq!(
        extract(&long, PDF, "x.pdf", &no_time),
        Err(ExtractError::TimedOut(0))
    );
}

/// A DOCX archive holding `body` as `word/document.xml`.
fn docx(body: &[u8]) -> Vec<u8> {
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options = SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
    zip.start_file("[Content_Types].xml", options)
        .expect("zip entry");
    zip.write_all(br#"<?xml version="1.0"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"/>"#)
        .expect("zip write");
    zip.start_file("word/document.xml", options)
        .expect("zip entry");
    zip.write_all(body).expect("zip write");
    zip.finish().expect("zip finishes").into_inner()
}

const W: &str = r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"><w:body>"#;

#[test]
fn a_docx_yields_its_paragraphs() {
    let body = format!(
        "{W}<w:p><w:r><w:t>Fish &amp; chips</w:t></w:r><w:r><w:tab/><w:t xml:space=\"preserve\"> cost £4</w:t></w:r></w:p>\
         <w:p><w:r><w:t>Second paragraph</w:t><w:br/><w:t>same paragraph, new line</w:t></w:r></w:p></w:body></w:document>"
    );
    let text = text_of(extract(
        &docx(body.as_bytes()),
        DOCX,
        "menu.docx",
        &Limits::default(),
    ));
    assert_eq!(
        text,
        "Fish & chips\t cost £4\nSecond paragraph\nsame paragraph, new line"
    );
    // Sniffed as a plain zip, the name still says DOCX.
    let text = text_of(extract(
        &docx(body.as_bytes()),
        "application/zip",
        "menu.docx",
        &Limits::default(),
    ));
    assert!(text.starts_with("Fish & chips"));
}

#[test]
fn a_docx_zip_bomb_is_refused_even_when_its_sizes_lie() {
    let mut body = W.as_bytes().to_vec();
    body.extend(
        std::iter::repeat_n(
            b"<w:p><w:r><w:t>aaaaaaaa</w:t></w:r></w:p>".as_slice(),
            200_000,
        )
        .flatten(),
    );
    let honest = docx(&body);
    assert_eq!(
        extract(&honest, DOCX, "bomb.docx", &Limits::default()),
        Err(ExtractError::DecompressionBomb)
    );

    // The same archive claiming a 1,000-byte body: refused while inflating.
    let lying = claim_size(honest, "word/document.xml", 1000);
    assert_eq!(
        extract(&lying, DOCX, "bomb.docx", &Limits::default()),
        Err(ExtractError::DecompressionBomb)
    );
}

/// Rewrites the uncompressed size of `name` in its local and central headers.
fn claim_size(mut zip: Vec<u8>, name: &str, size: u32) -> Vec<u8> {
    let size = size.to_le_bytes();
    let mut i = 0;
    while i + 46 <= zip.len() {
        let signature = &zip[i..i + 4];
        let (size_at, name_len_at, name_at) = match signature {
            b"PK\x03\x04" => (22, 26, 30),
            b"PK\x01\x02" => (24, 28, 46),
            _ => {
                i += 1;
                continue;
            }
        };
        let name_len = usize::from(u16::from_le_bytes([
            zip[i + name_len_at],
            zip[i + name_len_at + 1],
        ]));
        if zip.get(i + name_at..i + name_at + name_len) == Some(name.as_bytes()) {
            zip[i + size_at..i + size_at + 4].copy_from_slice(&size);
        }
        i += 4;
    }
    zip
}

#[test]
fn a_damaged_docx_fails_as_corrupt() {
    let result = extract(b"PK\x03\x04 not a zip", DOCX, "x.docx", &Limits::default());
    assert!(
        matches!(result, Err(ExtractError::Corrupt(_))),
        "{result:?}"
    );
    let no_body = {
        let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
        zip.start_file("other.xml", SimpleFileOptions::default())
            .expect("zip entry");
        zip.finish().expect("zip finishes").into_inner()
    };
    let result = extract(&no_body, DOCX, "x.docx", &Limits::default());
    assert!(
        matches!(result, Err(ExtractError::Corrupt(_))),
        "{result:?}"
    );
}

#[test]
fn html_yields_only_visible_text() {
    let html = br#"<!doctype html><html><head><title>Hidden title</title>
        <style>body { color: red }</style><script>alert("no")</script></head>
        <body><h1>Heading</h1><p>First   paragraph with <b>bold</b> text &amp; more.</p>
        <noscript>enable js</noscript><ul><li>one</li><li>two</li></ul>
        <script type="application/json">{"secret": 1}</script></body></html>"#;
    let text = text_of(extract(html, "text/html", "page.html", &Limits::default()));
    assert_eq!(
        text,
        "Heading\nFirst paragraph with bold text & more.\none\ntwo"
    );
}

#[test]
fn text_formats_come_back_as_they_are() {
    let limits = Limits::default();
    let csv = "name,qty\nbolts,4\n";
    assert_eq!(
        text_of(extract(csv.as_bytes(), "text/csv", "a.csv", &limits)),
        csv
    );
    let json = r#"{"a": [1, 2]}"#;
    assert_eq!(
        text_of(extract(
            json.as_bytes(),
            "application/json",
            "a.json",
            &limits
        )),
        json
    );
    let code = "fn main() {}\n";
    assert_eq!(
        text_of(extract(code.as_bytes(), "text/plain", "main.rs", &limits)),
        code
    );
    // Unknown type, sniffed as UTF-8 text; a byte-order mark is dropped.
    let bom = b"\xEF\xBB\xBFhello";
    assert_eq!(
        text_of(extract(bom, "application/octet-stream", "x", &limits)),
        "hello"
    );
}

#[test]
fn binary_and_images_have_no_text() {
    let limits = Limits::default();
    let binary = [0xff, 0xfe, 0x00, 0x81, 0x12];
    assert_eq!(
        extract(&binary, "application/octet-stream", "blob", &limits),
        Ok(Extracted::NoText)
    );
    assert_eq!(
        extract(b"\x89PNG\r\n\x1a\n", "image/png", "a.png", &limits),
        Ok(Extracted::NoText)
    );
    assert_eq!(
        extract(&[b'a', 0xC3, 0x28], "text/plain", "latin.txt", &limits),
        Err(ExtractError::NotUtf8)
    );
}

#[test]
fn long_text_is_cut_at_the_output_cap() {
    let limits = Limits {
        max_output_bytes: 10,
        ..Limits::default()
    };
    assert_eq!(
        extract("ééééééé".as_bytes(), "text/plain", "a.txt", &limits),
        Ok(Extracted::Text {
            text: "ééééé".to_owned(),
            truncated: true
        })
    );
}

/// pdf-extract 0.12 panics (index out of bounds, unwrap on a missing key) on these
/// malformed font dictionaries; the panic becomes an error and the thread lives on.
#[test]
fn a_parser_panic_on_a_malformed_font_becomes_an_error() {
    for font in [
        dictionary! { "Type" => "Font", "Subtype" => "Type0", "BaseFont" => "X" },
        dictionary! { "Type" => "Font", "Subtype" => "Type3" },
        dictionary! { "Type" => "Font", "Subtype" => "Type1", "BaseFont" => "X", "Encoding" => 5 },
    ] {
        let mut doc = pdf_with(vec![lines(&["Hello there"])]);
        // The font is the first object `pdf_with` adds after the page tree's id.
        doc.objects.insert((2, 0), Object::Dictionary(font));
        let result = extract(&save(doc), PDF, "x.pdf", &Limits::default());
        assert!(
            matches!(result, Err(ExtractError::Corrupt(_))),
            "{result:?}"
        );
    }
}
