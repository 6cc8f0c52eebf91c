#![doc = include_str!("docs.md")]

mod config;
mod key;
mod store;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use bytes::Bytes;
use cap_std::ambient_authority;
use cap_std::fs::Dir;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use switchyard_contracts::domains;
use switchyard_spi::{
    CallContext, DependencyHealth, ErrorCode, Health, HealthStatus, Invocation, Provider,
    ProviderDescriptor, ProviderError, ProviderFactory, StartContext, TenantId, parse_params,
    to_result,
};

use config::FsConfig;
use key::ObjectKey;
use store::{ObjectMeta, TenantStore};

/// Staged files older than this when a tenant's instance starts are orphans of a crash.
/// Writing one object takes seconds at most, so an hour leaves a wide margin for the other
/// instance that runs alongside during a hot swap.
const STALE_STAGING_AGE: Duration = Duration::from_secs(3600);

/// The `storage/fs` engine: objects as files under one directory per tenant.
///
/// The factory only holds the root path; each tenant's instance opens its own folders, so
/// two instances of one tenant (old and new during a reconfigure) share the same files.
pub struct FsFactory {
    root: PathBuf,
    descriptor: ProviderDescriptor,
}

impl FsFactory {
    /// An engine storing every tenant's objects under `root`, which is created if missing.
    /// A root that cannot be created is reported when a tenant starts, where the error can
    /// reach the caller, rather than here.
    pub fn new(root: PathBuf) -> Self {
        if let Err(e) = std::fs::create_dir_all(&root) {
            tracing::warn!(root = %root.display(), error = %e, "cannot create the storage root");
        }
        FsFactory {
            root,
            descriptor: ProviderDescriptor {
                domain: "storage".into(),
                name: "fs".into(),
                version: env!("CARGO_PKG_VERSION").into(),
                summary: "Objects as files on a local or mounted filesystem, one directory per tenant, written atomically.".into(),
                capabilities: vec!["list_pagination".into(), "raw_body".into()],
                config_schema: config::schema(),
                actions: domains::actions("storage"),
            },
        }
    }
}

#[async_trait]
impl ProviderFactory for FsFactory {
    fn descriptor(&self) -> &ProviderDescriptor {
        &self.descriptor
    }

    async fn start(&self, ctx: StartContext) -> Result<Arc<dyn Provider>, ProviderError> {
        let config = FsConfig::from_value(ctx.config)?;
        let root = self.root.clone();
        let tenant = ctx.tenant.clone();
        let store = blocking(move || {
            let opened = Dir::open_ambient_dir(&root, ambient_authority())
                .and_then(|root| TenantStore::open(&root, &tenant));
            let store = opened.map_err(|e| {
                tracing::error!(root = %root.display(), %tenant, error = %e, "cannot open the tenant's storage");
                ProviderError::unavailable(format!("the tenant's storage folder cannot be opened: {e}"))
            })?;
            if let Err(e) = store.sweep_staging(STALE_STAGING_AGE) {
                tracing::warn!(%tenant, error = %e, "cannot sweep stale staged objects");
            }
            Ok(store)
        })
        .await?;
        Ok(Arc::new(FsProvider {
            tenant: ctx.tenant,
            config,
            store: Arc::new(store),
        }))
    }
}

/// One tenant's instance.
struct FsProvider {
    tenant: TenantId,
    config: FsConfig,
    store: Arc<TenantStore>,
}

#[derive(Deserialize)]
struct KeyParams {
    key: String,
}

#[derive(Deserialize)]
struct PutParams {
    key: String,
    content_base64: Option<String>,
}

#[derive(Deserialize)]
struct ListParams {
    #[serde(default)]
    prefix: String,
    cursor: Option<String>,
    #[serde(default = "default_limit")]
    limit: usize,
}

/// The contract's default page size.
fn default_limit() -> usize {
    100
}

/// The contract's largest page size.
const MAX_LIMIT: usize = 1000;

#[derive(Serialize)]
struct GetResult {
    #[serde(flatten)]
    meta: ObjectMeta,
    content_base64: String,
}

#[derive(Serialize)]
struct DeleteResult {
    deleted: bool,
}

impl FsProvider {
    async fn put(&self, params: Value, payload: Option<Bytes>) -> Result<Value, ProviderError> {
        let params: PutParams = parse_params(params)?;
        let key = ObjectKey::parse(&params.key, "/key")?;
        let content = match (payload, params.content_base64) {
            (Some(body), None) => body,
            (None, Some(text)) => Bytes::from(BASE64.decode(text).map_err(|e| {
                ProviderError::invalid_param("/content_base64", format!("not valid base64: {e}"))
            })?),
            (Some(_), Some(_)) => {
                return Err(ProviderError::invalid_param(
                    "/content_base64",
                    "send the content either as the raw body or as content_base64, not both",
                ));
            }
            (None, None) => {
                return Err(ProviderError::invalid_param(
                    "/content_base64",
                    "no content: send content_base64 or a raw request body",
                ));
            }
        };
        let size = content.len() as u64;
        if size > self.config.max_object_bytes {
            return Err(ProviderError::new(
                ErrorCode::PayloadTooLarge,
                format!(
                    "the object is {size} bytes; this tenant's max_object_bytes is {}",
                    self.config.max_object_bytes
                ),
            ));
        }
        let store = self.store.clone();
        let meta = blocking(move || store.put(&key, &content)).await?;
        tracing::debug!(tenant = %self.tenant, key = %meta.key, size, "object written");
        to_result(meta)
    }

