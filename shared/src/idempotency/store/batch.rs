//! What the batch operations of a store take, and how a batch holding one key more than once
//! is split into rounds of distinct keys (a DynamoDB batch request may not hold the same key
//! twice, and running two writes of one key concurrently would make their order a race).

use std::collections::HashMap;
use std::future::Future;

use crate::idempotency::error::StoreError;
use crate::idempotency::record::IdempotencyRecord;

/// One completion of [`IdempotencyStore::complete_many`](super::IdempotencyStore::complete_many):
/// the arguments of [`complete`](super::IdempotencyStore::complete).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Completion {
    /// The idempotency key.
    pub key: String,
    /// The owner token of the claim being completed.
    pub owner: String,
    /// The handler's result as JSON text.
    pub result: String,
    /// The completed record's expiration, in epoch seconds.
    pub expiration: u64,
}

/// One release of [`IdempotencyStore::release_many`](super::IdempotencyStore::release_many):
/// the arguments of [`release`](super::IdempotencyStore::release).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Release {
    /// The idempotency key.
    pub key: String,
    /// The owner token of the claim being released.
    pub owner: String,
}

impl Completion {
    /// The record this completion leaves (its attributes that count towards the limits),
    /// to check against [`IdempotencyRecord::check_limits`] before it is sent.
    #[cfg(feature = "dynamodb")]
    pub(crate) fn as_record(&self) -> IdempotencyRecord {
        IdempotencyRecord {
            key: self.key.clone(),
            status: crate::idempotency::record::Status::Completed,
            expiration: self.expiration,
            in_progress_expiry_ms: None,
            result: Some(self.result.clone()),
            payload_hash: None,
            owner: Some(self.owner.clone()),
        }
    }
}

impl Release {
    /// What a release whose condition was refused means, given `found`, the record stored
    /// under its key now: nothing there, and the claim is gone already, so the release has
    /// happened (an earlier try of this very request removed it and its answer was lost, so
    /// the SDK sent it again; or the record expired): `Ok`. A record there, another owner's or
    /// a completed one, is left alone: [`StoreError::Fenced`]. Every store answers a refused
    /// release by this rule, so a resent release never turns a handler's error into a
    /// takeover that did not happen.
    pub fn refused(&self, found: Option<&IdempotencyRecord>) -> Result<(), StoreError> {
        match found {
            None => Ok(()),
            Some(_) => Err(StoreError::Fenced),
        }
    }
}

/// The positions of `keys` in rounds: the first copy of every key in the first round, the
/// second copies in the second, and so on, each round in the original order.
pub(crate) fn rounds<'a>(keys: impl IntoIterator<Item = &'a str>) -> Vec<Vec<usize>> {
    let mut seen: HashMap<&str, usize> = HashMap::new();
    let mut rounds: Vec<Vec<usize>> = Vec::new();
    for (index, key) in keys.into_iter().enumerate() {
        let copy = seen.entry(key).or_insert(0);
        if rounds.len() <= *copy {
            rounds.push(Vec::new());
        }
        rounds[*copy].push(index);
        *copy += 1;
    }
    rounds
}

/// Runs `run` on every item, concurrently within a round of distinct keys and round after
/// round, and returns the outputs in the items' order.
pub(crate) async fn in_rounds<'a, T, O, Fut>(
    items: &'a [T],
    key: impl Fn(&T) -> &str,
    run: impl Fn(&'a T) -> Fut,
) -> Vec<O>
where
    Fut: Future<Output = O>,
{
    let mut outputs: Vec<Option<O>> = items.iter().map(|_| None).collect();
    for round in rounds(items.iter().map(&key)) {
        let done = futures::future::join_all(round.iter().map(|&index| run(&items[index]))).await;
        for (index, output) in round.into_iter().zip(done) {
            outputs[index] = Some(output);
        }
    }
    // Every position is in exactly one round, so every output is set.
    outputs.into_iter().flatten().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_keys_go_to_later_rounds_in_order() {
        assert_eq!(
            rounds(["a", "b", "a", "c", "a", "b"]),
            vec![vec![0, 1, 3], vec![2, 5], vec![4]]
        );
        assert!(rounds(Vec::<&str>::new()).is_empty());
    }

    #[tokio::test]
    async fn outputs_keep_the_items_order_across_rounds() {
        let items = ["x", "y", "x"];
        let outputs = in_rounds(
            &items,
            |item| item,
            |item| async move { item.to_uppercase() },
        )
        .await;
        assert_eq!(outputs, ["X", "Y", "X"]);
    }
}
