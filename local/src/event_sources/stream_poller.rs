//! Lambda's DynamoDB stream event source mapping: every shard of the stream is read in
//! order, by one reader of its own, a child shard only once its parent is read to its end.
//! A reader gathers up to `BatchSize` records within `MaximumBatchingWindowInSeconds`,
//! invokes the function and does not read on until the batch is settled
//! ([`stream_batch`](super::stream_batch) decides how): so a failing batch blocks its shard
//! until it succeeds or is given up to the OnFailure destination, as in Lambda.

use std::collections::{BTreeSet, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_sdk_dynamodbstreams::types::{Record, Shard, ShardIteratorType};
use serde_json::json;
use tokio_util::sync::CancellationToken;

use super::stream_batch::{after_invocation, exhausted, FailureHandling, Next};
use super::stream_records::{
    batch_info_record, dynamodb_event, event_record, sequence_number, GivenUp,
};
use crate::clients::Clients;
use crate::functions::{FailureDestination, StartingPosition, StreamSource};
use crate::host::FunctionHost;
use crate::invocation::Outcome;

/// How often an idle shard is read again (Lambda reads a stream four times a second).
const POLL_INTERVAL: Duration = Duration::from_millis(250);
/// How often the stream's shards are listed, for new (child) shards.
const LIST_INTERVAL: Duration = Duration::from_secs(2);

/// Records read from a stream and not yet settled, shared with the pipeline's backlog.
#[derive(Clone, Debug, Default)]
pub struct InFlight(Arc<AtomicU64>);

impl InFlight {
    /// Records read and not yet done or given up.
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::SeqCst)
    }

    fn add(&self, records: usize) {
        self.0
            .fetch_add(u64::try_from(records).unwrap_or(0), Ordering::SeqCst);
    }

    fn settle(&self, records: usize) {
        let records = u64::try_from(records).unwrap_or(0);
        let _ = self
            .0
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |current| {
                Some(current.saturating_sub(records))
            });
    }
}

/// What every shard reader of one event source shares.
#[derive(Clone)]
struct Reading {
    clients: Clients,
    source: Arc<StreamSource>,
    host: Arc<FunctionHost>,
    in_flight: InFlight,
    retry_delay: Duration,
    finished: Arc<Mutex<BTreeSet<String>>>,
    stopped: CancellationToken,
}

/// Reads `source`'s stream for `host` until `stopped`; a failed batch waits `retry_delay`
/// (at least the function's timeout after a crash or timeout) before its retry.
pub async fn poll_stream(
    clients: Clients,
    source: StreamSource,
    host: Arc<FunctionHost>,
    in_flight: InFlight,
    retry_delay: Duration,
    stopped: CancellationToken,
) {
    let reading = Reading {
        clients,
        source: Arc::new(source),
        host,
        in_flight,
        retry_delay,
        finished: Arc::default(),
        stopped,
    };
    let mut started: BTreeSet<String> = BTreeSet::new();
    let mut first_listing = true;
    while !reading.stopped.is_cancelled() {
        match list_shards(&reading).await {
            Ok(shards) => {
                for shard in &shards {
                    let id = shard.shard_id().unwrap_or_default().to_string();
                    if id.is_empty()
                        || started.contains(&id)
                        || parent_unread(&reading, shard, &shards)
                    {
                        continue;
                    }
                    // Shards found later are children of read ones: read from their start.
                    let position = if first_listing {
                        reading.source.starting_position
                    } else {
                        StartingPosition::TrimHorizon
                    };
                    started.insert(id.clone());
                    tokio::spawn(reading.clone().read_shard(id, position));
                }
                first_listing = false;
            }
            Err(error) => reading.platform_error(&format!("listing the shards: {error}")),
        }
        tokio::select! {
            () = tokio::time::sleep(LIST_INTERVAL) => {}
            () = reading.stopped.cancelled() => return,
        }
    }
}

/// Whether `shard`'s parent is still listed and not read to its end.
fn parent_unread(reading: &Reading, shard: &Shard, shards: &[Shard]) -> bool {
    let Some(parent) = shard.parent_shard_id() else {
        return false;
    };
    let listed = shards.iter().any(|s| s.shard_id() == Some(parent));
    let finished = reading
        .finished
        .lock()
        .map(|finished| finished.contains(parent))
        .unwrap_or(false);
    listed && !finished
}

async fn list_shards(reading: &Reading) -> Result<Vec<Shard>, String> {
    let mut shards = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let described = reading
            .clients
            .streams
            .describe_stream()
            .stream_arn(&reading.source.stream_arn)
            .set_exclusive_start_shard_id(after.clone())
            .send()
            .await
            .map_err(|error| {
                format!(
                    "{}",
                    aws_sdk_dynamodbstreams::error::DisplayErrorContext(error)
                )
            })?;
        let Some(description) = described.stream_description else {
            return Ok(shards);
        };
        shards.extend(description.shards.unwrap_or_default());
        after = description.last_evaluated_shard_id;
        if after.is_none() {
            return Ok(shards);
        }
    }
}

