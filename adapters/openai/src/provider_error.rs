//! A provider's error report, read from any of the shapes OpenAI-compatible servers send, and
//! what it means as an `LlmError`.
//!
//! Reports come as an error status before the stream (OpenAI's `{"error": {...}}`, a bare
//! `{"message", "type", "code"}` object as vLLM sends, FastAPI's `{"detail": ...}`, a plain
//! string, a short text body) or as an event inside it (Responses API `error` and
//! `response.failed`, a Chat Completions `{"error": ...}` chunk). Their `code` may be a string
//! or a number, and many servers put what matters only in the message ("Invalid model name
//! passed in model=…"). `classify` sorts a report into one of the failures the core knows how
//! to explain to a person: the core never shows the provider's own message, which may echo a
//! key, an internal address or the prompt; the message goes to the log, with anything that
//! looks like a credential removed.

use std::time::Duration;

use confab_core::LlmError;
use serde_json::Value;

/// The longest provider message kept (for the log); longer ones are cut at a character.
const MAX_MESSAGE_CHARS: usize = 500;

/// The longest plain-text error body taken as a message: longer ones are pages, not messages.
const MAX_PLAIN_BODY: usize = 300;

/// The codes `classify` gives to `LlmError::Upstream`, which the core turns into sentences.
pub(crate) mod code {
    pub(crate) const INSUFFICIENT_QUOTA: &str = "insufficient_quota";
    pub(crate) const MODEL_NOT_FOUND: &str = "model_not_found";
    pub(crate) const CONTEXT_LENGTH_EXCEEDED: &str = "context_length_exceeded";
    pub(crate) const OVERLOADED: &str = "overloaded";
    pub(crate) const NOT_FOUND: &str = "not_found";
    pub(crate) const INVALID_REQUEST: &str = "invalid_request_error";
    pub(crate) const SERVER_ERROR: &str = "server_error";
}

/// What a provider said about a failure: OpenAI's error object, or the parts of one found in
/// another shape. Every part is optional.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct ProviderError {
    pub(crate) message: Option<String>,
    /// The `type` (`invalid_request_error`, `insufficient_quota`, `NotFoundError`, …), or a
    /// `status` word (`INVALID_ARGUMENT`).
    pub(crate) kind: Option<String>,
    /// The `code`, a string or a number.
    pub(crate) code: Option<String>,
}

impl ProviderError {
    /// The error report in a JSON value of any known shape; `None` when there is none.
    pub(crate) fn find(value: &Value) -> Option<Self> {
        match value {
            Value::Array(items) => items.first().and_then(Self::find),
            Value::String(_) => Some(Self {
                message: text(value),
                ..Self::default()
            }),
            Value::Object(object) => match object.get("error") {
                Some(Value::Object(_) | Value::Array(_)) => {
                    let mut found = object.get("error").and_then(Self::find)?;
                    if found.message.is_none() {
                        found.message = object.get("message").and_then(text);
                    }
                    Some(found)
                }
                // `{"error": "Bad Request", "message": "…"}` or `{"error": "model not found"}`.
                Some(error @ Value::String(_)) => Some(Self {
                    message: object.get("message").and_then(text).or_else(|| text(error)),
                    ..Self::default()
                }),
                _ => match object.get("detail") {
                    Some(detail @ Value::Object(_)) => Self::find(detail),
                    Some(detail @ (Value::String(_) | Value::Array(_))) => Some(Self {
                        message: text(detail),
                        ..Self::default()
                    }),
                    _ => Self::from_fields(object),
                },
            },
            _ => None,
        }
    }

    /// The report given as an object's own `message`, `type` and `code`.
    fn from_fields(object: &serde_json::Map<String, Value>) -> Option<Self> {
        let found = Self {
            message: object.get("message").and_then(text),
            kind: object
                .get("type")
                .or_else(|| object.get("status"))
                .and_then(Value::as_str)
                .map(str::trim)
                // A Responses `error` event's own `type` is the event's name.
                .filter(|kind| !kind.is_empty() && *kind != "error")
                .map(str::to_owned),
            code: object.get("code").and_then(|code| match code {
                Value::String(s) => Some(s.trim().to_owned()).filter(|s| !s.is_empty()),
                Value::Number(n) => Some(n.to_string()),
                _ => None,
            }),
        };
        (found != Self::default()).then_some(found)
    }

