//! The policy decision log: what was decided, for whom, under which bundle revision.
//!
//! Auditors read it newest first, one tenant at a time, with keyset pagination so a page never
//! shifts under concurrent writes.

use std::collections::HashSet;

use serde::Serialize;
use serde_json::Value;
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Connection, Row};
use switchyard_contracts::TenantId;

use super::{Backend, PlatformStore, StoreError, now_rfc3339};

/// Rows per INSERT statement of the decision log: 10 parameters each, well inside SQLite's
/// (32,766) and PostgreSQL's (65,535) limits on bound parameters.
const ROWS_PER_INSERT: usize = 256;
const DECISION_COLUMNS: usize = 10;

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
        // Numbers for the upload's cursor, taken last so the counter's row lock, which orders
        // the writers' commits, is held only for the inserts below.
        let count = i64::try_from(records.len()).unwrap_or(i64::MAX);
        let last: i64 = sqlx::query_scalar(
            "UPDATE decision_log_counter SET last = last + $1 WHERE name = 'decisions' RETURNING last",
        )
        .bind(count)
        .fetch_one(&mut *tx)
        .await?;
        let mut seq = last - count;
        for chunk in records.chunks(ROWS_PER_INSERT) {
            let sql = format!(
                "INSERT INTO policy_decisions (id, at_ms, tenant_id, subject, allowed, reasons, revision, input, input_digest, seq) VALUES {}",
                self.rows_of_placeholders(chunk.len(), DECISION_COLUMNS)
            );
            let mut query = sqlx::query(&sql);
            for r in chunk {
                seq += 1;
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
                    .bind(r.input_digest.as_deref())
                    .bind(seq);
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
        let rows = sqlx::query(&format!(
            "{SELECT_DECISIONS}
              WHERE d.tenant_id = $1
                AND ($2 IS NULL OR d.subject = $2)
                AND ($3 IS NULL OR d.allowed = $3)
                AND ($4 IS NULL OR d.at_ms >= $4)
                AND ($5 IS NULL OR d.at_ms < $5)
                AND ($6 IS NULL OR d.at_ms < $6 OR (d.at_ms = $6 AND d.id < $7))
              ORDER BY d.at_ms DESC, d.id DESC
              LIMIT $8"
        ))
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
        rows.iter().map(decode).collect()
    }

    /// Up to `limit` decisions of every tenant numbered after `after`, in the order their
    /// batches committed, each with its number: what the decision-log upload sends next. A
    /// number missing between `after` and the first one returned is a decision purged (by
    /// retention, or with its tenant) before it was uploaded.
    pub async fn decisions_after(
        &self,
        after: i64,
        limit: u32,
    ) -> Result<Vec<(i64, DecisionRecord)>, StoreError> {
        let rows = sqlx::query(&format!(
            "{SELECT_DECISIONS} WHERE d.seq > $1 ORDER BY d.seq LIMIT $2"
        ))
        .bind(after)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| Ok((row.try_get("seq")?, decode(row)?)))
            .collect()
    }

    /// The number of the last decision the collector acknowledged (0: none yet).
    pub async fn decision_upload_cursor(&self) -> Result<i64, StoreError> {
        let seq = sqlx::query_scalar("SELECT seq FROM decision_upload_cursor WHERE name = $1")
            .bind(UPLOAD_CURSOR)
            .fetch_one(&self.pool)
            .await?;
        Ok(seq)
    }

    /// Moves the upload cursor from `from` (the value read before the upload) to `to`. False
    /// when it no longer stands at `from`: another uploader moved it meanwhile, and this one
    /// must read it again rather than move it back.
    pub async fn advance_decision_upload_cursor(
        &self,
        from: i64,
        to: i64,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE decision_upload_cursor SET seq = $3, updated_at = $4
              WHERE name = $1 AND seq = $2",
        )
        .bind(UPLOAD_CURSOR)
        .bind(from)
        .bind(to)
        .bind(now_rfc3339())
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Deletes every tenant's decisions older than its retention (days): its
    /// `decision_retention_days` limit, else `default_days`. Deletes `batch` rows per statement,
    /// each its own transaction, so a large backlog never holds the table for long. Then drops
    /// the recorded inputs of revisions that no decision refers to any more.
    ///
    /// Inputs are dropped per revision, not per row: a gateway running a revision logs a
    /// cached decision by its input's digest alone, for as long as the decision stays in its
    /// cache, so an input of a running revision may be referred to again after its last
    /// decision went. A revision with no decision left has decided nothing within any
    /// tenant's retention.
    pub async fn purge_decisions(
        &self,
        default_days: u32,
        now_ms: i64,
        batch: u32,
    ) -> Result<DecisionPurge, StoreError> {
        let overrides = self.all_tenant_limits().await?;
        let mut purged = DecisionPurge::default();
        for tenant in self.tenants_with_decisions().await? {
            let days = retention_days(
                default_days,
                overrides
                    .get(&tenant)
                    .and_then(|limits| limits.decision_retention_days),
            );
            let cutoff = now_ms.saturating_sub(i64::from(days) * DAY_MS);
            purged.decisions += self.delete_decisions_before(&tenant, cutoff, batch).await?;
        }
        if purged.decisions > 0 {
            purged.inputs = self.purge_unreferenced_inputs(batch).await?;
        }
        Ok(purged)
    }

    /// Deletes `tenant`'s decisions before `cutoff`, oldest first, about `batch` per statement
    /// (each its own transaction: the log's writer gets in between two). A batch is bounded
    /// by the time of the decision `batch` places further on, so each statement is a range of
    /// the primary key; deleting by a list of keys made PostgreSQL hash-join the whole table.
    async fn delete_decisions_before(
        &self,
        tenant: &str,
        cutoff: i64,
        batch: u32,
    ) -> Result<u64, StoreError> {
        let mut deleted = 0;
        loop {
            let bound: Option<i64> = sqlx::query_scalar(
                "SELECT at_ms FROM policy_decisions WHERE tenant_id = $1 AND at_ms < $2
                  ORDER BY at_ms LIMIT 1 OFFSET $3",
            )
            .bind(tenant)
            .bind(cutoff)
            .bind(i64::from(batch))
            .fetch_optional(&self.pool)
            .await?;
            let delete = |upper: i64, inclusive: bool| {
                let sql = if inclusive {
                    "DELETE FROM policy_decisions WHERE tenant_id = $1 AND at_ms <= $2"
                } else {
                    "DELETE FROM policy_decisions WHERE tenant_id = $1 AND at_ms < $2"
                };
                sqlx::query(sql)
                    .bind(tenant)
                    .bind(upper)
                    .execute(&self.pool)
            };
            let Some(bound) = bound else {
                return Ok(deleted + delete(cutoff, false).await?.rows_affected());
            };
            let mut done = delete(bound, false).await?.rows_affected();
            if done == 0 {
                // More than a batch decided in one millisecond: that millisecond goes at once.
                done = delete(bound, true).await?.rows_affected();
            }
            deleted += done;
        }
    }

    /// Every tenant with a decision, found by skipping through the primary key one tenant at
    /// a time rather than reading every row.
    async fn tenants_with_decisions(&self) -> Result<Vec<String>, StoreError> {
        let tenants = sqlx::query_scalar(
            "WITH RECURSIVE t(id) AS (
                SELECT MIN(tenant_id) FROM policy_decisions
                UNION ALL
                SELECT (SELECT MIN(tenant_id) FROM policy_decisions WHERE tenant_id > t.id)
                  FROM t WHERE t.id IS NOT NULL)
             SELECT id FROM t WHERE id IS NOT NULL",
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(tenants)
    }

    async fn purge_unreferenced_inputs(&self, batch: u32) -> Result<u64, StoreError> {
        let revisions: Vec<String> =
            sqlx::query_scalar("SELECT DISTINCT revision FROM policy_inputs")
                .fetch_all(&self.pool)
                .await?;
        let mut purged = 0;
        for revision in revisions {
            let referenced: Option<i64> =
                sqlx::query_scalar("SELECT 1 FROM policy_decisions WHERE revision = $1 LIMIT 1")
                    .bind(&revision)
                    .fetch_optional(&self.pool)
                    .await?;
            if referenced.is_some() {
                continue;
            }
            loop {
                // Bounded by the digest `batch` places further on, as the decisions are.
                let bound: Option<String> = sqlx::query_scalar(
                    "SELECT digest FROM policy_inputs WHERE revision = $1
                      ORDER BY digest LIMIT 1 OFFSET $2",
                )
                .bind(&revision)
                .bind(i64::from(batch))
                .fetch_optional(&self.pool)
                .await?;
                let done = sqlx::query(
                    "DELETE FROM policy_inputs WHERE revision = $1 AND ($2 IS NULL OR digest < $2)",
                )
                .bind(&revision)
                .bind(bound.as_deref())
                .execute(&self.pool)
                .await?;
                purged += done.rows_affected();
                if bound.is_none() {
                    break;
                }
            }
        }
        Ok(purged)
    }
}

