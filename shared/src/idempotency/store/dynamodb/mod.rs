//! The DynamoDB [`IdempotencyStore`]: one conditional request per operation, fenced by the
//! owner token.
//!
//! # Table
//!
//! A table with a string partition key (`id` by default) and no sort key; turn on TTL on the
//! `expiration` attribute so that DynamoDB deletes expired records (the claim condition does
//! not depend on the deletion having happened).
//!
//! # Item
//!
//! | attribute (default name) | type | content |
//! | --- | --- | --- |
//! | `id` | S | the idempotency key |
//! | `status` | S | `INPROGRESS` or `COMPLETED` |
//! | `expiration` | N | epoch seconds; the TTL attribute |
//! | `in_progress_expiration` | N | epoch milliseconds; the claimant's deadline |
//! | `data` | S | the result as JSON text (so `0`, `""`, `{}` and `null` replay exactly) |
//! | `validation` | S | the payload validation hash, when configured |
//! | `owner` | S | the owner token of the claim |
//!
//! The names other than `owner` are those of Powertools for AWS Lambda; all are configurable
//! through [`AttributeNames`].
//!
//! # Requests
//!
//! - Claim: `PutItem` with the condition `attribute_not_exists(#id) OR #expiry < :now OR
//!   (#status = :inprogress AND attribute_exists(#in_progress_expiry) AND
//!   #in_progress_expiry < :now_ms)`, `ReturnValuesOnConditionCheckFailure=ALL_OLD` (a
//!   duplicate costs one request) and `ReturnValues=ALL_OLD` (a takeover can be reported).
//!   Only when a failed condition does not return the old item is it read with a consistent
//!   `GetItem`; if that finds nothing (the record was released in between) the put is tried
//!   again, up to three times in all. A claim the SDK sent again after its answer was lost
//!   meets the record its first try wrote; the owner token tells the orchestrator that
//!   record is its own claim, not a delivery in progress elsewhere.
//! - Complete: `UpdateItem` setting status, result and expiration, conditional on
//!   `#owner = :owner`.
//! - Release: `DeleteItem` conditional on `#owner = :owner AND #status = :inprogress`.
//!
//! The batch operations (`claim_many`, `complete_many`, `release_many`) send the same writes
//! as PartiQL statements, up to 25 per `BatchExecuteStatement` (see [`statements`]).
//!
//! A failed owner condition is [`StoreError::Fenced`]; `ResourceNotFoundException` is
//! [`StoreError::TableMissing`]; throttling (after the SDK's own retries) is
//! [`StoreError::Throttled`].

use std::collections::HashMap;
use std::error::Error as StdError;
use std::fmt::Debug;

use aws_sdk_dynamodb::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::delete_item::DeleteItemError;
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue, ReturnValuesOnConditionCheckFailure};
use aws_sdk_dynamodb::Client;

mod statements;
pub(crate) use statements::{copy_error, passes as statement_passes};

use super::{ClaimOutcome, Completion, IdempotencyStore, Release};
use crate::idempotency::error::StoreError;
use crate::idempotency::record::{IdempotencyRecord, Status, MAX_SORT_KEY_BYTES};

/// How many times a claim is attempted when the record it collided with vanished before it
/// could be read.
const CLAIM_ATTEMPTS: usize = 3;

type Item = HashMap<String, AttributeValue>;

/// The completion's update (by itself, or inside a unit of work's transaction).
const COMPLETE_EXPRESSION: &str = "SET #status = :completed, #data = :data, #expiry = :expiry";
/// Every write after the claim is fenced on the claim's owner token.
const OWNER_CONDITION: &str = "#owner = :owner";

/// The attribute names of an idempotency item.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AttributeNames {
    /// The partition key (default `id`).
    pub key: String,
    /// The status (default `status`).
    pub status: String,
    /// The record expiry in epoch seconds, the table's TTL attribute (default `expiration`).
    pub expiration: String,
    /// The in-progress expiry in epoch milliseconds (default `in_progress_expiration`).
    pub in_progress_expiry: String,
    /// The stored result (default `data`).
    pub data: String,
    /// The payload validation hash (default `validation`).
    pub validation: String,
    /// The owner token (default `owner`).
    pub owner: String,
}

impl Default for AttributeNames {
    fn default() -> Self {
        Self {
            key: "id".into(),
            status: "status".into(),
            expiration: "expiration".into(),
            in_progress_expiry: "in_progress_expiration".into(),
            data: "data".into(),
            validation: "validation".into(),
            owner: "owner".into(),
        }
    }
}

