//! The `AccountStore` operations, written once in [`account_queries!`] and expanded for each
//! connection type, like [`queries`](crate::queries).

use confab_core::accounts::{
    Account, Failures, Link, LinkKind, SecurityEvent, SecurityEventKind, Session,
};
use confab_core::error::StoreError;
use diesel::pg::Pg;
use diesel::sqlite::Sqlite;
use diesel::{Insertable, Queryable, Selectable};

use crate::schema::{accounts, auth_links, auth_sessions, security_events, sign_in_failures};
use crate::types::{DbId, DbTime, ToDb as _};

#[derive(Queryable, Selectable, Insertable)]
#[diesel(table_name = accounts, check_for_backend(Pg, Sqlite))]
pub(crate) struct AccountRow {
    pub id: DbId,
    pub username: String,
    pub email: Option<String>,
    pub password_hash: String,
    pub is_admin: bool,
    pub created_at: DbTime,
}

impl From<AccountRow> for Account {
    fn from(r: AccountRow) -> Self {
        Self {
            id: r.id.0,
            username: r.username,
            email: r.email,
            password_hash: r.password_hash,
            is_admin: r.is_admin,
            created_at: r.created_at.0,
        }
    }
}

#[derive(Queryable, Selectable, Insertable)]
#[diesel(table_name = auth_sessions, check_for_backend(Pg, Sqlite))]
pub(crate) struct SessionRow {
    pub id: DbId,
    pub account_id: DbId,
    pub created_at: DbTime,
    pub expires_at: DbTime,
    pub revoked_at: Option<DbTime>,
    pub last_used_at: Option<DbTime>,
    pub refresh_hash: String,
    pub user_agent: Option<String>,
    pub address: Option<String>,
}

impl From<&Session> for SessionRow {
    fn from(s: &Session) -> Self {
        Self {
            id: s.id.db(),
            account_id: s.account_id.db(),
            created_at: s.created_at.db(),
            expires_at: s.expires_at.db(),
            revoked_at: s.revoked_at.map(|at| at.db()),
            last_used_at: Some(s.last_used_at.db()),
            refresh_hash: s.refresh_hash.clone(),
            user_agent: s.user_agent.clone(),
            address: s.address.clone(),
        }
    }
}

impl From<SessionRow> for Session {
    fn from(r: SessionRow) -> Self {
        Self {
            id: r.id.0,
            account_id: r.account_id.0,
            created_at: r.created_at.0,
            expires_at: r.expires_at.0,
            revoked_at: r.revoked_at.map(|at| at.0),
            last_used_at: r.last_used_at.map_or(r.created_at.0, |at| at.0),
            refresh_hash: r.refresh_hash,
            user_agent: r.user_agent,
            address: r.address,
        }
    }
}

/// The rotation columns of a session, read by [`rotate_refresh`](pg::rotate_refresh).
#[derive(Queryable, Selectable)]
#[diesel(table_name = auth_sessions, check_for_backend(Pg, Sqlite))]
pub(crate) struct RotationRow {
    pub previous_refresh_hash: Option<String>,
    pub rotated_at: Option<DbTime>,
    pub sealed: Option<String>,
}

#[derive(Queryable, Selectable, Insertable)]
#[diesel(table_name = auth_links, check_for_backend(Pg, Sqlite))]
pub(crate) struct LinkRow {
    pub token_hash: String,
    pub kind: String,
    pub account_id: Option<DbId>,
    pub expires_at: DbTime,
    pub used_at: Option<DbTime>,
}

impl TryFrom<LinkRow> for Link {
    type Error = StoreError;
    fn try_from(r: LinkRow) -> Result<Self, StoreError> {
        let kind = match r.kind.as_str() {
            "invite" => LinkKind::Invite,
            "reset" => LinkKind::Reset,
            _ => return Err(StoreError::Internal("a stored link kind is unknown".into())),
        };
        Ok(Self {
            token_hash: r.token_hash,
            kind,
            account_id: r.account_id.map(|id| id.0),
            expires_at: r.expires_at.0,
        })
    }
}

