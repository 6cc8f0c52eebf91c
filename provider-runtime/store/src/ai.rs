//! The AI gateway's budgets and audit records, kept here so that every gateway replica on one
//! PostgreSQL store enforces one budget.
//!
//! A budget is a set of buckets, each one limit of one tenant over one window (tokens per key
//! per day, cost per tenant per month, ...), named by the gateway. A call first *reserves* what
//! it may use in every bucket it counts against, all or nothing; when it ends it *settles*,
//! turning its reservation into what it actually used. A bucket admits a reservation only
//! while `spent + reserved + amount <= cap`, checked and applied by one row update, so however
//! many replicas reserve at once, what a bucket ever counts is at most its cap, and what it
//! finally spends exceeds the cap by no more than calls that used more than they reserved.
//!
//! A replica that dies mid-call leaves its reservation behind; once its lease has run out the
//! sweep ([`PlatformStore::ai_expire_reservations`]) counts it as fully spent, because the
//! upstream may well have charged for the call: a budget may over-count, never under-count.
//!
//! Times come from the caller (Unix milliseconds), as for idempotency records, so every rule is
//! testable without sleeping.

use std::collections::{BTreeMap, HashSet};

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sqlx::{Any, Row, Transaction};
use switchyard_contracts::TenantId;

use super::{Backend, PlatformStore, StoreError};

/// What one call asks of one bucket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Charge {
    /// The bucket's name within its tenant, built by the gateway from the limit and its window.
    pub bucket: String,
    /// The limit as configured now: a bucket's cap always follows the newest config, so a
    /// raised or lowered limit applies from the next call on, within the running window.
    pub cap: i64,
    /// What the call may use at most (e.g. prompt tokens plus `max_tokens`).
    pub amount: i64,
    /// The end of the bucket's window, after which the bucket may be deleted. Taken when the
    /// bucket is created; the window is part of the bucket's name.
    pub expires_at_ms: i64,
}

/// The answer to [`PlatformStore::ai_reserve`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reserve {
    /// Every charge is reserved; settle it with [`PlatformStore::ai_settle`].
    Granted,
    /// This bucket has no room for its charge, so nothing was reserved anywhere. `spent` and
    /// `reserved` are the bucket's counts without this call.
    Refused {
        bucket: String,
        cap: i64,
        spent: i64,
        reserved: i64,
    },
}

/// One bucket as it stands, for a usage readout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bucket {
    pub bucket: String,
    pub cap: i64,
    pub spent: i64,
    pub reserved: i64,
    pub expires_at_ms: i64,
}

/// One audit record of the AI gateway: a JSON document per call, redacted by the gateway
/// before it gets here.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditRow {
    pub tenant: TenantId,
    /// A UUIDv7, as text: ordering by id is ordering by time, which is what pages follow.
    pub id: String,
    pub at_ms: i64,
    pub record: Value,
}

/// What a reservation holds in one bucket, as kept in its row.
#[derive(Debug, Serialize, Deserialize)]
struct Held {
    bucket: String,
    amount: i64,
}

/// Audit rows per INSERT statement: 4 parameters each, well inside SQLite's (32,766) and
/// PostgreSQL's (65,535) limits on bound parameters.
const AUDIT_ROWS_PER_INSERT: usize = 256;
const AUDIT_COLUMNS: usize = 4;

