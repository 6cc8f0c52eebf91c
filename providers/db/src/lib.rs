//! Switchyard `db` providers: one module per database engine, each serving the same `db`
//! domain contract (`contracts/schemas/domains/db.json`).
//!
//! Engines live side by side (like Apache OpenDAL's services) so a caller never learns which
//! one answers: `db/sqlite` (a file per tenant), `db/postgres` (a shared database isolated
//! by row-level security, or a tenant's own database), `db/mysql` (a database and a user
//! per tenant on MySQL / MariaDB) and `db/mssql` (a database and a login per tenant on
//! Microsoft SQL Server), each held to the db suite of the conformance kit
//! (`provider-runtime/conformance`; `db/mssql` only where a server is configured, see its
//! docs.md). An engine adds only its own config schema, capabilities and SQL dialect; params,
//! results and error codes are the domain's. A new engine is its folder and one line in
//! [`builtins`].
//!
//! What the engines share is written once beside them: `contract` (the domain's params and
//! results), `engine` (answering the actions), `errors` (the error vocabulary), `limits`
//! (config bounds and schema), `registry` (per-tenant pools), `rows` (reading rows through
//! sqlx), `sql` (statement guards) and `siloed` (db/mysql's and db/mssql's tenancy).

mod books;
mod contract;
mod engine;
mod errors;
mod limits;
pub mod mssql;
pub mod mysql;
pub mod postgres;
mod registry;
mod rows;
mod siloed;
mod sql;
pub mod sqlite;

pub use books::ServiceBooks;
pub use limits::hold_to;
pub use mssql::MssqlFactory;
pub use mysql::MysqlFactory;
pub use postgres::{PostgresFactory, PostgresSettings};
pub use sqlite::SqliteFactory;

use std::sync::Arc;

use switchyard_contracts::SchemaError;
use switchyard_spi::{Host, ProviderFactory};

/// The db engines `switchyard` hosts, each serving the tenants' own data and, beside it, the
/// business services' books ([`ServiceBooks`]); every engine is held to the operator's quotas.
pub fn builtins(host: &Host) -> Result<Vec<Arc<dyn ProviderFactory>>, SchemaError> {
    hold_to(&host.tenancy.quotas);
    switchyard_spi::builtins(
        host,
        &[
            sqlite::builtin,
            postgres::builtin,
            mysql::builtin,
            mssql::builtin,
        ],
    )
}
