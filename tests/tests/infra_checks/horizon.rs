//! Over what horizon exactly-once holds: each function's idempotency records must outlive
//! the last moment a copy of an event can still reach it by the paths infra/template.yaml
//! allows. A path is every retry window on the way (an EventBridge target's, SQS's
//! redeliveries, Lambda's asynchronous retries), plus the longest retention of a dead-letter
//! queue on it (a `dlq redrive` from there at the last moment), plus the function's own
//! retry window again for the redriven copy. RELIABILITY.md ("Over what horizon exactly-once
//! holds, and why") explains each path and what this model leaves out.

use std::collections::BTreeSet;

use std::time::Duration;

use eventkit::redelivery::RecordBackoff;
use serde_json::Value;

use crate::support::{idempotency_config, record_backoff, resources, target, template};

/// What AWS applies where the template says nothing.
const QUEUE_RETENTION_DEFAULT: u64 = 4 * 24 * 3600;
const VISIBILITY_TIMEOUT_DEFAULT: u64 = 30;
const RULE_EVENT_AGE_DEFAULT: u64 = 24 * 3600;
const ASYNC_EVENT_AGE_DEFAULT: u64 = 6 * 3600;
/// A DynamoDB stream keeps its records 24 hours, whatever the template says.
const STREAM_RETENTION: u64 = 24 * 3600;

/// One way a copy of an event can reach a function late.
#[derive(Clone, Debug)]
struct Path {
    /// The way, for people.
    via: String,
    /// How long after the first delivery the last copy can arrive by it.
    seconds: u64,
}

/// How long each function keeps its idempotency records (seconds), as its code configures
/// them; `None` for a function that keeps none.
fn record_retention(binary: &str) -> Option<u64> {
    Some(idempotency_config(binary)?.record_ttl().as_secs())
}

fn resource(id: &str) -> &'static Value {
    let found = &template()["Resources"][id];
    assert!(found.is_object(), "the template has no {id}");
    found
}

/// How long a queue keeps a message (a DLQ: how late a redrive can still take it back).
fn retention(queue: &str) -> u64 {
    resource(queue)["Properties"]["MessageRetentionPeriod"]
        .as_u64()
        .unwrap_or(QUEUE_RETENTION_DEFAULT)
}

/// How long SQS redelivers a message of `queue` before its DLQ takes it: each receive waits
/// out the visibility timeout, or the consumer's per-record `backoff` (up to its cap) when
/// that is longer. Without a DLQ, until the message expires.
fn redeliveries(queue: &str, backoff: RecordBackoff) -> u64 {
    let properties = &resource(queue)["Properties"];
    let visibility = properties["VisibilityTimeout"]
        .as_u64()
        .unwrap_or(VISIBILITY_TIMEOUT_DEFAULT);
    let wait = backoff
        .longest_wait(Duration::from_secs(visibility))
        .as_secs();
    match properties["RedrivePolicy"]["maxReceiveCount"].as_u64() {
        Some(receives) => wait * receives,
        None => retention(queue),
    }
}

/// The longest retention of the dead-letter queues named (0: none).
fn longest_retention<'a>(queues: impl IntoIterator<Item = Option<&'a str>>) -> u64 {
    queues
        .into_iter()
        .flatten()
        .map(retention)
        .max()
        .unwrap_or(0)
}

/// What delivers into `queue`: (who, its retry window, its DLQ's retention).
fn feeds(queue: &str) -> Vec<(String, u64, u64)> {
    let mut feeds = Vec::new();
    for (id, rule) in resources("AWS::Events::Rule") {
        for rule_target in rule["Properties"]["Targets"]
            .as_array()
            .into_iter()
            .flatten()
        {
            if target(&rule_target["Arn"]) == Some(queue) {
                let age = rule_target["RetryPolicy"]["MaximumEventAgeInSeconds"]
                    .as_u64()
                    .unwrap_or(RULE_EVENT_AGE_DEFAULT);
                let dlq = longest_retention([target(&rule_target["DeadLetterConfig"]["Arn"])]);
                feeds.push((format!("rule {id}"), age, dlq));
            }
        }
    }
    for (id, subscription) in resources("AWS::SNS::Subscription") {
        let properties = &subscription["Properties"];
        if target(&properties["Endpoint"]) == Some(queue) {
            let dlq =
                longest_retention([target(&properties["RedrivePolicy"]["deadLetterTargetArn"])]);
            feeds.push((format!("subscription {id}"), 0, dlq));
        }
    }
    if feeds.is_empty() {
        feeds.push(("sent to it directly".into(), 0, 0));
    }
    feeds
}

/// A function's asynchronous retry window and its own dead-letter queues.
fn asynchronous(function: &'static Value) -> (u64, Vec<Option<&'static str>>) {
    let properties = &function["Properties"];
    let config = &properties["EventInvokeConfig"];
    let age = config["MaximumEventAgeInSeconds"]
        .as_u64()
        .unwrap_or(ASYNC_EVENT_AGE_DEFAULT);
    let dlqs = vec![
        target(&properties["DeadLetterQueue"]["TargetArn"]),
        target(&config["DestinationConfig"]["OnFailure"]["Destination"]),
    ];
    (age, dlqs)
}

