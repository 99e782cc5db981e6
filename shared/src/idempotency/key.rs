//! Idempotency keys and payload hashes: what part of a payload identifies a delivery, how it
//! is written down canonically, and how it is hashed.
//!
//! # Canonical JSON
//!
//! A selected value is written as *canonical JSON* before hashing, so that two payloads that
//! differ only in presentation get the same key:
//!
//! - object keys are sorted recursively, by Unicode code point (the byte order of their UTF-8
//!   encoding, which is how Rust orders `str`);
//! - no whitespace anywhere;
//! - strings are escaped exactly as `serde_json` escapes them;
//! - numbers are written as `serde_json` writes them: integers as integers, floats in their
//!   shortest round-tripping form, so `1` and `1.0` are *different* keys (they are different
//!   JSON documents to every consumer that distinguishes integers from floats).
//!
//! The order is applied here rather than relying on `serde_json::Map`, because any crate in
//! the dependency graph can turn on `serde_json/preserve_order`, which would make the map keep
//! insertion order and silently change every key.
//!
//! # Hash
//!
//! The hash is SHA-256 of the canonical JSON bytes, written as 64 lowercase hexadecimal
//! characters. An idempotency key is `"{name}#{hash}"`, where `name` is the configured,
//! stable name (see [`IdempotencyConfig`](super::IdempotencyConfig)). A payload validation
//! hash is the same SHA-256 hex of the canonical JSON of the validated part, without a name.
//!
//! # Paths
//!
//! A [`KeyPath`] selects part of a payload. It is either a JSON Pointer (RFC 6901, starting
//! with `/`, e.g. `/detail/order id`) or a dotted path (`detail.orderId`, `items.0.sku`),
//! which is turned into the equivalent pointer. The empty path selects the whole payload.

use std::fmt;
use std::sync::Arc;

use serde_json::Value;
use sha2::{Digest, Sha256};

/// A location inside a JSON payload, stored as a JSON Pointer; shown as it was written.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct KeyPath {
    pointer: String,
    written: String,
}

impl KeyPath {
    /// Parses a JSON Pointer (`/a/b`), a dotted path (`a.b`), or the empty path (the whole
    /// payload). Every string is a valid path; a dotted path cannot name a field that itself
    /// contains a dot, for which the pointer form is needed.
    pub fn parse(path: &str) -> Self {
        let pointer = if path.is_empty() || path.starts_with('/') {
            path.to_string()
        } else {
            path.split('.')
                .map(|segment| format!("/{}", segment.replace('~', "~0").replace('/', "~1")))
                .collect()
        };
        Self {
            pointer,
            written: path.to_string(),
        }
    }

    /// The path as a JSON Pointer.
    pub fn as_pointer(&self) -> &str {
        &self.pointer
    }

    /// The value at this path, treating JSON `null` as absent (a `null` identifier
    /// identifies nothing).
    pub fn select<'a>(&self, payload: &'a Value) -> Option<&'a Value> {
        payload
            .pointer(&self.pointer)
            .filter(|value| !value.is_null())
    }
}

impl From<&str> for KeyPath {
    fn from(path: &str) -> Self {
        Self::parse(path)
    }
}

impl From<String> for KeyPath {
    fn from(path: String) -> Self {
        Self::parse(&path)
    }
}

/// The path as the user wrote it (`detail.orderId` stays `detail.orderId`).
impl fmt::Display for KeyPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.written)
    }
}

/// A function that picks the identifying value out of a record; `None` means the record has
/// no key.
pub type KeyFn = Arc<dyn Fn(&Value) -> Option<Value> + Send + Sync>;

/// Which part of a payload identifies a delivery.
#[derive(Clone, Default)]
pub enum KeySource {
    /// The envelope's `eventId` (the default): every delivery of one event shares it.
    #[default]
    EventId,
    /// The value at one path.
    Path(KeyPath),
    /// The values at several paths, hashed together as a JSON array in the given order. The
    /// key is missing when *any* of them is missing, so that a malformed record can never
    /// share a key with an unrelated one through their common fields.
    Paths(Vec<KeyPath>),
    /// A function of the record.
    Function(KeyFn),
}

impl KeySource {
    /// The path of the envelope's event id.
    pub const EVENT_ID_POINTER: &'static str = "/eventId";

    /// A key computed by `function`, which returns `None` when the record has no key.
    pub fn function(function: impl Fn(&Value) -> Option<Value> + Send + Sync + 'static) -> Self {
        Self::Function(Arc::new(function))
    }

