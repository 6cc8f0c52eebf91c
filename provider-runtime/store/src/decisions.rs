//! The policy decision log: what was decided, for whom, under which bundle revision.
//!
//! Auditors read it newest first, one tenant at a time, with keyset pagination so a page never
//! shifts under concurrent writes.

use std::collections::HashSet;

use serde::Serialize;
use serde_json::Value;
use sqlx::{AnyConnection, Connection, Row};
use switchyard_contracts::TenantId;

use super::{Backend, PlatformStore, StoreError};

/// Rows per INSERT statement of the decision log: 9 parameters each, well inside SQLite's
/// (32,766) and PostgreSQL's (65,535) limits on bound parameters.
const ROWS_PER_INSERT: usize = 256;
const DECISION_COLUMNS: usize = 9;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DecisionRecord {
    pub decision_id: String,
    pub at_ms: i64,
    pub tenant: String,
    pub subject: String,
    pub allowed: bool,
    pub reasons: Vec<String>,
    pub revision: String,
    /// The policy input as evaluated, with secrets and PII already masked by the caller. When
    /// `input_digest` is set, `Null` says that this input was recorded with an earlier
    /// decision of the same revision; reads always fill it in.
    pub input: Value,
    /// SHA-256 (hex) of the input, when the gateway's decision cache keyed the decision by it:
    /// each distinct input is then stored once per revision rather than once per decision.
    #[serde(skip)]
    pub input_digest: Option<String>,
}

/// Which decisions an auditor wants; the tenant is always the auditor's own.
#[derive(Debug, Clone, Default)]
pub struct DecisionFilter {
    pub subject: Option<String>,
    pub allowed: Option<bool>,
    pub from_ms: Option<i64>,
    pub to_ms: Option<i64>,
    /// `(at_ms, decision_id)` of the last record of the previous page.
    pub after: Option<(i64, String)>,
    pub limit: u32,
}

impl PlatformStore {
    /// Writes a batch in one transaction: the gateway logs decisions off the request path.
    /// Rows go [`ROWS_PER_INSERT`] to a statement: one statement per row cost a round trip to
    /// the database (for SQLite, to sqlx's worker thread: two thread wake-ups) per decision,
    /// which under load was most of the gateway's CPU (docs/performance.md).
    ///
    /// The commit is not flushed to disk (SQLite: `synchronous = NORMAL` for this transaction
    /// only; PostgreSQL: `synchronous_commit = off`): the batch already waited in memory for
    /// the writer's window, where a crash loses it anyway, so a flush would buy nothing for
    /// these rows and cost an fsync per batch. The database stays consistent either way.
    pub async fn record_decisions(&self, records: &[DecisionRecord]) -> Result<(), StoreError> {
        let sqlite = matches!(self.backend, Backend::Sqlite);
        let mut conn = self.pool.acquire().await?;
        if sqlite {
            // SQLite refuses to change it inside a transaction.
            sqlx::query("PRAGMA synchronous = NORMAL")
                .execute(&mut *conn)
                .await?;
        }
        let written = self.insert_decisions(&mut conn, records).await;
        if sqlite
            && sqlx::query("PRAGMA synchronous = FULL")
                .execute(&mut *conn)
                .await
                .is_err()
        {
            // A connection with weaker durability never goes back to the pool.
            conn.close_on_drop();
        }
        written
    }