impl Reading {
    fn platform_error(&self, error: &str) {
        self.host.log().platform(
            "platform.eventSourceError",
            json!({"stream": self.source.stream_arn, "error": error}),
        );
    }

    /// Reads one shard to its end (a closed shard) or until stopped.
    async fn read_shard(self, shard_id: String, position: StartingPosition) {
        let mut iterator: Option<String> = None;
        let mut last_read: Option<String> = None;
        let mut buffer: VecDeque<Record> = VecDeque::new();
        let mut first_buffered: Option<Instant> = None;
        let mut closed = false;
        while !self.stopped.is_cancelled() {
            if !closed && buffer.len() < self.source.batch_size {
                if iterator.is_none() {
                    match self
                        .iterator(&shard_id, position, last_read.as_deref())
                        .await
                    {
                        Ok(fresh) => iterator = Some(fresh),
                        Err(error) => {
                            self.platform_error(&format!("shard {shard_id}: {error}"));
                            self.pause(Duration::from_secs(1)).await;
                            continue;
                        }
                    }
                }
                let wanted = (self.source.batch_size - buffer.len()).min(1000);
                match self
                    .read(iterator.as_deref().unwrap_or_default(), wanted)
                    .await
                {
                    Ok((records, next)) => {
                        if let Some(last) = records.last() {
                            last_read = Some(sequence_number(last).to_string());
                        }
                        // Records the filter does not admit are passed over: the shard
                        // moves on without invoking for them, as Lambda's does.
                        let records: Vec<Record> = records
                            .into_iter()
                            .filter(|record| {
                                self.source
                                    .filter
                                    .admits(&event_record(&self.source.stream_arn, record))
                            })
                            .collect();
                        if !records.is_empty() {
                            first_buffered.get_or_insert_with(Instant::now);
                        }
                        self.in_flight.add(records.len());
                        buffer.extend(records);
                        closed = next.is_none();
                        iterator = next;
                    }
                    Err(error) => {
                        // An expired iterator or a restarting DynamoDB Local: read on after
                        // the last record read, with a fresh iterator.
                        self.platform_error(&format!("shard {shard_id}: {error}"));
                        iterator = None;
                        self.pause(Duration::from_secs(1)).await;
                        continue;
                    }
                }
            }
            if buffer.is_empty() {
                if closed {
                    if let Ok(mut finished) = self.finished.lock() {
                        finished.insert(shard_id);
                    }
                    return;
                }
                self.pause(POLL_INTERVAL).await;
                continue;
            }
            let waited = first_buffered.map_or(Duration::ZERO, |at| at.elapsed());
            let ready = buffer.len() >= self.source.batch_size
                || waited >= self.source.batching_window
                || closed;
            if !ready {
                self.pause(POLL_INTERVAL.min(self.source.batching_window - waited))
                    .await;
                continue;
            }
            let take = buffer.len().min(self.source.batch_size);
            let batch: Vec<Record> = buffer.drain(..take).collect();
            first_buffered = (!buffer.is_empty()).then(Instant::now);
            self.deliver(&shard_id, batch).await;
        }
    }

    async fn pause(&self, duration: Duration) {
        tokio::select! {
            () = tokio::time::sleep(duration) => {}
            () = self.stopped.cancelled() => {}
        }
    }

    async fn iterator(
        &self,
        shard_id: &str,
        position: StartingPosition,
        after: Option<&str>,
    ) -> Result<String, String> {
        let request = self
            .clients
            .streams
            .get_shard_iterator()
            .stream_arn(&self.source.stream_arn)
            .shard_id(shard_id);
        let request = match (after, position) {
            (Some(sequence), _) => request
                .shard_iterator_type(ShardIteratorType::AfterSequenceNumber)
                .sequence_number(sequence),
            (None, StartingPosition::TrimHorizon) => {
                request.shard_iterator_type(ShardIteratorType::TrimHorizon)
            }
            (None, StartingPosition::Latest) => {
                request.shard_iterator_type(ShardIteratorType::Latest)
            }
        };
        let output = request.send().await.map_err(|error| {
            format!(
                "{}",
                aws_sdk_dynamodbstreams::error::DisplayErrorContext(error)
            )
        })?;
        output
            .shard_iterator
            .ok_or_else(|| "GetShardIterator returned no iterator".to_string())
    }

    /// Up to `limit` records and the next iterator (`None` once a closed shard is read).
    async fn read(
        &self,
        iterator: &str,
        limit: usize,
    ) -> Result<(Vec<Record>, Option<String>), String> {
        let output = self
            .clients
            .streams
            .get_records()
            .shard_iterator(iterator)
            .limit(i32::try_from(limit).unwrap_or(1000))
            .send()
            .await
            .map_err(|error| {
                format!(
                    "{}",
                    aws_sdk_dynamodbstreams::error::DisplayErrorContext(error)
                )
            })?;
        Ok((
            output.records.unwrap_or_default(),
            output.next_shard_iterator,
        ))
    }