    /// The identifying value of `payload`, or `None` when it has none.
    pub fn extract(&self, payload: &Value) -> Option<Value> {
        match self {
            Self::EventId => KeyPath::parse(Self::EVENT_ID_POINTER)
                .select(payload)
                .cloned(),
            Self::Path(path) => path.select(payload).cloned(),
            Self::Paths(paths) => paths
                .iter()
                .map(|path| path.select(payload).cloned())
                .collect::<Option<Vec<_>>>()
                .map(Value::Array),
            Self::Function(function) => function(payload).filter(|value| !value.is_null()),
        }
    }
}

/// Where the key is looked for, in words for error messages: "the envelope's `eventId`",
/// "key path `detail.orderId`".
impl fmt::Display for KeySource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::EventId => f.write_str("the envelope's `eventId`"),
            Self::Path(path) => write!(f, "key path `{path}`"),
            Self::Paths(paths) => {
                f.write_str("key paths ")?;
                for (index, path) in paths.iter().enumerate() {
                    let separator = if index == 0 { "" } else { ", " };
                    write!(f, "{separator}`{path}`")?;
                }
                Ok(())
            }
            Self::Function(_) => f.write_str("the key function"),
        }
    }
}

/// True for a key value that identifies nothing: an empty or blank string (alone or inside
/// a composite key). Such a value would make every record that has it share one key.
pub fn is_blank(value: &Value) -> bool {
    match value {
        Value::String(text) => text.trim().is_empty(),
        Value::Array(values) => values.iter().any(is_blank),
        _ => false,
    }
}

impl fmt::Debug for KeySource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::EventId => f.write_str("EventId"),
            Self::Path(path) => f.debug_tuple("Path").field(path).finish(),
            Self::Paths(paths) => f.debug_tuple("Paths").field(paths).finish(),
            Self::Function(_) => f.write_str("Function(..)"),
        }
    }
}

/// Writes `value` as canonical JSON (see the module docs).
pub fn canonical_json(value: &Value) -> String {
    let mut out = String::new();
    write_canonical(value, &mut out);
    out
}

fn write_canonical(value: &Value, out: &mut String) {
    match value {
        Value::Object(map) => write_object(map.iter(), out),
        Value::Array(items) => {
            out.push('[');
            for (index, item) in items.iter().enumerate() {
                if index > 0 {
                    out.push(',');
                }
                write_canonical(item, out);
            }
            out.push(']');
        }
        scalar => write_scalar(scalar, out),
    }
}

/// Writes an object's entries sorted by key, in whatever order the map hands them over
/// (sorted by default, insertion order under `serde_json/preserve_order`).
fn write_object<'a>(entries: impl Iterator<Item = (&'a String, &'a Value)>, out: &mut String) {
    let mut entries: Vec<(&String, &Value)> = entries.collect();
    entries.sort_unstable_by_key(|&(key, _)| key);
    out.push('{');
    for (index, (key, item)) in entries.into_iter().enumerate() {
        if index > 0 {
            out.push(',');
        }
        write_scalar(&Value::String(key.clone()), out);
        out.push(':');
        write_canonical(item, out);
    }
    out.push('}');
}

fn write_scalar(value: &Value, out: &mut String) {
    // `Value`'s Display is serde_json's compact serializer, which cannot fail for a scalar.
    out.push_str(&value.to_string());
}

/// SHA-256 of the canonical JSON of `value`, as 64 lowercase hex characters.
pub fn hash_value(value: &Value) -> String {
    hex::encode(Sha256::digest(canonical_json(value).as_bytes()))
}

