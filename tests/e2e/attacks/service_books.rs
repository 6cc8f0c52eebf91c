//! Hole 6: the books a business service owns are not the tenant's to write. After journals are
//! posted through `/services/ledger/*`, a key allowed `invoke:db` neither sees the ledger's
//! tables through the tenant's own db provider nor changes them, and the trial balance stays
//! what the ledger posted — on the embedded `db/sqlite` and on pooled `db/postgres`.

use crate::common;

use common::{Api, Database, Server, cli, free_port, tenant_with_key};
use reqwest::StatusCode;
use serde_json::{Value, json};

const LEDGER_TABLES: [&str; 6] = [
    "gl_account",
    "gl_journal",
    "gl_entry",
    "gl_balance",
    "acc_event",
    "gl_period",
];

/// The tenant's admin, who posts, and a developer (scope `invoke`), who tries the db provider.
fn keys(server: &Server) -> (Api, Api) {
    let admin = tenant_with_key(&server.data_dir, "acme", "*");
    let developer = cli(
        &server.data_dir,
        &["key", "create", "--tenant", "acme", "--scopes", "invoke"],
    );
    (Api::new(server, &admin), Api::new(server, developer.trim()))
}

async fn ledger(api: &Api, action: &str, params: Value) -> Value {
    api.service_ok("ledger", action, params).await
}

/// Two accounts and two journals; answers the trial balance they give.
async fn post_books(admin: &Api) -> Value {
    for (code, kind) in [("1000", "asset"), ("4000", "income")] {
        ledger(
            admin,
            "create_account",
            json!({"code": code, "name": code, "type": kind, "currency": "EUR"}),
        )
        .await;
    }
    for (id, amount) in [("J-1", "119.99"), ("J-2", "20.01")] {
        ledger(
            admin,
            "post_journal",
            json!({"journal_id": id, "posting_time": "2026-03-01T09:00:00Z", "lines": [
                {"account": "1000", "debit": amount, "currency": "EUR"},
                {"account": "4000", "credit": amount, "currency": "EUR"}]}),
        )
        .await;
    }
    ledger(admin, "trial_balance", json!({})).await
}

async fn db(api: &Api, db: &str, action: &str, sql: &str) -> (StatusCode, Value) {
    api.post(
        &format!("/providers/{db}/{action}"),
        json!({"params": {"sql": sql}}),
    )
    .await
}

/// What the developer tries on `db`, given the SQL that lists the tenant's tables there.
async fn the_developer_cannot_touch_the_books(
    admin: &Api,
    developer: &Api,
    db_provider: &str,
    list_tables: &str,
) {
    let before = post_books(admin).await;
    let (status, tables) = db(developer, db_provider, "query", list_tables).await;
    assert_eq!(status, StatusCode::OK, "{tables}");
    let names = tables["data"]["rows"].to_string();
    for table in LEDGER_TABLES {
        assert!(
            !names.contains(table),
            "the tenant's {db_provider} lists the ledger's {table}: {names}"
        );
    }
    for sql in [
        "UPDATE gl_entry SET debit = debit * 100",
        "DELETE FROM acc_event",
        "INSERT INTO gl_balance (account, currency, debit, credit) VALUES ('1000', 'EUR', '1', '0')",
    ] {
        let (status, body) = db(developer, db_provider, "execute", sql).await;
        assert_ne!(status, StatusCode::OK, "{db_provider} ran {sql}: {body}");
        assert_eq!(body["code"], "statement_failed", "{sql}: {body}");
    }
    let after = ledger(admin, "trial_balance", json!({})).await;
    assert_eq!(after, before, "the trial balance changed");
    let rebuilt = ledger(admin, "rebuild", json!({})).await;
    assert_eq!(rebuilt["equal"], true, "{rebuilt}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_db_key_cannot_see_or_rewrite_the_ledger_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path());
    let (admin, developer) = keys(&server);
    the_developer_cannot_touch_the_books(
        &admin,
        &developer,
        "db/sqlite",
        "SELECT name FROM sqlite_master",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_db_key_cannot_see_or_rewrite_the_ledger_on_pooled_postgres() {
    // Declared before the server, so it is dropped after it, on success or panic.
    let database = Database::create("books");
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let server = Server::spawn_with_env(
        dir.path(),
        &["serve", "--listen", &format!("127.0.0.1:{port}")],
        port,
        &mut vec![
            ("SWITCHYARD_POSTGRES_URL", database.url.clone()),
            ("SWITCHYARD_POSTGRES_APP_PASSWORD", "switchyard-test".into()),
            ("SWITCHYARD_LEDGER_DB", "db/postgres".into()),
        ],
    );
    let (admin, developer) = keys(&server);
    the_developer_cannot_touch_the_books(
        &admin,
        &developer,
        "db/postgres",
        "SELECT table_schema || '.' || table_name AS name FROM information_schema.tables",
    )
    .await;
    // Naming the books' schema does not help: the tenant's role has no privilege on it.
    let (status, body) = db(
        &developer,
        "db/postgres",
        "execute",
        "UPDATE s_acme.gl_entry SET debit = debit * 100",
    )
    .await;
    assert_ne!(status, StatusCode::OK, "{body}");
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .contains("permission denied"),
        "{body}"
    );
}

/// `/services/outbox/relay` carries the caller's own books only: globex relaying finds nothing
/// of acme's, and acme's events reach acme's bus alone.
#[tokio::test(flavor = "multi_thread")]
async fn another_tenants_relay_carries_nothing_of_acmes_books() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_with_env(
        dir.path(),
        &[],
        // The relays here are the tenants' own calls: no hosted relay races them.
        &mut vec![
            ("SWITCHYARD_LEDGER_BUS", "bus/embedded".to_owned()),
            ("SWITCHYARD_HOSTED_WORKERS", "off".to_owned()),
        ],
    );
    let (acme, _) = keys(&server);
    post_books(&acme).await;
    let globex = Api::new(&server, &tenant_with_key(&server.data_dir, "globex", "*"));
    let relay = json!({"db": "db/sqlite", "bus": "bus/embedded", "max_events": 100});
    let replay = json!({"topic": "ledger", "from_offset": 0});

    let stolen = globex.service_ok("outbox", "relay", relay.clone()).await;
    assert_eq!(stolen["sent"], 0, "{stolen}");
    let (status, on_globex) = globex
        .post(
            "/providers/bus/embedded/replay",
            json!({ "params": replay.clone() }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{on_globex}");
    assert_eq!(on_globex["data"]["records"], json!([]), "{on_globex}");

    let sent = acme.service_ok("outbox", "relay", relay).await;
    assert_eq!(sent["sent"], 2, "two journals, two events: {sent}");
    let on_acme = acme.ok("bus/embedded", "replay", replay).await;
    assert_eq!(
        on_acme["records"].as_array().map(Vec::len),
        Some(2),
        "{on_acme}"
    );
}
