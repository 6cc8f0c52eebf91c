//! Policy as code for Switchyard.
//!
//! Rego policies (`policies/switchyard/*.rego`, data in `policies/data.json`) are built into an
//! OPA bundle ([`build_bundle`]), optionally signed, and loaded by the gateway ([`Bundle::load`])
//! only after the signature, the manifest, compilation and the bundle's own `test_*` rules all
//! check out. [`PolicyEngine::decide`] then answers `data.switchyard.authz.decision` per request.
//!
//! Evaluation uses [regorus](https://github.com/microsoft/regorus), an embedded Rego interpreter,
//! so no OPA sidecar sits on the request path; bundles stay compatible with OPA's format so they
//! can also be inspected with `opa`.

mod archive;
mod bundle;
mod engine;
mod error;
mod reads;
mod rego;
mod signature;

pub use bundle::{Bundle, build_bundle, run_tests};
pub use engine::{
    DECISION_RULE, DEFAULT_CACHE_ENTRIES, Decided, Decision, MAX_CACHED_KEY_BYTES, PolicyEngine,
};
pub use error::{PolicyError, SignatureError};
pub use reads::ReadSet;
pub use rego::TestReport;
pub use signature::{SigningKey, VerificationKey};
