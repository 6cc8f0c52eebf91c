//! One tenant's durable log: an SQLite database holding every topic's records and every
//! consumer group's committed position.
//!
//! SQLite gives us what a hand-written segment format would have to re-invent: atomic
//! multi-record appends, crash recovery and an fsync discipline that has been tested for
//! decades. The journal is WAL with `synchronous = FULL`, so a commit returns only after the
//! WAL frame is on disk: an acknowledged publish survives `kill -9` and power loss.
//!
//! Two pools share the file. The writer pool has exactly one connection, so appends are
//! serialised by the pool itself: offsets are assigned inside the write transaction and can
//! be neither duplicated nor skipped. Readers have their own pool so that polls never queue
//! behind a large publish (WAL lets readers and the writer proceed concurrently).

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::Value;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use switchyard_spi::{ErrorCode, ProviderError};

use crate::contract::dead_letter_headers;

/// Created at first open; every statement is idempotent so reopening an existing log is a no-op
/// (and a log created before a table existed gains it on its next open).
///
/// `records` keeps a rowid (no `WITHOUT ROWID`) because payloads can be large, which is the
/// case SQLite recommends rowid tables for. The time index serves `replay` from a timestamp.
/// `group_deliveries` counts, per group and topic, the polls that delivered the record at the
/// group's position (`record_offset`); only tenants with `max_deliveries` write it.
const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS records (
    topic           TEXT    NOT NULL,
    record_offset   INTEGER NOT NULL,
    record_key      TEXT,
    headers         TEXT    NOT NULL,
    payload         TEXT    NOT NULL,
    published_at_ms INTEGER NOT NULL,
    PRIMARY KEY (topic, record_offset)
);
CREATE INDEX IF NOT EXISTS records_by_time ON records (topic, published_at_ms);
CREATE TABLE IF NOT EXISTS group_offsets (
    group_name  TEXT    NOT NULL,
    topic       TEXT    NOT NULL,
    next_offset INTEGER NOT NULL,
    PRIMARY KEY (group_name, topic)
);
CREATE TABLE IF NOT EXISTS group_deliveries (
    group_name    TEXT    NOT NULL,
    topic         TEXT    NOT NULL,
    record_offset INTEGER NOT NULL,
    deliveries    INTEGER NOT NULL,
    PRIMARY KEY (group_name, topic)
);
";

/// Concurrent polls per tenant. Small on purpose: reads are short and the host has few cores.
const READER_CONNECTIONS: u32 = 4;

/// A message to append, already validated against the publish schema.
#[derive(Debug, Clone)]
pub(crate) struct NewMessage {
    pub key: Option<String>,
    pub headers: BTreeMap<String, String>,
    pub payload: Value,
}

/// A record read back from the log.
#[derive(Debug, Clone)]
pub(crate) struct StoredRecord {
    pub offset: i64,
    pub key: Option<String>,
    pub headers: BTreeMap<String, String>,
    pub payload: Value,
    pub published_at_ms: i64,
}

/// Handles on one tenant's database file. Cheap to share: both pools are reference counted.
#[derive(Debug)]
pub(crate) struct Log {
    writer: SqlitePool,
    reader: SqlitePool,
}

impl Log {
    /// Opens (creating if needed) the database at `path`. `busy_timeout` bounds how long a
    /// statement waits for a lock held elsewhere (another process, a checkpoint) before the
    /// call fails as retryable `provider_unavailable`.
    pub(crate) async fn open(path: &Path, busy_timeout: Duration) -> Result<Log, ProviderError> {
        let base = SqliteConnectOptions::new()
            .filename(path)
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(busy_timeout);
        // The writer is opened first: it creates the file and switches it to WAL, a mode
        // that is persistent, so reader connections opened afterwards find it set.
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            // Keep the one connection for the pool's life: reopening it would cost a
            // WAL recovery check on every idle period for no benefit.
            .min_connections(1)
            .idle_timeout(None)
            .max_lifetime(None)
            .connect_with(
                base.clone()
                    .create_if_missing(true)
                    .journal_mode(SqliteJournalMode::Wal),
            )
            .await
            .map_err(|e| storage_error("opening the log", e))?;
        sqlx::raw_sql(SCHEMA)
            .execute(&writer)
            .await
            .map_err(|e| storage_error("creating the log schema", e))?;
        let reader = SqlitePoolOptions::new()
            .max_connections(READER_CONNECTIONS)
            // `query_only` turns an accidental write on a reader into an error instead of a
            // second writer racing the offset assignment.
            .connect_with(base.pragma("query_only", "ON"))
            .await
            .map_err(|e| storage_error("opening the log for reading", e))?;
        Ok(Log { writer, reader })
    }

