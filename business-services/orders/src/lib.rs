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

mod annotator;
mod db;
mod restock;

use std::collections::HashMap;

use async_trait::async_trait;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use switchyard_client::{ProviderClient, Service, ServiceDescriptor};
use switchyard_contracts::{ErrorCode, Event, FieldError, Problem};
use switchyard_outbox::{Outbox, Relay};
use switchyard_service_kit::{Db, Installs, Row, params};

use db::{broken, integer, optional_text, text};

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
    descriptor: ServiceDescriptor,
    db: Db,
    outbox: Outbox,
    bus: Option<String>,
    webhook: Option<String>,
    ai: Option<String>,
    /// Tenants whose tables this process has already created.
    installs: Installs,
}

/// The states of an order.
mod status {
    pub const CREATED: &str = "created";
    pub const CONFIRMED: &str = "confirmed";
    pub const FULFILLING: &str = "fulfilling";
    pub const FULFILLED: &str = "fulfilled";
    pub const CANCELLED: &str = "cancelled";
    pub const RETURNING: &str = "returning";
    pub const RETURNED: &str = "returned";
}

/// The legal transitions: `(action, from, to, the event reaching `to` writes)`.
const TRANSITIONS: [(&str, &[&str], &str, Option<&str>); 6] = [
    (
        "confirm",
        &[status::CREATED],
        status::CONFIRMED,
        Some(ORDER_CONFIRMED),
    ),
    (
        "cancel",
        &[status::CREATED, status::CONFIRMED],
        status::CANCELLED,
        Some(ORDER_CANCELLED),
    ),
    ("fulfil", &[status::CONFIRMED], status::FULFILLING, None),
    (
        "complete",
        &[status::FULFILLING],
        status::FULFILLED,
        Some(ORDER_FULFILLED),
    ),
    ("return", &[status::FULFILLED], status::RETURNING, None),
    (
        "complete_return",
        &[status::RETURNING],
        status::RETURNED,
        Some(ORDER_RETURNED),
    ),
];

const OK: &str = "ok";
const FAILED: &str = "failed";
const PENDING: &str = "pending";

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateParams {
    order_id: String,
    customer: String,
    warehouse: String,
    #[serde(default)]
    bin: Option<String>,
    lines: Vec<LineIn>,
}

