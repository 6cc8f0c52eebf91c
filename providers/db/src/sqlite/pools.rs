//! The factory-owned connection pools, one set per tenant database file.
//!
//! Instances of a tenant share one set while their configs shape the pools alike (see
//! `crate::registry`); a reconfigure that shapes them otherwise opens a new set on the same
//! file, and both coexist (SQLite's file locking and the busy timeout arbitrate) until the
//! old instance stops.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use sqlx::SqlitePool;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions};
use switchyard_spi::{ProviderError, TenantId};

use super::config::SqliteConfig;
use super::errors;
use super::guard;
use crate::registry::{self, Lease};

/// The part of a config that shapes the pools; instances with equal settings share pools.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PoolSettings {
    max_connections: u32,
    busy_timeout: Duration,
}

/// One tenant's pools on `<root>/<tenant>.db`.
pub(crate) struct TenantPools {
    /// One read-write connection for `execute` and `transaction`.
    pub writer: SqlitePool,
    /// Read-only connections (`SQLITE_OPEN_READONLY`) for `query`, `metadata` and health, so
    /// a write sent through `query` fails inside SQLite rather than by inspecting SQL text.
    pub reader: SqlitePool,
}

/// One tenant's pools as its instances hold them.
pub(crate) type Pools = Arc<Lease<TenantPools, PoolSettings>>;

/// Tenant → the pool set new instances should use, each opened under the data directory.
pub(crate) struct Registry {
    root: PathBuf,
    current: registry::Registry<TenantPools, PoolSettings>,
}

impl Registry {
    pub fn new(root: PathBuf) -> Self {
        Registry {
            root,
            current: registry::Registry::new(),
        }
    }

    /// The pools a new instance of `tenant` should use, opening them if needed (under the
    /// registry's lock, so two concurrent starts never open two sets for the same settings).
    pub async fn acquire(
        &self,
        tenant: &TenantId,
        config: &SqliteConfig,
    ) -> Result<Pools, ProviderError> {
        let settings = PoolSettings {
            max_connections: config.max_connections,
            busy_timeout: config.busy_timeout(),
        };
        let open = async {
            tokio::fs::create_dir_all(&self.root).await.map_err(|e| {
                ProviderError::unavailable(format!(
                    "cannot create data directory {}: {e}",
                    self.root.display()
                ))
            })?;
            let file = self.root.join(format!("{}.db", tenant.as_str()));
            TenantPools::open(&file, settings).await
        };
        self.current.acquire(tenant, settings, open).await
    }

    /// Called once per instance on stop; closes the set when its last instance is gone.
    pub async fn release(&self, tenant: &TenantId, pools: &Pools) {
        if self.current.release(tenant, pools).await {
            pools.writer.close().await;
            pools.reader.close().await;
        }
    }
}

impl TenantPools {
    /// Opens the writer first: it creates the file and switches it to WAL (persistent in the
    /// file), which the read-only connections cannot do themselves.
    async fn open(file: &Path, settings: PoolSettings) -> Result<Self, ProviderError> {
        let base = SqliteConnectOptions::new()
            .filename(file)
            .busy_timeout(settings.busy_timeout);
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .acquire_timeout(settings.busy_timeout)
            .after_connect(|conn, _| Box::pin(guard::harden(conn)))
            // A transaction left open (a cancelled call) must not leak into the next call:
            // such a connection is closed, which rolls the transaction back.
            .after_release(|conn, _| {
                Box::pin(async move { Ok(!guard::in_transaction(conn).await?) })
            })
            .connect_with(
                base.clone()
                    .create_if_missing(true)
                    .journal_mode(SqliteJournalMode::Wal),
            )
            .await
            .map_err(|e| open_failed(file, e))?;
        let reader = SqlitePoolOptions::new()
            .max_connections(settings.max_connections)
            .acquire_timeout(settings.busy_timeout)
            .after_connect(|conn, _| Box::pin(guard::harden(conn)))
            .connect_with(base.read_only(true))
            .await
            .map_err(|e| open_failed(file, e))?;
        Ok(TenantPools { writer, reader })
    }
}

fn open_failed(file: &Path, err: sqlx::Error) -> ProviderError {
    let mut error = errors::from_sqlx(err);
    error.detail = format!("cannot open {}: {}", file.display(), error.detail);
    error
}
