use serde_json::json;
use switchyard_spi::ErrorCode;

use crate::engines;

#[tokio::test]
async fn mset_then_mget_answers_in_the_order_asked() {
    for (engine, h) in engines() {
        let t = h.tenant("acme").await;
        let stored = t
            .ok("mset", json!({"entries": [{"key": "a", "value": 1}, {"key": "b", "value": "two", "ttl_ms": 60000}]}))
            .await;
        assert_eq!(stored, json!({"stored": 2}), "{engine}");
        let got = t.ok("mget", json!({"keys": ["b", "missing", "a"]})).await;
        assert_eq!(
            got,
            json!({"entries": [
                {"key": "b", "found": true, "value": "two"},
                {"key": "missing", "found": false, "value": null},
                {"key": "a", "found": true, "value": 1}
            ]}),
            "{engine}"
        );
    }
}

#[tokio::test]
async fn an_mset_with_one_oversized_value_stores_nothing() {
    for (engine, h) in engines() {
        let t = h
            .tenant_with_config("acme", json!({"max_value_bytes": 8}))
            .await;
        let err = t
            .err("mset", json!({"entries": [{"key": "ok", "value": 1}, {"key": "big", "value": "x".repeat(32)}]}))
            .await;
        assert_eq!(err.code, ErrorCode::PayloadTooLarge, "{engine}");
        assert_eq!(err.errors[0].pointer, "/entries/1/value", "{engine}");
        assert_eq!(
            t.ok("get", json!({"key": "ok"})).await["found"],
            false,
            "{engine}"
        );
    }
}
