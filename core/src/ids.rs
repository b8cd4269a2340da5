//! Identifiers. Resource ids are UUID v7, so they sort by creation time; user ids are the
//! opaque `sub` of a verified token.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::values::ValidationError;

macro_rules! uuid_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(Uuid);

        impl $name {
            /// A fresh, time-ordered (v7) id.
            #[must_use]
            pub fn new() -> Self {
                Self(Uuid::now_v7())
            }

            #[must_use]
            pub const fn from_uuid(uuid: Uuid) -> Self {
                Self(uuid)
            }

            #[must_use]
            pub const fn as_uuid(&self) -> Uuid {
                self.0
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.hyphenated().fmt(f)
            }
        }

        impl FromStr for $name {
            type Err = uuid::Error;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Uuid::parse_str(s).map(Self)
            }
        }

        impl From<Uuid> for $name {
            fn from(uuid: Uuid) -> Self {
                Self(uuid)
            }
        }
    };
}

uuid_id!(
    /// A project (one chatbot).
    ProjectId
);
uuid_id!(
    /// One version of a project's system prompt.
    PromptId
);
uuid_id!(
    /// A conversation under a project.
    ConversationId
);
uuid_id!(
    /// One turn of a conversation.
    MessageId
);
uuid_id!(
    /// An uploaded file.
    FileId
);
uuid_id!(
    /// A read-only share link of a conversation.
    ShareId
);

/// The owner of every resource: the `sub` claim of a verified token.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct UserId(String);

impl UserId {
    pub const MAX_LEN: usize = 255;

    /// Accepts 1–255 characters without control characters.
    pub fn new(raw: impl Into<String>) -> Result<Self, ValidationError> {
        let raw = raw.into();
        if raw.is_empty() || raw.chars().count() > Self::MAX_LEN {
            return Err(ValidationError::new(
                "user_id",
                "must be 1 to 255 characters",
            ));
        }
        if raw.chars().any(char::is_control) {
            return Err(ValidationError::new(
                "user_id",
                "must not contain control characters",
            ));
        }
        Ok(Self(raw))
    }

    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for UserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_ids_sort_by_creation() {
        let a = MessageId::new();
        let b = MessageId::new();
        assert!(a < b);
        assert_eq!(a.as_uuid().get_version_num(), 7);
    }

    #[test]
    fn ids_round_trip_through_strings() {
        let id = ProjectId::new();
        assert_eq!(id.to_string().parse::<ProjectId>().ok(), Some(id));
        assert!("not-a-uuid".parse::<ProjectId>().is_err());
    }

    #[test]
    fn user_ids_reject_empty_and_control_characters() {
        assert!(UserId::new("").is_err());
        assert!(UserId::new("a\nb").is_err());
        assert!(UserId::new("x".repeat(256)).is_err());
        assert_eq!(
            UserId::new("user_2abc")
                .map(|u| u.to_string())
                .ok()
                .as_deref(),
            Some("user_2abc")
        );
    }
}
