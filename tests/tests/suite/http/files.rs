//! Uploads, metadata, downloads and deletion of files.

use std::sync::Arc;

use confab_api_types as api;
use confab_core::files::FileService;
use confab_core::ports::{BlobStore as _, FileStore as _};
use confab_core::{FileId, FileMeta, TextStatus};
use confab_memory::{MemoryBlobStore, MemoryStore};
use confab_server::texts::{BlockingExtractor, start_pending_sweep};
use confab_tests::http::{ALICE, AppOptions, TestApp, eventually, spawn_app, user_id};
use reqwest::Method;
use sha2::{Digest, Sha256};

const PNG: [u8; 24] = [
    0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A, 0, 0, 0, 0x0D, b'I', b'H', b'D', b'R', 0, 0, 0,
    1, 0, 0, 0, 1,
];

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Bytes that are not all alike, so that a swapped chunk would show.
fn pattern(len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| u8::try_from((i * 31 + i / 251) % 251).unwrap())
        .collect()
}

async fn project(app: &TestApp) -> api::Project {
    app.new_project(ALICE, "Files").await
}

#[tokio::test]
async fn an_upload_round_trips_byte_for_byte_with_its_sha256() {
    let app = spawn_app().await;
    let project = project(&app).await;
    let bytes = pattern(300 * 1024 + 7);
    let answer = app
        .upload_file(
            ALICE,
            project.id,
            "data.bin",
            "application/octet-stream",
            bytes.clone(),
        )
        .await;
    let body: serde_json::Value = answer.ok(201);
    assert_eq!(
        body.as_object().unwrap().len(),
        9,
        "File is {{id, project_id, filename, content_type, size_bytes, sha256, created_at, text_status, text_error}}: {body}"
    );
    let file: api::FileInfo = answer.json();
    assert_eq!(file.project_id, project.id);
    assert_eq!(file.filename, "data.bin");
    assert_eq!(file.size_bytes, bytes.len() as u64);
    assert_eq!(file.sha256, sha256_hex(&bytes));
    assert_eq!(file.content_type, "application/octet-stream");

    assert_eq!(file.text_status, api::TextStatus::Pending);

    let fetched = app.text_read(ALICE, file.id).await;
    assert_eq!(
        fetched,
        api::FileInfo {
            text_status: api::TextStatus::None,
            ..file.clone()
        },
        "binary bytes have no text"
    );
    let page: api::Page<api::FileInfo> = app.list_files(ALICE, project.id, "").await.ok(200);
    assert_eq!(page.items, std::slice::from_ref(&fetched));

    let download = app.download_file(ALICE, file.id).await;
    download.assert_status(200);
    assert_eq!(download.body.len(), bytes.len());
    assert!(
        download.body.as_ref() == bytes.as_slice(),
        "the bytes come back unchanged"
    );
    assert_eq!(sha256_hex(&download.body), file.sha256);
    assert_eq!(
        download.header("content-length"),
        Some(bytes.len().to_string().as_str())
    );
    assert_eq!(
        download.header("content-type"),
        Some("application/octet-stream")
    );
    assert_eq!(download.header("x-content-type-options"), Some("nosniff"));
    let disposition = download.header("content-disposition").unwrap_or_default();
    assert!(disposition.starts_with("attachment"), "{disposition}");
    assert!(
        disposition.contains("filename*=UTF-8''data.bin"),
        "{disposition}"
    );
}

#[tokio::test]
async fn a_download_names_a_unicode_file_in_rfc_6266_form() {
    let app = spawn_app().await;
    let project = project(&app).await;
    let file: api::FileInfo = app
        .upload_file(
            ALICE,
            project.id,
            "résumé 2024.txt",
            "text/plain",
            b"cv".to_vec(),
        )
        .await
        .ok(201);
    assert_eq!(file.filename, "résumé 2024.txt");
    assert_eq!(file.content_type, "text/plain");
    let download = app.download_file(ALICE, file.id).await;
    let disposition = download.header("content-disposition").unwrap_or_default();
    assert!(disposition.starts_with("attachment;"), "{disposition}");
    assert!(
        disposition.contains("filename*=UTF-8''r%C3%A9sum%C3%A9%202024.txt"),
        "{disposition}"
    );
    assert_eq!(download.header("x-content-type-options"), Some("nosniff"));
    assert_eq!(download.header("content-length"), Some("2"));
}

