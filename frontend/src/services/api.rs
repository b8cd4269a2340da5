//! Typed calls to the HTTP API (`/api/*`) with the session's bearer token.

use confab_api_types::{Page, Problem};
use serde::{Serialize, de::DeserializeOwned};
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use yew::Callback;

use crate::{
    services::{clerk, local_session, oidc},
    wording::ApiError,
};

/// How requests prove who is asking.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Credentials {
    /// Public routes only (`/api/config`, `/api/auth/dev-login`).
    Anonymous,
    /// A token from `POST /api/auth/dev-login`.
    Dev { token: String },
    /// Clerk: a fresh session token is asked of Clerk before each request (they live 60 s).
    Clerk,
    /// The server's identity provider: a bearer token from the server's session cookie,
    /// renewed before it expires ([`crate::services::oidc`]).
    Oidc,
    /// A built-in account: the stored access token, renewed with the stored refresh token
    /// before it expires and once after a 401 ([`crate::services::local_session`]).
    Local,
}

/// The API client of one session.
#[derive(Clone, PartialEq)]
pub struct Api {
    credentials: Credentials,
    on_unauthorized: Option<Callback<()>>,
}

impl Api {
    /// A client for the public routes.
    pub fn anonymous() -> Self {
        Self {
            credentials: Credentials::Anonymous,
            on_unauthorized: None,
        }
    }

    /// A client that signs its requests; `on_unauthorized` runs when the server answers 401.
    pub fn new(credentials: Credentials, on_unauthorized: Callback<()>) -> Self {
        Self {
            credentials,
            on_unauthorized: Some(on_unauthorized),
        }
    }

    /// The bearer token for the next request; a 401 (no session any more) ends the session.
    pub async fn bearer(&self) -> Result<Option<String>, ApiError> {
        self.credential().await.inspect_err(|e| {
            if e.is_unauthenticated()
                && let Some(cb) = &self.on_unauthorized
            {
                cb.emit(());
            }
        })
    }

    /// The bearer token for the next request, without ending the session on a 401.
    async fn credential(&self) -> Result<Option<String>, ApiError> {
        match &self.credentials {
            Credentials::Anonymous => Ok(None),
            Credentials::Dev { token } => Ok(Some(token.clone())),
            Credentials::Clerk => match clerk::session_token().await {
                Ok(Some(token)) => Ok(Some(token)),
                Ok(None) | Err(_) => Err(ApiError::from_status(401, None, None)),
            },
            Credentials::Oidc => oidc::token().await.map(Some),
            Credentials::Local => local_session::token().await.map(Some),
        }
    }

    /// Sends a request and returns the response when its status is 2xx; otherwise the error,
    /// decoded from its problem+json body.
    pub async fn request(
        &self,
        method: &str,
        path: &str,
        json_body: Option<&str>,
        accept: &str,
        signal: Option<&web_sys::AbortSignal>,
    ) -> Result<web_sys::Response, ApiError> {
        self.request_with(method, path, json_body, accept, signal, None)
            .await
    }

    /// [`Api::request`] with one more header (`Last-Event-ID` when following a reply).
    pub async fn request_with(
        &self,
        method: &str,
        path: &str,
        json_body: Option<&str>,
        accept: &str,
        signal: Option<&web_sys::AbortSignal>,
        header: Option<(&str, &str)>,
    ) -> Result<web_sys::Response, ApiError> {
        let first = self
            .fetch_once(method, path, json_body, accept, signal, header)
            .await;
        // A built-in account's token may have been refused (revoked, or the clock of this
        // computer is off): renew once and try again before giving up on the session.
        let answer = match first {
            Err(e) if e.is_unauthenticated() && self.credentials == Credentials::Local => {
                match local_session::renew().await {
                    Ok(_) => {
                        self.fetch_once(method, path, json_body, accept, signal, header)
                            .await
                    }
                    Err(renewal) => Err(renewal),
                }
            }
            other => other,
        };
        match answer {
            Err(err) if err.is_unauthenticated() => {
                if let Some(cb) = &self.on_unauthorized {
                    cb.emit(());
                }
                Err(err)
            }
            other => other,
        }
    }