    /// The report in an error answer's body; whatever cannot be read gives an empty report.
    pub(crate) fn from_body(body: &[u8]) -> Self {
        if let Ok(value) = serde_json::from_slice::<Value>(body) {
            return Self::find(&value).unwrap_or_default();
        }
        let text = String::from_utf8_lossy(body);
        let text = text.trim();
        let plain = !text.is_empty() && text.len() <= MAX_PLAIN_BODY && !text.starts_with('<');
        Self {
            message: plain.then(|| text.to_owned()),
            ..Self::default()
        }
    }

    /// The code, else the type, as the provider wrote it (for the log).
    fn raw_code(&self) -> Option<&str> {
        self.code.as_deref().or(self.kind.as_deref())
    }
}

/// A message found in a JSON value: a string, or the first one in a list of them or of
/// `{"msg"}`/`{"message"}` objects (FastAPI's validation errors).
fn text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(bounded(s.trim())).filter(|s| !s.is_empty()),
        Value::Array(items) => items.iter().find_map(text),
        Value::Object(object) => object
            .get("message")
            .or_else(|| object.get("msg"))
            .and_then(text),
        _ => None,
    }
}

/// At most `MAX_MESSAGE_CHARS` characters of `s` (cut at a character, never inside one).
fn bounded(s: &str) -> String {
    match s.char_indices().nth(MAX_MESSAGE_CHARS) {
        Some((end, _)) => format!("{}…", &s[..end]),
        None => s.to_owned(),
    }
}

/// The failures the core explains differently.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Unauthorized,
    Quota,
    ContentFilter,
    ContextLength,
    RateLimited,
    ModelNotFound,
    Overloaded,
    NotFound,
    InvalidRequest,
    Server,
    Other,
}

/// What the report means, from the HTTP status (`None` for an event inside a stream) and the
/// report's code, type and words. The order matters: a 429 that says "quota" is not a rate
/// limit, a 400 that names an unknown model is about the model.
fn kind(status: Option<u16>, report: &ProviderError) -> Kind {
    let ids: Vec<String> = [&report.code, &report.kind]
        .into_iter()
        .flatten()
        .map(|id| id.to_ascii_lowercase())
        .collect();
    let id_has = |needles: &[&str]| {
        ids.iter()
            .any(|id| needles.iter().any(|needle| id.contains(needle)))
    };
    let message = report.message.as_deref().unwrap_or_default().to_lowercase();
    let says = |needles: &[&str]| needles.iter().any(|needle| message.contains(needle));

    if matches!(status, Some(401 | 403)) {
        return Kind::Unauthorized;
    }
    if status == Some(402)
        || id_has(&["insufficient_quota", "quota_exceeded", "billing", "credit"])
        || says(&[
            "exceeded your current quota",
            "insufficient_quota",
            "insufficient quota",
            "credit balance is too low",
            "insufficient credits",
            "insufficient balance",
        ])
    {
        return Kind::Quota;
    }
    if id_has(&[
        "invalid_api_key",
        "api_key",
        "authentication",
        "permission",
        "unauthorized",
        "unauthenticated",
        "forbidden",
    ]) {
        return Kind::Unauthorized;
    }
    if id_has(&["content_filter", "content_policy", "moderation"])
        || says(&[
            "content management policy",
            "content filter",
            "content policy",
        ])
    {
        return Kind::ContentFilter;
    }
    if id_has(&["context_length", "context_window"])
        || says(&[
            "maximum context length",
            "context length",
            "context window",
            "prompt is too long",
        ])
    {
        return Kind::ContextLength;
    }
    if status == Some(429)
        || id_has(&["rate_limit", "ratelimit", "too_many_requests"])
        || ids.iter().any(|id| id == "requests" || id == "tokens")
    {
        return Kind::RateLimited;
    }
    if id_has(&["model_not_found"]) || names_an_unknown_model(&message) {
        return Kind::ModelNotFound;
    }
    if matches!(status, Some(503 | 529))
        || id_has(&["overloaded", "unavailable"])
        || says(&["overloaded"])
    {
        return Kind::Overloaded;
    }
    if status == Some(404) || id_has(&["not_found", "notfound"]) {
        return Kind::NotFound;
    }
    if matches!(status, Some(400 | 405 | 413 | 415 | 422))
        || id_has(&[
            "invalid_request",
            "bad_request",
            "badrequest",
            "invalid_argument",
            "unprocessable",
        ])
    {
        return Kind::InvalidRequest;
    }
    if status.is_some_and(|s| s >= 500) || id_has(&["server_error", "internal", "api_error"]) {
        return Kind::Server;
    }
    Kind::Other
}

