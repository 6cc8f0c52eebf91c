//! Creating an order: validate it, reserve its stock through `services/inventory` (giving back
//! what was reserved when a later line fails: compensation), then record the order, its lines,
//! its steps and `orders.order.created` in ONE db transaction, and finally trigger the
//! tenant's webhook (a failure is a failed `webhook` step; the order stays). The same
//! `order_id` with the same content answers the stored order (`replayed: true`) without
//! reserving again; other content is a `conflict`.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use switchyard_client::ProviderClient;
use switchyard_contracts::{ErrorCode, Event, FieldError, Problem};
use switchyard_service_kit::{Money, Quantity, Sign, clock};

use crate::db::{Head, broken};
use crate::ids::reference;
use crate::status::Status;
use crate::steps::StepState;
use crate::{DEFAULT_BIN, INVENTORY, ORDER_CREATED, Orders, SOURCE, TOPIC, WEBHOOK};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateParams {
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

impl Orders<'_> {
    pub async fn create(&self, p: CreateParams) -> Result<Value, Problem> {
        let bin = p.bin.clone().unwrap_or_else(|| DEFAULT_BIN.into());
        let (currency, total) = validate(&p)?;
        let content = json!({
            "customer": p.customer, "warehouse": p.warehouse, "bin": bin, "lines": p.lines,
        })
        .to_string();
        if let Some(head) = self.head(&p.order_id).await? {
            return self.replay(head, &content).await;
        }
        // Which customers exist is the books' state, not the schema: 422, not 400 (ADR 23).
        if !self.knows_customer(&p.customer).await? {
            return Err(Problem::new(
                ErrorCode::ParamsUnprocessable,
                format!(
                    "order {} not created: no customer {:?} (define_customer records one)",
                    p.order_id, p.customer
                ),
            )
            .with_errors(vec![field("/params/customer", "unknown customer")]));
        }

        // Reserve every line; on a refusal give back what was reserved so far. Each request
        // has an id, so a creation retried after a crash reserves nothing twice.
        let reference = reference(&p.order_id);
        let attempt = format!("{reference}/a{}", self.failed_attempts(&p.order_id).await?);
        let mut reserved: Vec<(usize, &LineIn)> = Vec::new();
        for (n, line) in p.lines.iter().enumerate() {
            let asked = self
                .client
                .invoke(
                    INVENTORY,
                    "reserve",
                    json!({"item": line.item, "warehouse": p.warehouse, "bin": bin,
                           "quantity": line.quantity, "reference": reference,
                           "request_id": format!("{attempt}/reserve:{n}")}),
                )
                .await;
            if let Err(problem) = asked {
                // Counted before the releases: a crash between the two leaves stock reserved
                // (found by its reference), never a later attempt answered a released one.
                if !reserved.is_empty() {
                    self.count_failed_attempt(&p.order_id).await?;
                }
                let place = (p.warehouse.as_str(), bin.as_str());
                release_all(self.client, place, &reference, &attempt, &reserved).await;
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
                    Problem::new(problem.code, detail).with_retryable(problem.retryable)
                });
            }
            reserved.push((n, line));
        }

        // Record the order, its lines, its steps and its event together.
        let now = clock::now();
        let payload = json!({
            "order_id": p.order_id, "customer": p.customer, "warehouse": p.warehouse,
            "bin": bin, "currency": currency, "total": total.to_string(), "lines": p.lines,
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
                json!(total.to_string()),
                json!(Status::Created),
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
        statements.push(self.step_statement(
            &p.order_id,
            "reserve",
            StepState::Ok,
            None,
            None,
            &now,
        ));
        if self.webhook.is_some() {
            statements.push(self.step_statement(
                &p.order_id,
                "webhook",
                StepState::Pending,
                None,
                None,
                &now,
            ));
        }
        if let Some(outbox) = self.outbox {
            let event = Event::new(ORDER_CREATED, SOURCE, TOPIC, payload.clone())
                .with_key(p.order_id.clone())
                .with_subject(p.order_id.clone())
                .with_idempotency_key(format!("{}:created", reference));
            statements.push(outbox.statement(self.client.tenant(), &event));
        }
        if let Err(problem) = self.db.transaction(self.client, statements).await {
            // A concurrent create of the same id may have won the race: its reservations
            // are the ones the request ids answered here, so they stay; answer its order.
            if let Some(head) = self.head(&p.order_id).await? {
                return self.replay(head, &content).await;
            }
            // Nothing was recorded: give the stock back.
            self.count_failed_attempt(&p.order_id).await?;
            let place = (p.warehouse.as_str(), bin.as_str());
            release_all(self.client, place, &reference, &attempt, &reserved).await;
            return Err(problem);
        }
        self.notify(&p.order_id, payload).await?;
        self.view(&p.order_id, Some(false)).await
    }

    /// An order created before: the same one again, or a conflict.
    async fn replay(&self, head: Head, content: &str) -> Result<Value, Problem> {
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
        let steps = self.steps(&head.order_id).await?;
        if steps
            .get("webhook")
            .is_some_and(|s| s.state == StepState::Pending)
        {
            let content: Value = serde_json::from_str(&head.content)
                .map_err(|e| broken(&format!("unreadable order content: {e}")))?;
            let payload = json!({
                "order_id": head.order_id, "customer": head.customer, "warehouse": head.warehouse,
                "bin": head.bin, "currency": head.currency, "total": head.total.to_string(),
                "lines": content["lines"],
            });
            self.notify(&head.order_id, payload).await?;
        }
        self.view(&head.order_id, Some(true)).await
    }

    /// Triggers the configured webhook and records the outcome as the `webhook` step.
    async fn notify(&self, order_id: &str, payload: Value) -> Result<(), Problem> {
        let Some(endpoint) = self.webhook else {
            return Ok(());
        };
        let answer = self
            .client
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
                    (StepState::Ok, None, message)
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
                    (
                        StepState::Failed,
                        Some(format!("dead-lettered: {why}")),
                        message,
                    )
                }
            }
            Err(problem) => (StepState::Failed, Some(problem.detail), None),
        };
        self.record(order_id, "webhook", state, error, detail).await
    }
}

