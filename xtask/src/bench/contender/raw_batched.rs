//! The raw baseline of the batched requests: what eventkit's batched claims send for a batch,
//! straight through the SDK with nothing around them. The batch's claims go in one PartiQL
//! `BatchExecuteStatement` of `INSERT`s; a claim refused as a duplicate is read back in one
//! consistent `BatchGetItem` (DynamoDB Local returns no item with a refused `INSERT`); the
//! claimed records complete in one more `BatchExecuteStatement` of `UPDATE`s fenced on the
//! owner. Its rate is what DynamoDB Local itself serves for batched claims: their ceiling.

use std::sync::atomic::{AtomicUsize, Ordering};

use anyhow::{Context, Result};
use aws_sdk_dynamodb::types::{AttributeValue, BatchStatementRequest, KeysAndAttributes};
use aws_sdk_dynamodb::Client;

use crate::protocol::{event_ids, now_ms, Contender, RECORD_TTL_SECS};

struct RawBatched {
    client: Client,
    table: String,
    runs: AtomicUsize,
}

fn text(value: &str) -> AttributeValue {
    AttributeValue::S(value.to_string())
}

fn number(value: u64) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

impl RawBatched {
    fn statement(
        &self,
        statement: String,
        parameters: Vec<AttributeValue>,
    ) -> Result<BatchStatementRequest> {
        BatchStatementRequest::builder()
            .statement(statement)
            .set_parameters(Some(parameters))
            .build()
            .context("building a statement")
    }

    /// Runs one batch; returns how many records failed.
    async fn batch(&self, event_ids: &[String]) -> Result<usize> {
        let now_ms = now_ms();
        let table = format!("\"{}\"", self.table);
        let claims = event_ids
            .iter()
            .map(|id| {
                self.statement(
                    format!(
                        "INSERT INTO {table} VALUE {{'id': ?, 'status': ?, 'expiration': ?, \
                         'in_progress_expiry': ?, 'owner': ?}}"
                    ),
                    vec![
                        text(&format!("raw#{id}")),
                        text("INPROGRESS"),
                        number(now_ms / 1000 + RECORD_TTL_SECS),
                        number(now_ms + 60_000),
                        text(id),
                    ],
                )
            })
            .collect::<Result<Vec<_>>>()?;
        let claimed = self
            .client
            .batch_execute_statement()
            .set_statements(Some(claims))
            .send()
            .await
            .context("claiming")?;
        let mut failed = 0;
        let mut duplicates = Vec::new();
        let mut completions = Vec::new();
        for (id, response) in event_ids.iter().zip(claimed.responses()) {
            match response.error().and_then(|error| error.code()) {
                None => completions.push(self.statement(
                    format!(
                        "UPDATE {table} SET \"status\" = ? SET \"data\" = ? SET \"expiration\" = ? \
                         WHERE \"id\" = ? AND \"owner\" = ?"
                    ),
                    vec![
                        text("COMPLETED"),
                        text("{}"),
                        number(now_ms / 1000 + RECORD_TTL_SECS),
                        text(&format!("raw#{id}")),
                        text(id),
                    ],
                )?),
                Some(code) if code.as_str() == "DuplicateItem" => duplicates.push(id),
                Some(_) => failed += 1,
            }
        }
        let read = async {
            if duplicates.is_empty() {
                return Ok(());
            }
            let keys = duplicates
                .iter()
                .map(|id| {
                    std::collections::HashMap::from([(
                        "id".to_string(),
                        text(&format!("raw#{id}")),
                    )])
                })
                .collect();
            let request = KeysAndAttributes::builder()
                .set_keys(Some(keys))
                .consistent_read(true)
                .build()
                .context("building the read")?;
            self.client
                .batch_get_item()
                .request_items(&self.table, request)
                .send()
                .await
                .context("reading the duplicates")?;
            Ok::<_, anyhow::Error>(())
        };
        let complete = async {
            if completions.is_empty() {
                return Ok(0);
            }
            self.runs.fetch_add(completions.len(), Ordering::Relaxed);
            let completed = self
                .client
                .batch_execute_statement()
                .set_statements(Some(completions))
                .send()
                .await
                .context("completing")?;
            Ok::<_, anyhow::Error>(
                completed
                    .responses()
                    .iter()
                    .filter(|response| response.error().is_some())
                    .count(),
            )
        };
        let ((), refused) = futures::try_join!(read, complete)?;
        Ok(failed + refused)
    }
}

impl Contender for RawBatched {
    async fn invoke(&self, payload: &str) -> Result<usize> {
        let event_ids = event_ids(payload)?;
        self.batch(&event_ids).await
    }

    fn runs(&self) -> usize {
        self.runs.load(Ordering::Relaxed)
    }
}

/// The batched baseline on `table`, with the SDK configured from the environment.
pub async fn contender(table: &str) -> impl Contender {
    let config = aws_config::load_from_env().await;
    RawBatched {
        client: Client::new(&config),
        table: table.to_string(),
        runs: AtomicUsize::new(0),
    }
}
