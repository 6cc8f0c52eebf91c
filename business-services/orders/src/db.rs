//! Reading the orders' rows back: an order's head and lines, and the typed columns they are
//! made of. The queries themselves go through the shared [`switchyard_service_kit::Db`].

use serde_json::{Value, json};
use switchyard_contracts::{ErrorCode, Problem};
use switchyard_service_kit::{Money, Quantity, Row};

use crate::Orders;
use crate::status::Status;

/// The stored head of an order.
pub struct Head {
    pub order_id: String,
    pub customer: String,
    pub warehouse: String,
    pub bin: String,
    pub currency: String,
    pub total: Money,
    pub status: Status,
    /// The create params as stored, which a repeated create must match.
    pub content: String,
}

/// A stored order line, as the saga steps need it.
pub struct Line {
    pub line: i64,
    pub item: String,
    pub quantity: String,
}

impl Orders<'_> {
    /// The order's head, if it exists.
    pub async fn head(&self, order_id: &str) -> Result<Option<Head>, Problem> {
        let rows = self
            .db
            .query(
                self.client,
                "SELECT order_id, customer, warehouse, bin, currency, total, status, content \
                 FROM ord_order WHERE order_id = ?1",
                vec![json!(order_id)],
            )
            .await?;
        rows.first()
            .map(|row| {
                let status = text(row, "status")?;
                Ok(Head {
                    order_id: text(row, "order_id")?,
                    customer: text(row, "customer")?,
                    warehouse: text(row, "warehouse")?,
                    bin: text(row, "bin")?,
                    currency: text(row, "currency")?,
                    total: amount(&text(row, "total")?)?,
                    status: Status::parse(&status).ok_or_else(|| {
                        broken(&format!("an order in no known state ({status:?})"))
                    })?,
                    content: text(row, "content")?,
                })
            })
            .transpose()
    }

    /// The order's head, or `resource_not_found`.
    pub async fn require(&self, order_id: &str) -> Result<Head, Problem> {
        self.head(order_id).await?.ok_or_else(|| {
            Problem::new(ErrorCode::ResourceNotFound, format!("no order {order_id}"))
        })
    }

    /// The order's lines in their order.
    pub async fn lines(&self, order_id: &str) -> Result<Vec<Line>, Problem> {
        let rows = self
            .db
            .query(
                self.client,
                "SELECT line, item, quantity FROM ord_line WHERE order_id = ?1 ORDER BY line",
                vec![json!(order_id)],
            )
            .await?;
        rows.iter()
            .map(|row| {
                Ok(Line {
                    line: integer(row, "line")?,
                    item: text(row, "item")?,
                    quantity: text(row, "quantity")?,
                })
            })
            .collect()
    }
}

/// A stored value the service cannot read back: its tables were changed behind its back.
pub fn broken(what: &str) -> Problem {
    Problem::new(ErrorCode::Internal, format!("orders storage holds {what}"))
}

/// A text column of `row`.
pub fn text(row: &Row, column: &str) -> Result<String, Problem> {
    row.get(column)
        .and_then(Value::as_str)
        .map(str::to_owned)
        .ok_or_else(|| broken(&format!("a row without a text {column}: {row:?}")))
}

/// A nullable text column of `row`.
pub fn optional_text(row: &Row, column: &str) -> Option<String> {
    row.get(column).and_then(Value::as_str).map(str::to_owned)
}

/// An integer column of `row` (a number, or a numeric string).
pub fn integer(row: &Row, column: &str) -> Result<i64, Problem> {
    match row.get(column) {
        Some(Value::Number(n)) => n.as_i64(),
        Some(Value::String(s)) => s.parse().ok(),
        _ => None,
    }
    .ok_or_else(|| broken(&format!("a row without an integer {column}: {row:?}")))
}

/// A stored amount (or one another service answered), exactly: never rounded.
pub fn amount(text: &str) -> Result<Money, Problem> {
    text.parse()
        .ok()
        .and_then(Money::from_decimal)
        .ok_or_else(|| broken(&format!("an amount it cannot read ({text:?})")))
}

/// A stored quantity, exactly.
pub fn quantity(text: &str) -> Result<Quantity, Problem> {
    text.parse()
        .ok()
        .and_then(Quantity::from_decimal)
        .ok_or_else(|| broken(&format!("a quantity it cannot read ({text:?})")))
}

/// `a + b`, exact: a sum of amounts the inventory and the ledger have each kept within
/// money's range leaves it only if the tables were changed behind the service's back.
pub fn add(a: Money, b: Money) -> Result<Money, Problem> {
    a.checked_add(b).ok_or_else(|| {
        broken(&format!(
            "amounts whose sum ({a} + {b}) is beyond money's range"
        ))
    })
}
