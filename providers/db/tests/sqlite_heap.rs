//! SQLite's process-wide heap ceiling (`tenancy.quotas.sqlite_heap_bytes`), in a test binary
//! of its own: the ceiling holds for the whole process, so it must not meet other tests.

use std::num::{NonZeroU32, NonZeroU64};
use std::sync::Arc;

use serde_json::json;
use switchyard_provider_db::SqliteFactory;
use switchyard_spi::ErrorCode;
use switchyard_spi::tenancy::Quotas;
use switchyard_spi::testkit::Harness;

#[tokio::test]
async fn a_statement_past_the_heap_ceiling_fails_and_the_process_carries_on() {
    // Values up to 512 MiB pass the length limit, so only the 64 MiB heap ceiling stops them.
    switchyard_provider_db::hold_to(&Quotas {
        sqlite_heap_bytes: NonZeroU64::new(64 * 1024 * 1024).unwrap(),
        sqlite_max_length_bytes: NonZeroU32::new(512 * 1024 * 1024).unwrap(),
        ..Quotas::default()
    });
    let root = tempfile::tempdir().unwrap();
    let harness = Harness::new(Arc::new(SqliteFactory::new(root.path().to_path_buf())));
    let t = harness.tenant("acme").await;
    let err = t
        .err(
            "query",
            json!({"sql": "SELECT length(randomblob(200000000)) AS n"}),
        )
        .await;
    assert_eq!(err.code, ErrorCode::ProviderUnavailable, "{err:?}");
    assert!(err.retryable);
    let rows = t
        .ok(
            "query",
            json!({"sql": "SELECT length(randomblob(1000000)) AS n"}),
        )
        .await;
    assert_eq!(rows["rows"][0]["n"], 1_000_000);
}
