//! Siloed tenancy: a database, a login and a database user of its own per tenant, kept apart
//! by SQL Server's permissions.
//!
//! For tenant `acme` the factory creates (if missing) the database `<prefix>acme` (prefix `t_`
//! by default, `-` becomes `_`) and the login `sy_<24 hex digits of sha256(database)>`, whose
//! default database it is. In that database only, the login gets a user (default schema
//! `dbo`) with `CREATE TABLE`, `CREATE VIEW`, `CREATE PROCEDURE`, `CREATE FUNCTION` and
//! `ALTER`, `SELECT`, `INSERT`, `UPDATE`, `DELETE`, `EXECUTE`, `REFERENCES`, `VIEW DEFINITION`
//! on schema `dbo` — no database role, no server role, no `GRANT` option. The login has no
//! user in any other tenant's database and `guest` cannot connect to a tenant database, so
//! `SELECT … FROM t_other.dbo.x` is refused by the server (error 916). `VIEW ANY DATABASE`
//! is denied to the login, so other tenants' database names are not listed either.
//!
//! The login's password is derived, not stored: `Sy-` and the hex of
//! `sha256(secret ‖ 0 ‖ login)`, where the secret is the factory's (`MssqlFactory::with_secret`,
//! by default the admin connection string). The prefix meets SQL Server's complexity policy
//! (upper and lower case, digit, symbol). It is set again at every start, so rotating the
//! secret only needs a restart.
//!
//! Every name is written into SQL as a QUOTENAME-style `[name]` (with `]` doubled) and every
//! value as an `N'…'` literal (with `'` doubled), although the names and passwords built here
//! hold only `a-z`, `0-9`, `_` and `-`.

use switchyard_spi::{ErrorCode, ProviderError};

use super::errors;
use crate::siloed;

/// SQL Server's longest identifier (`sysname`), which `QUOTENAME` accepts.
const MAX_NAME_LEN: usize = 128;

/// The database of `tenant`: `<prefix><tenant>` with `-` as `_`; a name longer than SQL
/// Server allows keeps its first 111 characters followed by `_` and 16 hex digits of its hash.
pub fn tenant_database(prefix: &str, tenant: &str) -> String {
    siloed::database_name(prefix, tenant, MAX_NAME_LEN)
}

/// The login (and database user) owning `database` (see the module docs).
pub fn tenant_login(database: &str) -> String {
    siloed::account_name(database)
}

/// The password of `login` under `secret`; `Sy-` meets SQL Server's complexity policy.
pub(crate) fn tenant_password(secret: &str, login: &str) -> String {
    format!("Sy-{}", siloed::derived_password(secret, login))
}

/// `name` as a delimited identifier, as `QUOTENAME(name)` writes it: `[` … `]`, with `]`
/// doubled.
pub fn quote_name(name: &str) -> String {
    format!("[{}]", name.replace(']', "]]"))
}

/// `value` as a Unicode string literal: `N'` … `'`, with `'` doubled.
pub fn quote_literal(value: &str) -> String {
    format!("N'{}'", value.replace('\'', "''"))
}

/// The batches that create (or repair) the tenant's database, login and user; each is
/// idempotent. The first runs at server level; the second runs inside the tenant's database
/// through its `sys.sp_executesql`, so the admin connection never changes database.
pub(crate) fn provisioning(database: &str, login: &str, password: &str) -> [String; 2] {
    let (db, db_literal) = (quote_name(database), quote_literal(database));
    let (user, user_literal) = (quote_name(login), quote_literal(login));
    let password = quote_literal(password);
    let login_options = format!(
        "PASSWORD = {password}, DEFAULT_DATABASE = {db}, CHECK_POLICY = OFF, \
         CHECK_EXPIRATION = OFF"
    );
    let server = format!(
        "IF DB_ID({db_literal}) IS NULL CREATE DATABASE {db};\n\
         IF SUSER_ID({user_literal}) IS NULL CREATE LOGIN {user} WITH {login_options};\n\
         ALTER LOGIN {user} WITH {login_options};\n\
         ALTER LOGIN {user} ENABLE;\n\
         DENY VIEW ANY DATABASE TO {user};"
    );
    let inside = format!(
        "IF USER_ID({user_literal}) IS NULL CREATE USER {user} FOR LOGIN {user} WITH DEFAULT_SCHEMA = [dbo];\n\
         ALTER USER {user} WITH LOGIN = {user}, DEFAULT_SCHEMA = [dbo];\n\
         GRANT CREATE TABLE, CREATE VIEW, CREATE PROCEDURE, CREATE FUNCTION TO {user};\n\
         GRANT ALTER, SELECT, INSERT, UPDATE, DELETE, EXECUTE, REFERENCES, VIEW DEFINITION \
         ON SCHEMA::[dbo] TO {user};\n\
         REVOKE CONNECT FROM [guest];"
    );
    let database_level = format!("EXEC {db}.sys.sp_executesql {};", quote_literal(&inside));
    [server, database_level]
}

