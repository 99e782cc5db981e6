//! Present means staged: an event whose outbox item exists was staged by an earlier commit,
//! and a rerun that stages it again leaves that item as it is, published or not.

use super::*;

impl Bank {
    /// The idempotency records, as stored.
    async fn idempotency_items(&self) -> Vec<Item> {
        self.cloud
            .dynamodb
            .scan()
            .table_name(&self.idempotency)
            .consistent_read(true)
            .send()
            .await
            .unwrap()
            .items
            .unwrap_or_default()
    }

    /// Forgets every idempotency record, as their expiry would: the next delivery of an event
    /// runs its handler again, which stages the same derived events.
    async fn expire_records(&self) {
        for item in self.idempotency_items().await {
            self.cloud
                .dynamodb
                .delete_item()
                .table_name(&self.idempotency)
                .key("id", item["id"].clone())
                .send()
                .await
                .unwrap();
        }
    }

    /// Commits a deposit of `event_id` and relays its event: one message on the queue, the
    /// outbox item marked published. Returns the marked item.
    async fn deposit_and_publish(&self, event_id: &str, account: &str) -> Item {
        let handled = self
            .handler()
            .handle(&deposit("m-1", event_id, account), &invocation())
            .await
            .unwrap();
        assert!(!handled.replayed);
        let items = self.outbox_items().await;
        let response = self.relay(stream_event("1", "INSERT", &items[0])).await;
        assert_eq!(response, json!({"batchItemFailures": []}));
        let published = self
            .cloud
            .drain(&self.queue, 1, Duration::from_secs(5))
            .await;
        assert_eq!(published.len(), 1);
        let marked = self.outbox_items().await;
        assert_eq!(marked.len(), 1);
        assert!(marked[0].contains_key("publishedAt"), "{marked:?}");
        marked[0].clone()
    }
}

#[tokio::test]
async fn a_rerun_staging_a_published_event_again_completes_and_leaves_it_published() {
    let bank = Bank::create().await;
    let (account, event_id) = (unique("acct"), unique("e"));
    let published = bank.deposit_and_publish(&event_id, &account).await;
    bank.expire_records().await;

    let rerun = bank
        .handler()
        .handle(&deposit("m-2", &event_id, &account), &invocation())
        .await
        .unwrap();

    assert_eq!((rerun.output, rerun.replayed), (250, false), "it ran again");
    let records = bank.idempotency_items().await;
    assert_eq!(records.len(), 1);
    let key = records[0]["id"].as_s().unwrap();
    let record = bank.store().get(key).await.unwrap().unwrap();
    assert_eq!(record.status, Status::Completed, "the record completes");
    let outbox = bank.outbox_items().await;
    assert_eq!(outbox.len(), 1);
    assert_eq!(outbox[0], published, "published, with its TTL, untouched");
    assert!(published.contains_key("expiration"));

    // Whatever the stream hands the relay of that item, the event is not sent again.
    let response = bank.relay(stream_event("2", "MODIFY", &outbox[0])).await;
    assert_eq!(response, json!({"batchItemFailures": []}));
    assert!(bank
        .cloud
        .receive(&bank.queue, 1, Duration::from_secs(2))
        .await
        .is_empty());
}

#[tokio::test]
async fn a_staged_condition_that_fails_beside_an_event_staged_before_still_fails_the_record() {
    let bank = Bank::create().await;
    let (account, event_id) = (unique("acct"), unique("e"));
    let published = bank.deposit_and_publish(&event_id, &account).await;
    bank.expire_records().await;
    bank.cloud
        .dynamodb
        .update_item()
        .table_name(&bank.accounts)
        .key("account", AttributeValue::S(account.clone()))
        .update_expression("SET frozen = :yes")
        .expression_attribute_values(":yes", AttributeValue::Bool(true))
        .send()
        .await
        .unwrap();

    let error = bank
        .handler()
        .handle(&deposit("m-2", &event_id, &account), &invocation())
        .await
        .unwrap_err();

    assert_eq!(error.class(), ErrorClass::Transient);
    assert!(error.to_string().contains("not committed"), "{error}");
    assert_eq!(bank.balance(&account).await, Some(250), "nothing was added");
    assert_eq!(bank.outbox_items().await, [published]);
    assert!(
        bank.idempotency_items().await.is_empty(),
        "the claim was released"
    );
}

/// The store's commit on its own: of two events, the one staged before is left alone and
/// the new one is written, with the completion, in the transaction sent again.
#[tokio::test]
async fn of_a_unit_of_works_events_only_those_not_staged_before_are_written() {
    let bank = Bank::create().await;
    let (account, event_id) = (unique("acct"), unique("e"));
    let published = bank.deposit_and_publish(&event_id, &account).await;
    let other_queue = bank.cloud.create_queue("audit", &[]).await;
    let store = bank.store();
    let key = unique("bank#k");
    let now_ms = u64::try_from(chrono::Utc::now().timestamp_millis()).unwrap();
    let claim = IdempotencyRecord {
        key: key.clone(),
        status: Status::InProgress,
        expiration: now_ms / 1000 + 3600,
        in_progress_expiry_ms: Some(now_ms + 60_000),
        result: None,
        payload_hash: None,
        owner: Some("owner-a".into()),
    };
    store.claim(&claim, now_ms).await.unwrap();
    let cause: EventEnvelope<Value> =
        serde_json::from_value(deposited(&event_id, &account)).unwrap();
    let credited = EventEnvelope::caused_by(
        &cause,
        "bank",
        Deposited {
            account: account.clone(),
            cents: 250,
        },
    );
    let mut work = UnitOfWork::new();
    work.emit_envelope(Destination::sqs(&bank.queue.url), &credited)
        .unwrap();
    work.emit_envelope(Destination::sqs(&other_queue.url), &credited)
        .unwrap();

    store
        .complete_with(&key, "owner-a", "250", now_ms / 1000 + 60, work)
        .await
        .unwrap();

    let record = store.get(&key).await.unwrap().unwrap();
    assert_eq!(record.status, Status::Completed);
    let outbox = bank.outbox_items().await;
    assert_eq!(outbox.len(), 2, "{outbox:?}");
    let audit = format!("sqs:{}", other_queue.url);
    let (new, old): (Vec<&Item>, Vec<&Item>) = outbox
        .iter()
        .partition(|item| item["destination"].as_s().unwrap() == &audit);
    assert_eq!(old, [&published]);
    assert!(!new[0].contains_key("publishedAt"));
    assert_eq!(new[0]["committedBy"].as_s().unwrap(), &key);
}
