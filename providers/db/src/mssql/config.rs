//! Config of `db/mssql`: the platform's admin connection string ([`ConnectionString`]). Each
//! tenant's settings are those of every siloed engine (`MssqlConfig`, see `crate::siloed`).

use std::fmt;

use switchyard_spi::ProviderError;
use tiberius::{AuthMethod, Config, EncryptionLevel};

/// What the server sees as the client program (`program_name()`, `sys.dm_exec_sessions`).
const APPLICATION_NAME: &str = "switchyard db/mssql";

/// The admin connection string, parsed. It is read in one of three forms:
///
/// - ADO.NET: `server=tcp:db.internal,1433;user id=sa;password=…;TrustServerCertificate=true`
/// - JDBC: `jdbc:sqlserver://db.internal:1433;user=sa;password=…`
/// - URL: `sqlserver://sa:…@db.internal:1433/master?encrypt=true&trustServerCertificate=true`
///   (`mssql://` too; user, password and database percent-encoded)
///
/// The string holds a password, so nothing built from it ever shows more than the server's
/// `host:port`: not [`Debug`], not an error (tiberius's own parse errors may quote the
/// string, so they are never passed on).
#[derive(Clone)]
pub struct ConnectionString {
    config: Config,
}

impl ConnectionString {
    pub fn parse(raw: &str) -> Result<Self, ProviderError> {
        let trimmed = raw.trim();
        let lower = trimmed.to_ascii_lowercase();
        let config = if lower.starts_with("sqlserver://") || lower.starts_with("mssql://") {
            url_config(trimmed)
        } else if lower.starts_with("jdbc:") {
            Config::from_jdbc_string(trimmed).ok()
        } else if trimmed.contains('=') {
            Config::from_ado_string(trimmed).ok()
        } else {
            None
        };
        let mut config = config.ok_or_else(|| {
            ProviderError::unavailable(
                "db/mssql: the admin connection string is not a valid ADO.NET \
                 (server=tcp:host,1433;user id=…;password=…), JDBC (jdbc:sqlserver://…) or URL \
                 (sqlserver://user:password@host:1433) connection string",
            )
            .with_retryable(false)
        })?;
        config.application_name(APPLICATION_NAME);
        Ok(ConnectionString { config })
    }

    /// `host:port` of the server: all of the string that may be shown.
    pub fn server(&self) -> String {
        self.config.get_addr()
    }

    /// The admin's own connection (also what a test harness cleans up with).
    pub fn admin(&self) -> Config {
        self.config.clone()
    }

    /// A tenant's connection: same server and TLS settings as the admin's, the tenant's login
    /// and database.
    pub(crate) fn tenant(&self, database: &str, login: &str, password: &str) -> Config {
        let mut config = self.config.clone();
        config.database(database);
        config.authentication(AuthMethod::sql_server(login, password));
        config
    }
}

impl fmt::Debug for ConnectionString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConnectionString")
            .field("server", &self.server())
            .finish_non_exhaustive()
    }
}

/// `sqlserver://[user[:password]@]host[:port][/database][?key=value&…]`; keys (case does not
/// matter) are `encrypt` (`true`, `false`, `danger_plaintext`, as in ADO.NET) and
/// `trustServerCertificate` (`true`, `false`). `None` for anything else, so a typo is not
/// silently ignored.
fn url_config(url: &str) -> Option<Config> {
    let (_, rest) = url.split_once("://")?;
    let (before_query, query) = rest.split_once('?').unwrap_or((rest, ""));
    let (authority, path) = before_query.split_once('/').unwrap_or((before_query, ""));
    let (userinfo, host_port) = authority.rsplit_once('@').unwrap_or(("", authority));
    let (user, password) = userinfo.split_once(':').unwrap_or((userinfo, ""));
    let (host, port) = match host_port.strip_prefix('[') {
        // An IPv6 literal: `[::1]:1433`.
        Some(v6) => {
            let (host, after) = v6.split_once(']')?;
            (host, after.strip_prefix(':'))
        }
        None => match host_port.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (host_port, None),
        },
    };
    if host.is_empty() {
        return None;
    }
    let mut config = Config::new();
    config.host(host);
    if let Some(port) = port {
        config.port(port.parse().ok()?);
    }
    config.authentication(AuthMethod::sql_server(
        percent_decode(user)?,
        percent_decode(password)?,
    ));
    let database = percent_decode(path.trim_end_matches('/'))?;
    if !database.is_empty() {
        config.database(database);
    }
    config.encryption(EncryptionLevel::Off);
    for pair in query.split('&').filter(|pair| !pair.is_empty()) {
        let (key, value) = pair.split_once('=')?;
        match (
            key.to_ascii_lowercase().as_str(),
            value.to_ascii_lowercase().as_str(),
        ) {
            ("encrypt", "true" | "yes") => config.encryption(EncryptionLevel::Required),
            ("encrypt", "false" | "no") => config.encryption(EncryptionLevel::Off),
            ("encrypt", "danger_plaintext") => config.encryption(EncryptionLevel::NotSupported),
            ("trustservercertificate", "true" | "yes") => config.trust_cert(),
            ("trustservercertificate", "false" | "no") => {}
            _ => return None,
        }
    }
    Some(config)
}

