#![doc = include_str!("docs.md")]

mod config;
mod store;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use cap_std::ambient_authority;
use cap_std::fs::Dir;
use switchyard_contracts::SchemaError;
use switchyard_spi::{
    Host, Provider, ProviderDescriptor, ProviderError, ProviderFactory, StartContext, TenantId,
};

use crate::contract::{DeleteResult, GetResult, ListParams, ObjectMeta, Page};
use crate::engine::{Engine, Instance, describe};
use crate::key::ObjectKey;
use config::FsConfig;
use store::TenantStore;

/// The storage actions this engine serves: all but `presign`, which needs a server that signs
/// URLs (a file on disk has no URL of its own).
const ACTIONS: [&str; 5] = ["put", "get", "head", "list", "delete"];

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
            descriptor: describe("fs")
                .summary("Objects as files on a local or mounted filesystem, one directory per tenant, written atomically.")
                .capabilities(&["list_pagination", "raw_body", "durable"])
                .config::<FsConfig>()
                .actions(&ACTIONS)
                .build(),
        }
    }
}

#[async_trait]
impl ProviderFactory for FsFactory {
    fn node_local(&self) -> Option<&'static str> {
        Some("objects in files under this node's data dir")
    }

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
        Ok(Arc::new(Instance(FsProvider {
            tenant: ctx.tenant,
            config,
            store: Arc::new(store),
        })))
    }
}

/// One tenant's instance.
struct FsProvider {
    tenant: TenantId,
    config: FsConfig,
    store: Arc<TenantStore>,
}

#[async_trait]
impl Engine for FsProvider {
    const NAME: &'static str = "fs";
    const DEPENDENCY: &'static str = "filesystem";

    fn max_object_bytes(&self) -> u64 {
        self.config.max_object_bytes
    }

    async fn put(&self, key: ObjectKey, content: Bytes) -> Result<ObjectMeta, ProviderError> {
        let size = content.len() as u64;
        let store = self.store.clone();
        let meta = blocking(move || store.put(&key, &content)).await?;
        tracing::debug!(tenant = %self.tenant, key = %meta.key, size, "object written");
        Ok(meta)
    }

    async fn get(&self, key: ObjectKey) -> Result<GetResult, ProviderError> {
        let store = self.store.clone();
        let (meta, content) = blocking(move || store.get(&key)).await?;
        Ok(GetResult::new(meta, &content))
    }

    async fn head(&self, key: ObjectKey) -> Result<ObjectMeta, ProviderError> {
        let store = self.store.clone();
        blocking(move || store.head(&key)).await
    }

    async fn list(&self, p: ListParams) -> Result<Page, ProviderError> {
        let store = self.store.clone();
        blocking(move || store.list(&p.prefix, p.cursor.as_deref(), p.limit)).await
    }

    async fn delete(&self, key: ObjectKey) -> Result<DeleteResult, ProviderError> {
        let store = self.store.clone();
        let deleted = blocking(move || {
            let deleted = store.delete(&key)?;
            if deleted {
                tracing::debug!(key = %key.as_str(), "object deleted");
            }
            Ok(deleted)
        })
        .await?;
        Ok(DeleteResult { deleted })
    }

    async fn probe(&self) -> Result<(), ProviderError> {
        let store = self.store.clone();
        blocking(move || {
            store.probe().map_err(|e| {
                ProviderError::unavailable(format!("the tenant's folder is not writable: {e}"))
            })
        })
        .await
    }
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

/// Always hosted: the embedded default, under the data directory.
pub(crate) fn builtin(host: &Host) -> Result<Option<Arc<dyn ProviderFactory>>, SchemaError> {
    Ok(Some(Arc::new(FsFactory::new(host.data.join("storage/fs")))))
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use switchyard_contracts::domains;
    use switchyard_spi::{CallContext, ErrorCode, HealthStatus, Invocation};

    use super::*;

    async fn start(factory: &FsFactory) -> Result<Arc<dyn Provider>, ProviderError> {
        factory
            .start(StartContext {
                tenant: TenantId::parse("acme").unwrap(),
                config: json!({}),
                client: None,
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
        assert_eq!(
            descriptor.actions,
            domains::actions_named("storage", &ACTIONS)
        );
        assert!(descriptor.action("presign").is_none());
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

    /// The runtime answers action_not_found from the descriptor before a call gets here; the
    /// instance agrees for callers that skip the runtime.
    #[tokio::test]
    async fn presign_is_not_an_action_of_this_engine() {
        let dir = tempfile::tempdir().unwrap();
        let provider = start(&FsFactory::new(dir.path().join("root")))
            .await
            .unwrap();
        let call = Invocation {
            action: "presign".into(),
            params: json!({"key": "a", "method": "get"}),
            payload: None,
        };
        let context = CallContext {
            tenant: TenantId::parse("acme").unwrap(),
            request_id: "test".into(),
            subject: None,
            service: None,
        };
        let err = provider.invoke(&context, call).await.unwrap_err();
        assert_eq!(err.code, ErrorCode::ActionNotFound);
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
                client: None,
            })
            .await
            .err()
            .expect("start fails");
        assert_eq!(err.code, ErrorCode::ConfigInvalid);
    }
}
