//! What every auth engine's tenant instance shares: answering the domain's actions ([`Engine`],
//! served to the runtime by [`Instance`]). An engine serves part of the domain: each action
//! has a default answering action_not_found, and the engine's descriptor lists the ones it
//! implements.

use async_trait::async_trait;
use serde_json::Value;
use switchyard_spi::{
    CallContext, Describe, ErrorCode, Health, Invocation, Provider, ProviderError, parse_params,
    probe_health, to_result,
};

use crate::contract::{
    EvaluateParams, EvaluateResult, IntrospectResult, TokenParams, VerifyResult,
};

/// One tenant's instance of an auth engine: the actions it offers, a health probe and stop.
#[async_trait]
pub(crate) trait Engine: Send + Sync + 'static {
    /// The engine's name under `auth/`, which errors name it by.
    const NAME: &'static str;
    /// What health calls the engine's dependency (`identity_provider`, `policy_bundle`).
    const DEPENDENCY: &'static str;

    async fn verify(&self, _p: TokenParams) -> Result<VerifyResult, ProviderError> {
        Err(no_action::<Self>("verify"))
    }
    async fn introspect(&self, _p: TokenParams) -> Result<IntrospectResult, ProviderError> {
        Err(no_action::<Self>("introspect"))
    }
    async fn evaluate(&self, _p: EvaluateParams) -> Result<EvaluateResult, ProviderError> {
        Err(no_action::<Self>("evaluate"))
    }
    /// What health shows of the engine's dependency: its detail when up, or the error.
    async fn probe(&self) -> Result<Option<String>, ProviderError>;
    /// See [`Provider::stop`].
    async fn stop(&self) {}
}

/// The descriptor of engine `auth/<name>`, at this crate's version, offering `actions`.
pub(crate) fn describe(name: &str, actions: &[&str]) -> Describe {
    Describe::new("auth", name, env!("CARGO_PKG_VERSION")).actions(actions)
}

fn no_action<E: Engine + ?Sized>(action: &str) -> ProviderError {
    ProviderError::new(
        ErrorCode::ActionNotFound,
        format!("auth/{} has no action {action}", E::NAME),
    )
}

/// An [`Engine`] as the runtime calls it (a wrapper, because `Provider` is another crate's
/// trait and cannot be implemented for every `Engine` directly).
pub(crate) struct Instance<E>(pub E);

#[async_trait]
impl<E: Engine> Provider for Instance<E> {
    async fn invoke(&self, _ctx: &CallContext, call: Invocation) -> Result<Value, ProviderError> {
        let engine = &self.0;
        match call.action.as_str() {
            "verify" => to_result(engine.verify(parse_params(call.params)?).await?),
            "introspect" => to_result(engine.introspect(parse_params(call.params)?).await?),
            "evaluate" => to_result(engine.evaluate(parse_params(call.params)?).await?),
            other => Err(no_action::<E>(other)),
        }
    }

    async fn health(&self) -> Health {
        probe_health(E::DEPENDENCY, self.0.probe().await)
    }

    async fn stop(&self) {
        self.0.stop().await;
    }
}
