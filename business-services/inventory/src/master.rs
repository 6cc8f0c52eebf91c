//! Master data (items, warehouses, bins) and the lookups every operation starts with.
//!
//! Master data and lots are only ever inserted (an item's name and GTIN may be corrected, its
//! unit never), so what a lookup finds before a write is still true when the write commits.

use std::collections::{BTreeMap, BTreeSet};

use serde::Deserialize;
use serde_json::{Value, json};
use switchyard_contracts::{ErrorCode, FieldError, Problem};
use switchyard_service_kit::clock;

use crate::Inventory;
use crate::db::{self, Row, placeholders};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DefineItem {
    item: String,
    name: String,
    uom: String,
    gtin: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DefineWarehouse {
    warehouse: String,
    name: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DefineBin {
    warehouse: String,
    bin: String,
}

#[derive(Debug, Clone)]
pub struct ItemInfo {
    pub item: String,
    pub uom: String,
    pub gtin: Option<String>,
}

/// A lot as recorded when it was received or made.
#[derive(Debug, Clone)]
pub struct LotInfo {
    pub lot: String,
    pub item: String,
    pub quantity: i64,
    pub origin: String,
    pub warehouse: String,
    pub bin: String,
    pub supplier: Option<String>,
    pub supplier_lot: Option<String>,
    pub expires_on: Option<String>,
    pub quality: Option<Value>,
    pub created_at: String,
}

/// The columns [`LotInfo::from_row`] reads, for `SELECT {LOT_COLUMNS} FROM inv_lot l`.
const LOT_COLUMNS: &str = "l.lot, l.item, l.quantity, l.origin, l.warehouse, l.bin, \
    l.supplier, l.supplier_lot, l.expires_on, l.quality, l.created_at";

impl LotInfo {
    pub fn from_row(row: &Row) -> Result<Self, Problem> {
        Ok(LotInfo {
            lot: db::text(row, "lot")?,
            item: db::text(row, "item")?,
            quantity: db::int(row, "quantity")?,
            origin: db::text(row, "origin")?,
            warehouse: db::text(row, "warehouse")?,
            bin: db::text(row, "bin")?,
            supplier: db::opt_text(row, "supplier"),
            supplier_lot: db::opt_text(row, "supplier_lot"),
            expires_on: db::opt_text(row, "expires_on"),
            quality: match db::opt_text(row, "quality") {
                Some(_) => Some(db::json_text(row, "quality")?),
                None => None,
            },
            created_at: db::text(row, "created_at")?,
        })
    }
}

pub fn not_found(what: String) -> Problem {
    Problem::new(ErrorCode::ResourceNotFound, what)
}

/// A GTIN-14 whose last digit is the GS1 check digit of the others.
fn gtin_is_valid(gtin: &str) -> bool {
    let digits: Vec<u32> = gtin.chars().filter_map(|c| c.to_digit(10)).collect();
    if digits.len() != 14 || gtin.len() != 14 {
        return false;
    }
    let sum: u32 = digits[..13]
        .iter()
        .rev()
        .enumerate()
        .map(|(i, d)| if i % 2 == 0 { d * 3 } else { *d })
        .sum();
    (10 - sum % 10) % 10 == digits[13]
}

impl Inventory<'_> {
    pub async fn define_item(&self, p: DefineItem) -> Result<Value, Problem> {
        if let Some(gtin) = &p.gtin
            && !gtin_is_valid(gtin)
        {
            // The schema publishes the 14 digits; no schema can state the check digit.
            return Err(Problem::new(
                ErrorCode::ParamsUnprocessable,
                format!("{gtin:?} is not a GTIN-14 with a valid check digit"),
            )
            .with_errors(vec![FieldError {
                pointer: "/gtin".into(),
                detail: "not a GTIN-14 with a valid check digit".into(),
            }]));
        }
        if let Some(existing) = self.find_items(&[p.item.as_str()]).await?.get(&p.item)
            && existing.uom != p.uom
        {
            return Err(Problem::new(
                ErrorCode::Conflict,
                format!(
                    "item {} is kept in {}; its unit of measure cannot change",
                    p.item, existing.uom
                ),
            ));
        }
        let statement = self.db.statement(
            "INSERT INTO inv_item (item, name, uom, gtin, created_at) VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT (item) DO UPDATE SET name = excluded.name, gtin = excluded.gtin",
            vec![
                json!(p.item),
                json!(p.name),
                json!(p.uom),
                json!(p.gtin),
                json!(clock::now()),
            ],
        );
        self.db
            .transaction(self.client, vec![statement])
            .await
            .map_err(|problem| match problem.code {
                ErrorCode::Conflict => Problem::new(
                    ErrorCode::Conflict,
                    format!(
                        "another item already has GTIN {}",
                        p.gtin.as_deref().unwrap_or("")
                    ),
                ),
                _ => problem,
            })?;
        let mut item = json!({"item": p.item, "name": p.name, "uom": p.uom});
        if let Some(gtin) = p.gtin {
            item["gtin"] = json!(gtin);
        }
        Ok(item)
    }

    pub async fn define_warehouse(&self, p: DefineWarehouse) -> Result<Value, Problem> {
        let statement = self.db.statement(
            "INSERT INTO inv_warehouse (warehouse, name) VALUES (?1, ?2)
             ON CONFLICT (warehouse) DO UPDATE SET name = excluded.name",
            vec![json!(p.warehouse), json!(p.name)],
        );
        self.db.transaction(self.client, vec![statement]).await?;
        Ok(json!({"warehouse": p.warehouse, "name": p.name}))
    }

    pub async fn define_bin(&self, p: DefineBin) -> Result<Value, Problem> {
        let found = self
            .db
            .query(
                self.client,
                "SELECT warehouse FROM inv_warehouse WHERE warehouse = ?1",
                vec![json!(p.warehouse)],
            )
            .await?;
        if found.is_empty() {
            return Err(not_found(format!("no warehouse {}", p.warehouse)));
        }
        let statement = self.db.statement(
            "INSERT INTO inv_bin (warehouse, bin) VALUES (?1, ?2)
             ON CONFLICT (warehouse, bin) DO NOTHING",
            vec![json!(p.warehouse), json!(p.bin)],
        );
        self.db.transaction(self.client, vec![statement]).await?;
        Ok(json!({"warehouse": p.warehouse, "bin": p.bin}))
    }

    /// The items among `items` that exist.
    pub async fn find_items(&self, items: &[&str]) -> Result<BTreeMap<String, ItemInfo>, Problem> {
        self.items_where("item", items).await
    }

    /// The items whose GTIN is among `gtins`, by GTIN.
    pub async fn items_by_gtin(
        &self,
        gtins: &[&str],
    ) -> Result<BTreeMap<String, ItemInfo>, Problem> {
        Ok(self
            .items_where("gtin", gtins)
            .await?
            .into_values()
            .filter_map(|info| info.gtin.clone().map(|gtin| (gtin, info)))
            .collect())
    }

    async fn items_where(
        &self,
        column: &str,
        keys: &[&str],
    ) -> Result<BTreeMap<String, ItemInfo>, Problem> {
        let unique: BTreeSet<&str> = keys.iter().copied().collect();
        let unique: Vec<&str> = unique.into_iter().collect();
        let mut found = BTreeMap::new();
        for chunk in unique.chunks(500) {
            let sql = format!(
                "SELECT item, uom, gtin FROM inv_item WHERE {column} IN ({})",
                placeholders(1, chunk.len())
            );
            let params = chunk.iter().map(|k| json!(k)).collect();
            for row in self.db.query(self.client, &sql, params).await? {
                let info = ItemInfo {
                    item: db::text(&row, "item")?,
                    uom: db::text(&row, "uom")?,
                    gtin: db::opt_text(&row, "gtin"),
                };
                found.insert(info.item.clone(), info);
            }
        }
        Ok(found)
    }

    /// Every one of `items`, or `resource_not_found` naming the first missing.
    pub async fn items(&self, items: &[&str]) -> Result<BTreeMap<String, ItemInfo>, Problem> {
        let found = self.find_items(items).await?;
        match items.iter().find(|item| !found.contains_key(**item)) {
            Some(missing) => Err(not_found(format!("no item {missing}"))),
            None => Ok(found),
        }
    }

    pub async fn item(&self, item: &str) -> Result<ItemInfo, Problem> {
        let mut found = self.items(&[item]).await?;
        found
            .remove(item)
            .ok_or_else(|| not_found(format!("no item {item}")))
    }

    /// Every `(warehouse, bin)` exists, or `resource_not_found` naming the first missing.
    pub async fn require_bins(&self, bins: &[(&str, &str)]) -> Result<(), Problem> {
        let unique: BTreeSet<(&str, &str)> = bins.iter().copied().collect();
        let mut terms = Vec::new();
        let mut params = Vec::new();
        for (warehouse, bin) in &unique {
            terms.push(format!(
                "(warehouse = ?{} AND bin = ?{})",
                params.len() + 1,
                params.len() + 2
            ));
            params.push(json!(warehouse));
            params.push(json!(bin));
        }
        if terms.is_empty() {
            return Ok(());
        }
        let sql = format!(
            "SELECT warehouse, bin FROM inv_bin WHERE {}",
            terms.join(" OR ")
        );
        let rows = self.db.query(self.client, &sql, params).await?;
        let found: BTreeSet<(String, String)> = rows
            .iter()
            .map(|row| Ok((db::text(row, "warehouse")?, db::text(row, "bin")?)))
            .collect::<Result<_, Problem>>()?;
        for (warehouse, bin) in unique {
            if !found.contains(&(warehouse.to_owned(), bin.to_owned())) {
                return Err(not_found(format!("no bin {bin} in warehouse {warehouse}")));
            }
        }
        Ok(())
    }

    /// Which of `lots` exist already (for refusing to create one twice with a clear error).
    pub async fn existing_lots(&self, lots: &[&str]) -> Result<Vec<String>, Problem> {
        let mut found = Vec::new();
        for chunk in lots.chunks(500) {
            let sql = format!(
                "SELECT lot FROM inv_lot WHERE lot IN ({})",
                placeholders(1, chunk.len())
            );
            let params = chunk.iter().map(|lot| json!(lot)).collect();
            for row in self.db.query(self.client, &sql, params).await? {
                found.push(db::text(&row, "lot")?);
            }
        }
        Ok(found)
    }

    /// Every one of `lots`, or `resource_not_found` naming the first missing.
    pub async fn lots(&self, lots: &[&str]) -> Result<BTreeMap<String, LotInfo>, Problem> {
        let mut found = BTreeMap::new();
        for chunk in lots.chunks(500) {
            let sql = format!(
                "SELECT {LOT_COLUMNS} FROM inv_lot l WHERE l.lot IN ({})",
                placeholders(1, chunk.len())
            );
            let params = chunk.iter().map(|lot| json!(lot)).collect();
            for row in self.db.query(self.client, &sql, params).await? {
                let info = LotInfo::from_row(&row)?;
                found.insert(info.lot.clone(), info);
            }
        }
        match lots.iter().find(|lot| !found.contains_key(**lot)) {
            Some(missing) => Err(not_found(format!("no lot {missing}"))),
            None => Ok(found),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gtins_need_fourteen_digits_and_the_gs1_check_digit() {
        assert!(gtin_is_valid("09520123456788"));
        assert!(gtin_is_valid("04012345123456"));
        assert!(!gtin_is_valid("09520123456789"));
        assert!(!gtin_is_valid("9520123456788"));
        assert!(!gtin_is_valid("0952012345678x"));
    }
}