/// Every path by which a copy of an event reaches `function` late; `backoff` is how long its
/// code holds back a failed SQS record.
fn paths(function_id: &str, function: &'static Value, backoff: RecordBackoff) -> Vec<Path> {
    let mut paths = Vec::new();
    let events = function["Properties"]["Events"]
        .as_object()
        .into_iter()
        .flatten();
    for (name, event) in events {
        let properties = &event["Properties"];
        match event["Type"].as_str().unwrap_or("") {
            "SQS" => {
                let queue = target(&properties["Queue"]).expect("the queue is the template's");
                let again = redeliveries(queue, backoff);
                let own = &resource(queue)["Properties"]["RedrivePolicy"]["deadLetterTargetArn"];
                let own = longest_retention([target(own)]);
                for (feed, age, dlq) in feeds(queue) {
                    let kept = dlq.max(own);
                    paths.push(Path {
                        via: format!(
                            "{name}: {feed} retries {age} s, {queue} redelivers {again} s, a DLQ \
                             keeps it {kept} s, redriven {queue} redelivers {again} s"
                        ),
                        seconds: age + again + kept + again,
                    });
                }
            }
            "EventBridgeRule" | "SNS" => {
                let rule_age = match event["Type"].as_str() {
                    Some("EventBridgeRule") => properties["RetryPolicy"]
                        ["MaximumEventAgeInSeconds"]
                        .as_u64()
                        .unwrap_or(RULE_EVENT_AGE_DEFAULT),
                    _ => 0,
                };
                let (again, mut dlqs) = asynchronous(function);
                dlqs.push(target(&properties["DeadLetterConfig"]["Arn"]));
                dlqs.push(target(&properties["RedrivePolicy"]["deadLetterTargetArn"]));
                let kept = longest_retention(dlqs);
                paths.push(Path {
                    via: format!(
                        "{name}: the source retries {rule_age} s, Lambda retries {again} s, a \
                         DLQ keeps it {kept} s, redriven Lambda retries {again} s"
                    ),
                    seconds: rule_age + again + kept + again,
                });
            }
            // The on-failure destination gets where the records were, not the records: what
            // comes again comes from the stream, within its retention.
            "DynamoDB" => paths.push(Path {
                via: format!("{name}: the stream keeps its records {STREAM_RETENTION} s"),
                seconds: STREAM_RETENTION,
            }),
            // A schedule's firing carries no event: nothing of it comes back later.
            "Schedule" => paths.push(Path {
                via: format!("{name}: a schedule's firing, nothing that comes again"),
                seconds: 0,
            }),
            other => panic!("{function_id}: no horizon rule here for {other} events; add one"),
        }
    }
    paths
}

/// Each function's longest path, its record retention, and whether that falls short.
struct Horizon {
    function: &'static str,
    longest: Path,
    retention: Option<u64>,
}

impl Horizon {
    fn falls_short(&self) -> bool {
        self.retention
            .is_some_and(|kept| kept < self.longest.seconds)
    }

    fn describe(&self) -> String {
        let days = |seconds: u64| format!("{seconds} s ({:.2} d)", seconds as f64 / 86_400.0);
        let kept = self.retention.map_or_else(
            || "keeps no idempotency records".into(),
            |s| format!("records kept {}", days(s)),
        );
        format!(
            "{}: horizon {} by {}; {kept}",
            self.function,
            days(self.longest.seconds),
            self.longest.via
        )
    }
}

/// Every function's horizon, its retention as `retention_of` (binary name) says.
fn horizons(retention_of: impl Fn(&str) -> Option<u64>) -> Vec<Horizon> {
    resources("AWS::Serverless::Function")
        .into_iter()
        .map(|(id, function)| {
            let binary = function["Metadata"]["BuildProperties"]["Binary"]
                .as_str()
                .unwrap_or_else(|| panic!("{id}: no BuildProperties.Binary"));
            let longest = paths(id, function, record_backoff(binary))
                .into_iter()
                .max_by_key(|path| path.seconds)
                .unwrap_or_else(|| panic!("{id} has no event source"));
            Horizon {
                function: id,
                longest,
                retention: retention_of(binary),
            }
        })
        .collect()
}

#[test]
fn every_function_keeps_its_records_past_its_longest_redelivery_path() {
    let horizons = horizons(record_retention);
    let report: Vec<String> = horizons.iter().map(Horizon::describe).collect();
    println!("{}", report.join("\n"));
    // The model read the dead-letter queues: a function with records can be redriven to.
    let longest_dlq = longest_retention(
        resources("AWS::SQS::Queue")
            .into_iter()
            .map(|(id, _)| Some(id)),
    );
    for horizon in horizons.iter().filter(|h| h.retention.is_some()) {
        assert!(
            horizon.longest.seconds > longest_dlq,
            "{}: no path through a dead-letter queue?\n{}",
            horizon.function,
            report.join("\n")
        );
    }
    let short: Vec<&str> = horizons
        .iter()
        .filter(|h| h.falls_short())
        .map(|h| h.function)
        .collect();
    assert!(
        short.is_empty(),
        "{} keep their idempotency records for less than a copy of an event can still \
         come back:\n{}",
        short.join(", "),
        report.join("\n")
    );
}

#[test]
fn an_hour_of_retention_falls_short_for_every_function_with_records() {
    let short: BTreeSet<&str> = horizons(|binary| record_retention(binary).map(|_| 3600))
        .into_iter()
        .filter(Horizon::falls_short)
        .map(|h| h.function)
        .collect();
    let with_records = [
        "AnalyticsFunction",
        "InventoryFunction",
        "NotificationsFunction",
        "PaymentsFunction",
    ];
    assert_eq!(short, BTreeSet::from(with_records));
}

/// The fake payment provider's ledger (functions/payments/src/provider/ledger.rs) keeps every
/// idempotency key for good, longer than any horizon (a real provider keeps them about a
/// day: the ledger's docs say what happens then).
#[test]
fn the_payment_providers_ledger_never_forgets_a_key() {
    let ledger = &resource("PaymentsLedgerTable")["Properties"];
    assert!(
        ledger["TimeToLiveSpecification"].is_null(),
        "PaymentsLedgerTable expires its keys: {}",
        ledger["TimeToLiveSpecification"]
    );
}
