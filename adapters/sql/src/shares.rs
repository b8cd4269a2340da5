//! The `ShareStore` operations, written once in [`share_queries!`] and expanded for each
//! connection type, like [`queries`](crate::queries). The snapshot is stored as JSON text.

use diesel::{Insertable, Queryable};

use crate::schema::shares;
use crate::types::{DbId, DbTime};

#[derive(Insertable)]
#[diesel(table_name = shares)]
pub(crate) struct ShareRow {
    pub id: DbId,
    pub token_hash: String,
    pub owner_id: String,
    pub conversation_id: DbId,
    pub leaf_id: Option<DbId>,
    pub snapshot: String,
    pub created_at: DbTime,
    pub revoked_at: Option<DbTime>,
}

/// A share as listed: id, conversation, created_at.
#[derive(Queryable)]
pub(crate) struct ListedRow {
    pub id: DbId,
    pub conversation_id: DbId,
    pub created_at: DbTime,
}

impl From<ListedRow> for confab_core::shares::Share {
    fn from(r: ListedRow) -> Self {
        Self {
            id: r.id.into(),
            conversation_id: r.conversation_id.into(),
            created_at: r.created_at.0,
        }
    }
}

/// The operations for one connection type `$conn`.
macro_rules! share_queries {
    (conn = $conn:ty $(,)?) => {
        use confab_core::error::StoreError;
        use confab_core::ids::{ConversationId, ShareId, UserId};
        use confab_core::model::Timestamp;
        use confab_core::shares::{NewShare, Share, Snapshot};
        use diesel::{ExpressionMethods as _, OptionalExtension as _, QueryDsl as _};
        use diesel_async::RunQueryDsl as _;

        use crate::error::translate;
        use crate::limit::OneRow as _;
        use crate::schema::{conversations, shares};
        use crate::shares::{ListedRow, ShareRow};
        use crate::types::{DbId, ToDb as _};

        type Conn = $conn;

        async fn owned_conversation(
            c: &mut Conn,
            owner: &UserId,
            id: ConversationId,
        ) -> Result<(), StoreError> {
            conversations::table
                .filter(conversations::id.eq(id.db()))
                .filter(conversations::owner_id.eq(owner.as_str()))
                .select(conversations::id)
                .one()
                .get_result::<DbId>(c)
                .await
                .optional()
                .map_err(translate)?
                .map(drop)
                .ok_or(StoreError::NotFound)
        }

        pub(crate) async fn create_share(
            c: &mut Conn,
            share: &NewShare,
        ) -> Result<Share, StoreError> {
            owned_conversation(c, &share.owner_id, share.conversation_id).await?;
            let snapshot = serde_json::to_string(&share.snapshot)
                .map_err(|e| StoreError::Internal(format!("a share's snapshot: {e}")))?;
            let row = ShareRow {
                id: share.id.db(),
                token_hash: share.token_hash.clone(),
                owner_id: share.owner_id.as_str().to_owned(),
                conversation_id: share.conversation_id.db(),
                leaf_id: share.leaf_id.map(|id| id.db()),
                snapshot,
                created_at: share.created_at.db(),
                revoked_at: None,
            };
            // A conversation deleted since the check fails the foreign key: `NotFound` too.
            match diesel::insert_into(shares::table)
                .values(&row)
                .execute(c)
                .await
            {
                Ok(_) => {}
                Err(diesel::result::Error::DatabaseError(
                    diesel::result::DatabaseErrorKind::ForeignKeyViolation,
                    _,
                )) => return Err(StoreError::NotFound),
                Err(e) => return Err(translate(e)),
            }
            Ok(Share {
                id: share.id,
                conversation_id: share.conversation_id,
                created_at: share.created_at,
            })
        }

        pub(crate) async fn list_shares(
            c: &mut Conn,
            owner: &UserId,
            conversation_id: ConversationId,
        ) -> Result<Vec<Share>, StoreError> {
            owned_conversation(c, owner, conversation_id).await?;
            let rows: Vec<ListedRow> = shares::table
                .filter(shares::conversation_id.eq(conversation_id.db()))
                .filter(shares::owner_id.eq(owner.as_str()))
                .filter(shares::revoked_at.is_null())
                .order((shares::created_at.desc(), shares::id.desc()))
                .select((shares::id, shares::conversation_id, shares::created_at))
                .load(c)
                .await
                .map_err(translate)?;
            Ok(rows.into_iter().map(Share::from).collect())
        }

        pub(crate) async fn revoke_share(
            c: &mut Conn,
            owner: &UserId,
            id: ShareId,
            now: Timestamp,
        ) -> Result<(), StoreError> {
            let changed = diesel::update(
                shares::table
                    .filter(shares::id.eq(id.db()))
                    .filter(shares::owner_id.eq(owner.as_str()))
                    .filter(shares::revoked_at.is_null()),
            )
            .set(shares::revoked_at.eq(Some(now.db())))
            .execute(c)
            .await
            .map_err(translate)?;
            if changed == 0 {
                return Err(StoreError::NotFound);
            }
            Ok(())
        }

        pub(crate) async fn shared_snapshot(
            c: &mut Conn,
            token_hash: &str,
        ) -> Result<Option<Snapshot>, StoreError> {
            let stored: Option<String> = shares::table
                .filter(shares::token_hash.eq(token_hash))
                .filter(shares::revoked_at.is_null())
                .select(shares::snapshot)
                .one()
                .get_result(c)
                .await
                .optional()
                .map_err(translate)?;
            stored
                .map(|json| {
                    serde_json::from_str(&json)
                        .map_err(|e| StoreError::Internal(format!("a stored snapshot: {e}")))
                })
                .transpose()
        }
    };
}

pub(crate) mod pg {
    share_queries!(conn = diesel_async::AsyncPgConnection);
}

pub(crate) mod sqlite {
    share_queries!(conn = crate::connect::SqliteConn,);
}
