//! What every bus engine's tenant instance shares: answering the domain's actions
//! ([`Engine`], served to the runtime by [`Instance`]).

use async_trait::async_trait;
use serde_json::Value;
use switchyard_spi::{
    CallContext, Describe, ErrorCode, Health, Invocation, Provider, ProviderError, parse_params,
    probe_health, to_result,
};

use crate::contract::{
    CommitParams, Committed, PollParams, PublishParams, Published, Records, ReplayParams,
};

/// One tenant's instance of a bus engine: the four actions, a health probe and stop.
/// Reading params, writing results and naming the engine are [`Instance`]'s.
#[async_trait]
pub(crate) trait Engine: Send + Sync + 'static {
    /// The engine's name under `bus/`, which errors name it by.
    const NAME: &'static str;
    /// What health calls the engine's dependency (`log`, `brokers`).
    const DEPENDENCY: &'static str;

    /// Appends the messages to the topic in order, all or none.
    async fn publish(&self, p: PublishParams) -> Result<Published, ProviderError>;
    async fn poll(&self, p: PollParams) -> Result<Records, ProviderError>;
    async fn commit(&self, p: CommitParams) -> Result<Committed, ProviderError>;
    async fn replay(&self, p: ReplayParams) -> Result<Records, ProviderError>;
    /// Whether the dependency answers; the error's detail is what health shows.
    async fn probe(&self) -> Result<(), ProviderError>;
    /// See [`Provider::stop`].
    async fn stop(&self) {}
}

/// The descriptor of engine `bus/<name>`, at this crate's version, with every action.
pub(crate) fn describe(name: &str) -> Describe {
    Describe::new("bus", name, env!("CARGO_PKG_VERSION"))
}

/// An [`Engine`] as the runtime calls it (a wrapper, because `Provider` is another crate's
/// trait and cannot be implemented for every `Engine` directly).
pub(crate) struct Instance<E>(pub E);

#[async_trait]
impl<E: Engine> Provider for Instance<E> {
    async fn invoke(&self, _ctx: &CallContext, call: Invocation) -> Result<Value, ProviderError> {
        let engine = &self.0;
        match call.action.as_str() {
            "publish" => to_result(engine.publish(parse_params(call.params)?).await?),
            "poll" => to_result(engine.poll(parse_params(call.params)?).await?),
            "commit" => to_result(engine.commit(parse_params(call.params)?).await?),
            "replay" => to_result(engine.replay(parse_params(call.params)?).await?),
            other => Err(ProviderError::new(
                ErrorCode::ActionNotFound,
                format!("bus/{} has no action {other:?}", E::NAME),
            )),
        }
    }

    async fn health(&self) -> Health {
        probe_health(E::DEPENDENCY, self.0.probe().await.map(|()| None))
    }

    async fn stop(&self) {
        self.0.stop().await;
    }
}
