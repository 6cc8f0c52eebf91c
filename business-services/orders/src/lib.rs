//! The orders business service: sales orders as a saga over the `inventory` and `ledger`
//! services, built only from providers and other services through a [`ProviderClient`].
//!
//! - **define_customer** records a customer; `create` refuses an order for a customer it does
//!   not know, and for an item the inventory does not know.
//! - **create** validates the order, reserves its stock through `services/inventory`
//!   (releasing what it reserved when a later line fails: compensation), then writes the
//!   order, its lines, its saga steps and the `orders.order.created` outbox event in ONE db
//!   `transaction`, and finally triggers the tenant's webhook endpoint (a failure is a failed
//!   `webhook` step; the order stays). The same `order_id` with the same content answers the
//!   stored order (`replayed: true`) without reserving again; other content is a `conflict`.
//! - **annotate** asks the AI provider (`ai/local`, …) for a category and a risk tag. The
//!   [`Annotator`] calls it for every `orders.order.created` it reads from the bus, and reads
//!   the event again until the annotation succeeds (an AI outage delays it; it is not lost).
//! - **confirm**, **cancel** (releases the reservation, posts nothing), **fulfil** (issues
//!   the reserved stock, whose cost the inventory reports, then posts receivable/revenue and
//!   COGS/inventory through `services/ledger`) and **return** (receives the stock back at its
//!   issue cost and posts the opposite journal) move the explicit state machine
//!   `created → confirmed → fulfilling → fulfilled → returning → returned`,
//!   `created | confirmed → cancelled`; anything else is a `conflict`. Each state an order
//!   reaches writes its event (`orders.order.confirmed`, …) in the same transaction.
//! - Every step a call takes is stored per order (`ok`, `failed`, `pending`, with its error),
//!   and `get` shows them. A step that failed is retried by calling the action again; steps
//!   already `ok` are not repeated (a line is never issued or released twice by a retry).
//!
//! One module per concern: `create` (and `customer`), `transitions` over the state machine in
//! `status`, `fulfil`, `returns` (with `restock`), `annotate` (and its bus consumer
//! `annotator`), the saga's `steps`, and `view` for what every action answers.

mod annotate;
mod annotator;
mod create;
mod customer;
mod db;
mod fulfil;
mod ids;
mod restock;
mod returns;
mod schema;
mod status;
mod steps;
mod transitions;
mod view;

use async_trait::async_trait;
use serde::Deserialize;
use serde_json::Value;
use switchyard_client::{ProviderClient, Service, ServiceDescriptor};
use switchyard_contracts::{ErrorCode, Problem};
use switchyard_outbox::{Outbox, Relay};
use switchyard_service_kit::{Db, ServiceCore, params};

pub use annotator::{Annotator, Round};

/// What the summary of `contracts/schemas/services/orders.json` says (a test keeps them equal).
const SUMMARY: &str = "Sales orders as a saga over the inventory and the ledger: validated \
orders for known customers with reserved stock recorded with their outbox event in one \
transaction, a webhook on creation, AI annotation, an explicit state machine whose every state \
writes its event, cancellation that releases the reservation, fulfilment that issues stock and \
posts revenue and COGS, and returns that take both back.";

/// The CloudEvents type written to the outbox (and sent to the webhook) when an order is created.
pub const ORDER_CREATED: &str = "orders.order.created";
pub const ORDER_CONFIRMED: &str = "orders.order.confirmed";
pub const ORDER_CANCELLED: &str = "orders.order.cancelled";
pub const ORDER_FULFILLED: &str = "orders.order.fulfilled";
pub const ORDER_RETURNED: &str = "orders.order.returned";
/// Every event type the orders service writes to its outbox (AsyncAPI describes exactly these).
pub const EVENT_TYPES: [&str; 5] = [
    ORDER_CREATED,
    ORDER_CONFIRMED,
    ORDER_CANCELLED,
    ORDER_FULFILLED,
    ORDER_RETURNED,
];
/// The bus topic of the orders' events.
pub const TOPIC: &str = "orders";

const INVENTORY: &str = "services/inventory";
const LEDGER: &str = "services/ledger";
const WEBHOOK: &str = "integration/webhook";
const SOURCE: &str = "/services/orders";
/// How the orders service names itself to the client: the annotator reaches it so.
pub const SERVICE: &str = "services/orders";
/// The bin stock is reserved in and issued from when an order names none.
pub const DEFAULT_BIN: &str = "main";

/// The ledger accounts fulfilment posts to, one set per currency (`1100-USD`, …); created on
/// first use.
pub const RECEIVABLE: &str = "1100";
pub const INVENTORY_ASSET: &str = "1300";
pub const REVENUE: &str = "4000";
pub const COGS: &str = "5000";

