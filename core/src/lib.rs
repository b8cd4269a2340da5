#![doc = include_str!("../README.md")]

pub mod accounts;
pub mod attachments;
pub mod budget;
pub mod cancel;
pub mod chat;
pub mod clock;
pub mod cursor;
pub mod error;
pub mod files;
pub mod ids;
pub mod knowledge;
pub mod live;
pub mod model;
pub mod ports;
pub mod search;
pub mod services;
pub mod shares;
pub mod titles;
pub mod transfer;
pub mod usage;
pub mod values;

pub use cancel::{CancelReason, CancelToken};
pub use chat::{ChatEvent, ChatService, ChatSettings, SendRequest, StreamErrorCode};
pub use error::{AuthError, ChatError, Conflict, LlmError, ServiceError, StoreError};
pub use ids::{ConversationId, FileId, MessageId, ProjectId, PromptId, UserId};
pub use live::{LiveError, LiveEvent, LiveOptions, LivePublisher};
pub use model::*;
pub use values::{Limits, ValidationError};
