//! What `bus/kafka` leaves on the cluster, read with a plain Kafka client: the names and
//! headers ADR 0010 promises to operators and to consumers outside the gateway. Needs the
//! broker at `SWITCHYARD_TEST_KAFKA_BROKERS`, like the conformance suite.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Headers, Message};
use rdkafka::{Offset, TopicPartitionList};
use serde_json::{Value, json};
use switchyard_provider_bus::{KafkaFactory, KafkaSettings};
use switchyard_spi::HealthStatus;
use switchyard_spi::testkit::Harness;

const TIMEOUT: Duration = Duration::from_secs(10);

fn brokers() -> String {
    std::env::var("SWITCHYARD_TEST_KAFKA_BROKERS").expect(
        "SWITCHYARD_TEST_KAFKA_BROKERS is not set: run the tests with scripts/test (it starts a \
         tansu broker and sets it) or set it to a Kafka-protocol broker, e.g. 127.0.0.1:59092",
    )
}

fn client(group: &str) -> BaseConsumer {
    ClientConfig::new()
        .set("bootstrap.servers", brokers())
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .create()
        .expect("a Kafka client")
}

#[tokio::test]
async fn topics_groups_and_headers_are_what_operators_are_told() {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_nanos();
    let namespace = format!("sylayout-{}-{nanos}", std::process::id());
    let bus = Harness::new(Arc::new(
        KafkaFactory::new(KafkaSettings::new(brokers()).with_namespace(&namespace))
            .expect("bus/kafka"),
    ));
    let acme = bus.tenant("acme").await;
    acme.ok(
        "publish",
        json!({"topic": "orders", "messages": [
            {"key": "o-1", "headers": {"event_id": "e-1", "tenant_id": "claimed"}, "payload": {"id": 1}},
            {"payload": 2}
        ]}),
    )
    .await;
    acme.ok(
        "commit",
        json!({"topic": "orders", "group": "billing", "offset": 1}),
    )
    .await;

    let health = acme.provider.health().await;
    assert_eq!(health.status, HealthStatus::Up, "{health:?}");

    let topic = format!("{namespace}.acme.t.orders");
    let layout = tokio::task::spawn_blocking(move || {
        let reader = client(&format!("{namespace}.layout-check"));
        let metadata = reader
            .fetch_metadata(Some(&topic), TIMEOUT)
            .expect("metadata");
        let partitions = metadata.topics()[0].partitions().len();
        // Health asks for metadata of a topic that must not come into being by being asked for.
        let health_probe = reader
            .fetch_metadata(Some(&format!("{namespace}._health")), TIMEOUT)
            .expect("metadata");
        assert!(
            health_probe.topics()[0].partitions().is_empty(),
            "health created its probe topic"
        );
        let mut at_zero = TopicPartitionList::new();
        at_zero
            .add_partition_offset(&topic, 0, Offset::Offset(0))
            .expect("partition");
        reader.assign(&at_zero).expect("assign");
        let message = reader
            .poll(TIMEOUT)
            .expect("a record within the timeout")
            .expect("a record");
        let headers: Vec<(String, String)> = message
            .headers()
            .expect("headers")
            .iter()
            .map(|h| {
                let value = String::from_utf8(h.value.expect("a value").to_vec()).expect("utf-8");
                (h.key.to_owned(), value)
            })
            .collect();
        let key = message
            .key()
            .map(|k| String::from_utf8_lossy(k).into_owned());
        let value: Value =
            serde_json::from_slice(message.payload().expect("a value")).expect("JSON");

        let mut billing = TopicPartitionList::new();
        billing.add_partition(&topic, 0);
        let committed = client(&format!("{namespace}.acme.billing"))
            .committed_offsets(billing, TIMEOUT)
            .expect("committed offsets")
            .find_partition(&topic, 0)
            .expect("the partition")
            .offset();
        (partitions, key, headers, value, committed)
    })
    .await
    .expect("the blocking checks");

    let (partitions, key, headers, value, committed) = layout;
    assert_eq!(partitions, 1, "one partition keeps offsets dense");
    assert_eq!(key.as_deref(), Some("o-1"));
    assert_eq!(value, json!({"id": 1}));
    assert_eq!(
        headers,
        [
            ("event_id".to_owned(), "e-1".to_owned()),
            ("tenant_id".to_owned(), "claimed".to_owned()),
            ("tenant_id".to_owned(), "acme".to_owned()),
        ],
        "the caller's headers in order, then the engine's tenant_id last"
    );
    assert_eq!(committed, Offset::Offset(1));

    // Through the contract the engine's header is not shown; the caller's own is.
    let polled = acme
        .ok(
            "poll",
            json!({"topic": "orders", "group": "audit", "max_records": 1}),
        )
        .await;
    assert_eq!(
        polled["records"][0]["headers"],
        json!({"event_id": "e-1", "tenant_id": "claimed"})
    );
}

/// A replay of a topic before anything was published to it reads nothing, and the next replay
/// after a publish reads the record, through the same instance (and so the same pooled reader,
/// which must not keep believing the topic missing).
#[tokio::test]
async fn a_topic_replayed_before_it_exists_is_read_once_published() {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_nanos();
    let namespace = format!("sylate-{}-{nanos}", std::process::id());
    let bus = Harness::new(Arc::new(
        KafkaFactory::new(KafkaSettings::new(brokers()).with_namespace(&namespace))
            .expect("bus/kafka"),
    ));
    let acme = bus.tenant("acme").await;
    let replay = json!({"topic": "orders", "from_offset": 0});
    let before = acme.ok("replay", replay.clone()).await;
    assert_eq!(before["records"], json!([]), "{before}");
    acme.ok(
        "publish",
        json!({"topic": "orders", "messages": [{"payload": {"id": 1}}]}),
    )
    .await;
    let after = acme.ok("replay", replay).await;
    assert_eq!(after["records"][0]["payload"], json!({"id": 1}), "{after}");
}
