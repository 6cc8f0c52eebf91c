//! An in-process platform per test: a runtime with a real db engine (SQLite in a temporary
//! directory, or PostgreSQL in a throwaway database) and the embedded bus, and the inventory
//! service calling them through the runtime's client, exactly as it runs in `switchyard serve`.

use std::collections::HashMap;
use std::sync::Arc;

use serde_json::{Value, json};
use switchyard_client::Service;
use switchyard_contracts::{ActionValidators, Problem, TenantId};
use switchyard_inventory::{InventoryService, InventorySettings};
use switchyard_provider_bus::EmbeddedBusFactory;
use switchyard_provider_db::{PostgresFactory, PostgresSettings, SqliteFactory};
use switchyard_runtime::{PlatformStore, Registry, Runtime, RuntimeClient};

use crate::pg;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    Sqlite,
    Postgres,
}

impl Engine {
    pub fn provider(self) -> &'static str {
        match self {
            Engine::Sqlite => "db/sqlite",
            Engine::Postgres => "db/postgres",
        }
    }
}

pub const BUS: &str = "bus/embedded";

/// Fields drop in order: the runtime (and its pools) before the database it points at.
pub struct Platform {
    pub runtime: Arc<Runtime>,
    pub service: Arc<InventoryService>,
    validators: Arc<HashMap<String, ActionValidators>>,
    _dir: tempfile::TempDir,
    _database: Option<pg::TestDatabase>,
}

impl Platform {
    /// A platform whose inventory lives on `engine`, without a bus.
    pub async fn new(engine: Engine) -> Platform {
        Platform::build(engine, None).await
    }

    /// The same, with every event also written to the outbox for `bus/embedded`.
    pub async fn with_bus(engine: Engine) -> Platform {
        Platform::build(engine, Some(BUS)).await
    }

    async fn build(engine: Engine, bus: Option<&str>) -> Platform {
        let dir = tempfile::tempdir().unwrap();
        let store = PlatformStore::open(dir.path()).await.unwrap();
        let mut registry = Registry::default();
        registry
            .register(Arc::new(EmbeddedBusFactory::new(dir.path().join("bus"))))
            .unwrap();
        let database = match engine {
            Engine::Sqlite => {
                registry
                    .register(Arc::new(SqliteFactory::new(dir.path().join("db"))))
                    .unwrap();
                None
            }
            Engine::Postgres => {
                let database = pg::TestDatabase::create("inventory").await;
                registry
                    .register(Arc::new(PostgresFactory::new(PostgresSettings::new(
                        database.url.clone(),
                        pg::APP_PASSWORD,
                    ))))
                    .unwrap();
                Some(database)
            }
        };
        let runtime = Arc::new(Runtime::new(
            registry,
            store,
            Default::default(),
            Default::default(),
        ));
        let service = InventoryService::new(InventorySettings {
            db: engine.provider().into(),
            bus: bus.map(str::to_owned),
        })
        .unwrap();
        let validators = service
            .descriptor()
            .actions
            .iter()
            .map(|action| {
                let compiled = ActionValidators::compile("services/inventory", action).unwrap();
                (action.name.clone(), compiled)
            })
            .collect();
        Platform {
            runtime,
            service: Arc::new(service),
            validators: Arc::new(validators),
            _dir: dir,
            _database: database,
        }
    }

    /// The inventory as `tenant` sees it.
    pub fn tenant(&self, tenant: &str) -> Tenant {
        Tenant {
            service: self.service.clone(),
            client: RuntimeClient::new(
                self.runtime.clone(),
                TenantId::parse(tenant).unwrap(),
                "service:inventory",
            ),
            validators: self.validators.clone(),
        }
    }
}

/// One tenant's inventory. Every call is checked like the runtime checks it: params against
/// the action's params schema before, and every answer against its result schema after.
pub struct Tenant {
    service: Arc<InventoryService>,
    pub client: RuntimeClient,
    validators: Arc<HashMap<String, ActionValidators>>,
}

impl Tenant {
    pub async fn call(&self, action: &str, params: Value) -> Result<Value, Problem> {
        let validators = &self.validators[action];
        let refused = validators.params.check(&params);
        assert!(
            refused.is_empty(),
            "test sent invalid params to {action}: {params} {refused:?}"
        );
        let answer = self.service.invoke(&self.client, action, params).await;
        if let Ok(data) = &answer {
            let wrong = validators.result.check(data);
            assert!(
                wrong.is_empty(),
                "{action} answered outside its result schema: {data} {wrong:?}"
            );
        }
        answer
    }

    pub async fn ok(&self, action: &str, params: Value) -> Value {
        self.call(action, params.clone())
            .await
            .unwrap_or_else(|p| panic!("{action} {params} failed: {p:?}"))
    }

    pub async fn refused(&self, action: &str, params: Value) -> Problem {
        match self.call(action, params.clone()).await {
            Ok(data) => panic!("{action} {params} was accepted: {data}"),
            Err(problem) => problem,
        }
    }

    /// Items `paper` (sheets) and `ink` (kilograms), warehouses `main` (bins `A1`, `A2`) and
    /// `north` (bin `N1`).
    pub async fn basics(&self) {
        self.ok(
            "define_item",
            json!({"item": "paper", "name": "Coated paper 80gsm", "uom": "ST"}),
        )
        .await;
        self.ok(
            "define_item",
            json!({"item": "ink", "name": "Cyan ink", "uom": "KGM"}),
        )
        .await;
        for (warehouse, bins) in [("main", &["A1", "A2"][..]), ("north", &["N1"][..])] {
            self.ok(
                "define_warehouse",
                json!({"warehouse": warehouse, "name": format!("{warehouse} warehouse")}),
            )
            .await;
            for bin in bins {
                self.ok("define_bin", json!({"warehouse": warehouse, "bin": bin}))
                    .await;
            }
        }
    }

    /// `(on_hand, reserved, available)` of one bin (and lot), `"0"`s when it holds nothing.
    pub async fn bin(
        &self,
        item: &str,
        warehouse: &str,
        bin: &str,
        lot: Option<&str>,
    ) -> [String; 3] {
        let mut params = json!({"item": item, "warehouse": warehouse, "bin": bin});
        if let Some(lot) = lot {
            params["lot"] = json!(lot);
        }
        let rows = self.ok("stock", params).await;
        let row = rows["rows"]
            .as_array()
            .unwrap()
            .iter()
            .find(|row| row.get("lot").and_then(Value::as_str) == lot)
            .cloned()
            .unwrap_or(json!({"on_hand": "0", "reserved": "0", "available": "0"}));
        ["on_hand", "reserved", "available"].map(|f| row[f].as_str().unwrap().to_owned())
    }

    /// `(on_hand, value, average_cost)` of an item in a warehouse.
    pub async fn valued(&self, item: &str, warehouse: &str) -> [String; 3] {
        let rows = self
            .ok("valuation", json!({"item": item, "warehouse": warehouse}))
            .await;
        let row = rows["rows"]
            .get(0)
            .cloned()
            .unwrap_or(json!({"on_hand": "0", "value": "0.0000", "average_cost": "0.0000"}));
        ["on_hand", "value", "average_cost"].map(|f| row[f].as_str().unwrap().to_owned())
    }

    /// The replay check: the snapshot must be exactly the event store's sum.
    pub async fn assert_replays(&self) -> Value {
        let verified = self.ok("verify", json!({})).await;
        assert_eq!(
            verified["differences"],
            json!([]),
            "snapshot and replay differ: {verified}"
        );
        verified
    }
}
