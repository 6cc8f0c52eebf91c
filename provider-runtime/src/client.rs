//! The provider client in process: business services running next to the runtime, and the
//! in-tree providers that compose a tenant's other providers, call it without a network hop,
//! through the same schema checks, lifecycle and resilience as a call from the gateway.

use std::sync::{Arc, Weak};

use async_trait::async_trait;
use serde_json::Value;
use switchyard_client::{ProviderClient, SERVICES, ValueStream, provider_route};
use switchyard_contracts::{ErrorCode, Problem, TenantId};
use switchyard_spi::CallContext;

use crate::Runtime;

/// How a client's subject names the hosted service it acts for (`service:ledger`). Only
/// in-process code makes a `RuntimeClient`, so the prefix is the runtime's word, never a
/// request's; its calls carry the service in [`CallContext::service`].
pub const SERVICE_SUBJECT: &str = "service:";

/// How a client's subject names the provider instance it was handed to
/// (`provider:integration/shopify`). Its calls are the tenant's own: they carry no service.
pub const PROVIDER_SUBJECT: &str = "provider:";

/// A [`ProviderClient`] for one tenant, calling the runtime directly.
pub struct RuntimeClient {
    runtime: Reach,
    tenant: TenantId,
    subject: String,
    /// Whose call a service's client serves ([`ProviderClient::caller`]).
    caller: Option<String>,
}

/// How a client holds the runtime. A service's client lives for one call and holds it; a
/// provider's lives inside an instance the runtime itself holds, so it holds it weakly: a
/// strong one would be a cycle keeping the runtime and every instance alive for ever.
enum Reach {
    Held(Arc<Runtime>),
    Weak(Weak<Runtime>),
}

impl RuntimeClient {
    /// `subject` names the service making the calls (`service:ledger`), as a gateway call
    /// names its caller; providers see it in the call context.
    pub fn new(runtime: Arc<Runtime>, tenant: TenantId, subject: impl Into<String>) -> Self {
        RuntimeClient {
            runtime: Reach::Held(runtime),
            tenant,
            subject: subject.into(),
            caller: None,
        }
    }

    /// This client serving the call of `caller` (the subject of the call that reached the
    /// service), which the service reads as [`ProviderClient::caller`].
    pub fn serving(mut self, caller: Option<String>) -> Self {
        self.caller = caller;
        self
    }

    /// The client the runtime hands to `provider`'s (`<domain>/<name>`) instance for `tenant`
    /// ([`switchyard_spi::StartContext::client`]): subject `provider:<domain>/<name>`, no
    /// service, so what it writes lands where the tenant's own calls write.
    pub fn for_provider(runtime: &Arc<Runtime>, tenant: TenantId, provider: &str) -> Self {
        RuntimeClient {
            runtime: Reach::Weak(Arc::downgrade(runtime)),
            tenant,
            subject: format!("{PROVIDER_SUBJECT}{provider}"),
            caller: None,
        }
    }

    fn runtime(&self) -> Result<Arc<Runtime>, Problem> {
        match &self.runtime {
            Reach::Held(runtime) => Ok(runtime.clone()),
            Reach::Weak(runtime) => runtime.upgrade().ok_or_else(|| {
                Problem::new(ErrorCode::ProviderUnavailable, "the runtime has shut down")
            }),
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
        let runtime = self.runtime()?;
        let ctx = self.context();
        if domain == SERVICES {
            return runtime.invoke_service(&ctx, name, action, params).await;
        }
        runtime
            .invoke(&ctx, domain, name, action, params, None)
            .await
    }

    async fn describe(&self, provider: &str) -> Result<Value, Problem> {
        let (domain, name) = provider_route(provider)?;
        self.runtime()?.describe(&self.tenant, domain, name).await
    }

    fn caller(&self) -> Option<&str> {
        self.caller.as_deref()
    }

    async fn stream(
        &self,
        provider: &str,
        action: &str,
        params: Value,
    ) -> Result<ValueStream, Problem> {
        let (domain, name) = provider_route(provider)?;
        if domain == SERVICES {
            return Err(Problem::new(
                ErrorCode::ActionNotFound,
                format!("services do not stream; call {provider}/{action}"),
            ));
        }
        let runtime = self.runtime()?;
        runtime
            .stream(&self.context(), domain, name, action, params)
            .await
    }
}

impl RuntimeClient {
    /// The context of one call: this client's tenant and subject, a new request id.
    fn context(&self) -> CallContext {
        CallContext {
            tenant: self.tenant.clone(),
            request_id: uuid::Uuid::now_v7().to_string(),
            subject: Some(self.subject.clone()),
            service: self
                .subject
                .strip_prefix(SERVICE_SUBJECT)
                .map(str::to_owned),
        }
    }
}
