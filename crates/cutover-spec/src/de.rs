//! A serde [`Deserializer`] over the located [`Node`] tree.
//!
//! It knows the path and position of the value it reads, so every error a
//! `Deserialize` impl raises (a wrong type, a missing field, an unknown
//! variant) is recorded in the [`Sink`] with its file, line, column and path
//! at the innermost value where it happened. Messages are rewritten in the
//! document's own words (`expected an integer, found "80a"`).
//!
//! Keys that the target struct does not have are caught before the struct
//! sees them: an error with a "did you mean" suggestion in strict mode
//! (Cutover's own files), a warning in lenient mode (AWS files, where new
//! fields appear all the time).
//!
//! AWS's JSON and YAML readers coerce a numeric string where an integer
//! belongs (`"containerPort": "80"`): in lenient mode such a string is read
//! as the number, with a warning; strict mode refuses it as a wrong type.
//!
//! [`tolerant_vec`] and [`tolerant_map`] keep reading the other elements of a
//! collection after one fails, so that one pass reports the errors of every
//! container or service, not only the first.

use std::cell::Cell;
use std::collections::BTreeMap;
use std::fmt;
use std::marker::PhantomData;

use serde::Deserialize;
use serde::de::{
    self, DeserializeSeed, Deserializer, EnumAccess, Expected, IgnoredAny, MapAccess, SeqAccess,
    Unexpected, VariantAccess, Visitor,
};

use crate::check::{Sink, suggest};
use crate::doc::{Entry, Format, Node, Path, Value, quote};

/// An error while reading the tree. Once recorded in the [`Sink`] (at the
/// innermost value that saw it) it is only passed up.
#[derive(Debug)]
pub(crate) struct Error {
    kind: Kind,
    reported: bool,
}

#[derive(Debug)]
enum Kind {
    Message(String),
    /// The found side is described from the node when the error is recorded.
    InvalidType {
        expected: String,
    },
    InvalidValue {
        expected: String,
        found: String,
    },
}

impl Error {
    fn message(message: String) -> Error {
        Error {
            kind: Kind::Message(message),
            reported: false,
        }
    }

    fn render(&self, node: &Node, format: Format) -> String {
        match &self.kind {
            Kind::Message(m) => m.clone(),
            Kind::InvalidType { expected } => {
                format!(
                    "expected {}, found {}",
                    friendly(expected, format),
                    found(node, format)
                )
            }
            Kind::InvalidValue { expected, found } => {
                format!(
                    "expected {}, found {found}",
                    friendly_value(expected, found, format)
                )
            }
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            Kind::Message(m) => f.write_str(m),
            Kind::InvalidType { expected } => write!(f, "expected {expected}"),
            Kind::InvalidValue { expected, found } => {
                write!(f, "expected {expected}, found {found}")
            }
        }
    }
}

impl std::error::Error for Error {}

impl de::Error for Error {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        Error::message(msg.to_string())
    }

    fn invalid_type(_unexp: Unexpected<'_>, exp: &dyn Expected) -> Self {
        Error {
            kind: Kind::InvalidType {
                expected: exp.to_string(),
            },
            reported: false,
        }
    }

    fn invalid_value(unexp: Unexpected<'_>, exp: &dyn Expected) -> Self {
        let found = match unexp {
            Unexpected::Unsigned(n) => n.to_string(),
            Unexpected::Signed(n) => n.to_string(),
            Unexpected::Float(n) => n.to_string(),
            Unexpected::Str(s) => quote(s),
            Unexpected::Bool(b) => b.to_string(),
            other => other.to_string(),
        };
        Error {
            kind: Kind::InvalidValue {
                expected: exp.to_string(),
                found,
            },
            reported: false,
        }
    }

    fn invalid_length(len: usize, exp: &dyn Expected) -> Self {
        Error::message(format!("expected {exp}, found {len} elements"))
    }

    fn unknown_variant(variant: &str, expected: &'static [&'static str]) -> Self {
        Error::message(format!(
            "unknown variant {}, expected {}",
            quote(variant),
            one_of(expected)
        ))
    }

    fn unknown_field(field: &str, expected: &'static [&'static str]) -> Self {
        Error::message(unknown_key_message("unknown key", field, expected))
    }

    fn missing_field(field: &'static str) -> Self {
        Error::message(format!("missing field {}", quote(field)))
    }

    fn duplicate_field(field: &'static str) -> Self {
        Error::message(format!("duplicate field {}", quote(field)))
    }
}

