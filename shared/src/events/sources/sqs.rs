//! SQS records, and the SNS notification or EventBridge event an SQS body may carry.
//!
//! Whatever is inside, the record id is the SQS messageId: that is what a partial batch
//! response must name for SQS to redeliver the message.

use std::collections::HashMap;

use aws_lambda_events::eventbridge::EventBridgeEvent;
use aws_lambda_events::sns::SnsMessage;
use aws_lambda_events::sqs::{SqsEvent, SqsMessage};

use serde_json::Value;

use super::{
    parse, refuse_nested, sns_attributes, wrapper_of, DecodeOptions, Wrapper, EVENTBRIDGE_EVENT,
    SNS_MESSAGE,
};
use crate::events::error::DecodeReason;
use crate::events::record::{EventRecord, MessageAttribute, Source};
use crate::events::Carrier;

/// The records of an SQS event, one per message, in order.
pub(super) fn records_from_sqs(event: &SqsEvent, options: &DecodeOptions) -> Vec<EventRecord> {
    event
        .records
        .iter()
        .map(|message| record_from_sqs_message(message, options))
        .collect()
}

/// The record of one SQS message: its body unwrapped if it is an SNS notification or an
/// EventBridge event. Never fails; a bad message yields a record whose decode fails.
pub(crate) fn record_from_sqs_message(
    message: &SqsMessage,
    options: &DecodeOptions,
) -> EventRecord {
    let id = message.message_id.clone().unwrap_or_default();
    let direct = if options.raw_sns_delivery {
        Source::SnsViaSqs { raw: true }
    } else {
        Source::Sqs
    };
    let group_id = message.attributes.get("MessageGroupId").cloned();
    let receive_count = message
        .attributes
        .get("ApproximateReceiveCount")
        .and_then(|count| count.parse().ok());
    let queue = message.event_source_arn.as_deref().and_then(arn_name);
    let with_delivery = |record: EventRecord| {
        record
            .with_message_group_id(group_id.clone())
            .with_receive_count(receive_count)
            .with_destination(queue.clone())
    };

    // Lambda always sets both; without an id the failure could not be reported precisely,
    // so the record fails (an empty id in a batch response makes SQS retry the whole batch).
    if message.message_id.is_none() {
        return with_delivery(EventRecord::failed(id, direct, missing("messageId")));
    }
    let Some(body) = message.body.as_deref() else {
        return with_delivery(EventRecord::failed(id, direct, missing("body")));
    };
    if let Err(reason) = options.check_size(body, Some(Carrier::Sqs)) {
        return with_delivery(EventRecord::failed(id, direct, reason));
    }

    let json = parse(body);
    let record = match wrapper_of(&json) {
        None => EventRecord::parsed(id, direct, body.to_string(), json)
            .with_attributes(sqs_attributes(message)),
        Some(Wrapper::SnsMessage { kind }) => {
            let source = Source::SnsViaSqs { raw: false };
            match json.and_then(|json| unwrap_sns(json, &kind)) {
                Ok((inner, inner_json, attributes)) => {
                    EventRecord::parsed(id, source, inner, inner_json).with_attributes(attributes)
                }
                Err(reason) => EventRecord::failed(id, source, reason),
            }
        }
        Some(Wrapper::EventBridgeEvent) => {
            let source = Source::EventBridgeViaSqs;
            match json.and_then(unwrap_eventbridge) {
                Ok((inner, inner_json)) => EventRecord::parsed(id, source, inner, inner_json),
                Err(reason) => EventRecord::failed(id, source, reason),
            }
        }
    };
    with_delivery(record)
}

/// The resource name at the end of an ARN (a queue's, a topic's); `None` for no ARN.
pub(super) fn arn_name(arn: &str) -> Option<String> {
    let name = arn.rsplit(':').next().filter(|name| !name.is_empty())?;
    (name != arn).then(|| name.to_string())
}

fn missing(field: &str) -> DecodeReason {
    DecodeReason::MissingField {
        field: field.into(),
    }
}

/// The SNS envelope (what SQS receives without raw delivery): the message (and its JSON)
/// and the SNS message attributes, which SNS puts in the envelope rather than on the SQS
/// message.
fn unwrap_sns(json: Value, kind: &str) -> Result<Unwrapped, DecodeReason> {
    // Subscription and unsubscribe confirmations reach a queue too (cross-account
    // subscriptions); they carry no event.
    if kind != "Notification" {
        return Err(DecodeReason::wrong_envelope(format!(
            "SNS {kind} message in an SQS body, not a Notification"
        )));
    }
    let notification: SnsMessage = serde_json::from_value(json).map_err(|error| {
        DecodeReason::wrong_envelope(format!(
            "broken SNS notification in an SQS body: {}",
            DecodeReason::from_json(&error)
        ))
    })?;
    let inner = parse(&notification.message);
    refuse_nested(&inner, SNS_MESSAGE)?;
    Ok((
        notification.message,
        inner,
        sns_attributes(&notification.message_attributes),
    ))
}

/// A message taken out of its wrapper: its text, its JSON, its attributes.
type Unwrapped = (
    String,
    Result<Value, DecodeReason>,
    HashMap<String, MessageAttribute>,
);

/// An EventBridge event delivered to a queue: its `detail` is the body.
fn unwrap_eventbridge(json: Value) -> Result<(String, Result<Value, DecodeReason>), DecodeReason> {
    let event: EventBridgeEvent = serde_json::from_value(json).map_err(|error| {
        DecodeReason::wrong_envelope(format!(
            "broken EventBridge event in an SQS body: {}",
            DecodeReason::from_json(&error)
        ))
    })?;
    let detail = Ok(event.detail);
    refuse_nested(&detail, EVENTBRIDGE_EVENT)?;
    let text = detail.as_ref().map(Value::to_string).unwrap_or_default();
    Ok((text, detail))
}

fn sqs_attributes(message: &SqsMessage) -> HashMap<String, MessageAttribute> {
    message
        .message_attributes
        .iter()
        .map(|(name, attribute)| {
            let converted = MessageAttribute {
                data_type: attribute.data_type.clone().unwrap_or_default(),
                string_value: attribute.string_value.clone(),
                binary_value: attribute.binary_value.as_ref().map(|bytes| bytes.0.clone()),
            };
            (name.clone(), converted)
        })
        .collect()
}
