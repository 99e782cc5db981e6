//! Choosing a store at run time: [`DynStore`] is [`IdempotencyStore`] with boxed futures, so
//! it can be used as `dyn`; every store is one, and a [`BoxedStore`] is a store again.
//!
//! ```
//! use eventkit::idempotency::{BoxedStore, IdempotencyConfig, IdempotencyLayer, InMemoryStore};
//!
//! fn store_for(environment: &str) -> BoxedStore {
//!     match environment {
//!         // "aws" => Box::new(DynamoDbStore::new(client, table)),
//!         _ => Box::new(InMemoryStore::new()),
//!     }
//! }
//!
//! let layer = IdempotencyLayer::new(store_for("local"), IdempotencyConfig::new("orders"));
//! # let _ = layer;
//! ```

use futures::future::BoxFuture;

use super::{ClaimOutcome, Completion, IdempotencyStore, Release};
use crate::idempotency::error::StoreError;
use crate::idempotency::record::IdempotencyRecord;

/// [`IdempotencyStore`] as a `dyn`-compatible trait (one allocation per operation, nothing
/// next to a network round trip), its methods suffixed `_boxed` so that both traits can be in
/// scope. Implemented for every store; use it through [`BoxedStore`].
pub trait DynStore: Send + Sync {
    /// [`IdempotencyStore::claim`].
    fn claim_boxed<'a>(
        &'a self,
        record: &'a IdempotencyRecord,
        now_ms: u64,
    ) -> BoxFuture<'a, Result<ClaimOutcome, StoreError>>;

    /// [`IdempotencyStore::complete`].
    fn complete_boxed<'a>(
        &'a self,
        key: &'a str,
        owner: &'a str,
        result: &'a str,
        expiration: u64,
    ) -> BoxFuture<'a, Result<(), StoreError>>;

    /// [`IdempotencyStore::release`].
    fn release_boxed<'a>(
        &'a self,
        key: &'a str,
        owner: &'a str,
    ) -> BoxFuture<'a, Result<(), StoreError>>;

    /// [`IdempotencyStore::get`].
    fn get_boxed<'a>(
        &'a self,
        key: &'a str,
    ) -> BoxFuture<'a, Result<Option<IdempotencyRecord>, StoreError>>;

    /// [`IdempotencyStore::claim_many`].
    fn claim_many_boxed<'a>(
        &'a self,
        records: &'a [IdempotencyRecord],
        now_ms: u64,
    ) -> BoxFuture<'a, Vec<Result<ClaimOutcome, StoreError>>>;

    /// [`IdempotencyStore::complete_many`].
    fn complete_many_boxed<'a>(
        &'a self,
        completions: &'a [Completion],
    ) -> BoxFuture<'a, Vec<Result<(), StoreError>>>;

    /// [`IdempotencyStore::release_many`].
    fn release_many_boxed<'a>(
        &'a self,
        releases: &'a [Release],
    ) -> BoxFuture<'a, Vec<Result<(), StoreError>>>;
}

impl<S: IdempotencyStore> DynStore for S {
    fn claim_boxed<'a>(
        &'a self,
        record: &'a IdempotencyRecord,
        now_ms: u64,
    ) -> BoxFuture<'a, Result<ClaimOutcome, StoreError>> {
        Box::pin(IdempotencyStore::claim(self, record, now_ms))
    }

    fn complete_boxed<'a>(
        &'a self,
        key: &'a str,
        owner: &'a str,
        result: &'a str,
        expiration: u64,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(IdempotencyStore::complete(
            self, key, owner, result, expiration,
        ))
    }

    fn release_boxed<'a>(
        &'a self,
        key: &'a str,
        owner: &'a str,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(IdempotencyStore::release(self, key, owner))
    }

    fn get_boxed<'a>(
        &'a self,
        key: &'a str,
    ) -> BoxFuture<'a, Result<Option<IdempotencyRecord>, StoreError>> {
        Box::pin(IdempotencyStore::get(self, key))
    }

    fn claim_many_boxed<'a>(
        &'a self,
        records: &'a [IdempotencyRecord],
        now_ms: u64,
    ) -> BoxFuture<'a, Vec<Result<ClaimOutcome, StoreError>>> {
        Box::pin(IdempotencyStore::claim_many(self, records, now_ms))
    }

    fn complete_many_boxed<'a>(
        &'a self,
        completions: &'a [Completion],
    ) -> BoxFuture<'a, Vec<Result<(), StoreError>>> {
        Box::pin(IdempotencyStore::complete_many(self, completions))
    }

    fn release_many_boxed<'a>(
        &'a self,
        releases: &'a [Release],
    ) -> BoxFuture<'a, Vec<Result<(), StoreError>>> {
        Box::pin(IdempotencyStore::release_many(self, releases))
    }
}

/// A store chosen at run time.
pub type BoxedStore = Box<dyn DynStore>;

impl IdempotencyStore for BoxedStore {
    async fn claim(
        &self,
        record: &IdempotencyRecord,
        now_ms: u64,
    ) -> Result<ClaimOutcome, StoreError> {
        DynStore::claim_boxed(&**self, record, now_ms).await
    }

    async fn complete(
        &self,
        key: &str,
        owner: &str,
        result: &str,
        expiration: u64,
    ) -> Result<(), StoreError> {
        DynStore::complete_boxed(&**self, key, owner, result, expiration).await
    }

    async fn release(&self, key: &str, owner: &str) -> Result<(), StoreError> {
        DynStore::release_boxed(&**self, key, owner).await
    }

    async fn get(&self, key: &str) -> Result<Option<IdempotencyRecord>, StoreError> {
        DynStore::get_boxed(&**self, key).await
    }

    async fn claim_many(
        &self,
        records: &[IdempotencyRecord],
        now_ms: u64,
    ) -> Vec<Result<ClaimOutcome, StoreError>> {
        DynStore::claim_many_boxed(&**self, records, now_ms).await
    }

    async fn complete_many(&self, completions: &[Completion]) -> Vec<Result<(), StoreError>> {
        DynStore::complete_many_boxed(&**self, completions).await
    }

    async fn release_many(&self, releases: &[Release]) -> Vec<Result<(), StoreError>> {
        DynStore::release_many_boxed(&**self, releases).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::idempotency::{Idempotency, IdempotencyConfig, InMemoryStore};

    #[tokio::test]
    async fn a_store_chosen_at_run_time_keeps_the_semantics() {
        let store: BoxedStore = Box::new(InMemoryStore::new());
        let idempotency = Idempotency::new(store, IdempotencyConfig::new("orders"));
        let payload = serde_json::json!({"eventId": "e-1"});
        let remaining = std::time::Duration::from_secs(30);
        let first: u32 = idempotency
            .run(&payload, "m-1", remaining, || async {
                Ok::<_, std::io::Error>(1)
            })
            .await
            .unwrap();
        let replayed: u32 = idempotency
            .run(&payload, "m-2", remaining, || async {
                Ok::<_, std::io::Error>(2)
            })
            .await
            .unwrap();
        assert_eq!((first, replayed), (1, 1));
    }
}