/// Where a record's idempotency key goes in the table's primary key.
#[derive(Clone, Debug, PartialEq, Eq)]
enum KeyLayout {
    /// The key is the partition key (a table of its own).
    Partition,
    /// A fixed partition key value, the key in the sort key (a single-table design).
    Sorted {
        /// The partition key's value on every record of this store.
        partition: String,
        /// The sort key's attribute name.
        sort_key: String,
    },
}

/// Idempotency records in a DynamoDB table.
#[derive(Clone, Debug)]
pub struct DynamoDbStore {
    client: Client,
    table: String,
    names: AttributeNames,
    layout: KeyLayout,
    return_old_item_on_conflict: bool,
    outbox_table: Option<String>,
    outbox_on_completions: bool,
}

impl DynamoDbStore {
    /// [`IdempotencyRecord::check_limits`], and a single-table layout's sort key limit:
    /// refused before it is sent, as DynamoDB would refuse it.
    pub(crate) fn check_limits(&self, record: &IdempotencyRecord) -> Result<(), StoreError> {
        record.check_limits()?;
        if matches!(self.layout, KeyLayout::Sorted { .. }) && record.key.len() > MAX_SORT_KEY_BYTES
        {
            return Err(StoreError::LimitExceeded {
                key: record.key.clone(),
                reason: format!(
                    "the key is {} bytes, over DynamoDB's {MAX_SORT_KEY_BYTES} for a sort key",
                    record.key.len()
                ),
            });
        }
        Ok(())
    }

