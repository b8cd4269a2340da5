//! Validated values. A value that fails its rule cannot be constructed, so nothing past the
//! edge of the system has to check again. Lengths count Unicode scalar values.

use serde::{Deserialize, Serialize};

/// A field that broke its rule; answered as 422 `validation_failed`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{field} {message}")]
pub struct ValidationError {
    pub field: &'static str,
    pub message: String,
}

impl ValidationError {
    pub fn new(field: &'static str, message: impl Into<String>) -> Self {
        Self {
            field,
            message: message.into(),
        }
    }
}

/// Configurable limits on user input (API.md's defaults).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Limits {
    pub project_name_chars: usize,
    pub description_chars: usize,
    pub prompt_chars: usize,
    pub message_chars: usize,
    pub title_chars: usize,
    pub upload_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            project_name_chars: 200,
            description_chars: 2_000,
            prompt_chars: 100_000,
            message_chars: 32_000,
            title_chars: 200,
            upload_bytes: 25 * 1024 * 1024,
        }
    }
}

fn char_len(s: &str) -> usize {
    s.chars().count()
}

/// The text search configurations a project's knowledge may be indexed with: PostgreSQL's
/// built-in ones (present since PostgreSQL 12), `simple` being no language at all (no
/// stemming, no stop words).
pub const SEARCH_LANGUAGES: &[&str] = &[
    "arabic",
    "danish",
    "dutch",
    "english",
    "finnish",
    "french",
    "german",
    "greek",
    "hungarian",
    "indonesian",
    "irish",
    "italian",
    "lithuanian",
    "nepali",
    "norwegian",
    "portuguese",
    "romanian",
    "russian",
    "simple",
    "spanish",
    "swedish",
    "tamil",
    "turkish",
];

/// The language of a project's knowledge: one of [`SEARCH_LANGUAGES`], `english` by
/// default. PostgreSQL stems the project's chunks and queries with it (besides `simple`);
/// SQLite's FTS5 `unicode61` tokenizer is language-neutral and ignores it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SearchLanguage(&'static str);

impl SearchLanguage {
    pub const ENGLISH: Self = Self("english");

    /// # Errors
    /// A name not in [`SEARCH_LANGUAGES`] (compared exactly: lower case, no spaces).
    pub fn new(raw: &str) -> Result<Self, ValidationError> {
        SEARCH_LANGUAGES
            .iter()
            .find(|l| **l == raw)
            .map(|l| Self(l))
            .ok_or_else(|| {
                ValidationError::new(
                    "language",
                    format!("must be one of {}", SEARCH_LANGUAGES.join(", ")),
                )
            })
    }

    #[must_use]
    pub const fn as_str(self) -> &'static str {
        self.0
    }
}

impl Default for SearchLanguage {
    fn default() -> Self {
        Self::ENGLISH
    }
}

impl std::fmt::Display for SearchLanguage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0)
    }
}

/// A project's name: trimmed, 1..=limit characters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProjectName(String);

impl ProjectName {
    pub fn new(raw: &str, limits: &Limits) -> Result<Self, ValidationError> {
        let trimmed = raw.trim();
        if trimmed.is_empty() {
            return Err(ValidationError::new("name", "must not be blank"));
        }
        if char_len(trimmed) > limits.project_name_chars {
            return Err(ValidationError::new(
                "name",
                format!("must be at most {} characters", limits.project_name_chars),
            ));
        }
        Ok(Self(trimmed.to_owned()))
    }

    #[must_use]
    pub fn into_inner(self) -> String {
        self.0
    }
}

/// A project's description: kept as given, at most `limit` characters; blank becomes none.
pub fn description(raw: Option<&str>, limits: &Limits) -> Result<Option<String>, ValidationError> {
    match raw {
        None => Ok(None),
        Some(text) if text.trim().is_empty() => Ok(None),
        Some(text) if char_len(text) > limits.description_chars => Err(ValidationError::new(
            "description",
            format!("must be at most {} characters", limits.description_chars),
        )),
        Some(text) => Ok(Some(text.to_owned())),
    }
}

/// A system prompt's text: 1..=limit characters, not blank.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PromptContent(String);

impl PromptContent {
    pub fn new(raw: &str, limits: &Limits) -> Result<Self, ValidationError> {
        if raw.trim().is_empty() {
            return Err(ValidationError::new("content", "must not be blank"));
        }
        if char_len(raw) > limits.prompt_chars {
            return Err(ValidationError::new(
                "content",
                format!("must be at most {} characters", limits.prompt_chars),
            ));
        }
        Ok(Self(raw.to_owned()))
    }

    #[must_use]
    pub fn into_inner(self) -> String {
        self.0
    }
}

/// A user's message: 1..=limit characters, not blank. Kept exactly as typed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MessageContent(String);

impl MessageContent {
    pub fn new(raw: &str, limits: &Limits) -> Result<Self, ValidationError> {
        if raw.trim().is_empty() {
            return Err(ValidationError::new("content", "must not be blank"));
        }
        if char_len(raw) > limits.message_chars {
            return Err(ValidationError::new(
                "content",
                format!("must be at most {} characters", limits.message_chars),
            ));
        }
        Ok(Self(raw.to_owned()))
    }

