use serde_json::json;

use crate::engines;

#[tokio::test]
async fn delete_prefix_removes_exactly_the_matching_keys() {
    for (engine, h) in engines() {
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
}