    /// A store in `table`, using `client` (configured by the caller: region, endpoint,
    /// retries), with the default attribute names.
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
            names: AttributeNames::default(),
            layout: KeyLayout::Partition,
            return_old_item_on_conflict: true,
            outbox_table: None,
            outbox_on_completions: false,
        }
    }

    /// Writes the events of committed units of work to `table`, the outbox (see
    /// [`outbox`](crate::outbox)): a table with a string partition key `id`, a stream
    /// (`NEW_IMAGE`) for the relay, and TTL on `expiration`.
    pub fn with_outbox(mut self, table: impl Into<String>) -> Self {
        self.outbox_table = Some(table.into());
        self
    }

    /// Commits the events of a unit of work on the idempotency record its completion writes
    /// (an `outbox` list), instead of one outbox item each: the idempotency table is the
    /// outbox, and its stream (with the relay's
    /// [`STREAM_FILTER`](crate::outbox::STREAM_FILTER)) feeds the relay. A handler that only
    /// emits then commits with a plain completion (no transaction), and one that stages
    /// writes commits one item less per transaction. The table needs a stream
    /// (`NEW_IMAGE`), and the sweeper's index ([`UNPUBLISHED_INDEX`](crate::outbox::UNPUBLISHED_INDEX));
    /// see the [outbox docs](crate::outbox).
    pub fn with_outbox_on_completions(mut self) -> Self {
        self.outbox_on_completions = true;
        self
    }

    /// Whether events ride on completions ([`with_outbox_on_completions`](Self::with_outbox_on_completions)).
    pub fn outbox_on_completions(&self) -> bool {
        self.outbox_on_completions
    }

    /// The outbox table, when one is set: the idempotency table itself when events ride on
    /// completions.
    pub fn outbox_table(&self) -> Option<&str> {
        match self.outbox_on_completions {
            true => Some(&self.table),
            false => self.outbox_table.as_deref(),
        }
    }

    /// The record's primary key, as the relay marks it.
    pub(crate) fn record_key(&self, key: &str) -> Item {
        self.primary_key(key)
    }

    /// The records' TTL attribute, which the sweeper pushes back while a record's events
    /// are unpublished.
    pub(crate) fn ttl_attribute(&self) -> &str {
        &self.names.expiration
    }

    pub(crate) fn client(&self) -> &Client {
        &self.client
    }

    /// The completion as one transaction action: the same update as
    /// [`complete`](IdempotencyStore::complete), fenced on `owner` the same way, that also
    /// sets `extra` (name, value) attributes on the record: the events that ride on it.
    pub(crate) fn completion_update_with(
        &self,
        key: &str,
        owner: &str,
        result: &str,
        expiration: u64,
        extra: &[(String, AttributeValue)],
    ) -> Result<aws_sdk_dynamodb::types::Update, StoreError> {
        let (mut names, mut values) = self.completion_attributes(owner, result, expiration);
        let mut expression = COMPLETE_EXPRESSION.to_string();
        for (n, (name, value)) in extra.iter().enumerate() {
            expression.push_str(&format!(", #x{n} = :x{n}"));
            names.insert(format!("#x{n}"), name.clone());
            values.insert(format!(":x{n}"), value.clone());
        }
        aws_sdk_dynamodb::types::Update::builder()
            .table_name(&self.table)
            .set_key(Some(self.primary_key(key)))
            .update_expression(expression)
            .condition_expression(OWNER_CONDITION)
            .set_expression_attribute_names(Some(names))
            .set_expression_attribute_values(Some(values))
            .build()
            .map_err(|error| StoreError::other(error.to_string()))
    }

    /// The names and values of [`COMPLETE_EXPRESSION`] and [`OWNER_CONDITION`]: one place for
    /// the completion's UpdateItem and its transaction action.
    fn completion_attributes(
        &self,
        owner: &str,
        result: &str,
        expiration: u64,
    ) -> (
        std::collections::HashMap<String, String>,
        std::collections::HashMap<String, AttributeValue>,
    ) {
        let names = &self.names;
        let s = |value: &str| AttributeValue::S(value.to_string());
        (
            [
                ("#status", &names.status),
                ("#data", &names.data),
                ("#expiry", &names.expiration),
                ("#owner", &names.owner),
            ]
            .into_iter()
            .map(|(placeholder, name)| (placeholder.to_string(), name.clone()))
            .collect(),
            [
                (":completed", s(Status::Completed.as_str())),
                (":data", s(result)),
                (":expiry", AttributeValue::N(expiration.to_string())),
                (":owner", s(owner)),
            ]
            .into_iter()
            .map(|(placeholder, value)| (placeholder.to_string(), value))
            .collect(),
        )
    }

    /// Keeps records in a table with a sort key (a single-table design, as Powertools'
    /// `sort_key_attr`): every record of this store has `partition` as its partition key
    /// value (in the attribute [`AttributeNames::key`], `id` by default) and its idempotency
    /// key in the sort key attribute `sort_key`. Give each function (or service) its own
    /// `partition`, such as `idempotency#inventory`. The table is declared with both keys as
    /// strings; see the README for its SAM declaration.
    pub fn with_sort_key(
        mut self,
        sort_key: impl Into<String>,
        partition: impl Into<String>,
    ) -> Self {
        self.layout = KeyLayout::Sorted {
            partition: partition.into(),
            sort_key: sort_key.into(),
        };
        self
    }

    /// Uses other attribute names.
    pub fn with_attribute_names(mut self, names: AttributeNames) -> Self {
        self.names = names;
        self
    }

    /// Whether a failed claim asks DynamoDB for the old item
    /// (`ReturnValuesOnConditionCheckFailure=ALL_OLD`, the default). With `false`, every
    /// duplicate costs a second request, a consistent `GetItem`, which is also what happens
    /// automatically with a DynamoDB-compatible service that does not return the item.
    pub fn with_return_old_item_on_conflict(mut self, enabled: bool) -> Self {
        self.return_old_item_on_conflict = enabled;
        self
    }

    /// The table name.
    pub fn table(&self) -> &str {
        &self.table
    }

    /// The attribute names in use.
    pub fn attribute_names(&self) -> &AttributeNames {
        &self.names
    }

    /// The primary key of the record of `key`, as attributes.
    fn primary_key(&self, key: &str) -> Item {
        let key = AttributeValue::S(key.to_string());
        match &self.layout {
            KeyLayout::Partition => Item::from([(self.names.key.clone(), key)]),
            KeyLayout::Sorted {
                partition,
                sort_key,
            } => Item::from([
                (self.names.key.clone(), AttributeValue::S(partition.clone())),
                (sort_key.clone(), key),
            ]),
        }
    }

    /// The attribute that holds the idempotency key.
    fn key_attribute(&self) -> &str {
        match &self.layout {
            KeyLayout::Partition => &self.names.key,
            KeyLayout::Sorted { sort_key, .. } => sort_key,
        }
    }

    fn to_item(&self, record: &IdempotencyRecord) -> Item {
        let names = &self.names;
        let mut item = self.primary_key(&record.key);
        item.insert(
            names.status.clone(),
            AttributeValue::S(record.status.as_str().to_string()),
        );
        item.insert(
            names.expiration.clone(),
            AttributeValue::N(record.expiration.to_string()),
        );
        let optional = [
            (
                &names.in_progress_expiry,
                record
                    .in_progress_expiry_ms
                    .map(|ms| AttributeValue::N(ms.to_string())),
            ),
            (&names.data, record.result.clone().map(AttributeValue::S)),
            (
                &names.validation,
                record.payload_hash.clone().map(AttributeValue::S),
            ),
            (&names.owner, record.owner.clone().map(AttributeValue::S)),
        ];
        for (name, value) in optional {
            if let Some(value) = value {
                item.insert(name.clone(), value);
            }
        }
        item
    }

    fn parse_item(&self, item: &Item) -> Result<IdempotencyRecord, StoreError> {
        let names = &self.names;
        let key_attribute = self.key_attribute();
        let key = string(item, key_attribute)
            .ok_or_else(|| corrupt("?", format!("no string attribute {key_attribute:?}")))?;
        let status = string(item, &names.status)
            .ok_or_else(|| corrupt(&key, format!("no string attribute {:?}", names.status)))?
            .parse::<Status>()
            .map_err(|reason| corrupt(&key, reason))?;
        let expiration = number(item, &names.expiration)
            .map_err(|reason| corrupt(&key, reason))?
            .ok_or_else(|| corrupt(&key, format!("no number attribute {:?}", names.expiration)))?;
        let in_progress_expiry_ms =
            number(item, &names.in_progress_expiry).map_err(|reason| corrupt(&key, reason))?;
        Ok(IdempotencyRecord {
            status,
            expiration,
            in_progress_expiry_ms,
            result: string(item, &names.data),
            payload_hash: string(item, &names.validation),
            owner: string(item, &names.owner),
            key,
        })
    }

    async fn get_consistent(&self, key: &str) -> Result<Option<IdempotencyRecord>, StoreError> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(self.primary_key(key)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|error| store_error(&self.table, error))?;
        output.item().map(|item| self.parse_item(item)).transpose()
    }
}

