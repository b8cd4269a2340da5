//! The `ImportStore` operation, written once in [`import_queries!`] and expanded for each
//! connection type, like [`queries`](crate::queries): one imported conversation, its
//! messages, their file links and its import key in one write transaction.
//!
//! On PostgreSQL the owner's project row is locked first (`FOR NO KEY UPDATE`), so two
//! imports of the same key into one project take turns and the second sees the first's key;
//! on SQLite the immediate transaction already excludes every other writer. A unique
//! violation on the key (a writer outside this lock order) is answered the same way.

/// Messages (and links) inserted per statement on PostgreSQL: far below its bind limit.
pub(crate) const BATCH: usize = 500;

/// The operation for one connection type `$conn`.
macro_rules! import_queries {
    (conn = $conn:ty, write_tx = $write_tx:ident, lock_for_write = $lock_for_write:ident $(,)?) => {
        use confab_core::error::{Conflict, StoreError};
        use confab_core::transfer::{ImportOutcome, NewImport};
        use diesel::dsl::exists;
        use diesel::{ExpressionMethods as _, OptionalExtension as _, QueryDsl as _};
        use diesel_async::RunQueryDsl as _;

        use crate::error::{TxError, is_retryable};
        use crate::limit::OneRow as _;
        use crate::queries::{MAX_ATTEMPTS, backoff};
        use crate::rows::{ConversationRow, NewMessageFileRow, NewMessageRow};
        use crate::schema::{conversation_imports, conversations, projects};
        use crate::types::{DbId, ToDb as _};

        type Conn = $conn;

        /// A key row as written.
        #[derive(diesel::Insertable)]
        #[diesel(table_name = conversation_imports)]
        struct KeyRow {
            project_id: DbId,
            import_key: String,
            conversation_id: DbId,
        }

        pub(crate) async fn import_conversation(
            c: &mut Conn,
            import: &NewImport,
        ) -> Result<ImportOutcome, StoreError> {
            let conversation = &import.conversation;
            let mut row = ConversationRow::from(conversation);
            row.leaf_id = conversation.leaf_id.map(|id| id.db());
            let message_rows: Vec<NewMessageRow> = import
                .messages
                .iter()
                .map(|m| {
                    let mut row = NewMessageRow::new(m);
                    row.conversation_id = conversation.id.db();
                    row
                })
                .collect();
            let mut link_rows = Vec::new();
            for m in &import.messages {
                link_rows.extend(NewMessageFileRow::all(m.id, &m.files)?);
            }
            let key = KeyRow {
                project_id: conversation.project_id.db(),
                import_key: import.key.clone(),
                conversation_id: conversation.id.db(),
            };
            let owner = conversation.owner_id.as_str();
            let outcome = retry_tx!(c.$write_tx(
                async |c: &mut Conn| -> Result<ImportOutcome, TxError> {
                    projects::table
                        .filter(projects::id.eq(key.project_id))
                        .filter(projects::owner_id.eq(owner))
                        .select(projects::id)
                        .$lock_for_write()
                        .one()
                        .get_result::<DbId>(c)
                        .await
                        .optional()?
                        .ok_or(TxError::Store(StoreError::NotFound))?;
                    let known: bool = diesel::select(exists(
                        conversation_imports::table
                            .filter(conversation_imports::project_id.eq(key.project_id))
                            .filter(conversation_imports::import_key.eq(&key.import_key)),
                    ))
                    .get_result(c)
                    .await?;
                    if known {
                        return Ok(ImportOutcome::AlreadyImported);
                    }
                    diesel::insert_into(conversations::table)
                        .values(&row)
                        .execute(c)
                        .await?;
                    diesel::insert_into(conversation_imports::table)
                        .values(&key)
                        .execute(c)
                        .await?;
                    insert_rows(c, &message_rows, &link_rows).await?;
                    Ok(ImportOutcome::Imported)
                }
            ));
            match outcome {
                // The key was written by a racing import (the conversation's id is fresh).
                Err(StoreError::Conflict(Conflict::DuplicateId)) => {
                    Ok(ImportOutcome::AlreadyImported)
                }
                other => other,
            }
        }
    };
}

pub(crate) mod pg {
    use diesel_async::AsyncConnection as _;

    /// The messages, then their links, [`BATCH`](super::BATCH) rows per statement.
    async fn insert_rows(
        c: &mut diesel_async::AsyncPgConnection,
        messages: &[crate::rows::NewMessageRow],
        links: &[crate::rows::NewMessageFileRow],
    ) -> Result<(), diesel::result::Error> {
        use diesel_async::RunQueryDsl as _;
        for batch in messages.chunks(super::BATCH) {
            diesel::insert_into(crate::schema::messages::table)
                .values(batch.to_vec())
                .execute(c)
                .await?;
        }
        for batch in links.chunks(super::BATCH) {
            diesel::insert_into(crate::schema::message_files::table)
                .values(batch.to_vec())
                .execute(c)
                .await?;
        }
        Ok(())
    }

    import_queries!(
        conn = diesel_async::AsyncPgConnection,
        write_tx = transaction,
        lock_for_write = for_no_key_update,
    );
}

pub(crate) mod sqlite {
    use crate::connect::Immediate as _;

    type Sqlite = crate::connect::SqliteConn;

    /// The messages, then their links, one row per statement: diesel-async has no batch
    /// insert for SQLite (which has no `DEFAULT` in `VALUES`); the statement is prepared
    /// once and the transaction holds the lock throughout.
    async fn insert_rows(
        c: &mut Sqlite,
        messages: &[crate::rows::NewMessageRow],
        links: &[crate::rows::NewMessageFileRow],
    ) -> Result<(), diesel::result::Error> {
        use diesel_async::RunQueryDsl as _;
        for row in messages {
            diesel::insert_into(crate::schema::messages::table)
                .values(row.clone())
                .execute(c)
                .await?;
        }
        for row in links {
            diesel::insert_into(crate::schema::message_files::table)
                .values(row.clone())
                .execute(c)
                .await?;
        }
        Ok(())
    }
    /// The lock clause of PostgreSQL, as a no-op.
    trait Unlocked: Sized {
        fn unlocked(self) -> Self {
            self
        }
    }

    impl<T> Unlocked for T {}

    import_queries!(
        conn = crate::connect::SqliteConn,
        write_tx = immediate_transaction,
        lock_for_write = unlocked,
    );
}
