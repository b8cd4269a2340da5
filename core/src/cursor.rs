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

#[must_use]
pub fn encode_time_id(at: Timestamp, id: Uuid) -> String {
    format!("t.{}.{}", at.timestamp_micros(), id.simple())
}

pub fn decode_time_id(raw: &str) -> Result<(Timestamp, Uuid), InvalidCursor> {
    let rest = raw.strip_prefix("t.").ok_or(InvalidCursor)?;
    let (micros, id) = rest.split_once('.').ok_or(InvalidCursor)?;
    let micros: i64 = micros.parse().map_err(|_| InvalidCursor)?;
    let at = DateTime::from_timestamp_micros(micros).ok_or(InvalidCursor)?;
    Ok((at, Uuid::try_parse(id).map_err(|_| InvalidCursor)?))
}

#[must_use]
pub fn encode_version(version: i32) -> String {
    format!("v.{version}")
}

pub fn decode_version(raw: &str) -> Result<i32, InvalidCursor> {
    raw.strip_prefix("v.")
        .and_then(|v| v.parse().ok())
        .ok_or(InvalidCursor)
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
    }

    #[test]
    fn foreign_or_garbled_cursors_are_rejected() {
        assert_eq!(decode_id("v.3"), Err(InvalidCursor));
        assert_eq!(decode_id("i.zz"), Err(InvalidCursor));
        assert_eq!(decode_time_id("t.12"), Err(InvalidCursor));
        assert_eq!(decode_version("v.x"), Err(InvalidCursor));
        assert_eq!(decode_version(""), Err(InvalidCursor));
    }
}
