//! The `outbox` service: the door a relay outside the process has to the services' outbox.
//!
//! The business services keep their outbox in the service books (`switchyard_provider_db`'s
//! `ServiceBooks`), which a tenant's own db calls cannot reach — so `switchyard relay`, holding
//! only a tenant key, cannot read it through `/providers/db/*` as it reads a tenant's own
//! outbox. It calls `/services/outbox/relay` instead, and the relaying itself runs here, as a
//! hosted service: reading and marking rows in the books, publishing to the tenant's bus. The
//! tenant gets no SQL on the books, only "send what is pending".

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use async_trait::async_trait;
use serde_json::{Value, json};
use switchyard_client::{ProviderClient, Service, ServiceDescriptor};
use switchyard_contracts::{ErrorCode, Problem, TenantId, domains};

use crate::{Outbox, Published, Relay};

/// What the summary of `contracts/schemas/services/outbox.json` says.
const SUMMARY: &str = "Carries the events the business services wrote to their outbox (in the \
service books, which tenant db calls cannot reach) to one of the tenant's bus providers; \
`switchyard relay` calls it in a loop.";

/// Rows per call when the caller does not say.
const DEFAULT_MAX_EVENTS: u64 = 100;

pub struct OutboxService {
    descriptor: ServiceDescriptor,
    /// Told of every event relayed (the platform's audit log), when the host gives one.
    published: Option<Arc<dyn Published>>,
    /// Held across the creation: PostgreSQL's `CREATE TABLE IF NOT EXISTS` is not safe
    /// against itself.
    installed: tokio::sync::Mutex<Installed>,
}

#[derive(Default)]
struct Installed {
    /// (tenant, db) whose outbox table this process has created.
    tables: HashSet<(TenantId, String)>,
    /// The outbox of each db, which asks the provider its dialect once. Only dbs an outbox
    /// was installed in: made-up provider ids in params add nothing.
    outboxes: HashMap<String, Outbox>,
}

impl Default for OutboxService {
    fn default() -> Self {
        OutboxService {
            descriptor: ServiceDescriptor {
                name: "outbox".into(),
                version: env!("CARGO_PKG_VERSION").into(),
                summary: SUMMARY.into(),
                actions: domains::service_actions("outbox"),
            },
            published: None,
            installed: tokio::sync::Mutex::default(),
        }
    }
}

impl OutboxService {
    /// The service telling `listener` of every event it relays ([`Published`]).
    pub fn with_published(mut self, listener: Arc<dyn Published>) -> Self {
        self.published = Some(listener);
        self
    }

    /// Publishes up to `max_events` pending rows of the books' outbox in `db` to `bus`.
    async fn relay(&self, client: &dyn ProviderClient, params: &Value) -> Result<Value, Problem> {
        let text = |field: &str| {
            params[field].as_str().ok_or_else(|| {
                Problem::new(
                    ErrorCode::ParamsInvalid,
                    format!("params need a string {field}"),
                )
            })
        };
        let (db, bus) = (text("db")?, text("bus")?);
        let max_events = params["max_events"].as_u64().unwrap_or(DEFAULT_MAX_EVENTS);
        let outbox = {
            let mut installed = self.installed.lock().await;
            let outbox = match installed.outboxes.get(db) {
                Some(outbox) => outbox.clone(),
                None => Outbox::new(db)?,
            };
            let key = (client.tenant().clone(), db.to_owned());
            if !installed.tables.contains(&key) {
                outbox.install(client).await?;
                installed.tables.insert(key);
                installed.outboxes.insert(db.to_owned(), outbox.clone());
            }
            outbox
        };
        let batch = usize::try_from(max_events).unwrap_or(usize::MAX);
        let mut relay = Relay::new(outbox, bus, batch);
        if let Some(listener) = &self.published {
            relay = relay.with_published(listener.clone());
        }
        let sent = relay.run_once(client).await?;
        Ok(json!({ "sent": sent }))
    }
}

#[async_trait]
impl Service for OutboxService {
    fn descriptor(&self) -> &ServiceDescriptor {
        &self.descriptor
    }

    async fn invoke(
        &self,
        client: &dyn ProviderClient,
        action: &str,
        params: Value,
    ) -> Result<Value, Problem> {
        match action {
            "relay" => self.relay(client, &params).await,
            other => Err(Problem::new(
                ErrorCode::ActionNotFound,
                format!("service outbox has no action {other:?}"),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_summary_is_the_contract_files() {
        let file: Value = serde_json::from_str(include_str!(
            "../../../contracts/schemas/services/outbox.json"
        ))
        .unwrap();
        assert_eq!(file["summary"], SUMMARY);
        assert_eq!(OutboxService::default().descriptor().actions.len(), 1);
    }
}
