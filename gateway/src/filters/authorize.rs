//! Step 7: the key's scopes must allow the operation. Finer decisions (per resource, per
//! attribute) belong to the policy engine, which comes after this step.

use switchyard_contracts::{ErrorCode, Operation, Problem};

use super::authenticate::Identity;
use super::route::RouteOperation;

/// What a path addresses: `/providers/{domain}/{provider}/{action}` or
/// `/services/{domain}/{action}` (provider `service`). Empty parts where the path has none.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Target<'a> {
    pub domain: &'a str,
    pub provider: &'a str,
    pub action: &'a str,
}

impl<'a> Target<'a> {
    pub fn of(path: &'a str) -> Self {
        let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
        match segments.as_slice() {
            ["services", domain, action] => Target {
                domain,
                provider: "service",
                action,
            },
            ["providers", domain, provider, action] => Target {
                domain,
                provider,
                action,
            },
            ["providers", domain, provider] => Target {
                domain,
                provider,
                action: "describe",
            },
            ["providers"] => Target {
                domain: "",
                provider: "",
                action: "list",
            },
            _ => Target {
                domain: "",
                provider: "",
                action: "",
            },
        }
    }
}

pub fn check(identity: &Identity, operation: RouteOperation, path: &str) -> Result<(), Problem> {
    let target = Target::of(path);
    let op = match operation {
        RouteOperation::Read => Operation::Read,
        RouteOperation::Admin => Operation::Admin,
        RouteOperation::Audit => Operation::Audit,
        RouteOperation::Keys => Operation::Keys,
        RouteOperation::Invoke => Operation::Invoke {
            domain: target.domain,
            name: target.provider,
        },
    };
    if identity.scopes.allows(op) {
        Ok(())
    } else {
        Err(Problem::new(
            ErrorCode::ScopeForbidden,
            format!(
                "the key's scopes ({}) do not allow this request",
                identity.scopes.to_header_value()
            ),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchyard_contracts::{Scopes, TenantId};

    fn with(scopes: &str) -> Identity {
        Identity {
            tenant: TenantId::parse("acme").unwrap(),
            subject: "key:1".into(),
            scopes: Scopes::parse(scopes).unwrap(),
            roles: vec![],
        }
    }

    #[test]
    fn scopes_gate_each_operation() {
        let path = "/providers/cache/memory/get";
        assert!(check(&with("invoke:cache/memory"), RouteOperation::Invoke, path).is_ok());
        assert_eq!(
            check(&with("invoke:db"), RouteOperation::Invoke, path)
                .unwrap_err()
                .code,
            ErrorCode::ScopeForbidden
        );
        assert!(check(&with("read"), RouteOperation::Read, "/providers").is_ok());
        assert!(
            check(
                &with("read"),
                RouteOperation::Admin,
                "/providers/cache/memory/stop"
            )
            .is_err()
        );
    }
}
