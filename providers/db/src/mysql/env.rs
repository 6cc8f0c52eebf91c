//! `db/mysql` as `switchyard` hosts it: the platform's server from the
//! `SWITCHYARD_MYSQL_*` variables (the README's "Production engines" table lists them).

use std::sync::Arc;

use switchyard_contracts::SchemaError;
use switchyard_spi::{Host, ProviderFactory};

use super::MysqlFactory;

/// Hosted when `SWITCHYARD_MYSQL_URL` names a MySQL or MariaDB server; the tenant secret and database prefix are
/// optional.
pub(crate) fn builtin(_: &Host) -> Result<Option<Arc<dyn ProviderFactory>>, SchemaError> {
    let Ok(admin_url) = std::env::var("SWITCHYARD_MYSQL_URL") else {
        return Ok(None);
    };
    let mut mysql = MysqlFactory::new(admin_url);
    if let Ok(secret) = std::env::var("SWITCHYARD_MYSQL_TENANT_SECRET") {
        mysql = mysql.with_secret(secret);
    }
    if let Ok(prefix) = std::env::var("SWITCHYARD_MYSQL_DATABASE_PREFIX") {
        mysql = mysql.with_database_prefix(&prefix);
    }
    Ok(Some(Arc::new(mysql)))
}
