//! Workflow providers: one module per engine, all serving the `workflow` domain contract
//! (`contracts/schemas/domains/workflow.json`). The workflow definitions themselves are code
//! in `business-services/workflows`; an engine here starts, signals, reads and cancels their
//! instances for one tenant, with instance ids namespaced by tenant.

mod contract;
mod engine;
pub mod restate;

use std::sync::Arc;

pub use restate::{RestateUrls, RestateWorkflowFactory};
use switchyard_contracts::SchemaError;
use switchyard_spi::{Host, ProviderFactory};

/// The workflow engines `switchyard` hosts: a new engine is its folder and one line here.
pub fn builtins(host: &Host) -> Result<Vec<Arc<dyn ProviderFactory>>, SchemaError> {
    switchyard_spi::builtins(host, &[restate::builtin])
}

/// The key an instance has in the engine: the tenant, `~`, the tenant's id. A tenant id never
/// holds `~` (a-z, 0-9, '-') and an instance id never does either (the contract's pattern),
/// so the first `~` splits them and no tenant can name another's instance.
pub fn instance_key(tenant: &str, id: &str) -> String {
    format!("{tenant}~{id}")
}

/// The tenant and the tenant's id of an instance key ([`instance_key`]).
pub fn split_instance_key(key: &str) -> Option<(&str, &str)> {
    key.split_once('~')
}