    /// Appends `messages` to `topic` as one transaction and returns their offsets, which are
    /// consecutive and follow the topic's last one.
    ///
    /// `published_at` never goes backwards within a topic (a clock step back reuses the
    /// previous record's time), so "first record at or after a time" is well defined and
    /// replay by time never skips a record that comes later in offset order.
    pub(crate) async fn append(
        &self,
        topic: &str,
        messages: &[NewMessage],
    ) -> Result<Vec<i64>, ProviderError> {
        let mut tx = self
            .writer
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(|e| storage_error("starting a publish", e))?;
        let offsets = append_in(&mut tx, topic, messages).await?;
        tx.commit()
            .await
            .map_err(|e| storage_error("committing a publish", e))?;
        Ok(offsets)
    }

    /// Up to `limit` records of `topic` from offset `from` on, in offset order.
    pub(crate) async fn read(
        &self,
        topic: &str,
        from: i64,
        limit: i64,
    ) -> Result<Vec<StoredRecord>, ProviderError> {
        let mut conn = self
            .reader
            .acquire()
            .await
            .map_err(|e| storage_error("reading the log", e))?;
        read_in(&mut conn, topic, from, limit).await
    }

    /// The offset the group committed on the topic, 0 when it never committed.
    pub(crate) async fn committed(&self, group: &str, topic: &str) -> Result<i64, ProviderError> {
        let mut conn = self
            .reader
            .acquire()
            .await
            .map_err(|e| storage_error("reading the log", e))?;
        committed_in(&mut conn, group, topic).await
    }

    /// A group's `poll` from its committed position when the tenant has `max_deliveries`: counts
    /// one delivery of the record at the position and returns up to `limit` records from there.
    /// When that record has already been delivered `max_deliveries` times, it is first appended
    /// to `dead_letters` and the group's position moves past it (its successor's count starts
    /// at 0, so one poll dead-letters at most one record). Everything happens in one write
    /// transaction: the dead letter, the new position and the count are stored together or not
    /// at all, and concurrent polls of one group count every delivery.
    ///
    /// Returns where the records start (the possibly moved position) and the records.
    pub(crate) async fn deliver(
        &self,
        group: &str,
        topic: &str,
        dead_letters: &str,
        max_deliveries: u32,
        limit: i64,
    ) -> Result<(i64, Vec<StoredRecord>), ProviderError> {
        let mut tx = self
            .writer
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(|e| storage_error("starting a poll", e))?;
        let mut position = committed_in(&mut tx, group, topic).await?;
        let Some(head) = read_in(&mut tx, topic, position, 1).await?.pop() else {
            // Nothing at the position: nothing delivered, nothing to count.
            return Ok((position, Vec::new()));
        };
        let counted: Option<i64> = sqlx::query_scalar(
            "SELECT deliveries FROM group_deliveries
             WHERE group_name = ? AND topic = ? AND record_offset = ?",
        )
        .bind(group)
        .bind(topic)
        .bind(position)
        .fetch_optional(&mut *tx)
        .await
        .map_err(|e| storage_error("reading a delivery count", e))?;
        let mut deliveries = counted.unwrap_or(0);
        if deliveries >= i64::from(max_deliveries) {
            let dead = NewMessage {
                key: head.key,
                headers: dead_letter_headers(head.headers, group, head.offset, max_deliveries),
                payload: head.payload,
            };
            append_in(&mut tx, dead_letters, &[dead]).await?;
            position += 1;
            set_position(&mut tx, group, topic, position).await?;
            deliveries = 0;
        }
        let records = read_in(&mut tx, topic, position, limit).await?;
        if !records.is_empty() {
            sqlx::query(
                "INSERT INTO group_deliveries (group_name, topic, record_offset, deliveries)
                 VALUES (?, ?, ?, ?)
                 ON CONFLICT (group_name, topic) DO UPDATE
                 SET record_offset = excluded.record_offset, deliveries = excluded.deliveries",
            )
            .bind(group)
            .bind(topic)
            .bind(position)
            .bind(deliveries + 1)
            .execute(&mut *tx)
            .await
            .map_err(|e| storage_error("counting a delivery", e))?;
        }
        tx.commit()
            .await
            .map_err(|e| storage_error("committing a poll", e))?;
        Ok((position, records))
    }

