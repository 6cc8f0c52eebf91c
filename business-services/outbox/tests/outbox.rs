//! The outbox, relay and inbox on real engines (db/sqlite, bus/embedded) through the runtime's
//! in-process client, as a business service would run them.

use std::sync::Arc;

use serde_json::{Value, json};
use switchyard_client::ProviderClient;
use switchyard_contracts::{ErrorCode, TenantId};
use switchyard_outbox::{Event, Inbox, Outbox, Relay};
use switchyard_provider_bus::EmbeddedBusFactory;
use switchyard_provider_db::SqliteFactory;
use switchyard_runtime::{PlatformStore, Registry, Runtime, RuntimeClient};

const DB: &str = "db/sqlite";
const BUS: &str = "bus/embedded";

struct Platform {
    runtime: Arc<Runtime>,
    _dir: tempfile::TempDir,
}

impl Platform {
    async fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let store = PlatformStore::open(dir.path()).await.unwrap();
        let mut registry = Registry::default();
        registry
            .register(Arc::new(SqliteFactory::new(dir.path().join("db"))))
            .unwrap();
        registry
            .register(Arc::new(EmbeddedBusFactory::new(dir.path().join("bus"))))
            .unwrap();
        for tenant in ["acme", "globex"] {
            store
                .create_tenant(&TenantId::parse(tenant).unwrap())
                .await
                .unwrap();
        }
        let runtime = Arc::new(Runtime::new(
            registry,
            store,
            Default::default(),
            Default::default(),
        ));
        Platform { runtime, _dir: dir }
    }

    async fn tenant(&self, tenant: &str) -> RuntimeClient {
        let client = RuntimeClient::new(
            self.runtime.clone(),
            TenantId::parse(tenant).unwrap(),
            "service:test",
        );
        Outbox::new(DB).unwrap().install(&client).await.unwrap();
        client
            .invoke(
                DB,
                "execute",
                json!({"sql": "CREATE TABLE IF NOT EXISTS orders (id TEXT PRIMARY KEY, total INTEGER NOT NULL)"}),
            )
            .await
            .unwrap();
        client
    }
}

/// One order row and its event, in one transaction.
async fn place_order(client: &RuntimeClient, id: &str, total: i64) -> Result<Event, ErrorCode> {
    let event = Event::new(
        "orders.order.placed",
        "/services/orders",
        "orders",
        json!({"order_id": id, "total": total}),
    )
    .with_key(id);
    let outbox = Outbox::new(DB).unwrap();
    client
        .invoke(
            DB,
            "transaction",
            json!({"statements": [
                {"sql": "INSERT INTO orders (id, total) VALUES (?1, ?2)", "params": [id, total]},
                outbox.statement(client.tenant(), &event),
            ]}),
        )
        .await
        .map_err(|p| p.code)?;
    Ok(event)
}

async fn bus_records(client: &RuntimeClient, topic: &str) -> Vec<Value> {
    let answer = client
        .invoke(
            BUS,
            "replay",
            json!({"topic": topic, "from_offset": 0, "max_records": 1000}),
        )
        .await
        .unwrap();
    answer["records"].as_array().unwrap().clone()
}

#[tokio::test]
async fn a_write_and_its_event_commit_together_or_not_at_all() {
    let platform = Platform::new().await;
    let acme = platform.tenant("acme").await;
    let outbox = Outbox::new(DB).unwrap();

    place_order(&acme, "o-1", 100).await.unwrap();
    // The same order id again: the order insert fails, and so must its event.
    assert_eq!(
        place_order(&acme, "o-1", 200).await.unwrap_err(),
        ErrorCode::Conflict
    );
    let pending = outbox.pending(&acme, 100).await.unwrap();
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0].payload, json!({"order_id": "o-1", "total": 100}));
}

#[tokio::test]
async fn a_guarded_event_is_written_only_when_its_guard_finds_the_new_state_and_only_once() {
    let platform = Platform::new().await;
    let acme = platform.tenant("acme").await;
    let outbox = Outbox::new(DB).unwrap();
    place_order(&acme, "o-1", 100).await.unwrap();
    let shipped = |from: i64, total: i64| {
        let event = Event::new(
            "orders.order.shipped",
            "/services/orders",
            "orders",
            json!({"order_id": "o-1"}),
        )
        .with_id("o-1:shipped");
        let guard = outbox.statement_if(
            acme.tenant(),
            &event,
            "SELECT 1 FROM orders WHERE id = ? AND total = ?",
            vec![json!("o-1"), json!(total)],
        );
        json!({"statements": [
            {"sql": "UPDATE orders SET total = ?1 WHERE id = 'o-1' AND total = ?2", "params": [total, from]},
            guard,
        ]})
    };

    // The UPDATE finds another state and changes nothing, so the guard finds nothing.
    acme.invoke(DB, "transaction", shipped(999, 150))
        .await
        .unwrap();
    assert_eq!(
        outbox.pending(&acme, 100).await.unwrap().len(),
        1,
        "an event whose guard failed was written"
    );

    acme.invoke(DB, "transaction", shipped(100, 150))
        .await
        .unwrap();
    assert_eq!(outbox.pending(&acme, 100).await.unwrap().len(), 2);
    // The change already happened: the UPDATE changes nothing, the guard still holds, and the
    // event's id is taken, so the transaction is refused instead of writing it twice.
    let again = acme
        .invoke(DB, "transaction", shipped(100, 150))
        .await
        .unwrap_err();
    assert_eq!(again.code, ErrorCode::Conflict, "{again:?}");
    assert_eq!(outbox.pending(&acme, 100).await.unwrap().len(), 2);
}

