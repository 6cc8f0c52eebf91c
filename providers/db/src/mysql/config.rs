//! Per-tenant config of `db/mysql`.
//!
//! The runtime validates a tenant's config against [`schema`] before the factory sees it;
//! [`MysqlConfig::parse`] checks the same rules again so a factory used without the runtime
//! (tests, tools) cannot be started with values the engine would misuse.

use serde::Deserialize;
use serde_json::{Value, json};
use switchyard_spi::{ErrorCode, ProviderError};

const MAX_CONNECTIONS: (u64, u64) = (1, 32);
const MAX_ROWS: (u64, u64) = (1, 100_000);

/// One tenant's settings; every field is optional.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MysqlConfig {
    /// Size of the tenant's own connection pool (1..=32, default 4).
    pub max_connections: u32,
    /// The most rows one `query` returns (1..=100000, default 10000); a caller's `max_rows`
    /// may lower it but never raise it.
    pub max_rows: u32,
}

impl Default for MysqlConfig {
    fn default() -> Self {
        MysqlConfig {
            max_connections: 4,
            max_rows: 10_000,
        }
    }
}

impl MysqlConfig {
    /// Reads and checks a tenant's config; problems come back as `config_invalid` with a
    /// pointer to the offending field.
    pub fn parse(config: Value) -> Result<Self, ProviderError> {
        let config: MysqlConfig = serde_json::from_value(config)
            .map_err(|e| ProviderError::field(ErrorCode::ConfigInvalid, "", e.to_string()))?;
        for (pointer, value, range) in [
            (
                "/max_connections",
                u64::from(config.max_connections),
                MAX_CONNECTIONS,
            ),
            ("/max_rows", u64::from(config.max_rows), MAX_ROWS),
        ] {
            if !(range.0..=range.1).contains(&value) {
                return Err(ProviderError::field(
                    ErrorCode::ConfigInvalid,
                    pointer,
                    format!("{value} is outside {}..={}", range.0, range.1),
                ));
            }
        }
        Ok(config)
    }
}

/// The JSON Schema of [`MysqlConfig`], built from the limits and defaults the code uses.
pub fn schema() -> Value {
    let defaults = MysqlConfig::default();
    json!({
        "type": "object",
        "additionalProperties": false,
        "properties": {
            "max_connections": {
                "type": "integer",
                "minimum": MAX_CONNECTIONS.0, "maximum": MAX_CONNECTIONS.1,
                "default": defaults.max_connections,
                "description": "Size of the tenant's own connection pool (calls holding a connection at once)."
            },
            "max_rows": {
                "type": "integer",
                "minimum": MAX_ROWS.0, "maximum": MAX_ROWS.1,
                "default": defaults.max_rows,
                "description": "Most rows one query returns; a caller's max_rows may lower it, never raise it."
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchyard_contracts::schema::Compiled;

    #[test]
    fn empty_config_gives_the_documented_defaults() {
        let config = MysqlConfig::parse(json!({})).unwrap();
        assert_eq!(config, MysqlConfig::default());
        let schema = schema();
        assert_eq!(
            schema["properties"]["max_connections"]["default"],
            json!(config.max_connections)
        );
        assert_eq!(
            schema["properties"]["max_rows"]["default"],
            json!(config.max_rows)
        );
    }

    #[test]
    fn schema_and_parser_agree_on_what_is_valid() {
        let schema = Compiled::new(&schema(), "db/mysql#config").unwrap();
        let cases = [
            (json!({}), true),
            (json!({"max_connections": 32, "max_rows": 5}), true),
            (json!({"max_connections": 0}), false),
            (json!({"max_connections": 33}), false),
            (json!({"max_rows": 100_001}), false),
            (json!({"dsn": "mysql://x/y"}), false),
        ];
        for (config, valid) in cases {
            assert_eq!(
                schema.check(&config).is_empty(),
                valid,
                "schema on {config}"
            );
            let parsed = MysqlConfig::parse(config.clone());
            assert_eq!(parsed.is_ok(), valid, "parser on {config}");
            if let Err(err) = parsed {
                assert_eq!(err.code, ErrorCode::ConfigInvalid);
            }
        }
    }
}
