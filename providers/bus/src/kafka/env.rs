//! `bus/kafka` as `switchyard` hosts it: the platform's cluster from the `SWITCHYARD_KAFKA_*`
//! variables (the README's "Production engines" table lists them).

use std::sync::Arc;

use switchyard_contracts::SchemaError;
use switchyard_spi::{Host, ProviderFactory};

use super::{KafkaFactory, KafkaSettings};

/// Hosted when `SWITCHYARD_KAFKA_BROKERS` is set. Settings that can never work stop the process
/// at startup rather than failing every call.
pub(crate) fn builtin(_: &Host) -> Result<Option<Arc<dyn ProviderFactory>>, SchemaError> {
    let Ok(brokers) = std::env::var("SWITCHYARD_KAFKA_BROKERS") else {
        return Ok(None);
    };
    let invalid = |message: String| SchemaError {
        location: "bus/kafka".into(),
        message,
    };
    let mut settings = KafkaSettings::new(brokers);
    if let Ok(namespace) = std::env::var("SWITCHYARD_KAFKA_NAMESPACE") {
        settings = settings.with_namespace(namespace);
    }
    if let Ok(factor) = std::env::var("SWITCHYARD_KAFKA_REPLICATION_FACTOR") {
        let factor = factor.parse().map_err(|e| {
            invalid(format!(
                "SWITCHYARD_KAFKA_REPLICATION_FACTOR {factor:?} is not a number: {e}"
            ))
        })?;
        settings = settings.with_replication_factor(factor);
    }
    let factory = KafkaFactory::new(settings).map_err(|e| invalid(e.detail))?;
    Ok(Some(Arc::new(factory)))
}
