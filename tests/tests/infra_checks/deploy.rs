//! What only shows on real AWS (issue 18), checked on the template as CloudFormation deploys
//! it, after the SAM transform: logs that Lambda's level filter keeps, log retention, alarms
//! on every dead-letter queue and rule (IAM is iam.rs's, resource policies access.rs's),
//! reservations that expire, names that leave the stack name free, and the topics' key. (samconfig.toml's
//! environments are checked through SAM itself, in tools.rs.)

use std::collections::BTreeSet;

use serde_json::{json, Value};

use crate::support::{target, transformed, transformed_resources};

pub(crate) fn resource(id: &str) -> &'static Value {
    let found = &transformed()["Resources"][id];
    assert!(found.is_object(), "the transformed template has no {id}");
    found
}

fn parameter(name: &str) -> &'static Value {
    &transformed()["Parameters"][name]
}

pub(crate) fn functions() -> Vec<(&'static str, &'static Value)> {
    let functions = transformed_resources("AWS::Lambda::Function");
    assert_eq!(functions.len(), 6, "the pipeline has six functions");
    functions
}

/// `value` as a list (CloudFormation takes one item or a list in many places).
pub(crate) fn items(value: &Value) -> Vec<&Value> {
    match value {
        Value::Array(items) => items.iter().collect(),
        Value::Null => Vec::new(),
        one => vec![one],
    }
}

// ---------------------------------------------------------------- logging

#[test]
fn lambda_lets_every_line_through_and_the_functions_filter_at_log_level() {
    let levels: BTreeSet<&str> = parameter("LogLevel")["AllowedValues"]
        .as_array()
        .expect("LogLevel has allowed values")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    // tracing's levels: a FATAL that tracing never writes would silence everything.
    assert!(
        levels.is_subset(&BTreeSet::from(["TRACE", "DEBUG", "INFO", "WARN", "ERROR"])),
        "{levels:?}"
    );
    assert!(levels.contains("WARN") && levels.contains("ERROR"));
    for (id, function) in functions() {
        let properties = &function["Properties"];
        let logging = &properties["LoggingConfig"];
        assert_eq!(logging["LogFormat"], "JSON", "{id}");
        // TRACE: Lambda drops no application line, so the EMF line (and a panic's stderr)
        // survive whatever LogLevel says; the functions apply LogLevel themselves.
        assert_eq!(logging["ApplicationLogLevel"], "TRACE", "{id}");
        assert_eq!(
            properties["Environment"]["Variables"]["RUST_LOG"],
            json!({"Ref": "LogLevel"}),
            "{id}: eventkit::telemetry::init_logging reads RUST_LOG first"
        );
    }
}

#[test]
fn every_function_logs_into_a_group_of_its_own_that_expires() {
    let retention = parameter("LogRetentionDays");
    assert_eq!(retention["Default"], 30);
    let mut groups = BTreeSet::new();
    for (id, function) in functions() {
        let group = target(&function["Properties"]["LoggingConfig"]["LogGroup"])
            .unwrap_or_else(|| panic!("{id} has no LoggingConfig.LogGroup of the template"));
        let declared = resource(group);
        assert_eq!(declared["Type"], "AWS::Logs::LogGroup", "{id}: {group}");
        assert_eq!(
            declared["Properties"]["RetentionInDays"],
            json!({"Ref": "LogRetentionDays"}),
            "{group}"
        );
        assert!(groups.insert(group), "{group} is shared");
    }
}

// ---------------------------------------------------------------- alarms

/// Every queue that something dead-letters into, in the transformed template: redrive
/// targets of queues and subscriptions (SAM's for the Lambda subscription included),
/// functions' DLQs, failure destinations, rule targets' DLQs (SAM's rules included).
fn dead_letter_queues() -> BTreeSet<&'static str> {
    let mut queues = BTreeSet::new();
    let redriven = transformed_resources("AWS::SQS::Queue")
        .into_iter()
        .chain(transformed_resources("AWS::SNS::Subscription"));
    for (_, redriven) in redriven {
        queues.extend(target(
            &redriven["Properties"]["RedrivePolicy"]["deadLetterTargetArn"],
        ));
    }
    for (_, function) in functions() {
        queues.extend(target(
            &function["Properties"]["DeadLetterConfig"]["TargetArn"],
        ));
    }
    for (_, config) in transformed_resources("AWS::Lambda::EventInvokeConfig") {
        queues.extend(target(
            &config["Properties"]["DestinationConfig"]["OnFailure"]["Destination"],
        ));
    }
    for (_, rule) in transformed_resources("AWS::Events::Rule") {
        for rule_target in items(&rule["Properties"]["Targets"]) {
            queues.extend(target(&rule_target["DeadLetterConfig"]["Arn"]));
        }
    }
    queues
}

