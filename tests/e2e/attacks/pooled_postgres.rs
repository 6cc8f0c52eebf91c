//! Hole 5: pooled `db/postgres` tenants share one database and one login role. Tenant globex,
//! through its own `/providers/db/postgres/*`, tries what that role could once do to tenant
//! acme: lock acme's table, draw from acme's sequence, read acme's table names, cancel or
//! terminate the shared connections, hold an advisory lock (on the key tenant enrollment
//! takes) across calls so acme cannot start, and lift its own statement timeout.

use std::time::Duration;

use crate::common;

use common::{Api, Database, Server, free_port, psql, tenant_with_key};
use reqwest::StatusCode;
use serde_json::{Value, json};

/// `serve` on a database of its own; the server is dropped before the database.
struct Stack {
    server: Server,
    database: Database,
    _dir: tempfile::TempDir,
}

impl Stack {
    fn start() -> Stack {
        let database = Database::create("pooled");
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let server = Server::spawn_with_env(
            dir.path(),
            &["serve", "--listen", &format!("127.0.0.1:{port}")],
            port,
            &mut vec![
                ("SWITCHYARD_POSTGRES_URL", database.url.clone()),
                ("SWITCHYARD_POSTGRES_APP_PASSWORD", "switchyard-test".into()),
            ],
        );
        Stack {
            server,
            database,
            _dir: dir,
        }
    }

    fn tenant(&self, tenant: &str) -> Api {
        Api::new(
            &self.server,
            &tenant_with_key(&self.server.data_dir, tenant, "*"),
        )
    }
}

async fn sql(api: &Api, action: &str, sql: &str) -> (StatusCode, Value) {
    api.post(
        &format!("/providers/db/postgres/{action}"),
        json!({"params": {"sql": sql}}),
    )
    .await
}

/// acme with a table (and its sequence) holding one row.
async fn acme_with_items(stack: &Stack) -> Api {
    let acme = stack.tenant("acme");
    for statement in [
        "CREATE TABLE items (id SERIAL PRIMARY KEY, v TEXT NOT NULL)",
        "INSERT INTO items (v) VALUES ('a1')",
    ] {
        let (status, body) = sql(&acme, "execute", statement).await;
        assert_eq!(status, StatusCode::OK, "{statement}: {body}");
    }
    acme
}

