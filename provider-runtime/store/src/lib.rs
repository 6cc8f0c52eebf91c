//! The platform store: tenants, API keys, per-tenant provider configs, idempotency records and
//! the policy decision log.
//!
//! SQLite in the data directory is the embedded default; PostgreSQL lets several gateway and
//! runtime replicas share one store. Every query is written once, with `$N` placeholders, and
//! runs on sqlx's Any driver (ADR 0008). Each backend has its own migrations, applied at open,
//! so an existing store is upgraded in place.
//!
//! The gateway and the provider runtime both read and write the store, and both hold the key
//! of the context the gateway signs for the runtime ([`internal_auth`]). Both live in this
//! crate, apart from the runtime, so the gateway needs neither the runtime's engines nor its
//! plugin loader to reach them; the runtime re-exports it as `switchyard_runtime::store`.

pub mod internal_auth;

mod ai;
mod audit_log;
mod certifications;
mod changes;
mod configs;
mod decisions;
mod idempotency;
mod keys;
mod leases;
mod limits;
mod operators;
mod registrations;
mod tenant_policy;
mod tenant_secrets;
mod tenants;
#[cfg(test)]
mod tests;
mod usage;

use std::path::Path;
use std::str::FromStr;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::postgres::PgConnectOptions;
use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{Any, AnyPool, ConnectOptions, Executor, Transaction};
use switchyard_spi::tenancy::Quotas;

pub use ai::{AuditRow, Bucket, Charge, Reserve};
pub use audit_log::{
    AuditEntry, AuditExport, AuditFilter, AuditOrder, AuditRecord, CSV_HEADER, ChainCheck,
    ExportFormat, GENESIS, PLATFORM_CHAIN, SERVICE_ENTITY_PREFIX,
};
pub use certifications::Certification;
pub use changes::{Change, ConfigChange, Feed, FeedKind, SecretChange};
pub use configs::{ConfigNote, ConfigVersion, StoredConfig, VersionLookup};
pub use decisions::{DecisionFilter, DecisionPurge, DecisionRecord, retention_days};
pub use idempotency::{Begin, StoredResponse};
pub use keys::{CreatedKey, KeyInfo, VerifiedKey};
pub use leases::{Holding, LeaseLogRow};
pub use limits::{RequestBudget, TenantLimits};
pub use operators::{OPERATOR_KEY_PREFIX, OperatorKey};
pub use registrations::StoredRegistration;
pub use tenant_secrets::SecretMeta;
pub use tenants::{CurrentConfig, TenantInfo, TenantStatus};
pub use usage::{StoredRows, UsageBatch, UsageDay, utc_day};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("tenant {0} already exists")]
    TenantExists(String),
    #[error("tenant {0} does not exist")]
    TenantNotFound(String),
    #[error("{0}")]
    Invalid(String),
    /// A limit the operator set for the tenant is reached (e.g. its live API keys).
    #[error("{0}")]
    QuotaExceeded(String),
    #[error("platform store: {0}")]
    Database(#[from] sqlx::Error),
    #[error("platform store migration: {0}")]
    Migration(#[from] sqlx::migrate::MigrateError),
}

#[derive(Clone)]
pub struct PlatformStore {
    pool: AnyPool,
    backend: Backend,
    quotas: StoreQuotas,
    /// The PostgreSQL URL, for the connection that listens to the other replicas' config
    /// saves ([`Feed`]); never logged, as it may hold a password.
    url: Option<std::sync::Arc<str>>,
}

/// What the store keeps per tenant at most: the operator's `[tenancy.quotas]` on rows a
/// tenant can make the store write. Held in the store, so every gateway and runtime path that
/// writes them is bound alike.
#[derive(Debug, Clone, Copy)]
struct StoreQuotas {
    idempotency_bytes_per_tenant: i64,
    config_versions_kept: i64,
}

impl From<&Quotas> for StoreQuotas {
    fn from(quotas: &Quotas) -> Self {
        StoreQuotas {
            idempotency_bytes_per_tenant: i64::try_from(quotas.idempotency_bytes_per_tenant.get())
                .unwrap_or(i64::MAX),
            config_versions_kept: quotas.config_versions_kept.get().into(),
        }
    }
}

/// Which server the pool talks to, for the few places where the two must differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Backend {
    Sqlite,
    Postgres,
}

/// The SQLite settings the store has always run with, set on every connection because the Any
/// driver takes its options as a URL, which cannot carry them. A WAL journal lets readers run beside the writer; `synchronous = FULL`
/// makes every commit durable; SQLite leaves foreign keys off unless asked.
const SQLITE_PRAGMAS: &str = "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; \
                              PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 5000;";

