//! The sweeper: publishes the committed events that the stream did not get published, however
//! long their destination was down, and measures the outbox's backlog.
//!
//! The relay publishes from the outbox table's stream, which keeps records for 24 hours and
//! whose event source mapping gives a record up after its retries: a bus outage longer than
//! those retries would leave events committed and never published (the order never charged,
//! its stock held). The sweeper, run on a schedule, reads the items still unpublished after
//! a grace period ([`DEFAULT_GRACE`], longer than the relay normally takes) from the sparse
//! [`UNPUBLISHED_INDEX`](super::UNPUBLISHED_INDEX) and publishes each through the relay's own
//! path, under its staged id. An event the relay publishes at the same moment is published
//! twice with one `eventId`, which the consumers' idempotency absorbs.
//!
//! Events that ride on idempotency records (events on completions) would go with their
//! record when its TTL expires: while a record is unpublished and its TTL is less than
//! [`TTL_MARGIN`] away, each sweep pushes it back by that margin, so a record lives as long
//! as its events wait (its key stays deduplicated that much longer, which is harmless).
//!
//! Cost: one `Query` per shard per sweep (16, each at least half a read unit) and two for
//! the backlog's count and oldest item per shard; nothing per published event beyond what
//! the relay spends.

use std::time::Duration;

use aws_sdk_dynamodb::types::{AttributeValue, Select};
use chrono::{DateTime, Utc};
use serde::Serialize;

use super::carried::Carried;
use super::item::{staged_at, unpublished_shards, UNPUBLISHED, UNPUBLISHED_INDEX};
use super::relay::Relay;

/// How long an event may stay unpublished before the sweeper publishes it: far longer than
/// the stream's delivery to the relay takes, so that it only picks up what the relay gave up
/// on (or has not reached in a backlog).
pub const DEFAULT_GRACE: Duration = Duration::from_secs(5 * 60);

/// How far ahead an unpublished record's TTL is kept: two days, far more than the interval
/// between sweeps, so that a few failed sweeps cannot let DynamoDB's TTL delete it.
pub const TTL_MARGIN: Duration = Duration::from_secs(2 * 24 * 3600);

/// Publishes outbox events left unpublished for longer than a grace period, and measures the
/// backlog (see the [outbox docs](super)).
#[derive(Clone, Debug)]
pub struct Sweeper {
    relay: Relay,
    grace: Duration,
}

/// What one sweep did.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
#[must_use]
pub struct Sweep {
    /// Events unpublished past the grace period, published now.
    pub published: usize,
    /// Events unpublished past the grace period whose publish failed (each logged with its
    /// error); the next sweep tries them again.
    pub failed: usize,
    /// The backlog once the sweep was done.
    pub backlog: Backlog,
}

/// The outbox's unpublished events.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Backlog {
    /// How many events are committed and not yet published.
    pub unpublished: u64,
    /// How long the oldest of them has waited, in seconds (0 when there is none).
    pub oldest_age_secs: u64,
}

/// Reading the outbox's index failed (the sweep stopped; nothing was lost, the next one
/// starts over).
#[derive(Debug, thiserror::Error)]
#[error("reading the outbox's unpublished events failed: {message}")]
pub struct SweepError {
    message: String,
    #[source]
    source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

impl SweepError {
    fn new(
        message: impl Into<String>,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        Self {
            message: message.into(),
            source: Some(Box::new(source)),
        }
    }
}

impl Sweeper {
    /// A sweeper that publishes through `relay` (its clients, its outbox table).
    pub fn new(relay: Relay) -> Self {
        Self {
            relay,
            grace: DEFAULT_GRACE,
        }
    }

    /// Publishes only events unpublished for longer than `grace` ([`DEFAULT_GRACE`] by
    /// default).
    pub fn with_grace(mut self, grace: Duration) -> Self {
        self.grace = grace;
        self
    }

    /// Publishes every event unpublished for longer than the grace period, then counts the
    /// backlog. A failed publish is logged and counted, and the sweep goes on.
    pub async fn sweep(&self) -> Result<Sweep, SweepError> {
        let now = Utc::now();
        let cutoff =
            now - chrono::Duration::from_std(self.grace).unwrap_or(chrono::Duration::zero());
        let mut sweep = Sweep::default();
        for shard in unpublished_shards() {
            let overdue = self.overdue(&shard, &cutoff).await?;
            for item in &overdue {
                self.keep_alive(item, now).await;
            }
            let results = self.relay.publish_and_mark(&overdue).await;
            for (item, result) in overdue.iter().zip(results) {
                for entry in &item.entries {
                    match &result {
                        Ok(()) => {
                            tracing::warn!(event_id = %entry.event_id, staged_at = entry.staged_at.as_deref().unwrap_or(""), outcome = "swept", "published an outbox event the stream had not got published");
                            sweep.published += 1;
                        }
                        Err(error) => {
                            tracing::error!(event_id = %entry.event_id, outcome = "sweep_failed", error = %error, "publishing an overdue outbox event failed; the next sweep tries again");
                            sweep.failed += 1;
                        }
                    }
                }
            }
        }
        sweep.backlog = self.backlog().await?;
        Ok(sweep)
    }

