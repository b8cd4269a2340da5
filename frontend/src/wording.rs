//! Errors in words a person understands.

use confab_api_types::Problem;

/// A request that did not succeed: a non-2xx answer, or no answer at all (`status == 0`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiError {
    /// The HTTP status, or 0 when the server could not be reached.
    pub status: u16,
    /// The problem+json `code`, when the answer had one.
    pub code: Option<String>,
    /// The problem+json `detail`, when the answer had one.
    pub detail: Option<String>,
    /// The `Retry-After` header in seconds (429).
    pub retry_after: Option<u32>,
}

impl ApiError {
    /// An answer with a status and, when the body was problem+json, its details.
    pub fn from_status(status: u16, problem: Option<Problem>, retry_after: Option<u32>) -> Self {
        let (code, detail) = match problem {
            Some(p) => (
                Some(p.code).filter(|c| !c.is_empty()),
                Some(p.detail).filter(|d| !d.trim().is_empty()),
            ),
            None => (None, None),
        };
        Self {
            status,
            code,
            detail,
            retry_after,
        }
    }

    /// The request never got an answer (offline, server down, aborted, CORS …).
    pub fn network() -> Self {
        Self {
            status: 0,
            code: None,
            detail: None,
            retry_after: None,
        }
    }

    /// The answer arrived but could not be read as the type the client expected.
    pub fn unreadable() -> Self {
        Self {
            status: 0,
            code: Some("unreadable".into()),
            detail: Some(
                "The server sent an answer this page could not read. Try reloading the page."
                    .into(),
            ),
            retry_after: None,
        }
    }

    /// True for 401: the session is over and the person must sign in again. A 401
    /// `invalid_credentials` (a wrong password typed in a form) is not: the session, if
    /// any, goes on.
    pub fn is_unauthenticated(&self) -> bool {
        self.status == 401 && !self.is_invalid_credentials()
    }

    /// A wrong login/password pair (401 `invalid_credentials`).
    pub fn is_invalid_credentials(&self) -> bool {
        self.status == 401 && self.code.as_deref() == Some("invalid_credentials")
    }

    /// What to show a person.
    pub fn describe(&self) -> String {
        describe(self)
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.describe())
    }
}

/// The sentence shown for a failed request.
pub fn describe(err: &ApiError) -> String {
    let detail = err.detail.as_deref();
    match err.status {
        0 => detail
            .unwrap_or("Could not reach the server. Check your connection and try again.")
            .to_owned(),
        // A wrong password: the server's sentence (which never says which part is wrong).
        401 if err.code.as_deref() == Some("invalid_credentials") => detail.map_or_else(
            || "The username, e-mail or password is wrong.".to_owned(),
            sentence,
        ),
        401 => "Your session has ended. Please sign in again.".to_owned(),
        404 => "This no longer exists. It may have been deleted.".to_owned(),
        409 if err.code.as_deref() == Some("conflict") || detail.is_none() => {
            "A reply is already being written in this chat. Wait for it to finish, or press Stop."
                .to_owned()
        }
        413 => "That is too large. Try something smaller.".to_owned(),
        // The server's sentence says which quota and when it resets.
        429 if err.code.as_deref() == Some("quota_exceeded") && detail.is_some() => {
            detail.unwrap_or_default().to_owned()
        }
        429 => match err.retry_after {
            Some(1) => "You are sending messages too quickly. Try again in 1 second.".to_owned(),
            Some(s) => format!("You are sending messages too quickly. Try again in {s} seconds."),
            None => "You are sending messages too quickly. Wait a moment and try again.".to_owned(),
        },
        422 => detail.map_or_else(
            || "Please check what you entered and try again.".to_owned(),
            |d| format!("Please check what you entered: {}", lower_first(d)),
        ),
        503 => "The service is unavailable for a moment. Please try again shortly.".to_owned(),
        s if s >= 500 => "Something went wrong on the server. Please try again.".to_owned(),
        s => detail.map_or_else(
            || format!("Something went wrong (error {s})."),
            str::to_owned,
        ),
    }
}

/// The sentence shown on an attachment whose upload failed: for a file too large (413) or of
/// a kind not taken (415) the server's own sentence, which names the limit or the kind.
pub fn describe_upload(err: &ApiError) -> String {
    match (err.status, err.detail.as_deref()) {
        (413 | 415, Some(detail)) => detail.to_owned(),
        (413, None) => "The file is too large.".to_owned(),
        _ => describe(err),
    }
}

/// The sentence shown for a failed import: for a file refused (too large, malformed, of
/// another kind) the server's own sentence, which names the limit or where the file broke.
pub fn describe_import(err: &ApiError) -> String {
    match (err.status, err.detail.as_deref()) {
        (400 | 413 | 415 | 422, Some(detail)) if !detail.trim().is_empty() => {
            upper_first(detail.trim())
        }
        (413, _) => "The file is larger than this server's import limit.".to_owned(),
        _ => describe(err),
    }
}

/// `s` with a capital first letter and a full stop.
fn sentence(s: &str) -> String {
    let s = upper_first(s.trim());
    if s.ends_with(['.', '!', '?']) {
        s
    } else {
        format!("{s}.")
    }
}

fn upper_first(s: &str) -> String {
    let mut chars = s.chars();
    chars.next().map_or_else(String::new, |c| {
        c.to_uppercase().chain(chars).collect::<String>()
    })
}

