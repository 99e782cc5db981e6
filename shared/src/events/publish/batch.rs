//! The service-independent part of publishing: cutting events into batches, sending each,
//! and retrying only the entries reported as failed, with a bounded exponential backoff.

use std::collections::BTreeSet;

use super::contract::ContractCheck;
use super::{
    OutgoingEvent, PublishFailure, RetryPolicy, EVENT_TOO_LARGE, MAX_BATCH_BYTES, MAX_BATCH_ENTRIES,
};
use crate::events::Carrier;

/// One entry a batch request reported as failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct EntryFailure {
    /// The entry's position in the batch that was sent.
    pub position: usize,
    pub code: String,
    pub message: String,
    /// Whether sending it again may succeed (a throttle or an internal error, as opposed to
    /// an entry the service will always refuse).
    pub retryable: bool,
}

impl EntryFailure {
    /// An entry that could not even be built into a request; never retried.
    pub fn invalid(position: usize, message: String) -> Self {
        Self {
            position,
            code: "InvalidEntry".into(),
            message,
            retryable: false,
        }
    }

    /// A failure SNS or SQS reported for the entry whose batch id is `id` (we use the
    /// position as id). Sender faults, and the codes that judge the entry itself, are not
    /// retried.
    pub fn reported(id: &str, code: &str, message: Option<&str>, sender_fault: bool) -> Self {
        Self {
            // An id we did not send is reported (and skipped) by the retry loop.
            position: id.parse().unwrap_or(usize::MAX),
            code: code.to_string(),
            message: message.unwrap_or_default().to_string(),
            retryable: !sender_fault && !ENTRY_VALIDATION_CODES.contains(&code),
        }
    }
}

/// A whole batch request that failed, after the SDK's own retries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct RequestFailure {
    /// The service's error code, when it answered with one (`NotFound`, ...).
    pub code: Option<String>,
    pub message: String,
    /// Whether sending it again may succeed.
    pub retryable: bool,
}

impl RequestFailure {
    /// Classifies a failed request by the service's answer. A client error (HTTP 4xx) other
    /// than throttling judges the request itself: a topic or queue that does not exist, no
    /// permission, a bad parameter. It fails the same way on every attempt, so it is not
    /// retried (a missing topic is a deployment mistake that no backoff of ours outlasts).
    /// A server error, throttling, or no answer at all (a timeout, a refused connection)
    /// may heal, and is retried.
    pub fn classify(code: Option<&str>, http_status: Option<u16>, message: String) -> Self {
        let throttled = code.is_some_and(|code| THROTTLING_CODES.contains(&code));
        let retryable = match http_status {
            None => true,
            Some(status) => status >= 500 || status == 429 || throttled,
        };
        Self {
            code: code.map(str::to_string),
            message,
            retryable,
        }
    }
}

/// Error codes AWS services use for throttling, some of them with HTTP status 400.
const THROTTLING_CODES: &[&str] = &[
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "RequestThrottled",
    "RequestThrottledException",
    "TooManyRequestsException",
    "RequestLimitExceeded",
];

/// SNS and SQS entry error codes that judge the entry itself: it fails the same way on
/// every attempt, whatever `SenderFault` says (LocalStack, for one, reports every entry
/// failure as not the sender's).
const ENTRY_VALIDATION_CODES: &[&str] = &[
    "InvalidMessageContents",
    "InvalidParameter",
    "InvalidParameterValue",
    "MissingParameter",
    "InvalidAttributeName",
    "InvalidAttributeValue",
];

/// One service's batch API.
pub(crate) trait BatchSender {
    /// What its messages are: how large an event it can send.
    const CARRIER: Carrier;

    /// Its `messaging.system`, for the publish spans.
    #[cfg_attr(not(feature = "otel"), allow(dead_code))]
    const SYSTEM: &'static str;

    /// The topic, queue or bus it sends to, for the publish spans.
    #[cfg_attr(not(feature = "otel"), allow(dead_code))]
    fn destination(&self) -> &str;

    /// Sends `batch` (at most [`MAX_BATCH_ENTRIES`]) in one request. `Ok` lists the entries
    /// that failed, by position; `Err` means the whole request failed (after the SDK's own
    /// retries) and says why.
    async fn send_batch(
        &self,
        batch: &[&OutgoingEvent],
    ) -> Result<Vec<EntryFailure>, RequestFailure>;
}

