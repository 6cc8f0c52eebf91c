use std::collections::HashMap;
use std::sync::Arc;

use serde_json::{Value, json};
use switchyard_spi::ErrorCode;

use crate::{engines, offsets_of, payloads, publish};

#[tokio::test]
async fn batches_get_consecutive_offsets_starting_at_zero() {
    for engine in engines() {
        let bus = engine.harness();
        let acme = bus.tenant("acme").await;

        let first = publish(&acme, "orders", &[json!(1), json!(2), json!(3)]).await;
        let second = publish(&acme, "orders", &[json!(4), json!(5)]).await;

        assert_eq!(first, [0, 1, 2], "{}", engine.name);
        assert_eq!(second, [3, 4], "{}", engine.name);
    }
}

#[tokio::test]
async fn publish_echoes_the_topic() {
    for engine in engines() {
        let bus = engine.harness();
        let acme = bus.tenant("acme").await;

        let result = acme
            .ok(
                "publish",
                json!({"topic": "orders.v1", "messages": [{"payload": {"id": 7}}]}),
            )
            .await;

        assert_eq!(result["topic"], "orders.v1", "{}", engine.name);
    }
}

#[tokio::test]
async fn topics_have_independent_offsets() {
    for engine in engines() {
        let bus = engine.harness();
        let acme = bus.tenant("acme").await;

        publish(&acme, "orders", &[json!("a"), json!("b")]).await;
        let invoices = publish(&acme, "invoices", &[json!("c")]).await;
        let orders = publish(&acme, "orders", &[json!("d")]).await;

        assert_eq!(invoices, [0], "{}", engine.name);
        assert_eq!(orders, [2], "{}", engine.name);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_publishers_get_dense_unique_offsets_and_lose_nothing() {
    const TASKS: u64 = 8;
    const PER_TASK: u64 = 25;
    for engine in engines() {
        let bus = engine.harness();
        if !bus.has_capability("ordering") {
            continue;
        }
        let acme = Arc::new(bus.tenant("acme").await);

        let publishers: Vec<_> = (0..TASKS)
            .map(|task| {
                let acme = acme.clone();
                tokio::spawn(async move {
                    let mut offsets = Vec::new();
                    for seq in 0..PER_TASK {
                        let result = acme
                            .ok(
                                "publish",
                                json!({"topic": "orders", "messages": [
                                    {"key": format!("task-{task}"), "payload": {"task": task, "seq": seq}}
                                ]}),
                            )
                            .await;
                        offsets.extend(offsets_of(&result["offsets"]));
                    }
                    (task, offsets)
                })
            })
            .collect();
        let mut acknowledged: HashMap<u64, Value> = HashMap::new();
        for publisher in publishers {
            let (task, offsets) = publisher.await.expect("publisher task");
            assert!(
                offsets.is_sorted(),
                "{}: one publisher's offsets go backwards: {offsets:?}",
                engine.name
            );
            for (seq, offset) in offsets.into_iter().enumerate() {
                let previous = acknowledged.insert(offset, json!({"task": task, "seq": seq}));
                assert!(
                    previous.is_none(),
                    "{}: offset {offset} given twice",
                    engine.name
                );
            }
        }

        let total = TASKS * PER_TASK;
        let mut all: Vec<u64> = acknowledged.keys().copied().collect();
        all.sort_unstable();
        assert_eq!(
            all,
            (0..total).collect::<Vec<_>>(),
            "{}: offsets not dense",
            engine.name
        );

        let read = acme
            .ok("replay", json!({"topic": "orders", "max_records": 1000}))
            .await;
        let stored = payloads(&read);
        assert_eq!(stored.len() as u64, total, "{}: records lost", engine.name);
        for (offset, payload) in stored.iter().enumerate() {
            assert_eq!(
                Some(payload),
                acknowledged.get(&(offset as u64)),
                "{}: offset {offset} holds another message than acknowledged",
                engine.name
            );
        }
    }
}

#[tokio::test]
async fn an_invalid_topic_name_is_params_invalid_at_topic() {
    for engine in engines() {
        let bus = engine.harness();
        let acme = bus.tenant("acme").await;

        for topic in ["", "has space", "a/b", "ümlaut", &"x".repeat(250)] {
            let err = acme
                .err(
                    "publish",
                    json!({"topic": topic, "messages": [{"payload": 1}]}),
                )
                .await;
            assert_eq!(
                err.code,
                ErrorCode::ParamsInvalid,
                "{}: {topic:?}",
                engine.name
            );
            assert!(
                err.errors.iter().any(|e| e.pointer == "/topic"),
                "{}: {topic:?} -> {:?}",
                engine.name,
                err.errors
            );
        }
    }
}

#[tokio::test]
async fn an_empty_batch_is_params_invalid() {
    for engine in engines() {
        let bus = engine.harness();
        let acme = bus.tenant("acme").await;

        let err = acme
            .err("publish", json!({"topic": "orders", "messages": []}))
            .await;

        assert_eq!(err.code, ErrorCode::ParamsInvalid, "{}", engine.name);
        assert!(
            err.errors.iter().any(|e| e.pointer == "/messages"),
            "{}: {:?}",
            engine.name,
            err.errors
        );
    }
}
