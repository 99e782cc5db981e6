//! Who may speak for the pipeline, and what the stack keeps: the bus and topic policies
//! evaluated for forged requests (an ordinary principal of the account whose IAM policy
//! says `events:*` and `sns:*`, a named producer putting another producer's events), the
//! topic's subscriptions admitting only its one event type, and every stateful resource
//! retained on delete and replace.
//!
//! The evaluation follows IAM's documented logic for resource-based policies: an explicit
//! deny wins; a principal of the account is allowed by its own IAM policy or the resource's;
//! a principal of another account needs the resource's allow. Conditions are evaluated for
//! the operators the template uses; a key missing from the request makes a positive
//! operator false and a negated one true, as IAM does.

use std::collections::BTreeMap;

use serde_json::{json, Value};

use crate::deploy::items;
use crate::support::{target, transformed, transformed_resources};

const ACCOUNT: &str = "111122223333";
const REGION: &str = "us-east-1";
/// A producer in another account, as PublisherPrincipals would name it.
const PARTNER: &str = "arn:aws:iam::444455556666:role/partner-checkout";
/// A role of this account that is no producer (a neighbour function, an over-broad CI role).
const NEIGHBOUR: &str = "arn:aws:iam::111122223333:role/neighbour";
/// A role of this account named as a producer in ProducerRoleArns.
const CHECKOUT: &str = "arn:aws:iam::111122223333:role/checkout";

/// The transformed template deployed with some parameter values: intrinsic functions
/// resolved, conditions evaluated.
struct Deployment {
    parameters: BTreeMap<String, Value>,
}

impl Deployment {
    fn with(values: &[(&str, &str)]) -> Self {
        let mut parameters = BTreeMap::new();
        let declared = transformed()["Parameters"].as_object().expect("parameters");
        for (name, declaration) in declared {
            let given = values
                .iter()
                .find(|(given, _)| given == name)
                .map(|(_, value)| value.to_string());
            let text = given.unwrap_or_else(|| {
                declaration["Default"]
                    .as_str()
                    .map(str::to_string)
                    .unwrap_or_else(|| declaration["Default"].to_string())
            });
            let value = if declaration["Type"] == "CommaDelimitedList" {
                json!(text.split(',').collect::<Vec<_>>())
            } else {
                json!(text)
            };
            parameters.insert(name.clone(), value);
        }
        Self { parameters }
    }

    /// The ARN of a resource of the stack (its logical id stands for its physical name).
    fn arn(&self, id: &str) -> Value {
        let kind = transformed()["Resources"][id]["Type"]
            .as_str()
            .unwrap_or("?");
        json!(match kind {
            "AWS::IAM::Role" => format!("arn:aws:iam::{ACCOUNT}:role/{id}"),
            "AWS::SNS::Topic" => format!("arn:aws:sns:{REGION}:{ACCOUNT}:{id}"),
            "AWS::Events::EventBus" => format!("arn:aws:events:{REGION}:{ACCOUNT}:event-bus/{id}"),
            "AWS::SQS::Queue" => format!("arn:aws:sqs:{REGION}:{ACCOUNT}:{id}"),
            "AWS::DynamoDB::Table" => format!("arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{id}"),
            "AWS::Logs::LogGroup" => format!("arn:aws:logs:{REGION}:{ACCOUNT}:log-group:{id}:*"),
            other => panic!("{id}: no ARN form for {other}"),
        })
    }

    /// What `!GetAtt id.attribute` gives.
    fn attribute(&self, id: &str, attribute: &str) -> Value {
        let arn = self.arn(id);
        match attribute {
            "StreamArn" => json!(format!("{}/stream/1", arn.as_str().unwrap_or_default())),
            _ => arn,
        }
    }

