//! The inventory business service: an event-sourced stock ledger with lot genealogy, built
//! only from providers (a db provider, and optionally a bus through the outbox).
//!
//! - **Stock**: receive, issue, adjust, transfer, reserve and release against bins. Each
//!   operation appends its event to `inv_event` in the same db `transaction` as the
//!   `stock_bin` snapshot and `stock_value` head updates; `verify` replays the events and
//!   compares. Negative available stock is refused by a `CHECK` in the database, so it holds
//!   under any concurrency (engine.rs explains how).
//! - **Valuation**: moving average cost per item and warehouse; every movement out reports
//!   its cost, ready for the ledger's COGS posting.
//! - **Lots**: received lots with supplier lot, quality and expiry; `split`, `merge`,
//!   `transform` (consume → produce), `waste` and `ship`, each edge of the genealogy recorded
//!   with its quantity; backward and forward traces; expiring lots; waste analysis.
//! - **EPCIS 2.0**: the lot events of a period as a GS1 EPCIS 2.0 JSON-LD document, and back.
//!
//! See README.md beside this crate for the tables and the reasons behind them.

mod db;
mod engine;
mod epcis;
mod lotevent;
mod lots;
mod master;
mod replay;
mod reports;
mod schema;
mod stock;
mod trace;

use async_trait::async_trait;
use serde_json::Value;
use switchyard_client::{ProviderClient, Service, ServiceDescriptor};
use switchyard_contracts::{ErrorCode, Problem};
use switchyard_outbox::{Outbox, Relay};
use switchyard_service_kit::{Db, ServiceCore, params};

/// What the summary of `contracts/schemas/services/inventory.json` says (a test keeps them
/// equal).
const SUMMARY: &str = "Event-sourced inventory: items, warehouses and bins; received, issued, \
adjusted, transferred, reserved and released stock with negative availability refused; \
moving-average valuation; lots with genealogy, backward and forward traces, expiry and waste \
analysis; GS1 EPCIS 2.0 export and import.";

/// The bus topic of every inventory event.
/// Every CloudEvents type the inventory writes to its outbox. `asyncapi/business-events.json`
/// describes each, a test there holds the two lists together, and the outbox test checks that
/// what the service emits is in this list.
pub const EVENT_TYPES: [&str; 12] = [
    "inventory.stock.received",
    "inventory.stock.issued",
    "inventory.stock.adjusted",
    "inventory.stock.transferred",
    "inventory.stock.reserved",
    "inventory.stock.released",
    "inventory.lot.received",
    "inventory.lot.split",
    "inventory.lot.merged",
    "inventory.lot.transformed",
    "inventory.lot.wasted",
    "inventory.lot.shipped",
];

pub const TOPIC: &str = "inventory";

/// Where the inventory keeps its stock and announces its movements.
#[derive(Debug, Clone)]
pub struct InventorySettings {
    /// The db provider holding each tenant's inventory: `db/sqlite` or `db/postgres`.
    pub db: String,
    /// A bus provider (`bus/embedded`, `bus/kafka`). When set, every stock and lot event is
    /// also written to the outbox in its operation's transaction (types
    /// `inventory.stock.<event>` and `inventory.lot.<event>`, topic `inventory`), and
    /// [`InventoryService::relay`] carries the outbox to this bus.
    pub bus: Option<String>,
}

/// The `inventory` service. One value serves every tenant: each call's client is bound to its
/// tenant, and the tenant's tables are created on its first call.
pub struct InventoryService {
    core: ServiceCore,
}

/// One call's view of the inventory: the tenant's client and where its tables are.
pub(crate) struct Inventory<'a> {
    db: &'a Db,
    client: &'a dyn ProviderClient,
    outbox: Option<&'a Outbox>,
}

impl InventoryService {
    /// Refuses a db provider the service has no SQL for and a bus id that names no provider.
    pub fn new(settings: InventorySettings) -> Result<Self, Problem> {
        Ok(InventoryService {
            core: ServiceCore::new(
                "inventory",
                env!("CARGO_PKG_VERSION"),
                SUMMARY,
                &settings.db,
                settings.bus,
            )?,
        })
    }

