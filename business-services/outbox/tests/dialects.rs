//! The outbox, relay and inbox in each dialect a db provider may declare, on real servers:
//! SQLite as the built-in `db/sqlite` (no declaration), PostgreSQL registered as `db/wire`
//! declaring `dialect:postgres`, MariaDB registered as `db/maria` declaring `dialect:mysql`.
//! Each runs the same journey through every statement the outbox and inbox write; a provider
//! declaring no dialect is refused saying what to declare.

use std::sync::Arc;

use serde_json::{Value, json};
use switchyard_client::ProviderClient;
use switchyard_contracts::{ErrorCode, Problem, TenantId};
use switchyard_outbox::{Dialect, Event, Inbox, Outbox, Relay};
use switchyard_provider_bus::EmbeddedBusFactory;
use switchyard_provider_db::{MysqlFactory, PostgresFactory, PostgresSettings, SqliteFactory};
use switchyard_runtime::{PlatformStore, Registry, Runtime, RuntimeClient};
use switchyard_service_kit::testkit::{Renamed, pg};

#[path = "../../../providers/db/tests/support/mysql.rs"]
mod my;
#[path = "../../../providers/db/tests/support/prefix.rs"]
mod prefix;

const BUS: &str = "bus/embedded";

struct Platform {
    client: RuntimeClient,
    _runtime: Arc<Runtime>,
    _dir: tempfile::TempDir,
    _postgres: pg::TestDatabase,
    _mysql: my::TestPrefix,
}

impl Platform {
    async fn start() -> Platform {
        let dir = tempfile::tempdir().unwrap();
        let postgres = pg::TestDatabase::create("outbox").await;
        let mysql = my::test_prefix("outbox");
        let sqlite = |folder: &str| Arc::new(SqliteFactory::new(dir.path().join(folder)));
        let mut registry = Registry::default();
        registry.register(sqlite("db")).unwrap();
        let engines = [
            Renamed::new(
                Arc::new(PostgresFactory::new(PostgresSettings::new(
                    postgres.url.clone(),
                    pg::APP_PASSWORD,
                ))),
                "wire",
                &["transactions", "dialect:postgres"],
            ),
            Renamed::new(
                Arc::new(
                    MysqlFactory::new(my::server_url())
                        .with_secret("outbox-test-secret")
                        .with_database_prefix(&mysql.prefix),
                ),
                "maria",
                &["transactions", "dialect:mysql"],
            ),
            Renamed::new(sqlite("plain"), "plain", &["transactions", "metadata"]),
        ];
        for engine in engines {
            registry.register(Arc::new(engine)).unwrap();
        }
        registry
            .register(Arc::new(EmbeddedBusFactory::new(dir.path().join("bus"))))
            .unwrap();
        let store = PlatformStore::open(dir.path()).await.unwrap();
        let tenant = TenantId::parse("acme").unwrap();
        store.create_tenant(&tenant).await.unwrap();
        let runtime = Arc::new(Runtime::new(
            registry,
            store,
            Default::default(),
            Default::default(),
        ));
        Platform {
            client: RuntimeClient::new(runtime.clone(), tenant, "service:test"),
            _runtime: runtime,
            _dir: dir,
            _postgres: postgres,
            _mysql: mysql,
        }
    }
}

/// `statements` (SQLite-numbered) bound for `dialect`, in one transaction.
async fn send(
    client: &RuntimeClient,
    db: &str,
    dialect: Dialect,
    statements: Vec<Value>,
) -> Result<(), Problem> {
    let statements: Vec<Value> = statements
        .into_iter()
        .map(|statement| dialect.bind_statement(statement))
        .collect();
    client
        .invoke(db, "transaction", json!({"statements": statements}))
        .await
        .map(drop)
}