#[tokio::test(flavor = "multi_thread")]
async fn globex_cannot_lock_draw_from_or_list_acmes_tables() {
    let stack = Stack::start();
    let acme = acme_with_items(&stack).await;
    let globex = stack.tenant("globex");
    for (action, statement) in [
        (
            "execute",
            "LOCK TABLE t_acme.items IN ACCESS EXCLUSIVE MODE",
        ),
        ("execute", "LOCK TABLE t_acme.items IN ACCESS SHARE MODE"),
        ("query", "SELECT nextval('t_acme.items_id_seq') AS n"),
        ("execute", "TRUNCATE t_acme.items"),
        (
            "execute",
            "CREATE TABLE pin (id INTEGER REFERENCES t_acme.items (id))",
        ),
        (
            "query",
            "SELECT relname FROM pg_catalog.pg_class WHERE relname = 'items'",
        ),
        ("query", "SELECT nspname FROM pg_catalog.pg_namespace"),
    ] {
        let (status, body) = sql(&globex, action, statement).await;
        assert_ne!(status, StatusCode::OK, "globex ran {statement}: {body}");
        assert_eq!(body["code"], "statement_failed", "{statement}: {body}");
    }
    let (status, listed) = sql(
        &globex,
        "query",
        "SELECT table_schema, table_name FROM information_schema.tables \
         WHERE table_schema NOT IN ('pg_catalog', 'information_schema')",
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{listed}");
    assert_eq!(
        listed["data"]["rows"],
        json!([]),
        "globex sees acme's tables"
    );
    // Every pooled connection logs in as the one runtime role; globex may not signal them.
    let pids = psql(
        &stack.database.url,
        "SELECT pid FROM pg_stat_activity \
         WHERE datname = current_database() AND usename = 'switchyard_app'",
    );
    assert!(!pids.trim().is_empty(), "no pooled connection to aim at");
    for pid in pids.lines() {
        for signal in ["pg_cancel_backend", "pg_terminate_backend"] {
            let statement = format!("SELECT {signal}({pid}) AS signalled");
            let (status, body) = sql(&globex, "query", &statement).await;
            assert_ne!(status, StatusCode::OK, "globex ran {statement}: {body}");
        }
    }
    // acme's next id is the one after its own insert: nobody drew from its sequence.
    let (status, inserted) = sql(&acme, "execute", "INSERT INTO items (v) VALUES ('a2')").await;
    assert_eq!(status, StatusCode::OK, "{inserted}");
    assert_eq!(inserted["data"]["last_insert_id"], 2, "{inserted}");
}

#[tokio::test(flavor = "multi_thread")]
async fn globex_cannot_hold_a_lock_that_stops_acme_from_starting() {
    let stack = Stack::start();
    let acme = stack.tenant("acme");
    let globex = stack.tenant("globex");
    for statement in [
        "SELECT pg_advisory_lock(hashtext('switchyard.enroll')) AS held",
        "SELECT pg_try_advisory_lock(hashtext('switchyard.enroll')) AS held",
        "SELECT pg_advisory_lock_shared(1) AS held",
    ] {
        // Several times, so that every connection of the shared pool could be left holding it.
        for _ in 0..4 {
            sql(&globex, "query", statement).await;
        }
    }
    let held = psql(
        &stack.database.url,
        "SELECT count(*) FROM pg_locks l JOIN pg_database d ON d.oid = l.database \
         WHERE l.locktype = 'advisory' AND d.datname = current_database()",
    );
    assert_eq!(held.trim(), "0", "an advisory lock outlived globex's calls");
    // A new instance of acme's db/postgres enrolls acme: it must not wait for globex.
    let configure = acme
        .raw()
        .post(format!(
            "{}/providers/db/postgres/configure",
            stack.server.base
        ))
        .bearer_auth(acme.key())
        .json(&json!({"config": {"max_connections": 3}}))
        .timeout(Duration::from_secs(15))
        .send()
        .await
        .expect("acme's start is not blocked by globex");
    assert_eq!(configure.status(), StatusCode::OK);
    let (status, body) = sql(&acme, "query", "SELECT 1 AS one").await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

#[tokio::test(flavor = "multi_thread")]
async fn globex_cannot_lift_its_statement_timeout() {
    let stack = Stack::start();
    let globex = stack.tenant("globex");
    let (status, body) = globex
        .post(
            "/providers/db/postgres/configure",
            json!({"config": {"statement_timeout_ms": 300}}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    for statement in [
        "SET LOCAL statement_timeout = 0",
        "SET statement_timeout TO DEFAULT",
        "RESET statement_timeout",
        "SELECT set_config('statement_timeout', '0', true)",
        "SELECT \"pg_catalog\".\"set_config\"('statement_' || 'timeout', '0', true)",
        "DO $$ BEGIN PERFORM pg_sleep(2); END $$",
    ] {
        let (status, body) = sql(&globex, "execute", statement).await;
        assert_ne!(status, StatusCode::OK, "globex ran {statement}: {body}");
        assert_eq!(body["code"], "statement_failed", "{statement}: {body}");
    }
    // A batch cannot lift it for the statements after either: the sleep is cut at 300 ms.
    let (status, body) = globex
        .post(
            "/providers/db/postgres/transaction",
            json!({"params": {"statements": [
                {"sql": "SET LOCAL statement_timeout = 0"},
                {"sql": "SELECT pg_sleep(2)"}
            ]}}),
        )
        .await;
    assert_ne!(status, StatusCode::OK, "{body}");
    let (status, body) = sql(&globex, "query", "SELECT pg_sleep(2) AS slept").await;
    assert_ne!(status, StatusCode::OK, "{body}");
    assert_eq!(body["code"], "timeout", "{body}");
}
