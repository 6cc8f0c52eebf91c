//! Step 3: the caller presents a tenant-scoped API key as a bearer token.
//!
//! Verified keys are cached for [`KEY_CACHE_TTL`] under a hash of the key (the plaintext is
//! never kept), so the hot path does not hit the platform store; a revoked key therefore
//! stops working within that time.

use std::time::Duration;

use http::HeaderValue;
use moka::future::Cache;
use sha2::{Digest, Sha256};
use switchyard_contracts::{ErrorCode, Problem, Scopes, TenantId};
use switchyard_runtime::PlatformStore;

pub const KEY_CACHE_TTL: Duration = Duration::from_secs(10);

/// Who the caller is, once verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub tenant: TenantId,
    /// `key:<id>` for API keys.
    pub subject: String,
    pub scopes: Scopes,
}

pub struct Authenticator {
    store: PlatformStore,
    verified: Cache<[u8; 32], Identity>,
}

impl Authenticator {
    pub fn new(store: PlatformStore) -> Self {
        Authenticator {
            store,
            verified: Cache::builder()
                .max_capacity(100_000)
                .time_to_live(KEY_CACHE_TTL)
                .build(),
        }
    }

    pub async fn authenticate(
        &self,
        authorization: Option<&HeaderValue>,
    ) -> Result<Identity, Problem> {
        let Some(header) = authorization else {
            return Err(Problem::new(
                ErrorCode::Unauthenticated,
                "send an API key: Authorization: Bearer <key>",
            ));
        };
        let key = header
            .to_str()
            .ok()
            .and_then(|v| {
                v.strip_prefix("Bearer ")
                    .or_else(|| v.strip_prefix("bearer "))
            })
            .map(str::trim)
            .filter(|k| !k.is_empty())
            .ok_or_else(|| {
                Problem::new(
                    ErrorCode::Unauthenticated,
                    "the Authorization header must be 'Bearer <key>'",
                )
            })?;
        let fingerprint: [u8; 32] = Sha256::digest(key.as_bytes()).into();
        if let Some(identity) = self.verified.get(&fingerprint).await {
            return Ok(identity);
        }
        let verified = self.store.verify_key(key).await.map_err(|e| {
            tracing::error!(error = %e, "key verification failed");
            Problem::new(
                ErrorCode::Internal,
                "credentials could not be checked; retry shortly",
            )
            .with_retryable(true)
        })?;
        let verified = verified
            .ok_or_else(|| Problem::new(ErrorCode::Unauthenticated, "the API key is not valid"))?;
        let identity = Identity {
            tenant: verified.tenant,
            subject: format!("key:{}", verified.key_id),
            scopes: verified.scopes,
        };
        self.verified.insert(fingerprint, identity.clone()).await;
        Ok(identity)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn only_a_live_bearer_key_authenticates() {
        let dir = tempfile::tempdir().unwrap();
        let store = PlatformStore::open(dir.path()).await.unwrap();
        let acme = TenantId::parse("acme").unwrap();
        store.create_tenant(&acme).await.unwrap();
        let key = store
            .create_key(&acme, &Scopes::parse("read").unwrap())
            .await
            .unwrap();
        let auth = Authenticator::new(store);

        let header = HeaderValue::from_str(&format!("Bearer {}", key.plaintext)).unwrap();
        let identity = auth.authenticate(Some(&header)).await.unwrap();
        assert_eq!(identity.tenant, acme);
        assert_eq!(identity.subject, format!("key:{}", key.id));
        // Served from the cache the second time; same answer.
        assert_eq!(auth.authenticate(Some(&header)).await.unwrap(), identity);

        for bad in [
            "",
            "Bearer ",
            "Basic abc",
            "Bearer sy_nope_nope",
            &key.plaintext,
        ] {
            let header = HeaderValue::from_str(bad).unwrap();
            let err = auth.authenticate(Some(&header)).await.unwrap_err();
            assert_eq!(err.code, ErrorCode::Unauthenticated, "{bad:?}");
        }
        assert_eq!(
            auth.authenticate(None).await.unwrap_err().code,
            ErrorCode::Unauthenticated
        );
    }
}
