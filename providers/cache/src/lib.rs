//! Cache providers: one module per engine, all serving the `cache` domain contract
//! (`contracts/schemas/domains/cache.json`) and proven by the suite in `tests/conformance/`.

pub mod memory;

pub use memory::MemoryCacheFactory;
