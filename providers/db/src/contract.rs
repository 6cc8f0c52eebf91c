//! The db domain's params and results (`contracts/schemas/domains/db.json`) as Rust types,
//! shared by every engine so that they read and answer exactly the same shapes.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use switchyard_spi::ProviderError;

#[derive(Deserialize)]
pub(crate) struct QueryParams {
    pub(crate) sql: String,
    #[serde(default)]
    pub(crate) params: Vec<Value>,
    pub(crate) max_rows: Option<u32>,
}

#[derive(Deserialize)]
pub(crate) struct StatementParams {
    pub(crate) sql: String,
    #[serde(default)]
    pub(crate) params: Vec<Value>,
    /// Whether the result reports `last_insert_id` (default true). A caller that ignores it
    /// says false and spares engines that look it up separately (db/postgres, db/mssql) a
    /// round trip per inserting statement; the result's `last_insert_id` is then null.
    #[serde(default = "reported")]
    pub(crate) last_insert_id: bool,
}

fn reported() -> bool {
    true
}

impl ExecResult {
    /// The result as its statement asked for it (`wanted`: the statement's `last_insert_id`):
    /// without `last_insert_id` when it said false, whatever the engine found.
    pub(crate) fn reported_as(mut self, wanted: bool) -> Self {
        if !wanted {
            self.last_insert_id = None;
        }
        self
    }
}

/// One value of a statement's `params`, as the domain defines them for every engine: null,
/// a boolean, an integer that fits 64 bits, another number (a double) or a string. Each engine
/// binds these as its driver's types.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Param {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Text(String),
}

impl Param {
    /// A statement's `params`; `pointer` locates the array for errors, and `too_big` says, in
    /// the engine's words, that an integer does not fit its 64-bit type.
    pub(crate) fn list(
        values: &[Value],
        pointer: &str,
        too_big: &str,
    ) -> Result<Vec<Param>, ProviderError> {
        let invalid =
            |index, detail| ProviderError::invalid_param(&format!("{pointer}/{index}"), detail);
        values
            .iter()
            .enumerate()
            .map(|(index, value)| match value {
                Value::Null => Ok(Param::Null),
                Value::Bool(b) => Ok(Param::Bool(*b)),
                Value::Number(n) => match (n.as_i64(), n.as_f64()) {
                    (Some(i), _) => Ok(Param::Int(i)),
                    (None, Some(f)) if n.is_f64() => Ok(Param::Float(f)),
                    _ => Err(invalid(index, too_big)),
                },
                Value::String(s) => Ok(Param::Text(s.clone())),
                Value::Array(_) | Value::Object(_) => Err(invalid(
                    index,
                    "a bind value must be null, boolean, number or string",
                )),
            })
            .collect()
    }
}

#[derive(Deserialize)]
pub(crate) struct TransactionParams {
    pub(crate) statements: Vec<StatementParams>,
}

#[derive(Deserialize)]
pub(crate) struct MetadataParams {
    pub(crate) table: Option<String>,
}

#[derive(Serialize)]
pub(crate) struct QueryResult {
    pub(crate) columns: Vec<ColumnInfo>,
    pub(crate) rows: Vec<Map<String, Value>>,
    pub(crate) row_count: usize,
    pub(crate) truncated: bool,
}

impl QueryResult {
    /// `row_count` is always the number of rows returned.
    pub(crate) fn new(
        columns: Vec<ColumnInfo>,
        rows: Vec<Map<String, Value>>,
        truncated: bool,
    ) -> Self {
        QueryResult {
            columns,
            row_count: rows.len(),
            rows,
            truncated,
        }
    }
}

#[derive(Serialize)]
pub(crate) struct ExecResult {
    pub(crate) rows_affected: u64,
    /// The key of the row this statement inserted, as each engine defines it (see its docs.md);
    /// `None` when it inserted nothing.
    pub(crate) last_insert_id: Option<i64>,
}

#[derive(Serialize)]
pub(crate) struct TransactionResult {
    pub(crate) results: Vec<ExecResult>,
}

#[derive(Serialize)]
pub(crate) struct TableInfo {
    pub(crate) name: String,
    pub(crate) columns: Vec<TableColumn>,
}

#[derive(Serialize)]
pub(crate) struct TableColumn {
    pub(crate) name: String,
    #[serde(rename = "type")]
    pub(crate) declared_type: String,
    pub(crate) nullable: bool,
    pub(crate) primary_key: bool,
}

#[derive(Serialize)]
pub(crate) struct MetadataResult {
    pub(crate) tables: Vec<TableInfo>,
}

/// One result column: its name and the engine's name for its type.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct ColumnInfo {
    pub name: String,
    #[serde(rename = "type")]
    pub type_name: String,
}
