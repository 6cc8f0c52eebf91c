//! The integration events (`asyncapi/integration-events.json`), published to the tenant's bus
//! named in the config's `events.provider`, topic [`TOPIC`]. At most once, like the runtime's
//! lifecycle events: a bus that refuses one is logged and the sync goes on, since the sync's
//! state (runs, cursors) is what `state` answers and the events only tell of it.

use std::sync::Arc;

use serde_json::{Value, json};
use switchyard_client::ProviderClient;
use switchyard_contracts::TenantId;
use switchyard_contracts::event::Event;

use super::settings::Events;

/// The topic every integration event goes to; the key is `<engine>/<stream>` (the engine's
/// name alone for an event about the connection), so one stream's events stay in order.
pub(crate) const TOPIC: &str = "integration";

pub(crate) const SYNC_STARTED: &str = "integration.sync.started";
pub(crate) const SYNC_COMPLETED: &str = "integration.sync.completed";
pub(crate) const SYNC_FAILED: &str = "integration.sync.failed";
pub(crate) const RECORD_UPSERTED: &str = "integration.record.upserted";
pub(crate) const RECORD_DELETED: &str = "integration.record.deleted";
pub(crate) const AUTH_FAILED: &str = "integration.auth.failed";

/// Every event type the engines publish, as AsyncAPI describes them.
#[cfg(test)]
pub(crate) const EVENT_TYPES: [&str; 6] = [
    SYNC_STARTED,
    SYNC_COMPLETED,
    SYNC_FAILED,
    RECORD_UPSERTED,
    RECORD_DELETED,
    AUTH_FAILED,
];

/// Where one instance's events go; `None` inside when the tenant asked for none.
#[derive(Clone)]
pub(crate) struct Publisher {
    target: Option<(Arc<dyn ProviderClient>, Events)>,
    tenant: TenantId,
    engine: &'static str,
}

impl Publisher {
    pub(crate) fn new(
        client: Option<Arc<dyn ProviderClient>>,
        events: Option<Events>,
        tenant: TenantId,
        engine: &'static str,
    ) -> Self {
        Publisher {
            target: client.zip(events),
            tenant,
            engine,
        }
    }

    /// Whether per-record events are asked for.
    pub(crate) fn records(&self) -> bool {
        self.target.as_ref().is_some_and(|(_, e)| e.records)
    }

    /// Publishes one event of `kind` about `stream`.
    pub(crate) async fn publish(&self, kind: &str, stream: &str, data: Value) {
        self.publish_all(kind, Some(stream), vec![data]).await;
    }

    /// Publishes one event of `kind` per item of `data` (about `stream`, or the connection
    /// as a whole), in one publish call per 1,000.
    pub(crate) async fn publish_all(&self, kind: &str, stream: Option<&str>, data: Vec<Value>) {
        let Some((client, events)) = &self.target else {
            return;
        };
        let source = format!("/providers/integration/{}", self.engine);
        let key = match stream {
            Some(stream) => format!("{}/{stream}", self.engine),
            None => self.engine.to_owned(),
        };
        let messages: Vec<Value> = data
            .into_iter()
            .map(|data| {
                let mut event = Event::new(kind, &source, TOPIC, data);
                if let Some(stream) = stream {
                    event = event.with_subject(stream);
                }
                json!({"key": key, "headers": event.headers(&self.tenant), "payload": event.data})
            })
            .collect();
        for chunk in messages.chunks(1000) {
            let params = json!({"topic": TOPIC, "messages": chunk});
            if let Err(problem) = client.invoke(&events.provider, "publish", params).await {
                tracing::warn!(
                    tenant = %self.tenant,
                    provider = %events.provider,
                    kind,
                    error = %problem.detail,
                    "an integration event was not published"
                );
            }
        }
    }
}
