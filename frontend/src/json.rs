//! JSON in and out for the API's serde types: a small stand-in for serde_json, which was the
//! biggest part of the wasm after Markdown.
//!
//! Text is parsed by one non-generic parser into a [`Value`] tree, and types are read from the
//! tree through serde, so each type adds little code. Errors carry no message: the client only
//! needs to know that a body did not decode, and leaving out the messages leaves out the
//! formatting code they would pull in.
//!
//! Numbers: integers in the `i64`/`u64` range. A number with a fraction or an exponent is
//! valid JSON and parses, but does not read as any type (the API has no floating-point field);
//! as an unknown field it is skipped like any other. Otherwise decoding accepts and refuses
//! what serde_json does (strict RFC 8259, nesting up to 127 levels), which the tests check; the
//! one difference is a floating-point number too large for `f64` (`1e999`), which serde_json
//! refuses and this parser takes as a number of no type.

use std::fmt;

use serde::{
    Serialize,
    de::{self, DeserializeOwned, DeserializeSeed, Visitor},
    ser::{self, Impossible},
};

/// A body that is not JSON, or not the JSON of the expected type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Error;

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("not the expected JSON")
    }
}

impl std::error::Error for Error {}

impl de::Error for Error {
    fn custom<T: fmt::Display>(_: T) -> Self {
        Error
    }
    // serde's defaults format a message for each of these; this error has none.
    fn invalid_type(_: de::Unexpected<'_>, _: &dyn de::Expected) -> Self {
        Error
    }
    fn invalid_value(_: de::Unexpected<'_>, _: &dyn de::Expected) -> Self {
        Error
    }
    fn invalid_length(_: usize, _: &dyn de::Expected) -> Self {
        Error
    }
    fn unknown_variant(_: &str, _: &'static [&'static str]) -> Self {
        Error
    }
    fn unknown_field(_: &str, _: &'static [&'static str]) -> Self {
        Error
    }
    fn missing_field(_: &'static str) -> Self {
        Error
    }
    fn duplicate_field(_: &'static str) -> Self {
        Error
    }
}

impl ser::Error for Error {
    fn custom<T: fmt::Display>(_: T) -> Self {
        Error
    }
}

/// Reads a `T` from JSON text.
pub fn decode<T: DeserializeOwned>(text: &str) -> Result<T, Error> {
    T::deserialize(parse(text)?)
}

/// Writes a `T` as compact JSON (as `serde_json::to_string`).
pub fn encode<T: Serialize + ?Sized>(value: &T) -> Result<String, Error> {
    let mut out = String::new();
    value.serialize(Encoder(&mut out))?;
    Ok(out)
}

// ---------------------------------------------------------------------------------------------
// Parsing

/// A parsed JSON value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Value {
    Null,
    Bool(bool),
    /// A non-negative integer.
    Pos(u64),
    /// A negative integer.
    Neg(i64),
    /// A number with a fraction or an exponent, or out of the 64-bit range.
    OtherNumber,
    Str(String),
    Array(Vec<Value>),
    /// Members in document order.
    Object(Vec<(String, Value)>),
}

const MAX_DEPTH: usize = 127;

/// Parses JSON text (one value, surrounded by whitespace only).
pub fn parse(text: &str) -> Result<Value, Error> {
    let mut p = Parser {
        s: text,
        b: text.as_bytes(),
        i: 0,
        depth: 0,
    };
    let value = p.value()?;
    p.skip_ws();
    if p.i == p.b.len() {
        Ok(value)
    } else {
        Err(Error)
    }
}

struct Parser<'a> {
    s: &'a str,
    b: &'a [u8],
    i: usize,
    depth: usize,
}

