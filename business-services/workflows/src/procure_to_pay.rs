//! Procure-to-Pay: a requisition (approved by a human above the threshold) becomes a purchase
//! order; the warehouse's goods receipt (signal `receipt`) puts the stock in with its lots and
//! books it against goods-received-not-invoiced; the supplier's invoice (signal `invoice`) is
//! matched three ways (order, receipt, invoice: quantity and price per item). A match posts the
//! payable; a mismatch stops for a human (a task) who accepts the invoice, the difference
//! booked as a price variance, or disputes it, leaving nothing payable.
//!
//! The instance id is the purchase order number.

use std::collections::BTreeMap;
use std::time::Duration;

use restate_sdk::prelude::*;
use serde::Deserialize;
use serde_json::{Value, json};
use switchyard_service_kit::{Money, Quantity, Sign};

use crate::approval::{self, Request};
use crate::flow::Flow;
use crate::{Clients, Signal, published, tenant_of};

const INVENTORY: &str = "services/inventory";
const LEDGER: &str = "services/ledger";
/// Inventory (asset), goods received not invoiced (liability), accounts payable (liability),
/// purchase price variance (expense); per currency, like the orders service's accounts.
const INVENTORY_ASSET: (&str, &str, &str) = ("1300", "Inventory", "asset");
const GRNI: (&str, &str, &str) = ("2100", "Goods received not invoiced", "liability");
const PAYABLE: (&str, &str, &str) = ("2000", "Accounts payable", "liability");
const VARIANCE: (&str, &str, &str) = ("5100", "Purchase price variance", "expense");

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Input {
    supplier: String,
    warehouse: String,
    #[serde(default = "default_bin")]
    bin: String,
    currency: String,
    lines: Vec<OrderLine>,
    /// Requisitions whose total is above this (a decimal text) wait for an approval task.
    #[serde(default)]
    approval_above: Option<String>,
    /// How long a human decision may wait before its task is escalated.
    #[serde(default = "default_sla_ms")]
    approval_sla_ms: u64,
}

fn default_bin() -> String {
    "main".into()
}

fn default_sla_ms() -> u64 {
    24 * 3_600_000
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct OrderLine {
    item: String,
    quantity: String,
    unit_price: String,
}

/// The warehouse's goods receipt: what arrived, per item, with the supplier's lot.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Receipt {
    lines: Vec<ReceivedLine>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ReceivedLine {
    item: String,
    quantity: String,
    #[serde(default)]
    lot: Option<String>,
}

/// The supplier's invoice.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Invoice {
    invoice_id: String,
    lines: Vec<OrderLine>,
}

pub struct ProcureToPay {
    clients: Clients,
}

impl ProcureToPay {
    pub fn new(clients: Clients) -> Self {
        ProcureToPay { clients }
    }
}

#[restate_sdk::workflow]
impl ProcureToPay {
    /// The flow; answers its outcome: `paid` (matched), `paid_with_variance` (a human
    /// accepted a mismatch), `disputed`, or `rejected` (the requisition).
    #[handler]
    async fn run(
        &self,
        ctx: WorkflowContext<'_>,
        input: Json<Value>,
    ) -> Result<Json<Value>, HandlerError> {
        let key = ctx.key().to_owned();
        let (tenant, id) = tenant_of(&key)?;
        let id = id.to_owned();
        let mut flow = Flow::new((self.clients)(tenant, "workflow:ProcureToPay"), key.clone());
        let input: Input = serde_json::from_value(input.into_inner())
            .map_err(|e| TerminalError::new_with_code(400, format!("ProcureToPay input: {e}")))?;
        let outcome = procure(&mut flow, &ctx, &id, &input).await?;
        flow.publish(&ctx, "outcome", json!(outcome));
        flow.publish(&ctx, "step", json!("done"));
        Ok(Json(json!({"po": id, "outcome": outcome})))
    }

