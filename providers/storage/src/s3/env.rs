//! `storage/s3` as `switchyard` hosts it: the platform's server from the `SWITCHYARD_S3_*`
//! variables (the README's "Production engines" table lists them).

use std::sync::Arc;

use switchyard_contracts::SchemaError;
use switchyard_spi::{Host, ProviderFactory};

use super::{S3Factory, S3Settings};

/// Hosted when `SWITCHYARD_S3_URL` is set; a missing companion variable is a startup error
/// naming it, never an engine silently left out.
pub(crate) fn builtin(_: &Host) -> Result<Option<Arc<dyn ProviderFactory>>, SchemaError> {
    let Ok(endpoint) = std::env::var("SWITCHYARD_S3_URL") else {
        return Ok(None);
    };
    let problem = |message: String| SchemaError {
        location: "storage/s3".into(),
        message,
    };
    let required = |name: &str| {
        std::env::var(name)
            .map_err(|_| problem(format!("SWITCHYARD_S3_URL is set but {name} is not")))
    };
    let mut settings = S3Settings::new(
        endpoint,
        required("SWITCHYARD_S3_BUCKET")?,
        required("SWITCHYARD_S3_ACCESS_KEY_ID")?,
        required("SWITCHYARD_S3_SECRET_ACCESS_KEY")?,
    );
    if let Ok(region) = std::env::var("SWITCHYARD_S3_REGION") {
        settings = settings.with_region(region);
    }
    if let Ok(prefix) = std::env::var("SWITCHYARD_S3_PREFIX") {
        settings = settings.with_prefix(&prefix);
    }
    let factory = S3Factory::new(settings).map_err(|e| problem(e.detail))?;
    Ok(Some(Arc::new(factory)))
}
