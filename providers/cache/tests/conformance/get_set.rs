use std::time::Duration;

use serde_json::json;
use switchyard_spi::ErrorCode;

use crate::engines;

#[tokio::test]
async fn set_then_get_returns_the_json_value() {
    for (engine, h) in engines() {
        let t = h.tenant("acme").await;
        let value = json!({"sku": "A-1", "qty": 3, "tags": ["x"], "price": 1.5});
        assert_eq!(
            t.ok("set", json!({"key": "item:1", "value": value})).await,
            json!({"key": "item:1"})
        );
        let got = t.ok("get", json!({"key": "item:1"})).await;
        assert_eq!(
            got,
            json!({"key": "item:1", "found": true, "value": value}),
            "{engine}"
        );
    }
}

#[tokio::test]
async fn get_of_a_missing_key_is_not_an_error() {
    for (engine, h) in engines() {
        let t = h.tenant("acme").await;
        let got = t.ok("get", json!({"key": "absent"})).await;
        assert_eq!(
            got,
            json!({"key": "absent", "found": false, "value": null}),
            "{engine}"
        );
    }
}

#[tokio::test]
async fn a_key_expires_after_its_ttl() {
    for (engine, h) in engines() {
        let t = h.tenant("acme").await;
        t.ok("set", json!({"key": "short", "value": 1, "ttl_ms": 150}))
            .await;
        t.ok("set", json!({"key": "long", "value": 2})).await;
        assert_eq!(
            t.ok("get", json!({"key": "short"})).await["found"],
            true,
            "{engine}"
        );
        tokio::time::sleep(Duration::from_millis(400)).await;
        assert_eq!(
            t.ok("get", json!({"key": "short"})).await["found"],
            false,
            "{engine}"
        );
        assert_eq!(
            t.ok("get", json!({"key": "long"})).await["found"],
            true,
            "{engine}"
        );
    }
}

#[tokio::test]
async fn the_tenant_default_ttl_applies_when_a_call_gives_none() {
    for (engine, h) in engines() {
        let t = h
            .tenant_with_config("acme", json!({"default_ttl_ms": 150}))
            .await;
        t.ok("set", json!({"key": "k", "value": 1})).await;
        tokio::time::sleep(Duration::from_millis(400)).await;
        assert_eq!(
            t.ok("get", json!({"key": "k"})).await["found"],
            false,
            "{engine}"
        );
    }
}

#[tokio::test]
async fn oversized_values_are_refused_and_not_stored() {
    for (engine, h) in engines() {
        let t = h
            .tenant_with_config("acme", json!({"max_value_bytes": 16}))
            .await;
        let err = t
            .err("set", json!({"key": "big", "value": "x".repeat(64)}))
            .await;
        assert_eq!(err.code, ErrorCode::PayloadTooLarge, "{engine}");
        assert_eq!(err.errors[0].pointer, "/value", "{engine}");
        assert_eq!(
            t.ok("get", json!({"key": "big"})).await["found"],
            false,
            "{engine}"
        );
    }
}

#[tokio::test]
async fn params_outside_the_schema_are_refused_with_pointers() {
    for (engine, h) in engines() {
        let t = h.tenant("acme").await;
        let err = t.err("set", json!({"key": "", "ttl_ms": 0})).await;
        assert_eq!(err.code, ErrorCode::ParamsInvalid, "{engine}");
        let pointers: Vec<&str> = err.errors.iter().map(|e| e.pointer.as_str()).collect();
        for expected in ["/key", "/value", "/ttl_ms"] {
            assert!(
                pointers.contains(&expected),
                "{engine}: {pointers:?} lacks {expected}"
            );
        }
    }
}
