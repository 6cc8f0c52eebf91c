//! What every cache engine's tenant instance shares: answering the domain's actions
//! ([`Engine`], served to the runtime by [`Instance`]).

use async_trait::async_trait;
use serde_json::Value;
use switchyard_spi::{
    CallContext, Describe, ErrorCode, Health, Invocation, Provider, ProviderError, parse_params,
    probe_health, to_result,
};

use crate::contract::{
    DeletePrefixResult, DeleteResult, Entry, IncrParams, IncrResult, KeyParams, MgetParams,
    MgetResult, MsetParams, MsetResult, PrefixParams, SetParams, SetResult,
};

/// One tenant's instance of a cache engine: the seven actions, a health probe and stop.
/// Reading params, writing results and naming the engine are [`Instance`]'s.
#[async_trait]
pub(crate) trait Engine: Send + Sync + 'static {
    /// The engine's name under `cache/`, which errors and health name it by.
    const NAME: &'static str;

    async fn get(&self, p: KeyParams) -> Result<Entry, ProviderError>;
    async fn set(&self, p: SetParams) -> Result<SetResult, ProviderError>;
    async fn delete(&self, p: KeyParams) -> Result<DeleteResult, ProviderError>;
    /// Answers in the order the keys were asked.
    async fn mget(&self, p: MgetParams) -> Result<MgetResult, ProviderError>;
    /// Stores all of the entries or, if any is refused, none of them.
    async fn mset(&self, p: MsetParams) -> Result<MsetResult, ProviderError>;
    async fn incr(&self, p: IncrParams) -> Result<IncrResult, ProviderError>;
    async fn delete_prefix(&self, p: PrefixParams) -> Result<DeletePrefixResult, ProviderError>;
    /// What health shows of the engine's dependency: its detail when up, or the error.
    async fn probe(&self) -> Result<Option<String>, ProviderError>;
    /// See [`Provider::stop`].
    async fn stop(&self) {}
}

/// The descriptor of engine `cache/<name>`, at this crate's version, with every action.
pub(crate) fn describe(name: &str) -> Describe {
    Describe::new("cache", name, env!("CARGO_PKG_VERSION"))
}

/// An [`Engine`] as the runtime calls it (a wrapper, because `Provider` is another crate's
/// trait and cannot be implemented for every `Engine` directly).
pub(crate) struct Instance<E>(pub E);

#[async_trait]
impl<E: Engine> Provider for Instance<E> {
    async fn invoke(&self, _ctx: &CallContext, call: Invocation) -> Result<Value, ProviderError> {
        let engine = &self.0;
        match call.action.as_str() {
            "get" => to_result(engine.get(parse_params(call.params)?).await?),
            "set" => to_result(engine.set(parse_params(call.params)?).await?),
            "delete" => to_result(engine.delete(parse_params(call.params)?).await?),
            "mget" => to_result(engine.mget(parse_params(call.params)?).await?),
            "mset" => to_result(engine.mset(parse_params(call.params)?).await?),
            "incr" => to_result(engine.incr(parse_params(call.params)?).await?),
            "delete_prefix" => to_result(engine.delete_prefix(parse_params(call.params)?).await?),
            other => Err(ProviderError::new(
                ErrorCode::ActionNotFound,
                format!("cache/{} has no action {other}", E::NAME),
            )),
        }
    }

    async fn health(&self) -> Health {
        probe_health(E::NAME, self.0.probe().await)
    }

    async fn stop(&self) {
        self.0.stop().await;
    }
}
