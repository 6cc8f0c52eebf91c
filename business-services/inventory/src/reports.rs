//! Reads: the stock snapshot, valuation, expiring lots, waste analysis and the event stream.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::{Value, json};
use switchyard_contracts::{ErrorCode, Problem};
use switchyard_service_kit::{Money, Quantity, clock, money};

use crate::Inventory;
use crate::db::{self, Row};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StockQuery {
    item: Option<String>,
    warehouse: Option<String>,
    bin: Option<String>,
    lot: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ValuationQuery {
    item: Option<String>,
    warehouse: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExpiringQuery {
    until: String,
    warehouse: Option<String>,
}

#[derive(Deserialize, Clone, Copy)]
#[serde(rename_all = "snake_case")]
pub enum WasteBy {
    Lot,
    Job,
    Operator,
    Equipment,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WasteQuery {
    by: WasteBy,
    from: Option<String>,
    to: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventsQuery {
    stream: Option<String>,
    #[serde(default)]
    after: i64,
    limit: Option<i64>,
}

/// `WHERE` terms for the filters that are set, numbered from `?1`.
fn filters(terms: &[(&str, &Option<String>)]) -> (String, Vec<Value>) {
    let mut sql = Vec::new();
    let mut params = Vec::new();
    for (column, value) in terms {
        if let Some(value) = value {
            params.push(json!(value));
            sql.push(format!("{column} = ?{}", params.len()));
        }
    }
    (sql.join(" AND "), params)
}

fn and(condition: &str, more: &str) -> String {
    match (condition.is_empty(), more.is_empty()) {
        (true, _) => more.to_owned(),
        (_, true) => condition.to_owned(),
        _ => format!("{condition} AND {more}"),
    }
}

/// A period `[from, to)` over a time column, from `?first` on.
fn period(
    column: &str,
    from: &Option<String>,
    to: &Option<String>,
    first: usize,
) -> Result<(String, Vec<Value>), Problem> {
    let mut sql = Vec::new();
    let mut params = Vec::new();
    if let Some(from) = from {
        params.push(json!(clock::normalize(from, "/from")?));
        sql.push(format!("{column} >= ?{}", first + params.len() - 1));
    }
    if let Some(to) = to {
        params.push(json!(clock::normalize(to, "/to")?));
        sql.push(format!("{column} < ?{}", first + params.len() - 1));
    }
    Ok((sql.join(" AND "), params))
}

impl Inventory<'_> {
    pub async fn stock(&self, p: StockQuery) -> Result<Value, Problem> {
        let (filter, params) = filters(&[
            ("item", &p.item),
            ("warehouse", &p.warehouse),
            ("bin", &p.bin),
            ("lot", &p.lot),
        ]);
        let sql = format!(
            "SELECT item, warehouse, bin, lot, on_hand, reserved FROM stock_bin
             WHERE {} ORDER BY item, warehouse, bin, lot",
            and(&filter, "(on_hand <> 0 OR reserved <> 0)")
        );
        let found = self.db.query_capped(self.client, &sql, params).await?;
        let rows = found
            .rows
            .iter()
            .map(|row| {
                let on_hand = db::int(row, "on_hand")?;
                let reserved = db::int(row, "reserved")?;
                let mut out = json!({
                    "item": db::text(row, "item")?, "warehouse": db::text(row, "warehouse")?,
                    "bin": db::text(row, "bin")?,
                    "on_hand": Quantity(on_hand).to_string(), "reserved": Quantity(reserved).to_string(),
                    "available": Quantity(on_hand - reserved).to_string(),
                });
                let lot = db::text(row, "lot")?;
                if !lot.is_empty() {
                    out["lot"] = json!(lot);
                }
                Ok(out)
            })
            .collect::<Result<Vec<_>, Problem>>()?;
        Ok(json!({"rows": rows, "truncated": found.truncated}))
    }

    pub async fn valuation(&self, p: ValuationQuery) -> Result<Value, Problem> {
        let (filter, params) = filters(&[("item", &p.item), ("warehouse", &p.warehouse)]);
        let sql = format!(
            "SELECT item, warehouse, on_hand, value FROM stock_value
             WHERE {} ORDER BY item, warehouse",
            and(&filter, "(on_hand <> 0 OR value <> 0)")
        );
        let found = self.db.query_capped(self.client, &sql, params).await?;
        let rows = found
            .rows
            .iter()
            .map(|row| {
                let on_hand = db::int(row, "on_hand")?;
                let value = db::int(row, "value")?;
                // No stock has no average: 0. One beyond what is kept cannot come from
                // receipts at published unit costs.
                let average = match on_hand {
                    0 => Money::ZERO,
                    _ => Money(value).per(Quantity(on_hand)).ok_or_else(|| {
                        Problem::new(ErrorCode::Internal, "an average cost beyond what is kept")
                    })?,
                };
                Ok(json!({
                    "item": db::text(row, "item")?, "warehouse": db::text(row, "warehouse")?,
                    "on_hand": Quantity(on_hand).to_string(), "value": Money(value).to_string(),
                    "average_cost": average.to_string(),
                }))
            })
            .collect::<Result<Vec<_>, Problem>>()?;
        Ok(json!({"rows": rows, "truncated": found.truncated}))
    }

    /// Lots expiring on or before `until` (expired ones included) that still have stock.
    pub async fn expiring_lots(&self, p: ExpiringQuery) -> Result<Value, Problem> {
        let until = clock::date(&p.until, "/until")?;
        let mut params = vec![json!(until)];
        let mut sql =
            "SELECT l.lot, l.item, l.expires_on, s.warehouse, s.bin, s.on_hand, s.reserved
             FROM inv_lot l JOIN stock_bin s ON s.lot = l.lot AND s.item = l.item
             WHERE l.expires_on IS NOT NULL AND l.expires_on <= ?1 AND s.on_hand > 0"
                .to_owned();
        if let Some(warehouse) = &p.warehouse {
            params.push(json!(warehouse));
            sql.push_str(" AND s.warehouse = ?2");
        }
        sql.push_str(" ORDER BY l.expires_on, l.lot, s.warehouse, s.bin");
        let found = self.db.query_capped(self.client, &sql, params).await?;
        let lots = found
            .rows
            .iter()
            .map(|row| {
                let on_hand = db::int(row, "on_hand")?;
                let reserved = db::int(row, "reserved")?;
                Ok(json!({
                    "lot": db::text(row, "lot")?, "item": db::text(row, "item")?,
                    "expires_on": db::text(row, "expires_on")?,
                    "warehouse": db::text(row, "warehouse")?, "bin": db::text(row, "bin")?,
                    "on_hand": Quantity(on_hand).to_string(),
                    "available": Quantity(on_hand - reserved).to_string(),
                }))
            })
            .collect::<Result<Vec<_>, Problem>>()?;
        Ok(json!({"lots": lots, "truncated": found.truncated}))
    }

    /// Waste per lot, job, operator or equipment in a period, against what the same key
    /// consumed in production: `waste_percent` = wasted / (wasted + consumed).
    pub async fn waste_analysis(&self, p: WasteQuery) -> Result<Value, Problem> {
        let (waste_key, use_key) = match p.by {
            WasteBy::Lot => ("w.lot", "e.lot"),
            WasteBy::Job => ("w.job", "t.job"),
            WasteBy::Operator => ("w.operator", "t.operator"),
            WasteBy::Equipment => ("w.equipment", "t.equipment"),
        };
        let (when, params) = period("w.occurred_at", &p.from, &p.to, 1)?;
        let wasted = self
            .db
            .query(
                self.client,
                &format!(
                    "SELECT {waste_key} AS k, CAST(SUM(w.quantity) AS BIGINT) AS wasted,
                        COUNT(*) AS events
                     FROM inv_waste w {} GROUP BY {waste_key}",
                    if when.is_empty() {
                        String::new()
                    } else {
                        format!("WHERE {when}")
                    }
                ),
                params,
            )
            .await?;
        let (when, params) = period("t.occurred_at", &p.from, &p.to, 1)?;
        let used = self
            .db
            .query(
                self.client,
                &format!(
                    "SELECT {use_key} AS k, CAST(SUM(e.quantity) AS BIGINT) AS consumed
                     FROM inv_transformation t
                     JOIN lot_edge e ON e.transformation_id = t.id AND e.direction = 'in'
                     WHERE {} GROUP BY {use_key}",
                    and("t.kind = 'production'", &when)
                ),
                params,
            )
            .await?;
        let key = |row: &Row| db::opt_text(row, "k");
        let mut totals: BTreeMap<Option<String>, (i64, i64, i64)> = BTreeMap::new();
        for row in &wasted {
            let entry = totals.entry(key(row)).or_default();
            entry.0 = db::int(row, "wasted")?;
            entry.2 = db::int(row, "events")?;
        }
        for row in &used {
            totals.entry(key(row)).or_default().1 = db::int(row, "consumed")?;
        }
        let mut rows: Vec<(i128, Value)> = totals
            .into_iter()
            .map(|(key, (wasted, consumed, events))| {
                let basis = i128::from(wasted) + i128::from(consumed);
                let hundredths = if basis == 0 {
                    0
                } else {
                    money::round_div(i128::from(wasted) * 10_000, basis)
                };
                let percent = format!("{}.{:02}", hundredths / 100, hundredths % 100);
                (
                    hundredths,
                    json!({
                        "key": key, "wasted": Quantity(wasted).to_string(),
                        "consumed": Quantity(consumed).to_string(), "events": events,
                        "waste_percent": percent,
                    }),
                )
            })
            .collect();
        // Worst first; the sort is stable, so ties keep key order.
        rows.sort_by_key(|(hundredths, _)| std::cmp::Reverse(*hundredths));
        Ok(json!({"rows": rows.into_iter().map(|(_, row)| row).collect::<Vec<_>>()}))
    }

    /// The event store in append order, a page at a time.
    pub async fn events(&self, p: EventsQuery) -> Result<Value, Problem> {
        let limit = p.limit.unwrap_or(100);
        if !(1..=1000).contains(&limit) {
            return Err(Problem::new(ErrorCode::ParamsInvalid, "limit is 1 to 1000"));
        }
        let mut params = vec![json!(p.after)];
        let mut sql = "SELECT id, event_id, stream, seq, event_type, payload, recorded_at
             FROM inv_event WHERE id > ?1"
            .to_owned();
        if let Some(stream) = &p.stream {
            params.push(json!(stream));
            sql.push_str(" AND stream = ?2");
        }
        sql.push_str(&format!(" ORDER BY id LIMIT {limit}"));
        let rows = self.db.query(self.client, &sql, params).await?;
        let mut next = p.after;
        let events = rows
            .iter()
            .map(|row| {
                next = db::int(row, "id")?;
                Ok(json!({
                    "id": next, "event_id": db::text(row, "event_id")?,
                    "stream": db::text(row, "stream")?, "seq": db::int(row, "seq")?,
                    "type": db::text(row, "event_type")?,
                    "payload": db::json_text(row, "payload")?,
                    "recorded_at": db::text(row, "recorded_at")?,
                }))
            })
            .collect::<Result<Vec<_>, Problem>>()?;
        Ok(json!({"events": events, "next_after": next}))
    }
}
