//! The batch operations of the DynamoDB store, as PartiQL statements sent with
//! `BatchExecuteStatement`: up to 25 statements per request, each succeeding or failing on
//! its own, at the write cost of the single requests they replace.
//!
//! - **Claim**: one `INSERT` per record. An `INSERT` of an existing key fails alone with
//!   `DuplicateItem`; DynamoDB Local returns no item with it, DynamoDB may (asked with
//!   `ReturnValuesOnConditionCheckFailure=ALL_OLD`), and both are handled. The conflicts whose
//!   item did not come back are read in one consistent `BatchGetItem`; those that are
//!   claimable (expired, or in progress with an ended window) are taken over with one batch of
//!   `UPDATE`s conditional on exactly that, so a claim that got there first wins. A record
//!   that vanished between two steps (released, or deleted by TTL) is claimed again from the
//!   `INSERT`, up to [`CLAIM_ATTEMPTS`] times.
//! - **Complete**: `UPDATE .. WHERE id = ? AND owner = ?`; a failed condition (another owner,
//!   or no item: an `UPDATE` never creates one) is [`StoreError::Fenced`].
//! - **Release**: `DELETE .. WHERE id = ? AND owner = ? AND status = 'INPROGRESS'`.
//!
//! A request may not hold one key twice, so a batch repeating a key is sent in rounds of
//! distinct keys (see [`rounds`]).

use std::collections::HashMap;
use std::time::Duration;

use aws_sdk_dynamodb::types::{
    AttributeValue, BatchStatementErrorCodeEnum, BatchStatementRequest, KeysAndAttributes,
    ReturnValuesOnConditionCheckFailure,
};

use super::{store_error, DynamoDbStore, Item, CLAIM_ATTEMPTS};
use crate::backoff::Backoff;
use crate::idempotency::error::StoreError;
use crate::idempotency::record::{IdempotencyRecord, Status};
use crate::idempotency::store::batch::rounds;
use crate::idempotency::store::{ClaimOutcome, Completion, Release};

/// The most statements `BatchExecuteStatement` takes in one request.
const STATEMENTS_PER_REQUEST: usize = 25;
/// The most keys `BatchGetItem` takes in one request.
const KEYS_PER_READ: usize = 100;
/// How many times a statement that failed for a passing reason is sent, the first included.
const STATEMENT_ATTEMPTS: u32 = 5;
/// The waits between those attempts: at most 25, 50, 100, 200 ms (about 0.4 s in all).
const STATEMENT_BACKOFF: Backoff = Backoff::new(Duration::from_millis(25), Duration::from_secs(1));
/// How many times keys DynamoDB left unprocessed in a `BatchGetItem` are asked for again.
const READ_ATTEMPTS: usize = 5;

/// How one statement of a batch ended.
enum Statement {
    Done,
    /// Its condition failed (for an `INSERT`: the key exists), with the item when returned.
    Refused(Option<Item>),
    /// Failed for a reason that passes (throttled, an internal error, a conflict with a
    /// transaction): sent again, alone, after a jittered wait.
    Retryable(StoreError),
    Failed(StoreError),
}

/// Whether a statement of a batch failed for throttling.
fn is_throttling(code: &BatchStatementErrorCodeEnum) -> bool {
    matches!(
        code,
        BatchStatementErrorCodeEnum::ThrottlingError
            | BatchStatementErrorCodeEnum::ProvisionedThroughputExceeded
            | BatchStatementErrorCodeEnum::RequestLimitExceeded
    )
}

/// Whether a statement of a batch failed for a reason that passes (throttled, an internal
/// error, a conflict with a transaction): worth sending again, alone, after a wait.
pub(crate) fn passes(code: &BatchStatementErrorCodeEnum) -> bool {
    is_throttling(code)
        || matches!(
            code,
            BatchStatementErrorCodeEnum::InternalServerError
                | BatchStatementErrorCodeEnum::TransactionConflict
        )
}

/// A PartiQL identifier: double-quoted, inner quotes doubled.
fn ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// A PartiQL string literal (an attribute name inside a `VALUE` tuple).
fn literal(name: &str) -> String {
    format!("'{}'", name.replace('\'', "''"))
}

