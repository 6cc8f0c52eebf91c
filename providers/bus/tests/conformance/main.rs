//! Conformance suite of the `bus` domain.
//!
//! Every test runs against every engine listed in [`engines`], through the test kit's
//! [`Harness`], so params and results are checked against the published contract exactly as
//! the runtime checks them. Behaviour an engine may lack is gated on the capability it
//! declares (`ordering`, `consumer_groups`, `replay`, `durable`); everything else is required.
//!
//! Enrolling an engine is one line in [`engines`] plus a constructor like [`embedded`].
//!
//! `bus/kafka` runs against the broker at `SWITCHYARD_TEST_KAFKA_BROKERS` (scripts/test starts
//! a tansu broker and sets it); every engine instance gets a namespace of its own there, so
//! tests never see each other's topics. Without the variable every test fails, naming it.

mod commit;
mod dead_letter;
mod durability;
mod poll;
mod publish;
mod replay;
mod tenancy;

use std::any::Any;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};
use switchyard_provider_bus::{EmbeddedBusFactory, KafkaFactory, KafkaSettings};
use switchyard_spi::ProviderFactory;
use switchyard_spi::testkit::{Harness, TenantInstance};

/// Every engine the suite checks.
fn engines() -> Vec<Engine> {
    vec![embedded(), kafka()]
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

fn kafka() -> Engine {
    let brokers = std::env::var("SWITCHYARD_TEST_KAFKA_BROKERS").expect(
        "SWITCHYARD_TEST_KAFKA_BROKERS is not set: run the tests with scripts/test (it starts a \
         tansu broker and sets it) or set it to a Kafka-protocol broker, e.g. 127.0.0.1:59092",
    );
    let settings = KafkaSettings::new(brokers).with_namespace(unique_namespace());
    Engine {
        name: "bus/kafka",
        open: Box::new(move || {
            Arc::new(KafkaFactory::new(settings.clone()).expect("bus/kafka settings are valid"))
        }),
        // The records live on the broker, under the namespace; nothing to keep alive here.
        _storage: Box::new(()),
    }
}

/// A namespace no other engine of this or any concurrent run uses.
fn unique_namespace() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    format!("sytest-{}-{nanos}-{n}", std::process::id())
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