    /// `value` with its intrinsic functions resolved; `None` for `AWS::NoValue`.
    fn resolve(&self, value: &Value) -> Option<Value> {
        match value {
            Value::Array(values) => Some(Value::Array(
                values
                    .iter()
                    .filter_map(|value| self.resolve(value))
                    .collect(),
            )),
            Value::Object(object) if object.len() == 1 => {
                let (function, argument) = object.iter().next().expect("one entry");
                match function.as_str() {
                    "Ref" => self.reference(argument.as_str().expect("Ref names")),
                    "Fn::GetAtt" => Some(self.attribute(
                        argument[0].as_str().expect("GetAtt names"),
                        argument[1].as_str().unwrap_or("Arn"),
                    )),
                    "Fn::If" => {
                        let chosen = if self.condition(argument[0].as_str().expect("a condition")) {
                            &argument[1]
                        } else {
                            &argument[2]
                        };
                        self.resolve(chosen)
                    }
                    "Fn::Join" => {
                        let parts = self.resolve(&argument[1])?;
                        let parts: Vec<String> = items(&parts)
                            .into_iter()
                            .map(|part| part.as_str().unwrap_or_default().to_string())
                            .collect();
                        Some(json!(parts.join(argument[0].as_str().unwrap_or(""))))
                    }
                    "Fn::Sub" => Some(json!(self.substitute(argument.as_str().expect("Sub text")))),
                    _ => Some(self.resolve_fields(object)),
                }
            }
            Value::Object(object) => Some(self.resolve_fields(object)),
            scalar => Some(scalar.clone()),
        }
    }

    /// An object that is no intrinsic function: each field resolved, `AWS::NoValue` dropped.
    fn resolve_fields(&self, object: &serde_json::Map<String, Value>) -> Value {
        Value::Object(
            object
                .iter()
                .filter_map(|(key, value)| Some((key.clone(), self.resolve(value)?)))
                .collect(),
        )
    }

    fn reference(&self, name: &str) -> Option<Value> {
        match name {
            "AWS::NoValue" => None,
            "AWS::AccountId" => Some(json!(ACCOUNT)),
            "AWS::Region" => Some(json!(REGION)),
            "AWS::Partition" => Some(json!("aws")),
            "AWS::StackName" => Some(json!("stack")),
            _ => Some(
                self.parameters
                    .get(name)
                    .cloned()
                    .unwrap_or_else(|| self.arn(name)),
            ),
        }
    }

    fn substitute(&self, text: &str) -> String {
        let mut out = text.to_string();
        while let Some(start) = out.find("${") {
            let end = start + out[start..].find('}').expect("closed ${");
            let name = &out[start + 2..end];
            let (id, _) = name.split_once('.').unwrap_or((name, ""));
            let value = if name.contains('.') {
                self.arn(id)
            } else {
                self.reference(name).unwrap_or(json!(""))
            };
            out.replace_range(start..=end, value.as_str().unwrap_or_default());
        }
        out
    }

    fn condition(&self, name: &str) -> bool {
        let declared = &transformed()["Conditions"][name];
        assert!(!declared.is_null(), "no condition {name}");
        self.truth(declared)
    }

    fn truth(&self, value: &Value) -> bool {
        let (function, argument) = value
            .as_object()
            .and_then(|object| object.iter().next())
            .expect("a condition function");
        match function.as_str() {
            "Fn::Equals" => self.resolve(&argument[0]) == self.resolve(&argument[1]),
            "Fn::Not" => !self.truth(&argument[0]),
            "Fn::And" => items(argument).into_iter().all(|part| self.truth(part)),
            "Fn::Or" => items(argument).into_iter().any(|part| self.truth(part)),
            "Condition" => self.condition(argument.as_str().expect("a condition")),
            other => panic!("condition function {other}"),
        }
    }

    /// A resource policy's statements, resolved.
    fn statements(&self, policy: &Value) -> Vec<Value> {
        let resolved = self.resolve(policy).unwrap_or(Value::Null);
        items(&resolved).into_iter().cloned().collect()
    }
}

/// Who asks.
#[derive(Clone, Copy)]
enum Caller<'a> {
    /// An IAM role (its ARN names its account).
    Role(&'a str),
}

impl Caller<'_> {
    fn arn(&self) -> &str {
        match self {
            Self::Role(arn) => arn,
        }
    }

    fn account(&self) -> &str {
        self.arn().split(':').nth(4).unwrap_or_default()
    }
}

/// One request: who, what, on which resource, with which request context.
struct Request<'a> {
    caller: Caller<'a>,
    action: &'a str,
    resource: String,
    context: BTreeMap<&'a str, String>,
}

