//! The idempotency record: what the store keeps per key, and the rules for when it has
//! expired. Both stores and the cache apply these rules, so they live on the record.

use std::fmt;
use std::str::FromStr;

use super::error::StoreError;

/// Where a key's processing stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Status {
    /// A delivery has claimed the key and its handler is running (or died while running).
    InProgress,
    /// The handler finished and its result is stored.
    Completed,
}

impl Status {
    /// The stored form: `INPROGRESS` or `COMPLETED`, as Powertools writes them.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InProgress => "INPROGRESS",
            Self::Completed => "COMPLETED",
        }
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Status {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "INPROGRESS" => Ok(Self::InProgress),
            "COMPLETED" => Ok(Self::Completed),
            other => Err(format!("unknown idempotency status {other:?}")),
        }
    }
}

/// One key's record, as a store keeps it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IdempotencyRecord {
    /// The idempotency key (`"{name}#{sha256 hex}"`).
    pub key: String,
    /// In progress or completed.
    pub status: Status,
    /// When the record expires, in epoch **seconds** (the unit of DynamoDB's TTL attribute).
    /// A record is expired once this is strictly in the past.
    pub expiration: u64,
    /// When an in-progress claim may be taken over, in epoch **milliseconds**: the deadline
    /// of the invocation that claimed it. `None` only for records written by something else;
    /// such a claim is never taken over before `expiration`.
    pub in_progress_expiry_ms: Option<u64>,
    /// The handler's result as JSON text, present once completed.
    pub result: Option<String>,
    /// The payload validation hash, when payload validation is configured.
    pub payload_hash: Option<String>,
    /// The token of the claim that wrote this record; completion and release are only
    /// accepted from the holder of this token.
    pub owner: Option<String>,
}

/// The most bytes DynamoDB stores in a partition key value.
pub(crate) const MAX_PARTITION_KEY_BYTES: usize = 2048;
/// The most bytes DynamoDB stores in a sort key value (where a single-table layout puts the
/// idempotency key).
pub(crate) const MAX_SORT_KEY_BYTES: usize = 1024;
/// The most bytes DynamoDB stores in one item, attribute names included.
pub(crate) const MAX_ITEM_BYTES: usize = 400 * 1024;
/// What a record's attributes other than its key and result take at most: the default
/// attribute names, the status, two numbers (DynamoDB bills a number up to 21 bytes), the
/// owner token and a validation hash.
const RECORD_OVERHEAD_BYTES: usize = 256;

impl IdempotencyRecord {
    /// The bytes this record takes as a DynamoDB item, attribute names included, rounded up
    /// (DynamoDB's own sum is within a few bytes of it).
    pub fn stored_size(&self) -> usize {
        RECORD_OVERHEAD_BYTES
            + self.key.len()
            + self.result.as_deref().map_or(0, str::len)
            + self.payload_hash.as_deref().map_or(0, str::len)
            + self.owner.as_deref().map_or(0, str::len)
    }

    /// Whether DynamoDB would store this record: its key within a partition key's 2,048
    /// bytes and the whole item within 400 KB. Every store applies this rule, the in-memory
    /// one included, so a unit test fails where production would.
    pub fn check_limits(&self) -> Result<(), StoreError> {
        if self.key.len() > MAX_PARTITION_KEY_BYTES {
            return Err(StoreError::LimitExceeded {
                key: self.key.clone(),
                reason: format!(
                    "the key is {} bytes, over DynamoDB's {MAX_PARTITION_KEY_BYTES} for a partition key",
                    self.key.len()
                ),
            });
        }
        let size = self.stored_size();
        if size > MAX_ITEM_BYTES {
            return Err(StoreError::LimitExceeded {
                key: self.key.clone(),
                reason: format!(
                    "the record is about {size} bytes, over DynamoDB's {MAX_ITEM_BYTES} for an item"
                ),
            });
        }
        Ok(())
    }

    /// Whether the whole record has expired at `now_ms` (epoch milliseconds).
    pub fn is_expired(&self, now_ms: u64) -> bool {
        self.expiration < now_ms / 1000
    }

    /// Whether an in-progress claim's window has passed at `now_ms`, so that another
    /// delivery may take the key over.
    pub fn in_progress_window_expired(&self, now_ms: u64) -> bool {
        self.status == Status::InProgress
            && self
                .in_progress_expiry_ms
                .is_some_and(|expiry| expiry < now_ms)
    }

    /// Whether a new claim may replace this record at `now_ms`: the condition of the claim,
    /// shared by every store.
    pub fn is_claimable(&self, now_ms: u64) -> bool {
        self.is_expired(now_ms) || self.in_progress_window_expired(now_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(status: Status, expiration: u64, window: Option<u64>) -> IdempotencyRecord {
        IdempotencyRecord {
            key: "k".into(),
            status,
            expiration,
            in_progress_expiry_ms: window,
            result: None,
            payload_hash: None,
            owner: None,
        }
    }

    #[test]
    fn status_round_trips_through_its_stored_form() {
        for status in [Status::InProgress, Status::Completed] {
            assert_eq!(status.as_str().parse::<Status>(), Ok(status));
        }
        assert!("DONE".parse::<Status>().is_err());
    }

    #[test]
    fn expiry_is_strictly_after_the_expiration_second() {
        let completed = record(Status::Completed, 100, None);
        assert!(!completed.is_expired(100_999));
        assert!(completed.is_expired(101_000));
        assert!(!completed.is_claimable(100_500));
    }

    #[test]
    fn limits_are_dynamodbs() {
        let mut long_key = record(Status::InProgress, 1, None);
        long_key.key = "k".repeat(MAX_PARTITION_KEY_BYTES);
        assert!(long_key.check_limits().is_ok());
        long_key.key.push('k');
        assert!(matches!(
            long_key.check_limits(),
            Err(StoreError::LimitExceeded { reason, .. }) if reason.contains("2049 bytes")
        ));
        let mut big = record(Status::Completed, 1, None);
        big.result = Some("x".repeat(MAX_ITEM_BYTES - 1_000));
        assert!(big.check_limits().is_ok());
        big.result = Some("x".repeat(MAX_ITEM_BYTES));
        assert!(matches!(
            big.check_limits(),
            Err(StoreError::LimitExceeded { .. })
        ));
    }

    #[test]
    fn in_progress_window_only_applies_to_in_progress_records() {
        let claimed = record(Status::InProgress, 1_000, Some(5_000));
        assert!(!claimed.is_claimable(5_000));
        assert!(claimed.is_claimable(5_001));
        let completed = record(Status::Completed, 1_000, Some(5_000));
        assert!(!completed.is_claimable(5_001));
        let no_window = record(Status::InProgress, 1_000, None);
        assert!(!no_window.is_claimable(900_000));
        assert!(no_window.is_claimable(1_001_000));
    }
}