/// Checks what the schema cannot: a named customer, positive quantities, one currency, a total
/// money can hold. Answers the currency and the total: the sum of the lines' values, each
/// quantity × unit price rounded once by the kit's rule ([`Money::of`]), then added exactly.
fn validate(p: &CreateParams) -> Result<(String, Money), Problem> {
    let invalid = |detail: String| Problem::new(ErrorCode::ParamsInvalid, detail);
    if p.customer.trim().is_empty() {
        return Err(invalid("the customer must not be blank".into()));
    }
    let Some(first) = p.lines.first() else {
        return Err(invalid("an order has at least one line".into()));
    };
    let mut total = Money::ZERO;
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
        let pointer = |field: &str| format!("/params/lines/{n}/{field}");
        let quantity = Quantity::parse(&line.quantity, Sign::Positive, &pointer("quantity"))?;
        let price = Money::parse(&line.unit_price, Sign::NonNegative, &pointer("unit_price"))?;
        // The schema admits each figure; their product or sum beyond money's range is a rule
        // across fields: 422 (ADR 23).
        total = Money::of(quantity, price)
            .and_then(|value| total.checked_add(value))
            .ok_or_else(|| {
                Problem::new(
                    ErrorCode::ParamsUnprocessable,
                    format!("line {}: the order total is out of range", n + 1),
                )
            })?;
    }
    Ok((first.currency.clone(), total))
}

/// Gives back what a failed create had reserved. A release refused as retryable (the
/// stock's stream busy) is sent again a few times, with the same request id; one that still
/// fails leaves stock reserved under the order's reference for an operator to release.
async fn release_all(
    client: &dyn ProviderClient,
    (warehouse, bin): (&str, &str),
    reference: &str,
    attempt: &str,
    lines: &[(usize, &LineIn)],
) {
    for (n, line) in lines {
        let params = json!({"item": line.item, "warehouse": warehouse, "bin": bin,
                            "quantity": line.quantity, "reference": reference,
                            "request_id": format!("{attempt}/release:{n}")});
        for pause in [0, 20, 50, 100, 200, 400] {
            tokio::time::sleep(std::time::Duration::from_millis(pause)).await;
            match client.invoke(INVENTORY, "release", params.clone()).await {
                Err(problem) if problem.retryable => continue,
                _ => break,
            }
        }
    }
}

impl Orders<'_> {
    /// How many creations of `order_id` failed after reserving (see `ord_attempt`).
    async fn failed_attempts(&self, order_id: &str) -> Result<i64, Problem> {
        let rows = self
            .db
            .query(
                self.client,
                "SELECT failed FROM ord_attempt WHERE order_id = ?1",
                vec![json!(order_id)],
            )
            .await?;
        Ok(rows
            .first()
            .map(|row| crate::db::integer(row, "failed"))
            .transpose()?
            .unwrap_or(0))
    }

    async fn count_failed_attempt(&self, order_id: &str) -> Result<(), Problem> {
        self.db
            .execute(
                self.client,
                "INSERT INTO ord_attempt (order_id, failed) VALUES (?1, 1) \
                 ON CONFLICT (order_id) DO UPDATE SET failed = ord_attempt.failed + 1",
                vec![json!(order_id)],
            )
            .await?;
        Ok(())
    }
}

fn field(pointer: &str, detail: &str) -> FieldError {
    FieldError {
        pointer: pointer.into(),
        detail: detail.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn order(customer: &str, lines: &[(&str, &str, &str)]) -> CreateParams {
        CreateParams {
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
        }
    }

    #[test]
    fn validation_refuses_blank_customers_zero_quantities_and_mixed_currencies() {
        let (currency, total) =
            validate(&order("acme", &[("2", "10.5", "USD"), ("1.5", "2", "USD")])).unwrap();
        assert_eq!(
            (currency.as_str(), total.to_string().as_str()),
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

    #[test]
    fn each_line_is_valued_once_half_away_from_zero_and_the_lines_add_exactly() {
        // Half a unit at 0.0001 is worth 0.00005: each line rounds to 0.0001, and the total
        // is their sum, not one rounding of the exact 0.0001 the two products add up to.
        let halves = order(
            "acme",
            &[("0.5", "0.0001", "USD"), ("0.5", "0.0001", "USD")],
        );
        assert_eq!(validate(&halves).unwrap().1.to_string(), "0.0002");
        let third = order("acme", &[("0.333333", "1", "USD")]);
        assert_eq!(validate(&third).unwrap().1.to_string(), "0.3333");
    }

    #[test]
    fn a_total_beyond_money_s_range_is_unprocessable_though_each_figure_fits_the_schema() {
        let huge = order("acme", &[("999999999999", "99999999999999", "USD")]);
        assert_eq!(
            validate(&huge).unwrap_err().code,
            ErrorCode::ParamsUnprocessable
        );
    }
}
