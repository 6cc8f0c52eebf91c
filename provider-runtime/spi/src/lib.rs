//! The provider SPI: what a connector developer implements to put a capability behind the
//! Switchyard contract.
//!
//! A provider comes in two parts:
//! - a [`ProviderFactory`], one per engine, that owns engine-wide state (a connection pool,
//!   an in-memory store, a data directory) and describes the engine;
//! - a [`Provider`], one per (tenant, domain, name), created by the factory from the tenant's
//!   config. Reconfiguring a tenant creates a new instance and swaps it in; because the
//!   shared state stays in the factory, the swap loses no data and drops no call.
//!
//! Providers isolate tenants themselves (per-tenant files, key prefixes, row-level security),
//! using the tenant their instance was created for; the conformance suites check that.

use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use serde_json::Value;

pub use descriptor::{
    Builtin, Describe, Host, builtins, config_schema, parse_config, probe_health,
    unconfigured_or_complete,
};
pub use switchyard_contracts::{
    ActionDescriptor, DependencyHealth, ErrorCode, FieldError, Health, HealthStatus,
    ProviderDescriptor, TenantId,
};

pub mod descriptor;
pub mod tenancy;
#[cfg(feature = "testkit")]
pub mod testkit;

/// Who is calling, for which request. Built by the runtime from the gateway's verified context.
#[derive(Debug, Clone)]
pub struct CallContext {
    pub tenant: TenantId,
    pub request_id: String,
    pub subject: Option<String>,
    /// The hosted business service (`ledger`) making this call, set by the runtime's in-process
    /// client only, never from a request. Providers that keep data put a service's data where
    /// the tenant's own calls (`None`) cannot reach it: the service owns its books, and a
    /// tenant key must not rewrite them behind the service's rules.
    pub service: Option<String>,
}

/// One call of one action. `params` have already passed the action's params schema.
#[derive(Debug, Clone)]
pub struct Invocation {
    pub action: String,
    pub params: Value,
    /// A raw request body, for actions that take bytes (e.g. `storage/*/put` sent as
    /// `application/octet-stream`); `None` for plain JSON calls.
    pub payload: Option<Bytes>,
}

/// What the factory needs to create one tenant's instance.
#[derive(Clone)]
pub struct StartContext {
    pub tenant: TenantId,
    /// The tenant's config, already valid against the descriptor's config schema. An empty
    /// object when the tenant never configured the provider.
    pub config: Value,
    /// A client bound to this instance's tenant, for a provider that composes the tenant's
    /// other providers (an integration sync writing into the tenant's db table or bus topic).
    /// Its calls are the tenant's own calls (`CallContext::service` is `None`), under the same
    /// schema checks as a gateway call, and it has no way to name another tenant. The runtime
    /// hands one to the engines built into this process; plugins, remote providers and
    /// factories started outside a runtime get `None`. A call made while `start` runs must
    /// not name this same provider (its slot waits for this start): spawn such work.
    pub client: Option<Arc<dyn switchyard_client::ProviderClient>>,
}

impl std::fmt::Debug for StartContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StartContext")
            .field("tenant", &self.tenant)
            .field("config", &self.config)
            .field("client", &self.client.as_ref().map(|c| c.tenant()))
            .finish()
    }
}

/// An error from a provider. Its code is one of the contract's stable codes; `retryable`
/// tells the runtime (and the caller) whether sending the same call again may succeed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{code}: {detail}")]
pub struct ProviderError {
    pub code: ErrorCode,
    pub detail: String,
    pub retryable: bool,
    pub errors: Vec<FieldError>,
}

impl ProviderError {
    pub fn new(code: ErrorCode, detail: impl Into<String>) -> Self {
        ProviderError {
            code,
            detail: detail.into(),
            retryable: code.retryable(),
            errors: Vec::new(),
        }
    }

    /// An error about one field, pointed at with a JSON pointer into params or config.
    pub fn field(code: ErrorCode, pointer: &str, detail: impl Into<String>) -> Self {
        let detail = detail.into();
        ProviderError {
            errors: vec![FieldError {
                pointer: pointer.to_owned(),
                detail: detail.clone(),
            }],
            ..ProviderError::new(code, detail)
        }
    }