#[derive(Deserialize, Serialize, Clone)]
#[serde(deny_unknown_fields)]
struct LineIn {
    item: String,
    quantity: String,
    unit_price: String,
    currency: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct OrderRef {
    order_id: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CustomerIn {
    customer: String,
    name: String,
}

/// The stored head of an order.
struct Head {
    order_id: String,
    customer: String,
    warehouse: String,
    bin: String,
    currency: String,
    total: Decimal,
    status: String,
    content: String,
}

struct Line {
    line: i64,
    item: String,
    quantity: String,
}

struct Step {
    status: String,
    detail: Option<String>,
}

impl OrdersService {
    /// Refuses a db provider without SQL here, a bus id that is no bus and an AI id that is no
    /// AI provider.
    pub fn new(settings: OrdersSettings) -> Result<Self, Problem> {
        let db = Db::new(&settings.db, "the orders service")?;
        for (id, domain) in [(&settings.bus, "bus"), (&settings.ai, "ai")] {
            if let Some(id) = id {
                switchyard_service_kit::expect_domain(id, domain)?;
            }
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
            descriptor: switchyard_service_kit::descriptor(
                "orders",
                env!("CARGO_PKG_VERSION"),
                SUMMARY,
            ),
            outbox: Outbox::new(&settings.db)?,
            db,
            bus: settings.bus,
            webhook: settings.webhook,
            ai: settings.ai,
            installs: Installs::default(),
        })
    }

    /// The relay that publishes the orders' outbox to the bus, one per tenant client; `None`
    /// without a bus. Run it beside the service (`Relay::run`).
    pub fn relay(&self) -> Option<Relay> {
        self.bus
            .as_ref()
            .map(|bus| Relay::new(self.outbox.clone(), bus, 100))
    }

    /// Creates the tenant's tables and outbox once per process.
    async fn install(&self, client: &dyn ProviderClient) -> Result<(), Problem> {
        self.installs
            .once(client.tenant(), || async {
                self.db.create(client, &db::TABLES).await?;
                self.outbox.install(client).await
            })
            .await
    }

    // ---- create ----------------------------------------------------------------------------

    async fn create(&self, client: &dyn ProviderClient, p: CreateParams) -> Result<Value, Problem> {
        let bin = p.bin.clone().unwrap_or_else(|| DEFAULT_BIN.into());
        let (currency, total) = validate(&p)?;
        let content = json!({
            "customer": p.customer, "warehouse": p.warehouse, "bin": bin, "lines": p.lines,
        })
        .to_string();
        if let Some(head) = self.head(client, &p.order_id).await? {
            return self.replay(client, head, &content).await;
        }
        let known = self
            .db
            .query(
                client,
                "SELECT customer FROM ord_customer WHERE customer = ?1",
                vec![json!(p.customer)],
            )
            .await?;
        // Which customers exist is the books' state, not the schema: 422, not 400 (ADR 23).
        if known.is_empty() {
            return Err(Problem::new(
                ErrorCode::ParamsUnprocessable,
                format!(
                    "order {} not created: no customer {:?} (define_customer records one)",
                    p.order_id, p.customer
                ),
            )
            .with_errors(vec![field("/params/customer", "unknown customer")]));
        }

        // Reserve every line; on a refusal give back what was reserved so far.
        let reference = reference(&p.order_id);
        let mut reserved: Vec<&LineIn> = Vec::new();
        for (n, line) in p.lines.iter().enumerate() {
            let asked = client
                .invoke(
                    INVENTORY,
                    "reserve",
                    json!({"item": line.item, "warehouse": p.warehouse, "bin": bin,
                           "quantity": line.quantity, "reference": reference}),
                )
                .await;
            if let Err(problem) = asked {
                release_all(client, &p.warehouse, &bin, &reference, &reserved).await;
                let detail = format!(
                    "order {} not created: reserving {} failed: {}",
                    p.order_id, line.item, problem.detail
                );
                // The inventory knows no such item (or warehouse, or bin): the order is wrong,
                // not the inventory.
                return Err(if problem.code == ErrorCode::ResourceNotFound {
                    Problem::new(ErrorCode::ParamsUnprocessable, detail).with_errors(vec![field(
                        &format!("/params/lines/{n}/item"),
                        &problem.detail,
                    )])
                } else {
                    Problem::new(problem.code, detail)
                });
            }
            reserved.push(line);
        }

        // Record the order, its lines, its steps and its event together.
        let now = now();
        let payload = json!({
            "order_id": p.order_id, "customer": p.customer, "warehouse": p.warehouse,
            "bin": bin, "currency": currency, "total": money(total), "lines": p.lines,
        });
        let mut statements = vec![self.db.statement(
            "INSERT INTO ord_order (order_id, customer, warehouse, bin, currency, total, status, \
             content, created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?9)",
            vec![
                json!(p.order_id),
                json!(p.customer),
                json!(p.warehouse),
                json!(bin),
                json!(currency),
                json!(money(total)),
                json!(status::CREATED),
                json!(content),
                json!(now),
            ],
        )];
        for (n, line) in p.lines.iter().enumerate() {
            statements.push(self.db.statement(
                "INSERT INTO ord_line (order_id, line, item, quantity, unit_price, currency) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                vec![
                    json!(p.order_id),
                    json!(n + 1),
                    json!(line.item),
                    json!(line.quantity),
                    json!(line.unit_price),
                    json!(line.currency),
                ],
            ));
        }
        statements.push(self.step_statement(&p.order_id, "reserve", OK, None, None, &now));
        if self.webhook.is_some() {
            statements.push(self.step_statement(&p.order_id, "webhook", PENDING, None, None, &now));
        }
        let event = Event::new(ORDER_CREATED, SOURCE, TOPIC, payload.clone())
            .with_key(p.order_id.clone())
            .with_subject(p.order_id.clone())
            .with_idempotency_key(format!("{}:created", reference));
        statements.push(self.outbox.statement(client.tenant(), &event));
        if let Err(problem) = self.db.transaction(client, statements).await {
            // Nothing was recorded: give the stock back. A concurrent create of the same id
            // may have won the race; answer as a replay of it then.
            release_all(client, &p.warehouse, &bin, &reference, &reserved).await;
            return match self.head(client, &p.order_id).await? {
                Some(head) => self.replay(client, head, &content).await,
                None => Err(problem),
            };
        }
        self.notify(client, &p.order_id, payload).await?;
        self.view(client, &p.order_id, Some(false)).await
    }

    /// An order created before: the same one again, or a conflict.
    async fn replay(
        &self,
        client: &dyn ProviderClient,
        head: Head,
        content: &str,
    ) -> Result<Value, Problem> {
        if head.content != content {
            return Err(Problem::new(
                ErrorCode::Conflict,
                format!(
                    "order {} exists with other content; an order id is never reused",
                    head.order_id
                ),
            ));
        }
        // A create that stopped between its commit and the webhook finishes it now.
        let steps = self.steps(client, &head.order_id).await?;
        if steps.get("webhook").is_some_and(|s| s.status == PENDING) {
            let content: Value = serde_json::from_str(&head.content)
                .map_err(|e| broken(&format!("unreadable order content: {e}")))?;
            let payload = json!({
                "order_id": head.order_id, "customer": head.customer, "warehouse": head.warehouse,
                "bin": head.bin, "currency": head.currency, "total": money(head.total),
                "lines": content["lines"],
            });
            self.notify(client, &head.order_id, payload).await?;
        }
        self.view(client, &head.order_id, Some(true)).await
    }

    /// Triggers the configured webhook and records the outcome as the `webhook` step.
    async fn notify(
        &self,
        client: &dyn ProviderClient,
        order_id: &str,
        payload: Value,
    ) -> Result<(), Problem> {
        let Some(endpoint) = &self.webhook else {
            return Ok(());
        };
        let answer = client
            .invoke(
                WEBHOOK,
                "trigger",
                json!({"endpoint": endpoint, "event_type": ORDER_CREATED, "payload": payload,
                       "idempotency_key": format!("{}:created", reference(order_id))}),
            )
            .await;
        let (state, error, detail) = match answer {
            Ok(delivery) => {
                let message = delivery["message_id"].as_str().map(str::to_owned);
                if delivery["status"] == "delivered" {
                    (OK, None, message)
                } else {
                    let why = delivery["last_error"]
                        .as_str()
                        .map(str::to_owned)
                        .or_else(|| {
                            delivery["last_status"]
                                .as_u64()
                                .map(|s| format!("the receiver answered {s}"))
                        })
                        .unwrap_or_else(|| "dead-lettered".into());
                    (FAILED, Some(format!("dead-lettered: {why}")), message)
                }
            }
            Err(problem) => (FAILED, Some(problem.detail), None),
        };
        self.record(client, order_id, "webhook", state, error, detail)
            .await
    }

