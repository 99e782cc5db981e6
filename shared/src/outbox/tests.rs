//! The transactional layer over the in-memory store: what is committed, when, and what a
//! failure leaves behind. (The DynamoDB transaction itself is tested against DynamoDB Local
//! in tests/tests/outbox_dynamodb.rs.)

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use aws_sdk_dynamodb::types::{AttributeValue, Put};
use serde::{Deserialize, Serialize};

use super::*;
use crate::batch::{Deadline, ErrorClass, RecordError};
use crate::events::{EventEnvelope, EventRecord, Source, VersionedEvent};
use crate::handler::{Handler, Invocation, RecordHandler, RecordHandlerExt};
use crate::idempotency::{
    IdempotencyConfig, IdempotencyRecord, IdempotencyStore, InMemoryStore, Status, StoreError,
};

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Deposited {
    account: String,
}

impl VersionedEvent for Deposited {
    const EVENT_TYPE: &'static str = "Deposited";
    const CURRENT_VERSION: u32 = 1;
}

fn record(id: &str, event_id: &str) -> EventRecord {
    let body = serde_json::json!({
        "eventId": event_id, "eventType": "Deposited", "eventVersion": 1,
        "source": "test", "time": "2026-11-30T00:00:00Z",
        "correlationId": "c-1", "causationId": event_id,
        "data": {"account": "a-1"}
    });
    EventRecord::new(id, Source::Sqs, body.to_string())
}

fn invocation() -> Invocation {
    Invocation::new(Deadline::after(Duration::from_secs(30)))
}

fn put(account: &str) -> Put {
    Put::builder()
        .table_name("accounts")
        .item("account", AttributeValue::S(account.into()))
        .build()
        .unwrap()
}

/// Stages one write and one event derived from the deposit; counts its runs.
async fn stage(
    runs: &Arc<AtomicUsize>,
    deposit: EventEnvelope<Deposited>,
) -> Result<Staged<String>, RecordError> {
    runs.fetch_add(1, Ordering::SeqCst);
    let mut work = UnitOfWork::new();
    work.put(put(&deposit.data.account))?;
    let credited = EventEnvelope::caused_by(
        &deposit,
        "bank",
        Deposited {
            account: deposit.data.account.clone(),
        },
    );
    work.emit_envelope(Destination::event_bridge("bus"), &credited)?;
    Ok(work.with_output(deposit.data.account))
}

#[tokio::test]
async fn the_unit_of_work_is_committed_with_the_completion_and_never_again_for_duplicates() {
    let store = Arc::new(InMemoryStore::new());
    let runs = Arc::new(AtomicUsize::new(0));
    let handler = Handler::with_state(runs.clone(), stage).layer(TransactionalLayer::new(
        store.clone(),
        IdempotencyConfig::new("bank"),
    ));

    let first = handler
        .handle(&record("m-1", "e-1"), &invocation())
        .await
        .unwrap();
    let second = handler
        .handle(&record("m-2", "e-1"), &invocation())
        .await
        .unwrap();

    assert_eq!((first.output.as_str(), first.replayed), ("a-1", false));
    assert_eq!((second.output.as_str(), second.replayed), ("a-1", true));
    assert_eq!(runs.load(Ordering::SeqCst), 1);
    let commits = store.commits();
    assert_eq!(commits.len(), 1, "a duplicate commits nothing");
    assert_eq!(commits[0].writes.len(), 1);
    assert_eq!(commits[0].events.len(), 1);
    let event = &commits[0].events[0];
    assert_eq!(event.destination, Destination::event_bridge("bus"));
    // Derived from the cause, so a rerun would stage the very same event.
    assert_eq!(
        event.event.event_id,
        crate::events::derived_event_id("e-1", "Deposited", "bank", None).to_string()
    );
    let stored = store.get(&commits[0].key).await.unwrap().unwrap();
    assert_eq!(stored.status, Status::Completed);
}