    /// Invokes the function with `batch` until every record is done or given up.
    async fn deliver(&self, shard_id: &str, batch: Vec<Record>) {
        let handling = FailureHandling {
            report_batch_item_failures: self.source.report_batch_item_failures,
            bisect_on_error: self.source.bisect_on_error,
        };
        let mut segments: VecDeque<Segment> = VecDeque::from([Segment::new(batch)]);
        while let Some(mut segment) = segments.pop_front() {
            loop {
                if self.stopped.is_cancelled() {
                    return;
                }
                let outcome = match dynamodb_event(&self.source.stream_arn, &segment.records) {
                    Ok(payload) => self.host.invoke(payload).await,
                    Err(error) => Outcome::FunctionError {
                        error_type: "Local.InvalidStreamRecord".into(),
                        message: format!("{error:#}"),
                    },
                };
                if self.stopped.is_cancelled() && !outcome.succeeded() {
                    // Cut off by the stop, not failed: neither retried nor given up.
                    return;
                }
                segment.invocations += 1;
                let numbers: Vec<&str> = segment.records.iter().map(sequence_number).collect();
                let (next, why) = after_invocation(handling, &numbers, &outcome);
                if let Some(why) = &why {
                    self.host.log().platform(
                        "platform.streamBatchFailed",
                        json!({
                            "stream": self.source.stream_arn,
                            "shardId": shard_id,
                            "startSequenceNumber": numbers.first(),
                            "endSequenceNumber": numbers.last(),
                            "batchSize": numbers.len(),
                            "retries": segment.retries,
                            "reason": why,
                        }),
                    );
                }
                match next {
                    Next::Done => {
                        self.in_flight.settle(segment.records.len());
                        break;
                    }
                    Next::Bisect(at) => {
                        let second = segment.split_off(at);
                        segments.push_front(second);
                        segments.push_front(segment);
                        break;
                    }
                    Next::RetryFrom(index) => {
                        self.in_flight.settle(index);
                        segment.records.drain(..index);
                        segment.retries += 1;
                        if exhausted(segment.retries, self.source.max_retries) {
                            self.give_up(shard_id, &segment, !outcome.succeeded()).await;
                            self.in_flight.settle(segment.records.len());
                            break;
                        }
                        let wait = match outcome {
                            // A crashed or timed-out invocation's idempotency claims last
                            // until its deadline: retrying sooner would only find them held.
                            Outcome::Crashed(_) | Outcome::TimedOut(_) => {
                                self.retry_delay.max(self.host.spec().timeout)
                            }
                            _ => self.retry_delay,
                        };
                        self.pause(wait).await;
                    }
                }
            }
        }
    }

    /// Sends the invocation record of a given-up segment to the OnFailure destination,
    /// trying again until it is accepted (the shard waits: nothing is skipped unrecorded).
    async fn give_up(&self, shard_id: &str, segment: &Segment, function_error: bool) {
        let request_id = uuid::Uuid::new_v4().to_string();
        let given_up = GivenUp {
            records: &segment.records,
            shard_id,
            stream_arn: &self.source.stream_arn,
            function_arn: &self.host.spec().arn,
            invocations: segment.invocations,
            function_error,
        };
        let record = batch_info_record(&given_up, &request_id);
        self.host.log().platform(
            "platform.streamBatchGivenUp",
            json!({"requestId": request_id, "record": record}),
        );
        let Some(destination) = &self.source.on_failure else {
            return;
        };
        while !self.stopped.is_cancelled() {
            let sent = match destination {
                FailureDestination::Queue(queue) => self
                    .clients
                    .sqs
                    .send_message()
                    .queue_url(&queue.url)
                    .message_body(record.to_string())
                    .send()
                    .await
                    .map(|_| ())
                    .map_err(|error| format!("{}", aws_sdk_sqs::error::DisplayErrorContext(error))),
                FailureDestination::Topic(arn) => self
                    .clients
                    .sns
                    .publish()
                    .topic_arn(arn)
                    .message(record.to_string())
                    .send()
                    .await
                    .map(|_| ())
                    .map_err(|error| format!("{}", aws_sdk_sns::error::DisplayErrorContext(error))),
            };
            match sent {
                Ok(()) => return,
                Err(error) => {
                    self.platform_error(&format!("sending to the OnFailure destination: {error}"));
                    self.pause(Duration::from_secs(1)).await;
                }
            }
        }
    }
}

/// Records invoked together, with their retries so far.
struct Segment {
    records: Vec<Record>,
    retries: u32,
    invocations: u32,
}

impl Segment {
    fn new(records: Vec<Record>) -> Self {
        Self {
            records,
            retries: 0,
            invocations: 0,
        }
    }

    /// The records from `at` on, as a segment of their own with the same retries (splitting
    /// is not a retry).
    fn split_off(&mut self, at: usize) -> Self {
        Self {
            records: self.records.split_off(at),
            retries: self.retries,
            invocations: 0,
        }
    }
}