#[tokio::test]
async fn deleting_a_file_answers_204_and_removes_metadata_and_bytes() {
    let app = spawn_app().await;
    let project = project(&app).await;
    let file = app.new_file(ALICE, project.id, "gone.txt").await;
    let kept = app.new_file(ALICE, project.id, "kept.txt").await;
    assert_eq!(app.blobs.len(), 2);
    let answer = app.delete_file(ALICE, file.id).await;
    answer.assert_status(204);
    assert!(answer.body.is_empty());
    assert_eq!(app.blobs.len(), 1);
    app.get_file(ALICE, file.id).await.problem(404, "not_found");
    app.download_file(ALICE, file.id)
        .await
        .problem(404, "not_found");
    app.delete_file(ALICE, file.id)
        .await
        .problem(404, "not_found");
    let page: api::Page<api::FileInfo> = app.list_files(ALICE, project.id, "").await.ok(200);
    assert_eq!(page.items, [kept]);
}

#[tokio::test]
async fn files_are_listed_newest_first() {
    let app = spawn_app().await;
    let project = project(&app).await;
    let mut files = Vec::new();
    for name in ["a.txt", "b.txt", "c.txt"] {
        files.push(app.new_file(ALICE, project.id, name).await);
    }
    files.reverse();
    let page: api::Page<api::FileInfo> = app.list_files(ALICE, project.id, "").await.ok(200);
    assert_eq!(page.items, files);
}

#[tokio::test]
async fn an_upload_over_the_limit_is_413_and_stores_nothing() {
    let app = AppOptions::new()
        .setting("CONFAB_MAX_UPLOAD_BYTES", "1024")
        .spawn()
        .await;
    let project = project(&app).await;
    // Just over, and far over (the declared length alone is too large).
    for len in [1025, 4096, 200 * 1024] {
        let answer = app
            .upload_file(
                ALICE,
                project.id,
                "big.bin",
                "application/octet-stream",
                pattern(len),
            )
            .await;
        assert_eq!(
            answer.status.as_u16(),
            413,
            "{len} bytes: {}",
            answer.text()
        );
        answer.problem(413, "payload_too_large");
        assert!(app.blobs.is_empty(), "no bytes are left behind ({len})");
        let page: api::Page<api::FileInfo> = app.list_files(ALICE, project.id, "").await.ok(200);
        assert!(page.items.is_empty(), "no metadata is stored ({len})");
    }
    // Exactly the limit is fine.
    let file: api::FileInfo = app
        .upload_file(
            ALICE,
            project.id,
            "fits.bin",
            "application/octet-stream",
            pattern(1024),
        )
        .await
        .ok(201);
    assert_eq!(file.size_bytes, 1024);
}

#[tokio::test]
async fn an_empty_file_is_422_and_stores_nothing() {
    let app = spawn_app().await;
    let project = project(&app).await;
    app.upload_file(ALICE, project.id, "empty.txt", "text/plain", Vec::new())
        .await
        .problem(422, "validation_failed");
    assert!(app.blobs.is_empty());
    let page: api::Page<api::FileInfo> = app.list_files(ALICE, project.id, "").await.ok(200);
    assert!(page.items.is_empty());
}

#[tokio::test]
async fn a_path_in_the_filename_is_stripped_to_its_last_component() {
    let app = spawn_app().await;
    let project = project(&app).await;
    for (sent, kept) in [
        ("../../etc/passwd", "passwd"),
        ("..\\..\\windows\\win.ini", "win.ini"),
        ("/abs/path/report.txt", "report.txt"),
    ] {
        let file: api::FileInfo = app
            .upload_file(
                ALICE,
                project.id,
                sent,
                "text/plain",
                b"root:x:0:0".to_vec(),
            )
            .await
            .ok(201);
        assert_eq!(file.filename, kept, "{sent}");
        let download = app.download_file(ALICE, file.id).await;
        let disposition = download.header("content-disposition").unwrap_or_default();
        assert!(
            !disposition.contains('/') && !disposition.contains(".."),
            "{disposition}"
        );
    }
}

