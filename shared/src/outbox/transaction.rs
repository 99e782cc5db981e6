//! The commit on DynamoDB: one `TransactWriteItems` of the completion (fenced on the
//! claim's owner), the staged writes, and one conditional put per staged event; and what a
//! cancelled transaction means.
//!
//! The batched mode's group commit puts several records' parts into one transaction (up to
//! its 100 actions and 4 MB): a record's part is still all or nothing, and the cancellation
//! reasons, one per action, say whose action failed, so that record is answered alone
//! (fenced, its staged condition failed, a conflict) and the others are sent again without
//! it. A new record with one staged write and one event then costs a claim statement and a
//! share of one transaction, instead of a transaction of its own.
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

use aws_sdk_dynamodb::types::AttributeValue;

use super::item::{on_completion, outbox_id, put};
use super::unit_of_work::{
    UnitOfWork, COMPLETION_OVERHEAD, TRANSACTION_MAX_ACTIONS, TRANSACTION_MAX_BYTES,
};
use crate::idempotency::{Completion, DynamoDbStore, IdempotencyStore, StoreError};

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

/// One record's share of a transaction: its completion and staged writes (`head`, laid out
/// as `layout` says), and its outbox puts.
struct Part {
    /// Its position among the records committed together.
    index: usize,
    head: Vec<TransactWriteItem>,
    layout: Layout,
    puts: Vec<(String, TransactWriteItem)>,
    /// The claim's owner (`None` for work committed without idempotency).
    token: Option<String>,
    /// Outbox items found staged before, left out of the next attempt.
    left_alone: Vec<String>,
    committed_by: String,
    /// About how many bytes of a request it takes.
    bytes: usize,
    /// The items it is known to write (table and key), which no other part of its
    /// transaction may write: DynamoDB refuses two actions on one item in a transaction.
    items: Vec<String>,
}

impl Part {
    fn actions(&self) -> impl Iterator<Item = &TransactWriteItem> {
        self.head.iter().chain(self.puts.iter().map(|(_, put)| put))
    }

    fn len(&self) -> usize {
        self.head.len() + self.puts.len()
    }
}

/// The item an action writes, when the action names it by key (a put names none: its
/// item's key attributes are the table's to say).
fn item_of(action: &TransactWriteItem) -> Option<String> {
    let (table, key) = if let Some(update) = action.update() {
        (update.table_name(), update.key())
    } else if let Some(delete) = action.delete() {
        (delete.table_name(), delete.key())
    } else if let Some(check) = action.condition_check() {
        (check.table_name(), check.key())
    } else {
        return None;
    };
    let mut key: Vec<String> = key
        .iter()
        .map(|(name, value)| format!("{name}={value:?}"))
        .collect();
    key.sort();
    Some(format!("{table}|{}", key.join("|")))
}

/// Which records' parts go into which transaction: in order, each into the first
/// transaction it fits (100 actions, 4 MB, no known item twice).
fn pack(parts: Vec<Part>) -> Vec<Vec<Part>> {
    let mut groups: Vec<Vec<Part>> = Vec::new();
    for part in parts {
        let fits = |group: &Vec<Part>| {
            group.iter().map(Part::len).sum::<usize>() + part.len() <= TRANSACTION_MAX_ACTIONS
                && group.iter().map(|p| p.bytes).sum::<usize>() + part.bytes
                    <= TRANSACTION_MAX_BYTES
                && !group
                    .iter()
                    .any(|other| other.items.iter().any(|item| part.items.contains(item)))
        };
        match groups.iter_mut().find(|group| fits(group)) {
            Some(group) => group.push(part),
            None => groups.push(vec![part]),
        }
    }
    groups
}

impl DynamoDbStore {
    /// One record's part: `completion` first (when there is one), its staged writes, one
    /// conditional put per staged event, or, when events ride on completions, the events on
    /// the completion itself.
    fn part(
        &self,
        index: usize,
        completion: Option<&Completion>,
        work: UnitOfWork,
        committed_by: &str,
    ) -> Result<Part, StoreError> {
        let bytes = work.bytes() + COMPLETION_OVERHEAD;
        // The owner token is the claim's, unique per claim: DynamoDB treats a retried
        // request with the same token (the SDK's own retries) as the same transaction.
        let token = completion.map(|completion| completion.owner.clone());
        let (writes, mut events) = work.into_parts();
        let now = chrono::Utc::now();
        let completion = match completion {
            None => None,
            Some(completion) => {
                let extra = if self.outbox_on_completions() && !events.is_empty() {
                    self.carried(completion, &std::mem::take(&mut events))?
                } else {
                    Vec::new()
                };
                let update = self.completion_update_with(
                    &completion.key,
                    &completion.owner,
                    &completion.result,
                    completion.expiration,
                    &extra,
                )?;
                Some(TransactWriteItem::builder().update(update).build())
            }
        };
        let mut head = Vec::with_capacity(writes.len() + 1);
        let staged = usize::from(completion.is_some());
        head.extend(completion);
        head.extend(writes);
        let layout = Layout {
            staged,
            outbox: head.len(),
        };
        let mut items: Vec<String> = head.iter().filter_map(item_of).collect();
        let mut puts = Vec::with_capacity(events.len());
        if !events.is_empty() {
            let Some(outbox) = self.outbox_table() else {
                return Err(StoreError::other(
                    "events were staged but the store has no outbox table (DynamoDbStore::with_outbox)",
                ));
            };
            for event in &events {
                let put = put(outbox, event, committed_by, now)
                    .map_err(|error| StoreError::other(error.to_string()))?;
                let id = outbox_id(event);
                items.push(format!("{outbox}|{id}"));
                puts.push((id, TransactWriteItem::builder().put(put).build()));
            }
        }
        Ok(Part {
            index,
            head,
            layout,
            puts,
            token,
            left_alone: Vec::new(),
            committed_by: committed_by.to_string(),
            bytes,
            items,
        })
    }