    // ---- annotate --------------------------------------------------------------------------

    async fn annotate(
        &self,
        client: &dyn ProviderClient,
        order_id: &str,
    ) -> Result<Value, Problem> {
        let head = self.require(client, order_id).await?;
        let Some(ai) = &self.ai else {
            return Err(Problem::new(
                ErrorCode::RequestInvalid,
                "the orders service has no AI provider configured",
            ));
        };
        let lines = self.lines(client, order_id).await?;
        let units: Decimal = lines
            .iter()
            .filter_map(|l| l.quantity.parse::<Decimal>().ok())
            .sum();
        let items: Vec<&str> = lines.iter().map(|l| l.item.as_str()).collect();
        let text = format!(
            "order of {units} units in {} lines for customer {} worth {} {}: {}",
            lines.len(),
            head.customer,
            money(head.total),
            head.currency,
            items.join(", ")
        );
        let category = classify(client, ai, &text, CATEGORIES).await;
        let risk = classify(client, ai, &text, RISKS).await;
        let now = now();
        match (category, risk) {
            (Ok(category), Ok(risk)) => {
                let statements = vec![
                    self.db.statement(
                        "UPDATE ord_order SET category = ?1, risk = ?2, updated_at = ?3 \
                         WHERE order_id = ?4",
                        vec![json!(category), json!(risk), json!(now), json!(order_id)],
                    ),
                    self.step_statement(
                        order_id,
                        "annotate",
                        OK,
                        None,
                        Some(&format!("{category}/{risk}")),
                        &now,
                    ),
                ];
                self.db.transaction(client, statements).await?;
            }
            (Err(problem), _) | (_, Err(problem)) => {
                self.record(
                    client,
                    order_id,
                    "annotate",
                    FAILED,
                    Some(format!("{ai}: {}", problem.detail)),
                    None,
                )
                .await?;
            }
        }
        self.view(client, order_id, None).await
    }

    // ---- state machine ---------------------------------------------------------------------

    /// Moves the order along `action`'s transition, or answers the `conflict` it is. A
    /// transition with an event writes it in the same transaction, with `data` beside the
    /// order id and new status in its payload.
    async fn transition(
        &self,
        client: &dyn ProviderClient,
        order_id: &str,
        action: &str,
        data: Value,
    ) -> Result<(), Problem> {
        let Some((_, from, to, kind)) = TRANSITIONS.iter().find(|(a, ..)| *a == action) else {
            return Err(Problem::new(
                ErrorCode::Internal,
                format!("no transition {action}"),
            ));
        };
        // `from` holds this crate's constants only, so they are spelled into the SQL.
        let states: Vec<String> = from.iter().map(|s| format!("'{s}'")).collect();
        let mut statements = vec![self.db.statement(
            &format!(
                "UPDATE ord_order SET status = ?1, updated_at = ?2 WHERE order_id = ?3 AND status IN ({})",
                states.join(", ")
            ),
            vec![json!(to), json!(now()), json!(order_id)],
        )];
        if let Some(kind) = kind {
            let mut payload = json!({"order_id": order_id, "status": to});
            if let (Some(payload), Value::Object(data)) = (payload.as_object_mut(), data) {
                payload.extend(data);
            }
            let event = Event::new(kind, SOURCE, TOPIC, payload)
                .with_id(event_id(order_id, to))
                .with_key(order_id)
                .with_subject(order_id)
                .with_idempotency_key(format!("{}:{to}", reference(order_id)));
            statements.push(self.outbox.statement_if(
                client.tenant(),
                &event,
                "SELECT 1 FROM ord_order WHERE order_id = ? AND status = ?",
                vec![json!(order_id), json!(to)],
            ));
        }
        match self.db.transaction_affected(client, statements).await {
            Ok(affected) if affected.first() == Some(&1) => return Ok(()),
            // No row was in a `from` state, or the event's id was taken: the order reached
            // `to` before. Either way the answer is the order's state.
            Ok(_) => {}
            Err(problem) if problem.code == ErrorCode::Conflict => {}
            Err(problem) => return Err(problem),
        }
        let head = self.require(client, order_id).await?;
        Err(Problem::new(
            ErrorCode::Conflict,
            format!(
                "order {order_id} is {}; {action} needs it {}",
                head.status,
                from.join(" or ")
            ),
        ))
    }

    async fn confirm(&self, client: &dyn ProviderClient, order_id: &str) -> Result<Value, Problem> {
        self.transition(client, order_id, "confirm", json!({}))
            .await?;
        self.view(client, order_id, None).await
    }

