//! The db domain's params and results (`contracts/schemas/domains/db.json`) as Rust types,
//! shared by every engine so that they read and answer exactly the same shapes.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

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
