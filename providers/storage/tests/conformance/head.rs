use serde_json::json;
use switchyard_spi::ErrorCode;

use crate::{assert_code, engines, put};

#[tokio::test]
async fn head_answers_metadata_without_content() {
    for engine in engines() {
        let acme = engine.harness.tenant("acme").await;
        let written = put(&acme, "img/logo.png", &[0x89, b'P', b'N', b'G', 0, 0xff]).await;
        let head = acme.ok("head", json!({"key": "img/logo.png"})).await;
        // The result schema forbids extra fields, so equality also proves no content came back.
        assert_eq!(head, written, "{}", engine.name);
        assert_eq!(head["size"], 6, "{}", engine.name);
    }
}

#[tokio::test]
async fn head_missing_is_resource_not_found() {
    for engine in engines() {
        let acme = engine.harness.tenant("acme").await;
        put(&acme, "img/logo.png", b"x").await;
        for key in ["img/other.png", "img", "img/logo.png/x"] {
            let err = acme.err("head", json!({"key": key})).await;
            assert_code(&engine, &err, ErrorCode::ResourceNotFound);
        }
    }
}