/// An order placed with its event, shipped with a guarded one (twice: the second is refused),
/// both relayed and marked sent, then billed once through the inbox although delivered twice.
async fn journey(client: &RuntimeClient, db: &str, expected: Dialect) {
    let tenant = client.tenant();
    let outbox = Outbox::new(db).unwrap();
    outbox.install(client).await.unwrap();
    let dialect = outbox.dialect(client).await.unwrap();
    assert_eq!(dialect, expected, "{db}");
    client
        .invoke(
            db,
            "execute",
            json!({"sql": "CREATE TABLE orders (id VARCHAR(32) PRIMARY KEY, status VARCHAR(16) NOT NULL)"}),
        )
        .await
        .unwrap();

    let placed = Event::new("orders.placed", "/tests", "orders", json!({"id": "o-1"}));
    let place = json!({"sql": "INSERT INTO orders (id, status) VALUES (?1, ?2)", "params": ["o-1", "placed"]});
    send(
        client,
        db,
        dialect,
        vec![place, outbox.statement(tenant, &placed)],
    )
    .await
    .unwrap();

    let shipped = Event::new("orders.shipped", "/tests", "orders", json!({"id": "o-1"}))
        .with_id("o-1:shipped");
    // The `'?'` literals of the guard are text, not parameters.
    let ship = |order: &str, event: &Event| {
        vec![
            json!({"sql": "UPDATE orders SET status = ?1 WHERE id = ?2 AND status = 'placed'",
                   "params": ["shipped", order]}),
            outbox.statement_if(
                tenant,
                event,
                "SELECT 1 FROM orders WHERE id = ? AND status = ? AND '?' <> '?x'",
                vec![json!(order), json!("shipped")],
            ),
        ]
    };
    send(client, db, dialect, ship("o-1", &shipped))
        .await
        .unwrap();
    let again = send(client, db, dialect, ship("o-1", &shipped))
        .await
        .unwrap_err();
    assert_eq!(again.code, ErrorCode::Conflict, "{db}: {again:?}");
    // No order o-2: its guard finds nothing and no event is written.
    let never = Event::new("orders.shipped", "/tests", "orders", json!({"id": "o-2"}))
        .with_id("o-2:shipped");
    send(client, db, dialect, ship("o-2", &never))
        .await
        .unwrap();

    let pending = outbox.pending(client, 10).await.unwrap();
    let ids: Vec<&str> = pending.iter().map(|p| p.event_id.as_str()).collect();
    assert_eq!(ids, [placed.id.as_str(), "o-1:shipped"], "{db}");
    let relay = Relay::new(outbox.clone(), BUS, 10);
    assert_eq!(relay.run_once(client).await.unwrap(), 2, "{db}");
    assert!(outbox.pending(client, 10).await.unwrap().is_empty(), "{db}");

    let inbox = Inbox::new(db, "billing").unwrap();
    inbox.install(client).await.unwrap();
    // Params used out of order and twice: MySQL's `?` take them as they appear.
    let bill = || {
        vec![
            json!({"sql": "UPDATE orders SET status = ?2 WHERE id = ?1 AND status <> ?2",
                    "params": ["o-1", "billed"]}),
        ]
    };
    assert!(inbox.apply_once(client, &placed.id, bill()).await.unwrap());
    assert!(!inbox.apply_once(client, &placed.id, bill()).await.unwrap());
    assert!(inbox.seen(client, &placed.id).await.unwrap());
    let status = client
        .invoke(
            db,
            "query",
            json!({"sql": "SELECT status FROM orders WHERE id = 'o-1'"}),
        )
        .await
        .unwrap();
    assert_eq!(status["rows"], json!([{"status": "billed"}]), "{db}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_outbox_and_inbox_write_each_dialect_their_provider_declares() {
    let platform = Platform::start().await;
    let client = &platform.client;
    journey(client, "db/sqlite", Dialect::Sqlite).await;
    journey(client, "db/wire", Dialect::Postgres).await;
    journey(client, "db/maria", Dialect::Mysql).await;
    let published = client
        .invoke(
            BUS,
            "replay",
            json!({"topic": "orders", "from_offset": 0, "max_records": 100}),
        )
        .await
        .unwrap();
    assert_eq!(published["records"].as_array().unwrap().len(), 6);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_db_provider_declaring_no_dialect_is_refused_saying_what_to_declare() {
    let platform = Platform::start().await;
    let client = &platform.client;
    let outbox = Outbox::new("db/plain").unwrap();
    let problem = outbox.install(client).await.unwrap_err();
    assert_eq!(problem.code, ErrorCode::ParamsUnprocessable, "{problem:?}");
    for words in ["db/plain", "declares no SQL dialect", "dialect:<name>"] {
        assert!(problem.detail.contains(words), "{words}: {problem:?}");
    }
    let inbox = Inbox::new("db/plain", "billing").unwrap();
    let problem = inbox.install(client).await.unwrap_err();
    assert_eq!(problem.code, ErrorCode::ParamsUnprocessable, "{problem:?}");
    // An id naming no db provider is refused before anything is asked.
    assert_eq!(
        Outbox::new("cache/memory").unwrap_err().code,
        ErrorCode::RequestInvalid
    );
}
