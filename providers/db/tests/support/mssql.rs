//! The SQL Server the db/mssql tests run against, when there is one, and throwaway tenant
//! databases on it.
//!
//! No SQL Server runs where the tests usually run, and `scripts/test` starts none. db/mssql
//! takes part only when `SWITCHYARD_TEST_MSSQL_URL` is set to the admin connection string
//! (ADO.NET, JDBC or `sqlserver://` URL) of a login that may create databases and logins —
//! `sysadmin`, or `dbcreator` and `securityadmin` with `VIEW SERVER STATE` for the cleanup;
//! without it its tests are reported as ignored ("skipped: no MSSQL server"), see `build.rs`.

use switchyard_provider_db::mssql::{ConnectionString, quote_literal, quote_name, tenant_login};

use super::prefix::BoxError;
pub use super::prefix::TestPrefix;

pub const URL_VARIABLE: &str = "SWITCHYARD_TEST_MSSQL_URL";

/// The admin connection string of the test server.
pub fn server_url() -> String {
    std::env::var(URL_VARIABLE).unwrap_or_else(|_| {
        panic!(
            "{URL_VARIABLE} is not set: set it to the connection string of a SQL Server 2017+ \
             login that may create databases and logins, such as \
             sqlserver://sa:Secret-123@127.0.0.1:1433?trustServerCertificate=true"
        )
    })
}

/// A database-name prefix of its own for one test; the tenant databases and logins created
/// under it are dropped when it is dropped.
pub fn test_prefix(purpose: &str) -> TestPrefix {
    TestPrefix::new(purpose, |prefix| Box::pin(drop_prefix(prefix)))
}

/// Ends the sessions of each tenant login under `prefix` (the engines' pooled connections),
/// then drops its database and login.
async fn drop_prefix(prefix: String) -> Result<(), BoxError> {
    let target = ConnectionString::parse(&server_url())?;
    let pool = bb8::Pool::builder()
        .max_size(1)
        .retry_connection(false)
        .build(bb8_tiberius::ConnectionManager::new(target.admin()))
        .await?;
    let mut admin = pool.get().await?;
    let databases: Vec<String> = admin
        .query(
            "SELECT name FROM sys.databases WHERE LEFT(name, LEN(@P1)) = @P1",
            &[&prefix.as_str()],
        )
        .await?
        .into_first_result()
        .await?
        .iter()
        .filter_map(|row| row.try_get::<&str, _>(0).ok().flatten().map(str::to_owned))
        .collect();
    for database in databases {
        let login = tenant_login(&database);
        let sessions: Vec<i16> = admin
            .query(
                "SELECT session_id FROM sys.dm_exec_sessions WHERE login_name = @P1",
                &[&login.as_str()],
            )
            .await?
            .into_first_result()
            .await?
            .iter()
            .filter_map(|row| row.try_get::<i16, _>(0).ok().flatten())
            .collect();
        let mut batch: Vec<String> = sessions.iter().map(|id| format!("KILL {id};")).collect();
        let db = quote_name(&database);
        batch.push(format!(
            "IF DB_ID({}) IS NOT NULL BEGIN ALTER DATABASE {db} SET SINGLE_USER WITH ROLLBACK \
             IMMEDIATE; DROP DATABASE {db}; END;",
            quote_literal(&database)
        ));
        batch.push(format!(
            "IF SUSER_ID({}) IS NOT NULL DROP LOGIN {};",
            quote_literal(&login),
            quote_name(&login)
        ));
        admin
            .simple_query(batch.join("\n"))
            .await?
            .into_results()
            .await?;
    }
    Ok(())
}
