//! The gateway's authentication with an OIDC issuer configured, against a real (local) JWKS
//! endpoint: the identity crate's test IdP, included from there.

#[allow(dead_code)]
#[path = "../../identity/tests/oidc/idp.rs"]
mod idp;

use serde_json::json;
use switchyard_contracts::ErrorCode;

use idp::{Idp, Keys, claims_with};

#[tokio::test]
async fn a_token_naming_a_tenant_the_platform_does_not_have_is_unauthenticated() {
    use switchyard_contracts::TenantId;
    use switchyard_gateway::filters::authenticate::Authenticator;
    use switchyard_platform_store::PlatformStore;

    let keys = Keys::new();
    let idp = Idp::start(&keys.jwks()).await;
    let dir = tempfile::tempdir().unwrap();
    let store = PlatformStore::open(dir.path()).await.unwrap();
    store
        .create_tenant(&TenantId::parse("acme").unwrap())
        .await
        .unwrap();
    let auth = Authenticator::new(store).with_oidc(idp.verifier());
    let bearer = |tenant: &str| {
        let token = keys.rsa.sign(&claims_with(json!({ "tenant": tenant })));
        http::HeaderValue::from_str(&format!("Bearer {token}")).unwrap()
    };
    let identity = auth
        .authenticate(Some(&bearer("acme")), None)
        .await
        .unwrap();
    assert_eq!(identity.tenant.as_str(), "acme");
    // A genuine token of the trusted IdP, for a tenant nobody created.
    let problem = auth
        .authenticate(Some(&bearer("ghost")), None)
        .await
        .unwrap_err();
    assert_eq!(problem.code, ErrorCode::Unauthenticated, "{problem:?}");
    assert!(problem.detail.contains("tenant"), "{}", problem.detail);
}
