//! API key scopes and the operation each route needs.
//!
//! Grammar: `*` (everything), `read` (catalog, descriptors, health), `admin` (configure,
//! start, stop), `audit` (policy bundle, revision and decision log), `invoke` (any action),
//! `invoke:<domain>` or `invoke:<domain>/<name>`.
//! Scopes are coarse on purpose; fine-grained decisions belong to the policy engine.

/// What a request wants to do, as the gateway classifies it from method and path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation<'a> {
    Read,
    Admin,
    Audit,
    Invoke {
        domain: &'a str,
        name: &'a str,
    },
    /// Managing the tenant's API keys: only `*` grants it, so no narrower key can mint a wider
    /// one.
    Keys,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scopes(Vec<String>);

/// Why a scope list is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScopesError {
    #[error("at least one scope is required")]
    Empty,
    #[error(
        "unknown scope {0:?}: use *, read, admin, audit, invoke, invoke:<domain> or invoke:<domain>/<name>"
    )]
    Unknown(String),
}

impl Scopes {
    /// Parses a comma- or space-separated list, refusing unknown scope forms so a typo never
    /// silently grants nothing (or everything).
    pub fn parse(raw: &str) -> Result<Self, ScopesError> {
        let items: Vec<String> = raw
            .split([',', ' '])
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect();
        if items.is_empty() {
            return Err(ScopesError::Empty);
        }
        for item in &items {
            let valid = match item.as_str() {
                "*" | "read" | "admin" | "audit" | "invoke" => true,
                other => other.strip_prefix("invoke:").is_some_and(|target| {
                    let parts: Vec<&str> = target.split('/').collect();
                    (1..=2).contains(&parts.len()) && parts.iter().all(|p| is_segment(p))
                }),
            };
            if !valid {
                return Err(ScopesError::Unknown(item.clone()));
            }
        }
        Ok(Scopes(items))
    }

    pub fn allows(&self, op: Operation<'_>) -> bool {
        self.0.iter().any(|s| match (s.as_str(), op) {
            ("*", _) => true,
            ("read", Operation::Read)
            | ("admin", Operation::Admin)
            | ("audit", Operation::Audit) => true,
            ("invoke", Operation::Invoke { .. }) => true,
            (scope, Operation::Invoke { domain, name }) => {
                scope.strip_prefix("invoke:").is_some_and(|target| {
                    target == domain
                        || target
                            .split_once('/')
                            .is_some_and(|(d, n)| d == domain && n == name)
                })
            }
            _ => false,
        })
    }

    pub fn as_list(&self) -> &[String] {
        &self.0
    }

    pub fn to_header_value(&self) -> String {
        self.0.join(",")
    }
}

fn is_segment(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn star_allows_everything_and_narrow_scopes_do_not() {
        let star = Scopes::parse("*").unwrap();
        assert!(star.allows(Operation::Admin));
        let narrow = Scopes::parse("read, invoke:cache/memory").unwrap();
        assert!(narrow.allows(Operation::Read));
        assert!(narrow.allows(Operation::Invoke {
            domain: "cache",
            name: "memory"
        }));
        assert!(!narrow.allows(Operation::Invoke {
            domain: "db",
            name: "sqlite"
        }));
        assert!(!narrow.allows(Operation::Admin));
        assert!(!narrow.allows(Operation::Audit));
        assert!(Scopes::parse("audit").unwrap().allows(Operation::Audit));
        let domain = Scopes::parse("invoke:db").unwrap();
        assert!(domain.allows(Operation::Invoke {
            domain: "db",
            name: "sqlite"
        }));
        assert!(!domain.allows(Operation::Invoke {
            domain: "dbx",
            name: "sqlite"
        }));
        for narrow in ["read", "admin", "audit", "invoke", "invoke:db"] {
            assert!(
                !Scopes::parse(narrow).unwrap().allows(Operation::Keys),
                "{narrow} may manage keys"
            );
        }
        assert!(Scopes::parse("*").unwrap().allows(Operation::Keys));
    }

    #[test]
    fn unknown_scopes_are_refused() {
        for bad in ["", "write", "invoke:", "invoke:a/b/c", "invoke:DB"] {
            assert!(Scopes::parse(bad).is_err(), "{bad:?} accepted");
        }
    }
}
