//! Backward compatibility of two JSON Schemas of one event: what changed, field by field,
//! and which of those changes break a consumer of the old schema.
//!
//! Within one version of an event only additions of optional fields are allowed: a consumer
//! written against the old schema must still decode every event of the new one, and events
//! already in queues (written by the old producer) must still fit the new struct. So a
//! removed field, a field that became required, a new required field, a changed type and a
//! narrowed `enum` are breaking; those need a new version with an upcaster.
//!
//! Paths are JSON Pointers into the event (`/data/total/currency`), with `*` for "every
//! element of an array" (`/data/items/*/quantity`).

use std::collections::BTreeSet;
use std::fmt;

use serde_json::{Map, Value};

/// One difference between an old and a new schema.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Change {
    /// Where, as a JSON Pointer into the event.
    pub path: String,
    /// What.
    pub kind: ChangeKind,
}

/// The kinds of difference the check knows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ChangeKind {
    /// A field of the old schema is gone.
    Removed,
    /// An optional field became required.
    BecameRequired,
    /// A new field that is required: events written before it lack it.
    AddedRequired,
    /// A new optional field: the one compatible change.
    AddedOptional,
    /// The field's type is another.
    TypeChanged {
        /// The old type.
        from: String,
        /// The new type.
        to: String,
    },
    /// Values the old schema allowed are no longer allowed.
    EnumNarrowed {
        /// The values no longer allowed.
        removed: Vec<Value>,
    },
}

impl ChangeKind {
    /// Whether a consumer of the old schema, or an event written under it, breaks.
    pub fn is_breaking(&self) -> bool {
        !matches!(self, Self::AddedOptional)
    }
}

impl fmt::Display for Change {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let path = if self.path.is_empty() {
            "/"
        } else {
            &self.path
        };
        match &self.kind {
            ChangeKind::Removed => write!(f, "{path}: removed"),
            ChangeKind::BecameRequired => write!(f, "{path}: was optional, is now required"),
            ChangeKind::AddedRequired => write!(f, "{path}: added as a required field"),
            ChangeKind::AddedOptional => write!(f, "{path}: added as an optional field"),
            ChangeKind::TypeChanged { from, to } => {
                write!(f, "{path}: type changed from {from} to {to}")
            }
            ChangeKind::EnumNarrowed { removed } => {
                let removed: Vec<String> = removed.iter().map(Value::to_string).collect();
                write!(f, "{path}: no longer allows {}", removed.join(", "))
            }
        }
    }
}

/// Every difference from `old` to `new` (whole schemas, each with its own `definitions`).
pub fn compare(old: &Value, new: &Value) -> Vec<Change> {
    let mut walk = Walk {
        old_root: old,
        new_root: new,
        changes: Vec::new(),
        visiting: Vec::new(),
    };
    walk.node(old, new, String::new());
    walk.changes
}

/// Only the breaking differences from `old` to `new`.
pub fn breaking_changes(old: &Value, new: &Value) -> Vec<Change> {
    compare(old, new)
        .into_iter()
        .filter(|change| change.kind.is_breaking())
        .collect()
}

struct Walk<'a> {
    old_root: &'a Value,
    new_root: &'a Value,
    changes: Vec<Change>,
    // The `$ref` pairs being compared on the way down, so recursive types end.
    visiting: Vec<(String, String)>,
}

impl<'a> Walk<'a> {
    fn node(&mut self, old: &'a Value, new: &'a Value, path: String) {
        let (old_ref, old) = resolve(self.old_root, old);
        let (new_ref, new) = resolve(self.new_root, new);
        let Some(pair) = old_ref.zip(new_ref) else {
            return self.compare_nodes(old, new, path);
        };
        if self.visiting.contains(&pair) {
            return;
        }
        self.visiting.push(pair);
        self.compare_nodes(old, new, path);
        self.visiting.pop();
    }

    fn compare_nodes(&mut self, old: &'a Value, new: &'a Value, path: String) {
        let (from, to) = (shape(old), shape(new));
        if from != to && from != "any" {
            self.push(&path, ChangeKind::TypeChanged { from, to });
            return;
        }
        self.enumeration(old, new, &path);
        if let (Some(old_any), Some(new_any)) = (alternatives(old), alternatives(new)) {
            for (old, new) in old_any.iter().zip(new_any) {
                self.node(old, new, path.clone());
            }
        }
        self.properties(old, new, &path);
        if let (Some(old_items), Some(new_items)) = (old.get("items"), new.get("items")) {
            self.node(old_items, new_items, format!("{path}/*"));
        }
    }