fn text(value: &str) -> AttributeValue {
    AttributeValue::S(value.to_string())
}

fn number(value: u64) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

/// A copy of `error` for another statement of the same failed request (the source, which
/// cannot be cloned, stays with the first).
pub(crate) fn copy_error(error: &StoreError) -> StoreError {
    match error {
        StoreError::TableMissing { table, message } => StoreError::TableMissing {
            table: table.clone(),
            message: message.clone(),
        },
        StoreError::Throttled { message } => StoreError::Throttled {
            message: message.clone(),
        },
        StoreError::Fenced => StoreError::Fenced,
        StoreError::LimitExceeded { key, reason } => StoreError::LimitExceeded {
            key: key.clone(),
            reason: reason.clone(),
        },
        other => StoreError::other(other.to_string()),
    }
}

impl DynamoDbStore {
    /// The `WHERE` condition on the primary key of `key`'s record, and its parameters.
    fn key_condition(&self, key: &str) -> (String, Vec<AttributeValue>) {
        let mut conditions = Vec::new();
        let mut parameters = Vec::new();
        // In a stable order: the partition key, then the sort key.
        let mut attributes: Vec<(String, AttributeValue)> =
            self.primary_key(key).into_iter().collect();
        attributes.sort_by_key(|(name, _)| name != &self.names.key);
        for (name, value) in attributes {
            conditions.push(format!("{} = ?", ident(&name)));
            parameters.push(value);
        }
        (conditions.join(" AND "), parameters)
    }

    fn statement(
        &self,
        statement: String,
        parameters: Vec<AttributeValue>,
        return_old: bool,
    ) -> Result<BatchStatementRequest, StoreError> {
        BatchStatementRequest::builder()
            .statement(statement)
            .set_parameters(Some(parameters))
            .set_return_values_on_condition_check_failure(
                return_old.then_some(ReturnValuesOnConditionCheckFailure::AllOld),
            )
            .build()
            .map_err(|error| StoreError::other(error.to_string()))
    }

    /// Sends `statements` in requests of at most 25, concurrently, and returns how each
    /// ended, in order. A request that fails as a whole fails each of its statements.
    async fn execute(
        &self,
        statements: Vec<Result<BatchStatementRequest, StoreError>>,
    ) -> Vec<Statement> {
        // A statement that could not be built (over a limit) fails alone; the others of its
        // request are sent.
        let mut outcomes: Vec<Option<Statement>> = statements.iter().map(|_| None).collect();
        let mut pending = Vec::new();
        for (index, statement) in statements.into_iter().enumerate() {
            match statement {
                Ok(statement) => pending.push((index, statement)),
                Err(error) => outcomes[index] = Some(Statement::Failed(error)),
            }
        }
        // A request that succeeds can still fail single statements for reasons that pass
        // (throttling, internal errors, transaction conflicts); the SDK retries requests,
        // not statements, so those are sent again here. Left failed, a completion would
        // leave its claim in progress and the redelivery would run the handler twice.
        for retry in 0..STATEMENT_ATTEMPTS {
            if retry > 0 {
                tokio::time::sleep(STATEMENT_BACKOFF.delay(retry)).await;
            }
            let requests = pending
                .chunks(STATEMENTS_PER_REQUEST)
                .map(|chunk| async move {
                    let sent = chunk
                        .iter()
                        .map(|(_, statement)| statement.clone())
                        .collect();
                    (chunk.to_vec(), self.send(sent).await)
                });
            let mut again = Vec::new();
            for (chunk, answers) in futures::future::join_all(requests).await {
                for ((index, statement), answer) in chunk.into_iter().zip(answers) {
                    match answer {
                        Statement::Retryable(_) if retry + 1 < STATEMENT_ATTEMPTS => {
                            again.push((index, statement));
                        }
                        Statement::Retryable(error) => {
                            outcomes[index] = Some(Statement::Failed(error));
                        }
                        answer => outcomes[index] = Some(answer),
                    }
                }
            }
            if again.is_empty() {
                break;
            }
            tracing::warn!(statements = again.len(), retry = retry + 1, "DynamoDB failed single statements of a batch for a passing reason; sending them again");
            pending = again;
        }
        outcomes
            .into_iter()
            .map(|outcome| {
                outcome.unwrap_or_else(|| {
                    Statement::Failed(StoreError::other("statement left without an answer"))
                })
            })
            .collect()
    }

