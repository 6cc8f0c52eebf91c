//! The MySQL / MariaDB server the tests run against, and throwaway tenant databases on it.
//!
//! `scripts/test` starts a server and exports `SWITCHYARD_TEST_MYSQL_URL` (the URL of an
//! account allowed to create databases and users, `WITH GRANT OPTION`); without it the MySQL
//! tests fail rather than silently pass.

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use sqlx::{Connection, Executor, MySqlConnection};

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
/// under it are dropped when this is dropped.
pub struct TestPrefix {
    pub prefix: String,
}

impl TestPrefix {
    pub fn new(purpose: &str) -> TestPrefix {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .expect("clock after 1970")
            .subsec_nanos();
        TestPrefix {
            prefix: format!(
                "sy_{purpose}_{}_{}_{nanos}_",
                std::process::id(),
                NEXT.fetch_add(1, Ordering::SeqCst)
            ),
        }
    }
}

impl Drop for TestPrefix {
    /// Drops on a thread of its own: `Drop` cannot await, and the test's runtime may be the
    /// one running this.
    fn drop(&mut self) {
        let server = server_url();
        let prefix = self.prefix.clone();
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            runtime.block_on(async {
                let mut admin = MySqlConnection::connect(&server).await?;
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
                    let hosts: Vec<String> = sqlx::query_scalar(
                        "SELECT CAST(Host AS CHAR) FROM mysql.user WHERE User = ?",
                    )
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
                Ok::<_, sqlx::Error>(())
            })?;
            Ok::<_, Box<dyn std::error::Error + Send + Sync>>(())
        })
        .join();
        if !matches!(dropped, Ok(Ok(()))) {
            eprintln!(
                "could not drop test databases {}*: {dropped:?}",
                self.prefix
            );
        }
    }
}
