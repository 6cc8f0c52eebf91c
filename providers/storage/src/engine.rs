//! What every storage engine's tenant instance shares: answering the domain's actions
//! ([`Engine`], served to the runtime by [`Instance`]). The adapter applies the rules the
//! schemas cannot say (the key rules, which of the two ways of sending content wins, the size
//! limit, the page size) before an engine sees a call, so no engine can skip one.

use async_trait::async_trait;
use bytes::Bytes;
use serde_json::Value;
use switchyard_spi::{
    CallContext, Describe, ErrorCode, Health, Invocation, Provider, ProviderError, parse_params,
    probe_health, to_result,
};

use crate::contract::{
    DeleteResult, GetResult, ListParams, ObjectMeta, Page, PresignParams, PresignResult, PutParams,
    parse_key,
};
use crate::key::ObjectKey;

/// One tenant's instance of a storage engine: the typed actions, a health probe and stop.
#[async_trait]
pub(crate) trait Engine: Send + Sync + 'static {
    /// The engine's name under `storage/`, which errors name it by.
    const NAME: &'static str;
    /// What health calls the engine's dependency (`filesystem`, `s3`).
    const DEPENDENCY: &'static str;

    /// The tenant's `max_object_bytes`: larger content is refused before `put` sees it.
    fn max_object_bytes(&self) -> u64;

    /// Writes `content` (within the size limit) under `key`, replacing any object there.
    async fn put(&self, key: ObjectKey, content: Bytes) -> Result<ObjectMeta, ProviderError>;
    async fn get(&self, key: ObjectKey) -> Result<GetResult, ProviderError>;
    async fn head(&self, key: ObjectKey) -> Result<ObjectMeta, ProviderError>;
    /// One page, `p.limit` already within the contract's bounds.
    async fn list(&self, p: ListParams) -> Result<Page, ProviderError>;
    async fn delete(&self, key: ObjectKey) -> Result<DeleteResult, ProviderError>;

    /// Only engines whose server signs URLs offer it (and list it in their descriptor).
    async fn presign(
        &self,
        _key: ObjectKey,
        _p: PresignParams,
    ) -> Result<PresignResult, ProviderError> {
        Err(no_action::<Self>("presign"))
    }

    /// Whether the dependency serves the tenant; the error's detail is what health shows.
    async fn probe(&self) -> Result<(), ProviderError>;
    /// See [`Provider::stop`].
    async fn stop(&self) {}
}

/// The descriptor of engine `storage/<name>`, at this crate's version, with every action.
pub(crate) fn describe(name: &str) -> Describe {
    Describe::new("storage", name, env!("CARGO_PKG_VERSION"))
}

fn no_action<E: Engine + ?Sized>(action: &str) -> ProviderError {
    ProviderError::new(
        ErrorCode::ActionNotFound,
        format!("storage/{} has no action {action:?}", E::NAME),
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
            "put" => {
                let mut p: PutParams = parse_params(call.params)?;
                let key = ObjectKey::parse(&p.key, "/key")?;
                let content = p.content(call.payload, engine.max_object_bytes())?;
                to_result(engine.put(key, content).await?)
            }
            "get" => to_result(engine.get(parse_key(call.params)?).await?),
            "head" => to_result(engine.head(parse_key(call.params)?).await?),
            "list" => to_result(engine.list(ListParams::parse(call.params)?).await?),
            "delete" => to_result(engine.delete(parse_key(call.params)?).await?),
            "presign" => {
                let p: PresignParams = parse_params(call.params)?;
                let key = ObjectKey::parse(&p.key, "/key")?;
                to_result(engine.presign(key, p).await?)
            }
            other => Err(no_action::<E>(other)),
        }
    }

    async fn health(&self) -> Health {
        probe_health(E::DEPENDENCY, self.0.probe().await.map(|()| None))
    }

    async fn stop(&self) {
        self.0.stop().await;
    }
}
