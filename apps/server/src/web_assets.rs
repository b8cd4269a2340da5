//! The browser client, embedded at build time by `build.rs` (see there), served at `/`.
//!
//! - `/` and every other non-API path that is not a file: index.html, `Cache-Control: no-cache`,
//!   an `ETag`, and a Content-Security-Policy that allows only this origin (plus
//!   `'wasm-unsafe-eval'` for the wasm and, in Clerk mode, Clerk's Frontend API).
//! - the hashed files (`/app-<hash>.js`, `/app-<hash>_bg.wasm`, `/app-<hash>.css`, the icon):
//!   `Cache-Control: public, max-age=31536000, immutable`, their own content type, and the
//!   pre-compressed gzip bytes when the client accepts gzip (`Vary: Accept-Encoding` always).

use actix_web::{
    HttpRequest, HttpResponse, ResponseError,
    http::{Method, StatusCode, header},
    web,
};

use crate::error::ApiError;
use crate::state::AppState;

/// One embedded file.
struct Asset {
    /// The URL path (`/` for index.html).
    path: &'static str,
    content_type: &'static str,
    /// A hashed name whose content never changes.
    immutable: bool,
    /// A strong validator for the plain bytes.
    etag: &'static str,
    body: &'static [u8],
    /// The same bytes gzipped, when that is smaller.
    gzip: Option<&'static [u8]>,
}

include!(concat!(env!("OUT_DIR"), "/web_assets.rs"));

const IMMUTABLE: &str = "public, max-age=31536000, immutable";

/// The Content-Security-Policy of the client's page.
///
/// Only this origin may provide scripts, styles, images, fonts and connections;
/// `'wasm-unsafe-eval'` lets the page compile its WebAssembly. With Clerk (`clerk_host` is the
/// instance's Frontend API host, e.g. `clerk.example.com`), what Clerk's own script needs is
/// added: that host for scripts, connections and frames, Clerk's image host, inline styles
/// (its components inject them), blob workers and Cloudflare's bot check.
pub fn csp(clerk_host: Option<&str>) -> String {
    match clerk_host {
        None => "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; style-src 'self'; \
                 img-src 'self' data:; font-src 'self'; connect-src 'self'; object-src 'none'; \
                 base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
            .to_owned(),
        Some(host) => {
            let clerk = format!("https://{host}");
            format!(
                "default-src 'self'; \
                 script-src 'self' 'wasm-unsafe-eval' {clerk} https://challenges.cloudflare.com; \
                 style-src 'self' 'unsafe-inline'; img-src 'self' data: https://img.clerk.com; \
                 font-src 'self'; connect-src 'self' {clerk}; \
                 frame-src {clerk} https://challenges.cloudflare.com; worker-src 'self' blob:; \
                 object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
            )
        }
    }
}

/// True when an `Accept-Encoding` value allows gzip (`gzip` or `*`, with a non-zero q).
fn accepts_gzip(accept_encoding: &str) -> bool {
    accept_encoding.split(',').any(|item| {
        let mut parts = item.split(';');
        let coding = parts.next().unwrap_or("").trim();
        if !(coding.eq_ignore_ascii_case("gzip") || coding == "*") {
            return false;
        }
        parts
            .filter_map(|p| p.trim().strip_prefix("q="))
            .all(|q| q.trim().parse::<f32>().is_ok_and(|q| q > 0.0))
    })
}

/// True for paths that name a file (the last segment has an extension the client uses):
/// a missing one is a 404, not the page.
fn looks_like_a_file(path: &str) -> bool {
    let last = path.rsplit('/').next().unwrap_or("");
    matches!(
        last.rsplit_once('.').map(|(_, ext)| ext),
        Some("js" | "mjs" | "wasm" | "css" | "map" | "ico" | "png" | "svg" | "json" | "txt" | "gz")
    )
}