    /// Commits `work` alone (no completion: a record processed without idempotency) in one
    /// transaction, leaving alone the outbox items of events staged before; `committed_by`
    /// names it in the outbox.
    pub(super) async fn commit_work(
        &self,
        work: UnitOfWork,
        committed_by: &str,
    ) -> Result<(), StoreError> {
        let part = self.part(0, None, work, committed_by)?;
        self.transact_parts(vec![part])
            .await
            .pop()
            .map_or(Ok(()), |(_, result)| result)
    }

    /// Commits each completion with its unit of work, each all or nothing on its own, in as
    /// few requests as the limits allow: completions without work in one batch of
    /// statements, the others packed into shared transactions. One result per completion.
    pub(super) async fn commit_group(
        &self,
        completions: Vec<(Completion, UnitOfWork)>,
    ) -> Vec<Result<(), StoreError>> {
        let count = completions.len();
        let mut results: Vec<Option<Result<(), StoreError>>> = (0..count).map(|_| None).collect();
        let mut plain = Vec::new();
        let mut parts = Vec::new();
        let mut carrying = Vec::new();
        for (index, (completion, work)) in completions.into_iter().enumerate() {
            if work.is_empty() {
                plain.push((index, completion));
                continue;
            }
            // Events alone on a completion: a plain write of the record, no transaction.
            if self.outbox_on_completions() && work.writes().is_empty() {
                let (_, events) = work.into_parts();
                match self.carried(&completion, &events) {
                    Ok(extra) => carrying.push((index, (completion, extra))),
                    Err(error) => results[index] = Some(Err(error)),
                }
                continue;
            }
            let key = completion.key.clone();
            match self.part(index, Some(&completion), work, &key) {
                Ok(part) => parts.push(part),
                Err(error) => results[index] = Some(Err(error)),
            }
        }
        let carried: Vec<(Completion, Vec<(String, AttributeValue)>)> = carrying
            .iter()
            .map(|(_, carried)| carried.clone())
            .collect();
        let plain_completions: Vec<Completion> = plain
            .iter()
            .map(|(_, completion)| completion.clone())
            .collect();
        let transactions = futures::future::join_all(
            pack(parts)
                .into_iter()
                .map(|group| self.transact_parts(group)),
        );
        let (completed, with_events, transacted) = futures::join!(
            async {
                if plain_completions.is_empty() {
                    Vec::new()
                } else {
                    self.complete_many(&plain_completions).await
                }
            },
            async {
                if carried.is_empty() {
                    Vec::new()
                } else {
                    self.complete_batch_with(&carried).await
                }
            },
            transactions
        );
        for ((index, _), result) in plain.iter().zip(completed) {
            results[*index] = Some(result);
        }
        for ((index, _), result) in carrying.iter().zip(with_events) {
            results[*index] = Some(result);
        }
        for (index, result) in transacted.into_iter().flatten() {
            results[index] = Some(result);
        }
        results
            .into_iter()
            .map(|result| {
                result.unwrap_or_else(|| Err(StoreError::other("completion left without a result")))
            })
            .collect()
    }

    /// The attributes that carry `events` on `completion`'s record.
    pub(super) fn carried(
        &self,
        completion: &Completion,
        events: &[super::unit_of_work::StagedEvent],
    ) -> Result<Vec<(String, AttributeValue)>, StoreError> {
        on_completion(
            events,
            &completion.key,
            (self.record_key(&completion.key), self.ttl_attribute()),
            completion.result.len(),
            chrono::Utc::now(),
        )
        .map_err(|reason| StoreError::LimitExceeded {
            key: completion.key.clone(),
            reason,
        })
    }

