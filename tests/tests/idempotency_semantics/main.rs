//! The idempotency semantics of issue 4, each scenario written once, generic over the store,
//! and run against both stores: `in_memory::*` on [`InMemoryStore`], `dynamodb::*` on
//! [`DynamoDbStore`] in DynamoDB Local (a fresh table with TTL on `expiration` per test).
//!
//! Time is a [`ManualClock`] moved forward explicitly. The store conditions compare against
//! the layer's clock, so expiry is tested without sleeping. The clock starts an hour ahead of
//! the real time: DynamoDB Local's TTL sweeper runs on the real clock and deletes expired
//! items within seconds, and this way it never removes a record a scenario still needs
//! (even one with a 10-second TTL on a slow machine), so the conditions themselves must
//! decide what has expired.

mod batched;
mod concurrency;
mod copies;
mod expiry;
mod failures;
mod layer_batches;
mod records;
mod support;

use batched::*;
use concurrency::*;
use copies::*;
use expiry::*;
use failures::*;
use layer_batches::*;
use records::*;
use support::{dynamodb_store, InMemoryStore};

/// Instantiates each scenario for both stores. The scenarios of `each_mode` run twice per
/// store: per record, and with every delivery going through the batched mode
/// (`execute_batch`, a batch of one record); the others (already batched, or through a
/// function) once.
macro_rules! for_both_stores {
    (each_mode: [$($scenario:ident),* $(,)?], once: [$($single:ident),* $(,)?] $(,)?) => {
        mod in_memory {
            use super::support::{Mode, MODE};
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $scenario() {
                    MODE.scope(Mode::PerRecord, super::$scenario(super::InMemoryStore::new())).await;
                }
            )*
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $single() {
                    super::$single(super::InMemoryStore::new()).await;
                }
            )*
        }
        mod dynamodb {
            use super::support::{Mode, MODE};
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $scenario() {
                    MODE.scope(Mode::PerRecord, super::$scenario(super::dynamodb_store().await)).await;
                }
            )*
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $single() {
                    super::$single(super::dynamodb_store().await).await;
                }
            )*
        }
        mod in_memory_batched {
            use super::support::{Mode, MODE};
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $scenario() {
                    MODE.scope(Mode::Batched, super::$scenario(super::InMemoryStore::new())).await;
                }
            )*
        }
        mod dynamodb_batched {
            use super::support::{Mode, MODE};
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $scenario() {
                    MODE.scope(Mode::Batched, super::$scenario(super::dynamodb_store().await)).await;
                }
            )*
        }
    };
}

for_both_stores!(
    each_mode: [
        first_execution_stores_completed_with_the_result,
        a_duplicate_replays_the_stored_result_without_running_the_handler,
        a_key_in_progress_gives_the_typed_error,
        an_expired_record_runs_again,
        a_live_claim_outlives_a_record_ttl_shorter_than_its_window,
        an_expired_in_progress_window_is_taken_over,
        takeover_fencing_refuses_the_old_owners_completion_and_delete,
        a_handler_error_removes_the_claim_and_a_retry_succeeds,
        payload_tampering_is_detected_from_the_store_and_from_the_cache,
        keys_survive_json_key_order_and_the_handler_mutating_its_input,
        a_missing_key_fails_or_runs_without_idempotency,
        falsy_results_replay_exactly,
        fifty_concurrent_deliveries_of_one_key_run_the_handler_once,
        a_thousand_keys_delivered_three_times_run_a_thousand_times,
        store_failures_surface_as_typed_errors,
        a_result_over_the_item_limit_is_refused_and_its_claim_released,
    ],
    once: [
        batched_a_new_batch_completes_every_record_and_a_duplicate_batch_replays_exactly,
        batched_records_sharing_a_key_run_once_and_the_others_replay,
        batched_copies_of_a_key_get_their_per_record_answers_in_every_order,
        batched_a_failed_handler_releases_its_claim_alone_and_a_retry_runs_it,
        batched_live_claims_payload_changes_and_missing_keys_keep_their_typed_errors,
        batched_an_expired_window_is_taken_over_and_fences_the_old_owner,
        batched_fifty_concurrent_batches_with_one_key_run_the_handler_once,
        batched_a_thousand_keys_delivered_three_times_run_a_thousand_times,
        batched_store_failures_surface_as_typed_errors_and_nothing_is_lost,
        layer_a_key_twice_in_one_batch_runs_once_and_an_undecodable_record_fails_alone,
        layer_fifo_records_not_run_release_their_claims_and_run_on_redelivery,
    ],
);
