//! A database DSN with its password, kept in a real Vault-API server, reaches db/postgres
//! through a `secret://vault/...` reference; a rotation in Vault is picked up without a restart;
//! the password never appears in a response or in the server's log.
//!
//! The test server trusts loopback logins, so a wrong password would not be noticed; the rotated
//! DSN therefore also names another database, which makes the switch observable.

use crate::common;

use std::time::{Duration, Instant};

use common::vault::{RealVault, start_shim};
use common::{Api, Server, postgres_admin_url, psql, tenant_with_key, write_config};
use serde_json::json;

#[tokio::test(flavor = "multi_thread")]
async fn a_vault_password_reaches_postgres_rotates_without_restart_and_never_leaks() {
    let vault = RealVault::from_env();
    let shim = start_shim(vault.addr.clone()).await;
    let admin = postgres_admin_url();
    let run = format!(
        "{}_{}",
        std::process::id(),
        Instant::now().elapsed().as_nanos() % 100_000
    );
    let (role, database, rotated_database) = (
        format!("silo_{run}"),
        format!("silo_db_{run}"),
        format!("silo_db2_{run}"),
    );
    let (first, second) = (format!("First-{run}-Pw"), format!("Second-{run}-Pw"));
    psql(
        &admin,
        &format!("CREATE ROLE {role} LOGIN PASSWORD '{first}'"),
    );
    psql(&admin, &format!("CREATE DATABASE {database} OWNER {role}"));
    psql(
        &admin,
        &format!("CREATE DATABASE {rotated_database} OWNER {role}"),
    );
    let host = admin
        .split('@')
        .nth(1)
        .and_then(|h| h.split('/').next())
        .unwrap()
        .to_owned();
    let dsn = |password: &str, db: &str| format!("postgres://{role}:{password}@{host}/{db}");
    let base = admin.rsplit_once('/').unwrap().0.to_owned();
    psql(
        &format!("{base}/{rotated_database}"),
        &format!(
            "CREATE TABLE notes (body text); INSERT INTO notes VALUES ('after'); ALTER TABLE notes OWNER TO {role}"
        ),
    );
    // Under the default tenant subtree: a tenant may name nothing else in Vault.
    let path = format!("secret/tenants/acme/silo-{run}");
    vault
        .put(&path, json!({"dsn": dsn(&first, &database)}))
        .await;

    let dir = tempfile::tempdir().unwrap();
    let mut env = vec![
        ("SWITCHYARD_POSTGRES_URL", admin.clone()),
        (
            "SWITCHYARD_POSTGRES_APP_PASSWORD",
            "app-role-password".to_owned(),
        ),
        ("VAULT_ADDR", format!("http://{shim}")),
        ("VAULT_TOKEN", vault.token.clone()),
        ("SWITCHYARD_VAULT_KV_VERSION", "1".to_owned()),
        ("SWITCHYARD_SECRET_REFRESH_SECS", "1".to_owned()),
    ];
    // The tenant's own database is on the test server's loopback: the operator opens it.
    let config = write_config(
        dir.path(),
        "[tenancy.egress]\nallowed_networks = [\"127.0.0.0/8\"]\n",
    );
    let server = Server::start_with_env(dir.path(), &["--config", &config], &mut env);
    let api = Api::new(&server, &tenant_with_key(dir.path(), "acme", "*"));
    let mut bodies = Vec::new();

    let reference = format!("secret://vault/{path}#dsn");
    let (status, configured) = api
        .post(
            "/providers/db/postgres/configure",
            json!({"config": {"mode": "siloed", "dsn": reference}}),
        )
        .await;
    assert_eq!(status, 200, "{configured}");
    assert_eq!(
        configured["values"]["dsn"],
        reference.as_str(),
        "the answer keeps the reference"
    );
    bodies.push(configured.to_string());
    bodies.push(
        api.ok(
            "db/postgres",
            "execute",
            json!({"sql": "CREATE TABLE notes (body text)"}),
        )
        .await
        .to_string(),
    );
    bodies.push(
        api.ok(
            "db/postgres",
            "execute",
            json!({"sql": "INSERT INTO notes VALUES ($1)", "params": ["before"]}),
        )
        .await
        .to_string(),
    );

    // Rotate: the server gets the new password, the old sessions go, Vault gets the new DSN.
    psql(&admin, &format!("ALTER ROLE {role} PASSWORD '{second}'"));
    vault
        .put(&path, json!({"dsn": dsn(&second, &rotated_database)}))
        .await;
    psql(
        &admin,
        &format!("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = '{role}'"),
    );

    let deadline = Instant::now() + Duration::from_secs(15);
    let mut rotated = false;
    while Instant::now() < deadline {
        let (status, body) = api
            .post(
                "/providers/db/postgres/query",
                json!({"params": {"sql": "SELECT body FROM notes"}}),
            )
            .await;
        bodies.push(body.to_string());
        if status == 200 && body["data"]["rows"] == json!([{"body": "after"}]) {
            rotated = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert!(
        rotated,
        "the rotated password was not picked up without a restart"
    );
    bodies.push(api.get("/providers/db/postgres").await.1.to_string());
    bodies.push(api.get("/providers/db/postgres/health").await.1.to_string());

    let log = std::fs::read_to_string(dir.path().join("server.log")).unwrap();
    for secret in [&first, &second] {
        assert!(
            !log.contains(secret.as_str()),
            "a password reached the server log"
        );
        assert!(
            bodies.iter().all(|b| !b.contains(secret.as_str())),
            "a password reached a response"
        );
    }
    psql(
        &admin,
        &format!("DROP DATABASE IF EXISTS {database} WITH (FORCE)"),
    );
    psql(
        &admin,
        &format!("DROP DATABASE IF EXISTS {rotated_database} WITH (FORCE)"),
    );
    psql(&admin, &format!("DROP ROLE IF EXISTS {role}"));
}
