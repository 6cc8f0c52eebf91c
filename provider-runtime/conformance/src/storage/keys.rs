//! Path safety: keys that try to leave the tenant's space, and links planted behind the
//! provider's back.

use std::os::unix::fs::symlink;

use serde_json::json;
use switchyard_spi::{ErrorCode, ProviderError};

use crate::Subject;
use crate::storage::{Fixture, assert_params_invalid, b64, keys_of, put};

const UNSAFE_KEYS: [&str; 10] = [
    "../x",
    "/etc/passwd",
    "a//b",
    "a/./b",
    "a\\b",
    "a/../../x",
    "..",
    "a/",
    "a\u{0}b",
    "a\nb",
];

pub async fn unsafe_keys_are_params_invalid_for_every_action(s: &Subject) {
    let engine = s.name();
    let acme = s.tenant("acme").await;
    for key in UNSAFE_KEYS {
        let err = acme
            .err("put", json!({"key": key, "content_base64": b64(b"x")}))
            .await;
        assert_params_invalid(&engine, &err, "/key");
        for action in ["get", "head", "delete"] {
            let err = acme.err(action, json!({"key": key})).await;
            assert_params_invalid(&engine, &err, "/key");
        }
    }
    assert!(
        keys_of(&acme.ok("list", json!({})).await).is_empty(),
        "{engine}"
    );
}

pub async fn a_missing_key_violates_the_schema(s: &Subject) {
    let engine = s.name();
    let acme = s.tenant("acme").await;
    let err = acme.err("put", json!({"content_base64": b64(b"x")})).await;
    assert_params_invalid(&engine, &err, "/key");
    for action in ["get", "head", "delete"] {
        let err = acme.err(action, json!({})).await;
        assert_params_invalid(&engine, &err, "/key");
    }
}

pub async fn dotted_names_that_are_not_dot_segments_are_ordinary_keys(s: &Subject) {
    let engine = s.name();
    let acme = s.tenant("acme").await;
    for key in [".env", "a/..b", "a/b..", "...", "v1.2/notes.txt"] {
        put(&acme, key, key.as_bytes()).await;
    }
    let page = acme.ok("list", json!({})).await;
    assert_eq!(
        keys_of(&page),
        ["...", ".env", "a/..b", "a/b..", "v1.2/notes.txt"],
        "{engine}"
    );
}

/// A refusal, not a read of what the link points to and not a crash.
#[track_caller]
fn assert_refused(engine: &str, what: &str, result: Result<serde_json::Value, ProviderError>) {
    match result {
        Ok(value) => panic!("{engine}: {what} went through a link: {value}"),
        Err(err) => assert!(
            matches!(
                err.code,
                ErrorCode::ParamsInvalid | ErrorCode::ResourceNotFound
            ),
            "{engine}: {what}: {err:?}"
        ),
    }
}

pub async fn links_pointing_outside_the_tenant_are_never_followed(s: &Subject) {
    let engine = s.name();
    let fixture = s.fixture::<Fixture>();
    let local_objects = fixture
        .local_objects
        .as_ref()
        .expect("the fixture provides local_objects");
    let acme = s.tenant("acme").await;
    // Make sure the links land where this engine really keeps acme's keys.
    put(&acme, "probe.txt", b"probe").await;
    let objects = local_objects(acme.tenant.as_str());
    assert_eq!(
        std::fs::read(objects.join("probe.txt")).expect("probe file"),
        b"probe"
    );

    let outside = tempfile::tempdir().expect("temp dir");
    std::fs::write(outside.path().join("passwd"), b"root:x:0:0").expect("write");
    symlink(outside.path(), objects.join("escape")).expect("dir link");
    symlink(outside.path().join("passwd"), objects.join("leak.txt")).expect("file link");

    for key in ["escape/passwd", "leak.txt"] {
        assert_refused(
            &engine,
            &format!("get {key}"),
            acme.call("get", json!({"key": key})).await,
        );
        assert_refused(
            &engine,
            &format!("head {key}"),
            acme.call("head", json!({"key": key})).await,
        );
        let put = json!({"key": key, "content_base64": b64(b"pwned")});
        assert_refused(&engine, &format!("put {key}"), acme.call("put", put).await);
        let deleted = acme.call("delete", json!({"key": key})).await;
        if let Ok(result) = &deleted {
            assert_eq!(result, &json!({"deleted": false}), "{engine}: delete {key}");
        } else {
            assert_refused(&engine, &format!("delete {key}"), deleted);
        }
    }
    let put_new = json!({"key": "escape/new.txt", "content_base64": b64(b"planted")});
    assert_refused(
        &engine,
        "put escape/new.txt",
        acme.call("put", put_new).await,
    );

    assert_eq!(
        std::fs::read(outside.path().join("passwd")).expect("outside file"),
        b"root:x:0:0",
        "{engine}"
    );
    assert!(!outside.path().join("new.txt").exists(), "{engine}");
    let page = acme.ok("list", json!({})).await;
    assert_eq!(keys_of(&page), ["probe.txt"], "{engine}");
}

pub async fn a_link_into_another_tenant_is_never_followed(s: &Subject) {
    let engine = s.name();
    let fixture = s.fixture::<Fixture>();
    let local_objects = fixture
        .local_objects
        .as_ref()
        .expect("the fixture provides local_objects");
    let acme = s.tenant("acme").await;
    let globex = s.tenant("globex").await;
    put(&acme, "secret.txt", b"acme only").await;
    put(&globex, "probe.txt", b"probe").await;
    let globex_objects = local_objects(globex.tenant.as_str());
    assert!(globex_objects.join("probe.txt").is_file(), "{engine}");
    symlink(
        local_objects(acme.tenant.as_str()),
        globex_objects.join("peek"),
    )
    .expect("link");

    let got = globex.call("get", json!({"key": "peek/secret.txt"})).await;
    assert_refused(&engine, "get peek/secret.txt", got);
    let page = globex.ok("list", json!({"prefix": "peek"})).await;
    assert!(keys_of(&page).is_empty(), "{engine}: {page}");
}