/// Where the orders live and whom they tell.
#[derive(Debug, Clone)]
pub struct OrdersSettings {
    /// The db provider holding each tenant's orders: `db/sqlite` or `db/postgres`.
    pub db: String,
    /// A bus provider (`bus/embedded`, `bus/kafka`) [`OrdersService::relay`] carries the outbox
    /// to. The outbox row is written in any case.
    pub bus: Option<String>,
    /// The endpoint name in the tenant's `integration/webhook` config that hears of new orders.
    pub webhook: Option<String>,
    /// The AI provider `annotate` classifies with, e.g. `ai/local`.
    pub ai: Option<String>,
}

/// The `orders` service. One value serves every tenant: each call's client is bound to its
/// tenant, and the tenant's tables are created on its first call.
pub struct OrdersService {
    core: ServiceCore,
    webhook: Option<String>,
    ai: Option<String>,
}

/// One call's view of the orders: the tenant's client, where its tables are and whom it tells.
pub(crate) struct Orders<'a> {
    db: &'a Db,
    client: &'a dyn ProviderClient,
    /// Always there: the orders write their events even without a bus of their own, for a
    /// relay outside the process, and a transition's event id guards it against a replay.
    outbox: Option<&'a Outbox>,
    webhook: Option<&'a str>,
    ai: Option<&'a str>,
}

impl OrdersService {
    /// Refuses a db provider without SQL here, a bus id that is no bus and an AI id that is no
    /// AI provider.
    pub fn new(settings: OrdersSettings) -> Result<Self, Problem> {
        let core = ServiceCore::with_outbox(
            "orders",
            env!("CARGO_PKG_VERSION"),
            SUMMARY,
            &settings.db,
            settings.bus,
        )?;
        if let Some(ai) = &settings.ai {
            switchyard_service_kit::expect_domain(ai, "ai")?;
        }
        if let Some(endpoint) = &settings.webhook
            && (endpoint.is_empty() || endpoint.len() > 64)
        {
            return Err(Problem::new(
                ErrorCode::RequestInvalid,
                format!("{endpoint:?} is not a webhook endpoint name"),
            ));
        }
        Ok(OrdersService {
            core,
            webhook: settings.webhook,
            ai: settings.ai,
        })
    }

    /// The relay that publishes the orders' outbox to the bus, one per tenant client; `None`
    /// without a bus. Run it beside the service (`Relay::run`).
    pub fn relay(&self) -> Option<Relay> {
        self.core.relay()
    }
}

/// The params of every action but `create` and `define_customer`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct OrderRef {
    order_id: String,
}

#[async_trait]
impl Service for OrdersService {
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
        let orders = Orders {
            db: &self.core.db,
            client,
            outbox: self.core.outbox(),
            webhook: self.webhook.as_deref(),
            ai: self.ai.as_deref(),
        };
        match action {
            "create" => return orders.create(params(p)?).await,
            "define_customer" => return orders.define_customer(params(p)?).await,
            _ => {}
        }
        let OrderRef { order_id } = params(p)?;
        match action {
            "annotate" => orders.annotate(&order_id).await,
            "return" => orders.return_order(&order_id).await,
            "confirm" => orders.confirm(&order_id).await,
            "cancel" => orders.cancel(&order_id).await,
            "fulfil" => orders.fulfil(&order_id).await,
            "get" => orders.view(&order_id, None).await,
            other => Err(Problem::new(
                ErrorCode::ActionNotFound,
                format!("the orders service has no action {other:?}"),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_descriptor_is_the_contract_file() {
        let contract: Value = serde_json::from_str(include_str!(
            "../../../contracts/schemas/services/orders.json"
        ))
        .unwrap();
        assert_eq!(contract["summary"], json!(SUMMARY));
        let service = OrdersService::new(OrdersSettings {
            db: "db/sqlite".into(),
            bus: None,
            webhook: None,
            ai: None,
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
                "define_customer",
                "create",
                "annotate",
                "confirm",
                "cancel",
                "fulfil",
                "return",
                "get"
            ]
        );
        assert!(service.relay().is_none());
        // Without a bus of their own the orders still write their events, for `switchyard
        // relay` to carry, and a transition's derived event id still guards a replay.
        assert!(service.core.outbox().is_some());
    }

    #[test]
    fn unsupported_engines_and_wrong_provider_ids_are_refused() {
        let settings = |db: &str, bus: Option<&str>, ai: Option<&str>| OrdersSettings {
            db: db.into(),
            bus: bus.map(str::to_owned),
            webhook: Some("orders".into()),
            ai: ai.map(str::to_owned),
        };
        for (db, bus, ai) in [
            // Which SQL a db provider speaks is asked of it on the first call (ADR 28;
            // kit/tests/dialect.rs); here only an id naming no db provider is refused.
            ("cache/memory", None, None),
            ("db/sqlite", Some("cache/memory"), None),
            ("db/sqlite", None, Some("bus/embedded")),
            ("db/sqlite", None, Some("ai")),
        ] {
            assert!(
                OrdersService::new(settings(db, bus, ai)).is_err(),
                "{db} {bus:?} {ai:?}"
            );
        }
        let ok = OrdersService::new(settings("db/postgres", Some("bus/kafka"), Some("ai/local")))
            .unwrap();
        assert!(ok.relay().is_some());
    }
}
