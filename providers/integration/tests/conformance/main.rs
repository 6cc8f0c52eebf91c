//! Conformance suite of the `integration` domain.
//!
//! Every test runs against every engine in [`engines`] through the test kit's [`Harness`], so
//! params and results are checked against the published contract as the runtime checks them.
//! Deliveries go to a real HTTP receiver on loopback ([`receiver`]) that verifies signatures
//! with an independent Standard Webhooks implementation. The suite's configs allowlist
//! `127.0.0.0/8` for that receiver; `ssrf.rs` checks what happens without it.
//!
//! Enrolling an engine is one line in [`engines`] plus a constructor like [`webhook`].

mod dead_letters;
mod idempotency;
mod receiver;
mod retries;
mod ssrf;
mod tenancy;
mod trigger;

use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};
use switchyard_provider_integration::WebhookFactory;
use switchyard_spi::ProviderFactory;
use switchyard_spi::tenancy::EgressCeiling;
use switchyard_spi::testkit::{Harness, TenantInstance};
use tempfile::TempDir;

/// Every engine the suite checks.
fn engines() -> Vec<Engine> {
    vec![webhook()]
}

fn webhook() -> Engine {
    let dir = tempfile::tempdir().expect("temp dir for integration/webhook");
    let root = dir.path().to_path_buf();
    Engine {
        name: "integration/webhook",
        open: Box::new(move || Arc::new(WebhookFactory::new(root.clone()).with_egress(&ceiling()))),
        storage: dir,
    }
}

/// The operator's egress ceiling in these tests: loopback, where the receivers listen, and
/// one private network a tenant may narrow to.
fn ceiling() -> EgressCeiling {
    EgressCeiling {
        allowed_networks: ["127.0.0.0/8", "::1/128", "10.20.0.0/16"]
            .map(|network| network.parse().unwrap())
            .to_vec(),
        allowed_ports: Vec::new(),
    }
}

/// An enrolled engine with its own fresh storage.
struct Engine {
    name: &'static str,
    /// Builds a new factory over this engine's storage; a second call models a restart.
    open: Box<dyn Fn() -> Arc<dyn ProviderFactory>>,
    storage: TempDir,
}

impl Engine {
    fn harness(&self) -> Harness {
        Harness::new((self.open)())
    }
}

/// A Standard Webhooks secret, as the runtime hands it over once the tenant's `secret://`
/// reference is resolved.
fn secret(seed: u8) -> String {
    format!("whsec_{}", STANDARD.encode([seed; 32]))
}

/// A config with one endpoint, `hook`, at `url`, loopback allowlisted and a fast budget:
/// 3 attempts, 10 ms first wait, 5 s in all. `changes` replace or add fields.
fn config(url: &str, secret: &str, changes: Value) -> Value {
    let mut config = json!({
        "endpoints": {"hook": {"url": url, "secret": secret}},
        "allowed_networks": ["127.0.0.0/8"],
        "max_attempts": 3,
        "initial_backoff_ms": 10,
        "max_backoff_ms": 50,
        "attempt_timeout_ms": 2000,
        "max_total_ms": 5000
    });
    if let (Some(config), Some(changes)) = (config.as_object_mut(), changes.as_object()) {
        config.extend(changes.clone());
    }
    config
}

/// Triggers `event_type` with `payload` at the endpoint `hook`.
async fn trigger(tenant: &TenantInstance, payload: Value) -> Value {
    tenant
        .ok(
            "trigger",
            json!({"endpoint": "hook", "event_type": "orders.order.created", "payload": payload}),
        )
        .await
}

/// The message ids of a tenant's dead letters, oldest first (one page of up to 100).
async fn dead_letter_ids(tenant: &TenantInstance) -> Vec<String> {
    let page = tenant.ok("dead_letters", json!({"limit": 100})).await;
    page["dead_letters"]
        .as_array()
        .expect("dead_letters")
        .iter()
        .map(|d| d["message_id"].as_str().expect("message_id").to_owned())
        .collect()
}
