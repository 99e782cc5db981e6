//! Per-use configuration of the idempotency layer: how keys are named and found, what a
//! missing key means, how long records live, what part of a payload is validated, and the
//! cache size. Nothing here is global: two handlers in one process can use two configs.

use std::time::Duration;

use super::key::{KeyPath, KeySource};
use super::record::MAX_SORT_KEY_BYTES;

/// How long a record lives by default: 30 days. A record must outlive every path by which
/// its event can come back, or the late copy runs the handler again. On AWS the paths are
/// SQS redelivery (visibility timeout × maxReceiveCount: minutes; hours with per-record
/// backoff, [`RecordBackoff`](crate::redelivery::RecordBackoff)), a dead-letter queue's
/// retention (up to 14 days) followed by a redrive, EventBridge's retries to a target (up to
/// 24 hours, then its DLQ), Lambda's asynchronous retries (up to 6 hours, then its DLQ) and a
/// DynamoDB stream's 24 hours. The longest, a rule's 24 hours, then an asynchronous
/// invocation's retries, then 14 days in a DLQ, is just over 15 days; 30 days covers it with
/// a second dead-lettering to spare (a redriven copy that fails again and waits in its DLQ
/// again). DynamoDB's TTL deletes an expired record late (typically within two days), which
/// only costs storage: a record past its `expiration` is claimable at once. Powertools' default,
/// one hour, lets a dead letter redriven the next day run twice; ours does not.
///
/// RELIABILITY.md ("Over what horizon exactly-once holds, and why") lists the paths, and
/// the infra checks (tests/tests/infra_checks/horizon.rs) compute the longest from
/// infra/template.yaml and fail when a function keeps its records for less.
pub const DEFAULT_RECORD_TTL: Duration = Duration::from_secs(30 * 24 * 60 * 60);

/// The longest name [`IdempotencyConfig`] takes, in bytes: a key is the name, `#` and 64
/// hexadecimal characters, and the longest key DynamoDB stores in a sort key (where a
/// single-table layout puts it) is 1,024 bytes.
pub const MAX_NAME_BYTES: usize = MAX_SORT_KEY_BYTES - KEY_SUFFIX_BYTES;

/// What a key adds to its name: `#` and a SHA-256 in hexadecimal.
const KEY_SUFFIX_BYTES: usize = 1 + 64;

/// A name given to [`IdempotencyConfig`] is longer than [`MAX_NAME_BYTES`].
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("idempotency name is {bytes} bytes long; its keys would not fit DynamoDB's key limit (at most {MAX_NAME_BYTES} bytes: a key is the name, '#' and 64 hex characters, within a sort key's {MAX_SORT_KEY_BYTES})")]
pub struct NameTooLong {
    /// The name's length in bytes.
    pub bytes: usize,
}

fn checked_name(name: String) -> Result<String, NameTooLong> {
    if name.len() > MAX_NAME_BYTES {
        return Err(NameTooLong { bytes: name.len() });
    }
    Ok(name)
}

/// What to do with a record whose payload has no idempotency key.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum MissingKeyPolicy {
    /// Fail the record with [`IdempotencyError::MissingKey`](super::IdempotencyError) (the
    /// default). Powertools' default is to process without idempotency, which turns a typo
    /// in a key path into silently repeated side effects; failing is the safe default.
    #[default]
    Fail,
    /// Run the handler without idempotency and log a warning.
    ProcessWithoutIdempotency,
}

/// The configuration of one use of the idempotency layer.
#[derive(Clone, Debug)]
pub struct IdempotencyConfig {
    name: String,
    key_source: KeySource,
    missing_key: MissingKeyPolicy,
    record_ttl: Duration,
    payload_validation: Vec<KeyPath>,
    cache_capacity: usize,
    batched: bool,
}

