//! Every function's role, evaluated as IAM would after the SAM transform (the same expansion
//! `sam deploy` does): its inline statements and any managed policy attached (with the
//! published document pinned in `managed_policies/`), compared with exactly what its code
//! calls and what Lambda does with the role on its behalf (polling its queues, reading its
//! stream, writing its logs and traces). No data-plane action on `*`; each function's
//! idempotency records confined to its own keys.

use std::collections::BTreeSet;

use serde_json::{json, Value};

use crate::deploy::{functions, items, resource};
use crate::support::{binary_of, idempotency_config, target, workspace_root};

/// One permission a function needs: the action, on the resource (a logical id, `Id.Attribute`
/// for an attribute other than the ARN, or `*`), and where the call is made (a file of the
/// workspace and a snippet of it: the code, or the template line that makes Lambda call).
#[derive(Clone, Copy, Debug)]
struct Grant {
    action: &'static str,
    resource: &'static str,
    file: &'static str,
    call: &'static str,
}

const fn grant(
    action: &'static str,
    resource: &'static str,
    file: &'static str,
    call: &'static str,
) -> Grant {
    Grant {
        action,
        resource,
        file,
        call,
    }
}

/// Actions IAM cannot scope to a resource (their only resource is `*`), with why each is
/// granted anyway. Every other action on `*` fails the check.
const UNSCOPABLE: [(&str, &str); 3] = [
    (
        "xray:PutTraceSegments",
        "Tracing: Active; writes trace segments, no application data",
    ),
    (
        "xray:PutTelemetryRecords",
        "Tracing: Active; writes the daemon's counters",
    ),
    (
        "dynamodb:ListStreams",
        "Lambda's stream reading; returns stream ARNs, no data",
    ),
];

const TEMPLATE: &str = "infra/template.yaml";
const STORE: &str = "shared/src/idempotency/store/dynamodb/mod.rs";
/// eventkit's DynamoDbBreakerStore: a circuit breaker's shared state.
const BREAKER_STORE: &str = "shared/src/breaker/store/dynamodb.rs";
/// A breaker's shared state: read, opened and resolved, the probe claimed.
const BREAKERS: [Grant; 3] = [
    grant(
        "dynamodb:GetItem",
        "BreakersTable",
        BREAKER_STORE,
        ".get_item()",
    ),
    grant(
        "dynamodb:PutItem",
        "BreakersTable",
        BREAKER_STORE,
        ".put_item()",
    ),
    grant(
        "dynamodb:UpdateItem",
        "BreakersTable",
        BREAKER_STORE,
        ".update_item()",
    ),
];
const STATEMENTS: &str = "shared/src/idempotency/store/dynamodb/statements.rs";
/// eventkit's DynamoDbStore with batched claims, for the functions fed SQS batches: PartiQL's
/// BatchExecuteStatement (authorised statement by statement) and BatchGetItem.
const BATCHED_IDEMPOTENCY: [Grant; 4] = [
    grant(
        "dynamodb:PartiQLInsert",
        "IdempotencyTable",
        STATEMENTS,
        "INSERT INTO",
    ),
    grant(
        "dynamodb:PartiQLUpdate",
        "IdempotencyTable",
        STATEMENTS,
        "\"UPDATE {}",
    ),
    grant(
        "dynamodb:PartiQLDelete",
        "IdempotencyTable",
        STATEMENTS,
        "DELETE FROM",
    ),
    grant(
        "dynamodb:BatchGetItem",
        "IdempotencyTable",
        STATEMENTS,
        ".batch_get_item()",
    ),
];
/// eventkit's DynamoDbStore per record, for every function that keeps records.
const IDEMPOTENCY: [Grant; 4] = [
    grant("dynamodb:GetItem", "IdempotencyTable", STORE, ".get_item()"),
    grant("dynamodb:PutItem", "IdempotencyTable", STORE, ".put_item()"),
    grant(
        "dynamodb:UpdateItem",
        "IdempotencyTable",
        STORE,
        ".update_item()",
    ),
    grant(
        "dynamodb:DeleteItem",
        "IdempotencyTable",
        STORE,
        ".delete_item()",
    ),
];
const PUBLISH: Grant = grant(
    "events:PutEvents",
    "OrdersBus",
    "shared/src/events/publish/eventbridge.rs",
    ".put_events()",
);
const STOCK: &str = "functions/inventory/src/stock.rs";
/// The notifications' emails, staged in the completion's transaction.
const SENT_EMAILS: &str = "functions/notifications/src/sent_emails.rs";
/// The fake payment provider's ledger.
const PROVIDER: &str = "functions/payments/src/provider/mod.rs";
/// eventkit's relay (and the sweeper, through it): marks the outbox records published, PartiQL
/// UPDATEs in BatchExecuteStatements. The outbox is the idempotency table (the events ride on
/// inventory's and payments' completions, which their idempotency grants already write).
const MARK_PUBLISHED: Grant = grant(
    "dynamodb:PartiQLUpdate",
    "IdempotencyTable",
    "shared/src/outbox/marks.rs",
    ".batch_execute_statement()",
);
/// Tracing: Active makes Lambda send the function's segments with its role.
const TRACING: [Grant; 2] = [
    grant("xray:PutTraceSegments", "*", TEMPLATE, "Tracing: Active"),
    grant("xray:PutTelemetryRecords", "*", TEMPLATE, "Tracing: Active"),
];

