//! Quote-to-Cash: the order (stock reserved), an approval when the order is above the
//! tenant's threshold, the payment authorized, the order confirmed, the payment captured, the
//! stock issued with revenue and cost booked (the orders service's fulfilment), and the cash
//! booked against the receivable. Every failure undoes what was done, newest first: the
//! capture refunded, the authorization voided, the order cancelled (its reservation released).
//!
//! The instance id is the order id, so the orders API shows the same order the flow drives.

use std::time::Duration;

use restate_sdk::prelude::*;
use serde::Deserialize;
use serde_json::{Value, json};
use switchyard_contracts::{Event, TenantId};
use switchyard_service_kit::{Money, Sign};

use crate::approval::{self, Request};
use crate::flow::{Flow, is_cancellation, money, problem_of};
use crate::{Clients, INVOICE_ISSUED, Settings, Signal, published, tenant_of};

const ORDERS: &str = "services/orders";
/// Where the invoice event goes, and what it names as its source.
const TOPIC: &str = "billing";
const SOURCE: &str = "/workflows/QuoteToCash";
const LEDGER: &str = "services/ledger";
const PAYMENTS: &str = "integration/payments";
/// The cash account the capture is booked to (per currency, like the orders service's
/// receivable `1100-<currency>`).
const CASH: &str = "1000";
const RECEIVABLE: &str = "1100";

/// What a Quote-to-Cash run is given: the order as `services/orders create` takes it (its id
/// is the instance id), how it is paid, and above which total a human approves it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Input {
    customer: String,
    warehouse: String,
    #[serde(default)]
    bin: Option<String>,
    lines: Vec<Value>,
    payment_method: String,
    /// Orders whose total is above this (a decimal text) wait for an approval task.
    #[serde(default)]
    approval_above: Option<String>,
    /// How long the approval may wait before it is escalated.
    #[serde(default = "default_sla_ms")]
    approval_sla_ms: u64,
}

fn default_sla_ms() -> u64 {
    24 * 3_600_000
}

/// What has to be undone if a later step fails, newest last.
#[derive(Default)]
struct Undo {
    order: bool,
    /// An approval task still open in the inbox.
    task: Option<String>,
    authorization: Option<String>,
    captured: Option<(String, i64)>,
}

pub struct QuoteToCash {
    clients: Clients,
    settings: Settings,
}

impl QuoteToCash {
    pub fn new(clients: Clients, settings: Settings) -> Self {
        QuoteToCash { clients, settings }
    }
}

#[restate_sdk::workflow]
impl QuoteToCash {
    /// The flow. Answers its outcome: `completed`, or `rejected`/`declined`/`cancelled`/
    /// `failed` with what was compensated; a flow that cannot even record its order ends
    /// failed with the orders service's problem.
    #[handler]
    async fn run(
        &self,
        mut ctx: WorkflowContext<'_>,
        input: Json<Value>,
    ) -> Result<Json<Value>, HandlerError> {
        let key = ctx.key().to_owned();
        let (tenant, id) = tenant_of(&key)?;
        let id = id.to_owned();
        let mut flow = Flow::new(
            (self.clients)(tenant.clone(), "workflow:QuoteToCash"),
            key.clone(),
        );
        let input: Input = serde_json::from_value(input.into_inner())
            .map_err(|e| TerminalError::new_with_code(400, format!("QuoteToCash input: {e}")))?;
        let mut undo = Undo::default();
        let outcome = match self
            .forward(&mut flow, &mut ctx, (&tenant, &id), &input, &mut undo)
            .await
        {
            Ok(outcome) => outcome,
            Err(error) if is_cancellation(&error) => {
                // Cancelled: undo, then end as the engine's cancellation, so the instance's
                // status says cancelled rather than completed.
                compensate(&mut flow, &ctx, &id, &undo).await?;
                flow.publish(&ctx, "outcome", json!("cancelled"));
                return Err(error.into());
            }
            Err(error) => {
                flow.publish(&ctx, "problem", json!(problem_of(&error).detail));
                compensate(&mut flow, &ctx, &id, &undo).await?;
                "failed".to_owned()
            }
        };
        flow.publish(&ctx, "outcome", json!(outcome));
        Ok(Json(json!({"order_id": id, "outcome": outcome})))
    }

    /// Resolves the durable promise `name` (a task's decision, or another signal the flow
    /// waits for). A promise resolved before keeps its first value.
    #[handler]
    async fn signal(
        &self,
        ctx: SharedWorkflowContext<'_>,
        signal: Json<Value>,
    ) -> Result<(), HandlerError> {
        Signal::parse(signal)?.resolve(&ctx).await
    }