/// Whether a (lower-case) message says the model asked for does not exist: OpenAI's "The
/// model `x` does not exist", LiteLLM's "Invalid model name passed in model=x", Ollama's
/// "model \"x\" not found", OpenRouter's "x is not a valid model ID", …
fn names_an_unknown_model(message: &str) -> bool {
    message.contains("model")
        && [
            "not found",
            "does not exist",
            "doesn't exist",
            "invalid model",
            "unknown model",
            "no such model",
            "not a valid model",
            "unsupported model",
            "model not available",
            "model is not available",
        ]
        .iter()
        .any(|phrase| message.contains(phrase))
}

/// The `LlmError` a provider's report means. `status` is the HTTP status of an error answer,
/// `None` for an error event inside a stream; `retry_after` is the wait the answer asked for.
/// The message is kept for the log only, without anything that looks like a credential (the
/// caller also removes the configured key before it logs the error).
pub(crate) fn classify(
    status: Option<u16>,
    report: &ProviderError,
    retry_after: Option<Duration>,
) -> LlmError {
    let kind = kind(status, report);
    let message = report
        .message
        .as_deref()
        .map(redact_secrets)
        .or_else(|| {
            status
                .and_then(|s| reqwest::StatusCode::from_u16(s).ok())
                .and_then(|s| s.canonical_reason())
                .map(str::to_owned)
        })
        .unwrap_or_else(|| "the provider reported a failure".to_owned());
    tracing::debug!(
        status,
        r#type = report.kind.as_deref(),
        code = report.code.as_deref(),
        meaning = ?kind,
        "a model provider's error report"
    );
    let code = match kind {
        Kind::Unauthorized => return LlmError::Unauthorized,
        Kind::ContentFilter => return LlmError::ContentFilter,
        Kind::RateLimited => return LlmError::RateLimited { retry_after },
        Kind::Quota => Some(code::INSUFFICIENT_QUOTA),
        Kind::ContextLength => Some(code::CONTEXT_LENGTH_EXCEEDED),
        Kind::ModelNotFound => Some(code::MODEL_NOT_FOUND),
        Kind::Overloaded => Some(code::OVERLOADED),
        Kind::NotFound => Some(code::NOT_FOUND),
        Kind::InvalidRequest => Some(code::INVALID_REQUEST),
        Kind::Server => Some(code::SERVER_ERROR),
        Kind::Other => report.raw_code(),
    };
    LlmError::Upstream {
        status,
        code: code.map(str::to_owned),
        message,
    }
}

/// `text` with every word that looks like a credential replaced by `[REDACTED]`: API keys
/// (`sk-…`, masked or not), the token after `Bearer`, and long random-looking strings.
pub(crate) fn redact_secrets(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut after_bearer = false;
    let mut rest = text;
    while !rest.is_empty() {
        let run = rest
            .char_indices()
            .find(|(_, c)| !is_token_char(*c))
            .map_or(rest.len(), |(i, _)| i);
        // A full stop ends a sentence more often than it belongs to a token.
        let word_len = rest[..run].trim_end_matches('.').len();
        if word_len == 0 {
            let sep_len = rest
                .char_indices()
                .find(|(_, c)| is_token_char(*c) && *c != '.')
                .map_or(rest.len(), |(i, _)| i);
            out.push_str(&rest[..sep_len]);
            rest = &rest[sep_len..];
            continue;
        }
        let word = &rest[..word_len];
        if after_bearer || looks_secret(word) {
            out.push_str("[REDACTED]");
        } else {
            out.push_str(word);
        }
        after_bearer = word.eq_ignore_ascii_case("bearer");
        rest = &rest[word_len..];
    }
    out
}

