//! The auth conformance suite. Engines of the `auth` domain serve different parts of it, so
//! they are enrolled per action set: [`token_engines`] (verify, introspect) and
//! [`policy_engines`] (evaluate). Every engine of a set must pass every test of its actions,
//! unchanged.

use std::path::Path;
use std::sync::{Arc, LazyLock};

use serde_json::{Value, json};
use switchyard_policy::{Bundle, PolicyEngine, build_bundle};
use switchyard_provider_auth::{JwtFactory, OpaFactory, PolicySource};
use switchyard_spi::tenancy::EgressCeiling;
use switchyard_spi::testkit::{Harness, TenantInstance};

mod evaluate;
mod idp;
mod introspect;
mod tenancy;
mod verify;

use idp::Idp;

/// An engine serving `verify` and `introspect`.
pub struct TokenEngine {
    pub name: &'static str,
    pub harness: Harness,
    /// The tenant config that makes the engine trust `idp`; engines spell it their own way.
    pub trusting: fn(&Idp) -> Value,
}

impl TokenEngine {
    /// `tenant`'s instance, configured to trust `idp`.
    pub async fn trusting_idp(&self, tenant: &str, idp: &Idp) -> TenantInstance {
        self.harness
            .tenant_with_config(tenant, (self.trusting)(idp))
            .await
    }
}

fn token_engines() -> Vec<TokenEngine> {
    vec![TokenEngine {
        name: "auth/jwt",
        // The operator of these tests opens loopback, where the test identity providers listen.
        harness: Harness::new(Arc::new(JwtFactory::new().with_egress(&EgressCeiling {
            allowed_networks: vec!["127.0.0.0/8".parse().unwrap()],
            allowed_ports: Vec::new(),
        }))),
        trusting: |idp| json!({"issuer": idp.issuer, "audience": idp.audience, "jwks_url": idp.jwks_url}),
    }]
}

/// Every engine serving `evaluate`, each deciding with whatever `source` holds.
fn policy_engines(source: PolicySource) -> Vec<(&'static str, Harness)> {
    vec![("auth/opa", Harness::new(Arc::new(OpaFactory::new(source))))]
}

/// The product policies of `/policies`, built and loaded as the gateway would.
fn policy(revision: &str) -> Arc<PolicyEngine> {
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../policies");
    let bytes = build_bundle(&source, revision, None).expect("the product policies build");
    let bundle = Bundle::load(bytes, None).expect("the product bundle loads");
    Arc::new(PolicyEngine::new(bundle).expect("the product bundle decides"))
}

/// Loading a bundle runs its Rego tests, so the suite loads the product bundle once.
static PRODUCT_POLICY: LazyLock<Arc<PolicyEngine>> = LazyLock::new(|| policy("conformance"));

fn product_policy() -> PolicySource {
    Arc::new(|| Some(PRODUCT_POLICY.clone()))
}
