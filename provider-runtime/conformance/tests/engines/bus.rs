//! The bus engines: embedded, over a temp dir of its own per subject, and Kafka, under a
//! namespace of its own per subject on the broker at `SWITCHYARD_TEST_KAFKA_BROKERS`
//! (scripts/test starts a tansu broker and sets it), so tests never see each other's topics.
//! Either way a reopened subject is a new factory over the same records: a process restart.
//! Kafka's +stable check gets a broker of its own to restart.

use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use switchyard_conformance::Subject;
use switchyard_provider_bus::{EmbeddedBusFactory, KafkaFactory, KafkaSettings};
use switchyard_spi::ProviderFactory;
use tempfile::TempDir;

use crate::Enrolled;
use crate::private::{Private, S3S_ACCESS_KEY, S3S_SECRET_KEY, restart_on_a_thread, s3s_fs};

pub fn enrolled() -> Vec<Enrolled> {
    vec![
        Enrolled::new("bus/embedded", || async { embedded() }),
        Enrolled::new("bus/kafka", || async {
            kafka(&test_brokers(), &unique_namespace())
        })
        .with_stable(|| async {
            let kafka_server = Arc::new(PrivateKafka::start());
            // The broker is the subject's alone; a short namespace keeps the object keys of
            // its store within what s3s-fs can name as files.
            kafka(&kafka_server.address(), "stable")
                .with_backing_restart({
                    let server = kafka_server.clone();
                    move || restart_on_a_thread(server.clone(), |s| s.broker.restart())
                })
                .keeping(kafka_server)
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

/// A tansu broker of one subject's own, which the +stable check restarts (the shared test
/// broker cannot be). The tansu here keeps its log in memory or in S3 only, so its records go
/// to an s3s-fs server over a temp dir (tansu creates its bucket there): a restarted broker
/// finds them.
struct PrivateKafka {
    broker: Private,
    _store: Private,
    _dir: TempDir,
}

impl PrivateKafka {
    fn start() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().to_owned();
        let store = Private::start("s3s-fs", move |port| s3s_fs(port, &path));
        let store_port = store.port();
        let broker = Private::start("tansu", move |port| {
            let listener = format!("tcp://127.0.0.1:{port}");
            let mut command = Command::new("tansu");
            command
                .args(["broker", "--listener-url", &listener])
                .args(["--advertised-listener-url", &listener])
                .args(["--storage-engine", "s3://tansu/"])
                .env("AWS_ENDPOINT", format!("http://127.0.0.1:{store_port}"))
                .env("AWS_ACCESS_KEY_ID", S3S_ACCESS_KEY)
                .env("AWS_SECRET_ACCESS_KEY", S3S_SECRET_KEY)
                .env("AWS_DEFAULT_REGION", "us-east-1")
                .env("AWS_ALLOW_HTTP", "true");
            command
        });
        PrivateKafka {
            broker,
            _store: store,
            _dir: dir,
        }
    }

    fn address(&self) -> String {
        format!("127.0.0.1:{}", self.broker.port())
    }
}