/// The characters of a token: those of keys, base64 and JWTs, and the `*` and `…` of masked
/// keys.
fn is_token_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '+' | '/' | '=' | '.' | '*' | '…')
}

fn looks_secret(word: &str) -> bool {
    let lower = word.to_ascii_lowercase();
    if [
        "sk-", "sk_", "rk-", "pk-", "sess-", "xai-", "gsk_", "ghp_", "hf_", "aiza",
    ]
    .iter()
    .any(|prefix| lower.starts_with(prefix))
        && word.len() > 4
    {
        return true;
    }
    let alphanumeric = word.chars().filter(char::is_ascii_alphanumeric).count();
    let digits = word.chars().any(|c| c.is_ascii_digit());
    let lower_case = word.chars().any(|c| c.is_ascii_lowercase());
    let upper_case = word.chars().any(|c| c.is_ascii_uppercase());
    (alphanumeric >= 20 && digits && lower_case && upper_case)
        || (alphanumeric >= 32 && digits && (lower_case || upper_case))
}

#[cfg(test)]
mod tests {

    use serde_json::json;

    use super::*;

    fn report(message: &str, kind: Option<&str>, code: Option<&str>) -> ProviderError {
        ProviderError {
            message: Some(message.to_owned()),
            kind: kind.map(str::to_owned),
            code: code.map(str::to_owned),
        }
    }

    fn upstream_code(error: &LlmError) -> Option<&str> {
        match error {
            LlmError::Upstream { code, .. } => code.as_deref(),
            _ => None,
        }
    }

    #[test]
    fn openai_error_bodies_give_code_type_and_message() {
        let body = br#"{"error":{"message":"You exceeded your current quota.","type":"insufficient_quota","param":null,"code":"insufficient_quota"}}"#;
        assert_eq!(
            ProviderError::from_body(body),
            report(
                "You exceeded your current quota.",
                Some("insufficient_quota"),
                Some("insufficient_quota")
            )
        );
    }

    #[test]
    fn compatible_servers_error_shapes_are_understood() {
        let cases: [(&[u8], ProviderError); 9] = [
            (
                br#"{"error":"model 'x' not found"}"#,
                report("model 'x' not found", None, None),
            ),
            // A numeric code (LiteLLM, Google).
            (
                br#"{"error":{"message":"m","code":404}}"#,
                report("m", None, Some("404")),
            ),
            (
                br#"{"error":{"code":400,"message":"m","status":"INVALID_ARGUMENT"}}"#,
                report("m", Some("INVALID_ARGUMENT"), Some("400")),
            ),
            // vLLM's bare error object.
            (
                br#"{"object":"error","message":"The model `x` does not exist.","type":"NotFoundError","param":null,"code":404}"#,
                report("The model `x` does not exist.", Some("NotFoundError"), Some("404")),
            ),
            // FastAPI.
            (
                br#"{"detail":"Not authenticated"}"#,
                report("Not authenticated", None, None),
            ),
            (
                br#"{"detail":[{"loc":["body","model"],"msg":"field required","type":"missing"}]}"#,
                report("field required", None, None),
            ),
            (
                br#"{"detail":{"error":{"message":"m","type":"t"}}}"#,
                report("m", Some("t"), None),
            ),
            // A list of errors (Google's compatible endpoint).
            (
                br#"[{"error":{"code":429,"message":"m","status":"RESOURCE_EXHAUSTED"}}]"#,
                report("m", Some("RESOURCE_EXHAUSTED"), Some("429")),
            ),
            (
                br#"{"error":"Bad Request","message":"max_tokens is too large"}"#,
                report("max_tokens is too large", None, None),
            ),
        ];
        for (body, expected) in cases {
            assert_eq!(
                ProviderError::from_body(body),
                expected,
                "{}",
                String::from_utf8_lossy(body)
            );
        }
    }

    #[test]
    fn text_bodies_are_taken_when_short_and_not_html() {
        assert_eq!(
            ProviderError::from_body(b"upstream down"),
            report("upstream down", None, None)
        );
        assert_eq!(
            ProviderError::from_body(b"<html>502</html>"),
            ProviderError::default()
        );
        assert_eq!(ProviderError::from_body(b""), ProviderError::default());
        assert_eq!(
            ProviderError::from_body("x".repeat(10_000).as_bytes()),
            ProviderError::default()
        );
        assert_eq!(
            ProviderError::from_body(&[0xff, 0xfe, b'a']),
            report("\u{fffd}\u{fffd}a", None, None)
        );
    }

