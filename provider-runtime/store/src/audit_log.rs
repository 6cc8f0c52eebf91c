//! The entity-change audit log: who changed what, from where, with the old and new values.
//!
//! Append-only and hash-chained per tenant: record `n`'s hash is SHA-256 over its own fields
//! and record `n-1`'s hash, so changing or removing any record breaks every hash after it, and
//! `audit_heads` (written in the same transaction) shows a removed tail. Values are masked with
//! [`mask_secrets`] before they are hashed: a secret never enters the log, so no export, page
//! or chain check can show one.

mod export;
mod query;
mod verify;

use serde::Serialize;
use serde_json::Value;
use sha2::{Digest, Sha256};
use sqlx::Row;
use switchyard_contracts::masking::mask_secrets;

use super::{PlatformStore, StoreError, now_rfc3339};

pub use export::{AuditExport, CSV_HEADER, ExportFormat};
pub use query::{AuditFilter, AuditOrder};
pub use verify::ChainCheck;

/// The entity prefix of the business services' records, the only ones kept once per event id
/// (migration 0012's unique index covers exactly these).
pub const SERVICE_ENTITY_PREFIX: &str = "service/";

/// The chain of what belongs to no tenant (operators' own keys, platform settings).
pub const PLATFORM_CHAIN: &str = "_platform";

/// The hash a chain's first record points back to.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// One change, as the code that made it describes it.
#[derive(Debug, Clone, Default)]
pub struct AuditEntry {
    /// The tenant the changed entity belongs to, or [`PLATFORM_CHAIN`].
    pub tenant: String,
    /// Who: `operator:<key id>`, `key:<id>`, an OIDC subject, `system:<worker>`.
    pub actor: String,
    /// What: `tenant`, `api_key/<id>`, `provider/<domain>/<name>`, `secret/<name>`,
    /// `service/<domain>/<id>`, ...
    pub entity: String,
    /// The verb: `create`, `suspend`, `configure`, `rollback`, `rotate`, `revoke`, ...
    pub operation: String,
    pub old: Option<Value>,
    pub new: Option<Value>,
    pub request_id: Option<String>,
    /// The client's address, when the change came through the API.
    pub source: Option<String>,
}

/// A record as stored: the entry with its place in the chain.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct AuditRecord {
    pub tenant: String,
    pub seq: i64,
    pub at: String,
    pub actor: String,
    pub entity: String,
    pub operation: String,
    pub old: Option<Value>,
    pub new: Option<Value>,
    pub request_id: Option<String>,
    pub source: Option<String>,
    pub prev_hash: String,
    pub hash: String,
}

impl AuditRecord {
    /// The hash this record must carry: over every field but `hash`, as one JSON array (an
    /// array serializes the same way every time), with old and new as the text stored.
    pub fn expected_hash(&self) -> String {
        let fields = serde_json::json!([
            self.tenant,
            self.seq,
            self.at,
            self.actor,
            self.entity,
            self.operation,
            self.old.as_ref().map(Value::to_string),
            self.new.as_ref().map(Value::to_string),
            self.request_id,
            self.source,
            self.prev_hash,
        ]);
        hex::encode(Sha256::digest(fields.to_string().as_bytes()))
    }
}

impl PlatformStore {
    /// Appends one record to its tenant's chain and returns it. Writers to one chain take
    /// turns (see `append`), so the chain never forks and its numbers have no gaps.
    pub async fn append_audit(&self, entry: AuditEntry) -> Result<AuditRecord, StoreError> {
        self.append(entry, false)
            .await?
            .ok_or_else(|| StoreError::Invalid("the audit record was not written".into()))
    }

    /// Appends the record of one business event unless that event is recorded already: its
    /// `request_id` is the event's id and its entity starts with [`SERVICE_ENTITY_PREFIX`].
    /// Answers `None` for a repeat, so a relay that publishes an event twice records it once.
    pub async fn append_audit_once(
        &self,
        entry: AuditEntry,
    ) -> Result<Option<AuditRecord>, StoreError> {
        if entry.request_id.is_none() || !entry.entity.starts_with(SERVICE_ENTITY_PREFIX) {
            return Err(StoreError::Invalid(format!(
                "a record kept once per event needs the event id as request id and an entity under {SERVICE_ENTITY_PREFIX}"
            )));
        }
        self.append(entry, true).await
    }