    /// What the flow published: its current step and, once over, its outcome.
    #[handler]
    async fn state(&self, ctx: SharedWorkflowContext<'_>) -> Result<Json<Value>, HandlerError> {
        published(&ctx).await
    }
}

impl QuoteToCash {
    /// Publishes `billing.invoice.issued` to the tenant's bus. The event's id is the order's
    /// (`invoice:<order>`), so a step run again after a crash publishes the same event, which
    /// consumers dedupe.
    async fn issue_invoice(
        &self,
        flow: &mut Flow,
        ctx: &WorkflowContext<'_>,
        tenant: &TenantId,
        id: &str,
        invoice: &Value,
    ) -> Result<(), TerminalError> {
        let mut event = Event::new(INVOICE_ISSUED, SOURCE, TOPIC, invoice.clone())
            .with_id(format!("invoice:{id}"))
            .with_key(id)
            .with_subject(id);
        event.time = invoice["issued_at"].as_str().unwrap_or_default().to_owned();
        let bus = self.settings.bus.clone();
        let message = json!({"topic": TOPIC, "messages": [{
            "key": id, "headers": event.headers(tenant), "payload": event.data}]});
        flow.step(ctx, "invoice", &bus, "publish", message).await?;
        Ok(())
    }

    /// The steps up to the cash; `Ok` with a non-completed outcome when a human or the bank
    /// said no (after compensating), `Err` when a step failed or the flow was cancelled.
    async fn forward(
        &self,
        flow: &mut Flow,
        ctx: &mut WorkflowContext<'_>,
        (tenant, id): (&TenantId, &str),
        input: &Input,
        undo: &mut Undo,
    ) -> Result<String, TerminalError> {
        // One journaled clock reading: every posting time derives from it, so a step run
        // again after a crash sends the very same journal.
        let started: String = ctx
            .run(|| async { Ok(switchyard_service_kit::clock::now()) })
            .name("clock")
            .await?;
        flow.publish(ctx, "step", json!("order"));
        let mut create = json!({"order_id": id, "customer": input.customer,
                                "warehouse": input.warehouse, "lines": input.lines});
        if let Some(bin) = &input.bin {
            create["bin"] = json!(bin);
        }
        let order = flow.step(ctx, "order", ORDERS, "create", create).await?;
        undo.order = true;
        let total = order["total"].as_str().unwrap_or("0").to_owned();
        let currency = order["currency"].as_str().unwrap_or("EUR").to_owned();
        flow.publish(ctx, "total", json!(total));

        // The tenant's threshold (its admin's config of workflow/restate) holds whatever the
        // launch says; the launch may only ask for approval more often.
        let described = flow.describe(ctx, "threshold", "workflow/restate").await?;
        let configured = described["config"]["values"]["quote_to_cash_approval_above"].as_str();
        let threshold = lowest(configured, input.approval_above.as_deref())?;
        if above(&total, threshold.as_deref())? {
            flow.publish(ctx, "step", json!("approval"));
            let task_id = format!("{id}.approval");
            undo.task = Some(task_id.clone());
            let decision = approval::ask(
                flow,
                ctx,
                "QuoteToCash",
                id,
                Request {
                    task_id,
                    title: format!("Approve sales order {id} of {total} {currency}"),
                    data: json!({"order_id": id, "customer": input.customer,
                                 "total": total, "currency": currency}),
                    sla: Duration::from_millis(input.approval_sla_ms),
                },
            )
            .await?;
            undo.task = None;
            flow.publish(ctx, "approval", decision.payload);
            if !decision.approved {
                compensate(flow, ctx, id, undo).await?;
                return Ok("rejected".into());
            }
        }

        flow.publish(ctx, "step", json!("authorize"));
        let amount = minor_units(&total)?;
        let authorized = flow
            .step(
                ctx,
                "authorize",
                PAYMENTS,
                "execute",
                json!({"operation": "authorize", "idempotency_key": flow.idempotency_key("authorize"),
                       "params": {"amount": amount, "currency": currency.to_lowercase(),
                                  "payment_method": input.payment_method, "reference": id}}),
            )
            .await;
        let payment = match authorized {
            Ok(payment) => payment["result"]["payment_id"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
            Err(error) if !is_cancellation(&error) && error.code() == 402 => {
                flow.publish(ctx, "problem", json!(problem_of(&error).detail));
                compensate(flow, ctx, id, undo).await?;
                return Ok("declined".into());
            }
            Err(error) => return Err(error),
        };
        undo.authorization = Some(payment.clone());
        flow.publish(ctx, "payment", json!(payment));

        flow.publish(ctx, "step", json!("confirm"));
        transition(
            flow,
            ctx,
            id,
            "confirm",
            &["confirmed", "fulfilling", "fulfilled"],
        )
        .await?;

        flow.publish(ctx, "step", json!("capture"));
        flow.step(
            ctx,
            "capture",
            PAYMENTS,
            "execute",
            json!({"operation": "capture", "idempotency_key": flow.idempotency_key("capture"),
                   "params": {"payment_id": payment}}),
        )
        .await?;
        undo.authorization = None;
        undo.captured = Some((payment.clone(), amount));

        flow.publish(ctx, "step", json!("fulfil"));
        transition(flow, ctx, id, "fulfil", &["fulfilled"]).await?;
        // Past fulfilment the stock is gone and the sale booked: the order is no longer
        // cancelled on a failure, only the cash is retried (its step never gives up).
        undo.order = false;
        undo.captured = None;

        flow.publish(ctx, "step", json!("cash"));
        book_cash(flow, ctx, id, &total, &currency, &started).await?;

        flow.publish(ctx, "step", json!("invoice"));
        let invoice = json!({"invoice_id": format!("INV-{id}"), "order_id": id,
                             "customer": input.customer, "currency": currency, "total": total,
                             "payment_id": payment, "journal_id": format!("q2c/{id}/cash"),
                             "issued_at": started});
        self.issue_invoice(flow, ctx, tenant, id, &invoice).await?;
        flow.publish(ctx, "invoice", invoice);
        flow.publish(ctx, "step", json!("done"));
        Ok("completed".into())
    }
}

/// Moves the order with `action`; a conflict because an earlier run of this very step already
/// moved it (a crash between the move and its journal entry) is success.
async fn transition(
    flow: &mut Flow,
    ctx: &WorkflowContext<'_>,
    id: &str,
    action: &'static str,
    already: &[&str],
) -> Result<(), TerminalError> {
    let moved = flow
        .step(ctx, action, ORDERS, action, json!({"order_id": id}))
        .await;
    match moved {
        Ok(_) => Ok(()),
        Err(error) if error.code() == 409 && !is_cancellation(&error) => {
            let order = flow
                .step(
                    ctx,
                    &format!("{action}:check"),
                    ORDERS,
                    "get",
                    json!({"order_id": id}),
                )
                .await?;
            let status = order["status"].as_str().unwrap_or_default();
            if already.contains(&status) {
                Ok(())
            } else {
                Err(error)
            }
        }
        Err(error) => Err(error),
    }
}

/// Cancels the order until its stock is back. The orders service answers a cancel whose
/// release failed (the stock's stream busy) with that release step failed, and releases the
/// rest when cancelled again; so the cancel is repeated, after a durable pause, until no
/// release is left failed.
async fn cancel_order(
    flow: &mut Flow,
    ctx: &WorkflowContext<'_>,
    id: &str,
) -> Result<(), TerminalError> {
    for round in 0..20_u64 {
        let name = if round == 0 {
            "cancel".to_owned()
        } else {
            format!("cancel:{round}")
        };
        let order = match flow
            .step(ctx, &name, ORDERS, "cancel", json!({"order_id": id}))
            .await
        {
            Ok(order) => order,
            // Cancelled by an earlier run of this step, its releases done (else the cancel
            // would have gone on releasing): read it to be sure.
            Err(error) if error.code() == 409 && !is_cancellation(&error) => {
                let order = flow
                    .step(
                        ctx,
                        &format!("{name}:check"),
                        ORDERS,
                        "get",
                        json!({"order_id": id}),
                    )
                    .await?;
                if order["status"] != "cancelled" {
                    return Err(error);
                }
                order
            }
            Err(error) => return Err(error),
        };
        let unreleased = order["steps"].as_array().is_some_and(|steps| {
            steps.iter().any(|step| {
                step["name"]
                    .as_str()
                    .is_some_and(|n| n.starts_with("release:"))
                    && step["status"] == "failed"
            })
        });
        if !unreleased {
            return Ok(());
        }
        ctx.sleep(Duration::from_millis(100 * (round + 1))).await?;
    }
    Err(TerminalError::new_with_code(
        409,
        format!("order {id}: its stock could not be released; cancel it again"),
    ))
}

/// Cash received against the receivable: journal `q2c/<order>/cash`, whose id makes a second
/// posting of the same content a replay.
async fn book_cash(
    flow: &mut Flow,
    ctx: &WorkflowContext<'_>,
    id: &str,
    total: &str,
    currency: &str,
    at: &str,
) -> Result<(), TerminalError> {
    let cash = format!("{CASH}-{currency}");
    flow.ensure_account(
        ctx,
        (&cash, &format!("Cash ({currency})"), "asset"),
        currency,
    )
    .await?;
    flow.step(
        ctx,
        "cash",
        LEDGER,
        "post_journal",
        json!({"journal_id": format!("q2c/{id}/cash"), "posting_time": at,
        "memo": format!("payment of sales order {id}"),
        "lines": [
            {"account": format!("{CASH}-{currency}"), "debit": total, "currency": currency},
            {"account": format!("{RECEIVABLE}-{currency}"), "credit": total, "currency": currency},
        ]}),
    )
    .await?;
    Ok(())
}

/// Undoes what `undo` holds, newest first. Each undo is a step like any other, retried until
/// it goes through: a compensation that gave up would leave money or stock behind.
async fn compensate(
    flow: &mut Flow,
    ctx: &WorkflowContext<'_>,
    id: &str,
    undo: &Undo,
) -> Result<(), TerminalError> {
    let mut done = Vec::new();
    if let Some((payment, amount)) = &undo.captured {
        flow.step(
            ctx,
            "undo:refund",
            PAYMENTS,
            "execute",
            json!({"operation": "refund", "idempotency_key": flow.idempotency_key("undo:refund"),
                   "params": {"payment_id": payment, "amount": amount}}),
        )
        .await?;
        done.push("refunded");
    }
    if let Some(payment) = &undo.authorization {
        flow.step(
            ctx,
            "undo:void",
            PAYMENTS,
            "execute",
            json!({"operation": "void", "idempotency_key": flow.idempotency_key("undo:void"),
                   "params": {"payment_id": payment}}),
        )
        .await?;
        done.push("voided");
    }
    if let Some(task) = &undo.task {
        // A task that was never created, or was decided meanwhile, has nothing to cancel.
        let cancelled = flow
            .step(
                ctx,
                "undo:task",
                approval::TASKS,
                "cancel",
                json!({"task_id": task}),
            )
            .await;
        match cancelled {
            Ok(_) => done.push("task cancelled"),
            Err(error) if matches!(error.code(), 404 | 409) => {}
            Err(error) => return Err(error),
        }
    }
    if undo.order {
        // An order past confirmation (fulfilment begun) cannot be cancelled: it is left as
        // it is, said in the state, for a human to finish or return.
        match cancel_order(flow, ctx, id).await {
            Ok(()) => done.push("order cancelled"),
            Err(error) if error.code() == 409 && !is_cancellation(&error) => {
                done.push("order left for a human");
            }
            Err(error) => return Err(error),
        }
    }
    flow.publish(ctx, "compensated", json!(done));
    Ok(())
}

/// Whether `total` is above the approval threshold (none: never).
fn above(total: &str, threshold: Option<&str>) -> Result<bool, TerminalError> {
    let Some(threshold) = threshold else {
        return Ok(false);
    };
    Ok(money(total, Sign::Any, "/total")? > money(threshold, Sign::Any, "/approval_above")?)
}

/// The lower of two thresholds (either may be absent).
fn lowest(a: Option<&str>, b: Option<&str>) -> Result<Option<String>, TerminalError> {
    let threshold = |raw: &str| money(raw, Sign::NonNegative, "/approval_above");
    Ok(match (a, b) {
        (Some(a), Some(b)) => Some(if threshold(a)? <= threshold(b)? { a } else { b }.to_owned()),
        (one, other) => one.or(other).map(str::to_owned),
    })
}

/// An amount in the currency's minor unit (cents), as card networks take it.
fn minor_units(total: &str) -> Result<i64, TerminalError> {
    let amount = money(total, Sign::Any, "/total")?;
    let per_minor = 10_i64.pow(Money::SCALE - 2);
    if amount.units() % per_minor != 0 {
        return Err(TerminalError::new_with_code(
            400,
            format!("total {total} has fractions of a cent"),
        ));
    }
    Ok(amount.units() / per_minor)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thresholds_and_minor_units() {
        assert!(above("1000.01", Some("1000")).unwrap());
        assert!(!above("1000.00", Some("1000")).unwrap());
        assert!(!above("5", None).unwrap());
        assert_eq!(
            lowest(Some("100"), Some("99.5")).unwrap().as_deref(),
            Some("99.5")
        );
        assert_eq!(lowest(Some("100"), None).unwrap().as_deref(), Some("100"));
        assert_eq!(lowest(None, None).unwrap(), None);
        assert_eq!(minor_units("12.34").unwrap(), 1234);
        assert!(minor_units("0.001").is_err());
    }
}
