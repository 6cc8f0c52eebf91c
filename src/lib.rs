//! The `switchyard` binary's wiring: which engines the process hosts and where their data lives.
//! Kept as a library so the end-to-end and contract tests build the very same registry.

use std::path::Path;
use std::sync::Arc;

use switchyard_contracts::SchemaError;
use switchyard_provider_auth::{JwtFactory, OpaFactory, PolicySource};
use switchyard_provider_bus::EmbeddedBusFactory;
use switchyard_provider_cache::{MemoryCacheFactory, RedisCacheFactory};
use switchyard_provider_db::{MysqlFactory, PostgresFactory, PostgresSettings, SqliteFactory};
use switchyard_provider_storage::FsFactory;
use switchyard_runtime::Registry;

/// The embedded defaults — nothing to install, everything under the data directory — plus the
/// production engines whose servers are configured: `SWITCHYARD_REDIS_URL` for cache/redis,
/// `SWITCHYARD_POSTGRES_URL` (a superuser URL of a dedicated database) with
/// `SWITCHYARD_POSTGRES_APP_PASSWORD` (the runtime role's password) for db/postgres,
/// `SWITCHYARD_MYSQL_URL` (an account that may create databases and users) for db/mysql, with
/// `SWITCHYARD_MYSQL_TENANT_SECRET` (what tenant passwords derive from; every process serving
/// one server needs the same) and `SWITCHYARD_MYSQL_DATABASE_PREFIX` (when environments share a
/// server).
/// `policy` gives `auth/opa` the bundle the gateway is running (none in a runtime-only process).
pub fn builtin_registry(data_dir: &Path, policy: PolicySource) -> Result<Registry, SchemaError> {
    let providers = data_dir.join("providers");
    let mut registry = Registry::default();
    registry.register(Arc::new(SqliteFactory::new(providers.join("db/sqlite"))))?;
    if let Ok(admin_url) = std::env::var("SWITCHYARD_POSTGRES_URL") {
        let password =
            std::env::var("SWITCHYARD_POSTGRES_APP_PASSWORD").map_err(|_| SchemaError {
                location: "db/postgres".into(),
                message:
                    "SWITCHYARD_POSTGRES_URL is set but SWITCHYARD_POSTGRES_APP_PASSWORD is not"
                        .into(),
            })?;
        registry.register(Arc::new(PostgresFactory::new(PostgresSettings::new(
            admin_url, password,
        ))))?;
    }
    if let Ok(admin_url) = std::env::var("SWITCHYARD_MYSQL_URL") {
        let mut mysql = MysqlFactory::new(admin_url);
        if let Ok(secret) = std::env::var("SWITCHYARD_MYSQL_TENANT_SECRET") {
            mysql = mysql.with_secret(secret);
        }
        if let Ok(prefix) = std::env::var("SWITCHYARD_MYSQL_DATABASE_PREFIX") {
            mysql = mysql.with_database_prefix(&prefix);
        }
        registry.register(Arc::new(mysql))?;
    }
    registry.register(Arc::new(MemoryCacheFactory::new()))?;
    if let Ok(url) = std::env::var("SWITCHYARD_REDIS_URL") {
        registry.register(Arc::new(RedisCacheFactory::new(url)))?;
    }
    registry.register(Arc::new(FsFactory::new(providers.join("storage/fs"))))?;
    registry.register(Arc::new(EmbeddedBusFactory::new(
        providers.join("bus/embedded"),
    )))?;
    registry.register(Arc::new(JwtFactory::new()))?;
    registry.register(Arc::new(OpaFactory::new(policy)))?;
    Ok(registry)
}

/// For processes that run no policy: `auth/opa` answers provider_unavailable.
pub fn no_policy() -> PolicySource {
    Arc::new(|| None)
}