impl PlatformStore {
    /// Reserves every charge for the call `reservation_id`, or none.
    ///
    /// In one transaction, bucket by bucket in name order: the bucket is created if missing
    /// (or its cap set to the charge's, which also locks its row), then
    /// `UPDATE ... SET reserved = reserved + amount WHERE spent + reserved + amount <= cap`.
    /// No row updated means no room: the transaction rolls back, undoing the buckets already
    /// charged, and the call is refused. Why that is exact with several writers:
    ///
    /// - PostgreSQL (READ COMMITTED): a row update that finds the row locked by a concurrent
    ///   transaction waits for it, then evaluates its WHERE again on the row as committed, so
    ///   two reservations can never both pass the check against the same `reserved`. Taking
    ///   the buckets in name order means two reservations over the same buckets lock them in
    ///   the same order and cannot deadlock. The upsert locks an existing row rather than
    ///   skipping it, so a sweep cannot delete the bucket between the upsert and the update.
    /// - SQLite: `BEGIN IMMEDIATE` takes the database's write lock before the first statement,
    ///   as in `idempotency_begin`, so reservations run one after another, from any number of
    ///   processes on the file.
    ///
    /// The reservation is recorded with its lease: settle it before `lease_until_ms`, or the
    /// sweep counts it as spent. An id already held is refused as invalid, charging nothing:
    /// the gateway makes a new one per call.
    pub async fn ai_reserve(
        &self,
        tenant: &TenantId,
        reservation_id: &str,
        charges: &[Charge],
        lease_until_ms: i64,
    ) -> Result<Reserve, StoreError> {
        let mut sorted: Vec<&Charge> = charges.iter().collect();
        sorted.sort_by(|a, b| a.bucket.cmp(&b.bucket));
        if let Some(pair) = sorted.windows(2).find(|p| p[0].bucket == p[1].bucket) {
            return Err(StoreError::Invalid(format!(
                "AI budget: bucket {} charged twice in one reservation",
                pair[0].bucket
            )));
        }
        if let Some(charge) = sorted.iter().find(|c| c.amount < 0 || c.cap < 0) {
            return Err(StoreError::Invalid(format!(
                "AI budget: bucket {} charged with a negative cap or amount",
                charge.bucket
            )));
        }
        let held: Vec<Held> = sorted
            .iter()
            .map(|c| Held {
                bucket: c.bucket.clone(),
                amount: c.amount,
            })
            .collect();
        let held = serde_json::to_string(&held)
            .map_err(|e| StoreError::Invalid(format!("AI reservation charges: {e}")))?;

        let mut tx = self.begin_write().await?;
        let recorded = sqlx::query(
            "INSERT INTO ai_reservations (tenant_id, id, charges, lease_until_ms)
             VALUES ($1, $2, $3, $4) ON CONFLICT (tenant_id, id) DO NOTHING",
        )
        .bind(tenant.as_str())
        .bind(reservation_id)
        .bind(held)
        .bind(lease_until_ms)
        .execute(&mut *tx)
        .await?;
        if recorded.rows_affected() == 0 {
            return Err(StoreError::Invalid(format!(
                "AI reservation {reservation_id} is already held"
            )));
        }
        for charge in sorted {
            sqlx::query(
                "INSERT INTO ai_budget_buckets
                        (tenant_id, bucket, cap, spent, reserved, expires_at_ms)
                 VALUES ($1, $2, $3, 0, 0, $4)
                 ON CONFLICT (tenant_id, bucket) DO UPDATE SET cap = excluded.cap",
            )
            .bind(tenant.as_str())
            .bind(&charge.bucket)
            .bind(charge.cap)
            .bind(charge.expires_at_ms)
            .execute(&mut *tx)
            .await?;
            let reserved = sqlx::query(
                "UPDATE ai_budget_buckets SET reserved = reserved + $3
                  WHERE tenant_id = $1 AND bucket = $2 AND spent + reserved + $3 <= cap",
            )
            .bind(tenant.as_str())
            .bind(&charge.bucket)
            .bind(charge.amount)
            .execute(&mut *tx)
            .await?;
            if reserved.rows_affected() == 0 {
                let row = sqlx::query(
                    "SELECT cap, spent, reserved FROM ai_budget_buckets
                      WHERE tenant_id = $1 AND bucket = $2",
                )
                .bind(tenant.as_str())
                .bind(&charge.bucket)
                .fetch_one(&mut *tx)
                .await?;
                let refused = Reserve::Refused {
                    bucket: charge.bucket.clone(),
                    cap: row.try_get("cap")?,
                    spent: row.try_get("spent")?,
                    reserved: row.try_get("reserved")?,
                };
                tx.rollback().await?;
                return Ok(refused);
            }
        }
        tx.commit().await?;
        Ok(Reserve::Granted)
    }