/// The alarms whose metric, dimensions and threshold are these and that notify the alerts
/// topic on alarm.
fn alarms_on(namespace: &str, metric: &str, dimensions: &Value) -> Vec<&'static str> {
    transformed_resources("AWS::CloudWatch::Alarm")
        .into_iter()
        .filter(|(_, alarm)| {
            let alarm = &alarm["Properties"];
            alarm["Namespace"] == namespace
                && alarm["MetricName"] == metric
                && &alarm["Dimensions"] == dimensions
                && alarm["ComparisonOperator"] == "GreaterThanThreshold"
                && alarm["Threshold"] == 0
                && items(&alarm["AlarmActions"])
                    .into_iter()
                    .any(|action| target(action) == Some("AlertsTopic"))
        })
        .map(|(id, _)| id)
        .collect()
}

#[test]
fn every_dead_letter_queue_alarms_as_soon_as_it_holds_a_message() {
    let queues = dead_letter_queues();
    assert_eq!(queues.len(), 7, "{queues:?}");
    for queue in queues {
        let dimensions =
            json!([{"Name": "QueueName", "Value": {"Fn::GetAtt": [queue, "QueueName"]}}]);
        let alarms = alarms_on("AWS/SQS", "ApproximateNumberOfMessagesVisible", &dimensions);
        assert_eq!(alarms.len(), 1, "{queue}: alarms {alarms:?}");
    }
}

#[test]
fn every_rule_alarms_when_it_cannot_dead_letter_an_event() {
    // A schedule carries no event to lose: a firing that fails is replaced by the next one.
    let (schedules, rules): (Vec<_>, Vec<_>) = transformed_resources("AWS::Events::Rule")
        .into_iter()
        .partition(|(_, rule)| rule["Properties"]["ScheduleExpression"].is_string());
    assert_eq!(schedules.len(), 1, "the outbox sweeper's schedule");
    assert_eq!(
        rules.len(),
        4,
        "PaymentFailed, analytics, StockReserved, PaymentCompleted: every consumer reads a queue"
    );
    for (id, rule) in rules {
        let bus = &rule["Properties"]["EventBusName"];
        assert_eq!(target(bus), Some("OrdersBus"), "{id}");
        // A rule of a custom bus reports with EventBusName and RuleName; its name is the
        // last part of its ARN (rule/<bus>/<rule>).
        let name = json!({"Fn::Select": [2, {"Fn::Split": ["/", {"Fn::GetAtt": [id, "Arn"]}]}]});
        let dimensions = json!([
            {"Name": "EventBusName", "Value": bus},
            {"Name": "RuleName", "Value": name},
        ]);
        let alarms = alarms_on("AWS/Events", "InvocationsFailedToBeSentToDlq", &dimensions);
        assert_eq!(alarms.len(), 1, "{id}: alarms {alarms:?}");
    }
}

#[test]
fn every_circuit_breaker_alarms_as_soon_as_it_opens() {
    // The breakers the functions' code names: a new one without an alarm fails here.
    for breaker in [
        payments::PROVIDER_BREAKER,
        orders::wiring::STORE_BREAKER,
        orders::wiring::BUS_BREAKER,
    ] {
        let dimensions = json!([{"Name": "Breaker", "Value": breaker}]);
        let alarms = alarms_on("eventkit", "BreakerOpened", &dimensions);
        assert_eq!(alarms.len(), 1, "{breaker}: alarms {alarms:?}");
    }
}

