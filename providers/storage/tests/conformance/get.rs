use serde_json::json;
use switchyard_spi::ErrorCode;

use crate::{assert_code, b64, engines, put};

#[tokio::test]
async fn get_answers_content_and_the_same_metadata_as_put() {
    for engine in engines() {
        let acme = engine.harness.tenant("acme").await;
        let written = put(&acme, "notes/today.md", b"# Today\n").await;
        let got = acme.ok("get", json!({"key": "notes/today.md"})).await;
        assert_eq!(got["key"], written["key"], "{}", engine.name);
        assert_eq!(got["size"], written["size"], "{}", engine.name);
        assert_eq!(
            got["modified_at"], written["modified_at"],
            "{}",
            engine.name
        );
        assert_eq!(got["content_base64"], b64(b"# Today\n"), "{}", engine.name);
    }
}

#[tokio::test]
async fn get_missing_is_resource_not_found() {
    for engine in engines() {
        let acme = engine.harness.tenant("acme").await;
        let err = acme.err("get", json!({"key": "nothing/here.txt"})).await;
        assert_code(&engine, &err, ErrorCode::ResourceNotFound);
    }
}

#[tokio::test]
async fn get_of_a_prefix_is_not_an_object() {
    for engine in engines() {
        let acme = engine.harness.tenant("acme").await;
        put(&acme, "dir/file.txt", b"x").await;
        let err = acme.err("get", json!({"key": "dir"})).await;
        assert_code(&engine, &err, ErrorCode::ResourceNotFound);
        // Below an object there is nothing either.
        let err = acme.err("get", json!({"key": "dir/file.txt/more"})).await;
        assert_code(&engine, &err, ErrorCode::ResourceNotFound);
    }
}