/// `%XX` escapes decoded (`+` stays `+`: this is a URL's user info and path, not a form).
fn percent_decode(s: &str) -> Option<String> {
    let mut bytes = Vec::with_capacity(s.len());
    let mut rest = s.as_bytes();
    while let Some((&b, tail)) = rest.split_first() {
        if b == b'%' {
            let hex = std::str::from_utf8(tail.get(..2)?).ok()?;
            bytes.push(u8::from_str_radix(hex, 16).ok()?);
            rest = &tail[2..];
        } else {
            bytes.push(b);
            rest = tail;
        }
    }
    String::from_utf8(bytes).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchyard_spi::ErrorCode;

    const PASSWORD: &str = "Hunter2;x=y";

    #[test]
    fn every_form_finds_the_server() {
        for (raw, server) in [
            (
                "server=tcp:db.internal,1433;user id=sa;password=pw;TrustServerCertificate=true",
                "db.internal:1433",
            ),
            (
                "Data Source=db.internal,14330;User ID=sa;Password=pw",
                "db.internal:14330",
            ),
            ("server=db.internal;uid=sa;pwd=pw", "db.internal:1433"),
            (
                "jdbc:sqlserver://db.internal:1444;user=sa;password=pw",
                "db.internal:1444",
            ),
            (
                "sqlserver://sa:pw@db.internal:1455/master",
                "db.internal:1455",
            ),
            ("MSSQL://sa:pw@db.internal", "db.internal:1433"),
            (
                "sqlserver://sa:pw@[::1]:1466?encrypt=true&TrustServerCertificate=true",
                "::1:1466",
            ),
        ] {
            let parsed = ConnectionString::parse(raw).unwrap_or_else(|e| panic!("{raw}: {e:?}"));
            assert_eq!(parsed.server(), server, "{raw}");
        }
    }

    #[test]
    fn malformed_strings_are_refused_without_echoing_them() {
        for raw in [
            "",
            "db.internal",
            "sqlserver://",
            "sqlserver://sa:Hunter2@db.internal:notaport",
            "sqlserver://sa:Hunter2@db.internal?encrypt=maybe",
            "sqlserver://sa:Hunter2@db.internal?sslmode=require",
            "sqlserver://sa:Hunter2%zz@db.internal",
            "server=tcp:db.internal,notaport;password=Hunter2",
            "server=tcp:db.internal;password=Hunter2;encrypt=perhaps",
        ] {
            let err = ConnectionString::parse(raw).expect_err(raw);
            assert_eq!(err.code, ErrorCode::ProviderUnavailable, "{raw}");
            assert!(!err.retryable, "{raw}: a bad string stays bad");
            assert!(!err.detail.contains("Hunter2"), "{raw}: {err:?}");
        }
    }

    #[test]
    fn the_password_never_shows() {
        let encoded = "Hunter2%3Bx%3Dy";
        for raw in [
            format!("server=tcp:db.internal,1433;user id=sa;password=\"{PASSWORD}\""),
            format!("jdbc:sqlserver://db.internal:1433;user=sa;password={{{PASSWORD}}}"),
            format!("sqlserver://sa:{encoded}@db.internal:1433/master"),
        ] {
            let parsed = ConnectionString::parse(&raw).unwrap_or_else(|e| panic!("{raw}: {e:?}"));
            for shown in [
                format!("{parsed:?}"),
                format!("{:?}", parsed.admin()),
                format!("{:?}", parsed.tenant("t_acme", "sy_1", "Sy-secret")),
            ] {
                assert!(!shown.contains("Hunter2"), "{raw}: {shown}");
                assert!(!shown.contains("Sy-secret"), "{raw}: {shown}");
            }
        }
    }

    #[test]
    fn a_tenant_connection_keeps_the_server_and_changes_login_and_database() {
        let admin = ConnectionString::parse(
            "sqlserver://sa:pw@db.internal:1433/master?trustServerCertificate=true",
        )
        .unwrap();
        let tenant = format!("{:?}", admin.tenant("t_acme", "sy_0123", "Sy-x"));
        assert!(tenant.contains("\"db.internal\""), "{tenant}");
        assert!(tenant.contains("Some(\"t_acme\")"), "{tenant}");
        assert!(tenant.contains("\"sy_0123\""), "{tenant}");
        assert!(tenant.contains("TrustAll"), "{tenant}");
        assert!(!tenant.contains("\"sa\""), "{tenant}");
        assert!(tenant.contains(APPLICATION_NAME), "{tenant}");
    }

    #[test]
    fn url_parts_are_percent_decoded() {
        assert_eq!(percent_decode("a%3Bb%40c+d").as_deref(), Some("a;b@c+d"));
        assert_eq!(percent_decode("%E2%9C%93").as_deref(), Some("✓"));
        assert_eq!(percent_decode("50%"), None);
        assert_eq!(percent_decode("%ff"), None, "not UTF-8");
        let config = url_config("sqlserver://us%40er:p%3Aw@h:1/my%20db").unwrap();
        let shown = format!("{config:?}");
        assert!(shown.contains("\"us@er\""), "{shown}");
        assert!(shown.contains("Some(\"my db\")"), "{shown}");
    }
}