/// Runs [`provisioning`] on an admin connection. A failure is `provider_unavailable`: the
/// start can be tried again (two processes provisioning the same tenant at once may collide
/// on `CREATE DATABASE`), unless the admin cannot log in at all.
pub(crate) async fn provision(
    admin: &bb8::Pool<bb8_tiberius::ConnectionManager>,
    database: &str,
    login: &str,
    password: &str,
) -> Result<(), ProviderError> {
    let mut conn = admin.get().await.map_err(errors::from_pool)?;
    for batch in provisioning(database, login, password) {
        let done = match conn.simple_query(batch).await {
            Ok(stream) => stream.into_results().await.map(drop),
            Err(e) => Err(e),
        };
        if let Err(e) = done {
            let error = errors::from_tiberius(e);
            return Err(match error.code {
                ErrorCode::ProviderUnavailable => error,
                _ => ProviderError::unavailable(format!(
                    "db/mssql: provisioning the tenant's database failed: {}",
                    error.detail
                )),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_fit_sql_server_and_stay_distinct() {
        assert_eq!(tenant_database("t_", "acme-eu"), "t_acme_eu");
        let long_prefix = "p".repeat(100);
        let db = tenant_database(&long_prefix, &"a".repeat(63));
        assert_eq!(db.len(), MAX_NAME_LEN);
        assert_ne!(db, tenant_database(&long_prefix, &"a".repeat(62)));
        let login = tenant_login(&db);
        assert_eq!(login.len(), 27);
        assert!(
            login
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        );
        assert_ne!(login, tenant_login("t_acme"));
        assert_eq!(siloed::clean_prefix("Ab-c_1]"), "_b_c_1_");
    }

    #[test]
    fn passwords_are_derived_and_meet_the_complexity_policy() {
        let login = tenant_login("t_acme");
        let password = tenant_password("s", &login);
        assert_eq!(password, tenant_password("s", &login), "stable");
        assert_ne!(password, tenant_password("t", &login));
        assert_ne!(password, tenant_password("s", &tenant_login("t_globex")));
        assert!(password.chars().any(|c| c.is_ascii_uppercase()));
        assert!(password.chars().any(|c| c.is_ascii_lowercase()));
        assert!(password.chars().any(|c| c.is_ascii_digit()));
        assert!(password.contains('-'));
    }

    #[test]
    fn names_and_values_are_quoted_like_quotename() {
        assert_eq!(quote_name("t_acme"), "[t_acme]");
        assert_eq!(quote_name("a]b"), "[a]]b]");
        assert_eq!(
            quote_name("x]; DROP DATABASE y; --"),
            "[x]]; DROP DATABASE y; --]"
        );
        assert_eq!(quote_literal("it's"), "N'it''s'");
        assert_eq!(
            quote_literal("'); DROP LOGIN sa; --"),
            "N'''); DROP LOGIN sa; --'"
        );
    }

    #[test]
    fn provisioning_grants_the_tenant_its_own_schema_only() {
        let [server, database] = provisioning("t_acme", "sy_0123", "Sy-pw");
        assert!(server.contains("IF DB_ID(N't_acme') IS NULL CREATE DATABASE [t_acme];"));
        assert!(server.contains(
            "CREATE LOGIN [sy_0123] WITH PASSWORD = N'Sy-pw', DEFAULT_DATABASE = [t_acme]"
        ));
        assert!(server.contains("DENY VIEW ANY DATABASE TO [sy_0123];"));
        // The database-level batch is one literal run by the tenant database's sp_executesql,
        // its own quotes doubled.
        assert!(
            database.starts_with("EXEC [t_acme].sys.sp_executesql N'"),
            "{database}"
        );
        assert!(database.contains("IF USER_ID(N''sy_0123'') IS NULL CREATE USER [sy_0123]"));
        assert!(database.contains("ON SCHEMA::[dbo] TO [sy_0123]"));
        assert!(database.contains("REVOKE CONNECT FROM [guest];"));
        for batch in [&server, &database] {
            for broad in [
                "db_owner",
                "sysadmin",
                "CONTROL",
                "WITH GRANT OPTION",
                "ALTER ANY",
            ] {
                assert!(!batch.contains(broad), "{broad} in {batch}");
            }
        }
    }
}