/// eventkit's Redelivery on an SQS consumer's queue (the failed records' visibility changed;
/// ChangeMessageVisibilityBatch is authorised as ChangeMessageVisibility; the queue's URL
/// found from the record's ARN), and Lambda's polling of it (`call`: the event source's line).
const fn sqs_consumer(queue: &'static str, call: &'static str) -> [Grant; 5] {
    [
        grant(
            "sqs:ChangeMessageVisibility",
            queue,
            "shared/src/redelivery/send_back.rs",
            ".change_message_visibility_batch()",
        ),
        grant(
            "sqs:GetQueueUrl",
            queue,
            "shared/src/redelivery/queue.rs",
            ".get_queue_url()",
        ),
        grant("sqs:ReceiveMessage", queue, TEMPLATE, call),
        grant("sqs:DeleteMessage", queue, TEMPLATE, call),
        grant("sqs:GetQueueAttributes", queue, TEMPLATE, call),
    ]
}

/// Lambda writing the function's logs into its own group (`call`: its LoggingConfig line).
const fn logs(group: &'static str, call: &'static str) -> [Grant; 2] {
    [
        grant("logs:CreateLogStream", group, TEMPLATE, call),
        grant("logs:PutLogEvents", group, TEMPLATE, call),
    ]
}

/// Exactly what each function's code calls, on exactly its resources, and what Lambda calls
/// with its role. A TransactWriteItems (the completion with a unit of work) is authorised
/// action by action (its Put, Update, Delete as PutItem, UpdateItem, DeleteItem).
fn needed(function: &str) -> Vec<Grant> {
    let own: Vec<Grant> = match function {
        "InventoryFunction" => [
            grant(
                "dynamodb:BatchGetItem",
                "InventoryTable",
                STOCK,
                ".batch_get_item()",
            ),
            grant("dynamodb:GetItem", "InventoryTable", STOCK, ".get_item()"),
            grant(
                "dynamodb:PutItem",
                "InventoryTable",
                STOCK,
                "Put::builder()",
            ),
            grant(
                "dynamodb:UpdateItem",
                "InventoryTable",
                STOCK,
                "Update::builder()",
            ),
            grant(
                "dynamodb:DeleteItem",
                "InventoryTable",
                STOCK,
                "Delete::builder()",
            ),
        ]
        .into_iter()
        .chain(BATCHED_IDEMPOTENCY)
        .chain(IDEMPOTENCY)
        .chain(sqs_consumer(
            "InventoryQueue",
            "Queue: !GetAtt InventoryQueue.Arn",
        ))
        .chain(sqs_consumer(
            "CompensationQueue",
            "Queue: !GetAtt CompensationQueue.Arn",
        ))
        .chain(BREAKERS)
        .chain(logs(
            "InventoryLogGroup",
            "LogGroup: !Ref InventoryLogGroup",
        ))
        .collect(),
        "PaymentsFunction" => [
            grant(
                "dynamodb:PutItem",
                "PaymentsLedgerTable",
                PROVIDER,
                ".put_item()",
            ),
            grant(
                "dynamodb:UpdateItem",
                "PaymentsLedgerTable",
                PROVIDER,
                ".update_item()",
            ),
        ]
        .into_iter()
        .chain(BATCHED_IDEMPOTENCY)
        .chain(IDEMPOTENCY)
        .chain(sqs_consumer(
            "PaymentsQueue",
            "Queue: !GetAtt PaymentsQueue.Arn",
        ))
        .chain(BREAKERS)
        .chain(logs("PaymentsLogGroup", "LogGroup: !Ref PaymentsLogGroup"))
        .collect(),
        "NotificationsFunction" => [
            grant(
                "dynamodb:GetItem",
                "NotificationsTable",
                SENT_EMAILS,
                ".get_item()",
            ),
            grant(
                "dynamodb:PutItem",
                "NotificationsTable",
                SENT_EMAILS,
                "Put::builder()",
            ),
        ]
        .into_iter()
        .chain(BATCHED_IDEMPOTENCY)
        .chain(IDEMPOTENCY)
        .chain(sqs_consumer(
            "NotificationsQueue",
            "Queue: !GetAtt NotificationsQueue.Arn",
        ))
        .chain(BREAKERS)
        .chain(logs(
            "NotificationsLogGroup",
            "LogGroup: !Ref NotificationsLogGroup",
        ))
        .collect(),
        "AnalyticsFunction" => [grant(
            "dynamodb:UpdateItem",
            "AnalyticsTable",
            "functions/analytics/src/lib.rs",
            "Update::builder()",
        )]
        .into_iter()
        .chain(BATCHED_IDEMPOTENCY)
        .chain(IDEMPOTENCY)
        .chain(sqs_consumer(
            "AnalyticsQueue",
            "Queue: !GetAtt AnalyticsQueue.Arn",
        ))
        .chain(BREAKERS)
        .chain(logs(
            "AnalyticsLogGroup",
            "LogGroup: !Ref AnalyticsLogGroup",
        ))
        .collect(),
        // The relay keeps no idempotency records: what it publishes carries staged ids.
        "RelayFunction" => {
            let stream = "Stream: !GetAtt IdempotencyTable.StreamArn";
            [
                MARK_PUBLISHED,
                PUBLISH,
                // Lambda reads the outbox's stream (the idempotency table's) with the
                // function's role...
                grant(
                    "dynamodb:DescribeStream",
                    "IdempotencyTable.StreamArn",
                    TEMPLATE,
                    stream,
                ),
                grant(
                    "dynamodb:GetRecords",
                    "IdempotencyTable.StreamArn",
                    TEMPLATE,
                    stream,
                ),
                grant(
                    "dynamodb:GetShardIterator",
                    "IdempotencyTable.StreamArn",
                    TEMPLATE,
                    stream,
                ),
                grant("dynamodb:ListStreams", "*", TEMPLATE, stream),
                // ... and sends the on-failure record with it.
                grant(
                    "sqs:SendMessage",
                    "RelayFailures",
                    TEMPLATE,
                    "Destination: !GetAtt RelayFailures.Arn",
                ),
            ]
            .into_iter()
            .chain(BREAKERS)
            .chain(logs("RelayLogGroup", "LogGroup: !Ref RelayLogGroup"))
            .collect()
        }
        // The sweeper reads the outbox's index of unpublished records and publishes through
        // the relay's own path.
        "OutboxSweeperFunction" => [
            grant(
                "dynamodb:Query",
                "IdempotencyTable",
                "shared/src/outbox/sweeper.rs",
                ".query()",
            ),
            MARK_PUBLISHED,
            // A record whose events still wait has its TTL pushed back, so it outlives its
            // retention until they are published.
            grant(
                "dynamodb:UpdateItem",
                "IdempotencyTable",
                "shared/src/outbox/sweeper.rs",
                ".update_item()",
            ),
            PUBLISH,
        ]
        .into_iter()
        .chain(BREAKERS)
        .chain(logs(
            "OutboxSweeperLogGroup",
            "LogGroup: !Ref OutboxSweeperLogGroup",
        ))
        .collect(),
        other => panic!("no permissions listed for {other}"),
    };
    own.into_iter().chain(TRACING).collect()
}