impl Parser<'_> {
    fn skip_ws(&mut self) {
        while matches!(self.b.get(self.i), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.i += 1;
        }
    }

    /// Skips whitespace and takes the next byte.
    fn next(&mut self) -> Result<u8, Error> {
        self.skip_ws();
        let c = *self.b.get(self.i).ok_or(Error)?;
        self.i += 1;
        Ok(c)
    }

    fn value(&mut self) -> Result<Value, Error> {
        match self.next()? {
            b'{' => {
                let mut members = Vec::new();
                self.nested(b'}', |p| {
                    if p.next()? != b'"' {
                        return Err(Error);
                    }
                    let key = p.string()?;
                    if p.next()? != b':' {
                        return Err(Error);
                    }
                    members.push((key, p.value()?));
                    Ok(())
                })?;
                Ok(Value::Object(members))
            }
            b'[' => {
                let mut items = Vec::new();
                self.nested(b']', |p| {
                    items.push(p.value()?);
                    Ok(())
                })?;
                Ok(Value::Array(items))
            }
            b'"' => self.string().map(Value::Str),
            b't' => self.word("rue", Value::Bool(true)),
            b'f' => self.word("alse", Value::Bool(false)),
            b'n' => self.word("ull", Value::Null),
            b'-' | b'0'..=b'9' => {
                self.i -= 1;
                self.number()
            }
            _ => Err(Error),
        }
    }

    /// The members of an object or the items of an array, after the opening bracket.
    fn nested(
        &mut self,
        close: u8,
        mut item: impl FnMut(&mut Self) -> Result<(), Error>,
    ) -> Result<(), Error> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(Error);
        }
        self.skip_ws();
        if self.b.get(self.i) == Some(&close) {
            self.i += 1;
        } else {
            loop {
                item(self)?;
                match self.next()? {
                    b',' => {}
                    c if c == close => break,
                    _ => return Err(Error),
                }
            }
        }
        self.depth -= 1;
        Ok(())
    }

    fn word(&mut self, rest: &str, value: Value) -> Result<Value, Error> {
        if self.b[self.i..].starts_with(rest.as_bytes()) {
            self.i += rest.len();
            Ok(value)
        } else {
            Err(Error)
        }
    }

    fn number(&mut self) -> Result<Value, Error> {
        let negative = self.b[self.i] == b'-';
        if negative {
            self.i += 1;
        }
        let start = self.i;
        let mut n: Option<u64> = Some(0);
        while let Some(&c) = self.b.get(self.i).filter(|c| c.is_ascii_digit()) {
            n = n
                .and_then(|n| n.checked_mul(10))
                .and_then(|n| n.checked_add(u64::from(c - b'0')));
            self.i += 1;
        }
        let digits = self.i - start;
        if digits == 0 || (digits > 1 && self.b[start] == b'0') {
            return Err(Error);
        }
        let mut integer = true;
        if self.b.get(self.i) == Some(&b'.') {
            self.i += 1;
            self.digits()?;
            integer = false;
        }
        if matches!(self.b.get(self.i), Some(b'e' | b'E')) {
            self.i += 1;
            if matches!(self.b.get(self.i), Some(b'+' | b'-')) {
                self.i += 1;
            }
            self.digits()?;
            integer = false;
        }
        Ok(match n.filter(|_| integer) {
            Some(n) if !negative => Value::Pos(n),
            // `-0` is a float to serde_json too (it keeps the sign).
            Some(0) => Value::OtherNumber,
            Some(n) => match 0i64.checked_sub_unsigned(n) {
                Some(v) => Value::Neg(v),
                None => Value::OtherNumber,
            },
            None => Value::OtherNumber,
        })
    }

    /// One or more digits.
    fn digits(&mut self) -> Result<(), Error> {
        let start = self.i;
        while self.b.get(self.i).is_some_and(u8::is_ascii_digit) {
            self.i += 1;
        }
        if self.i == start { Err(Error) } else { Ok(()) }
    }

    /// A string's content after its opening quote, unescaped.
    fn string(&mut self) -> Result<String, Error> {
        let mut out = String::new();
        loop {
            let start = self.i;
            while self
                .b
                .get(self.i)
                .is_some_and(|&c| c != b'"' && c != b'\\' && c >= 0x20)
            {
                self.i += 1;
            }
            out.push_str(&self.s[start..self.i]);
            let c = *self.b.get(self.i).ok_or(Error)?;
            self.i += 1;
            match c {
                b'"' => return Ok(out),
                b'\\' => {
                    let escape = *self.b.get(self.i).ok_or(Error)?;
                    self.i += 1;
                    out.push(match escape {
                        b'"' => '"',
                        b'\\' => '\\',
                        b'/' => '/',
                        b'b' => '\u{8}',
                        b'f' => '\u{c}',
                        b'n' => '\n',
                        b'r' => '\r',
                        b't' => '\t',
                        b'u' => self.unicode_escape()?,
                        _ => return Err(Error),
                    });
                }
                // A control character must be escaped.
                _ => return Err(Error),
            }
        }
    }

    /// `XXXX` after `\u`, or a surrogate pair `XXXX\uXXXX`.
    fn unicode_escape(&mut self) -> Result<char, Error> {
        let first = self.hex4()?;
        let code = match first {
            0xD800..=0xDBFF => {
                if !self.b[self.i..].starts_with(b"\\u") {
                    return Err(Error);
                }
                self.i += 2;
                let second = self.hex4()?;
                if !(0xDC00..=0xDFFF).contains(&second) {
                    return Err(Error);
                }
                0x10000 + ((first - 0xD800) << 10) + (second - 0xDC00)
            }
            0xDC00..=0xDFFF => return Err(Error),
            _ => first,
        };
        char::from_u32(code).ok_or(Error)
    }

    fn hex4(&mut self) -> Result<u32, Error> {
        let hex = self.b.get(self.i..self.i + 4).ok_or(Error)?;
        let mut n = 0;
        for &c in hex {
            n = n * 16 + char::from(c).to_digit(16).ok_or(Error)?;
        }
        self.i += 4;
        Ok(n)
    }
}

