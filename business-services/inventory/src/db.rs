//! The service's only door to its database: the db provider's `query` and `transaction`
//! actions through the tenant's client.

use serde_json::{Map, Value, json};
use switchyard_client::ProviderClient;
use switchyard_contracts::{ErrorCode, Problem};
use switchyard_outbox::Dialect;

use crate::fixed;

/// Most rows one `query` returns under the engines' default config. Reads that must be
/// complete page with `LIMIT` [`PAGE`]; listings report `truncated` instead.
const MAX_ROWS: usize = 10_000;

/// Rows per page of the paged reads.
const PAGE: usize = 5_000;

pub type Row = Map<String, Value>;

/// The rows of one query, and whether more matched than the engine returns at once.
pub struct Rows {
    pub rows: Vec<Row>,
    pub truncated: bool,
}

#[derive(Debug, Clone)]
pub struct Db {
    provider: String,
    dialect: Dialect,
}

impl Db {
    /// The service's SQL runs on SQLite and PostgreSQL; MySQL lacks `INSERT … ON CONFLICT`,
    /// which every stock movement is written with.
    pub fn new(provider: &str) -> Result<Self, Problem> {
        match Dialect::of(provider)? {
            Dialect::Mysql => Err(Problem::new(
                ErrorCode::RequestInvalid,
                format!("inventory runs on db/sqlite and db/postgres, not {provider}"),
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

    /// The service's SQL is written with SQLite's numbered placeholders (`?1`); PostgreSQL
    /// spells them `$1`. The texts are the service's own, holding no other `?`.
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

    /// All rows of a read that must be complete: more than the engine returns at once is an
    /// internal error (such reads page).
    pub async fn query(
        &self,
        client: &dyn ProviderClient,
        text: &str,
        params: Vec<Value>,
    ) -> Result<Vec<Row>, Problem> {
        let rows = self.query_capped(client, text, params).await?;
        if rows.truncated {
            return Err(Problem::new(
                ErrorCode::Internal,
                format!("an inventory read matched more than {MAX_ROWS} rows; it must page"),
            ));
        }
        Ok(rows.rows)
    }

    /// The rows of a read, at most what the engine returns at once.
    pub async fn query_capped(
        &self,
        client: &dyn ProviderClient,
        text: &str,
        params: Vec<Value>,
    ) -> Result<Rows, Problem> {
        let mut answer = client
            .invoke(
                &self.provider,
                "query",
                json!({"sql": self.sql(text), "params": params, "max_rows": MAX_ROWS}),
            )
            .await?;
        let truncated = answer["truncated"] == json!(true);
        let Value::Array(rows) = answer["rows"].take() else {
            return Err(broken("a query answer without rows"));
        };
        let rows = rows
            .into_iter()
            .map(|row| match row {
                Value::Object(row) => Ok(row),
                other => Err(broken(&format!("a row that is not an object: {other}"))),
            })
            .collect::<Result<_, _>>()?;
        Ok(Rows { rows, truncated })
    }

    /// Every row of `select` (a `SELECT … FROM …` without `WHERE`) matching `condition` (may
    /// be empty; its placeholders are `params`), read a page at a time in `key` order. `key`
    /// names columns the select returns that together identify a row.
    pub async fn all(
        &self,
        client: &dyn ProviderClient,
        select: &str,
        condition: &str,
        params: Vec<Value>,
        key: &[&str],
    ) -> Result<Vec<Row>, Problem> {
        let mut rows: Vec<Row> = Vec::new();
        loop {
            let mut page_params = params.clone();
            let mut terms: Vec<String> = Vec::new();
            if !condition.is_empty() {
                terms.push(condition.to_owned());
            }
            if let Some(last) = rows.last() {
                terms.push(format!(
                    "({}) > ({})",
                    key.join(", "),
                    placeholders(page_params.len() + 1, key.len())
                ));
                page_params.extend(key.iter().map(|column| last[*column].clone()));
            }
            let filter = if terms.is_empty() {
                String::new()
            } else {
                format!("WHERE {}", terms.join(" AND "))
            };
            let page = self
                .query(
                    client,
                    &format!("{select} {filter} ORDER BY {} LIMIT {PAGE}", key.join(", ")),
                    page_params,
                )
                .await?;
            let done = page.len() < PAGE;
            rows.extend(page);
            if done {
                return Ok(rows);
            }
        }
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

fn broken(what: &str) -> Problem {
    Problem::new(
        ErrorCode::Internal,
        format!("the db provider answered {what}"),
    )
}

fn missing(row: &Row, column: &str) -> Problem {
    broken(&format!(
        "a row without a readable {column}: {}",
        Value::Object(row.clone())
    ))
}

/// A text column that must be set.
pub fn text(row: &Row, column: &str) -> Result<String, Problem> {
    row.get(column)
        .and_then(Value::as_str)
        .map(str::to_owned)
        .ok_or_else(|| missing(row, column))
}

/// A text column that may be NULL.
pub fn opt_text(row: &Row, column: &str) -> Option<String> {
    row.get(column).and_then(Value::as_str).map(str::to_owned)
}

/// An integer column (a number, or PostgreSQL's `numeric` as a string).
pub fn int(row: &Row, column: &str) -> Result<i64, Problem> {
    row.get(column)
        .and_then(fixed::read)
        .ok_or_else(|| missing(row, column))
}

/// A JSON document stored as text.
pub fn json_text(row: &Row, column: &str) -> Result<Value, Problem> {
    serde_json::from_str(&text(row, column)?).map_err(|_| missing(row, column))
}

/// `?first, ?first+1, …` for `count` values, to build `IN (…)` lists.
pub fn placeholders(first: usize, count: usize) -> String {
    (first..first + count)
        .map(|n| format!("?{n}"))
        .collect::<Vec<_>>()
        .join(", ")
}
