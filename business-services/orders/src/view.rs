//! The order as `get` (and every action) answers it: head, lines and steps.

use serde_json::{Value, json};
use switchyard_contracts::{ErrorCode, Problem};

use crate::Orders;
use crate::db::{amount, integer, optional_text, text};

impl Orders<'_> {
    /// The order as `get` answers it; `replayed` is set by `create` only.
    pub async fn view(&self, order_id: &str, replayed: Option<bool>) -> Result<Value, Problem> {
        let rows = self
            .db
            .query(
                self.client,
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
            "total": amount(&text(row, "total")?)?.to_string(),
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
                self.client,
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
            .step_rows(order_id)
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
