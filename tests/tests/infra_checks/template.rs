//! The template's structure: the guarantees the pipeline's code relies on (no message
//! dropped, redelivery only after a real timeout, partial batch failures), and the
//! deployment rules of issue 6 (Rust on arm64, encryption, TLS only, outputs).

use std::collections::BTreeSet;

use serde_json::Value;

use crate::support::{function_property, resources, target, template, workspace_root};

/// Every function's events of type `kind`, as (function logical id, function, event).
fn events(kind: &str) -> Vec<(&'static str, &'static Value, &'static Value)> {
    resources("AWS::Serverless::Function")
        .into_iter()
        .flat_map(|(id, function)| {
            function["Properties"]["Events"]
                .as_object()
                .into_iter()
                .flat_map(|events| events.values())
                .filter(move |event| event["Type"] == kind)
                .map(move |event| (id, function, event))
        })
        .collect()
}

/// The queues something dead-letters into: redrive targets of queues and subscriptions,
/// function DLQs, rule DLQs.
fn dead_letter_queues() -> BTreeSet<&'static str> {
    let mut queues = BTreeSet::new();
    let redriven = resources("AWS::SQS::Queue")
        .into_iter()
        .chain(resources("AWS::SNS::Subscription"))
        .map(|(_, resource)| &resource["Properties"])
        .chain(
            events("SNS")
                .into_iter()
                .map(|(_, _, event)| &event["Properties"]),
        );
    for properties in redriven {
        queues.extend(target(&properties["RedrivePolicy"]["deadLetterTargetArn"]));
    }
    for (_, function) in resources("AWS::Serverless::Function") {
        queues.extend(target(
            &function["Properties"]["DeadLetterQueue"]["TargetArn"],
        ));
    }
    for (_, _, event) in events("EventBridgeRule") {
        queues.extend(target(&event["Properties"]["DeadLetterConfig"]["Arn"]));
    }
    // A stream's on-failure destination receives the batches its function never handled.
    for (_, _, event) in events("DynamoDB") {
        queues.extend(target(
            &event["Properties"]["DestinationConfig"]["OnFailure"]["Destination"],
        ));
    }
    for (_, rule) in resources("AWS::Events::Rule") {
        for rule_target in rule["Properties"]["Targets"]
            .as_array()
            .into_iter()
            .flatten()
        {
            queues.extend(target(&rule_target["DeadLetterConfig"]["Arn"]));
        }
    }
    queues
}

#[test]
fn every_queue_is_a_dead_letter_queue_or_has_one_after_three_receives() {
    let dead_letter = dead_letter_queues();
    let queues = resources("AWS::SQS::Queue");
    assert!(queues.len() >= 6, "queues and their DLQs: {queues:?}");
    for (id, queue) in queues {
        let properties = &queue["Properties"];
        if dead_letter.contains(id) {
            // Longer than any source queue keeps messages, so nothing expires on the way.
            assert_eq!(
                properties["MessageRetentionPeriod"], 1_209_600,
                "{id}: 14 days"
            );
            continue;
        }
        let redrive = &properties["RedrivePolicy"];
        let dlq = target(&redrive["deadLetterTargetArn"]);
        assert!(
            dlq.is_some_and(|dlq| dead_letter.contains(dlq) && dlq != id),
            "{id} has no dead-letter queue of its own"
        );
        let receives = redrive["maxReceiveCount"].as_u64().unwrap_or(0);
        assert!(receives >= 3, "{id}: maxReceiveCount {receives} < 3");
    }
}

#[test]
fn consumed_queues_outlast_six_function_timeouts() {
    let sqs = events("SQS");
    assert_eq!(
        sqs.len(),
        5,
        "inventory (2 queues), payments, notifications and analytics consume SQS"
    );
    for (function_id, function, event) in sqs {
        let properties = &event["Properties"];
        let queue_id = target(&properties["Queue"]).expect("the queue is one of the template's");
        let queue = &template()["Resources"][queue_id]["Properties"];
        let timeout = function_property(function, "Timeout")
            .as_u64()
            .expect("a timeout");
        let window = properties["MaximumBatchingWindowInSeconds"]
            .as_u64()
            .unwrap_or(0);
        let visibility = queue["VisibilityTimeout"].as_u64().unwrap_or(30);
        assert!(
            visibility >= 6 * timeout + window,
            "{queue_id}: visibility {visibility}s < 6 x {function_id}'s {timeout}s + {window}s"
        );
    }
}