// ---------------------------------------------------------------------------------------------
// Reading types from a `Value`

impl<'de> de::Deserializer<'de> for Value {
    type Error = Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self {
            Value::Null => visitor.visit_unit(),
            Value::Bool(b) => visitor.visit_bool(b),
            Value::Pos(n) => visitor.visit_u64(n),
            Value::Neg(n) => visitor.visit_i64(n),
            Value::OtherNumber => Err(Error),
            Value::Str(s) => visitor.visit_string(s),
            Value::Array(items) => visitor.visit_seq(Items(items.into_iter())),
            Value::Object(members) => visitor.visit_map(Members {
                members: members.into_iter(),
                value: None,
            }),
        }
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self {
            Value::Null => visitor.visit_none(),
            other => visitor.visit_some(other),
        }
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Error> {
        visitor.visit_newtype_struct(self)
    }

    /// Unit variants only, as strings (`"assistant"`): the only enums the API sends.
    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        match self {
            Value::Str(_) => visitor.visit_enum(UnitVariant(self)),
            _ => Err(Error),
        }
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_unit()
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
        unit unit_struct seq tuple tuple_struct map struct identifier
    }
}

struct Items(std::vec::IntoIter<Value>);

impl<'de> de::SeqAccess<'de> for Items {
    type Error = Error;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, Error> {
        self.0.next().map(|v| seed.deserialize(v)).transpose()
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.0.len())
    }
}

struct Members {
    members: std::vec::IntoIter<(String, Value)>,
    value: Option<Value>,
}

impl<'de> de::MapAccess<'de> for Members {
    type Error = Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, Error> {
        let Some((key, value)) = self.members.next() else {
            return Ok(None);
        };
        self.value = Some(value);
        seed.deserialize(Value::Str(key)).map(Some)
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, Error> {
        seed.deserialize(self.value.take().ok_or(Error)?)
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.members.len())
    }
}

struct UnitVariant(Value);

impl<'de> de::EnumAccess<'de> for UnitVariant {
    type Error = Error;
    type Variant = Self;

    fn variant_seed<V: DeserializeSeed<'de>>(self, seed: V) -> Result<(V::Value, Self), Error> {
        Ok((seed.deserialize(self.0)?, UnitVariant(Value::Null)))
    }
}

impl<'de> de::VariantAccess<'de> for UnitVariant {
    type Error = Error;

    fn unit_variant(self) -> Result<(), Error> {
        Ok(())
    }

    fn newtype_variant_seed<T: DeserializeSeed<'de>>(self, _: T) -> Result<T::Value, Error> {
        Err(Error)
    }

    fn tuple_variant<V: Visitor<'de>>(self, _: usize, _: V) -> Result<V::Value, Error> {
        Err(Error)
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        _: &'static [&'static str],
        _: V,
    ) -> Result<V::Value, Error> {
        Err(Error)
    }
}

// ---------------------------------------------------------------------------------------------
// Writing

struct Encoder<'a>(&'a mut String);

/// Writes a JSON string literal (escaping as serde_json does).
fn write_str(out: &mut String, s: &str) {
    out.push('"');
    let mut last = 0;
    for (i, b) in s.bytes().enumerate() {
        let escape = match b {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            b'\n' => "\\n",
            b'\r' => "\\r",
            b'\t' => "\\t",
            0x08 => "\\b",
            0x0c => "\\f",
            0..0x20 => "",
            _ => continue,
        };
        out.push_str(&s[last..i]);
        if escape.is_empty() {
            const HEX: &[u8; 16] = b"0123456789abcdef";
            out.push_str("\\u00");
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 15)]));
        } else {
            out.push_str(escape);
        }
        last = i + 1;
    }
    out.push_str(&s[last..]);
    out.push('"');
}

