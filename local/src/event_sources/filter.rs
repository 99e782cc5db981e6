//! Event filtering, as Lambda does it for event source mappings (`FilterCriteria`): up to
//! five patterns in EventBridge's syntax, a record invokes the function when any matches.
//! A record no pattern matches is dropped: a stream record is passed over (its shard moves
//! on), a queue message deleted, as Lambda does.
//!
//! Patterns are matched against the record as the function would receive it; for SQS the
//! `body` is matched as JSON when it is JSON (Lambda's rule), else as the text itself.
//! The matching is quamina's (a Rust port of the library EventBridge's patterns come from).

use std::fmt;

use anyhow::{Context, Result};
use serde_json::Value;

/// The most patterns one event source mapping takes.
const MAX_FILTERS: usize = 5;

/// An event source mapping's `FilterCriteria`: admits every record when it has none.
#[derive(Default)]
pub struct RecordFilter {
    patterns: Option<quamina::Quamina<usize>>,
}

impl fmt::Debug for RecordFilter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let count = self
            .patterns
            .as_ref()
            .map_or(0, quamina::Quamina::pattern_count);
        f.debug_struct("RecordFilter")
            .field("patterns", &count)
            .finish()
    }
}

impl RecordFilter {
    /// The filter of the event `event` whose properties are `properties` (its
    /// `FilterCriteria.Filters[].Pattern`, each a JSON text or, as some templates write it,
    /// an object).
    pub fn from_properties(event: &str, properties: &Value) -> Result<Self> {
        let filters = &properties["FilterCriteria"]["Filters"];
        let Some(filters) = filters.as_array().filter(|filters| !filters.is_empty()) else {
            return Ok(Self::default());
        };
        anyhow::ensure!(
            filters.len() <= MAX_FILTERS,
            "{event}: FilterCriteria has {} filters; Lambda takes at most {MAX_FILTERS}",
            filters.len()
        );
        let mut patterns = quamina::Quamina::new();
        for (index, filter) in filters.iter().enumerate() {
            let pattern = match &filter["Pattern"] {
                Value::String(text) => text.clone(),
                Value::Object(_) => filter["Pattern"].to_string(),
                other => anyhow::bail!(
                    "{event}: FilterCriteria.Filters[{index}].Pattern is {other}, not a JSON pattern"
                ),
            };
            patterns
                .add_pattern(index, &pattern)
                .map_err(|error| anyhow::anyhow!("{error}"))
                .with_context(|| {
                    format!("{event}: FilterCriteria.Filters[{index}].Pattern {pattern}")
                })?;
        }
        Ok(Self {
            patterns: Some(patterns),
        })
    }

    /// Whether the filter has patterns at all.
    pub fn is_set(&self) -> bool {
        self.patterns.is_some()
    }

    /// Whether `record` (a stream record, or an SQS record with its body already made JSON
    /// by [`sqs_view`]) invokes the function.
    pub fn admits(&self, record: &Value) -> bool {
        let Some(patterns) = &self.patterns else {
            return true;
        };
        // A record quamina cannot read is let through: the function decides (Lambda itself
        // never drops a record for being unreadable).
        patterns
            .has_matches(record.to_string().as_bytes())
            .unwrap_or(true)
    }
}

/// An SQS record as Lambda's filters see it: the body as JSON when it is JSON.
pub fn sqs_view(record: &Value) -> Value {
    let mut view = record.clone();
    if let Some(body) = record["body"].as_str() {
        if let Ok(json) = serde_json::from_str::<Value>(body) {
            if json.is_object() {
                view["body"] = json;
            }
        }
    }
    view
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use serde_json::json;

    use super::*;

    fn stream_record(new_image: Value) -> Value {
        json!({"eventName": "MODIFY", "dynamodb": {"Keys": {"id": {"S": "a"}}, "NewImage": new_image}})
    }

    #[test]
    fn the_relays_filter_admits_unpublished_items_only() {
        let properties = json!({"FilterCriteria": {"Filters": [{"Pattern":
            r#"{"dynamodb": {"NewImage": {"unpublished": {"S": [{"exists": true}]}}}}"#}]}});
        let filter = RecordFilter::from_properties("OutboxStream", &properties).unwrap();
        assert!(filter.is_set());
        assert!(filter.admits(&stream_record(
            json!({"id": {"S": "a"}, "unpublished": {"S": "3"}})
        )));
        assert!(!filter.admits(&stream_record(
            json!({"id": {"S": "a"}, "publishedAt": {"S": "t"}})
        )));
        assert!(!filter
            .admits(&json!({"eventName": "REMOVE", "dynamodb": {"Keys": {"id": {"S": "a"}}}})));
    }

    #[test]
    fn patterns_are_ored_and_written_as_text_or_object() {
        let properties = json!({"FilterCriteria": {"Filters": [
            {"Pattern": r#"{"body": {"kind": ["a"]}}"#},
            {"Pattern": {"body": {"kind": [{"prefix": "b"}]}}},
        ]}});
        let filter = RecordFilter::from_properties("Queue", &properties).unwrap();
        let record = |body: &str| sqs_view(&json!({"messageId": "m", "body": body}));
        assert!(filter.admits(&record(r#"{"kind": "a"}"#)));
        assert!(filter.admits(&record(r#"{"kind": "bee"}"#)));
        assert!(!filter.admits(&record(r#"{"kind": "c"}"#)));
        assert!(!filter.admits(&record("plain text")));
    }

    #[test]
    fn no_criteria_admits_everything_and_bad_ones_name_the_event() {
        let none = RecordFilter::from_properties("Q", &json!({})).unwrap();
        assert!(!none.is_set());
        assert!(none.admits(&json!({"anything": 1})));
        let bad = json!({"FilterCriteria": {"Filters": [{"Pattern": "{not json"}]}});
        let error = RecordFilter::from_properties("OutboxStream", &bad).unwrap_err();
        assert!(
            format!("{error:#}").contains("OutboxStream: FilterCriteria.Filters[0]"),
            "{error:#}"
        );
        let six = json!({"FilterCriteria": {"Filters": (0..6).map(|_| json!({"Pattern": "{}"})).collect::<Vec<_>>()}});
        assert!(RecordFilter::from_properties("Q", &six).is_err());
    }
}