#[derive(Queryable, Selectable, Insertable)]
#[diesel(table_name = security_events, check_for_backend(Pg, Sqlite))]
pub(crate) struct EventRow {
    pub id: DbId,
    pub account_id: DbId,
    pub kind: String,
    pub at: DbTime,
    pub session_id: Option<DbId>,
    pub user_agent: Option<String>,
    pub address: Option<String>,
    pub read_at: Option<DbTime>,
}

impl From<&SecurityEvent> for EventRow {
    fn from(e: &SecurityEvent) -> Self {
        use crate::types::ToDb as _;
        Self {
            id: e.id.db(),
            account_id: e.account_id.db(),
            kind: e.kind.as_str().to_owned(),
            at: e.at.db(),
            session_id: e.session_id.map(|id| id.db()),
            user_agent: e.user_agent.clone(),
            address: e.address.clone(),
            read_at: e.read_at.map(|at| at.db()),
        }
    }
}

impl TryFrom<EventRow> for SecurityEvent {
    type Error = StoreError;
    fn try_from(r: EventRow) -> Result<Self, StoreError> {
        let kind = SecurityEventKind::parse(&r.kind).ok_or_else(|| {
            StoreError::Internal("a stored security event kind is unknown".into())
        })?;
        Ok(Self {
            id: r.id.0,
            account_id: r.account_id.0,
            kind,
            at: r.at.0,
            session_id: r.session_id.map(|id| id.0),
            user_agent: r.user_agent,
            address: r.address,
            read_at: r.read_at.map(|at| at.0),
        })
    }
}

#[derive(Queryable, Selectable, Insertable)]
#[diesel(table_name = sign_in_failures, check_for_backend(Pg, Sqlite))]
pub(crate) struct FailuresRow {
    pub key: String,
    pub count: i64,
    pub last_at: DbTime,
    pub blocked_until: Option<DbTime>,
}

impl FailuresRow {
    /// `None` for the placeholder (count 0) that [`update_failures`](pg::update_failures)
    /// inserts to lock a key nobody counted yet.
    pub(crate) fn failures(&self) -> Option<Failures> {
        (self.count > 0).then(|| Failures {
            count: u32::try_from(self.count).unwrap_or(u32::MAX),
            last: self.last_at.0,
            blocked_until: self.blocked_until.map(|at| at.0),
        })
    }
}

