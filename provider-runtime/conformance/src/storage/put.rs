use bytes::Bytes;
use serde_json::json;
use switchyard_spi::ErrorCode;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::Subject;
use crate::storage::{
    assert_code, assert_field, assert_params_invalid, b64, content_of, keys_of, put,
};

/// Every byte value, so a lossy text conversion anywhere shows up.
fn all_bytes() -> Vec<u8> {
    (0..=255u8).chain([0x00, 0xff, 0x00]).collect()
}

pub async fn put_base64_then_get_round_trips_binary_bytes(s: &Subject) {
    let engine = s.name();
    let acme = s.tenant("acme").await;
    let content = all_bytes();
    let written = put(&acme, "bin/all.bytes", &content).await;
    assert_eq!(written["key"], "bin/all.bytes", "{engine}");
    assert_eq!(written["size"], content.len(), "{engine}");
    assert_eq!(
        content_of(&acme, "bin/all.bytes").await,
        content,
        "{engine}"
    );
}

pub async fn put_reports_modified_at_as_recent_rfc3339_utc(s: &Subject) {
    let engine = s.name();
    let acme = s.tenant("acme").await;
    let before = OffsetDateTime::now_utc() - time::Duration::minutes(1);
    let written = put(&acme, "when.txt", b"now").await;
    let text = written["modified_at"].as_str().expect("a string");
    let at = OffsetDateTime::parse(text, &Rfc3339)
        .unwrap_or_else(|e| panic!("{engine}: {text:?} is not RFC 3339: {e}"));
    assert!(at.offset().is_utc(), "{engine}: {text} is not UTC");
    assert!(at >= before, "{engine}: {text} is in the past");
    assert!(
        at <= OffsetDateTime::now_utc() + time::Duration::minutes(1),
        "{engine}: {text} is in the future"
    );
}

pub async fn put_raw_payload_stores_the_body_as_is(s: &Subject) {
    let engine = s.name();
    let acme = s.tenant("acme").await;
    let content = all_bytes();
    let written = acme
        .call_with_payload(
            "put",
            json!({"key": "raw.bin"}),
            Some(Bytes::from(content.clone())),
        )
        .await
        .unwrap_or_else(|e| panic!("{engine}: {e:?}"));
    assert_eq!(written["size"], content.len(), "{engine}");
    assert_eq!(content_of(&acme, "raw.bin").await, content, "{engine}");
}

pub async fn put_both_raw_payload_and_base64_is_params_unprocessable(s: &Subject) {
    let engine = s.name();
    let acme = s.tenant("acme").await;
    let err = acme
        .call_with_payload(
            "put",
            json!({"key": "two.bin", "content_base64": b64(b"a")}),
            Some(Bytes::from_static(b"b")),
        )
        .await
        .expect_err("two contents");
    assert_field(
        &engine,
        &err,
        ErrorCode::ParamsUnprocessable,
        "/content_base64",
    );
    assert_code(
        &engine,
        &acme.err("head", json!({"key": "two.bin"})).await,
        ErrorCode::ResourceNotFound,
    );
}

pub async fn put_without_content_is_params_unprocessable(s: &Subject) {
    let engine = s.name();
    let acme = s.tenant("acme").await;
    let err = acme.err("put", json!({"key": "empty-call"})).await;
    assert_field(
        &engine,
        &err,
        ErrorCode::ParamsUnprocessable,
        "/content_base64",
    );
}

pub async fn put_invalid_base64_is_params_invalid(s: &Subject) {
    let engine = s.name();
    let acme = s.tenant("acme").await;
    let err = acme
        .err(
            "put",
            json!({"key": "bad", "content_base64": "not base64!"}),
        )
        .await;
    assert_params_invalid(&engine, &err, "/content_base64");
}

pub async fn put_empty_object_is_an_object_of_size_zero(s: &Subject) {
    let engine = s.name();
    let acme = s.tenant("acme").await;
    assert_eq!(put(&acme, "empty", b"").await["size"], 0, "{engine}");
    let got = acme.ok("get", json!({"key": "empty"})).await;
    assert_eq!(got["size"], 0, "{engine}");
    assert_eq!(got["content_base64"], "", "{engine}");
}

pub async fn put_overwrites_an_existing_object(s: &Subject) {
    let engine = s.name();
    let acme = s.tenant("acme").await;
    put(&acme, "doc.txt", b"first version, longer").await;
    let second = put(&acme, "doc.txt", b"second").await;
    assert_eq!(second["size"], 6, "{engine}");
    assert_eq!(content_of(&acme, "doc.txt").await, b"second", "{engine}");
    let page = acme.ok("list", json!({})).await;
    assert_eq!(keys_of(&page), ["doc.txt"], "{engine}");
}

pub async fn put_nested_keys_creates_what_it_needs(s: &Subject) {
    let engine = s.name();
    let acme = s.tenant("acme").await;
    put(&acme, "a/b/c.txt", b"deep").await;
    put(&acme, "a/b/d.txt", b"sibling").await;
    put(&acme, "a/e.txt", b"shallow").await;
    assert_eq!(content_of(&acme, "a/b/c.txt").await, b"deep", "{engine}");
    assert_eq!(content_of(&acme, "a/e.txt").await, b"shallow", "{engine}");
    let page = acme.ok("list", json!({"prefix": "a/"})).await;
    assert_eq!(
        keys_of(&page),
        ["a/b/c.txt", "a/b/d.txt", "a/e.txt"],
        "{engine}"
    );
}

pub async fn put_over_max_object_bytes_is_payload_too_large(s: &Subject) {
    let engine = s.name();
    let acme = s
        .tenant_with_config("acme", json!({"max_object_bytes": 4}))
        .await;
    assert_eq!(put(&acme, "fits", b"1234").await["size"], 4, "{engine}");

    let err = acme
        .err(
            "put",
            json!({"key": "big", "content_base64": b64(b"12345")}),
        )
        .await;
    assert_code(&engine, &err, ErrorCode::PayloadTooLarge);
    if s.has_capability("raw_body") {
        let err = acme
            .call_with_payload(
                "put",
                json!({"key": "big"}),
                Some(Bytes::from_static(b"12345")),
            )
            .await
            .expect_err("too large");
        assert_code(&engine, &err, ErrorCode::PayloadTooLarge);
    }
    // A refused put writes nothing, and does not disturb an existing object.
    assert_code(
        &engine,
        &acme.err("head", json!({"key": "big"})).await,
        ErrorCode::ResourceNotFound,
    );
    let err = acme
        .err(
            "put",
            json!({"key": "fits", "content_base64": b64(b"12345")}),
        )
        .await;
    assert_code(&engine, &err, ErrorCode::PayloadTooLarge);
    assert_eq!(content_of(&acme, "fits").await, b"1234", "{engine}");
}