impl<'a> ser::Serializer for Encoder<'a> {
    type Ok = ();
    type Error = Error;
    type SerializeSeq = Compound<'a>;
    type SerializeTuple = Compound<'a>;
    type SerializeTupleStruct = Compound<'a>;
    type SerializeTupleVariant = Impossible<(), Error>;
    type SerializeMap = Compound<'a>;
    type SerializeStruct = Compound<'a>;
    type SerializeStructVariant = Impossible<(), Error>;

    fn serialize_bool(self, v: bool) -> Result<(), Error> {
        self.0.push_str(if v { "true" } else { "false" });
        Ok(())
    }
    fn serialize_i8(self, v: i8) -> Result<(), Error> {
        self.serialize_i64(v.into())
    }
    fn serialize_i16(self, v: i16) -> Result<(), Error> {
        self.serialize_i64(v.into())
    }
    fn serialize_i32(self, v: i32) -> Result<(), Error> {
        self.serialize_i64(v.into())
    }
    fn serialize_i64(self, v: i64) -> Result<(), Error> {
        if v < 0 {
            self.0.push('-');
        }
        self.serialize_u64(v.unsigned_abs())
    }
    fn serialize_u8(self, v: u8) -> Result<(), Error> {
        self.serialize_u64(v.into())
    }
    fn serialize_u16(self, v: u16) -> Result<(), Error> {
        self.serialize_u64(v.into())
    }
    fn serialize_u32(self, v: u32) -> Result<(), Error> {
        self.serialize_u64(v.into())
    }
    fn serialize_u64(self, v: u64) -> Result<(), Error> {
        let mut digits = [0u8; 20];
        let mut at = digits.len();
        let mut n = v;
        loop {
            at -= 1;
            digits[at] = b'0' + (n % 10) as u8;
            n /= 10;
            if n == 0 {
                break;
            }
        }
        self.0.extend(digits[at..].iter().map(|&d| char::from(d)));
        Ok(())
    }
    /// No floating-point numbers in the API (and their formatting is large).
    fn serialize_f32(self, _: f32) -> Result<(), Error> {
        Err(Error)
    }
    fn serialize_f64(self, _: f64) -> Result<(), Error> {
        Err(Error)
    }
    fn serialize_char(self, v: char) -> Result<(), Error> {
        self.serialize_str(v.encode_utf8(&mut [0; 4]))
    }
    fn serialize_str(self, v: &str) -> Result<(), Error> {
        write_str(self.0, v);
        Ok(())
    }
    fn serialize_bytes(self, _: &[u8]) -> Result<(), Error> {
        Err(Error)
    }
    fn serialize_none(self) -> Result<(), Error> {
        self.serialize_unit()
    }
    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<(), Error> {
        value.serialize(self)
    }
    fn serialize_unit(self) -> Result<(), Error> {
        self.0.push_str("null");
        Ok(())
    }
    fn serialize_unit_struct(self, _: &'static str) -> Result<(), Error> {
        self.serialize_unit()
    }
    fn serialize_unit_variant(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
    ) -> Result<(), Error> {
        self.serialize_str(variant)
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        value: &T,
    ) -> Result<(), Error> {
        value.serialize(self)
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: &T,
    ) -> Result<(), Error> {
        Err(Error)
    }
    fn serialize_seq(self, _: Option<usize>) -> Result<Compound<'a>, Error> {
        Ok(Compound::open(self.0, '[', ']'))
    }
    fn serialize_tuple(self, len: usize) -> Result<Compound<'a>, Error> {
        self.serialize_seq(Some(len))
    }
    fn serialize_tuple_struct(self, _: &'static str, len: usize) -> Result<Compound<'a>, Error> {
        self.serialize_seq(Some(len))
    }
    fn serialize_tuple_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Impossible<(), Error>, Error> {
        Err(Error)
    }
    fn serialize_map(self, _: Option<usize>) -> Result<Compound<'a>, Error> {
        Ok(Compound::open(self.0, '{', '}'))
    }
    fn serialize_struct(self, _: &'static str, _: usize) -> Result<Compound<'a>, Error> {
        self.serialize_map(None)
    }
    fn serialize_struct_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Impossible<(), Error>, Error> {
        Err(Error)
    }
}