/// `BLUE_GREEN, ROLLING` as "one of BLUE_GREEN, ROLLING".
pub(crate) fn one_of(names: &[&str]) -> String {
    match names {
        [] => "nothing (there are no variants)".to_owned(),
        [one] => one.to_string(),
        _ => format!("one of {}", names.join(", ")),
    }
}

fn unknown_key_message(what: &str, key: &str, expected: &[&str]) -> String {
    let mut msg = format!("{what} {}", quote(key));
    if let Some(s) = suggest(key, expected.iter().copied()) {
        msg.push_str(&format!(", did you mean {}?", quote(s)));
    } else if !expected.is_empty() && expected.len() <= 12 {
        msg.push_str(&format!(", expected {}", one_of(expected)));
    }
    msg
}

/// serde's names for what a visitor expects, in the document's words.
fn friendly(expected: &str, format: Format) -> String {
    let s = match expected {
        "u8" | "u16" | "u32" | "u64" | "u128" | "usize" | "i8" | "i16" | "i32" | "i64" | "i128"
        | "isize" => "an integer",
        "f32" | "f64" => "a number",
        "a string" | "a borrowed string" | "a character" | "a char" | "string" => "a string",
        "a boolean" => "true or false",
        "a sequence" => format.seq_noun(),
        "a map" | "map" => format.map_noun(),
        "unit" => "null",
        s if s.starts_with("struct ") => format.map_noun(),
        s if s.starts_with("a tuple") || s.starts_with("tuple") => format.seq_noun(),
        other => other,
    };
    s.to_owned()
}

fn friendly_value(expected: &str, found: &str, format: Format) -> String {
    let max = match expected {
        "u8" => Some(u64::from(u8::MAX)),
        "u16" => Some(u64::from(u16::MAX)),
        "u32" => Some(u64::from(u32::MAX)),
        "u64" | "usize" => Some(u64::MAX),
        _ => None,
    };
    match max {
        Some(_) if found.starts_with('-') => "a non-negative integer".to_owned(),
        Some(max) => format!("an integer no larger than {max}"),
        None => friendly(expected, format),
    }
}

/// How the value of `node` is shown after "found".
fn found(node: &Node, format: Format) -> String {
    match (&node.value, &node.plain) {
        (Value::Null, Some(raw)) if raw.is_empty() => "nothing".to_owned(),
        (Value::Null, _) => "null".to_owned(),
        (Value::Bool(_) | Value::Int(_) | Value::Float(_), Some(raw)) => raw.clone(),
        (Value::Bool(b), None) => b.to_string(),
        (Value::Int(n), None) => n.to_string(),
        (Value::Float(f), None) => f.to_string(),
        (Value::Str(s), _) => quote(s),
        (Value::Seq(_), _) => format.seq_noun().to_owned(),
        (Value::Map(_), _) => format.map_noun().to_owned(),
    }
}

thread_local! {
    /// Set while this crate reads a tree: [`tolerant_vec`] and
    /// [`tolerant_map`] only go on after an error with our own deserializer,
    /// whose state stays consistent (serde_json's does not).
    static TOLERANT: Cell<bool> = const { Cell::new(false) };
}

/// Reads `T` from `node`, recording every error in `sink`.
pub(crate) fn read<T: de::DeserializeOwned>(
    node: &Node,
    path: &Path,
    sink: &Sink<'_>,
) -> Option<T> {
    struct Reset(bool);
    impl Drop for Reset {
        fn drop(&mut self) {
            TOLERANT.with(|t| t.set(self.0));
        }
    }
    let _reset = Reset(TOLERANT.with(|t| t.replace(true)));
    T::deserialize(De {
        node,
        path: path.clone(),
        sink,
    })
    .ok()
}

/// The deserializer for one node.
#[derive(Clone)]
pub(crate) struct De<'s> {
    node: &'s Node,
    path: Path,
    sink: &'s Sink<'s>,
}

