//! The links of user messages to their attached files (`message_files`), read the same way
//! by every message read, on both backends.

/// The links of the messages `$ids` (a `Vec<DbId>`), in message and position order, as
/// [`MessageFileLink`](crate::rows::MessageFileLink)s: a file whose metadata is gone reads as
/// deleted.
macro_rules! links_of {
    ($ids:expr) => {{
        use diesel::{
            ExpressionMethods as _, JoinOnDsl as _, NullableExpressionMethods as _, QueryDsl as _,
        };

        use crate::schema::{file_metadata, message_files};

        message_files::table
            .left_join(file_metadata::table.on(file_metadata::id.eq(message_files::file_id)))
            .filter(message_files::message_id.eq_any($ids))
            .order((
                message_files::message_id.asc(),
                message_files::position.asc(),
            ))
            .select((
                message_files::message_id,
                message_files::file_id,
                message_files::filename,
                message_files::content_type,
                message_files::size_bytes,
                file_metadata::id.nullable().is_null(),
            ))
    }};
}

/// The owner's files among `$ids` that are in the project of the conversation `$conversation`,
/// as [`FileRow`](crate::rows::FileRow)s (in any order).
macro_rules! attachable_files {
    ($owner:expr, $conversation:expr, $ids:expr) => {{
        use diesel::{ExpressionMethods as _, QueryDsl as _, SelectableHelper as _};

        use crate::schema::{conversations, file_metadata};

        file_metadata::table
            .filter(file_metadata::id.eq_any($ids))
            .filter(file_metadata::owner_id.eq($owner))
            .filter(
                file_metadata::project_id.eq_any(
                    conversations::table
                        .filter(conversations::id.eq($conversation))
                        .filter(conversations::owner_id.eq($owner))
                        .select(conversations::project_id),
                ),
            )
            .select(crate::rows::FileRow::as_select())
    }};
}

/// The links of a new user message, in the order of `wanted`, from the files found:
/// `NotFound` unless every wanted file was found.
pub(crate) fn links_for(
    wanted: &[confab_core::ids::FileId],
    found: Vec<crate::rows::FileRow>,
) -> Result<Vec<confab_core::model::MessageFile>, confab_core::error::StoreError> {
    let found = found
        .into_iter()
        .map(confab_core::model::FileMeta::try_from)
        .collect::<Result<Vec<_>, _>>()?;
    wanted
        .iter()
        .map(|id| {
            found
                .iter()
                .find(|file| file.id == *id)
                .map(confab_core::model::MessageFile::from)
                .ok_or(confab_core::error::StoreError::NotFound)
        })
        .collect()
}
