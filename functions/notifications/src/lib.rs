//! Notifications: one email per event a customer should hear about (the order confirmation
//! on OrderPlaced, the receipt on PaymentCompleted), recorded in the notifications table as
//! "sent". Invoked directly by the `orders` SNS topic and by an EventBridge rule.
//!
//! A customer never gets two emails for one event: the transactional idempotency layer runs
//! the handler once per eventId and commits the email with the completion (both or
//! neither), and the email's record is written only if absent, so even a handler that ran
//! twice (a claim taken over after a timeout) sends once.

mod incoming;
mod sent_emails;

use eventkit::batch::RecordError;
use eventkit::handler::{EventHandler, Handler, Invocation, RecordHandlerExt};
use eventkit::idempotency::{DynamoDbStore, Idempotency, IdempotencyConfig};
use eventkit::outbox::{Staged, Transactional, TransactionalLayer, TransactionalStore, UnitOfWork};
use eventkit::redelivery::RecordBackoff;
use eventkit::runtime::EventFunction;
use serde::{Deserialize, Serialize};

pub use incoming::NotificationEvent;
pub use sent_emails::{Email, SentEmails};

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

/// One email per event: staged only if not sent yet, so even a second run sends nothing.
impl EventHandler for SentEmails {
    type Event = NotificationEvent;
    type Output = Staged<Handled>;
    type Error = RecordError;

    async fn handle(
        &self,
        event: NotificationEvent,
        _: &Invocation,
    ) -> Result<Staged<Handled>, RecordError> {
        let email = event.email();
        let mut work = UnitOfWork::new();
        let sent_now = self.stage(&email, &mut work).await?;
        // `sent_now` false: an earlier run (whose claim was taken over) sent it already. The
        // address is personal data: masked in the log (the table keeps it).
        tracing::info!(
            to = %orders::personal::MaskedEmail(&email.to),
            kind = %email.kind,
            sent_now,
            "email sent"
        );
        Ok(work.with_output(Handled {
            notification_id: email.notification_id,
            sent_now,
        }))
    }
}

/// The function's idempotency configuration, the one its `main` runs with: keys named
/// `notifications#<hash>` (fixed: another name would orphan every stored record and let duplicates
/// through), records kept for eventkit's default retention
/// ([`DEFAULT_RECORD_TTL`](eventkit::idempotency::DEFAULT_RECORD_TTL)), longer than any path
/// by which infra/template.yaml can deliver an event again (the infra checks' horizon test
/// reads the retention here).
pub fn idempotency_config() -> IdempotencyConfig {
    IdempotencyConfig::new("notifications")
}

/// How long a record that failed transiently stays away from its queue: the toolkit's
/// defaults (base 60 s, cap 2 h, equal jitter), which with the template's `maxReceiveCount:
/// 10` keep a healthy record out of the DLQ through a 3-hour outage (checked against the
/// template in tests/tests/infra_checks/outages.rs).
pub fn record_backoff() -> RecordBackoff {
    RecordBackoff::default()
}

/// The function's type: the sent emails, under the transactional idempotency layer.
pub type Function<S = DynamoDbStore> = EventFunction<Transactional<Handler<SentEmails>, S>>;

/// The Lambda function: every notification under the transactional idempotency layer,
/// keyed by eventId; the email commits with the completion.
pub fn function<S: TransactionalStore>(
    emails: SentEmails,
    idempotency: Idempotency<S>,
) -> Function<S> {
    EventFunction::new(Handler::from_service(emails).layer(TransactionalLayer::from(idempotency)))
}
