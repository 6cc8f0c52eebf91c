//! The cache conformance suite: every engine of the `cache` domain must pass every test here,
//! unchanged. Enrol an engine by adding one line to [`engines`].

use std::sync::Arc;

use switchyard_provider_cache::MemoryCacheFactory;
use switchyard_spi::testkit::Harness;

mod delete;
mod delete_prefix;
mod get_set;
mod incr;
mod mget_mset;
mod tenancy;

/// Every engine under test, with its name for failure messages.
fn engines() -> Vec<(&'static str, Harness)> {
    vec![(
        "cache/memory",
        Harness::new(Arc::new(MemoryCacheFactory::new())),
    )]
}
