//! `presign`, for the engines that offer it: the URLs work without credentials, for the one
//! object and method they were signed for, until they expire, and never for another tenant.
//!
//! Presigned URLs are fetched the way their users fetch them: with curl, and with reqwest.

use std::process::Command;
use std::time::Duration;

use serde_json::{Value, json};
use switchyard_spi::ErrorCode;
use switchyard_spi::testkit::TenantInstance;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::Subject;
use crate::storage::{assert_code, assert_params_invalid, content_of, put};

/// Presigns `key` for `method` ("get" or "put") and returns the URL.
async fn presign(tenant: &TenantInstance, key: &str, method: &str, secs: u64) -> String {
    let signed = tenant
        .ok(
            "presign",
            json!({"key": key, "method": method, "expires_in_secs": secs}),
        )
        .await;
    signed["url"].as_str().expect("url is a string").to_owned()
}

/// GETs `url` with curl, without any credentials, and returns the status and body.
fn curl_get(url: &str) -> (u16, Vec<u8>) {
    let body = tempfile::NamedTempFile::new().expect("temp file");
    let output = Command::new("curl")
        .args(["--silent", "--show-error", "--globoff", "--output"])
        .arg(body.path())
        .args(["--write-out", "%{http_code}", url])
        .output()
        .expect("curl runs (scripts/deps.sh installs it)");
    let status = String::from_utf8_lossy(&output.stdout)
        .trim()
        .parse()
        .unwrap_or_else(|_| panic!("curl {url}: {}", String::from_utf8_lossy(&output.stderr)));
    (status, std::fs::read(body.path()).expect("curl's output"))
}

fn parse_time(text: &Value) -> OffsetDateTime {
    let text = text.as_str().expect("a string");
    OffsetDateTime::parse(text, &Rfc3339).unwrap_or_else(|e| panic!("{text:?}: {e}"))
}

/// `url` with the last character of its signature changed.
fn tampered(url: &str) -> String {
    let at = url.find("X-Amz-Signature=").expect("a SigV4 presigned URL") + 16;
    let end = url[at..].find('&').map_or(url.len(), |i| at + i);
    let last = &url[end - 1..end];
    let other = if last == "0" { "1" } else { "0" };
    format!("{}{other}{}", &url[..end - 1], &url[end..])
}

pub async fn a_presigned_get_url_fetched_with_curl_returns_the_object(s: &Subject) {
    let engine = s.name();
    let acme = s.tenant("acme").await;
    let content: Vec<u8> = (0..=255u8).rev().collect();
    put(&acme, "reports/q1 final.bin", &content).await;

    let before = OffsetDateTime::now_utc();
    let signed = acme
        .ok(
            "presign",
            json!({"key": "reports/q1 final.bin", "method": "get", "expires_in_secs": 60}),
        )
        .await;
    assert_eq!(signed["method"], "GET", "{engine}");
    let expires_at = parse_time(&signed["expires_at"]);
    assert!(expires_at.offset().is_utc(), "{engine}: {signed}");
    let lifetime = expires_at - before;
    assert!(
        lifetime > time::Duration::seconds(58) && lifetime <= time::Duration::seconds(61),
        "{engine}: expires_at {expires_at} for 60 s from {before}"
    );

    let url = signed["url"].as_str().expect("url");
    let (status, body) = curl_get(url);
    assert_eq!(
        status,
        200,
        "{}: {}",
        engine,
        String::from_utf8_lossy(&body)
    );
    assert_eq!(body, content, "{engine}");
}

pub async fn presign_lasts_fifteen_minutes_by_default(s: &Subject) {
    let engine = s.name();
    let acme = s.tenant("acme").await;
    put(&acme, "a.txt", b"a").await;
    let before = OffsetDateTime::now_utc();
    let signed = acme
        .ok("presign", json!({"key": "a.txt", "method": "get"}))
        .await;
    let lifetime = parse_time(&signed["expires_at"]) - before;
    assert!(
        lifetime > time::Duration::seconds(898) && lifetime <= time::Duration::seconds(901),
        "{engine}: {signed}"
    );
}

pub async fn an_expired_presigned_url_is_refused(s: &Subject) {
    let engine = s.name();
    let acme = s.tenant("acme").await;
    put(&acme, "brief.txt", b"short-lived").await;
    let url = presign(&acme, "brief.txt", "get", 1).await;
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let (status, body) = curl_get(&url);
    assert_eq!(
        status,
        403,
        "{}: {}",
        engine,
        String::from_utf8_lossy(&body)
    );
    assert_ne!(body, b"short-lived", "{engine}");
}

pub async fn a_tampered_presigned_url_is_refused(s: &Subject) {
    let engine = s.name();
    let acme = s.tenant("acme").await;
    put(&acme, "signed.txt", b"signed").await;
    put(&acme, "other.txt", b"other").await;
    let url = presign(&acme, "signed.txt", "get", 300).await;
    assert_eq!(curl_get(&url), (200, b"signed".to_vec()), "{engine}");

    let (status, _) = curl_get(&tampered(&url));
    assert_eq!(status, 403, "{engine}: a changed signature");
    // The signature covers the path: it does not open another object.
    let (status, body) = curl_get(&url.replacen("/signed.txt?", "/other.txt?", 1));
    assert_eq!(
        status,
        403,
        "{}: {}",
        engine,
        String::from_utf8_lossy(&body)
    );
}

