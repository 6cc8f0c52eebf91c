use serde_json::json;
use switchyard_spi::ErrorCode;

use crate::Subject;
use crate::storage::{assert_code, b64, put};

pub async fn get_answers_content_and_the_same_metadata_as_put(s: &Subject) {
    let engine = s.name();
    let acme = s.tenant("acme").await;
    let written = put(&acme, "notes/today.md", b"# Today\n").await;
    let got = acme.ok("get", json!({"key": "notes/today.md"})).await;
    assert_eq!(got["key"], written["key"], "{engine}");
    assert_eq!(got["size"], written["size"], "{engine}");
    assert_eq!(got["modified_at"], written["modified_at"], "{engine}");
    assert_eq!(got["content_base64"], b64(b"# Today\n"), "{engine}");
}

pub async fn get_missing_is_resource_not_found(s: &Subject) {
    let engine = s.name();
    let acme = s.tenant("acme").await;
    let err = acme.err("get", json!({"key": "nothing/here.txt"})).await;
    assert_code(&engine, &err, ErrorCode::ResourceNotFound);
}

pub async fn get_of_a_prefix_is_not_an_object(s: &Subject) {
    let engine = s.name();
    let acme = s.tenant("acme").await;
    put(&acme, "dir/file.txt", b"x").await;
    let err = acme.err("get", json!({"key": "dir"})).await;
    assert_code(&engine, &err, ErrorCode::ResourceNotFound);
    // Below an object there is nothing either.
    let err = acme.err("get", json!({"key": "dir/file.txt/more"})).await;
    assert_code(&engine, &err, ErrorCode::ResourceNotFound);
}
