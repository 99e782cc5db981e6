//! SendMessageBatch entries, the shape an application's sample files use for messages
//! (`aws sqs send-message-batch --entries file://messages.json`): a JSON array of entries,
//! or the request itself (`{"QueueUrl": .., "Entries": [..]}`, as `--cli-input-json` takes
//! it). PublishBatch's entries (`Message` for `MessageBody`, `Subject`, the request's
//! `PublishBatchRequestEntries`) read the same way. `send --batch` sends them to a queue or
//! a topic; `generate-event sqs --batch` turns them into records.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{bail, Context, Result};
use base64::Engine as _;
use serde::Deserialize;
use serde_json::Value;

/// One entry of a SendMessageBatch request.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "PascalCase")]
pub struct BatchEntry {
    /// The entry's id within the batch (what a failure names).
    pub id: String,
    /// The message body (PublishBatch's `Message`).
    #[serde(alias = "Message")]
    pub message_body: String,
    /// The subject of a topic's notification (PublishBatch's).
    #[serde(default)]
    pub subject: Option<String>,
    /// How long the message stays invisible after it is sent.
    #[serde(default)]
    pub delay_seconds: Option<i32>,
    /// Its message attributes, by name.
    #[serde(default)]
    pub message_attributes: BTreeMap<String, AttributeValue>,
    /// The message group (FIFO queues).
    #[serde(default)]
    pub message_group_id: Option<String>,
    /// The deduplication id (FIFO queues without content-based deduplication).
    #[serde(default)]
    pub message_deduplication_id: Option<String>,
}

/// A message attribute's value, as SendMessageBatch takes it.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "PascalCase")]
pub struct AttributeValue {
    /// `String`, `Number` or `Binary` (with an optional `.label`).
    pub data_type: String,
    /// The value of a `String` or `Number` attribute.
    #[serde(default)]
    pub string_value: Option<String>,
    /// The value of a `Binary` attribute, base64-encoded.
    #[serde(default)]
    pub binary_value: Option<String>,
}

/// SQS's and SNS's limit on the entries of one SendMessageBatch or PublishBatch request.
pub const MAX_PER_REQUEST: usize = 10;

/// The entries in the file at `path`.
pub fn read(path: &Path) -> Result<Vec<BatchEntry>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    parse(&text).with_context(|| format!("{} holds no SendMessageBatch entries", path.display()))
}

/// The entries in `text`: an array of entries, or an object with `Entries`.
pub fn parse(text: &str) -> Result<Vec<BatchEntry>> {
    let value: Value = serde_json::from_str(text).context("not JSON")?;
    let entries = match value {
        Value::Array(_) => value,
        Value::Object(mut request) => request
            .remove("Entries")
            .or_else(|| request.remove("PublishBatchRequestEntries"))
            .context(
                "expected an array of entries, or an object with Entries (SendMessageBatch's \
                 request) or PublishBatchRequestEntries (PublishBatch's)",
            )?,
        _ => bail!("expected an array of entries ({{\"Id\": .., \"MessageBody\": ..}})"),
    };
    let entries: Vec<BatchEntry> = serde_path_to_error::deserialize(entries)
        .map_err(|error| anyhow::anyhow!("at {}: {}", error.path(), error.inner()))?;
    if entries.is_empty() {
        bail!("no entries");
    }
    Ok(entries)
}

impl AttributeValue {
    /// As the SDK sends it.
    pub fn to_sdk(&self) -> Result<aws_sdk_sqs::types::MessageAttributeValue> {
        let mut value =
            aws_sdk_sqs::types::MessageAttributeValue::builder().data_type(&self.data_type);
        if let Some(text) = &self.string_value {
            value = value.string_value(text);
        }
        if let Some(encoded) = &self.binary_value {
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(encoded)
                .context("BinaryValue is not base64")?;
            value = value.binary_value(aws_sdk_sqs::primitives::Blob::new(bytes));
        }
        value.build().context("an attribute without DataType")
    }
}