impl Request<'_> {
    fn key(&self, key: &str) -> Option<String> {
        match key {
            "aws:PrincipalArn" => Some(self.caller.arn().to_string()),
            "aws:PrincipalAccount" => Some(self.caller.account().to_string()),
            "aws:SecureTransport" => Some("true".into()),
            other => self.context.get(other).cloned(),
        }
    }
}

/// `*` and `?` wildcards, as IAM's `Like` operators and action and resource fields match.
fn glob(pattern: &str, text: &str) -> bool {
    fn go(pattern: &[char], text: &[char]) -> bool {
        match (pattern.first(), text.first()) {
            (None, None) => true,
            (Some('*'), _) => {
                go(&pattern[1..], text) || (!text.is_empty() && go(pattern, &text[1..]))
            }
            (Some('?'), Some(_)) => go(&pattern[1..], &text[1..]),
            (Some(p), Some(t)) if p == t => go(&pattern[1..], &text[1..]),
            _ => false,
        }
    }
    let pattern: Vec<char> = pattern.chars().collect();
    let text: Vec<char> = text.chars().collect();
    go(&pattern, &text)
}

fn strings(value: &Value) -> Vec<String> {
    items(value)
        .into_iter()
        .map(|value| {
            value
                .as_str()
                .map_or_else(|| value.to_string(), str::to_string)
        })
        .collect()
}

fn conditions_hold(condition: &Value, request: &Request) -> bool {
    let Some(operators) = condition.as_object() else {
        return true;
    };
    operators.iter().all(|(operator, keys)| {
        keys.as_object()
            .expect("condition keys")
            .iter()
            .all(|(key, values)| {
                let values = strings(values);
                let found = request.key(key);
                let positive = |found: &str| match operator.trim_end_matches("IfExists") {
                    "StringEquals" | "ArnEquals" | "StringNotEquals" | "ArnNotEquals" | "Bool" => {
                        values.iter().any(|value| value == found)
                    }
                    "StringLike" | "ArnLike" | "StringNotLike" | "ArnNotLike" => {
                        values.iter().any(|value| glob(value, found))
                    }
                    other => panic!("condition operator {other} is not evaluated here"),
                };
                let negated = operator.contains("Not");
                match found {
                    None => negated,
                    Some(found) => positive(&found) != negated,
                }
            })
    })
}

fn principal_matches(principal: &Value, caller: Caller) -> bool {
    if principal == "*" {
        return true;
    }
    strings(&principal["AWS"]).iter().any(|named| {
        named == "*"
            || named == caller.arn()
            || named == caller.account()
            || *named == format!("arn:aws:iam::{}:root", caller.account())
    })
}

fn statement_matches(statement: &Value, request: &Request) -> bool {
    principal_matches(&statement["Principal"], request.caller)
        && strings(&statement["Action"])
            .iter()
            .any(|action| glob(action, request.action))
        && strings(&statement["Resource"])
            .iter()
            .any(|resource| glob(resource, &request.resource))
        && conditions_hold(&statement["Condition"], request)
}

#[derive(Debug, PartialEq, Eq)]
enum Decision {
    Allowed,
    /// Denied by a statement of the resource policy.
    DeniedExplicitly,
    /// Nothing allows it.
    NotAllowed,
}

/// IAM's decision for `request` under the resource policy `statements`, the caller's own
/// IAM policy allowing it (`identity_allows`).
fn decide(statements: &[Value], request: &Request, identity_allows: bool) -> Decision {
    let matching = |effect: &str| {
        statements
            .iter()
            .any(|statement| statement["Effect"] == effect && statement_matches(statement, request))
    };
    if matching("Deny") {
        return Decision::DeniedExplicitly;
    }
    let same_account = request.caller.account() == ACCOUNT;
    let resource_allows = matching("Allow");
    if (same_account && (identity_allows || resource_allows))
        || (identity_allows && resource_allows)
    {
        Decision::Allowed
    } else {
        Decision::NotAllowed
    }
}

