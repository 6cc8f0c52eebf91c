//! The cache conformance suite: every engine of the `cache` domain must pass every test here,
//! unchanged. Enrol an engine by adding one line to [`engines`]. The checks themselves live in
//! `switchyard_conformance::cache`, where `switchyard conformance` runs them too.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use switchyard_provider_cache::{MemoryCacheFactory, RedisCacheFactory};
use switchyard_spi::testkit::Harness;

mod delete;
mod delete_prefix;
mod get_set;
mod incr;
mod mget_mset;
mod tenancy;

/// Every engine under test (failure messages name each by its descriptor). Each call gets
/// fresh engines: a Redis one under a namespace of its own, so tests running side by side on
/// one Redis never see each other's keys.
fn engines() -> Vec<Harness> {
    vec![
        Harness::new(Arc::new(MemoryCacheFactory::new())),
        Harness::new(Arc::new(RedisCacheFactory::with_namespace(
            redis_url(),
            unique_namespace(),
        ))),
    ]
}

/// The Redis the suite runs against; without one the suite fails rather than skip Redis.
fn redis_url() -> String {
    std::env::var("SWITCHYARD_TEST_REDIS_URL").expect(
        "SWITCHYARD_TEST_REDIS_URL is not set: run the tests with scripts/test (it starts Redis \
         and sets it) or set it to a Redis 7 URL",
    )
}

/// A namespace no other engine of this or any concurrent run uses.
fn unique_namespace() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    format!("sytest-{}-{nanos}-{n}", std::process::id())
}
