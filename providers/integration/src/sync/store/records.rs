//! Kept raw records (the latest per stream × key, with its cursor value, a deleted flag and
//! the last run that saw it) and the cursors per stream × destination.

use serde_json::Value;
use sqlx::{QueryBuilder, Row, Sqlite};
use switchyard_spi::ProviderError;

use super::{Store, parse_json, storage_error};

/// One kept raw record.
pub(crate) struct Kept {
    pub(crate) key: String,
    pub(crate) raw: Value,
    pub(crate) cursor: Option<Value>,
}

impl Store {
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
}

/// Keeps raw records (the latest of each key), marked seen by `run_id` when a run read them.
pub(super) async fn keep(
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

pub(super) async fn set_cursor(
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
