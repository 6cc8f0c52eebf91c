//! The entity-change audit log: who changed what, from where, with the old and new values.
//!
//! Append-only and hash-chained per tenant: record `n`'s hash is SHA-256 over its own fields
//! and record `n-1`'s hash, so changing or removing any record breaks every hash after it, and
//! `audit_heads` (written in the same transaction) shows a removed tail. Values are masked with
//! [`mask_secrets`] before they are hashed: a secret never enters the log, so no export, page
//! or chain check can show one.

use serde::Serialize;
use serde_json::Value;
use sha2::{Digest, Sha256};
use sqlx::Row;
use switchyard_contracts::masking::mask_secrets;

use super::{PlatformStore, StoreError, now_rfc3339};

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
    /// Appends one record to its tenant's chain and returns it. Two writers racing for the
    /// same place both read the same head; the loser's insert fails on the primary key and it
    /// reads the new head and tries again, so the chain never forks.
    pub async fn append_audit(&self, entry: AuditEntry) -> Result<AuditRecord, StoreError> {
        const ATTEMPTS: usize = 32;
        let old = entry.old.map(mask_secrets);
        let new = entry.new.map(mask_secrets);
        let mut attempt = 1;
        loop {
            let mut tx = self.pool.begin().await?;
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
                return Ok(record);
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
