//! Uniquely named DynamoDB tables in DynamoDB Local.

use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType,
};

use crate::{unique_name, LocalCloud};

impl LocalCloud {
    /// Creates a table with a string partition key named `partition_key` (and no sort key),
    /// on-demand billing, and returns its name.
    pub async fn create_table(&self, prefix: &str, partition_key: &str) -> String {
        let name = unique_name(prefix);
        self.dynamodb
            .create_table()
            .table_name(&name)
            .billing_mode(BillingMode::PayPerRequest)
            .attribute_definitions(
                AttributeDefinition::builder()
                    .attribute_name(partition_key)
                    .attribute_type(ScalarAttributeType::S)
                    .build()
                    .expect("attribute definition is complete"),
            )
            .key_schema(
                KeySchemaElement::builder()
                    .attribute_name(partition_key)
                    .key_type(KeyType::Hash)
                    .build()
                    .expect("key schema is complete"),
            )
            .send()
            .await
            .expect("CreateTable");
        name
    }
}
