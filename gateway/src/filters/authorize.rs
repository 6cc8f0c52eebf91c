//! Step 7: the key's scopes must allow the operation. Finer decisions (per resource, per
//! attribute) belong to the policy engine, which comes after this step.

use switchyard_contracts::{ErrorCode, Operation, Problem};
use switchyard_identity::Identity;
use switchyard_request::path::Split;

use super::route::RouteOperation;

/// What a path addresses: `/providers/{domain}/{provider}/{action}`,
/// `/services/{domain}/{action}` (provider `service`) or `/inbound/{tenant}/{domain}/{provider}`
/// (action `receive`). Empty parts where the path has none.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Target<'a> {
    pub domain: &'a str,
    pub provider: &'a str,
    pub action: &'a str,
}

impl<'a> Target<'a> {
    pub fn of(path: &'a str) -> Self {
        Target::of_segments(Split::of(path).as_slice())
    }

    /// [`Target::of`] a path already split.
    pub fn of_segments(segments: &[&'a str]) -> Self {
        match segments {
            ["services", domain, action] => Target {
                domain,
                provider: "service",
                action,
            },
            // A rollback saves a config like a configure does, and a tenant's rule against
            // `…/configure` holds it too.
            ["providers", domain, provider, "configs", "rollback"] => Target {
                domain,
                provider,
                action: "configure",
            },
            ["secrets"] => Target {
                domain: "",
                provider: "",
                action: "list_secrets",
            },
            ["secrets", _] => Target {
                domain: "",
                provider: "",
                action: "write_secret",
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
            ["inbound", _, domain, provider] => Target {
                domain,
                provider,
                action: switchyard_request::inbound::ACTION,
            },
            ["providers"] => Target {
                domain: "",
                provider: "",
                action: "list",
            },
            segments if switchyard_request::openai::action(segments).is_some() => {
                let (domain, provider) = switchyard_request::openai::PROVIDER;
                Target {
                    domain,
                    provider,
                    action: switchyard_request::openai::action(segments).unwrap_or_default(),
                }
            }
            _ => Target {
                domain: "",
                provider: "",
                action: "",
            },
        }
    }
}

pub fn check(
    identity: &Identity,
    operation: RouteOperation,
    target: Target<'_>,
) -> Result<(), Problem> {
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
        let target = Target::of("/providers/cache/memory/get");
        assert!(check(&with("invoke:cache/memory"), RouteOperation::Invoke, target).is_ok());
        assert_eq!(
            check(&with("invoke:db"), RouteOperation::Invoke, target)
                .unwrap_err()
                .code,
            ErrorCode::ScopeForbidden
        );
        let catalog = Target::of("/providers");
        assert!(check(&with("read"), RouteOperation::Read, catalog).is_ok());
        let stop = Target::of("/providers/cache/memory/stop");
        assert!(check(&with("read"), RouteOperation::Admin, stop).is_err());
        let rollback = Target::of("/providers/db/postgres/configs/rollback");
        assert_eq!(
            (rollback.domain, rollback.provider, rollback.action),
            ("db", "postgres", "configure")
        );
        assert_eq!(Target::of("/secrets/pg-dsn").action, "write_secret");
        assert!(check(&with("admin"), RouteOperation::Admin, rollback).is_ok());
        assert!(check(&with("invoke"), RouteOperation::Admin, rollback).is_err());
    }
}