impl<'s> De<'s> {
    fn child(&self, node: &'s Node, path: Path) -> De<'s> {
        De {
            node,
            path,
            sink: self.sink,
        }
    }

    /// Records an error that no inner value has recorded yet, here. The
    /// accessors call it too, for errors a `Deserialize` impl raises after
    /// reading its value (`try_from`, parsing a string), so that those are
    /// located at the value rather than at its parent.
    fn finish<T>(&self, result: Result<T, Error>) -> Result<T, Error> {
        result.map_err(|mut e| {
            if !e.reported {
                let message = e.render(self.node, self.sink.format);
                self.sink.error_at(&self.path, self.node.pos, message);
                e.reported = true;
            }
            e
        })
    }

    fn unknown_key(&self, entry: &Entry, fields: &[&str]) {
        let path = self.path.key(entry.name());
        if self.sink.strict {
            let msg = unknown_key_message("unknown key", entry.name(), fields);
            self.sink.error_at(&path, entry.key.pos, msg);
        } else {
            let name = quote(entry.name());
            let msg = match suggest(entry.name(), fields.iter().copied()) {
                Some(s) => format!("unknown field {name}, ignored (did you mean {}?)", quote(s)),
                None => format!("unknown field {name}, ignored"),
            };
            self.sink.warning_at(&path, entry.key.pos, msg);
        }
    }

    fn invalid_type<T>(&self, visitor: &dyn Expected) -> Result<T, Error> {
        Err(de::Error::invalid_type(Unexpected::Other("value"), visitor))
    }

    fn map_access<'p>(&'p self, entries: Vec<&'s Entry>) -> MapAcc<'p, 's> {
        MapAcc {
            entries: entries.into_iter(),
            current: None,
            de: self,
        }
    }
}

/// Every integer type reads through [`De::deserialize_integer`].
macro_rules! integers {
    ($($method:ident)*) => {
        $(
            fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
                self.deserialize_integer(visitor)
            }
        )*
    };
}

impl<'de, 's> Deserializer<'de> for De<'s> {
    type Error = Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        let r = match &self.node.value {
            Value::Null => visitor.visit_unit(),
            Value::Bool(b) => visitor.visit_bool(*b),
            Value::Int(n) => visit_int(visitor, *n),
            Value::Float(f) => visitor.visit_f64(*f),
            Value::Str(s) => visitor.visit_str(s),
            Value::Seq(items) => visitor.visit_seq(SeqAcc {
                items: items.iter().enumerate(),
                de: &self,
            }),
            Value::Map(entries) => visitor.visit_map(self.map_access(entries.iter().collect())),
        };
        self.finish(r)
    }

    /// Also `on`/`off`/`yes`/`no` when written plain in YAML (YAML 1.1 booleans).
    fn deserialize_bool<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        if let (Value::Str(_), Some(raw)) = (&self.node.value, &self.node.plain) {
            let b = match raw.to_ascii_lowercase().as_str() {
                "yes" | "on" => Some(true),
                "no" | "off" => Some(false),
                _ => None,
            };
            if let Some(b) = b {
                let r = visitor.visit_bool(b);
                return self.finish(r);
            }
        }
        self.deserialize_any(visitor)
    }

    /// A YAML plain scalar that looks like a number or boolean is taken as
    /// written where a string is expected (`matcher: 200`, `version: 0.0`).
    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        if let (Value::Bool(_) | Value::Int(_) | Value::Float(_), Some(raw)) =
            (&self.node.value, &self.node.plain)
        {
            let r = visitor.visit_str(raw);
            return self.finish(r);
        }
        self.deserialize_any(visitor)
    }

    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.deserialize_str(visitor)
    }

    fn deserialize_char<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.deserialize_str(visitor)
    }

    fn deserialize_identifier<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.deserialize_str(visitor)
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        let r = match self.node.value {
            Value::Null => visitor.visit_none(),
            _ => visitor.visit_some(self.clone()),
        };
        self.finish(r)
    }

    fn deserialize_unit<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        let r = match self.node.value {
            Value::Null => visitor.visit_unit(),
            _ => self.invalid_type(&visitor),
        };
        self.finish(r)
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Error> {
        self.deserialize_unit(visitor)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Error> {
        let r = visitor.visit_newtype_struct(self.clone());
        self.finish(r)
    }

    /// `null` (an empty YAML value) reads as an empty list.
    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        let r = match &self.node.value {
            Value::Seq(items) => visitor.visit_seq(SeqAcc {
                items: items.iter().enumerate(),
                de: &self,
            }),
            Value::Null => visitor.visit_seq(SeqAcc {
                items: [].iter().enumerate(),
                de: &self,
            }),
            _ => self.invalid_type(&visitor),
        };
        self.finish(r)
    }

    fn deserialize_tuple<V: Visitor<'de>>(
        self,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, Error> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, Error> {
        self.deserialize_seq(visitor)
    }

    /// `null` (an empty YAML value) reads as an empty mapping.
    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        let r = match &self.node.value {
            Value::Map(entries) => visitor.visit_map(self.map_access(entries.iter().collect())),
            Value::Null => visitor.visit_map(self.map_access(Vec::new())),
            _ => self.invalid_type(&visitor),
        };
        self.finish(r)
    }

    /// `null` (an empty YAML value or document) reads as an empty mapping.
    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        let r = match &self.node.value {
            Value::Null => visitor.visit_map(self.map_access(Vec::new())),
            Value::Map(entries) => {
                let mut known = Vec::with_capacity(entries.len());
                for e in entries {
                    if fields.contains(&e.name()) {
                        known.push(e);
                    } else {
                        self.unknown_key(e, fields);
                    }
                }
                visitor.visit_map(self.map_access(known))
            }
            _ => self.invalid_type(&visitor),
        };
        self.finish(r)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        let r = match &self.node.value {
            Value::Str(_) => visitor.visit_enum(UnitVariant(self.clone())),
            Value::Map(entries) if entries.len() == 1 => {
                let e = &entries[0];
                let path = self.path.key(e.name());
                visitor.visit_enum(MapVariant {
                    key: self.child(&e.key, path.clone()),
                    value: self.child(&e.value, path),
                })
            }
            _ => Err(Error {
                kind: Kind::InvalidType {
                    expected: one_of(variants),
                },
                reported: false,
            }),
        };
        self.finish(r)
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_unit()
    }

    integers! {
        deserialize_i8 deserialize_i16 deserialize_i32 deserialize_i64 deserialize_i128
        deserialize_u8 deserialize_u16 deserialize_u32 deserialize_u64 deserialize_u128
    }

    serde::forward_to_deserialize_any! {
        f32 f64 bytes byte_buf
    }
}

