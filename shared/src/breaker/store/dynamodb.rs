//! The DynamoDB [`BreakerStore`]: one item per breaker, every write conditional.
//!
//! (The table, the item and the requests are documented on [`DynamoDbBreakerStore`].)

use std::collections::HashMap;

use aws_sdk_dynamodb::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue, ReturnValuesOnConditionCheckFailure};
use aws_sdk_dynamodb::Client;

use super::{BreakerStore, BreakerStoreError, OpenOutcome, ProbeClaim};
use crate::breaker::record::{probe_claimable, BreakerRecord, CircuitState};

type Item = HashMap<String, AttributeValue>;

/// What every breaker's key value starts with, so that breakers can share a table (the
/// idempotency table, say) with other items.
const KEY_PREFIX: &str = "breaker#";
/// How long an item outlives its last transition before TTL removes it.
const RETENTION_SECONDS: u64 = 7 * 24 * 3600;
/// Attempts of a conditional write whose failed condition met an item that changed before
/// it could be read.
const ATTEMPTS: usize = 3;

/// The attribute names of a breaker's item.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BreakerAttributeNames {
    /// The partition key (default `pk`).
    pub key: String,
    /// The state (default `state`).
    pub state: String,
    /// The next probe, epoch ms (default `next_probe_at`).
    pub next_probe: String,
    /// The probe owner's token (default `probe_owner`).
    pub probe_owner: String,
    /// The probe lease's end, epoch ms (default `lease_expires_at`).
    pub lease_expiry: String,
    /// Failed probes since the circuit opened (default `failed_probes`).
    pub failed_probes: String,
    /// The last transition, epoch ms (default `changed_at`).
    pub changed_at: String,
    /// The TTL attribute, epoch seconds (default `expiration`).
    pub expiration: String,
}

impl Default for BreakerAttributeNames {
    fn default() -> Self {
        Self {
            key: "pk".into(),
            state: "state".into(),
            next_probe: "next_probe_at".into(),
            probe_owner: "probe_owner".into(),
            lease_expiry: "lease_expires_at".into(),
            failed_probes: "failed_probes".into(),
            changed_at: "changed_at".into(),
            expiration: "expiration".into(),
        }
    }
}

/// Breakers' shared state in a DynamoDB table, one item per breaker, every write
/// conditional. Give it a client with a short operation timeout: when the table does not
/// answer, the breaker waits for the client before it fails open.
///
/// # Table
///
/// Any table with a string partition key (`pk` by default; [`BreakerAttributeNames::key`]
/// for another, such as the idempotency table's `id`) and no sort key. TTL on `expiration`
/// removes the items of breakers no longer used (the conditions never depend on it).
///
/// # Item
///
/// | attribute (default name) | type | content |
/// | --- | --- | --- |
/// | `pk` | S | `breaker#<name>` |
/// | `state` | S | `CLOSED`, `OPEN` or `HALF_OPEN` |
/// | `next_probe_at` | N | open: epoch ms from which the probe may be claimed |
/// | `probe_owner` | S | half-open: the probe owner's token |
/// | `lease_expires_at` | N | half-open: epoch ms when the probe lease lapses |
/// | `failed_probes` | N | probes failed since the circuit opened |
/// | `changed_at` | N | epoch ms of the last transition |
/// | `expiration` | N | epoch seconds, a week after the last transition: the TTL |
///
/// # Requests
///
/// - Get: `GetItem`, consistent.
/// - Open: `PutItem` of the open item, condition `attribute_not_exists(#pk) OR #state =
///   :closed`, `ReturnValuesOnConditionCheckFailure=ALL_OLD` (the open item found is
///   adopted).
/// - Claim the probe: `UpdateItem` setting `state = HALF_OPEN`, owner, lease, condition
///   `attribute_not_exists(#pk) OR (#state = :open AND (attribute_not_exists(#next) OR #next
///   <= :now)) OR (#state = :half_open AND (attribute_not_exists(#lease) OR #lease <= :now))`,
///   `ReturnValues=ALL_NEW`, `ReturnValuesOnConditionCheckFailure=ALL_OLD`.
/// - Resolve the probe: `PutItem` of the closed or open item, condition `#state = :half_open
///   AND #owner = :owner`; a failed condition is [`BreakerStoreError::Fenced`].
///
/// A failed condition that does not return the old item (a DynamoDB-compatible service
/// without `ReturnValuesOnConditionCheckFailure`) is followed by a consistent `GetItem`.
#[derive(Clone, Debug)]
pub struct DynamoDbBreakerStore {
    client: Client,
    table: String,
    names: BreakerAttributeNames,
}

