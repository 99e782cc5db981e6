//! A stack kept by `run --keep` outlives its run, not its local cloud: LocalStack and
//! DynamoDB Local hold everything in memory, so after `cloud down` (or a restart) the kept
//! description names queues and topics that no longer exist. Asked once per command, before
//! the description is used: a vanished stack is said as such, instead of a command failing
//! oddly on the first missing queue.

use anyhow::{bail, Result};
use aws_sdk_sqs::error::{DisplayErrorContext, SdkError};

use crate::clients::Clients;
use crate::running::RunningApp;

/// What became of a kept stack's resources.
#[derive(Debug, PartialEq, Eq)]
pub enum KeptResources {
    /// The one looked at is there (the stack is taken to be whole).
    Present,
    /// This resource (`queue OrdersQueue`) no longer exists: the stack is gone.
    Gone(String),
}

/// Looks for one resource of `app` (a queue, else a topic, else a table, else a bus). Fails
/// when the local cloud does not answer: the stack may well be there once it does.
pub async fn check(clients: &Clients, app: &RunningApp) -> Result<KeptResources> {
    if let Some((logical, queue)) = app.queues.iter().next() {
        let asked = clients
            .sqs
            .get_queue_attributes()
            .queue_url(&queue.url)
            .send()
            .await;
        return found(
            asked,
            |e| e.is_queue_does_not_exist(),
            format!("queue {logical}"),
            app,
        );
    }
    if let Some((logical, arn)) = app.topics.iter().next() {
        let asked = clients
            .sns
            .get_topic_attributes()
            .topic_arn(arn)
            .send()
            .await;
        return found(
            asked,
            |e| e.is_not_found_exception(),
            format!("topic {logical}"),
            app,
        );
    }
    if let Some((logical, name)) = app.tables.iter().next() {
        let asked = clients
            .dynamodb
            .describe_table()
            .table_name(name)
            .send()
            .await;
        let what = format!("table {logical}");
        return found(asked, |e| e.is_resource_not_found_exception(), what, app);
    }
    if let Some((logical, name)) = app.buses.iter().next() {
        let asked = clients
            .eventbridge
            .describe_event_bus()
            .name(name)
            .send()
            .await;
        let what = format!("bus {logical}");
        return found(asked, |e| e.is_resource_not_found_exception(), what, app);
    }
    Ok(KeptResources::Present)
}

/// What the service's answer about `what` says of the stack.
fn found<T, E, R>(
    asked: Result<T, SdkError<E, R>>,
    is_missing: impl Fn(&E) -> bool,
    what: String,
    app: &RunningApp,
) -> Result<KeptResources>
where
    E: std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug,
{
    match asked {
        Ok(_) => Ok(KeptResources::Present),
        Err(error) if error.as_service_error().is_some_and(&is_missing) => {
            Ok(KeptResources::Gone(what))
        }
        Err(error @ (SdkError::DispatchFailure(_) | SdkError::TimeoutError(_))) => bail!(
            "stack {} was kept on the local cloud at {}, which does not answer ({}): bring it \
             up with `eventkit-local cloud up`",
            app.stack,
            app.endpoints.localstack,
            DisplayErrorContext(&error)
        ),
        Err(error) => bail!(
            "looking for {what} of stack {}: {}",
            app.stack,
            DisplayErrorContext(&error)
        ),
    }
}
