//! Stock operations on bins: receive, issue, adjust, transfer, reserve and release.
//!
//! Each one states its movements as legs and leaves costing and writing to the engine;
//! movements out are costed at the stream's moving average and report that cost.

use serde::Deserialize;
use serde_json::{Map, Value, json};
use switchyard_contracts::{ErrorCode, Problem};
use switchyard_service_kit::{Money, Quantity, Sign, clock};

use crate::engine::{Leg, Plan};
use crate::lotevent::{Details, LotEvent, LotQty, What};
use crate::{Inventory, master};

/// A lot created by a receipt.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewLot {
    lot: String,
    supplier: Option<String>,
    supplier_lot: Option<String>,
    expires_on: Option<String>,
    quality: Option<Map<String, Value>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Receive {
    item: String,
    warehouse: String,
    bin: String,
    quantity: String,
    unit_cost: String,
    lot: Option<NewLot>,
    reference: Option<String>,
    /// Makes the request idempotent: see [`crate::engine::Inventory::record_once`].
    request_id: Option<String>,
    occurred_at: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Issue {
    item: String,
    warehouse: String,
    bin: String,
    lot: Option<String>,
    quantity: String,
    /// Takes stock reserved earlier rather than available stock.
    #[serde(default)]
    from_reserved: bool,
    reference: Option<String>,
    /// Makes the request idempotent: see [`crate::engine::Inventory::record_once`].
    request_id: Option<String>,
    occurred_at: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Adjust {
    item: String,
    warehouse: String,
    bin: String,
    lot: Option<String>,
    /// Signed: a count found more (positive) or less (negative) than on hand.
    quantity: String,
    reason: String,
    /// For an increase: what the found stock is worth a unit; the moving average if absent.
    unit_cost: Option<String>,
    occurred_at: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Place {
    warehouse: String,
    bin: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Transfer {
    item: String,
    lot: Option<String>,
    quantity: String,
    from: Place,
    to: Place,
    reference: Option<String>,
    occurred_at: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Reserve {
    item: String,
    warehouse: String,
    bin: String,
    lot: Option<String>,
    quantity: String,
    reference: Option<String>,
    /// Makes the request idempotent: see [`crate::engine::Inventory::record_once`].
    request_id: Option<String>,
    occurred_at: Option<String>,
}

/// Puts the optional text fields that are set into an event or answer.
pub fn put_some(map: &mut Map<String, Value>, fields: &[(&str, &Option<String>)]) {
    for (name, value) in fields {
        if let Some(value) = value {
            map.insert((*name).into(), json!(value));
        }
    }
}

/// The map of a JSON object literal (anything else is an empty map).
pub fn object(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}

/// What `qty` (scaled) is worth at `unit_cost`, by the kit's one rounding rule.
fn value_of(qty: i64, unit_cost: Money) -> Result<i64, Problem> {
    Money::of(Quantity(qty), unit_cost)
        .map(|value| value.0)
        .ok_or_else(|| {
            Problem::new(
                ErrorCode::ParamsInvalid,
                "quantity times unit cost exceeds what is kept",
            )
        })
}

impl Inventory<'_> {
    /// A lot's item must be the movement's item.
    async fn check_lot_item(&self, lot: &Option<String>, item: &str) -> Result<(), Problem> {
        if let Some(lot) = lot {
            let found = self.lots(&[lot.as_str()]).await?;
            if found[lot].item != item {
                return Err(Problem::new(
                    ErrorCode::ParamsInvalid,
                    format!("lot {lot} is of item {}, not {item}", found[lot].item),
                ));
            }
        }
        Ok(())
    }

    pub async fn receive(&self, p: Receive) -> Result<Value, Problem> {
        let qty = Quantity::parse(&p.quantity, Sign::Positive, "/quantity")?.0;
        let unit_cost = Money::parse(&p.unit_cost, Sign::NonNegative, "/unit_cost")?;
        let occurred_at = clock::given_or_now(p.occurred_at.as_deref(), "/occurred_at")?;
        let item = self.item(&p.item).await?;
        self.require_bins(&[(&p.warehouse, &p.bin)]).await?;
        let expires_on = match p.lot.as_ref().and_then(|l| l.expires_on.as_deref()) {
            Some(date) => Some(clock::date(date, "/lot/expires_on")?),
            None => None,
        };
        // A replayed request's lot exists: its first answer, not a conflict.
        if let Some(request) = &p.request_id
            && let Some(result) = self.answered(request).await?
        {
            return Ok(result);
        }
        if let Some(lot) = &p.lot
            && !self.existing_lots(&[lot.lot.as_str()]).await?.is_empty()
        {
            return Err(Problem::new(
                ErrorCode::Conflict,
                format!("lot {} exists already", lot.lot),
            ));
        }
        let value = value_of(qty, unit_cost)?;
        let streams = [(p.item.clone(), p.warehouse.clone())];
        self.record_once(
            p.request_id.as_deref(),
            &streams,
            &occurred_at,
            |heads, event_id| {
                heads.put(&p.item, &p.warehouse, qty, value);
                let lot_code = p.lot.as_ref().map(|l| l.lot.clone());
                let mut fields = object(json!({
                    "item": p.item, "warehouse": p.warehouse, "bin": p.bin,
                    "quantity": Quantity(qty).to_string(), "unit_cost": unit_cost.to_string(),
                    "value": Money(value).to_string(),
                }));
                put_some(
                    &mut fields,
                    &[("lot", &lot_code), ("reference", &p.reference)],
                );
                let mut rows = Vec::new();
                if let Some(lot) = &p.lot {
                    let event = LotEvent {
                        event_id: event_id.to_owned(),
                        event_time: occurred_at.clone(),
                        record_time: clock::now(),
                        warehouse: p.warehouse.clone(),
                        bin: p.bin.clone(),
                        what: What::Receiving {
                            lot: LotQty {
                                item: p.item.clone(),
                                gtin: item.gtin.clone(),
                                lot: lot.lot.clone(),
                                quantity: qty,
                                uom: item.uom.clone(),
                            },
                            details: Details {
                                supplier: lot.supplier.clone(),
                                supplier_lot: lot.supplier_lot.clone(),
                                expires_on: expires_on.clone(),
                                quality: lot.quality.clone(),
                            },
                            reference: p.reference.clone(),
                        },
                    };
                    put_some(
                        &mut fields,
                        &[
                            ("supplier", &lot.supplier),
                            ("supplier_lot", &lot.supplier_lot),
                            ("expires_on", &expires_on),
                        ],
                    );
                    if let Some(quality) = &lot.quality {
                        fields.insert("quality".into(), Value::Object(quality.clone()));
                    }
                    rows = event.rows(self.db, false);
                }
                let mut result = object(json!({
                    "quantity": Quantity(qty).to_string(), "value": Money(value).to_string(),
                }));
                put_some(&mut result, &[("lot", &lot_code)]);
                Ok(Plan {
                    kind: if p.lot.is_some() {
                        "lot.received"
                    } else {
                        "stock.received"
                    },
                    subject: lot_code.unwrap_or_else(|| p.item.clone()),
                    legs: vec![Leg {
                        item: p.item.clone(),
                        warehouse: p.warehouse.clone(),
                        bin: p.bin.clone(),
                        lot: p.lot.as_ref().map(|l| l.lot.clone()).unwrap_or_default(),
                        on_hand: qty,
                        reserved: 0,
                        value,
                    }],
                    fields,
                    rows,
                    result,
                })
            },
        )
        .await
    }

    pub async fn issue(&self, p: Issue) -> Result<Value, Problem> {
        let qty = Quantity::parse(&p.quantity, Sign::Positive, "/quantity")?.0;
        let occurred_at = clock::given_or_now(p.occurred_at.as_deref(), "/occurred_at")?;
        self.item(&p.item).await?;
        self.check_lot_item(&p.lot, &p.item).await?;
        let streams = [(p.item.clone(), p.warehouse.clone())];
        self.record_once(
            p.request_id.as_deref(),
            &streams,
            &occurred_at,
            |heads, _| {
                let cost = heads.take(&p.item, &p.warehouse, qty);
                let mut fields = object(json!({
                    "item": p.item, "warehouse": p.warehouse, "bin": p.bin,
                    "quantity": Quantity(qty).to_string(), "cost": Money(cost).to_string(),
                    "from_reserved": p.from_reserved,
                }));
                put_some(&mut fields, &[("lot", &p.lot), ("reference", &p.reference)]);
                Ok(Plan {
                    kind: "stock.issued",
                    subject: p.item.clone(),
                    legs: vec![Leg {
                        item: p.item.clone(),
                        warehouse: p.warehouse.clone(),
                        bin: p.bin.clone(),
                        lot: p.lot.clone().unwrap_or_default(),
                        on_hand: -qty,
                        reserved: if p.from_reserved { -qty } else { 0 },
                        value: -cost,
                    }],
                    fields,
                    rows: vec![],
                    result: object(json!({
                        "quantity": Quantity(qty).to_string(), "cost": Money(cost).to_string(),
                    })),
                })
            },
        )
        .await
    }

    pub async fn adjust(&self, p: Adjust) -> Result<Value, Problem> {
        let qty = Quantity::parse(&p.quantity, Sign::NonZero, "/quantity")?.0;
        let unit_cost = match &p.unit_cost {
            Some(raw) if qty > 0 => Some(Money::parse(raw, Sign::NonNegative, "/unit_cost")?),
            Some(_) => {
                return Err(Problem::new(
                    ErrorCode::ParamsInvalid,
                    "a decrease is valued at the moving average; it takes no unit_cost",
                ));
            }
            None => None,
        };
        let occurred_at = clock::given_or_now(p.occurred_at.as_deref(), "/occurred_at")?;
        self.item(&p.item).await?;
        self.require_bins(&[(&p.warehouse, &p.bin)]).await?;
        self.check_lot_item(&p.lot, &p.item).await?;
        let streams = [(p.item.clone(), p.warehouse.clone())];
        self.record(&streams, &occurred_at, |heads, _| {
            let value = if qty < 0 {
                -heads.take(&p.item, &p.warehouse, -qty)
            } else {
                let value = match unit_cost {
                    Some(cost) => value_of(qty, cost)?,
                    None => heads.value_at_average(&p.item, &p.warehouse, qty)?,
                };
                heads.put(&p.item, &p.warehouse, qty, value);
                value
            };
            let mut fields = object(json!({
                "item": p.item, "warehouse": p.warehouse, "bin": p.bin,
                "quantity": Quantity(qty).to_string(), "value": Money(value).to_string(),
                "reason": p.reason,
            }));
            put_some(&mut fields, &[("lot", &p.lot)]);
            Ok(Plan {
                kind: "stock.adjusted",
                subject: p.item.clone(),
                legs: vec![Leg {
                    item: p.item.clone(),
                    warehouse: p.warehouse.clone(),
                    bin: p.bin.clone(),
                    lot: p.lot.clone().unwrap_or_default(),
                    on_hand: qty,
                    reserved: 0,
                    value,
                }],
                fields,
                rows: vec![],
                result: object(json!({
                    "quantity": Quantity(qty).to_string(), "value": Money(value).to_string(),
                })),
            })
        })
        .await
    }

    pub async fn transfer(&self, p: Transfer) -> Result<Value, Problem> {
        let qty = Quantity::parse(&p.quantity, Sign::Positive, "/quantity")?.0;
        if p.from.warehouse == p.to.warehouse && p.from.bin == p.to.bin {
            return Err(Problem::new(
                ErrorCode::ParamsInvalid,
                "a transfer needs two different bins",
            ));
        }
        let occurred_at = clock::given_or_now(p.occurred_at.as_deref(), "/occurred_at")?;
        self.item(&p.item).await?;
        self.require_bins(&[(&p.to.warehouse, &p.to.bin)]).await?;
        self.check_lot_item(&p.lot, &p.item).await?;
        let streams = [
            (p.item.clone(), p.from.warehouse.clone()),
            (p.item.clone(), p.to.warehouse.clone()),
        ];
        self.record(&streams, &occurred_at, |heads, _| {
            let value = heads.take(&p.item, &p.from.warehouse, qty);
            heads.put(&p.item, &p.to.warehouse, qty, value);
            let leg = |place: &Place, on_hand: i64, value: i64| Leg {
                item: p.item.clone(),
                warehouse: place.warehouse.clone(),
                bin: place.bin.clone(),
                lot: p.lot.clone().unwrap_or_default(),
                on_hand,
                reserved: 0,
                value,
            };
            let mut fields = object(json!({
                "item": p.item, "quantity": Quantity(qty).to_string(),
                "from": {"warehouse": p.from.warehouse, "bin": p.from.bin},
                "to": {"warehouse": p.to.warehouse, "bin": p.to.bin},
                "value": Money(value).to_string(),
            }));
            put_some(&mut fields, &[("lot", &p.lot), ("reference", &p.reference)]);
            Ok(Plan {
                kind: "stock.transferred",
                subject: p.item.clone(),
                legs: vec![leg(&p.from, -qty, -value), leg(&p.to, qty, value)],
                fields,
                rows: vec![],
                result: object(json!({
                    "quantity": Quantity(qty).to_string(), "value": Money(value).to_string(),
                })),
            })
        })
        .await
    }

    /// `reserve` (`take` true) sets stock aside for a reference; `release` gives it back.
    pub async fn reserve(&self, p: Reserve, take: bool) -> Result<Value, Problem> {
        let qty = Quantity::parse(&p.quantity, Sign::Positive, "/quantity")?.0;
        let occurred_at = clock::given_or_now(p.occurred_at.as_deref(), "/occurred_at")?;
        self.item(&p.item).await?;
        self.check_lot_item(&p.lot, &p.item).await?;
        let streams = [(p.item.clone(), p.warehouse.clone())];
        self.record_once(p.request_id.as_deref(), &streams, &occurred_at, |_, _| {
            let mut fields = object(json!({
                "item": p.item, "warehouse": p.warehouse, "bin": p.bin,
                "quantity": Quantity(qty).to_string(),
            }));
            put_some(&mut fields, &[("lot", &p.lot), ("reference", &p.reference)]);
            Ok(Plan {
                kind: if take {
                    "stock.reserved"
                } else {
                    "stock.released"
                },
                subject: p.item.clone(),
                legs: vec![Leg {
                    item: p.item.clone(),
                    warehouse: p.warehouse.clone(),
                    bin: p.bin.clone(),
                    lot: p.lot.clone().unwrap_or_default(),
                    on_hand: 0,
                    reserved: if take { qty } else { -qty },
                    value: 0,
                }],
                fields,
                rows: vec![],
                result: object(json!({"quantity": Quantity(qty).to_string()})),
            })
        })
        .await
    }
}

/// Lot details read back for a lot's answer.
pub fn lot_json(info: &master::LotInfo) -> Map<String, Value> {
    let mut lot = object(json!({
        "lot": info.lot, "item": info.item, "quantity": Quantity(info.quantity).to_string(),
        "origin": info.origin, "warehouse": info.warehouse, "bin": info.bin,
        "created_at": info.created_at,
    }));
    put_some(
        &mut lot,
        &[
            ("supplier", &info.supplier),
            ("supplier_lot", &info.supplier_lot),
            ("expires_on", &info.expires_on),
        ],
    );
    if let Some(quality) = &info.quality {
        lot.insert("quality".into(), quality.clone());
    }
    lot
}
