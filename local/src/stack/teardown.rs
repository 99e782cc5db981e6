//! Deleting a stack: what this run created (newest first), or everything an earlier run
//! left, found by the stack name every physical name starts with.

use anyhow::Result;

use super::Stack;
use crate::clients::Clients;

/// Something created, to delete on teardown.
#[derive(Clone, Debug)]
pub(super) enum Created {
    Table(String),
    Queue(String),
    Topic(String),
    Subscription(String),
    Bus(String),
    Rule { name: String, bus: String },
}

impl Stack {
    /// Deletes everything the stack created, newest first; failures are ignored (the local
    /// cloud may be gone already).
    pub async fn delete(&mut self, clients: &Clients) {
        while let Some(created) = self.created.pop() {
            let _ = delete_one(clients, &created).await;
        }
    }
}

async fn delete_one(clients: &Clients, created: &Created) -> Result<()> {
    match created {
        Created::Table(name) => {
            clients
                .dynamodb
                .delete_table()
                .table_name(name)
                .send()
                .await?;
        }
        Created::Queue(url) => {
            clients.sqs.delete_queue().queue_url(url).send().await?;
        }
        Created::Topic(arn) => {
            clients.sns.delete_topic().topic_arn(arn).send().await?;
        }
        Created::Subscription(arn) => {
            clients
                .sns
                .unsubscribe()
                .subscription_arn(arn)
                .send()
                .await?;
        }
        Created::Bus(name) => {
            clients
                .eventbridge
                .delete_event_bus()
                .name(name)
                .send()
                .await?;
        }
        Created::Rule { name, bus } => {
            let targets = clients
                .eventbridge
                .list_targets_by_rule()
                .rule(name)
                .event_bus_name(bus)
                .send()
                .await?;
            let ids: Vec<String> = targets
                .targets()
                .iter()
                .map(|t| t.id().to_string())
                .collect();
            if !ids.is_empty() {
                clients
                    .eventbridge
                    .remove_targets()
                    .rule(name)
                    .event_bus_name(bus)
                    .set_ids(Some(ids))
                    .send()
                    .await?;
            }
            clients
                .eventbridge
                .delete_rule()
                .name(name)
                .event_bus_name(bus)
                .send()
                .await?;
        }
    }
    Ok(())
}

/// Deletes what a stack named `name` created, found by its name prefix (for a stack
/// created by an earlier run, whose record is gone); failures are ignored.
pub async fn delete_by_name(clients: &Clients, name: &str) {
    let prefix = format!("{name}-");
    if let Ok(buses) = clients.eventbridge.list_event_buses().send().await {
        let names: Vec<String> = buses
            .event_buses()
            .iter()
            .filter_map(|bus| bus.name().map(str::to_string))
            .filter(|bus| bus.starts_with(&prefix) || bus == "default")
            .collect();
        for bus in names {
            delete_rules(clients, &bus, &prefix).await;
            if bus != "default" {
                let _ = delete_one(clients, &Created::Bus(bus)).await;
            }
        }
    }
    if let Ok(queues) = clients
        .sqs
        .list_queues()
        .queue_name_prefix(&prefix)
        .send()
        .await
    {
        for url in queues.queue_urls() {
            let _ = delete_one(clients, &Created::Queue(url.clone())).await;
        }
    }
    if let Ok(topics) = clients.sns.list_topics().send().await {
        for topic in topics.topics() {
            let arn = topic.topic_arn().unwrap_or_default();
            if arn
                .rsplit(':')
                .next()
                .is_some_and(|topic| topic.starts_with(&prefix))
            {
                let _ = delete_one(clients, &Created::Topic(arn.to_string())).await;
            }
        }
    }
    if let Ok(tables) = clients.dynamodb.list_tables().send().await {
        for table in tables
            .table_names()
            .iter()
            .filter(|t| t.starts_with(&prefix))
        {
            let _ = delete_one(clients, &Created::Table(table.clone())).await;
        }
    }
}

async fn delete_rules(clients: &Clients, bus: &str, prefix: &str) {
    let Ok(rules) = clients
        .eventbridge
        .list_rules()
        .event_bus_name(bus)
        .send()
        .await
    else {
        return;
    };
    for rule in rules.rules() {
        let name = rule.name().unwrap_or_default();
        if bus != "default" || name.starts_with(prefix) {
            let rule = Created::Rule {
                name: name.to_string(),
                bus: bus.to_string(),
            };
            let _ = delete_one(clients, &rule).await;
        }
    }
}
