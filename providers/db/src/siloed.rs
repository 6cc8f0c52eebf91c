//! What the siloed engines share — db/mysql and db/mssql, which give every tenant a database
//! and an account of its own on one server: the tenant's config, and how its database and
//! account are named and the account's password derived. The SQL that provisions them is each
//! engine's (see its `tenancy`).

use serde::Deserialize;
use serde_json::Value;
use sha2::{Digest, Sha256};
use switchyard_spi::ProviderError;

use crate::limits::{self, MAX_CONNECTIONS, MAX_ROWS};

/// One tenant's settings; every field is optional.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SiloedConfig {
    /// Size of the tenant's own connection pool (1..=32, default 4).
    pub max_connections: u32,
    /// The most rows one `query` returns (1..=100000, default 10000); a caller's `max_rows`
    /// may lower it but never raise it.
    pub max_rows: u32,
}

impl Default for SiloedConfig {
    fn default() -> Self {
        SiloedConfig {
            max_connections: 4,
            max_rows: 10_000,
        }
    }
}

impl SiloedConfig {
    /// Reads and checks a tenant's config; problems come back as `config_invalid` with a
    /// pointer to the offending field.
    pub fn parse(config: Value) -> Result<Self, ProviderError> {
        let config: SiloedConfig = limits::parse(config)?;
        MAX_CONNECTIONS.check(config.max_connections)?;
        MAX_ROWS.check(config.max_rows)?;
        Ok(config)
    }
}

/// The JSON Schema of [`SiloedConfig`], built from the limits and defaults the code uses.
pub fn schema() -> Value {
    let defaults = SiloedConfig::default();
    limits::schema([
        MAX_CONNECTIONS.property(
            defaults.max_connections,
            "Size of the tenant's own connection pool (calls holding a connection at once).",
        ),
        limits::max_rows_property(defaults.max_rows),
    ])
}

/// Keeps a database prefix to lowercase letters, digits and `_`.
pub(crate) fn clean_prefix(prefix: &str) -> String {
    prefix
        .chars()
        .map(|c| {
            if c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// The database of `tenant`: `<prefix><tenant>` with `-` as `_`. A name longer than the
/// server's `max_len` keeps its first `max_len - 17` characters followed by `_` and 16 hex
/// digits of its hash, so long names still differ.
pub(crate) fn database_name(prefix: &str, tenant: &str, max_len: usize) -> String {
    let name = format!("{prefix}{}", tenant.replace('-', "_"));
    if name.len() <= max_len {
        return name;
    }
    let hash = hex::encode(Sha256::digest(name.as_bytes()));
    format!("{}_{}", &name[..max_len - 17], &hash[..16])
}

/// The account owning `database`: `sy_` and 24 hex digits of the name's hash (27 characters,
/// within every server's limit).
pub(crate) fn account_name(database: &str) -> String {
    let hash = hex::encode(Sha256::digest(database.as_bytes()));
    format!("sy_{}", &hash[..24])
}

/// The hex of `sha256(secret ‖ 0 ‖ account)`. Derived rather than stored: every process
/// serving the server derives the same one, and rotating `secret` only needs a restart.
pub(crate) fn derived_password(secret: &str, account: &str) -> String {
    let mut hasher = Sha256::new();
    hasher.update(secret.as_bytes());
    hasher.update([0]);
    hasher.update(account.as_bytes());
    hex::encode(hasher.finalize())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn empty_config_gives_the_documented_defaults() {
        let config = SiloedConfig::parse(json!({})).unwrap();
        assert_eq!(config, SiloedConfig::default());
        let schema = schema();
        for (field, value) in [
            ("max_connections", json!(config.max_connections)),
            ("max_rows", json!(config.max_rows)),
        ] {
            assert_eq!(schema["properties"][field]["default"], value, "{field}");
        }
    }

    #[test]
    fn schema_and_parser_agree_on_what_is_valid() {
        let cases = [
            (json!({}), true),
            (json!({"max_connections": 32, "max_rows": 5}), true),
            (json!({"max_connections": 0}), false),
            (json!({"max_connections": 33}), false),
            (json!({"max_rows": 100_001}), false),
            (json!({"dsn": "mysql://x/y"}), false),
            (json!({"connection_string": "server=x"}), false),
        ];
        limits::assert_schema_agrees_with_parse(&schema(), SiloedConfig::parse, &cases);
    }
}
