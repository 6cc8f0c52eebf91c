use serde_json::json;
use switchyard_spi::ErrorCode;

use crate::Subject;
use crate::storage::{assert_code, content_of, keys_of, put};

pub async fn delete_removes_an_object_once(s: &Subject) {
    let engine = s.name();
    let acme = s.tenant("acme").await;
    put(&acme, "tmp/report.pdf", b"%PDF").await;
    let first = acme.ok("delete", json!({"key": "tmp/report.pdf"})).await;
    assert_eq!(first, json!({"deleted": true}), "{engine}");
    let err = acme.err("get", json!({"key": "tmp/report.pdf"})).await;
    assert_code(&engine, &err, ErrorCode::ResourceNotFound);
    let again = acme.ok("delete", json!({"key": "tmp/report.pdf"})).await;
    assert_eq!(again, json!({"deleted": false}), "{engine}");
    assert!(
        keys_of(&acme.ok("list", json!({})).await).is_empty(),
        "{engine}"
    );
}

pub async fn delete_missing_is_false(s: &Subject) {
    let engine = s.name();
    let acme = s.tenant("acme").await;
    let result = acme.ok("delete", json!({"key": "never/was"})).await;
    assert_eq!(result, json!({"deleted": false}), "{engine}");
}

pub async fn delete_of_a_prefix_removes_nothing(s: &Subject) {
    let engine = s.name();
    let acme = s.tenant("acme").await;
    put(&acme, "keep/me.txt", b"kept").await;
    let result = acme.ok("delete", json!({"key": "keep"})).await;
    assert_eq!(result, json!({"deleted": false}), "{engine}");
    assert_eq!(content_of(&acme, "keep/me.txt").await, b"kept", "{engine}");
}

pub async fn delete_leaves_siblings_and_frees_the_prefix(s: &Subject) {
    let engine = s.name();
    let acme = s.tenant("acme").await;
    put(&acme, "x/y/z", b"z").await;
    put(&acme, "x/w", b"w").await;
    acme.ok("delete", json!({"key": "x/y/z"})).await;
    assert_eq!(
        keys_of(&acme.ok("list", json!({})).await),
        ["x/w"],
        "{engine}"
    );
    // With "x/y/z" gone nothing lives under "x/y", so it can be an object itself.
    put(&acme, "x/y", b"now a file").await;
    assert_eq!(content_of(&acme, "x/y").await, b"now a file", "{engine}");
}
