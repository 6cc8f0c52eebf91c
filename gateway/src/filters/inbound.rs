//! Step 5 for an inbound webhook (`POST /inbound/{tenant}/integration/{name}`): a third party
//! (Shopify, Salesforce) holds no Switchyard key, so nothing is authenticated here; the caller
//! is the route itself. The tenant comes from the path, the subject is
//! `inbound:integration/<name>`, and the only scope is `invoke:integration/<name>`, so the
//! later steps (scopes, rate limits, policy, forwarding with a signed context) treat it as a
//! caller allowed to run that one engine for that one tenant. The engine verifies the
//! sender's signature over the raw body; nothing is kept when it fails.
//!
//! A sender must not learn which tenants exist: a path whose tenant is not one answers exactly
//! as a bad signature does ([`inbound::refused`]), and the tenant is looked up only after the
//! rate limit, whose budgets are then drawn alike for tenants that exist and ones that do not.

use switchyard_contracts::{Problem, Scopes, TenantId};
use switchyard_identity::Identity;
use switchyard_platform_store::PlatformStore;
use switchyard_request::inbound;

/// The caller an inbound path names, before its tenant is known to exist.
pub fn identify(segments: &[&str]) -> Result<Identity, Problem> {
    let (tenant, name) = inbound::target(segments).ok_or_else(inbound::refused)?;
    let tenant = TenantId::parse(tenant).map_err(|_| inbound::refused())?;
    let scopes = Scopes::parse(&format!("invoke:{}/{name}", inbound::DOMAIN))
        .map_err(|_| inbound::refused())?;
    Ok(Identity {
        tenant,
        subject: inbound::subject(name),
        scopes,
        roles: Vec::new(),
    })
}

/// Refuses a tenant that does not exist as a bad signature; a store that cannot answer is an
/// outage, retried by the sender.
pub async fn check_tenant(store: &PlatformStore, tenant: &TenantId) -> Result<(), Problem> {
    match store.tenant_exists(tenant).await {
        Ok(true) => Ok(()),
        Ok(false) => Err(inbound::refused()),
        Err(e) => {
            tracing::error!(error = %e, "tenant lookup for an inbound webhook failed");
            Err(Problem::new(
                switchyard_contracts::ErrorCode::Internal,
                "the platform store failed; retry",
            )
            .with_retryable(true))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchyard_contracts::{ErrorCode, Operation};

    #[test]
    fn the_path_names_the_tenant_and_a_caller_allowed_that_one_engine() {
        let identity = identify(&["inbound", "acme", "integration", "shopify"]).unwrap();
        assert_eq!(identity.tenant.as_str(), "acme");
        assert_eq!(identity.subject, "inbound:integration/shopify");
        let invoke = |domain, name| Operation::Invoke { domain, name };
        assert!(identity.scopes.allows(invoke("integration", "shopify")));
        assert!(!identity.scopes.allows(invoke("integration", "salesforce")));
        assert!(!identity.scopes.allows(invoke("db", "sqlite")));
        assert!(!identity.scopes.allows(Operation::Read));
        assert!(identity.roles.is_empty());
    }

    #[test]
    fn a_path_that_names_no_tenant_or_engine_answers_as_a_bad_signature() {
        for path in [
            &["inbound", "Not A Tenant", "integration", "shopify"][..],
            &["inbound", "acme", "integration", "Shop!fy"],
            &["inbound", "acme", "db", "sqlite"],
        ] {
            let refused = identify(path).unwrap_err();
            assert_eq!(
                (refused.code, refused.status()),
                (ErrorCode::SignatureInvalid, 401),
                "{path:?}"
            );
        }
    }
}
