//! Conformance suite of the `ai` domain. Engines serve different parts of it, so they are
//! enrolled per action: [`embedders`] (embed) and [`classifiers`] (classify). Every engine of
//! a list must pass every test of its action, unchanged; behaviour only some engines promise
//! is gated on the capability they declare (`deterministic`).
//!
//! `ai/openai` is enrolled when the tests were built with `SWITCHYARD_TEST_OPENAI_URL` (see
//! build.rs); its own tests, in `tests/openai.rs`, report themselves skipped without it.
//! `chat` has no engine that runs without a server, so it is tested there.

mod classify;
mod embed;
mod tenancy;

#[cfg(openai_server)]
#[path = "../support/server.rs"]
mod server;

use std::sync::Arc;

use serde_json::{Value, json};
use switchyard_provider_ai::LocalAiFactory;
use switchyard_spi::testkit::{Harness, TenantInstance};

/// An engine with the tenant config that makes it work.
struct Engine {
    name: &'static str,
    harness: Harness,
    config: Value,
}

impl Engine {
    async fn tenant(&self, tenant: &str) -> TenantInstance {
        self.harness
            .tenant_with_config(tenant, self.config.clone())
            .await
    }

    fn deterministic(&self) -> bool {
        self.harness.has_capability("deterministic")
    }
}

fn local() -> Engine {
    Engine {
        name: "ai/local",
        harness: Harness::new(Arc::new(LocalAiFactory::new())),
        config: json!({}),
    }
}

#[cfg(openai_server)]
fn openai() -> Engine {
    Engine {
        name: "ai/openai",
        // The operator of these tests opens loopback, where a local server usually listens.
        harness: Harness::new(Arc::new(
            switchyard_provider_ai::OpenAiFactory::new().with_egress(
                &switchyard_spi::tenancy::EgressCeiling {
                    allowed_networks: ["127.0.0.0/8", "::1/128"]
                        .map(|network| network.parse().unwrap())
                        .to_vec(),
                    allowed_ports: Vec::new(),
                },
            ),
        )),
        config: server::config(),
    }
}

/// Every engine serving `embed`.
fn embedders() -> Vec<Engine> {
    vec![
        local(),
        #[cfg(openai_server)]
        openai(),
    ]
}

/// Every engine serving `classify`.
fn classifiers() -> Vec<Engine> {
    vec![local()]
}

/// The vectors of an `embed` answer.
fn vectors(answer: &Value) -> Vec<Vec<f64>> {
    answer["vectors"]
        .as_array()
        .expect("vectors")
        .iter()
        .map(|v| {
            v.as_array()
                .expect("a vector")
                .iter()
                .map(|x| x.as_f64().expect("a number"))
                .collect()
        })
        .collect()
}

fn cosine(a: &[f64], b: &[f64]) -> f64 {
    let dot: f64 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let norm = |v: &[f64]| v.iter().map(|x| x * x).sum::<f64>().sqrt();
    dot / (norm(a) * norm(b))
}