/// The columns [`decode`] reads, with the input filled in from `policy_inputs` when the row
/// holds only its digest. `allowed` is an INTEGER in SQLite and a BOOLEAN in PostgreSQL, and
/// the Any driver decodes neither as the other, so it is read back as a number.
const SELECT_DECISIONS: &str = "SELECT d.id, d.at_ms, d.tenant_id, d.subject,
        CASE WHEN d.allowed THEN 1 ELSE 0 END AS allowed, d.reasons, d.revision,
        CASE WHEN d.input_digest IS NULL THEN d.input ELSE COALESCE(i.input, '{}') END AS input,
        d.input_digest, d.seq
   FROM policy_decisions d
   LEFT JOIN policy_inputs i ON i.revision = d.revision AND i.digest = d.input_digest";

fn decode(row: &AnyRow) -> Result<DecisionRecord, StoreError> {
    let reasons: String = row.try_get("reasons")?;
    let input: String = row.try_get("input")?;
    Ok(DecisionRecord {
        decision_id: row.try_get("id")?,
        at_ms: row.try_get("at_ms")?,
        tenant: row.try_get("tenant_id")?,
        subject: row.try_get("subject")?,
        allowed: row.try_get::<i64, _>("allowed")? != 0,
        reasons: serde_json::from_str(&reasons).map_err(|e| StoreError::Invalid(e.to_string()))?,
        revision: row.try_get("revision")?,
        input: serde_json::from_str(&input).map_err(|e| StoreError::Invalid(e.to_string()))?,
        input_digest: row.try_get("input_digest")?,
    })
}

/// The one upload cursor's row (migration 0013 writes it).
const UPLOAD_CURSOR: &str = "opa";

const DAY_MS: i64 = 24 * 3600 * 1000;

/// What one purge removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DecisionPurge {
    pub decisions: u64,
    pub inputs: u64,
}

/// A tenant's retention in days: its own when the operator set one, else the default. An
/// override of 0 would delete every decision the moment it is written; it is ignored (the
/// admin API refuses it, so only a hand-edited row can hold one).
pub fn retention_days(default_days: u32, tenant_days: Option<u32>) -> u32 {
    match tenant_days {
        Some(days) if days > 0 => days,
        _ => default_days,
    }
}
