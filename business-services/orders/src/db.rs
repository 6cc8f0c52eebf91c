//! The orders service's only door to its database: the db provider's `query`, `execute` and
//! `transaction` actions through the tenant's client.

use serde_json::{Map, Value, json};
use switchyard_client::ProviderClient;
use switchyard_contracts::{ErrorCode, Problem};
use switchyard_outbox::Dialect;

/// Most rows one read returns; an order has at most 200 lines and a few steps per line.
const MAX_ROWS: usize = 2_000;

pub type Row = Map<String, Value>;

#[derive(Debug, Clone)]
pub struct Db {
    provider: String,
    dialect: Dialect,
}

impl Db {
    /// The service's SQL (`INSERT … ON CONFLICT`) runs on SQLite and PostgreSQL.
    pub fn new(provider: &str) -> Result<Self, Problem> {
        match Dialect::of(provider)? {
            Dialect::Mysql => Err(Problem::new(
                ErrorCode::RequestInvalid,
                format!("the orders service runs on db/sqlite and db/postgres, not {provider}"),
            )),
            dialect => Ok(Db {
                provider: provider.into(),
                dialect,
            }),
        }
    }

    /// SQL is written with SQLite's numbered placeholders (`?1`); PostgreSQL spells them `$1`.
    /// The texts are this crate's constants, holding no other `?`.
    fn sql(&self, text: &str) -> String {
        match self.dialect {
            Dialect::Postgres => text.replace('?', "$"),
            Dialect::Sqlite | Dialect::Mysql => text.to_owned(),
        }
    }

    /// One statement for a `transaction` batch.
    pub fn statement(&self, text: &str, params: Vec<Value>) -> Value {
        json!({"sql": self.sql(text), "params": params})
    }

    pub async fn query(
        &self,
        client: &dyn ProviderClient,
        text: &str,
        params: Vec<Value>,
    ) -> Result<Vec<Row>, Problem> {
        let mut answer = client
            .invoke(
                &self.provider,
                "query",
                json!({"sql": self.sql(text), "params": params, "max_rows": MAX_ROWS}),
            )
            .await?;
        let Value::Array(rows) = answer["rows"].take() else {
            return Err(broken("a query answer without rows"));
        };
        rows.into_iter()
            .map(|row| match row {
                Value::Object(row) => Ok(row),
                other => Err(broken(&format!("a row that is not an object: {other}"))),
            })
            .collect()
    }

    /// The number of rows the statement changed.
    pub async fn execute(
        &self,
        client: &dyn ProviderClient,
        text: &str,
        params: Vec<Value>,
    ) -> Result<u64, Problem> {
        let answer = client
            .invoke(
                &self.provider,
                "execute",
                json!({"sql": self.sql(text), "params": params}),
            )
            .await?;
        answer["rows_affected"]
            .as_u64()
            .ok_or_else(|| broken("an execute answer without rows_affected"))
    }

    /// Runs `statements` (from [`Db::statement`] or the outbox) atomically.
    pub async fn transaction(
        &self,
        client: &dyn ProviderClient,
        statements: Vec<Value>,
    ) -> Result<(), Problem> {
        client
            .invoke(
                &self.provider,
                "transaction",
                json!({"statements": statements}),
            )
            .await
            .map(drop)
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

pub const TABLES: [&str; 3] = [
    "CREATE TABLE IF NOT EXISTS ord_order (
        order_id VARCHAR(64) PRIMARY KEY,
        customer TEXT NOT NULL,
        warehouse VARCHAR(64) NOT NULL,
        bin VARCHAR(64) NOT NULL,
        currency VARCHAR(3) NOT NULL,
        total TEXT NOT NULL,
        status VARCHAR(16) NOT NULL,
        content TEXT NOT NULL,
        category TEXT,
        risk TEXT,
        created_at VARCHAR(40) NOT NULL,
        updated_at VARCHAR(40) NOT NULL
    )",
    "CREATE TABLE IF NOT EXISTS ord_line (
        order_id VARCHAR(64) NOT NULL,
        line INTEGER NOT NULL,
        item VARCHAR(64) NOT NULL,
        quantity TEXT NOT NULL,
        unit_price TEXT NOT NULL,
        currency VARCHAR(3) NOT NULL,
        PRIMARY KEY (order_id, line)
    )",
    "CREATE TABLE IF NOT EXISTS ord_step (
        order_id VARCHAR(64) NOT NULL,
        name VARCHAR(64) NOT NULL,
        step_order INTEGER NOT NULL,
        status VARCHAR(8) NOT NULL,
        error TEXT,
        detail TEXT,
        updated_at VARCHAR(40) NOT NULL,
        PRIMARY KEY (order_id, name)
    )",
];