    async fn insert_decisions(
        &self,
        conn: &mut AnyConnection,
        records: &[DecisionRecord],
    ) -> Result<(), StoreError> {
        let mut tx = conn.begin().await?;
        if matches!(self.backend, Backend::Postgres) {
            sqlx::query("SET LOCAL synchronous_commit = off")
                .execute(&mut *tx)
                .await?;
        }
        // Inputs first, each distinct one once per batch; a replica (or an evicted cache entry)
        // recording one again is ignored by the primary key.
        let mut seen = HashSet::new();
        let mut inputs: Vec<(&str, &str, String)> = Vec::new();
        for record in records {
            if let (Some(digest), false) = (&record.input_digest, record.input.is_null())
                && seen.insert((record.revision.as_str(), digest.as_str()))
            {
                inputs.push((&record.revision, digest, record.input.to_string()));
            }
        }
        for chunk in inputs.chunks(ROWS_PER_INSERT) {
            let sql = format!(
                "INSERT INTO policy_inputs (revision, digest, input) VALUES {}
                 ON CONFLICT (revision, digest) DO NOTHING",
                self.rows_of_placeholders(chunk.len(), 3)
            );
            let mut query = sqlx::query(&sql);
            for (revision, digest, input) in chunk {
                query = query.bind(*revision).bind(*digest).bind(input.as_str());
            }
            query.execute(&mut *tx).await?;
        }
        for chunk in records.chunks(ROWS_PER_INSERT) {
            let sql = format!(
                "INSERT INTO policy_decisions (id, at_ms, tenant_id, subject, allowed, reasons, revision, input, input_digest) VALUES {}",
                self.rows_of_placeholders(chunk.len(), DECISION_COLUMNS)
            );
            let mut query = sqlx::query(&sql);
            for r in chunk {
                let inline = match r.input_digest {
                    Some(_) => String::new(),
                    None => r.input.to_string(),
                };
                query = query
                    .bind(&r.decision_id)
                    .bind(r.at_ms)
                    .bind(&r.tenant)
                    .bind(&r.subject)
                    .bind(r.allowed)
                    .bind(serde_json::to_string(&r.reasons).unwrap_or_default())
                    .bind(&r.revision)
                    .bind(inline)
                    .bind(r.input_digest.as_deref());
            }
            query.execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// `(?, ?), (?, ?)` for `rows` rows of `columns` values. SQLite gets anonymous
    /// placeholders: binding a numbered one makes it look the number up in a linear list, so a
    /// statement of 256 × 9 numbered parameters cost a quadratic scan — a fifth of `serve`'s
    /// CPU under load, in `sqlite3_bind_parameter_name`. PostgreSQL takes only `$n`.
    fn rows_of_placeholders(&self, rows: usize, columns: usize) -> String {
        let mut sql = String::with_capacity(rows * columns * 6);
        for row in 0..rows {
            sql.push_str(if row == 0 { "(" } else { ", (" });
            for column in 0..columns {
                if column > 0 {
                    sql.push_str(", ");
                }
                match self.backend {
                    Backend::Sqlite => sql.push('?'),
                    Backend::Postgres => {
                        sql.push_str(&format!("${}", row * columns + column + 1));
                    }
                }
            }
            sql.push(')');
        }
        sql
    }

    pub async fn list_decisions(
        &self,
        tenant: &TenantId,
        filter: &DecisionFilter,
    ) -> Result<Vec<DecisionRecord>, StoreError> {
        // One statement for every filter: an absent filter binds NULL and drops out. (sqlx's
        // Any `QueryBuilder` would write `?` placeholders, which PostgreSQL does not take.)
        // `allowed` is an INTEGER in SQLite and a BOOLEAN in PostgreSQL, and the Any driver
        // decodes neither as the other, so it is read back as a number.
        let rows = sqlx::query(
            "SELECT d.id, d.at_ms, d.tenant_id, d.subject,
                    CASE WHEN d.allowed THEN 1 ELSE 0 END AS allowed, d.reasons, d.revision,
                    CASE WHEN d.input_digest IS NULL THEN d.input ELSE COALESCE(i.input, '{}') END AS input,
                    d.input_digest
               FROM policy_decisions d
               LEFT JOIN policy_inputs i ON i.revision = d.revision AND i.digest = d.input_digest
              WHERE d.tenant_id = $1
                AND ($2 IS NULL OR d.subject = $2)
                AND ($3 IS NULL OR d.allowed = $3)
                AND ($4 IS NULL OR d.at_ms >= $4)
                AND ($5 IS NULL OR d.at_ms < $5)
                AND ($6 IS NULL OR d.at_ms < $6 OR (d.at_ms = $6 AND d.id < $7))
              ORDER BY d.at_ms DESC, d.id DESC
              LIMIT $8",
        )
        .bind(tenant.as_str())
        .bind(filter.subject.as_deref())
        .bind(filter.allowed)
        .bind(filter.from_ms)
        .bind(filter.to_ms)
        .bind(filter.after.as_ref().map(|(at, _)| *at))
        .bind(filter.after.as_ref().map(|(_, id)| id.as_str()))
        .bind(i64::from(filter.limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                let reasons: String = row.try_get("reasons")?;
                let input: String = row.try_get("input")?;
                Ok(DecisionRecord {
                    decision_id: row.try_get("id")?,
                    at_ms: row.try_get("at_ms")?,
                    tenant: row.try_get("tenant_id")?,
                    subject: row.try_get("subject")?,
                    allowed: row.try_get::<i64, _>("allowed")? != 0,
                    reasons: serde_json::from_str(&reasons)
                        .map_err(|e| StoreError::Invalid(e.to_string()))?,
                    revision: row.try_get("revision")?,
                    input: serde_json::from_str(&input)
                        .map_err(|e| StoreError::Invalid(e.to_string()))?,
                    input_digest: row.try_get("input_digest")?,
                })
            })
            .collect()
    }
}