impl IdempotencyConfig {
    /// A configuration whose keys are prefixed with `name`, with every other setting at its
    /// default. Choose a name once, in code, and keep it: it is part of every key, so
    /// changing it makes every earlier record unreachable and lets duplicates through. That
    /// is why there is no default taken from the deployed function's name, which changes with
    /// the stack (`sam deploy` to a new stack, a rename) while the records stay.
    ///
    /// # Panics
    ///
    /// When `name` is longer than [`MAX_NAME_BYTES`]: its keys would be longer than DynamoDB
    /// stores, and every record would fail. A name read from configuration rather than
    /// written in code is checked with [`try_new`](Self::try_new).
    pub fn new(name: impl Into<String>) -> Self {
        match Self::try_new(name) {
            Ok(config) => config,
            Err(error) => panic!("{error}"),
        }
    }

    /// [`new`](Self::new), with an error instead of a panic for a name that is too long.
    pub fn try_new(name: impl Into<String>) -> Result<Self, NameTooLong> {
        let name = checked_name(name.into())?;
        Ok(Self {
            name,
            key_source: KeySource::default(),
            missing_key: MissingKeyPolicy::default(),
            record_ttl: DEFAULT_RECORD_TTL,
            payload_validation: Vec::new(),
            cache_capacity: 0,
            batched: true,
        })
    }

    /// Whether the layers claim a batch's records together (the default): one request
    /// claims every record of an SQS batch, and completions that finish together share one
    /// (see [`Idempotency::execute_batch`](super::Idempotency::execute_batch)). `false`
    /// claims and completes each record on its own, as Powertools does. A batch of one record
    /// (a direct SNS or EventBridge invocation) always runs per record.
    pub fn with_batched_claims(mut self, batched: bool) -> Self {
        self.batched = batched;
        self
    }

    /// Replaces the key name prefix.
    ///
    /// # Panics
    ///
    /// When `name` is longer than [`MAX_NAME_BYTES`], as [`new`](Self::new).
    pub fn with_name(mut self, name: impl Into<String>) -> Self {
        match checked_name(name.into()) {
            Ok(name) => self.name = name,
            Err(error) => panic!("{error}"),
        }
        self
    }

    /// Takes the key from `source` (the default is the envelope's `eventId`).
    pub fn with_key(mut self, source: KeySource) -> Self {
        self.key_source = source;
        self
    }

    /// Takes the key from one path of the payload (see [`KeyPath::parse`]). The path is
    /// evaluated on the record's decoded body (the innermost message: the SQS body, the SNS
    /// message, the EventBridge `detail`), never on the Lambda event around it; with an
    /// eventkit envelope, `data.orderId` is the order id. The default key, the envelope's
    /// `eventId`, needs an envelope: for bare JSON bodies, give a path.
    pub fn with_key_path(self, path: impl Into<KeyPath>) -> Self {
        self.with_key(KeySource::Path(path.into()))
    }

    /// Takes the key from several paths of the payload, hashed together.
    pub fn with_key_paths<P: Into<KeyPath>>(self, paths: impl IntoIterator<Item = P>) -> Self {
        self.with_key(KeySource::Paths(
            paths.into_iter().map(Into::into).collect(),
        ))
    }

    /// Computes the key with `function`, which returns `None` when the record has no key.
    pub fn with_key_fn(
        self,
        function: impl Fn(&serde_json::Value) -> Option<serde_json::Value> + Send + Sync + 'static,
    ) -> Self {
        self.with_key(KeySource::function(function))
    }

    /// Sets what a missing key means.
    pub fn on_missing_key(mut self, policy: MissingKeyPolicy) -> Self {
        self.missing_key = policy;
        self
    }

    /// Sets how long a record lives after it is written or completed (default
    /// [`DEFAULT_RECORD_TTL`], 30 days). A duplicate arriving later runs the handler again:
    /// keep it longer than the last redelivery your event sources and dead-letter queues
    /// allow.
    pub fn with_record_ttl(mut self, ttl: Duration) -> Self {
        self.record_ttl = ttl;
        self
    }

    /// Validates the payload at `path` (the empty path: the whole payload) against the one
    /// that created the stored record; a difference is a
    /// [`PayloadValidation`](super::IdempotencyError::PayloadValidation) error. Call again to
    /// validate several paths.
    pub fn validate_payload(mut self, path: impl Into<KeyPath>) -> Self {
        self.payload_validation.push(path.into());
        self
    }