#[tokio::test]
async fn a_failing_handler_commits_nothing_and_frees_its_key() {
    let store = Arc::new(InMemoryStore::new());
    let handler = Handler::new(|_: EventEnvelope<Deposited>| async {
        let mut work = UnitOfWork::new();
        work.put(put("a-1"))?;
        Err::<Staged<()>, _>(RecordError::transient("provider down"))
    })
    .layer(TransactionalLayer::new(
        store.clone(),
        IdempotencyConfig::new("bank"),
    ));

    let error = handler
        .handle(&record("m-1", "e-1"), &invocation())
        .await
        .unwrap_err();

    assert_eq!(error.class(), ErrorClass::Transient);
    assert!(store.commits().is_empty());
    assert!(store.is_empty(), "the claim is released");
}

/// A store whose commits fail the way a cancelled transaction does.
#[derive(Debug)]
struct RefusingStore {
    inner: InMemoryStore,
    error: fn() -> StoreError,
}

impl IdempotencyStore for RefusingStore {
    async fn claim(
        &self,
        record: &IdempotencyRecord,
        now_ms: u64,
    ) -> Result<crate::idempotency::ClaimOutcome, StoreError> {
        self.inner.claim(record, now_ms).await
    }
    async fn complete(&self, k: &str, o: &str, r: &str, e: u64) -> Result<(), StoreError> {
        self.inner.complete(k, o, r, e).await
    }
    async fn release(&self, key: &str, owner: &str) -> Result<(), StoreError> {
        self.inner.release(key, owner).await
    }
    async fn get(&self, key: &str) -> Result<Option<IdempotencyRecord>, StoreError> {
        self.inner.get(key).await
    }
}

impl TransactionalStore for RefusingStore {
    async fn complete_with(
        &self,
        _: &str,
        _: &str,
        _: &str,
        _: u64,
        _: UnitOfWork,
    ) -> Result<(), StoreError> {
        Err((self.error)())
    }
    async fn commit_alone(&self, _: UnitOfWork, _: &str) -> Result<(), StoreError> {
        Err((self.error)())
    }
}

#[tokio::test]
async fn a_refused_commit_releases_the_claim_so_a_retry_runs_the_handler_again() {
    let store = Arc::new(RefusingStore {
        inner: InMemoryStore::new(),
        error: || StoreError::StagedConditionFailed {
            position: 0,
            message: "ConditionalCheckFailed".into(),
        },
    });
    let runs = Arc::new(AtomicUsize::new(0));
    let handler = Handler::with_state(runs.clone(), stage).layer(TransactionalLayer::new(
        store.clone(),
        IdempotencyConfig::new("bank"),
    ));

    let first = handler
        .handle(&record("m-1", "e-1"), &invocation())
        .await
        .unwrap_err();
    let second = handler
        .handle(&record("m-1", "e-1"), &invocation())
        .await
        .unwrap_err();
    assert_eq!(second.class(), ErrorClass::Transient);

    assert_eq!(first.class(), ErrorClass::Transient);
    assert!(first.to_string().contains("not committed"), "{first}");
    assert_eq!(
        runs.load(Ordering::SeqCst),
        2,
        "the retry ran the handler, not AlreadyInProgress"
    );
    assert!(store.inner.is_empty(), "no claim left behind");
}

#[tokio::test]
async fn a_commit_by_an_owner_whose_claim_was_taken_over_is_fenced_and_commits_nothing() {
    let store = InMemoryStore::new();
    let claim = |owner: &str, now_ms: u64| IdempotencyRecord {
        key: "bank#k".into(),
        status: Status::InProgress,
        expiration: now_ms / 1000 + 3600,
        in_progress_expiry_ms: Some(now_ms + 1_000),
        result: None,
        payload_hash: None,
        owner: Some(owner.into()),
    };
    store.claim(&claim("a", 10_000), 10_000).await.unwrap();
    store.claim(&claim("b", 12_000), 12_000).await.unwrap();
    let mut work = UnitOfWork::new();
    work.put(put("a-1")).unwrap();

    let outcome = TransactionalStore::complete_with(&store, "bank#k", "a", "\"x\"", 99, work).await;

    assert!(matches!(outcome, Err(StoreError::Fenced)), "{outcome:?}");
    assert!(store.commits().is_empty());
    let stored = store.get("bank#k").await.unwrap().unwrap();
    assert_eq!(
        (stored.status, stored.owner.as_deref()),
        (Status::InProgress, Some("b"))
    );
}