/// The idempotency key for an identifying `value` under the stable `name`:
/// `"{name}#{hash_value(value)}"`.
pub fn idempotency_key(name: &str, value: &Value) -> String {
    format!("{name}#{}", hash_value(value))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    #[test]
    fn canonical_json_sorts_keys_recursively_without_whitespace() {
        let value = json!({"b": [ {"z": 1, "a": 2} ], "a": {"y": null, "x": "s p"}, "A": 1.5});
        assert_eq!(
            canonical_json(&value),
            r#"{"A":1.5,"a":{"x":"s p","y":null},"b":[{"a":2,"z":1}]}"#
        );
    }

    #[test]
    fn object_entries_are_sorted_whatever_order_the_map_hands_them_over() {
        // The order a `preserve_order` map would hand over for `{"b":..,"a":..,"B":..}`,
        // shown in any build (a default map would already sort them).
        let (b, a, upper_b) = ("b".to_string(), "a".to_string(), "B".to_string());
        let (one, two, three) = (json!(1), json!({"y": 2, "x": 3}), json!(null));
        let mut out = String::new();
        write_object(
            [(&b, &one), (&a, &two), (&upper_b, &three)].into_iter(),
            &mut out,
        );
        assert_eq!(out, r#"{"B":null,"a":{"x":3,"y":2},"b":1}"#);
    }

    /// `cargo xtask test` runs the toolkit's tests a second time with
    /// `serde_json/preserve_order` on (and `EVENTKIT_EXPECT_PRESERVE_ORDER=1`), so that the
    /// key-order tests below run against maps that keep insertion order. This checks that the
    /// second run really has that feature, so it cannot silently test sorted maps twice.
    #[test]
    fn map_order_is_what_this_run_expects() {
        let map: serde_json::Map<String, Value> =
            [("b".to_string(), json!(1)), ("a".to_string(), json!(2))]
                .into_iter()
                .collect();
        let order: Vec<&str> = map.keys().map(String::as_str).collect();
        let expect_preserved =
            std::env::var("EVENTKIT_EXPECT_PRESERVE_ORDER").as_deref() == Ok("1");
        let expected = if expect_preserved {
            ["b", "a"]
        } else {
            ["a", "b"]
        };
        assert_eq!(
            order, expected,
            "serde_json/preserve_order on: {expect_preserved}"
        );
    }

    #[test]
    fn canonical_json_escapes_like_serde_json_and_keeps_number_forms() {
        let value = json!({"q\"uote": "line\nbreak", "int": 1, "float": 1.0, "neg": -0.5});
        assert_eq!(
            canonical_json(&value),
            r#"{"float":1.0,"int":1,"neg":-0.5,"q\"uote":"line\nbreak"}"#
        );
    }

    #[test]
    fn hash_is_sha256_hex_of_the_canonical_form() {
        // sha256("\"abc\"") computed independently: the key of the string "abc".
        assert_eq!(
            hash_value(&json!("abc")),
            "6cc43f858fbb763301637b5af970e2a46b46f461f27e5a0f41e009c59b827b25"
        );
        assert_eq!(
            idempotency_key("orders", &json!("abc")),
            "orders#6cc43f858fbb763301637b5af970e2a46b46f461f27e5a0f41e009c59b827b25"
        );
    }

    #[test]
    fn paths_accept_pointers_dotted_paths_and_the_whole_payload() {
        let payload = json!({"detail": {"order.id": 7, "items": [{"sku": "x"}]}, "a/b": 1});
        assert_eq!(
            KeyPath::parse("detail.items.0.sku").select(&payload),
            Some(&json!("x"))
        );
        assert_eq!(
            KeyPath::parse("/detail/order.id").select(&payload),
            Some(&json!(7))
        );
        assert_eq!(KeyPath::parse("a/b").select(&payload), Some(&json!(1)));
        assert_eq!(KeyPath::parse("").select(&payload), Some(&payload));
        assert_eq!(KeyPath::parse("detail.missing").select(&payload), None);
    }

    #[test]
    fn null_and_absent_values_are_missing_keys() {
        let payload = json!({"eventId": null, "a": 1});
        assert_eq!(KeySource::EventId.extract(&payload), None);
        let both = KeySource::Paths(vec!["a".into(), "b".into()]);
        assert_eq!(both.extract(&payload), None);
        assert_eq!(
            KeySource::Paths(vec!["a".into(), "a".into()]).extract(&payload),
            Some(json!([1, 1]))
        );
        assert_eq!(
            KeySource::function(|_| Some(Value::Null)).extract(&payload),
            None
        );
    }

    fn arbitrary_json() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(|n| json!(n)),
            "[a-z\"\\\\ é]{0,6}".prop_map(Value::String),
        ];
        leaf.prop_recursive(3, 24, 4, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                prop::collection::vec(("[a-zA-Z]{0,4}", inner), 0..4)
                    .prop_map(|entries| Value::Object(entries.into_iter().collect())),
            ]
        })
    }

    /// Rebuilds every object with its entries in reverse order, which changes the insertion
    /// order a `preserve_order` map would keep.
    fn reversed(value: &Value) -> Value {
        match value {
            Value::Object(map) => Value::Object(
                map.iter()
                    .rev()
                    .map(|(key, item)| (key.clone(), reversed(item)))
                    .collect(),
            ),
            Value::Array(items) => Value::Array(items.iter().map(reversed).collect()),
            other => other.clone(),
        }
    }

    proptest! {
        #[test]
        fn key_order_never_changes_the_hash(value in arbitrary_json()) {
            let text = canonical_json(&value);
            prop_assert_eq!(hash_value(&reversed(&value)), hash_value(&value));
            // The canonical form is valid JSON for the same value.
            let reparsed: Value = serde_json::from_str(&text).unwrap();
            prop_assert_eq!(reparsed, value);
        }
    }
}
