//! What every integration engine's tenant instance shares: answering the domain's actions
//! ([`Engine`], served to the runtime by [`Instance`]).

use async_trait::async_trait;
use serde_json::Value;
use switchyard_spi::{
    CallContext, Describe, ErrorCode, Health, Invocation, Provider, ProviderError, parse_params,
    probe_health, to_result,
};

use crate::contract::{
    DeadLetterPage, DeadLettersParams, Delivery, RedeliverParams, TriggerParams,
};

/// One tenant's instance of an integration engine: the three actions, a health probe and
/// stop. The calls that send something get the call's context (its tenant and request id
/// are what the engine logs a failed delivery under).
#[async_trait]
pub(crate) trait Engine: Send + Sync + 'static {
    /// The engine's name under `integration/`, which errors name it by.
    const NAME: &'static str;
    /// What health calls the engine's dependency (`message_store`).
    const DEPENDENCY: &'static str;

    async fn trigger(&self, ctx: &CallContext, p: TriggerParams)
    -> Result<Delivery, ProviderError>;
    async fn dead_letters(&self, p: DeadLettersParams) -> Result<DeadLetterPage, ProviderError>;
    async fn redeliver(
        &self,
        ctx: &CallContext,
        p: RedeliverParams,
    ) -> Result<Delivery, ProviderError>;
    /// What health shows of the engine's dependency: its detail when up, or the error.
    async fn probe(&self) -> Result<Option<String>, ProviderError>;
    /// See [`Provider::stop`].
    async fn stop(&self) {}
}

/// The descriptor of engine `integration/<name>`, at this crate's version, with every action.
pub(crate) fn describe(name: &str) -> Describe {
    Describe::new("integration", name, env!("CARGO_PKG_VERSION"))
}

/// An [`Engine`] as the runtime calls it (a wrapper, because `Provider` is another crate's
/// trait and cannot be implemented for every `Engine` directly).
pub(crate) struct Instance<E>(pub E);

#[async_trait]
impl<E: Engine> Provider for Instance<E> {
    async fn invoke(&self, ctx: &CallContext, call: Invocation) -> Result<Value, ProviderError> {
        let engine = &self.0;
        match call.action.as_str() {
            "trigger" => to_result(engine.trigger(ctx, parse_params(call.params)?).await?),
            "dead_letters" => to_result(engine.dead_letters(parse_params(call.params)?).await?),
            "redeliver" => to_result(engine.redeliver(ctx, parse_params(call.params)?).await?),
            other => Err(ProviderError::new(
                ErrorCode::ActionNotFound,
                format!("integration/{} has no action {other:?}", E::NAME),
            )),
        }
    }

    async fn health(&self) -> Health {
        probe_health(E::DEPENDENCY, self.0.probe().await)
    }

    async fn stop(&self) {
        self.0.stop().await;
    }
}
