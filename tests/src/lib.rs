//! The test harness: real AWS SDK clients pointed at the local cloud (LocalStack for SNS, SQS
//! and EventBridge; DynamoDB Local for DynamoDB), and helpers that create uniquely named
//! resources so that tests run in parallel without seeing each other's state.
//!
//! Endpoints come from the same variables the SDK reads (`AWS_ENDPOINT_URL`,
//! `AWS_ENDPOINT_URL_DYNAMODB`), defaulting to what `cargo xtask cloud up` starts. When a
//! service does not answer, [`LocalCloud::connect`] fails the test with a message that says to
//! run `cargo xtask cloud up`: nothing is skipped silently.

mod event_source;
pub mod lambda_events;
mod messaging;
pub mod outbox;
mod pipeline;
mod tables;

/// The repository's README: its code compiled (and its test example run) as doctests.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
pub struct ReadmeDoctests;

/// The user guide (`guide/src/`): every page's code compiled, and run where it can be.
#[cfg(doctest)]
pub mod guide {
    #[doc = include_str!("../../guide/src/introduction.md")]
    pub struct Introduction;
    #[doc = include_str!("../../guide/src/events.md")]
    pub struct Events;
    #[doc = include_str!("../../guide/src/idempotency.md")]
    pub struct Idempotency;
    #[doc = include_str!("../../guide/src/batch.md")]
    pub struct Batch;
    #[doc = include_str!("../../guide/src/outbox.md")]
    pub struct Outbox;
    #[doc = include_str!("../../guide/src/contracts.md")]
    pub struct Contracts;
    #[doc = include_str!("../../guide/src/testing.md")]
    pub struct Testing;
    #[doc = include_str!("../../guide/src/local.md")]
    pub struct Local;
    #[doc = include_str!("../../guide/src/deploying.md")]
    pub struct Deploying;
    #[doc = include_str!("../../guide/src/operating.md")]
    pub struct Operating;
}

use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_dynamodb::config::Credentials;

pub use event_source::sqs_event;
pub use messaging::{Bus, Queue, Topic};
pub use pipeline::{Item, Pipeline};

/// LocalStack's endpoint when `AWS_ENDPOINT_URL` is not set.
pub const DEFAULT_LOCALSTACK_URL: &str = "http://127.0.0.1:4566";
/// DynamoDB Local's endpoint when `AWS_ENDPOINT_URL_DYNAMODB` is not set.
pub const DEFAULT_DYNAMODB_URL: &str = "http://127.0.0.1:8000";
/// The region every local resource lives in.
pub const REGION: &str = "us-east-1";

/// Clients for every service the toolkit talks to, configured for the local cloud.
#[derive(Clone, Debug)]
pub struct LocalCloud {
    /// The shared SDK configuration (region, test credentials, LocalStack endpoint).
    pub config: SdkConfig,
    /// SQS, on LocalStack.
    pub sqs: aws_sdk_sqs::Client,
    /// SNS, on LocalStack.
    pub sns: aws_sdk_sns::Client,
    /// EventBridge, on LocalStack.
    pub eventbridge: aws_sdk_eventbridge::Client,
    /// DynamoDB, on DynamoDB Local.
    pub dynamodb: aws_sdk_dynamodb::Client,
}

impl LocalCloud {
    /// Connects to the local cloud, failing the test with a clear message when either
    /// service is unreachable.
    pub async fn connect() -> Self {
        Self::connect_to(
            &endpoint("AWS_ENDPOINT_URL", DEFAULT_LOCALSTACK_URL),
            &endpoint("AWS_ENDPOINT_URL_DYNAMODB", DEFAULT_DYNAMODB_URL),
        )
        .await
    }

    /// Connects to the given endpoints (LocalStack, DynamoDB Local), failing the test with a
    /// clear message when either is unreachable.
    pub async fn connect_to(localstack: &str, dynamodb_url: &str) -> Self {
        require_reachable("LocalStack", localstack);
        require_reachable("DynamoDB Local", dynamodb_url);

        let config = aws_config::defaults(BehaviorVersion::latest())
            .region(Region::new(REGION))
            .credentials_provider(Credentials::new("test", "test", None, None, "local-cloud"))
            .endpoint_url(localstack)
            .load()
            .await;
        let dynamodb = aws_sdk_dynamodb::Client::from_conf(
            aws_sdk_dynamodb::config::Builder::from(&config)
                .endpoint_url(dynamodb_url)
                .build(),
        );
        Self {
            sqs: aws_sdk_sqs::Client::new(&config),
            sns: aws_sdk_sns::Client::new(&config),
            eventbridge: aws_sdk_eventbridge::Client::new(&config),
            dynamodb,
            config,
        }
    }
}

/// A name no other test (or earlier run) uses: `prefix` plus a random suffix, within the
/// 80-character limit of queue names.
pub fn unique_name(prefix: &str) -> String {
    let suffix = uuid::Uuid::new_v4().simple().to_string();
    let mut name = format!("{prefix}-{}", &suffix[..12]);
    name.truncate(75);
    name
}

/// DynamoDB Local's `host:port`, for a proxy in front of it (`xtask::proxy`).
pub fn dynamodb_address() -> std::net::SocketAddr {
    address(&endpoint("AWS_ENDPOINT_URL_DYNAMODB", DEFAULT_DYNAMODB_URL))
}

/// LocalStack's `host:port`, for a proxy in front of it (`xtask::proxy`).
pub fn localstack_address() -> std::net::SocketAddr {
    address(&endpoint("AWS_ENDPOINT_URL", DEFAULT_LOCALSTACK_URL))
}

fn address(url: &str) -> std::net::SocketAddr {
    url.trim_start_matches("http://")
        .trim_end_matches('/')
        .parse()
        .unwrap_or_else(|e| panic!("endpoint {url} is not http://<ip>:<port>: {e}"))
}

fn endpoint(variable: &str, default: &str) -> String {
    std::env::var(variable)
        .ok()
        .filter(|value| !value.is_empty())
        .unwrap_or_else(|| default.to_string())
}

/// Fails fast, with the fix in the message, instead of letting the SDK retry for a minute.
fn require_reachable(service: &str, url: &str) {
    let authority = url.split("://").nth(1).unwrap_or(url).trim_end_matches('/');
    let reachable = authority
        .to_socket_addrs()
        .ok()
        .and_then(|mut addrs| addrs.next())
        .is_some_and(|addr| TcpStream::connect_timeout(&addr, Duration::from_secs(2)).is_ok());
    assert!(
        reachable,
        "{service} is not reachable at {url}: start the local cloud with `cargo xtask cloud up` \
         (or run the whole suite with `cargo xtask test`, which starts it)"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    #[should_panic(
        expected = "LocalStack is not reachable at http://127.0.0.1:9: start the local cloud with `cargo xtask cloud up`"
    )]
    async fn an_unreachable_local_cloud_fails_with_the_fix_in_the_message() {
        // Port 9 (discard) has no listener here: connecting is refused at once.
        LocalCloud::connect_to("http://127.0.0.1:9", DEFAULT_DYNAMODB_URL).await;
    }

    #[test]
    fn unique_names_differ_and_fit_sqs_limits() {
        let a = unique_name("orders");
        let b = unique_name("orders");
        assert_ne!(a, b);
        assert!(a.starts_with("orders-") && a.len() <= 80, "{a}");
    }
}
