//! Extraction and chunking throughput (`cargo bench -p confab-bench --bench extraction`):
//! plain text, HTML and a generated PDF through `confab_extract::extract`, and the knowledge
//! chunker over the text. Throughput is in bytes of input.
// Bench code: a failed unwrap is a failed bench.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;

use confab_extract::{Limits, extract};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use lopdf::content::{Content, Operation};
use lopdf::{Document, Object, Stream, dictionary};

const LINE: &str = "The quick brown fox jumps over the lazy dog, again and again and again.";

fn unbounded() -> Limits {
    Limits {
        max_output_bytes: usize::MAX,
        ..Limits::default()
    }
}

/// A PDF of `pages` pages of 45 lines of Helvetica text, compressed as writers do.
fn pdf(pages: usize) -> Vec<u8> {
    let mut doc = Document::with_version("1.5");
    let pages_id = doc.new_object_id();
    let font_id = doc.add_object(dictionary! {
        "Type" => "Font", "Subtype" => "Type1", "BaseFont" => "Helvetica",
    });
    let resources_id = doc.add_object(dictionary! { "Font" => dictionary! { "F1" => font_id } });
    let mut kids = Vec::new();
    for _ in 0..pages {
        let mut operations = vec![
            Operation::new("BT", vec![]),
            Operation::new("Tf", vec!["F1".into(), 10.into()]),
            Operation::new("TL", vec![14.into()]),
            Operation::new("Td", vec![50.into(), 800.into()]),
        ];
        for _ in 0..45 {
            operations.push(Operation::new("Tj", vec![Object::string_literal(LINE)]));
            operations.push(Operation::new("T*", vec![]));
        }
        operations.push(Operation::new("ET", vec![]));
        let content = Content { operations }.encode().unwrap();
        let content_id = doc.add_object(Stream::new(dictionary! {}, content));
        kids.push(Object::from(doc.add_object(dictionary! {
            "Type" => "Page", "Parent" => pages_id, "Contents" => content_id,
        })));
    }
    let count = i64::try_from(kids.len()).unwrap();
    doc.objects.insert(
        pages_id,
        Object::Dictionary(dictionary! {
            "Type" => "Pages", "Kids" => kids, "Count" => count, "Resources" => resources_id,
            "MediaBox" => vec![0.into(), 0.into(), 595.into(), 842.into()],
        }),
    );
    let catalog_id = doc.add_object(dictionary! { "Type" => "Catalog", "Pages" => pages_id });
    doc.trailer.set("Root", catalog_id);
    doc.compress();
    let mut bytes = Vec::new();
    doc.save_to(&mut bytes).unwrap();
    bytes
}

fn extraction(c: &mut Criterion) {
    let limits = unbounded();
    let mut group = c.benchmark_group("extract");
    let text = format!("{LINE}\n\n").repeat(15_000);
    group.throughput(Throughput::Bytes(text.len() as u64));
    group.bench_function("text_1mb", |b| {
        b.iter(|| extract(black_box(text.as_bytes()), "text/plain", "a.txt", &limits));
    });
    let html = format!(
        "<html><body>{}</body></html>",
        format!("<p>{LINE}</p>").repeat(15_000)
    );
    group.throughput(Throughput::Bytes(html.len() as u64));
    group.bench_function("html_1mb", |b| {
        b.iter(|| extract(black_box(html.as_bytes()), "text/html", "a.html", &limits));
    });
    let pdf = pdf(50);
    group.throughput(Throughput::Bytes(pdf.len() as u64));
    group.sample_size(10);
    group.bench_function("pdf_50_pages", |b| {
        b.iter(|| extract(black_box(&pdf), "application/pdf", "a.pdf", &limits));
    });
    group.finish();

    let mut group = c.benchmark_group("knowledge");
    group.throughput(Throughput::Bytes(text.len() as u64));
    group.bench_function("chunk_1mb", |b| {
        b.iter(|| confab_core::knowledge::chunks(black_box(&text)));
    });
    group.finish();
}

criterion_group!(benches, extraction);
criterion_main!(benches);