#[test]
fn staging_past_a_transactions_limits_is_refused_when_staged() {
    let mut work = UnitOfWork::new();
    for n in 0..TRANSACTION_MAX_ACTIONS - 1 {
        work.put(put(&format!("a-{n}"))).unwrap();
    }
    assert_eq!(work.actions(), TRANSACTION_MAX_ACTIONS);
    assert_eq!(
        work.put(put("one-too-many")).unwrap_err(),
        UnitOfWorkError::TooManyActions {
            actions: TRANSACTION_MAX_ACTIONS,
            limit: TRANSACTION_MAX_ACTIONS - 1
        }
    );
    assert_eq!(
        work.writes().len(),
        TRANSACTION_MAX_ACTIONS - 1,
        "the refused write is not staged"
    );

    // Each event fits its own outbox item (under 400 KB); eleven do not fit one transaction.
    let mut large = UnitOfWork::new();
    let envelope = |n: usize| {
        EventEnvelope::new(
            "bank",
            Deposited {
                account: format!("{n}{}", "x".repeat(390 * 1000)),
            },
        )
    };
    for n in 0..10 {
        large
            .emit_envelope(Destination::sqs("q"), &envelope(n))
            .unwrap();
    }
    let refused = large
        .emit_envelope(Destination::sqs("q"), &envelope(10))
        .unwrap_err();
    assert!(matches!(
        refused,
        UnitOfWorkError::TooLarge {
            limit: TRANSACTION_MAX_BYTES,
            ..
        }
    ));
    assert_eq!(large.events().len(), 10, "the refused event is not staged");
    assert_eq!(
        crate::batch::Classify::class(&refused),
        ErrorClass::Permanent
    );
}

/// A rerun (its record expired, say) stages the very same derived event: the in-memory
/// store, like the DynamoDB one, leaves the earlier commit's event alone and records the
/// rest of the unit of work.
#[tokio::test]
async fn an_event_committed_before_is_not_committed_again() {
    let store = InMemoryStore::new();
    let cause = EventEnvelope::new(
        "tests",
        Deposited {
            account: "a-1".into(),
        },
    );
    let work = |destinations: &[Destination]| {
        let credited = EventEnvelope::caused_by(
            &cause,
            "bank",
            Deposited {
                account: "a-1".into(),
            },
        );
        let mut work = UnitOfWork::new();
        work.put(put("a-1")).unwrap();
        for destination in destinations {
            work.emit_envelope(destination.clone(), &credited).unwrap();
        }
        work
    };
    let claim = |key: &str| IdempotencyRecord {
        key: key.into(),
        status: Status::InProgress,
        expiration: 3600,
        in_progress_expiry_ms: Some(1_000),
        result: None,
        payload_hash: None,
        owner: Some("o".into()),
    };
    let (bus, queue) = (Destination::event_bridge("bus"), Destination::sqs("q"));
    for key in ["bank#1", "bank#2"] {
        store.claim(&claim(key), 0).await.unwrap();
    }

    TransactionalStore::complete_with(
        &store,
        "bank#1",
        "o",
        "1",
        9,
        work(std::slice::from_ref(&bus)),
    )
    .await
    .unwrap();
    TransactionalStore::complete_with(&store, "bank#2", "o", "1", 9, work(&[bus, queue.clone()]))
        .await
        .unwrap();
    store.commit_alone(work(&[queue]), "m-3").await.unwrap();

    let commits = store.commits();
    let destinations = |n: usize| -> Vec<String> {
        commits[n]
            .events
            .iter()
            .map(|event| event.destination.to_string())
            .collect()
    };
    assert_eq!(destinations(0), ["eventbridge:bus"]);
    assert_eq!(
        destinations(1),
        ["sqs:q"],
        "the bus's item was staged already"
    );
    assert!(destinations(2).is_empty());
    assert!(commits.iter().all(|commit| commit.writes.len() == 1));
    let completed = store.get("bank#2").await.unwrap().unwrap();
    assert_eq!(completed.status, Status::Completed, "the record completes");
}
