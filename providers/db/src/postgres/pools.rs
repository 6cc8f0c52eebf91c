//! The factory-owned connection pools.
//!
//! Pooled tenants share the factory's one pool of runtime-role connections; each tenant's
//! `max_connections` is a semaphore over it, so one busy tenant cannot take every
//! connection. A siloed tenant gets its own pool on its own database. Instances of a tenant
//! share one [`TenantPool`] while their configs shape its access alike (see
//! `crate::registry`); a siloed pool closes when the last instance using it stops.

use std::sync::Arc;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{Executor, PgPool};
use switchyard_spi::{ProviderError, TenantId};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::config::PostgresConfig;
use crate::errors::stopped;
use crate::registry;

/// How long a call waits for its tenant's share and then for a connection.
pub(crate) const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);

/// What a connection coming back runs before anyone else gets it: `DISCARD ALL` but for
/// `DEALLOCATE ALL` and `DISCARD PLANS`, so whatever session state a call managed to leave
/// behind (an advisory lock, which `RESET ALL` keeps and which would block every other
/// session wanting it; a `LISTEN`; a held cursor; a session setting) is gone, while the
/// statements the engine keeps prepared stay, with their plans (PostgreSQL replans one by
/// itself when the role, search path or a table it reads changed). Tenants prepare none:
/// `PREPARE`/`EXECUTE` are refused, tenant SQL runs unnamed, and what `query` describes is
/// closed at once (see `crate::postgres`). It runs in the pool's release task, after the
/// caller has its answer, so calls do not wait for it.
const RELEASE: &str = "CLOSE ALL; SET SESSION AUTHORIZATION DEFAULT; RESET ALL; UNLISTEN *; \
     SELECT pg_advisory_unlock_all(); DISCARD TEMP; DISCARD SEQUENCES";

/// How many statements a connection keeps prepared: the engine's fixed ones (the call's
/// `ENTER_*`, `metadata`'s catalog reads, the health probe) and the service books' SQL (the
/// ledger's, inventory's, orders' and the outbox's texts, well under a hundred), never tenant
/// SQL. The least recently used one is closed when a new one would exceed it.
const KEPT_STATEMENTS: usize = 128;

/// Options every engine pool uses; see [`RELEASE`].
pub(crate) fn pool_options(max_connections: u32) -> PgPoolOptions {
    PgPoolOptions::new()
        .max_connections(max_connections)
        .min_connections(0)
        .acquire_timeout(ACQUIRE_TIMEOUT)
        .idle_timeout(Duration::from_secs(300))
        .after_release(|conn, _| Box::pin(async move { conn.execute(RELEASE).await.map(|_| true) }))
}

/// The statement cache keeps the engine's fixed statements and the books' SQL prepared (one
/// round trip each instead of two, planned once); tenant SQL never enters it (see
/// [`KEPT_STATEMENTS`]).
pub(crate) fn connect_options(options: PgConnectOptions) -> PgConnectOptions {
    options
        .statement_cache_capacity(KEPT_STATEMENTS)
        .application_name("switchyard db/postgres")
}

/// What decides whether two instances of a tenant can share access.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct Shape {
    dsn: Option<String>,
    max_connections: u32,
}

/// One tenant's access: a pool and the tenant's share of it.
pub(crate) struct TenantPool {
    pub pool: PgPool,
    permits: Arc<Semaphore>,
}

impl TenantPool {
    /// Waits for one of the tenant's `max_connections` slots.
    pub async fn permit(&self) -> Result<OwnedSemaphorePermit, ProviderError> {
        match tokio::time::timeout(ACQUIRE_TIMEOUT, self.permits.clone().acquire_owned()).await {
            Ok(Ok(permit)) => Ok(permit),
            Ok(Err(_)) => Err(stopped()),
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
pub(crate) type Registry = registry::Registry<TenantPool, Shape>;
/// One tenant's access as its instances hold it.
pub(crate) type Access = Arc<registry::Lease<TenantPool, Shape>>;

/// The access a new instance of `tenant` should use. A siloed pool connects lazily: a
/// database that is down shows in health and calls, and does not stop the instance from
/// starting.
pub(crate) async fn acquire(
    registry: &Registry,
    tenant: &TenantId,
    config: &PostgresConfig,
    target: Target<'_>,
) -> Result<Access, ProviderError> {
    let shape = Shape {
        dsn: config.dsn.clone(),
        max_connections: config.max_connections,
    };
    let open = async {
        let pool = match target {
            Target::Shared(shared) => shared.clone(),
            Target::Own(options) => {
                pool_options(config.max_connections).connect_lazy_with(connect_options(*options))
            }
        };
        let permits = Arc::new(Semaphore::new(config.max_connections as usize));
        Ok(TenantPool { pool, permits })
    };
    registry.acquire(tenant, shape, open).await
}

/// Called once per instance on stop; a siloed pool closes with its last instance.
pub(crate) async fn release(registry: &Registry, tenant: &TenantId, access: &Access) {
    if registry.release(tenant, access).await {
        access.permits.close();
        if access.settings.dsn.is_some() {
            access.pool.close().await;
        }
    }
}
