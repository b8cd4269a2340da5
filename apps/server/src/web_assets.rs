//! Placeholder until the browser client is embedded.
use actix_web::{HttpRequest, HttpResponse};

pub async fn serve(_req: HttpRequest) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .body("<!doctype html><title>Confab</title><p>Confab</p>")
}
