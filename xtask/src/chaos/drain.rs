//! How long the backlog an outage held back takes to drain once the dependency is back: the
//! figure an operator watches during the recovery ("is it over yet?").
//!
//! The backlog is what the pipeline still has to do, counted as an operator would see it on
//! AWS: messages in the functions' queues (visible, in flight and delayed, so records put
//! back with a backoff count), stream records in flight, invocations queued or running, and
//! outbox events not yet published (the bus's backlog, which a queue does not show). It is
//! sampled every few seconds for the whole run. The orders keep arriving during an outage,
//! so "drained" cannot mean empty: it means back to the level the pipeline ran at in the
//! half-minute before the outage began (the highest sample of that window, which rides out
//! the ordinary ups and downs of a flowing pipeline).

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::Duration;

use anyhow::{Context, Result};
use eventkit::outbox::{Relay, Sweeper};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::local_lambda::LocalPipeline;

/// Seconds between two samples of the backlog.
const EVERY: Duration = Duration::from_secs(3);
/// How far back, before an outage began, the level to drain back to is taken from.
const BEFORE: Duration = Duration::from_secs(30);

/// The backlog sampled over the run, and the outages watched against it.
#[derive(Default)]
pub struct DrainWatch {
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    /// Recent samples, newest last, no older than [`BEFORE`].
    recent: VecDeque<(Instant, u64)>,
    watches: Vec<Watch>,
}

struct Watch {
    dependency: &'static str,
    /// The level to come back to.
    level: u64,
    ended: Option<Instant>,
    drained: Option<Duration>,
}

impl DrainWatch {
    /// An outage of `dependency` began now: the level to drain back to is the highest of
    /// the recent samples.
    pub fn began(&self, dependency: &'static str) {
        self.began_at(dependency);
    }

    fn began_at(&self, dependency: &'static str) {
        let mut state = self.lock();
        let level = state.recent.iter().map(|(_, level)| *level).max();
        state.watches.push(Watch {
            dependency,
            level: level.unwrap_or(0),
            ended: None,
            drained: None,
        });
    }

    /// The outage of `dependency` under way ended now.
    pub fn ended(&self, dependency: &'static str) {
        self.ended_at(dependency, Instant::now());
    }

    fn ended_at(&self, dependency: &'static str, at: Instant) {
        let mut state = self.lock();
        if let Some(watch) = state
            .watches
            .iter_mut()
            .rev()
            .find(|watch| watch.dependency == dependency && watch.ended.is_none())
        {
            watch.ended = Some(at);
        }
    }

    /// For each outage of `dependency`, in order: how long after its end the backlog was
    /// back to its level (`None`: not before the watch stopped).
    pub fn drained(&self, dependency: &str) -> Vec<Option<Duration>> {
        self.lock()
            .watches
            .iter()
            .filter(|watch| watch.dependency == dependency)
            .map(|watch| watch.drained)
            .collect()
    }

    /// Samples the backlog until `stop` is cancelled. A sample that cannot be read (the
    /// local cloud busy) is skipped.
    pub async fn sample(&self, pipeline: &LocalPipeline, stop: CancellationToken) {
        loop {
            if let Ok(level) = backlog(pipeline).await {
                self.record(Instant::now(), level);
            }
            tokio::select! {
                () = tokio::time::sleep(EVERY) => {}
                () = stop.cancelled() => return,
            }
        }
    }

    fn record(&self, at: Instant, level: u64) {
        let mut state = self.lock();
        state.recent.push_back((at, level));
        while state
            .recent
            .front()
            .is_some_and(|(then, _)| at.saturating_duration_since(*then) > BEFORE)
        {
            state.recent.pop_front();
        }
        for watch in &mut state.watches {
            if let (Some(ended), None) = (watch.ended, watch.drained) {
                if at >= ended && level <= watch.level {
                    watch.drained = Some(at.saturating_duration_since(ended));
                }
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Everything still to be done: queued messages, stream records and invocations in flight,
/// and unpublished outbox events.
async fn backlog(pipeline: &LocalPipeline) -> Result<u64> {
    let backlog = pipeline.backlog().await?;
    let moving: u64 = backlog.queued.values().sum::<u64>()
        + backlog.streamed.values().sum::<u64>()
        + backlog.invocations.values().sum::<u64>();
    // The outbox is the idempotency table: events ride on the records that committed them.
    let unpublished = match pipeline.stack().table("IdempotencyTable") {
        Ok(table) => unpublished(pipeline, table).await?,
        Err(_) => 0,
    };
    Ok(moving + unpublished)
}

/// Outbox records whose events are not yet published, counted as the sweeper counts its
/// backlog (the `OutboxUnpublished` metric): from the outbox's sparse index of unpublished
/// items, a count per shard, so a sample does not read the published ones. (A record with two
/// events counts once.)
async fn unpublished(pipeline: &LocalPipeline, table: &str) -> Result<u64> {
    let relay = Relay::new(pipeline.clients().dynamodb.clone(), table);
    let backlog = Sweeper::new(relay)
        .backlog()
        .await
        .with_context(|| format!("counting {table}'s unpublished events"))?;
    Ok(backlog.unpublished)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_outage_is_drained_once_the_backlog_is_back_to_its_level_before() {
        let watch = DrainWatch::default();
        let start = Instant::now();
        let at = |seconds: u64| start + Duration::from_secs(seconds);
        // Before the outage: 4 to 9 in flight (the older sample falls out of the window).
        watch.record(at(0), 50);
        watch.record(at(40), 4);
        watch.record(at(50), 9);
        watch.began_at("bus");
        watch.record(at(60), 120);
        watch.ended_at("bus", at(160));
        watch.record(at(165), 300);
        watch.record(at(180), 10);
        assert_eq!(
            watch.drained("bus"),
            vec![None],
            "10 is above the level of 9"
        );
        watch.record(at(186), 9);
        watch.record(at(189), 2);
        assert_eq!(
            watch.drained("bus"),
            vec![Some(Duration::from_secs(26))],
            "the first sample at the level counts"
        );
        assert!(watch.drained("DynamoDB").is_empty());
    }

    #[test]
    fn an_outage_under_way_is_not_drained() {
        let watch = DrainWatch::default();
        let start = Instant::now();
        watch.record(start, 3);
        watch.began_at("payment provider");
        watch.record(start + Duration::from_secs(3), 0);
        assert_eq!(watch.drained("payment provider"), vec![None]);
    }

    #[test]
    fn each_outage_of_a_dependency_is_watched_on_its_own() {
        let watch = DrainWatch::default();
        let start = Instant::now();
        let at = |seconds: u64| start + Duration::from_secs(seconds);
        watch.record(at(0), 5);
        watch.began_at("DynamoDB");
        watch.ended_at("DynamoDB", at(10));
        watch.record(at(12), 5);
        watch.record(at(50), 20);
        watch.began_at("DynamoDB");
        watch.ended_at("DynamoDB", at(60));
        watch.record(at(70), 20);
        assert_eq!(
            watch.drained("DynamoDB"),
            vec![Some(Duration::from_secs(2)), Some(Duration::from_secs(10))]
        );
    }
}