/// Whether a role of the stack's own IAM policy allows `action` on `resource`.
fn role_allows(deployment: &Deployment, role: &str, action: &str, resource: &str) -> bool {
    let role = &transformed()["Resources"][role]["Properties"]["Policies"];
    let resolved = deployment.resolve(role).unwrap_or(Value::Null);
    items(&resolved).into_iter().any(|policy| {
        items(&policy["PolicyDocument"]["Statement"])
            .into_iter()
            .any(|statement| {
                statement["Effect"] == "Allow"
                    && strings(&statement["Action"])
                        .iter()
                        .any(|a| glob(a, action))
                    && strings(&statement["Resource"])
                        .iter()
                        .any(|r| glob(r, resource))
            })
    })
}

fn put_events<'a>(caller: Caller<'a>, deployment: &Deployment, detail_type: &str) -> Request<'a> {
    Request {
        caller,
        action: "events:PutEvents",
        resource: deployment
            .arn("OrdersBus")
            .as_str()
            .unwrap_or_default()
            .to_string(),
        context: BTreeMap::from([
            ("events:source", orders::SOURCE.to_string()),
            ("events:detail-type", detail_type.to_string()),
        ]),
    }
}

fn bus_policy(deployment: &Deployment) -> Vec<Value> {
    let policies = transformed_resources("AWS::Events::EventBusPolicy");
    assert_eq!(policies.len(), 1, "one policy on the orders bus");
    let (_, policy) = policies[0];
    assert_eq!(
        target(&policy["Properties"]["EventBusName"]),
        Some("OrdersBus")
    );
    deployment.statements(&policy["Properties"]["Statement"])
}

#[test]
fn only_the_relay_and_the_sweeper_put_the_pipelines_events_on_the_bus() {
    let deployment = Deployment::with(&[
        ("TopicKey", "customer-managed"),
        ("PublisherPrincipals", PARTNER),
    ]);
    let policy = bus_policy(&deployment);
    let bus = deployment.arn("OrdersBus");
    let bus = bus.as_str().unwrap_or_default();
    // The stack's publishers: allowed by their roles, not denied by the bus.
    for role in ["RelayRole", "OutboxSweeperRole"] {
        let arn = deployment.arn(role);
        let caller = Caller::Role(arn.as_str().unwrap_or_default());
        let own = role_allows(&deployment, role, "events:PutEvents", bus);
        assert!(own, "{role} may put events on the bus");
        for detail_type in ["StockReserved", "PaymentFailed"] {
            let request = put_events(caller, &deployment, detail_type);
            assert_eq!(decide(&policy, &request, own), Decision::Allowed, "{role}");
        }
    }
    // Forgeries: a PaymentFailed for a paid order (stock released), a StockReserved (a charge).
    for detail_type in ["PaymentFailed", "StockReserved"] {
        // A principal of the account whose IAM policy allows events:*.
        let request = put_events(Caller::Role(NEIGHBOUR), &deployment, detail_type);
        assert_eq!(decide(&policy, &request, true), Decision::DeniedExplicitly);
        // The functions that commit events: they stage them in the outbox, never put them.
        for role in ["InventoryRole", "PaymentsRole"] {
            let arn = deployment.arn(role);
            let request = put_events(
                Caller::Role(arn.as_str().unwrap_or_default()),
                &deployment,
                detail_type,
            );
            assert_eq!(
                decide(&policy, &request, true),
                Decision::DeniedExplicitly,
                "{role}"
            );
        }
        // A named producer of OrderPlaced (another account) putting the pipeline's own events.
        let request = put_events(Caller::Role(PARTNER), &deployment, detail_type);
        assert_ne!(decide(&policy, &request, true), Decision::Allowed);
    }
}

#[test]
fn the_bus_rules_route_only_the_pipelines_own_source() {
    for (id, rule) in transformed_resources("AWS::Events::Rule") {
        if target(&rule["Properties"]["EventBusName"]) != Some("OrdersBus") {
            continue;
        }
        assert_eq!(
            rule["Properties"]["EventPattern"]["source"],
            json!([orders::SOURCE]),
            "{id}: a rule matching another source would route what anybody may put"
        );
    }
}

fn publish<'a>(caller: Caller<'a>, deployment: &Deployment) -> Request<'a> {
    Request {
        caller,
        action: "sns:Publish",
        resource: deployment
            .arn("OrdersTopic")
            .as_str()
            .unwrap_or_default()
            .to_string(),
        context: BTreeMap::new(),
    }
}

