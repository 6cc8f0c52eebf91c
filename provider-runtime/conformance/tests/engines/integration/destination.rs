//! The destination the acceptance checks sync into: `db/sqlite` over a temp dir, reached the
//! way the runtime lets an in-process engine reach its tenant's providers — a client bound to
//! one tenant, with no way to name another.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use serde_json::Value;
use switchyard_client::ProviderClient;
use switchyard_contracts::{ErrorCode, Problem};
use switchyard_provider_db::SqliteFactory;
use switchyard_spi::{CallContext, Invocation, Provider, ProviderFactory, StartContext, TenantId};
use tokio::sync::OnceCell;

/// The one provider this destination serves.
pub const PROVIDER: &str = "db/sqlite";

/// A tenant's `db/sqlite` instance, started by its first call.
type Instance = Arc<OnceCell<Arc<dyn Provider>>>;

/// Every tenant's `db/sqlite` instance over one temp dir.
pub struct Destination {
    factory: SqliteFactory,
    instances: Mutex<HashMap<TenantId, Instance>>,
    _dir: tempfile::TempDir,
}

impl Destination {
    pub fn new() -> Arc<Self> {
        let dir = tempfile::tempdir().expect("a temp dir for the destination");
        Arc::new(Destination {
            factory: SqliteFactory::new(dir.path().to_path_buf()),
            instances: Mutex::new(HashMap::new()),
            _dir: dir,
        })
    }

    /// A client bound to `tenant`.
    pub fn client(self: &Arc<Self>, tenant: &TenantId) -> Arc<dyn ProviderClient> {
        Arc::new(Bound {
            destination: self.clone(),
            tenant: tenant.clone(),
        })
    }

    async fn instance(&self, tenant: &TenantId) -> Result<Arc<dyn Provider>, Problem> {
        let cell = self
            .instances
            .lock()
            .expect("the destination's instances")
            .entry(tenant.clone())
            .or_default()
            .clone();
        cell.get_or_try_init(|| async {
            self.factory
                .start(StartContext {
                    tenant: tenant.clone(),
                    config: Value::Object(Default::default()),
                    client: None,
                })
                .await
                .map_err(|e| Problem::new(e.code, e.detail))
        })
        .await
        .cloned()
    }
}

struct Bound {
    destination: Arc<Destination>,
    tenant: TenantId,
}

impl Bound {
    fn only_sqlite(provider: &str) -> Result<(), Problem> {
        if provider == PROVIDER {
            Ok(())
        } else {
            Err(Problem::new(
                ErrorCode::ProviderNotFound,
                format!("this test's destination serves {PROVIDER} only, not {provider}"),
            ))
        }
    }
}

#[async_trait]
impl ProviderClient for Bound {
    fn tenant(&self) -> &TenantId {
        &self.tenant
    }

    async fn invoke(&self, provider: &str, action: &str, params: Value) -> Result<Value, Problem> {
        Bound::only_sqlite(provider)?;
        let instance = self.destination.instance(&self.tenant).await?;
        let ctx = CallContext {
            tenant: self.tenant.clone(),
            request_id: "acceptance".into(),
            subject: Some("provider:integration".into()),
            service: None,
        };
        let call = Invocation {
            action: action.to_owned(),
            params,
            payload: None,
        };
        instance.invoke(&ctx, call).await.map_err(|e| {
            let mut problem = Problem::new(e.code, e.detail);
            problem.retryable = e.retryable;
            problem
        })
    }

    async fn describe(&self, provider: &str) -> Result<Value, Problem> {
        Bound::only_sqlite(provider)?;
        serde_json::to_value(self.destination.factory.descriptor())
            .map_err(|e| Problem::new(ErrorCode::Internal, e.to_string()))
    }
}
