//! `cargo xtask seed`: the stock file loaded into an inventory table (DynamoDB Local), as the
//! command loads it into a deployed stack's. New SKUs are written, SKUs already there keep
//! their stock unless overwriting. (Finding the table by the stack's name is tested in xtask,
//! against a stand-in for CloudFormation.)

use std::collections::BTreeMap;

use eventkit_tests::LocalCloud;
use xtask::cloud::workspace_root;
use xtask::seed::{load, read_stock};

async fn stock(cloud: &LocalCloud, table: &str) -> BTreeMap<String, u64> {
    cloud
        .dynamodb
        .scan()
        .table_name(table)
        .consistent_read(true)
        .send()
        .await
        .expect("Scan")
        .items
        .unwrap_or_default()
        .iter()
        .map(|item| {
            let sku = item["sku"].as_s().expect("a sku").clone();
            let available = item["available"]
                .as_n()
                .expect("a count")
                .parse()
                .expect("a number");
            (sku, available)
        })
        .collect()
}

#[tokio::test]
async fn the_seed_loads_every_sku_and_keeps_stock_already_there_unless_overwriting() {
    let cloud = LocalCloud::connect().await;
    let table = cloud.create_table("seeded-inventory", "sku").await;
    let items =
        read_stock(&workspace_root().join("events/inventory/seed.json")).expect("seed.json");
    let expected: BTreeMap<String, u64> = items
        .iter()
        .map(|item| {
            let sku = item["sku"].as_str().expect("a sku").to_string();
            (sku, item["available"].as_u64().expect("a count"))
        })
        .collect();
    assert!(expected.len() >= 5);

    let first = load(&cloud.dynamodb, &table, &items, false)
        .await
        .expect("loaded");
    assert_eq!(first.written.len(), expected.len());
    assert!(first.kept.is_empty());
    assert_eq!(stock(&cloud, &table).await, expected);

    // Orders have reserved some: a second load leaves every SKU as it is.
    let (sku, _) = expected.iter().next().expect("an item");
    cloud
        .dynamodb
        .update_item()
        .table_name(&table)
        .key(
            "sku",
            aws_sdk_dynamodb::types::AttributeValue::S(sku.clone()),
        )
        .update_expression("SET available = :three")
        .expression_attribute_values(
            ":three",
            aws_sdk_dynamodb::types::AttributeValue::N("3".into()),
        )
        .send()
        .await
        .expect("UpdateItem");
    let again = load(&cloud.dynamodb, &table, &items, false)
        .await
        .expect("loaded");
    assert!(again.written.is_empty());
    assert_eq!(again.kept.len(), expected.len());
    assert_eq!(stock(&cloud, &table).await[sku], 3);

    let overwritten = load(&cloud.dynamodb, &table, &items, true)
        .await
        .expect("loaded");
    assert_eq!(overwritten.written.len(), expected.len());
    assert_eq!(stock(&cloud, &table).await, expected);
}
