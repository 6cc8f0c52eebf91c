//! The `cache` domain suite (`contracts/schemas/domains/cache.json`): every cache engine must
//! pass every check here, unchanged.

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use switchyard_spi::ErrorCode;
use switchyard_spi::testkit::Harness;

use crate::reconnect::answer_after_restart;
use crate::{Check, Level, Subject, check};

/// Every check with its level, in the order reports list them.
pub fn checks() -> Vec<Check> {
    vec![
        check!(Level::Core, set_then_get_returns_the_json_value),
        check!(Level::Core, get_of_a_missing_key_is_not_an_error),
        check!(Level::Core, a_key_expires_after_its_ttl),
        check!(
            Level::Core,
            the_tenant_default_ttl_applies_when_a_call_gives_none
        ),
        check!(Level::Core, oversized_values_are_refused_and_not_stored),
        check!(
            Level::Core,
            params_outside_the_schema_are_refused_with_pointers
        ),
        check!(Level::Core, delete_reports_whether_the_key_existed),
        check!(Level::Core, delete_prefix_removes_exactly_the_matching_keys),
        check!(Level::Core, incr_counts_from_zero_and_by_any_step),
        check!(
            Level::Core,
            incr_on_a_non_integer_is_a_conflict_and_changes_nothing
        ),
        check!(Level::Core, mset_then_mget_answers_in_the_order_asked),
        check!(
            Level::Transactions,
            an_mset_with_one_oversized_value_stores_nothing
        ),
        check!(Level::Transactions, concurrent_incr_loses_no_update),
        check!(
            Level::Isolation,
            one_tenant_never_reads_counts_or_deletes_another_tenants_keys
        ),
        check!(
            Level::Resilience,
            a_restarted_instance_of_the_same_tenant_keeps_its_keys
        ),
        check!(
            Level::Stable,
            the_instance_reconnects_after_its_backing_server_restarts
        ),
    ]
}

/// The engine's id, for failure messages.
fn engine(h: &Harness) -> String {
    let d = h.factory.descriptor();
    format!("{}/{}", d.domain, d.name)
}