    fn properties(&mut self, old: &'a Value, new: &'a Value, path: &str) {
        let old_properties = old["properties"].as_object();
        let new_properties = new["properties"].as_object();
        let (old_required, new_required) = (required(old), required(new));
        for (name, old_property) in old_properties.into_iter().flatten() {
            let field = format!("{path}/{}", name.replace('~', "~0").replace('/', "~1"));
            match new_properties.and_then(|properties| properties.get(name)) {
                None => self.push(&field, ChangeKind::Removed),
                Some(new_property) => {
                    if new_required.contains(name) && !old_required.contains(name) {
                        self.push(&field, ChangeKind::BecameRequired);
                    }
                    self.node(old_property, new_property, field);
                }
            }
        }
        for name in new_properties.into_iter().flat_map(Map::keys) {
            if !old_properties.is_some_and(|properties| properties.contains_key(name)) {
                let field = format!("{path}/{}", name.replace('~', "~0").replace('/', "~1"));
                let kind = if new_required.contains(name) {
                    ChangeKind::AddedRequired
                } else {
                    ChangeKind::AddedOptional
                };
                self.push(&field, kind);
            }
        }
    }

    fn enumeration(&mut self, old: &Value, new: &Value, path: &str) {
        let Some(new_values) = allowed_values(new) else {
            return;
        };
        let removed: Vec<Value> = match allowed_values(old) {
            Some(old_values) => old_values
                .into_iter()
                .filter(|value| !new_values.contains(value))
                .collect(),
            // Anything was allowed; now only a few values are.
            None => vec![Value::String("any other value".into())],
        };
        if !removed.is_empty() {
            self.push(path, ChangeKind::EnumNarrowed { removed });
        }
    }

    fn push(&mut self, path: &str, kind: ChangeKind) {
        self.changes.push(Change {
            path: path.to_string(),
            kind,
        });
    }
}

/// Follows `$ref` (within `root`) and a lone `allOf` (draft-07's way of putting a
/// description beside a `$ref`); returns the reference followed, if any, and the target.
fn resolve<'a>(root: &'a Value, mut node: &'a Value) -> (Option<String>, &'a Value) {
    let mut reference = None;
    for _ in 0..32 {
        if let Some(target) = node["$ref"].as_str() {
            let Some(found) = target.strip_prefix('#').and_then(|p| root.pointer(p)) else {
                return (reference, node);
            };
            reference = Some(target.to_string());
            node = found;
        } else if let Some([only]) = node["allOf"].as_array().map(Vec::as_slice) {
            node = only;
        } else {
            break;
        }
    }
    (reference, node)
}

/// The node's type, for messages and comparison: its `type` keyword, `one of N` for
/// `anyOf`/`oneOf`, or `any`.
fn shape(node: &Value) -> String {
    match &node["type"] {
        Value::String(name) => name.clone(),
        Value::Array(names) => {
            let mut names: Vec<&str> = names.iter().filter_map(Value::as_str).collect();
            names.sort_unstable();
            names.join(" or ")
        }
        _ => match alternatives(node) {
            Some(alternatives) => format!("one of {} schemas", alternatives.len()),
            None => "any".into(),
        },
    }
}

fn alternatives(node: &Value) -> Option<&Vec<Value>> {
    node["anyOf"]
        .as_array()
        .or_else(|| node["oneOf"].as_array())
}

fn allowed_values(node: &Value) -> Option<Vec<Value>> {
    if let Some(values) = node["enum"].as_array() {
        return Some(values.clone());
    }
    node.get("const").map(|value| vec![value.clone()])
}