    #[test]
    fn odd_json_gives_an_empty_report_without_panicking() {
        for body in [
            "null",
            "42",
            "[]",
            "{}",
            r#"{"error":null}"#,
            r#"{"error":{}}"#,
            r#"{"error":[]}"#,
            r#"{"error":{"message":42,"code":true,"type":["x"]}}"#,
            r#"{"detail":null}"#,
        ] {
            let found = ProviderError::from_body(body.as_bytes());
            assert_eq!(found.message, None, "{body}");
            assert_eq!(found.code, None, "{body}");
        }
    }

    #[test]
    fn long_messages_are_cut_at_a_character() {
        let long = "é".repeat(MAX_MESSAGE_CHARS + 10);
        let body = json!({"error": {"message": long}}).to_string();
        let message = ProviderError::from_body(body.as_bytes()).message.unwrap();
        assert_eq!(message.chars().count(), MAX_MESSAGE_CHARS + 1);
        assert!(message.ends_with('…'));
    }

    #[test]
    fn each_kind_of_failure_is_recognised() {
        let cases: [(Option<u16>, ProviderError, Option<&str>); 16] = [
            // LiteLLM's unknown model, with its numeric-looking code.
            (
                Some(400),
                report(
                    "litellm.BadRequestError: Invalid model name passed in model=gpt-9. Call `/v1/models` to view available models for your key.",
                    Some("invalid_request_error"),
                    Some("400"),
                ),
                Some("model_not_found"),
            ),
            (
                Some(404),
                report(
                    "The model `gpt-9` does not exist or you do not have access to it.",
                    Some("invalid_request_error"),
                    Some("model_not_found"),
                ),
                Some("model_not_found"),
            ),
            (
                Some(404),
                report(
                    "model \"llama9\" not found, try pulling it first",
                    None,
                    None,
                ),
                Some("model_not_found"),
            ),
            (
                Some(429),
                report(
                    "You exceeded your current quota, please check your plan and billing details.",
                    Some("insufficient_quota"),
                    Some("insufficient_quota"),
                ),
                Some("insufficient_quota"),
            ),
            (
                Some(402),
                report("Insufficient credits", None, Some("402")),
                Some("insufficient_quota"),
            ),
            (
                None,
                report("No credit.", None, Some("insufficient_quota")),
                Some("insufficient_quota"),
            ),
            (
                Some(400),
                report(
                    "This model's maximum context length is 128000 tokens.",
                    Some("invalid_request_error"),
                    Some("context_length_exceeded"),
                ),
                Some("context_length_exceeded"),
            ),
            (
                Some(503),
                report("Service Unavailable", None, None),
                Some("overloaded"),
            ),
            (
                Some(529),
                report("Overloaded", Some("overloaded_error"), None),
                Some("overloaded"),
            ),
            (
                None,
                report(
                    "The engine is currently overloaded.",
                    Some("server_error"),
                    None,
                ),
                Some("overloaded"),
            ),
            (
                Some(404),
                report("Invalid URL (POST /v1/wrong/responses)", None, None),
                Some("not_found"),
            ),
            (
                Some(400),
                report(
                    "Unsupported parameter: 'max_tokens'.",
                    Some("invalid_request_error"),
                    None,
                ),
                Some("invalid_request_error"),
            ),
            (
                Some(422),
                report("field required", None, None),
                Some("invalid_request_error"),
            ),
            (
                Some(500),
                report("The server had an error.", Some("server_error"), None),
                Some("server_error"),
            ),
            (
                None,
                report("The model failed.", None, Some("server_error")),
                Some("server_error"),
            ),
            (
                Some(418),
                report("teapot", None, Some("teapot")),
                Some("teapot"),
            ),
        ];
        for (status, found, expected) in cases {
            let error = classify(status, &found, None);
            assert_eq!(
                upstream_code(&error),
                expected,
                "{status:?} {found:?}: {error:?}"
            );
            assert!(matches!(error, LlmError::Upstream { status: s, .. } if s == status));
        }
    }

