//! `publish`: a batch gets consecutive offsets of its topic, acknowledged only once stored.

use std::collections::HashMap;
use std::sync::Arc;

use serde_json::{Value, json};
use switchyard_spi::ErrorCode;

use super::{offsets_of, payloads, publish};
use crate::Subject;

pub async fn batches_get_consecutive_offsets_starting_at_zero(s: &Subject) {
    let acme = s.tenant("acme").await;

    let first = publish(&acme, "orders", &[json!(1), json!(2), json!(3)]).await;
    let second = publish(&acme, "orders", &[json!(4), json!(5)]).await;

    assert_eq!(first, [0, 1, 2], "{}", s.name());
    assert_eq!(second, [3, 4], "{}", s.name());
}

pub async fn publish_echoes_the_topic(s: &Subject) {
    let acme = s.tenant("acme").await;

    let result = acme
        .ok(
            "publish",
            json!({"topic": "orders.v1", "messages": [{"payload": {"id": 7}}]}),
        )
        .await;

    assert_eq!(result["topic"], "orders.v1", "{}", s.name());
}

pub async fn topics_have_independent_offsets(s: &Subject) {
    let acme = s.tenant("acme").await;

    publish(&acme, "orders", &[json!("a"), json!("b")]).await;
    let invoices = publish(&acme, "invoices", &[json!("c")]).await;
    let orders = publish(&acme, "orders", &[json!("d")]).await;

    assert_eq!(invoices, [0], "{}", s.name());
    assert_eq!(orders, [2], "{}", s.name());
}

pub async fn concurrent_publishers_get_dense_unique_offsets_and_lose_nothing(s: &Subject) {
    const TASKS: u64 = 8;
    const PER_TASK: u64 = 25;
    let acme = Arc::new(s.tenant("acme").await);

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
            s.name()
        );
        for (seq, offset) in offsets.into_iter().enumerate() {
            let previous = acknowledged.insert(offset, json!({"task": task, "seq": seq}));
            assert!(
                previous.is_none(),
                "{}: offset {offset} given twice",
                s.name()
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
        s.name()
    );

    let read = acme
        .ok("replay", json!({"topic": "orders", "max_records": 1000}))
        .await;
    let stored = payloads(&read);
    assert_eq!(stored.len() as u64, total, "{}: records lost", s.name());
    for (offset, payload) in stored.iter().enumerate() {
        assert_eq!(
            Some(payload),
            acknowledged.get(&(offset as u64)),
            "{}: offset {offset} holds another message than acknowledged",
            s.name()
        );
    }
}

pub async fn an_invalid_topic_name_is_params_invalid_at_topic(s: &Subject) {
    let acme = s.tenant("acme").await;

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
            s.name()
        );
        assert!(
            err.errors.iter().any(|e| e.pointer == "/topic"),
            "{}: {topic:?} -> {:?}",
            s.name(),
            err.errors
        );
    }
}

pub async fn an_empty_batch_is_params_invalid(s: &Subject) {
    let acme = s.tenant("acme").await;

    let err = acme
        .err("publish", json!({"topic": "orders", "messages": []}))
        .await;

    assert_eq!(err.code, ErrorCode::ParamsInvalid, "{}", s.name());
    assert!(
        err.errors.iter().any(|e| e.pointer == "/messages"),
        "{}: {:?}",
        s.name(),
        err.errors
    );
}