    /// Cancels and releases the reservation line by line; a cancelled order whose release
    /// failed releases the rest when cancelled again.
    async fn cancel(&self, client: &dyn ProviderClient, order_id: &str) -> Result<Value, Problem> {
        if let Err(conflict) = self.transition(client, order_id, "cancel", json!({})).await {
            let head = self.require(client, order_id).await?;
            let steps = self.steps(client, order_id).await?;
            let unfinished = steps
                .iter()
                .any(|(name, s)| name.starts_with("release:") && s.status != OK);
            if !(head.status == status::CANCELLED && unfinished) {
                return Err(conflict);
            }
        }
        let head = self.require(client, order_id).await?;
        let steps = self.steps(client, order_id).await?;
        let reference = reference(order_id);
        for line in self.lines(client, order_id).await? {
            let name = format!("release:{}", line.line);
            if steps.get(&name).is_some_and(|s| s.status == OK) {
                continue;
            }
            let released = client
                .invoke(
                    INVENTORY,
                    "release",
                    json!({"item": line.item, "warehouse": head.warehouse, "bin": head.bin,
                           "quantity": line.quantity, "reference": reference}),
                )
                .await;
            let (state, error) = match released {
                Ok(_) => (OK, None),
                Err(problem) => (FAILED, Some(problem.detail)),
            };
            self.record(client, order_id, &name, state, error, None)
                .await?;
        }
        self.view(client, order_id, None).await
    }

    /// Issues the reserved stock line by line, then posts the sale and its cost; a failed
    /// step leaves the order `fulfilling`, and fulfil again resumes it.
    async fn fulfil(&self, client: &dyn ProviderClient, order_id: &str) -> Result<Value, Problem> {
        if let Err(conflict) = self.transition(client, order_id, "fulfil", json!({})).await {
            let head = self.require(client, order_id).await?;
            if head.status != status::FULFILLING {
                return Err(conflict);
            }
        }
        let head = self.require(client, order_id).await?;
        let steps = self.steps(client, order_id).await?;
        let reference = reference(order_id);
        let mut cost = Decimal::ZERO;
        for line in self.lines(client, order_id).await? {
            let name = format!("issue:{}", line.line);
            if let Some(step) = steps.get(&name).filter(|s| s.status == OK) {
                cost += decimal(step.detail.as_deref().unwrap_or("0"))?;
                continue;
            }
            let issued = client
                .invoke(
                    INVENTORY,
                    "issue",
                    json!({"item": line.item, "warehouse": head.warehouse, "bin": head.bin,
                           "quantity": line.quantity, "from_reserved": true,
                           "reference": reference}),
                )
                .await
                .and_then(|moved| decimal(moved["cost"].as_str().unwrap_or("0")).map(|c| c.abs()));
            let detail = issued.as_ref().ok().map(|line_cost| money(*line_cost));
            cost += self.settle(client, order_id, &name, issued, detail).await?;
        }

        let posting_time = self
            .posting_time(client, order_id, "post_ledger", &steps)
            .await?;
        let lines = sale_lines(&head, cost, Direction::Sale);
        let memo = format!("sales order {order_id} fulfilled");
        let posted = self
            .post(
                client,
                &head,
                &journal_id(order_id),
                &memo,
                lines,
                &posting_time,
            )
            .await;
        self.settle(client, order_id, "post_ledger", posted, Some(posting_time))
            .await?;
        self.transition(
            client,
            order_id,
            "complete",
            json!({"currency": head.currency, "total": money(head.total), "cost": money(cost),
                   "journal_id": journal_id(order_id)}),
        )
        .await?;
        self.view(client, order_id, None).await
    }

    /// Takes a fulfilled order back whole: receives each line's stock into the bin it left,
    /// worth exactly the value its issue removed (in two receipts when no single four-place
    /// unit cost gives that value, see [`restock`]), then posts the sale's opposite (receivable/revenue for the
    /// total, inventory/COGS for the value received back). Steps already `ok` are not
    /// repeated, so return again resumes a return stopped by a failed step.
    async fn return_order(
        &self,
        client: &dyn ProviderClient,
        order_id: &str,
    ) -> Result<Value, Problem> {
        if let Err(conflict) = self.transition(client, order_id, "return", json!({})).await {
            let head = self.require(client, order_id).await?;
            if head.status != status::RETURNING {
                return Err(conflict);
            }
        }
        let head = self.require(client, order_id).await?;
        let steps = self.steps(client, order_id).await?;
        let reference = reference(order_id);
        let mut value = Decimal::ZERO;
        for line in self.lines(client, order_id).await? {
            let quantity = decimal(&line.quantity)?;
            let issued = steps
                .get(&format!("issue:{}", line.line))
                .and_then(|s| s.detail.as_deref())
                .map(decimal)
                .transpose()?
                .unwrap_or(Decimal::ZERO);
            // The issued value itself comes back, not the quantity at a rounded unit cost, so
            // inventory and COGS net to zero.
            value += issued;
            let parts = restock::parts(quantity, issued).ok_or_else(|| {
                broken(&format!(
                    "line {} issued {} worth {issued}, which the inventory cannot take back",
                    line.line, line.quantity
                ))
            })?;
            for (index, part) in parts.into_iter().enumerate() {
                let name = restock_step(line.line, index);
                if steps.get(&name).is_some_and(|s| s.status == OK) {
                    continue;
                }
                let received = client
                    .invoke(
                        INVENTORY,
                        "receive",
                        json!({"item": line.item, "warehouse": head.warehouse, "bin": head.bin,
                               "quantity": part.quantity.to_string(),
                               "unit_cost": money(part.unit_cost), "reference": reference}),
                    )
                    .await;
                let detail = received
                    .as_ref()
                    .ok()
                    .and_then(|moved| moved["value"].as_str())
                    .map(str::to_owned);
                self.settle(client, order_id, &name, received, detail)
                    .await?;
            }
        }
        let posting_time = self
            .posting_time(client, order_id, "post_return", &steps)
            .await?;
        let lines = sale_lines(&head, value, Direction::Return);
        let journal = format!("{}/return", journal_id(order_id));
        let memo = format!("sales order {order_id} returned");
        let posted = self
            .post(client, &head, &journal, &memo, lines, &posting_time)
            .await;
        self.settle(client, order_id, "post_return", posted, Some(posting_time))
            .await?;
        self.transition(
            client,
            order_id,
            "complete_return",
            json!({"currency": head.currency, "total": money(head.total), "cost": money(value),
                   "journal_id": journal}),
        )
        .await?;
        self.view(client, order_id, None).await
    }

