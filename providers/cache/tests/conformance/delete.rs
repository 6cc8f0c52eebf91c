use serde_json::json;

use crate::engines;

#[tokio::test]
async fn delete_reports_whether_the_key_existed() {
    for (engine, h) in engines() {
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
}