impl DynamoDbBreakerStore {
    /// Breakers in `table`, through `client`, with the default attribute names.
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
            names: BreakerAttributeNames::default(),
        }
    }

    /// Uses other attribute names (`key: "id"` for the idempotency table).
    #[must_use]
    pub fn with_attribute_names(mut self, names: BreakerAttributeNames) -> Self {
        self.names = names;
        self
    }

    /// The table name.
    pub fn table(&self) -> &str {
        &self.table
    }

    /// The partition key value of breaker `name`: `breaker#<name>`.
    pub fn key_of(name: &str) -> String {
        format!("{KEY_PREFIX}{name}")
    }

    fn primary_key(&self, name: &str) -> Item {
        Item::from([(self.names.key.clone(), s(&Self::key_of(name)))])
    }

    fn to_item(&self, record: &BreakerRecord) -> Item {
        let names = &self.names;
        let mut item = self.primary_key(&record.name);
        item.insert(names.state.clone(), s(record.state.as_str()));
        item.insert(names.failed_probes.clone(), n(record.failed_probes));
        item.insert(names.changed_at.clone(), n(record.changed_at_ms));
        item.insert(
            names.expiration.clone(),
            n(expiration(record.changed_at_ms)),
        );
        if let Some(next_probe_ms) = record.next_probe_ms {
            item.insert(names.next_probe.clone(), n(next_probe_ms));
        }
        if let Some(owner) = &record.probe_owner {
            item.insert(names.probe_owner.clone(), s(owner));
        }
        if let Some(lease_expiry_ms) = record.lease_expiry_ms {
            item.insert(names.lease_expiry.clone(), n(lease_expiry_ms));
        }
        item
    }

    fn parse_item(&self, item: &Item) -> Result<BreakerRecord, BreakerStoreError> {
        let names = &self.names;
        let key = string(item, &names.key).unwrap_or_default();
        let name = key.strip_prefix(KEY_PREFIX).unwrap_or(&key).to_string();
        let corrupt = |reason: String| BreakerStoreError::Corrupt {
            name: name.clone(),
            reason,
        };
        let state = string(item, &names.state)
            .ok_or_else(|| corrupt(format!("no string attribute {:?}", names.state)))?
            .parse::<CircuitState>()
            .map_err(corrupt)?;
        let number = |attribute: &str| number(item, attribute).map_err(corrupt);
        Ok(BreakerRecord {
            state,
            next_probe_ms: number(&names.next_probe)?,
            probe_owner: string(item, &names.probe_owner),
            lease_expiry_ms: number(&names.lease_expiry)?,
            failed_probes: number(&names.failed_probes)?
                .map_or(0, |count| u32::try_from(count).unwrap_or(u32::MAX)),
            changed_at_ms: number(&names.changed_at)?.unwrap_or(0),
            name: name.clone(),
        })
    }

    async fn get_consistent(&self, name: &str) -> Result<Option<BreakerRecord>, BreakerStoreError> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(self.primary_key(name)))
            .consistent_read(true)
            .send()
            .await
            .map_err(unavailable)?;
        output.item().map(|item| self.parse_item(item)).transpose()
    }

    /// The expression names every condition uses.
    fn names_for(&self, placeholders: &[(&str, &String)]) -> HashMap<String, String> {
        placeholders
            .iter()
            .map(|(placeholder, name)| (placeholder.to_string(), (*name).clone()))
            .collect()
    }
}

impl BreakerStore for DynamoDbBreakerStore {
    async fn get(&self, name: &str) -> Result<Option<BreakerRecord>, BreakerStoreError> {
        self.get_consistent(name).await
    }

