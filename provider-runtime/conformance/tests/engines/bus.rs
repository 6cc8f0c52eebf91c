//! The bus engines: embedded, over a temp dir of its own per subject, and Kafka, under a
//! namespace of its own per subject on the broker at `SWITCHYARD_TEST_KAFKA_BROKERS`
//! (scripts/test starts a tansu broker and sets it), so tests never see each other's topics.
//! Either way a reopened subject is a new factory over the same records: a process restart.
//! Kafka's +stable check gets a broker of its own to restart.

use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use switchyard_conformance::Subject;
use switchyard_provider_bus::{EmbeddedBusFactory, KafkaFactory, KafkaSettings};
use switchyard_spi::ProviderFactory;
use tempfile::TempDir;

use crate::Enrolled;

pub fn enrolled() -> Vec<Enrolled> {
    vec![
        Enrolled::new("bus/embedded", || async { embedded() }),
        Enrolled::new("bus/kafka", || async {
            kafka(&test_brokers(), &unique_namespace())
        })
        .with_stable(|| async {
            let broker = Arc::new(PrivateKafka::start());
            let restart = broker.clone();
            // The broker is the subject's alone; a short namespace keeps the object keys of
            // its store within what s3s-fs can name as files.
            kafka(&broker.address(), "stable")
                .with_backing_restart(move || {
                    let broker = restart.clone();
                    Box::pin(async move {
                        tokio::task::spawn_blocking(move || broker.restart())
                            .await
                            .expect("the restart finishes")
                    })
                })
                .keeping(broker)
        }),
    ]
}

fn embedded() -> Subject {
    let dir = tempfile::tempdir().expect("temp dir for bus/embedded");
    let root = dir.path().to_path_buf();
    let open =
        move || -> Arc<dyn ProviderFactory> { Arc::new(EmbeddedBusFactory::new(root.clone())) };
    Subject::new(open()).with_reopen(open).keeping(dir)
}

/// `bus/kafka` on `brokers`, under `namespace`.
fn kafka(brokers: &str, namespace: &str) -> Subject {
    let settings = KafkaSettings::new(brokers.to_owned()).with_namespace(namespace.to_owned());
    // The records live on the broker, under the namespace; nothing to keep alive here.
    let open = move || -> Arc<dyn ProviderFactory> {
        Arc::new(KafkaFactory::new(settings.clone()).expect("bus/kafka settings are valid"))
    };
    Subject::new(open()).with_reopen(open)
}

fn test_brokers() -> String {
    std::env::var("SWITCHYARD_TEST_KAFKA_BROKERS").expect(
        "SWITCHYARD_TEST_KAFKA_BROKERS is not set: run the tests with scripts/test (it starts a \
         tansu broker and sets it) or set it to a Kafka-protocol broker, e.g. 127.0.0.1:59092",
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

/// The credentials of a [`PrivateKafka`]'s object store.
const STORE_ACCESS_KEY: &str = "switchyard-test";
const STORE_SECRET_KEY: &str = "switchyard-test-secret";

/// A tansu broker of one subject's own, which the +stable check restarts (the shared test
/// broker cannot be). The tansu here keeps its log in memory or in S3 only, so its records go
/// to an s3s-fs server over a temp dir (tansu creates its bucket there): a restarted broker
/// finds them.
struct PrivateKafka {
    port: u16,
    store_port: u16,
    store: Child,
    broker: Mutex<Child>,
    _dir: TempDir,
}

impl PrivateKafka {
    fn start() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let store_port = free_port();
        let store = Command::new("s3s-fs")
            .args(["--host", "127.0.0.1", "--port", &store_port.to_string()])
            .args(["--access-key", STORE_ACCESS_KEY])
            .args(["--secret-key", STORE_SECRET_KEY])
            .arg(dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("s3s-fs runs (scripts/deps.sh --test installs it)");
        wait_for(store_port, "s3s-fs");
        let port = free_port();
        let broker = Mutex::new(Self::spawn(port, store_port));
        PrivateKafka {
            port,
            store_port,
            store,
            broker,
            _dir: dir,
        }
    }

    fn spawn(port: u16, store_port: u16) -> Child {
        let listener = format!("tcp://127.0.0.1:{port}");
        let child = Command::new("tansu")
            .args(["broker", "--listener-url", &listener])
            .args(["--advertised-listener-url", &listener])
            .args(["--storage-engine", "s3://tansu/"])
            .env("AWS_ENDPOINT", format!("http://127.0.0.1:{store_port}"))
            .env("AWS_ACCESS_KEY_ID", STORE_ACCESS_KEY)
            .env("AWS_SECRET_ACCESS_KEY", STORE_SECRET_KEY)
            .env("AWS_DEFAULT_REGION", "us-east-1")
            .env("AWS_ALLOW_HTTP", "true")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("tansu runs (scripts/deps.sh --test installs it)");
        wait_for(port, "tansu");
        child
    }

    fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Stops the broker the hard way and starts it again on the same port and store.
    fn restart(&self) {
        let mut broker = self.broker.lock().expect("not poisoned");
        broker.kill().expect("tansu stops");
        broker.wait().expect("tansu is reaped");
        *broker = Self::spawn(self.port, self.store_port);
    }
}

impl Drop for PrivateKafka {
    fn drop(&mut self) {
        let broker = self.broker.get_mut().expect("not poisoned");
        for process in [broker, &mut self.store] {
            let _ = process.kill();
            let _ = process.wait();
        }
    }
}

/// Waits until something listens on `port`.
fn wait_for(port: u16, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "{what} did not listen on {port}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A loopback port nothing listens on now (the OS picks it).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}
