//! `dlq show` / `dlq redrive` read a dead letter's idempotency record from
//! DynamoDB Local as eventkit's functions write it: the key is `<name>#<hash of the value>`
//! of the message's `eventId` (through an SNS notification too), found by name when the
//! prefix is given and by a scan for the hash when it is not.

use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, KeySchemaElement, KeyType,
    ScalarAttributeType,
};
use aws_sdk_sqs::types::Message;
use eventkit::idempotency::key::idempotency_key;
use eventkit_local::clients::{Clients, Endpoints};
use eventkit_local::dead_letters::{key_state, IdempotencyLookup, KeyState};
use serde_json::json;

fn message(body: serde_json::Value) -> Message {
    Message::builder()
        .message_id(uuid::Uuid::new_v4().to_string())
        .body(body.to_string())
        .build()
}

#[tokio::test]
async fn a_dead_letters_idempotency_record_is_found_with_or_without_its_prefix() {
    for variable in ["AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_DYNAMODB"] {
        assert!(
            std::env::var(variable).is_ok(),
            "{variable} is not set: run with the local cloud's env (cargo xtask cloud env)"
        );
    }
    let clients = Clients::new(&Endpoints::from_env()).await;
    let table = format!("keys-{}", uuid::Uuid::new_v4().simple());
    clients
        .dynamodb
        .create_table()
        .table_name(&table)
        .attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name("id")
                .attribute_type(ScalarAttributeType::S)
                .build()
                .expect("a definition"),
        )
        .key_schema(
            KeySchemaElement::builder()
                .attribute_name("id")
                .key_type(KeyType::Hash)
                .build()
                .expect("a key"),
        )
        .billing_mode(BillingMode::PayPerRequest)
        .send()
        .await
        .expect("DynamoDB Local creates the table (is the local cloud up?)");
    for (event, status) in [("e-done", "COMPLETED"), ("e-running", "INPROGRESS")] {
        clients
            .dynamodb
            .put_item()
            .table_name(&table)
            .item(
                "id",
                AttributeValue::S(idempotency_key("inventory", &json!(event))),
            )
            .item("status", AttributeValue::S(status.into()))
            .send()
            .await
            .expect("the record is written");
    }

    let done = message(json!({"eventId": "e-done", "eventType": "OrderPlaced"}));
    let running = message(json!({"eventId": "e-running"}));
    let never = message(json!({"eventId": "e-never"}));
    let keyless = message(json!({"orderId": "o-1"}));
    let notification = message(json!({
        "Type": "Notification", "MessageId": "n-1",
        "TopicArn": "arn:aws:sns:us-east-1:000000000000:orders",
        "Message": json!({"eventId": "e-done"}).to_string(),
        "Timestamp": "2026-01-01T00:00:00.000Z", "SignatureVersion": "1",
        "Signature": "x", "SigningCertURL": "https://x", "UnsubscribeURL": "https://x"
    }));

    for prefix in [Some("inventory".to_string()), None] {
        let lookup = IdempotencyLookup {
            table: table.clone(),
            key_path: "eventId".into(),
            prefix: prefix.clone(),
        };
        let done_state = key_state(&clients.dynamodb, &lookup, &done)
            .await
            .expect("read");
        assert!(done_state.is_completed(), "{prefix:?}: {done_state}");
        assert_eq!(
            key_state(&clients.dynamodb, &lookup, &running)
                .await
                .expect("read"),
            KeyState::Recorded("INPROGRESS".into()),
            "{prefix:?}"
        );
        assert_eq!(
            key_state(&clients.dynamodb, &lookup, &never)
                .await
                .expect("read"),
            KeyState::Absent
        );
        assert_eq!(
            key_state(&clients.dynamodb, &lookup, &keyless)
                .await
                .expect("read"),
            KeyState::NoKey
        );
        assert!(
            key_state(&clients.dynamodb, &lookup, &notification)
                .await
                .expect("read")
                .is_completed(),
            "{prefix:?}: the key is inside the SNS notification"
        );
    }
    let other = IdempotencyLookup {
        table: table.clone(),
        key_path: "eventId".into(),
        prefix: Some("payments".into()),
    };
    assert_eq!(
        key_state(&clients.dynamodb, &other, &done)
            .await
            .expect("read"),
        KeyState::Absent,
        "another function's name is another key"
    );
    let _ = clients
        .dynamodb
        .delete_table()
        .table_name(&table)
        .send()
        .await;
}
