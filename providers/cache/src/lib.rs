//! Cache providers: one module per engine, all serving the `cache` domain contract
//! (`contracts/schemas/domains/cache.json`) and proven by the suite in `tests/conformance/`.

mod contract;
mod engine;
pub mod memory;
pub mod redis;

pub use memory::MemoryCacheFactory;
pub use redis::RedisCacheFactory;