/// The sentence shown beside a reply whose generation failed (an `error` event).
pub fn describe_stream_error(code: &str, detail: &str) -> String {
    if !detail.trim().is_empty() {
        return detail.trim().to_owned();
    }
    match code {
        "rate_limited" => "The model is busy right now. Try again in a moment.",
        "timeout" => "The model took too long to answer.",
        "truncated" => "The reply was cut off because it got too long.",
        "content_filter" => "The model's content filter stopped this reply.",
        "unavailable" => "The model is unavailable right now.",
        "interrupted" => "The reply was interrupted.",
        _ => "The model could not finish this reply.",
    }
    .to_owned()
}

fn lower_first(s: &str) -> String {
    let mut chars = s.chars();
    match chars.next() {
        // Keep acronyms and names ("URL", "JSON") as they are.
        Some(c) if chars.clone().next().is_some_and(|n| n.is_ascii_lowercase()) => {
            std::iter::once(c.to_ascii_lowercase())
                .chain(chars)
                .collect()
        }
        _ => s.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problem(status: u16, code: &str, detail: &str) -> Problem {
        Problem {
            kind: "about:blank".into(),
            title: "t".into(),
            status,
            detail: detail.into(),
            code: code.into(),
        }
    }

    #[test]
    fn a_wrong_password_is_the_servers_sentence_and_does_not_end_the_session() {
        let wrong = ApiError::from_status(
            401,
            Some(problem(
                401,
                "invalid_credentials",
                "the username, e-mail or password is wrong",
            )),
            None,
        );
        assert_eq!(
            wrong.describe(),
            "The username, e-mail or password is wrong."
        );
        assert!(!wrong.is_unauthenticated());
        let ended = ApiError::from_status(401, Some(problem(401, "unauthenticated", "x")), None);
        assert!(ended.is_unauthenticated());
        assert_eq!(
            ended.describe(),
            "Your session has ended. Please sign in again."
        );
    }

    #[test]
    fn a_conflict_is_explained_as_a_reply_in_progress() {
        let e = ApiError::from_status(409, Some(problem(409, "conflict", "busy")), None);
        assert!(e.describe().contains("already being written"));
        assert!(e.describe().contains("Stop"));
    }

    #[test]
    fn rate_limiting_says_how_long_to_wait() {
        let e = ApiError::from_status(429, Some(problem(429, "rate_limited", "x")), Some(12));
        assert_eq!(
            e.describe(),
            "You are sending messages too quickly. Try again in 12 seconds."
        );
        let e = ApiError::from_status(
            429,
            Some(problem(
                429,
                "quota_exceeded",
                "You have used your daily quota of 10 tokens. It resets tomorrow, at 2026-12-08 00:00 UTC.",
            )),
            Some(3600),
        );
        assert_eq!(
            e.describe(),
            "You have used your daily quota of 10 tokens. It resets tomorrow, at 2026-12-08 00:00 UTC."
        );
        let e = ApiError::from_status(429, None, None);
        assert!(e.describe().contains("Wait a moment"));
    }

    #[test]
    fn unauthenticated_asks_to_sign_in_again() {
        let e = ApiError::from_status(
            401,
            Some(problem(401, "unauthenticated", "jwt expired")),
            None,
        );
        assert!(e.is_unauthenticated());
        assert!(e.describe().contains("sign in again"));
        assert!(!e.describe().contains("jwt"));
    }

    #[test]
    fn validation_errors_carry_the_servers_detail() {
        let e = ApiError::from_status(
            422,
            Some(problem(422, "validation_failed", "Name must not be blank.")),
            None,
        );
        assert_eq!(
            e.describe(),
            "Please check what you entered: name must not be blank."
        );
    }

    #[test]
    fn server_errors_never_show_internal_text() {
        let e = ApiError::from_status(
            500,
            Some(problem(500, "internal", "panic at db.rs:12")),
            None,
        );
        assert!(!e.describe().contains("db.rs"));
        assert!(
            ApiError::network()
                .describe()
                .contains("Could not reach the server")
        );
    }

    #[test]
    fn a_failed_upload_says_the_servers_sentence_for_size_and_kind() {
        let e = ApiError::from_status(
            413,
            Some(problem(
                413,
                "payload_too_large",
                "The file is larger than the limit of 1024 bytes.",
            )),
            None,
        );
        assert_eq!(
            describe_upload(&e),
            "The file is larger than the limit of 1024 bytes."
        );
        let e = ApiError::from_status(
            415,
            Some(problem(
                415,
                "unsupported_media_type",
                "Executables are not taken.",
            )),
            None,
        );
        assert_eq!(describe_upload(&e), "Executables are not taken.");
        assert_eq!(
            describe_upload(&ApiError::from_status(413, None, None)),
            "The file is too large."
        );
        assert!(describe_upload(&ApiError::network()).contains("Could not reach the server"));
    }

    #[test]
    fn a_stream_error_prefers_the_servers_sentence() {
        assert_eq!(
            describe_stream_error("timeout", "The model timed out."),
            "The model timed out."
        );
        assert_eq!(
            describe_stream_error("timeout", " "),
            "The model took too long to answer."
        );
    }

    #[test]
    fn a_refused_import_shows_the_servers_sentence() {
        let e = ApiError::from_status(
            422,
            Some(problem(
                422,
                "validation",
                "the file is not a valid export: conversations[2]",
            )),
            None,
        );
        assert_eq!(
            describe_import(&e),
            "The file is not a valid export: conversations[2]"
        );
        let e = ApiError::from_status(
            413,
            Some(problem(
                413,
                "payload_too_large",
                "the file is larger than the import limit of 10 bytes",
            )),
            None,
        );
        assert_eq!(
            describe_import(&e),
            "The file is larger than the import limit of 10 bytes"
        );
        assert!(describe_import(&ApiError::from_status(401, None, None)).contains("sign in again"));
    }
}
