//! The platform store on PostgreSQL through the real binary: `serve` with
//! `SWITCHYARD_STORE_URL` (plain, then as a `secret://` reference), tenants and keys created by
//! the CLI with `--store-url`, state that survives a restart on a fresh data dir, and a store
//! password that never reaches the log.

use crate::common;

use std::process::Command;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::{Api, Server, cli, postgres_admin_url, psql};
use serde_json::json;

/// A database and a login role with a password of their own, dropped at the end. The test
/// server trusts loopback logins, so the password is not checked, but it is in the URL the
/// binary gets, which is what must not leak.
struct StoreDatabase {
    admin: String,
    role: String,
    database: String,
    password: String,
    url: String,
}

impl StoreDatabase {
    fn create() -> StoreDatabase {
        let admin = postgres_admin_url();
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        let run = format!("{}_{nanos}", std::process::id());
        let (role, database) = (format!("sy_store_{run}"), format!("sy_store_db_{run}"));
        let password = format!("Store-{run}-Pw");
        psql(
            &admin,
            &format!("CREATE ROLE {role} LOGIN PASSWORD '{password}'"),
        );
        psql(&admin, &format!("CREATE DATABASE {database} OWNER {role}"));
        let (_, rest) = admin.split_once("://").unwrap();
        let authority = rest.split('/').next().unwrap();
        let host = authority.rsplit('@').next().unwrap();
        StoreDatabase {
            url: format!("postgres://{role}:{password}@{host}/{database}"),
            admin,
            role,
            database,
            password,
        }
    }

    /// The same server and database as the superuser, for checking what was stored.
    fn admin_on_database(&self) -> String {
        let base = self.admin.rsplit_once('/').unwrap().0;
        format!("{base}/{}", self.database)
    }
}

impl Drop for StoreDatabase {
    fn drop(&mut self) {
        // Separate commands: DROP DATABASE refuses to run inside psql's implicit transaction.
        for sql in [
            format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.database),
            format!("DROP ROLE IF EXISTS {}", self.role),
        ] {
            let _ = Command::new("psql")
                .args([&self.admin, "-qAtc", &sql])
                .output();
        }
    }
}

/// `serve` with these variables besides a log loud enough that sqlx's own connection and
/// statement logs are checked too. One replica: the node-local engines it uses are allowed.
fn serve(data_dir: &std::path::Path, store: &[(&'static str, &str)]) -> Server {
    let mut env = vec![
        ("SWITCHYARD_LOG", "info,sqlx=debug".to_owned()),
        ("SWITCHYARD_NODE_LOCAL", "allow".to_owned()),
    ];
    env.extend(store.iter().map(|(name, value)| (*name, value.to_string())));
    Server::start_with_env(data_dir, &[], &mut env)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_postgres_store_outlives_a_restart_and_its_password_never_reaches_the_log() {
    let db = StoreDatabase::create();
    let (first_dir, cli_dir, second_dir) = (
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
    );
    let mut server = serve(first_dir.path(), &[("SWITCHYARD_STORE_URL", &db.url)]);

    // The CLI shares nothing with the server but the store URL.
    let store = ["--store-url", db.url.as_str()];
    cli(
        cli_dir.path(),
        &[&store[..], &["tenant", "create", "acme"]].concat(),
    );
    let key = cli(
        cli_dir.path(),
        &[
            &store[..],
            &["key", "create", "--tenant", "acme", "--scopes", "*"],
        ]
        .concat(),
    )
    .trim()
    .to_owned();
    assert_eq!(
        psql(&db.admin_on_database(), "SELECT tenant_id FROM api_keys").trim(),
        "acme"
    );

    let api = Api::new(&server, &key);
    let (status, configured) = api
        .post(
            "/providers/cache/memory/configure",
            json!({"config": {"default_ttl_ms": 60000}}),
        )
        .await;
    assert_eq!(status, 200, "{configured}");
    api.ok("cache/memory", "set", json!({"key": "k", "value": 1}))
        .await;
    server.terminate();
    assert!(
        server.exited_within(Duration::from_secs(15)),
        "no clean exit"
    );

    // A fresh data dir: whatever the restarted server knows came from PostgreSQL. This time
    // the URL comes through a secret reference.
    let server = serve(
        second_dir.path(),
        &[
            ("SWITCHYARD_STORE_URL", "secret://env/SY_E2E_STORE_URL"),
            ("SY_E2E_STORE_URL", &db.url),
        ],
    );
    let api = Api::new(&server, &key);
    let (status, detail) = api.get("/providers/cache/memory").await;
    assert_eq!(status, 200, "the key no longer works: {detail}");
    assert_eq!(detail["config"]["version"], 1);
    assert_eq!(detail["config"]["values"], json!({"default_ttl_ms": 60000}));
    api.ok("cache/memory", "set", json!({"key": "k", "value": 2}))
        .await;
    let (status, _) = Api::new(&server, "sy_0000_nope").get("/providers").await;
    assert_eq!(status, 401);
    drop(server);

    for dir in [&first_dir, &second_dir] {
        assert!(
            !dir.path().join("platform.db").exists(),
            "a SQLite store was opened beside PostgreSQL"
        );
        let log = std::fs::read_to_string(dir.path().join("server.log")).unwrap();
        assert!(
            log.contains(&format!("postgres://{}@", db.role)),
            "the log does not say where the store is: {log}"
        );
        assert!(
            !log.contains(&db.password),
            "the store password is in the server log"
        );
    }
}
