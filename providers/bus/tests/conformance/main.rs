//! Conformance suite of the `bus` domain.
//!
//! Every test runs against every engine listed in [`engines`], through the test kit's
//! [`Harness`], so params and results are checked against the published contract exactly as
//! the runtime checks them. Behaviour an engine may lack is gated on the capability it
//! declares (`ordering`, `consumer_groups`, `replay`, `durable`); everything else is required.
//!
//! Enrolling an engine is one line in [`engines`] plus a constructor like [`embedded`].

mod commit;
mod durability;
mod poll;
mod publish;
mod replay;
mod tenancy;

use std::any::Any;
use std::sync::Arc;

use serde_json::{Value, json};
use switchyard_provider_bus::EmbeddedBusFactory;
use switchyard_spi::ProviderFactory;
use switchyard_spi::testkit::{Harness, TenantInstance};

/// Every engine the suite checks.
fn engines() -> Vec<Engine> {
    vec![embedded()]
}

fn embedded() -> Engine {
    let dir = tempfile::tempdir().expect("temp dir for bus/embedded");
    let root = dir.path().to_path_buf();
    Engine {
        name: "bus/embedded",
        open: Box::new(move || Arc::new(EmbeddedBusFactory::new(root.clone()))),
        _storage: Box::new(dir),
    }
}

/// An enrolled engine with its own fresh storage.
struct Engine {
    name: &'static str,
    /// Builds a new factory over this engine's storage. Calling it twice models a process
    /// restart: the second factory must find what the first one acknowledged.
    open: Box<dyn Fn() -> Arc<dyn ProviderFactory>>,
    /// Whatever keeps the storage alive for the test's duration (a temp dir, a container).
    _storage: Box<dyn Any>,
}

impl Engine {
    fn harness(&self) -> Harness {
        Harness::new((self.open)())
    }
}

/// Publishes one message per payload, in one batch, and returns the offsets.
async fn publish(tenant: &TenantInstance, topic: &str, payloads: &[Value]) -> Vec<u64> {
    let messages: Vec<Value> = payloads.iter().map(|p| json!({"payload": p})).collect();
    let result = tenant
        .ok("publish", json!({"topic": topic, "messages": messages}))
        .await;
    offsets_of(&result["offsets"])
}

fn offsets_of(values: &Value) -> Vec<u64> {
    values
        .as_array()
        .expect("an array of offsets")
        .iter()
        .map(|o| o.as_u64().expect("an offset"))
        .collect()
}

/// The offsets of a poll or replay result's records.
fn record_offsets(result: &Value) -> Vec<u64> {
    result["records"]
        .as_array()
        .expect("records")
        .iter()
        .map(|r| r["offset"].as_u64().expect("an offset"))
        .collect()
}

/// The payloads of a poll or replay result's records.
fn payloads(result: &Value) -> Vec<Value> {
    result["records"]
        .as_array()
        .expect("records")
        .iter()
        .map(|r| r["payload"].clone())
        .collect()
}
