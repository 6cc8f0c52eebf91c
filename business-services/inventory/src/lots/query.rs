//! `lot`: one lot with its stock per bin.

use serde::Deserialize;
use serde_json::{Value, json};
use switchyard_contracts::Problem;
use switchyard_service_kit::Quantity;

use crate::{Inventory, master};

impl Inventory<'_> {
    /// One lot with its stock per bin.
    pub async fn lot(&self, p: LotQuery) -> Result<Value, Problem> {
        let info = self
            .lots(&[p.lot.as_str()])
            .await?
            .remove(&p.lot)
            .ok_or_else(|| master::not_found(format!("no lot {}", p.lot)))?;
        let rows = self
            .db
            .query(
                self.client,
                "SELECT warehouse, bin, on_hand, reserved FROM stock_bin
                 WHERE lot = ?1 AND item = ?2 ORDER BY warehouse, bin",
                vec![json!(info.lot), json!(info.item)],
            )
            .await?;
        let mut on_hand = 0;
        let mut stock = Vec::new();
        for row in &rows {
            let here = crate::db::int(row, "on_hand")?;
            let reserved = crate::db::int(row, "reserved")?;
            on_hand += i128::from(here);
            stock.push(json!({
                "warehouse": crate::db::text(row, "warehouse")?,
                "bin": crate::db::text(row, "bin")?,
                "on_hand": Quantity(here).to_string(),
                "reserved": Quantity(reserved).to_string(),
                "available": Quantity(here - reserved).to_string(),
            }));
        }
        let mut lot = crate::stock::lot_json(&info);
        lot.insert("on_hand".into(), json!(Quantity::format_sum(on_hand)));
        lot.insert("stock".into(), Value::Array(stock));
        Ok(Value::Object(lot))
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LotQuery {
    lot: String,
}