fn string(item: &Item, name: &str) -> Option<String> {
    match item.get(name) {
        Some(AttributeValue::S(text)) => Some(text.clone()),
        _ => None,
    }
}

fn number(item: &Item, name: &str) -> Result<Option<u64>, String> {
    match item.get(name) {
        None | Some(AttributeValue::Null(_)) => Ok(None),
        Some(AttributeValue::N(text)) => text
            .parse::<u64>()
            // Other writers (Powertools TypeScript, hand edits) may store a float.
            .or_else(|_| text.parse::<f64>().map(|float| float as u64))
            .map(Some)
            .map_err(|_| format!("attribute {name:?} is not a number: {text:?}")),
        Some(other) => Err(format!("attribute {name:?} is not a number: {other:?}")),
    }
}

fn corrupt(key: &str, reason: impl Into<String>) -> StoreError {
    StoreError::CorruptRecord {
        key: key.to_string(),
        reason: reason.into(),
    }
}

/// Maps an SDK failure to a [`StoreError`] by its service error code, which is uniform
/// across operations.
pub(crate) fn store_error<E, R>(table: &str, error: SdkError<E, R>) -> StoreError
where
    E: ProvideErrorMetadata + StdError + Send + Sync + 'static,
    R: Debug + Send + Sync + 'static,
{
    let message = error
        .message()
        .map_or_else(|| DisplayErrorContext(&error).to_string(), str::to_string);
    match error.code() {
        Some("ResourceNotFoundException") => StoreError::TableMissing {
            table: table.to_string(),
            message,
        },
        Some(
            "ThrottlingException"
            | "ProvisionedThroughputExceededException"
            | "RequestLimitExceeded",
        ) => StoreError::Throttled { message },
        code => StoreError::Other {
            message: match code {
                Some(code) => format!("{code}: {message}"),
                None => DisplayErrorContext(&error).to_string(),
            },
            source: Some(Box::new(error)),
        },
    }
}

