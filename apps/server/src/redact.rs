//! The one way the server prints a URL from its configuration: with every password and every
//! secret-looking query parameter replaced by `***`.
//!
//! A URL may carry a secret in its userinfo (`postgres://u:pw@h/db`) or in its query
//! (`postgres://u@h/db?password=pw`, `?sslpassword=`, `?api_key=`): both are redacted. A URL
//! that the `url` crate cannot parse is redacted conservatively (everything that could be
//! userinfo, and every secret-looking `name=value` pair) rather than printed as it is.

use url::Url;

/// What a secret is replaced with.
const MASK: &str = "***";

/// What separates the `name=value` pairs of a query or fragment.
const QUERY_SEPARATORS: &[char] = &['&', ';'];

/// Parts of a parameter's name that mark its value as a secret (compared in lowercase, also
/// inside a longer name: `sslpassword`, `api_key`, `X-Amz-Signature`, `authToken`).
const SECRET_NAME_PARTS: &[&str] = &[
    "pass",
    "pwd",
    "secret",
    "token",
    "key",
    "sig",
    "credential",
    "auth",
];

/// `raw` with its password and secret parameters replaced by `***`.
#[must_use]
pub fn redact_url(raw: &str) -> String {
    let raw = raw.trim();
    match Url::parse(raw) {
        Ok(url) => redact_parsed(url).unwrap_or_else(|| redact_unparsed(raw)),
        Err(_) => redact_unparsed(raw),
    }
}

/// Whether a parameter called `name` holds a secret.
fn is_secret_name(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    SECRET_NAME_PARTS.iter().any(|part| name.contains(part))
}

fn redact_parsed(mut url: Url) -> Option<String> {
    // `postgres://app:/Xy9z@db/x` or `postgres://app:2024#Summer@db/x` parse with `app` as the
    // host and the password in the path or fragment: an `@` past the authority means the
    // parse did not find the userinfo, so the conservative redaction takes over.
    let past_authority = [Some(url.path()), url.query(), url.fragment()];
    if past_authority
        .into_iter()
        .flatten()
        .any(|part| part.contains('@'))
    {
        return None;
    }
    if url.password().is_some() {
        url.set_password(Some(MASK)).ok()?;
    }
    if let Some(query) = url.query() {
        let query = redact_pairs(query, QUERY_SEPARATORS);
        url.set_query(Some(&query));
    }
    if let Some(fragment) = url.fragment() {
        let fragment = redact_pairs(fragment, QUERY_SEPARATORS);
        url.set_fragment(Some(&fragment));
    }
    Some(url.into())
}

/// `a=1&password=x;token=y` → `a=1&password=***;token=***`: each piece between two of
/// `separators` that is a `name=value` pair with a secret-looking name (compared decoded, so
/// `pass%77ord` counts too) has its value masked; everything else is kept as it is.
fn redact_pairs(text: &str, separators: &[char]) -> String {
    text.split_inclusive(separators)
        .map(|piece| {
            let pair = piece.trim_end_matches(separators);
            let separator = &piece[pair.len()..];
            match pair.split_once('=') {
                Some((name, _)) if is_secret_name(&decode(name)) => {
                    format!("{name}={MASK}{separator}")
                }
                _ => piece.to_owned(),
            }
        })
        .collect()
}

fn decode(name: &str) -> String {
    url::form_urlencoded::parse(format!("{name}=").as_bytes())
        .next()
        .map_or_else(|| name.to_owned(), |(k, _)| k.into_owned())
}

/// A URL the `url` crate refused: whatever lies between `://` and the last `@` may be
/// userinfo and is cut to the name before its first `:`; every secret-looking `name=value`
/// pair anywhere after it is masked.
fn redact_unparsed(raw: &str) -> String {
    let (scheme, rest) = raw.split_once("://").unwrap_or(("", raw));
    let rest = match rest.rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _)) => format!("{user}:{MASK}@{host}"),
            None => format!("{userinfo}@{host}"),
        },
        None => rest.to_owned(),
    };
    let rest = redact_pairs(&rest, &['?', '&', ';', '#', ' ']);
    if scheme.is_empty() && !raw.contains("://") {
        rest
    } else {
        format!("{scheme}://{rest}")
    }
}

#[cfg(test)]
mod tests {
    use super::redact_url;

    #[test]
    fn a_userinfo_password_is_masked() {
        assert_eq!(
            redact_url("postgres://u:pw@h:5432/db"),
            "postgres://u:***@h:5432/db"
        );
        assert_eq!(redact_url("postgres://u@h/db"), "postgres://u@h/db");
    }

    #[test]
    fn secret_query_parameters_are_masked_in_any_case_and_inside_longer_names() {
        let printed = redact_url(
            "postgres://u@h/db?sslmode=require&password=hunter2&SSLPassword=pw2&api_key=k3&X-Amz-Signature=s4&application_name=confab",
        );
        for secret in ["hunter2", "pw2", "k3", "s4"] {
            assert!(!printed.contains(secret), "{printed}");
        }
        assert!(printed.contains("sslmode=require"), "{printed}");
        assert!(printed.contains("application_name=confab"), "{printed}");
        assert!(printed.contains("password=***"), "{printed}");
    }

    #[test]
    fn a_password_the_url_parser_takes_for_a_path_port_or_fragment_is_masked() {
        for (raw, secret) in [
            ("postgres://app:/Xy9z@db/confab", "Xy9z"),
            ("postgres://app:?Xy9z@db/confab", "Xy9z"),
            ("postgres://app:2024#Summer@db/confab", "Summer"),
            (
                "postgres://app:2024/Summer@db:5432/confab?sslmode=require",
                "Summer",
            ),
        ] {
            let printed = redact_url(raw);
            assert!(!printed.contains(secret), "{raw} → {printed}");
            assert!(printed.contains("db"), "{raw} → {printed}");
        }
    }

    #[test]
    fn a_percent_encoded_secret_name_is_still_found() {
        let printed = redact_url("https://h/v1?pass%77ord=hunter2");
        assert!(!printed.contains("hunter2"), "{printed}");
    }

    #[test]
    fn urls_without_secrets_are_printed_as_they_are() {
        for url in [
            "sqlite://data/confab.db",
            "sqlite::memory:",
            "memory:",
            "https://api.openai.com/v1",
            "s3://bucket/prefix",
        ] {
            assert_eq!(redact_url(url), url);
        }
    }

    #[test]
    fn a_url_the_parser_refuses_is_still_redacted() {
        // An unescaped `/` in the password and a bad port make the `url` crate refuse these.
        for raw in [
            "postgres://u:pa/ss@h/db?password=hunter2",
            "postgres://u:hunter2@h:99999/db",
            "postgres://u@h:bad/db?token=hunter2",
            "not a url password=hunter2",
        ] {
            let printed = redact_url(raw);
            assert!(!printed.contains("hunter2"), "{raw} → {printed}");
            assert!(!printed.contains("pa/ss"), "{raw} → {printed}");
        }
    }

    #[test]
    fn a_secret_in_the_fragment_is_masked() {
        let printed = redact_url("https://h/cb#access_token=hunter2&x=1");
        assert!(!printed.contains("hunter2"), "{printed}");
    }
}
