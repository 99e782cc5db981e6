//! The idempotency layer over a whole SQS batch (batched claims, its default), seen as a
//! function sees it: through [`EventFunction`] and its partial batch response.

use eventkit::batch::{BatchConfig, Deadline, FifoPolicy};
use eventkit::handler::{Handler, Json, RecordHandlerExt};
use eventkit::idempotency::IdempotencyLayer;
use eventkit::runtime::EventFunction;

use super::support::*;

/// One SQS record per body (`(message id, body, message group)`).
fn sqs(records: &[(&str, String, Option<&str>)]) -> Value {
    let records: Vec<Value> = records
        .iter()
        .map(|(id, body, group)| {
            let mut attributes = json!({"ApproximateReceiveCount": "1"});
            if let Some(group) = group {
                attributes["MessageGroupId"] = json!(group);
            }
            json!({
                "messageId": id, "receiptHandle": "r", "body": body,
                "attributes": attributes, "messageAttributes": {},
                "eventSource": "aws:sqs",
                "eventSourceARN": "arn:aws:sqs:us-east-1:000000000000:orders.fifo",
                "awsRegion": "us-east-1"
            })
        })
        .collect();
    json!({ "Records": records })
}

fn failed(response: &Value) -> Vec<String> {
    response["batchItemFailures"]
        .as_array()
        .map(|failures| {
            failures
                .iter()
                .filter_map(|failure| failure["itemIdentifier"].as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

/// How often the handler ran per event id, and which ids fail.
#[derive(Default)]
struct Runs {
    counts: std::sync::Mutex<HashMap<String, usize>>,
    failing: std::sync::Mutex<Vec<String>>,
}

impl Runs {
    fn of(&self, id: &str) -> usize {
        self.counts.lock().unwrap().get(id).copied().unwrap_or(0)
    }
}

fn function<S: IdempotencyStore>(
    store: S,
    runs: &Arc<Runs>,
) -> EventFunction<impl eventkit::handler::RecordHandler<Output = Value>> {
    let clock = ManualClock::new(SystemClock.now_ms() + 3_600_000);
    let idempotency = Idempotency::new(store, orders()).with_clock(clock);
    let handler = Handler::with_state(
        runs.clone(),
        async |runs: &Arc<Runs>, Json(body): Json<Value>| {
            let id = body["eventId"].as_str().unwrap_or_default().to_string();
            *runs.counts.lock().unwrap().entry(id.clone()).or_default() += 1;
            if runs.failing.lock().unwrap().contains(&id) {
                return Err(std::io::Error::other(format!("{id} fails")));
            }
            Ok(json!({"handled": id}))
        },
    );
    EventFunction::new(handler.layer(IdempotencyLayer::from(idempotency)))
        .with_batch_config(BatchConfig::default().with_fifo(FifoPolicy::StopBatch))
}

fn deadline() -> Deadline {
    Deadline::after(WINDOW)
}

pub async fn layer_a_key_twice_in_one_batch_runs_once_and_an_undecodable_record_fails_alone<
    S: IdempotencyStore + 'static,
>(
    store: S,
) {
    let runs = Arc::new(Runs::default());
    let function = function(store, &runs);
    let batch = sqs(&[
        ("m0", event("k1").to_string(), None),
        ("m1", event("k2").to_string(), None),
        ("m2", event("k1").to_string(), None),
        ("m3", "not json".to_string(), None),
    ]);
    let response = function.handle(batch, deadline()).await.unwrap();
    assert_eq!(
        failed(&response),
        ["m3"],
        "only the undecodable record fails"
    );
    assert_eq!((runs.of("k1"), runs.of("k2")), (1, 1));

    // Each record's outcome: the copy of k1 replayed the first one's result.
    let records = eventkit::events::records_from(
        &serde_json::from_value::<aws_lambda_events::sqs::SqsEvent>(sqs(&[
            ("n0", event("k3").to_string(), None),
            ("n1", event("k3").to_string(), None),
        ]))
        .unwrap(),
        &Default::default(),
    );
    let outcome = function.process(records, deadline()).await;
    let handled: Vec<_> = outcome
        .records
        .iter()
        .map(|record| {
            record
                .result
                .as_ref()
                .map(|handled| (handled.output.clone(), handled.replayed))
                .unwrap()
        })
        .collect();
    assert_eq!(
        handled,
        [
            (json!({"handled": "k3"}), false),
            (json!({"handled": "k3"}), true)
        ]
    );
    assert_eq!(runs.of("k3"), 1);
}

pub async fn layer_fifo_records_not_run_release_their_claims_and_run_on_redelivery<
    S: IdempotencyStore + 'static,
>(
    store: S,
) {
    let runs = Arc::new(Runs::default());
    let function = function(store, &runs);
    runs.failing.lock().unwrap().push("f2".into());
    let batch = |ids: &[&str]| {
        sqs(&ids
            .iter()
            .map(|id| (*id, event(id).to_string(), Some("g")))
            .collect::<Vec<_>>())
    };
    let response = function
        .handle(batch(&["f1", "f2", "f3", "f4"]), deadline())
        .await
        .unwrap();
    assert_eq!(failed(&response), ["f2", "f3", "f4"]);
    assert_eq!((runs.of("f1"), runs.of("f3"), runs.of("f4")), (1, 0, 0));
    // The redelivery, at once: the claims taken with the batch for f3 and f4 were released
    // (held, they would fail as in progress until the window ends), so everything runs.
    runs.failing.lock().unwrap().clear();
    let response = function
        .handle(batch(&["f2", "f3", "f4"]), deadline())
        .await
        .unwrap();
    assert_eq!(failed(&response), Vec::<String>::new());
    assert_eq!(
        (runs.of("f1"), runs.of("f2"), runs.of("f3"), runs.of("f4")),
        (1, 2, 1, 1)
    );
}