    #[test]
    fn auth_rate_limit_and_content_filter_failures_have_their_own_errors() {
        let wait = Some(Duration::from_secs(2));
        for (status, found) in [
            (
                Some(401),
                report(
                    "Incorrect API key provided: sk-abc…xyz.",
                    None,
                    Some("invalid_api_key"),
                ),
            ),
            (
                Some(403),
                report(
                    "Country not supported.",
                    None,
                    Some("unsupported_country_region_territory"),
                ),
            ),
            (None, report("bad key", Some("authentication_error"), None)),
            (
                Some(400),
                report("m", Some("AuthenticationError"), Some("400")),
            ),
        ] {
            assert_eq!(
                classify(status, &found, wait),
                LlmError::Unauthorized,
                "{found:?}"
            );
        }
        for (status, found) in [
            (
                Some(429),
                report(
                    "Rate limit reached for requests.",
                    Some("requests"),
                    Some("rate_limit_exceeded"),
                ),
            ),
            (
                None,
                report("Slow down.", None, Some("rate_limit_exceeded")),
            ),
            (
                Some(429),
                report("m", Some("RESOURCE_EXHAUSTED"), Some("429")),
            ),
        ] {
            assert_eq!(
                classify(status, &found, wait),
                LlmError::RateLimited { retry_after: wait },
                "{found:?}"
            );
        }
        for (status, found) in [
            (
                Some(400),
                report(
                    "The response was filtered due to the prompt triggering Azure OpenAI's content management policy.",
                    Some("invalid_request_error"),
                    Some("content_filter"),
                ),
            ),
            (None, report("m", None, Some("content_policy_violation"))),
        ] {
            assert_eq!(
                classify(status, &found, None),
                LlmError::ContentFilter,
                "{found:?}"
            );
        }
    }

    #[test]
    fn an_empty_report_is_an_upstream_error_with_the_status_reason() {
        assert_eq!(
            classify(Some(502), &ProviderError::default(), None),
            LlmError::Upstream {
                status: Some(502),
                code: Some("server_error".to_owned()),
                message: "Bad Gateway".to_owned(),
            }
        );
        assert_eq!(
            classify(None, &ProviderError::default(), None),
            LlmError::Upstream {
                status: None,
                code: None,
                message: "the provider reported a failure".to_owned(),
            }
        );
    }

    #[test]
    fn the_kept_message_has_no_credentials() {
        let found = report(
            "Incorrect API key provided: sk-proj-AbCdEf0123456789ZyXwVu. You can find your API key at https://platform.openai.com/account/api-keys.",
            None,
            Some("invalid_request_error"),
        );
        let LlmError::Upstream { message, .. } = classify(Some(400), &found, None) else {
            panic!("not upstream")
        };
        assert!(!message.contains("sk-"), "{message}");
        assert!(
            message.contains("Incorrect API key provided: [REDACTED]."),
            "{message}"
        );
    }

    #[test]
    fn credentials_are_redacted() {
        for (text, expected) in [
            (
                "Incorrect API key provided: sk-abc…xyz. You can find your API key at https://platform.openai.com/account/api-keys.",
                "Incorrect API key provided: [REDACTED]. You can find your API key at https://platform.openai.com/account/api-keys.",
            ),
            (
                "key sk-proj-********************************************Ab12 is wrong",
                "key [REDACTED] is wrong",
            ),
            (
                "sent Authorization: Bearer abc.def.ghi",
                "sent Authorization: Bearer [REDACTED]",
            ),
            ("bearer token", "bearer [REDACTED]"),
            (
                "token eyJhbGciOiJIUzI1NiJ9 and AIzaSyD-1234567890abcdefghijklmnop",
                "token [REDACTED] and [REDACTED]",
            ),
            (
                "hex 0123456789abcdef0123456789abcdef leaked",
                "hex [REDACTED] leaked",
            ),
            (
                "Invalid model name passed in model=gpt-4o-mini-2024-07-18.",
                "Invalid model name passed in model=gpt-4o-mini-2024-07-18.",
            ),
            ("naïve – ünïcode ✓", "naïve – ünïcode ✓"),
            ("", ""),
        ] {
            assert_eq!(redact_secrets(text), expected, "{text}");
        }
    }
}