    async fn send(&self, statements: Vec<BatchStatementRequest>) -> Vec<Statement> {
        let count = statements.len();
        let output = match self
            .client
            .batch_execute_statement()
            .set_statements(Some(statements))
            .send()
            .await
        {
            Ok(output) => output,
            Err(error) => {
                let error = store_error(&self.table, error);
                return (0..count)
                    .map(|_| Statement::Failed(copy_error(&error)))
                    .collect();
            }
        };
        let responses = output.responses();
        if responses.len() != count {
            let error = StoreError::other(format!(
                "BatchExecuteStatement answered {} of {count} statements",
                responses.len()
            ));
            return (0..count)
                .map(|_| Statement::Failed(copy_error(&error)))
                .collect();
        }
        responses
            .iter()
            .map(|response| match response.error() {
                None => Statement::Done,
                Some(error) => {
                    let message = error.message().unwrap_or_default().to_string();
                    match error.code() {
                        Some(
                            BatchStatementErrorCodeEnum::ConditionalCheckFailed
                            | BatchStatementErrorCodeEnum::DuplicateItem,
                        ) => Statement::Refused(error.item().cloned()),
                        Some(BatchStatementErrorCodeEnum::ResourceNotFound) => {
                            Statement::Failed(StoreError::TableMissing {
                                table: self.table.clone(),
                                message,
                            })
                        }
                        Some(code) if is_throttling(code) => {
                            Statement::Retryable(StoreError::Throttled { message })
                        }
                        Some(code) if passes(code) => Statement::Retryable(StoreError::other(
                            format!("{}: {message}", code.as_str()),
                        )),
                        code => Statement::Failed(StoreError::other(format!(
                            "{}: {message}",
                            code.map_or("unknown", |code| code.as_str())
                        ))),
                    }
                }
            })
            .collect()
    }

    fn insert(&self, record: &IdempotencyRecord) -> Result<BatchStatementRequest, StoreError> {
        self.check_limits(record)?;
        let mut fields = Vec::new();
        let mut parameters = Vec::new();
        for (name, value) in self.to_item(record) {
            fields.push(format!("{}: ?", literal(&name)));
            parameters.push(value);
        }
        let statement = format!(
            "INSERT INTO {} VALUE {{{}}}",
            ident(&self.table),
            fields.join(", ")
        );
        self.statement(statement, parameters, self.return_old_item_on_conflict)
    }

    /// Replaces a claimable record with `record`: every attribute of ours set or removed as
    /// the claim's `PutItem` would, only if the record is still claimable at `now_ms`.
    fn takeover(
        &self,
        record: &IdempotencyRecord,
        now_ms: u64,
    ) -> Result<BatchStatementRequest, StoreError> {
        let names = &self.names;
        let item = self.to_item(record);
        let mut sets = Vec::new();
        let mut removes = Vec::new();
        let mut parameters = Vec::new();
        for name in [
            &names.status,
            &names.expiration,
            &names.in_progress_expiry,
            &names.data,
            &names.validation,
            &names.owner,
        ] {
            match item.get(name) {
                Some(value) => {
                    sets.push(format!(" SET {} = ?", ident(name)));
                    parameters.push(value.clone());
                }
                None => removes.push(format!(" REMOVE {}", ident(name))),
            }
        }
        let (key, key_parameters) = self.key_condition(&record.key);
        let statement = format!(
            "UPDATE {}{}{} WHERE {key} AND ({} < ? OR ({} = ? AND {} < ?))",
            ident(&self.table),
            sets.concat(),
            removes.concat(),
            ident(&names.expiration),
            ident(&names.status),
            ident(&names.in_progress_expiry),
        );
        parameters.extend(key_parameters);
        parameters.extend([
            number(now_ms / 1000),
            text(Status::InProgress.as_str()),
            number(now_ms),
        ]);
        self.statement(statement, parameters, true)
    }