#[test]
fn the_alerts_topic_takes_the_alarms_and_optionally_an_email() {
    assert_eq!(resource("AlertsTopic")["Type"], "AWS::SNS::Topic");
    let policy = transformed_resources("AWS::SNS::TopicPolicy")
        .into_iter()
        .find(|(_, policy)| {
            items(&policy["Properties"]["Topics"])
                .into_iter()
                .any(|topic| target(topic) == Some("AlertsTopic"))
        })
        .map(|(_, policy)| policy)
        .expect("the alerts topic has a policy");
    // Its own policy replaces SNS's default one: CloudWatch must be let in by name.
    let statements = &policy["Properties"]["PolicyDocument"]["Statement"];
    assert!(
        items(statements).into_iter().any(|statement| {
            statement["Effect"] == "Allow"
                && statement["Principal"]["Service"] == "cloudwatch.amazonaws.com"
                && statement["Action"] == "sns:Publish"
        }),
        "{statements}"
    );
    let email: Vec<_> = transformed_resources("AWS::SNS::Subscription")
        .into_iter()
        .filter(|(_, subscription)| {
            target(&subscription["Properties"]["TopicArn"]) == Some("AlertsTopic")
        })
        .collect();
    assert_eq!(email.len(), 1);
    let (_, email) = email[0];
    assert_eq!(email["Condition"], "HasAlertEmail");
    assert_eq!(email["Properties"]["Protocol"], "email");
    assert_eq!(
        email["Properties"]["Endpoint"],
        json!({"Ref": "AlertEmail"})
    );
    assert_eq!(parameter("AlertEmail")["Default"], "");
    assert_eq!(
        transformed()["Conditions"]["HasAlertEmail"],
        json!({"Fn::Not": [{"Fn::Equals": [{"Ref": "AlertEmail"}, ""]}]})
    );
}

// ---------------------------------------------------------------- reservations

#[test]
fn reservations_expire_through_the_inventory_tables_ttl() {
    let ttl = &resource("InventoryTable")["Properties"]["TimeToLiveSpecification"];
    assert_eq!(
        ttl,
        &json!({"AttributeName": inventory::EXPIRATION_ATTRIBUTE, "Enabled": true})
    );
    // Longer than any PaymentFailed can still arrive (functions/inventory/src/stock.rs).
    assert!(inventory::RESERVATION_LIFETIME.as_secs() >= 35 * 86_400);
}

// ---------------------------------------------------------------- names

/// Properties that name a resource, with their length limits.
const NAMES: [(&str, &str, usize); 9] = [
    ("AWS::Lambda::Function", "FunctionName", 64),
    ("AWS::SNS::Topic", "TopicName", 256),
    ("AWS::SQS::Queue", "QueueName", 80),
    ("AWS::DynamoDB::Table", "TableName", 255),
    ("AWS::Events::EventBus", "Name", 256),
    ("AWS::Events::Rule", "Name", 64),
    ("AWS::Logs::LogGroup", "LogGroupName", 512),
    ("AWS::KMS::Alias", "AliasName", 256),
    ("AWS::CloudWatch::Alarm", "AlarmName", 255),
];

#[test]
fn names_derive_from_the_stack_and_fit_any_stack_name() {
    for (_, function) in functions() {
        assert!(function["Properties"]["FunctionName"].is_null());
    }
    // CloudFormation allows stack names of up to 128 characters.
    let longest_stack = "s".repeat(128);
    let mut named = std::collections::BTreeSet::new();
    for (kind, property, limit) in NAMES {
        for (id, declared) in transformed_resources(kind) {
            let name = &declared["Properties"][property];
            if name.is_null() {
                continue;
            }
            named.insert(id);
            let pattern = name["Fn::Sub"]
                .as_str()
                .unwrap_or_else(|| panic!("{id}.{property} is {name}, not derived from the stack"));
            let expanded = pattern.replace("${AWS::StackName}", &longest_stack);
            assert!(
                pattern.contains("${AWS::StackName}") && !expanded.contains("${"),
                "{id}.{property} = {pattern}: only the stack name may vary"
            );
            assert!(
                expanded.len() <= limit,
                "{id}.{property} = {pattern} exceeds {limit} characters for a long stack name"
            );
        }
    }
    // What others address by name is named: the bus, the topics and the log groups.
    let must_be_named: std::collections::BTreeSet<&str> = [
        "AWS::Events::EventBus",
        "AWS::SNS::Topic",
        "AWS::Logs::LogGroup",
    ]
    .into_iter()
    .flat_map(transformed_resources)
    .map(|(id, _)| id)
    .collect();
    assert!(
        must_be_named.len() >= 3,
        "a bus, a topic, a log group: {must_be_named:?}"
    );
    let unnamed: Vec<&&str> = must_be_named.difference(&named).collect();
    assert!(
        unnamed.is_empty(),
        "not named: {unnamed:?} (named: {named:?})"
    );
}