/// The published document of an AWS managed policy, pinned in `managed_policies/` (the
/// version of the AWS Managed Policy Reference noted in each file); `None` for one not
/// pinned, which the check refuses to guess about.
fn managed_policy(arn: &str) -> Option<Value> {
    let name = arn.rsplit('/').next()?;
    let path = workspace_root()
        .join("tests/tests/infra_checks/managed_policies")
        .join(format!("{name}.json"));
    let text = std::fs::read_to_string(path).ok()?;
    let pinned: Value = serde_json::from_str(&text).expect("a pinned policy is JSON");
    Some(pinned["document"].clone())
}

/// The resource a statement names, as [`Grant::resource`] names it.
fn resource_name(value: &Value) -> Option<String> {
    if value == "*" {
        return Some("*".into());
    }
    match value["Fn::GetAtt"].as_array().map(Vec::as_slice) {
        Some([id, attribute]) if attribute != "Arn" => {
            Some(format!("{}.{}", id.as_str()?, attribute.as_str()?))
        }
        _ => target(value).map(str::to_string),
    }
}

/// Every statement the role's policies hold: inline, and from its managed policies.
/// Managed policies without a pinned document are reported in `unknown`.
fn effective_statements(role: &Value, unknown: &mut Vec<String>) -> Vec<Value> {
    let properties = &role["Properties"];
    let mut statements = Vec::new();
    for policy in items(&properties["Policies"]) {
        statements.extend(
            items(&policy["PolicyDocument"]["Statement"])
                .into_iter()
                .cloned(),
        );
    }
    for arn in items(&properties["ManagedPolicyArns"]) {
        let arn = arn.as_str().unwrap_or("?");
        match managed_policy(arn) {
            Some(document) => statements.extend(items(&document["Statement"]).into_iter().cloned()),
            None => unknown.push(format!(
                "managed policy {arn}, whose document is not pinned"
            )),
        }
    }
    statements
}