    fn completion(
        &self,
        completion: &Completion,
        extra: &[(String, AttributeValue)],
    ) -> Result<BatchStatementRequest, StoreError> {
        self.check_limits(&completion.as_record())?;
        let names = &self.names;
        let (key, key_parameters) = self.key_condition(&completion.key);
        let extra_sets: String = extra
            .iter()
            .map(|(name, _)| format!(" SET {} = ?", ident(name)))
            .collect();
        let statement = format!(
            "UPDATE {} SET {} = ? SET {} = ? SET {} = ?{extra_sets} WHERE {key} AND {} = ?",
            ident(&self.table),
            ident(&names.status),
            ident(&names.data),
            ident(&names.expiration),
            ident(&names.owner),
        );
        let mut parameters = vec![
            text(Status::Completed.as_str()),
            text(&completion.result),
            number(completion.expiration),
        ];
        parameters.extend(extra.iter().map(|(_, value)| value.clone()));
        parameters.extend(key_parameters);
        parameters.push(text(&completion.owner));
        self.statement(statement, parameters, false)
    }

    fn release_statement(&self, release: &Release) -> Result<BatchStatementRequest, StoreError> {
        let names = &self.names;
        // Only a claim in progress: a completion whose answer was lost must never be deleted.
        let (key, mut parameters) = self.key_condition(&release.key);
        let statement = format!(
            "DELETE FROM {} WHERE {key} AND {} = ? AND {} = ?",
            ident(&self.table),
            ident(&names.owner),
            ident(&names.status),
        );
        parameters.extend([text(&release.owner), text(Status::InProgress.as_str())]);
        self.statement(statement, parameters, false)
    }

    /// Reads `keys` with consistent reads, in requests of at most 100; absent keys are absent
    /// from the map.
    async fn read_many(&self, keys: &[&str]) -> Result<HashMap<String, Item>, StoreError> {
        let mut found = HashMap::new();
        for chunk in keys.chunks(KEYS_PER_READ) {
            let mut wanted: Vec<Item> = chunk.iter().map(|key| self.primary_key(key)).collect();
            for attempt in 0..READ_ATTEMPTS {
                let request = KeysAndAttributes::builder()
                    .set_keys(Some(std::mem::take(&mut wanted)))
                    .consistent_read(true)
                    .build()
                    .map_err(|error| StoreError::other(error.to_string()))?;
                let output = self
                    .client
                    .batch_get_item()
                    .request_items(&self.table, request)
                    .send()
                    .await
                    .map_err(|error| store_error(&self.table, error))?;
                for item in output
                    .responses()
                    .and_then(|tables| tables.get(&self.table))
                    .into_iter()
                    .flatten()
                {
                    if let Some(AttributeValue::S(key)) = item.get(self.key_attribute()) {
                        found.insert(key.clone(), item.clone());
                    }
                }
                wanted = output
                    .unprocessed_keys()
                    .and_then(|tables| tables.get(&self.table))
                    .map(|left| left.keys().to_vec())
                    .unwrap_or_default();
                if wanted.is_empty() {
                    break;
                }
                // Unprocessed keys mean the table is at capacity: back off before asking again.
                tokio::time::sleep(std::time::Duration::from_millis(10 << attempt)).await;
            }
            if !wanted.is_empty() {
                return Err(StoreError::Throttled {
                    message: format!(
                        "BatchGetItem left {} keys unprocessed after {READ_ATTEMPTS} attempts",
                        wanted.len()
                    ),
                });
            }
        }
        Ok(found)
    }

