//! Conformance suite of the `db` domain: every enrolled engine must pass every test here, so a
//! caller cannot tell engines apart by params, results or error codes.
//!
//! Each test loops over [`engines`], each engine on its own fresh data root; tests of optional
//! behaviour are gated on the engine's declared capabilities.

mod execute;
mod metadata;
mod query;
mod tenancy;
mod transaction;

use std::path::Path;
use std::sync::Arc;

use serde_json::Value;
use switchyard_provider_db::SqliteFactory;
use switchyard_spi::testkit::{Harness, TenantInstance};
use switchyard_spi::{ErrorCode, ProviderError, ProviderFactory};
use tempfile::TempDir;

/// Builds an engine's factory on a data root; building again on the same root is a restart.
type Build = fn(&Path) -> Arc<dyn ProviderFactory>;

/// Every enrolled engine. Enrolling one more is one line.
const ENGINES: &[(&str, Build)] = &[("db/sqlite", |root| {
    Arc::new(SqliteFactory::new(root.to_path_buf()))
})];

/// One enrolled engine with its own data root, alive as long as the test holds it.
pub struct Engine {
    pub name: &'static str,
    pub harness: Harness,
    build: Build,
    root: TempDir,
}

impl Engine {
    /// A new factory on the same data root, as after a process restart.
    pub fn restart(&self) -> Harness {
        Harness::new((self.build)(self.root.path()))
    }

    pub fn root(&self) -> &Path {
        self.root.path()
    }
}

pub fn engines() -> Vec<Engine> {
    ENGINES
        .iter()
        .map(|&(name, build)| {
            let root = tempfile::tempdir().expect("temp dir");
            Engine {
                name,
                harness: Harness::new(build(root.path())),
                build,
                root,
            }
        })
        .collect()
}

/// Asserts an error's code and, when given, that one of its field errors has `pointer`.
pub fn assert_error(engine: &str, err: &ProviderError, code: ErrorCode, pointer: Option<&str>) {
    assert_eq!(err.code, code, "{engine}: wrong code in {err:?}");
    if let Some(pointer) = pointer {
        assert!(
            err.errors.iter().any(|e| e.pointer == pointer),
            "{engine}: no field error at {pointer} in {err:?}"
        );
    }
}

/// `SELECT count(*)` of a table, through `query`.
pub async fn count(tenant: &TenantInstance, table: &str) -> i64 {
    let result = tenant
        .ok(
            "query",
            serde_json::json!({"sql": format!("SELECT count(*) AS n FROM {table}")}),
        )
        .await;
    result["rows"][0]["n"]
        .as_i64()
        .expect("count is an integer")
}

/// The `rows` of a query result.
pub fn rows(result: &Value) -> &Vec<Value> {
    result["rows"].as_array().expect("rows is an array")
}
