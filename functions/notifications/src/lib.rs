//! Notifications: one email per event a customer should hear about (the order confirmation
//! on OrderPlaced, the receipt on PaymentCompleted), recorded in the notifications table as
//! "sent". Invoked directly by the `orders` SNS topic and by an EventBridge rule.
//!
//! A customer never gets two emails for one event: the idempotency layer runs the handler
//! once per eventId, and the email's record is written only if absent, so even a handler
//! that ran twice (a claim taken over after a timeout) sends once.

mod incoming;
mod outbox;

use std::sync::Arc;

use eventkit::batch::RecordError;
use eventkit::handler::Handler;
use eventkit::idempotency::{DynamoDbStore, Idempotency};
use eventkit::runtime::EventFunction;
use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};

pub use incoming::NotificationEvent;
pub use outbox::{Email, Outbox};

/// The notifications table's name.
pub const NOTIFICATIONS_TABLE: &str = "NOTIFICATIONS_TABLE";

/// What happened to the email (stored by the idempotency layer).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Handled {
    /// The notification's id (the triggering event's id).
    pub notification_id: String,
    /// False when an earlier run had already sent it.
    pub sent_now: bool,
}

/// The function's type: its handler, its input, its idempotency store.
pub type Function = EventFunction<Handler<HandlerFn, NotificationEvent, DynamoDbStore>>;

/// The handler type the function runs.
pub type HandlerFn = Box<
    dyn Fn(NotificationEvent) -> BoxFuture<'static, Result<Handled, RecordError>> + Send + Sync,
>;

/// The Lambda function: every notification under the idempotency layer, keyed by eventId.
pub fn function(outbox: Arc<Outbox>, idempotency: Idempotency<DynamoDbStore>) -> Function {
    let handle: HandlerFn = Box::new(move |event: NotificationEvent| {
        let outbox = outbox.clone();
        Box::pin(async move {
            let email = event.email();
            let sent_now = outbox.send(&email).await?;
            if sent_now {
                tracing::info!(to = %email.to, subject = %email.subject, "email sent");
            } else {
                tracing::info!(notification_id = %email.notification_id, "email already sent");
            }
            Ok(Handled {
                notification_id: email.notification_id,
                sent_now,
            })
        })
    });
    EventFunction::new(Handler::new(handle).with_idempotency(idempotency))
}
