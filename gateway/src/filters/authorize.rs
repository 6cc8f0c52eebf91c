//! Step 7: the key's scopes must allow the operation. Finer decisions (per resource, per
//! attribute) belong to the policy engine, which comes after this step.

use switchyard_contracts::{ErrorCode, Operation, Problem};

use super::authenticate::Identity;
use super::route::RouteOperation;

pub fn check(identity: &Identity, operation: RouteOperation, path: &str) -> Result<(), Problem> {
    let mut segments = path.trim_start_matches('/').split('/').skip(1);
    let op = match operation {
        RouteOperation::Read => Operation::Read,
        RouteOperation::Admin => Operation::Admin,
        RouteOperation::Invoke => Operation::Invoke {
            domain: segments.next().unwrap_or_default(),
            name: segments.next().unwrap_or_default(),
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
