//! Per-tenant config of `db/sqlite`.
//!
//! The runtime validates a tenant's config against [`schema`] before the factory sees it;
//! [`SqliteConfig::parse`] checks the same limits again so a factory used without the runtime
//! (tests, tools) cannot be started with values the pools would reject.

use std::time::Duration;

use serde::Deserialize;
use serde_json::{Value, json};
use switchyard_spi::{ErrorCode, ProviderError};

const MAX_CONNECTIONS: (u32, u32) = (1, 32);
const BUSY_TIMEOUT_MS: (u64, u64) = (0, 60_000);
const MAX_ROWS: (u32, u32) = (1, 100_000);

/// One tenant's settings. Every field is optional: `{}` means the defaults.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SqliteConfig {
    /// How many read connections may serve `query` and `metadata` at once (1..=32, default
    /// 4). Writes (`execute`, `transaction`) always share one connection: SQLite admits one
    /// writer at a time anyway, and a single writer connection never deadlocks with itself.
    pub max_connections: u32,
    /// How long a call waits for a database lock or a free connection before it fails with a
    /// retryable `provider_unavailable` (0..=60000 ms, default 5000).
    pub busy_timeout_ms: u64,
    /// The most rows one `query` returns (1..=100000, default 10000). It is a ceiling set by
    /// whoever configures the tenant: a caller's `max_rows` may lower it but never raise it.
    pub max_rows: u32,
}

impl Default for SqliteConfig {
    fn default() -> Self {
        SqliteConfig {
            max_connections: 4,
            busy_timeout_ms: 5_000,
            max_rows: 10_000,
        }
    }
}

impl SqliteConfig {
    /// Reads and range-checks a tenant's config; problems come back as `config_invalid`
    /// with a pointer per offending field.
    pub fn parse(config: Value) -> Result<Self, ProviderError> {
        let config: SqliteConfig = serde_json::from_value(config)
            .map_err(|e| ProviderError::field(ErrorCode::ConfigInvalid, "", e.to_string()))?;
        let checks = [
            (
                "/max_connections",
                in_range(config.max_connections.into(), widen(MAX_CONNECTIONS)),
            ),
            (
                "/busy_timeout_ms",
                in_range(config.busy_timeout_ms, BUSY_TIMEOUT_MS),
            ),
            (
                "/max_rows",
                in_range(config.max_rows.into(), widen(MAX_ROWS)),
            ),
        ];
        for (pointer, check) in checks {
            check.map_err(|detail| {
                ProviderError::field(ErrorCode::ConfigInvalid, pointer, detail)
            })?;
        }
        Ok(config)
    }

    pub fn busy_timeout(&self) -> Duration {
        Duration::from_millis(self.busy_timeout_ms)
    }
}

/// The JSON Schema of [`SqliteConfig`], built from the same limits and defaults the code uses
/// so the published schema cannot drift from what the engine accepts.
pub fn schema() -> Value {
    let defaults = SqliteConfig::default();
    json!({
        "type": "object",
        "additionalProperties": false,
        "properties": {
            "max_connections": {
                "type": "integer",
                "minimum": MAX_CONNECTIONS.0, "maximum": MAX_CONNECTIONS.1,
                "default": defaults.max_connections,
                "description": "Read connections serving query and metadata concurrently; writes always use one connection."
            },
            "busy_timeout_ms": {
                "type": "integer",
                "minimum": BUSY_TIMEOUT_MS.0, "maximum": BUSY_TIMEOUT_MS.1,
                "default": defaults.busy_timeout_ms,
                "description": "How long a call waits for a lock or a free connection before failing with a retryable provider_unavailable."
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

fn widen((min, max): (u32, u32)) -> (u64, u64) {
    (min.into(), max.into())
}

fn in_range(value: u64, (min, max): (u64, u64)) -> Result<(), String> {
    if (min..=max).contains(&value) {
        Ok(())
    } else {
        Err(format!("{value} is outside {min}..={max}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchyard_contracts::schema::Compiled;

    #[test]
    fn empty_config_gives_the_documented_defaults() {
        let config = SqliteConfig::parse(json!({})).unwrap();
        assert_eq!(config, SqliteConfig::default());
        let schema = schema();
        for (field, value) in [
            ("max_connections", json!(config.max_connections)),
            ("busy_timeout_ms", json!(config.busy_timeout_ms)),
            ("max_rows", json!(config.max_rows)),
        ] {
            assert_eq!(schema["properties"][field]["default"], value, "{field}");
        }
    }

    #[test]
    fn schema_and_parser_agree_on_what_is_valid() {
        let schema = Compiled::new(&schema(), "db/sqlite#config").unwrap();
        let cases = [
            (json!({}), true),
            (
                json!({"max_connections": 32, "busy_timeout_ms": 0, "max_rows": 1}),
                true,
            ),
            (json!({"max_connections": 0}), false),
            (json!({"max_connections": 33}), false),
            (json!({"busy_timeout_ms": 60_001}), false),
            (json!({"max_rows": 100_001}), false),
            (json!({"max_rows": 0}), false),
            (json!({"pool": 3}), false),
        ];
        for (config, valid) in cases {
            assert_eq!(
                schema.check(&config).is_empty(),
                valid,
                "schema on {config}"
            );
            let parsed = SqliteConfig::parse(config.clone());
            assert_eq!(parsed.is_ok(), valid, "parser on {config}");
            if let Err(err) = parsed {
                assert_eq!(err.code, ErrorCode::ConfigInvalid);
            }
        }
    }

    #[test]
    fn out_of_range_field_is_pointed_at() {
        let err = SqliteConfig::parse(json!({"max_rows": 0})).unwrap_err();
        assert_eq!(err.errors[0].pointer, "/max_rows");
    }
}