    /// Resolves a durable promise: `receipt` and `invoice` are checked here, before the flow
    /// takes them, so a malformed one is refused (400) instead of stopping the flow.
    #[handler]
    async fn signal(
        &self,
        ctx: SharedWorkflowContext<'_>,
        signal: Json<Value>,
    ) -> Result<(), HandlerError> {
        let signal = Signal::parse(signal)?;
        let bad = |e: serde_json::Error| {
            TerminalError::new_with_code(400, format!("{}: {e}", signal.name))
        };
        match signal.name.as_str() {
            "receipt" => {
                drop(serde_json::from_value::<Receipt>(signal.payload.clone()).map_err(bad)?)
            }
            "invoice" => {
                drop(serde_json::from_value::<Invoice>(signal.payload.clone()).map_err(bad)?)
            }
            _ => {}
        }
        signal.resolve(&ctx).await
    }

    #[handler]
    async fn state(&self, ctx: SharedWorkflowContext<'_>) -> Result<Json<Value>, HandlerError> {
        published(&ctx).await
    }
}

async fn procure(
    flow: &mut Flow,
    ctx: &WorkflowContext<'_>,
    id: &str,
    input: &Input,
) -> Result<String, TerminalError> {
    let at: String = ctx
        .run(|| async { Ok(switchyard_service_kit::clock::now()) })
        .name("clock")
        .await?;
    let ordered = priced(&input.lines)?;
    let total = ordered.values().map(|l| l.amount.0).sum::<i64>();
    flow.publish(ctx, "total", json!(Money(total).to_string()));

    // Requisition → approval.
    if let Some(threshold) = &input.approval_above
        && Money(total) > money(threshold, "/approval_above")?
    {
        flow.publish(ctx, "step", json!("approval"));
        let decision = approval::ask(
            flow,
            ctx,
            "ProcureToPay",
            id,
            Request {
                task_id: format!("{id}.requisition"),
                title: format!("Approve purchase order {id} to {}", input.supplier),
                data: json!({"po": id, "supplier": input.supplier, "lines": lines_json(&input.lines),
                             "total": Money(total).to_string(), "currency": input.currency}),
                sla: Duration::from_millis(input.approval_sla_ms),
            },
        )
        .await?;
        flow.publish(ctx, "approval", decision.payload);
        if !decision.approved {
            return Ok("rejected".into());
        }
    }
    flow.publish(
        ctx,
        "purchase_order",
        json!({"po": id, "supplier": input.supplier, "lines": lines_json(&input.lines),
               "status": "ordered"}),
    );

    // Goods receipt: the stock in, at the ordered price, with its lots.
    flow.publish(ctx, "step", json!("receipt"));
    let receipt: Receipt = wait(ctx, "receipt").await?;
    let mut received: BTreeMap<String, i64> = BTreeMap::new();
    let mut received_value = 0;
    for (n, line) in receipt.lines.iter().enumerate() {
        let Some(order_line) = ordered.get(&line.item) else {
            return Err(TerminalError::new_with_code(
                422,
                format!("received {} is not on purchase order {id}", line.item),
            ));
        };
        let quantity = Quantity::parse(&line.quantity, Sign::Positive, "/quantity")
            .map_err(|p| TerminalError::new_with_code(400, p.detail))?;
        let mut params = json!({"item": line.item, "warehouse": input.warehouse, "bin": input.bin,
                                "quantity": line.quantity, "unit_cost": order_line.unit_price.to_string(),
                                "reference": format!("po:{id}"),
                                "request_id": flow.idempotency_key(&format!("receive:{n}"))});
        if let Some(lot) = &line.lot {
            params["lot"] = json!({"lot": lot, "supplier": input.supplier});
        }
        flow.step(ctx, &format!("receive:{n}"), INVENTORY, "receive", params)
            .await?;
        *received.entry(line.item.clone()).or_default() += quantity.0;
        received_value += value(quantity, order_line.unit_price)?;
    }
    let currency = input.currency.as_str();
    for account in [INVENTORY_ASSET, GRNI] {
        flow.ensure_account(
            ctx,
            (&code(account, currency), account.1, account.2),
            currency,
        )
        .await?;
    }
    let received_text = Money(received_value).to_string();
    post(
        flow,
        ctx,
        (
            &format!("p2p/{id}/receipt"),
            &at,
            &format!("goods received on purchase order {id}"),
        ),
        currency,
        &[
            (
                code(INVENTORY_ASSET, currency),
                "debit",
                received_text.clone(),
            ),
            (code(GRNI, currency), "credit", received_text.clone()),
        ],
    )
    .await?;
    flow.publish(ctx, "received", json!({"value": received_text}));

    // Supplier invoice → three-way match.
    flow.publish(ctx, "step", json!("invoice"));
    let invoice: Invoice = wait(ctx, "invoice").await?;
    let invoiced = priced(&invoice.lines)?;
    let invoice_total = invoiced.values().map(|l| l.amount.0).sum::<i64>();
    let mismatches = three_way(&ordered, &received, &invoiced);
    flow.publish(
        ctx,
        "invoice",
        json!({"invoice_id": invoice.invoice_id,
                                        "total": Money(invoice_total).to_string()}),
    );
    let mut outcome = "paid";
    if !mismatches.is_empty() {
        flow.publish(ctx, "mismatches", json!(mismatches));
        flow.publish(ctx, "step", json!("mismatch"));
        let decision = approval::ask(
            flow,
            ctx,
            "ProcureToPay",
            id,
            Request {
                task_id: format!("{id}.invoice"),
                title: format!(
                    "Invoice {} does not match purchase order {id} and its receipt",
                    invoice.invoice_id
                ),
                data: json!({"po": id, "invoice_id": invoice.invoice_id, "mismatches": mismatches}),
                sla: Duration::from_millis(input.approval_sla_ms),
            },
        )
        .await?;
        flow.publish(ctx, "invoice_decision", decision.payload);
        if !decision.approved {
            return Ok("disputed".into());
        }
        outcome = "paid_with_variance";
    }

    // The payable: goods received not invoiced cleared at the received value, the invoice
    // owed in full, the difference a price variance.
    for account in [PAYABLE, VARIANCE] {
        flow.ensure_account(
            ctx,
            (&code(account, currency), account.1, account.2),
            currency,
        )
        .await?;
    }
    let mut lines = vec![
        (code(GRNI, currency), "debit", received_text.clone()),
        (
            code(PAYABLE, currency),
            "credit",
            Money(invoice_total).to_string(),
        ),
    ];
    let variance = invoice_total - received_value;
    if variance != 0 {
        let side = if variance > 0 { "debit" } else { "credit" };
        lines.push((
            code(VARIANCE, currency),
            side,
            Money(variance.abs()).to_string(),
        ));
    }
    flow.publish(ctx, "step", json!("payable"));
    post(
        flow,
        ctx,
        (
            &format!("p2p/{id}/invoice"),
            &at,
            &format!(
                "supplier invoice {} for purchase order {id}",
                invoice.invoice_id
            ),
        ),
        currency,
        &lines,
    )
    .await?;
    Ok(outcome.into())
}

