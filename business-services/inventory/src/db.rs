//! The inventory's paged reads and reading its rows back; the queries themselves go through
//! the shared [`switchyard_service_kit::Db`].

use serde_json::Value;
use switchyard_client::ProviderClient;
use switchyard_contracts::{ErrorCode, Problem};
use switchyard_service_kit::money;
pub use switchyard_service_kit::{Db, PAGE, Row};

/// Every row of `select` (a `SELECT … FROM …` without `WHERE`) matching `condition` (may
/// be empty; its placeholders are `params`), read a page at a time in `key` order. `key`
/// names columns the select returns that together identify a row.
pub async fn all(
    db: &Db,
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
        let page = db
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
        .and_then(money::read_units)
        .and_then(|units| i64::try_from(units).ok())
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
