//! EventBridge events delivered to Lambda directly (a rule whose target is the function).

use aws_lambda_events::eventbridge::EventBridgeEvent;

use super::{refuse_nested, DecodeOptions, EVENTBRIDGE_EVENT};
use crate::events::record::{EventRecord, Source};
use crate::events::Carrier;

/// The record of an EventBridge event: id is the event id (empty if the event has none;
/// EventBridge invokes with one event, so there is no batch to report it in), body is the
/// `detail`, already parsed by the event's own deserialization.
pub(super) fn record_from_eventbridge(
    event: &EventBridgeEvent,
    options: &DecodeOptions,
) -> EventRecord {
    let id = event.id.clone().unwrap_or_default();
    let detail = event.detail.to_string();
    let json = Ok(event.detail.clone());
    match options
        .check_size(&detail, Some(Carrier::EventBridge))
        .and_then(|()| refuse_nested(&json, EVENTBRIDGE_EVENT))
    {
        Ok(()) => EventRecord::parsed(id, Source::EventBridge, detail, json),
        Err(reason) => EventRecord::failed(id, Source::EventBridge, reason),
    }
}
