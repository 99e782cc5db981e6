//! SNS notifications delivered to Lambda directly.

use aws_lambda_events::sns::{SnsEvent, SnsRecord};

use super::{parse, refuse_nested, sns_attributes, DecodeOptions, SNS_MESSAGE};
use crate::events::record::{EventRecord, Source};
use crate::events::Carrier;

/// The records of an SNS event (in practice always one): id is the SNS MessageId, body the
/// message, attributes the SNS message attributes.
pub(super) fn records_from_sns(event: &SnsEvent, options: &DecodeOptions) -> Vec<EventRecord> {
    event
        .records
        .iter()
        .map(|record| record_from_sns(record, options))
        .collect()
}

fn record_from_sns(record: &SnsRecord, options: &DecodeOptions) -> EventRecord {
    let notification = &record.sns;
    let id = notification.message_id.clone();
    let message = &notification.message;
    let record = match options.check_size(message, Some(Carrier::Sns)) {
        Err(reason) => EventRecord::failed(id, Source::Sns, reason),
        Ok(()) => {
            let json = parse(message);
            match refuse_nested(&json, SNS_MESSAGE) {
                Ok(()) => EventRecord::parsed(id, Source::Sns, message.clone(), json),
                Err(reason) => EventRecord::failed(id, Source::Sns, reason),
            }
        }
    };
    record
        .with_attributes(sns_attributes(&notification.message_attributes))
        .with_destination(super::sqs::arn_name(&notification.topic_arn))
}