pub async fn a_presigned_put_uploads_the_object_get_reads(s: &Subject) {
    let engine = s.name();
    let acme = s.tenant("acme").await;
    let signed = acme
        .ok(
            "presign",
            json!({"key": "uploads/photo.jpg", "method": "put", "expires_in_secs": 120}),
        )
        .await;
    assert_eq!(signed["method"], "PUT", "{engine}");
    let content: Vec<u8> = (0..2048u32).map(|i| (i * 7 % 251) as u8).collect();
    let response = reqwest::Client::new()
        .put(signed["url"].as_str().expect("url"))
        .body(content.clone())
        .send()
        .await
        .expect("the upload reaches the server");
    assert!(
        response.status().is_success(),
        "{}: HTTP {}",
        engine,
        response.status()
    );
    assert_eq!(
        content_of(&acme, "uploads/photo.jpg").await,
        content,
        "{engine}"
    );
    let head = acme.ok("head", json!({"key": "uploads/photo.jpg"})).await;
    assert_eq!(head["size"], 2048, "{engine}");

    // A presigned PUT URL does not read: GET is a different signed request.
    let (status, _) = curl_get(signed["url"].as_str().expect("url"));
    assert_eq!(status, 403, "{engine}");
}

pub async fn a_tenant_cannot_presign_or_read_another_tenants_objects(s: &Subject) {
    let engine = s.name();
    let acme = s.tenant("acme").await;
    let globex = s.tenant("globex").await;
    put(&acme, "secret.txt", b"acme only").await;

    // The same key names globex's own (missing) object.
    let err = globex
        .err("presign", json!({"key": "secret.txt", "method": "get"}))
        .await;
    assert_code(&engine, &err, ErrorCode::ResourceNotFound);
    // Climbing out of globex's space is refused before anything is signed.
    for method in ["get", "put"] {
        for key in [
            "../acme/secret.txt",
            "/acme/secret.txt",
            "a/../../acme/secret.txt",
        ] {
            let err = globex
                .err("presign", json!({"key": key, "method": method}))
                .await;
            assert_params_invalid(&engine, &err, "/key");
        }
    }
    // A URL globex may have, pointed at acme's folder, fails its signature.
    put(&globex, "secret.txt", b"globex's").await;
    let url = presign(&globex, "secret.txt", "get", 300).await;
    assert_eq!(curl_get(&url), (200, b"globex's".to_vec()), "{engine}");
    let redirected = url.replacen(
        &format!("/{}/secret.txt?", globex.tenant),
        &format!("/{}/secret.txt?", acme.tenant),
        1,
    );
    assert_ne!(
        redirected, url,
        "{engine}: the tenant's folder is in the path"
    );
    let (status, body) = curl_get(&redirected);
    assert_eq!(
        status,
        403,
        "{}: {}",
        engine,
        String::from_utf8_lossy(&body)
    );
    // Globex's presigned PUT writes globex's object, never acme's.
    let url = presign(&globex, "secret.txt", "put", 300).await;
    let response = reqwest::Client::new()
        .put(&url)
        .body("overwritten")
        .send()
        .await
        .expect("the upload reaches the server");
    assert!(response.status().is_success(), "{engine}");
    assert_eq!(
        content_of(&acme, "secret.txt").await,
        b"acme only",
        "{engine}"
    );
    assert_eq!(
        content_of(&globex, "secret.txt").await,
        b"overwritten",
        "{engine}"
    );
}

pub async fn presign_params_are_checked(s: &Subject) {
    let engine = s.name();
    let acme = s.tenant("acme").await;
    put(&acme, "k", b"k").await;
    for (params, pointer) in [
        (json!({"key": "k"}), "/method"),
        (json!({"key": "k", "method": "delete"}), "/method"),
        (json!({"method": "get"}), "/key"),
        (
            json!({"key": "k", "method": "get", "expires_in_secs": 0}),
            "/expires_in_secs",
        ),
        (
            json!({"key": "k", "method": "get", "expires_in_secs": 604_801}),
            "/expires_in_secs",
        ),
    ] {
        let err = acme.err("presign", params).await;
        assert_params_invalid(&engine, &err, pointer);
    }
    // The longest lifetime the contract allows is seven days.
    presign(&acme, "k", "get", 604_800).await;
}

pub async fn a_tenant_can_cap_presigned_lifetimes(s: &Subject) {
    let engine = s.name();
    let acme = s
        .tenant_with_config("acme", json!({"max_presign_secs": 60}))
        .await;
    put(&acme, "k", b"k").await;
    presign(&acme, "k", "get", 60).await;
    let err = acme
        .err(
            "presign",
            json!({"key": "k", "method": "put", "expires_in_secs": 61}),
        )
        .await;
    assert_params_invalid(&engine, &err, "/expires_in_secs");
    // The contract's default (900 s) is above this tenant's cap too.
    let err = acme
        .err("presign", json!({"key": "k", "method": "get"}))
        .await;
    assert_params_invalid(&engine, &err, "/expires_in_secs");
}
