//! Business services: domain logic served under `/services/{name}/{action}`, composed only
//! from providers through a [`ProviderClient`].
//!
//! A service is handed a client already bound to the caller's tenant, so it has no way to name
//! another tenant, and it holds no driver: everything it stores goes through a db provider.

use async_trait::async_trait;
use serde_json::Value;
use switchyard_contracts::Problem;
pub use switchyard_contracts::ServiceDescriptor;

use crate::ProviderClient;

#[async_trait]
pub trait Service: Send + Sync {
    fn descriptor(&self) -> &ServiceDescriptor;

    /// Runs `action` for the client's tenant. `params` have passed the action's params schema;
    /// the answer must match its result schema.
    async fn invoke(
        &self,
        client: &dyn ProviderClient,
        action: &str,
        params: Value,
    ) -> Result<Value, Problem>;
}
