//! Runs: one row each, with the counters, the page a resumed run continues from and its
//! phase; a page's checkpoint in one transaction with its kept records and cursor.

use serde_json::Value;
use sqlx::Row;
use sqlx::sqlite::SqliteRow;
use switchyard_spi::ProviderError;

use super::records::{Kept, keep, set_cursor};
use super::{Store, destination_key, parse_destination, parse_json, storage_error};
use crate::contract::{Destination, Mode, Run, RunError};

/// Which part of a run is under way; a resumed run continues with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    /// Reading the stream's pages (a remap: the kept raw records).
    Read,
    /// Reading the deleted feed (incremental) or the tombstone pass (full).
    Deletes,
}

impl Phase {
    fn as_str(self) -> &'static str {
        match self {
            Phase::Read => "read",
            Phase::Deletes => "deletes",
        }
    }
}

/// A run as stored.
#[derive(Debug, Clone)]
pub(crate) struct RunRow {
    pub(crate) run_id: String,
    pub(crate) stream: String,
    pub(crate) destination: Destination,
    pub(crate) mode: Mode,
    pub(crate) status: &'static str,
    pub(crate) phase: Phase,
    /// The page token the run continues from (a remap: the last key written).
    pub(crate) page: Option<String>,
    /// The largest cursor value the run wrote.
    pub(crate) max_cursor: Option<Value>,
    /// The stream's cursor when the run started (where an incremental run's deleted feed
    /// starts).
    pub(crate) since: Option<Value>,
    pub(crate) records: i64,
    pub(crate) deleted: i64,
    pub(crate) pages: i64,
    pub(crate) error: Option<RunError>,
    pub(crate) started_at_ms: i64,
    pub(crate) finished_at_ms: Option<i64>,
}

/// What one acknowledged page changes, written in one transaction.
pub(crate) struct Checkpoint<'a> {
    pub(crate) stream: &'a str,
    /// The page's raw records, kept with the checkpoint: a crash before it reads the page
    /// again, and keeps them then.
    pub(crate) kept: &'a [Kept],
    pub(crate) run_id: &'a str,
    pub(crate) phase: Phase,
    pub(crate) page: Option<&'a str>,
    pub(crate) records: i64,
    pub(crate) deleted: i64,
    pub(crate) pages: i64,
    pub(crate) max_cursor: Option<&'a Value>,
    /// The stream × destination cursor to store now (incremental runs, page by page).
    pub(crate) cursor: Option<(&'a str, &'a str, &'a Value)>,
}

impl Store {
    pub(crate) async fn insert_run(&self, run: &RunRow) -> Result<(), ProviderError> {
        sqlx::query(
            "INSERT INTO runs (run_id, stream, destination, mode, status, phase, page, \
             max_cursor, since, started_at_ms) VALUES (?1, ?2, ?3, ?4, 'running', ?5, ?6, ?7, ?8, ?9)",
        )
        .bind(&run.run_id)
        .bind(&run.stream)
        .bind(destination_key(&run.destination))
        .bind(mode_str(run.mode))
        .bind(run.phase.as_str())
        .bind(&run.page)
        .bind(run.max_cursor.as_ref().map(Value::to_string))
        .bind(run.since.as_ref().map(Value::to_string))
        .bind(run.started_at_ms)
        .execute(&self.pool)
        .await
        .map_err(|e| storage_error("recording a run", e))?;
        Ok(())
    }

    pub(crate) async fn run(&self, run_id: &str) -> Result<Option<RunRow>, ProviderError> {
        sqlx::query("SELECT * FROM runs WHERE run_id = ?1")
            .bind(run_id)
            .fetch_optional(&self.pool)
            .await
            .map_err(|e| storage_error("reading a run", e))?
            .map(|row| run_row(&row))
            .transpose()
    }

    /// The latest run of `stream` into `destination`.
    pub(crate) async fn last_run(
        &self,
        stream: &str,
        destination: &str,
    ) -> Result<Option<RunRow>, ProviderError> {
        sqlx::query(
            "SELECT * FROM runs WHERE stream = ?1 AND destination = ?2 \
             ORDER BY started_at_ms DESC, run_id DESC LIMIT 1",
        )
        .bind(stream)
        .bind(destination)
        .fetch_optional(&self.pool)
        .await
        .map_err(|e| storage_error("reading a run", e))?
        .map(|row| run_row(&row))
        .transpose()
    }

    /// Runs the store shows as running: after a restart, the ones a crash interrupted.
    pub(crate) async fn running(&self) -> Result<Vec<RunRow>, ProviderError> {
        sqlx::query("SELECT * FROM runs WHERE status = 'running' ORDER BY started_at_ms")
            .fetch_all(&self.pool)
            .await
            .map_err(|e| storage_error("reading the running runs", e))?
            .iter()
            .map(run_row)
            .collect()
    }