    /// Records `next_offset` as the group's position. Moving back is allowed (to re-consume);
    /// moving past the topic's end is a conflict, checked in the same transaction as the
    /// write so a concurrent publish cannot slip between check and write. Any commit resets
    /// the group's delivery count on the topic.
    pub(crate) async fn commit(
        &self,
        group: &str,
        topic: &str,
        next_offset: i64,
    ) -> Result<(), ProviderError> {
        let mut tx = self
            .writer
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(|e| storage_error("starting a commit", e))?;
        let end = end_offset(&mut tx, topic).await?;
        if next_offset > end {
            return Err(ProviderError::new(
                ErrorCode::Conflict,
                format!(
                    "cannot commit offset {next_offset} on topic {topic:?}: its next unwritten \
                     offset is {end}, a group can commit at most that"
                ),
            ));
        }
        set_position(&mut tx, group, topic, next_offset).await?;
        tx.commit()
            .await
            .map_err(|e| storage_error("committing a group offset", e))
    }

    /// The offset of the first record of `topic` published at or after `at_ms`; the topic's
    /// end when there is none, so reading from it returns nothing yet but continues correctly.
    pub(crate) async fn first_offset_at(
        &self,
        topic: &str,
        at_ms: i64,
    ) -> Result<i64, ProviderError> {
        let mut conn = self
            .reader
            .acquire()
            .await
            .map_err(|e| storage_error("reading the log", e))?;
        let found: Option<i64> = sqlx::query_scalar(
            "SELECT MIN(record_offset) FROM records WHERE topic = ? AND published_at_ms >= ?",
        )
        .bind(topic)
        .bind(at_ms)
        .fetch_one(&mut *conn)
        .await
        .map_err(|e| storage_error("finding a record by time", e))?;
        match found {
            Some(offset) => Ok(offset),
            None => end_offset(&mut conn, topic).await,
        }
    }

    /// Whether the database answers at all; used by health.
    pub(crate) async fn ping(&self) -> Result<(), ProviderError> {
        sqlx::query("SELECT 1")
            .execute(&self.reader)
            .await
            .map(drop)
            .map_err(|e| storage_error("pinging the log", e))
    }
}

/// Appends `messages` to `topic` inside the caller's write transaction; see [`Log::append`].
async fn append_in(
    conn: &mut sqlx::SqliteConnection,
    topic: &str,
    messages: &[NewMessage],
) -> Result<Vec<i64>, ProviderError> {
    let encoded = messages
        .iter()
        .map(|m| Ok((encode(&m.headers)?, encode(&m.payload)?)))
        .collect::<Result<Vec<_>, ProviderError>>()?;
    let last: Option<(i64, i64)> = sqlx::query_as(
        "SELECT record_offset, published_at_ms FROM records
         WHERE topic = ? ORDER BY record_offset DESC LIMIT 1",
    )
    .bind(topic)
    .fetch_optional(&mut *conn)
    .await
    .map_err(|e| storage_error("reading the topic's end", e))?;
    let (first, published_at_ms) = match last {
        Some((offset, at)) => (offset + 1, now_ms().max(at)),
        None => (0, now_ms()),
    };
    let mut offsets = Vec::with_capacity(messages.len());
    for (offset, (message, (headers, payload))) in (first..).zip(messages.iter().zip(&encoded)) {
        sqlx::query(
            "INSERT INTO records
             (topic, record_offset, record_key, headers, payload, published_at_ms)
             VALUES (?, ?, ?, ?, ?, ?)",
        )
        .bind(topic)
        .bind(offset)
        .bind(message.key.as_deref())
        .bind(headers)
        .bind(payload)
        .bind(published_at_ms)
        .execute(&mut *conn)
        .await
        .map_err(|e| storage_error("appending a record", e))?;
        offsets.push(offset);
    }
    Ok(offsets)
}