    /// Caches up to `capacity` completed records in process (0, the default, disables the
    /// cache).
    pub fn with_cache_capacity(mut self, capacity: usize) -> Self {
        self.cache_capacity = capacity;
        self
    }

    /// Whether a batch's records are claimed together (see
    /// [`with_batched_claims`](Self::with_batched_claims)).
    pub fn batched_claims(&self) -> bool {
        self.batched
    }

    /// The key name prefix.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Where keys come from.
    pub fn key_source(&self) -> &KeySource {
        &self.key_source
    }

    /// What a missing key means.
    pub fn missing_key_policy(&self) -> MissingKeyPolicy {
        self.missing_key
    }

    /// How long records live.
    pub fn record_ttl(&self) -> Duration {
        self.record_ttl
    }

    /// The validated paths (empty: no payload validation).
    pub fn payload_validation(&self) -> &[KeyPath] {
        &self.payload_validation
    }

    /// The cache capacity (0: no cache).
    pub fn cache_capacity(&self) -> usize {
        self.cache_capacity
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_match_the_documented_ones() {
        let config = IdempotencyConfig::new("orders");
        assert_eq!(config.name(), "orders");
        assert!(matches!(config.key_source(), KeySource::EventId));
        assert_eq!(config.missing_key_policy(), MissingKeyPolicy::Fail);
        assert_eq!(config.record_ttl(), Duration::from_secs(30 * 24 * 3600));
        assert!(config.payload_validation().is_empty());
        assert_eq!(config.cache_capacity(), 0);
    }

    #[test]
    fn builders_set_each_field() {
        let config = IdempotencyConfig::new("a")
            .with_name("b")
            .with_key_paths(["detail.orderId", "/detail/customer"])
            .on_missing_key(MissingKeyPolicy::ProcessWithoutIdempotency)
            .with_record_ttl(Duration::from_secs(5))
            .validate_payload("detail.amount")
            .validate_payload("")
            .with_cache_capacity(10);
        assert_eq!(config.name(), "b");
        assert!(matches!(config.key_source(), KeySource::Paths(paths) if paths.len() == 2));
        assert_eq!(config.payload_validation().len(), 2);
        assert_eq!(
            config.payload_validation()[0].as_pointer(),
            "/detail/amount"
        );
        assert_eq!(config.cache_capacity(), 10);
        assert_eq!(
            config.missing_key_policy(),
            MissingKeyPolicy::ProcessWithoutIdempotency
        );
        assert_eq!(config.record_ttl(), Duration::from_secs(5));
        let paths: Vec<&str> = match config.key_source() {
            KeySource::Paths(paths) => paths.iter().map(KeyPath::as_pointer).collect(),
            other => panic!("expected key paths, got {other:?}"),
        };
        assert_eq!(paths, ["/detail/orderId", "/detail/customer"]);
        assert_eq!(config.payload_validation()[1].as_pointer(), "");
    }
}

#[cfg(test)]
mod name_tests {
    use super::*;

    #[test]
    fn a_name_whose_keys_would_not_fit_a_sort_key_is_refused_when_the_config_is_built() {
        let longest = "n".repeat(MAX_NAME_BYTES);
        let config = IdempotencyConfig::try_new(longest.as_str()).unwrap();
        assert_eq!(
            crate::idempotency::key::idempotency_key(config.name(), &serde_json::json!("k")).len(),
            MAX_SORT_KEY_BYTES
        );
        let error = IdempotencyConfig::try_new(format!("{longest}n")).unwrap_err();
        assert_eq!(error.bytes, MAX_NAME_BYTES + 1);
        assert!(error.to_string().contains("at most 959 bytes"), "{error}");
        let panicked = std::panic::catch_unwind(|| IdempotencyConfig::new("x".repeat(2_000)));
        assert!(panicked.is_err());
        let renamed = std::panic::catch_unwind(|| {
            IdempotencyConfig::new("ok").with_name("y".repeat(MAX_NAME_BYTES + 1))
        });
        assert!(renamed.is_err());
    }
}
