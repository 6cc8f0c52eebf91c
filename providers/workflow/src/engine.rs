//! What every workflow engine's tenant instance shares: answering the domain's actions
//! ([`Engine`], served to the runtime by [`Instance`]).

use async_trait::async_trait;
use serde_json::Value;
use switchyard_spi::{
    CallContext, Describe, ErrorCode, Health, Invocation, Provider, ProviderError, parse_params,
    probe_health, to_result,
};

use crate::contract::{
    Cancelled, Delivered, InstanceRef, ListParams, Listed, Queried, SignalParams, StartParams,
    Started, Steps,
};

/// One tenant's instance of a workflow engine. Every action acts on the tenant's own
/// instances only: the engine namespaces ids by tenant ([`crate::instance_key`]).
#[async_trait]
pub(crate) trait Engine: Send + Sync + 'static {
    /// The engine's name under `workflow/`.
    const NAME: &'static str;

    async fn launch(&self, p: StartParams) -> Result<Started, ProviderError>;
    async fn signal(&self, p: SignalParams) -> Result<Delivered, ProviderError>;
    async fn query(&self, p: InstanceRef) -> Result<Queried, ProviderError>;
    async fn cancel(&self, p: InstanceRef) -> Result<Cancelled, ProviderError>;
    async fn list(&self, p: ListParams) -> Result<Listed, ProviderError>;
    async fn steps(&self, p: InstanceRef) -> Result<Steps, ProviderError>;
    /// What health shows of the engine's server: its detail when up, or the error.
    async fn probe(&self) -> Result<Option<String>, ProviderError>;
}

/// The descriptor of engine `workflow/<name>`, at this crate's version, with every action.
pub(crate) fn describe(name: &str) -> Describe {
    Describe::new("workflow", name, env!("CARGO_PKG_VERSION"))
}

/// An [`Engine`] as the runtime calls it.
pub(crate) struct Instance<E>(pub E);

#[async_trait]
impl<E: Engine> Provider for Instance<E> {
    async fn invoke(&self, _ctx: &CallContext, call: Invocation) -> Result<Value, ProviderError> {
        let engine = &self.0;
        match call.action.as_str() {
            "launch" => to_result(engine.launch(parse_params(call.params)?).await?),
            "signal" => to_result(engine.signal(parse_params(call.params)?).await?),
            "query" => to_result(engine.query(parse_params(call.params)?).await?),
            "cancel" => to_result(engine.cancel(parse_params(call.params)?).await?),
            "list" => to_result(engine.list(parse_params(call.params)?).await?),
            "steps" => to_result(engine.steps(parse_params(call.params)?).await?),
            other => Err(ProviderError::new(
                ErrorCode::ActionNotFound,
                format!("workflow/{} has no action {other}", E::NAME),
            )),
        }
    }

    async fn health(&self) -> Health {
        probe_health(E::NAME, self.0.probe().await)
    }
}
