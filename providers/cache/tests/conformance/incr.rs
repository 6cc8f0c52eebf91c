use std::sync::Arc;

use serde_json::json;
use switchyard_spi::ErrorCode;

use crate::engines;

#[tokio::test]
async fn incr_counts_from_zero_and_by_any_step() {
    for (engine, h) in engines() {
        let t = h.tenant("acme").await;
        assert_eq!(
            t.ok("incr", json!({"key": "n"})).await,
            json!({"key": "n", "value": 1}),
            "{engine}"
        );
        assert_eq!(
            t.ok("incr", json!({"key": "n", "by": 10})).await["value"],
            11,
            "{engine}"
        );
        assert_eq!(
            t.ok("incr", json!({"key": "n", "by": -12})).await["value"],
            -1,
            "{engine}"
        );
        assert_eq!(
            t.ok("get", json!({"key": "n"})).await["value"],
            -1,
            "{engine}"
        );
    }
}

#[tokio::test]
async fn incr_on_a_non_integer_is_a_conflict_and_changes_nothing() {
    for (engine, h) in engines() {
        let t = h.tenant("acme").await;
        t.ok("set", json!({"key": "s", "value": "text"})).await;
        assert_eq!(
            t.err("incr", json!({"key": "s"})).await.code,
            ErrorCode::Conflict,
            "{engine}"
        );
        assert_eq!(
            t.ok("get", json!({"key": "s"})).await["value"],
            "text",
            "{engine}"
        );
        t.ok("set", json!({"key": "max", "value": i64::MAX})).await;
        assert_eq!(
            t.err("incr", json!({"key": "max"})).await.code,
            ErrorCode::Conflict,
            "{engine}"
        );
    }
}

#[tokio::test]
async fn concurrent_incr_loses_no_update() {
    for (engine, h) in engines() {
        let t = Arc::new(h.tenant("acme").await);
        let mut tasks = Vec::new();
        for _ in 0..8 {
            let t = t.clone();
            tasks.push(tokio::spawn(async move {
                for _ in 0..50 {
                    t.ok("incr", json!({"key": "hits"})).await;
                }
            }));
        }
        for task in tasks {
            task.await.unwrap();
        }
        assert_eq!(
            t.ok("get", json!({"key": "hits"})).await["value"],
            400,
            "{engine}"
        );
    }
}
