//! Tenant A's keys are invisible to tenant B, whatever action B uses.

use serde_json::json;

use crate::engines;

#[tokio::test]
async fn one_tenant_never_reads_counts_or_deletes_another_tenants_keys() {
    for (engine, h) in engines() {
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
}

#[tokio::test]
async fn a_restarted_instance_of_the_same_tenant_keeps_its_keys() {
    // The runtime starts a new instance on every reconfigure (hot swap); keys must survive it.
    for (engine, h) in engines() {
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
}
