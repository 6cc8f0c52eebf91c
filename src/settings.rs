//! The business services' settings (`SWITCHYARD_{LEDGER,INVENTORY,ORDERS}_*`), read in one
//! place: the services are built from them, the hosted workers relay what they name, and a
//! shared store refuses them when they name a node-local engine.

use switchyard_inventory::InventorySettings;
use switchyard_ledger::LedgerSettings;
use switchyard_orders::OrdersSettings;
use switchyard_tasks::TasksSettings;

use crate::workers::HostedWork;

/// Where each business service keeps its data and sends its events.
#[derive(Debug, Clone)]
pub struct ServiceSettings {
    pub ledger: LedgerSettings,
    pub inventory: InventorySettings,
    pub orders: OrdersSettings,
    pub tasks: TasksSettings,
}

impl ServiceSettings {
    /// `SWITCHYARD_LEDGER_DB` picks the db provider the ledger keeps its books in (default
    /// `db/sqlite`; the tenant's service books there, which the tenant's own db calls cannot
    /// reach); `SWITCHYARD_LEDGER_BUS` a bus for its events, written to the outbox in the
    /// books and carried to the bus by the hosted relay (or `switchyard relay`). The same for
    /// `INVENTORY` and `ORDERS`, which also take `_WEBHOOK` (an endpoint of the tenant's
    /// `integration/webhook`) and `_AI` (default `ai/local`). `SWITCHYARD_TASKS_DB` holds the
    /// task inbox (by default where the orders are, so a cluster that put its orders on
    /// db/postgres has its tasks there too), and `SWITCHYARD_TASKS_WORKFLOW` (default `workflow/restate`) is signalled
    /// its decisions.
    pub fn from_env() -> Self {
        let var = |name: &str| std::env::var(name).ok();
        let db = |name: &str| var(name).unwrap_or_else(|| "db/sqlite".into());
        ServiceSettings {
            ledger: LedgerSettings {
                db: db("SWITCHYARD_LEDGER_DB"),
                bus: var("SWITCHYARD_LEDGER_BUS"),
            },
            inventory: InventorySettings {
                db: db("SWITCHYARD_INVENTORY_DB"),
                bus: var("SWITCHYARD_INVENTORY_BUS"),
            },
            orders: OrdersSettings {
                db: db("SWITCHYARD_ORDERS_DB"),
                bus: var("SWITCHYARD_ORDERS_BUS"),
                webhook: var("SWITCHYARD_ORDERS_WEBHOOK"),
                ai: Some(var("SWITCHYARD_ORDERS_AI").unwrap_or_else(|| "ai/local".into())),
            },
            tasks: TasksSettings {
                db: var("SWITCHYARD_TASKS_DB").unwrap_or_else(|| db("SWITCHYARD_ORDERS_DB")),
                workflow: var("SWITCHYARD_TASKS_WORKFLOW")
                    .unwrap_or_else(|| switchyard_tasks::WORKFLOW.into()),
            },
        }
    }

    /// Every provider a setting names, as `(the setting as an operator wrote it, provider)`.
    pub fn named_providers(&self) -> Vec<(String, String)> {
        let mut named = Vec::new();
        let mut name = |variable: &str, provider: Option<&String>| {
            if let Some(provider) = provider {
                named.push((format!("{variable}={provider}"), provider.clone()));
            }
        };
        name("SWITCHYARD_LEDGER_DB", Some(&self.ledger.db));
        name("SWITCHYARD_INVENTORY_DB", Some(&self.inventory.db));
        name("SWITCHYARD_ORDERS_DB", Some(&self.orders.db));
        name("SWITCHYARD_TASKS_DB", Some(&self.tasks.db));
        name("SWITCHYARD_LEDGER_BUS", self.ledger.bus.as_ref());
        name("SWITCHYARD_INVENTORY_BUS", self.inventory.bus.as_ref());
        name("SWITCHYARD_ORDERS_BUS", self.orders.bus.as_ref());
        name("SWITCHYARD_ORDERS_AI", self.orders.ai.as_ref());
        // The orders' webhook names an endpoint of the tenant's `integration/webhook`.
        if let Some(endpoint) = &self.orders.webhook {
            named.push((
                format!("SWITCHYARD_ORDERS_WEBHOOK={endpoint} (integration/webhook)"),
                "integration/webhook".into(),
            ));
        }
        named
    }

    /// What the hosted workers do for every tenant: each service with a bus has its outbox
    /// relayed (one relay per distinct `(db, bus)`), and the orders' bus is read by the
    /// annotator.
    pub fn hosted_work(&self) -> HostedWork {
        let mut relays = Vec::new();
        for (db, bus) in [
            (&self.ledger.db, &self.ledger.bus),
            (&self.inventory.db, &self.inventory.bus),
            (&self.orders.db, &self.orders.bus),
        ] {
            if let Some(bus) = bus
                && !relays.contains(&(db.clone(), bus.clone()))
            {
                relays.push((db.clone(), bus.clone()));
            }
        }
        HostedWork {
            relays,
            annotator: self.orders.bus.clone(),
        }
    }
}