fn required(node: &Value) -> BTreeSet<String> {
    node["required"]
        .as_array()
        .map(|names| {
            names
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use serde_json::json;

    use super::*;

    /// An event schema whose `data` is `data` (through a definition, as schemars writes it).
    fn event(data: Value) -> Value {
        json!({
            "type": "object",
            "properties": {
                "eventId": {"type": "string"},
                "data": {"allOf": [{"$ref": "#/definitions/Data"}], "description": "the data"}
            },
            "required": ["eventId", "data"],
            "definitions": {"Data": data}
        })
    }

    fn order(properties: Value, required: &[&str]) -> Value {
        event(json!({"type": "object", "properties": properties, "required": required}))
    }

    fn messages(old: &Value, new: &Value) -> Vec<String> {
        breaking_changes(old, new)
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    #[test]
    fn identical_schemas_have_no_changes() {
        let schema = order(json!({"orderId": {"type": "string"}}), &["orderId"]);
        assert_eq!(compare(&schema, &schema), []);
    }

    #[test]
    fn a_removed_field_is_breaking_and_named() {
        let old = order(
            json!({"orderId": {"type": "string"}, "note": {"type": "string"}}),
            &["orderId"],
        );
        let new = order(json!({"orderId": {"type": "string"}}), &["orderId"]);
        assert_eq!(messages(&old, &new), ["/data/note: removed"]);
    }

    #[test]
    fn optional_to_required_is_breaking() {
        let properties = json!({"orderId": {"type": "string"}, "note": {"type": "string"}});
        let old = order(properties.clone(), &["orderId"]);
        let new = order(properties, &["orderId", "note"]);
        assert_eq!(
            messages(&old, &new),
            ["/data/note: was optional, is now required"]
        );
        // The other way round (required to optional) is allowed.
        assert_eq!(messages(&new, &old), Vec::<String>::new());
    }

    #[test]
    fn a_type_change_is_breaking_even_deep_in_arrays() {
        let item = |quantity: Value| {
            json!({"items": {"type": "array", "items": {"type": "object",
                "properties": {"quantity": quantity}, "required": ["quantity"]}}})
        };
        let old = order(item(json!({"type": "integer"})), &["items"]);
        let new = order(item(json!({"type": "string"})), &["items"]);
        assert_eq!(
            messages(&old, &new),
            ["/data/items/*/quantity: type changed from integer to string"]
        );
        // Nullable is another type too.
        let new = order(item(json!({"type": ["integer", "null"]})), &["items"]);
        assert_eq!(
            messages(&old, &new),
            ["/data/items/*/quantity: type changed from integer to integer or null"]
        );
    }

    #[test]
    fn an_added_optional_field_is_compatible() {
        let old = order(json!({"orderId": {"type": "string"}}), &["orderId"]);
        let new = order(
            json!({"orderId": {"type": "string"}, "giftWrap": {"type": "boolean"}}),
            &["orderId"],
        );
        assert_eq!(
            compare(&old, &new),
            [Change {
                path: "/data/giftWrap".into(),
                kind: ChangeKind::AddedOptional
            }]
        );
        assert_eq!(messages(&old, &new), Vec::<String>::new());
    }

    #[test]
    fn an_added_required_field_is_breaking() {
        let old = order(json!({"orderId": {"type": "string"}}), &["orderId"]);
        let new = order(
            json!({"orderId": {"type": "string"}, "channel": {"type": "string"}}),
            &["orderId", "channel"],
        );
        assert_eq!(
            messages(&old, &new),
            ["/data/channel: added as a required field"]
        );
    }

    #[test]
    fn narrowed_enums_and_changed_definitions_are_found_through_refs() {
        let old = event(json!({"type": "object",
            "properties": {"total": {"$ref": "#/definitions/Money"}},
            "required": ["total"]}));
        let mut old = old;
        old["definitions"]["Money"] = json!({"type": "object",
            "properties": {"currency": {"type": "string", "enum": ["EUR", "USD"]}},
            "required": ["currency"]});
        let mut new = old.clone();
        new["definitions"]["Money"]["properties"]["currency"]["enum"] = json!(["EUR"]);
        assert_eq!(
            messages(&old, &new),
            ["/data/total/currency: no longer allows \"USD\""]
        );
    }

    #[test]
    fn recursive_definitions_end() {
        let node = json!({"type": "object", "properties": {
            "children": {"type": "array", "items": {"$ref": "#/definitions/Data"}}}});
        let schema = event(node);
        assert_eq!(compare(&schema, &schema), []);
    }
}
