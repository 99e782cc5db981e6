//! No healthy message dead-lettered by an outage of up to 3 hours (issue 30; DynamoDB in
//! us-east-1 refused new connections for nearly that long on 19-20 October 2025): for each
//! SQS consumer, the time its queue's `maxReceiveCount` receives take at the least, with the
//! function's per-record backoff drawing its unluckiest waits, must reach past 3 hours. A
//! record that fails on every receive of the outage then meets the recovered dependency on
//! its last receive at the latest. RELIABILITY.md, "Outlasting outages: per-record backoff".

use std::time::Duration;

use eventkit::redelivery::RecordBackoff;
use serde_json::Value;

use crate::support::{record_backoff, resources, target, template};

const OUTAGE: Duration = Duration::from_secs(3 * 3600);
/// What AWS applies where the template says nothing.
const VISIBILITY_TIMEOUT_DEFAULT: u64 = 30;
const QUEUE_RETENTION_DEFAULT: u64 = 4 * 24 * 3600;

/// One SQS event source: its function, queue, receives, visibility and retention.
struct Consumer {
    function: &'static str,
    binary: &'static str,
    queue: &'static str,
    receives: u32,
    visibility: Duration,
    retention: Duration,
}

fn consumers() -> Vec<Consumer> {
    let mut found = Vec::new();
    for (id, function) in resources("AWS::Serverless::Function") {
        let binary = function["Metadata"]["BuildProperties"]["Binary"]
            .as_str()
            .unwrap_or_else(|| panic!("{id}: no BuildProperties.Binary"));
        let events = function["Properties"]["Events"]
            .as_object()
            .into_iter()
            .flatten();
        for (_, event) in events.filter(|(_, event)| event["Type"] == "SQS") {
            let queue = target(&event["Properties"]["Queue"]).expect("the queue is the template's");
            let properties: &Value = &template()["Resources"][queue]["Properties"];
            let receives = properties["RedrivePolicy"]["maxReceiveCount"]
                .as_u64()
                .unwrap_or_else(|| panic!("{queue}: no RedrivePolicy.maxReceiveCount"));
            let seconds = |name, default| properties[name].as_u64().unwrap_or(default);
            found.push(Consumer {
                function: id,
                binary,
                queue,
                receives: u32::try_from(receives).expect("a receive count"),
                visibility: Duration::from_secs(seconds(
                    "VisibilityTimeout",
                    VISIBILITY_TIMEOUT_DEFAULT,
                )),
                retention: Duration::from_secs(seconds(
                    "MessageRetentionPeriod",
                    QUEUE_RETENTION_DEFAULT,
                )),
            });
        }
    }
    found
}

/// The shortest time before each consumer's last receive with `backoff_of` its backoff.
fn guaranteed(backoff_of: impl Fn(&str) -> RecordBackoff) -> Vec<(String, Duration)> {
    consumers()
        .iter()
        .map(|c| {
            let time = backoff_of(c.binary).guaranteed_before(c.receives, c.visibility);
            (
                format!("{} on {} ({} receives)", c.function, c.queue, c.receives),
                time,
            )
        })
        .collect()
}

#[test]
fn every_sqs_consumer_outlasts_a_three_hour_outage() {
    let report = guaranteed(record_backoff);
    println!("{report:#?}");
    assert_eq!(
        report.len(),
        5,
        "InventoryQueue, CompensationQueue, PaymentsQueue, NotificationsQueue, AnalyticsQueue: {report:#?}"
    );
    let short: Vec<_> = report.iter().filter(|(_, time)| *time < OUTAGE).collect();
    assert!(
        short.is_empty(),
        "dead-lettered before a 3-hour outage ends, with the unluckiest jitter: {short:#?}"
    );
}

#[test]
fn without_backoff_the_same_queues_dead_letter_within_minutes() {
    // The check above can fail: the template's receives alone span 15 minutes.
    for (consumer, time) in guaranteed(|_| RecordBackoff::off()) {
        assert!(time < Duration::from_secs(3600), "{consumer}: {time:?}");
    }
}

#[test]
fn a_backed_off_message_is_dead_lettered_before_its_queue_expires_it() {
    // The longest a record can stay in its queue before the DLQ takes it: every receive
    // waiting the longest wait. Past the queue's retention SQS would delete it, unseen.
    for c in consumers() {
        let longest = record_backoff(c.binary).longest_wait(c.visibility) * c.receives;
        assert!(
            longest < c.retention,
            "{} on {}: up to {longest:?} in the queue, kept {:?}",
            c.function,
            c.queue,
            c.retention
        );
    }
}
