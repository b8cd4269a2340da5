//! Opaque keyset cursors. A cursor encodes the sort key of the last item of a page; the next
//! page starts strictly after it, so rows inserted between two fetches are never repeated
//! or skipped. The text form is URL-safe: `<kind>.<key>`.

use chrono::DateTime;
use uuid::Uuid;

use crate::model::Timestamp;

/// A cursor that is not one this server made.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("the cursor is malformed")]
pub struct InvalidCursor;

#[must_use]
pub fn encode_id(id: Uuid) -> String {
    format!("i.{}", id.simple())
}

pub fn decode_id(raw: &str) -> Result<Uuid, InvalidCursor> {
    let key = raw.strip_prefix("i.").ok_or(InvalidCursor)?;
    Uuid::try_parse(key).map_err(|_| InvalidCursor)
}

/// A page of a branch: the leaf it ends at and the last message read. Each page of one
/// listing reads the same branch, even when another is chosen meanwhile.
#[must_use]
pub fn encode_branch(leaf: Uuid, after: Uuid) -> String {
    format!("b.{}.{}", leaf.simple(), after.simple())
}

/// A branch cursor's leaf and last message; a plain id cursor (before branches) has no leaf.
pub fn decode_branch(raw: &str) -> Result<(Option<Uuid>, Uuid), InvalidCursor> {
    if let Some(rest) = raw.strip_prefix("b.") {
        let (leaf, after) = rest.split_once('.').ok_or(InvalidCursor)?;
        let parse = |key: &str| Uuid::try_parse(key).map_err(|_| InvalidCursor);
        return Ok((Some(parse(leaf)?), parse(after)?));
    }
    Ok((None, decode_id(raw)?))
}

#[must_use]
pub fn encode_time_id(at: Timestamp, id: Uuid) -> String {
    format!("t.{}.{}", at.timestamp_micros(), id.simple())
}

/// The largest time a cursor carries, in microseconds since the epoch: 10^17 − 1, in the year
/// 5138. Any time up to it fits every store (years 0000–9999); a larger one is no cursor this
/// server made, rather than a query the store cannot run.
pub const MAX_TIME_MICROS: u64 = 99_999_999_999_999_999;

/// The largest prompt version a cursor carries: 10^9 − 1.
pub const MAX_VERSION: u32 = 999_999_999;

/// A number written as plain ASCII digits (no sign), at most `max`.
fn plain_number(text: &str, max: u64) -> Result<u64, InvalidCursor> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(InvalidCursor);
    }
    text.parse::<u64>()
        .ok()
        .filter(|n| *n <= max)
        .ok_or(InvalidCursor)
}

pub fn decode_time_id(raw: &str) -> Result<(Timestamp, Uuid), InvalidCursor> {
    let rest = raw.strip_prefix("t.").ok_or(InvalidCursor)?;
    let (micros, id) = rest.split_once('.').ok_or(InvalidCursor)?;
    let micros =
        i64::try_from(plain_number(micros, MAX_TIME_MICROS)?).map_err(|_| InvalidCursor)?;
    let at = DateTime::from_timestamp_micros(micros).ok_or(InvalidCursor)?;
    Ok((at, Uuid::try_parse(id).map_err(|_| InvalidCursor)?))
}

#[must_use]
pub fn encode_version(version: i32) -> String {
    format!("v.{version}")
}

pub fn decode_version(raw: &str) -> Result<i32, InvalidCursor> {
    let version = plain_number(
        raw.strip_prefix("v.").ok_or(InvalidCursor)?,
        MAX_VERSION.into(),
    )?;
    i32::try_from(version).map_err(|_| InvalidCursor)
}

/// A place in search results: the score (its f64 bits, so it round-trips exactly), the
/// time and the id of the last result read.
#[must_use]
pub fn encode_search(key: &crate::search::SearchKey) -> String {
    format!(
        "r.{:016x}.{}.{}",
        key.score.to_bits(),
        key.created_at.timestamp_micros(),
        key.id.simple()
    )
}

pub fn decode_search(raw: &str) -> Result<crate::search::SearchKey, InvalidCursor> {
    let rest = raw.strip_prefix("r.").ok_or(InvalidCursor)?;
    let (bits, rest) = rest.split_once('.').ok_or(InvalidCursor)?;
    if bits.len() != 16 || !bits.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(InvalidCursor);
    }
    let score = f64::from_bits(u64::from_str_radix(bits, 16).map_err(|_| InvalidCursor)?);
    let (created_at, id) = decode_time_id(&format!("t.{rest}"))?;
    Ok(crate::search::SearchKey {
        score,
        created_at,
        id,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::now;

    #[test]
    fn cursors_round_trip() {
        let id = Uuid::now_v7();
        assert_eq!(decode_id(&encode_id(id)), Ok(id));
        let at = now();
        assert_eq!(decode_time_id(&encode_time_id(at, id)), Ok((at, id)));
        assert_eq!(decode_version(&encode_version(7)), Ok(7));
        let key = crate::search::SearchKey {
            score: -0.1 / 3.0,
            created_at: at,
            id,
        };
        assert_eq!(decode_search(&encode_search(&key)), Ok(key));
        assert_eq!(decode_search("r.7ff00000000000.1.00"), Err(InvalidCursor));
    }

    #[test]
    fn foreign_or_garbled_cursors_are_rejected() {
        assert_eq!(decode_id("v.3"), Err(InvalidCursor));
        assert_eq!(decode_id("i.zz"), Err(InvalidCursor));
        assert_eq!(decode_time_id("t.12"), Err(InvalidCursor));
        assert_eq!(decode_version("v.x"), Err(InvalidCursor));
        assert_eq!(decode_version(""), Err(InvalidCursor));
        assert_eq!(decode_version("v.+3"), Err(InvalidCursor));
        assert_eq!(decode_version("v.1000000000"), Err(InvalidCursor));
        // A time past the year 9999 is refused here, not by the store (it answered 500).
        let id = Uuid::now_v7().simple();
        assert_eq!(
            decode_time_id(&format!("t.00884670169280310966.{id}")),
            Err(InvalidCursor)
        );
        assert_eq!(decode_time_id(&format!("t.-5.{id}")), Err(InvalidCursor));
        assert!(decode_time_id(&format!("t.{MAX_TIME_MICROS}.{id}")).is_ok());
    }
}