/// What `role` grants beyond `needed`, and what it lacks of it.
fn violations(role: &Value, needed: &[Grant]) -> Vec<String> {
    let mut found = Vec::new();
    let statements = effective_statements(role, &mut found);
    let mut granted = BTreeSet::new();
    for statement in &statements {
        if statement["Effect"] != "Allow" {
            continue;
        }
        if !statement["NotAction"].is_null() || !statement["NotResource"].is_null() {
            found.push(format!("NotAction/NotResource in {statement}"));
        }
        for action in items(&statement["Action"]) {
            let action = action.as_str().unwrap_or("?");
            for resource in items(&statement["Resource"]) {
                let Some(resource) = resource_name(resource) else {
                    found.push(format!(
                        "{action} on {resource}, not a resource of the stack"
                    ));
                    continue;
                };
                if resource == "*" && !UNSCOPABLE.iter().any(|(scopeless, _)| *scopeless == action)
                {
                    found.push(format!("{action} on * (IAM can scope it to a resource)"));
                    continue;
                }
                let listed = needed
                    .iter()
                    .any(|grant| grant.action == action && grant.resource == resource);
                if listed {
                    granted.insert((action.to_string(), resource));
                } else {
                    found.push(format!("{action} on {resource}"));
                }
            }
        }
    }
    for grant in needed {
        if !granted.contains(&(grant.action.to_string(), grant.resource.to_string())) {
            found.push(format!("lacks {} on {}", grant.action, grant.resource));
        }
    }
    found
}

fn role_of(function: &Value) -> &'static Value {
    let role = target(&function["Properties"]["Role"]).expect("the function's role is the stack's");
    resource(role)
}

#[test]
fn every_function_is_granted_exactly_what_its_code_calls() {
    for (id, function) in functions() {
        let found = violations(role_of(function), &needed(id));
        assert!(found.is_empty(), "{id}'s role: {found:#?}");
    }
}

#[test]
fn a_grant_beyond_the_list_or_a_managed_policy_fails_the_check() {
    let (id, function) = functions()
        .into_iter()
        .find(|(id, _)| *id == "AnalyticsFunction")
        .expect("the analytics function");
    let mut role = role_of(function).clone();
    let policy = &mut role["Properties"]["Policies"][0]["PolicyDocument"]["Statement"];
    policy
        .as_array_mut()
        .expect("statements")
        .push(json!({"Effect": "Allow", "Action": ["dynamodb:Scan", "dynamodb:Query"], "Resource": {"Fn::GetAtt": ["AnalyticsTable", "Arn"]}}));
    assert_eq!(
        violations(&role, &needed(id)),
        [
            "dynamodb:Scan on AnalyticsTable",
            "dynamodb:Query on AnalyticsTable"
        ]
    );
    // What SAM attaches to a role it generates for an SQS event source: its published
    // document grants the polling of every queue of the account.
    let mut role = role_of(function).clone();
    role["Properties"]["ManagedPolicyArns"] = json!([
        "arn:aws:iam::aws:policy/service-role/AWSLambdaSQSQueueExecutionRole",
        "arn:aws:iam::aws:policy/AmazonDynamoDBFullAccess"
    ]);
    let found = violations(&role, &needed(id));
    for expected in [
        "sqs:ReceiveMessage on * (IAM can scope it to a resource)",
        "sqs:DeleteMessage on * (IAM can scope it to a resource)",
        "logs:CreateLogGroup on * (IAM can scope it to a resource)",
        "managed policy arn:aws:iam::aws:policy/AmazonDynamoDBFullAccess, whose document is not pinned",
    ] {
        assert!(found.iter().any(|line| line == expected), "{expected}: {found:#?}");
    }
}

