//! Events Switchyard publishes to Kafka are plain Kafka records with CloudEvents headers: a
//! third-party client (kafka-python, from PyPI) reads them straight from the broker.

use crate::common;

use std::process::Command;

use common::{Server, tenant_with_key};
use serde_json::{Value, json};
use switchyard_client::{HttpClient, ProviderClient};
use switchyard_contracts::{Event, TenantId};
use switchyard_outbox::{Outbox, Relay};

#[tokio::test(flavor = "multi_thread")]
async fn kafka_python_reads_our_relayed_events_with_their_cloudevents_headers() {
    let brokers = std::env::var("SWITCHYARD_TEST_KAFKA_BROKERS").expect(
        "SWITCHYARD_TEST_KAFKA_BROKERS is not set: run the suite with scripts/test (it starts tansu)",
    );
    let python = std::env::var("SWITCHYARD_TEST_KAFKA_PYTHON").expect(
        "SWITCHYARD_TEST_KAFKA_PYTHON is not set: scripts/test makes a venv with kafka-python",
    );
    let namespace = format!("e2e{}", std::process::id());
    let dir = tempfile::tempdir().unwrap();
    let mut env = vec![
        ("SWITCHYARD_KAFKA_BROKERS", brokers.clone()),
        ("SWITCHYARD_KAFKA_NAMESPACE", namespace.clone()),
    ];
    let server = Server::start_with_env(dir.path(), &[], &mut env);
    let key = tenant_with_key(dir.path(), "acme", "*");
    let tenant = TenantId::parse("acme").unwrap();
    let client = HttpClient::new(&server.base, tenant.clone(), &key);
    let outbox = Outbox::new("db/sqlite").unwrap();
    outbox.install(&client).await.unwrap();
    let mut written = Vec::new();
    for n in 0..3 {
        let event = Event::new(
            "orders.order.placed",
            "/tests/kafka",
            "orders",
            json!({"order_id": format!("o-{n}")}),
        )
        .with_key(format!("o-{n}"))
        .with_idempotency_key(format!("idem-{n}"));
        client
            .invoke(
                "db/sqlite",
                "transaction",
                json!({"statements": [outbox.statement(&tenant, &event)]}),
            )
            .await
            .unwrap();
        written.push(event);
    }
    let relay = Relay::new(outbox, "bus/kafka", 100);
    assert_eq!(relay.run_once(&client).await.unwrap(), 3);

    let topic = format!("{namespace}.acme.t.orders");
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/e2e/read_cloudevents.py");
    let out = Command::new(&python)
        .args([script, &brokers, &topic, "3"])
        .output()
        .expect("the kafka-python reader runs");
    assert!(
        out.status.success(),
        "kafka-python did not read 3 records from {topic}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let read: Vec<Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(read.len(), 3);
    for (record, event) in read.iter().zip(&written) {
        let headers = &record["headers"];
        assert_eq!(headers["ce_specversion"], "1.0");
        assert_eq!(headers["ce_id"], event.id.as_str());
        assert_eq!(headers["ce_type"], "orders.order.placed");
        assert_eq!(headers["ce_source"], "/tests/kafka");
        assert_eq!(headers["ce_time"], event.time.as_str());
        assert_eq!(headers["ce_tenantid"], "acme");
        assert_eq!(
            headers["ce_idempotencykey"],
            event.idempotency_key.as_deref().unwrap()
        );
        assert_eq!(headers["content-type"], "application/json");
        assert_eq!(
            headers["tenant_id"], "acme",
            "the engine's own tenant header"
        );
        assert_eq!(record["key"], event.key.as_deref().unwrap());
        assert_eq!(record["value"], event.data);
    }
}