/// One line of an order or an invoice, read.
struct Priced {
    quantity: Quantity,
    unit_price: Money,
    amount: Money,
}

/// Lines by item (an item twice is refused: the match is per item).
fn priced(lines: &[OrderLine]) -> Result<BTreeMap<String, Priced>, TerminalError> {
    let mut by_item = BTreeMap::new();
    for line in lines {
        let quantity = Quantity::parse(&line.quantity, Sign::Positive, "/quantity")
            .map_err(|p| TerminalError::new_with_code(400, p.detail))?;
        let unit_price = money(&line.unit_price, "/unit_price")?;
        let amount = Money(value(quantity, unit_price)?);
        let line_read = Priced {
            quantity,
            unit_price,
            amount,
        };
        if by_item.insert(line.item.clone(), line_read).is_some() {
            return Err(TerminalError::new_with_code(
                400,
                format!("item {} is on two lines", line.item),
            ));
        }
    }
    Ok(by_item)
}

/// What differs between the order, the receipt and the invoice, item by item: the invoiced
/// quantity against the received one, the invoiced price against the ordered one.
fn three_way(
    ordered: &BTreeMap<String, Priced>,
    received: &BTreeMap<String, i64>,
    invoiced: &BTreeMap<String, Priced>,
) -> Vec<Value> {
    let mut items: Vec<&String> = ordered.keys().chain(invoiced.keys()).collect();
    items.sort();
    items.dedup();
    let mut mismatches = Vec::new();
    for item in items {
        let got = Quantity(received.get(item).copied().unwrap_or(0));
        let (billed, billed_price) = invoiced
            .get(item)
            .map_or((Quantity(0), None), |l| (l.quantity, Some(l.unit_price)));
        let ordered_price = ordered.get(item).map(|l| l.unit_price);
        if billed != got {
            mismatches.push(json!({"item": item, "field": "quantity",
                                   "received": got.to_string(), "invoiced": billed.to_string()}));
        }
        if let (Some(billed_price), Some(ordered_price)) = (billed_price, ordered_price)
            && billed_price != ordered_price
        {
            mismatches.push(json!({"item": item, "field": "unit_price",
                                   "ordered": ordered_price.to_string(),
                                   "invoiced": billed_price.to_string()}));
        }
        if ordered_price.is_none() {
            mismatches.push(
                json!({"item": item, "field": "item", "invoiced": billed.to_string(),
                                   "detail": "not on the purchase order"}),
            );
        }
    }
    mismatches
}

