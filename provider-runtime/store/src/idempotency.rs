//! Idempotency-Key records: a retried POST replays the first response instead of running twice.
//!
//! One record per (tenant, key), bound to a fingerprint of the request. A record is
//! `in_flight` while the first request runs, under a lease so a gateway that dies mid-request
//! does not block the key forever, and `done` once its response is stored. Times come from the
//! caller (Unix milliseconds), which keeps every rule here testable without sleeping.
//!
//! What a tenant's live records hold is bounded by the operator's
//! `idempotency_bytes_per_tenant`: a new request from a tenant at its quota is refused before
//! it runs ([`Begin::QuotaExceeded`]), rather than run without a record, because a request the
//! client protected with a key must never silently lose the protection (a retry would run it
//! twice). A request once admitted keeps its record even if its response takes the tenant past
//! the quota, so the quota is exceeded by at most the responses in flight, each bounded by the
//! gateway's `max_stored_body_bytes`.

use sqlx::Row;
use sqlx::any::AnyRow;
use switchyard_contracts::TenantId;

use super::{Backend, PlatformStore, StoreError};

/// A response kept for replay: what the client saw the first time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

/// What the gateway does with a request that carries an idempotency key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Begin {
    /// Forward it: this request now holds the key (new, released, expired or lease taken over).
    Proceed,
    /// Answer with the first response without forwarding.
    Replay(StoredResponse),
    /// The same request is still running elsewhere and its lease is live.
    InFlight,
    /// The key was used with a different request.
    KeyReused,
    /// The tenant's live records already hold its quota: a new request is not admitted.
    QuotaExceeded,
}

/// What a record costs its tenant besides its response body: the key, the fingerprint,
/// headers and the row itself. An estimate, so many records with empty bodies are bounded too.
const RECORD_OVERHEAD: i64 = 256;