    /// Records a customer `create` may name. The same again is a no-op; another name for the
    /// same customer is a conflict.
    async fn define_customer(
        &self,
        client: &dyn ProviderClient,
        p: CustomerIn,
    ) -> Result<Value, Problem> {
        if p.customer.trim().is_empty() || p.name.trim().is_empty() {
            return Err(Problem::new(
                ErrorCode::ParamsInvalid,
                "a customer needs a non-blank id and name",
            ));
        }
        let existing = self
            .db
            .query(
                client,
                "SELECT name FROM ord_customer WHERE customer = ?1",
                vec![json!(p.customer)],
            )
            .await?;
        if let Some(row) = existing.first() {
            let name = text(row, "name")?;
            if name != p.name {
                return Err(Problem::new(
                    ErrorCode::Conflict,
                    format!("customer {:?} exists with another name", p.customer),
                ));
            }
            return Ok(json!({"customer": p.customer, "name": name, "created": false}));
        }
        self.db
            .transaction(
                client,
                vec![self.db.statement(
                    "INSERT INTO ord_customer (customer, name, created_at) VALUES (?1, ?2, ?3)",
                    vec![json!(p.customer), json!(p.name), json!(now())],
                )],
            )
            .await?;
        Ok(json!({"customer": p.customer, "name": p.name, "created": true}))
    }

    /// The posting time of the journal step `name`, fixed before its first attempt, so a
    /// retry posts the very same journal (a replay for the ledger) rather than a conflicting one.
    async fn posting_time(
        &self,
        client: &dyn ProviderClient,
        order_id: &str,
        name: &str,
        steps: &HashMap<String, Step>,
    ) -> Result<String, Problem> {
        if let Some(time) = steps.get(name).and_then(|s| s.detail.clone()) {
            return Ok(time);
        }
        let time = now();
        self.record(client, order_id, name, PENDING, None, Some(time.clone()))
            .await?;
        Ok(time)
    }

    /// Records how step `name` ended (`ok`, or `failed` with the problem's detail), with
    /// `detail`; answers the outcome, so a failed step fails the call.
    async fn settle<T>(
        &self,
        client: &dyn ProviderClient,
        order_id: &str,
        name: &str,
        outcome: Result<T, Problem>,
        detail: Option<String>,
    ) -> Result<T, Problem> {
        let (state, error) = match &outcome {
            Ok(_) => (OK, None),
            Err(problem) => (FAILED, Some(problem.detail.clone())),
        };
        self.record(client, order_id, name, state, error, detail)
            .await?;
        outcome
    }

    /// Posts `lines` as journal `journal_id`, creating the order currency's four accounts on
    /// first use. No lines (a free order of stock without cost) posts nothing.
    async fn post(
        &self,
        client: &dyn ProviderClient,
        head: &Head,
        journal_id: &str,
        memo: &str,
        lines: Vec<Value>,
        posting_time: &str,
    ) -> Result<(), Problem> {
        if lines.is_empty() {
            return Ok(());
        }
        let c = &head.currency;
        for (base, name, kind) in [
            (RECEIVABLE, "Accounts receivable", "asset"),
            (REVENUE, "Sales revenue", "income"),
            (COGS, "Cost of goods sold", "expense"),
            (INVENTORY_ASSET, "Inventory", "asset"),
        ] {
            let created = client
                .invoke(
                    LEDGER,
                    "create_account",
                    json!({"code": format!("{base}-{c}"), "name": format!("{name} ({c})"),
                           "type": kind, "currency": c}),
                )
                .await;
            match created {
                Ok(_) => {}
                Err(problem) if problem.code == ErrorCode::Conflict => {}
                Err(problem) => return Err(problem),
            }
        }
        client
            .invoke(
                LEDGER,
                "post_journal",
                json!({"journal_id": journal_id, "posting_time": posting_time, "memo": memo,
                       "external_ref": head.order_id, "lines": lines}),
            )
            .await
            .map(drop)
    }

    // ---- storage ---------------------------------------------------------------------------

    async fn head(
        &self,
        client: &dyn ProviderClient,
        order_id: &str,
    ) -> Result<Option<Head>, Problem> {
        let rows = self
            .db
            .query(
                client,
                "SELECT order_id, customer, warehouse, bin, currency, total, status, content \
                 FROM ord_order WHERE order_id = ?1",
                vec![json!(order_id)],
            )
            .await?;
        rows.first()
            .map(|row| {
                Ok(Head {
                    order_id: text(row, "order_id")?,
                    customer: text(row, "customer")?,
                    warehouse: text(row, "warehouse")?,
                    bin: text(row, "bin")?,
                    currency: text(row, "currency")?,
                    total: decimal(&text(row, "total")?)?,
                    status: text(row, "status")?,
                    content: text(row, "content")?,
                })
            })
            .transpose()
    }