/// Sends every event that its carrier holds and that passes `check`; returns those that
/// finally failed (the rejected ones included), ordered by index.
pub(crate) async fn publish_all<S: BatchSender>(
    sender: &S,
    events: &[OutgoingEvent],
    policy: &RetryPolicy,
    check: &ContractCheck,
) -> Vec<PublishFailure> {
    // Traced, each event goes with its own publish span's context.
    #[cfg(feature = "otel")]
    let traced =
        crate::telemetry::spans::PublishSpans::open(events, S::SYSTEM, sender.destination());
    #[cfg(feature = "otel")]
    let events: &[OutgoingEvent] = traced.as_ref().map_or(events, |traced| traced.events());
    let mut failures = too_large(events, S::CARRIER);
    let mut rejected: BTreeSet<usize> = failures.iter().map(|failure| failure.index).collect();
    for failure in check.reject(events) {
        if rejected.insert(failure.index) {
            failures.push(failure);
        }
    }
    for batch in batches(events) {
        let batch: Vec<usize> = batch
            .into_iter()
            .filter(|index| !rejected.contains(index))
            .collect();
        if !batch.is_empty() {
            failures.extend(send_with_retries(sender, events, batch, policy).await);
        }
    }
    failures.sort_by_key(|failure| failure.index);
    #[cfg(feature = "otel")]
    if let Some(traced) = traced {
        traced.close(&failures);
    }
    failures
}

/// The events `carrier` cannot hold, as failures: sending them would only have the service
/// refuse them, on every attempt.
fn too_large(events: &[OutgoingEvent], carrier: Carrier) -> Vec<PublishFailure> {
    events
        .iter()
        .enumerate()
        .filter_map(|(index, event)| {
            let refused = carrier.admit(event).err()?;
            Some(PublishFailure {
                index,
                event_id: event.event_id.clone(),
                code: EVENT_TOO_LARGE.into(),
                message: refused.to_string(),
                attempts: 0,
            })
        })
        .collect()
}

/// Indices of `events`, in order, cut at [`MAX_BATCH_ENTRIES`] entries or
/// [`MAX_BATCH_BYTES`] bytes, whichever comes first.
fn batches(events: &[OutgoingEvent]) -> Vec<Vec<usize>> {
    let mut batches = Vec::new();
    let mut current = Vec::new();
    let mut current_bytes = 0;
    for (index, event) in events.iter().enumerate() {
        let size = event.size_bytes();
        let full = current.len() == MAX_BATCH_ENTRIES || current_bytes + size > MAX_BATCH_BYTES;
        if full && !current.is_empty() {
            batches.push(std::mem::take(&mut current));
            current_bytes = 0;
        }
        current.push(index);
        current_bytes += size;
    }
    if !current.is_empty() {
        batches.push(current);
    }
    batches
}

