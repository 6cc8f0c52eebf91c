//! Reading a `query`'s rows through sqlx, as db/sqlite, db/postgres and db/mysql do. Which
//! types a cell may have and how each becomes JSON are the engine's (its `values`).

use serde_json::{Map, Value};
use sqlx::error::BoxDynError;
use sqlx::query::Query;
use sqlx::{Column, ColumnIndex, Database, Executor, IntoArguments, Row};
use switchyard_spi::{ErrorCode, ProviderError};

use crate::contract::ColumnInfo;
use crate::limits::ResultBudget;

/// What [`read`] kept of a result.
pub(crate) struct Rows {
    /// The columns as the first row describes them; `None` when there was no row.
    pub columns: Option<Vec<ColumnInfo>>,
    pub rows: Vec<Map<String, Value>>,
    /// More rows followed the last one kept.
    pub truncated: bool,
}

/// How an engine describes and converts its rows, and reports the statement's failures.
pub(crate) struct Reader<R> {
    pub columns: fn(&R) -> Vec<ColumnInfo>,
    pub object: fn(&R) -> Result<Map<String, Value>, ProviderError>,
    pub error: fn(sqlx::Error) -> ProviderError,
}

/// Runs `query` on `conn`, streaming its rows and keeping at most `cap`. Reading stops at
/// `cap + 1`, so a huge result costs no more memory than the cap: the extra row only tells
/// that the result is truncated. Rows past the operator's result bytes per call end the read
/// with `payload_too_large`.
pub(crate) async fn read<'c, 'q, DB, A>(
    conn: &'c mut DB::Connection,
    query: Query<'q, DB, A>,
    cap: usize,
    reader: Reader<DB::Row>,
) -> Result<Rows, ProviderError>
where
    DB: Database,
    A: IntoArguments<'q, DB> + 'q,
    'q: 'c,
    &'c mut DB::Connection: Executor<'c, Database = DB>,
{
    let mut kept = Rows {
        columns: None,
        rows: Vec::new(),
        truncated: false,
    };
    let mut budget = ResultBudget::new();
    let mut stream = query.fetch(conn);
    while let Some(row) = std::future::poll_fn(|cx| stream.as_mut().poll_next(cx)).await {
        let row = row.map_err(reader.error)?;
        if kept.rows.len() == cap {
            kept.truncated = true;
            break;
        }
        if kept.columns.is_none() {
            kept.columns = Some((reader.columns)(&row));
        }
        let object = (reader.object)(&row)?;
        budget.charge(&object)?;
        kept.rows.push(object);
    }
    Ok(kept)
}

/// Why a cell has no JSON form.
pub(crate) enum Cell {
    /// A type the engine does not turn into JSON (its name).
    Unsupported(String),
    Corrupt(BoxDynError),
}

impl From<BoxDynError> for Cell {
    fn from(e: BoxDynError) -> Self {
        Cell::Corrupt(e)
    }
}

/// One row as an object keyed by column name (with duplicate names the last column wins).
/// `cell` turns one cell into JSON; a type it does not support is the SQL's to fix, with
/// `cast`: how `db/<engine>` casts a column to text.
pub(crate) fn row_object<R: Row>(
    row: &R,
    engine: &str,
    cast: fn(&str) -> String,
    cell: impl Fn(
        <R::Database as Database>::ValueRef<'_>,
        &<R::Database as Database>::Column,
    ) -> Result<Value, Cell>,
) -> Result<Map<String, Value>, ProviderError>
where
    usize: ColumnIndex<R>,
{
    let mut object = Map::new();
    for column in row.columns() {
        let raw = row
            .try_get_raw(column.ordinal())
            .map_err(|e| ProviderError::internal(format!("cannot read a result cell: {e}")))?;
        let value = cell(raw, column).map_err(|e| match e {
            Cell::Unsupported(type_name) => ProviderError::new(
                ErrorCode::StatementFailed,
                format!(
                    "column {:?} has type {type_name}, which db/{engine} does not turn into \
                     JSON: cast it in the SQL, e.g. {}",
                    column.name(),
                    cast(column.name())
                ),
            ),
            Cell::Corrupt(e) => {
                ProviderError::internal(format!("cannot decode column {:?}: {e}", column.name()))
            }
        })?;
        object.insert(column.name().to_owned(), value);
    }
    Ok(object)
}