    /// Ends the call `reservation_id`: in each bucket it reserved, the reservation is released
    /// and `actual` counted as spent (a bucket missing from `actual` spent nothing). Returns
    /// false, changing nothing, if the reservation is not held: already settled, swept, or
    /// never made, so a retried settle never counts twice.
    ///
    /// `actual` names only buckets the reservation holds: a bucket it did not reserve was never
    /// checked against its cap, so a use counted there would be the caller's mistake.
    pub async fn ai_settle(
        &self,
        tenant: &TenantId,
        reservation_id: &str,
        actual: &[(String, i64)],
    ) -> Result<bool, StoreError> {
        let mut seen = HashSet::new();
        for (bucket, amount) in actual {
            if *amount < 0 || !seen.insert(bucket.as_str()) {
                return Err(StoreError::Invalid(format!(
                    "AI settle: bucket {bucket} used a negative amount or named twice"
                )));
            }
        }
        let mut tx = self.begin_write().await?;
        // Deleting first claims the reservation: of two concurrent settles (or a settle and
        // the sweep) the second waits for the row, finds it gone and changes nothing.
        let row = sqlx::query(
            "DELETE FROM ai_reservations WHERE tenant_id = $1 AND id = $2 RETURNING charges",
        )
        .bind(tenant.as_str())
        .bind(reservation_id)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = row else {
            tx.rollback().await?;
            return Ok(false);
        };
        let held = held_charges(&row)?;
        if let Some((bucket, _)) = actual
            .iter()
            .find(|(bucket, _)| !held.iter().any(|h| &h.bucket == bucket))
        {
            tx.rollback().await?;
            return Err(StoreError::Invalid(format!(
                "AI settle: reservation {reservation_id} holds nothing in bucket {bucket}"
            )));
        }
        // `held` is in bucket order, as reserved, so settles lock buckets as reservations do.
        for h in &held {
            let used = actual
                .iter()
                .find(|(bucket, _)| *bucket == h.bucket)
                .map_or(0, |(_, amount)| *amount);
            release(&mut tx, tenant.as_str(), &h.bucket, h.amount, used).await?;
        }
        tx.commit().await?;
        Ok(true)
    }

    /// The sweep: every reservation whose lease ran out by `now_ms` (its replica died, or lost
    /// the store, mid-call) is settled as fully spent, since the upstream may have charged for
    /// the call; then buckets whose window ended by `now_ms` are deleted. Returns how many
    /// reservations were settled.
    ///
    /// One sweep at a time: on PostgreSQL a replica that finds another replica sweeping skips
    /// this round (returning 0) rather than wait, and two sweeps can never lock reservations
    /// in different orders and deadlock. On SQLite the write lock already serializes them.
    pub async fn ai_expire_reservations(&self, now_ms: i64) -> Result<u64, StoreError> {
        let mut tx = self.begin_write().await?;
        if self.backend == Backend::Postgres {
            let sweeping: bool = sqlx::query_scalar(
                "SELECT pg_try_advisory_xact_lock(hashtextextended('switchyard.ai_sweep', 0))",
            )
            .fetch_one(&mut *tx)
            .await?;
            if !sweeping {
                tx.rollback().await?;
                return Ok(0);
            }
        }
        let rows = sqlx::query(
            "DELETE FROM ai_reservations WHERE lease_until_ms <= $1 RETURNING tenant_id, charges",
        )
        .bind(now_ms)
        .fetch_all(&mut *tx)
        .await?;
        // Summed per bucket and applied in (tenant, bucket) order: within a tenant the order
        // reservations lock buckets in, so the sweep cannot deadlock with them.
        let mut spent: BTreeMap<(String, String), i64> = BTreeMap::new();
        for row in &rows {
            let tenant: String = row.try_get("tenant_id")?;
            for h in held_charges(row)? {
                *spent.entry((tenant.clone(), h.bucket)).or_default() += h.amount;
            }
        }
        for ((tenant, bucket), amount) in &spent {
            release(&mut tx, tenant, bucket, *amount, *amount).await?;
        }
        sqlx::query("DELETE FROM ai_budget_buckets WHERE expires_at_ms <= $1")
            .bind(now_ms)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(rows.len() as u64)
    }

