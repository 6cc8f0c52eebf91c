//! One tenant's sync state for one connector engine: an SQLite database,
//! `<root>/<tenant>.db`, like the webhook engine's message store.
//!
//! - `cursors`: per stream × destination, the largest cursor value written to that
//!   destination and acknowledged by it. Advanced only in the same transaction that records a
//!   page as done, so a crash between a destination's ack and the checkpoint re-reads that
//!   page (the destination dedupes on the primary key) and never skips one.
//! - `records`: per stream × primary key, the latest raw record and its cursor value, so a
//!   mapping change re-maps without calling the system, and a full refresh knows what it did
//!   not see (`seen_run`) for its tombstone pass.
//! - `runs`: one row per run, with its counters, the page it resumes from and its phase, so a
//!   run a crash interrupted is resumed where it was.
//! - `deliveries`: inbound webhook delivery ids already written, so a repeat is dropped.
//! - `tokens`: the connection's OAuth2 tokens, kept here and never in the config.

use std::path::Path;
use std::time::Duration;

use serde_json::Value;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteRow,
    SqliteSynchronous,
};
use sqlx::{QueryBuilder, Row, Sqlite};
use switchyard_spi::ProviderError;

use crate::contract::{Destination, Mode, Run, RunError};

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS cursors (
    stream      TEXT NOT NULL,
    destination TEXT NOT NULL,
    cursor      TEXT,
    PRIMARY KEY (stream, destination)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS records (
    stream   TEXT NOT NULL,
    key      TEXT NOT NULL,
    raw      TEXT NOT NULL,
    cursor   TEXT,
    deleted  INTEGER NOT NULL DEFAULT 0,
    seen_run TEXT,
    PRIMARY KEY (stream, key)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS runs (
    run_id         TEXT PRIMARY KEY,
    stream         TEXT NOT NULL,
    destination    TEXT NOT NULL,
    mode           TEXT NOT NULL,
    status         TEXT NOT NULL,
    phase          TEXT NOT NULL,
    page           TEXT,
    max_cursor     TEXT,
    since          TEXT,
    records        INTEGER NOT NULL DEFAULT 0,
    deleted        INTEGER NOT NULL DEFAULT 0,
    pages          INTEGER NOT NULL DEFAULT 0,
    error_code     TEXT,
    error_detail   TEXT,
    started_at_ms  INTEGER NOT NULL,
    finished_at_ms INTEGER
);
CREATE INDEX IF NOT EXISTS runs_by_target ON runs (stream, destination, started_at_ms);
CREATE INDEX IF NOT EXISTS runs_running ON runs (status) WHERE status = 'running';
CREATE TABLE IF NOT EXISTS deliveries (
    delivery_id    TEXT PRIMARY KEY,
    received_at_ms INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS tokens (
    name  TEXT PRIMARY KEY,
    value TEXT NOT NULL
) WITHOUT ROWID;
";

/// Concurrent statements per tenant.
const CONNECTIONS: u32 = 4;

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

/// One kept raw record.
pub(crate) struct Kept {
    pub(crate) key: String,
    pub(crate) raw: Value,
    pub(crate) cursor: Option<Value>,
}

#[derive(Debug)]
pub(crate) struct Store {
    pool: SqlitePool,
}

impl Store {
    pub(crate) async fn open(path: &Path, busy_timeout: Duration) -> Result<Store, ProviderError> {
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(busy_timeout);
        let pool = SqlitePoolOptions::new()
            .max_connections(CONNECTIONS)
            .connect_with(options)
            .await
            .map_err(|e| storage_error("opening the sync store", e))?;
        sqlx::raw_sql(SCHEMA)
            .execute(&pool)
            .await
            .map_err(|e| storage_error("creating the sync store", e))?;
        Ok(Store { pool })
    }

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

    /// Keeps raw records received outside a run (a webhook's).
    pub(crate) async fn keep(&self, stream: &str, records: &[Kept]) -> Result<(), ProviderError> {
        let mut tx = self
            .pool
            .begin()
            .await
            .map_err(|e| storage_error("keeping raw records", e))?;
        keep(&mut tx, stream, None, records).await?;
        tx.commit()
            .await
            .map_err(|e| storage_error("keeping raw records", e))
    }

    /// Up to `limit` keys of `stream`'s kept, undeleted records that run `run_id` did not
    /// see, after `after` in key order: a full refresh's tombstones.
    pub(crate) async fn unseen(
        &self,
        stream: &str,
        run_id: &str,
        after: &str,
        limit: i64,
    ) -> Result<Vec<String>, ProviderError> {
        sqlx::query_scalar(
            "SELECT key FROM records WHERE stream = ?1 AND key > ?2 AND deleted = 0 \
             AND (seen_run IS NULL OR seen_run <> ?3) ORDER BY key LIMIT ?4",
        )
        .bind(stream)
        .bind(after)
        .bind(run_id)
        .bind(limit)
        .fetch_all(&self.pool)
        .await
        .map_err(|e| storage_error("reading unseen records", e))
    }

    /// Marks kept records deleted (they stay, so a remap carries the delete too).
    pub(crate) async fn mark_deleted(
        &self,
        stream: &str,
        keys: &[String],
    ) -> Result<(), ProviderError> {
        for chunk in keys.chunks(1000) {
            let mut update: QueryBuilder<Sqlite> =
                QueryBuilder::new("UPDATE records SET deleted = 1 WHERE stream = ");
            update.push_bind(stream).push(" AND key IN (");
            let mut keys = update.separated(", ");
            for key in chunk {
                keys.push_bind(key);
            }
            update.push(")");
            update
                .build()
                .execute(&self.pool)
                .await
                .map_err(|e| storage_error("marking records deleted", e))?;
        }
        Ok(())
    }

    /// Up to `limit` kept records of `stream` after `after` in key order, with whether each
    /// is deleted: a remap's pages.
    pub(crate) async fn kept(
        &self,
        stream: &str,
        after: &str,
        limit: i64,
    ) -> Result<Vec<(Kept, bool)>, ProviderError> {
        let rows = sqlx::query(
            "SELECT key, raw, cursor, deleted FROM records WHERE stream = ?1 AND key > ?2 \
             ORDER BY key LIMIT ?3",
        )
        .bind(stream)
        .bind(after)
        .bind(limit)
        .fetch_all(&self.pool)
        .await
        .map_err(|e| storage_error("reading kept records", e))?;
        rows.iter()
            .map(|row| {
                let raw: String = row.get("raw");
                let cursor: Option<String> = row.get("cursor");
                Ok((
                    Kept {
                        key: row.get("key"),
                        raw: parse_json(&raw)?,
                        cursor: cursor.as_deref().map(parse_json).transpose()?,
                    },
                    row.get::<i64, _>("deleted") != 0,
                ))
            })
            .collect()
    }

    pub(crate) async fn cursor(
        &self,
        stream: &str,
        destination: &str,
    ) -> Result<Option<Value>, ProviderError> {
        let text: Option<Option<String>> =
            sqlx::query_scalar("SELECT cursor FROM cursors WHERE stream = ?1 AND destination = ?2")
                .bind(stream)
                .bind(destination)
                .fetch_optional(&self.pool)
                .await
                .map_err(|e| storage_error("reading a cursor", e))?;
        text.flatten().as_deref().map(parse_json).transpose()
    }

    /// Every stream × destination a run has targeted, with its cursor (of `stream` only, when
    /// given).
    pub(crate) async fn targets(
        &self,
        stream: Option<&str>,
    ) -> Result<Vec<(String, String, Option<Value>)>, ProviderError> {
        let rows = sqlx::query(
            "SELECT t.stream, t.destination, c.cursor FROM \
             (SELECT DISTINCT stream, destination FROM runs \
              UNION SELECT stream, destination FROM cursors) t \
             LEFT JOIN cursors c ON c.stream = t.stream AND c.destination = t.destination \
             WHERE ?1 IS NULL OR t.stream = ?1 ORDER BY t.stream, t.destination",
        )
        .bind(stream)
        .fetch_all(&self.pool)
        .await
        .map_err(|e| storage_error("reading the cursors", e))?;
        rows.iter()
            .map(|row| {
                let cursor: Option<String> = row.get("cursor");
                Ok((
                    row.get("stream"),
                    row.get("destination"),
                    cursor.as_deref().map(parse_json).transpose()?,
                ))
            })
            .collect()
    }

    /// Forgets `stream`'s cursors (for one destination, or all); how many there were.
    pub(crate) async fn reset(
        &self,
        stream: &str,
        destination: Option<&str>,
    ) -> Result<u64, ProviderError> {
        let done = sqlx::query(
            "DELETE FROM cursors WHERE stream = ?1 AND (?2 IS NULL OR destination = ?2) \
             AND cursor IS NOT NULL",
        )
        .bind(stream)
        .bind(destination)
        .execute(&self.pool)
        .await
        .map_err(|e| storage_error("resetting cursors", e))?;
        Ok(done.rows_affected())
    }

    /// Sets `stream`'s cursor for `destination` (a reset to a given point).
    pub(crate) async fn set_cursor(
        &self,
        stream: &str,
        destination: &str,
        cursor: &Value,
    ) -> Result<(), ProviderError> {
        let mut tx = self
            .pool
            .begin()
            .await
            .map_err(|e| storage_error("storing a cursor", e))?;
        set_cursor(&mut tx, stream, destination, cursor).await?;
        tx.commit()
            .await
            .map_err(|e| storage_error("storing a cursor", e))
    }

    /// Whether inbound delivery `delivery_id` was written before.
    pub(crate) async fn delivered(&self, delivery_id: &str) -> Result<bool, ProviderError> {
        let found: Option<i64> =
            sqlx::query_scalar("SELECT 1 FROM deliveries WHERE delivery_id = ?1")
                .bind(delivery_id)
                .fetch_optional(&self.pool)
                .await
                .map_err(|e| storage_error("reading deliveries", e))?;
        Ok(found.is_some())
    }

    /// Records inbound delivery `delivery_id` as written (after its destination acked it).
    pub(crate) async fn record_delivery(
        &self,
        delivery_id: &str,
        now_ms: i64,
    ) -> Result<(), ProviderError> {
        sqlx::query(
            "INSERT INTO deliveries (delivery_id, received_at_ms) VALUES (?1, ?2) \
             ON CONFLICT DO NOTHING",
        )
        .bind(delivery_id)
        .bind(now_ms)
        .execute(&self.pool)
        .await
        .map_err(|e| storage_error("recording a delivery", e))?;
        Ok(())
    }

    /// A kept token (`None` when there is none).
    pub(crate) async fn token(&self, name: &str) -> Result<Option<String>, ProviderError> {
        sqlx::query_scalar("SELECT value FROM tokens WHERE name = ?1")
            .bind(name)
            .fetch_optional(&self.pool)
            .await
            .map_err(|e| storage_error("reading a token", e))
    }

    /// Keeps (`Some`) or forgets (`None`) a token.
    pub(crate) async fn set_token(
        &self,
        name: &str,
        value: Option<&str>,
    ) -> Result<(), ProviderError> {
        let query = match value {
            Some(value) => sqlx::query(
                "INSERT INTO tokens (name, value) VALUES (?1, ?2) \
                 ON CONFLICT (name) DO UPDATE SET value = excluded.value",
            )
            .bind(name)
            .bind(value),
            None => sqlx::query("DELETE FROM tokens WHERE name = ?1").bind(name),
        };
        query
            .execute(&self.pool)
            .await
            .map_err(|e| storage_error("keeping a token", e))?;
        Ok(())
    }

    /// Answers when the database can be read.
    pub(crate) async fn probe(&self) -> Result<i64, ProviderError> {
        sqlx::query_scalar("SELECT COUNT(*) FROM records")
            .fetch_one(&self.pool)
            .await
            .map_err(|e| storage_error("probing the sync store", e))
    }
}

/// Keeps raw records (the latest of each key), marked seen by `run_id` when a run read them.
async fn keep(
    tx: &mut sqlx::Transaction<'_, Sqlite>,
    stream: &str,
    run_id: Option<&str>,
    records: &[Kept],
) -> Result<(), ProviderError> {
    // 6 binds per row, under SQLite's 32,766.
    for chunk in records.chunks(1000) {
        let mut insert: QueryBuilder<Sqlite> =
            QueryBuilder::new("INSERT INTO records (stream, key, raw, cursor, deleted, seen_run) ");
        insert.push_values(chunk, |mut row, record| {
            row.push_bind(stream)
                .push_bind(&record.key)
                .push_bind(record.raw.to_string())
                .push_bind(record.cursor.as_ref().map(Value::to_string))
                .push_bind(0)
                .push_bind(run_id);
        });
        insert.push(
            " ON CONFLICT (stream, key) DO UPDATE SET raw = excluded.raw, \
             cursor = excluded.cursor, deleted = 0, \
             seen_run = COALESCE(excluded.seen_run, records.seen_run)",
        );
        insert
            .build()
            .execute(&mut **tx)
            .await
            .map_err(|e| storage_error("keeping raw records", e))?;
    }
    Ok(())
}

async fn set_cursor(
    tx: &mut sqlx::Transaction<'_, Sqlite>,
    stream: &str,
    destination: &str,
    cursor: &Value,
) -> Result<(), ProviderError> {
    sqlx::query(
        "INSERT INTO cursors (stream, destination, cursor) VALUES (?1, ?2, ?3) \
         ON CONFLICT (stream, destination) DO UPDATE SET cursor = excluded.cursor",
    )
    .bind(stream)
    .bind(destination)
    .bind(cursor.to_string())
    .execute(&mut **tx)
    .await
    .map_err(|e| storage_error("storing a cursor", e))?;
    Ok(())
}

/// How a destination is keyed in the store: its JSON, fields in their declared order.
pub(crate) fn destination_key(destination: &Destination) -> String {
    serde_json::to_string(destination).unwrap_or_default()
}

pub(crate) fn parse_destination(key: &str) -> Result<Destination, ProviderError> {
    serde_json::from_str(key)
        .map_err(|e| ProviderError::internal(format!("a stored destination is unreadable: {e}")))
}

fn mode_str(mode: Mode) -> &'static str {
    match mode {
        Mode::Full => "full",
        Mode::Incremental => "incremental",
        Mode::Remap => "remap",
    }
}

fn parse_json(text: &str) -> Result<Value, ProviderError> {
    serde_json::from_str(text)
        .map_err(|e| ProviderError::internal(format!("a stored value is unreadable: {e}")))
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

fn storage_error(doing: &str, e: sqlx::Error) -> ProviderError {
    ProviderError::unavailable(format!("{doing}: {e}"))
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
            started_at: super::rfc3339(self.started_at_ms),
            finished_at: self.finished_at_ms.map(super::rfc3339),
        }
    }
}