fn topic_policy(deployment: &Deployment) -> Vec<Value> {
    let (_, policy) = transformed_resources("AWS::SNS::TopicPolicy")
        .into_iter()
        .find(|(_, policy)| {
            items(&policy["Properties"]["Topics"])
                .into_iter()
                .any(|topic| target(topic) == Some("OrdersTopic"))
        })
        .expect("the orders topic's policy");
    deployment.statements(&policy["Properties"]["PolicyDocument"]["Statement"])
}

#[test]
fn only_named_producers_publish_orders() {
    // By default nobody of the account may publish, whatever its IAM policy says.
    let default = Deployment::with(&[]);
    let policy = topic_policy(&default);
    let request = publish(Caller::Role(NEIGHBOUR), &default);
    assert_eq!(decide(&policy, &request, true), Decision::DeniedExplicitly);

    // Named producers of the account, and of another account with the customer managed key.
    let named = Deployment::with(&[
        ("ProducerRoleArns", CHECKOUT),
        ("TopicKey", "customer-managed"),
        ("PublisherPrincipals", PARTNER),
    ]);
    let policy = topic_policy(&named);
    assert_eq!(
        decide(&policy, &publish(Caller::Role(CHECKOUT), &named), true),
        Decision::Allowed
    );
    assert_eq!(
        decide(&policy, &publish(Caller::Role(PARTNER), &named), true),
        Decision::Allowed
    );
    assert_eq!(
        decide(&policy, &publish(Caller::Role(NEIGHBOUR), &named), true),
        Decision::DeniedExplicitly
    );
    // Another account that was not named has no grant.
    let stranger = "arn:aws:iam::777788889999:role/stranger";
    assert_eq!(
        decide(&policy, &publish(Caller::Role(stranger), &named), true),
        Decision::NotAllowed
    );
}

#[test]
fn stateful_resources_are_retained_on_delete_and_replace() {
    let mut stateful = 0;
    for kind in ["AWS::DynamoDB::Table", "AWS::SQS::Queue"] {
        for (id, resource) in transformed_resources(kind) {
            assert_eq!(resource["DeletionPolicy"], "Retain", "{id}");
            assert_eq!(resource["UpdateReplacePolicy"], "Retain", "{id}");
            stateful += 1;
        }
    }
    // 6 tables; 5 queues the functions read, 8 that dead-letter (RelayFailures included).
    assert_eq!(stateful, 6 + 5 + 8, "every table and queue");
}

#[test]
fn the_evaluation_denies_and_allows_as_iam_does() {
    // The evaluator itself, on statements whose outcome IAM documents.
    let deny_unless = json!([{
        "Effect": "Deny", "Principal": "*", "Action": "sns:*", "Resource": "*",
        "Condition": {"ArnNotLike": {"aws:PrincipalArn": ["arn:aws:iam::111122223333:role/ok-*"]}}
    }]);
    let policy = items(&deny_unless).into_iter().cloned().collect::<Vec<_>>();
    let request = |arn: &'static str| Request {
        caller: Caller::Role(arn),
        action: "sns:Publish",
        resource: "arn:aws:sns:us-east-1:111122223333:t".into(),
        context: BTreeMap::new(),
    };
    assert_eq!(
        decide(
            &policy,
            &request("arn:aws:iam::111122223333:role/ok-1"),
            true
        ),
        Decision::Allowed
    );
    assert_eq!(
        decide(
            &policy,
            &request("arn:aws:iam::111122223333:role/ok-1"),
            false
        ),
        Decision::NotAllowed
    );
    assert_eq!(
        decide(
            &policy,
            &request("arn:aws:iam::111122223333:role/other"),
            true
        ),
        Decision::DeniedExplicitly
    );
    // A key the request lacks: the negated operator holds, the positive one does not.
    let absent = json!({"StringNotEquals": {"events:source": ["x"]}});
    assert!(conditions_hold(
        &absent,
        &request("arn:aws:iam::111122223333:role/a")
    ));
    let absent = json!({"StringEquals": {"events:source": ["x"]}});
    assert!(!conditions_hold(
        &absent,
        &request("arn:aws:iam::111122223333:role/a")
    ));
}
