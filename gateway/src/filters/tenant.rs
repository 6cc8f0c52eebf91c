//! Step 6: the tenant is the one the credentials belong to. A caller may state it in
//! `X-Tenant-Id` (useful as an assertion), but never choose another one.

use http::HeaderValue;
use switchyard_contracts::{ErrorCode, Problem};
use switchyard_identity::Identity;

pub fn resolve(identity: &Identity, claimed: Option<&HeaderValue>) -> Result<(), Problem> {
    match claimed {
        None => Ok(()),
        Some(value) if value.to_str().ok() == Some(identity.tenant.as_str()) => Ok(()),
        Some(_) => Err(Problem::new(
            ErrorCode::TenantForbidden,
            "X-Tenant-Id names a tenant these credentials do not belong to",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchyard_contracts::{Scopes, TenantId};

    #[test]
    fn a_claimed_tenant_must_be_the_credentials_tenant() {
        let identity = Identity {
            tenant: TenantId::parse("acme").unwrap(),
            subject: "key:1".into(),
            scopes: Scopes::parse("*").unwrap(),
            roles: vec![],
        };
        assert!(resolve(&identity, None).is_ok());
        assert!(resolve(&identity, Some(&HeaderValue::from_static("acme"))).is_ok());
        let err = resolve(&identity, Some(&HeaderValue::from_static("globex"))).unwrap_err();
        assert_eq!((err.code, err.status()), (ErrorCode::TenantForbidden, 403));
    }
}
