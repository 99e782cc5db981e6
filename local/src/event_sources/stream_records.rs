//! DynamoDB stream records in Lambda's wire format: the `Records` of a
//! `aws_lambda_events::dynamodb::Event` built from what the Streams API returned, and the
//! invocation record (`DDBStreamBatchInfo`) an OnFailure destination receives for records
//! given up on.

use std::collections::HashMap;

use anyhow::{Context, Result};
use aws_lambda_events::dynamodb::Event as DynamoDbEvent;
use aws_sdk_dynamodbstreams::types::{AttributeValue, Record};
use base64::Engine as _;
use serde_json::{json, Map, Value};

use crate::cloud::REGION;

/// The sequence number of a record (every record the Streams API returns has one).
pub fn sequence_number(record: &Record) -> &str {
    record
        .dynamodb()
        .and_then(|change| change.sequence_number())
        .unwrap_or_default()
}

/// When the change was written, in seconds since the epoch.
pub fn created_at(record: &Record) -> f64 {
    record
        .dynamodb()
        .and_then(|change| change.approximate_creation_date_time())
        .map_or(
            0.0,
            aws_sdk_dynamodbstreams::primitives::DateTime::as_secs_f64,
        )
}

/// The event Lambda hands a function for `records` of the stream `stream_arn`.
pub fn dynamodb_event(stream_arn: &str, records: &[Record]) -> Result<Value> {
    let records: Vec<Value> = records
        .iter()
        .map(|r| event_record(stream_arn, r))
        .collect();
    let event = json!({ "Records": records });
    serde_json::from_value::<DynamoDbEvent>(event.clone())
        .context("building the DynamoDB stream event")?;
    Ok(event)
}

/// One change as a `DynamoDBEvent` record.
pub fn event_record(stream_arn: &str, record: &Record) -> Value {
    let mut change = Map::new();
    if let Some(stream) = record.dynamodb() {
        change.insert(
            "ApproximateCreationDateTime".into(),
            json!(created_at(record)),
        );
        let images = [
            ("Keys", stream.keys()),
            ("NewImage", stream.new_image()),
            ("OldImage", stream.old_image()),
        ];
        for (name, image) in images {
            if let Some(image) = image {
                change.insert(name.into(), item(image));
            }
        }
        change.insert("SequenceNumber".into(), json!(stream.sequence_number()));
        change.insert("SizeBytes".into(), json!(stream.size_bytes()));
        if let Some(view) = stream.stream_view_type() {
            change.insert("StreamViewType".into(), json!(view.as_str()));
        }
    }
    let mut event = json!({
        "eventID": record.event_id(),
        "eventName": record.event_name().map(|name| name.as_str()),
        "eventVersion": record.event_version().unwrap_or("1.1"),
        "eventSource": "aws:dynamodb",
        "awsRegion": REGION,
        "dynamodb": change,
        "eventSourceARN": stream_arn,
    });
    // TTL deletions carry the service as their author.
    if let Some(identity) = record.user_identity() {
        event["userIdentity"] = json!({
            "type": identity.r#type(),
            "principalId": identity.principal_id(),
        });
    }
    event
}

fn item(image: &HashMap<String, AttributeValue>) -> Value {
    Value::Object(
        image
            .iter()
            .map(|(name, value)| (name.clone(), attribute(value)))
            .collect(),
    )
}

/// An attribute value in DynamoDB's JSON (`{"S": "..."}`), as the stream event carries it.
fn attribute(value: &AttributeValue) -> Value {
    let base64 = |blob: &aws_sdk_dynamodbstreams::primitives::Blob| {
        base64::engine::general_purpose::STANDARD.encode(blob.as_ref())
    };
    match value {
        AttributeValue::S(text) => json!({ "S": text }),
        AttributeValue::N(number) => json!({ "N": number }),
        AttributeValue::B(blob) => json!({ "B": base64(blob) }),
        AttributeValue::Ss(texts) => json!({ "SS": texts }),
        AttributeValue::Ns(numbers) => json!({ "NS": numbers }),
        AttributeValue::Bs(blobs) => json!({ "BS": blobs.iter().map(base64).collect::<Vec<_>>() }),
        AttributeValue::M(map) => json!({ "M": item(map) }),
        AttributeValue::L(list) => json!({ "L": list.iter().map(attribute).collect::<Vec<_>>() }),
        AttributeValue::Null(is_null) => json!({ "NULL": is_null }),
        AttributeValue::Bool(flag) => json!({ "BOOL": flag }),
        // A type newer than this SDK: its name is all that can be said.
        _ => json!({ "NULL": true }),
    }
}

