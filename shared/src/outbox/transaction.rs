//! The commit on DynamoDB: one `TransactWriteItems` of the completion (fenced on the
//! claim's owner), the staged writes, and one conditional put per staged event; and what a
//! cancelled transaction means.
//!
//! An outbox put is conditional on its item being absent (present means staged, see
//! [`item`](super::item)). When that condition alone fails, the event was staged by an
//! earlier commit (a rerun after the record expired, a record committed without
//! idempotency twice): the transaction is sent again without that put, so the record
//! completes and the existing item, published or not, is left as it is.
//!
//! Why not `attribute_not_exists(id) OR <same content>` on the put? A put replaces the
//! whole item, so a matching one would still lose the relay's `publishedAt` and TTL and be
//! published again; and a rerun's envelope has a new `time`, so its body never matches.
//! The cancellation reasons say which action failed, so an already staged event is told
//! from a staged write's failed condition without reading anything.

use aws_sdk_dynamodb::error::{DisplayErrorContext, SdkError};
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{CancellationReason, TransactWriteItem};

use super::item::{outbox_id, put};
use super::unit_of_work::UnitOfWork;
use crate::idempotency::{DynamoDbStore, StoreError};

const CONDITION_FAILED: &str = "ConditionalCheckFailed";

/// Where each kind of action sits in one transaction: the completion (if any) before
/// `staged`, the staged writes before `outbox`, the outbox puts from `outbox` on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Layout {
    staged: usize,
    outbox: usize,
}

/// What a cancelled transaction's reasons say.
#[derive(Debug, PartialEq, Eq)]
enum Cancelled {
    /// The completion's owner condition failed: the claim was taken over.
    Fenced,
    /// A staged write's condition failed (its position among the staged writes).
    StagedCondition { position: usize, message: String },
    /// Only outbox puts failed their condition: these events (positions among the puts) are
    /// staged already.
    AlreadyStaged(Vec<usize>),
    /// Anything else (a conflict with another transaction, a validation error): the codes.
    Other(Vec<String>),
}

/// Reads the reasons, one per action in request order (`None` for an action that was fine).
/// A fenced completion outranks a staged condition, which outranks staged events: the
/// transaction is retried without outbox puts only when nothing else went wrong.
fn cancelled(reasons: &[CancellationReason], layout: Layout) -> Cancelled {
    let failed = |position: &usize| reasons[*position].code() == Some(CONDITION_FAILED);
    let conditions: Vec<usize> = (0..reasons.len()).filter(failed).collect();
    if conditions.iter().any(|&position| position < layout.staged) {
        return Cancelled::Fenced;
    }
    if let Some(&position) = conditions.iter().find(|&&p| p < layout.outbox) {
        return Cancelled::StagedCondition {
            position: position - layout.staged,
            message: reasons[position].message().unwrap_or_default().to_string(),
        };
    }
    let others: Vec<String> = reasons
        .iter()
        .filter_map(|reason| reason.code())
        .filter(|code| *code != "None" && *code != CONDITION_FAILED)
        .map(str::to_string)
        .collect();
    if conditions.is_empty() || !others.is_empty() {
        return Cancelled::Other(others);
    }
    Cancelled::AlreadyStaged(conditions.iter().map(|p| p - layout.outbox).collect())
}

impl DynamoDbStore {
    /// Commits `work` (with `completion` first, when there is one) in one transaction,
    /// leaving alone the outbox items of events staged before.
    pub(super) async fn transact(
        &self,
        completion: Option<TransactWriteItem>,
        work: UnitOfWork,
        committed_by: &str,
        token: Option<&str>,
    ) -> Result<(), StoreError> {
        let (writes, events) = work.into_parts();
        let mut head = Vec::with_capacity(writes.len() + 1);
        let staged = usize::from(completion.is_some());
        head.extend(completion);
        head.extend(writes);
        let layout = Layout {
            staged,
            outbox: head.len(),
        };
        let mut puts = Vec::with_capacity(events.len());
        if !events.is_empty() {
            let Some(outbox) = self.outbox_table() else {
                return Err(StoreError::other(
                    "events were staged but the store has no outbox table (DynamoDbStore::with_outbox)",
                ));
            };
            let now = chrono::Utc::now();
            for event in &events {
                let put = put(outbox, event, committed_by, now)
                    .map_err(|error| StoreError::other(error.to_string()))?;
                puts.push((
                    outbox_id(event),
                    TransactWriteItem::builder().put(put).build(),
                ));
            }
        }
        // Each round drops at least one put, so this ends.
        let mut left_alone: Vec<String> = Vec::new();
        loop {
            let actions: Vec<TransactWriteItem> = head
                .iter()
                .chain(puts.iter().map(|(_, put)| put))
                .cloned()
                .collect();
            if actions.is_empty() {
                return Ok(());
            }
            let outcome = self
                .client()
                .transact_write_items()
                .set_transact_items(Some(actions))
                .set_client_request_token(request_token(token, &left_alone))
                .send()
                .await;
            let error = match outcome {
                Ok(_) => return Ok(()),
                Err(error) => error,
            };
            let reasons = match error.as_service_error() {
                Some(TransactWriteItemsError::TransactionCanceledException(cancelled)) => {
                    cancelled.cancellation_reasons()
                }
                _ => return Err(crate::idempotency::store_error(self.table(), error)),
            };
            match cancelled(reasons, layout) {
                Cancelled::AlreadyStaged(positions) => {
                    for position in positions.into_iter().rev() {
                        let (id, _) = puts.remove(position);
                        tracing::info!(outbox_id = %id, committed_by, "event staged by an earlier commit; its outbox item is left as it is");
                        left_alone.push(id);
                    }
                }
                Cancelled::Fenced => return Err(StoreError::Fenced),
                Cancelled::StagedCondition { position, message } => {
                    return Err(StoreError::StagedConditionFailed { position, message })
                }
                Cancelled::Other(codes) => return Err(other(&codes, &error)),
            }
        }
    }
}

