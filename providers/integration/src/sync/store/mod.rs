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

//!
//! Runs and their checkpoints are in `runs`, kept records and cursors in `records`.

mod records;
mod runs;

use std::path::Path;
use std::time::Duration;

use serde_json::Value;
use sqlx::sqlite::SqlitePool;
use switchyard_spi::ProviderError;

use crate::contract::Destination;

pub(crate) use records::Kept;
pub(crate) use runs::{Checkpoint, Phase, RunRow};

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

#[derive(Debug)]
pub(crate) struct Store {
    pool: SqlitePool,
}

impl Store {
    pub(crate) async fn open(path: &Path, busy_timeout: Duration) -> Result<Store, ProviderError> {
        let pool = crate::sqlite::open(path, busy_timeout, SCHEMA)
            .await
            .map_err(|e| storage_error("opening the sync store", e))?;
        Ok(Store { pool })
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

/// How a destination is keyed in the store: its JSON, fields in their declared order.
pub(crate) fn destination_key(destination: &Destination) -> String {
    serde_json::to_string(destination).unwrap_or_default()
}

pub(crate) fn parse_destination(key: &str) -> Result<Destination, ProviderError> {
    serde_json::from_str(key)
        .map_err(|e| ProviderError::internal(format!("a stored destination is unreadable: {e}")))
}

fn parse_json(text: &str) -> Result<Value, ProviderError> {
    serde_json::from_str(text)
        .map_err(|e| ProviderError::internal(format!("a stored value is unreadable: {e}")))
}

fn storage_error(doing: &str, e: sqlx::Error) -> ProviderError {
    ProviderError::unavailable(format!("{doing}: {e}"))
}
