//! Uploads, metadata, downloads and deletion of files.

use confab_api_types as api;
use confab_tests::http::{ALICE, AppOptions, TestApp, spawn_app};
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
        7,
        "File is {{id, project_id, filename, content_type, size_bytes, sha256, created_at}}: {body}"
    );
    let file: api::FileInfo = answer.json();
    assert_eq!(file.project_id, project.id);
    assert_eq!(file.filename, "data.bin");
    assert_eq!(file.size_bytes, bytes.len() as u64);
    assert_eq!(file.sha256, sha256_hex(&bytes));
    assert_eq!(file.content_type, "application/octet-stream");

    let fetched: api::FileInfo = app.get_file(ALICE, file.id).await.ok(200);
    assert_eq!(fetched, file);
    let page: api::Page<api::FileInfo> = app.list_files(ALICE, project.id, "").await.ok(200);
    assert_eq!(page.items, std::slice::from_ref(&file));

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
        assert!(page.items.contains(file));
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
