//! The cache engines: memory, and Redis under a namespace of its own per subject, so tests
//! running side by side on one Redis never see each other's keys; its stable checks get a
//! Redis server of their own to restart.

use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use switchyard_conformance::Subject;
use switchyard_provider_cache::{MemoryCacheFactory, RedisCacheFactory};
use tempfile::TempDir;

use crate::Enrolled;
use crate::private::{Private, restart_on_a_thread};

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
        })
        .with_stable(|| async {
            let server = Arc::new(PrivateRedis::start());
            Subject::new(Arc::new(RedisCacheFactory::with_namespace(
                server.url(),
                unique_namespace(),
            )))
            .with_backing_restart({
                let server = server.clone();
                move || restart_on_a_thread(server.clone(), |s| s.server.restart())
            })
            .keeping(server)
        }),
    ]
}

/// A Redis server of one subject's own, in a temp dir with an append-only file synced on every
/// write, so a restart keeps what was acknowledged.
struct PrivateRedis {
    server: Private,
    _dir: TempDir,
}

impl PrivateRedis {
    fn start() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().to_owned();
        let server = Private::start("redis-server", move |port| {
            let mut command = Command::new("redis-server");
            command
                .args(["--bind", "127.0.0.1", "--port", &port.to_string()])
                .args([
                    "--appendonly",
                    "yes",
                    "--appendfsync",
                    "always",
                    "--save",
                    "",
                ])
                .arg("--dir")
                .arg(&path);
            command
        });
        PrivateRedis { server, _dir: dir }
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.server.port())
    }
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