#[tokio::test]
async fn the_stored_content_type_comes_from_the_bytes_not_the_client() {
    let app = spawn_app().await;
    let project = project(&app).await;
    let file: api::FileInfo = app
        .upload_file(ALICE, project.id, "notes.txt", "text/plain", PNG.to_vec())
        .await
        .ok(201);
    assert_eq!(file.content_type, "image/png");
    let download = app.download_file(ALICE, file.id).await;
    assert_eq!(download.header("content-type"), Some("image/png"));
    assert_eq!(download.header("x-content-type-options"), Some("nosniff"));

    // Text declared as an image is stored as text.
    let file: api::FileInfo = app
        .upload_file(
            ALICE,
            project.id,
            "readme.md",
            "image/png",
            b"# Title\n".to_vec(),
        )
        .await
        .ok(201);
    assert_eq!(file.content_type, "text/markdown");
}

#[tokio::test]
async fn concurrent_uploads_to_one_project_are_all_stored_intact() {
    let app = spawn_app().await;
    let project = project(&app).await;
    let uploads = (0..8).map(|n| {
        let bytes = pattern(20_000 + n * 997);
        let app = &app;
        let project_id = project.id;
        async move {
            let file: api::FileInfo = app
                .upload_file(
                    ALICE,
                    project_id,
                    &format!("f{n}.bin"),
                    "application/octet-stream",
                    bytes.clone(),
                )
                .await
                .ok(201);
            (file, bytes)
        }
    });
    let results = futures::future::join_all(uploads).await;
    let page: api::Page<api::FileInfo> = app.list_files(ALICE, project.id, "").await.ok(200);
    assert_eq!(page.items.len(), 8);
    assert_eq!(app.blobs.len(), 8);
    for (file, bytes) in &results {
        assert_eq!(file.sha256, sha256_hex(bytes));
        assert!(
            page.items
                .iter()
                .any(|f| f.id == file.id && f.sha256 == file.sha256)
        );
        let download = app.download_file(ALICE, file.id).await;
        assert!(
            download.body.as_ref() == bytes.as_slice(),
            "{} is intact",
            file.filename
        );
    }
}

#[tokio::test]
async fn an_upload_that_is_not_multipart_is_415_and_a_form_without_file_is_422() {
    let app = spawn_app().await;
    let project = project(&app).await;
    let path = format!("/api/projects/{}/files", project.id);
    app.send_request(
        app.request(Method::POST, &path, Some(ALICE))
            .header("Content-Type", "application/octet-stream")
            .body("raw bytes"),
    )
    .await
    .problem(415, "unsupported_media_type");
    app.send_request(
        app.request(Method::POST, &path, Some(ALICE))
            .body("raw bytes"),
    )
    .await
    .problem(415, "unsupported_media_type");
    let form = reqwest::multipart::Form::new().text("other", "value");
    app.send_request(
        app.request(Method::POST, &path, Some(ALICE))
            .multipart(form),
    )
    .await
    .problem(422, "validation_failed");
    assert!(app.blobs.is_empty());
}

#[tokio::test]
async fn a_form_is_answered_whole_so_a_bad_part_after_the_file_stores_nothing() {
    let app = spawn_app().await;
    let project = project(&app).await;
    let path = format!("/api/projects/{}/files", project.id);
    let raw = |tail: &str| {
        format!(
            "--XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.txt\"\r\n\
             Content-Type: text/plain\r\n\r\nhello\r\n{tail}"
        )
    };
    // A part after the file whose header cannot be read: 400, like the same part before it.
    let malformed =
        raw("--XyZ\r\nContent-Disposition: form-data; name=\"x\u{1}\r\n\r\nv\r\n--XyZ--\r\n");
    // A second file: the form says which file to store no more clearly than a missing one.
    let second = raw(
        "--XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"b.txt\"\r\n\r\nbye\r\n--XyZ--\r\n",
    );
    for (body, status) in [(malformed, 400), (second, 422)] {
        let answer = app
            .send_request(
                app.request(Method::POST, &path, Some(ALICE))
                    .header("Content-Type", "multipart/form-data; boundary=XyZ")
                    .body(body),
            )
            .await;
        assert_eq!(answer.status.as_u16(), status, "{}", answer.text());
        assert!(app.blobs.is_empty(), "no bytes are left behind");
        let page: api::Page<api::FileInfo> = app.list_files(ALICE, project.id, "").await.ok(200);
        assert!(page.items.is_empty(), "no metadata is stored");
    }
    // The same form, well formed, stores its one file.
    let file: api::FileInfo = app
        .send_request(
            app.request(Method::POST, &path, Some(ALICE))
                .header("Content-Type", "multipart/form-data; boundary=XyZ")
                .body(raw("--XyZ\r\nContent-Disposition: form-data; name=\"note\"\r\n\r\nv\r\n--XyZ--\r\n")),
        )
        .await
        .ok(201);
    assert_eq!(file.size_bytes, 5);
}

