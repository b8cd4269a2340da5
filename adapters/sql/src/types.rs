//! The two column types whose storage differs between the backends, as custom SQL types so
//! that one `schema.rs` and one body of query code serve both:
//!
//! | SQL type  | PostgreSQL     | SQLite                                                   |
//! |-----------|----------------|----------------------------------------------------------|
//! | [`Id`]    | `uuid`         | `TEXT`, lowercase hyphenated (sorts like the uuid bytes) |
//! | [`Instant`] | `timestamptz` | `TEXT`, `YYYY-MM-DDTHH:MM:SS.ffffffZ` (fixed width, UTC) |
//!
//! The SQLite text forms are fixed-width, so comparing them as text orders them exactly like
//! the values they encode: keyset comparisons (`updated_at < ?`, `id > ?`) are correct on
//! both backends, and a timestamp round-trips to the microsecond.

use chrono::{DateTime, Datelike as _, NaiveDateTime, Utc};
use confab_core::ids::{ConversationId, FileId, MessageId, ProjectId, PromptId, ShareId};
use diesel::deserialize::FromSqlRow;
use diesel::deserialize::{self, FromSql};
use diesel::expression::AsExpression;
use diesel::pg::{Pg, PgValue};
use diesel::serialize::{self, IsNull, Output, ToSql};
use diesel::sql_types::{Text, Timestamptz};
use diesel::sqlite::{Sqlite, SqliteValue};
use uuid::Uuid;

/// A UUID: `uuid` on PostgreSQL, lowercase hyphenated `TEXT` on SQLite.
#[derive(
    Debug, Clone, Copy, Default, diesel::sql_types::SqlType, diesel::query_builder::QueryId,
)]
#[diesel(postgres_type(oid = 2950, array_oid = 2951))]
#[diesel(sqlite_type(name = "Text"))]
pub struct Id;

/// A UTC instant with microsecond precision: `timestamptz` on PostgreSQL, fixed-width
/// RFC 3339 `TEXT` on SQLite.
#[derive(
    Debug, Clone, Copy, Default, diesel::sql_types::SqlType, diesel::query_builder::QueryId,
)]
#[diesel(postgres_type(oid = 1184, array_oid = 1185))]
#[diesel(sqlite_type(name = "Text"))]
pub struct Instant;

/// The SQLite text form of an [`Instant`]: always 27 characters.
const SQLITE_INSTANT_FORMAT: &str = "%Y-%m-%dT%H:%M:%S%.6fZ";

/// Formats an instant the way it is stored on SQLite. Years outside 0000–9999 have no
/// fixed-width form and are refused.
pub(crate) fn sqlite_instant(at: &DateTime<Utc>) -> Result<String, InstantOutOfRange> {
    if (0..=9999).contains(&at.year()) {
        Ok(at.format(SQLITE_INSTANT_FORMAT).to_string())
    } else {
        Err(InstantOutOfRange)
    }
}

/// Parses the SQLite text form of an [`Instant`].
pub(crate) fn parse_sqlite_instant(text: &str) -> Result<DateTime<Utc>, chrono::ParseError> {
    NaiveDateTime::parse_from_str(text, SQLITE_INSTANT_FORMAT).map(|naive| naive.and_utc())
}

/// A timestamp whose year has no four-digit form.
#[derive(Debug, thiserror::Error)]
#[error("timestamps must fall in the years 0000 to 9999")]
pub(crate) struct InstantOutOfRange;

/// A UUID bound to or read from an [`Id`] column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, AsExpression, FromSqlRow)]
#[diesel(sql_type = Id)]
pub(crate) struct DbId(pub Uuid);

/// An instant bound to or read from an [`Instant`] column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, AsExpression, FromSqlRow)]
#[diesel(sql_type = Instant)]
pub(crate) struct DbTime(pub DateTime<Utc>);

/// The database form of a domain value: `id.db()`, `now.db()`.
pub(crate) trait ToDb {
    type Db;
    fn db(&self) -> Self::Db;
}

macro_rules! id_conversions {
    ($($id:ty),*) => {$(
        impl ToDb for $id {
            type Db = DbId;
            fn db(&self) -> DbId {
                DbId(self.as_uuid())
            }
        }

        impl From<DbId> for $id {
            fn from(id: DbId) -> Self {
                Self::from_uuid(id.0)
            }
        }
    )*};
}

id_conversions!(
    ProjectId,
    PromptId,
    ConversationId,
    MessageId,
    FileId,
    ShareId
);

impl ToDb for DbId {
    type Db = DbId;
    fn db(&self) -> DbId {
        *self
    }
}

impl ToDb for Uuid {
    type Db = DbId;
    fn db(&self) -> DbId {
        DbId(*self)
    }
}

