//! SNS notifications delivered to Lambda directly.

use aws_lambda_events::sns::{SnsEvent, SnsRecord};

use super::{refuse_nested, sns_attributes, DecodeOptions, SNS_MESSAGE};
use crate::events::record::{EventRecord, Source};

/// The records of an SNS event (in practice always one), with default options.
pub fn records_from_sns(event: &SnsEvent) -> Vec<EventRecord> {
    records_from_sns_with(event, &DecodeOptions::default())
}

/// The records of an SNS event: id is the SNS MessageId, body the message, attributes the
/// SNS message attributes.
pub fn records_from_sns_with(event: &SnsEvent, options: &DecodeOptions) -> Vec<EventRecord> {
    event
        .records
        .iter()
        .map(|record| record_from_sns(record, options))
        .collect()
}

fn record_from_sns(record: &SnsRecord, options: &DecodeOptions) -> EventRecord {
    let notification = &record.sns;
    let id = notification.message_id.clone();
    let body = options
        .check_size(&notification.message)
        .and_then(|()| refuse_nested(&notification.message, SNS_MESSAGE))
        .map(|()| notification.message.clone());
    EventRecord::with_body(id, Source::Sns, body)
        .with_attributes(sns_attributes(&notification.message_attributes))
}
