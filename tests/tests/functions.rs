//! Each function of the order pipeline, invoked with its `events/` samples exactly as Lambda
//! would deliver them, against its own tables in DynamoDB Local and its own bus in
//! LocalStack: the tables end as expected, the expected events are published, and a
//! duplicate delivered twice has one effect.

use std::time::Duration;

use aws_sdk_dynamodb::types::AttributeValue;
use eventkit::batch::Deadline;
use eventkit::handler::RecordHandlerExt;
use eventkit_tests::{LocalCloud, Pipeline};
use serde_json::{json, Value};

fn sample(path: &str) -> Value {
    let path = format!("{}/../events/{path}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The records of an SQS sample, as the function's batch processing takes them (bodies
/// unwrapped as the runtime unwraps them).
fn records_of(sample: &Value) -> Vec<eventkit::events::EventRecord> {
    let event: aws_lambda_events::sqs::SqsEvent =
        serde_json::from_value(sample.clone()).expect("an SQS event");
    eventkit::events::records_from(&event, &Default::default())
}

/// The envelope inside a one-record sample (SQS body, SNS message or EventBridge detail).
fn envelope_of(sample: &Value) -> Value {
    let record = &sample["Records"][0];
    if let Some(message) = record["Sns"]["Message"].as_str() {
        return serde_json::from_str(message).unwrap();
    }
    if let Some(body) = record["body"].as_str() {
        let body: Value = serde_json::from_str(body).unwrap();
        return if body.get("detail").is_some() {
            body["detail"].clone()
        } else {
            body
        };
    }
    sample["detail"].clone()
}

/// An SQS event carrying `envelope` as the body of one record.
fn sqs_event_with(envelope: &Value, message_id: &str) -> Value {
    json!({"Records": [{
        "messageId": message_id, "receiptHandle": "r", "body": envelope.to_string(),
        "attributes": {"ApproximateReceiveCount": "1"}, "messageAttributes": {},
        "eventSource": "aws:sqs", "eventSourceARN": "arn:aws:sqs:us-east-1:000000000000:orders",
        "awsRegion": "us-east-1"
    }]})
}

fn deadline() -> Deadline {
    Deadline::after(Duration::from_secs(30))
}

fn no_failures() -> Value {
    json!({"batchItemFailures": []})
}

async fn seeded(pipeline: &Pipeline) {
    let seed = sample("inventory/seed.json");
    let stock: Vec<(String, u64)> = seed
        .as_array()
        .unwrap()
        .iter()
        .map(|item| {
            (
                item["sku"].as_str().unwrap().to_string(),
                item["available"].as_u64().unwrap(),
            )
        })
        .collect();
    let stock: Vec<(&str, u64)> = stock.iter().map(|(sku, n)| (sku.as_str(), *n)).collect();
    pipeline.seed_stock(&stock).await;
}

async fn inventory(pipeline: &Pipeline) -> inventory::Function {
    seeded(pipeline).await;
    let stock = inventory::Stock::new(pipeline.cloud.dynamodb.clone(), &pipeline.inventory_table);
    let service = inventory::Inventory::new(stock, pipeline.bus_destination());
    inventory::function(service, pipeline.idempotency("inventory"))
}

async fn setup() -> Pipeline {
    Pipeline::create(&LocalCloud::connect().await).await
}

#[tokio::test]
async fn inventory_reserves_every_line_and_publishes_stock_reserved() {
    let pipeline = setup().await;
    let function = inventory(&pipeline).await;
    let placed = sample("inventory/order-placed.sqs.json");
    let cause = envelope_of(&placed);

    let response = function.handle(placed, deadline()).await.unwrap();

    assert_eq!(response, no_failures());
    assert_eq!(pipeline.stock("KB-MECH-001").await, Some(49));
    assert_eq!(pipeline.stock("MS-WIRELESS-002").await, Some(198));
    let published = pipeline.published_events(1, Duration::from_secs(10)).await;
    assert_eq!(published.len(), 1, "{published:?}");
    let reserved = &published[0];
    assert_eq!(reserved.event_type, "StockReserved");
    assert_eq!(reserved.data["orderId"], cause["data"]["orderId"]);
    assert_eq!(
        reserved.correlation_id,
        cause["correlationId"].as_str().unwrap()
    );
    assert_eq!(reserved.causation_id, cause["eventId"].as_str().unwrap());
}

#[tokio::test]
async fn inventory_reserves_a_duplicate_once() {
    let pipeline = setup().await;
    let function = inventory(&pipeline).await;

    for file in [
        "inventory/order-placed.sqs.json",
        "inventory/order-placed-duplicate.sqs.json",
    ] {
        let response = function.handle(sample(file), deadline()).await.unwrap();
        assert_eq!(response, no_failures(), "{file}");
    }

    assert_eq!(pipeline.stock("KB-MECH-001").await, Some(49));
    assert_eq!(pipeline.stock("MS-WIRELESS-002").await, Some(198));
    let published = pipeline.published_events(1, Duration::from_secs(10)).await;
    assert_eq!(
        published.len(),
        1,
        "one StockReserved for two deliveries: {published:?}"
    );
}

#[tokio::test]
async fn inventory_rejects_an_order_it_cannot_fill_and_never_goes_negative() {
    let pipeline = setup().await;
    let function = inventory(&pipeline).await;

    let response = function
        .handle(sample("inventory/out-of-stock.sqs.json"), deadline())
        .await
        .unwrap();

    assert_eq!(response, no_failures());
    assert_eq!(pipeline.stock("HEADSET-005").await, Some(0));
    let published = pipeline.published_events(1, Duration::from_secs(10)).await;
    assert_eq!(published.len(), 1);
    assert_eq!(published[0].event_type, "StockReservationFailed");
    assert_eq!(published[0].data["sku"], "HEADSET-005");
}

#[tokio::test]
async fn inventory_reports_a_poison_message_and_touches_nothing() {
    let pipeline = setup().await;
    let function = inventory(&pipeline).await;
    let poison = sample("inventory/poison.sqs.json");
    let message_id = poison["Records"][0]["messageId"].clone();

    let response = function.handle(poison, deadline()).await.unwrap();

    assert_eq!(
        response,
        json!({"batchItemFailures": [{"itemIdentifier": message_id}]})
    );
    assert_eq!(pipeline.stock("KB-MECH-001").await, Some(50));
    let published = pipeline.published_events(0, Duration::from_secs(2)).await;
    assert!(published.is_empty(), "{published:?}");
}

#[tokio::test]
async fn a_declined_payment_releases_the_stock_once() {
    let pipeline = setup().await;
    let function = inventory(&pipeline).await;
    let declined_order = sample("orders/03-declined-amount-ends-in-13.json");
    let placed = sqs_event_with(&declined_order, "m-order-3");
    assert_eq!(
        function.handle(placed, deadline()).await.unwrap(),
        no_failures()
    );
    assert_eq!(pipeline.stock("USB-C-HUB-004").await, Some(74));
    let reservation = pipeline
        .item(
            &pipeline.inventory_table,
            "sku",
            "reservation#ord-9e0f1a2b-3c4d-4e5f-a6b7-c8d9e0f1a333",
        )
        .await
        .expect("the order is reserved");
    let expiration: u64 = reservation[inventory::EXPIRATION_ATTRIBUTE]
        .as_n()
        .expect("the reservation expires (the table's TTL attribute)")
        .parse()
        .expect("epoch seconds");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970")
        .as_secs();
    let lifetime = inventory::RESERVATION_LIFETIME.as_secs();
    assert!(
        (now + lifetime - 60..=now + lifetime + 60).contains(&expiration),
        "expiration {expiration} is not now ({now}) + {lifetime} s"
    );

    // PaymentFailed, delivered twice (an EventBridge event inside the SQS body).
    for _ in 0..2 {
        let failed = sample("inventory/payment-failed.sqs.json");
        assert_eq!(
            function.handle(failed, deadline()).await.unwrap(),
            no_failures()
        );
    }

    assert_eq!(pipeline.stock("USB-C-HUB-004").await, Some(75));
    // The bus's target is a standard queue, which keeps no order: compared as a set.
    let mut types: Vec<String> = pipeline
        .published_events(2, Duration::from_secs(10))
        .await
        .into_iter()
        .map(|event| event.event_type)
        .collect();
    types.sort();
    assert_eq!(types, ["StockReleased", "StockReserved"]);
    let reservation = pipeline
        .item(
            &pipeline.inventory_table,
            "sku",
            "reservation#ord-9e0f1a2b-3c4d-4e5f-a6b7-c8d9e0f1a333",
        )
        .await;
    assert!(
        reservation.is_none(),
        "the reservation is gone once released"
    );
}

/// What the idempotency table holds after a handler ran, published and then died before
/// its completion was written (a crash, a timeout, a failed completion write), once the
/// claim's window has passed: nothing. The next delivery runs the handler again.
async fn lose_every_completion(pipeline: &Pipeline) {
    for item in pipeline.scan(&pipeline.idempotency_table).await {
        pipeline
            .cloud
            .dynamodb
            .delete_item()
            .table_name(&pipeline.idempotency_table)
            .key("id", item["id"].clone())
            .send()
            .await
            .expect("DeleteItem");
    }
}

#[tokio::test]
async fn inventory_rerun_after_a_lost_completion_neither_reserves_nor_reports_again() {
    let pipeline = setup().await;
    let function = inventory(&pipeline).await;
    let placed = sample("inventory/order-placed.sqs.json");

    let response = function.handle(placed.clone(), deadline()).await.unwrap();
    assert_eq!(response, no_failures());
    let first = pipeline.published_events(1, Duration::from_secs(10)).await;
    lose_every_completion(&pipeline).await;
    let response = function.handle(placed, deadline()).await.unwrap();
    assert_eq!(response, no_failures());
    let again = pipeline.published_events(1, Duration::from_secs(3)).await;

    // The reservation is not repeated (it was read as done), and nothing is reported again:
    // the reservation committed with its StockReserved in one transaction, so finding it
    // means the event was committed already (and published: the sweeper keeps a record
    // until its events are). (A handler whose event does need staging again stages the same
    // id: see the payments rerun below.)
    assert_eq!(pipeline.stock("KB-MECH-001").await, Some(49));
    assert_eq!((first.len(), again.len()), (1, 0), "{first:?} {again:?}");
    assert_eq!(first[0].event_type, "StockReserved");
    let committed = pipeline.committed_events().await;
    assert!(committed.is_empty(), "nothing staged again: {committed:?}");
}

/// The payment provider is outside the transaction: a rerun (its record expired, after the
/// redelivery horizon, or deleted) asks it again, under the same idempotency key, and is
/// answered from its ledger, not charged again. It stages the same PaymentCompleted (same
/// derived id): its events ride on its record, so with the record gone nothing remembers the
/// first commit, and the event is published again under the same id, for consumers'
/// idempotency to absorb (eventkit's outbox docs: events on completions).
#[tokio::test]
async fn payments_rerun_after_a_lost_completion_charges_once_and_publishes_the_same_event() {
    let pipeline = setup().await;
    let function = payments(&pipeline);
    let reserved = sample("payments/stock-reserved.sqs.json");
    let event_id = envelope_of(&reserved)["eventId"]
        .as_str()
        .unwrap()
        .to_string();
    let order_id = envelope_of(&reserved)["data"]["orderId"]
        .as_str()
        .unwrap()
        .to_string();

    let response = function.handle(reserved.clone(), deadline()).await.unwrap();
    assert_eq!(response, no_failures());
    let first = pipeline.published_events(1, Duration::from_secs(10)).await;
    let charged = pipeline.charges().await;
    lose_every_completion(&pipeline).await;
    let response = function.handle(reserved, deadline()).await.unwrap();
    assert_eq!(response, no_failures());
    let again = pipeline.published_events(1, Duration::from_secs(3)).await;

    let s = |text: &str| AttributeValue::S(text.into());
    assert_eq!((first.len(), again.len()), (1, 1), "{first:?} {again:?}");
    assert_eq!(first[0].event_type, "PaymentCompleted");
    assert_eq!(
        (&again[0].event_type, &again[0].event_id, &again[0].data),
        (&first[0].event_type, &first[0].event_id, &first[0].data),
        "the same event, under the same id"
    );
    let committed = pipeline.committed_events().await;
    let ids: Vec<(&str, bool)> = committed
        .iter()
        .map(|event| (event.event_id.as_str(), event.published))
        .collect();
    assert_eq!(ids, [(first[0].event_id.as_str(), true)], "{committed:?}");
    // One charge, asked for twice: the second request only counted.
    let charges = pipeline.charges().await;
    assert_eq!(charges.len(), 1, "{charges:?}");
    let (charged_order, entry) = &charges[0];
    assert_eq!(charged_order, &order_id);
    assert_eq!(entry["idempotencyKey"], s(&format!("charge:{event_id}")));
    assert_eq!(entry["outcome"], s("approved"));
    assert_eq!(entry["paymentId"], s(&format!("pay-{order_id}")));
    assert_eq!(entry["amountCents"], AttributeValue::N("14997".into()));
    assert_eq!(entry["currency"], s("USD"));
    assert_eq!(entry["requests"], AttributeValue::N("2".into()));
    assert_eq!(
        entry["chargedAt"], charged[0].1["chargedAt"],
        "the first charge's record, untouched"
    );
    assert_eq!(first[0].data["paymentId"], format!("pay-{order_id}"));
}

/// The stock, the event (on the record) and the completion are written by one transaction:
/// after the run all three are there, before it none (the "not at all" half, a refused
/// commit leaving nothing, is tests/tests/outbox_dynamodb.rs's).
#[tokio::test]
async fn inventory_commits_stock_event_and_completion_together() {
    let pipeline = setup().await;
    let function = inventory(&pipeline).await;
    let placed = sample("inventory/order-placed.sqs.json");

    let response = function.handle(placed, deadline()).await.unwrap();
    assert_eq!(response, no_failures());

    // One event, on the completion written by the same transaction as the stock.
    let completions = pipeline.scan(&pipeline.idempotency_table).await;
    assert_eq!(completions.len(), 1, "{completions:?}");
    assert_eq!(completions[0]["status"].as_s().unwrap(), "COMPLETED");
    let committed = pipeline.committed_events().await;
    let types: Vec<(&str, bool)> = committed
        .iter()
        .map(|event| (event.event_type.as_str(), event.published))
        .collect();
    assert_eq!(types, [("StockReserved", false)], "{committed:?}");
    assert_eq!(pipeline.stock("KB-MECH-001").await, Some(49));
}

fn provider(pipeline: &Pipeline) -> payments::FakeProvider {
    payments::FakeProvider::new(pipeline.cloud.dynamodb.clone(), &pipeline.ledger_table)
}

fn payments(pipeline: &Pipeline) -> payments::Function {
    let service = payments::Payments::new(provider(pipeline), pipeline.bus_destination());
    payments::function(service, pipeline.idempotency("payments"))
}

#[tokio::test]
async fn payments_charges_once_and_declines_amounts_ending_in_13() {
    let pipeline = setup().await;
    let function = payments(&pipeline);
    let reserved = sample("payments/stock-reserved.sqs.json");
    let order_id = envelope_of(&reserved)["data"]["orderId"]
        .as_str()
        .unwrap()
        .to_string();

    for _ in 0..2 {
        let result = function.handle(reserved.clone(), deadline()).await.unwrap();
        assert_eq!(result, no_failures());
    }
    let declined = sample("payments/stock-reserved-declined.sqs.json");
    assert_eq!(
        function.handle(declined, deadline()).await.unwrap(),
        no_failures()
    );

    let mut published = pipeline.published_events(2, Duration::from_secs(10)).await;
    published.sort_by(|a, b| a.event_type.cmp(&b.event_type));
    let types: Vec<&str> = published.iter().map(|e| e.event_type.as_str()).collect();
    assert_eq!(
        types,
        ["PaymentCompleted", "PaymentFailed"],
        "one charge for two deliveries"
    );
    assert_eq!(published[0].data["paymentId"], format!("pay-{order_id}"));
    assert_eq!(published[1].data["order"]["amountCents"], 4513);
    // The duplicate was replayed by the idempotency layer: the provider saw one request
    // per order, and recorded the decline as well as the charge.
    let charges = pipeline.charges().await;
    let recorded: Vec<(&str, &str)> = charges
        .iter()
        .map(|(_, entry)| {
            (
                entry["outcome"].as_s().unwrap().as_str(),
                entry["requests"].as_n().unwrap().as_str(),
            )
        })
        .collect();
    let mut recorded = recorded;
    recorded.sort_unstable();
    assert_eq!(recorded, [("approved", "1"), ("declined", "1")]);
}

fn order_of(sample: &Value) -> orders::Order {
    serde_json::from_value(envelope_of(sample)["data"].clone()).unwrap()
}

#[tokio::test]
async fn the_provider_refuses_a_malformed_ledger_entry_or_a_key_reused_for_another_order() {
    let pipeline = setup().await;
    let provider = provider(&pipeline);
    let order = order_of(&sample("payments/stock-reserved.sqs.json"));
    let put = |key: &str, outcome: &str| {
        pipeline
            .cloud
            .dynamodb
            .put_item()
            .table_name(&pipeline.ledger_table)
            .item("idempotencyKey", AttributeValue::S(key.into()))
            .item("orderId", AttributeValue::S(order.order_id.clone()))
            .item("amountCents", AttributeValue::N("14997".into()))
            .item("currency", AttributeValue::S("USD".into()))
            .item("outcome", AttributeValue::S(outcome.into()))
            .item("paymentId", AttributeValue::S("pay-x".into()))
            .item(
                "chargedAt",
                AttributeValue::S("2026-11-22T10:15:31Z".into()),
            )
            .item("requests", AttributeValue::N("1".into()))
            .send()
    };
    put("charge:bad", "maybe").await.expect("PutItem");
    let error = provider.charge(&order, "charge:bad").await.unwrap_err();
    assert_eq!(
        error.to_string(),
        r#"payment provider's ledger entry charge:bad is malformed: attribute outcome: "maybe" is neither "approved" nor "declined""#
    );
    assert_eq!(
        eventkit::batch::Classify::class(&error),
        eventkit::batch::ErrorClass::Permanent
    );

    put("charge:other", "approved").await.expect("PutItem");
    let other = orders::Order {
        order_id: "ord-other".into(),
        ..order.clone()
    };
    let error = provider.charge(&other, "charge:other").await.unwrap_err();
    assert_eq!(
        error.to_string(),
        format!(
            "idempotency key charge:other was first used for order {} (14997 cents), not order ord-other (14997 cents)",
            order.order_id
        )
    );
    // Unreachable ledger: transient, the record is retried.
    let unreachable = aws_sdk_dynamodb::Client::from_conf(
        aws_sdk_dynamodb::config::Builder::from(&pipeline.cloud.config)
            .endpoint_url("http://127.0.0.1:9")
            .retry_config(aws_sdk_dynamodb::config::retry::RetryConfig::disabled())
            .build(),
    );
    let error = payments::FakeProvider::new(unreachable, &pipeline.ledger_table)
        .charge(&order, "charge:new")
        .await
        .unwrap_err();
    assert_eq!(
        eventkit::batch::Classify::class(&error),
        eventkit::batch::ErrorClass::Transient,
        "{error}"
    );
}

fn notifications(pipeline: &Pipeline) -> notifications::Function {
    let emails = notifications::SentEmails::new(
        pipeline.cloud.dynamodb.clone(),
        &pipeline.notifications_table,
    );
    notifications::function(emails, pipeline.idempotency("notifications"))
}

/// The email and the completion are written by one transaction: after a run both are
/// there; a run whose completion is refused (its claim taken over meanwhile) leaves no
/// email either, where a handler writing the email itself would have sent it.
#[tokio::test]
async fn notifications_commit_the_email_and_the_completion_together() {
    let pipeline = setup().await;
    let function = notifications(&pipeline);
    let placed = sample("notifications/order-placed.sqs.json");
    let event_id = envelope_of(&placed)["eventId"]
        .as_str()
        .unwrap()
        .to_string();

    assert_eq!(
        function.handle(placed.clone(), deadline()).await.unwrap(),
        no_failures()
    );
    let emails = pipeline.scan(&pipeline.notifications_table).await;
    assert_eq!(emails.len(), 1, "{emails:?}");
    let completions = pipeline.scan(&pipeline.idempotency_table).await;
    assert_eq!(completions.len(), 1, "{completions:?}");
    assert_eq!(completions[0]["status"].as_s().unwrap(), "COMPLETED");
    let stored: Value =
        serde_json::from_str(completions[0]["data"].as_s().unwrap()).expect("stored result");
    assert_eq!(stored, json!({"notificationId": event_id, "sentNow": true}));

    // The receipt's run loses its claim before it commits: neither its completion nor its
    // email is written.
    let completed = sample("notifications/payment-completed.sqs.json");
    let receipt_id = envelope_of(&completed)["eventId"]
        .as_str()
        .unwrap()
        .to_string();
    let interrupted = interfered(&pipeline, Interference::ClaimTakenOver);
    let outcome = interrupted
        .process(records_of(&completed), deadline())
        .await;
    let failures: Vec<_> = outcome.failures().collect();
    assert_eq!(failures.len(), 1, "{failures:?}");
    assert!(
        failures[0].1.reason.contains("was taken over"),
        "{failures:?}"
    );
    assert!(pipeline
        .item(&pipeline.notifications_table, "notificationId", &receipt_id)
        .await
        .is_none());
    assert_eq!(pipeline.scan(&pipeline.notifications_table).await.len(), 1);
}

/// What happens between the notifications handler's staging and its commit.
#[derive(Clone, Copy)]
enum Interference {
    /// Another run's email for the same event is committed (a race lost).
    EmailSentElsewhere,
    /// Another delivery takes the claim over (as after this run's timeout).
    ClaimTakenOver,
}

/// The notifications handler, with `interference` after it staged its email.
struct Interfered {
    emails: notifications::SentEmails,
    pipeline: Pipeline,
    interference: Interference,
}

impl eventkit::handler::EventHandler for Interfered {
    type Event = notifications::NotificationEvent;
    type Output = eventkit::outbox::Staged<notifications::Handled>;
    type Error = eventkit::batch::RecordError;

    async fn handle(
        &self,
        event: notifications::NotificationEvent,
        invocation: &eventkit::handler::Invocation,
    ) -> Result<Self::Output, Self::Error> {
        let email = event.email();
        let staged = self.emails.handle(event, invocation).await?;
        let dynamodb = &self.pipeline.cloud.dynamodb;
        match self.interference {
            Interference::EmailSentElsewhere => {
                dynamodb
                    .put_item()
                    .table_name(&self.pipeline.notifications_table)
                    .item("notificationId", AttributeValue::S(email.notification_id))
                    .item("sentBy", AttributeValue::S("the other run".into()))
                    .send()
                    .await
                    .expect("PutItem");
            }
            Interference::ClaimTakenOver => {
                for claim in self.pipeline.scan(&self.pipeline.idempotency_table).await {
                    if claim["status"].as_s().is_ok_and(|s| s == "INPROGRESS") {
                        dynamodb
                            .update_item()
                            .table_name(&self.pipeline.idempotency_table)
                            .key("id", claim["id"].clone())
                            .update_expression("SET #owner = :other")
                            .expression_attribute_names("#owner", "owner")
                            .expression_attribute_values(
                                ":other",
                                AttributeValue::S("another-delivery".into()),
                            )
                            .send()
                            .await
                            .expect("UpdateItem");
                    }
                }
            }
        }
        Ok(staged)
    }
}

/// The notifications function, with `interference` before each commit.
fn interfered(
    pipeline: &Pipeline,
    interference: Interference,
) -> eventkit::runtime::EventFunction<
    eventkit::outbox::Transactional<
        eventkit::handler::Handler<Interfered>,
        eventkit::idempotency::DynamoDbStore,
    >,
> {
    eventkit::runtime::EventFunction::new(
        eventkit::handler::Handler::from_service(Interfered {
            emails: notifications::SentEmails::new(
                pipeline.cloud.dynamodb.clone(),
                &pipeline.notifications_table,
            ),
            pipeline: pipeline.clone(),
            interference,
        })
        .layer(eventkit::outbox::TransactionalLayer::from(
            pipeline.idempotency("notifications"),
        )),
    )
}

#[tokio::test]
async fn a_notification_race_lost_at_commit_is_retried_and_read_as_sent() {
    let pipeline = setup().await;
    let placed = sample("notifications/order-placed.sqs.json");
    let event_id = envelope_of(&placed)["eventId"]
        .as_str()
        .unwrap()
        .to_string();
    let racing = interfered(&pipeline, Interference::EmailSentElsewhere);

    // The staged email's condition fails at commit: nothing of the run is written (the
    // other run's email stays as it was), the claim is released, the record fails for a
    // retry.
    let outcome = racing.process(records_of(&placed), deadline()).await;
    // The reason the log gives names the record's key and what failed.
    let record_id = placed["Records"][0]["messageId"].as_str().unwrap();
    let key = eventkit::idempotency::key::idempotency_key("notifications", &json!(event_id));
    let failures: Vec<_> = outcome.failures().collect();
    assert_eq!(failures.len(), 1, "{failures:?}");
    assert_eq!(failures[0].0, record_id);
    assert_eq!(failures[0].1.class, eventkit::batch::ErrorClass::Transient);
    assert_eq!(
        failures[0].1.reason,
        format!(
            "handler for record {record_id} ran but its unit of work under idempotency key {key} \
             was not committed; nothing of it happened: staged write 0 of the unit of work failed \
             its condition: The conditional request failed"
        )
    );
    assert!(
        pipeline.scan(&pipeline.idempotency_table).await.is_empty(),
        "claim released"
    );
    let email = pipeline
        .item(&pipeline.notifications_table, "notificationId", &event_id)
        .await
        .expect("the other run's email");
    assert_eq!(email["sentBy"], AttributeValue::S("the other run".into()));
    assert!(!email.contains_key("sentAt"), "not overwritten: {email:?}");

    // The retry reads the email as sent, stages nothing and completes.
    let function = notifications(&pipeline);
    assert_eq!(
        function.handle(placed, deadline()).await.unwrap(),
        no_failures()
    );
    let completions = pipeline.scan(&pipeline.idempotency_table).await;
    assert_eq!(completions.len(), 1, "{completions:?}");
    let stored: Value =
        serde_json::from_str(completions[0]["data"].as_s().unwrap()).expect("stored result");
    assert_eq!(
        stored,
        json!({"notificationId": event_id, "sentNow": false})
    );
    assert_eq!(pipeline.scan(&pipeline.notifications_table).await.len(), 1);
}

#[tokio::test]
async fn notifications_sends_one_email_per_event() {
    let pipeline = setup().await;
    let function = notifications(&pipeline);
    let placed = sample("notifications/order-placed.sqs.json");
    let completed = sample("notifications/payment-completed.sqs.json");

    for payload in [&placed, &placed, &completed, &completed] {
        assert_eq!(
            function.handle(payload.clone(), deadline()).await.unwrap(),
            no_failures()
        );
    }

    let emails = pipeline.scan(&pipeline.notifications_table).await;
    assert_eq!(
        emails.len(),
        2,
        "two events, two emails, whatever the deliveries"
    );
    let confirmation = pipeline
        .item(
            &pipeline.notifications_table,
            "notificationId",
            envelope_of(&placed)["eventId"].as_str().unwrap(),
        )
        .await
        .expect("confirmation recorded");
    assert_eq!(
        confirmation["kind"],
        AttributeValue::S("order-confirmation".into())
    );
    assert_eq!(
        confirmation["to"],
        AttributeValue::S("ada.lovelace@example.com".into())
    );
    let receipt = pipeline
        .item(
            &pipeline.notifications_table,
            "notificationId",
            envelope_of(&completed)["eventId"].as_str().unwrap(),
        )
        .await
        .expect("receipt recorded");
    assert_eq!(receipt["kind"], AttributeValue::S("payment-receipt".into()));
}

#[tokio::test]
async fn analytics_counts_each_event_exactly_once() {
    let pipeline = setup().await;
    let counters = analytics::Counters::new(&pipeline.analytics_table);
    let function = analytics::function(counters, pipeline.idempotency("analytics"));
    let batch = sample("analytics/order-events.sqs.json");

    for _ in 0..2 {
        assert_eq!(
            function.handle(batch.clone(), deadline()).await.unwrap(),
            no_failures()
        );
    }

    let mut counts: Vec<(String, String)> = pipeline
        .scan(&pipeline.analytics_table)
        .await
        .into_iter()
        .map(|item| {
            let pk = item["pk"].as_s().unwrap().clone();
            let count = item["count"].as_n().unwrap().clone();
            (pk, count)
        })
        .collect();
    counts.sort();
    let day = "2026-11-22";
    let mut expected: Vec<(String, String)> = [
        "OrderPlaced",
        "PaymentCompleted",
        "PaymentFailed",
        "StockReleased",
        "StockReservationFailed",
        "StockReserved",
    ]
    .iter()
    .map(|event_type| (format!("{event_type}#{day}"), "1".to_string()))
    .collect();
    expected.sort();
    assert_eq!(counts, expected);
}

// ------------------------------------------------ promises behind the idempotency layer

/// `envelope` with a new eventId: the same business event as another delivery would carry
/// it after its producer re-sent it (a new id, the same order).
fn reissued(envelope: &Value, event_id: &str) -> Value {
    let mut copy = envelope.clone();
    copy["eventId"] = json!(event_id);
    copy
}

/// An SQS event carrying `detail` inside an EventBridge event, as the compensation queue
/// receives PaymentFailed.
fn sqs_eventbridge_event_with(detail: &Value, message_id: &str) -> Value {
    let event = json!({
        "version": "0", "id": format!("eb-{message_id}"), "detail-type": detail["eventType"],
        "source": detail["source"], "account": "000000000000", "time": detail["time"],
        "region": "us-east-1", "resources": [], "detail": detail,
    });
    sqs_event_with(&event, message_id)
}

#[tokio::test]
async fn inventory_reserves_every_line_or_none_and_names_the_short_sku() {
    let pipeline = setup().await;
    let function = inventory(&pipeline).await;
    // Two lines: the monitor has 10 in stock, the hub 75; the hub's line asks for 76.
    let mut order = sample("orders/02-accepted-two-items.json");
    order["data"]["items"][1]["quantity"] = json!(76);

    let response = function
        .handle(sqs_event_with(&order, "m-short"), deadline())
        .await
        .unwrap();

    assert_eq!(
        response,
        no_failures(),
        "a rejection is an outcome, not a failure"
    );
    assert_eq!(
        pipeline.stock("MON-27-4K-003").await,
        Some(10),
        "no line reserved"
    );
    assert_eq!(pipeline.stock("USB-C-HUB-004").await, Some(75));
    let order_id = order["data"]["orderId"].as_str().unwrap();
    let reservation = pipeline
        .item(
            &pipeline.inventory_table,
            "sku",
            &format!("reservation#{order_id}"),
        )
        .await;
    assert!(reservation.is_none(), "{reservation:?}");
    let published = pipeline.published_events(1, Duration::from_secs(10)).await;
    let rejected: Vec<(&str, &Value, &Value)> = published
        .iter()
        .map(|e| (e.event_type.as_str(), &e.data["orderId"], &e.data["sku"]))
        .collect();
    assert_eq!(
        rejected,
        [(
            "StockReservationFailed",
            &json!(order_id),
            &json!("USB-C-HUB-004")
        )]
    );
}

#[tokio::test]
async fn one_order_placed_under_two_event_ids_is_reserved_once() {
    let pipeline = setup().await;
    let function = inventory(&pipeline).await;
    let order = envelope_of(&sample("inventory/order-placed.sqs.json"));
    // The idempotency layer lets the second through (another eventId): the reservation's own
    // condition is what keeps the stock from being taken twice.
    // Ids of the entrance's form (random UUIDs), as a producer would mint them.
    let ids = [
        uuid::Uuid::new_v4().to_string(),
        uuid::Uuid::new_v4().to_string(),
    ];
    for (event_id, message_id) in [(&ids[0], "m-1"), (&ids[1], "m-2")] {
        let delivery = sqs_event_with(&reissued(&order, event_id), message_id);
        let response = function.handle(delivery, deadline()).await.unwrap();
        assert_eq!(response, no_failures(), "{event_id}");
    }

    assert_eq!(pipeline.stock("KB-MECH-001").await, Some(49));
    assert_eq!(pipeline.stock("MS-WIRELESS-002").await, Some(198));
    // The order is reported once: a second StockReserved (its id derived from another
    // cause) would be charged again by payments.
    let published = pipeline.published_events(1, Duration::from_secs(10)).await;
    let reserved: Vec<(&str, &Value, &str)> = published
        .iter()
        .map(|e| {
            (
                e.event_type.as_str(),
                &e.data["orderId"],
                e.causation_id.as_str(),
            )
        })
        .collect();
    let order_id = &order["data"]["orderId"];
    assert_eq!(reserved, [("StockReserved", order_id, ids[0].as_str())]);
}

#[tokio::test]
async fn one_payment_failure_under_two_event_ids_releases_the_stock_once() {
    let pipeline = setup().await;
    let function = inventory(&pipeline).await;
    let declined_order = sample("orders/03-declined-amount-ends-in-13.json");
    let placed = sqs_event_with(&declined_order, "m-order-3");
    assert_eq!(
        function.handle(placed, deadline()).await.unwrap(),
        no_failures()
    );
    assert_eq!(pipeline.stock("USB-C-HUB-004").await, Some(74));

    // Four deliveries of one PaymentFailed under four eventIds, in one batch (run
    // concurrently), then a fifth after them: the idempotency layer lets every one through.
    // The stock table is reached through a proxy that makes every round trip take 300 ms, so
    // all four read the reservation before any of them can have deleted it: they race.
    let slow_table = xtask::proxy::Proxy::start(
        eventkit_tests::dynamodb_address(),
        Duration::from_millis(300),
    )
    .await
    .expect("the proxy listens");
    let slow_client = aws_sdk_dynamodb::Client::from_conf(
        aws_sdk_dynamodb::config::Builder::from(&pipeline.cloud.config)
            .endpoint_url(slow_table.endpoint())
            .build(),
    );
    let racing = inventory::function(
        inventory::Inventory::new(
            inventory::Stock::new(slow_client, &pipeline.inventory_table),
            pipeline.bus_destination(),
        ),
        pipeline.idempotency("inventory"),
    );
    let failed = envelope_of(&sample("inventory/payment-failed.sqs.json"));
    let mut batch = json!({"Records": []});
    for n in 1..=4 {
        let delivery = sqs_eventbridge_event_with(
            &reissued(&failed, &format!("e-failed-{n}")),
            &format!("m-f{n}"),
        );
        batch["Records"]
            .as_array_mut()
            .unwrap()
            .push(delivery["Records"][0].clone());
    }
    // Each read the reservation (through the slow proxy) and staged its deletion: one
    // commit wins; the other three are refused on the deletion's condition, write nothing,
    // and come back.
    let response = racing.handle(batch.clone(), deadline()).await.unwrap();
    let lost: Vec<&str> = response["batchItemFailures"]
        .as_array()
        .unwrap()
        .iter()
        .map(|failure| failure["itemIdentifier"].as_str().unwrap())
        .collect();
    assert_eq!(lost.len(), 3, "{response}");
    let counts = slow_table.counts();
    assert_eq!(counts.get("BatchGetItem"), Some(&4), "{counts:?}");
    // Redelivered, the losers find nothing to release.
    let mut redelivery = json!({"Records": []});
    for record in batch["Records"].as_array().unwrap() {
        if lost.contains(&record["messageId"].as_str().unwrap()) {
            redelivery["Records"]
                .as_array_mut()
                .unwrap()
                .push(record.clone());
        }
    }
    assert_eq!(
        racing.handle(redelivery, deadline()).await.unwrap(),
        no_failures()
    );
    let late = sqs_eventbridge_event_with(&reissued(&failed, "e-failed-5"), "m-f5");
    assert_eq!(
        racing.handle(late, deadline()).await.unwrap(),
        no_failures()
    );

    // Released once: the others find no reservation, or lose the race to delete it (the
    // release's own guards).
    assert_eq!(pipeline.stock("USB-C-HUB-004").await, Some(75));
    let mut types: Vec<String> = pipeline
        .published_events(2, Duration::from_secs(10))
        .await
        .into_iter()
        .map(|event| event.event_type)
        .collect();
    types.sort();
    assert_eq!(types, ["StockReleased", "StockReserved"]);
}

#[tokio::test]
async fn a_notification_sent_before_a_lost_completion_is_not_sent_again() {
    let pipeline = setup().await;
    let function = notifications(&pipeline);
    let placed = sample("notifications/order-placed.sqs.json");

    // The handler runs twice for one eventId (its first completion lost, as after a claim
    // taken over): the email's own condition keeps it to one, sent (written) once.
    let mut sent = Vec::new();
    for _ in 0..2 {
        let response = function.handle(placed.clone(), deadline()).await.unwrap();
        assert_eq!(response, no_failures());
        lose_every_completion(&pipeline).await;
        sent.push(pipeline.scan(&pipeline.notifications_table).await);
    }
    let event_id = envelope_of(&placed)["eventId"]
        .as_str()
        .unwrap()
        .to_string();
    let ids: Vec<&AttributeValue> = sent[1].iter().map(|e| &e["notificationId"]).collect();
    assert_eq!(ids, [&AttributeValue::S(event_id)]);
    assert_eq!(
        sent[0], sent[1],
        "the second run wrote nothing (its sentAt would differ)"
    );
}

#[tokio::test]
async fn an_event_the_bus_refuses_fails_its_relay_record_and_stays_until_published() {
    let pipeline = setup().await;
    let function = inventory(&pipeline).await;
    let placed = sample("inventory/order-placed.sqs.json");
    assert_eq!(
        function.handle(placed, deadline()).await.unwrap(),
        no_failures()
    );
    let committed = pipeline.scan(&pipeline.idempotency_table).await;
    assert_eq!(committed.len(), 1, "{committed:?}");
    assert!(committed[0].contains_key("unpublished"), "{committed:?}");

    // A bus nobody answers for: the relay's publish fails (after the SDK's and the
    // publisher's retries), and its stream record is reported failed, so the stream
    // delivers it again; the item stays unpublished.
    let unreachable = aws_sdk_eventbridge::Client::from_conf(
        aws_sdk_eventbridge::config::Builder::from(&pipeline.cloud.config)
            .endpoint_url("http://127.0.0.1:9")
            .retry_config(aws_sdk_eventbridge::config::retry::RetryConfig::disabled())
            .build(),
    );
    let refusing = eventkit::runtime::EventFunction::new(
        eventkit::outbox::Relay::new(pipeline.cloud.dynamodb.clone(), &pipeline.idempotency_table)
            .with_eventbridge(unreachable),
    );
    let event = eventkit_tests::outbox::stream_event(&committed, eventkit::outbox::OUTBOX_KEY);
    let sequence = event["Records"][0]["dynamodb"]["SequenceNumber"].clone();
    let response = refusing.handle(event, deadline()).await.unwrap();
    assert_eq!(
        response,
        json!({"batchItemFailures": [{"itemIdentifier": sequence}]}),
        "nothing is marked published that was not"
    );
    let pending = pipeline.committed_events().await;
    assert!(pending.len() == 1 && !pending[0].published, "{pending:?}");

    // With the bus back, the retry publishes it, once.
    let published = pipeline.published_events(1, Duration::from_secs(10)).await;
    let types: Vec<&str> = published.iter().map(|e| e.event_type.as_str()).collect();
    assert_eq!(types, ["StockReserved"]);
    assert_eq!(
        pipeline.stock("KB-MECH-001").await,
        Some(49),
        "reserved once"
    );
}

/// The provider down (its ledger unreachable): a first batch fails transiently against it
/// (its records run concurrently, so all of them had started) and opens the breaker; the
/// next batch is not attempted at all (no claim, no charge) and each of its records waits
/// for the breaker's next probe.
#[tokio::test]
async fn payments_stop_calling_a_provider_that_is_down() {
    let pipeline = setup().await;
    let unreachable = aws_sdk_dynamodb::Client::from_conf(
        aws_sdk_dynamodb::config::Builder::from(&pipeline.cloud.config)
            .endpoint_url("http://127.0.0.1:9")
            .retry_config(aws_sdk_dynamodb::config::retry::RetryConfig::disabled())
            .build(),
    );
    let provider = payments::FakeProvider::new(unreachable, &pipeline.ledger_table);
    let service = payments::Payments::new(provider, pipeline.bus_destination());
    let function = payments::function(service, pipeline.idempotency("payments"));

    // Batches of ten StockReserved events (distinct ids).
    let sample = sample("payments/stock-reserved.sqs.json");
    let record = sample["Records"][0].clone();
    let body: Value = serde_json::from_str(record["body"].as_str().unwrap()).unwrap();
    let batch = |from: usize| {
        let mut batch = sample.clone();
        batch["Records"] = (from..from + 10)
            .map(|n| {
                let mut event = body.clone();
                event["detail"]["eventId"] = json!(format!("reserved-{n}"));
                let mut record = record.clone();
                record["messageId"] = json!(format!("m{n}"));
                record["body"] = json!(event.to_string());
                record
            })
            .collect::<Vec<_>>()
            .into();
        records_of(&batch)
    };
    let first = function.process(batch(0), deadline()).await;
    assert_eq!(first.failed(), 10);
    assert!(
        first.failures().all(
            |(_, failure)| failure.kind == eventkit::batch::FailureKind::Error
                && failure.class == eventkit::batch::ErrorClass::Transient
        ),
        "{:?}",
        first.failures().collect::<Vec<_>>()
    );
    let second = function.process(batch(10), deadline()).await;
    let refused: Vec<_> = second.failures().collect();
    assert_eq!(refused.len(), 10, "{refused:?}");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    for (id, failure) in &refused {
        assert_eq!(
            failure.kind,
            eventkit::batch::FailureKind::DependencyUnavailable,
            "{id}"
        );
        assert_eq!(
            failure.class,
            eventkit::batch::ErrorClass::Transient,
            "{id}"
        );
        let retry_at = failure
            .retry_at_ms
            .expect("a refused record knows the probe's time");
        assert!(retry_at > now, "{id}: retry at {retry_at}, now {now}");
    }
    // Nothing was charged, and no claim of a refused record was left behind.
    assert!(pipeline.charges().await.is_empty());
    assert!(pipeline.scan(&pipeline.idempotency_table).await.is_empty());
}