// ---------------------------------------------------------------- the topics' key

#[test]
fn the_topics_key_is_aws_managed_by_default_or_customer_managed_for_other_publishers() {
    let choice = parameter("TopicKey");
    assert_eq!(choice["Default"], "aws-managed");
    assert_eq!(
        choice["AllowedValues"],
        json!(["aws-managed", "customer-managed"])
    );
    assert_eq!(
        transformed()["Conditions"]["UseCustomerManagedKey"],
        json!({"Fn::Equals": [{"Ref": "TopicKey"}, "customer-managed"]})
    );
    let orders = &resource("OrdersTopic")["Properties"]["KmsMasterKeyId"];
    assert_eq!(
        orders,
        &json!({"Fn::If": ["UseCustomerManagedKey", {"Fn::GetAtt": ["TopicsKey", "Arn"]}, "alias/aws/sns"]})
    );
    let alerts = &resource("AlertsTopic")["Properties"]["KmsMasterKeyId"];
    assert_eq!(
        alerts["Fn::If"][1],
        json!({"Fn::GetAtt": ["TopicsKey", "Arn"]})
    );

    let key = resource("TopicsKey");
    assert_eq!(key["Condition"], "UseCustomerManagedKey");
    assert_eq!(key["Properties"]["EnableKeyRotation"], true);
    let statements = items(&key["Properties"]["KeyPolicy"]["Statement"]);
    let publish = json!(["kms:GenerateDataKey*", "kms:Decrypt"]);
    let by_sid = |sid: &str| {
        statements
            .iter()
            .copied()
            .find(|statement| statement["Sid"] == sid || statement["Fn::If"][1]["Sid"] == sid)
            .unwrap_or_else(|| panic!("the key policy has no statement {sid}"))
    };
    let via_sns = json!({"Fn::Sub": "sns.${AWS::Region}.amazonaws.com"});
    // The account keeps administering the key, through IAM.
    assert_eq!(by_sid("AccountAdministers")["Action"], "kms:*");
    // What the AWS managed key allowed: this account's principals, through SNS.
    let account = by_sid("ThisAccountThroughSns");
    assert_eq!(account["Action"], publish);
    assert_eq!(
        account["Condition"]["StringEquals"]["kms:ViaService"],
        via_sns
    );
    assert_eq!(
        account["Condition"]["StringEquals"]["kms:CallerAccount"],
        json!({"Ref": "AWS::AccountId"})
    );
    // AWS services: EventBridge rules and CloudWatch alarms publishing to the topics.
    let services = by_sid("AwsServicePublishers");
    assert_eq!(services["Action"], publish);
    assert_eq!(
        services["Principal"]["Service"],
        json!(["events.amazonaws.com", "cloudwatch.amazonaws.com"])
    );
    // The producers of other accounts, when PublisherPrincipals names any.
    let others = by_sid("PublishersOfOtherAccounts");
    assert_eq!(others["Fn::If"][0], "HasPublisherPrincipals");
    assert_eq!(
        others["Fn::If"][1]["Principal"]["AWS"],
        json!({"Ref": "PublisherPrincipals"})
    );
    assert_eq!(others["Fn::If"][1]["Action"], publish);

    // The orders topic lets the same publishers in.
    let policy = &resource("OrdersTopicPolicy")["Properties"]["PolicyDocument"]["Statement"];
    let conditional: Vec<(&Value, &Value)> = items(policy)
        .into_iter()
        .filter_map(|statement| Some((&statement["Fn::If"][0], statement["Fn::If"].get(1)?)))
        .collect();
    assert!(conditional.iter().any(|(condition, statement)| {
        *condition == "UseCustomerManagedKey"
            && statement["Principal"]["Service"] == "events.amazonaws.com"
            && statement["Action"] == "sns:Publish"
    }));
    assert!(conditional.iter().any(|(condition, statement)| {
        *condition == "AllowsOtherAccounts"
            && statement["Principal"]["AWS"] == json!({"Ref": "PublisherPrincipals"})
            && statement["Action"] == "sns:Publish"
    }));
}