    /// Records a page as done, and (incremental) the stream's new cursor, atomically.
    pub(crate) async fn checkpoint(&self, at: Checkpoint<'_>) -> Result<(), ProviderError> {
        let mut tx = self
            .pool
            .begin()
            .await
            .map_err(|e| storage_error("checkpointing", e))?;
        sqlx::query(
            "UPDATE runs SET phase = ?2, page = ?3, records = ?4, deleted = ?5, pages = ?6, \
             max_cursor = ?7 WHERE run_id = ?1",
        )
        .bind(at.run_id)
        .bind(at.phase.as_str())
        .bind(at.page)
        .bind(at.records)
        .bind(at.deleted)
        .bind(at.pages)
        .bind(at.max_cursor.map(Value::to_string))
        .execute(&mut *tx)
        .await
        .map_err(|e| storage_error("checkpointing", e))?;
        if let Some((stream, destination, cursor)) = at.cursor {
            set_cursor(&mut tx, stream, destination, cursor).await?;
        }
        keep(&mut tx, at.stream, Some(at.run_id), at.kept).await?;
        tx.commit()
            .await
            .map_err(|e| storage_error("checkpointing", e))
    }

    /// Ends a run; a completed run may store the stream's cursor with it (a full refresh's
    /// largest cursor value, known only once the whole read is written).
    pub(crate) async fn finish_run(
        &self,
        run_id: &str,
        error: Option<&RunError>,
        cursor: Option<(&str, &str, &Value)>,
        now_ms: i64,
    ) -> Result<(), ProviderError> {
        let mut tx = self
            .pool
            .begin()
            .await
            .map_err(|e| storage_error("finishing a run", e))?;
        sqlx::query(
            "UPDATE runs SET status = ?2, error_code = ?3, error_detail = ?4, \
             finished_at_ms = ?5 WHERE run_id = ?1",
        )
        .bind(run_id)
        .bind(if error.is_some() {
            "failed"
        } else {
            "completed"
        })
        .bind(error.map(|e| e.code.as_str()))
        .bind(error.map(|e| e.detail.as_str()))
        .bind(now_ms)
        .execute(&mut *tx)
        .await
        .map_err(|e| storage_error("finishing a run", e))?;
        if let Some((stream, destination, cursor)) = cursor {
            set_cursor(&mut tx, stream, destination, cursor).await?;
        }
        tx.commit()
            .await
            .map_err(|e| storage_error("finishing a run", e))
    }
}

fn mode_str(mode: Mode) -> &'static str {
    match mode {
        Mode::Full => "full",
        Mode::Incremental => "incremental",
        Mode::Remap => "remap",
    }
}

fn run_row(row: &SqliteRow) -> Result<RunRow, ProviderError> {
    let mode = match row.get::<&str, _>("mode") {
        "full" => Mode::Full,
        "incremental" => Mode::Incremental,
        _ => Mode::Remap,
    };
    let status = match row.get::<&str, _>("status") {
        "running" => "running",
        "completed" => "completed",
        _ => "failed",
    };
    let phase = match row.get::<&str, _>("phase") {
        "read" => Phase::Read,
        _ => Phase::Deletes,
    };
    let json = |column: &str| -> Result<Option<Value>, ProviderError> {
        row.get::<Option<String>, _>(column)
            .as_deref()
            .map(parse_json)
            .transpose()
    };
    let error = match (
        row.get::<Option<String>, _>("error_code"),
        row.get::<Option<String>, _>("error_detail"),
    ) {
        (Some(code), Some(detail)) => Some(RunError { code, detail }),
        _ => None,
    };
    Ok(RunRow {
        run_id: row.get("run_id"),
        stream: row.get("stream"),
        destination: parse_destination(row.get("destination"))?,
        mode,
        status,
        phase,
        page: row.get("page"),
        max_cursor: json("max_cursor")?,
        since: json("since")?,
        records: row.get("records"),
        deleted: row.get("deleted"),
        pages: row.get("pages"),
        error,
        started_at_ms: row.get("started_at_ms"),
        finished_at_ms: row.get("finished_at_ms"),
    })
}

impl RunRow {
    /// The run as the contract shows it, with the stream's stored `cursor`.
    pub(crate) fn answer(&self, cursor: Option<Value>) -> Run {
        Run {
            run_id: self.run_id.clone(),
            stream: self.stream.clone(),
            mode: self.mode,
            destination: self.destination.clone(),
            status: self.status,
            records: self.records,
            deleted: self.deleted,
            pages: self.pages,
            cursor: cursor.unwrap_or(Value::Null),
            error: self.error.clone(),
            started_at: crate::sync::rfc3339(self.started_at_ms),
            finished_at: self.finished_at_ms.map(crate::sync::rfc3339),
        }
    }
}
