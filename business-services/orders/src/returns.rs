//! Returns: a fulfilled order taken back whole. Each line's stock comes back into the bin it
//! left worth exactly the value its issue removed ([`crate::restock`]), and the sale's opposite
//! journal is posted, so a sale and its return net inventory and COGS to zero.

use serde_json::{Value, json};
use switchyard_contracts::Problem;
use switchyard_service_kit::Money;

use crate::db::{add, amount, broken, quantity};
use crate::fulfil::Direction;
use crate::ids::reference;
use crate::status::Move;
use crate::{INVENTORY, Orders, restock};

impl Orders<'_> {
    /// Takes a fulfilled order back whole: receives each line's stock into the bin it left,
    /// worth exactly the value its issue removed (in two receipts when no single four-place
    /// unit cost gives that value, see [`restock`]), then posts the sale's opposite
    /// (receivable/revenue for the total, inventory/COGS for the value received back). Steps
    /// already `ok` are not repeated, so return again resumes a return stopped by a failed step.
    pub async fn return_order(&self, order_id: &str) -> Result<Value, Problem> {
        let head = self.start_or_resume(order_id, Move::Return).await?;
        let steps = self.steps(order_id).await?;
        let reference = reference(order_id);
        let mut value = Money::ZERO;
        for line in self.lines(order_id).await? {
            let returned = quantity(&line.quantity)?;
            let issued = steps
                .get(&format!("issue:{}", line.line))
                .and_then(|s| s.detail.as_deref())
                .map(amount)
                .transpose()?
                .unwrap_or(Money::ZERO);
            // The issued value itself comes back, not the quantity at a rounded unit cost, so
            // inventory and COGS net to zero.
            value = add(value, issued)?;
            let parts = restock::parts(returned, issued).ok_or_else(|| {
                broken(&format!(
                    "line {} issued {} worth {issued}, which the inventory cannot take back",
                    line.line, line.quantity
                ))
            })?;
            for (index, part) in parts.into_iter().enumerate() {
                let name = restock_step(line.line, index);
                if steps.get(&name).is_some_and(|s| s.is_ok()) {
                    continue;
                }
                let received = self
                    .client
                    .invoke(
                        INVENTORY,
                        "receive",
                        json!({"item": line.item, "warehouse": head.warehouse, "bin": head.bin,
                               "quantity": part.quantity.to_string(),
                               "unit_cost": part.unit_cost.to_string(), "reference": reference}),
                    )
                    .await;
                let detail = received
                    .as_ref()
                    .ok()
                    .and_then(|moved| moved["value"].as_str())
                    .map(str::to_owned);
                self.settle(order_id, &name, received, detail).await?;
            }
        }
        self.book(&head, &steps, value, Direction::Return).await
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
