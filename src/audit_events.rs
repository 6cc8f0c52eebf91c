//! The business services' state changes in the tenant's audit log: each business event the
//! outbox relay publishes (an order created, a journal posted, stock moved) becomes one record,
//! entity `service/<domain>/<subject or event id>`, operation the event's type, new value its
//! data, actor the event's `actor` when its data names one, else `system:relay`.
//!
//! The relay publishes an event again when it stopped between publishing and marking it sent,
//! and another replica may take the tenant over meanwhile; the event's id is kept as the
//! record's request id, and the store writes one record per event id
//! ([`PlatformStore::append_audit_once`]), so a repeat adds nothing.

use async_trait::async_trait;
use serde_json::Value;
use switchyard_contracts::{ErrorCode, Problem, TenantId};
use switchyard_outbox::{Pending, Published};
use switchyard_runtime::store::{AuditEntry, PlatformStore};

/// Who a business change is recorded as when its event does not say.
pub const RELAY_ACTOR: &str = "system:relay";

/// Records relayed business events in the platform store's audit log.
pub struct AuditedEvents {
    store: PlatformStore,
}

impl AuditedEvents {
    pub fn new(store: PlatformStore) -> Self {
        AuditedEvents { store }
    }
}

#[async_trait]
impl Published for AuditedEvents {
    async fn published(&self, tenant: &TenantId, events: &[Pending]) -> Result<(), Problem> {
        for event in events {
            self.store
                .append_audit_once(entry(tenant, event))
                .await
                .map_err(|e| {
                    tracing::error!(tenant = %tenant, event = %event.event_id, error = %e, "a business event could not be written to the audit log; it is relayed again");
                    Problem::new(
                        ErrorCode::Internal,
                        "the audit log could not record a relayed event",
                    )
                    .with_retryable(true)
                })?;
        }
        Ok(())
    }
}

/// The record of one event, from its CloudEvents headers and data.
fn entry(tenant: &TenantId, event: &Pending) -> AuditEntry {
    let header = |name: &str| event.headers[name].as_str().filter(|v| !v.is_empty());
    let kind = header("ce_type").unwrap_or(&event.topic);
    // `/services/orders` says the domain; an event from elsewhere has it as its type's first part.
    let domain = header("ce_source")
        .and_then(|source| source.strip_prefix("/services/"))
        .or_else(|| kind.split('.').next())
        .unwrap_or(&event.topic);
    let subject = header("ce_subject").unwrap_or(&event.event_id);
    let actor = match &event.payload["actor"] {
        Value::String(actor) if !actor.is_empty() => actor.clone(),
        _ => RELAY_ACTOR.to_owned(),
    };
    AuditEntry {
        tenant: tenant.to_string(),
        actor,
        entity: format!("service/{domain}/{subject}"),
        operation: kind.to_owned(),
        old: None,
        new: Some(event.payload.clone()),
        request_id: Some(event.event_id.clone()),
        source: None,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use switchyard_contracts::Event;

    use super::*;

    fn pending(event: &Event, tenant: &TenantId) -> Pending {
        Pending {
            seq: 1,
            event_id: event.id.clone(),
            topic: event.topic.clone(),
            key: event.key.clone(),
            headers: Value::Object(event.headers(tenant)),
            payload: event.data.clone(),
        }
    }

    #[test]
    fn an_event_names_its_domain_subject_type_and_actor() {
        let acme = TenantId::parse("acme").unwrap();
        let created = Event::new(
            "orders.order.created",
            "/services/orders",
            "orders",
            json!({"order_id": "o-1", "total": "9.90"}),
        )
        .with_subject("o-1");
        let record = entry(&acme, &pending(&created, &acme));
        assert_eq!(record.entity, "service/orders/o-1");
        assert_eq!(record.operation, "orders.order.created");
        assert_eq!(record.actor, RELAY_ACTOR);
        assert_eq!(record.request_id.as_deref(), Some(created.id.as_str()));
        assert_eq!(record.new, Some(created.data.clone()));

        let posted = Event::new(
            "ledger.journal.posted",
            "elsewhere",
            "ledger",
            json!({"actor": "key:abc"}),
        );
        let record = entry(&acme, &pending(&posted, &acme));
        assert_eq!(record.entity, format!("service/ledger/{}", posted.id));
        assert_eq!(record.actor, "key:abc");
    }

    /// The relay repeating a run records nothing new.
    #[tokio::test]
    async fn a_run_told_twice_is_recorded_once() {
        let dir = tempfile::tempdir().unwrap();
        let store = PlatformStore::open(dir.path()).await.unwrap();
        let acme = TenantId::parse("acme").unwrap();
        let events: Vec<Pending> = (0..3)
            .map(|n| {
                let event = Event::new(
                    "inventory.stock.moved",
                    "/services/inventory",
                    "inventory",
                    json!({"n": n}),
                );
                pending(&event, &acme)
            })
            .collect();
        let audited = AuditedEvents::new(store.clone());
        audited.published(&acme, &events).await.unwrap();
        audited.published(&acme, &events[1..]).await.unwrap();
        let filter = switchyard_runtime::store::AuditFilter {
            limit: 10,
            ..Default::default()
        };
        let records = store.list_audit(&acme, &filter).await.unwrap();
        assert_eq!(records.len(), 3);
        assert!(store.verify_audit_chain("acme").await.unwrap().ok);
    }
}
