//! Conformance suite of the `storage` domain.
//!
//! Every test runs against every engine listed in [`engines`], through the test kit's
//! harness, so params are checked against the contract's schemas on the way in and every
//! result on the way out. Optional behaviours are gated on the engine's capabilities, and
//! optional actions (`presign`) on the engine's descriptor offering them.

mod delete;
mod get;
mod head;
mod keys;
mod list;
mod presign;
mod put;
mod s3;
mod tenancy;

use std::any::Any;
use std::path::PathBuf;
use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde_json::{Value, json};
use switchyard_provider_storage::{FsFactory, S3Factory, S3Settings};
use switchyard_spi::testkit::{Harness, TenantInstance};
use switchyard_spi::{ErrorCode, ProviderError};

/// Maps a tenant id to the host folder that holds its keys as files.
type LocalObjects = Box<dyn Fn(&str) -> PathBuf>;

/// One engine enrolled in the suite.
struct Engine {
    name: &'static str,
    harness: Harness,
    /// A new factory over the same backing store, as after a process restart.
    reopen: Box<dyn Fn() -> Harness>,
    /// Where a tenant's keys live as files on this host, for engines that keep objects in
    /// local files. Tests that plant links behind the provider's back need it; `None` skips
    /// them (a remote store has no links to plant).
    local_objects: Option<LocalObjects>,
    /// Whatever must outlive the engine's factories (a temp dir, a test server).
    _backing: Box<dyn Any>,
}

/// Every engine the suite runs against. Enrolling an engine is one line here.
fn engines() -> Vec<Engine> {
    vec![fs_engine(), s3_engine()]
}

fn fs_engine() -> Engine {
    let dir = tempfile::tempdir().expect("temp dir");
    let root = dir.path().join("storage");
    let factory_root = root.clone();
    let objects_root = root.clone();
    Engine {
        name: "storage/fs",
        harness: Harness::new(Arc::new(FsFactory::new(root))),
        reopen: Box::new(move || Harness::new(Arc::new(FsFactory::new(factory_root.clone())))),
        local_objects: Some(Box::new(move |tenant| {
            objects_root.join(tenant).join("objects")
        })),
        _backing: Box::new(dir),
    }
}

/// A fresh bucket on the test S3 server, so no test sees another's objects.
fn s3_engine() -> Engine {
    let bucket = s3::TestBucket::create();
    let settings = bucket.settings();
    Engine {
        name: "storage/s3",
        harness: Harness::new(s3_factory(&settings)),
        reopen: Box::new(move || Harness::new(s3_factory(&settings))),
        local_objects: None,
        // The bucket stays on the server; the server's data directory goes with the server.
        _backing: Box::new(()),
    }
}

fn s3_factory(settings: &S3Settings) -> Arc<S3Factory> {
    Arc::new(S3Factory::new(settings.clone()).expect("an HTTP client for S3"))
}

fn b64(content: &[u8]) -> String {
    BASE64.encode(content)
}

/// Puts `content` (as base64 params) and returns the result.
async fn put(tenant: &TenantInstance, key: &str, content: &[u8]) -> Value {
    tenant
        .ok("put", json!({"key": key, "content_base64": b64(content)}))
        .await
}

/// Gets an object's content, decoded.
async fn content_of(tenant: &TenantInstance, key: &str) -> Vec<u8> {
    let got = tenant.ok("get", json!({"key": key})).await;
    let text = got["content_base64"]
        .as_str()
        .expect("content_base64 is a string");
    BASE64.decode(text).expect("content_base64 is base64")
}

/// The keys of one list page, in the order answered.
fn keys_of(page: &Value) -> Vec<String> {
    page["objects"]
        .as_array()
        .expect("objects is an array")
        .iter()
        .map(|o| o["key"].as_str().expect("key is a string").to_owned())
        .collect()
}

#[track_caller]
fn assert_code(engine: &Engine, err: &ProviderError, code: ErrorCode) {
    assert_eq!(err.code, code, "{}: {err:?}", engine.name);
}

/// params_invalid with a field error at `pointer`, as the caller needs to fix the request.
#[track_caller]
fn assert_params_invalid(engine: &Engine, err: &ProviderError, pointer: &str) {
    assert_code(engine, err, ErrorCode::ParamsInvalid);
    assert!(
        err.errors.iter().any(|e| e.pointer == pointer),
        "{}: expected a field error at {pointer}, got {:?}",
        engine.name,
        err.errors
    );
}
