//! Behaviour specific to `db/mssql` that only a SQL Server can show (its siloed tenancy, its
//! value mapping); what every engine shares is the conformance kit's db suite
//! (`provider-runtime/conformance/src/db`), and what needs no server is unit-tested in
//! `src/mssql`. Without `SWITCHYARD_TEST_MSSQL_URL` these tests are
//! reported as ignored ("skipped: no MSSQL server"), see `build.rs`.

#[path = "support/mssql.rs"]
mod ms;
#[path = "support/prefix.rs"]
mod prefix;

use std::sync::Arc;

use serde_json::json;
use switchyard_provider_db::MssqlFactory;
use switchyard_provider_db::mssql::{quote_name, tenant_database, tenant_login};
use switchyard_spi::ErrorCode;
use switchyard_spi::testkit::Harness;

fn engine() -> (ms::TestPrefix, Harness) {
    let prefix = ms::test_prefix("m");
    let factory = MssqlFactory::new(ms::server_url())
        .with_secret("mssql-test-secret")
        .with_database_prefix(&prefix.prefix);
    (prefix, Harness::new(Arc::new(factory)))
}

#[tokio::test]
#[cfg_attr(
    not(mssql_server),
    ignore = "skipped: no MSSQL server (set SWITCHYARD_TEST_MSSQL_URL to run db/mssql's server tests)"
)]
async fn another_tenants_login_cannot_reach_its_database() {
    let (prefix, harness) = engine();
    let acme = harness.tenant("acme").await;
    let globex = harness.tenant("globex").await;
    acme.ok(
        "execute",
        json!({"sql": "CREATE TABLE secrets (v NVARCHAR(MAX))"}),
    )
    .await;
    acme.ok(
        "execute",
        json!({"sql": "INSERT INTO secrets VALUES ('acme only')"}),
    )
    .await;
    let acme_db = quote_name(&tenant_database(&prefix.prefix, "acme"));
    // Qualified by database name: the server refuses globex's login (error 916).
    let err = globex
        .err(
            "query",
            json!({"sql": format!("SELECT v FROM {acme_db}.dbo.secrets")}),
        )
        .await;
    assert_eq!(err.code, ErrorCode::StatementFailed, "{err:?}");
    for sql in [
        format!("INSERT INTO {acme_db}.dbo.secrets VALUES ('from globex')"),
        format!("DELETE FROM {acme_db}.dbo.secrets"),
        format!("CREATE TABLE {acme_db}.dbo.planted (x INT)"),
        format!("USE {acme_db}"),
    ] {
        let err = globex.err("execute", json!({"sql": sql})).await;
        assert_eq!(err.code, ErrorCode::StatementFailed, "{sql}: {err:?}");
    }
    // Other tenants' databases are not even listed.
    let listed = globex
        .ok("query", json!({"sql": "SELECT name FROM sys.databases"}))
        .await;
    let acme_name = tenant_database(&prefix.prefix, "acme");
    assert!(
        !listed["rows"]
            .as_array()
            .unwrap()
            .iter()
            .any(|row| row["name"] == acme_name.as_str()),
        "{listed}"
    );
    let kept = acme
        .ok("query", json!({"sql": "SELECT count(*) AS n FROM secrets"}))
        .await;
    assert_eq!(kept["rows"], json!([{"n": 1}]));
}

#[tokio::test]
#[cfg_attr(
    not(mssql_server),
    ignore = "skipped: no MSSQL server (set SWITCHYARD_TEST_MSSQL_URL to run db/mssql's server tests)"
)]
async fn a_tenant_runs_as_its_own_unprivileged_login() {
    let (prefix, harness) = engine();
    let acme = harness.tenant("acme").await;
    let who = acme
        .ok(
            "query",
            json!({"sql": "SELECT SUSER_NAME() AS login, DB_NAME() AS db, \
                   IS_SRVROLEMEMBER('sysadmin') AS sysadmin, IS_MEMBER('db_owner') AS owner"}),
        )
        .await;
    let database = tenant_database(&prefix.prefix, "acme");
    assert_eq!(
        who["rows"],
        json!([{"login": tenant_login(&database), "db": database, "sysadmin": 0, "owner": 0}])
    );
}

#[tokio::test]
#[cfg_attr(
    not(mssql_server),
    ignore = "skipped: no MSSQL server (set SWITCHYARD_TEST_MSSQL_URL to run db/mssql's server tests)"
)]
async fn sql_server_types_come_back_as_documented() {
    let (_prefix, harness) = engine();
    let acme = harness.tenant("acme").await;
    let result = acme
        .ok(
            "query",
            json!({"sql": "SELECT CAST(-1.50 AS DECIMAL(5,2)) AS d, CAST(12.345 AS MONEY) AS m, \
                   CAST(1 AS BIT) AS b, CAST(255 AS TINYINT) AS ti, \
                   CAST('6F9619FF-8B86-D011-B42D-00C04FC964FF' AS UNIQUEIDENTIFIER) AS g, \
                   CAST('2024-02-29' AS DATE) AS dt, CAST('12:34:56.5' AS TIME) AS tm, \
                   CAST('2024-02-29T12:00:00.5' AS DATETIME2) AS t2, \
                   CAST('2024-02-29T12:00:00.007' AS DATETIME) AS t1, \
                   CAST('2024-02-29T12:30:00+02:00' AS DATETIMEOFFSET) AS o, \
                   N'héllo ✓' AS s, 0x00FF10 AS bin, @P1 AS p",
                   "params": [2.5]}),
        )
        .await;
    assert_eq!(
        result["rows"],
        json!([{
            "d": "-1.50", "m": "12.3450", "b": true, "ti": 255,
            "g": "6F9619FF-8B86-D011-B42D-00C04FC964FF",
            "dt": "2024-02-29", "tm": "12:34:56.5", "t2": "2024-02-29T12:00:00.5",
            "t1": "2024-02-29T12:00:00.007", "o": "2024-02-29T12:30:00+02:00",
            "s": "héllo ✓", "bin": "AP8Q", "p": 2.5
        }])
    );
}
