//! Throwaway PostgreSQL databases for the suite, on the server at `SWITCHYARD_TEST_POSTGRES_URL`
//! (a superuser URL; `scripts/test` starts the server and sets it). Without it the PostgreSQL
//! half of the suite fails rather than silently passes.

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use sqlx::{Connection, Executor, PgConnection};

const URL_VARIABLE: &str = "SWITCHYARD_TEST_POSTGRES_URL";

/// The superuser URL of the test server.
pub fn server_url() -> String {
    std::env::var(URL_VARIABLE).unwrap_or_else(|_| {
        panic!(
            "{URL_VARIABLE} is not set: run scripts/test (it starts PostgreSQL and sets it), or \
             set it to a PostgreSQL superuser URL such as \
             postgres://postgres@127.0.0.1:55432/postgres"
        )
    })
}

/// `url` with its database replaced by `database`.
pub fn with_database(url: &str, database: &str) -> String {
    let authority_start = url.find("://").map_or(0, |i| i + 3);
    let path_start = url[authority_start..]
        .find('/')
        .map_or(url.len(), |i| authority_start + i);
    let query = url[path_start..]
        .find('?')
        .map_or("", |i| &url[path_start + i..]);
    format!("{}/{database}{query}", &url[..path_start])
}

/// An empty database created for one test, dropped (with its connections) when this is.
pub struct TestDatabase {
    name: String,
    pub url: String,
}

impl TestDatabase {
    pub async fn create() -> TestDatabase {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .expect("clock after 1970")
            .subsec_nanos();
        let name = format!(
            "sy_store_{}_{}_{nanos}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::SeqCst)
        );
        let server = server_url();
        let mut admin = PgConnection::connect(&server)
            .await
            .expect("connect to the test PostgreSQL server");
        admin
            .execute(format!("CREATE DATABASE \"{name}\"").as_str())
            .await
            .expect("create a test database");
        TestDatabase {
            url: with_database(&server, &name),
            name,
        }
    }
}

impl Drop for TestDatabase {
    /// Drops the database on a thread of its own: `Drop` cannot await, and the test's runtime
    /// may be the one running this.
    fn drop(&mut self) {
        let server = server_url();
        let name = self.name.clone();
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            runtime.block_on(async {
                let mut admin = PgConnection::connect(&server).await?;
                admin
                    .execute(format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)").as_str())
                    .await
                    .map(drop)
            })?;
            Ok::<_, Box<dyn std::error::Error + Send + Sync>>(())
        })
        .join();
        if !matches!(dropped, Ok(Ok(()))) {
            eprintln!("could not drop test database {}: {dropped:?}", self.name);
        }
    }
}
