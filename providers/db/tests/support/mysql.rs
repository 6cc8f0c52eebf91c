//! The MySQL / MariaDB server the tests run against, and throwaway tenant databases on it.
//!
//! `scripts/test` starts a server and exports `SWITCHYARD_TEST_MYSQL_URL` (the URL of an
//! account allowed to create databases and users, `WITH GRANT OPTION`); without it the MySQL
//! tests fail rather than silently pass.

use sqlx::{Connection, Executor, MySqlConnection};

use super::prefix::BoxError;
pub use super::prefix::TestPrefix;

pub const URL_VARIABLE: &str = "SWITCHYARD_TEST_MYSQL_URL";

/// The admin URL of the test server.
pub fn server_url() -> String {
    std::env::var(URL_VARIABLE).unwrap_or_else(|_| {
        panic!(
            "{URL_VARIABLE} is not set: run scripts/test (it starts MariaDB and sets it), or set \
             it to the URL of a MySQL 8 / MariaDB 10.5+ account with all privileges WITH GRANT \
             OPTION, such as mysql://switchyard:secret@127.0.0.1:43306/mysql"
        )
    })
}

/// A database-name prefix of its own for one test; the tenant databases and users created
/// under it are dropped when it is dropped.
pub fn test_prefix(purpose: &str) -> TestPrefix {
    TestPrefix::new(purpose, |prefix| Box::pin(drop_prefix(prefix)))
}

async fn drop_prefix(prefix: String) -> Result<(), BoxError> {
    let mut admin = MySqlConnection::connect(&server_url()).await?;
    let databases: Vec<String> = sqlx::query_scalar(
        "SELECT CAST(SCHEMA_NAME AS CHAR) FROM information_schema.SCHEMATA \
         WHERE LEFT(SCHEMA_NAME, CHAR_LENGTH(?)) = ?",
    )
    .bind(&prefix)
    .bind(&prefix)
    .fetch_all(&mut admin)
    .await?;
    for database in databases {
        let user = switchyard_provider_db::mysql::tenant_user(&database);
        let hosts: Vec<String> =
            sqlx::query_scalar("SELECT CAST(Host AS CHAR) FROM mysql.user WHERE User = ?")
                .bind(&user)
                .fetch_all(&mut admin)
                .await?;
        for host in hosts {
            admin
                .execute(format!("DROP USER IF EXISTS '{user}'@'{host}'").as_str())
                .await?;
        }
        admin
            .execute(format!("DROP DATABASE IF EXISTS `{database}`").as_str())
            .await?;
    }
    Ok(())
}