#[tokio::test]
async fn the_relay_publishes_in_outbox_order_with_cloudevents_headers_and_marks_sent() {
    let platform = Platform::new().await;
    let acme = platform.tenant("acme").await;
    let mut written = Vec::new();
    for n in 0..30 {
        written.push(place_order(&acme, &format!("o-{n}"), n).await.unwrap());
    }
    let relay = Relay::new(Outbox::new(DB).unwrap(), BUS, 7);
    let mut sent = 0;
    loop {
        let round = relay.run_once(&acme).await.unwrap();
        if round == 0 {
            break;
        }
        sent += round;
    }
    assert_eq!(sent, 30);
    let records = bus_records(&acme, "orders").await;
    let ids: Vec<&str> = records
        .iter()
        .map(|r| r["headers"]["ce_id"].as_str().unwrap())
        .collect();
    let expected: Vec<&str> = written.iter().map(|e| e.id.as_str()).collect();
    assert_eq!(
        ids, expected,
        "the bus holds the events in the order written"
    );
    let first = &records[0];
    assert_eq!(first["key"], "o-0");
    assert_eq!(first["headers"]["ce_specversion"], "1.0");
    assert_eq!(first["headers"]["ce_type"], "orders.order.placed");
    assert_eq!(first["headers"]["ce_tenantid"], "acme");
    assert_eq!(first["payload"], json!({"order_id": "o-0", "total": 0}));
    assert!(
        Outbox::new(DB)
            .unwrap()
            .pending(&acme, 100)
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn a_relay_sees_only_its_own_tenants_outbox() {
    let platform = Platform::new().await;
    let acme = platform.tenant("acme").await;
    let globex = platform.tenant("globex").await;
    place_order(&acme, "o-1", 1).await.unwrap();
    let relay = Relay::new(Outbox::new(DB).unwrap(), BUS, 100);
    assert_eq!(relay.run_once(&globex).await.unwrap(), 0);
    assert_eq!(relay.run_once(&acme).await.unwrap(), 1);
    assert!(bus_records(&globex, "orders").await.is_empty());
    assert_eq!(bus_records(&acme, "orders").await.len(), 1);
}

#[tokio::test]
async fn the_inbox_applies_a_redelivered_event_once() {
    let platform = Platform::new().await;
    let acme = platform.tenant("acme").await;
    let inbox = Inbox::new(DB, "billing").unwrap();
    inbox.install(&acme).await.unwrap();
    let apply = |id: &str| {
        vec![
            json!({"sql": "INSERT INTO orders (id, total) VALUES (?1, 1)", "params": [format!("billed-{id}")]}),
        ]
    };
    assert!(
        inbox
            .apply_once(&acme, "ev-1", apply("ev-1"))
            .await
            .unwrap()
    );
    assert!(
        !inbox
            .apply_once(&acme, "ev-1", apply("ev-1"))
            .await
            .unwrap()
    );
    assert!(inbox.seen(&acme, "ev-1").await.unwrap());
    // A conflict of the business statements themselves is reported, not taken for a duplicate.
    let clash = inbox
        .apply_once(&acme, "ev-2", apply("ev-1"))
        .await
        .unwrap_err();
    assert_eq!(clash.code, ErrorCode::Conflict);
    assert!(!inbox.seen(&acme, "ev-2").await.unwrap());
    // Another consumer has its own inbox.
    let audit = Inbox::new(DB, "audit").unwrap();
    assert!(audit.apply_once(&acme, "ev-1", vec![]).await.unwrap());
}

/// A listener that refuses its first call and then records what it is told, with the tenant.
#[derive(Default)]
struct Listener {
    told: std::sync::Mutex<Vec<(String, String)>>,
    refused_once: std::sync::atomic::AtomicBool,
}

#[async_trait::async_trait]
impl switchyard_outbox::Published for Listener {
    async fn published(
        &self,
        tenant: &TenantId,
        events: &[switchyard_outbox::Pending],
    ) -> Result<(), switchyard_contracts::Problem> {
        if !self
            .refused_once
            .swap(true, std::sync::atomic::Ordering::SeqCst)
        {
            return Err(switchyard_contracts::Problem::new(
                ErrorCode::Internal,
                "not now",
            ));
        }
        let mut told = self.told.lock().unwrap();
        told.extend(
            events
                .iter()
                .map(|e| (tenant.to_string(), e.event_id.clone())),
        );
        Ok(())
    }
}

/// The listener hears of every published event before it is marked sent: when it fails, the
/// events stay pending and it hears of them again with the next round.
#[tokio::test]
async fn the_listener_hears_of_each_published_event_before_it_is_marked_sent() {
    let platform = Platform::new().await;
    let acme = platform.tenant("acme").await;
    let outbox = Outbox::new(DB).unwrap();
    let placed = [
        place_order(&acme, "o-1", 100).await.unwrap(),
        place_order(&acme, "o-2", 200).await.unwrap(),
    ];
    let listener = Arc::new(Listener::default());
    let relay = Relay::new(outbox.clone(), BUS, 10).with_published(listener.clone());

    assert!(relay.run_once(&acme).await.is_err());
    assert_eq!(outbox.pending(&acme, 10).await.unwrap().len(), 2);
    assert_eq!(relay.run_once(&acme).await.unwrap(), 2);
    assert!(outbox.pending(&acme, 10).await.unwrap().is_empty());
    let told = listener.told.lock().unwrap().clone();
    let expected: Vec<(String, String)> = placed
        .iter()
        .map(|e| ("acme".to_owned(), e.id.clone()))
        .collect();
    assert_eq!(told, expected);
}
