//! The timestamp type of the browser (wasm32) build.
//!
//! chrono and its parsers add about 25 KB to the client's wasm, which only ever reads the
//! server's timestamps and hands them to the browser's `Date`. So on wasm32 the types' `DateTime`
//! and `Utc` are these: the RFC 3339 text as the server sent it, checked when decoded, with the
//! one method the client uses, [`DateTime::timestamp_millis`], under chrono's name. Every other
//! target (the server, the tests) uses chrono's `DateTime<Utc>`; the field declarations are the
//! same on both.
//!
//! The module is compiled on every target, so its tests run natively against chrono.

use std::{fmt, marker::PhantomData};

use serde::{Deserialize, Deserializer, Serialize, Serializer, de};

/// Stands for `chrono::Utc`: the only time zone the API uses.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Utc;

/// An instant received as RFC 3339 text (`2026-01-01T12:00:00.123Z`, or with a `+hh:mm` offset).
///
/// Decoding fails on text that is not a valid RFC 3339 date and time, as it does with chrono.
/// It encodes back to the text it was decoded from.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct DateTime<Tz> {
    text: String,
    millis: i64,
    zone: PhantomData<Tz>,
}

impl<Tz> DateTime<Tz> {
    /// Parses RFC 3339 text; `None` when it is not a valid date and time.
    pub fn parse_rfc3339(text: &str) -> Option<Self> {
        Some(Self {
            millis: rfc3339_millis(text)?,
            text: text.to_owned(),
            zone: PhantomData,
        })
    }

    /// Milliseconds since the Unix epoch, as chrono's method of the same name.
    pub fn timestamp_millis(&self) -> i64 {
        self.millis
    }

    /// The text as received.
    pub fn as_str(&self) -> &str {
        &self.text
    }
}

impl<Tz> Serialize for DateTime<Tz> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.text)
    }
}

impl<'de, Tz> Deserialize<'de> for DateTime<Tz> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_str(TextVisitor(PhantomData))
    }
}

struct TextVisitor<Tz>(PhantomData<Tz>);

impl<Tz> de::Visitor<'_> for TextVisitor<Tz> {
    type Value = DateTime<Tz>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an RFC 3339 date and time")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        DateTime::parse_rfc3339(v).ok_or_else(|| E::invalid_value(de::Unexpected::Str(v), &self))
    }
}

/// `YYYY-MM-DD(T|t| )hh:mm:ss(.fraction)?(Z|z|±hh:mm)` → milliseconds since the epoch
/// (the fraction is truncated to milliseconds; a leap second 60 is accepted, as chrono does).
fn rfc3339_millis(text: &str) -> Option<i64> {
    let b = text.as_bytes();
    let num = |from: usize, len: usize| -> Option<i64> {
        let digits = b.get(from..from + len)?;
        digits.iter().try_fold(0i64, |acc, &d| {
            d.is_ascii_digit().then(|| acc * 10 + i64::from(d - b'0'))
        })
    };
    let sep = |at: usize, ok: &[u8]| b.get(at).is_some_and(|c| ok.contains(c));
    if !(sep(4, b"-") && sep(7, b"-") && sep(10, b"Tt ") && sep(13, b":") && sep(16, b":")) {
        return None;
    }
    let (year, month, day) = (num(0, 4)?, num(5, 2)?, num(8, 2)?);
    let (hour, minute, second) = (num(11, 2)?, num(14, 2)?, num(17, 2)?);
    let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
    let month_days = match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return None,
    };
    if day < 1 || day > month_days || hour > 23 || minute > 59 || second > 60 {
        return None;
    }
    let mut at = 19;
    let mut millis = 0;
    if sep(at, b".") {
        at += 1;
        let start = at;
        while b.get(at).is_some_and(u8::is_ascii_digit) {
            if at - start < 3 {
                millis = millis * 10 + i64::from(b[at] - b'0');
            }
            at += 1;
        }
        let digits = at - start;
        if digits == 0 {
            return None;
        }
        for _ in digits..3 {
            millis *= 10;
        }
    }
    let offset_minutes = match b.get(at) {
        Some(b'Z' | b'z') if b.len() == at + 1 => 0,
        Some(&sign @ (b'+' | b'-')) if b.len() == at + 6 && sep(at + 3, b":") => {
            let (h, m) = (num(at + 1, 2)?, num(at + 4, 2)?);
            if h > 23 || m > 59 {
                return None;
            }
            let minutes = h * 60 + m;
            if sign == b'-' { -minutes } else { minutes }
        }
        _ => return None,
    };
    let days = days_from_civil(year, month, day);
    let seconds = days * 86_400 + hour * 3600 + minute * 60 + second - offset_minutes * 60;
    Some(seconds * 1000 + millis)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's `days_from_civil`).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    type Text = DateTime<Utc>;

    fn chrono_millis(s: &str) -> Option<i64> {
        chrono::DateTime::parse_from_rfc3339(s)
            .ok()
            .map(|d| d.timestamp_millis())
    }

    #[test]
    fn millis_agree_with_chrono() {
        for s in [
            "1970-01-01T00:00:00Z",
            "2026-01-01T00:00:00Z",
            "2026-11-26T06:07:08.123456Z",
            "2026-11-26T06:07:08.1Z",
            "2026-11-26T06:07:08.12+02:00",
            "2026-11-26t06:07:08-05:30",
            "2026-11-26 23:59:59z",
            "2024-02-29T12:00:00Z",
            "2000-02-29T00:00:00.999999999Z",
            "1969-12-31T23:59:59.5Z",
            "1900-03-01T00:00:00Z",
            "9999-12-31T23:59:59Z",
            "0001-01-01T00:00:00Z",
        ] {
            assert_eq!(rfc3339_millis(s), chrono_millis(s), "{s}");
            assert!(rfc3339_millis(s).is_some(), "{s}");
        }
    }

    #[test]
    fn invalid_text_is_refused() {
        for s in [
            "",
            "2026-01-01",
            "2026-01-01T00:00:00",
            "2026-13-01T00:00:00Z",
            "2026-00-01T00:00:00Z",
            "2025-02-29T00:00:00Z",
            "2026-04-31T00:00:00Z",
            "2026-01-01T24:00:00Z",
            "2026-01-01T00:60:00Z",
            "2026-01-01T00:00:00.Z",
            "2026-01-01T00:00:00+2:00",
            "2026-01-01T00:00:00+02:00x",
            "2026-01-01T00:00:00Zx",
            "2026/01/01T00:00:00Z",
            "2026-01-01X00:00:00Z",
            "+026-01-01T00:00:00Z",
            "2026-01-01T00:00:00+24:00",
        ] {
            assert_eq!(rfc3339_millis(s), None, "{s}");
            assert_eq!(chrono_millis(s), None, "chrono accepts {s}");
        }
    }

    #[test]
    fn decodes_checks_and_encodes_back_the_same_text() {
        let t: Text = serde_json::from_str(r#""2026-01-02T03:04:05.678Z""#).unwrap();
        assert_eq!(t.timestamp_millis(), 1_767_323_045_678);
        assert_eq!(t.as_str(), "2026-01-02T03:04:05.678Z");
        assert_eq!(
            serde_json::to_string(&t).unwrap(),
            r#""2026-01-02T03:04:05.678Z""#
        );
        assert!(serde_json::from_str::<Text>(r#""yesterday""#).is_err());
        assert!(serde_json::from_str::<Text>("12").is_err());
    }
}
