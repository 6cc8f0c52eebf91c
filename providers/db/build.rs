//! Tells the tests whether a SQL Server was named when they were built: with
//! `SWITCHYARD_TEST_MSSQL_URL` set (and not empty) the tests see `cfg(mssql_server)` and run
//! db/mssql's server tests; without it those tests are reported as ignored with the reason
//! ("skipped: no MSSQL server"), so a run without a server never looks like a pass.

fn main() {
    println!("cargo::rustc-check-cfg=cfg(mssql_server)");
    println!("cargo::rerun-if-env-changed=SWITCHYARD_TEST_MSSQL_URL");
    if std::env::var("SWITCHYARD_TEST_MSSQL_URL").is_ok_and(|url| !url.trim().is_empty()) {
        println!("cargo::rustc-cfg=mssql_server");
    }
}
