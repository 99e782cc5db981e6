//! A stack left by `run --keep` is taken over by the next `run` of the same name: creating a
//! table or a bus that exists already gives the existing one (with its stream) instead of
//! failing. Against DynamoDB Local and LocalStack.

use eventkit_local::clients::{Clients, Endpoints};
use eventkit_local::resources::{create_bus, create_table};
use serde_json::json;

#[tokio::test]
async fn an_existing_table_and_bus_are_taken_over() {
    assert!(
        std::env::var("AWS_ENDPOINT_URL_DYNAMODB").is_ok(),
        "run with the local cloud's env (cargo xtask cloud env)"
    );
    let clients = Clients::new(&Endpoints::from_env()).await;
    let name = format!("kept-{}", uuid::Uuid::new_v4().simple());
    let table = json!({
        "AttributeDefinitions": [{"AttributeName": "id", "AttributeType": "S"}],
        "KeySchema": [{"AttributeName": "id", "KeyType": "HASH"}],
        "StreamSpecification": {"StreamViewType": "NEW_IMAGE"},
        "TimeToLiveSpecification": {"AttributeName": "expiration", "Enabled": true},
    });
    let first = create_table(&clients, &name, &table)
        .await
        .expect("created (is the local cloud up?)");
    let again = create_table(&clients, &name, &table)
        .await
        .expect("taken over");
    assert!(first.is_some());
    assert_eq!(first, again, "the same stream");

    let bus = create_bus(&clients, &name).await.expect("created");
    assert_eq!(create_bus(&clients, &name).await.expect("taken over"), bus);

    let _ = clients
        .dynamodb
        .delete_table()
        .table_name(&name)
        .send()
        .await;
    let _ = clients
        .eventbridge
        .delete_event_bus()
        .name(&name)
        .send()
        .await;
}