    async fn open(&self, record: &BreakerRecord) -> Result<OpenOutcome, BreakerStoreError> {
        let names = &self.names;
        for _ in 0..ATTEMPTS {
            let sent = self
                .client
                .put_item()
                .table_name(&self.table)
                .set_item(Some(self.to_item(record)))
                .condition_expression("attribute_not_exists(#pk) OR #state = :closed")
                .set_expression_attribute_names(Some(
                    self.names_for(&[("#pk", &names.key), ("#state", &names.state)]),
                ))
                .expression_attribute_values(":closed", s(CircuitState::Closed.as_str()))
                .return_values_on_condition_check_failure(
                    ReturnValuesOnConditionCheckFailure::AllOld,
                )
                .send()
                .await;
            let error = match sent {
                Ok(_) => return Ok(OpenOutcome::Opened),
                Err(error) => error,
            };
            let Some(PutItemError::ConditionalCheckFailedException(failed)) =
                error.as_service_error()
            else {
                return Err(unavailable(error));
            };
            let existing = match failed.item() {
                Some(old) => Some(self.parse_item(old)?),
                None => self.get_consistent(&record.name).await?,
            };
            match existing {
                Some(existing) if !existing.is_openable() => {
                    return Ok(OpenOutcome::AlreadyOpen(existing))
                }
                // Closed or gone between the write and the read: write again.
                _ => continue,
            }
        }
        Err(changing(&record.name))
    }

    async fn claim_probe(
        &self,
        name: &str,
        owner: &str,
        lease_expiry_ms: u64,
        now_ms: u64,
    ) -> Result<ProbeClaim, BreakerStoreError> {
        let names = &self.names;
        for _ in 0..ATTEMPTS {
            let sent = self
                .client
                .update_item()
                .table_name(&self.table)
                .set_key(Some(self.primary_key(name)))
                .update_expression(
                    "SET #state = :half_open, #owner = :owner, #lease = :lease, \
                     #changed = :now, #expiry = :expiry",
                )
                .condition_expression(
                    "attribute_not_exists(#pk) \
                     OR (#state = :open AND (attribute_not_exists(#next) OR #next <= :now)) \
                     OR (#state = :half_open AND (attribute_not_exists(#lease) OR #lease <= :now))",
                )
                .set_expression_attribute_names(Some(self.names_for(&[
                    ("#pk", &names.key),
                    ("#state", &names.state),
                    ("#owner", &names.probe_owner),
                    ("#lease", &names.lease_expiry),
                    ("#changed", &names.changed_at),
                    ("#expiry", &names.expiration),
                    ("#next", &names.next_probe),
                ])))
                .expression_attribute_values(":half_open", s(CircuitState::HalfOpen.as_str()))
                .expression_attribute_values(":open", s(CircuitState::Open.as_str()))
                .expression_attribute_values(":owner", s(owner))
                .expression_attribute_values(":lease", n(lease_expiry_ms))
                .expression_attribute_values(":now", n(now_ms))
                .expression_attribute_values(":expiry", n(expiration(now_ms)))
                .return_values(ReturnValue::AllNew)
                .return_values_on_condition_check_failure(
                    ReturnValuesOnConditionCheckFailure::AllOld,
                )
                .send()
                .await;
            let error = match sent {
                Ok(output) => {
                    let written =
                        output
                            .attributes()
                            .ok_or_else(|| BreakerStoreError::Corrupt {
                                name: name.to_string(),
                                reason: "the claim returned no item".into(),
                            })?;
                    return self.parse_item(written).map(ProbeClaim::Won);
                }
                Err(error) => error,
            };
            let Some(UpdateItemError::ConditionalCheckFailedException(failed)) =
                error.as_service_error()
            else {
                return Err(unavailable(error));
            };
            let existing = match failed.item() {
                Some(old) => Some(self.parse_item(old)?),
                None => self.get_consistent(name).await?,
            };
            match existing {
                Some(existing) if !probe_claimable(Some(&existing), now_ms) => {
                    return Ok(ProbeClaim::Lost(existing))
                }
                // Claimable by the time it was read: claim again.
                _ => continue,
            }
        }
        Err(changing(name))
    }