async fn send_with_retries<S: BatchSender>(
    sender: &S,
    events: &[OutgoingEvent],
    batch: Vec<usize>,
    policy: &RetryPolicy,
) -> Vec<PublishFailure> {
    let failure = |index: usize, code: String, message: String, attempts: u32| PublishFailure {
        index,
        event_id: events[index].event_id.clone(),
        code,
        message,
        attempts,
    };
    let mut finally_failed = Vec::new();
    let mut pending = batch;
    let mut attempt = 1;
    loop {
        let last_attempt = attempt >= policy.max_attempts.max(1);
        let entries: Vec<&OutgoingEvent> = pending.iter().map(|&index| &events[index]).collect();
        let mut retry = BTreeSet::new();
        match sender.send_batch(&entries).await {
            Ok(entry_failures) => {
                for entry in entry_failures {
                    let Some(&index) = pending.get(entry.position) else {
                        tracing::warn!(position = entry.position, code = %entry.code, "batch response names an entry that was not sent");
                        continue;
                    };
                    if entry.retryable && !last_attempt {
                        retry.insert(index);
                    } else {
                        finally_failed.push(failure(index, entry.code, entry.message, attempt));
                    }
                }
            }
            Err(request) if last_attempt || !request.retryable => {
                let code = request.code.as_deref().unwrap_or("RequestFailed");
                for &index in &pending {
                    finally_failed.push(failure(
                        index,
                        code.to_string(),
                        request.message.clone(),
                        attempt,
                    ));
                }
            }
            Err(request) => {
                let message = &request.message;
                tracing::warn!(%message, attempt, "batch request failed; retrying");
                retry.extend(pending.iter().copied());
            }
        }
        if retry.is_empty() {
            return finally_failed;
        }
        attempt += 1;
        tokio::time::sleep(policy.delay_before(attempt)).await;
        pending = retry.into_iter().collect();
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;
    use std::time::Duration;

    use super::*;

    fn event(id: usize, body_bytes: usize) -> OutgoingEvent {
        let envelope =
            crate::events::EventEnvelope::from_parts("T", 1, "s", "x".repeat(body_bytes));
        let mut outgoing = OutgoingEvent::from_envelope(&envelope).unwrap();
        outgoing.event_id = format!("e-{id}");
        outgoing
    }

    /// Fails entries by event id according to a script: `(event_id, times, retryable)`
    /// fails that event the first `times` sends. Records every batch it saw.
    struct ScriptedSender {
        script: Vec<(&'static str, usize, bool)>,
        request_failures: Mutex<usize>,
        sent: Mutex<Vec<Vec<String>>>,
    }

    impl ScriptedSender {
        fn new(script: Vec<(&'static str, usize, bool)>) -> Self {
            Self {
                script,
                request_failures: Mutex::new(0),
                sent: Mutex::new(Vec::new()),
            }
        }

        fn sends_of(&self, event_id: &str) -> usize {
            let sent = self.sent.lock().unwrap();
            sent.iter().flatten().filter(|id| *id == event_id).count()
        }
    }

    impl BatchSender for ScriptedSender {
        const CARRIER: Carrier = Carrier::Sns;
        const SYSTEM: &'static str = "test";

        fn destination(&self) -> &str {
            "test"
        }

        async fn send_batch(
            &self,
            batch: &[&OutgoingEvent],
        ) -> Result<Vec<EntryFailure>, RequestFailure> {
            assert!(batch.len() <= MAX_BATCH_ENTRIES);
            {
                let mut failures = self.request_failures.lock().unwrap();
                if *failures > 0 {
                    *failures -= 1;
                    return Err(RequestFailure::classify(
                        None,
                        None,
                        "connection reset".into(),
                    ));
                }
            }
            let mut sent = self.sent.lock().unwrap();
            sent.push(batch.iter().map(|e| e.event_id.clone()).collect());
            let failed = batch
                .iter()
                .enumerate()
                .filter_map(|(position, entry)| {
                    let (_, times, retryable) = self
                        .script
                        .iter()
                        .find(|(id, _, _)| *id == entry.event_id)?;
                    let sends = sent
                        .iter()
                        .flatten()
                        .filter(|id| **id == entry.event_id)
                        .count();
                    (sends <= *times).then(|| EntryFailure {
                        position,
                        code: if *retryable {
                            "InternalError".into()
                        } else {
                            "InvalidParameter".into()
                        },
                        message: format!("attempt {sends}"),
                        retryable: *retryable,
                    })
                })
                .collect();
            Ok(failed)
        }
    }

    fn fast(attempts: u32) -> RetryPolicy {
        RetryPolicy::attempts(attempts)
            .with_delays(Duration::from_millis(10), Duration::from_millis(40))
    }

    #[test]
    fn cuts_batches_by_count_and_size() {
        let small: Vec<_> = (0..23).map(|i| event(i, 10)).collect();
        let sizes: Vec<usize> = batches(&small).iter().map(Vec::len).collect();
        assert_eq!(sizes, [10, 10, 3]);

        // 100 KiB each: two fit under 256 KiB, the third starts a new batch; an oversized
        // event goes alone.
        let big: Vec<_> = [100, 100, 100, 300, 1]
            .iter()
            .map(|kib| event(0, kib * 1024))
            .collect();
        assert_eq!(batches(&big), vec![vec![0, 1], vec![2], vec![3], vec![4]]);
        assert!(batches(&[]).is_empty());
    }

    /// A validating publisher sends what matches its contract and fails the rest unsent,
    /// each failure naming the JSON path that broke.
    #[cfg(feature = "validate")]
    #[tokio::test(start_paused = true)]
    async fn events_breaking_their_contract_fail_unsent() {
        use crate::events::schema::SchemaValidator;
        use crate::events::versioned::tests::CustomerRegistered;

        let customer = |id: usize, first_name: serde_json::Value| {
            let data =
                serde_json::json!({"customerId": "c", "firstName": first_name, "lastName": "L"});
            let envelope =
                crate::events::EventEnvelope::from_parts("CustomerRegistered", 2, "s", data);
            let mut outgoing = OutgoingEvent::from_envelope(&envelope).unwrap();
            outgoing.event_id = format!("e-{id}");
            outgoing
        };
        let events = vec![
            customer(0, "Ada".into()),
            customer(1, 42.into()),
            customer(2, "Grace".into()),
        ];
        let check = ContractCheck::new(std::sync::Arc::new(
            SchemaValidator::new().with::<CustomerRegistered>(),
        ));
        let sender = ScriptedSender::new(vec![]);
        let failures = publish_all(&sender, &events, &fast(3), &check).await;
        assert_eq!(failures.len(), 1, "{failures:?}");
        assert_eq!((failures[0].index, failures[0].attempts), (1, 0));
        assert_eq!(failures[0].code, super::super::SCHEMA_VIOLATION);
        assert!(
            failures[0]
                .message
                .contains("/data/firstName: 42 is not of type"),
            "{}",
            failures[0].message
        );
        assert_eq!(sender.sends_of("e-1"), 0);
        assert_eq!((sender.sends_of("e-0"), sender.sends_of("e-2")), (1, 1));
        // Without validation (the default) the same events are all sent.
        let sender = ScriptedSender::new(vec![]);
        assert!(
            publish_all(&sender, &events, &fast(3), &ContractCheck::default())
                .await
                .is_empty()
        );
        assert_eq!(sender.sends_of("e-1"), 1);
    }

    /// An event of exactly `size` bytes as the carriers' rule counts them.
    fn event_of_size(id: usize, size: usize) -> OutgoingEvent {
        let mut outgoing = event(id, 0);
        outgoing.body.clear();
        let overhead = outgoing.size_bytes();
        outgoing.body = "x".repeat(size - overhead);
        outgoing
    }

    /// An event its carrier cannot hold fails unsent, at once, naming its size and the
    /// limit; one at the limit is sent.
    #[tokio::test(start_paused = true)]
    async fn an_event_too_large_for_its_carrier_fails_unsent() {
        let limit = Carrier::Sns.max_bytes();
        let events = vec![event_of_size(0, limit), event_of_size(1, limit + 1)];
        let sender = ScriptedSender::new(vec![]);

        let failures = publish_all(&sender, &events, &fast(3), &ContractCheck::default()).await;

        assert_eq!(failures.len(), 1, "{failures:?}");
        assert_eq!(
            (
                failures[0].index,
                failures[0].code.as_str(),
                failures[0].attempts
            ),
            (1, EVENT_TOO_LARGE, 0)
        );
        let expected = format!(
            "takes {} bytes in an SNS message, which holds at most {limit}",
            limit + 1
        );
        assert!(
            failures[0].message.contains(&expected),
            "{}",
            failures[0].message
        );
        assert_eq!((sender.sends_of("e-0"), sender.sends_of("e-1")), (1, 0));
    }

    #[cfg(all(feature = "sns", feature = "sqs", feature = "eventbridge"))]
    #[test]
    fn each_publisher_checks_its_own_carriers_limit() {
        use super::super::{EventBridgePublisher, SnsPublisher, SqsPublisher};
        assert_eq!(<SnsPublisher as BatchSender>::CARRIER, Carrier::Sns);
        assert_eq!(<SqsPublisher as BatchSender>::CARRIER, Carrier::Sqs);
        assert_eq!(
            <EventBridgePublisher as BatchSender>::CARRIER,
            Carrier::EventBridge
        );
    }

    #[tokio::test(start_paused = true)]
    async fn retries_only_failed_entries_until_they_pass() {
        let events: Vec<_> = (0..12).map(|i| event(i, 10)).collect();
        let sender = ScriptedSender::new(vec![("e-3", 2, true), ("e-11", 1, true)]);
        let failures = publish_all(&sender, &events, &fast(4), &ContractCheck::default()).await;
        assert!(failures.is_empty(), "{failures:?}");
        assert_eq!(sender.sends_of("e-3"), 3);
        assert_eq!(sender.sends_of("e-11"), 2);
        assert_eq!(sender.sends_of("e-0"), 1);
        let sent = sender.sent.lock().unwrap();
        assert_eq!(sent[0].len(), 10);
        assert_eq!(sent[1], ["e-3"]);
        assert_eq!(sent[2], ["e-3"]);
        assert_eq!(sent[3], ["e-10", "e-11"]);
        assert_eq!(sent[4], ["e-11"]);
    }

    #[tokio::test(start_paused = true)]
    async fn reports_what_still_fails_after_the_last_attempt() {
        let events: Vec<_> = (0..5).map(|i| event(i, 10)).collect();
        let sender = ScriptedSender::new(vec![("e-1", 100, true), ("e-4", 100, false)]);
        let failures = publish_all(&sender, &events, &fast(3), &ContractCheck::default()).await;
        assert_eq!(failures.len(), 2);
        assert_eq!((failures[0].index, failures[0].attempts), (1, 3));
        assert_eq!(failures[0].event_id, "e-1");
        assert_eq!(failures[0].message, "attempt 3");
        // A sender-fault failure is not retried: it would fail the same way.
        assert_eq!((failures[1].index, failures[1].attempts), (4, 1));
        assert_eq!(failures[1].code, "InvalidParameter");
        assert_eq!(sender.sends_of("e-4"), 1);
    }

    #[test]
    fn reported_validation_failures_are_never_retried() {
        assert!(EntryFailure::reported("0", "InternalError", None, false).retryable);
        assert!(!EntryFailure::reported("0", "InternalError", None, true).retryable);
        let invalid = EntryFailure::reported("3", "InvalidMessageContents", Some("bad"), false);
        assert_eq!((invalid.position, invalid.retryable), (3, false));
    }

    #[tokio::test(start_paused = true)]
    async fn a_failed_request_is_retried_whole_then_reported() {
        let events: Vec<_> = (0..3).map(|i| event(i, 10)).collect();
        let sender = ScriptedSender::new(vec![]);
        *sender.request_failures.lock().unwrap() = 2;
        assert!(
            publish_all(&sender, &events, &fast(3), &ContractCheck::default())
                .await
                .is_empty()
        );

        *sender.request_failures.lock().unwrap() = 5;
        let failures = publish_all(&sender, &events, &fast(2), &ContractCheck::default()).await;
        assert_eq!(failures.len(), 3);
        assert!(failures
            .iter()
            .all(|f| f.code == "RequestFailed" && f.attempts == 2));
    }

    #[tokio::test(start_paused = true)]
    async fn backoff_is_bounded() {
        let events = vec![event(0, 10)];
        let sender = ScriptedSender::new(vec![("e-0", 100, true)]);
        let started = tokio::time::Instant::now();
        publish_all(&sender, &events, &fast(5), &ContractCheck::default()).await;
        // At most 10 + 20 + 40 + 40 ms of (virtual) waiting between five attempts, each wait
        // drawn below its ceiling (full jitter).
        assert!(
            started.elapsed() <= Duration::from_millis(110),
            "{:?}",
            started.elapsed()
        );
        assert_eq!(sender.sends_of("e-0"), 5);
    }

    /// Answers every request with the service error `code` (HTTP `status`).
    struct RefusingSender {
        code: &'static str,
        status: u16,
        requests: Mutex<usize>,
    }

    impl BatchSender for RefusingSender {
        const CARRIER: Carrier = Carrier::Sqs;
        const SYSTEM: &'static str = "test";

        fn destination(&self) -> &str {
            "test"
        }

        async fn send_batch(
            &self,
            _batch: &[&OutgoingEvent],
        ) -> Result<Vec<EntryFailure>, RequestFailure> {
            *self.requests.lock().unwrap() += 1;
            Err(RequestFailure::classify(
                Some(self.code),
                Some(self.status),
                format!("{}: refused", self.code),
            ))
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_request_the_service_refuses_is_not_retried_unless_throttled_or_its_fault() {
        let events: Vec<_> = (0..3).map(|i| event(i, 10)).collect();
        for (code, status, attempts) in [
            ("NotFound", 404, 1),
            ("AWS.SimpleQueueService.NonExistentQueue", 400, 1),
            ("AuthorizationError", 403, 1),
            ("ThrottlingException", 400, 3),
            ("Throttling", 400, 3),
            ("TooManyRequests", 429, 3),
            ("InternalError", 500, 3),
            ("ServiceUnavailable", 503, 3),
        ] {
            let sender = RefusingSender {
                code,
                status,
                requests: Mutex::new(0),
            };
            let failures = publish_all(&sender, &events, &fast(3), &ContractCheck::default()).await;
            let seen: Vec<(usize, &str, u32)> = failures
                .iter()
                .map(|f| (f.index, f.code.as_str(), f.attempts))
                .collect();
            assert_eq!(
                seen,
                [
                    (0, code, attempts),
                    (1, code, attempts),
                    (2, code, attempts)
                ],
                "{code}"
            );
            assert_eq!(
                *sender.requests.lock().unwrap(),
                attempts as usize,
                "{code}"
            );
        }
    }
}
