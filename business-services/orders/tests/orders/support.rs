//! An in-process platform per test: a runtime with db/sqlite, bus/embedded,
//! integration/webhook and ai/local, hosting the real inventory, ledger and orders services,
//! the orders service calling the others through the runtime's client exactly as it runs in
//! `switchyard serve`.

use std::ops::Deref;
use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};
use switchyard_contracts::TenantId;
use switchyard_inventory::{InventoryService, InventorySettings};
use switchyard_ledger::{LedgerService, LedgerSettings};
use switchyard_orders::{Annotator, OrdersService, OrdersSettings, Round};
use switchyard_provider_ai::LocalAiFactory;
use switchyard_provider_bus::EmbeddedBusFactory;
use switchyard_provider_db::SqliteFactory;
use switchyard_provider_integration::WebhookFactory;
use switchyard_runtime::{PlatformStore, Registry, Runtime, RuntimeClient};
use switchyard_service_kit::testkit::{Caller, validators};
use switchyard_spi::tenancy::{EgressCeiling, SecretScope};

pub const DB: &str = "db/sqlite";
pub const TENANT: &str = "acme";
pub const ENDPOINT: &str = "orders";
pub const BUS: &str = "bus/embedded";
/// The customer [`order`] names, recorded on every platform.
pub const CUSTOMER: &str = "ada-retail";

/// Derefs to the orders service as the tenant sees it, checked against the contract.
pub struct Platform {
    runtime: Arc<Runtime>,
    orders: Caller<OrdersService>,
    service: Arc<OrdersService>,
    _dir: tempfile::TempDir,
}

/// The operator's egress ceiling here: the test receivers listen on loopback.
fn loopback() -> EgressCeiling {
    EgressCeiling {
        allowed_networks: vec!["127.0.0.0/8".parse().unwrap()],
        allowed_ports: Vec::new(),
    }
}

impl Platform {
    /// A platform whose tenant's webhook endpoint `orders` points at `url`.
    pub async fn new(webhook_url: &str) -> Platform {
        Platform::with_ai(webhook_url, "ai/local").await
    }

    /// The same with `annotate` asking `ai`.
    pub async fn with_ai(webhook_url: &str, ai: &str) -> Platform {
        let dir = tempfile::tempdir().unwrap();
        let store = PlatformStore::open(dir.path()).await.unwrap();
        store
            .create_tenant(&TenantId::parse(TENANT).unwrap())
            .await
            .unwrap();
        let mut registry = Registry::default();
        registry
            .register(Arc::new(SqliteFactory::new(dir.path().join("db"))))
            .unwrap();
        registry
            .register(Arc::new(
                WebhookFactory::new(dir.path().join("webhook")).with_egress(&loopback()),
            ))
            .unwrap();
        registry.register(Arc::new(LocalAiFactory::new())).unwrap();
        registry
            .register(Arc::new(EmbeddedBusFactory::new(dir.path().join("bus"))))
            .unwrap();
        let inventory = InventoryService::new(InventorySettings {
            db: DB.into(),
            bus: None,
        })
        .unwrap();
        let ledger = LedgerService::new(LedgerSettings {
            db: DB.into(),
            bus: None,
        })
        .unwrap();
        let service = Arc::new(
            OrdersService::new(OrdersSettings {
                db: DB.into(),
                bus: Some(BUS.into()),
                webhook: Some(ENDPOINT.into()),
                ai: Some(ai.into()),
            })
            .unwrap(),
        );
        // The tenant's webhook secret lives in its own secret directory, the only files a
        // tenant's references may name.
        let secrets: SecretScope = serde_json::from_value(
            json!({"file_dir": format!("{}/secrets/{{tenant}}", dir.path().display())}),
        )
        .unwrap();
        let runtime = Runtime::new(registry, store, Default::default(), Default::default())
            .with_secret_scope(secrets)
            .with_services(vec![Arc::new(inventory), Arc::new(ledger), service.clone()])
            .unwrap();
        let runtime = Arc::new(runtime);

        let secret_file = dir.path().join("secrets").join(TENANT).join("whsec");
        std::fs::create_dir_all(secret_file.parent().unwrap()).unwrap();
        std::fs::write(
            &secret_file,
            format!("whsec_{}", STANDARD.encode([7u8; 32])),
        )
        .unwrap();
        runtime
            .configure(
                &TenantId::parse(TENANT).unwrap(),
                "integration",
                "webhook",
                json!({"config": {
                    "endpoints": {ENDPOINT: {"url": webhook_url,
                        "secret": format!("secret://file{}", secret_file.display())}},
                    "allowed_networks": ["127.0.0.0/8"],
                    "max_attempts": 2,
                    "initial_backoff_ms": 10,
                    "max_backoff_ms": 20,
                    "attempt_timeout_ms": 2000,
                    "max_total_ms": 3000
                }}),
            )
            .await
            .unwrap();

        let checks = validators(service.as_ref());
        let client = RuntimeClient::new(
            runtime.clone(),
            TenantId::parse(TENANT).unwrap(),
            "service:orders",
        );
        let platform = Platform {
            runtime,
            orders: Caller::new(service.clone(), client, checks),
            service,
            _dir: dir,
        };
        platform
            .ok(
                "define_customer",
                json!({"customer": CUSTOMER, "name": "Ada Retail Ltd"}),
            )
            .await;
        platform
    }