    pub(super) async fn claim_batch(
        &self,
        records: &[IdempotencyRecord],
        now_ms: u64,
    ) -> Vec<Result<ClaimOutcome, StoreError>> {
        let mut outcomes: Vec<Option<Result<ClaimOutcome, StoreError>>> =
            records.iter().map(|_| None).collect();
        for round in rounds(records.iter().map(|record| record.key.as_str())) {
            let mut pending = round;
            for _ in 0..CLAIM_ATTEMPTS {
                if pending.is_empty() {
                    break;
                }
                pending = self
                    .claim_once(records, pending, now_ms, &mut outcomes)
                    .await;
            }
            for index in pending {
                outcomes[index] = Some(Err(StoreError::other(format!(
                    "claim of idempotency key {} kept colliding with a record that vanished \
                     before it could be read ({CLAIM_ATTEMPTS} attempts)",
                    records[index].key
                ))));
            }
        }
        outcomes
            .into_iter()
            .map(|outcome| {
                outcome.unwrap_or_else(|| Err(StoreError::other("claim was not attempted")))
            })
            .collect()
    }

    /// One attempt at claiming the records at `pending` (distinct keys): inserts, a read of
    /// the conflicts, takeovers. Sets the outcome of every record it settles and returns the
    /// positions to try again (their record vanished between two steps).
    async fn claim_once(
        &self,
        records: &[IdempotencyRecord],
        pending: Vec<usize>,
        now_ms: u64,
        outcomes: &mut [Option<Result<ClaimOutcome, StoreError>>],
    ) -> Vec<usize> {
        let inserts = pending
            .iter()
            .map(|&index| self.insert(&records[index]))
            .collect();
        let mut existing: Vec<(usize, Item)> = Vec::new();
        let mut unread: Vec<usize> = Vec::new();
        for (&index, statement) in pending.iter().zip(self.execute(inserts).await) {
            match statement {
                Statement::Done => {
                    outcomes[index] = Some(Ok(ClaimOutcome::Claimed { replaced: None }))
                }
                Statement::Refused(Some(item)) => existing.push((index, item)),
                Statement::Refused(None) => unread.push(index),
                Statement::Failed(error) | Statement::Retryable(error) => {
                    outcomes[index] = Some(Err(error))
                }
            }
        }
        let mut again = Vec::new();
        if !unread.is_empty() {
            let keys: Vec<&str> = unread
                .iter()
                .map(|&index| records[index].key.as_str())
                .collect();
            match self.read_many(&keys).await {
                Ok(mut found) => {
                    for index in unread {
                        match found.remove(&records[index].key) {
                            Some(item) => existing.push((index, item)),
                            // Released or deleted since the insert: insert again.
                            None => again.push(index),
                        }
                    }
                }
                Err(error) => {
                    for index in unread {
                        outcomes[index] = Some(Err(copy_error(&error)));
                    }
                }
            }
        }
        let mut takeovers: Vec<(usize, IdempotencyRecord)> = Vec::new();
        for (index, item) in existing {
            match self.parse_item(&item) {
                Ok(old) if old.is_claimable(now_ms) => takeovers.push((index, old)),
                Ok(live) => outcomes[index] = Some(Ok(ClaimOutcome::Exists(live))),
                Err(error) => outcomes[index] = Some(Err(error)),
            }
        }
        if takeovers.is_empty() {
            return again;
        }
        let updates = takeovers
            .iter()
            .map(|(index, _)| self.takeover(&records[*index], now_ms))
            .collect();
        for ((index, old), statement) in takeovers.into_iter().zip(self.execute(updates).await) {
            outcomes[index] = match statement {
                Statement::Done => Some(Ok(ClaimOutcome::Claimed {
                    replaced: Some(old),
                })),
                // Someone else claimed it first: that claim is what exists now.
                Statement::Refused(Some(item)) => match self.parse_item(&item) {
                    Ok(live) if !live.is_claimable(now_ms) => Some(Ok(ClaimOutcome::Exists(live))),
                    Ok(_) => {
                        again.push(index);
                        None
                    }
                    Err(error) => Some(Err(error)),
                },
                // Gone (an update never creates an item): claim it from the insert again.
                Statement::Refused(None) => {
                    again.push(index);
                    None
                }
                Statement::Failed(error) | Statement::Retryable(error) => Some(Err(error)),
            };
        }
        again
    }

