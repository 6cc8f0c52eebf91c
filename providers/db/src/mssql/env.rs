//! `db/mssql` as `switchyard` hosts it: the platform's server from the
//! `SWITCHYARD_MSSQL_*` variables (the README's "Production engines" table lists them).

use std::sync::Arc;

use switchyard_contracts::SchemaError;
use switchyard_spi::{Host, ProviderFactory};

use super::MssqlFactory;

/// Hosted when `SWITCHYARD_MSSQL_URL` names a SQL Server; the tenant secret and database prefix are
/// optional.
pub(crate) fn builtin(_: &Host) -> Result<Option<Arc<dyn ProviderFactory>>, SchemaError> {
    let Ok(connection) = std::env::var("SWITCHYARD_MSSQL_URL") else {
        return Ok(None);
    };
    let mut mssql = MssqlFactory::new(connection);
    if let Ok(secret) = std::env::var("SWITCHYARD_MSSQL_TENANT_SECRET") {
        mssql = mssql.with_secret(secret);
    }
    if let Ok(prefix) = std::env::var("SWITCHYARD_MSSQL_DATABASE_PREFIX") {
        mssql = mssql.with_database_prefix(&prefix);
    }
    Ok(Some(Arc::new(mssql)))
}
