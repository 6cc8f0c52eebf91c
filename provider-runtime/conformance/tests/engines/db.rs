//! The db engines, each subject on a store of its own (a temp directory, a new PostgreSQL
//! database, a database-name prefix on the shared MySQL or SQL Server), which a process
//! restart reopens with a new factory; the +stable checks of db/postgres and db/mysql get a
//! server of their own to restart. Each engine's dialect is found the way
//! `switchyard conformance` finds it, from its descriptor.
//!
//! `db/mssql` is enrolled only when `SWITCHYARD_TEST_MSSQL_URL` names a SQL Server, which
//! cannot run where the suite usually runs; without one its trials are listed as ignored and the runner says why on stderr.

#[path = "../../../../providers/db/tests/support/mssql.rs"]
mod ms;
#[path = "../../../../providers/db/tests/support/mysql.rs"]
mod my;
#[path = "../../../../providers/db/tests/support/postgres.rs"]
mod pg;
#[path = "../../../../providers/db/tests/support/prefix.rs"]
mod prefix;
mod private_mariadb;
mod private_postgres;

use std::process::Command;
use std::sync::Arc;

use switchyard_conformance::Subject;
use switchyard_provider_db::{
    MssqlFactory, MysqlFactory, PostgresFactory, PostgresSettings, SqliteFactory,
};
use switchyard_spi::ProviderFactory;

use crate::Enrolled;
use crate::private::{free_port, restart_on_a_thread};
use private_mariadb::PrivateMariadb;
use private_postgres::PrivatePostgres;

pub fn enrolled() -> Vec<Enrolled> {
    let mut engines = vec![
        Enrolled::new("db/sqlite", || async {
            let dir = tempfile::tempdir().expect("temp dir");
            let root = dir.path().to_path_buf();
            let sqlite =
                move || -> Arc<dyn ProviderFactory> { Arc::new(SqliteFactory::new(root.clone())) };
            Subject::new(sqlite()).with_reopen(sqlite).keeping(dir)
        }),
        // Always enrolled, like every engine whose server scripts/test starts: a missing
        // server fails their checks rather than skipping them.
        Enrolled::new("db/postgres", || async {
            let database = pg::TestDatabase::create("conformance").await;
            let url = database.url.clone();
            let postgres = move || -> Arc<dyn ProviderFactory> {
                Arc::new(PostgresFactory::new(PostgresSettings::new(
                    url.clone(),
                    pg::APP_PASSWORD,
                )))
            };
            Subject::new(postgres())
                .with_reopen(postgres)
                .keeping(database)
        })
        .with_stable(|| async {
            let server = Arc::new(PrivatePostgres::start());
            let restart = server.clone();
            Subject::new(Arc::new(PostgresFactory::new(PostgresSettings::new(
                server.url(),
                pg::APP_PASSWORD,
            ))))
            .with_backing_restart(move || restart_on_a_thread(restart.clone(), |s| s.restart()))
            .keeping(server)
        }),
        Enrolled::new("db/mysql", || async {
            let prefix = my::test_prefix("c");
            let name = prefix.prefix.clone();
            let mysql = move || -> Arc<dyn ProviderFactory> {
                Arc::new(MysqlFactory::new(my::server_url()).with_database_prefix(&name))
            };
            Subject::new(mysql()).with_reopen(mysql).keeping(prefix)
        })
        .with_stable(|| async {
            let server = Arc::new(PrivateMariadb::start());
            let restart = server.clone();
            Subject::new(Arc::new(MysqlFactory::new(server.url())))
                .with_backing_restart(move || restart_on_a_thread(restart.clone(), |s| s.restart()))
                .keeping(server)
        }),
    ];
    if mssql_server() {
        engines.push(Enrolled::new("db/mssql", || async {
            let prefix = ms::test_prefix("c");
            let name = prefix.prefix.clone();
            let mssql = move || -> Arc<dyn ProviderFactory> {
                Arc::new(
                    MssqlFactory::new(ms::server_url())
                        .with_secret("mssql-conformance-secret")
                        .with_database_prefix(&name),
                )
            };
            Subject::new(mssql()).with_reopen(mssql).keeping(prefix)
        }));
    } else {
        let why = format!(
            "no MSSQL server (set {} to run the db suite on it)",
            ms::URL_VARIABLE
        );
        engines.push(Enrolled::unavailable("db/mssql", &why));
    }
    engines
}

/// Whether a SQL Server is named for db/mssql.
fn mssql_server() -> bool {
    std::env::var(ms::URL_VARIABLE).is_ok_and(|url| !url.trim().is_empty())
}

/// Runs a command to its end; fails the check with its stderr unless it succeeds.
#[track_caller]
fn run(command: &mut Command) {
    let output = command.output().expect("the command runs");
    assert!(
        output.status.success(),
        "{command:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}
