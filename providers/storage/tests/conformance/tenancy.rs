use serde_json::json;
use switchyard_spi::{ErrorCode, HealthStatus};

use crate::{assert_code, assert_params_invalid, b64, content_of, engines, keys_of, put};

#[tokio::test]
async fn a_tenant_cannot_reach_another_tenants_objects() {
    for engine in engines() {
        let acme = engine.harness.tenant("acme").await;
        let globex = engine.harness.tenant("globex").await;
        put(&acme, "secret.txt", b"acme only").await;

        for action in ["get", "head"] {
            let err = globex.err(action, json!({"key": "secret.txt"})).await;
            assert_code(&engine, &err, ErrorCode::ResourceNotFound);
        }
        for params in [json!({}), json!({"prefix": "secret"})] {
            let page = globex.ok("list", params).await;
            assert!(keys_of(&page).is_empty(), "{}: {page}", engine.name);
        }
        let deleted = globex.ok("delete", json!({"key": "secret.txt"})).await;
        assert_eq!(deleted, json!({"deleted": false}), "{}", engine.name);

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
            "{}",
            engine.name
        );
    }
}

#[tokio::test]
async fn the_same_key_in_two_tenants_is_two_objects() {
    for engine in engines() {
        let acme = engine.harness.tenant("acme").await;
        let globex = engine.harness.tenant("globex").await;
        put(&acme, "config.json", b"{\"acme\":1}").await;
        put(&globex, "config.json", b"{\"globex\":2}").await;
        assert_eq!(
            content_of(&acme, "config.json").await,
            b"{\"acme\":1}",
            "{}",
            engine.name
        );
        acme.ok("delete", json!({"key": "config.json"})).await;
        assert_eq!(
            content_of(&globex, "config.json").await,
            b"{\"globex\":2}",
            "{}",
            engine.name
        );
    }
}

#[tokio::test]
async fn objects_survive_a_restart() {
    for engine in engines() {
        let acme = engine.harness.tenant("acme").await;
        put(&acme, "kept/one", b"1").await;
        put(&acme, "kept/two", b"22").await;
        acme.provider.stop().await;
        drop(acme);

        let restarted = (engine.reopen)();
        let acme = restarted.tenant("acme").await;
        let page = acme.ok("list", json!({})).await;
        assert_eq!(keys_of(&page), ["kept/one", "kept/two"], "{}", engine.name);
        assert_eq!(
            content_of(&acme, "kept/two").await,
            b"22",
            "{}",
            engine.name
        );
    }
}

#[tokio::test]
async fn two_instances_of_a_tenant_share_its_objects() {
    for engine in engines() {
        // A reconfigure starts the new instance while the old one still serves calls.
        let old = engine.harness.tenant("acme").await;
        let new = engine
            .harness
            .tenant_with_config("acme", json!({"max_object_bytes": 1024}))
            .await;
        put(&old, "from-old", b"o").await;
        put(&new, "from-new", b"n").await;
        assert_eq!(content_of(&new, "from-old").await, b"o", "{}", engine.name);
        assert_eq!(content_of(&old, "from-new").await, b"n", "{}", engine.name);
        for instance in [&old, &new] {
            let page = instance.ok("list", json!({})).await;
            assert_eq!(keys_of(&page), ["from-new", "from-old"], "{}", engine.name);
        }
        new.ok("delete", json!({"key": "from-old"})).await;
        let err = old.err("get", json!({"key": "from-old"})).await;
        assert_code(&engine, &err, ErrorCode::ResourceNotFound);
    }
}

#[tokio::test]
async fn a_started_tenant_is_healthy() {
    for engine in engines() {
        let acme = engine.harness.tenant("acme").await;
        let health = acme.provider.health().await;
        assert_eq!(
            health.status,
            HealthStatus::Up,
            "{}: {health:?}",
            engine.name
        );
        assert!(!health.dependencies.is_empty(), "{}", engine.name);
    }
}