impl IdempotencyStore for DynamoDbStore {
    async fn claim(
        &self,
        record: &IdempotencyRecord,
        now_ms: u64,
    ) -> Result<ClaimOutcome, StoreError> {
        self.check_limits(record)?;
        let names = &self.names;
        let item = self.to_item(record);
        // Left unset when disabled, for compatible services that do not know the parameter.
        let on_conflict = self
            .return_old_item_on_conflict
            .then_some(ReturnValuesOnConditionCheckFailure::AllOld);
        for _ in 0..CLAIM_ATTEMPTS {
            let result = self
                .client
                .put_item()
                .table_name(&self.table)
                .set_item(Some(item.clone()))
                .condition_expression(
                    "attribute_not_exists(#id) OR #expiry < :now OR (#status = :inprogress \
                     AND attribute_exists(#in_progress_expiry) AND #in_progress_expiry < :now_ms)",
                )
                .expression_attribute_names("#id", &names.key)
                .expression_attribute_names("#expiry", &names.expiration)
                .expression_attribute_names("#status", &names.status)
                .expression_attribute_names("#in_progress_expiry", &names.in_progress_expiry)
                .expression_attribute_values(":now", AttributeValue::N((now_ms / 1000).to_string()))
                .expression_attribute_values(":now_ms", AttributeValue::N(now_ms.to_string()))
                .expression_attribute_values(
                    ":inprogress",
                    AttributeValue::S(Status::InProgress.as_str().to_string()),
                )
                .return_values(ReturnValue::AllOld)
                .set_return_values_on_condition_check_failure(on_conflict.clone())
                .send()
                .await;
            let error = match result {
                Ok(output) => {
                    // The claim is ours; an unreadable old item only costs the takeover report.
                    let replaced = output.attributes().and_then(|old| {
                        self.parse_item(old)
                            .inspect_err(|error| {
                                tracing::warn!(idempotency_key = %record.key, %error, "replaced idempotency record was unreadable");
                            })
                            .ok()
                    });
                    return Ok(ClaimOutcome::Claimed { replaced });
                }
                Err(error) => error,
            };
            let Some(PutItemError::ConditionalCheckFailedException(failed)) =
                error.as_service_error()
            else {
                return Err(store_error(&self.table, error));
            };
            if let Some(old) = failed.item() {
                return self.parse_item(old).map(ClaimOutcome::Exists);
            }
            match self.get_consistent(&record.key).await? {
                Some(existing) if !existing.is_claimable(now_ms) => {
                    return Ok(ClaimOutcome::Exists(existing));
                }
                // Released, or expired, between the put and the read: claim again.
                _ => continue,
            }
        }
        Err(StoreError::other(format!(
            "claim of idempotency key {} kept colliding with a record that vanished before it \
             could be read ({CLAIM_ATTEMPTS} attempts)",
            record.key
        )))
    }

