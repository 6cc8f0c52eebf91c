//! Cache providers: one module per engine, all serving the `cache` domain contract
//! (`contracts/schemas/domains/cache.json`) and proven by the conformance kit's cache checks
//! (`provider-runtime/conformance/src/cache.rs`).

mod contract;
mod engine;
pub mod memory;
pub mod redis;

use std::sync::Arc;

pub use memory::MemoryCacheFactory;
pub use redis::RedisCacheFactory;
use switchyard_contracts::SchemaError;
use switchyard_spi::{Host, ProviderFactory};

/// The cache engines `switchyard` hosts: a new engine is its folder and one line here.
pub fn builtins(host: &Host) -> Result<Vec<Arc<dyn ProviderFactory>>, SchemaError> {
    switchyard_spi::builtins(host, &[memory::builtin, redis::builtin])
}
