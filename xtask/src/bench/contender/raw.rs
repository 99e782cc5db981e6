//! The raw-request baseline: the requests an idempotency layer cannot avoid, sent straight
//! through the SDK with nothing around them, at the same concurrency as eventkit (every record
//! of a batch at once). A record is a conditional `PutItem` claim (with the claim condition
//! the idempotency semantics require), then an `UpdateItem` completion fenced on the owner
//! when the claim succeeded; a duplicate's claim fails and returns the old item.
//! Its rate is what DynamoDB Local itself serves for this workload: the ceiling.

use std::sync::atomic::{AtomicUsize, Ordering};

use anyhow::Result;
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValuesOnConditionCheckFailure};
use aws_sdk_dynamodb::Client;

use crate::protocol::{event_ids, now_ms, Contender, RECORD_TTL_SECS};

struct Raw {
    client: Client,
    table: String,
    runs: AtomicUsize,
}

/// How one record went.
enum Outcome {
    Completed,
    Duplicate,
    Failed,
}

impl Raw {
    async fn record(&self, event_id: &str) -> Outcome {
        let key = AttributeValue::S(format!("raw#{event_id}"));
        let now_ms = now_ms();
        // The claim condition the semantics demand of every idempotency layer measured here
        // (eventkit and both Powertools send the same one): the key is absent, or its record
        // expired, or it is in progress with an expired in-progress window. DynamoDB Local
        // spends more per request on it than on `attribute_not_exists` alone, so a simpler
        // condition would measure a ceiling no conforming layer can reach.
        let claim = self
            .client
            .put_item()
            .table_name(&self.table)
            .item("id", key.clone())
            .item("status", AttributeValue::S("INPROGRESS".into()))
            .item(
                "expiration",
                AttributeValue::N((now_ms / 1000 + RECORD_TTL_SECS).to_string()),
            )
            .item(
                "in_progress_expiry",
                AttributeValue::N((now_ms + 60_000).to_string()),
            )
            .item("owner", AttributeValue::S(event_id.into()))
            .condition_expression(
                "attribute_not_exists(#id) OR #expiry < :now OR (#status = :inprogress \
                 AND attribute_exists(#in_progress_expiry) AND #in_progress_expiry < :now_ms)",
            )
            .expression_attribute_names("#id", "id")
            .expression_attribute_names("#expiry", "expiration")
            .expression_attribute_names("#status", "status")
            .expression_attribute_names("#in_progress_expiry", "in_progress_expiry")
            .expression_attribute_values(":now", AttributeValue::N((now_ms / 1000).to_string()))
            .expression_attribute_values(":now_ms", AttributeValue::N(now_ms.to_string()))
            .expression_attribute_values(":inprogress", AttributeValue::S("INPROGRESS".into()))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        match claim {
            Ok(_) => {}
            Err(error)
                if matches!(
                    error.as_service_error(),
                    Some(PutItemError::ConditionalCheckFailedException(_))
                ) =>
            {
                return Outcome::Duplicate;
            }
            Err(_) => return Outcome::Failed,
        }
        let completion = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("id", key)
            .update_expression("SET #status = :completed, #data = :data, #expiry = :expiry")
            .condition_expression("#owner = :owner")
            .expression_attribute_names("#status", "status")
            .expression_attribute_names("#data", "data")
            .expression_attribute_names("#expiry", "expiration")
            .expression_attribute_names("#owner", "owner")
            .expression_attribute_values(":completed", AttributeValue::S("COMPLETED".into()))
            .expression_attribute_values(":data", AttributeValue::S("{}".into()))
            .expression_attribute_values(
                ":expiry",
                AttributeValue::N((now_ms / 1000 + RECORD_TTL_SECS).to_string()),
            )
            .expression_attribute_values(":owner", AttributeValue::S(event_id.into()))
            .send()
            .await;
        self.runs.fetch_add(1, Ordering::Relaxed);
        match completion {
            Ok(_) => Outcome::Completed,
            Err(_) => Outcome::Failed,
        }
    }
}

impl Contender for Raw {
    async fn invoke(&self, payload: &str) -> Result<usize> {
        let event_ids = event_ids(payload)?;
        let outcomes = futures::future::join_all(event_ids.iter().map(|id| self.record(id))).await;
        Ok(outcomes
            .iter()
            .filter(|outcome| matches!(outcome, Outcome::Failed))
            .count())
    }

    fn runs(&self) -> usize {
        self.runs.load(Ordering::Relaxed)
    }
}

/// The baseline on `table`, with the SDK configured from the environment.
pub async fn contender(table: &str) -> impl Contender {
    let config = aws_config::load_from_env().await;
    Raw {
        client: Client::new(&config),
        table: table.to_string(),
        runs: AtomicUsize::new(0),
    }
}
