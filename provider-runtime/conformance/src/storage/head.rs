use serde_json::json;
use switchyard_spi::ErrorCode;

use crate::Subject;
use crate::storage::{assert_code, put};

pub async fn head_answers_metadata_without_content(s: &Subject) {
    let engine = s.name();
    let acme = s.tenant("acme").await;
    let written = put(&acme, "img/logo.png", &[0x89, b'P', b'N', b'G', 0, 0xff]).await;
    let head = acme.ok("head", json!({"key": "img/logo.png"})).await;
    // The result schema forbids extra fields, so equality also proves no content came back.
    assert_eq!(head, written, "{engine}");
    assert_eq!(head["size"], 6, "{engine}");
}

pub async fn head_missing_is_resource_not_found(s: &Subject) {
    let engine = s.name();
    let acme = s.tenant("acme").await;
    put(&acme, "img/logo.png", b"x").await;
    for key in ["img/other.png", "img", "img/logo.png/x"] {
        let err = acme.err("head", json!({"key": key})).await;
        assert_code(&engine, &err, ErrorCode::ResourceNotFound);
    }
}
