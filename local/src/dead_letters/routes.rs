//! Where each dead letter goes back to. A dead-letter queue mixes what several failures
//! leave, and each kind of message says where it came from in its own way:
//! - an OnFailure invocation record names the function and holds the payload it was
//!   invoked with (`requestContext.functionArn`, `requestPayload`): invoke it again;
//! - a function's own DLQ holds the payloads its asynchronous invocations failed: invoke
//!   that function again with each;
//! - a rule's target DLQ stamps the target on each message (`TARGET_ARN`): deliver it to
//!   that target again (a queue, or a function invoked asynchronously);
//! - a queue's redrive stamps the source queue (`DeadLetterQueueSourceArn`): send it back;
//! - a subscription's redrive stamps nothing, but the queue is its subscription's DLQ: a
//!   notification goes to the one subscription of its topic that sends its failures here
//!   (never published to the topic again, which would reach every other subscriber too).
//!
//! A stream's OnFailure record holds where the records are in the stream, not the records:
//! it is never redriven, and says so.

use std::collections::BTreeMap;

use aws_sdk_sqs::types::{Message, MessageSystemAttributeName};
use serde_json::Value;

use crate::event_sources::payloads::AsyncEvent;
use crate::resources::{QueueInfo, Subscriber};

/// How a function is invoked again.
#[derive(Clone, Debug)]
pub enum Invoker {
    /// The local run: functions by ARN (unqualified), each with its logical id and the
    /// delivery queue its asynchronous invocations go through.
    Local(BTreeMap<String, (String, QueueInfo)>),
    /// AWS (or any Lambda endpoint): Lambda's `Invoke` with `InvocationType=Event`.
    Lambda(aws_sdk_lambda::Client),
    /// No function can be invoked (the queues were named by URL and no Lambda is reachable).
    None,
}

/// What a dead-letter queue's messages can go back to.
#[derive(Clone, Debug)]
pub struct Routes {
    /// The queues whose redrive policy sends it what they fail, each with the name to show
    /// (its logical id in a running application).
    pub sources: Vec<(String, QueueInfo)>,
    /// The function whose own DLQ it is (its ARN): what its asynchronous invocations failed.
    pub owner: Option<String>,
    /// The declared queues with the names to show, for rules' targets (any other queue is
    /// found by its ARN).
    pub queues: Vec<(String, QueueInfo)>,
    /// The SNS subscriptions whose redrive policy names this queue.
    pub subscribers: Vec<Subscriber>,
    /// How functions are invoked.
    pub invoker: Invoker,
}

/// Where one message goes back to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WayBack {
    /// Sent back to the queue it failed in (its redrive source), shown as `name`.
    SourceQueue {
        /// The name to show.
        name: String,
        /// The queue.
        queue: QueueInfo,
    },
    /// Delivered again to a rule's target queue, by ARN.
    TargetQueue(String),
    /// Delivered again to the queue (ARN) of the subscription that failed to deliver it.
    SubscriberQueue(String),
    /// The function (ARN) invoked again, asynchronously, with this payload.
    Invoke {
        /// The function's ARN as the message named it.
        function: String,
        /// The payload, as JSON text.
        payload: String,
    },
}

impl Routes {
    /// Where `message` goes back to, or why it cannot go back.
    pub fn way_back(&self, message: &Message) -> Result<WayBack, String> {
        let body = message.body().unwrap_or_default();
        let parsed: Option<Value> = serde_json::from_str(body).ok();
        if let Some(record) = parsed.as_ref().filter(|v| is_invocation_record(v)) {
            if is_stream_batch_record(record) {
                return Err(
                    "a stream batch's position, not its records: read them from the stream \
                     (the record's shard and sequence numbers)"
                        .into(),
                );
            }
            let function = record["requestContext"]["functionArn"]
                .as_str()
                .ok_or("an invocation record without requestContext.functionArn")?;
            let payload = record.get("requestPayload").ok_or_else(|| {
                "an invocation record without requestPayload (larger than 256 KB?)".to_string()
            })?;
            return Ok(WayBack::Invoke {
                function: function.to_string(),
                payload: payload.to_string(),
            });
        }
        if let Some(function) = &self.owner {
            return Ok(WayBack::Invoke {
                function: function.clone(),
                payload: body.to_string(),
            });
        }
        if let Some(target) = attribute(message, "TARGET_ARN") {
            return match arn_service(&target) {
                Some("sqs") => Ok(WayBack::TargetQueue(target)),
                Some("lambda") => Ok(WayBack::Invoke {
                    function: target,
                    payload: body.to_string(),
                }),
                _ => Err(format!(
                    "its rule's target {target} is neither a queue nor a function"
                )),
            };
        }
        let stamped = message.attributes().and_then(|attributes| {
            attributes.get(&MessageSystemAttributeName::DeadLetterQueueSourceArn)
        });
        let source = match stamped {
            Some(arn) => self.sources.iter().find(|(_, source)| source.arn == *arn),
            // Unstamped, from the only source queue, unless subscriptions fail here too.
            None if self.sources.len() == 1 && self.subscribers.is_empty() => self.sources.first(),
            None => None,
        };
        if source.is_none() && (!self.subscribers.is_empty() || is_notification(parsed.as_ref())) {
            return self.to_subscriber(body, parsed.as_ref());
        }
        source
            .map(|(name, queue)| WayBack::SourceQueue {
                name: name.clone(),
                queue: queue.clone(),
            })
            .ok_or_else(|| "its source queue is unknown".to_string())
    }

