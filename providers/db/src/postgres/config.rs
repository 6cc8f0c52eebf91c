//! Per-tenant config of `db/postgres`.
//!
//! The runtime validates a tenant's config against [`schema`] before the factory sees it;
//! [`PostgresConfig::parse`] checks the same rules again so a factory used without the runtime
//! (tests, tools) cannot be started with values the engine would misuse.

use std::fmt;
use std::str::FromStr;

use serde::Deserialize;
use serde_json::{Value, json};
use sqlx::postgres::PgConnectOptions;
use switchyard_spi::{ErrorCode, ProviderError};

use crate::limits::{self, MAX_CONNECTIONS, MAX_ROWS, STATEMENT_TIMEOUT_MS};

/// Where a tenant's data lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// The platform's shared database, isolated by schema and row-level security.
    #[default]
    Pooled,
    /// The tenant's own database, reached through `dsn`.
    Siloed,
}

/// One tenant's settings. Every field is optional except `dsn` in siloed mode.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PostgresConfig {
    pub mode: Mode,
    /// Siloed mode only: `postgres://user:password@host:port/database` of the tenant's own
    /// database. Never printed (it may hold a password).
    pub dsn: Option<String>,
    /// How many of this tenant's calls may hold a connection at once (1..=32, default 8, or
    /// the operator's lower ceiling). In pooled mode it is the tenant's share of the shared
    /// pool, in siloed mode its pool size. The default is the operator's default ceiling: a
    /// tenant (or its service books) serving eight concurrent callers does not queue them.
    pub max_connections: u32,
    /// Longest a statement may run before it is cancelled (1..=600000 ms, default 30000).
    pub statement_timeout_ms: u64,
    /// The most rows one `query` returns (1..=100000, default 10000); a caller's `max_rows`
    /// may lower it but never raise it.
    pub max_rows: u32,
}

impl Default for PostgresConfig {
    fn default() -> Self {
        PostgresConfig {
            mode: Mode::Pooled,
            dsn: None,
            max_connections: MAX_CONNECTIONS.default_within(8),
            statement_timeout_ms: STATEMENT_TIMEOUT_MS.default_within(30_000),
            max_rows: 10_000,
        }
    }
}

/// Keeps a siloed tenant's password out of logs and panics.
impl fmt::Debug for PostgresConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostgresConfig")
            .field("mode", &self.mode)
            .field("dsn", &self.dsn.as_ref().map(|_| "<redacted>"))
            .field("max_connections", &self.max_connections)
            .field("statement_timeout_ms", &self.statement_timeout_ms)
            .field("max_rows", &self.max_rows)
            .finish()
    }
}

impl PostgresConfig {
    /// Reads and checks a tenant's config; problems come back as `config_invalid` with a
    /// pointer per offending field.
    pub fn parse(config: Value) -> Result<Self, ProviderError> {
        let config: PostgresConfig = limits::parse(config)?;
        MAX_CONNECTIONS.check(config.max_connections)?;
        STATEMENT_TIMEOUT_MS.check(config.statement_timeout_ms)?;
        MAX_ROWS.check(config.max_rows)?;
        let invalid = |detail: &str| ProviderError::field(ErrorCode::ConfigInvalid, "/dsn", detail);
        match (config.mode, &config.dsn) {
            (Mode::Siloed, None) => return Err(invalid("siloed mode needs a dsn")),
            (Mode::Pooled, Some(_)) => {
                return Err(invalid(
                    "a dsn is only used in siloed mode; pooled tenants share the platform database",
                ));
            }
            (Mode::Siloed, Some(dsn)) => {
                parse_dsn(dsn)?;
            }
            (Mode::Pooled, None) => {}
        }
        Ok(config)
    }

    /// The siloed database's connect options; `None` in pooled mode.
    pub(crate) fn connect_options(&self) -> Result<Option<PgConnectOptions>, ProviderError> {
        self.dsn.as_deref().map(parse_dsn).transpose()
    }
}