#[test]
fn every_sqs_event_reports_batch_item_failures_and_sets_its_batching() {
    for (function_id, _, event) in events("SQS") {
        let properties = &event["Properties"];
        assert_eq!(
            properties["FunctionResponseTypes"],
            serde_json::json!(["ReportBatchItemFailures"]),
            "{function_id}"
        );
        assert!(properties["BatchSize"].is_u64(), "{function_id}: BatchSize");
        assert!(
            properties["MaximumBatchingWindowInSeconds"].is_u64(),
            "{function_id}: MaximumBatchingWindowInSeconds"
        );
    }
}

#[test]
fn every_function_is_a_rust_binary_on_provided_al2023_arm64_by_default() {
    let architecture = &template()["Parameters"]["Architecture"];
    assert_eq!(architecture["Default"], "arm64");
    assert_eq!(
        architecture["AllowedValues"],
        serde_json::json!(["arm64", "x86_64"])
    );
    let functions = resources("AWS::Serverless::Function");
    assert_eq!(functions.len(), 6);
    for (id, function) in functions {
        assert_eq!(
            function_property(function, "Runtime"),
            "provided.al2023",
            "{id}"
        );
        assert_eq!(function_property(function, "Handler"), "bootstrap", "{id}");
        assert_eq!(function_property(function, "CodeUri"), "..", "{id}");
        assert_eq!(
            function_property(function, "Architectures"),
            &serde_json::json!([{"Ref": "Architecture"}]),
            "{id}"
        );
        let metadata = &function["Metadata"];
        assert_eq!(metadata["BuildMethod"], "rust-cargolambda", "{id}");
        let binary = metadata["BuildProperties"]["Binary"].as_str().unwrap_or("");
        assert!(
            workspace_root()
                .join("functions")
                .join(binary)
                .join("Cargo.toml")
                .is_file(),
            "{id}: Binary {binary:?} is not a crate under functions/"
        );
    }
}

#[test]
fn every_rule_retries_then_dead_letters() {
    let mut rules = 0;
    for (id, rule) in resources("AWS::Events::Rule") {
        for rule_target in rule["Properties"]["Targets"]
            .as_array()
            .into_iter()
            .flatten()
        {
            rules += 1;
            assert!(rule_target["RetryPolicy"].is_object(), "{id}: RetryPolicy");
            assert!(
                target(&rule_target["DeadLetterConfig"]["Arn"]).is_some(),
                "{id}: DLQ"
            );
        }
    }
    for (id, _, event) in events("EventBridgeRule") {
        rules += 1;
        let properties = &event["Properties"];
        assert!(properties["RetryPolicy"].is_object(), "{id}: RetryPolicy");
        assert!(
            target(&properties["DeadLetterConfig"]["Arn"]).is_some(),
            "{id}: DLQ"
        );
    }
    assert_eq!(
        rules, 4,
        "PaymentFailed, analytics, StockReserved, PaymentCompleted"
    );
}

/// Lambda's asynchronous retries (two, a minute or two apart) cannot back off: a function
/// invoked asynchronously would dead-letter healthy events after a few minutes of outage.
/// Every consumer reads a queue instead (RELIABILITY.md, "Outlasting outages").
#[test]
fn no_consumer_is_invoked_asynchronously() {
    let asynchronous: BTreeSet<&str> = events("SNS")
        .into_iter()
        .chain(events("EventBridgeRule"))
        .map(|(id, _, _)| id)
        .collect();
    assert!(asynchronous.is_empty(), "{asynchronous:?}");
    for (id, function) in resources("AWS::Serverless::Function") {
        let properties = &function["Properties"];
        assert!(properties["EventInvokeConfig"].is_null(), "{id}");
        assert!(properties["DeadLetterQueue"].is_null(), "{id}");
    }
}

