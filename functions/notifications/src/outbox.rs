//! The "sent" emails, one item per notification in the notifications table. Sending is
//! recording here: the pipeline is a reference application, and the table is what the
//! tests and the demo read.

use aws_sdk_dynamodb::error::DisplayErrorContext;
use aws_sdk_dynamodb::types::AttributeValue;
use eventkit::batch::RecordError;

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
pub struct Outbox {
    client: aws_sdk_dynamodb::Client,
    table: String,
}

impl Outbox {
    /// The outbox in `table`.
    pub fn new(client: aws_sdk_dynamodb::Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }

    /// Sends `email` unless it was sent already; true when sent now.
    pub async fn send(&self, email: &Email) -> Result<bool, RecordError> {
        let s = |value: &str| AttributeValue::S(value.to_string());
        let sent_at = chrono::Utc::now().to_rfc3339();
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .item("notificationId", s(&email.notification_id))
            .item("kind", s(&email.kind))
            .item("to", s(&email.to))
            .item("orderId", s(&email.order_id))
            .item("subject", s(&email.subject))
            .item("correlationId", s(&email.correlation_id))
            .item("sentAt", s(&sent_at))
            .condition_expression("attribute_not_exists(notificationId)")
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(error)
                if error
                    .as_service_error()
                    .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
            {
                Ok(false)
            }
            Err(error) => Err(RecordError::transient(format!(
                "notifications table: {}",
                DisplayErrorContext(error)
            ))),
        }
    }
}
