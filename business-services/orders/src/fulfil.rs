//! Fulfilment: issue the reserved stock line by line at the cost the inventory reports, then
//! post the sale (receivable/revenue for the total, COGS/inventory for the cost) to the
//! ledger. The journal a return posts is the same pair swapped ([`sale_lines`]).

use std::collections::HashMap;

use serde_json::{Value, json};
use switchyard_contracts::{ErrorCode, Problem};
use switchyard_service_kit::Money;

use crate::db::{Head, add, amount};
use crate::ids::{journal_id, reference};
use crate::status::Move;
use crate::steps::Step;
use crate::{COGS, INVENTORY, INVENTORY_ASSET, LEDGER, Orders, RECEIVABLE, REVENUE};

/// Which way a journal moves the sale.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    Sale,
    Return,
}

impl Direction {
    /// The step that posts the journal.
    fn step(self) -> &'static str {
        match self {
            Direction::Sale => "post_ledger",
            Direction::Return => "post_return",
        }
    }

    /// The ledger journal: `so/<order>` for the sale, `so/<order>/return` for its return.
    fn journal(self, order_id: &str) -> String {
        match self {
            Direction::Sale => journal_id(order_id),
            Direction::Return => format!("{}/return", journal_id(order_id)),
        }
    }

    /// What the memo says the order was, and the move that completes the saga.
    fn completion(self) -> (&'static str, Move) {
        match self {
            Direction::Sale => ("fulfilled", Move::Complete),
            Direction::Return => ("returned", Move::CompleteReturn),
        }
    }
}

impl Orders<'_> {
    /// Issues the reserved stock line by line, then posts the sale and its cost; a failed
    /// step leaves the order `fulfilling`, and fulfil again resumes it.
    pub async fn fulfil(&self, order_id: &str) -> Result<Value, Problem> {
        let head = self.start_or_resume(order_id, Move::Fulfil).await?;
        let steps = self.steps(order_id).await?;
        let reference = reference(order_id);
        let mut cost = Money::ZERO;
        for line in self.lines(order_id).await? {
            let name = format!("issue:{}", line.line);
            if let Some(step) = steps.get(&name).filter(|s| s.is_ok()) {
                cost = add(cost, amount(step.detail.as_deref().unwrap_or("0"))?)?;
                continue;
            }
            let issued = self
                .client
                .invoke(
                    INVENTORY,
                    "issue",
                    json!({"item": line.item, "warehouse": head.warehouse, "bin": head.bin,
                           "quantity": line.quantity, "from_reserved": true,
                           "reference": reference,
                           "request_id": format!("{reference}/issue:{}", line.line)}),
                )
                .await
                .and_then(|moved| {
                    amount(moved["cost"].as_str().unwrap_or("0")).map(|c| Money(c.units().abs()))
                });
            let detail = issued.as_ref().ok().map(Money::to_string);
            cost = add(cost, self.settle(order_id, &name, issued, detail).await?)?;
        }
        self.book(&head, &steps, cost, Direction::Sale).await
    }

    /// Posts the journal that books `cost` and the order's total in `direction` (once: its
    /// step fixes its posting time before the first attempt), then completes the saga with
    /// the event that says so.
    pub async fn book(
        &self,
        head: &Head,
        steps: &HashMap<String, Step>,
        cost: Money,
        direction: Direction,
    ) -> Result<Value, Problem> {
        let order_id = &head.order_id;
        let step = direction.step();
        let posting_time = self.posting_time(order_id, step, steps).await?;
        let journal = direction.journal(order_id);
        let (done, complete) = direction.completion();
        let memo = format!("sales order {order_id} {done}");
        let lines = sale_lines(head, cost, direction);
        let posted = self.post(head, &journal, &memo, lines, &posting_time).await;
        self.settle(order_id, step, posted, Some(posting_time))
            .await?;
        let data = json!({"currency": head.currency, "total": head.total.to_string(),
                          "cost": cost.to_string(), "journal_id": journal});
        self.transition(order_id, complete, data).await?;
        self.view(order_id, None).await
    }

    /// Posts `lines` as journal `journal_id`, creating the order currency's four accounts on
    /// first use. No lines (a free order of stock without cost) posts nothing.
    pub async fn post(
        &self,
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
            let created = self
                .client
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
        self.client
            .invoke(
                LEDGER,
                "post_journal",
                json!({"journal_id": journal_id, "posting_time": posting_time, "memo": memo,
                       "external_ref": head.order_id, "lines": lines}),
            )
            .await
            .map(drop)
    }
}

/// Receivable/revenue for the order's total and COGS/inventory for `cost`, each pair swapped
/// for a return. A zero amount posts no pair.
fn sale_lines(head: &Head, cost: Money, direction: Direction) -> Vec<Value> {
    let c = &head.currency;
    let mut lines = Vec::new();
    for (debit, credit, amount) in [
        (RECEIVABLE, REVENUE, head.total),
        (COGS, INVENTORY_ASSET, cost),
    ] {
        if amount <= Money::ZERO {
            continue;
        }
        let (debit, credit) = match direction {
            Direction::Sale => (debit, credit),
            Direction::Return => (credit, debit),
        };
        lines.push(
            json!({"account": format!("{debit}-{c}"), "debit": amount.to_string(), "currency": c}),
        );
        lines.push(
            json!({"account": format!("{credit}-{c}"), "credit": amount.to_string(), "currency": c}),
        );
    }
    lines
}
