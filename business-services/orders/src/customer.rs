//! Customers: `create` refuses an order for a customer `define_customer` has not recorded.

use serde::Deserialize;
use serde_json::{Value, json};
use switchyard_contracts::{ErrorCode, Problem};
use switchyard_service_kit::clock;

use crate::Orders;
use crate::db::text;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CustomerIn {
    customer: String,
    name: String,
}

impl Orders<'_> {
    /// Records a customer `create` may name. The same again is a no-op; another name for the
    /// same customer is a conflict.
    pub async fn define_customer(&self, p: CustomerIn) -> Result<Value, Problem> {
        if p.customer.trim().is_empty() || p.name.trim().is_empty() {
            return Err(Problem::new(
                ErrorCode::ParamsInvalid,
                "a customer needs a non-blank id and name",
            ));
        }
        let existing = self
            .db
            .query(
                self.client,
                "SELECT name FROM ord_customer WHERE customer = ?1",
                vec![json!(p.customer)],
            )
            .await?;
        if let Some(row) = existing.first() {
            let name = text(row, "name")?;
            if name != p.name {
                return Err(Problem::new(
                    ErrorCode::Conflict,
                    format!("customer {:?} exists with another name", p.customer),
                ));
            }
            return Ok(json!({"customer": p.customer, "name": name, "created": false}));
        }
        self.db
            .transaction(
                self.client,
                vec![self.db.statement(
                    "INSERT INTO ord_customer (customer, name, created_at) VALUES (?1, ?2, ?3)",
                    vec![json!(p.customer), json!(p.name), json!(clock::now())],
                )],
            )
            .await?;
        Ok(json!({"customer": p.customer, "name": p.name, "created": true}))
    }

    /// Whether `define_customer` has recorded `customer`.
    pub async fn knows_customer(&self, customer: &str) -> Result<bool, Problem> {
        let known = self
            .db
            .query(
                self.client,
                "SELECT customer FROM ord_customer WHERE customer = ?1",
                vec![json!(customer)],
            )
            .await?;
        Ok(!known.is_empty())
    }
}
