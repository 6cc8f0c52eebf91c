//! The ledger's only door to its database: the db provider's `query`, `execute` and
//! `transaction` actions through the tenant's client.

use serde_json::{Map, Value, json};
use switchyard_client::ProviderClient;
use switchyard_contracts::{ErrorCode, Problem};
use switchyard_outbox::Dialect;

/// Most rows one `query` returns under the engines' default config; reads that could match
/// more page with `LIMIT` [`PAGE`] and a key.
const MAX_ROWS: usize = 10_000;

/// Rows per page of the ledger's paged reads.
pub const PAGE: usize = 5_000;

pub type Row = Map<String, Value>;

#[derive(Debug, Clone)]
pub struct Db {
    provider: String,
    dialect: Dialect,
}

impl Db {
    /// The ledger's SQL runs on SQLite and PostgreSQL; MySQL lacks `INSERT … ON CONFLICT`,
    /// which the balance projection's atomic increment is written with.
    pub fn new(provider: &str) -> Result<Self, Problem> {
        match Dialect::of(provider)? {
            Dialect::Mysql => Err(Problem::new(
                ErrorCode::RequestInvalid,
                format!("the ledger runs on db/sqlite and db/postgres, not {provider}"),
            )),
            dialect => Ok(Db {
                provider: provider.into(),
                dialect,
            }),
        }
    }

    pub fn dialect(&self) -> Dialect {
        self.dialect
    }

    /// The ledger's SQL is written with SQLite's numbered placeholders (`?1`); PostgreSQL
    /// spells them `$1`. The texts are the ledger's own constants, holding no other `?`.
    pub fn sql(&self, text: &str) -> String {
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
        if answer["truncated"] == json!(true) {
            return Err(Problem::new(
                ErrorCode::Internal,
                format!("a ledger read matched more than {MAX_ROWS} rows; it must page"),
            ));
        }
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

    /// Runs `statements` (from [`Db::statement`]) atomically.
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

/// A stored value the ledger cannot read back: its tables were changed behind its back.
pub fn broken(what: &str) -> Problem {
    Problem::new(ErrorCode::Internal, format!("ledger storage holds {what}"))
}

/// A text column of `row`.
pub fn text<'r>(row: &'r Row, column: &str) -> Result<&'r str, Problem> {
    row.get(column)
        .and_then(Value::as_str)
        .ok_or_else(|| broken(&format!("a row without a text {column}: {row:?}")))
}

/// A nullable text column of `row`.
pub fn optional_text(row: &Row, column: &str) -> Option<String> {
    row.get(column).and_then(Value::as_str).map(str::to_owned)
}

/// An integer column of `row` (a number, or a PostgreSQL `numeric` string).
pub fn integer(row: &Row, column: &str) -> Result<i128, Problem> {
    row.get(column)
        .and_then(crate::amount::read)
        .ok_or_else(|| broken(&format!("a row without an integer {column}: {row:?}")))
}

/// A 64-bit integer column of `row` (ids, sequence and line numbers).
pub fn id(row: &Row, column: &str) -> Result<i64, Problem> {
    i64::try_from(integer(row, column)?)
        .map_err(|_| broken(&format!("a {column} beyond 64 bits: {row:?}")))
}
