//! Uniquely named DynamoDB tables in DynamoDB Local.

use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection,
    ProjectionType, ScalarAttributeType, TimeToLiveSpecification,
};

use crate::{unique_name, LocalCloud};

/// A string attribute of a key.
fn string(attribute: &str) -> AttributeDefinition {
    AttributeDefinition::builder()
        .attribute_name(attribute)
        .attribute_type(ScalarAttributeType::S)
        .build()
        .expect("attribute definition is complete")
}

/// One part of a key.
fn key(attribute: &str, kind: KeyType) -> KeySchemaElement {
    KeySchemaElement::builder()
        .attribute_name(attribute)
        .key_type(kind)
        .build()
        .expect("key schema is complete")
}

impl LocalCloud {
    /// Creates a table with a string partition key named `partition_key` (and no sort key),
    /// on-demand billing, and returns its name.
    pub async fn create_table(&self, prefix: &str, partition_key: &str) -> String {
        let name = unique_name(prefix);
        self.dynamodb
            .create_table()
            .table_name(&name)
            .billing_mode(BillingMode::PayPerRequest)
            .attribute_definitions(string(partition_key))
            .key_schema(key(partition_key, KeyType::Hash))
            .send()
            .await
            .expect("CreateTable");
        name
    }

    /// Turns TTL on for `table`, on the attribute `ttl_attribute` (epoch seconds).
    async fn enable_ttl(&self, table: &str, ttl_attribute: &str) {
        self.dynamodb
            .update_time_to_live()
            .table_name(table)
            .time_to_live_specification(
                TimeToLiveSpecification::builder()
                    .enabled(true)
                    .attribute_name(ttl_attribute)
                    .build()
                    .expect("TTL specification is complete"),
            )
            .send()
            .await
            .expect("UpdateTimeToLive");
    }
}

impl LocalCloud {
    /// Creates an idempotency table in the layout `DynamoDbStore` expects by default: string
    /// partition key `id`, TTL on `expiration`. Returns its name.
    pub async fn create_idempotency_table(&self, prefix: &str) -> String {
        self.create_table_with_ttl(prefix, "id", "expiration").await
    }

    /// Creates a table with a string partition key named `partition_key` and TTL enabled on
    /// the attribute `ttl_attribute` (epoch seconds), and returns its name.
    pub async fn create_table_with_ttl(
        &self,
        prefix: &str,
        partition_key: &str,
        ttl_attribute: &str,
    ) -> String {
        let name = self.create_table(prefix, partition_key).await;
        self.enable_ttl(&name, ttl_attribute).await;
        name
    }
}

impl LocalCloud {
    /// Creates an idempotency table for `DynamoDbStore::with_sort_key("sk", ..)`: string
    /// partition key `id`, string sort key `sk`, TTL on `expiration`. Returns its name.
    pub async fn create_sorted_idempotency_table(&self, prefix: &str) -> String {
        let name = unique_name(prefix);
        self.dynamodb
            .create_table()
            .table_name(&name)
            .billing_mode(BillingMode::PayPerRequest)
            .attribute_definitions(string("id"))
            .attribute_definitions(string("sk"))
            .key_schema(key("id", KeyType::Hash))
            .key_schema(key("sk", KeyType::Range))
            .send()
            .await
            .expect("CreateTable");
        self.enable_ttl(&name, "expiration").await;
        name
    }
}

impl LocalCloud {
    /// Creates an outbox table as infra/template.yaml declares `OutboxTable`: string partition
    /// key `id`, TTL on `expiration`, and the sparse index of unpublished items
    /// (`eventkit::outbox::UNPUBLISHED_INDEX`: `unpublished`, `stagedAt`, all attributes).
    pub async fn create_outbox_table(&self, prefix: &str) -> String {
        let name = unique_name(prefix);
        let index = GlobalSecondaryIndex::builder()
            .index_name(eventkit::outbox::UNPUBLISHED_INDEX)
            .key_schema(key("unpublished", KeyType::Hash))
            .key_schema(key("stagedAt", KeyType::Range))
            .projection(
                Projection::builder()
                    .projection_type(ProjectionType::All)
                    .build(),
            )
            .build()
            .expect("index is complete");
        self.dynamodb
            .create_table()
            .table_name(&name)
            .billing_mode(BillingMode::PayPerRequest)
            .attribute_definitions(string("id"))
            .attribute_definitions(string("unpublished"))
            .attribute_definitions(string("stagedAt"))
            .key_schema(key("id", KeyType::Hash))
            .global_secondary_indexes(index)
            .send()
            .await
            .expect("CreateTable");
        self.enable_ttl(&name, "expiration").await;
        name
    }
}

impl LocalCloud {
    /// Creates a table for `eventkit::breaker::DynamoDbBreakerStore`'s default layout: string
    /// partition key `pk`, TTL on `expiration`. Returns its name.
    pub async fn create_breaker_table(&self, prefix: &str) -> String {
        self.create_table_with_ttl(prefix, "pk", "expiration").await
    }
}
