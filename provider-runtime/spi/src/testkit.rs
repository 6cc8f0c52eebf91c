//! Shared helpers for the per-domain conformance suites.
//!
//! [`Harness::call`] behaves like the runtime around a provider: params are checked against the
//! action's schema first (a violation comes back as params_invalid), and every successful
//! result is checked against the action's result schema, so an engine that answers off-contract
//! fails its suite.

use std::sync::Arc;

use serde_json::Value;
use switchyard_contracts::ActionValidators;

use crate::{
    CallContext, Invocation, Provider, ProviderError, ProviderFactory, StartContext, TenantId,
};

/// One engine enrolled in a conformance suite.
pub struct Harness {
    pub factory: Arc<dyn ProviderFactory>,
    /// Put before every tenant name, so checks run against a long-lived provider (the
    /// `switchyard conformance` command, a remote service) never meet an earlier run's data.
    tenant_prefix: String,
}

/// A started instance for one tenant.
pub struct TenantInstance {
    pub tenant: TenantId,
    pub provider: Arc<dyn Provider>,
    factory: Arc<dyn ProviderFactory>,
}

impl Harness {
    pub fn new(factory: Arc<dyn ProviderFactory>) -> Self {
        Harness {
            factory,
            tenant_prefix: String::new(),
        }
    }

    /// Tenants of this harness are `<prefix>-<name>`.
    pub fn with_tenant_prefix(mut self, prefix: &str) -> Self {
        self.tenant_prefix = format!("{prefix}-");
        self
    }

    /// A harness over `factory` whose tenants have this one's names (the same tenants after a
    /// restart of the provider's process).
    pub fn with_factory(&self, factory: Arc<dyn ProviderFactory>) -> Self {
        Harness {
            factory,
            tenant_prefix: self.tenant_prefix.clone(),
        }
    }

    /// The tenant id a check's `name` stands for here (`<prefix>-<name>` under a prefix), for
    /// checks that write it into what they send (a token's `tenant` claim).
    pub fn tenant_name(&self, name: &str) -> String {
        format!("{}{name}", self.tenant_prefix)
    }

    pub fn has_capability(&self, capability: &str) -> bool {
        self.factory.descriptor().has_capability(capability)
    }

    /// Starts the tenant's instance with an empty config.
    pub async fn tenant(&self, tenant: &str) -> TenantInstance {
        self.tenant_with_config(tenant, Value::Object(Default::default()))
            .await
    }

    pub async fn tenant_with_config(&self, tenant: &str, config: Value) -> TenantInstance {
        self.start(tenant, config, None).await
    }

    /// Starts the tenant's instance with `client` as its [`StartContext::client`], as the
    /// runtime starts an in-process engine: for checks of a provider that composes the
    /// tenant's other providers (an integration sync writing into a db table).
    pub async fn tenant_with_client(
        &self,
        tenant: &str,
        config: Value,
        client: Arc<dyn switchyard_client::ProviderClient>,
    ) -> TenantInstance {
        self.start(tenant, config, Some(client)).await
    }

    async fn start(
        &self,
        tenant: &str,
        config: Value,
        client: Option<Arc<dyn switchyard_client::ProviderClient>>,
    ) -> TenantInstance {
        let tenant = TenantId::parse(&self.tenant_name(tenant)).expect("test tenant id is valid");
        let provider = self
            .factory
            .start(StartContext {
                tenant: tenant.clone(),
                config,
                client,
            })
            .await
            .expect("provider starts");
        TenantInstance {
            tenant,
            provider,
            factory: self.factory.clone(),
        }
    }
}

impl TenantInstance {
    pub fn context(&self) -> CallContext {
        CallContext {
            tenant: self.tenant.clone(),
            request_id: "conformance".into(),
            subject: None,
            service: None,
        }
    }

    /// Calls an action as the runtime would: schema-checked params in, schema-checked result out.
    pub async fn call(&self, action: &str, params: Value) -> Result<Value, ProviderError> {
        self.call_with_payload(action, params, None).await
    }

    pub async fn call_with_payload(
        &self,
        action: &str,
        params: Value,
        payload: Option<bytes::Bytes>,
    ) -> Result<Value, ProviderError> {
        let descriptor = self.factory.descriptor();
        let provider_name = format!("{}/{}", descriptor.domain, descriptor.name);
        let action_descriptor = descriptor
            .action(action)
            .unwrap_or_else(|| panic!("{provider_name} has no action {action}"));
        let validators = ActionValidators::compile(&provider_name, action_descriptor)
            .expect("action schemas compile");
        let errors = validators.params.check(&params);
        if !errors.is_empty() {
            return Err(ProviderError {
                errors,
                ..ProviderError::new(crate::ErrorCode::ParamsInvalid, "params violate the schema")
            });
        }
        let call = Invocation {
            action: action.to_owned(),
            params,
            payload,
        };
        let result = self.provider.invoke(&self.context(), call).await?;
        let violations = validators.result.check(&result);
        assert!(
            violations.is_empty(),
            "{provider_name}/{action} answered off-contract: {violations:?}\nresult: {result}"
        );
        Ok(result)
    }

    /// Calls an action that must succeed.
    pub async fn ok(&self, action: &str, params: Value) -> Value {
        match self.call(action, params.clone()).await {
            Ok(v) => v,
            Err(e) => panic!("{action} {params} failed: {e:?}"),
        }
    }

    /// Calls an action that must fail, and returns its error.
    pub async fn err(&self, action: &str, params: Value) -> ProviderError {
        match self.call(action, params.clone()).await {
            Ok(v) => panic!("{action} {params} succeeded with {v}, expected an error"),
            Err(e) => e,
        }
    }
}
