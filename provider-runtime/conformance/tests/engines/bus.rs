//! The bus engines: embedded, over a temp dir of its own per subject, and Kafka, under a
//! namespace of its own per subject on the broker at `SWITCHYARD_TEST_KAFKA_BROKERS`
//! (scripts/test starts a tansu broker and sets it), so tests never see each other's topics.
//! Either way a reopened subject is a new factory over the same records: a process restart.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use switchyard_conformance::Subject;
use switchyard_provider_bus::{EmbeddedBusFactory, KafkaFactory, KafkaSettings};
use switchyard_spi::ProviderFactory;

use crate::Enrolled;

pub fn enrolled() -> Vec<Enrolled> {
    vec![
        Enrolled::new("bus/embedded", || async { embedded() }),
        Enrolled::new("bus/kafka", || async { kafka() }),
    ]
}

fn embedded() -> Subject {
    let dir = tempfile::tempdir().expect("temp dir for bus/embedded");
    let root = dir.path().to_path_buf();
    let open =
        move || -> Arc<dyn ProviderFactory> { Arc::new(EmbeddedBusFactory::new(root.clone())) };
    Subject::new(open()).with_reopen(open).keeping(dir)
}

fn kafka() -> Subject {
    let brokers = std::env::var("SWITCHYARD_TEST_KAFKA_BROKERS").expect(
        "SWITCHYARD_TEST_KAFKA_BROKERS is not set: run the tests with scripts/test (it starts a \
         tansu broker and sets it) or set it to a Kafka-protocol broker, e.g. 127.0.0.1:59092",
    );
    let settings = KafkaSettings::new(brokers).with_namespace(unique_namespace());
    // The records live on the broker, under the namespace; nothing to keep alive here.
    let open = move || -> Arc<dyn ProviderFactory> {
        Arc::new(KafkaFactory::new(settings.clone()).expect("bus/kafka settings are valid"))
    };
    Subject::new(open()).with_reopen(open)
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
