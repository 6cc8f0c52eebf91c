//! The ai engines: local, always, and openai when the run names an OpenAI-compatible server
//! (`SWITCHYARD_TEST_OPENAI_URL`, see providers/ai/tests/support/server.rs), under an operator
//! who opens loopback, where such a server usually listens. Without one, ai/openai is not
//! enrolled here; its own tests (providers/ai/tests/openai.rs) report themselves skipped.

#[path = "../../../../providers/ai/tests/support/server.rs"]
mod server;

use std::sync::Arc;

use switchyard_conformance::Subject;
use switchyard_conformance::ai::Fixture;
use switchyard_provider_ai::{LocalAiFactory, OpenAiFactory};
use switchyard_spi::tenancy::EgressCeiling;

use crate::Enrolled;

pub fn enrolled() -> Vec<Enrolled> {
    let mut engines = vec![Enrolled::new("ai/local", || async {
        Subject::new(Arc::new(LocalAiFactory::new())).providing("hashed_ngrams")
    })];
    let server_named =
        std::env::var("SWITCHYARD_TEST_OPENAI_URL").is_ok_and(|url| !url.trim().is_empty());
    if server_named {
        engines.push(Enrolled::new("ai/openai", || async { openai() }));
    }
    engines
}

fn openai() -> Subject {
    let loopback = EgressCeiling {
        allowed_networks: ["127.0.0.0/8", "::1/128"]
            .map(|network| network.parse().expect("a network"))
            .to_vec(),
        allowed_ports: Vec::new(),
    };
    Subject::new(Arc::new(OpenAiFactory::new().with_egress(&loopback))).with_fixture(Fixture {
        config: server::config(),
    })
}