#[test]
fn every_table_variable_names_a_table_of_the_template() {
    let tables: BTreeSet<&str> = resources("AWS::DynamoDB::Table")
        .into_iter()
        .map(|(id, _)| id)
        .collect();
    let mut variables = BTreeSet::new();
    let environments = resources("AWS::Serverless::Function")
        .into_iter()
        .map(|(_, function)| &function["Properties"]["Environment"]["Variables"])
        .chain([&template()["Globals"]["Function"]["Environment"]["Variables"]]);
    for environment in environments {
        for (name, value) in environment.as_object().into_iter().flatten() {
            if name.ends_with("_TABLE") {
                let table = target(value).unwrap_or("");
                assert!(tables.contains(table), "{name} names {value}, not a table");
                variables.insert(name.as_str());
            }
        }
    }
    let expected = [
        "ANALYTICS_TABLE",
        "BREAKER_TABLE",
        "IDEMPOTENCY_TABLE",
        "INVENTORY_TABLE",
        "LEDGER_TABLE",
        "NOTIFICATIONS_TABLE",
        "OUTBOX_TABLE",
    ];
    assert_eq!(variables, BTreeSet::from(expected));
}

#[test]
fn tables_have_their_keys_on_demand_billing_recovery_and_encryption() {
    let keys = [
        ("IdempotencyTable", "id"),
        ("InventoryTable", "sku"),
        ("NotificationsTable", "notificationId"),
        ("AnalyticsTable", "pk"),
        ("PaymentsLedgerTable", "idempotencyKey"),
        ("BreakersTable", "pk"),
    ];
    assert_eq!(resources("AWS::DynamoDB::Table").len(), keys.len());
    for (id, key) in keys {
        let properties = &template()["Resources"][id]["Properties"];
        assert_eq!(properties["KeySchema"][0]["AttributeName"], key, "{id}");
        assert_eq!(properties["BillingMode"], "PAY_PER_REQUEST", "{id}");
        let pitr = &properties["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"];
        assert_eq!(pitr, true, "{id}: PITR");
        assert_eq!(
            properties["SSESpecification"]["SSEEnabled"], true,
            "{id}: SSE"
        );
    }
    for id in ["IdempotencyTable", "BreakersTable"] {
        let ttl = &template()["Resources"][id]["Properties"]["TimeToLiveSpecification"];
        assert_eq!(
            ttl,
            &serde_json::json!({"AttributeName": "expiration", "Enabled": true}),
            "{id}"
        );
    }
    // The idempotency table is the outbox: the relay reads its new images (what was
    // committed, nothing older), and the sweeper its sparse index of unpublished records
    // (eventkit::outbox::UNPUBLISHED_INDEX: `unpublished`, `stagedAt`, every attribute).
    let outbox = &template()["Resources"]["IdempotencyTable"]["Properties"];
    assert_eq!(
        outbox["StreamSpecification"],
        serde_json::json!({"StreamViewType": "NEW_IMAGE"})
    );
    assert_eq!(
        outbox["GlobalSecondaryIndexes"],
        serde_json::json!([{
            "IndexName": eventkit::outbox::UNPUBLISHED_INDEX,
            "KeySchema": [
                {"AttributeName": "unpublished", "KeyType": "HASH"},
                {"AttributeName": "stagedAt", "KeyType": "RANGE"}
            ],
            "Projection": {"ProjectionType": "ALL"}
        }])
    );
}

/// The Deny-unless-TLS statements of the policies of type `kind` whose `list` holds `id`.
fn denies_plain_http(kind: &str, list: &str, id: &str) -> bool {
    resources(kind).into_iter().any(|(_, policy)| {
        let properties = &policy["Properties"];
        let covers = properties[list]
            .as_array()
            .is_some_and(|items| items.iter().any(|item| target(item) == Some(id)));
        let statements = properties["PolicyDocument"]["Statement"].as_array();
        covers
            && statements.into_iter().flatten().any(|statement| {
                statement["Effect"] == "Deny"
                    && statement["Principal"] == "*"
                    && statement["Condition"]["Bool"]["aws:SecureTransport"] == "false"
            })
    })
}