    #[must_use]
    pub fn into_inner(self) -> String {
        self.0
    }
}

/// A conversation's title: trimmed, 0..=limit characters; empty means untitled (`None`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Title(Option<String>);

impl Title {
    pub fn new(raw: Option<&str>, limits: &Limits) -> Result<Self, ValidationError> {
        let Some(raw) = raw else {
            return Ok(Self(None));
        };
        let trimmed = raw.trim();
        if char_len(trimmed) > limits.title_chars {
            return Err(ValidationError::new(
                "title",
                format!("must be at most {} characters", limits.title_chars),
            ));
        }
        if trimmed.chars().any(char::is_control) {
            return Err(ValidationError::new(
                "title",
                "must not contain control characters",
            ));
        }
        Ok(Self((!trimmed.is_empty()).then(|| trimmed.to_owned())))
    }

    #[must_use]
    pub fn into_inner(self) -> Option<String> {
        self.0
    }
}

/// A page size: `MIN..=MAX` (1..=200), default 50. The OpenAPI document states these bounds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PageLimit(u32);

impl PageLimit {
    pub const MIN: u32 = 1;
    pub const DEFAULT: u32 = 50;
    pub const MAX: u32 = 200;

    pub fn new(raw: Option<i64>) -> Result<Self, ValidationError> {
        match raw {
            None => Ok(Self(Self::DEFAULT)),
            Some(n) if (i64::from(Self::MIN)..=i64::from(Self::MAX)).contains(&n) => {
                Ok(Self(u32::try_from(n).unwrap_or(Self::DEFAULT)))
            }
            Some(_) => Err(ValidationError::new(
                "limit",
                format!("must be between {} and {}", Self::MIN, Self::MAX),
            )),
        }
    }

    #[must_use]
    pub const fn get(self) -> u32 {
        self.0
    }
}

impl Default for PageLimit {
    fn default() -> Self {
        Self(Self::DEFAULT)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn l() -> Limits {
        Limits::default()
    }

    #[test]
    fn project_names_are_trimmed_and_bounded() {
        assert_eq!(
            ProjectName::new("  Bot  ", &l()).map(ProjectName::into_inner),
            Ok("Bot".into())
        );
        assert!(ProjectName::new("   ", &l()).is_err());
        assert!(ProjectName::new(&"é".repeat(200), &l()).is_ok());
        assert!(ProjectName::new(&"é".repeat(201), &l()).is_err());
    }

    #[test]
    fn message_content_counts_scalar_values_and_rejects_blank() {
        assert!(MessageContent::new(" \n\t ", &l()).is_err());
        assert!(MessageContent::new("", &l()).is_err());
        assert!(MessageContent::new(&"😀".repeat(32_000), &l()).is_ok());
        assert!(MessageContent::new(&"😀".repeat(32_001), &l()).is_err());
        assert_eq!(
            MessageContent::new(" hi ", &l()).map(MessageContent::into_inner),
            Ok(" hi ".into())
        );
    }

    #[test]
    fn prompt_content_is_bounded() {
        assert!(PromptContent::new("Be brief.", &l()).is_ok());
        assert!(PromptContent::new(&"a".repeat(100_001), &l()).is_err());
        assert!(PromptContent::new("  ", &l()).is_err());
    }

    #[test]
    fn titles_may_be_empty_and_are_trimmed() {
        assert_eq!(
            Title::new(Some("  "), &l()).map(Title::into_inner),
            Ok(None)
        );
        assert_eq!(Title::new(None, &l()).map(Title::into_inner), Ok(None));
        assert_eq!(
            Title::new(Some(" Plans "), &l()).map(Title::into_inner),
            Ok(Some("Plans".into()))
        );
        assert!(Title::new(Some(&"t".repeat(201)), &l()).is_err());
    }

    #[test]
    fn page_limits_are_between_1_and_200() {
        assert_eq!(PageLimit::new(None).map(PageLimit::get), Ok(50));
        assert_eq!(PageLimit::new(Some(200)).map(PageLimit::get), Ok(200));
        assert!(PageLimit::new(Some(0)).is_err());
        assert!(PageLimit::new(Some(201)).is_err());
        assert!(PageLimit::new(Some(-1)).is_err());
    }

    #[test]
    fn descriptions_are_optional_and_bounded() {
        assert_eq!(description(Some("  "), &l()), Ok(None));
        assert_eq!(description(Some("x"), &l()), Ok(Some("x".into())));
        assert!(description(Some(&"x".repeat(2_001)), &l()).is_err());
    }

    #[test]
    fn a_search_language_is_one_of_the_built_in_configurations() {
        assert_eq!(SearchLanguage::default().as_str(), "english");
        assert_eq!(
            SearchLanguage::new("french").map(SearchLanguage::as_str),
            Ok("french")
        );
        assert_eq!(
            SearchLanguage::new("simple").map(SearchLanguage::as_str),
            Ok("simple")
        );
        for bad in [
            "klingon",
            "French",
            " french",
            "",
            "english; DROP TABLE projects",
        ] {
            let e = SearchLanguage::new(bad).unwrap_err();
            assert_eq!(e.field, "language", "{bad:?}");
            assert!(
                e.message.contains("french"),
                "the error lists the choices: {e}"
            );
        }
    }
}