/// The request's idempotency token: the claim's owner for the first transaction (the SDK's
/// retries of it are one transaction), one derived from it and the puts left out for a
/// transaction sent again without them (same token and other content would be refused as
/// a mismatch).
fn request_token(token: Option<&str>, left_alone: &[String]) -> Option<String> {
    let token = token?;
    if left_alone.is_empty() {
        return Some(token.to_string());
    }
    let name = format!("{token}|{}", left_alone.join("|"));
    Some(uuid::Uuid::new_v5(&uuid::Uuid::NAMESPACE_OID, name.as_bytes()).to_string())
}

fn other<R>(codes: &[String], error: &SdkError<TransactWriteItemsError, R>) -> StoreError
where
    R: std::fmt::Debug,
{
    StoreError::other(format!(
        "unit of work's transaction was cancelled ({}): {}",
        codes.join(", "),
        DisplayErrorContext(error)
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reasons(codes: &[&str]) -> Vec<CancellationReason> {
        codes
            .iter()
            .map(|code| {
                CancellationReason::builder()
                    .code(*code)
                    .message(format!("{code} message"))
                    .build()
            })
            .collect()
    }

    /// Completion, two staged writes, two outbox puts.
    const LAYOUT: Layout = Layout {
        staged: 1,
        outbox: 3,
    };

    #[test]
    fn a_cancelled_transaction_names_the_kind_of_action_that_failed() {
        let c = CONDITION_FAILED;
        let n = "None";
        assert_eq!(
            cancelled(&reasons(&[c, n, n, c, n]), LAYOUT),
            Cancelled::Fenced
        );
        assert_eq!(
            cancelled(&reasons(&[n, n, c, c, n]), LAYOUT),
            Cancelled::StagedCondition {
                position: 1,
                message: "ConditionalCheckFailed message".into()
            }
        );
        assert_eq!(
            cancelled(&reasons(&[n, n, n, c, c]), LAYOUT),
            Cancelled::AlreadyStaged(vec![0, 1])
        );
        assert_eq!(
            cancelled(&reasons(&[n, n, n, n, c]), LAYOUT),
            Cancelled::AlreadyStaged(vec![1])
        );
        // A conflict beside a staged event: not retried here (the record is).
        assert_eq!(
            cancelled(&reasons(&[n, "TransactionConflict", n, c, n]), LAYOUT),
            Cancelled::Other(vec!["TransactionConflict".into()])
        );
        assert_eq!(
            cancelled(&reasons(&[]), LAYOUT),
            Cancelled::Other(Vec::new())
        );
        // Without a completion, the first staged write is position 0.
        let alone = Layout {
            staged: 0,
            outbox: 1,
        };
        assert_eq!(
            cancelled(&reasons(&[c, c]), alone),
            Cancelled::StagedCondition {
                position: 0,
                message: "ConditionalCheckFailed message".into()
            }
        );
        assert_eq!(
            cancelled(&reasons(&[n, c]), alone),
            Cancelled::AlreadyStaged(vec![0])
        );
    }

    #[test]
    fn a_transaction_sent_again_without_puts_has_a_token_of_its_own() {
        let owner = "0b8e4f3e-8f0c-4a4e-9d59-3c1f5b0b7a11";
        assert_eq!(request_token(Some(owner), &[]).as_deref(), Some(owner));
        let again = request_token(Some(owner), &["e-1|sqs:q".into()]).unwrap();
        assert_ne!(again, owner);
        assert_eq!(again.len(), 36, "DynamoDB takes tokens of at most 36");
        assert_eq!(
            request_token(Some(owner), &["e-1|sqs:q".into()]),
            Some(again),
            "the SDK's retries of it are one transaction"
        );
        assert_eq!(request_token(None, &["e-1|sqs:q".into()]), None);
    }
}