#[test]
fn every_listed_permission_is_a_call_the_code_makes() {
    for (id, _) in functions() {
        for grant in needed(id) {
            let path = workspace_root().join(grant.file);
            let code = std::fs::read_to_string(&path)
                .unwrap_or_else(|error| panic!("{}: {error}", path.display()));
            assert!(
                code.contains(grant.call),
                "{id}: {} on {} is listed for `{}` in {}, which is not there",
                grant.action,
                grant.resource,
                grant.call,
                grant.file
            );
        }
    }
}

/// The name each function's code gives its idempotency keys (`<name>#<hash>`).
fn key_prefix(function: &str) -> Option<String> {
    let config = idempotency_config(binary_of(function))?;
    Some(format!("{}#", config.name()))
}

/// Whether `function`'s `OUTBOX_TABLE` is the idempotency table: its events ride on its
/// records, which the relay and the sweeper mark.
fn commits_on_its_records(function: &Value) -> bool {
    target(&function["Properties"]["Environment"]["Variables"]["OUTBOX_TABLE"])
        == Some("IdempotencyTable")
}

#[test]
fn each_function_reaches_only_its_own_idempotency_records() {
    // The records that carry events: those of the functions that commit on them (and keep
    // records: the relay and the sweeper name the outbox too, and keep none).
    let mut carriers: Vec<String> = functions()
        .into_iter()
        .filter(|(_, function)| commits_on_its_records(function))
        .filter_map(|(id, _)| key_prefix(id))
        .map(|prefix| format!("{prefix}*"))
        .collect();
    carriers.sort();
    assert_eq!(carriers, ["inventory#*", "payments#*"]);
    let mut confined = BTreeSet::new();
    for (id, function) in functions() {
        let statements = effective_statements(role_of(function), &mut Vec::new());
        for statement in statements.iter().filter(|statement| {
            items(&statement["Resource"])
                .into_iter()
                .any(|resource| target(resource) == Some("IdempotencyTable"))
        }) {
            // The sweeper's query of the sparse index of unpublished records: LeadingKeys
            // there would be the index's partition key (a shard), not a record's key, and
            // the index holds nothing but records that carry events.
            let on_index = items(&statement["Resource"]).into_iter().all(|resource| {
                resource["Fn::Sub"]
                    .as_str()
                    .is_some_and(|text| text.ends_with("/index/unpublished"))
            });
            if on_index {
                assert_eq!(statement["Action"], json!("dynamodb:Query"), "{id}");
                continue;
            }
            // Lambda's reading of the table's stream for the relay: a stream cannot be
            // confined by key, so the relay's role reads every record's new image (the
            // stream mapping's filter hands the function only the ones carrying events).
            let on_stream = items(&statement["Resource"])
                .into_iter()
                .all(|resource| resource["Fn::GetAtt"][1] == "StreamArn");
            if on_stream {
                assert_eq!(id, "RelayFunction", "only the relay reads the stream");
                assert_eq!(
                    statement["Action"],
                    json!([
                        "dynamodb:DescribeStream",
                        "dynamodb:GetRecords",
                        "dynamodb:GetShardIterator"
                    ]),
                    "{id}"
                );
                continue;
            }
            let prefixes = match key_prefix(id) {
                Some(prefix) => vec![format!("{prefix}*")],
                None if commits_on_its_records(function) => carriers.clone(),
                None => panic!("{id} keeps no records but is granted {statement}"),
            };
            // ForAllValues: every key the request touches (a batch's too) has the prefix.
            assert_eq!(
                statement["Condition"],
                json!({"ForAllValues:StringLike": {"dynamodb:LeadingKeys": prefixes}}),
                "{id}: {statement}"
            );
            confined.insert(id);
        }
    }
    assert_eq!(
        confined.len(),
        6,
        "the four consumers keep records, the relay and the sweeper mark the carriers': {confined:?}"
    );
}

#[test]
fn every_function_runs_under_a_role_of_the_stack_that_only_lambda_assumes() {
    for (id, function) in functions() {
        let trust = &role_of(function)["Properties"]["AssumeRolePolicyDocument"]["Statement"];
        assert_eq!(
            trust,
            &json!([{"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}]),
            "{id}"
        );
    }
    for (scopeless, why) in UNSCOPABLE {
        assert!(!why.is_empty(), "{scopeless}: say why it is granted on *");
    }
}