    /// Sends `parts` as one transaction, again without what the cancellation reasons single
    /// out: a part whose completion was fenced, whose staged condition failed or whose
    /// action met another error is answered with it and left out; an outbox put found
    /// staged before is dropped from its part. Parts a transaction cannot hold together
    /// (two actions on one item that only DynamoDB could tell) are sent one by one.
    async fn transact_parts(&self, mut parts: Vec<Part>) -> Vec<(usize, Result<(), StoreError>)> {
        let mut done = Vec::with_capacity(parts.len());
        // Each round answers or shrinks at least one part, so this ends.
        loop {
            // A part left with nothing to write (every put staged before, no completion).
            parts.retain(|part| {
                let empty = part.len() == 0;
                if empty {
                    done.push((part.index, Ok(())));
                }
                !empty
            });
            if parts.is_empty() {
                return done;
            }
            let actions: Vec<TransactWriteItem> =
                parts.iter().flat_map(Part::actions).cloned().collect();
            let outcome = self
                .client()
                .transact_write_items()
                .set_transact_items(Some(actions))
                .set_client_request_token(group_token(&parts))
                .send()
                .await;
            let error = match outcome {
                Ok(_) => {
                    done.extend(parts.iter().map(|part| (part.index, Ok(()))));
                    return done;
                }
                Err(error) => error,
            };
            let reasons = match error.as_service_error() {
                Some(TransactWriteItemsError::TransactionCanceledException(cancelled)) => {
                    cancelled.cancellation_reasons()
                }
                _ if parts.len() > 1 && is_one_item_twice(&error) => {
                    for part in parts {
                        let alone = Box::pin(self.transact_parts(vec![part])).await;
                        done.extend(alone);
                    }
                    return done;
                }
                _ => {
                    let error = crate::idempotency::store_error(self.table(), error);
                    done.extend(
                        parts
                            .iter()
                            .map(|part| (part.index, Err(crate::idempotency::copy_error(&error)))),
                    );
                    return done;
                }
            };
            let total: usize = parts.iter().map(Part::len).sum();
            if reasons.len() != total {
                let codes = vec![format!("{} reasons for {total} actions", reasons.len())];
                done.extend(
                    parts
                        .iter()
                        .map(|part| (part.index, Err(other(&codes, &error)))),
                );
                return done;
            }
            let mut changed = false;
            let mut offset = 0;
            let mut kept = Vec::with_capacity(parts.len());
            for mut part in parts {
                let own = &reasons[offset..offset + part.len()];
                offset += part.len();
                match cancelled(own, part.layout) {
                    Cancelled::Other(codes) if codes.is_empty() => kept.push(part),
                    Cancelled::AlreadyStaged(positions) => {
                        for position in positions.into_iter().rev() {
                            let (id, _) = part.puts.remove(position);
                            tracing::info!(outbox_id = %id, committed_by = %part.committed_by, "event staged by an earlier commit; its outbox item is left as it is");
                            part.left_alone.push(id);
                        }
                        changed = true;
                        kept.push(part);
                    }
                    Cancelled::Fenced => {
                        changed = true;
                        done.push((part.index, Err(StoreError::Fenced)));
                    }
                    Cancelled::StagedCondition { position, message } => {
                        changed = true;
                        done.push((
                            part.index,
                            Err(StoreError::StagedConditionFailed { position, message }),
                        ));
                    }
                    Cancelled::Other(codes) => {
                        changed = true;
                        done.push((part.index, Err(other(&codes, &error))));
                    }
                }
            }
            if !changed {
                let codes = vec!["cancelled without a reason".to_string()];
                done.extend(
                    kept.iter()
                        .map(|part| (part.index, Err(other(&codes, &error)))),
                );
                return done;
            }
            parts = kept;
        }
    }
}

/// Whether DynamoDB refused the transaction for holding two actions on one item.
fn is_one_item_twice<R>(error: &SdkError<TransactWriteItemsError, R>) -> bool {
    error.as_service_error().is_some_and(|error| {
        error
            .meta()
            .message()
            .is_some_and(|message| message.to_ascii_lowercase().contains("one item"))
    })
}

/// The token of a transaction of `parts`: a part's own (see [`request_token`]) when it is
/// alone, else one derived from every part's, so that the SDK's retries of it are one
/// transaction and a transaction sent again with other content has a token of its own.
/// `None` when any part has none.
fn group_token(parts: &[Part]) -> Option<String> {
    let tokens: Option<Vec<String>> = parts
        .iter()
        .map(|part| request_token(part.token.as_deref(), &part.left_alone))
        .collect();
    let tokens = tokens?;
    match tokens.as_slice() {
        [one] => Some(one.clone()),
        many => {
            let name = many.join("|");
            Some(uuid::Uuid::new_v5(&uuid::Uuid::NAMESPACE_OID, name.as_bytes()).to_string())
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
