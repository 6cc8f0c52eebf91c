//! Auth providers: the gateway's own token verification and policy decisions, offered as
//! providers of the `auth` domain (`contracts/schemas/domains/auth.json`) so that business
//! services authenticate and authorize exactly as the gateway does, without their own copy.
//!
//! Each engine serves part of the domain: [`JwtFactory`] (`auth/jwt`) verifies and introspects
//! tokens, [`OpaFactory`] (`auth/opa`) evaluates the policy bundle. Both are proven by the suite
//! in the conformance kit (`provider-runtime/conformance/src/auth/`).

mod contract;
mod engine;
pub mod jwt;
pub mod opa;

use std::sync::Arc;

pub use jwt::JwtFactory;
pub use opa::{OpaFactory, PolicySource};
use switchyard_contracts::SchemaError;
use switchyard_spi::{Host, ProviderFactory};

/// The auth engines `switchyard` hosts: a new engine is its folder and one line here.
/// `auth/opa` evaluates `policy`, the bundle the gateway runs (none in a runtime-only process).
pub fn builtins(
    host: &Host,
    policy: PolicySource,
) -> Result<Vec<Arc<dyn ProviderFactory>>, SchemaError> {
    let mut engines = switchyard_spi::builtins(host, &[jwt::builtin])?;
    engines.push(Arc::new(OpaFactory::new(policy)));
    Ok(engines)
}