impl De<'_> {
    /// An integer; in lenient mode (AWS files) also a string of digits, as
    /// AWS's readers coerce it, with a warning that says so.
    fn deserialize_integer<'de, V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        if let Value::Str(s) = &self.node.value
            && !self.sink.strict
            && let Some(n) = numeric_string(s)
        {
            let name = self.path.last_key().unwrap_or("the value");
            self.sink.warning_at(
                &self.path,
                self.node.pos,
                format!(
                    "{name} is the string {}; AWS reads it as the number {n}",
                    quote(s)
                ),
            );
            let r = visit_int(visitor, n);
            return self.finish(r);
        }
        self.deserialize_any(visitor)
    }
}

/// `"80"`, `"-1"`: an optional minus and decimal digits, as an integer.
fn numeric_string(s: &str) -> Option<i128> {
    let digits = s.strip_prefix('-').unwrap_or(s);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// Hands an integer to `visitor` as the narrowest of u64, i64 and i128.
fn visit_int<'de, V: Visitor<'de>>(visitor: V, n: i128) -> Result<V::Value, Error> {
    if let Ok(u) = u64::try_from(n) {
        visitor.visit_u64(u)
    } else if let Ok(i) = i64::try_from(n) {
        visitor.visit_i64(i)
    } else {
        visitor.visit_i128(n)
    }
}

struct SeqAcc<'p, 's> {
    items: std::iter::Enumerate<std::slice::Iter<'s, Node>>,
    de: &'p De<'s>,
}

impl<'de> SeqAccess<'de> for SeqAcc<'_, '_> {
    type Error = Error;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, Error> {
        match self.items.next() {
            Some((i, node)) => {
                let child = self.de.child(node, self.de.path.index(i));
                child.finish(seed.deserialize(child.clone())).map(Some)
            }
            None => Ok(None),
        }
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.items.len())
    }
}

struct MapAcc<'p, 's> {
    entries: std::vec::IntoIter<&'s Entry>,
    current: Option<&'s Entry>,
    de: &'p De<'s>,
}

impl<'de> MapAccess<'de> for MapAcc<'_, '_> {
    type Error = Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, Error> {
        match self.entries.next() {
            Some(e) => {
                self.current = Some(e);
                let child = self.de.child(&e.key, self.de.path.key(e.name()));
                child.finish(seed.deserialize(child.clone())).map(Some)
            }
            None => Ok(None),
        }
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, Error> {
        let e = self
            .current
            .take()
            .ok_or_else(|| Error::message("a value was read before its key".to_owned()))?;
        let child = self.de.child(&e.value, self.de.path.key(e.name()));
        child.finish(seed.deserialize(child.clone()))
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.entries.len())
    }
}

/// An enum written as a plain string: `protocol: tcp`.
struct UnitVariant<'s>(De<'s>);

impl<'de, 's> EnumAccess<'de> for UnitVariant<'s> {
    type Error = Error;
    type Variant = Self;

    fn variant_seed<V: DeserializeSeed<'de>>(self, seed: V) -> Result<(V::Value, Self), Error> {
        let v = self.0.finish(seed.deserialize(self.0.clone()))?;
        Ok((v, self))
    }
}

