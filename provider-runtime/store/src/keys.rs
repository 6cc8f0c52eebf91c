//! Tenant-scoped API keys: `sy_<id>_<secret>`.
//!
//! The id finds the row; the secret is 256 random bits, so a plain SHA-256 of it is as strong
//! as a slow password hash would be, and it keeps verification cheap on the hot path.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;
use sha2::{Digest, Sha256};
use sqlx::Row;
use subtle::ConstantTimeEq;
use switchyard_contracts::{Scopes, TenantId};

use super::{PlatformStore, StoreError, now_rfc3339};

/// A new key. `plaintext` exists only here: it is printed once and never stored.
pub struct CreatedKey {
    pub id: String,
    pub plaintext: String,
}

/// A freshly minted `<prefix><id>_<secret>` and the hash of its secret, the only part stored.
/// Tenants' keys (`sy_`) and operators' keys (`syop_`) are made and checked alike.
pub(crate) struct MintedKey {
    pub(crate) key: CreatedKey,
    pub(crate) secret_hash: Vec<u8>,
}

pub(crate) fn mint_key(prefix: &str) -> MintedKey {
    let mut id_bytes = [0u8; 8];
    let mut secret = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut id_bytes);
    rand::thread_rng().fill_bytes(&mut secret);
    let id = hex::encode(id_bytes);
    let secret_text = URL_SAFE_NO_PAD.encode(secret);
    MintedKey {
        secret_hash: Sha256::digest(secret_text.as_bytes()).to_vec(),
        key: CreatedKey {
            plaintext: format!("{prefix}{id}_{secret_text}"),
            id,
        },
    }
}

/// `(id, secret)` of a presented `<prefix><id>_<secret>`; `None` for anything else.
pub(crate) fn split_key<'a>(presented: &'a str, prefix: &str) -> Option<(&'a str, &'a str)> {
    presented.strip_prefix(prefix)?.split_once('_')
}

/// Whether `secret` hashes to `stored`, compared in constant time.
pub(crate) fn secret_matches(secret: &str, stored: &[u8]) -> bool {
    bool::from(Sha256::digest(secret.as_bytes()).as_slice().ct_eq(stored))
}

/// A key as its tenant's admins see it: never its secret or hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyInfo {
    pub id: String,
    pub scopes: Scopes,
    pub created_at: String,
    pub revoked_at: Option<String>,
    pub last_used_at: Option<String>,
}

/// What a valid key grants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedKey {
    pub key_id: String,
    pub tenant: TenantId,
    pub scopes: Scopes,
}

impl PlatformStore {
    pub async fn create_key(
        &self,
        tenant: &TenantId,
        scopes: &Scopes,
    ) -> Result<CreatedKey, StoreError> {
        if !self.tenant_exists(tenant).await? {
            return Err(StoreError::TenantNotFound(tenant.to_string()));
        }
        if let Some(max) = self.tenant_limits(tenant).await?.max_api_keys {
            let live: i64 = sqlx::query_scalar(
                "SELECT COUNT(*) FROM api_keys WHERE tenant_id = $1 AND revoked_at IS NULL",
            )
            .bind(tenant.as_str())
            .fetch_one(&self.pool)
            .await?;
            if live >= i64::from(max) {
                return Err(StoreError::QuotaExceeded(format!(
                    "the tenant holds {live} live keys, its limit is {max}: revoke one first"
                )));
            }
        }
        let MintedKey { key, secret_hash } = mint_key("sy_");
        sqlx::query("INSERT INTO api_keys (id, tenant_id, secret_hash, scopes, created_at) VALUES ($1, $2, $3, $4, $5)")
            .bind(&key.id)
            .bind(tenant.as_str())
            .bind(secret_hash)
            .bind(scopes.to_header_value())
            .bind(now_rfc3339())
            .execute(&self.pool)
            .await?;
        Ok(key)
    }

    /// `Ok(None)` for anything that is not a live key: malformed, unknown, wrong secret, revoked.
    pub async fn verify_key(&self, presented: &str) -> Result<Option<VerifiedKey>, StoreError> {
        let Some((id, secret)) = split_key(presented, "sy_") else {
            return Ok(None);
        };
        let row = sqlx::query("SELECT tenant_id, secret_hash, scopes, last_used_at FROM api_keys WHERE id = $1 AND revoked_at IS NULL")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        let Some(row) = row else { return Ok(None) };
        let stored: Vec<u8> = row.try_get("secret_hash")?;
        if !secret_matches(secret, &stored) {
            return Ok(None);
        }
        let tenant: String = row.try_get("tenant_id")?;
        let scopes: String = row.try_get("scopes")?;
        let last_used: Option<String> = row.try_get("last_used_at")?;
        // The gateway caches verified keys, so this runs about once per key per cache TTL; a
        // minute's precision is all "last used" promises, and it spares most of those writes.
        let now = now_rfc3339();
        if last_used
            .as_deref()
            .is_none_or(|at| at.get(..16) != now.get(..16))
        {
            sqlx::query("UPDATE api_keys SET last_used_at = $1 WHERE id = $2")
                .bind(&now)
                .bind(id)
                .execute(&self.pool)
                .await?;
        }
        Ok(Some(VerifiedKey {
            key_id: id.to_owned(),
            tenant: TenantId::parse(&tenant).map_err(|e| StoreError::Invalid(e.to_string()))?,
            scopes: Scopes::parse(&scopes).map_err(|e| StoreError::Invalid(e.to_string()))?,
        }))
    }

    /// The tenant's keys, newest first, revoked ones included.
    pub async fn list_keys(&self, tenant: &TenantId) -> Result<Vec<KeyInfo>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, scopes, created_at, revoked_at, last_used_at FROM api_keys \
             WHERE tenant_id = $1 ORDER BY created_at DESC, id",
        )
        .bind(tenant.as_str())
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                let scopes: String = row.try_get("scopes")?;
                Ok(KeyInfo {
                    id: row.try_get("id")?,
                    scopes: Scopes::parse(&scopes)
                        .map_err(|e| StoreError::Invalid(e.to_string()))?,
                    created_at: row.try_get("created_at")?,
                    revoked_at: row.try_get("revoked_at")?,
                    last_used_at: row.try_get("last_used_at")?,
                })
            })
            .collect()
    }

    /// Revokes one of the tenant's keys. `Ok(false)` when the tenant has no such live key: a
    /// key id of another tenant is "no such key", never a hint that it exists.
    pub async fn revoke_key(&self, tenant: &TenantId, id: &str) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE api_keys SET revoked_at = $1 WHERE id = $2 AND tenant_id = $3 AND revoked_at IS NULL",
        )
        .bind(now_rfc3339())
        .bind(id)
        .bind(tenant.as_str())
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }
}
