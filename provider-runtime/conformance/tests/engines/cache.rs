//! The cache engines: memory, and Redis under a namespace of its own per subject, so tests
//! running side by side on one Redis never see each other's keys; its stable checks get a
//! Redis server of their own to restart.

use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use switchyard_conformance::Subject;
use switchyard_provider_cache::{MemoryCacheFactory, RedisCacheFactory};
use tempfile::TempDir;

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
        })
        .with_stable(|| async {
            let server = Arc::new(PrivateRedis::start());
            let restart = server.clone();
            Subject::new(Arc::new(RedisCacheFactory::with_namespace(
                server.url(),
                unique_namespace(),
            )))
            .with_backing_restart(move || {
                let server = restart.clone();
                Box::pin(async move {
                    tokio::task::spawn_blocking(move || server.restart())
                        .await
                        .expect("the restart finishes")
                })
            })
            .keeping(server)
        }),
    ]
}

/// A Redis server of one subject's own, in a temp dir with an append-only file synced on every
/// write, so a restart keeps what was acknowledged.
struct PrivateRedis {
    port: u16,
    dir: TempDir,
    process: Mutex<Child>,
}

impl PrivateRedis {
    fn start() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let port = free_port();
        let process = Mutex::new(Self::spawn(port, dir.path()));
        PrivateRedis { port, dir, process }
    }

    fn spawn(port: u16, dir: &std::path::Path) -> Child {
        let child = Command::new("redis-server")
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
            .arg(dir)
            .stdout(Stdio::null())
            .spawn()
            .expect("redis-server runs (scripts/deps.sh --test installs it)");
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "redis-server did not listen on {port}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        child
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Stops the server the hard way (no chance to say goodbye to clients) and starts it again
    /// on the same port and data.
    fn restart(&self) {
        let mut process = self.process.lock().expect("not poisoned");
        process.kill().expect("redis-server stops");
        process.wait().expect("redis-server is reaped");
        *process = Self::spawn(self.port, self.dir.path());
    }
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        let process = self.process.get_mut().expect("not poisoned");
        let _ = process.kill();
        let _ = process.wait();
    }
}

/// A loopback port nothing listens on now (the OS picks it).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
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
