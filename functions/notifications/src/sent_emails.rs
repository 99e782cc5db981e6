//! The "sent" emails, one item per notification in the notifications table. Sending is
//! recording here: the pipeline is a reference application, and the table is what the
//! tests and the demo read.
//!
//! An email is staged in the handler's unit of work, so it is written by the same
//! transaction as the idempotency completion: both or neither. Its Put is conditional on the
//! item being absent, so two runs racing for one notification (a claim taken over) commit
//! one email; the loser's whole transaction is refused and its retry reads the email as sent.

use aws_sdk_dynamodb::error::DisplayErrorContext;
use aws_sdk_dynamodb::types::{AttributeValue, Put};
use eventkit::batch::RecordError;
use eventkit::outbox::UnitOfWork;

/// One email.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Email {
    /// Its id: the triggering event's id.
    pub notification_id: String,
    /// What kind of email.
    pub kind: String,
    /// The recipient.
    pub to: String,
    /// The order it is about.
    pub order_id: String,
    /// The subject line.
    pub subject: String,
    /// The order's correlation id, to follow its journey.
    pub correlation_id: String,
}

/// The notifications table.
#[derive(Clone, Debug)]
pub struct SentEmails {
    client: aws_sdk_dynamodb::Client,
    table: String,
}

impl SentEmails {
    /// The sent emails in `table`.
    pub fn new(client: aws_sdk_dynamodb::Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }

    /// Stages `email` in `work` unless it was sent already (read consistently); true when
    /// staged, to be sent with the commit.
    pub async fn stage(&self, email: &Email, work: &mut UnitOfWork) -> Result<bool, RecordError> {
        if self.was_sent(&email.notification_id).await? {
            return Ok(false);
        }
        let s = |value: &str| AttributeValue::S(value.to_string());
        let sent_at = chrono::Utc::now().to_rfc3339();
        let put = Put::builder()
            .table_name(&self.table)
            .item("notificationId", s(&email.notification_id))
            .item("kind", s(&email.kind))
            .item("to", s(&email.to))
            .item("orderId", s(&email.order_id))
            .item("subject", s(&email.subject))
            .item("correlationId", s(&email.correlation_id))
            .item("sentAt", s(&sent_at))
            .condition_expression("attribute_not_exists(notificationId)")
            .build()
            .map_err(RecordError::permanent)?;
        work.put(put)?;
        Ok(true)
    }

    async fn was_sent(&self, notification_id: &str) -> Result<bool, RecordError> {
        let read = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("notificationId", AttributeValue::S(notification_id.into()))
            .projection_expression("notificationId")
            .consistent_read(true)
            .send()
            .await
            .map_err(|error| {
                RecordError::transient(format!(
                    "notifications table: {}",
                    DisplayErrorContext(error)
                ))
            })?;
        Ok(read.item.is_some())
    }
}