pub async fn set_then_get_returns_the_json_value(h: &Harness) {
    let engine = engine(h);
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

pub async fn get_of_a_missing_key_is_not_an_error(h: &Harness) {
    let engine = engine(h);
    let t = h.tenant("acme").await;
    let got = t.ok("get", json!({"key": "absent"})).await;
    assert_eq!(
        got,
        json!({"key": "absent", "found": false, "value": null}),
        "{engine}"
    );
}

pub async fn a_key_expires_after_its_ttl(h: &Harness) {
    let engine = engine(h);
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

pub async fn the_tenant_default_ttl_applies_when_a_call_gives_none(h: &Harness) {
    let engine = engine(h);
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

pub async fn oversized_values_are_refused_and_not_stored(h: &Harness) {
    let engine = engine(h);
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

pub async fn params_outside_the_schema_are_refused_with_pointers(h: &Harness) {
    let engine = engine(h);
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

pub async fn delete_reports_whether_the_key_existed(h: &Harness) {
    let engine = engine(h);
    let t = h.tenant("acme").await;
    t.ok("set", json!({"key": "k", "value": true})).await;
    assert_eq!(
        t.ok("delete", json!({"key": "k"})).await,
        json!({"deleted": true}),
        "{engine}"
    );
    assert_eq!(
        t.ok("delete", json!({"key": "k"})).await,
        json!({"deleted": false}),
        "{engine}"
    );
    assert_eq!(
        t.ok("get", json!({"key": "k"})).await["found"],
        false,
        "{engine}"
    );
}

pub async fn delete_prefix_removes_exactly_the_matching_keys(h: &Harness) {
    let engine = engine(h);
    let t = h.tenant("acme").await;
    for key in ["user:1", "user:2", "user:3", "users", "order:1"] {
        t.ok("set", json!({"key": key, "value": key})).await;
    }
    assert_eq!(
        t.ok("delete_prefix", json!({"prefix": "user:"})).await,
        json!({"deleted": 3}),
        "{engine}"
    );
    let got = t
        .ok("mget", json!({"keys": ["user:1", "users", "order:1"]}))
        .await;
    let found: Vec<bool> = got["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["found"] == true)
        .collect();
    assert_eq!(found, vec![false, true, true], "{engine}");
}

pub async fn incr_counts_from_zero_and_by_any_step(h: &Harness) {
    let engine = engine(h);
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

pub async fn incr_on_a_non_integer_is_a_conflict_and_changes_nothing(h: &Harness) {
    let engine = engine(h);
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

pub async fn concurrent_incr_loses_no_update(h: &Harness) {
    let engine = engine(h);
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

pub async fn mset_then_mget_answers_in_the_order_asked(h: &Harness) {
    let engine = engine(h);
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

pub async fn an_mset_with_one_oversized_value_stores_nothing(h: &Harness) {
    let engine = engine(h);
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

/// Tenant A's keys are invisible to tenant B, whatever action B uses.
pub async fn one_tenant_never_reads_counts_or_deletes_another_tenants_keys(h: &Harness) {
    let engine = engine(h);
    let acme = h.tenant("acme").await;
    let globex = h.tenant("globex").await;
    acme.ok("set", json!({"key": "secret", "value": "acme-only"}))
        .await;
    acme.ok("incr", json!({"key": "counter", "by": 5})).await;

    assert_eq!(
        globex.ok("get", json!({"key": "secret"})).await["found"],
        false,
        "{engine}"
    );
    let many = globex
        .ok("mget", json!({"keys": ["secret", "counter"]}))
        .await;
    assert!(
        many["entries"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["found"] == false),
        "{engine}"
    );
    assert_eq!(
        globex.ok("incr", json!({"key": "counter"})).await["value"],
        1,
        "{engine}"
    );
    assert_eq!(
        globex.ok("delete", json!({"key": "secret"})).await["deleted"],
        false,
        "{engine}"
    );
    assert_eq!(
        globex.ok("delete_prefix", json!({"prefix": "s"})).await["deleted"],
        0,
        "{engine}"
    );

    assert_eq!(
        acme.ok("get", json!({"key": "secret"})).await["value"],
        "acme-only",
        "{engine}"
    );
    assert_eq!(
        acme.ok("get", json!({"key": "counter"})).await["value"],
        5,
        "{engine}"
    );
}

/// The runtime starts a new instance on every reconfigure (hot swap); keys must survive it.
pub async fn a_restarted_instance_of_the_same_tenant_keeps_its_keys(h: &Harness) {
    let engine = engine(h);
    let old = h.tenant("acme").await;
    old.ok("set", json!({"key": "k", "value": 1})).await;
    let new = h
        .tenant_with_config("acme", json!({"default_ttl_ms": 60000}))
        .await;
    assert_eq!(
        new.ok("get", json!({"key": "k"})).await["value"],
        1,
        "{engine}"
    );
    assert_eq!(
        old.ok("get", json!({"key": "k"})).await["value"],
        1,
        "{engine}"
    );
}

/// The same instance, never restarted itself, answers again soon after its backing server
/// restarts and reads what the server kept; meanwhile it fails only with retryable errors.
pub async fn the_instance_reconnects_after_its_backing_server_restarts(s: &Subject) {
    let engine = s.name();
    let t = s.tenant("acme").await;
    t.ok("set", json!({"key": "before", "value": 1})).await;
    s.restart_backing().await;
    let got = answer_after_restart(&engine, &t, "get", json!({"key": "before"})).await;
    assert_eq!(got["value"], 1, "{engine}: the key set before the restart");
    t.ok("set", json!({"key": "after", "value": 2})).await;
    assert_eq!(
        t.ok("get", json!({"key": "after"})).await["value"],
        2,
        "{engine}"
    );
}
