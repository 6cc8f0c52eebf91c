//! Bus providers: a durable, ordered event log behind the `bus` domain contract (publish,
//! poll, commit, replay).
//!
//! One module per engine, each owning its factory and storage code, so an engine can be added
//! without touching the others; the params, results and tenant config they share live in
//! `contract` and `config`, and every engine is held to the same behaviour by the
//! conformance kit's bus checks (`provider-runtime/conformance/src/bus/`).

mod config;
mod contract;
pub mod embedded;
mod engine;
pub mod kafka;

use std::sync::Arc;

pub use config::BusConfig;
pub use embedded::EmbeddedBusFactory;
pub use kafka::{KafkaFactory, KafkaSettings};
use switchyard_contracts::SchemaError;
use switchyard_spi::{Host, ProviderFactory};

/// The bus engines `switchyard` hosts: a new engine is its folder and one line here.
pub fn builtins(host: &Host) -> Result<Vec<Arc<dyn ProviderFactory>>, SchemaError> {
    switchyard_spi::builtins(host, &[embedded::builtin, kafka::builtin])
}
