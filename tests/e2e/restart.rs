//! What must survive a restart, including an unclean one, and a reconfigure under load.

use crate::common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use common::{Api, Server, tenant_with_key};
use serde_json::json;

#[tokio::test(flavor = "multi_thread")]
async fn acknowledged_events_survive_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = Server::start(dir.path());
    let key = tenant_with_key(dir.path(), "acme", "*");
    let api = Api::new(&server, &key);
    let mut acknowledged = Vec::new();
    for n in 0..50 {
        let data = api
            .ok(
                "bus/embedded",
                "publish",
                json!({"topic": "ledger", "messages": [{"payload": {"n": n}}]}),
            )
            .await;
        acknowledged.push(data["offsets"][0].as_i64().unwrap());
    }
    api.ok(
        "bus/embedded",
        "commit",
        json!({"topic": "ledger", "group": "audit", "offset": 10}),
    )
    .await;
    server.kill9();

    let server = Server::start(dir.path());
    let api = Api::new(&server, &key);
    let replay = api
        .ok(
            "bus/embedded",
            "replay",
            json!({"topic": "ledger", "from_offset": 0, "max_records": 1000}),
        )
        .await;
    let offsets: Vec<i64> = replay["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["offset"].as_i64().unwrap())
        .collect();
    assert_eq!(offsets, acknowledged);
    let payloads: Vec<i64> = replay["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["payload"]["n"].as_i64().unwrap())
        .collect();
    assert_eq!(payloads, (0..50).collect::<Vec<_>>());
    let polled = api
        .ok(
            "bus/embedded",
            "poll",
            json!({"topic": "ledger", "group": "audit", "max_records": 1}),
        )
        .await;
    assert_eq!(
        polled["records"][0]["offset"], 10,
        "the committed offset survived too"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_tenants_config_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let key;
    {
        let server = Server::start(dir.path());
        key = tenant_with_key(dir.path(), "acme", "*");
        let api = Api::new(&server, &key);
        let (status, body) = api
            .post(
                "/providers/cache/memory/configure",
                json!({"config": {"default_ttl_ms": 60000}}),
            )
            .await;
        assert_eq!(
            (status.as_u16(), body["version"].as_i64()),
            (200, Some(1)),
            "{body}"
        );
        let (status, body) = api
            .post(
                "/providers/cache/memory/configure",
                json!({"config": {"default_ttl_ms": 0}}),
            )
            .await;
        assert_eq!(
            (status.as_u16(), body["code"].as_str()),
            (400, Some("config_invalid")),
            "{body}"
        );
        assert_eq!(body["errors"][0]["pointer"], "/default_ttl_ms");
    }
    let server = Server::start(dir.path());
    let api = Api::new(&server, &key);
    let (status, detail) = api.get("/providers/cache/memory").await;
    assert_eq!(status, 200);
    assert_eq!(detail["config"]["version"], 1);
    assert_eq!(detail["config"]["values"], json!({"default_ttl_ms": 60000}));
    let globex = Api::new(&server, &tenant_with_key(dir.path(), "globex", "*"));
    assert_eq!(
        globex.get("/providers/cache/memory").await.1["config"],
        serde_json::Value::Null
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn reconfiguring_during_concurrent_invokes_fails_no_call() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path());
    let api = Api::new(&server, &tenant_with_key(dir.path(), "acme", "*"));
    api.ok(
        "db/sqlite",
        "execute",
        json!({"sql": "CREATE TABLE hits (n INTEGER)"}),
    )
    .await;
    let failures = Arc::new(AtomicUsize::new(0));
    let mut workers = Vec::new();
    for w in 0..6 {
        let (api, failures) = (api.clone(), failures.clone());
        workers.push(tokio::spawn(async move {
            for i in 0..60 {
                let (a, _) = api
                    .post(
                        "/providers/cache/memory/incr",
                        json!({"params": {"key": format!("w{w}")}}),
                    )
                    .await;
                let (b, _) = api
                    .post(
                        "/providers/db/sqlite/execute",
                        json!({"params": {"sql": "INSERT INTO hits VALUES (?1)", "params": [i]}}),
                    )
                    .await;
                if a != 200 || b != 200 {
                    failures.fetch_add(1, Ordering::Relaxed);
                }
            }
        }));
    }
    for v in 1..=10 {
        let (s1, b1) = api
            .post(
                "/providers/cache/memory/configure",
                json!({"config": {"max_value_bytes": 4096 + v}}),
            )
            .await;
        let (s2, b2) = api
            .post(
                "/providers/db/sqlite/configure",
                json!({"config": {"max_rows": 1000 + v}}),
            )
            .await;
        assert_eq!((s1.as_u16(), s2.as_u16()), (200, 200), "{b1} {b2}");
    }
    for w in workers {
        w.await.unwrap();
    }
    assert_eq!(failures.load(Ordering::Relaxed), 0);
    let count = api
        .ok(
            "db/sqlite",
            "query",
            json!({"sql": "SELECT COUNT(*) AS n FROM hits"}),
        )
        .await;
    assert_eq!(count["rows"][0]["n"], 360);
    for w in 0..6 {
        assert_eq!(
            api.ok("cache/memory", "get", json!({"key": format!("w{w}")}))
                .await["value"],
            60
        );
    }
}
