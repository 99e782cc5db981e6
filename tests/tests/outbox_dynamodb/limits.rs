//! An event that can never be published is refused when it is staged: the record fails
//! permanently before anything is committed. One that fits is committed, and the relay's
//! stream decode takes its outbox item whatever the item's JSON weighs.

use eventkit::events::Carrier;
use eventkit::outbox::UnitOfWorkError;

use super::*;

/// A line of a large invoice: JSON with many quotes, which a stream image escapes.
#[derive(Debug, Serialize, Deserialize)]
struct Line {
    sku: String,
    quantity: u32,
}

#[derive(Debug, Serialize, Deserialize)]
struct Invoiced {
    account: String,
    lines: Vec<Line>,
}

impl VersionedEvent for Invoiced {
    const EVENT_TYPE: &'static str = "Invoiced";
    const CURRENT_VERSION: u32 = 1;
}

/// Where the invoice goes, and about how many bytes of lines it has.
struct Invoicing<'a> {
    bank: &'a Bank,
    destination: Destination,
    bytes: usize,
}

/// Opens the account (a staged put) and emits an `Invoiced` of the deposit.
async fn invoice(
    invoicing: &Invoicing<'_>,
    deposit: EventEnvelope<Deposited>,
) -> Result<Staged<u64>, RecordError> {
    let mut work = UnitOfWork::new();
    work.put(
        Put::builder()
            .table_name(&invoicing.bank.accounts)
            .item("account", AttributeValue::S(deposit.data.account.clone()))
            .item("balance", AttributeValue::N(deposit.data.cents.to_string()))
            .build()
            .map_err(RecordError::permanent)?,
    )?;
    let line = |n: usize| Line {
        sku: format!("SKU-{n:08}"),
        quantity: 1,
    };
    let line_bytes = r#"{"sku":"SKU-00000000","quantity":1},"#.len();
    let invoiced = Invoiced {
        account: deposit.data.account.clone(),
        lines: (0..invoicing.bytes / line_bytes).map(line).collect(),
    };
    let invoiced = EventEnvelope::caused_by(&deposit, "bank", invoiced);
    work.emit_envelope(invoicing.destination.clone(), &invoiced)?;
    Ok(work.with_output(deposit.data.cents))
}

impl Bank {
    /// Handles a deposit to `account` with [`invoice`], transactionally.
    async fn invoice(
        &self,
        account: &str,
        destination: Destination,
        bytes: usize,
    ) -> Result<u64, RecordError> {
        let invoicing = Invoicing {
            bank: self,
            destination,
            bytes,
        };
        let handler = Handler::with_state(invoicing, invoice).layer(TransactionalLayer::new(
            self.store(),
            IdempotencyConfig::new("bank"),
        ));
        handler
            .handle(&deposit("m-1", &unique("e"), account), &invocation())
            .await
            .map(|handled| handled.output)
    }
}

#[tokio::test]
async fn an_event_too_large_to_publish_fails_its_record_before_anything_commits() {
    let bank = Bank::create().await;
    let topic = Destination::sns("arn:aws:sns:us-east-1:000000000000:invoices");
    let queue = Destination::sqs(&bank.queue.url);
    // SNS carries 256 KB; SQS 1 MB, but the outbox item holds 400 KB.
    for (destination, bytes, carrier) in [
        (topic, 300 * 1024, Carrier::Sns),
        (queue, 500 * 1024, Carrier::DynamoDbItem),
    ] {
        let account = unique("acct");

        let error = bank
            .invoice(&account, destination.clone(), bytes)
            .await
            .unwrap_err();

        assert_eq!(error.class(), ErrorClass::Permanent, "{destination}");
        let Some(UnitOfWorkError::EventTooLarge(too_large)) = error.downcast_ref() else {
            panic!("{destination}: {error}");
        };
        assert_eq!(
            (
                too_large.carrier,
                too_large.limit,
                too_large.event_type.as_str()
            ),
            (carrier, carrier.max_bytes(), "Invoiced")
        );
        assert!(too_large.size > too_large.limit, "{too_large}");
        assert!(
            error.to_string().contains(&too_large.event_id),
            "the error names the event: {error}"
        );
        assert_eq!(bank.balance(&account).await, None, "nothing was committed");
    }
    assert!(bank.outbox_items().await.is_empty(), "no outbox item");
    let records = bank
        .cloud
        .dynamodb
        .scan()
        .table_name(&bank.idempotency)
        .send()
        .await
        .unwrap();
    assert_eq!(records.count(), 0, "the claims were released");
}

/// A 220 KB event for a queue: committed, and its outbox item's stream image, which its
/// escaped quotes make larger than the 256 KiB the stream decode used to cap it at, is
/// decoded and published by the relay.
#[tokio::test]
async fn an_event_that_fits_commits_and_the_relay_publishes_it_from_its_stream_image() {
    let bank = Bank::create().await;
    let account = unique("acct");

    let credited = bank
        .invoice(&account, Destination::sqs(&bank.queue.url), 220 * 1024)
        .await
        .unwrap();

    assert_eq!(credited, 250);
    assert_eq!(bank.balance(&account).await, Some(250));
    let items = bank.outbox_items().await;
    assert_eq!(items.len(), 1);
    let body = items[0]["body"].as_s().unwrap();
    assert!(body.len() > 215 * 1024, "{}", body.len());
    let image = serde_json::to_string(&json!({ "body": body })).unwrap();
    assert!(image.len() > 256 * 1024, "{}", image.len());

    let response = bank.relay(stream_event("1", "INSERT", &items[0])).await;

    assert_eq!(response, json!({"batchItemFailures": []}));
    let received = bank
        .cloud
        .drain(&bank.queue, 1, Duration::from_secs(5))
        .await;
    assert_eq!(received.len(), 1);
    assert_eq!(received[0].body().unwrap(), body);
    assert!(bank.outbox_items().await[0].contains_key("publishedAt"));
}