    /// A subscription's dead letter: SNS names the subscription nowhere in it, so it goes
    /// to the one subscription that sends its failures here (of its topic, when the body is
    /// a notification rather than a raw message).
    fn to_subscriber(&self, body: &str, parsed: Option<&Value>) -> Result<WayBack, String> {
        let topic = parsed
            .filter(|value| is_notification(Some(value)))
            .and_then(|notification| notification["TopicArn"].as_str());
        let candidates: Vec<&Subscriber> = self
            .subscribers
            .iter()
            .filter(|subscriber| topic.is_none_or(|topic| subscriber.topic == topic))
            .collect();
        let what = topic.map_or_else(
            || "a raw message a subscription failed to deliver".to_string(),
            |topic| format!("a notification of {topic} that a subscription failed to deliver"),
        );
        let subscriber = match candidates.as_slice() {
            [one] => *one,
            [] => {
                return Err(format!(
                    "{what}, but no subscription sends its failures to this queue: \
                     publishing it again would reach every subscriber (send it to the one \
                     that failed)"
                ))
            }
            several => {
                return Err(format!(
                    "{what}, and {} subscriptions send their failures here; SNS does not say \
                     which one failed",
                    several.len()
                ))
            }
        };
        match arn_service(&subscriber.endpoint) {
            Some("sqs") => Ok(WayBack::SubscriberQueue(subscriber.endpoint.clone())),
            Some("lambda") => {
                // Lambda is invoked with the SNS event around the notification.
                let payload = AsyncEvent::parse(body)
                    .and_then(|event| event.payload(&subscriber.subscription))
                    .map_err(|error| format!("{error:#}"))?;
                Ok(WayBack::Invoke {
                    function: subscriber.endpoint.clone(),
                    payload: payload.to_string(),
                })
            }
            _ => Err(format!(
                "its subscription delivers to {}, neither a queue nor a function",
                subscriber.endpoint
            )),
        }
    }

    /// The local delivery queue of the function `arn` (qualified or not), with its logical
    /// id.
    pub fn local_function(&self, arn: &str) -> Option<&(String, QueueInfo)> {
        match &self.invoker {
            Invoker::Local(functions) => functions.get(unqualified(arn)),
            _ => None,
        }
    }

    /// The local function whose delivery queue is `arn` (a rule's target locally), with
    /// that queue.
    pub fn local_delivery(&self, arn: &str) -> Option<&(String, QueueInfo)> {
        match &self.invoker {
            Invoker::Local(functions) => {
                functions.values().find(|(_, delivery)| delivery.arn == arn)
            }
            _ => None,
        }
    }

    /// A declared queue by ARN, with the name to show.
    pub fn queue(&self, arn: &str) -> Option<&(String, QueueInfo)> {
        self.queues
            .iter()
            .chain(&self.sources)
            .find(|(_, queue)| queue.arn == arn)
    }
}

/// Lambda's invocation record (what an OnFailure destination receives).
fn is_invocation_record(value: &Value) -> bool {
    value["requestContext"].is_object() && value["version"].is_string()
}

/// An invocation record of a stream's event source mapping: the failed batch's shard and
/// sequence numbers, not its records.
fn is_stream_batch_record(record: &Value) -> bool {
    record["DDBStreamBatchInfo"].is_object() || record["KinesisBatchInfo"].is_object()
}

/// Whether `message` is Lambda's on-failure record for a stream batch (DynamoDB or
/// Kinesis): it holds where the batch is in the stream, so it is never redriven, and the
/// events it stands for are found in the stream (or, for an outbox, in its table).
pub fn is_stream_failure(message: &Message) -> bool {
    serde_json::from_str::<Value>(message.body().unwrap_or_default())
        .is_ok_and(|record| is_invocation_record(&record) && is_stream_batch_record(&record))
}

/// An SNS notification (the envelope a subscription delivers when not raw).
fn is_notification(value: Option<&Value>) -> bool {
    value.is_some_and(|value| value["Type"] == "Notification" && value["TopicArn"].is_string())
}

/// A message attribute's text.
fn attribute(message: &Message, name: &str) -> Option<String> {
    message
        .message_attributes()?
        .get(name)?
        .string_value()
        .map(str::to_string)
}

