//! Owned copies of the ports' arguments, so that a SQLite operation can run in a task of its
//! own. diesel-async runs each SQLite query on a blocking thread; if the caller's future were
//! dropped mid-query, diesel-async would wait for that thread with `block_in_place`, which
//! panics on a current-thread runtime (every actix-web worker is one). Running the operation
//! in a spawned task means a caller that goes away never drops a query half-way: the
//! operation finishes (a write is committed or rolled back whole) and the connection returns
//! to the pool clean.

use confab_core::accounts::{Account, FailuresStep, Link, LinkKind, Session};
use confab_core::ids::{ConversationId, FileId, MessageId, ProjectId, PromptId, UserId};
use confab_core::model::{
    Conversation, FileMeta, Message, NewPrompt, Project, ProjectPatch, TextOutcome, Timestamp,
};
use confab_core::ports::NewTurn;
use confab_core::usage::{GroupBy, NaiveDate, QuotaOverride, UsageEntry};
use uuid::Uuid;

/// An argument as the caller passes it → an owned value a spawned task can hold.
pub(crate) trait Detach {
    type Owned: Attach + Send + 'static;
    fn detach(&self) -> Self::Owned;
}

/// An owned value → the argument the query function takes.
pub(crate) trait Attach {
    type Arg<'a>
    where
        Self: 'a;
    fn attach(&self) -> Self::Arg<'_>;
}

/// Arguments passed by reference.
macro_rules! by_reference {
    ($($ty:ty),*) => {$(
        impl Detach for &$ty {
            type Owned = $ty;
            fn detach(&self) -> $ty {
                (*self).clone()
            }
        }

        impl Attach for $ty {
            type Arg<'a> = &'a $ty;
            fn attach(&self) -> &$ty {
                self
            }
        }
    )*};
}

/// Arguments passed by value.
macro_rules! by_value {
    ($($ty:ty),*) => {$(
        impl Detach for $ty {
            type Owned = $ty;
            fn detach(&self) -> $ty {
                self.clone()
            }
        }

        impl Attach for $ty {
            type Arg<'a> = $ty;
            fn attach(&self) -> $ty {
                self.clone()
            }
        }
    )*};
}

by_reference!(
    UserId,
    Project,
    ProjectPatch,
    NewPrompt,
    Conversation,
    Message,
    NewTurn,
    FileMeta,
    TextOutcome,
    Account,
    Session,
    confab_core::accounts::Rotation,
    confab_core::accounts::SecurityEvent,
    Link,
    confab_core::search::SearchQuery,
    UsageEntry,
    QuotaOverride,
    confab_core::shares::NewShare,
    confab_core::transfer::NewImport
);

by_value!(
    ProjectId,
    PromptId,
    ConversationId,
    MessageId,
    FileId,
    u32,
    Timestamp,
    Option<ProjectId>,
    Option<FileId>,
    Option<MessageId>,
    Option<i32>,
    Option<Uuid>,
    Option<(Timestamp, ConversationId)>,
    Option<String>,
    Uuid,
    LinkKind,
    Option<confab_core::search::SearchKey>,
    NaiveDate,
    GroupBy,
    FailuresStep,
    confab_core::accounts::EventRetention,
    Option<UserId>,
    confab_core::ids::ShareId
);

impl Detach for &[FileId] {
    type Owned = Vec<FileId>;
    fn detach(&self) -> Vec<FileId> {
        self.to_vec()
    }
}

impl Attach for Vec<FileId> {
    type Arg<'a> = &'a [FileId];
    fn attach(&self) -> &[FileId] {
        self
    }
}

impl Detach for &[String] {
    type Owned = Vec<String>;
    fn detach(&self) -> Vec<String> {
        self.to_vec()
    }
}

impl Attach for Vec<String> {
    type Arg<'a> = &'a [String];
    fn attach(&self) -> &[String] {
        self
    }
}

impl Detach for &str {
    type Owned = String;
    fn detach(&self) -> String {
        (*self).to_owned()
    }
}

impl Attach for String {
    type Arg<'a> = &'a str;
    fn attach(&self) -> &str {
        self
    }
}