/// An array or an object being written.
struct Compound<'a> {
    out: &'a mut String,
    first: bool,
    close: char,
}

impl<'a> Compound<'a> {
    fn open(out: &'a mut String, open: char, close: char) -> Self {
        out.push(open);
        Self {
            out,
            first: true,
            close,
        }
    }

    fn comma(&mut self) {
        if !self.first {
            self.out.push(',');
        }
        self.first = false;
    }

    fn element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Error> {
        self.comma();
        value.serialize(Encoder(self.out))
    }

    fn close(self) -> Result<(), Error> {
        self.out.push(self.close);
        Ok(())
    }
}

impl ser::SerializeSeq for Compound<'_> {
    type Ok = ();
    type Error = Error;
    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Error> {
        self.element(value)
    }
    fn end(self) -> Result<(), Error> {
        self.close()
    }
}

impl ser::SerializeTuple for Compound<'_> {
    type Ok = ();
    type Error = Error;
    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Error> {
        self.element(value)
    }
    fn end(self) -> Result<(), Error> {
        self.close()
    }
}

impl ser::SerializeTupleStruct for Compound<'_> {
    type Ok = ();
    type Error = Error;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Error> {
        self.element(value)
    }
    fn end(self) -> Result<(), Error> {
        self.close()
    }
}

impl ser::SerializeMap for Compound<'_> {
    type Ok = ();
    type Error = Error;
    /// Keys must be strings (or serialize as one).
    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<(), Error> {
        self.element(key)?;
        if self.out.ends_with('"') {
            Ok(())
        } else {
            Err(Error)
        }
    }
    fn serialize_value<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Error> {
        self.out.push(':');
        value.serialize(Encoder(self.out))
    }
    fn end(self) -> Result<(), Error> {
        self.close()
    }
}

impl ser::SerializeStruct for Compound<'_> {
    type Ok = ();
    type Error = Error;
    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<(), Error> {
        self.comma();
        write_str(self.out, key);
        self.out.push(':');
        value.serialize(Encoder(self.out))
    }
    fn end(self) -> Result<(), Error> {
        self.close()
    }
}

#[cfg(test)]
mod tests {

    use confab_api_types::{
        AuthConfig, ClientConfig, Conversation, CreatePrompt, Delta, DevToken, FileInfo,
        LimitsConfig, LlmConfig, Message, MessageStatus, Page, Problem, Role, SendMessage,
        StreamError, UpdateProject, Usage,
    };
    use serde::{Deserialize, de::DeserializeOwned};
    use serde_json::json;

    use super::*;
    use crate::services::session_store::StoredSession;

    /// Encodes as serde_json does, and decodes what serde_json writes back to the same value.
    fn round_trip<T: Serialize + DeserializeOwned + PartialEq + fmt::Debug>(value: T) {
        let reference = serde_json::to_string(&value).unwrap();
        assert_eq!(encode(&value).unwrap(), reference);
        assert_eq!(decode::<T>(&reference).unwrap(), value, "{reference}");
    }

    fn message(content: &str) -> Message {
        serde_json::from_value(json!({
            "id": "0190f0e8-7c3a-7b3e-9e2a-1c2d3e4f5a6b",
            "conversation_id": "0190f0e8-7c3a-7b3e-9e2a-1c2d3e4f5a6c",
            "role": "assistant", "content": content, "status": "complete",
            "model": "echo", "usage": {"input_tokens": 3, "output_tokens": 4294967295u32},
            "error": null, "created_at": "2026-01-02T03:04:05.678Z"
        }))
        .unwrap()
    }