    async fn resolve_probe(
        &self,
        record: &BreakerRecord,
        owner: &str,
    ) -> Result<(), BreakerStoreError> {
        let names = &self.names;
        let sent = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(self.to_item(record)))
            .condition_expression("#state = :half_open AND #owner = :owner")
            .set_expression_attribute_names(Some(
                self.names_for(&[("#state", &names.state), ("#owner", &names.probe_owner)]),
            ))
            .expression_attribute_values(":half_open", s(CircuitState::HalfOpen.as_str()))
            .expression_attribute_values(":owner", s(owner))
            .send()
            .await;
        match sent {
            Ok(_) => Ok(()),
            Err(error)
                if matches!(
                    error.as_service_error(),
                    Some(PutItemError::ConditionalCheckFailedException(_))
                ) =>
            {
                Err(BreakerStoreError::Fenced {
                    name: record.name.clone(),
                })
            }
            Err(error) => Err(unavailable(error)),
        }
    }
}

fn s(value: &str) -> AttributeValue {
    AttributeValue::S(value.to_string())
}

fn n(value: impl ToString) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

fn expiration(changed_at_ms: u64) -> u64 {
    changed_at_ms / 1000 + RETENTION_SECONDS
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
            .map(Some)
            .map_err(|_| format!("attribute {name:?} is not a whole number: {text:?}")),
        Some(other) => Err(format!("attribute {name:?} is not a number: {other:?}")),
    }
}

fn changing(name: &str) -> BreakerStoreError {
    BreakerStoreError::Unavailable {
        message: format!(
            "breaker {name}: the item kept changing between the conditional write and its read \
             ({ATTEMPTS} attempts)"
        ),
        source: None,
    }
}

/// Any failure other than a failed condition: the store is unavailable to the breaker.
fn unavailable<E, R>(error: SdkError<E, R>) -> BreakerStoreError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    let message = match (error.code(), error.message()) {
        (Some(code), Some(message)) => format!("{code}: {message}"),
        _ => DisplayErrorContext(&error).to_string(),
    };
    BreakerStoreError::Unavailable {
        message,
        source: Some(Box::new(error)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> DynamoDbBreakerStore {
        let config = aws_sdk_dynamodb::Config::builder()
            .behavior_version(aws_sdk_dynamodb::config::BehaviorVersion::latest())
            .build();
        DynamoDbBreakerStore::new(Client::from_conf(config), "breakers")
    }

    #[test]
    fn records_round_trip_through_items() {
        let store = store();
        let probing = BreakerRecord::open("orders-bus", 1_700_000_060_000, 2, 1_700_000_000_000)
            .probed_by("owner-1", 1_700_000_090_000, 1_700_000_061_000);
        let item = store.to_item(&probing);
        assert_eq!(item.get("pk"), Some(&s("breaker#orders-bus")));
        assert_eq!(item.get("state"), Some(&s("HALF_OPEN")));
        assert_eq!(item.get("lease_expires_at"), Some(&n(1_700_000_090_000u64)));
        assert_eq!(
            item.get("expiration"),
            Some(&n(1_700_000_061u64 + RETENTION_SECONDS))
        );
        assert_eq!(store.parse_item(&item).unwrap(), probing);
        let closed = BreakerRecord::closed("orders-bus", 5);
        let item = store.to_item(&closed);
        assert!(!item.contains_key("next_probe_at") && !item.contains_key("probe_owner"));
        assert_eq!(store.parse_item(&item).unwrap(), closed);
    }

    #[test]
    fn other_attribute_names_are_used_and_malformed_items_are_reported() {
        let store = store().with_attribute_names(BreakerAttributeNames {
            key: "id".into(),
            ..BreakerAttributeNames::default()
        });
        let open = BreakerRecord::open("payment-provider", 10, 0, 1);
        let mut item = store.to_item(&open);
        assert!(item.contains_key("id") && !item.contains_key("pk"));
        assert_eq!(store.parse_item(&item).unwrap(), open);
        item.insert("state".into(), s("AJAR"));
        assert!(matches!(
            store.parse_item(&item),
            Err(BreakerStoreError::Corrupt { name, .. }) if name == "payment-provider"
        ));
        item.insert("state".into(), s("OPEN"));
        item.insert("next_probe_at".into(), n("soon"));
        assert!(store.parse_item(&item).is_err());
    }
}