    /// The one writer of the log. Each attempt first takes the chain's lock — an UPDATE of the
    /// head row that changes nothing: PostgreSQL locks that row until commit, SQLite takes its
    /// write lock before anything is read — so concurrent appends queue instead of racing
    /// for the same place. A new chain gets its head (record 0, [`GENESIS`]) first, so there is
    /// always a row to lock: without it the first appends of a chain raced on the log's key
    /// and PostgreSQL could find them deadlocked. A loser of any other race tries again. With
    /// `once`, an event already recorded ends the attempt.
    async fn append(
        &self,
        entry: AuditEntry,
        once: bool,
    ) -> Result<Option<AuditRecord>, StoreError> {
        const ATTEMPTS: usize = 32;
        let old = entry.old.map(mask_secrets);
        let new = entry.new.map(mask_secrets);
        sqlx::query(
            "INSERT INTO audit_heads (tenant_id, seq, hash) VALUES ($1, 0, $2)
             ON CONFLICT (tenant_id) DO NOTHING",
        )
        .bind(&entry.tenant)
        .bind(GENESIS)
        .execute(&self.pool)
        .await?;
        let mut attempt = 1;
        loop {
            let mut tx = self.begin_write().await?;
            sqlx::query("UPDATE audit_heads SET seq = seq WHERE tenant_id = $1")
                .bind(&entry.tenant)
                .execute(&mut *tx)
                .await?;
            if once && event_recorded(&mut tx, &entry.tenant, entry.request_id.as_deref()).await? {
                tx.rollback().await?;
                return Ok(None);
            }
            let head = sqlx::query("SELECT seq, hash FROM audit_heads WHERE tenant_id = $1")
                .bind(&entry.tenant)
                .fetch_optional(&mut *tx)
                .await?;
            let (prev_seq, prev_hash) = match head {
                Some(row) => (row.try_get::<i64, _>("seq")?, row.try_get("hash")?),
                None => (0, GENESIS.to_owned()),
            };
            let mut record = AuditRecord {
                tenant: entry.tenant.clone(),
                seq: prev_seq + 1,
                at: now_rfc3339(),
                actor: entry.actor.clone(),
                entity: entry.entity.clone(),
                operation: entry.operation.clone(),
                old: old.clone(),
                new: new.clone(),
                request_id: entry.request_id.clone(),
                source: entry.source.clone(),
                prev_hash,
                hash: String::new(),
            };
            record.hash = record.expected_hash();
            let inserted = sqlx::query(
                "INSERT INTO audit_log (tenant_id, seq, at, actor, entity, operation, old_value,
                                        new_value, request_id, source, prev_hash, hash)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
            )
            .bind(&record.tenant)
            .bind(record.seq)
            .bind(&record.at)
            .bind(&record.actor)
            .bind(&record.entity)
            .bind(&record.operation)
            .bind(record.old.as_ref().map(Value::to_string))
            .bind(record.new.as_ref().map(Value::to_string))
            .bind(&record.request_id)
            .bind(&record.source)
            .bind(&record.prev_hash)
            .bind(&record.hash)
            .execute(&mut *tx)
            .await;
            let moved = match inserted {
                Ok(_) => {
                    sqlx::query(
                        "INSERT INTO audit_heads (tenant_id, seq, hash) VALUES ($1, $2, $3)
                         ON CONFLICT (tenant_id) DO UPDATE SET seq = excluded.seq, hash = excluded.hash
                         WHERE audit_heads.seq = $4",
                    )
                    .bind(&record.tenant)
                    .bind(record.seq)
                    .bind(&record.hash)
                    .bind(prev_seq)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected()
                        == 1
                }
                Err(sqlx::Error::Database(e)) if e.is_unique_violation() => false,
                Err(e) => return Err(e.into()),
            };
            if moved {
                tx.commit().await?;
                return Ok(Some(record));
            }
            tx.rollback().await?;
            if attempt == ATTEMPTS {
                return Err(StoreError::Invalid(format!(
                    "the audit chain of {} kept moving; the record was not written",
                    entry.tenant
                )));
            }
            attempt += 1;
        }
    }
}

/// Whether `tenant`'s log holds the record of business event `event_id`.
async fn event_recorded(
    conn: &mut sqlx::AnyConnection,
    tenant: &str,
    event_id: Option<&str>,
) -> Result<bool, StoreError> {
    let found = sqlx::query(
        "SELECT 1 AS found FROM audit_log
          WHERE tenant_id = $1 AND request_id = $2 AND entity LIKE 'service/%'",
    )
    .bind(tenant)
    .bind(event_id)
    .fetch_optional(conn)
    .await?;
    Ok(found.is_some())
}
