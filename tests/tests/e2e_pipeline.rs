//! End to end, the way `cargo xtask demo` runs the pipeline: the resources of
//! `infra/template.yaml` created under a stack name of the test's own, the six functions
//! run as their real binaries against the local Lambda (xtask's `local_lambda`), events
//! published where producers publish them, and the tables, dead-letter queues and logs read
//! back. Each test has its own stack, processes and log directory, so they run in parallel;
//! the processes die with the test, and the stack is deleted when the test passes.

#[path = "e2e_pipeline/harness.rs"]
mod harness;

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::Value;
use xtask::cloud::workspace_root;
use xtask::local_lambda::logs::Stream;

use harness::{correlation, counts, order_placed, Run, MAX_RECEIVE_COUNT};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_order_flows_through_all_four_functions_and_every_table_ends_as_expected() {
    let run = Run::start().await;
    run.seed(&[("SKU-A", 5), ("SKU-B", 3)]).await;
    let (envelope, order) = order_placed(&[("SKU-A", 2), ("SKU-B", 1)], 1999);
    run.publish(&envelope).await;
    run.settle().await;

    assert_eq!(run.stock().await, counts(&[("SKU-A", 3), ("SKU-B", 2)]));
    assert_eq!(run.reservations().await, [order.order_id.as_str()]);
    let correlation_id = correlation(&envelope);
    assert_eq!(
        run.emails().await,
        [
            (
                order.order_id.clone(),
                "order-confirmation".into(),
                correlation_id.clone()
            ),
            (
                order.order_id.clone(),
                "payment-receipt".into(),
                correlation_id
            ),
        ]
    );
    assert_eq!(
        run.counted().await,
        counts(&[
            ("OrderPlaced", 1),
            ("PaymentCompleted", 1),
            ("StockReserved", 1)
        ])
    );
    let completed: BTreeMap<String, usize> = [
        ("analytics", 3),
        ("inventory", 1),
        ("notifications", 2),
        ("payments", 1),
    ]
    .iter()
    .map(|(f, n)| (f.to_string(), *n))
    .collect();
    assert_eq!(run.completed_keys().await, completed);
    for (queue, messages) in run.dead_letters().await {
        assert!(messages.is_empty(), "{queue} holds {messages:?}");
    }
    // The customer's address is personal data: no function writes it to a log, the
    // notifications' log shows it masked.
    for function in run.pipeline.hosts().keys() {
        let leaked: Vec<_> = run
            .log(function)
            .into_iter()
            .filter(|line| line.text.contains(&order.customer_email))
            .collect();
        assert!(
            leaked.is_empty(),
            "{function} logged the address: {leaked:?}"
        );
    }
    let masked = run.log("NotificationsFunction").into_iter().any(|line| {
        line.json.as_ref().is_some_and(|json| {
            json["fields"]["to"] == "a***@example.com" || json["to"] == "a***@example.com"
        })
    });
    assert!(
        masked,
        "notifications logs the masked address of each email sent"
    );
    // The functions ran with AWS_LAMBDA_LOG_FORMAT=JSON (the template's LoggingConfig): every
    // line they wrote, the EMF metrics lines included, survives Lambda's level filter.
    for function in run.pipeline.hosts().keys() {
        let (lines, emf) = run.assert_every_line_has_a_timestamp_and_a_level(function);
        // Invoked only by its schedule (every 5 minutes), which a run this short may not
        // reach; its lines are checked like the others' when it ran.
        if function == "OutboxSweeperFunction" && lines == 0 {
            continue;
        }
        assert!(
            lines > emf && emf > 0,
            "{function}: {lines} lines, {emf} EMF"
        );
    }
    run.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_duplicate_delivered_five_times_has_exactly_one_effect_in_every_table() {
    let run = Run::start().await;
    run.seed(&[("SKU-A", 10)]).await;
    let (envelope, order) = order_placed(&[("SKU-A", 3)], 2500);
    for _ in 0..5 {
        run.publish(&envelope).await;
    }
    run.settle().await;

    assert_eq!(run.stock().await, counts(&[("SKU-A", 7)]));
    assert_eq!(run.reservations().await, [order.order_id.as_str()]);
    let kinds: Vec<String> = run
        .emails()
        .await
        .into_iter()
        .map(|(_, kind, _)| kind)
        .collect();
    assert_eq!(kinds, ["order-confirmation", "payment-receipt"]);
    assert_eq!(
        run.counted().await,
        counts(&[
            ("OrderPlaced", 1),
            ("PaymentCompleted", 1),
            ("StockReserved", 1)
        ])
    );
    // Every delivery succeeded; four of the five were answered from the idempotency store.
    // (Notifications also got PaymentCompleted, analytics StockReserved and PaymentCompleted.)
    for (function, processed) in [
        ("InventoryFunction", 5),
        ("NotificationsFunction", 6),
        ("AnalyticsFunction", 7),
    ] {
        assert_eq!(
            run.metric(function, "RecordsProcessed"),
            processed,
            "{function}"
        );
        assert_eq!(run.metric(function, "RecordsReplayed"), 4, "{function}");
    }
    assert_eq!(run.metric("PaymentsFunction", "RecordsProcessed"), 1);
    assert_eq!(run.metric("PaymentsFunction", "RecordsReplayed"), 0);
    // One charge, requested once: the duplicates never reached the provider.
    assert_eq!(
        run.charges().await,
        [(order.order_id.clone(), "approved".to_string(), 1)]
    );
    run.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_declined_payment_triggers_the_stock_release() {
    let run = Run::start().await;
    run.seed(&[("SKU-A", 5)]).await;
    let (envelope, order) = order_placed(&[("SKU-A", 2)], 4513);
    run.publish(&envelope).await;
    run.settle().await;

    assert_eq!(run.stock().await, counts(&[("SKU-A", 5)]), "stock released");
    assert!(run.reservations().await.is_empty());
    let kinds: Vec<String> = run
        .emails()
        .await
        .into_iter()
        .map(|(_, kind, _)| kind)
        .collect();
    assert_eq!(
        kinds,
        ["order-confirmation"],
        "no receipt for a declined payment"
    );
    assert_eq!(
        run.charges().await,
        [(order.order_id.clone(), "declined".to_string(), 1)],
        "the decline is recorded once by the provider"
    );
    assert_eq!(
        run.counted().await,
        counts(&[
            ("OrderPlaced", 1),
            ("PaymentFailed", 1),
            ("StockReleased", 1),
            ("StockReserved", 1)
        ])
    );
    let correlation_id = correlation(&envelope);
    let released = run.log("InventoryFunction").iter().any(|line| {
        line.message() == "stock released after declined payment"
            && line.span_field("correlation_id") == Some(correlation_id.as_str())
            && line.field("order_id") == Some(order.order_id.as_str())
    });
    assert!(
        released,
        "inventory logs the release with the order's correlation id"
    );
    run.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_poison_message_lands_in_its_dlq_and_the_log_says_why() {
    let run = Run::start().await;
    run.seed(&[("SKU-A", 5)]).await;
    let poison = std::fs::read_to_string(workspace_root().join("events/orders/06-poison.json"))
        .expect("the poison sample");
    run.publish(&poison).await;
    run.settle().await;

    let dead_letters = run.dead_letters().await;
    let held = &dead_letters["InventoryDlq"];
    assert_eq!(held.len(), 1, "{dead_letters:?}");
    let message = &held[0];
    let body: Value = serde_json::from_str(message.body().unwrap_or_default()).expect("JSON body");
    let sent: Value = serde_json::from_str(&poison).expect("JSON sample");
    assert_eq!(body["eventId"], sent["eventId"]);

    // One failure per receive, each naming the message and the reason, in the log file.
    let log = std::fs::read_to_string(
        run.pipeline
            .host("InventoryFunction")
            .expect("inventory")
            .log()
            .path(),
    )
    .expect("inventory.log");
    let failures: Vec<Value> = log
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter(|line| {
            line["message"] == "record failed"
                && line["record_id"] == message.message_id().unwrap_or_default()
        })
        .collect();
    assert_eq!(failures.len(), MAX_RECEIVE_COUNT, "{failures:?}");
    for failure in &failures {
        assert_eq!(failure["class"], "permanent");
        let reason = failure["reason"].as_str().unwrap_or_default();
        assert!(
            reason.contains("invalid data") && reason.contains("a lot"),
            "{reason}"
        );
    }
    // Notifications decodes the order too: its queue dead-letters it after as many receives,
    // each failure logged with the record and the reason.
    let notifications = &dead_letters["NotificationsDlq"];
    assert_eq!(notifications.len(), 1, "{dead_letters:?}");
    let body: Value =
        serde_json::from_str(notifications[0].body().unwrap_or_default()).expect("JSON body");
    assert_eq!(body["eventId"], sent["eventId"]);
    let refused = run
        .log("NotificationsFunction")
        .iter()
        .filter(|line| {
            line.message() == "record failed"
                && line.field("class") == Some("permanent")
                && line
                    .field("reason")
                    .is_some_and(|reason| reason.contains("invalid data"))
        })
        .count();
    assert_eq!(refused, MAX_RECEIVE_COUNT);
    assert_eq!(run.stock().await, counts(&[("SKU-A", 5)]));
    for queue in ["AnalyticsDlq", "CompensationDlq", "PaymentsDlq", "RulesDlq"] {
        assert!(dead_letters[queue].is_empty(), "{queue}");
    }
    run.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_a_function_in_the_middle_of_a_batch_loses_nothing() {
    // Inventory's test-only hold point keeps every record waiting while this file exists, so
    // the kill certainly lands inside a batch (see functions/inventory/src/test_hold.rs).
    let hold = std::env::temp_dir().join(eventkit_tests::unique_name("e2e-inventory-hold"));
    std::fs::write(&hold, "held").expect("the hold file is written");
    let run = Run::start_with(|stack| {
        let inventory = stack
            .functions
            .get_mut("InventoryFunction")
            .expect("the template declares InventoryFunction");
        inventory.spec.environment.insert(
            inventory::test_hold::HOLD_FILE_VAR.to_string(),
            hold.display().to_string(),
        );
    })
    .await;
    run.seed(&[("SKU-A", 100)]).await;
    let inventory = run
        .pipeline
        .host("InventoryFunction")
        .expect("inventory")
        .clone();
    let mut lines = inventory.log().subscribe();
    let mut orders = Vec::new();
    for _ in 0..10 {
        let (envelope, order) = order_placed(&[("SKU-A", 1)], 1000);
        run.publish(&envelope).await;
        orders.push(order.order_id);
    }
    // A record at the hold point: the batch is under way, and stays so until released.
    let request_id = loop {
        let line = tokio::time::timeout(Duration::from_secs(60), lines.recv())
            .await
            .expect("inventory starts a batch")
            .expect("log open");
        if line.stream == Stream::Stdout
            && line.message() == inventory::test_hold::HELD_MESSAGE
            && line.span_field("record_id").is_some()
        {
            break line
                .span_field("requestId")
                .expect("inside an invocation")
                .to_string();
        }
    };
    let killed = inventory.kill_busy_process();
    assert!(
        killed.is_some(),
        "the process was running the batch when killed"
    );
    std::fs::remove_file(&hold).expect("the hold is released");
    run.settle().await;

    assert_eq!(run.stock().await, counts(&[("SKU-A", 90)]));
    orders.sort();
    assert_eq!(run.reservations().await, orders);
    assert_eq!(
        run.counted().await,
        counts(&[
            ("OrderPlaced", 10),
            ("PaymentCompleted", 10),
            ("StockReserved", 10)
        ])
    );
    assert_eq!(run.emails().await.len(), 20);
    // Exactly one charge per paid order, whatever inventory's crash replayed.
    let charged: Vec<String> = run
        .charges()
        .await
        .into_iter()
        .map(|(order_id, outcome, _)| {
            assert_eq!(outcome, "approved", "{order_id}");
            order_id
        })
        .collect();
    assert_eq!(charged, orders);
    // The killed invocation failed as a crash; its records came back and all ten succeeded
    // in later invocations (those done before the kill answered from the idempotency store).
    let report = run.log("InventoryFunction").into_iter().find(|line| {
        line.stream == Stream::Platform
            && line.json.as_ref().is_some_and(|json| {
                json["type"] == "platform.report"
                    && json["record"]["requestId"] == request_id.as_str()
            })
    });
    let report = report.expect("the killed invocation has a report line");
    assert_eq!(
        report
            .json
            .as_ref()
            .map(|j| j["record"]["errorType"].clone()),
        Some("Runtime.ExitError".into())
    );
    assert_eq!(inventory.counts().crashes, 1);
    assert_eq!(run.metric("InventoryFunction", "RecordsProcessed"), 10);
    // payments charged each order once. It may have been delivered a StockReserved twice:
    // the killed invocation can have published one before dying, and its rerun publishes
    // it again, under the same (derived) event id, so the second delivery is a replay.
    assert_eq!(
        run.metric("PaymentsFunction", "RecordsProcessed")
            - run.metric("PaymentsFunction", "RecordsReplayed"),
        10
    );
    for (queue, messages) in run.dead_letters().await {
        assert!(messages.is_empty(), "{queue} holds {messages:?}");
    }
    run.finish().await;
}
