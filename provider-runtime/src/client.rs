//! The provider client in process: business services running next to the runtime call it
//! without a network hop, through the same schema checks, lifecycle and resilience as a call
//! from the gateway.

use std::sync::Arc;

use async_trait::async_trait;
use serde_json::Value;
use switchyard_client::{ProviderClient, SERVICES, provider_route};
use switchyard_contracts::{Problem, TenantId};
use switchyard_spi::CallContext;

use crate::Runtime;

/// How a client's subject names the hosted service it acts for (`service:ledger`). Only
/// in-process code makes a `RuntimeClient`, so the prefix is the runtime's word, never a
/// request's; its calls carry the service in [`CallContext::service`].
pub const SERVICE_SUBJECT: &str = "service:";

/// A [`ProviderClient`] for one tenant, calling the runtime directly.
pub struct RuntimeClient {
    runtime: Arc<Runtime>,
    tenant: TenantId,
    subject: String,
}

impl RuntimeClient {
    /// `subject` names the service making the calls (`service:ledger`), as a gateway call
    /// names its caller; providers see it in the call context.
    pub fn new(runtime: Arc<Runtime>, tenant: TenantId, subject: impl Into<String>) -> Self {
        RuntimeClient {
            runtime,
            tenant,
            subject: subject.into(),
        }
    }
}

#[async_trait]
impl ProviderClient for RuntimeClient {
    fn tenant(&self) -> &TenantId {
        &self.tenant
    }

    async fn invoke(&self, provider: &str, action: &str, params: Value) -> Result<Value, Problem> {
        let (domain, name) = provider_route(provider)?;
        let ctx = CallContext {
            tenant: self.tenant.clone(),
            request_id: uuid::Uuid::now_v7().to_string(),
            subject: Some(self.subject.clone()),
            service: self
                .subject
                .strip_prefix(SERVICE_SUBJECT)
                .map(str::to_owned),
        };
        if domain == SERVICES {
            return self
                .runtime
                .invoke_service(&ctx, name, action, params)
                .await;
        }
        self.runtime
            .invoke(&ctx, domain, name, action, params, None)
            .await
    }

    async fn describe(&self, provider: &str) -> Result<Value, Problem> {
        let (domain, name) = provider_route(provider)?;
        self.runtime.describe(&self.tenant, domain, name).await
    }
}
