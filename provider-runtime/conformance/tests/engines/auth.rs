//! The auth engines: jwt, under an operator who opens loopback (where the checks' identity
//! providers listen), and opa, deciding with the product policies of `/policies` built and
//! loaded as the gateway would (revision `conformance`, and any other a check asks for).

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, LazyLock, Mutex, PoisonError};

use switchyard_conformance::Subject;
use switchyard_conformance::auth::{Deciding, Fixture};
use switchyard_policy::{Bundle, PolicyEngine, build_bundle};
use switchyard_provider_auth::{JwtFactory, OpaFactory};
use switchyard_spi::ProviderFactory;
use switchyard_spi::tenancy::EgressCeiling;

use crate::Enrolled;

pub fn enrolled() -> Vec<Enrolled> {
    vec![
        Enrolled::new("auth/jwt", || async { jwt() }),
        Enrolled::new("auth/opa", || async { opa() }),
    ]
}

fn jwt() -> Subject {
    let loopback = EgressCeiling {
        allowed_networks: vec!["127.0.0.0/8".parse().expect("a network")],
        allowed_ports: Vec::new(),
    };
    Subject::new(Arc::new(JwtFactory::new().with_egress(&loopback))).providing("loopback_egress")
}

fn opa() -> Subject {
    let deciding: Deciding = Arc::new(|running: Arc<Mutex<Option<String>>>| {
        let source = move || {
            let revision = running
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .clone();
            revision.map(|revision| product_policy(&revision))
        };
        Arc::new(OpaFactory::new(Arc::new(source))) as Arc<dyn ProviderFactory>
    });
    let product = Arc::new(Mutex::new(Some("conformance".to_owned())));
    Subject::new(deciding(product))
        .with_fixture(Fixture {
            policy: Some(deciding),
            ..Fixture::default()
        })
        .providing("policy")
}

/// The product policies of `/policies` at `revision`, built and loaded as the gateway would.
/// Loading a bundle runs its Rego tests, so each revision is built once per run.
fn product_policy(revision: &str) -> Arc<PolicyEngine> {
    static BUILT: LazyLock<Mutex<HashMap<String, Arc<PolicyEngine>>>> =
        LazyLock::new(Default::default);
    let mut built = BUILT.lock().unwrap_or_else(PoisonError::into_inner);
    built
        .entry(revision.to_owned())
        .or_insert_with(|| {
            let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../policies");
            let bytes = build_bundle(&source, revision, None).expect("the product policies build");
            let bundle = Bundle::load(bytes, None).expect("the product bundle loads");
            Arc::new(PolicyEngine::new(bundle).expect("the product bundle decides"))
        })
        .clone()
}