/// Waits for signal `name` and reads its payload (checked by the `signal` handler already).
async fn wait<T: serde::de::DeserializeOwned>(
    ctx: &WorkflowContext<'_>,
    name: &str,
) -> Result<T, TerminalError> {
    let payload = ctx.promise::<Json<Value>>(name).await?.into_inner();
    serde_json::from_value(payload)
        .map_err(|e| TerminalError::new_with_code(400, format!("{name}: {e}")))
}

/// Posts a journal (its id makes a second posting of the same content a replay).
async fn post(
    flow: &mut Flow,
    ctx: &WorkflowContext<'_>,
    (journal_id, at, memo): (&str, &str, &str),
    currency: &str,
    lines: &[(String, &str, String)],
) -> Result<(), TerminalError> {
    let lines: Vec<Value> = lines
        .iter()
        .map(|(account, side, amount)| json!({"account": account, *side: amount, "currency": currency}))
        .collect();
    flow.step(
        ctx,
        journal_id,
        LEDGER,
        "post_journal",
        json!({"journal_id": journal_id, "posting_time": at, "memo": memo, "lines": lines}),
    )
    .await?;
    Ok(())
}

fn code((base, _, _): (&str, &str, &str), currency: &str) -> String {
    format!("{base}-{currency}")
}

/// A price or threshold: never negative.
fn money(raw: &str, field: &str) -> Result<Money, TerminalError> {
    crate::flow::money(raw, Sign::NonNegative, field)
}

fn value(quantity: Quantity, unit_price: Money) -> Result<i64, TerminalError> {
    Money::of(quantity, unit_price)
        .map(|m| m.0)
        .ok_or_else(|| TerminalError::new_with_code(400, "an amount beyond what is kept"))
}

fn lines_json(lines: &[OrderLine]) -> Value {
    json!(
        lines
            .iter()
            .map(|l| json!({"item": l.item, "quantity": l.quantity, "unit_price": l.unit_price}))
            .collect::<Vec<_>>()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(spec: &[(&str, &str, &str)]) -> Vec<OrderLine> {
        spec.iter()
            .map(|(item, quantity, unit_price)| OrderLine {
                item: (*item).into(),
                quantity: (*quantity).into(),
                unit_price: (*unit_price).into(),
            })
            .collect()
    }

    #[test]
    fn the_three_way_match_names_each_difference() {
        let ordered = priced(&lines(&[("bolt", "10", "2.00"), ("nut", "5", "1.00")])).unwrap();
        let received = BTreeMap::from([
            (
                "bolt".to_owned(),
                Quantity::parse("10", Sign::Positive, "/").unwrap().0,
            ),
            (
                "nut".to_owned(),
                Quantity::parse("4", Sign::Positive, "/").unwrap().0,
            ),
        ]);
        let matched = priced(&lines(&[("bolt", "10", "2.00"), ("nut", "4", "1.00")])).unwrap();
        assert!(three_way(&ordered, &received, &matched).is_empty());
        let off = priced(&lines(&[
            ("bolt", "10", "2.10"),
            ("nut", "5", "1.00"),
            ("washer", "1", "1"),
        ]))
        .unwrap();
        let found = three_way(&ordered, &received, &off);
        let fields: Vec<(&str, &str)> = found
            .iter()
            .map(|m| (m["item"].as_str().unwrap(), m["field"].as_str().unwrap()))
            .collect();
        assert_eq!(
            fields,
            [
                ("bolt", "unit_price"),
                ("nut", "quantity"),
                ("washer", "quantity"),
                ("washer", "item")
            ]
        );
    }
}
