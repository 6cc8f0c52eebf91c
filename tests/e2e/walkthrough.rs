//! The README's five-minute walkthrough, step by step, against the real binary.

use crate::common;

use std::time::Duration;

use common::{Api, Server, tenant_with_key};
use serde_json::json;

#[tokio::test(flavor = "multi_thread")]
async fn the_readme_walkthrough_works_end_to_end() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path());
    let key = tenant_with_key(dir.path(), "acme", "*");
    assert!(key.starts_with("sy_"), "{key}");
    let api = Api::new(&server, &key);

    // The catalog lists the embedded providers, running.
    let (status, catalog) = api.get("/providers").await;
    assert_eq!(status, 200);
    let listed: Vec<String> = catalog["providers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            format!(
                "{}/{}={}",
                p["domain"].as_str().unwrap(),
                p["name"].as_str().unwrap(),
                p["status"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(
        listed,
        [
            "db/sqlite=running",
            "cache/memory=running",
            "storage/fs=running",
            "bus/embedded=running",
            "auth/jwt=running",
            "auth/opa=running",
            "integration/webhook=running",
            "integration/shopify=running",
            "integration/salesforce=running",
            "integration/rest=running",
            "integration/payments=running",
            "ai/local=running",
            "ai/openai=running",
            "ai/anthropic=running",
            "ai/gateway=running"
        ]
    );

    // db: a table, two rows in one transaction, queried back.
    api.ok("db/sqlite", "execute", json!({"sql": "CREATE TABLE orders (id INTEGER PRIMARY KEY, sku TEXT NOT NULL, qty INTEGER NOT NULL)"})).await;
    let tx = api
        .ok(
            "db/sqlite",
            "transaction",
            json!({"statements": [
                {"sql": "INSERT INTO orders (sku, qty) VALUES (?1, ?2)", "params": ["A-1", 2]},
                {"sql": "INSERT INTO orders (sku, qty) VALUES (?1, ?2)", "params": ["B-7", 5]}
            ]}),
        )
        .await;
    assert_eq!(tx["results"].as_array().unwrap().len(), 2);
    let rows = api
        .ok(
            "db/sqlite",
            "query",
            json!({"sql": "SELECT sku, qty FROM orders ORDER BY id"}),
        )
        .await;
    assert_eq!(
        rows["rows"],
        json!([{"sku": "A-1", "qty": 2}, {"sku": "B-7", "qty": 5}])
    );

    // cache: a key with a TTL is there, then gone.
    api.ok(
        "cache/memory",
        "set",
        json!({"key": "session:42", "value": {"user": "ann"}, "ttl_ms": 500}),
    )
    .await;
    let hit = api
        .ok("cache/memory", "get", json!({"key": "session:42"}))
        .await;
    assert_eq!(
        hit,
        json!({"key": "session:42", "found": true, "value": {"user": "ann"}})
    );
    tokio::time::sleep(Duration::from_millis(900)).await;
    assert_eq!(
        api.ok("cache/memory", "get", json!({"key": "session:42"}))
            .await["found"],
        false
    );

    // storage: put (base64 and raw body), list, get.
    api.ok(
        "storage/fs",
        "put",
        json!({"key": "invoices/2026/001.txt", "content_base64": "aGVsbG8gd29ybGQ="}),
    )
    .await;
    let raw = api
        .raw()
        .post(format!(
            "{}/providers/storage/fs/put?key=invoices/2026/002.txt",
            api.base
        ))
        .bearer_auth(api.key())
        .header("content-type", "application/octet-stream")
        .body("raw bytes")
        .send()
        .await
        .unwrap();
    assert_eq!(raw.status(), 200);
    let listing = api
        .ok("storage/fs", "list", json!({"prefix": "invoices/"}))
        .await;
    let keys: Vec<&str> = listing["objects"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["key"].as_str().unwrap())
        .collect();
    assert_eq!(keys, ["invoices/2026/001.txt", "invoices/2026/002.txt"]);
    let object = api
        .ok("storage/fs", "get", json!({"key": "invoices/2026/001.txt"}))
        .await;
    assert_eq!(
        (object["content_base64"].as_str(), object["size"].as_u64()),
        (Some("aGVsbG8gd29ybGQ="), Some(11))
    );

    // bus: three events polled back in order; after a commit, nothing new.
    for n in 1..=3 {
        api.ok(
            "bus/embedded",
            "publish",
            json!({"topic": "orders", "messages": [{"key": "o-1", "payload": {"n": n}}]}),
        )
        .await;
    }
    let polled = api
        .ok(
            "bus/embedded",
            "poll",
            json!({"topic": "orders", "group": "billing"}),
        )
        .await;
    let payloads: Vec<i64> = polled["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["payload"]["n"].as_i64().unwrap())
        .collect();
    assert_eq!(payloads, [1, 2, 3]);
    assert_eq!(polled["next_offset"], 3);
    api.ok(
        "bus/embedded",
        "commit",
        json!({"topic": "orders", "group": "billing", "offset": 3}),
    )
    .await;
    let again = api
        .ok(
            "bus/embedded",
            "poll",
            json!({"topic": "orders", "group": "billing"}),
        )
        .await;
    assert_eq!(again["records"], json!([]));
}
