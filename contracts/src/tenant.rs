//! Tenant identifiers.
//!
//! A tenant id ends up in file names (one SQLite database per tenant), cache key prefixes and
//! headers, so its alphabet is deliberately narrow: lowercase ASCII letters, digits and `-`.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct TenantId(String);

impl TenantId {
    pub fn parse(raw: &str) -> Result<Self, String> {
        let ok_len = (1..=63).contains(&raw.len());
        let ok_chars = raw
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        let ok_edges = !raw.starts_with('-') && !raw.ends_with('-');
        if ok_len && ok_chars && ok_edges {
            Ok(TenantId(raw.to_owned()))
        } else {
            Err(format!(
                "tenant id {raw:?} must be 1-63 characters of a-z, 0-9 and '-', not starting or ending with '-'"
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for TenantId {
    type Error = String;
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
    use super::TenantId;

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
}
