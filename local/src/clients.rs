//! AWS SDK clients pointed at the local cloud, and the environment a function process gets
//! to reach it (the same variables `cargo xtask cloud env` prints).

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_dynamodb::config::Credentials;

use crate::cloud::{LocalCloud, REGION};

/// Where the two local services listen.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Endpoints {
    /// LocalStack (SNS, SQS, EventBridge).
    pub localstack: String,
    /// DynamoDB Local.
    pub dynamodb: String,
}

impl Endpoints {
    /// The endpoints of the local cloud of this checkout.
    pub fn of(cloud: &LocalCloud) -> Self {
        let vars = cloud.env_vars();
        let find = |name: &str| {
            vars.iter()
                .find(|(variable, _)| *variable == name)
                .map(|(_, value)| value.clone())
                .unwrap_or_default()
        };
        Self {
            localstack: find("AWS_ENDPOINT_URL"),
            dynamodb: find("AWS_ENDPOINT_URL_DYNAMODB"),
        }
    }

    /// The endpoints named by `AWS_ENDPOINT_URL` and `AWS_ENDPOINT_URL_DYNAMODB`, else
    /// the defaults of `cargo xtask cloud up`.
    pub fn from_env() -> Self {
        let read = |name: &str, default: &str| {
            std::env::var(name)
                .ok()
                .filter(|value| !value.is_empty())
                .unwrap_or_else(|| default.to_string())
        };
        Self {
            localstack: read("AWS_ENDPOINT_URL", "http://127.0.0.1:4566"),
            dynamodb: read("AWS_ENDPOINT_URL_DYNAMODB", "http://127.0.0.1:8000"),
        }
    }

    /// The variables a process needs to reach the local cloud with the AWS SDK.
    pub fn process_env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ENDPOINT_URL", self.localstack.clone()),
            ("AWS_ENDPOINT_URL_DYNAMODB", self.dynamodb.clone()),
            ("AWS_REGION", REGION.into()),
            ("AWS_DEFAULT_REGION", REGION.into()),
            ("AWS_ACCESS_KEY_ID", "test".into()),
            ("AWS_SECRET_ACCESS_KEY", "test".into()),
            ("AWS_SESSION_TOKEN", "test".into()),
        ]
    }
}

/// SDK clients for the local cloud.
#[derive(Clone, Debug)]
pub struct Clients {
    /// SQS on LocalStack.
    pub sqs: aws_sdk_sqs::Client,
    /// SNS on LocalStack.
    pub sns: aws_sdk_sns::Client,
    /// EventBridge on LocalStack.
    pub eventbridge: aws_sdk_eventbridge::Client,
    /// DynamoDB on DynamoDB Local.
    pub dynamodb: aws_sdk_dynamodb::Client,
    /// DynamoDB Streams, which DynamoDB Local serves on its own endpoint.
    pub streams: aws_sdk_dynamodbstreams::Client,
}

impl Clients {
    /// Clients for `endpoints`, with the local cloud's region and test credentials.
    pub async fn new(endpoints: &Endpoints) -> Self {
        let config: SdkConfig = aws_config::defaults(BehaviorVersion::latest())
            .region(Region::new(REGION))
            .credentials_provider(Credentials::new("test", "test", None, None, "local-cloud"))
            .endpoint_url(&endpoints.localstack)
            .load()
            .await;
        let dynamodb = aws_sdk_dynamodb::Client::from_conf(
            aws_sdk_dynamodb::config::Builder::from(&config)
                .endpoint_url(&endpoints.dynamodb)
                .build(),
        );
        let streams = aws_sdk_dynamodbstreams::Client::from_conf(
            aws_sdk_dynamodbstreams::config::Builder::from(&config)
                .endpoint_url(&endpoints.dynamodb)
                .build(),
        );
        Self {
            sqs: aws_sdk_sqs::Client::new(&config),
            sns: aws_sdk_sns::Client::new(&config),
            eventbridge: aws_sdk_eventbridge::Client::new(&config),
            dynamodb,
            streams,
        }
    }
}
