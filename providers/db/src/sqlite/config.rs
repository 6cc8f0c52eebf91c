//! Per-tenant config of `db/sqlite`.
//!
//! The runtime validates a tenant's config against [`schema`] before the factory sees it;
//! [`SqliteConfig::parse`] checks the same limits again so a factory used without the runtime
//! (tests, tools) cannot be started with values the pools would reject.

use std::time::Duration;

use serde::Deserialize;
use serde_json::Value;
use switchyard_spi::ProviderError;

use crate::limits::{self, Limit, MAX_CONNECTIONS, MAX_ROWS, STATEMENT_TIMEOUT_MS};

const BUSY_TIMEOUT_MS: Limit = Limit {
    name: "busy_timeout_ms",
    min: 0,
    max: 60_000,
};

/// One tenant's settings. Every field is optional: `{}` means the defaults.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SqliteConfig {
    /// How many read connections may serve `query` and `metadata` at once (1..=32 and at most
    /// the operator's `db_max_connections`, default 4). Writes (`execute`, `transaction`)
    /// always share one connection: SQLite admits one writer at a time anyway, and a single
    /// writer connection never deadlocks with itself.
    pub max_connections: u32,
    /// Longest one call's statements may run (a whole `transaction` batch counts as one)
    /// before SQLite interrupts them with a retryable `timeout` (1..=600000 ms and at most the
    /// operator's `db_statement_timeout_ms`, default 30000).
    pub statement_timeout_ms: u64,
    /// How long a call waits for a database lock or a free connection before it fails with a
    /// retryable `provider_unavailable` (0..=60000 ms, default 5000).
    pub busy_timeout_ms: u64,
    /// The most rows one `query` returns (1..=100000, default 10000). It is a ceiling set by
    /// whoever configures the tenant: a caller's `max_rows` may lower it but never raise it.
    pub max_rows: u32,
}

/// The defaults, each at most the operator's ceiling on its field.
impl Default for SqliteConfig {
    fn default() -> Self {
        SqliteConfig {
            max_connections: MAX_CONNECTIONS.default_within(4),
            statement_timeout_ms: STATEMENT_TIMEOUT_MS.default_within(30_000),
            busy_timeout_ms: 5_000,
            max_rows: 10_000,
        }
    }
}

impl SqliteConfig {
    /// Reads and range-checks a tenant's config; problems come back as `config_invalid`
    /// with a pointer per offending field.
    pub fn parse(config: Value) -> Result<Self, ProviderError> {
        let config: SqliteConfig = limits::parse(config)?;
        MAX_CONNECTIONS.check(config.max_connections)?;
        STATEMENT_TIMEOUT_MS.check(config.statement_timeout_ms)?;
        BUSY_TIMEOUT_MS.check(config.busy_timeout_ms)?;
        MAX_ROWS.check(config.max_rows)?;
        Ok(config)
    }

    pub fn busy_timeout(&self) -> Duration {
        Duration::from_millis(self.busy_timeout_ms)
    }

    pub fn statement_timeout(&self) -> Duration {
        Duration::from_millis(self.statement_timeout_ms)
    }
}

/// The JSON Schema of [`SqliteConfig`], built from the same limits and defaults the code uses
/// so the published schema cannot drift from what the engine accepts.
pub fn schema() -> Value {
    let defaults = SqliteConfig::default();
    limits::schema([
        MAX_CONNECTIONS.property(
            defaults.max_connections,
            "Read connections serving query and metadata concurrently; writes always use one connection.",
        ),
        STATEMENT_TIMEOUT_MS.property(
            defaults.statement_timeout_ms,
            "Longest one call's statements may run (a transaction batch counts as one call) before they are interrupted with a retryable timeout; at most the operator's ceiling.",
        ),
        BUSY_TIMEOUT_MS.property(
            defaults.busy_timeout_ms,
            "How long a call waits for a lock or a free connection before failing with a retryable provider_unavailable.",
        ),
        limits::max_rows_property(defaults.max_rows),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn empty_config_gives_the_documented_defaults() {
        let config = SqliteConfig::parse(json!({})).unwrap();
        assert_eq!(config, SqliteConfig::default());
        let schema = schema();
        for (field, value) in [
            ("max_connections", json!(config.max_connections)),
            ("statement_timeout_ms", json!(config.statement_timeout_ms)),
            ("busy_timeout_ms", json!(config.busy_timeout_ms)),
            ("max_rows", json!(config.max_rows)),
        ] {
            assert_eq!(schema["properties"][field]["default"], value, "{field}");
        }
    }

    #[test]
    fn schema_and_parser_agree_on_what_is_valid() {
        let cases = [
            (json!({}), true),
            (
                json!({"max_connections": 32, "busy_timeout_ms": 0, "max_rows": 1}),
                true,
            ),
            (json!({"max_connections": 0}), false),
            (json!({"max_connections": 33}), false),
            (json!({"busy_timeout_ms": 60_001}), false),
            (json!({"statement_timeout_ms": 0}), false),
            (json!({"statement_timeout_ms": 600_001}), false),
            (json!({"max_rows": 100_001}), false),
            (json!({"max_rows": 0}), false),
            (json!({"pool": 3}), false),
        ];
        limits::assert_schema_agrees_with_parse(&schema(), SqliteConfig::parse, &cases);
    }

    #[test]
    fn out_of_range_field_is_pointed_at() {
        let err = SqliteConfig::parse(json!({"max_rows": 0})).unwrap_err();
        assert_eq!(err.errors[0].pointer, "/max_rows");
    }
}
