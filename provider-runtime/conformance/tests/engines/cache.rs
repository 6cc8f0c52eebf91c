//! The cache engines: memory, and Redis under a namespace of its own per subject, so tests
//! running side by side on one Redis never see each other's keys.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use switchyard_conformance::Subject;
use switchyard_provider_cache::{MemoryCacheFactory, RedisCacheFactory};

use crate::Enrolled;

pub fn enrolled() -> Vec<Enrolled> {
    vec![
        Enrolled::new("cache/memory", || async {
            Subject::new(Arc::new(MemoryCacheFactory::new()))
        }),
        Enrolled::new("cache/redis", || async {
            Subject::new(Arc::new(RedisCacheFactory::with_namespace(
                redis_url(),
                unique_namespace(),
            )))
        }),
    ]
}

/// The Redis the suite runs against; without one the suite fails rather than skip Redis.
fn redis_url() -> String {
    std::env::var("SWITCHYARD_TEST_REDIS_URL").expect(
        "SWITCHYARD_TEST_REDIS_URL is not set: run the tests with scripts/test (it starts Redis \
         and sets it) or set it to a Redis 7 URL",
    )
}

/// A namespace no other subject of this or any concurrent run uses.
fn unique_namespace() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    format!("sytest-{}-{nanos}-{n}", std::process::id())
}