    /// Carries the orders' outbox to the bus; answers how many events went.
    pub async fn relay(&self) -> usize {
        let relay = self.service.relay().unwrap();
        relay.run_once(&self.client("relay")).await.unwrap()
    }

    /// One round of the annotation consumer.
    pub async fn annotate_round(&self) -> Round {
        Annotator::new(BUS)
            .unwrap()
            .run_once(&self.client("annotator"))
            .await
            .unwrap()
    }

    /// Stops or starts the tenant's `ai/local` instance, as an admin would.
    pub async fn set_ai_running(&self, running: bool) {
        let tenant = TenantId::parse(TENANT).unwrap();
        if running {
            self.runtime.start(&tenant, "ai", "local").await.unwrap();
        } else {
            self.runtime.stop(&tenant, "ai", "local").await.unwrap();
        }
    }

    /// The types of the events on the orders topic of the bus, in order.
    pub async fn bus_types(&self) -> Vec<String> {
        let answer = self
            .other(
                BUS,
                "replay",
                json!({"topic": "orders", "from_offset": 0, "max_records": 1000}),
            )
            .await;
        answer["records"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["headers"]["ce_type"].as_str().unwrap().to_owned())
            .collect()
    }

    fn client(&self, subject: &str) -> RuntimeClient {
        RuntimeClient::new(
            self.runtime.clone(),
            TenantId::parse(TENANT).unwrap(),
            subject,
        )
    }

    /// Another service's or provider's action (`services/inventory`, `db/sqlite`, …).
    pub async fn other(&self, provider: &str, action: &str, params: Value) -> Value {
        use switchyard_client::ProviderClient;
        self.client("test")
            .invoke(provider, action, params.clone())
            .await
            .unwrap_or_else(|p| panic!("{provider} {action} {params} failed: {p:?}"))
    }

    /// Item `item` with `quantity` on hand in warehouse `w1`, bin `main`, at `unit_cost`.
    pub async fn stock_item(&self, item: &str, quantity: &str, unit_cost: &str) {
        let inv = "services/inventory";
        self.other(
            inv,
            "define_item",
            json!({"item": item, "name": item, "uom": "H87"}),
        )
        .await;
        self.other(
            inv,
            "define_warehouse",
            json!({"warehouse": "w1", "name": "Main"}),
        )
        .await;
        let _ = {
            use switchyard_client::ProviderClient;
            self.client("test")
                .invoke(inv, "define_bin", json!({"warehouse": "w1", "bin": "main"}))
                .await
        };
        self.other(
            inv,
            "receive",
            json!({"item": item, "warehouse": "w1", "bin": "main",
                   "quantity": quantity, "unit_cost": unit_cost}),
        )
        .await;
    }

    /// `(on_hand, reserved, available)` of `item` in w1/main.
    pub async fn stock(&self, item: &str) -> (String, String, String) {
        let answer = self
            .other(
                "services/inventory",
                "stock",
                json!({"item": item, "warehouse": "w1", "bin": "main"}),
            )
            .await;
        let rows = answer["rows"].as_array().unwrap();
        match rows.first() {
            None => ("0".into(), "0".into(), "0".into()),
            Some(row) => (
                row["on_hand"].as_str().unwrap().into(),
                row["reserved"].as_str().unwrap().into(),
                row["available"].as_str().unwrap().into(),
            ),
        }
    }

    /// Rows in the orders outbox.
    pub async fn outbox_types(&self) -> Vec<String> {
        let answer = self
            .other(
                DB,
                "query",
                json!({"sql": "SELECT headers FROM switchyard_outbox ORDER BY seq"}),
            )
            .await;
        answer["rows"]
            .as_array()
            .unwrap()
            .iter()
            .map(|row| {
                let headers: Value =
                    serde_json::from_str(row["headers"].as_str().unwrap()).unwrap();
                headers["ce_type"].as_str().unwrap().to_owned()
            })
            .collect()
    }
}

impl Deref for Platform {
    type Target = Caller<OrdersService>;

    fn deref(&self) -> &Self::Target {
        &self.orders
    }
}

/// `create` params of a one-line order of `quantity` `item` at `price` USD.
pub fn order(order_id: &str, item: &str, quantity: &str, price: &str) -> Value {
    json!({"order_id": order_id, "customer": CUSTOMER, "warehouse": "w1",
           "lines": [{"item": item, "quantity": quantity, "unit_price": price, "currency": "USD"}]})
}

/// The status of step `name` of `order`, if it has one.
pub fn step<'a>(order: &'a Value, name: &str) -> Option<&'a Value> {
    order["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == name)
}
