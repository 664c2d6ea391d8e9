//! Strict JSON: the only way keyless turns untrusted bytes into a JSON value.
//!
//! On top of RFC 8259 (which `serde_json` already enforces, including valid UTF-8 and paired
//! surrogates) it refuses what JOSE parsers disagree on or what downstream consumers mishandle:
//! duplicate member names (RFC 7515 §5.2 lets a parser refuse them; "first wins" against
//! "last wins" is a known confusion attack), nesting deeper than a bound (no stack exhaustion),
//! and U+0000 in any string or member name (it truncates strings in C consumers and logs).

use std::cell::RefCell;
use std::fmt;

use serde::de::{DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

/// Why bytes are not acceptable JSON.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum JsonFault {
    /// Not JSON at all (syntax, encoding, trailing data); the parser's message.
    Syntax(String),
    /// A member name occurs twice in one object.
    DuplicateMember(String),
    /// Objects and arrays nest deeper than allowed.
    TooDeep(usize),
    /// A string or member name contains U+0000.
    NulInString,
}

impl fmt::Display for JsonFault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            JsonFault::Syntax(msg) => write!(f, "{msg}"),
            JsonFault::DuplicateMember(name) => write!(f, "member {name:?} occurs more than once"),
            JsonFault::TooDeep(max) => write!(f, "nesting deeper than {max} levels"),
            JsonFault::NulInString => f.write_str("a string contains U+0000"),
        }
    }
}

/// Parses `bytes` as one strict JSON value, nested at most `max_depth` objects/arrays deep.
pub(crate) fn parse(bytes: &[u8], max_depth: usize) -> Result<Value, JsonFault> {
    let fault = RefCell::new(None);
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let seed = Strict {
        depth: 0,
        max_depth,
        fault: &fault,
    };
    let res = seed.deserialize(&mut de).and_then(|value| de.end().map(|()| value));
    match res {
        Ok(value) => Ok(value),
        // A fault we recorded is more specific than the message serde carried up to here.
        Err(err) => Err(fault.into_inner().unwrap_or_else(|| JsonFault::Syntax(err.to_string()))),
    }
}

/// Parses `bytes` as a strict JSON object.
pub(crate) fn parse_object(bytes: &[u8], max_depth: usize) -> Result<Map<String, Value>, ObjectFault> {
    match parse(bytes, max_depth).map_err(ObjectFault::Json)? {
        Value::Object(map) => Ok(map),
        _ => Err(ObjectFault::NotAnObject),
    }
}

/// Why bytes are not an acceptable JSON object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum ObjectFault {
    /// Not acceptable JSON.
    Json(JsonFault),
    /// Valid JSON, but not an object.
    NotAnObject,
}

struct Strict<'a> {
    depth: usize,
    max_depth: usize,
    fault: &'a RefCell<Option<JsonFault>>,
}

impl Strict<'_> {
    fn fail<E: serde::de::Error>(&self, fault: JsonFault) -> E {
        let err = E::custom(&fault);
        *self.fault.borrow_mut() = Some(fault);
        err
    }

    fn nested<E: serde::de::Error>(&self) -> Result<Self, E> {
        if self.depth >= self.max_depth {
            return Err(self.fail(JsonFault::TooDeep(self.max_depth)));
        }
        Ok(Strict {
            depth: self.depth + 1,
            max_depth: self.max_depth,
            fault: self.fault,
        })
    }

    fn check_str<E: serde::de::Error>(&self, s: &str) -> Result<(), E> {
        if s.contains('\0') {
            return Err(self.fail(JsonFault::NulInString));
        }
        Ok(())
    }
}

impl<'de> DeserializeSeed<'de> for Strict<'_> {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Strict<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        // JSON has no NaN or infinity; serde_json maps overflowing literals to infinity, which
        // `from_f64` turns into null. Keep that explicit rather than inventing a number.
        Ok(serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number))
    }

    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Value, E> {
        self.check_str(v)?;
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E: serde::de::Error>(self, v: String) -> Result<Value, E> {
        self.check_str(&v)?;
        Ok(Value::String(v))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let inner = self.nested()?;
        let mut items = Vec::new();
        while let Some(item) = seq.next_element_seed(inner.nested_same())? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Value, A::Error> {
        let inner = self.nested()?;
        let mut map = Map::new();
        while let Some(key) = access.next_key::<String>()? {
            inner.check_str(&key)?;
            if map.contains_key(&key) {
                return Err(inner.fail(JsonFault::DuplicateMember(key)));
            }
            let value = access.next_value_seed(inner.nested_same())?;
            map.insert(key, value);
        }
        Ok(Value::Object(map))
    }
}

impl Strict<'_> {
    /// A seed for a child value at this seed's depth.
    fn nested_same(&self) -> Self {
        Strict {
            depth: self.depth,
            max_depth: self.max_depth,
            fault: self.fault,
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]
    use super::*;

    fn check(input: &str, max_depth: usize, expect: Result<&str, JsonFault>) {
        let got = parse(input.as_bytes(), max_depth);
        match (got, expect) {
            (Ok(value), Ok(want)) => assert_eq!(value, serde_json::from_str::<Value>(want).unwrap()),
            (Err(got), Err(want)) => assert_eq!(got, want, "input {input:?}"),
            (got, want) => panic!("input {input:?}: got {got:?}, want {want:?}"),
        }
    }

    #[test]
    fn accepts_ordinary_json() {
        check(
            r#"{"a":[1,2,{"b":null}],"c":"x"}"#,
            3,
            Ok(r#"{"a":[1,2,{"b":null}],"c":"x"}"#),
        );
        check(" { } ", 1, Ok("{}"));
        check("1.5", 0, Ok("1.5"));
    }

    #[test]
    fn refuses_duplicate_members_at_any_depth() {
        check(
            r#"{"alg":"RS256","alg":"none"}"#,
            4,
            Err(JsonFault::DuplicateMember("alg".into())),
        );
        check(r#"{"a":{"b":1,"b":1}}"#, 4, Err(JsonFault::DuplicateMember("b".into())));
        // Escapes are decoded before the comparison.
        check(
            r#"{"alg":1,"\u0061lg":2}"#,
            4,
            Err(JsonFault::DuplicateMember("alg".into())),
        );
    }

    #[test]
    fn bounds_nesting() {
        check("[[[]]]", 3, Ok("[[[]]]"));
        check("[[[[]]]]", 3, Err(JsonFault::TooDeep(3)));
        check(r#"{"a":{"b":{"c":{}}}}"#, 3, Err(JsonFault::TooDeep(3)));
        let deep = "[".repeat(100_000) + &"]".repeat(100_000);
        check(&deep, 16, Err(JsonFault::TooDeep(16)));
    }

    #[test]
    fn refuses_nul_in_strings_and_names() {
        check(r#"{"sub":"a\u0000b"}"#, 4, Err(JsonFault::NulInString));
        check(r#"{"a\u0000":1}"#, 4, Err(JsonFault::NulInString));
    }

    #[test]
    fn refuses_trailing_data_and_bad_utf8() {
        assert!(matches!(parse(b"{} {}", 4), Err(JsonFault::Syntax(_))));
        assert!(matches!(parse(b"{\"a\":\"\xff\"}", 4), Err(JsonFault::Syntax(_))));
        assert!(matches!(parse(br#"{"a":"\ud800"}"#, 4), Err(JsonFault::Syntax(_))));
    }
}
