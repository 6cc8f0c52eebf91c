//! Integration providers: Switchyard calling out to third-party systems, behind the
//! `integration` domain contract (`contracts/schemas/domains/integration.json`).
//!
//! One module per engine; the conformance kit's integration checks
//! (`provider-runtime/conformance/src/integration/`) hold every engine to the contract.
//! `webhook` sends signed deliveries with retries and dead letters. The connectors (`shopify`,
//! `salesforce`, `rest`) speak only their system's API through [`connector`]'s SPI, on the
//! shared `http` client; `sync` makes an engine of any of them once (runs, cursors, raw
//! records, destinations, remap, inbound webhooks), with `mapping`'s jq field mappings.
//! `payments` is command-style: one command of a payments API per call (`execute`).

mod connector;
mod contract;
mod engine;
mod http;
mod mapping;
mod payments;
mod rest;
mod salesforce;
mod shopify;
mod sqlite;
mod sync;
pub mod webhook;

use std::sync::Arc;

pub use mapping::Mapping;
use switchyard_contracts::SchemaError;
use switchyard_spi::{Host, ProviderFactory};
pub use webhook::WebhookFactory;

/// The integration engines `switchyard` hosts: a new engine is its folder and one line here.
pub fn builtins(host: &Host) -> Result<Vec<Arc<dyn ProviderFactory>>, SchemaError> {
    switchyard_spi::builtins(
        host,
        &[
            webhook::builtin,
            shopify::builtin,
            salesforce::builtin,
            rest::builtin,
            payments::builtin,
        ],
    )
}