    /// The outbox's backlog: how many events are unpublished, and the oldest one's age.
    pub async fn backlog(&self) -> Result<Backlog, SweepError> {
        let now = Utc::now();
        let mut backlog = Backlog::default();
        let mut oldest: Option<DateTime<Utc>> = None;
        for shard in unpublished_shards() {
            let mut pages = self
                .query(&shard, None)
                .select(Select::Count)
                .into_paginator()
                .send();
            let mut count = 0u64;
            while let Some(page) = pages.next().await {
                let page = page
                    .map_err(|error| SweepError::new("counting the unpublished events", error))?;
                count += u64::try_from(page.count()).unwrap_or(0);
            }
            backlog.unpublished += count;
            if count == 0 {
                continue;
            }
            let first = self
                .query(&shard, None)
                .scan_index_forward(true)
                .limit(1)
                .send()
                .await
                .map_err(|error| SweepError::new("reading the oldest unpublished event", error))?;
            let staged = first
                .items()
                .first()
                .and_then(|item| item.get("stagedAt"))
                .and_then(|value| value.as_s().ok())
                .and_then(|text| DateTime::parse_from_rfc3339(text).ok())
                .map(|time| time.with_timezone(&Utc));
            oldest = match (oldest, staged) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
        }
        backlog.oldest_age_secs = oldest
            .map(|time| (now - time).num_seconds().max(0).unsigned_abs())
            .unwrap_or(0);
        Ok(backlog)
    }

    /// Pushes back the TTL of an unpublished record whose TTL is less than [`TTL_MARGIN`]
    /// away (an outbox item has none until published); a failure is logged, and the next
    /// sweep tries again.
    async fn keep_alive(&self, item: &Carried, now: DateTime<Utc>) {
        let Some((attribute, at)) = &item.mark.ttl else {
            return;
        };
        let now = now.timestamp().max(0).unsigned_abs();
        let margin = TTL_MARGIN.as_secs();
        if *at >= now + margin / 2 {
            return;
        }
        let (client, table) = self.relay.outbox();
        let kept = client
            .update_item()
            .table_name(table)
            .set_key(Some(item.mark.key.clone()))
            .update_expression("SET #ttl = :ttl")
            .condition_expression("attribute_exists(#unpublished)")
            .expression_attribute_names("#ttl", attribute)
            .expression_attribute_names("#unpublished", UNPUBLISHED)
            .expression_attribute_values(":ttl", AttributeValue::N((now + margin).to_string()))
            .send()
            .await;
        match kept {
            Ok(_) => {
                tracing::warn!(record = %item.name(), ttl = now + margin, outcome = "ttl_pushed_back", "an unpublished record's TTL was near; pushed back while its events wait")
            }
            Err(error)
                if error
                    .as_service_error()
                    .is_some_and(|e| e.is_conditional_check_failed_exception()) => {}
            Err(error) => {
                tracing::error!(record = %item.name(), outcome = "ttl_push_failed", error = %aws_sdk_dynamodb::error::DisplayErrorContext(&error), "pushing back an unpublished record's TTL failed; the next sweep tries again")
            }
        }
    }

    /// The items of `shard` staged before `cutoff`, oldest first.
    async fn overdue(
        &self,
        shard: &str,
        cutoff: &DateTime<Utc>,
    ) -> Result<Vec<Carried>, SweepError> {
        let mut pages = self.query(shard, Some(cutoff)).into_paginator().send();
        let mut items = Vec::new();
        while let Some(page) = pages.next().await {
            let page =
                page.map_err(|error| SweepError::new("reading the overdue events", error))?;
            items.extend(page.items().iter().cloned());
        }
        let mut entries = Vec::with_capacity(items.len());
        for item in items {
            let carried = serde_dynamo::from_item::<_, serde_json::Value>(item)
                .map_err(|error| error.to_string())
                .and_then(|item| Carried::from_json(&item));
            match carried {
                Ok(Some(carried)) => entries.push(carried),
                Ok(None) => {}
                // Left for the operator (the backlog alarm names it): a malformed item is
                // not something a retry mends.
                Err(error) => {
                    tracing::error!(outcome = "sweep_unreadable", %error, "an unpublished outbox item cannot be read")
                }
            }
        }
        Ok(entries)
    }

    /// A query of `shard` of the index, before `cutoff` when given.
    fn query(
        &self,
        shard: &str,
        cutoff: Option<&DateTime<Utc>>,
    ) -> aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder {
        let (client, table) = self.relay.outbox();
        let query = client
            .query()
            .table_name(table)
            .index_name(UNPUBLISHED_INDEX)
            .expression_attribute_names("#shard", UNPUBLISHED)
            .expression_attribute_values(":shard", AttributeValue::S(shard.to_string()));
        match cutoff {
            Some(cutoff) => query
                .key_condition_expression("#shard = :shard AND #staged < :cutoff")
                .expression_attribute_names("#staged", "stagedAt")
                .expression_attribute_values(":cutoff", AttributeValue::S(staged_at(*cutoff))),
            None => query.key_condition_expression("#shard = :shard"),
        }
    }
}

impl Backlog {
    /// The backlog as a CloudWatch EMF line (namespace `eventkit`, dimension `service`):
    /// `OutboxUnpublished` (Count) and `OutboxOldestUnpublishedAge` (Seconds), what the
    /// template's alarm watches.
    pub fn to_emf(&self, service: &str) -> serde_json::Value {
        let now = Utc::now();
        serde_json::json!({
            "timestamp": now.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            "level": "INFO",
            "_aws": {
                "Timestamp": u64::try_from(now.timestamp_millis()).unwrap_or(0),
                "CloudWatchMetrics": [{
                    "Namespace": crate::telemetry::EMF_NAMESPACE,
                    "Dimensions": [["service"]],
                    "Metrics": [
                        {"Name": "OutboxUnpublished", "Unit": "Count"},
                        {"Name": "OutboxOldestUnpublishedAge", "Unit": "Seconds"},
                    ],
                }],
            },
            "service": service,
            "OutboxUnpublished": self.unpublished,
            "OutboxOldestUnpublishedAge": self.oldest_age_secs,
        })
    }
}