    /// The relay that publishes this service's outbox to its bus, one per tenant client;
    /// `None` without a bus. Run it beside the service (`Relay::run`).
    pub fn relay(&self) -> Option<Relay> {
        self.core.relay()
    }
}

#[async_trait]
impl Service for InventoryService {
    fn descriptor(&self) -> &ServiceDescriptor {
        &self.core.descriptor
    }

    async fn invoke(
        &self,
        client: &dyn ProviderClient,
        action: &str,
        p: Value,
    ) -> Result<Value, Problem> {
        self.core.install(client, schema::tables).await?;
        let inv = Inventory {
            db: &self.core.db,
            client,
            outbox: self.core.outbox(),
        };
        match action {
            "define_item" => inv.define_item(params(p)?).await,
            "define_warehouse" => inv.define_warehouse(params(p)?).await,
            "define_bin" => inv.define_bin(params(p)?).await,
            "receive" => inv.receive(params(p)?).await,
            "issue" => inv.issue(params(p)?).await,
            "adjust" => inv.adjust(params(p)?).await,
            "transfer" => inv.transfer(params(p)?).await,
            "reserve" => inv.reserve(params(p)?, true).await,
            "release" => inv.reserve(params(p)?, false).await,
            "split" => inv.split(params(p)?).await,
            "merge" => inv.merge(params(p)?).await,
            "transform" => inv.transform(params(p)?).await,
            "waste" => inv.waste(params(p)?).await,
            "ship" => inv.ship(params(p)?).await,
            "stock" => inv.stock(params(p)?).await,
            "valuation" => inv.valuation(params(p)?).await,
            "lot" => inv.lot(params(p)?).await,
            "backward_trace" => inv.trace(params(p)?, trace::Direction::Backward).await,
            "forward_trace" => inv.trace(params(p)?, trace::Direction::Forward).await,
            "expiring_lots" => inv.expiring_lots(params(p)?).await,
            "waste_analysis" => inv.waste_analysis(params(p)?).await,
            "events" => inv.events(params(p)?).await,
            "verify" => {
                params::<Empty>(p)?;
                inv.verify().await
            }
            "export_epcis" => inv.export_epcis(params(p)?).await,
            "import_epcis" => inv.import_epcis(params(p)?).await,
            other => Err(Problem::new(
                ErrorCode::ActionNotFound,
                format!("the inventory has no action {other:?}"),
            )),
        }
    }
}

/// `verify` takes no params.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Empty {}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_descriptor_is_the_contract_file() {
        let contract: Value = serde_json::from_str(include_str!(
            "../../../contracts/schemas/services/inventory.json"
        ))
        .unwrap();
        assert_eq!(contract["summary"], json!(SUMMARY));
        let service = InventoryService::new(InventorySettings {
            db: "db/sqlite".into(),
            bus: None,
        })
        .unwrap();
        let names: Vec<&str> = service
            .descriptor()
            .actions
            .iter()
            .map(|a| a.name.as_str())
            .collect();
        assert_eq!(
            names,
            [
                "define_item",
                "define_warehouse",
                "define_bin",
                "receive",
                "issue",
                "adjust",
                "transfer",
                "reserve",
                "release",
                "split",
                "merge",
                "transform",
                "waste",
                "ship",
                "stock",
                "valuation",
                "lot",
                "backward_trace",
                "forward_trace",
                "expiring_lots",
                "waste_analysis",
                "events",
                "verify",
                "export_epcis",
                "import_epcis"
            ]
        );
    }

    #[test]
    fn unsupported_engines_and_non_bus_ids_are_refused() {
        let settings = |db: &str, bus: Option<&str>| InventorySettings {
            db: db.into(),
            bus: bus.map(str::to_owned),
        };
        for (db, bus) in [
            // Which SQL a db provider speaks is asked of it on the first call (ADR 28;
            // kit/tests/dialect.rs); here only an id naming no db provider is refused.
            ("cache/memory", None),
            ("db/sqlite", Some("cache/memory")),
            ("db/sqlite", Some("bus")),
        ] {
            assert!(
                InventoryService::new(settings(db, bus)).is_err(),
                "{db} {bus:?}"
            );
        }
        let with_bus = InventoryService::new(settings("db/postgres", Some("bus/kafka"))).unwrap();
        assert!(with_bus.relay().is_some());
    }
}