impl PlatformStore {
    /// Claims the key for this request or says why not.
    ///
    /// A record older than `retention_ms` counts as absent, whatever its fingerprint, so an
    /// expired record never replays. An in-flight record whose lease has run out is taken over
    /// only by the same request: a different one under that key is still a reused key.
    pub async fn idempotency_begin(
        &self,
        tenant: &TenantId,
        key: &str,
        fingerprint: &[u8; 32],
        now_ms: i64,
        lease_ms: i64,
        retention_ms: i64,
    ) -> Result<Begin, StoreError> {
        // Claims of one (tenant, key) must not interleave: read the record, decide, write it,
        // with no other claim in between, so that of many concurrent identical requests, first
        // or taking over an expired lease, exactly one proceeds. The two backends get there
        // differently; this is the one statement of the store that differs between them.
        let mut tx = match self.backend {
            // BEGIN IMMEDIATE takes SQLite's write lock before the read, so no other writer can
            // act in between. A deferred transaction would instead fail the later writers with
            // SQLITE_BUSY_SNAPSHOT.
            Backend::Sqlite => self.begin_write().await?,
            // PostgreSQL has no such lock, and `SELECT ... FOR UPDATE` locks nothing while the
            // record does not exist yet, so concurrent first requests would all see it absent.
            // A transaction-scoped advisory lock on the pair serializes the claims of that pair
            // only, and is released at commit or rollback. Tenant ids cannot contain '/', so
            // the joined text names one pair; a hash collision merely serializes two pairs.
            Backend::Postgres => {
                let mut tx = self.pool.begin().await?;
                sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1 || '/' || $2, 0))")
                    .bind(tenant.as_str())
                    .bind(key)
                    .execute(&mut *tx)
                    .await?;
                tx
            }
        };
        let row = sqlx::query(
            "SELECT fingerprint, state, lease_until_ms, status, headers, body, created_at_ms
               FROM idempotency_records WHERE tenant_id = $1 AND idem_key = $2",
        )
        .bind(tenant.as_str())
        .bind(key)
        .fetch_optional(&mut *tx)
        .await?;
        let oldest_live_ms = now_ms.saturating_sub(retention_ms);
        let mut begin = match row {
            Some(row) if row.try_get::<i64, _>("created_at_ms")? >= oldest_live_ms => {
                let stored: Vec<u8> = row.try_get("fingerprint")?;
                let state: String = row.try_get("state")?;
                if stored.as_slice() != fingerprint.as_slice() {
                    Begin::KeyReused
                } else if state == "done" {
                    Begin::Replay(stored_response(&row)?)
                } else if row.try_get::<i64, _>("lease_until_ms")? > now_ms {
                    Begin::InFlight
                } else {
                    Begin::Proceed
                }
            }
            _ => Begin::Proceed,
        };
        if begin == Begin::Proceed
            && self
                .idempotency_bytes(&mut tx, tenant, oldest_live_ms)
                .await?
                >= self.quotas.idempotency_bytes_per_tenant
        {
            begin = Begin::QuotaExceeded;
        }
        if begin == Begin::Proceed {
            sqlx::query(
                "INSERT INTO idempotency_records
                        (tenant_id, idem_key, fingerprint, state, lease_until_ms, created_at_ms)
                 VALUES ($1, $2, $3, 'in_flight', $4, $5)
                 ON CONFLICT (tenant_id, idem_key) DO UPDATE SET
                        fingerprint = excluded.fingerprint, state = 'in_flight',
                        lease_until_ms = excluded.lease_until_ms, status = NULL, headers = NULL,
                        body = NULL, created_at_ms = excluded.created_at_ms",
            )
            .bind(tenant.as_str())
            .bind(key)
            .bind(fingerprint.as_slice())
            .bind(now_ms.saturating_add(lease_ms))
            .bind(now_ms)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(begin)
    }

    /// What the tenant's live records (created at or after `oldest_live_ms`) hold.
    async fn idempotency_bytes(
        &self,
        tx: &mut sqlx::Transaction<'_, sqlx::Any>,
        tenant: &TenantId,
        oldest_live_ms: i64,
    ) -> Result<i64, StoreError> {
        // SUM of bigints is numeric on PostgreSQL: cast back, so both backends answer an i64.
        let used: i64 = sqlx::query_scalar(&format!(
            "SELECT CAST(COALESCE(SUM(COALESCE(LENGTH(body), 0) + {RECORD_OVERHEAD}), 0) AS BIGINT)
               FROM idempotency_records WHERE tenant_id = $1 AND created_at_ms >= $2"
        ))
        .bind(tenant.as_str())
        .bind(oldest_live_ms)
        .fetch_one(&mut **tx)
        .await?;
        Ok(used)
    }

    /// Stores the response of a request that proceeded, for replay.
    ///
    /// Only an in-flight record with this fingerprint is completed: if the record was released
    /// or purged meanwhile there is nothing to complete, and the next retry simply runs again.
    pub async fn idempotency_complete(
        &self,
        tenant: &TenantId,
        key: &str,
        fingerprint: &[u8; 32],
        response: &StoredResponse,
    ) -> Result<(), StoreError> {
        let headers = serde_json::to_string(&response.headers)
            .map_err(|e| StoreError::Invalid(format!("idempotency headers: {e}")))?;
        sqlx::query(
            "UPDATE idempotency_records SET state = 'done', status = $4, headers = $5, body = $6
              WHERE tenant_id = $1 AND idem_key = $2 AND fingerprint = $3 AND state = 'in_flight'",
        )
        .bind(tenant.as_str())
        .bind(key)
        .bind(fingerprint.as_slice())
        .bind(i64::from(response.status))
        .bind(headers)
        .bind(response.body.as_slice())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Frees the key after a request that ended without a response worth replaying (5xx,
    /// upstream failure, client gone), so a retry runs it again. A completed record, or one
    /// held by a different request, is left alone.
    pub async fn idempotency_release(
        &self,
        tenant: &TenantId,
        key: &str,
        fingerprint: &[u8; 32],
    ) -> Result<(), StoreError> {
        sqlx::query(
            "DELETE FROM idempotency_records
              WHERE tenant_id = $1 AND idem_key = $2 AND fingerprint = $3 AND state = 'in_flight'",
        )
        .bind(tenant.as_str())
        .bind(key)
        .bind(fingerprint.as_slice())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Deletes every record created before `older_than_ms` and returns how many went.
    /// `idempotency_begin` already ignores such records; purging only reclaims the space.
    pub async fn idempotency_purge(&self, older_than_ms: i64) -> Result<u64, StoreError> {
        let deleted = sqlx::query("DELETE FROM idempotency_records WHERE created_at_ms < $1")
            .bind(older_than_ms)
            .execute(&self.pool)
            .await?;
        Ok(deleted.rows_affected())
    }
}

/// The response columns of a `done` record; missing ones mean the row was written by hand.
fn stored_response(row: &AnyRow) -> Result<StoredResponse, StoreError> {
    let corrupt = |what: &str| StoreError::Invalid(format!("idempotency record without {what}"));
    let status: Option<i64> = row.try_get("status")?;
    let status = status
        .and_then(|s| u16::try_from(s).ok())
        .ok_or_else(|| corrupt("a valid status"))?;
    let headers: Option<String> = row.try_get("headers")?;
    let headers = headers.ok_or_else(|| corrupt("headers"))?;
    let headers = serde_json::from_str(&headers)
        .map_err(|e| StoreError::Invalid(format!("idempotency headers: {e}")))?;
    let body: Option<Vec<u8>> = row.try_get("body")?;
    Ok(StoredResponse {
        status,
        headers,
        body: body.ok_or_else(|| corrupt("a body"))?,
    })
}