async fn read_in(
    conn: &mut sqlx::SqliteConnection,
    topic: &str,
    from: i64,
    limit: i64,
) -> Result<Vec<StoredRecord>, ProviderError> {
    let rows: Vec<(i64, Option<String>, String, String, i64)> = sqlx::query_as(
        "SELECT record_offset, record_key, headers, payload, published_at_ms FROM records
         WHERE topic = ? AND record_offset >= ? ORDER BY record_offset LIMIT ?",
    )
    .bind(topic)
    .bind(from)
    .bind(limit)
    .fetch_all(conn)
    .await
    .map_err(|e| storage_error("reading records", e))?;
    rows.into_iter()
        .map(|(offset, key, headers, payload, published_at_ms)| {
            Ok(StoredRecord {
                offset,
                key,
                headers: decode(&headers)?,
                payload: decode(&payload)?,
                published_at_ms,
            })
        })
        .collect()
}

async fn committed_in(
    conn: &mut sqlx::SqliteConnection,
    group: &str,
    topic: &str,
) -> Result<i64, ProviderError> {
    let committed: Option<i64> = sqlx::query_scalar(
        "SELECT next_offset FROM group_offsets WHERE group_name = ? AND topic = ?",
    )
    .bind(group)
    .bind(topic)
    .fetch_optional(conn)
    .await
    .map_err(|e| storage_error("reading a committed offset", e))?;
    Ok(committed.unwrap_or(0))
}

/// Stores the group's position and clears its delivery count on the topic: a count belongs to
/// the record at the position it was taken at.
async fn set_position(
    conn: &mut sqlx::SqliteConnection,
    group: &str,
    topic: &str,
    next_offset: i64,
) -> Result<(), ProviderError> {
    sqlx::query(
        "INSERT INTO group_offsets (group_name, topic, next_offset) VALUES (?, ?, ?)
         ON CONFLICT (group_name, topic) DO UPDATE SET next_offset = excluded.next_offset",
    )
    .bind(group)
    .bind(topic)
    .bind(next_offset)
    .execute(&mut *conn)
    .await
    .map_err(|e| storage_error("writing a committed offset", e))?;
    sqlx::query("DELETE FROM group_deliveries WHERE group_name = ? AND topic = ?")
        .bind(group)
        .bind(topic)
        .execute(&mut *conn)
        .await
        .map_err(|e| storage_error("resetting a delivery count", e))?;
    Ok(())
}

/// The next offset `topic` will assign: one past its last record, 0 for an unknown topic.
async fn end_offset(conn: &mut sqlx::SqliteConnection, topic: &str) -> Result<i64, ProviderError> {
    sqlx::query_scalar("SELECT COALESCE(MAX(record_offset) + 1, 0) FROM records WHERE topic = ?")
        .bind(topic)
        .fetch_one(conn)
        .await
        .map_err(|e| storage_error("reading the topic's end", e))
}