    /// A params problem the schema could not express (e.g. a storage key with a `..` segment).
    pub fn invalid_param(pointer: &str, detail: impl Into<String>) -> Self {
        ProviderError::field(ErrorCode::ParamsInvalid, pointer, detail)
    }

    pub fn unavailable(detail: impl Into<String>) -> Self {
        ProviderError::new(ErrorCode::ProviderUnavailable, detail)
    }

    pub fn internal(detail: impl Into<String>) -> Self {
        ProviderError::new(ErrorCode::Internal, detail)
    }

    pub fn not_found(detail: impl Into<String>) -> Self {
        ProviderError::new(ErrorCode::ResourceNotFound, detail)
    }

    pub fn with_retryable(mut self, retryable: bool) -> Self {
        self.retryable = retryable;
        self
    }
}

/// One engine of one domain, e.g. `db/sqlite`.
#[async_trait]
pub trait ProviderFactory: Send + Sync + 'static {
    fn descriptor(&self) -> &ProviderDescriptor;

    /// Creates and starts the instance that serves one tenant. Called lazily on first use
    /// and again on every reconfigure; must not disturb the tenant's existing instance.
    async fn start(&self, ctx: StartContext) -> Result<Arc<dyn Provider>, ProviderError>;

    /// Whether the engine's code runs in this process, so the runtime may hand its instances a
    /// [`StartContext::client`]. A plugin (a shared library behind the C ABI) and a remote
    /// provider answer `false`: their code is not ours to give a tenant's client to.
    fn in_process(&self) -> bool {
        true
    }

    /// Why the engine keeps a tenant's state on this node only (a file under the data dir, the
    /// process's memory), or `None` when its state lives in a server every replica reaches.
    /// Replicas sharing a platform store would each keep their own copy of such state, so a
    /// cluster refuses these engines unless the operator allows them (ADR 38).
    fn node_local(&self) -> Option<&'static str> {
        None
    }
}

/// A streamed answer: the partial results of one call, in order. An error before the first
/// item is the `Err` of [`Provider::stream`] itself, so a caller can still try elsewhere (an AI
/// router falls back to another model); an error after it is an `Err` item, and ends the stream.
pub type EventStream =
    std::pin::Pin<Box<dyn futures_core::Stream<Item = Result<Value, ProviderError>> + Send>>;

/// One tenant's running instance of an engine.
#[async_trait]
pub trait Provider: Send + Sync + 'static {
    async fn invoke(&self, ctx: &CallContext, call: Invocation) -> Result<Value, ProviderError>;

    /// Runs `call` and answers its result in parts as they are made (an ai chat's tokens as
    /// the model writes them), for callers that show progress. Actions that do not stream
    /// answer `action_not_found`; the params passed the same schema as for [`Self::invoke`].
    async fn stream(
        &self,
        _ctx: &CallContext,
        call: Invocation,
    ) -> Result<EventStream, ProviderError> {
        Err(ProviderError::new(
            ErrorCode::ActionNotFound,
            format!("action {:?} does not stream", call.action),
        ))
    }

    /// The provider's own dependencies (a database file, a directory, a server).
    async fn health(&self) -> Health;

    /// Releases what this instance holds. The runtime calls it once no call is in flight.
    async fn stop(&self) {}
}

/// Reads a typed params struct out of already-validated params. A failure here means the
/// schema admitted something the provider cannot read: reported as params_invalid, not a panic.
pub fn parse_params<T: serde::de::DeserializeOwned>(params: Value) -> Result<T, ProviderError> {
    serde_json::from_value(params).map_err(|e| ProviderError::invalid_param("", e.to_string()))
}

/// Serializes a typed result. Results are plain data, so this only fails on a provider bug.
pub fn to_result<T: serde::Serialize>(value: T) -> Result<Value, ProviderError> {
    serde_json::to_value(value)
        .map_err(|e| ProviderError::internal(format!("result not serializable: {e}")))
}