    async fn require(&self, client: &dyn ProviderClient, order_id: &str) -> Result<Head, Problem> {
        self.head(client, order_id).await?.ok_or_else(|| {
            Problem::new(ErrorCode::ResourceNotFound, format!("no order {order_id}"))
        })
    }

    async fn lines(
        &self,
        client: &dyn ProviderClient,
        order_id: &str,
    ) -> Result<Vec<Line>, Problem> {
        let rows = self
            .db
            .query(
                client,
                "SELECT line, item, quantity FROM ord_line WHERE order_id = ?1 ORDER BY line",
                vec![json!(order_id)],
            )
            .await?;
        rows.iter()
            .map(|row| {
                Ok(Line {
                    line: integer(row, "line")?,
                    item: text(row, "item")?,
                    quantity: text(row, "quantity")?,
                })
            })
            .collect()
    }

    async fn steps(
        &self,
        client: &dyn ProviderClient,
        order_id: &str,
    ) -> Result<HashMap<String, Step>, Problem> {
        let rows = self.step_rows(client, order_id).await?;
        rows.iter()
            .map(|row| {
                Ok((
                    text(row, "name")?,
                    Step {
                        status: text(row, "status")?,
                        detail: optional_text(row, "detail"),
                    },
                ))
            })
            .collect()
    }

    async fn step_rows(
        &self,
        client: &dyn ProviderClient,
        order_id: &str,
    ) -> Result<Vec<Row>, Problem> {
        self.db
            .query(
                client,
                "SELECT name, status, error, detail FROM ord_step WHERE order_id = ?1 \
                 ORDER BY step_order, name",
                vec![json!(order_id)],
            )
            .await
    }

    /// The upsert of one step's outcome.
    fn step_statement(
        &self,
        order_id: &str,
        name: &str,
        state: &str,
        error: Option<&str>,
        detail: Option<&str>,
        now: &str,
    ) -> Value {
        self.db.statement(
            "INSERT INTO ord_step (order_id, name, step_order, status, error, detail, updated_at) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT (order_id, name) DO UPDATE SET \
             status = excluded.status, error = excluded.error, detail = excluded.detail, \
             updated_at = excluded.updated_at",
            vec![
                json!(order_id),
                json!(name),
                json!(step_order(name)),
                json!(state),
                json!(error),
                json!(detail),
                json!(now),
            ],
        )
    }

    async fn record(
        &self,
        client: &dyn ProviderClient,
        order_id: &str,
        name: &str,
        state: &str,
        error: Option<String>,
        detail: Option<String>,
    ) -> Result<(), Problem> {
        let statement = self.step_statement(
            order_id,
            name,
            state,
            error.as_deref(),
            detail.as_deref(),
            &now(),
        );
        self.db.transaction(client, vec![statement]).await
    }

    /// The order as `get` answers it.
    async fn view(
        &self,
        client: &dyn ProviderClient,
        order_id: &str,
        replayed: Option<bool>,
    ) -> Result<Value, Problem> {
        let rows = self
            .db
            .query(
                client,
                "SELECT order_id, customer, warehouse, bin, currency, total, status, category, \
                 risk, created_at, updated_at FROM ord_order WHERE order_id = ?1",
                vec![json!(order_id)],
            )
            .await?;
        let Some(row) = rows.first() else {
            return Err(Problem::new(
                ErrorCode::ResourceNotFound,
                format!("no order {order_id}"),
            ));
        };
        let mut order = json!({
            "order_id": text(row, "order_id")?,
            "customer": text(row, "customer")?,
            "warehouse": text(row, "warehouse")?,
            "bin": text(row, "bin")?,
            "currency": text(row, "currency")?,
            "total": money(decimal(&text(row, "total")?)?),
            "status": text(row, "status")?,
            "created_at": text(row, "created_at")?,
            "updated_at": text(row, "updated_at")?,
        });
        for column in ["category", "risk"] {
            if let Some(value) = optional_text(row, column) {
                order[column] = json!(value);
            }
        }
        if let Some(replayed) = replayed {
            order["replayed"] = json!(replayed);
        }
        let lines = self
            .db
            .query(
                client,
                "SELECT line, item, quantity, unit_price, currency FROM ord_line \
                 WHERE order_id = ?1 ORDER BY line",
                vec![json!(order_id)],
            )
            .await?;
        order["lines"] = lines
            .iter()
            .map(|row| {
                Ok(json!({
                    "line": integer(row, "line")?,
                    "item": text(row, "item")?,
                    "quantity": text(row, "quantity")?,
                    "unit_price": text(row, "unit_price")?,
                    "currency": text(row, "currency")?,
                }))
            })
            .collect::<Result<Vec<Value>, Problem>>()?
            .into();
        order["steps"] = self
            .step_rows(client, order_id)
            .await?
            .iter()
            .map(|row| {
                let mut step = json!({"name": text(row, "name")?, "status": text(row, "status")?});
                for column in ["error", "detail"] {
                    if let Some(value) = optional_text(row, column) {
                        step[column] = json!(value);
                    }
                }
                Ok(step)
            })
            .collect::<Result<Vec<Value>, Problem>>()?
            .into();
        Ok(order)
    }
}

