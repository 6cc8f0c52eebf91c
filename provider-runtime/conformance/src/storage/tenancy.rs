use serde_json::json;
use switchyard_spi::{ErrorCode, HealthStatus};

use crate::Subject;
use crate::storage::{assert_code, assert_params_invalid, b64, content_of, keys_of, put};

pub async fn a_tenant_cannot_reach_another_tenants_objects(s: &Subject) {
    let engine = s.name();
    let acme = s.tenant("acme").await;
    let globex = s.tenant("globex").await;
    put(&acme, "secret.txt", b"acme only").await;

    for action in ["get", "head"] {
        let err = globex.err(action, json!({"key": "secret.txt"})).await;
        assert_code(&engine, &err, ErrorCode::ResourceNotFound);
    }
    for params in [json!({}), json!({"prefix": "secret"})] {
        let page = globex.ok("list", params).await;
        assert!(keys_of(&page).is_empty(), "{engine}: {page}");
    }
    let deleted = globex.ok("delete", json!({"key": "secret.txt"})).await;
    assert_eq!(deleted, json!({"deleted": false}), "{engine}");

    // Climbing out of the tenant's space is refused outright, whatever the action.
    for action in ["get", "head", "delete"] {
        let err = globex
            .err(action, json!({"key": "../acme/secret.txt"}))
            .await;
        assert_params_invalid(&engine, &err, "/key");
    }
    let err = globex
        .err(
            "put",
            json!({"key": "../acme/secret.txt", "content_base64": b64(b"overwritten")}),
        )
        .await;
    assert_params_invalid(&engine, &err, "/key");

    assert_eq!(
        content_of(&acme, "secret.txt").await,
        b"acme only",
        "{engine}"
    );
}

pub async fn the_same_key_in_two_tenants_is_two_objects(s: &Subject) {
    let engine = s.name();
    let acme = s.tenant("acme").await;
    let globex = s.tenant("globex").await;
    put(&acme, "config.json", b"{\"acme\":1}").await;
    put(&globex, "config.json", b"{\"globex\":2}").await;
    assert_eq!(
        content_of(&acme, "config.json").await,
        b"{\"acme\":1}",
        "{engine}"
    );
    acme.ok("delete", json!({"key": "config.json"})).await;
    assert_eq!(
        content_of(&globex, "config.json").await,
        b"{\"globex\":2}",
        "{engine}"
    );
}

pub async fn objects_survive_a_restart(s: &Subject) {
    let engine = s.name();
    let acme = s.tenant("acme").await;
    put(&acme, "kept/one", b"1").await;
    put(&acme, "kept/two", b"22").await;
    acme.provider.stop().await;
    drop(acme);

    let restarted = s.reopened();
    let acme = restarted.tenant("acme").await;
    let page = acme.ok("list", json!({})).await;
    assert_eq!(keys_of(&page), ["kept/one", "kept/two"], "{engine}");
    assert_eq!(content_of(&acme, "kept/two").await, b"22", "{engine}");
}

pub async fn two_instances_of_a_tenant_share_its_objects(s: &Subject) {
    let engine = s.name();
    // A reconfigure starts the new instance while the old one still serves calls.
    let old = s.tenant("acme").await;
    let new = s
        .tenant_with_config("acme", json!({"max_object_bytes": 1024}))
        .await;
    put(&old, "from-old", b"o").await;
    put(&new, "from-new", b"n").await;
    assert_eq!(content_of(&new, "from-old").await, b"o", "{engine}");
    assert_eq!(content_of(&old, "from-new").await, b"n", "{engine}");
    for instance in [&old, &new] {
        let page = instance.ok("list", json!({})).await;
        assert_eq!(keys_of(&page), ["from-new", "from-old"], "{engine}");
    }
    new.ok("delete", json!({"key": "from-old"})).await;
    let err = old.err("get", json!({"key": "from-old"})).await;
    assert_code(&engine, &err, ErrorCode::ResourceNotFound);
}

pub async fn a_started_tenant_is_healthy(s: &Subject) {
    let engine = s.name();
    let acme = s.tenant("acme").await;
    let health = acme.provider.health().await;
    assert_eq!(health.status, HealthStatus::Up, "{engine}: {health:?}");
    assert!(!health.dependencies.is_empty(), "{engine}");
}