impl ToDb for DateTime<Utc> {
    type Db = DbTime;
    fn db(&self) -> DbTime {
        DbTime(*self)
    }
}

impl ToSql<Id, Pg> for DbId {
    fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, Pg>) -> serialize::Result {
        <Uuid as ToSql<diesel::sql_types::Uuid, Pg>>::to_sql(&self.0, out)
    }
}

impl ToSql<Id, Sqlite> for DbId {
    fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, Sqlite>) -> serialize::Result {
        out.set_value(self.0.hyphenated().to_string());
        Ok(IsNull::No)
    }
}

impl FromSql<Id, Pg> for DbId {
    fn from_sql(bytes: PgValue<'_>) -> deserialize::Result<Self> {
        <Uuid as FromSql<diesel::sql_types::Uuid, Pg>>::from_sql(bytes).map(Self)
    }
}

impl FromSql<Id, Sqlite> for DbId {
    fn from_sql(value: SqliteValue<'_, '_, '_>) -> deserialize::Result<Self> {
        let text = <String as FromSql<Text, Sqlite>>::from_sql(value)?;
        Ok(Self(Uuid::parse_str(&text)?))
    }
}

impl ToSql<Instant, Pg> for DbTime {
    fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, Pg>) -> serialize::Result {
        <DateTime<Utc> as ToSql<Timestamptz, Pg>>::to_sql(&self.0, out)
    }
}

impl ToSql<Instant, Sqlite> for DbTime {
    fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, Sqlite>) -> serialize::Result {
        out.set_value(sqlite_instant(&self.0)?);
        Ok(IsNull::No)
    }
}

impl FromSql<Instant, Pg> for DbTime {
    fn from_sql(bytes: PgValue<'_>) -> deserialize::Result<Self> {
        <DateTime<Utc> as FromSql<Timestamptz, Pg>>::from_sql(bytes).map(Self)
    }
}

impl FromSql<Instant, Sqlite> for DbTime {
    fn from_sql(value: SqliteValue<'_, '_, '_>) -> deserialize::Result<Self> {
        let text = <String as FromSql<Text, Sqlite>>::from_sql(value)?;
        Ok(Self(parse_sqlite_instant(&text)?))
    }
}

#[cfg(test)]
mod tests {

    use super::*;
    use chrono::{Duration, TimeZone as _};

    #[test]
    fn sqlite_instants_are_fixed_width_and_round_trip_microseconds() {
        let at = Utc.with_ymd_and_hms(2026, 1, 2, 3, 4, 5).unwrap() + Duration::microseconds(7);
        let text = sqlite_instant(&at).unwrap();
        assert_eq!(text, "2026-01-02T03:04:05.000007Z");
        assert_eq!(parse_sqlite_instant(&text).unwrap(), at);
        let whole = Utc.with_ymd_and_hms(2026, 1, 2, 3, 4, 5).unwrap();
        assert_eq!(sqlite_instant(&whole).unwrap().len(), 27);
    }

    #[test]
    fn sqlite_instants_sort_as_text_like_the_instants_they_encode() {
        let base = Utc.with_ymd_and_hms(1999, 12, 31, 23, 59, 59).unwrap();
        let mut instants: Vec<DateTime<Utc>> = [0, 1, 10, 999_999, 1_000_000, 86_400_000_000]
            .into_iter()
            .map(|us| base + Duration::microseconds(us))
            .collect();
        instants.push(Utc.with_ymd_and_hms(2026, 11, 26, 0, 0, 0).unwrap());
        let mut texts: Vec<String> = instants
            .iter()
            .map(|t| sqlite_instant(t).unwrap())
            .collect();
        texts.sort();
        let back: Vec<DateTime<Utc>> = texts
            .iter()
            .map(|t| parse_sqlite_instant(t).unwrap())
            .collect();
        let mut sorted = instants.clone();
        sorted.sort();
        assert_eq!(back, sorted);
    }

    #[test]
    fn sqlite_instants_refuse_years_without_four_digits() {
        let far = Utc.with_ymd_and_hms(10_000, 1, 1, 0, 0, 0).unwrap();
        assert!(sqlite_instant(&far).is_err());
    }

    #[test]
    fn hyphenated_uuid_text_sorts_like_uuid_bytes() {
        let mut ids: Vec<Uuid> = (0u8..=255)
            .step_by(17)
            .map(|b| {
                Uuid::from_bytes([b, 0x0a, b ^ 0xf0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, b])
            })
            .collect();
        let mut texts: Vec<String> = ids.iter().map(|u| u.hyphenated().to_string()).collect();
        ids.sort();
        texts.sort();
        let back: Vec<Uuid> = texts.iter().map(|t| Uuid::parse_str(t).unwrap()).collect();
        assert_eq!(back, ids);
    }
}