/// Checks what the schema cannot: a named customer, positive quantities, one currency. Answers
/// the currency and the total.
fn validate(p: &CreateParams) -> Result<(String, Decimal), Problem> {
    let invalid = |detail: String| Problem::new(ErrorCode::ParamsInvalid, detail);
    if p.customer.trim().is_empty() {
        return Err(invalid("the customer must not be blank".into()));
    }
    let Some(first) = p.lines.first() else {
        return Err(invalid("an order has at least one line".into()));
    };
    let mut total = Decimal::ZERO;
    for (n, line) in p.lines.iter().enumerate() {
        if line.currency != first.currency {
            // One currency per order is a rule across lines, which no schema states: 422.
            return Err(Problem::new(
                ErrorCode::ParamsUnprocessable,
                format!(
                    "line {}: every line of an order has the currency {}",
                    n + 1,
                    first.currency
                ),
            ));
        }
        let quantity = decimal(&line.quantity)
            .map_err(|_| invalid(format!("line {}: bad quantity", n + 1)))?;
        if quantity <= Decimal::ZERO {
            return Err(invalid(format!(
                "line {}: the quantity must be positive",
                n + 1
            )));
        }
        let price = decimal(&line.unit_price)
            .map_err(|_| invalid(format!("line {}: bad unit_price", n + 1)))?;
        total = quantity
            .checked_mul(price)
            .and_then(|amount| total.checked_add(amount))
            .ok_or_else(|| invalid("the order total is out of range".into()))?;
    }
    Ok((first.currency.clone(), total.round_dp(4)))
}

/// Gives back what a failed create had reserved. Best effort: a release that fails here
/// leaves stock reserved under the order's reference for an operator to release.
async fn release_all(
    client: &dyn ProviderClient,
    warehouse: &str,
    bin: &str,
    reference: &str,
    lines: &[&LineIn],
) {
    for line in lines {
        let _ = client
            .invoke(
                INVENTORY,
                "release",
                json!({"item": line.item, "warehouse": warehouse, "bin": bin,
                       "quantity": line.quantity, "reference": reference}),
            )
            .await;
    }
}

type Labels = &'static [(&'static str, &'static [&'static str])];

const CATEGORIES: Labels = &[
    (
        "wholesale",
        &[
            "bulk order of hundreds of units for resale",
            "large pallet quantities for a distributor",
            "trade customer restocking many items",
        ],
    ),
    (
        "retail",
        &[
            "order of 1 units for a private customer",
            "small consumer purchase of a few units",
            "one gift item for a home delivery",
        ],
    ),
];

const RISKS: Labels = &[
    (
        "low",
        &[
            "small routine order from a regular customer",
            "order of a few units worth little",
        ],
    ),
    (
        "high",
        &[
            "very large order worth a fortune from an unknown customer",
            "unusually high quantity rush order of expensive items",
        ],
    ),
];

/// The label the AI provider picks for `text`.
async fn classify(
    client: &dyn ProviderClient,
    ai: &str,
    text: &str,
    labels: Labels,
) -> Result<String, Problem> {
    let labels: Vec<Value> = labels
        .iter()
        .map(|(name, examples)| json!({"name": name, "examples": examples}))
        .collect();
    let answer = client
        .invoke(ai, "classify", json!({"text": text, "labels": labels}))
        .await?;
    answer["label"]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| Problem::new(ErrorCode::Internal, format!("{ai} answered no label")))
}

/// Where steps sort in `get`: the saga's order (a line's second receipt, `restock:<line>/2`,
/// sorts with its line and after its first by name).
fn step_order(name: &str) -> i64 {
    let line = |prefix: &str| {
        name.strip_prefix(prefix)
            .and_then(|n| n.split('/').next()?.parse::<i64>().ok())
            .unwrap_or(0)
    };
    match name {
        "reserve" => 10,
        "webhook" => 20,
        "annotate" => 30,
        "post_ledger" => 5_000,
        _ if name.starts_with("restock:") => 6_000 + line("restock:"),
        "post_return" => 7_000,
        _ if name.starts_with("release:") => 1_000 + line("release:"),
        _ if name.starts_with("issue:") => 2_000 + line("issue:"),
        _ => 9_000,
    }
}

/// The step that receives part `index` (0 or 1) of line `line` back: `restock:<line>`, and
/// `restock:<line>/2` for the second receipt of a line that comes back in two.
fn restock_step(line: i64, index: usize) -> String {
    match index {
        0 => format!("restock:{line}"),
        n => format!("restock:{line}/{}", n + 1),
    }
}

/// Which way a journal moves the sale.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Direction {
    Sale,
    Return,
}

/// Receivable/revenue for the order's total and COGS/inventory for `cost`, each pair swapped
/// for a return. A zero amount posts no pair.
fn sale_lines(head: &Head, cost: Decimal, direction: Direction) -> Vec<Value> {
    let c = &head.currency;
    let mut lines = Vec::new();
    for (debit, credit, amount) in [
        (RECEIVABLE, REVENUE, head.total),
        (COGS, INVENTORY_ASSET, cost),
    ] {
        if amount <= Decimal::ZERO {
            continue;
        }
        let (debit, credit) = match direction {
            Direction::Sale => (debit, credit),
            Direction::Return => (credit, debit),
        };
        lines.push(
            json!({"account": format!("{debit}-{c}"), "debit": money(amount), "currency": c}),
        );
        lines.push(
            json!({"account": format!("{credit}-{c}"), "credit": money(amount), "currency": c}),
        );
    }
    lines
}