    #[test]
    fn the_api_types_round_trip_like_serde_json() {
        round_trip(message("plain"));
        round_trip(message(
            "quotes \" backslash \\ newline \n tab \t bell \u{7} é 😀 </script>",
        ));
        round_trip(Page {
            items: vec![message("a"), message("b")],
            next_cursor: Some("c+/=".into()),
        });
        round_trip(Page::<Message> {
            items: vec![],
            next_cursor: None,
        });
        round_trip(ClientConfig {
            auth: AuthConfig {
                provider: "clerk".into(),
                signup: None,
                first_account: false,
                clerk_publishable_key: Some("pk_test_x".into()),
                clerk_frontend_api: Some("clerk.example.com".into()),
                display_name: None,
            },
            llm: LlmConfig {
                provider: "openai".into(),
                model: "gpt".into(),
                models: vec!["gpt".into(), "gpt-big".into()],
            },
            limits: LimitsConfig {
                project_name_chars: 100,
                prompt_chars: 20_000,
                message_chars: 32_000,
                title_chars: 200,
                upload_bytes: u64::MAX,
                sends_per_minute: 0,
            },
        });
        round_trip(Problem {
            kind: "about:blank".into(),
            title: "Not Found".into(),
            status: 404,
            detail: "d".into(),
            code: "not_found".into(),
        });
        round_trip(UpdateProject {
            name: None,
            description: Some(None),
            knowledge: None,
            language: None,
        });
        round_trip(UpdateProject {
            name: Some("n".into()),
            description: Some(Some("d".into())),
            knowledge: Some(false),
            language: Some("french".into()),
        });
        round_trip(UpdateProject::default());
        round_trip(CreatePrompt {
            content: "c".into(),
            activate: Some(false),
        });
        round_trip(SendMessage {
            content: "hi".into(),
            client_message_id: Some(uuid::Uuid::from_u128(7)),
            parent_id: None,
            file_ids: vec![uuid::Uuid::from_u128(8)],
        });
        round_trip(SendMessage {
            content: "edited".into(),
            client_message_id: None,
            parent_id: Some(None),
            file_ids: Vec::new(),
        });
        round_trip(StoredSession {
            username: "a".into(),
            token: "t".into(),
            expires_at_ms: -1_700_000_000_000,
            refresh_token: None,
            renew_at_ms: None,
        });
        round_trip(StoredSession {
            username: "a".into(),
            token: "t".into(),
            expires_at_ms: 1_700_000_000_000,
            refresh_token: Some("r".into()),
            renew_at_ms: Some(1_699_999_940_000),
        });
        round_trip(StreamError {
            message_id: uuid::Uuid::from_u128(1),
            code: "timeout".into(),
            detail: String::new(),
        });
        round_trip(Delta {
            message_id: uuid::Uuid::nil(),
            text: "x".into(),
        });
        round_trip(Usage {
            input_tokens: 0,
            output_tokens: 1,
        });
        round_trip(MessageStatus::Cancelled);
        round_trip(Role::User);
        let text = r#"{"id":"0190f0e8-7c3a-7b3e-9e2a-1c2d3e4f5a6b",
            "project_id":"0190f0e8-7c3a-7b3e-9e2a-1c2d3e4f5a6b","title":null,
            "created_at":"2026-01-01T00:00:00Z","updated_at":"2026-01-01T00:00:00+02:00"}"#;
        let ours: Conversation = decode(text).unwrap();
        assert_eq!(ours, serde_json::from_str::<Conversation>(text).unwrap());
        let file: FileInfo = decode(
            r#"{"id":"0190f0e8-7c3a-7b3e-9e2a-1c2d3e4f5a6b","project_id":"0190f0e8-7c3a-7b3e-9e2a-1c2d3e4f5a6b",
                "filename":"a.txt","content_type":"text/plain","size_bytes":12,"sha256":"ab",
                "created_at":"2026-01-01T00:00:00Z","text_status":"failed",
                "text_error":"The PDF is protected by a password."}"#,
        )
        .unwrap();
        assert_eq!(file.size_bytes, 12);
        assert_eq!(file.text_status, confab_api_types::TextStatus::Failed);
        let token: DevToken =
            decode(r#"{"token":"t","expires_at":"2026-01-01T00:00:00Z"}"#).unwrap();
        assert_eq!(token.expires_at.timestamp_millis(), 1_767_225_600_000);
    }

    #[test]
    fn fields_are_read_as_serde_json_reads_them() {
        #[derive(Debug, PartialEq, Deserialize)]
        struct T {
            n: u32,
            #[serde(default)]
            o: Option<String>,
        }
        let check = |text: &str| {
            let ours = decode::<T>(text).ok();
            let reference = serde_json::from_str::<T>(text).ok();
            assert_eq!(ours, reference, "{text}");
            ours
        };
        assert_eq!(check(r#"{"n":1}"#), Some(T { n: 1, o: None }));
        // serde's derive also reads a struct from an array of its fields.
        assert_eq!(check(r#"[1]"#), Some(T { n: 1, o: None }));
        assert_eq!(check(r#"{"n":1,"o":null}"#), Some(T { n: 1, o: None }));
        assert_eq!(
            check(r#" { "o" : "x" , "n" : 4294967295 , "extra": [1, {"a": 2.5e3}, null] } "#),
            Some(T {
                n: u32::MAX,
                o: Some("x".into())
            })
        );
        for refused in [
            r#"{"n":4294967296}"#,
            r#"{"n":-1}"#,
            r#"{"n":1.0}"#,
            r#"{"n":"1"}"#,
            r#"{"n":null}"#,
            r#"{"o":"x"}"#,
            r#"{"n":1,"n":2}"#,
            r#"{"n":1,"o":5}"#,
            r#"{"n":1}x"#,
        ] {
            assert_eq!(check(refused), None);
        }
        assert!(decode::<Role>(r#""moderator""#).is_err());
        assert!(decode::<Role>(r#"{"user":null}"#).is_err());
        assert_eq!(decode::<i64>("-9223372036854775808"), Ok(i64::MIN));
        assert_eq!(decode::<u64>("18446744073709551615"), Ok(u64::MAX));
        assert!(decode::<u64>("18446744073709551616").is_err());
        assert!(decode::<i32>("-0").is_err());
    }

    #[test]
    fn parsing_accepts_and_refuses_what_serde_json_does() {
        let texts = [
            "null",
            "true",
            "false",
            "0",
            "12",
            "-12",
            "\"\"",
            "[]",
            "{}",
            " [ 1 , [ ] , { } ] ",
            "\"\\\"\\\\\\/\\b\\f\\n\\r\\t\"",
            "\"\\u0041\\u00e9\\u20AC\"",
            "\"\\ud83d\\ude00\"",
            "\"é😀\"",
            "{\"a\":{\"b\":[null,{\"c\":\"d\"}]}}",
            "\r\n\t{\"k\":1}\r\n",
            "\"\\u0000\"",
            // Refused:
            "",
            " ",
            "nul",
            "tru",
            "[1,]",
            "{\"a\":1,}",
            "{a:1}",
            "{'a':1}",
            "[1 2]",
            "01",
            "-",
            "1.",
            ".5",
            "1e",
            "+1",
            "\"unterminated",
            "\"bad \\x escape\"",
            "\"\\u12\"",
            "\"\\ud83d\"",
            "\"\\ude00\"",
            "\"\\ud83d\\u0041\"",
            "\"tab\tinside\"",
            "\"nl\ninside\"",
            "[1]]",
            "{\"a\" 1}",
            "{\"a\":}",
            "[",
            "{",
            "\u{feff}1",
            "1 2",
            "[1,\"a\"",
        ];
        for text in texts {
            let ours = decode::<serde_json::Value>(text).ok();
            let reference = serde_json::from_str::<serde_json::Value>(text).ok();
            assert_eq!(ours, reference, "{text:?}");
        }
        // Numbers with a fraction or exponent are valid JSON (ignored as unknown fields above)
        // but read as no type.
        for text in [
            "1.5",
            "-0",
            "-0.0",
            "1e3",
            "2E-2",
            "[1.25]",
            "18446744073709551616",
        ] {
            assert!(parse(text).is_ok(), "{text}");
            assert!(
                serde_json::from_str::<serde_json::Value>(text).is_ok(),
                "{text}"
            );
            assert!(decode::<serde_json::Value>(text).is_err(), "{text}");
        }
    }

    #[test]
    fn nesting_is_limited_like_serde_json() {
        for depth in [100, 127, 128, 129, 200, 100_000] {
            let text = "[".repeat(depth) + &"]".repeat(depth);
            assert_eq!(
                parse(&text).is_ok(),
                serde_json::from_str::<serde_json::Value>(&text).is_ok(),
                "depth {depth}"
            );
        }
    }

    #[test]
    fn strings_are_escaped_like_serde_json() {
        let all_ascii: String = (0u8..128).map(char::from).collect();
        for s in [all_ascii.as_str(), "é\u{2028}😀", ""] {
            assert_eq!(encode(s).unwrap(), serde_json::to_string(s).unwrap());
            assert_eq!(decode::<String>(&encode(s).unwrap()).unwrap(), s);
        }
        assert_eq!(encode(&[1i64, -2, 0]).unwrap(), "[1,-2,0]");
        assert_eq!(encode(&i64::MIN).unwrap(), i64::MIN.to_string());
        assert!(encode(&1.5f64).is_err());
    }
}
