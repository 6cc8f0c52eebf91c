//! What the siloed engines share — db/mysql and db/mssql, which give every tenant a database
//! and an account of its own on one server: the tenant's config, and how its database and
//! account are named and the account's password derived. The SQL that provisions them is each
//! engine's (see its `tenancy`). Also the egress check of a database the tenant names itself
//! (db/postgres's siloed `dsn`; db/mysql and db/mssql connect only to the operator's server).

use serde::Deserialize;
use serde_json::Value;
use sha2::{Digest, Sha256};
use sqlx::postgres::{PgConnectOptions, PgSslMode};
use switchyard_egress::Egress;
use switchyard_spi::{ErrorCode, ProviderError};

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
            max_connections: MAX_CONNECTIONS.default_within(4),
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

/// A tenant's own PostgreSQL server (a siloed `dsn`), held to the operator's egress ceiling
/// before anything connects: its port and every address its host resolves to are checked,
/// and the connections are pinned to the first checked address, so no later DNS answer is used
/// unchecked (DNS rebinding). With `sslmode=verify-full` the name is kept instead: the server
/// must then prove the name with its certificate, which a rebound address cannot. A Unix
/// socket (a path host, or no host at all) is this machine, and refused. Refusals are
/// `egress_forbidden` at `/dsn` and never quote the dsn (it holds a password).
pub(crate) async fn vet_postgres(
    options: PgConnectOptions,
    egress: &Egress,
) -> Result<PgConnectOptions, ProviderError> {
    if options.get_socket().is_some() {
        return Err(ProviderError::field(
            ErrorCode::EgressForbidden,
            "/dsn",
            "the dsn names a Unix socket, a server on this machine; name the database's network host",
        )
        .with_retryable(false));
    }
    let addresses = egress
        .resolve(options.get_host(), options.get_port())
        .await
        .map_err(|refusal| refusal.at("/dsn"))?;
    let Some(address) = addresses.first() else {
        return Err(ProviderError::unavailable(
            "the dsn's host does not resolve; check the name or retry",
        ));
    };
    Ok(match options.get_ssl_mode() {
        PgSslMode::VerifyFull => options,
        _ => options.host(&address.ip().to_string()),
    })
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

    fn loopback() -> Egress {
        Egress::new(&switchyard_spi::tenancy::EgressCeiling {
            allowed_networks: vec!["127.0.0.0/8".parse().unwrap(), "::1/128".parse().unwrap()],
            allowed_ports: vec![5432],
        })
    }

    fn dsn(url: &str) -> PgConnectOptions {
        url.parse().unwrap()
    }

    #[tokio::test]
    async fn a_tenants_dsn_is_held_to_the_egress_ceiling_and_pinned() {
        for refused in [
            "postgres://u:hunter2@127.0.0.1:5432/db",
            "postgres://u:hunter2@localhost/db",
            "postgres://u:hunter2@169.254.169.254/db",
            "postgres://u:hunter2@[::1]:5432/db",
            "postgres://u:hunter2@db.example/db?hostaddr=10.0.0.7",
        ] {
            let err = vet_postgres(dsn(refused), &Egress::default())
                .await
                .unwrap_err();
            assert_eq!(err.code, ErrorCode::EgressForbidden, "{refused}");
            assert_eq!(err.errors[0].pointer, "/dsn");
            assert!(!err.detail.contains("hunter2"), "{}", err.detail);
        }
        let socket = vet_postgres(
            dsn("postgres://u@%2Fvar%2Frun%2Fpostgresql/db"),
            &loopback(),
        )
        .await
        .unwrap_err();
        assert_eq!(socket.code, ErrorCode::EgressForbidden);
        let port = vet_postgres(dsn("postgres://u@127.0.0.1:6543/db"), &loopback())
            .await
            .unwrap_err();
        assert_eq!(port.code, ErrorCode::EgressForbidden);
        assert!(port.detail.contains("6543"), "{}", port.detail);
        // Allowed: the name is replaced by the address that was checked.
        let pinned = vet_postgres(dsn("postgres://u@localhost:5432/db"), &loopback())
            .await
            .unwrap();
        assert!(
            ["127.0.0.1", "::1"].contains(&pinned.get_host()),
            "{}",
            pinned.get_host()
        );
        let verified = vet_postgres(
            dsn("postgres://u@localhost:5432/db?sslmode=verify-full"),
            &loopback(),
        )
        .await
        .unwrap();
        assert_eq!(verified.get_host(), "localhost");
    }

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
