//! The `UsageLedger` operations, written once in [`usage_queries!`] and expanded for each
//! connection type, like [`queries`](crate::queries). Sums are plain SQL (`SUM` of a
//! `bigint` is `numeric` on PostgreSQL, so every sum is cast back to `BIGINT`).

use confab_core::usage::{GroupBy, NaiveDate, QuotaOverride, QuotaState, TokenCounts, UsageRow};
use diesel::sql_types::{BigInt, Nullable, Text};
use diesel::{Insertable, QueryableByName};

use crate::schema::{usage_entries, user_quotas};
use crate::types::{DbId, DbTime};

#[derive(Insertable)]
#[diesel(table_name = usage_entries)]
pub(crate) struct EntryRow {
    pub id: DbId,
    pub user_id: String,
    pub project_id: Option<DbId>,
    pub conversation_id: Option<DbId>,
    pub message_id: Option<DbId>,
    pub model: String,
    pub purpose: String,
    pub day: String,
    pub input_tokens: i64,
    pub cached_input_tokens: i64,
    pub output_tokens: i64,
    pub reasoning_tokens: i64,
    pub estimated: bool,
    pub cost_micros: Option<i64>,
    pub created_at: DbTime,
}

#[derive(Insertable)]
#[diesel(table_name = user_quotas)]
pub(crate) struct QuotaRow {
    pub user_id: String,
    pub tokens_per_day: Option<i64>,
    pub tokens_per_month: Option<i64>,
    pub updated_at: DbTime,
}

/// A user's sums and override, as the quota check and the administrators read them.
#[derive(QueryableByName)]
pub(crate) struct StateRow {
    #[diesel(sql_type = Text)]
    pub user_id: String,
    #[diesel(sql_type = BigInt)]
    pub used_day: i64,
    #[diesel(sql_type = BigInt)]
    pub used_month: i64,
    #[diesel(sql_type = Nullable<BigInt>)]
    pub tokens_per_day: Option<i64>,
    #[diesel(sql_type = Nullable<BigInt>)]
    pub tokens_per_month: Option<i64>,
}

impl StateRow {
    pub(crate) fn state(&self) -> QuotaState {
        QuotaState {
            used_day: count(self.used_day),
            used_month: count(self.used_month),
            quota: QuotaOverride {
                tokens_per_day: self.tokens_per_day.map(count),
                tokens_per_month: self.tokens_per_month.map(count),
            },
        }
    }
}

#[derive(QueryableByName)]
pub(crate) struct SumRow {
    #[diesel(sql_type = Text)]
    pub key: String,
    #[diesel(sql_type = BigInt)]
    pub input: i64,
    #[diesel(sql_type = BigInt)]
    pub cached_input: i64,
    #[diesel(sql_type = BigInt)]
    pub output: i64,
    #[diesel(sql_type = BigInt)]
    pub reasoning: i64,
    #[diesel(sql_type = BigInt)]
    pub cost_micros: i64,
    #[diesel(sql_type = BigInt)]
    pub calls: i64,
}

impl From<SumRow> for UsageRow {
    fn from(r: SumRow) -> Self {
        Self {
            key: r.key,
            tokens: TokenCounts {
                input: count(r.input),
                cached_input: count(r.cached_input),
                output: count(r.output),
                reasoning: count(r.reasoning),
            },
            cost_micros: r.cost_micros,
            calls: count(r.calls),
        }
    }
}