    async fn get(&self, params: Value) -> Result<Value, ProviderError> {
        let key = parse_key(params)?;
        let store = self.store.clone();
        let (meta, content) = blocking(move || store.get(&key)).await?;
        to_result(GetResult {
            meta,
            content_base64: BASE64.encode(content),
        })
    }

    async fn head(&self, params: Value) -> Result<Value, ProviderError> {
        let key = parse_key(params)?;
        let store = self.store.clone();
        to_result(blocking(move || store.head(&key)).await?)
    }

    async fn list(&self, params: Value) -> Result<Value, ProviderError> {
        let params: ListParams = parse_params(params)?;
        if !(1..=MAX_LIMIT).contains(&params.limit) {
            return Err(ProviderError::invalid_param(
                "/limit",
                format!("limit must be between 1 and {MAX_LIMIT}"),
            ));
        }
        let store = self.store.clone();
        let page =
            blocking(move || store.list(&params.prefix, params.cursor.as_deref(), params.limit))
                .await?;
        to_result(page)
    }

    async fn delete(&self, params: Value) -> Result<Value, ProviderError> {
        let key = parse_key(params)?;
        let store = self.store.clone();
        let deleted = blocking(move || {
            let deleted = store.delete(&key)?;
            if deleted {
                tracing::debug!(key = %key.as_str(), "object deleted");
            }
            Ok(deleted)
        })
        .await?;
        to_result(DeleteResult { deleted })
    }
}

#[async_trait]
impl Provider for FsProvider {
    async fn invoke(&self, _ctx: &CallContext, call: Invocation) -> Result<Value, ProviderError> {
        match call.action.as_str() {
            "put" => self.put(call.params, call.payload).await,
            "get" => self.get(call.params).await,
            "head" => self.head(call.params).await,
            "list" => self.list(call.params).await,
            "delete" => self.delete(call.params).await,
            other => Err(ProviderError::new(
                ErrorCode::ActionNotFound,
                format!("storage/fs has no action {other:?}"),
            )),
        }
    }

    async fn health(&self) -> Health {
        let store = self.store.clone();
        let probe = blocking(move || store.probe().map_err(ProviderError::unavailable)).await;
        let (status, detail) = match probe {
            Ok(()) => (HealthStatus::Up, None),
            Err(e) => (
                HealthStatus::Down,
                Some(format!("the tenant's folder is not writable: {}", e.detail)),
            ),
        };
        Health::from_dependencies(vec![DependencyHealth {
            name: "filesystem".into(),
            status,
            detail,
        }])
    }
}

fn parse_key(params: Value) -> Result<ObjectKey, ProviderError> {
    let params: KeyParams = parse_params(params)?;
    ObjectKey::parse(&params.key, "/key")
}

/// Runs filesystem work on tokio's blocking pool so that a slow disk never stalls the
/// runtime's worker threads.
async fn blocking<T, F>(work: F) -> Result<T, ProviderError>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T, ProviderError> + Send + 'static,
{
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| ProviderError::internal(format!("filesystem task failed: {e}")))?
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    async fn start(factory: &FsFactory) -> Result<Arc<dyn Provider>, ProviderError> {
        factory
            .start(StartContext {
                tenant: TenantId::parse("acme").unwrap(),
                config: json!({}),
            })
            .await
    }

    #[test]
    fn descriptor_serves_the_storage_contract() {
        let dir = tempfile::tempdir().unwrap();
        let factory = FsFactory::new(dir.path().join("root"));
        let descriptor = factory.descriptor();
        assert_eq!(
            (descriptor.domain.as_str(), descriptor.name.as_str()),
            ("storage", "fs")
        );
        assert!(descriptor.has_capability("list_pagination"));
        assert!(descriptor.has_capability("raw_body"));
        assert_eq!(descriptor.actions, domains::actions("storage"));
        assert!(dir.path().join("root").is_dir(), "the root is created");
    }

    #[tokio::test]
    async fn health_goes_down_when_the_tenant_folder_disappears() {
        let dir = tempfile::tempdir().unwrap();
        let factory = FsFactory::new(dir.path().join("root"));
        let provider = start(&factory).await.unwrap();
        assert_eq!(provider.health().await.status, HealthStatus::Up);

        std::fs::remove_dir_all(dir.path().join("root").join("acme")).unwrap();
        let health = provider.health().await;
        assert_eq!(health.status, HealthStatus::Down);
        assert_eq!(health.dependencies[0].name, "filesystem");
        assert!(health.dependencies[0].detail.is_some());
    }

    #[tokio::test]
    async fn a_root_that_cannot_be_opened_fails_start_as_unavailable() {
        let dir = tempfile::tempdir().unwrap();
        let not_a_dir = dir.path().join("file");
        std::fs::write(&not_a_dir, b"").unwrap();
        let factory = FsFactory::new(not_a_dir);
        let err = start(&factory).await.err().expect("start fails");
        assert_eq!(err.code, ErrorCode::ProviderUnavailable);
    }

    #[tokio::test]
    async fn an_invalid_config_fails_start() {
        let dir = tempfile::tempdir().unwrap();
        let factory = FsFactory::new(dir.path().join("root"));
        let err = factory
            .start(StartContext {
                tenant: TenantId::parse("acme").unwrap(),
                config: json!({"max_object_bytes": 0}),
            })
            .await
            .err()
            .expect("start fails");
        assert_eq!(err.code, ErrorCode::ConfigInvalid);
    }
}
