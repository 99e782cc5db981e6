//! One idempotency table per contender run in DynamoDB Local, created before the run and
//! deleted after it (DynamoDB Local keeps everything in memory). Every contender's table has
//! the same shape: the string partition key `id` that Powertools and eventkit both default to.

use anyhow::{Context, Result};
use aws_config::{BehaviorVersion, Region};
use aws_sdk_dynamodb::config::Credentials;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType,
};
use aws_sdk_dynamodb::Client;
use xtask::cloud::REGION;

/// Creates and deletes the bench's tables, talking to DynamoDB Local directly (not through a
/// proxy, so that none of this is counted).
pub struct Tables {
    client: Client,
}

impl Tables {
    /// A client for DynamoDB Local at `endpoint`.
    pub async fn new(endpoint: &str) -> Self {
        let config = aws_config::defaults(BehaviorVersion::latest())
            .region(Region::new(REGION))
            .credentials_provider(Credentials::new("test", "test", None, None, "bench"))
            .endpoint_url(endpoint)
            .load()
            .await;
        Self {
            client: Client::new(&config),
        }
    }

    /// Creates the table `name`.
    pub async fn create(&self, name: &str) -> Result<()> {
        self.client
            .create_table()
            .table_name(name)
            .attribute_definitions(
                AttributeDefinition::builder()
                    .attribute_name("id")
                    .attribute_type(ScalarAttributeType::S)
                    .build()?,
            )
            .key_schema(
                KeySchemaElement::builder()
                    .attribute_name("id")
                    .key_type(KeyType::Hash)
                    .build()?,
            )
            .billing_mode(BillingMode::PayPerRequest)
            .send()
            .await
            .with_context(|| format!("creating the table {name} in DynamoDB Local"))?;
        Ok(())
    }

    /// Writes `items` (DynamoDB JSON of string attributes) into the table `name`.
    pub async fn put_all(&self, name: &str, items: &[serde_json::Value]) -> Result<()> {
        for requests in super::relay::write_requests(items)? {
            let mut pending = std::collections::HashMap::from([(name.to_string(), requests)]);
            for _ in 0..10 {
                let output = self
                    .client
                    .batch_write_item()
                    .set_request_items(Some(pending))
                    .send()
                    .await
                    .with_context(|| format!("writing items into {name}"))?;
                pending = output.unprocessed_items.unwrap_or_default();
                if pending.values().all(Vec::is_empty) {
                    break;
                }
            }
            anyhow::ensure!(
                pending.values().all(Vec::is_empty),
                "{name}: items left unwritten"
            );
        }
        Ok(())
    }

    /// Deletes the table `name`.
    pub async fn delete(&self, name: &str) -> Result<()> {
        self.client
            .delete_table()
            .table_name(name)
            .send()
            .await
            .with_context(|| format!("deleting the table {name}"))?;
        Ok(())
    }
}
