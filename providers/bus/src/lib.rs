//! Bus providers: a durable, ordered event log behind the `bus` domain contract (publish,
//! poll, commit, replay).
//!
//! One module per engine, each owning its factory and storage code, so an engine can be added
//! without touching the others; the params, results and tenant config they share live in
//! `contract` and `config`, and every engine is held to the same behaviour by the
//! conformance suite in `tests/conformance`.

mod config;
mod contract;
pub mod embedded;
mod engine;
pub mod kafka;

pub use config::BusConfig;
pub use embedded::EmbeddedBusFactory;
pub use kafka::{KafkaFactory, KafkaSettings};
