//! Where a record's queue is: its URL from the record's `eventSourceARN`, asked of SQS once
//! per queue and process (`GetQueueUrl` with the name and owner the ARN gives, which works
//! the same on AWS and LocalStack, unlike a URL built by hand).

use std::collections::HashMap;
use std::sync::Mutex;

use super::RedeliveryError;

/// A queue's name and owner, from its ARN (`arn:aws:sqs:region:account:name`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct QueueArn {
    pub(crate) account: String,
    pub(crate) name: String,
}

impl QueueArn {
    pub(crate) fn parse(arn: &str) -> Result<Self, RedeliveryError> {
        let invalid = || RedeliveryError::QueueArn { arn: arn.into() };
        let mut parts = arn.splitn(6, ':');
        let fields: Vec<&str> = parts.by_ref().collect();
        match fields.as_slice() {
            ["arn", _, "sqs", _, account, name] if !account.is_empty() && !name.is_empty() => {
                Ok(Self {
                    account: (*account).into(),
                    name: (*name).into(),
                })
            }
            _ => Err(invalid()),
        }
    }
}

/// The queue URLs found so far, by ARN: one `GetQueueUrl` per queue per process.
#[derive(Debug, Default)]
pub(crate) struct QueueUrls {
    known: Mutex<HashMap<String, String>>,
}

impl QueueUrls {
    pub(crate) async fn url(
        &self,
        sqs: &aws_sdk_sqs::Client,
        arn: &str,
    ) -> Result<String, RedeliveryError> {
        if let Some(url) = self
            .known
            .lock()
            .ok()
            .and_then(|known| known.get(arn).cloned())
        {
            return Ok(url);
        }
        let queue = QueueArn::parse(arn)?;
        let output = sqs
            .get_queue_url()
            .queue_name(&queue.name)
            .queue_owner_aws_account_id(&queue.account)
            .send()
            .await
            .map_err(|error| RedeliveryError::QueueUrl {
                arn: arn.into(),
                source: Box::new(error),
            })?;
        let url = output
            .queue_url()
            .ok_or_else(|| RedeliveryError::QueueArn { arn: arn.into() })?
            .to_string();
        if let Ok(mut known) = self.known.lock() {
            known.insert(arn.into(), url.clone());
        }
        Ok(url)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_arn_names_the_queue_and_its_owner() {
        let queue = QueueArn::parse("arn:aws:sqs:us-east-1:123456789012:orders-inventory").unwrap();
        assert_eq!(queue.account, "123456789012");
        assert_eq!(queue.name, "orders-inventory");
        let fifo = QueueArn::parse("arn:aws-cn:sqs:cn-north-1:000000000000:q.fifo").unwrap();
        assert_eq!(fifo.name, "q.fifo");
        for bad in [
            "",
            "arn:aws:sns:us-east-1:1:topic",
            "arn:aws:sqs:us-east-1::q",
            "q",
        ] {
            assert!(QueueArn::parse(bad).is_err(), "{bad}");
        }
    }
}
