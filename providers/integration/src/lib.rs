//! Integration providers: Switchyard calling out to third-party systems, behind the
//! `integration` domain contract (`contracts/schemas/domains/integration.json`).
//!
//! One module per engine; the suite in `tests/conformance` holds every engine to the contract.
//! Today there is one, `webhook`: signed deliveries with retries and dead letters.

mod contract;
mod engine;
pub mod webhook;

pub use webhook::WebhookFactory;