/// The ledger journal a fulfilled order posts; its return posts `<this>/return`.
fn journal_id(order_id: &str) -> String {
    format!("so/{order_id}")
}

/// The id of the event of `order_id` reaching `state`: derived, not drawn, so the same state
/// change cannot be recorded twice. A name-based UUID keeps it within the outbox's 64 characters
/// whatever the order id.
fn event_id(order_id: &str, state: &str) -> String {
    uuid::Uuid::new_v5(&EVENT_NAMESPACE, format!("{order_id}/{state}").as_bytes()).to_string()
}

/// The UUID namespace of the orders' derived event ids.
const EVENT_NAMESPACE: uuid::Uuid =
    uuid::Uuid::from_u128(0x6f72_6465_7273_4000_8000_7377_6974_6368);

fn field(pointer: &str, detail: &str) -> FieldError {
    FieldError {
        pointer: pointer.into(),
        detail: detail.into(),
    }
}

/// The reference the order's inventory movements and events carry.
fn reference(order_id: &str) -> String {
    format!("order:{order_id}")
}

fn decimal(text: &str) -> Result<Decimal, Problem> {
    text.parse::<Decimal>()
        .map_err(|e| broken(&format!("a decimal it cannot read ({text:?}: {e})")))
}

/// Money with four fraction digits, as the ledger writes it.
fn money(amount: Decimal) -> String {
    format!("{:.4}", amount.round_dp(4))
}

/// Now in RFC 3339 UTC with microsecond precision (the ledger takes no finer).
fn now() -> String {
    let t = time::OffsetDateTime::now_utc();
    let t = t
        .replace_nanosecond(t.nanosecond() / 1_000 * 1_000)
        .unwrap_or(t);
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

#[async_trait]
impl Service for OrdersService {
    fn descriptor(&self) -> &ServiceDescriptor {
        &self.descriptor
    }

    async fn invoke(
        &self,
        client: &dyn ProviderClient,
        action: &str,
        p: Value,
    ) -> Result<Value, Problem> {
        self.install(client).await?;
        match action {
            "create" => return self.create(client, params(p)?).await,
            "define_customer" => return self.define_customer(client, params(p)?).await,
            _ => {}
        }
        let OrderRef { order_id } = params(p)?;
        match action {
            "annotate" => self.annotate(client, &order_id).await,
            "return" => self.return_order(client, &order_id).await,
            "confirm" => self.confirm(client, &order_id).await,
            "cancel" => self.cancel(client, &order_id).await,
            "fulfil" => self.fulfil(client, &order_id).await,
            "get" => self.view(client, &order_id, None).await,
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
            ("db/mysql", None, None),
            ("db/oracle", None, None),
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

    #[test]
    fn every_transition_is_explicit() {
        let next = |action: &str, from: &str| {
            TRANSITIONS
                .iter()
                .find(|(a, states, ..)| *a == action && states.contains(&from))
                .map(|(_, _, to, _)| *to)
        };
        let event = |action: &str| {
            TRANSITIONS
                .iter()
                .find(|(a, ..)| *a == action)
                .and_then(|(.., kind)| *kind)
        };
        assert_eq!(next("confirm", status::CREATED), Some(status::CONFIRMED));
        assert_eq!(next("fulfil", status::CONFIRMED), Some(status::FULFILLING));
        assert_eq!(next("fulfil", status::CREATED), None);
        assert_eq!(next("cancel", status::FULFILLED), None);
        assert_eq!(next("cancel", status::FULFILLING), None);
        assert_eq!(next("confirm", status::CANCELLED), None);
        assert_eq!(next("return", status::FULFILLED), Some(status::RETURNING));
        assert_eq!(next("return", status::CONFIRMED), None);
        // Every state a caller can see as final writes its event; the in-between ones do not.
        assert_eq!(event("complete"), Some(ORDER_FULFILLED));
        assert_eq!(event("complete_return"), Some(ORDER_RETURNED));
        assert_eq!(event("fulfil"), None);
    }

    #[test]
    fn validation_refuses_blank_customers_zero_quantities_and_mixed_currencies() {
        let order = |customer: &str, lines: &[(&str, &str, &str)]| CreateParams {
            order_id: "o".into(),
            customer: customer.into(),
            warehouse: "w".into(),
            bin: None,
            lines: lines
                .iter()
                .map(|(q, p, c)| LineIn {
                    item: "i".into(),
                    quantity: (*q).into(),
                    unit_price: (*p).into(),
                    currency: (*c).into(),
                })
                .collect(),
        };
        let (currency, total) =
            validate(&order("acme", &[("2", "10.5", "USD"), ("1.5", "2", "USD")])).unwrap();
        assert_eq!(
            (currency.as_str(), money(total).as_str()),
            ("USD", "24.0000")
        );
        for bad in [
            order(" ", &[("1", "1", "USD")]),
            order("acme", &[("0", "1", "USD")]),
        ] {
            assert_eq!(validate(&bad).unwrap_err().code, ErrorCode::ParamsInvalid);
        }
        // One currency per order is a rule across lines, which no schema states.
        let mixed = order("acme", &[("1", "1", "USD"), ("1", "1", "EUR")]);
        assert_eq!(
            validate(&mixed).unwrap_err().code,
            ErrorCode::ParamsUnprocessable
        );
    }
}