    async fn complete(
        &self,
        key: &str,
        owner: &str,
        result: &str,
        expiration: u64,
    ) -> Result<(), StoreError> {
        let completion = Completion {
            key: key.to_string(),
            owner: owner.to_string(),
            result: result.to_string(),
            expiration,
        }
        .as_record();
        self.check_limits(&completion)?;
        let (names, values) = self.completion_attributes(owner, result, expiration);
        let outcome = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(self.primary_key(key)))
            .update_expression(COMPLETE_EXPRESSION)
            .condition_expression(OWNER_CONDITION)
            .set_expression_attribute_names(Some(names))
            .set_expression_attribute_values(Some(values))
            .send()
            .await;
        match outcome {
            Ok(_) => Ok(()),
            Err(error)
                if matches!(
                    error.as_service_error(),
                    Some(UpdateItemError::ConditionalCheckFailedException(_))
                ) =>
            {
                Err(StoreError::Fenced)
            }
            Err(error) => Err(store_error(&self.table, error)),
        }
    }

    async fn release(&self, key: &str, owner: &str) -> Result<(), StoreError> {
        let outcome = self
            .client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(self.primary_key(key)))
            // Only a claim in progress: a completion whose answer was lost (a timeout after
            // the request reached the table) must never be deleted by the release after it.
            .condition_expression("#owner = :owner AND #status = :inprogress")
            .expression_attribute_names("#owner", &self.names.owner)
            .expression_attribute_names("#status", &self.names.status)
            .expression_attribute_values(":owner", AttributeValue::S(owner.to_string()))
            .expression_attribute_values(
                ":inprogress",
                AttributeValue::S(Status::InProgress.as_str().to_string()),
            )
            .send()
            .await;
        match outcome {
            Ok(_) => Ok(()),
            Err(error)
                if matches!(
                    error.as_service_error(),
                    Some(DeleteItemError::ConditionalCheckFailedException(_))
                ) =>
            {
                // Gone already, or someone else's: the stored record tells (see
                // `Release::refused`).
                let found = self.get_consistent(key).await?;
                Release {
                    key: key.to_string(),
                    owner: owner.to_string(),
                }
                .refused(found.as_ref())
            }
            Err(error) => Err(store_error(&self.table, error)),
        }
    }

    async fn get(&self, key: &str) -> Result<Option<IdempotencyRecord>, StoreError> {
        self.get_consistent(key).await
    }

    async fn claim_many(
        &self,
        records: &[IdempotencyRecord],
        now_ms: u64,
    ) -> Vec<Result<ClaimOutcome, StoreError>> {
        self.claim_batch(records, now_ms).await
    }

    async fn complete_many(&self, completions: &[Completion]) -> Vec<Result<(), StoreError>> {
        self.complete_batch(completions).await
    }

    async fn release_many(&self, releases: &[Release]) -> Vec<Result<(), StoreError>> {
        self.release_batch(releases).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> DynamoDbStore {
        let config = aws_sdk_dynamodb::Config::builder()
            .behavior_version(aws_sdk_dynamodb::config::BehaviorVersion::latest())
            .build();
        DynamoDbStore::new(Client::from_conf(config), "idempotency")
    }

    #[test]
    fn records_round_trip_through_items() {
        let store = store();
        let record = IdempotencyRecord {
            key: "fn#abc".into(),
            status: Status::Completed,
            expiration: 1_700_000_000,
            in_progress_expiry_ms: Some(1_700_000_000_123),
            result: Some("\"\"".into()),
            payload_hash: Some("hash".into()),
            owner: Some("token".into()),
        };
        let item = store.to_item(&record);
        assert_eq!(item.get("id"), Some(&AttributeValue::S("fn#abc".into())));
        assert_eq!(
            item.get("expiration"),
            Some(&AttributeValue::N("1700000000".into()))
        );
        assert_eq!(store.parse_item(&item).unwrap(), record);
    }

    fn service_error(code: &str) -> StoreError {
        use aws_sdk_dynamodb::config::http::HttpResponse;
        use aws_sdk_dynamodb::error::ErrorMetadata;
        let metadata = ErrorMetadata::builder()
            .code(code)
            .message("service says no")
            .build();
        let raw = HttpResponse::new(400.try_into().unwrap(), "".into());
        store_error(
            "idempotency",
            SdkError::service_error(PutItemError::generic(metadata), raw),
        )
    }

    #[test]
    fn service_errors_map_to_typed_store_errors_by_code() {
        assert!(matches!(
            service_error("ResourceNotFoundException"),
            StoreError::TableMissing { table, message } if table == "idempotency" && message == "service says no"
        ));
        for code in [
            "ThrottlingException",
            "ProvisionedThroughputExceededException",
            "RequestLimitExceeded",
        ] {
            assert!(
                matches!(service_error(code), StoreError::Throttled { .. }),
                "{code}"
            );
        }
        assert!(matches!(
            service_error("ValidationException"),
            StoreError::Other { message, source: Some(_) } if message == "ValidationException: service says no"
        ));
    }

    #[test]
    fn custom_attribute_names_are_used_and_malformed_items_are_reported() {
        let names = AttributeNames {
            key: "pk".into(),
            owner: "claimed_by".into(),
            ..AttributeNames::default()
        };
        let store = store().with_attribute_names(names);
        let record = IdempotencyRecord {
            key: "k".into(),
            status: Status::InProgress,
            expiration: 5,
            in_progress_expiry_ms: None,
            result: None,
            payload_hash: None,
            owner: Some("t".into()),
        };
        let mut item = store.to_item(&record);
        assert!(item.contains_key("pk") && item.contains_key("claimed_by"));
        assert!(!item.contains_key("in_progress_expiration"));
        assert_eq!(store.parse_item(&item).unwrap(), record);

        item.insert("status".into(), AttributeValue::S("DONE".into()));
        assert!(matches!(
            store.parse_item(&item),
            Err(StoreError::CorruptRecord { .. })
        ));
        item.insert("status".into(), AttributeValue::S("COMPLETED".into()));
        item.insert("expiration".into(), AttributeValue::N("soon".into()));
        assert!(matches!(
            store.parse_item(&item),
            Err(StoreError::CorruptRecord { .. })
        ));
        item.insert("expiration".into(), AttributeValue::N("1.7e9".into()));
        assert_eq!(store.parse_item(&item).unwrap().expiration, 1_700_000_000);
    }
}