fn now_ms() -> i64 {
    // A clock before 1970 is a broken host; 0 keeps the log usable and ordered.
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

fn encode<T: serde::Serialize>(value: &T) -> Result<String, ProviderError> {
    serde_json::to_string(value)
        .map_err(|e| ProviderError::internal(format!("record not serializable: {e}")))
}

fn decode<T: serde::de::DeserializeOwned>(text: &str) -> Result<T, ProviderError> {
    serde_json::from_str(text).map_err(|e| {
        tracing::error!(error = %e, "bus log holds a record that is not valid JSON");
        ProviderError::internal(format!("stored record is corrupt: {e}"))
    })
}

/// SQLite's primary result codes for "someone else holds the lock"; extended codes
/// (e.g. `SQLITE_BUSY_SNAPSHOT`) keep the primary one in their low byte.
const SQLITE_BUSY: i32 = 5;
const SQLITE_LOCKED: i32 = 6;

/// Maps a storage failure to the contract: lock contention, an exhausted pool and I/O errors
/// are retryable `provider_unavailable`, anything else is an internal error (and logged, since it means
/// a broken disk or a bug rather than load).
fn storage_error(doing: &str, error: sqlx::Error) -> ProviderError {
    let transient = match &error {
        sqlx::Error::Database(db) => db
            .code()
            .and_then(|code| code.parse::<i32>().ok())
            .is_some_and(|code| matches!(code & 0xff, SQLITE_BUSY | SQLITE_LOCKED)),
        sqlx::Error::PoolTimedOut | sqlx::Error::Io(_) => true,
        _ => false,
    };
    if transient {
        tracing::warn!(error = %error, "bus log unavailable while {doing}");
        ProviderError::unavailable(format!("the bus log is busy ({doing}): {error}; retry"))
    } else {
        tracing::error!(error = %error, "bus log failed while {doing}");
        ProviderError::internal(format!("the bus log failed while {doing}: {error}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(payload: Value) -> NewMessage {
        NewMessage {
            key: None,
            headers: BTreeMap::new(),
            payload,
        }
    }

    #[tokio::test]
    async fn the_writer_runs_wal_with_full_sync() {
        let dir = tempfile::tempdir().unwrap();
        let log = Log::open(&dir.path().join("t.db"), Duration::from_secs(1))
            .await
            .unwrap();
        let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
            .fetch_one(&log.writer)
            .await
            .unwrap();
        let sync: i64 = sqlx::query_scalar("PRAGMA synchronous")
            .fetch_one(&log.writer)
            .await
            .unwrap();
        assert_eq!(mode, "wal");
        assert_eq!(sync, 2, "synchronous must be FULL (2)");
    }

    #[tokio::test]
    async fn a_held_lock_is_retryable_unavailable() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        let log = Log::open(&path, Duration::from_millis(50)).await.unwrap();
        let other = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(SqliteConnectOptions::new().filename(&path))
            .await
            .unwrap();
        let mut holder = other.begin_with("BEGIN EXCLUSIVE").await.unwrap();
        sqlx::query("DELETE FROM group_offsets")
            .execute(&mut *holder)
            .await
            .unwrap();

        let err = log.append("t", &[message(Value::Null)]).await.unwrap_err();
        assert_eq!(err.code, ErrorCode::ProviderUnavailable, "{err:?}");
        assert!(err.retryable);

        holder.rollback().await.unwrap();
        assert_eq!(log.append("t", &[message(Value::Null)]).await.unwrap(), [0]);
    }

    #[tokio::test]
    async fn published_at_never_goes_backwards_within_a_topic() {
        let dir = tempfile::tempdir().unwrap();
        let log = Log::open(&dir.path().join("t.db"), Duration::from_secs(1))
            .await
            .unwrap();
        // A record stamped in the future stands for a clock that has since stepped back.
        let future = now_ms() + 3_600_000;
        sqlx::query("INSERT INTO records VALUES ('t', 0, NULL, '{}', 'null', ?)")
            .bind(future)
            .execute(&log.writer)
            .await
            .unwrap();

        assert_eq!(log.append("t", &[message(Value::Null)]).await.unwrap(), [1]);
        let records = log.read("t", 0, 10).await.unwrap();
        assert_eq!(records[1].published_at_ms, future);
        assert_eq!(log.first_offset_at("t", future).await.unwrap(), 0);
    }

    #[tokio::test]
    async fn readers_cannot_write() {
        let dir = tempfile::tempdir().unwrap();
        let log = Log::open(&dir.path().join("t.db"), Duration::from_secs(1))
            .await
            .unwrap();
        let write = sqlx::query("DELETE FROM records")
            .execute(&log.reader)
            .await;
        assert!(write.is_err(), "a reader connection accepted a write");
    }

    #[tokio::test]
    async fn ping_fails_once_the_pools_are_closed() {
        let dir = tempfile::tempdir().unwrap();
        let log = Log::open(&dir.path().join("t.db"), Duration::from_secs(1))
            .await
            .unwrap();
        log.ping().await.unwrap();
        log.reader.close().await;
        assert!(log.ping().await.is_err());
    }
}
