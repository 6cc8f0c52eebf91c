//! `db/postgres` as `switchyard` hosts it: the platform's server from the
//! `SWITCHYARD_POSTGRES_*` variables (the README's "Production engines" table lists them).

use std::sync::Arc;

use switchyard_contracts::SchemaError;
use switchyard_spi::{Host, ProviderFactory};

use super::{PostgresFactory, PostgresSettings};
use crate::ServiceBooks;

/// Hosted when `SWITCHYARD_POSTGRES_URL` is set, with the services' books in their own schema;
/// a missing companion variable is a startup error naming it.
pub(crate) fn builtin(host: &Host) -> Result<Option<Arc<dyn ProviderFactory>>, SchemaError> {
    let Ok(admin_url) = std::env::var("SWITCHYARD_POSTGRES_URL") else {
        return Ok(None);
    };
    let password = std::env::var("SWITCHYARD_POSTGRES_APP_PASSWORD").map_err(|_| SchemaError {
        location: "db/postgres".into(),
        message: "SWITCHYARD_POSTGRES_URL is set but SWITCHYARD_POSTGRES_APP_PASSWORD is not"
            .into(),
    })?;
    let postgres = PostgresFactory::new(PostgresSettings::new(admin_url, password))
        .with_egress(&host.tenancy.egress);
    let books = postgres.books();
    Ok(Some(Arc::new(ServiceBooks::new(
        Arc::new(postgres),
        Arc::new(books),
    ))))
}