fn count(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

pub(crate) fn db_count(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

pub(crate) fn day_text(day: NaiveDate) -> String {
    day.format("%Y-%m-%d").to_string()
}

/// `?` placeholders numbered for PostgreSQL (`$1`, `$2`, …) when `pg`.
pub(crate) fn placeholders(sql: &str, pg: bool) -> String {
    if !pg {
        return sql.to_owned();
    }
    let mut out = String::with_capacity(sql.len() + 16);
    let mut n = 0;
    for c in sql.chars() {
        if c == '?' {
            n += 1;
            out.push_str(&format!("${n}"));
        } else {
            out.push(c);
        }
    }
    out
}

/// The sums of a user's day and month so far, from the per-day sums the triggers keep
/// (`usage_user_days`, migration `2026-12-08-000300_usage_sums`: at most 31 rows, whatever
/// the size of the ledger; binds: user, day, user, user, user, month start, day).
pub(crate) const STATE_SQL: &str = "SELECT CAST(? AS TEXT) AS user_id, \
    CAST(COALESCE(SUM(CASE WHEN day = ? THEN input_tokens + output_tokens ELSE 0 END), 0) AS BIGINT) AS used_day, \
    CAST(COALESCE(SUM(input_tokens + output_tokens), 0) AS BIGINT) AS used_month, \
    (SELECT tokens_per_day FROM user_quotas WHERE user_id = ?) AS tokens_per_day, \
    (SELECT tokens_per_month FROM user_quotas WHERE user_id = ?) AS tokens_per_month \
    FROM usage_user_days WHERE user_id = ? AND day >= ? AND day <= ?";

/// Every user with usage this month or an override, from the per-day sums (binds: first,
/// day, day, first, day). A day whose calls were all deleted keeps a row of zeros
/// (`calls = 0`): it is no usage.
pub(crate) const USERS_SQL: &str = "SELECT u.user_id AS user_id, \
    CAST(COALESCE(s.used_day, 0) AS BIGINT) AS used_day, \
    CAST(COALESCE(s.used_month, 0) AS BIGINT) AS used_month, \
    q.tokens_per_day AS tokens_per_day, q.tokens_per_month AS tokens_per_month \
    FROM (SELECT user_id FROM usage_user_days WHERE day >= ? AND day <= ? AND calls > 0 \
          UNION SELECT user_id FROM user_quotas) u \
    LEFT JOIN (SELECT user_id, \
          SUM(CASE WHEN day = ? THEN input_tokens + output_tokens ELSE 0 END) AS used_day, \
          SUM(input_tokens + output_tokens) AS used_month \
          FROM usage_user_days WHERE day >= ? AND day <= ? GROUP BY user_id) s \
      ON s.user_id = u.user_id \
    LEFT JOIN user_quotas q ON q.user_id = u.user_id \
    ORDER BY u.user_id";

/// The grouped sums of a range of days (binds: from, to, [user]). Read from the per-day sums
/// the triggers keep (`usage_user_days`, `usage_model_days`, `usage_project_days`: one row
/// per user, model or project and day, not one per call) whenever they hold the grouping;
/// only a user's own report by model or project reads that user's ledger rows.
pub(crate) fn summary_sql(group_by: GroupBy, for_user: bool) -> String {
    let (table, key, calls) = match (group_by, for_user) {
        (GroupBy::User, false) => ("usage_user_days", "user_id", "SUM(calls)"),
        (GroupBy::Model, false) => ("usage_model_days", "model", "SUM(calls)"),
        (GroupBy::Day, false) => ("usage_model_days", "day", "SUM(calls)"),
        (GroupBy::Project, false) => ("usage_project_days", "project_key", "SUM(calls)"),
        (GroupBy::Day | GroupBy::User, true) => {
            let key = if group_by == GroupBy::Day {
                "day"
            } else {
                "user_id"
            };
            ("usage_user_days", key, "SUM(calls)")
        }
        (GroupBy::Model, true) => ("usage_entries", "model", "COUNT(*)"),
        (GroupBy::Project, true) => (
            "usage_entries",
            "COALESCE(CAST(project_id AS TEXT), '')",
            "COUNT(*)",
        ),
    };
    let user = if for_user { " AND user_id = ?" } else { "" };
    // A day whose calls were all deleted keeps a row of zeros in the sums: not a group.
    let live = if table == "usage_entries" {
        ""
    } else {
        " AND calls > 0"
    };
    format!(
        "SELECT {key} AS key, \
         CAST(COALESCE(SUM(input_tokens), 0) AS BIGINT) AS input, \
         CAST(COALESCE(SUM(cached_input_tokens), 0) AS BIGINT) AS cached_input, \
         CAST(COALESCE(SUM(output_tokens), 0) AS BIGINT) AS output, \
         CAST(COALESCE(SUM(reasoning_tokens), 0) AS BIGINT) AS reasoning, \
         CAST(COALESCE(SUM(cost_micros), 0) AS BIGINT) AS cost_micros, \
         CAST({calls} AS BIGINT) AS calls \
         FROM {table} WHERE day >= ? AND day <= ?{user}{live} \
         GROUP BY {key} ORDER BY 1"
    )
}

/// The operations for one connection type `$conn`; `$pg` numbers the placeholders.
macro_rules! usage_queries {
    (conn = $conn:ty, pg = $pg:expr $(,)?) => {
        use confab_core::error::StoreError;
        use confab_core::ids::UserId;
        use confab_core::model::now;
        use confab_core::usage::{
            GroupBy, NaiveDate, QuotaOverride, QuotaState, UsageEntry, UsageRow, UserUsage,
            month_start,
        };
        use diesel::sql_types::Text;
        use diesel::{ExpressionMethods as _, OptionalExtension as _, QueryDsl as _};
        use diesel_async::RunQueryDsl as _;

        use crate::error::{is_retryable, translate};
        use crate::limit::OneRow as _;
        use crate::queries::{MAX_ATTEMPTS, backoff};
        use crate::schema::{conversations, usage_entries, user_quotas};
        use crate::types::{DbId, ToDb as _};
        use crate::usage::{
            EntryRow, QuotaRow, STATE_SQL, StateRow, SumRow, USERS_SQL, day_text, db_count,
            placeholders, summary_sql,
        };

        type Conn = $conn;

        /// One statement, not a transaction: its trigger adds the entry to sums every call of
        /// a model (and of a user, of a project) shares, and holds their rows' locks until
        /// its commit. In a transaction of its own that lasted until the client's `COMMIT`
        /// came back over the wire — at 1,000 streaming replies, calls queued behind each
        /// other for hundreds of milliseconds, holding connections the next sends waited
        /// for (docs/benchmarks.md, "The relay, eighth round"). The project is read first;
        /// a ledger row has no foreign key, and the read needs no lock.
        pub(crate) async fn record(c: &mut Conn, entry: &UsageEntry) -> Result<(), StoreError> {
            let project_id: Option<DbId> = match entry.conversation_id {
                Some(id) => conversations::table
                    .filter(conversations::id.eq(id.db()))
                    .select(conversations::project_id)
                    .one()
                    .get_result(c)
                    .await
                    .optional()
                    .map_err(translate)?,
                None => None,
            };
            let row = EntryRow {
                id: entry.id.db(),
                user_id: entry.user_id.as_str().to_owned(),
                project_id,
                conversation_id: entry.conversation_id.map(|id| id.db()),
                message_id: entry.message_id.map(|id| id.db()),
                model: entry.model.clone(),
                purpose: entry.purpose.as_str().to_owned(),
                day: day_text(entry.day()),
                input_tokens: db_count(entry.tokens.input),
                cached_input_tokens: db_count(entry.tokens.cached_input),
                output_tokens: db_count(entry.tokens.output),
                reasoning_tokens: db_count(entry.tokens.reasoning),
                estimated: entry.estimated,
                cost_micros: entry.cost_micros,
                created_at: entry.created_at.db(),
            };
            let mut attempt = 1_u32;
            loop {
                match diesel::insert_into(usage_entries::table)
                    .values(&row)
                    .execute(c)
                    .await
                {
                    Err(e) if attempt < MAX_ATTEMPTS && is_retryable(&e) => {
                        backoff(attempt).await;
                        attempt += 1;
                    }
                    other => break other.map(drop).map_err(translate),
                }
            }
        }

        pub(crate) async fn quota_state(
            c: &mut Conn,
            user: &UserId,
            day: NaiveDate,
        ) -> Result<QuotaState, StoreError> {
            let (today, first) = (day_text(day), day_text(month_start(day)));
            let row: StateRow = diesel::sql_query(placeholders(STATE_SQL, $pg))
                .bind::<Text, _>(user.as_str())
                .bind::<Text, _>(&today)
                .bind::<Text, _>(user.as_str())
                .bind::<Text, _>(user.as_str())
                .bind::<Text, _>(user.as_str())
                .bind::<Text, _>(&first)
                .bind::<Text, _>(&today)
                .get_result(c)
                .await
                .map_err(translate)?;
            Ok(row.state())
        }

        pub(crate) async fn quota(
            c: &mut Conn,
            user: &UserId,
        ) -> Result<QuotaOverride, StoreError> {
            let row: Option<(Option<i64>, Option<i64>)> = user_quotas::table
                .filter(user_quotas::user_id.eq(user.as_str()))
                .select((user_quotas::tokens_per_day, user_quotas::tokens_per_month))
                .one()
                .get_result(c)
                .await
                .optional()
                .map_err(translate)?;
            Ok(
                row.map_or_else(QuotaOverride::default, |(day, month)| QuotaOverride {
                    tokens_per_day: day.map(|n| u64::try_from(n).unwrap_or(0)),
                    tokens_per_month: month.map(|n| u64::try_from(n).unwrap_or(0)),
                }),
            )
        }

        pub(crate) async fn set_quota(
            c: &mut Conn,
            user: &UserId,
            quota: &QuotaOverride,
        ) -> Result<(), StoreError> {
            let target = user_quotas::table.filter(user_quotas::user_id.eq(user.as_str()));
            if *quota == QuotaOverride::default() {
                diesel::delete(target).execute(c).await.map_err(translate)?;
                return Ok(());
            }
            let row = QuotaRow {
                user_id: user.as_str().to_owned(),
                tokens_per_day: quota.tokens_per_day.map(db_count),
                tokens_per_month: quota.tokens_per_month.map(db_count),
                updated_at: now().db(),
            };
            diesel::insert_into(user_quotas::table)
                .values(&row)
                .on_conflict(user_quotas::user_id)
                .do_update()
                .set((
                    user_quotas::tokens_per_day.eq(row.tokens_per_day),
                    user_quotas::tokens_per_month.eq(row.tokens_per_month),
                    user_quotas::updated_at.eq(now().db()),
                ))
                .execute(c)
                .await
                .map(drop)
                .map_err(translate)
        }

        pub(crate) async fn summary(
            c: &mut Conn,
            user: Option<UserId>,
            from: NaiveDate,
            to: NaiveDate,
            group_by: GroupBy,
        ) -> Result<Vec<UsageRow>, StoreError> {
            let sql = placeholders(&summary_sql(group_by, user.is_some()), $pg);
            let query = diesel::sql_query(sql)
                .bind::<Text, _>(day_text(from))
                .bind::<Text, _>(day_text(to));
            let rows: Vec<SumRow> = match &user {
                Some(user) => query.bind::<Text, _>(user.as_str()).load(c).await,
                None => query.load(c).await,
            }
            .map_err(translate)?;
            Ok(rows.into_iter().map(UsageRow::from).collect())
        }

        pub(crate) async fn users(
            c: &mut Conn,
            day: NaiveDate,
        ) -> Result<Vec<UserUsage>, StoreError> {
            let (today, first) = (day_text(day), day_text(month_start(day)));
            let rows: Vec<StateRow> = diesel::sql_query(placeholders(USERS_SQL, $pg))
                .bind::<Text, _>(&first)
                .bind::<Text, _>(&today)
                .bind::<Text, _>(&today)
                .bind::<Text, _>(&first)
                .bind::<Text, _>(&today)
                .load(c)
                .await
                .map_err(translate)?;
            rows.into_iter()
                .map(|row| {
                    let user_id = UserId::new(row.user_id.clone())
                        .map_err(|e| StoreError::Internal(format!("a stored user id: {e}")))?;
                    Ok(UserUsage {
                        state: row.state(),
                        user_id,
                    })
                })
                .collect()
        }
    };
}

pub(crate) mod pg {
    usage_queries!(conn = diesel_async::AsyncPgConnection, pg = true,);
}

pub(crate) mod sqlite {
    usage_queries!(conn = crate::connect::SqliteConn, pg = false,);
}

#[cfg(test)]
mod tests {
    use super::placeholders;

    #[test]
    fn placeholders_are_numbered_for_postgres_only() {
        assert_eq!(placeholders("a = ? AND b = ?", true), "a = $1 AND b = $2");
        assert_eq!(placeholders("a = ?", false), "a = ?");
    }
}
