//! DynamoDB stream records: one record per change, its body the item's new image as plain
//! JSON (`{"id": "a", "count": 3}`, not DynamoDB's `{"S": ..}` form), so the handler's
//! `Json<T>` and the idempotency key paths read it like any other body.
//!
//! The record id is the change's `SequenceNumber`: what a stream's partial batch response
//! names (Lambda resumes the shard from the lowest one reported). The change's `eventName`
//! (`INSERT`, `MODIFY`, `REMOVE`) is the record attribute `eventName`; a change without a
//! new image (a `REMOVE`, or a stream without `NEW_IMAGE`) has the body `{}`.
//!
//! An image is not capped unless [`DecodeOptions::max_body_bytes`] is set: DynamoDB bounds
//! the item already (400 KB), and its JSON is larger than the item (every quote inside a
//! string escaped), so a messaging carrier's cap would refuse items DynamoDB took, an outbox
//! item among them, and strand its event.

use std::collections::HashMap;

use aws_lambda_events::dynamodb::{Event, EventRecord as StreamRecord};
use serde_json::Value;

use super::DecodeOptions;
use crate::events::error::DecodeReason;
use crate::events::record::{EventRecord, MessageAttribute, Source};

/// The name of the record attribute that holds the change's `eventName`.
pub const EVENT_NAME_ATTRIBUTE: &str = "eventName";

/// The records of a DynamoDB stream event, in shard order.
pub(super) fn records_from_stream(event: &Event, options: &DecodeOptions) -> Vec<EventRecord> {
    event
        .records
        .iter()
        .map(|record| record_from_stream(record, options))
        .collect()
}

fn record_from_stream(record: &StreamRecord, options: &DecodeOptions) -> EventRecord {
    let id = record.change.sequence_number.clone().unwrap_or_default();
    let attributes = HashMap::from([(
        EVENT_NAME_ATTRIBUTE.to_string(),
        MessageAttribute::string(record.event_name.clone()),
    )]);
    if id.is_empty() {
        let reason = DecodeReason::MissingField {
            field: "dynamodb.SequenceNumber".into(),
        };
        return EventRecord::failed(id, Source::DynamoDbStream, reason).with_attributes(attributes);
    }
    let image = serde_dynamo::from_item::<_, Value>(record.change.new_image.clone())
        .map_err(|error| DecodeReason::InvalidData {
            detail: format!("new image: {error}"),
        })
        .and_then(|json| {
            let body = json.to_string();
            options.check_size(&body, None)?; // No carrier: capped only when set.
            Ok((body, json))
        });
    let record = match image {
        Ok((body, json)) => EventRecord::parsed(id, Source::DynamoDbStream, body, Ok(json)),
        Err(reason) => EventRecord::failed(id, Source::DynamoDbStream, reason),
    };
    record.with_attributes(attributes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::records_from;

    #[test]
    fn a_change_becomes_a_record_of_its_new_image() {
        let event: Event = serde_json::from_value(serde_json::json!({
            "Records": [{
                "eventID": "1", "eventName": "INSERT", "eventVersion": "1.1",
                "eventSource": "aws:dynamodb", "awsRegion": "us-east-1",
                "eventSourceARN": "arn:aws:dynamodb:us-east-1:1:table/t/stream/2026",
                "dynamodb": {
                    "ApproximateCreationDateTime": 1700000000,
                    "Keys": {"id": {"S": "a"}},
                    "NewImage": {"id": {"S": "a"}, "count": {"N": "3"}, "tags": {"SS": ["x"]}},
                    "SequenceNumber": "111", "SizeBytes": 26, "StreamViewType": "NEW_IMAGE"
                }
            }, {
                "eventID": "2", "eventName": "REMOVE", "eventVersion": "1.1",
                "eventSource": "aws:dynamodb", "awsRegion": "us-east-1",
                "dynamodb": {
                    "ApproximateCreationDateTime": 1700000001,
                    "Keys": {"id": {"S": "a"}},
                    "SequenceNumber": "222", "SizeBytes": 10, "StreamViewType": "NEW_IMAGE"
                }
            }]
        }))
        .unwrap();
        let records = records_from(&event, &DecodeOptions::default());
        assert_eq!(records.len(), 2);
        assert_eq!(records[0].id(), "111");
        assert_eq!(records[0].source(), Source::DynamoDbStream);
        assert_eq!(records[0].attribute(EVENT_NAME_ATTRIBUTE), Some("INSERT"));
        assert_eq!(
            records[0].json().unwrap(),
            &serde_json::json!({"id": "a", "count": 3, "tags": ["x"]})
        );
        assert_eq!(records[1].id(), "222");
        assert_eq!(records[1].attribute(EVENT_NAME_ATTRIBUTE), Some("REMOVE"));
        assert_eq!(records[1].json().unwrap(), &serde_json::json!({}));
    }

    /// A stream event of one `INSERT` whose new image is `image` (DynamoDB JSON).
    fn insert_of(image: serde_json::Value) -> Event {
        serde_json::from_value(serde_json::json!({
            "Records": [{
                "eventID": "1", "eventName": "INSERT", "eventVersion": "1.1",
                "eventSource": "aws:dynamodb", "awsRegion": "us-east-1",
                "dynamodb": {
                    "ApproximateCreationDateTime": 1700000000,
                    "Keys": {"id": {"S": "a"}}, "NewImage": image,
                    "SequenceNumber": "111", "SizeBytes": 26, "StreamViewType": "NEW_IMAGE"
                }
            }]
        }))
        .unwrap()
    }

    /// An item DynamoDB took decodes whatever its JSON's size: a 390 KB body of JSON (an
    /// outbox item's) renders well past any messaging carrier's cap once its quotes are
    /// escaped. A cap that is set still applies.
    #[test]
    fn a_large_image_decodes_unless_a_cap_is_set() {
        let body = r#"{"sku":"SKU-1","n":1},"#.repeat(390 * 1024 / 22);
        let event = insert_of(serde_json::json!({"id": {"S": "a"}, "body": {"S": body}}));

        let records = records_from(&event, &DecodeOptions::default());

        let rendered = records[0].body().unwrap();
        assert!(rendered.len() > 400 * 1024, "{}", rendered.len());
        assert_eq!(records[0].json().unwrap()["body"], body.as_str());
        let capped = records_from(&event, &DecodeOptions::default().with_max_body_bytes(1024));
        assert!(matches!(
            capped[0].body().unwrap_err().reason,
            DecodeReason::BodyTooLarge { limit: 1024, .. }
        ));
    }
}
