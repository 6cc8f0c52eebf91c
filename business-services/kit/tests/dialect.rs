//! The kit writes a service's SQL in the dialect its db provider declares, not the one its id
//! suggests: a PostgreSQL engine registered as `db/wire` and declaring `dialect:postgres` (as a
//! plugin or remote engine would) runs the services' `?1` SQL on a real PostgreSQL, and a
//! provider declaring no dialect the services write is refused on the first call, naming what
//! to declare.

use std::sync::Arc;

use serde_json::json;
use switchyard_client::ProviderClient;
use switchyard_contracts::{ErrorCode, Event, TenantId};
use switchyard_outbox::Dialect;
use switchyard_provider_db::{PostgresFactory, PostgresSettings, SqliteFactory};
use switchyard_runtime::{PlatformStore, Registry, Runtime, RuntimeClient};
use switchyard_service_kit::ServiceCore;
use switchyard_service_kit::testkit::{Renamed, pg};

/// A runtime with PostgreSQL as `db/wire` (declaring `dialect:postgres`), SQLite as
/// `db/plain` (declaring no dialect) and as `db/maria` (declaring `dialect:mysql`).
struct Platform {
    client: RuntimeClient,
    _runtime: Arc<Runtime>,
    _dir: tempfile::TempDir,
    _database: pg::TestDatabase,
}

impl Platform {
    async fn start() -> Platform {
        let dir = tempfile::tempdir().unwrap();
        let database = pg::TestDatabase::create("dialect").await;
        let postgres = PostgresFactory::new(PostgresSettings::new(
            database.url.clone(),
            pg::APP_PASSWORD,
        ));
        let sqlite = |folder: &str| Arc::new(SqliteFactory::new(dir.path().join(folder)));
        let mut registry = Registry::default();
        for engine in [
            Renamed::new(
                Arc::new(postgres),
                "wire",
                &["transactions", "dialect:postgres"],
            ),
            Renamed::new(sqlite("plain"), "plain", &["transactions", "metadata"]),
            Renamed::new(sqlite("maria"), "maria", &["transactions", "dialect:mysql"]),
        ] {
            registry.register(Arc::new(engine)).unwrap();
        }
        let store = PlatformStore::open(dir.path()).await.unwrap();
        let runtime = Arc::new(Runtime::new(
            registry,
            store,
            Default::default(),
            Default::default(),
        ));
        Platform {
            client: RuntimeClient::new(
                runtime.clone(),
                TenantId::parse("acme").unwrap(),
                "service:ledger",
            ),
            _runtime: runtime,
            _dir: dir,
            _database: database,
        }
    }
}

fn core(db: &str) -> ServiceCore {
    ServiceCore::new("ledger", "0.0.0", "test", db, Some("bus/embedded".into())).unwrap()
}

fn notes(dialect: Dialect) -> Vec<String> {
    vec![format!(
        "CREATE TABLE IF NOT EXISTS notes (id {}, body VARCHAR(64) NOT NULL)",
        dialect.auto_key()
    )]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_db_provider_named_anything_that_declares_postgres_is_written_postgres() {
    let platform = Platform::start().await;
    let client = &platform.client;
    let core = core("db/wire");
    core.install(client, notes).await.unwrap();
    assert_eq!(core.db.dialect(client).await.unwrap(), Dialect::Postgres);

    let event = Event::new("ledger.note", "/tests", "ledger", json!({"n": 1}));
    let outbox = core.outbox().unwrap();
    let statements = vec![
        core.db.statement(
            "INSERT INTO notes (body) VALUES (?1), (?2)",
            vec![json!("it's ?1"), json!("second")],
        ),
        outbox.statement(client.tenant(), &event),
    ];
    core.db.transaction(client, statements).await.unwrap();
    let rows = core
        .db
        .query(
            client,
            "SELECT body FROM notes WHERE body = ?1 OR (id > ?2 AND body <> '?1') ORDER BY id",
            vec![json!("it's ?1"), json!(1)],
        )
        .await
        .unwrap();
    let bodies: Vec<_> = rows.iter().map(|row| row["body"].clone()).collect();
    assert_eq!(bodies, [json!("it's ?1"), json!("second")]);
    let pending = outbox.pending(client, 10).await.unwrap();
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0].event_id, event.id);

    // The binding is what made it run: the same text as written is PostgreSQL's to refuse.
    let raw = client
        .invoke(
            "db/wire",
            "query",
            json!({"sql": "SELECT body FROM notes WHERE body = ?1", "params": ["second"]}),
        )
        .await
        .unwrap_err();
    assert_eq!(raw.code, ErrorCode::StatementFailed, "{raw:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_db_provider_declaring_no_dialect_the_services_write_is_refused_saying_what_to_declare() {
    let platform = Platform::start().await;
    let client = &platform.client;

    let problem = core("db/plain").install(client, notes).await.unwrap_err();
    assert_eq!(problem.code, ErrorCode::Internal, "{problem:?}");
    for words in [
        "ledger",
        "db/plain",
        "declares no SQL dialect",
        "dialect:<name>",
    ] {
        assert!(problem.detail.contains(words), "{words}: {problem:?}");
    }
    let tables = client
        .invoke(
            "db/plain",
            "query",
            json!({"sql": "SELECT name FROM sqlite_master WHERE type = 'table'"}),
        )
        .await
        .unwrap();
    assert_eq!(tables["rows"], json!([]), "nothing was created");

    // MySQL is a dialect the outbox writes but the services do not (no `ON CONFLICT`).
    let problem = core("db/maria").install(client, notes).await.unwrap_err();
    assert_eq!(problem.code, ErrorCode::Internal, "{problem:?}");
    assert!(problem.detail.contains("dialect:mysql"), "{problem:?}");

    let problem = core("db/nowhere").install(client, notes).await.unwrap_err();
    assert_eq!(problem.code, ErrorCode::ProviderNotFound, "{problem:?}");
}