impl AttributeValue {
    /// As the SNS SDK sends it.
    pub fn to_sns(&self) -> Result<aws_sdk_sns::types::MessageAttributeValue> {
        let mut value =
            aws_sdk_sns::types::MessageAttributeValue::builder().data_type(&self.data_type);
        if let Some(text) = &self.string_value {
            value = value.string_value(text);
        }
        if let Some(encoded) = &self.binary_value {
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(encoded)
                .context("BinaryValue is not base64")?;
            value = value.binary_value(aws_sdk_sns::primitives::Blob::new(bytes));
        }
        value.build().context("an attribute without DataType")
    }
}

impl BatchEntry {
    /// As the SNS SDK publishes it (PublishBatch). A delay is SQS's alone: refused, rather
    /// than the message sent sooner than the file says.
    pub fn to_sns(&self) -> Result<aws_sdk_sns::types::PublishBatchRequestEntry> {
        if self.delay_seconds.is_some() {
            bail!(
                "entry {}: DelaySeconds is a queue's; a topic publishes at once",
                self.id
            );
        }
        let mut entry = aws_sdk_sns::types::PublishBatchRequestEntry::builder()
            .id(&self.id)
            .message(&self.message_body)
            .set_subject(self.subject.clone())
            .set_message_group_id(self.message_group_id.clone())
            .set_message_deduplication_id(self.message_deduplication_id.clone());
        for (name, value) in &self.message_attributes {
            let value = value
                .to_sns()
                .with_context(|| format!("entry {}: attribute {name}", self.id))?;
            entry = entry.message_attributes(name, value);
        }
        entry.build().with_context(|| format!("entry {}", self.id))
    }

    /// As the SDK sends it.
    pub fn to_sdk(&self) -> Result<aws_sdk_sqs::types::SendMessageBatchRequestEntry> {
        let mut entry = aws_sdk_sqs::types::SendMessageBatchRequestEntry::builder()
            .id(&self.id)
            .message_body(&self.message_body)
            .set_delay_seconds(self.delay_seconds)
            .set_message_group_id(self.message_group_id.clone())
            .set_message_deduplication_id(self.message_deduplication_id.clone());
        for (name, value) in &self.message_attributes {
            let value = value
                .to_sdk()
                .with_context(|| format!("entry {}: attribute {name}", self.id))?;
            entry = entry.message_attributes(name, value);
        }
        entry.build().with_context(|| format!("entry {}", self.id))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn entries_are_read_as_an_array_or_as_the_request() {
        let array = parse(
            r#"[{"Id": "1", "MessageBody": "a",
                 "MessageAttributes": {"kind": {"DataType": "String", "StringValue": "x"}}},
                {"Id": "2", "MessageBody": "b", "DelaySeconds": 3}]"#,
        )
        .unwrap();
        assert_eq!(array.len(), 2);
        assert_eq!(
            array[0].message_attributes["kind"].string_value.as_deref(),
            Some("x")
        );
        assert_eq!(array[1].delay_seconds, Some(3));
        let sdk = array[0].to_sdk().unwrap();
        assert_eq!(sdk.message_body(), "a");
        assert_eq!(
            sdk.message_attributes().unwrap()["kind"].string_value(),
            Some("x")
        );

        let request =
            parse(r#"{"QueueUrl": "u", "Entries": [{"Id": "1", "MessageBody": "a"}]}"#).unwrap();
        assert_eq!(request[0].id, "1");

        let error = format!("{:#}", parse(r#"[{"Id": "1"}]"#).unwrap_err());
        assert!(error.contains("MessageBody"), "{error}");
        assert!(parse("[]").is_err());

        let published = parse(
            r#"{"TopicArn": "t", "PublishBatchRequestEntries": [
                {"Id": "1", "Message": "m", "Subject": "s"}]}"#,
        )
        .unwrap();
        let sns = published[0].to_sns().unwrap();
        assert_eq!(sns.message(), "m");
        assert_eq!(sns.subject(), Some("s"));
        let delayed = format!("{:#}", array[1].to_sns().unwrap_err());
        assert!(delayed.contains("DelaySeconds"), "{delayed}");
        assert!(parse(r#"{"Messages": []}"#).is_err());
    }
}
