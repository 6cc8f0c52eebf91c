//! The platform operators' keys: `syop_<id>_<secret>`, above every tenant.
//!
//! Kept apart from tenants' keys (own table, own prefix), so no tenant key can ever verify as
//! an operator's, whatever its scopes. The secret is 256 random bits: a plain SHA-256 of it is
//! as strong as a slow hash would be, like the tenants' keys.

use serde::Serialize;
use sqlx::Row;

use super::keys::{MintedKey, mint_key, secret_matches, split_key};
use super::{CreatedKey, PlatformStore, StoreError, now_rfc3339};

/// The prefix of every operator key.
pub const OPERATOR_KEY_PREFIX: &str = "syop_";

/// An operator key as listed: never its secret or hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OperatorKey {
    pub id: String,
    pub name: String,
    pub created_at: String,
    pub revoked_at: Option<String>,
}

impl PlatformStore {
    /// A new operator key named `name` (who holds it); the plaintext is shown once.
    pub async fn create_operator_key(&self, name: &str) -> Result<CreatedKey, StoreError> {
        let name = name.trim();
        if name.is_empty() || name.len() > 100 || name.chars().any(char::is_control) {
            return Err(StoreError::Invalid(
                "an operator key's name is 1 to 100 printable characters".into(),
            ));
        }
        let MintedKey { key, secret_hash } = mint_key(OPERATOR_KEY_PREFIX);
        sqlx::query(
            "INSERT INTO operator_keys (id, name, secret_hash, created_at) VALUES ($1, $2, $3, $4)",
        )
        .bind(&key.id)
        .bind(name)
        .bind(secret_hash)
        .bind(now_rfc3339())
        .execute(&self.pool)
        .await?;
        Ok(key)
    }

    /// The live operator key `presented` is, or `None` (malformed, unknown, wrong, revoked).
    pub async fn verify_operator_key(
        &self,
        presented: &str,
    ) -> Result<Option<OperatorKey>, StoreError> {
        let Some((id, secret)) = split_key(presented, OPERATOR_KEY_PREFIX) else {
            return Ok(None);
        };
        let row = sqlx::query(
            "SELECT name, secret_hash, created_at FROM operator_keys
              WHERE id = $1 AND revoked_at IS NULL",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else { return Ok(None) };
        let stored: Vec<u8> = row.try_get("secret_hash")?;
        if !secret_matches(secret, &stored) {
            return Ok(None);
        }
        Ok(Some(OperatorKey {
            id: id.to_owned(),
            name: row.try_get("name")?,
            created_at: row.try_get("created_at")?,
            revoked_at: None,
        }))
    }

    /// Every operator key, newest first, revoked ones included.
    pub async fn list_operator_keys(&self) -> Result<Vec<OperatorKey>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, name, created_at, revoked_at FROM operator_keys ORDER BY created_at DESC, id",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(OperatorKey {
                    id: row.try_get("id")?,
                    name: row.try_get("name")?,
                    created_at: row.try_get("created_at")?,
                    revoked_at: row.try_get("revoked_at")?,
                })
            })
            .collect()
    }

    /// Revokes an operator key; `Ok(false)` when there is no such live key.
    pub async fn revoke_operator_key(&self, id: &str) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE operator_keys SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL",
        )
        .bind(now_rfc3339())
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }
}