#[test]
fn queues_and_topics_are_encrypted_and_refuse_plain_http() {
    for (id, queue) in resources("AWS::SQS::Queue") {
        let properties = &queue["Properties"];
        assert!(
            properties["SqsManagedSseEnabled"] == true || !properties["KmsMasterKeyId"].is_null(),
            "{id} is not encrypted at rest"
        );
        assert!(
            denies_plain_http("AWS::SQS::QueuePolicy", "Queues", id),
            "{id}"
        );
    }
    // The key is a choice (TopicKey; infra_checks/deploy.rs checks it): the orders topic is
    // encrypted either way, the alerts topic only with the customer managed key.
    for (id, topic) in resources("AWS::SNS::Topic") {
        let key = &topic["Properties"]["KmsMasterKeyId"];
        assert_eq!(key["Fn::If"][0], "UseCustomerManagedKey", "{id}");
        if id == "OrdersTopic" {
            assert_eq!(key["Fn::If"][2], "alias/aws/sns", "{id}");
        }
        assert!(
            denies_plain_http("AWS::SNS::TopicPolicy", "Topics", id),
            "{id}"
        );
    }
}

/// The orders topic carries OrderPlaced only, for every subscriber: the pipeline's other
/// events come from the bus, where only the relay may put them (access.rs), and SNS cannot
/// condition a publish on its attributes. What a filter admits by attribute, the consumers
/// refuse if its body says otherwise (eventkit's `EventRecord::json`).
#[test]
fn orders_reach_every_subscriber_filtered_to_order_placed() {
    let order_placed = serde_json::json!({"eventType": ["OrderPlaced"]});
    let subscriptions: Vec<_> = resources("AWS::SNS::Subscription")
        .into_iter()
        .filter(|(_, subscription)| {
            target(&subscription["Properties"]["TopicArn"]) == Some("OrdersTopic")
        })
        .collect();
    for (id, subscription) in &subscriptions {
        let properties = &subscription["Properties"];
        assert_eq!(properties["RawMessageDelivery"], true, "{id}: raw delivery");
        let dlq = &properties["RedrivePolicy"]["deadLetterTargetArn"];
        assert!(
            target(dlq).is_some(),
            "{id}: undeliverable messages need a DLQ"
        );
        assert_eq!(properties["FilterPolicy"], order_placed, "{id}");
        assert_eq!(properties["FilterPolicyScope"], "MessageAttributes", "{id}");
        assert!(
            matches!(
                target(&properties["Endpoint"]),
                Some("InventoryQueue" | "NotificationsQueue" | "AnalyticsQueue")
            ),
            "{id}: unexpected subscriber"
        );
    }
    assert_eq!(subscriptions.len(), 3);
}

#[test]
fn outputs_name_every_table_topic_bus_queue_and_function() {
    let outputs: BTreeSet<&str> = template()["Outputs"]
        .as_object()
        .expect("the template has Outputs")
        .values()
        .filter_map(|output| target(&output["Value"]))
        .collect();
    let kinds = [
        "AWS::DynamoDB::Table",
        "AWS::SNS::Topic",
        "AWS::Events::EventBus",
        "AWS::SQS::Queue",
        "AWS::Serverless::Function",
    ];
    for kind in kinds {
        for (id, _) in resources(kind) {
            assert!(outputs.contains(id), "no output for {id}");
        }
    }
}

#[test]
fn the_relay_is_invoked_for_unpublished_outbox_items_only() {
    let streams = events("DynamoDB");
    assert!(!streams.is_empty(), "the relay reads the outbox's stream");
    let expected: Value =
        serde_json::from_str(eventkit::outbox::STREAM_FILTER).expect("the filter is JSON");
    for (function, _, event) in streams {
        let filters = event["Properties"]["FilterCriteria"]["Filters"]
            .as_array()
            .unwrap_or_else(|| panic!("{function}'s stream event has no FilterCriteria"));
        assert_eq!(filters.len(), 1, "{function}");
        let pattern: Value = serde_json::from_str(filters[0]["Pattern"].as_str().unwrap_or(""))
            .unwrap_or_else(|error| panic!("{function}'s pattern: {error}"));
        assert_eq!(pattern, expected, "{function} filters as the relay expects");
    }
}