/// The operations for one connection type `$conn`; `$lock_accounts` is the statement that,
/// inside a write transaction, keeps two first accounts from both becoming administrators.
macro_rules! account_queries {
    (conn = $conn:ty, write_tx = $write_tx:ident, lock_accounts = $lock_accounts:expr $(,)?) => {
        use confab_core::accounts::{
            Account, EventRetention, Failures, FailuresStep, Link, LinkKind, Rotated, Rotation,
            SecurityEvent, Session,
        };
        use confab_core::error::StoreError;
        use confab_core::model::Timestamp;
        use diesel::{
            BoolExpressionMethods as _, ExpressionMethods as _, OptionalExtension as _,
            QueryDsl as _, SelectableHelper as _,
        };
        use diesel_async::RunQueryDsl as _;
        use uuid::Uuid;

        use crate::accounts::{
            AccountRow, EventRow, FailuresRow, LinkRow, RotationRow, SessionRow,
        };
        use crate::error::{TxError, is_retryable, translate};
        use crate::limit::OneRow as _;
        use crate::queries::{MAX_ATTEMPTS, backoff};
        use crate::schema::{
            accounts, auth_links, auth_sessions, browser_session_revocations, security_events,
            sign_in_failures,
        };
        use crate::types::ToDb as _;

        type Conn = $conn;

        pub(crate) async fn create_account(
            c: &mut Conn,
            account: &Account,
        ) -> Result<Account, StoreError> {
            insert_account(c, account, false)
                .await?
                .ok_or_else(|| StoreError::Internal("an account insert stored nothing".into()))
        }

        pub(crate) async fn create_first_account(
            c: &mut Conn,
            account: &Account,
        ) -> Result<Option<Account>, StoreError> {
            insert_account(c, account, true).await
        }

        /// Inserts under the accounts lock; the first account administers. With
        /// `first_only`, nothing is stored (`None`) when an account exists.
        async fn insert_account(
            c: &mut Conn,
            account: &Account,
            first_only: bool,
        ) -> Result<Option<Account>, StoreError> {
            retry_tx!(
                c.$write_tx(async |c: &mut Conn| -> Result<Option<Account>, TxError> {
                    diesel::sql_query($lock_accounts).execute(c).await?;
                    let existing: i64 = accounts::table.count().get_result(c).await?;
                    if first_only && existing > 0 {
                        return Ok(None);
                    }
                    let row = AccountRow {
                        id: account.id.db(),
                        username: account.username.clone(),
                        email: account.email.clone(),
                        password_hash: account.password_hash.clone(),
                        is_admin: existing == 0,
                        created_at: account.created_at.db(),
                    };
                    diesel::insert_into(accounts::table)
                        .values(&row)
                        .execute(c)
                        .await?;
                    Ok(Some(row.into()))
                })
            )
        }

        pub(crate) async fn count_accounts(c: &mut Conn) -> Result<u64, StoreError> {
            let n: i64 = accounts::table
                .count()
                .get_result(c)
                .await
                .map_err(translate)?;
            u64::try_from(n).map_err(|_| StoreError::Internal("negative count".into()))
        }

        pub(crate) async fn find_account(
            c: &mut Conn,
            login: &str,
        ) -> Result<Option<Account>, StoreError> {
            accounts::table
                .filter(accounts::username.eq(login).or(accounts::email.eq(login)))
                .select(AccountRow::as_select())
                .one()
                .get_result(c)
                .await
                .optional()
                .map(|row| row.map(Account::from))
                .map_err(translate)
        }

        pub(crate) async fn get_account(
            c: &mut Conn,
            id: Uuid,
        ) -> Result<Option<Account>, StoreError> {
            accounts::table
                .filter(accounts::id.eq(id.db()))
                .select(AccountRow::as_select())
                .one()
                .get_result(c)
                .await
                .optional()
                .map(|row| row.map(Account::from))
                .map_err(translate)
        }

        pub(crate) async fn set_password(
            c: &mut Conn,
            id: Uuid,
            hash: &str,
            now: Timestamp,
        ) -> Result<(), StoreError> {
            retry_tx!(c.$write_tx(async |c: &mut Conn| -> Result<(), TxError> {
                let changed = diesel::update(accounts::table.filter(accounts::id.eq(id.db())))
                    .set(accounts::password_hash.eq(hash))
                    .execute(c)
                    .await?;
                if changed == 0 {
                    return Err(StoreError::NotFound.into());
                }
                revoke_all(c, id, now).await?;
                Ok(())
            }))
        }

        async fn revoke_all(c: &mut Conn, id: Uuid, now: Timestamp) -> diesel::QueryResult<usize> {
            diesel::update(
                auth_sessions::table
                    .filter(auth_sessions::account_id.eq(id.db()))
                    .filter(auth_sessions::revoked_at.is_null()),
            )
            .set(auth_sessions::revoked_at.eq(Some(now.db())))
            .execute(c)
            .await
        }

        pub(crate) async fn delete_account(c: &mut Conn, id: Uuid) -> Result<(), StoreError> {
            let deleted = diesel::delete(accounts::table.filter(accounts::id.eq(id.db())))
                .execute(c)
                .await
                .map_err(translate)?;
            if deleted == 0 {
                return Err(StoreError::NotFound);
            }
            Ok(())
        }

        pub(crate) async fn insert_session(
            c: &mut Conn,
            session: &Session,
        ) -> Result<(), StoreError> {
            diesel::insert_into(auth_sessions::table)
                .values(SessionRow::from(session))
                .execute(c)
                .await
                .map(drop)
                .map_err(translate)
        }

        pub(crate) async fn get_session(
            c: &mut Conn,
            id: Uuid,
        ) -> Result<Option<Session>, StoreError> {
            auth_sessions::table
                .filter(auth_sessions::id.eq(id.db()))
                .select(SessionRow::as_select())
                .one()
                .get_result(c)
                .await
                .optional()
                .map(|row| row.map(Session::from))
                .map_err(translate)
        }

        pub(crate) async fn revoke_session(
            c: &mut Conn,
            id: Uuid,
            now: Timestamp,
        ) -> Result<(), StoreError> {
            diesel::update(
                auth_sessions::table
                    .filter(auth_sessions::id.eq(id.db()))
                    .filter(auth_sessions::revoked_at.is_null()),
            )
            .set(auth_sessions::revoked_at.eq(Some(now.db())))
            .execute(c)
            .await
            .map(drop)
            .map_err(translate)
        }

        pub(crate) async fn revoke_sessions(
            c: &mut Conn,
            account_id: Uuid,
            now: Timestamp,
        ) -> Result<(), StoreError> {
            revoke_all(c, account_id, now)
                .await
                .map(drop)
                .map_err(translate)
        }

        /// The atomic step is the conditional `UPDATE … WHERE refresh_hash = presented`: of
        /// two callers with one secret, the second waits for the first's row lock and then
        /// matches nothing (PostgreSQL re-reads the row; SQLite's `BEGIN IMMEDIATE` runs
        /// them one after the other), and reads the row as the first left it.
        pub(crate) async fn rotate_refresh(
            c: &mut Conn,
            rotation: &Rotation,
        ) -> Result<Rotated, StoreError> {
            retry_tx!(
                c.$write_tx(async |c: &mut Conn| -> Result<Rotated, TxError> {
                    let live = || {
                        auth_sessions::id
                            .eq(rotation.session_id.db())
                            .and(auth_sessions::revoked_at.is_null())
                            .and(auth_sessions::expires_at.gt(rotation.now.db()))
                            .and(auth_sessions::last_used_at.ge(rotation.idle_since.db()))
                    };
                    let rotated = diesel::update(
                        auth_sessions::table
                            .filter(live())
                            .filter(auth_sessions::refresh_hash.ne(""))
                            .filter(auth_sessions::refresh_hash.eq(&rotation.presented_hash)),
                    )
                    .set((
                        auth_sessions::refresh_hash.eq(&rotation.new_hash),
                        auth_sessions::previous_refresh_hash.eq(Some(&rotation.presented_hash)),
                        auth_sessions::rotated_at.eq(Some(rotation.now.db())),
                        auth_sessions::sealed.eq(Some(&rotation.sealed)),
                        auth_sessions::last_used_at.eq(Some(rotation.now.db())),
                    ))
                    .returning(SessionRow::as_returning())
                    .get_result(c)
                    .await
                    .optional()?;
                    if let Some(row) = rotated {
                        return Ok(Rotated::Rotated(row.into()));
                    }
                    let found: Option<(SessionRow, RotationRow)> = auth_sessions::table
                        .filter(live())
                        .select((SessionRow::as_select(), RotationRow::as_select()))
                        .one()
                        .get_result(c)
                        .await
                        .optional()?;
                    let Some((session, previous)) = found else {
                        return Ok(Rotated::Refused);
                    };
                    let in_grace = previous
                        .rotated_at
                        .is_some_and(|at| at.0 >= rotation.grace_since);
                    if let (true, Some(hash), Some(sealed)) =
                        (in_grace, previous.previous_refresh_hash, previous.sealed)
                        && hash == rotation.presented_hash
                    {
                        return Ok(Rotated::Replayed {
                            session: session.into(),
                            sealed,
                        });
                    }
                    diesel::update(auth_sessions::table.filter(live()))
                        .set(auth_sessions::revoked_at.eq(Some(rotation.now.db())))
                        .execute(c)
                        .await?;
                    Ok(Rotated::Reused)
                })
            )
        }

        pub(crate) async fn list_sessions(
            c: &mut Conn,
            account_id: Uuid,
            now: Timestamp,
            idle_since: Timestamp,
        ) -> Result<Vec<Session>, StoreError> {
            crate::limit::Limited::new(
                auth_sessions::table
                    .filter(auth_sessions::account_id.eq(account_id.db()))
                    .filter(auth_sessions::revoked_at.is_null())
                    .filter(auth_sessions::expires_at.gt(now.db()))
                    .filter(auth_sessions::last_used_at.ge(idle_since.db()))
                    .order((auth_sessions::created_at.desc(), auth_sessions::id.desc()))
                    .select(SessionRow::as_select()),
                1000,
            )
            .load(c)
            .await
            .map(|rows| rows.into_iter().map(Session::from).collect())
            .map_err(translate)
        }

        pub(crate) async fn revoke_own_session(
            c: &mut Conn,
            account_id: Uuid,
            id: Uuid,
            now: Timestamp,
        ) -> Result<bool, StoreError> {
            diesel::update(
                auth_sessions::table
                    .filter(auth_sessions::id.eq(id.db()))
                    .filter(auth_sessions::account_id.eq(account_id.db()))
                    .filter(auth_sessions::revoked_at.is_null()),
            )
            .set(auth_sessions::revoked_at.eq(Some(now.db())))
            .execute(c)
            .await
            .map(|n| n > 0)
            .map_err(translate)
        }

        /// One transaction: the insert (under the account's row, so that it fails with
        /// `NotFound` for an account that is gone), then the trim of what is past the
        /// retention: older than `since`, or past the newest `newest`.
        pub(crate) async fn record_event(
            c: &mut Conn,
            event: &SecurityEvent,
            retention: EventRetention,
        ) -> Result<(), StoreError> {
            retry_tx!(c.$write_tx(async |c: &mut Conn| -> Result<(), TxError> {
                let account = event.account_id.db();
                let exists: i64 = accounts::table
                    .filter(accounts::id.eq(account))
                    .count()
                    .get_result(c)
                    .await?;
                if exists == 0 {
                    return Err(StoreError::NotFound.into());
                }
                diesel::insert_into(security_events::table)
                    .values(EventRow::from(event))
                    .execute(c)
                    .await?;
                diesel::delete(
                    security_events::table
                        .filter(security_events::account_id.eq(account))
                        .filter(security_events::at.lt(retention.since.db())),
                )
                .execute(c)
                .await?;
                let newest = i64::from(retention.newest);
                let kept: Vec<crate::types::DbId> = security_events::table
                    .filter(security_events::account_id.eq(account))
                    .order((security_events::at.desc(), security_events::id.desc()))
                    .limit(newest)
                    .select(security_events::id)
                    .load(c)
                    .await?;
                if i64::try_from(kept.len()).unwrap_or(i64::MAX) >= newest {
                    diesel::delete(
                        security_events::table
                            .filter(security_events::account_id.eq(account))
                            .filter(security_events::id.ne_all(kept)),
                    )
                    .execute(c)
                    .await?;
                }
                Ok(())
            }))
        }

        pub(crate) async fn list_events(
            c: &mut Conn,
            account_id: Uuid,
        ) -> Result<Vec<SecurityEvent>, StoreError> {
            let rows: Vec<EventRow> = security_events::table
                .filter(security_events::account_id.eq(account_id.db()))
                .order((security_events::at.desc(), security_events::id.desc()))
                .limit(1000)
                .select(EventRow::as_select())
                .load(c)
                .await
                .map_err(translate)?;
            rows.into_iter().map(SecurityEvent::try_from).collect()
        }

        pub(crate) async fn mark_events_read(
            c: &mut Conn,
            account_id: Uuid,
            now: Timestamp,
        ) -> Result<u64, StoreError> {
            let marked = diesel::update(
                security_events::table
                    .filter(security_events::account_id.eq(account_id.db()))
                    .filter(security_events::read_at.is_null())
                    .filter(security_events::at.le(now.db())),
            )
            .set(security_events::read_at.eq(Some(now.db())))
            .execute(c)
            .await
            .map_err(translate)?;
            Ok(u64::try_from(marked).unwrap_or(u64::MAX))
        }

        pub(crate) async fn insert_link(c: &mut Conn, link: &Link) -> Result<(), StoreError> {
            diesel::insert_into(auth_links::table)
                .values(LinkRow {
                    token_hash: link.token_hash.clone(),
                    kind: link.kind.as_str().to_owned(),
                    account_id: link.account_id.map(|id| id.db()),
                    expires_at: link.expires_at.db(),
                    used_at: None,
                })
                .execute(c)
                .await
                .map(drop)
                .map_err(translate)
        }

        /// One conditional UPDATE … RETURNING: of concurrent takers, exactly one gets the row.
        pub(crate) async fn take_link(
            c: &mut Conn,
            kind: LinkKind,
            token_hash: &str,
            now: Timestamp,
        ) -> Result<Option<Link>, StoreError> {
            diesel::update(
                auth_links::table
                    .filter(auth_links::token_hash.eq(token_hash))
                    .filter(auth_links::kind.eq(kind.as_str()))
                    .filter(auth_links::used_at.is_null())
                    .filter(auth_links::expires_at.ge(now.db())),
            )
            .set(auth_links::used_at.eq(Some(now.db())))
            .returning(LinkRow::as_returning())
            .get_result(c)
            .await
            .optional()
            .map_err(translate)?
            .map(Link::try_from)
            .transpose()
        }

        pub(crate) async fn release_link(
            c: &mut Conn,
            kind: LinkKind,
            token_hash: &str,
        ) -> Result<(), StoreError> {
            diesel::update(
                auth_links::table
                    .filter(auth_links::token_hash.eq(token_hash))
                    .filter(auth_links::kind.eq(kind.as_str())),
            )
            .set(auth_links::used_at.eq(None::<crate::types::DbTime>))
            .execute(c)
            .await
            .map(drop)
            .map_err(translate)
        }

        /// One transaction: an upsert per key (in key order, so that two callers cannot
        /// deadlock) that inserts a placeholder (count 0) for a key not kept yet and locks
        /// the key's row, returning it; then `step` decides and its answer is written. A second
        /// replica's call on the same keys waits for this one's commit and sees its counts.
        pub(crate) async fn update_failures(
            c: &mut Conn,
            keys: &[String],
            now: Timestamp,
            step: FailuresStep,
        ) -> Result<Vec<Option<Failures>>, StoreError> {
            let mut sorted: Vec<&String> = keys.iter().collect();
            sorted.sort();
            sorted.dedup();
            retry_tx!(c.$write_tx(
                async |c: &mut Conn| -> Result<Vec<Option<Failures>>, TxError> {
                    let mut rows: Vec<FailuresRow> = Vec::with_capacity(sorted.len());
                    for key in &sorted {
                        let row = diesel::insert_into(sign_in_failures::table)
                            .values(FailuresRow {
                                key: (*key).clone(),
                                count: 0,
                                last_at: now.db(),
                                blocked_until: None,
                            })
                            .on_conflict(sign_in_failures::key)
                            .do_update()
                            .set(
                                sign_in_failures::key
                                    .eq(diesel::upsert::excluded(sign_in_failures::key)),
                            )
                            .returning(FailuresRow::as_returning())
                            .get_result(c)
                            .await?;
                        rows.push(row);
                    }
                    let before: Vec<Option<Failures>> = keys
                        .iter()
                        .map(|key| {
                            rows.iter()
                                .find(|r| &r.key == key)
                                .and_then(FailuresRow::failures)
                        })
                        .collect();
                    let after = step(&before);
                    let mut forget: Vec<&String> = Vec::new();
                    match after {
                        None => forget.extend(
                            keys.iter()
                                .zip(&before)
                                .filter(|(_, b)| b.is_none())
                                .map(|(k, _)| k),
                        ),
                        Some(after) => {
                            for (key, failures) in keys.iter().zip(after) {
                                match failures {
                                    None => forget.push(key),
                                    Some(f) => {
                                        diesel::update(
                                            sign_in_failures::table
                                                .filter(sign_in_failures::key.eq(key)),
                                        )
                                        .set((
                                            sign_in_failures::count.eq(i64::from(f.count)),
                                            sign_in_failures::last_at.eq(f.last.db()),
                                            sign_in_failures::blocked_until
                                                .eq(f.blocked_until.map(|at| at.db())),
                                        ))
                                        .execute(c)
                                        .await?;
                                    }
                                }
                            }
                        }
                    }
                    if !forget.is_empty() {
                        diesel::delete(
                            sign_in_failures::table.filter(sign_in_failures::key.eq_any(forget)),
                        )
                        .execute(c)
                        .await?;
                    }
                    Ok(before)
                }
            ))
        }

        pub(crate) async fn forget_failures(
            c: &mut Conn,
            before: Timestamp,
        ) -> Result<u64, StoreError> {
            let deleted = diesel::delete(
                sign_in_failures::table.filter(sign_in_failures::last_at.lt(before.db())),
            )
            .execute(c)
            .await
            .map_err(translate)?;
            Ok(u64::try_from(deleted).unwrap_or(u64::MAX))
        }

        /// Purges the expired revocations, then records this one (one transaction).
        pub(crate) async fn revoke_browser_session(
            c: &mut Conn,
            id: Uuid,
            expires_at: Timestamp,
            now: Timestamp,
        ) -> Result<(), StoreError> {
            retry_tx!(c.$write_tx(async |c: &mut Conn| -> Result<(), TxError> {
                diesel::delete(
                    browser_session_revocations::table
                        .filter(browser_session_revocations::expires_at.le(now.db())),
                )
                .execute(c)
                .await?;
                diesel::insert_into(browser_session_revocations::table)
                    .values((
                        browser_session_revocations::session_id.eq(id.db()),
                        browser_session_revocations::expires_at.eq(expires_at.db()),
                    ))
                    .on_conflict(browser_session_revocations::session_id)
                    .do_nothing()
                    .execute(c)
                    .await?;
                Ok(())
            }))
        }

        pub(crate) async fn browser_session_revoked(
            c: &mut Conn,
            id: Uuid,
            now: Timestamp,
        ) -> Result<bool, StoreError> {
            let n: i64 = browser_session_revocations::table
                .filter(browser_session_revocations::session_id.eq(id.db()))
                .filter(browser_session_revocations::expires_at.gt(now.db()))
                .count()
                .get_result(c)
                .await
                .map_err(translate)?;
            Ok(n > 0)
        }
    };
}

/// PostgreSQL: the table lock serialises account creation (rare) so that `is_admin` holds.
pub(crate) mod pg {
    use diesel_async::AsyncConnection as _;

    account_queries!(
        conn = diesel_async::AsyncPgConnection,
        write_tx = transaction,
        lock_accounts = "LOCK TABLE accounts IN SHARE ROW EXCLUSIVE MODE",
    );
}

/// SQLite: `BEGIN IMMEDIATE` already excludes every other writer.
pub(crate) mod sqlite {
    use crate::connect::Immediate as _;

    account_queries!(
        conn = crate::connect::SqliteConn,
        write_tx = immediate_transaction,
        lock_accounts = "SELECT 1",
    );
}
