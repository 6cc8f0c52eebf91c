//! What every integration engine's tenant instance shares: answering the domain's actions
//! ([`Engine`], served to the runtime by [`Instance`]).
//!
//! The domain has three kinds of engine: `integration/webhook` sends (trigger, dead_letters,
//! redeliver), the connector engines (`crate::sync` over one `Connector` each) bring a
//! system's records in (discover, check, sync, remap, upsert, receive, state, reset), and the
//! command-style `integration/payments` runs one command per call (execute, check, receive;
//! ADR 0045). Each
//! kind implements the actions it serves; every other action keeps the default answer,
//! `action_not_found`, and the engine's descriptor lists only what it serves.

use async_trait::async_trait;
use serde_json::Value;
use switchyard_spi::{
    CallContext, Describe, ErrorCode, Health, Invocation, Provider, ProviderError, parse_params,
    probe_health, to_result,
};

use crate::contract::{
    Checked, DeadLetterPage, DeadLettersParams, Delivery, Discovered, ExecuteParams, Executed,
    ReceiveParams, ReceiveResult, RedeliverParams, RemapParams, Reset, ResetParams, Run,
    StateParams, States, SyncParams, TriggerParams, UpsertParams, UpsertResults,
};

/// One tenant's instance of an integration engine: the actions it serves, a health probe
/// and stop. The calls that send or write something get the call's context (its tenant and
/// request id are what the engine logs a failure under).
#[async_trait]
pub(crate) trait Engine: Send + Sync + 'static {
    /// The engine's name under `integration/`, which errors name it by.
    const NAME: &'static str;
    /// What health calls the engine's dependency (`message_store`).
    const DEPENDENCY: &'static str;

    async fn trigger(&self, _: &CallContext, _: TriggerParams) -> Result<Delivery, ProviderError> {
        Err(not_served(Self::NAME, "trigger"))
    }
    async fn dead_letters(&self, _: DeadLettersParams) -> Result<DeadLetterPage, ProviderError> {
        Err(not_served(Self::NAME, "dead_letters"))
    }
    async fn redeliver(
        &self,
        _: &CallContext,
        _: RedeliverParams,
    ) -> Result<Delivery, ProviderError> {
        Err(not_served(Self::NAME, "redeliver"))
    }
    async fn discover(&self) -> Result<Discovered, ProviderError> {
        Err(not_served(Self::NAME, "discover"))
    }
    async fn check(&self) -> Result<Checked, ProviderError> {
        Err(not_served(Self::NAME, "check"))
    }
    async fn sync(&self, _: &CallContext, _: SyncParams) -> Result<Run, ProviderError> {
        Err(not_served(Self::NAME, "sync"))
    }
    async fn remap(&self, _: &CallContext, _: RemapParams) -> Result<Run, ProviderError> {
        Err(not_served(Self::NAME, "remap"))
    }
    async fn upsert(
        &self,
        _: &CallContext,
        _: UpsertParams,
    ) -> Result<UpsertResults, ProviderError> {
        Err(not_served(Self::NAME, "upsert"))
    }
    /// `body` is the call's raw payload: the exact bytes the system signed.
    async fn receive(
        &self,
        _: &CallContext,
        _: ReceiveParams,
        _body: &[u8],
    ) -> Result<ReceiveResult, ProviderError> {
        Err(not_served(Self::NAME, "receive"))
    }
    async fn execute(&self, _: &CallContext, _: ExecuteParams) -> Result<Executed, ProviderError> {
        Err(not_served(Self::NAME, "execute"))
    }
    async fn state(&self, _: StateParams) -> Result<States, ProviderError> {
        Err(not_served(Self::NAME, "state"))
    }
    async fn reset(&self, _: ResetParams) -> Result<Reset, ProviderError> {
        Err(not_served(Self::NAME, "reset"))
    }
    /// What health shows of the engine's dependency: its detail when up, or the error.
    async fn probe(&self) -> Result<Option<String>, ProviderError>;
    /// See [`Provider::stop`].
    async fn stop(&self) {}
}

/// The answer of an action the domain defines but this engine does not serve.
pub(crate) fn not_served(engine: &str, action: &str) -> ProviderError {
    ProviderError::new(
        ErrorCode::ActionNotFound,
        format!("integration/{engine} has no action {action:?}"),
    )
}

/// The descriptor of engine `integration/<name>`, at this crate's version, listing `actions`
/// (the ones the engine serves).
pub(crate) fn describe(name: &str, actions: &[&str]) -> Describe {
    Describe::new("integration", name, env!("CARGO_PKG_VERSION")).actions(actions)
}

/// An [`Engine`] as the runtime calls it (a wrapper, because `Provider` is another crate's
/// trait and cannot be implemented for every `Engine` directly).
pub(crate) struct Instance<E>(pub E);

#[async_trait]
impl<E: Engine> Provider for Instance<E> {
    async fn invoke(&self, ctx: &CallContext, call: Invocation) -> Result<Value, ProviderError> {
        let engine = &self.0;
        let params = call.params;
        match call.action.as_str() {
            "trigger" => to_result(engine.trigger(ctx, parse_params(params)?).await?),
            "dead_letters" => to_result(engine.dead_letters(parse_params(params)?).await?),
            "redeliver" => to_result(engine.redeliver(ctx, parse_params(params)?).await?),
            "discover" => to_result(engine.discover().await?),
            "check" => to_result(engine.check().await?),
            "sync" => to_result(engine.sync(ctx, parse_params(params)?).await?),
            "remap" => to_result(engine.remap(ctx, parse_params(params)?).await?),
            "upsert" => to_result(engine.upsert(ctx, parse_params(params)?).await?),
            "receive" => {
                let body = call.payload.unwrap_or_default();
                to_result(engine.receive(ctx, parse_params(params)?, &body).await?)
            }
            "execute" => to_result(engine.execute(ctx, parse_params(params)?).await?),
            "state" => to_result(engine.state(parse_params(params)?).await?),
            "reset" => to_result(engine.reset(parse_params(params)?).await?),
            other => Err(not_served(E::NAME, other)),
        }
    }

    async fn health(&self) -> Health {
        probe_health(E::DEPENDENCY, self.0.probe().await)
    }

    async fn stop(&self) {
        self.0.stop().await;
    }
}
