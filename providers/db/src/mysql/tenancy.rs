//! Siloed tenancy: a database and a user of its own per tenant.
//!
//! For tenant `acme` the factory creates (if missing) the database `<prefix>acme` (prefix
//! `t_` by default, `-` becomes `_`) and the user `sy_<24 hex digits of sha256(database)>`
//! with `ALL PRIVILEGES` on that database only — no global privilege, no `GRANT OPTION` —
//! and connects as that user with that database as default. Another tenant's tables are
//! therefore unreachable even by qualified name (`SELECT … FROM t_other.x` is refused by the
//! server with "command denied").
//!
//! The user's password is derived, not stored: the hex of `sha256(secret ‖ 0 ‖ user)`, where
//! the secret is the factory's (`MysqlFactory::with_secret`, by default the admin URL). It is
//! set again at every start, so rotating the secret (or the admin password it defaults to)
//! only needs a restart.

use sqlx::MySqlPool;
use switchyard_spi::ProviderError;

use super::errors;
use crate::siloed;

/// MySQL's longest database name.
const MAX_DATABASE_LEN: usize = 64;

/// The database of `tenant`: `<prefix><tenant>` with `-` as `_`; a name longer than MySQL
/// allows keeps its first 47 characters followed by `_` and 16 hex digits of its hash.
pub fn tenant_database(prefix: &str, tenant: &str) -> String {
    siloed::database_name(prefix, tenant, MAX_DATABASE_LEN)
}

/// The user owning `database` (see the module docs).
pub fn tenant_user(database: &str) -> String {
    siloed::account_name(database)
}

/// A string literal for SQL (the only literal built here is the admin's host pattern).
fn literal(s: &str) -> String {
    format!("'{}'", s.replace('\\', "\\\\").replace('\'', "''"))
}

/// Creates (or repairs) the tenant's database and user; idempotent. The user gets the host
/// pattern the admin account has, so it can log in from wherever the admin can.
pub(crate) async fn provision(
    admin: &MySqlPool,
    database: &str,
    user: &str,
    password: &str,
) -> Result<(), ProviderError> {
    let current: String = sqlx::query_scalar("SELECT CURRENT_USER()")
        .fetch_one(admin)
        .await
        .map_err(errors::from_sqlx)?;
    let host = current.rsplit_once('@').map_or("%", |(_, host)| host);
    let account = format!("{}@{}", literal(user), literal(host));
    // `database`, `user` and `password` are made of [a-z0-9_] only: safe between quotes.
    let password = literal(password);
    for statement in [
        format!("CREATE DATABASE IF NOT EXISTS `{database}` CHARACTER SET utf8mb4"),
        format!("CREATE USER IF NOT EXISTS {account} IDENTIFIED BY {password}"),
        format!("ALTER USER {account} IDENTIFIED BY {password}"),
        format!("GRANT ALL PRIVILEGES ON `{database}`.* TO {account}"),
    ] {
        sqlx::raw_sql(&statement)
            .execute(admin)
            .await
            .map_err(errors::from_sqlx)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_fit_mysql_and_stay_distinct() {
        assert_eq!(tenant_database("t_", "acme-eu"), "t_acme_eu");
        let long = "a".repeat(63);
        let db = tenant_database("t_", &long);
        assert!(db.len() <= MAX_DATABASE_LEN);
        assert_ne!(db, tenant_database("t_", &"a".repeat(62)));
        let user = tenant_user(&db);
        assert!(user.len() <= 32);
        assert_ne!(
            siloed::derived_password("s", &user),
            siloed::derived_password("t", &user)
        );
        assert_eq!(siloed::clean_prefix("Ab-c_1"), "_b_c_1");
    }
}