/// What the given-up batch was, for the invocation record.
pub struct GivenUp<'a> {
    /// The records given up on, in stream order.
    pub records: &'a [Record],
    /// The shard they came from.
    pub shard_id: &'a str,
    /// The stream.
    pub stream_arn: &'a str,
    /// The function's ARN.
    pub function_arn: &'a str,
    /// Invocations of these records.
    pub invocations: u32,
    /// Whether the last invocation failed as a whole (rather than reporting item failures).
    pub function_error: bool,
}

/// Lambda's invocation record for a stream's OnFailure destination: where the records are in
/// the stream, not the records.
pub fn batch_info_record(given_up: &GivenUp<'_>, request_id: &str) -> Value {
    let arrival = |record: Option<&Record>| {
        record
            .and_then(|record| record.dynamodb())
            .and_then(|change| change.approximate_creation_date_time())
            .and_then(|at| {
                chrono::DateTime::from_timestamp(at.secs(), at.subsec_nanos())
                    .map(|at| at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
            })
    };
    let mut response = json!({"statusCode": 200, "executedVersion": "$LATEST"});
    if given_up.function_error {
        response["functionError"] = json!("Unhandled");
    }
    json!({
        "requestContext": {
            "requestId": request_id,
            "functionArn": given_up.function_arn,
            "condition": "RetryAttemptsExhausted",
            "approximateInvokeCount": given_up.invocations,
        },
        "responseContext": response,
        "version": "1.0",
        "timestamp": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        "DDBStreamBatchInfo": {
            "shardId": given_up.shard_id,
            "startSequenceNumber": given_up.records.first().map(sequence_number),
            "endSequenceNumber": given_up.records.last().map(sequence_number),
            "approximateArrivalOfFirstRecord": arrival(given_up.records.first()),
            "approximateArrivalOfLastRecord": arrival(given_up.records.last()),
            "batchSize": given_up.records.len(),
            "streamArn": given_up.stream_arn,
        },
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use aws_sdk_dynamodbstreams::primitives::DateTime;
    use aws_sdk_dynamodbstreams::types::{OperationType, StreamRecord, StreamViewType};

    use super::*;

    fn record(sequence: &str) -> Record {
        Record::builder()
            .event_id("e-1")
            .event_name(OperationType::Insert)
            .event_version("1.1")
            .dynamodb(
                StreamRecord::builder()
                    .approximate_creation_date_time(DateTime::from_secs(1_700_000_000))
                    .keys("pk", AttributeValue::S("a".into()))
                    .new_image("pk", AttributeValue::S("a".into()))
                    .new_image("n", AttributeValue::N("7".into()))
                    .new_image("tags", AttributeValue::L(vec![AttributeValue::Bool(true)]))
                    .sequence_number(sequence)
                    .size_bytes(12)
                    .stream_view_type(StreamViewType::NewImage)
                    .build(),
            )
            .build()
    }

    #[test]
    fn the_event_reads_as_lambdas_dynamodb_event() {
        let event = dynamodb_event("arn:stream", &[record("100")]).unwrap();
        let typed: DynamoDbEvent = serde_json::from_value(event.clone()).unwrap();
        let first = &typed.records[0];
        assert_eq!(first.event_name, "INSERT");
        assert_eq!(first.event_source.as_deref(), Some("aws:dynamodb"));
        assert_eq!(first.event_source_arn.as_deref(), Some("arn:stream"));
        assert_eq!(first.change.sequence_number.as_deref(), Some("100"));
        assert_eq!(
            first.change.approximate_creation_date_time.timestamp(),
            1_700_000_000
        );
        assert_eq!(
            event["Records"][0]["dynamodb"]["NewImage"]["n"],
            json!({"N": "7"})
        );
        assert_eq!(
            event["Records"][0]["dynamodb"]["NewImage"]["tags"],
            json!({"L": [{"BOOL": true}]})
        );
        assert!(event["Records"][0]["dynamodb"].get("OldImage").is_none());
    }

    #[test]
    fn the_failure_record_names_the_batch_not_its_records() {
        let records = [record("100"), record("105")];
        let given_up = GivenUp {
            records: &records,
            shard_id: "shard-1",
            stream_arn: "arn:stream",
            function_arn: "arn:function",
            invocations: 3,
            function_error: true,
        };
        let info = batch_info_record(&given_up, "r-1");
        let batch = &info["DDBStreamBatchInfo"];
        assert_eq!(batch["startSequenceNumber"], "100");
        assert_eq!(batch["endSequenceNumber"], "105");
        assert_eq!(batch["batchSize"], 2);
        assert_eq!(
            batch["approximateArrivalOfFirstRecord"],
            "2023-11-14T22:13:20.000Z"
        );
        assert_eq!(
            info["requestContext"]["condition"],
            "RetryAttemptsExhausted"
        );
        assert_eq!(info["responseContext"]["functionError"], "Unhandled");
        assert!(info.get("requestPayload").is_none());
    }
}