#[tokio::test]
async fn fields_beside_the_file_are_bounded_so_a_form_cannot_stream_forever() {
    let app = spawn_app().await;
    let project = project(&app).await;
    let path = format!("/api/projects/{}/files", project.id);
    let big = "x".repeat(200 * 1024);
    let field = format!("--XyZ\r\nContent-Disposition: form-data; name=\"note\"\r\n\r\n{big}\r\n");
    let file = "--XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.txt\"\r\n\r\nhello\r\n";
    for body in [
        format!("{field}{file}--XyZ--\r\n"),
        format!("{file}{field}--XyZ--\r\n"),
    ] {
        app.send_request(
            app.request(Method::POST, &path, Some(ALICE))
                .header("Content-Type", "multipart/form-data; boundary=XyZ")
                .body(body),
        )
        .await
        .problem(413, "payload_too_large");
        assert!(app.blobs.is_empty(), "no bytes are left behind");
        let page: api::Page<api::FileInfo> = app.list_files(ALICE, project.id, "").await.ok(200);
        assert!(page.items.is_empty(), "no metadata is stored");
    }
}

async fn read_text(app: &TestApp, id: uuid::Uuid) -> api::FileInfo {
    app.text_read(ALICE, id).await
}

async fn stored_text(app: &TestApp, id: uuid::Uuid) -> Option<String> {
    app.store
        .get_file_text(&user_id(ALICE), FileId::from_uuid(id))
        .await
        .unwrap()
}

#[tokio::test]
async fn a_text_upload_is_answered_pending_and_its_text_is_soon_ready() {
    let app = spawn_app().await;
    let project = project(&app).await;
    let text = "# Notes\n\nThe quokka lives on Rottnest Island.\n";
    let file: api::FileInfo = app
        .upload_file(ALICE, project.id, "notes.md", "text/markdown", text.into())
        .await
        .ok(201);
    assert_eq!(
        file.text_status,
        api::TextStatus::Pending,
        "the upload answers at once"
    );
    assert_eq!(file.text_error, None);

    let read = read_text(&app, file.id).await;
    assert_eq!(read.text_status, api::TextStatus::Ready);
    assert_eq!(read.text_error, None);
    assert_eq!(stored_text(&app, file.id).await.as_deref(), Some(text));
    let page: api::Page<api::FileInfo> = app.list_files(ALICE, project.id, "").await.ok(200);
    assert_eq!(page.items, [read], "the list shows the status too");

    app.delete_file(ALICE, file.id).await.assert_status(204);
    assert!(
        app.store
            .get_file_text(&user_id(ALICE), FileId::from_uuid(file.id))
            .await
            .is_err(),
        "the text goes with its file"
    );
}

#[tokio::test]
async fn a_corrupt_pdf_fails_with_a_reason_and_stays_downloadable() {
    let app = spawn_app().await;
    let project = project(&app).await;
    let bytes = b"%PDF-1.7\n1 0 obj << /Type /Catalog >> garbage".to_vec();
    let file: api::FileInfo = app
        .upload_file(
            ALICE,
            project.id,
            "broken.pdf",
            "application/pdf",
            bytes.clone(),
        )
        .await
        .ok(201);
    assert_eq!(file.content_type, "application/pdf");

    let read = read_text(&app, file.id).await;
    assert_eq!(read.text_status, api::TextStatus::Failed);
    let reason = read.text_error.unwrap_or_default();
    assert!(reason.starts_with("The file looks damaged"), "{reason}");
    assert_eq!(stored_text(&app, file.id).await, None);
    let download = app.download_file(ALICE, file.id).await;
    download.assert_status(200);
    assert_eq!(download.body.as_ref(), bytes.as_slice());
}

