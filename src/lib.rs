//! The `switchyard` binary's wiring: which engines the process hosts and where their data lives.
//! Kept as a library so the end-to-end and contract tests build the very same registry.

use std::path::Path;
use std::sync::Arc;

use switchyard_contracts::SchemaError;
use switchyard_provider_bus::EmbeddedBusFactory;
use switchyard_provider_cache::MemoryCacheFactory;
use switchyard_provider_db::SqliteFactory;
use switchyard_provider_storage::FsFactory;
use switchyard_runtime::Registry;

/// The embedded defaults: nothing to install, everything under the data directory.
pub fn builtin_registry(data_dir: &Path) -> Result<Registry, SchemaError> {
    let providers = data_dir.join("providers");
    let mut registry = Registry::default();
    registry.register(Arc::new(SqliteFactory::new(providers.join("db/sqlite"))))?;
    registry.register(Arc::new(MemoryCacheFactory::new()))?;
    registry.register(Arc::new(FsFactory::new(providers.join("storage/fs"))))?;
    registry.register(Arc::new(EmbeddedBusFactory::new(
        providers.join("bus/embedded"),
    )))?;
    Ok(registry)
}
