//! Bus providers: a durable, ordered event log behind the `bus` domain contract (publish,
//! poll, commit, replay).
//!
//! One module per engine, each owning its factory, config and storage code, so an engine can
//! be added (a Kafka-backed one, say) without touching the others; every engine is held to
//! the same behaviour by the conformance suite in `tests/conformance`.

pub mod embedded;

pub use embedded::EmbeddedBusFactory;