/// Answers a request for the browser client: GET or HEAD of `/`, a hashed file, or any other
/// non-API path (→ index.html, so the client's own routes survive a reload).
pub async fn serve(req: HttpRequest) -> HttpResponse {
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return ApiError::MethodNotAllowed { allow: "GET, HEAD" }.error_response();
    }
    let path = req.path();
    if path == "/api" || path.starts_with("/api/") {
        return ApiError::NotFound("There is no such API route.").error_response();
    }
    if let Some(asset) = ASSETS.iter().find(|a| a.path == path) {
        let cache = if asset.immutable {
            IMMUTABLE
        } else {
            "no-cache"
        };
        return respond(&req, asset, cache, None);
    }
    if path != "/" && looks_like_a_file(path) {
        return ApiError::NotFound("There is no such file.").error_response();
    }
    let clerk_host = req
        .app_data::<web::Data<AppState>>()
        .and_then(|s| s.clerk_host.clone());
    respond(&req, &INDEX, "no-cache", Some(csp(clerk_host.as_deref())))
}

fn respond(
    req: &HttpRequest,
    asset: &Asset,
    cache_control: &'static str,
    csp: Option<String>,
) -> HttpResponse {
    let gzip = asset.gzip.filter(|_| {
        req.headers()
            .get(header::ACCEPT_ENCODING)
            .and_then(|v| v.to_str().ok())
            .is_some_and(accepts_gzip)
    });
    // Each encoding is a different representation: a different strong validator.
    let etag = match gzip {
        Some(_) => format!("{}-gz\"", asset.etag.trim_end_matches('"')),
        None => asset.etag.to_owned(),
    };
    let not_modified = req
        .headers()
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag || t.trim() == "*"));

    let mut builder = HttpResponse::build(if not_modified {
        StatusCode::NOT_MODIFIED
    } else {
        StatusCode::OK
    });
    builder
        .insert_header((header::CACHE_CONTROL, cache_control))
        .insert_header((header::VARY, "Accept-Encoding"))
        .insert_header((header::ETAG, etag))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"));
    if let Some(csp) = csp {
        builder
            .insert_header((header::CONTENT_SECURITY_POLICY, csp))
            .insert_header((header::REFERRER_POLICY, "no-referrer"))
            .insert_header((header::X_FRAME_OPTIONS, "DENY"));
    }
    if not_modified {
        return builder.finish();
    }
    builder.insert_header((header::CONTENT_TYPE, asset.content_type));
    match gzip {
        Some(bytes) => builder
            .insert_header((header::CONTENT_ENCODING, "gzip"))
            .body(bytes),
        None => builder.body(asset.body),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::{body::to_bytes, test::TestRequest};

    async fn get(path: &str, headers: &[(&str, &str)]) -> (HttpResponse, Vec<u8>) {
        let mut req = TestRequest::get().uri(path);
        for (k, v) in headers {
            req = req.insert_header((*k, *v));
        }
        let resp = serve(req.to_http_request()).await;
        let (resp, body) = resp.into_parts();
        let bytes = to_bytes(body).await.unwrap().to_vec();
        (resp.set_body(()).map_into_boxed_body(), bytes)
    }

    fn header<'a>(resp: &'a HttpResponse, name: &str) -> Option<&'a str> {
        resp.headers().get(name).map(|v| v.to_str().unwrap())
    }

    #[actix_web::test]
    async fn the_root_is_the_page_with_a_strict_csp_and_no_cache() {
        let (resp, body) = get("/", &[]).await;
        assert_eq!(resp.status(), StatusCode::OK);
        assert_eq!(
            header(&resp, "content-type"),
            Some("text/html; charset=utf-8")
        );
        assert_eq!(header(&resp, "cache-control"), Some("no-cache"));
        let csp = header(&resp, "content-security-policy").unwrap();
        assert!(
            csp.contains("script-src 'self' 'wasm-unsafe-eval'"),
            "{csp}"
        );
        assert!(!csp.contains("unsafe-inline"), "{csp}");
        assert!(
            String::from_utf8(body)
                .unwrap()
                .contains("<title>Confab</title>")
        );
    }

    #[actix_web::test]
    async fn client_routes_are_answered_with_the_page() {
        let (root, root_body) = get("/", &[]).await;
        let (resp, body) = get("/p/0190f0f0-0000-7000-8000-000000000000/c/abc", &[]).await;
        assert_eq!(resp.status(), StatusCode::OK);
        assert_eq!(body, root_body);
        assert_eq!(header(&resp, "etag"), header(&root, "etag"));
    }

    #[actix_web::test]
    async fn hashed_assets_are_immutable_with_their_content_type() {
        for asset in ASSETS {
            let (resp, body) = get(asset.path, &[]).await;
            assert_eq!(resp.status(), StatusCode::OK, "{}", asset.path);
            assert_eq!(header(&resp, "cache-control"), Some(IMMUTABLE));
            assert_eq!(header(&resp, "content-type"), Some(asset.content_type));
            assert_eq!(header(&resp, "content-encoding"), None);
            assert_eq!(body, asset.body);
            if asset.path.ends_with(".wasm") {
                assert_eq!(asset.content_type, "application/wasm");
                assert_eq!(&body[..4], b"\0asm");
            }
        }
    }

    #[actix_web::test]
    async fn gzip_is_served_only_to_clients_that_accept_it() {
        let Some(asset) = ASSETS.iter().chain([&INDEX]).find(|a| a.gzip.is_some()) else {
            return;
        };
        let (resp, body) = get(asset.path, &[("accept-encoding", "br, gzip;q=0.8")]).await;
        assert_eq!(header(&resp, "content-encoding"), Some("gzip"));
        assert_eq!(header(&resp, "vary"), Some("Accept-Encoding"));
        assert_eq!(body, asset.gzip.unwrap());
        // A gzip member whose trailer (ISIZE) gives the plain length.
        assert_eq!(&body[..2], &[0x1f, 0x8b]);
        let n = body.len();
        let isize = u32::from_le_bytes([body[n - 4], body[n - 3], body[n - 2], body[n - 1]]);
        assert_eq!(isize as usize, asset.body.len());

        let (resp, body) = get(asset.path, &[("accept-encoding", "gzip;q=0, br")]).await;
        assert_eq!(header(&resp, "content-encoding"), None);
        assert_eq!(header(&resp, "vary"), Some("Accept-Encoding"));
        assert_eq!(body, asset.body);
    }

    #[actix_web::test]
    async fn a_matching_etag_answers_304() {
        let (resp, _) = get("/", &[]).await;
        let etag = header(&resp, "etag").unwrap().to_owned();
        let (resp, body) = get("/", &[("if-none-match", &etag)]).await;
        assert_eq!(resp.status(), StatusCode::NOT_MODIFIED);
        assert!(body.is_empty());
    }

    #[actix_web::test]
    async fn missing_files_and_api_paths_are_404_not_the_page() {
        for path in [
            "/app-0000000000000000.js",
            "/favicon.ico",
            "/api/nope",
            "/api",
        ] {
            let (resp, _) = get(path, &[]).await;
            assert_eq!(resp.status(), StatusCode::NOT_FOUND, "{path}");
            assert_eq!(
                header(&resp, "content-type"),
                Some("application/problem+json")
            );
        }
    }

    #[actix_web::test]
    async fn other_methods_are_405_with_allow() {
        let resp = serve(TestRequest::post().uri("/").to_http_request()).await;
        assert_eq!(resp.status(), StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(header(&resp, "allow"), Some("GET, HEAD"));
    }

    #[test]
    fn accept_encoding_is_parsed_with_q_values() {
        assert!(accepts_gzip("gzip"));
        assert!(accepts_gzip("deflate, GZIP;q=0.5"));
        assert!(accepts_gzip("*"));
        assert!(!accepts_gzip("gzip;q=0"));
        assert!(!accepts_gzip("br, deflate"));
        assert!(!accepts_gzip("x-gzip2"));
    }

    #[test]
    fn the_csp_allows_clerk_only_in_clerk_mode() {
        let plain = csp(None);
        assert!(!plain.contains("clerk"));
        assert!(plain.contains("connect-src 'self';"));
        let clerk = csp(Some("clerk.example.com"));
        assert!(clerk.contains("script-src 'self' 'wasm-unsafe-eval' https://clerk.example.com"));
        assert!(clerk.contains("connect-src 'self' https://clerk.example.com"));
    }

    #[test]
    fn file_like_paths_are_recognized() {
        assert!(looks_like_a_file("/app-abc.js"));
        assert!(looks_like_a_file("/x/y.wasm"));
        assert!(!looks_like_a_file(
            "/p/0190f0f0-0000-7000-8000-000000000000"
        ));
        assert!(!looks_like_a_file("/"));
    }
}
