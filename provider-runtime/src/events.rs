//! Provider lifecycle events: `provider.events.{domain}.{name}.{event}` on the tenant's own bus.
//!
//! The runtime publishes them itself, through the same provider contract as any caller, once
//! a bus is chosen with [`Runtime::publish_lifecycle_events`](crate::Runtime::publish_lifecycle_events).
//! They report the process's view of an instance (it started, its circuit opened), which no
//! database write stands behind, so there is no outbox row to tie them to: they are published
//! at most once, in the order they happened, and a failed publish is logged, never retried
//! into a loop.

use std::sync::{Arc, OnceLock};

use serde_json::{Value, json};
use switchyard_contracts::{Event, TenantId};
use tokio::sync::mpsc;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LifecycleEvent {
    Configured,
    Started,
    Stopped,
    HealthChanged,
    CircuitOpened,
    CircuitClosed,
}

impl LifecycleEvent {
    pub const ALL: [LifecycleEvent; 6] = [
        LifecycleEvent::Configured,
        LifecycleEvent::Started,
        LifecycleEvent::Stopped,
        LifecycleEvent::HealthChanged,
        LifecycleEvent::CircuitOpened,
        LifecycleEvent::CircuitClosed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            LifecycleEvent::Configured => "configured",
            LifecycleEvent::Started => "started",
            LifecycleEvent::Stopped => "stopped",
            LifecycleEvent::HealthChanged => "health_changed",
            LifecycleEvent::CircuitOpened => "circuit_opened",
            LifecycleEvent::CircuitClosed => "circuit_closed",
        }
    }

    /// The topic this event of provider `domain/name` goes to.
    pub fn topic(self, domain: &str, name: &str) -> String {
        format!("provider.events.{domain}.{name}.{}", self.as_str())
    }

    /// The CloudEvents `type`.
    pub fn cloud_event_type(self) -> String {
        format!("switchyard.provider.{}", self.as_str())
    }
}

/// One event on its way to the publisher task.
pub(crate) struct Emitted {
    pub tenant: TenantId,
    pub index: usize,
    pub event: LifecycleEvent,
    pub data: Value,
}

/// Where events go: nowhere until a bus is chosen, then to the publisher task. Cheap to clone
/// into every slot's circuit observer.
#[derive(Clone, Default)]
pub(crate) struct Emitter(Arc<OnceLock<mpsc::UnboundedSender<Emitted>>>);

impl Emitter {
    pub fn emit(&self, tenant: &TenantId, index: usize, event: LifecycleEvent, data: Value) {
        if let Some(tx) = self.0.get() {
            let _ = tx.send(Emitted {
                tenant: tenant.clone(),
                index,
                event,
                data,
            });
        }
    }

    /// Turns emission on; answers the receiving end, or `None` if it was already on.
    pub fn enable(&self) -> Option<mpsc::UnboundedReceiver<Emitted>> {
        let (tx, rx) = mpsc::unbounded_channel();
        self.0.set(tx).ok().map(|()| rx)
    }
}

/// The CloudEvent for one lifecycle event of provider `domain/name`.
pub(crate) fn cloud_event(domain: &str, name: &str, emitted: &Emitted) -> Event {
    let provider = format!("{domain}/{name}");
    let mut data = json!({
        "tenant_id": emitted.tenant.as_str(),
        "provider": provider,
        "event": emitted.event.as_str(),
    });
    if let (Some(data), Some(extra)) = (data.as_object_mut(), emitted.data.as_object()) {
        data.extend(extra.clone());
    }
    Event::new(
        &emitted.event.cloud_event_type(),
        &format!("/providers/{provider}"),
        &emitted.event.topic(domain, name),
        data,
    )
    .with_subject(provider)
    .with_key(format!("{domain}/{name}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topics_and_types_follow_the_published_pattern() {
        assert_eq!(
            LifecycleEvent::CircuitOpened.topic("db", "postgres"),
            "provider.events.db.postgres.circuit_opened"
        );
        assert_eq!(
            LifecycleEvent::HealthChanged.cloud_event_type(),
            "switchyard.provider.health_changed"
        );
    }

    #[test]
    fn nothing_is_queued_until_a_bus_is_chosen() {
        let emitter = Emitter::default();
        let tenant = TenantId::parse("acme").unwrap();
        emitter.emit(&tenant, 0, LifecycleEvent::Started, json!({}));
        let mut rx = emitter.enable().expect("first enable");
        assert!(emitter.enable().is_none(), "enabled once only");
        assert!(rx.try_recv().is_err(), "the early event was not kept");
        emitter.emit(&tenant, 3, LifecycleEvent::Stopped, json!({}));
        let got = rx.try_recv().unwrap();
        assert_eq!((got.index, got.event), (3, LifecycleEvent::Stopped));
    }
}
