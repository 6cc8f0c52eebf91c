//! The factory-owned connection pools.
//!
//! Pooled tenants share the factory's one pool of runtime-role connections; each tenant's
//! `max_connections` is a semaphore over it, so one busy tenant cannot take every
//! connection. A siloed tenant gets its own pool on its own database.
//!
//! A reconfigure starts a new instance while the old one still serves calls. If the new config
//! shapes the tenant's access the same way, both instances share one [`TenantPool`];
//! otherwise the new one gets its own and both coexist until the old instance stops. A siloed
//! pool closes when the last instance using it stops.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::AtomicUsize;
use std::sync::atomic::Ordering::SeqCst;
use std::time::Duration;

use sqlx::PgPool;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use switchyard_spi::{ProviderError, TenantId};
use tokio::sync::{Mutex, OwnedSemaphorePermit, Semaphore};

use super::config::PostgresConfig;

/// How long a call waits for its tenant's share and then for a connection.
pub(crate) const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);

/// Options every engine pool uses. The statement cache is off: a tenant could otherwise read
/// the SQL texts other tenants ran on the same connection from `pg_prepared_statements`.
pub(crate) fn pool_options(max_connections: u32) -> PgPoolOptions {
    PgPoolOptions::new()
        .max_connections(max_connections)
        .min_connections(0)
        .acquire_timeout(ACQUIRE_TIMEOUT)
        .idle_timeout(Duration::from_secs(300))
}

pub(crate) fn connect_options(options: PgConnectOptions) -> PgConnectOptions {
    options
        .statement_cache_capacity(0)
        .application_name("switchyard db/postgres")
}

/// What decides whether two instances of a tenant can share access.
#[derive(Clone, PartialEq, Eq)]
struct Shape {
    dsn: Option<String>,
    max_connections: u32,
}

/// One tenant's access: a pool and the tenant's share of it.
pub(crate) struct TenantPool {
    pub pool: PgPool,
    permits: Arc<Semaphore>,
    shape: Shape,
    /// Instances using this access; only changed under the registry lock.
    users: AtomicUsize,
}

impl TenantPool {
    /// Waits for one of the tenant's `max_connections` slots.
    pub async fn permit(&self) -> Result<OwnedSemaphorePermit, ProviderError> {
        match tokio::time::timeout(ACQUIRE_TIMEOUT, self.permits.clone().acquire_owned()).await {
            Ok(Ok(permit)) => Ok(permit),
            Ok(Err(_)) => Err(ProviderError::unavailable(
                "this instance was stopped; send the call again",
            )),
            Err(_) => Err(ProviderError::unavailable(
                "all of this tenant's max_connections are busy; retry later",
            )),
        }
    }
}

/// Where a tenant's connections come from.
pub(crate) enum Target<'a> {
    /// Pooled mode: the factory's shared runtime-role pool.
    Shared(&'a PgPool),
    /// Siloed mode: the tenant's own database.
    Own(Box<PgConnectOptions>),
}

/// Tenant → the access new instances should use.
pub(crate) struct Registry {
    current: Mutex<HashMap<TenantId, Arc<TenantPool>>>,
}

impl Registry {
    pub fn new() -> Self {
        Registry {
            current: Mutex::new(HashMap::new()),
        }
    }

    /// The access a new instance of `tenant` should use. A siloed pool connects lazily: a
    /// database that is down shows in health and calls, and does not stop the instance from
    /// starting.
    pub async fn acquire(
        &self,
        tenant: &TenantId,
        config: &PostgresConfig,
        target: Target<'_>,
    ) -> Arc<TenantPool> {
        let shape = Shape {
            dsn: config.dsn.clone(),
            max_connections: config.max_connections,
        };
        let mut current = self.current.lock().await;
        if let Some(access) = current.get(tenant)
            && access.shape == shape
        {
            access.users.fetch_add(1, SeqCst);
            return access.clone();
        }
        let pool = match target {
            Target::Shared(shared) => shared.clone(),
            Target::Own(options) => {
                pool_options(config.max_connections).connect_lazy_with(connect_options(*options))
            }
        };
        let access = Arc::new(TenantPool {
            pool,
            permits: Arc::new(Semaphore::new(config.max_connections as usize)),
            shape,
            users: AtomicUsize::new(1),
        });
        current.insert(tenant.clone(), access.clone());
        access
    }

    /// Called once per instance on stop; a siloed pool closes with its last instance.
    pub async fn release(&self, tenant: &TenantId, access: &Arc<TenantPool>) {
        let last = {
            let mut current = self.current.lock().await;
            let last = access.users.fetch_sub(1, SeqCst) == 1;
            if last && current.get(tenant).is_some_and(|c| Arc::ptr_eq(c, access)) {
                current.remove(tenant);
            }
            last
        };
        if last {
            access.permits.close();
            if access.shape.dsn.is_some() {
                access.pool.close().await;
            }
        }
    }
}
