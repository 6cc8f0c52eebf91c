//! db/mysql through the real binary: `SWITCHYARD_MYSQL_URL` registers the engine in `serve`,
//! each tenant gets its own database, and a tenant naming another tenant's database is refused
//! by the server's own grants.

use crate::common;

use common::{Api, Server, tenant_with_key};
use serde_json::json;

#[tokio::test(flavor = "multi_thread")]
async fn serve_hosts_db_mysql_with_a_database_per_tenant_and_no_cross_tenant_reads() {
    let admin = std::env::var("SWITCHYARD_TEST_MYSQL_URL").expect(
        "SWITCHYARD_TEST_MYSQL_URL is not set: run the suite with scripts/test (it starts MariaDB)",
    );
    // A prefix of this run's own, so runs sharing one server never meet.
    let prefix = format!("e2e{}_", std::process::id());
    let dir = tempfile::tempdir().unwrap();
    let mut env = vec![
        ("SWITCHYARD_MYSQL_URL", admin),
        ("SWITCHYARD_MYSQL_TENANT_SECRET", "e2e-tenant-secret".into()),
        ("SWITCHYARD_MYSQL_DATABASE_PREFIX", prefix.clone()),
    ];
    let server = Server::start_with_env(dir.path(), &[], &mut env);
    let acme = Api::new(&server, &tenant_with_key(dir.path(), "acme", "*"));
    let globex = Api::new(&server, &tenant_with_key(dir.path(), "globex", "*"));

    for (api, body) in [(&acme, "acme's note"), (&globex, "globex's note")] {
        let (status, configured) = api
            .post("/providers/db/mysql/configure", json!({"config": {}}))
            .await;
        assert_eq!(status, 200, "{configured}");
        api.ok(
            "db/mysql",
            "execute",
            json!({"sql": "CREATE TABLE notes (body VARCHAR(64))"}),
        )
        .await;
        api.ok(
            "db/mysql",
            "execute",
            json!({"sql": "INSERT INTO notes VALUES (?)", "params": [body]}),
        )
        .await;
    }
    let rows = acme
        .ok(
            "db/mysql",
            "query",
            json!({"sql": "SELECT body FROM notes"}),
        )
        .await;
    assert_eq!(rows["rows"], json!([{"body": "acme's note"}]));

    let (status, problem) = acme
        .post(
            "/providers/db/mysql/query",
            json!({"params": {"sql": format!("SELECT body FROM {prefix}globex.notes")}}),
        )
        .await;
    assert_eq!(status, 422, "{problem}");
    assert_eq!(problem["code"], "statement_failed", "{problem}");
    assert!(
        !problem.to_string().contains("globex's note"),
        "another tenant's row leaked: {problem}"
    );
}