impl PlatformStore {
    /// A transaction that writes. SQLite: `BEGIN IMMEDIATE`, so it holds the database's write
    /// lock from its first statement; a deferred one that reads first cannot upgrade while
    /// another connection (this process's pool, or a CLI beside `serve`) writes, and SQLite
    /// answers "database is locked" at once instead of waiting out `busy_timeout`.
    /// PostgreSQL: an ordinary READ COMMITTED transaction; row locks order its writers.
    pub(crate) async fn begin_write(&self) -> Result<Transaction<'static, Any>, StoreError> {
        Ok(match self.backend {
            Backend::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await?,
            Backend::Postgres => self.pool.begin().await?,
        })
    }

    /// Opens (creating if needed) `platform.db` in the data directory and migrates it.
    pub async fn open(data_dir: &Path) -> Result<Self, StoreError> {
        let cannot = |what: &str, e: std::io::Error| {
            StoreError::Invalid(format!(
                "cannot {what} data dir {}: {e}",
                data_dir.display()
            ))
        };
        std::fs::create_dir_all(data_dir).map_err(|e| cannot("create", e))?;
        // Absolute, because the options travel as a URL, whose parser would fold `..` segments
        // of a relative path.
        let dir = std::fs::canonicalize(data_dir).map_err(|e| cannot("resolve", e))?;
        let url = SqliteConnectOptions::new()
            .filename(dir.join("platform.db"))
            .create_if_missing(true)
            .to_url_lossy();
        Self::start(Backend::Sqlite, AnyConnectOptions::from_url(&url)?).await
    }

    /// Opens the store at a URL and migrates it: `postgres://` or `postgresql://` (a database
    /// the URL's role may create tables in), or `sqlite://<file>` (created if missing unless the
    /// URL sets its own `mode`).
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        match scheme(url) {
            Some("postgres" | "postgresql") => {
                let mut store =
                    Self::start(Backend::Postgres, AnyConnectOptions::from_str(url)?).await?;
                store.url = Some(url.into());
                Ok(store)
            }
            Some("sqlite") => {
                let url = if url.contains("mode=") {
                    url.to_owned()
                } else {
                    let separator = if url.contains('?') { '&' } else { '?' };
                    format!("{url}{separator}mode=rwc")
                };
                Self::start(Backend::Sqlite, AnyConnectOptions::from_str(&url)?).await
            }
            // Only the scheme is named: the rest of the text may hold a password.
            Some(other) => Err(StoreError::Invalid(format!(
                "the platform store cannot run on {other}://: use postgres://, postgresql:// or sqlite://"
            ))),
            None => Err(StoreError::Invalid(
                "the platform store URL must start with postgres://, postgresql:// or sqlite://"
                    .into(),
            )),
        }
    }

    /// Whether several replicas may share this store (PostgreSQL): the platform then runs as a
    /// cluster and refuses what would keep a tenant's state on one node.
    pub fn is_shared(&self) -> bool {
        self.backend == Backend::Postgres
    }

    /// Holds every tenant to the operator's quotas on idempotency records and config versions
    /// (a store opened without this has the defaults).
    pub fn with_quotas(mut self, quotas: &Quotas) -> Self {
        self.quotas = quotas.into();
        self
    }

    async fn start(backend: Backend, options: AnyConnectOptions) -> Result<Self, StoreError> {
        sqlx::any::install_default_drivers();
        let pool = match backend {
            // As before: SQLite has one writer at a time, so more would mostly wait on its lock.
            Backend::Sqlite => AnyPoolOptions::new()
                .max_connections(4)
                .after_connect(|conn, _| {
                    Box::pin(async move { conn.execute(SQLITE_PRAGMAS).await.map(drop) })
                }),
            // sqlx's default: what each replica may hold on the shared server.
            Backend::Postgres => AnyPoolOptions::new().max_connections(10),
        }
        .connect_with(options)
        .await?;
        match backend {
            Backend::Sqlite => sqlx::migrate!("./migrations/sqlite").run(&pool).await?,
            Backend::Postgres => sqlx::migrate!("./migrations/postgres").run(&pool).await?,
        }
        Ok(PlatformStore {
            pool,
            backend,
            quotas: (&Quotas::default()).into(),
            url: None,
        })
    }
}

/// Where a store URL points, for logs and errors. It is rebuilt from the parsed parts, so a
/// password in the user info or in the query (`?password=`) never shows.
pub fn redacted_url(url: &str) -> String {
    match scheme(url) {
        Some(scheme @ ("postgres" | "postgresql")) => match PgConnectOptions::from_str(url) {
            Ok(pg) => format!(
                "{scheme}://{}@{}:{}/{}",
                pg.get_username(),
                pg.get_host(),
                pg.get_port(),
                pg.get_database().unwrap_or_default()
            ),
            Err(_) => format!("{scheme}://(unparsable)"),
        },
        Some("sqlite") => url.split('?').next().unwrap_or_default().to_owned(),
        Some(other) => format!("{other}://…"),
        None => "(not a URL)".into(),
    }
}

/// The scheme of `scheme://…`, if the text starts like a URL.
fn scheme(url: &str) -> Option<&str> {
    let (scheme, _) = url.split_once("://")?;
    let valid = !scheme.is_empty()
        && scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    valid.then_some(scheme)
}

fn now_rfc3339() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}