impl<'de> VariantAccess<'de> for UnitVariant<'_> {
    type Error = Error;

    fn unit_variant(self) -> Result<(), Error> {
        Ok(())
    }

    fn newtype_variant_seed<T: DeserializeSeed<'de>>(self, _seed: T) -> Result<T::Value, Error> {
        Err(Error::message(format!(
            "expected {} with one key",
            self.0.sink.format.map_noun()
        )))
    }

    fn tuple_variant<V: Visitor<'de>>(self, _len: usize, _visitor: V) -> Result<V::Value, Error> {
        Err(Error::message(format!(
            "expected {} with one key",
            self.0.sink.format.map_noun()
        )))
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        _fields: &'static [&'static str],
        _visitor: V,
    ) -> Result<V::Value, Error> {
        Err(Error::message(format!(
            "expected {} with one key",
            self.0.sink.format.map_noun()
        )))
    }
}

/// An enum written as a one-key mapping: `{variant: value}`.
struct MapVariant<'s> {
    key: De<'s>,
    value: De<'s>,
}

impl<'de, 's> EnumAccess<'de> for MapVariant<'s> {
    type Error = Error;
    type Variant = De<'s>;

    fn variant_seed<V: DeserializeSeed<'de>>(self, seed: V) -> Result<(V::Value, De<'s>), Error> {
        let v = self.key.finish(seed.deserialize(self.key.clone()))?;
        Ok((v, self.value))
    }
}

impl<'de> VariantAccess<'de> for De<'_> {
    type Error = Error;

    fn unit_variant(self) -> Result<(), Error> {
        Deserialize::deserialize(self)
    }

    fn newtype_variant_seed<T: DeserializeSeed<'de>>(self, seed: T) -> Result<T::Value, Error> {
        seed.deserialize(self)
    }

    fn tuple_variant<V: Visitor<'de>>(self, _len: usize, visitor: V) -> Result<V::Value, Error> {
        self.deserialize_seq(visitor)
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        self.deserialize_struct("", fields, visitor)
    }
}

fn tolerant() -> bool {
    TOLERANT.with(Cell::get)
}

/// `deserialize_with` for a list whose elements are all read even when some
/// fail, so that each one's errors are reported. Fails if any element did.
pub(crate) fn tolerant_vec<'de, D, T>(deserializer: D) -> Result<Vec<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    struct V<T>(PhantomData<T>);
    impl<'de, T: Deserialize<'de>> Visitor<'de> for V<T> {
        type Value = Vec<T>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a sequence")
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<T>, A::Error> {
            let mut out = Vec::new();
            let mut first_error = None;
            loop {
                match seq.next_element::<T>() {
                    Ok(Some(v)) => out.push(v),
                    Ok(None) => break,
                    Err(e) if tolerant() => {
                        first_error.get_or_insert(e);
                    }
                    Err(e) => return Err(e),
                }
            }
            first_error.map_or(Ok(out), Err)
        }
    }
    deserializer.deserialize_seq(V(PhantomData))
}

/// `deserialize_with` for a mapping whose entries are all read even when
/// some fail, so that each one's errors are reported. Fails if any did.
pub(crate) fn tolerant_map<'de, D, K, T>(deserializer: D) -> Result<BTreeMap<K, T>, D::Error>
where
    D: Deserializer<'de>,
    K: Deserialize<'de> + Ord,
    T: Deserialize<'de>,
{
    struct V<K, T>(PhantomData<(K, T)>);
    impl<'de, K: Deserialize<'de> + Ord, T: Deserialize<'de>> Visitor<'de> for V<K, T> {
        type Value = BTreeMap<K, T>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a map")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<BTreeMap<K, T>, A::Error> {
            let mut out = BTreeMap::new();
            let mut first_error = None;
            loop {
                let key = match map.next_key::<K>() {
                    Ok(Some(k)) => Some(k),
                    Ok(None) => break,
                    Err(e) if tolerant() => {
                        first_error.get_or_insert(e);
                        None
                    }
                    Err(e) => return Err(e),
                };
                match key {
                    Some(k) => match map.next_value::<T>() {
                        Ok(v) => {
                            out.insert(k, v);
                        }
                        Err(e) if tolerant() => {
                            first_error.get_or_insert(e);
                        }
                        Err(e) => return Err(e),
                    },
                    None => {
                        map.next_value::<IgnoredAny>()?;
                    }
                }
            }
            first_error.map_or(Ok(out), Err)
        }
    }
    deserializer.deserialize_map(V(PhantomData))
}