    pub(super) async fn complete_batch(
        &self,
        completions: &[Completion],
    ) -> Vec<Result<(), StoreError>> {
        let statements: Vec<_> = completions
            .iter()
            .map(|completion| self.completion(completion, &[]))
            .collect();
        self.fenced_in_rounds(completions.iter().map(|c| c.key.as_str()), statements)
            .await
    }

    /// [`complete_batch`](Self::complete_batch), each completion also setting its `extra`
    /// (name, value) attributes on the record: the events that ride on it.
    pub(crate) async fn complete_batch_with(
        &self,
        completions: &[(Completion, Vec<(String, AttributeValue)>)],
    ) -> Vec<Result<(), StoreError>> {
        let statements: Vec<_> = completions
            .iter()
            .map(|(completion, extra)| self.completion(completion, extra))
            .collect();
        self.fenced_in_rounds(completions.iter().map(|(c, _)| c.key.as_str()), statements)
            .await
    }

    pub(super) async fn release_batch(&self, releases: &[Release]) -> Vec<Result<(), StoreError>> {
        let statements: Vec<_> = releases
            .iter()
            .map(|release| self.release_statement(release))
            .collect();
        let mut results = self
            .fenced_in_rounds(releases.iter().map(|r| r.key.as_str()), statements)
            .await;
        // A refused release whose record is gone had been released by an earlier try whose
        // answer was lost (`Release::refused`): the refused ones are read to tell.
        let refused: Vec<usize> = (0..results.len())
            .filter(|&index| matches!(results[index], Err(StoreError::Fenced)))
            .collect();
        if refused.is_empty() {
            return results;
        }
        let keys: Vec<&str> = refused
            .iter()
            .map(|&index| releases[index].key.as_str())
            .collect();
        match self.read_many(&keys).await {
            Ok(found) => {
                for index in refused {
                    let release = &releases[index];
                    let record = found
                        .get(&release.key)
                        .map(|item| self.parse_item(item))
                        .transpose();
                    results[index] = match record {
                        Ok(record) => release.refused(record.as_ref()),
                        Err(error) => Err(error),
                    };
                }
            }
            Err(error) => {
                for index in refused {
                    results[index] = Err(copy_error(&error));
                }
            }
        }
        results
    }

    /// Sends owner-fenced writes in rounds of distinct keys; a refused one is
    /// [`StoreError::Fenced`].
    async fn fenced_in_rounds<'a>(
        &self,
        keys: impl IntoIterator<Item = &'a str>,
        statements: Vec<Result<BatchStatementRequest, StoreError>>,
    ) -> Vec<Result<(), StoreError>> {
        let mut results: Vec<Option<Result<(), StoreError>>> =
            statements.iter().map(|_| None).collect();
        let mut statements: Vec<Option<_>> = statements.into_iter().map(Some).collect();
        for round in rounds(keys) {
            let batch = round
                .iter()
                .map(|&index| {
                    statements[index]
                        .take()
                        .unwrap_or_else(|| Err(StoreError::other("statement sent twice")))
                })
                .collect();
            for (index, statement) in round.into_iter().zip(self.execute(batch).await) {
                results[index] = Some(match statement {
                    Statement::Done => Ok(()),
                    Statement::Refused(_) => Err(StoreError::Fenced),
                    Statement::Failed(error) | Statement::Retryable(error) => Err(error),
                });
            }
        }
        results
            .into_iter()
            .map(|result| result.unwrap_or_else(|| Err(StoreError::other("write was not sent"))))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_and_literals_are_quoted_and_escaped() {
        assert_eq!(ident("status"), "\"status\"");
        assert_eq!(ident("we\"ird"), "\"we\"\"ird\"");
        assert_eq!(literal("it's"), "'it''s'");
    }

    #[test]
    fn a_request_failure_is_copied_with_its_class() {
        let missing = StoreError::TableMissing {
            table: "t".into(),
            message: "gone".into(),
        };
        assert!(
            matches!(copy_error(&missing), StoreError::TableMissing { table, .. } if table == "t")
        );
        assert!(matches!(
            copy_error(&StoreError::Throttled { message: "slow".into() }),
            StoreError::Throttled { message } if message == "slow"
        ));
    }
}
