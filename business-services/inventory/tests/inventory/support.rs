//! The inventory service on the shared in-process platform of `switchyard_service_kit::testkit`,
//! with the inventory's own helpers on top.

use std::ops::Deref;

use serde_json::{Value, json};
use switchyard_inventory::{InventoryService, InventorySettings};
use switchyard_service_kit::testkit::{self, Caller};

pub use testkit::{BUS, Engine};

pub struct Platform(testkit::Platform<InventoryService>);

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
        Platform(
            testkit::Platform::start(engine, |db| {
                InventoryService::new(InventorySettings {
                    db: db.into(),
                    bus: bus.map(str::to_owned),
                })
                .unwrap()
            })
            .await,
        )
    }

    /// The inventory as `tenant` sees it.
    pub fn tenant(&self, tenant: &str) -> Tenant {
        Tenant(self.0.tenant(tenant))
    }
}

impl Deref for Platform {
    type Target = testkit::Platform<InventoryService>;

    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

/// One tenant's inventory, checked against the contract on every call.
pub struct Tenant(Caller<InventoryService>);

impl Deref for Tenant {
    type Target = Caller<InventoryService>;

    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl Tenant {
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
