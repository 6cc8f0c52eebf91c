//! Tenant identifiers.
//!
//! A tenant id ends up in file names (one SQLite database per tenant), cache key prefixes and
//! headers, so its alphabet is deliberately narrow: lowercase ASCII letters, digits and `-`.

use serde::{Deserialize, Serialize};

/// Ids no tenant may be created with. `readyz` is the tenant whose platform-default instances
/// `/readyz` probes (a tenant of that name would share them); the others name the platform's
/// own routes, files and roles (`/metrics`, `/providers`, `/admin/*`, the `providers` data
/// directory …), so that a tenant id never reads as one of them in a URL, a metric label, a
/// log line or an audit record. They stay valid ids for the platform's internal use.
pub const RESERVED_TENANT_IDS: &[&str] = &[
    "readyz",
    "healthz",
    "livez",
    "metrics",
    "openapi",
    "providers",
    "services",
    "policies",
    "keys",
    "console",
    "admin",
    "operator",
    "platform",
    "internal",
    "system",
    "switchyard",
    "tenants",
    "api",
];

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct TenantId(String);

impl TenantId {
    pub fn parse(raw: &str) -> Result<Self, TenantIdError> {
        let ok_len = (1..=63).contains(&raw.len());
        let ok_chars = raw
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        let ok_edges = !raw.starts_with('-') && !raw.ends_with('-');
        if ok_len && ok_chars && ok_edges {
            Ok(TenantId(raw.to_owned()))
        } else {
            Err(TenantIdError::Malformed(raw.to_owned()))
        }
    }

    /// The id of a tenant about to be created: a valid id that is not one of
    /// [`RESERVED_TENANT_IDS`]. Everything that creates tenants parses with this; everything
    /// that reads an existing id (a stored row, a token, a header) uses [`TenantId::parse`].
    pub fn parse_new(raw: &str) -> Result<Self, TenantIdError> {
        let tenant = TenantId::parse(raw)?;
        if RESERVED_TENANT_IDS.contains(&raw) {
            return Err(TenantIdError::Reserved(raw.to_owned()));
        }
        Ok(tenant)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Why a text is not a tenant id (or not one a new tenant may take); each quotes the text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TenantIdError {
    #[error(
        "tenant id {0:?} must be 1-63 characters of a-z, 0-9 and '-', not starting or ending with '-'"
    )]
    Malformed(String),
    #[error("tenant id {0:?} is reserved for the platform; choose another name")]
    Reserved(String),
}

impl TryFrom<String> for TenantId {
    type Error = TenantIdError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        TenantId::parse(&value)
    }
}

impl From<TenantId> for String {
    fn from(value: TenantId) -> Self {
        value.0
    }
}

impl std::fmt::Display for TenantId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::{TenantId, TenantIdError};

    #[test]
    fn accepts_slugs_and_refuses_path_tricks() {
        assert!(TenantId::parse("acme").is_ok());
        assert!(TenantId::parse("acme-eu-2").is_ok());
        for bad in [
            "",
            "Acme",
            "../b",
            "a/b",
            "-a",
            "a-",
            "a b",
            "a.b",
            &"x".repeat(64),
        ] {
            assert!(TenantId::parse(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn reserved_ids_parse_but_cannot_be_new_tenants() {
        assert!(TenantId::parse_new("acme").is_ok());
        for reserved in super::RESERVED_TENANT_IDS {
            assert!(
                TenantId::parse(reserved).is_ok(),
                "{reserved} must stay valid"
            );
            let refused = TenantId::parse_new(reserved).unwrap_err();
            assert_eq!(refused, TenantIdError::Reserved((*reserved).to_owned()));
            assert!(refused.to_string().contains("reserved"), "{refused}");
        }
        assert!(TenantId::parse_new("openapi.json").is_err());
    }
}