    /// The tenant's buckets as they stand, by name, including ended windows not yet swept.
    pub async fn ai_usage(&self, tenant: &TenantId) -> Result<Vec<Bucket>, StoreError> {
        let rows = sqlx::query(
            "SELECT bucket, cap, spent, reserved, expires_at_ms FROM ai_budget_buckets
              WHERE tenant_id = $1 ORDER BY bucket",
        )
        .bind(tenant.as_str())
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(Bucket {
                    bucket: row.try_get("bucket")?,
                    cap: row.try_get("cap")?,
                    spent: row.try_get("spent")?,
                    reserved: row.try_get("reserved")?,
                    expires_at_ms: row.try_get("expires_at_ms")?,
                })
            })
            .collect()
    }

    /// Writes a batch of audit records in one transaction, [`AUDIT_ROWS_PER_INSERT`] rows to a
    /// statement (the gateway buffers them off the request path). A record whose id is already
    /// stored is skipped, so a batch retried after a lost commit is not doubled.
    pub async fn ai_audit_append(&self, records: &[AuditRow]) -> Result<(), StoreError> {
        let mut tx = self.begin_write().await?;
        for chunk in records.chunks(AUDIT_ROWS_PER_INSERT) {
            let sql = format!(
                "INSERT INTO ai_audit_records (tenant_id, id, at_ms, record) VALUES {}
                 ON CONFLICT (tenant_id, id) DO NOTHING",
                self.audit_placeholders(chunk.len())
            );
            let mut query = sqlx::query(&sql);
            for r in chunk {
                query = query
                    .bind(r.tenant.as_str())
                    .bind(&r.id)
                    .bind(r.at_ms)
                    .bind(r.record.to_string());
            }
            query.execute(&mut *tx).await?;
        }
        // The tokens each call used count toward its tenant's usage (the operator's view).
        let mut tokens: std::collections::BTreeMap<(&str, String), i64> = Default::default();
        for r in records {
            let used = r.record["usage"]["total_tokens"].as_i64().unwrap_or(0);
            if used > 0 {
                *tokens
                    .entry((r.tenant.as_str(), crate::usage::utc_day(r.at_ms)))
                    .or_default() += used;
            }
        }
        for ((tenant, day), used) in tokens {
            crate::usage::add(&mut tx, tenant, &day, 0, 0, used).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// One page of the tenant's audit records, newest first: those at or after `since_ms`,
    /// older than the record `before_id` (the last of the previous page), `limit` at most.
    pub async fn ai_audit_list(
        &self,
        tenant: &TenantId,
        since_ms: Option<i64>,
        before_id: Option<&str>,
        limit: u32,
    ) -> Result<Vec<AuditRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, at_ms, record FROM ai_audit_records
              WHERE tenant_id = $1
                AND ($2 IS NULL OR at_ms >= $2)
                AND ($3 IS NULL OR id < $3)
              ORDER BY id DESC
              LIMIT $4",
        )
        .bind(tenant.as_str())
        .bind(since_ms)
        .bind(before_id)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                let record: String = row.try_get("record")?;
                Ok(AuditRow {
                    tenant: tenant.clone(),
                    id: row.try_get("id")?,
                    at_ms: row.try_get("at_ms")?,
                    record: serde_json::from_str(&record)
                        .map_err(|e| StoreError::Invalid(format!("AI audit record: {e}")))?,
                })
            })
            .collect()
    }

    /// Deletes the tenant's audit records from before `older_than_ms` and returns how many
    /// went: retention is the tenant's own setting, so each tenant is purged on its own.
    pub async fn ai_audit_purge(
        &self,
        tenant: &TenantId,
        older_than_ms: i64,
    ) -> Result<u64, StoreError> {
        let deleted =
            sqlx::query("DELETE FROM ai_audit_records WHERE tenant_id = $1 AND at_ms < $2")
                .bind(tenant.as_str())
                .bind(older_than_ms)
                .execute(&self.pool)
                .await?;
        Ok(deleted.rows_affected())
    }

    /// `(?, ?, ?, ?), (...)` for `rows` audit rows: anonymous placeholders on SQLite, which
    /// looks numbered ones up in a linear list (see `record_decisions`), `$n` on PostgreSQL,
    /// which takes nothing else.
    fn audit_placeholders(&self, rows: usize) -> String {
        let row = |r: usize| -> String {
            let values: Vec<String> = (1..=AUDIT_COLUMNS)
                .map(|c| match self.backend {
                    Backend::Sqlite => "?".to_owned(),
                    Backend::Postgres => format!("${}", r * AUDIT_COLUMNS + c),
                })
                .collect();
            format!("({})", values.join(", "))
        };
        (0..rows).map(row).collect::<Vec<_>>().join(", ")
    }
}

/// Releases `reserved` in one bucket and counts `used` as spent. A bucket swept meanwhile (its
/// window ended during the call) is left deleted: nothing counts against an ended window.
async fn release(
    tx: &mut Transaction<'static, Any>,
    tenant: &str,
    bucket: &str,
    reserved: i64,
    used: i64,
) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE ai_budget_buckets SET reserved = reserved - $3, spent = spent + $4
          WHERE tenant_id = $1 AND bucket = $2",
    )
    .bind(tenant)
    .bind(bucket)
    .bind(reserved)
    .bind(used)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// The charges column of a reservation row.
fn held_charges(row: &sqlx::any::AnyRow) -> Result<Vec<Held>, StoreError> {
    let charges: String = row.try_get("charges")?;
    serde_json::from_str(&charges)
        .map_err(|e| StoreError::Invalid(format!("AI reservation charges: {e}")))
}
