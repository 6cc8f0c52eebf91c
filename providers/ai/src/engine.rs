//! What every ai engine's tenant instance shares: answering the domain's actions ([`Engine`],
//! served to the runtime by [`Instance`]). An engine serves part of the domain: each action
//! has a default answering action_not_found, and the engine's descriptor lists the ones it
//! implements.

use async_trait::async_trait;
use serde_json::Value;
use switchyard_spi::{
    CallContext, Describe, ErrorCode, EventStream, Health, Invocation, Provider, ProviderError,
    parse_params, probe_health, to_result,
};

use crate::contract::{
    ChatParams, ChatResult, Classification, ClassifyParams, EmbedParams, Embeddings,
};

/// One tenant's instance of an ai engine: the actions it offers, a health probe and stop.
#[async_trait]
pub(crate) trait Engine: Send + Sync + 'static {
    /// The engine's name under `ai/`, which errors name it by.
    const NAME: &'static str;
    /// What health calls the engine's dependency (`ngram`, `server`).
    const DEPENDENCY: &'static str;

    async fn chat(&self, _p: ChatParams) -> Result<ChatResult, ProviderError> {
        Err(no_action::<Self>("chat"))
    }
    /// [`Self::chat`] as the model writes it: [`ChatChunk`]s, the message in pieces and then
    /// its last chunk. Whatever fails before the first chunk is this `Err`.
    ///
    /// [`ChatChunk`]: crate::contract::ChatChunk
    async fn chat_stream(&self, _p: ChatParams) -> Result<EventStream, ProviderError> {
        Err(no_stream::<Self>("chat"))
    }
    /// One vector per text, in the order given, all of the same length.
    async fn embed(&self, _p: EmbedParams) -> Result<Embeddings, ProviderError> {
        Err(no_action::<Self>("embed"))
    }
    async fn classify(&self, _p: ClassifyParams) -> Result<Classification, ProviderError> {
        Err(no_action::<Self>("classify"))
    }
    /// What health shows of the engine's dependency: its detail when up, or the error.
    async fn probe(&self) -> Result<Option<String>, ProviderError>;
    /// See [`Provider::stop`].
    async fn stop(&self) {}
}

/// The descriptor of engine `ai/<name>`, at this crate's version, offering `actions`.
pub(crate) fn describe(name: &str, actions: &[&str]) -> Describe {
    Describe::new("ai", name, env!("CARGO_PKG_VERSION")).actions(actions)
}

fn no_action<E: Engine + ?Sized>(action: &str) -> ProviderError {
    ProviderError::new(
        ErrorCode::ActionNotFound,
        format!("ai/{} has no action {action:?}", E::NAME),
    )
}

fn no_stream<E: Engine + ?Sized>(action: &str) -> ProviderError {
    ProviderError::new(
        ErrorCode::ActionNotFound,
        format!("ai/{} does not stream {action:?}", E::NAME),
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
            "chat" => to_result(engine.chat(parse_params(call.params)?).await?),
            "embed" => to_result(engine.embed(parse_params(call.params)?).await?),
            "classify" => to_result(engine.classify(parse_params(call.params)?).await?),
            other => Err(no_action::<E>(other)),
        }
    }

    async fn stream(
        &self,
        _ctx: &CallContext,
        call: Invocation,
    ) -> Result<EventStream, ProviderError> {
        match call.action.as_str() {
            "chat" => self.0.chat_stream(parse_params(call.params)?).await,
            other => Err(no_stream::<E>(other)),
        }
    }

    async fn health(&self) -> Health {
        probe_health(E::DEPENDENCY, self.0.probe().await)
    }

    async fn stop(&self) {
        self.0.stop().await;
    }
}