#[tokio::test]
async fn an_image_has_no_text_from_the_start() {
    let app = spawn_app().await;
    let project = project(&app).await;
    let file: api::FileInfo = app
        .upload_file(ALICE, project.id, "dot.png", "image/png", PNG.to_vec())
        .await
        .ok(201);
    assert_eq!(file.text_status, api::TextStatus::None);
    assert_eq!(file.text_error, None);
    let fetched: api::FileInfo = app.get_file(ALICE, file.id).await.ok(200);
    assert_eq!(fetched.text_status, api::TextStatus::None);
}

#[tokio::test]
async fn the_same_bytes_uploaded_again_in_the_project_reuse_the_text_at_once() {
    let app = spawn_app().await;
    let project = project(&app).await;
    let other = app.new_project(ALICE, "Other").await;
    let text = b"name,qty\nbolts,4\n".to_vec();
    let first: api::FileInfo = app
        .upload_file(ALICE, project.id, "a.csv", "text/csv", text.clone())
        .await
        .ok(201);
    read_text(&app, first.id).await;

    let again: api::FileInfo = app
        .upload_file(ALICE, project.id, "copy.csv", "text/csv", text.clone())
        .await
        .ok(201);
    assert_eq!(
        again.text_status,
        api::TextStatus::Ready,
        "no second reading"
    );
    assert_eq!(
        stored_text(&app, again.id).await,
        Some("name,qty\nbolts,4\n".to_owned())
    );

    let elsewhere: api::FileInfo = app
        .upload_file(ALICE, other.id, "a.csv", "text/csv", text)
        .await
        .ok(201);
    assert_eq!(
        elsewhere.text_status,
        api::TextStatus::Pending,
        "another project reads its own copy"
    );
}

#[tokio::test]
async fn files_left_pending_by_a_stop_are_read_by_the_sweep_at_start() {
    let store = MemoryStore::default();
    let blobs = MemoryBlobStore::default();
    let owner = user_id(ALICE);
    let project = confab_core::Project {
        id: confab_core::ProjectId::new(),
        owner_id: owner.clone(),
        name: "P".to_owned(),
        description: None,
        created_at: confab_core::now(),
        updated_at: confab_core::now(),
        knowledge: true,
        language: confab_core::values::SearchLanguage::default(),
    };
    confab_core::ports::ProjectStore::insert_project(&store, &project)
        .await
        .unwrap();
    let mut left = Vec::new();
    for (name, bytes) in [
        ("a.txt", &b"left behind"[..]),
        ("b.pdf", &b"%PDF-1.4 broken"[..]),
    ] {
        let id = FileId::new();
        let file = FileMeta {
            id,
            project_id: project.id,
            owner_id: owner.clone(),
            filename: name.to_owned(),
            content_type: if name.ends_with("pdf") {
                "application/pdf"
            } else {
                "text/plain"
            }
            .to_owned(),
            size_bytes: bytes.len() as u64,
            sha256: sha256_hex(bytes),
            storage_key: format!("{}/{id}", project.id),
            created_at: confab_core::now(),
            text_status: TextStatus::Pending,
            text_error: None,
        };
        let body = futures::stream::iter([Ok(bytes::Bytes::copy_from_slice(bytes))]);
        blobs.put(&file.storage_key, Box::pin(body)).await.unwrap();
        store.insert_file(&file).await.unwrap();
        left.push(file);
    }
    let files = FileService::new(
        Arc::new(store.clone()),
        Arc::new(store.clone()),
        Arc::new(blobs),
        Arc::new(BlockingExtractor::new(confab_extract::Limits::default())),
        1024,
    );

    start_pending_sweep(files);

    let statuses = eventually("the sweep reads both files", || async {
        let mut statuses = Vec::new();
        for file in &left {
            let got = store.get_file(&owner, file.id).await.unwrap();
            if got.text_status == TextStatus::Pending {
                return None;
            }
            statuses.push(got.text_status);
        }
        Some(statuses)
    })
    .await;
    assert_eq!(statuses, [TextStatus::Ready, TextStatus::Failed]);
    assert_eq!(
        store
            .get_file_text(&owner, left[0].id)
            .await
            .unwrap()
            .as_deref(),
        Some("left behind")
    );
}