fn parse_dsn(dsn: &str) -> Result<PgConnectOptions, ProviderError> {
    if !(dsn.starts_with("postgres://") || dsn.starts_with("postgresql://")) {
        return Err(ProviderError::field(
            ErrorCode::ConfigInvalid,
            "/dsn",
            "dsn must be a postgres:// or postgresql:// URL",
        ));
    }
    // sqlx's message may quote the URL, password included: only its kind is reported.
    PgConnectOptions::from_str(dsn).map_err(|_| {
        ProviderError::field(ErrorCode::ConfigInvalid, "/dsn", "dsn is not a valid URL")
    })
}

/// The JSON Schema of [`PostgresConfig`], built from the limits and defaults the code uses.
pub fn schema() -> Value {
    let defaults = PostgresConfig::default();
    let mut schema = limits::schema([
        (
            "mode".to_owned(),
            json!({
                "enum": ["pooled", "siloed"], "default": "pooled",
                "description": "pooled: the platform's shared database, isolated by schema and row-level security; siloed: the tenant's own database at dsn."
            }),
        ),
        (
            "dsn".to_owned(),
            json!({
                "type": "string", "minLength": 1, "pattern": "^(postgres(ql)?|secret)://", "x-secret": true,
                "description": "Siloed mode only: a secret:// reference to the postgres:// URL of the tenant's own database (it holds a password; the runtime refuses the URL itself)."
            }),
        ),
        MAX_CONNECTIONS.property(
            defaults.max_connections,
            "Calls of this tenant holding a connection at once (its share of the shared pool, or its own pool's size when siloed).",
        ),
        STATEMENT_TIMEOUT_MS.property(
            defaults.statement_timeout_ms,
            "Longest a statement may run before it is cancelled with a retryable timeout.",
        ),
        limits::max_rows_property(defaults.max_rows),
    ]);
    schema["if"] = json!({"properties": {"mode": {"const": "siloed"}}, "required": ["mode"]});
    schema["then"] = json!({"required": ["dsn"]});
    schema["else"] = json!({"not": {"required": ["dsn"]}});
    schema
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_config_gives_the_documented_defaults() {
        let config = PostgresConfig::parse(json!({})).unwrap();
        assert_eq!(config, PostgresConfig::default());
        let schema = schema();
        for (field, value) in [
            ("mode", json!("pooled")),
            ("max_connections", json!(config.max_connections)),
            ("statement_timeout_ms", json!(config.statement_timeout_ms)),
            ("max_rows", json!(config.max_rows)),
        ] {
            assert_eq!(schema["properties"][field]["default"], value, "{field}");
        }
    }

    #[test]
    fn schema_and_parser_agree_on_what_is_valid() {
        let dsn = "postgres://u:p@db.example:5432/acme";
        let cases = [
            (json!({}), true),
            (json!({"mode": "pooled", "max_connections": 32}), true),
            (json!({"mode": "siloed", "dsn": dsn}), true),
            (json!({"mode": "siloed"}), false),
            (json!({"dsn": dsn}), false),
            (json!({"mode": "siloed", "dsn": "mysql://x/y"}), false),
            (json!({"mode": "shared"}), false),
            (json!({"max_connections": 0}), false),
            (json!({"statement_timeout_ms": 0}), false),
            (json!({"max_rows": 100_001}), false),
            (json!({"busy_timeout_ms": 5}), false),
        ];
        limits::assert_schema_agrees_with_parse(&schema(), PostgresConfig::parse, &cases);
    }

    #[test]
    fn the_dsn_never_shows_in_debug_output() {
        let config =
            PostgresConfig::parse(json!({"mode": "siloed", "dsn": "postgres://u:hunter2@h/db"}))
                .unwrap();
        assert!(!format!("{config:?}").contains("hunter2"));
    }
}
