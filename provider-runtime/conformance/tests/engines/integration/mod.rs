//! The integration engine, webhook, over a temp dir of its own per subject, under the egress
//! ceiling the suite's `fixture:loopback_egress` checks count on: loopback, where the suite's
//! receivers listen, and one private network a tenant may narrow to. A reopened subject is a
//! new factory over the same files: a process restart.

use std::sync::Arc;

use switchyard_conformance::Subject;
use switchyard_conformance::integration::Fixture;
use switchyard_provider_integration::WebhookFactory;
use switchyard_spi::ProviderFactory;
use switchyard_spi::tenancy::EgressCeiling;

use crate::Enrolled;

pub fn enrolled() -> Vec<Enrolled> {
    vec![Enrolled::new("integration/webhook", || async { webhook() })]
}

fn webhook() -> Subject {
    let dir = tempfile::tempdir().expect("temp dir for integration/webhook");
    let root = dir.path().to_path_buf();
    let fixture = Fixture {
        storage: Some(root.clone()),
    };
    let open = move || -> Arc<dyn ProviderFactory> {
        Arc::new(WebhookFactory::new(root.clone()).with_egress(&ceiling()))
    };
    Subject::new(open())
        .with_reopen(open)
        .with_fixture(fixture)
        .providing("loopback_egress")
        .keeping(dir)
}

/// The operator's egress ceiling in these tests: loopback, where the receivers listen, and
/// one private network a tenant may narrow to.
fn ceiling() -> EgressCeiling {
    EgressCeiling {
        allowed_networks: ["127.0.0.0/8", "::1/128", "10.20.0.0/16"]
            .map(|network| network.parse().expect("a network"))
            .to_vec(),
        allowed_ports: Vec::new(),
    }
}