    /// One request with the current credentials (no renewal after a 401).
    async fn fetch_once(
        &self,
        method: &str,
        path: &str,
        json_body: Option<&str>,
        accept: &str,
        signal: Option<&web_sys::AbortSignal>,
        header: Option<(&str, &str)>,
    ) -> Result<web_sys::Response, ApiError> {
        let js = |_e: JsValue| ApiError::network();
        let headers = web_sys::Headers::new().map_err(js)?;
        headers.set("Accept", accept).map_err(js)?;
        if let Some((name, value)) = header {
            headers.set(name, value).map_err(js)?;
        }
        if let Some(token) = self.credential().await? {
            headers
                .set("Authorization", &format!("Bearer {token}"))
                .map_err(js)?;
        }
        let init = web_sys::RequestInit::new();
        init.set_method(method);
        if let Some(body) = json_body {
            headers
                .set("Content-Type", "application/json")
                .map_err(js)?;
            init.set_body(&JsValue::from_str(body));
        }
        init.set_headers(&headers);
        init.set_signal(signal);
        let request = web_sys::Request::new_with_str_and_init(path, &init).map_err(js)?;
        let window = web_sys::window().ok_or_else(ApiError::network)?;
        let response: web_sys::Response = JsFuture::from(window.fetch_with_request(&request))
            .await
            .map_err(js)?
            .dyn_into()
            .map_err(js)?;
        if response.ok() {
            return Ok(response);
        }
        Err(error_from_response(&response).await)
    }

    /// `GET` a JSON resource.
    pub async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, ApiError> {
        let response = self
            .request("GET", path, None, "application/json", None)
            .await?;
        read_json(&response).await
    }

    /// `POST`/`PATCH` a JSON body and read the JSON answer.
    pub async fn send<B: Serialize, T: DeserializeOwned>(
        &self,
        method: &str,
        path: &str,
        body: &B,
    ) -> Result<T, ApiError> {
        let body = crate::json::encode(body).map_err(|_| ApiError::unreadable())?;
        let response = self
            .request(method, path, Some(&body), "application/json", None)
            .await?;
        read_json(&response).await
    }

    /// `POST` with no body and read the JSON answer (making a share link).
    pub async fn post_empty<T: DeserializeOwned>(&self, path: &str) -> Result<T, ApiError> {
        let response = self
            .request("POST", path, None, "application/json", None)
            .await?;
        read_json(&response).await
    }

    /// A request with no body whose answer has none either (`DELETE` → 204, cancel → 202).
    pub async fn call(&self, method: &str, path: &str) -> Result<(), ApiError> {
        self.request(method, path, None, "application/json", None)
            .await
            .map(drop)
    }

    /// Every item of a paged list, following `next_cursor` to the end.
    pub async fn list_all<T: DeserializeOwned>(&self, path: &str) -> Result<Vec<T>, ApiError> {
        let mut items = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let url = match &cursor {
                Some(c) => format!("{path}?limit=200&cursor={}", encode_query(c)),
                None => format!("{path}?limit=200"),
            };
            let page: Page<T> = self.get(&url).await?;
            items.extend(page.items);
            match page.next_cursor {
                Some(next) if Some(&next) != cursor.as_ref() => cursor = Some(next),
                _ => return Ok(items),
            }
        }
    }

    /// `GET` raw bytes as a blob (file downloads).
    pub async fn get_blob(&self, path: &str) -> Result<web_sys::Blob, ApiError> {
        let response = self.request("GET", path, None, "*/*", None).await?;
        let promise = response.blob().map_err(|_| ApiError::unreadable())?;
        JsFuture::from(promise)
            .await
            .map_err(|_| ApiError::network())?
            .dyn_into()
            .map_err(|_| ApiError::unreadable())
    }

    /// `GET` a file download: its bytes and the name the server gave it
    /// (`Content-Disposition`), if any.
    pub async fn get_download(
        &self,
        path: &str,
    ) -> Result<(web_sys::Blob, Option<String>), ApiError> {
        let response = self.request("GET", path, None, "*/*", None).await?;
        let name = response
            .headers()
            .get("Content-Disposition")
            .ok()
            .flatten()
            .and_then(|v| filename_from_disposition(&v));
        let promise = response.blob().map_err(|_| ApiError::unreadable())?;
        let blob = JsFuture::from(promise)
            .await
            .map_err(|_| ApiError::network())?
            .dyn_into()
            .map_err(|_| ApiError::unreadable())?;
        Ok((blob, name))
    }
}

