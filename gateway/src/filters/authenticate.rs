//! Step 5: who is calling. A verified client certificate (on the mTLS listener) or a bearer
//! credential: a tenant-scoped API key (`sy_...`) or, when configured, an OIDC token.
//!
//! Verified keys are cached for [`KEY_CACHE_TTL`] under a hash of the key (the plaintext is
//! never kept), so the hot path does not hit the platform store; a revoked key therefore
//! stops working within that time.

use std::time::Duration;

use http::HeaderValue;
use moka::future::Cache;
use pingora::protocols::tls::SslDigest;
use sha2::{Digest, Sha256};
use switchyard_contracts::{ErrorCode, Problem, Scopes, TenantId};
use switchyard_identity::Identity;
use switchyard_identity::oidc::OidcVerifier;
use switchyard_platform_store::PlatformStore;
use switchyard_platform_store::StoreError;

use super::client_cert;

pub const KEY_CACHE_TTL: Duration = Duration::from_secs(10);

pub struct Authenticator {
    store: PlatformStore,
    verified_keys: Cache<[u8; 32], Identity>,
    /// Scopes of client-certificate identities; `None` when no mTLS listener is configured.
    certificate_scopes: Option<Scopes>,
    known_tenants: Cache<TenantId, ()>,
    oidc: Option<OidcVerifier>,
}

impl Authenticator {
    pub fn new(store: PlatformStore) -> Self {
        Authenticator {
            store,
            verified_keys: Cache::builder()
                .max_capacity(100_000)
                .time_to_live(KEY_CACHE_TTL)
                .build(),
            certificate_scopes: None,
            known_tenants: Cache::builder()
                .max_capacity(100_000)
                .time_to_live(KEY_CACHE_TTL)
                .build(),
            oidc: None,
        }
    }

    /// Accepts OIDC bearer tokens verified by this verifier.
    pub fn with_oidc(mut self, verifier: OidcVerifier) -> Self {
        self.oidc = Some(verifier);
        self
    }

    /// Accepts verified client certificates, granting them these scopes.
    pub fn with_client_certificates(mut self, scopes: Scopes) -> Self {
        self.certificate_scopes = Some(scopes);
        self
    }

    pub async fn authenticate(
        &self,
        authorization: Option<&HeaderValue>,
        client_cert: Option<&SslDigest>,
    ) -> Result<Identity, Problem> {
        if let (Some(cert), Some(scopes)) = (client_cert, &self.certificate_scopes) {
            let identity = client_cert::identity(cert, scopes)?;
            self.require_tenant(&identity.tenant, "the client certificate")
                .await?;
            return Ok(identity);
        }
        let Some(header) = authorization else {
            return Err(Problem::new(
                ErrorCode::Unauthenticated,
                "send credentials: Authorization: Bearer <key or token>",
            ));
        };
        let credential = header
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
                    "the Authorization header must be 'Bearer <credential>'",
                )
            })?;
        match (&self.oidc, credential.starts_with("sy_")) {
            (_, true) => self.api_key(credential).await,
            (Some(oidc), false) => {
                let identity = oidc.verify(credential).await?;
                self.require_tenant(&identity.tenant, "the token").await?;
                Ok(identity)
            }
            (None, false) => Err(Problem::new(
                ErrorCode::Unauthenticated,
                "the bearer credential is not a Switchyard API key",
            )),
        }
    }

    async fn api_key(&self, key: &str) -> Result<Identity, Problem> {
        let fingerprint: [u8; 32] = Sha256::digest(key.as_bytes()).into();
        if let Some(identity) = self.verified_keys.get(&fingerprint).await {
            return Ok(identity);
        }
        let verified = self
            .store
            .verify_key(key)
            .await
            .map_err(|e| store_failure(&e))?;
        let verified = verified
            .ok_or_else(|| Problem::new(ErrorCode::Unauthenticated, "the API key is not valid"))?;
        let identity = Identity {
            tenant: verified.tenant,
            subject: format!("key:{}", verified.key_id),
            scopes: verified.scopes,
            roles: Vec::new(),
        };
        self.verified_keys
            .insert(fingerprint, identity.clone())
            .await;
        Ok(identity)
    }

    /// A certificate or an OIDC token names its tenant itself (an API key's tenant comes from
    /// the store), so the tenant must be checked to exist: an identity provider may mint
    /// tokens for a tenant that was deleted or never created. `what` names the credential.
    async fn require_tenant(&self, tenant: &TenantId, what: &str) -> Result<(), Problem> {
        if self.known_tenants.get(tenant).await.is_some() {
            return Ok(());
        }
        if self
            .store
            .tenant_exists(tenant)
            .await
            .map_err(|e| store_failure(&e))?
        {
            self.known_tenants.insert(tenant.clone(), ()).await;
            Ok(())
        } else {
            Err(Problem::new(
                ErrorCode::Unauthenticated,
                format!("{what} names a tenant that does not exist"),
            ))
        }
    }
}

fn store_failure(e: &StoreError) -> Problem {
    tracing::error!(error = %e, "credential check failed");
    Problem::new(
        ErrorCode::Internal,
        "credentials could not be checked; retry shortly",
    )
    .with_retryable(true)
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
        let identity = auth.authenticate(Some(&header), None).await.unwrap();
        assert_eq!(identity.tenant, acme);
        assert_eq!(identity.subject, format!("key:{}", key.id));
        // Served from the cache the second time; same answer.
        assert_eq!(
            auth.authenticate(Some(&header), None).await.unwrap(),
            identity
        );

        for bad in [
            "",
            "Bearer ",
            "Basic abc",
            "Bearer sy_nope_nope",
            &key.plaintext,
        ] {
            let header = HeaderValue::from_str(bad).unwrap();
            let err = auth.authenticate(Some(&header), None).await.unwrap_err();
            assert_eq!(err.code, ErrorCode::Unauthenticated, "{bad:?}");
        }
        assert_eq!(
            auth.authenticate(None, None).await.unwrap_err().code,
            ErrorCode::Unauthenticated
        );
    }
}