/// The service of an ARN (`arn:partition:service:...`).
fn arn_service(arn: &str) -> Option<&str> {
    arn.split(':').nth(2)
}

/// A function's name from its ARN, qualified or not (`arn:aws:lambda:r:a:function:name`);
/// what is not a function ARN, as it is.
pub fn function_name(arn: &str) -> &str {
    unqualified(arn)
        .strip_prefix("arn:")
        .and_then(|_| unqualified(arn).rsplit(':').next())
        .unwrap_or(arn)
}

/// A function ARN without its version or alias (`arn:aws:lambda:r:a:function:name`).
pub fn unqualified(arn: &str) -> &str {
    match arn.match_indices(':').nth(6) {
        Some((at, _)) => &arn[..at],
        None => arn,
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use aws_sdk_sqs::types::MessageAttributeValue;
    use serde_json::json;

    use super::*;

    fn queue(name: &str) -> QueueInfo {
        QueueInfo {
            name: name.into(),
            url: format!("http://localhost/000000000000/{name}"),
            arn: format!("arn:aws:sqs:us-east-1:000000000000:{name}"),
        }
    }

    fn routes(sources: Vec<QueueInfo>, owner: Option<&str>) -> Routes {
        Routes {
            sources: sources
                .into_iter()
                .map(|queue| (queue.name.clone(), queue))
                .collect(),
            owner: owner.map(str::to_string),
            queues: Vec::new(),
            subscribers: Vec::new(),
            invoker: Invoker::None,
        }
    }

    const ALERTS: &str = "arn:aws:sns:us-east-1:000000000000:alerts";

    fn subscriber(topic: &str, endpoint: &str) -> Subscriber {
        Subscriber {
            subscription: format!("{topic}:{}", endpoint.len()),
            topic: topic.into(),
            endpoint: endpoint.into(),
        }
    }

    fn notification(topic: &str) -> String {
        json!({"Type": "Notification", "MessageId": "n1", "TopicArn": topic,
               "Message": "{\"alert\":\"x\"}", "Timestamp": "2026-11-30T10:00:00.000Z",
               "SignatureVersion": "1", "Signature": "c2ln", "SigningCertURL": "https://c",
               "UnsubscribeURL": "https://u"})
        .to_string()
    }

    fn message(body: &str) -> Message {
        Message::builder().message_id("m1").body(body).build()
    }

    fn with_attribute(message: Message, name: &str, value: &str) -> Message {
        let mut attributes = HashMap::new();
        attributes.insert(
            name.to_string(),
            MessageAttributeValue::builder()
                .data_type("String")
                .string_value(value)
                .build()
                .unwrap_or_else(|e| panic!("{e}")),
        );
        Message::builder()
            .set_message_id(message.message_id().map(str::to_string))
            .set_body(message.body().map(str::to_string))
            .set_message_attributes(Some(attributes))
            .build()
    }

    const FUNCTION: &str = "arn:aws:lambda:us-east-1:000000000000:function:probe";

    #[test]
    fn an_invocation_record_invokes_its_function_with_its_payload() {
        let record = json!({
            "version": "1.0",
            "requestContext": {"functionArn": format!("{FUNCTION}:$LATEST"),
                               "condition": "RetriesExhausted"},
            "requestPayload": {"alert": "x"},
            "responsePayload": {"errorMessage": "no"},
        });
        // Even in another function's own DLQ: the record says whose it is.
        let way = routes(vec![], Some("arn:other")).way_back(&message(&record.to_string()));
        assert_eq!(
            way,
            Ok(WayBack::Invoke {
                function: format!("{FUNCTION}:$LATEST"),
                payload: r#"{"alert":"x"}"#.into(),
            })
        );
    }

    #[test]
    fn a_stream_batch_record_is_not_redriven() {
        let record = json!({
            "version": "1.0",
            "requestContext": {"functionArn": FUNCTION},
            "DDBStreamBatchInfo": {"shardId": "s", "startSequenceNumber": "1"},
        });
        let way = routes(vec![], None).way_back(&message(&record.to_string()));
        assert!(way.is_err_and(|why| why.contains("stream batch")));
        assert!(is_stream_failure(&message(&record.to_string())));
        // An invocation record of an ordinary asynchronous invocation is not one.
        let invocation = json!({
            "version": "1.0",
            "requestContext": {"functionArn": FUNCTION},
            "requestPayload": {"Records": []},
        });
        assert!(!is_stream_failure(&message(&invocation.to_string())));
        assert!(!is_stream_failure(&message(
            r#"{"DDBStreamBatchInfo": {}}"#
        )));
    }

    #[test]
    fn a_functions_own_dead_letter_invokes_it_with_the_body_as_it_is() {
        let way = routes(vec![], Some(FUNCTION)).way_back(&message(r#"{"Records":[]}"#));
        assert_eq!(
            way,
            Ok(WayBack::Invoke {
                function: FUNCTION.into(),
                payload: r#"{"Records":[]}"#.into(),
            })
        );
    }

    #[test]
    fn a_rules_dead_letter_goes_to_its_target() {
        let to_queue = with_attribute(
            message("{}"),
            "TARGET_ARN",
            "arn:aws:sqs:us-east-1:000000000000:t",
        );
        assert_eq!(
            routes(vec![], None).way_back(&to_queue),
            Ok(WayBack::TargetQueue(
                "arn:aws:sqs:us-east-1:000000000000:t".into()
            ))
        );
        let to_function = with_attribute(message("{}"), "TARGET_ARN", FUNCTION);
        assert_eq!(
            routes(vec![], None).way_back(&to_function),
            Ok(WayBack::Invoke {
                function: FUNCTION.into(),
                payload: "{}".into()
            })
        );
        let to_topic = with_attribute(
            message("{}"),
            "TARGET_ARN",
            "arn:aws:sns:us-east-1:000000000000:t",
        );
        assert!(routes(vec![], None)
            .way_back(&to_topic)
            .is_err_and(|why| why.contains("neither a queue nor a function")));
    }

    #[test]
    fn a_redriven_message_goes_back_to_its_only_source_else_is_left() {
        let only = routes(vec![queue("orders")], None).way_back(&message("{}"));
        assert_eq!(
            only,
            Ok(WayBack::SourceQueue {
                name: "orders".into(),
                queue: queue("orders")
            })
        );
        let two = routes(vec![queue("a"), queue("b")], None).way_back(&message("{}"));
        assert_eq!(two, Err("its source queue is unknown".into()));
    }

    #[test]
    fn a_subscriptions_dead_letter_is_not_published_to_every_subscriber_again() {
        let way = routes(vec![], None).way_back(&message(&notification(ALERTS)));
        assert!(way.is_err_and(|why| why.contains("every subscriber")));
    }

    #[test]
    fn a_subscriptions_dead_letter_goes_to_the_one_subscriber_of_its_topic_here() {
        let inbox = "arn:aws:sqs:us-east-1:000000000000:inbox";
        let other = "arn:aws:sns:us-east-1:000000000000:other";
        let mut routes = routes(vec![], None);
        routes.subscribers = vec![subscriber(ALERTS, inbox), subscriber(other, FUNCTION)];
        assert_eq!(
            routes.way_back(&message(&notification(ALERTS))),
            Ok(WayBack::SubscriberQueue(inbox.into()))
        );
        // A function subscriber is invoked with the SNS event around the notification.
        let way = routes.way_back(&message(&notification(other)));
        let Ok(WayBack::Invoke { function, payload }) = way.clone() else {
            panic!("not an invocation: {way:?}");
        };
        assert_eq!(function, FUNCTION);
        let event: Value = serde_json::from_str(&payload).unwrap_or_default();
        assert_eq!(event["Records"][0]["EventSource"], "aws:sns");
        assert_eq!(event["Records"][0]["Sns"]["Message"], r#"{"alert":"x"}"#);
        assert_eq!(
            event["Records"][0]["EventSubscriptionArn"],
            subscriber(other, FUNCTION).subscription
        );
        // A raw message names no topic: it goes back only if one subscription fails here.
        assert!(routes
            .way_back(&message(r#"{"alert":"x"}"#))
            .is_err_and(|why| why.contains("2 subscriptions")));
        routes.subscribers.truncate(1);
        assert_eq!(
            routes.way_back(&message(r#"{"alert":"x"}"#)),
            Ok(WayBack::SubscriberQueue(inbox.into()))
        );
    }

    #[test]
    fn two_subscriptions_of_one_topic_failing_into_one_queue_are_not_guessed_between() {
        let mut routes = routes(vec![], None);
        routes.subscribers = vec![
            subscriber(ALERTS, "arn:aws:sqs:us-east-1:000000000000:a"),
            subscriber(ALERTS, "arn:aws:sqs:us-east-1:000000000000:b"),
        ];
        assert!(routes
            .way_back(&message(&notification(ALERTS)))
            .is_err_and(|why| why.contains("does not say which")));
    }

    #[test]
    fn qualifiers_are_dropped_from_function_arns() {
        assert_eq!(unqualified(&format!("{FUNCTION}:$LATEST")), FUNCTION);
        assert_eq!(unqualified(&format!("{FUNCTION}:live")), FUNCTION);
        assert_eq!(unqualified(FUNCTION), FUNCTION);
        assert_eq!(function_name(&format!("{FUNCTION}:live")), "probe");
        assert_eq!(function_name(FUNCTION), "probe");
        assert_eq!(function_name("Probe"), "Probe");
    }
}