/// The file name of a `Content-Disposition` header: `filename*=UTF-8''…` (percent-encoded)
/// when present, else `filename="…"`; `None` without one, or when it is blank or names a path.
pub fn filename_from_disposition(header: &str) -> Option<String> {
    let params: Vec<(String, &str)> = header
        .split(';')
        .skip(1)
        .filter_map(|p| p.split_once('='))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim()))
        .collect();
    let extended = params
        .iter()
        .find(|(k, _)| k == "filename*")
        .and_then(|(_, v)| {
            let (charset, rest) = v.split_once('\'')?;
            let (_, encoded) = rest.split_once('\'')?;
            charset
                .eq_ignore_ascii_case("utf-8")
                .then(|| percent_decode(encoded))
                .flatten()
        });
    let plain = || {
        params.iter().find(|(k, _)| k == "filename").map(|(_, v)| {
            v.strip_prefix('"')
                .and_then(|v| v.strip_suffix('"'))
                .unwrap_or(v)
                .replace("\\\"", "\"")
        })
    };
    extended
        .or_else(plain)
        .filter(|n| !n.trim().is_empty() && !n.contains(['/', '\\']))
}

fn percent_decode(s: &str) -> Option<String> {
    let mut out = Vec::with_capacity(s.len());
    let mut bytes = s.bytes();
    while let Some(b) = bytes.next() {
        if b == b'%' {
            let hex = [bytes.next()?, bytes.next()?];
            out.push(u8::from_str_radix(std::str::from_utf8(&hex).ok()?, 16).ok()?);
        } else {
            out.push(b);
        }
    }
    String::from_utf8(out).ok()
}

async fn response_text(response: &web_sys::Response) -> Option<String> {
    let promise = response.text().ok()?;
    JsFuture::from(promise).await.ok()?.as_string()
}

async fn read_json<T: DeserializeOwned>(response: &web_sys::Response) -> Result<T, ApiError> {
    let text = response_text(response)
        .await
        .ok_or_else(ApiError::network)?;
    crate::json::decode(&text).map_err(|_| ApiError::unreadable())
}

/// Decodes a non-2xx answer: its status, problem+json body and `Retry-After`.
pub async fn error_from_response(response: &web_sys::Response) -> ApiError {
    let retry_after = response
        .headers()
        .get("Retry-After")
        .ok()
        .flatten()
        .and_then(|v| v.trim().parse().ok());
    let problem = match response_text(response).await {
        Some(text) => crate::json::decode::<Problem>(&text).ok(),
        None => None,
    };
    ApiError::from_status(response.status(), problem, retry_after)
}

/// Percent-encodes a query value (cursors are opaque and may hold `+`, `/` or `=`).
pub fn encode_query(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A bare `POST` outside [`Api`] (no bearer, no renewal): `Accept: application/json`, the
/// extra headers, and the body if any. Used by the session services that obtain tokens.
pub(crate) async fn raw_post(
    path: &str,
    extra_headers: &[(&str, &str)],
    body: Option<&str>,
) -> Result<web_sys::Response, ApiError> {
    let js = |_e: JsValue| ApiError::network();
    let headers = web_sys::Headers::new().map_err(js)?;
    headers.set("Accept", "application/json").map_err(js)?;
    for (name, value) in extra_headers {
        headers.set(name, value).map_err(js)?;
    }
    let init = web_sys::RequestInit::new();
    init.set_method("POST");
    init.set_headers(&headers);
    if let Some(body) = body {
        init.set_body(&JsValue::from_str(body));
    }
    let request = web_sys::Request::new_with_str_and_init(path, &init).map_err(js)?;
    let window = web_sys::window().ok_or_else(ApiError::network)?;
    JsFuture::from(window.fetch_with_request(&request))
        .await
        .map_err(js)?
        .dyn_into()
        .map_err(js)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_downloads_name_is_read_from_content_disposition() {
        assert_eq!(
            filename_from_disposition("attachment; filename=\"Trip plan.md\"").as_deref(),
            Some("Trip plan.md")
        );
        assert_eq!(
            filename_from_disposition(
                "attachment; filename=\"Caf.md\"; filename*=UTF-8''Caf%C3%A9%20notes.md"
            )
            .as_deref(),
            Some("Café notes.md")
        );
        assert_eq!(
            filename_from_disposition("attachment; filename=plain.json").as_deref(),
            Some("plain.json")
        );
        assert_eq!(filename_from_disposition("attachment"), None);
        assert_eq!(filename_from_disposition("attachment; filename=\"\""), None);
        assert_eq!(
            filename_from_disposition("attachment; filename=\"../etc/passwd\""),
            None
        );
    }

    #[test]
    fn cursors_are_percent_encoded() {
        assert_eq!(encode_query("abc-_.~"), "abc-_.~");
        assert_eq!(encode_query("a+b/c=="), "a%2Bb%2Fc%3D%3D");
    }
}
