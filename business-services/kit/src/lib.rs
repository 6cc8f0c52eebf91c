//! What the business services (ledger, inventory, orders) share, so each keeps only its
//! domain: the [`Db`] wrapper they reach their database through, the [`Installs`] guard that
//! creates a tenant's tables on its first call, one [`Money`]/[`Quantity`] type with one
//! rounding rule ([`money`]), one [`clock`], and, behind the `testkit` feature, the in-process
//! platform their tests run them on.
//!
//! Like the services, the kit knows SQL dialects but no driver: everything goes through the
//! provider client.

pub mod clock;
mod core;
mod db;
mod install;
pub mod money;
#[cfg(feature = "testkit")]
pub mod testkit;

pub use core::{ServiceCore, params};
pub use db::{Db, PAGE, Row, Rows};
pub use install::Installs;
pub use money::{Money, Quantity, Sign};

use switchyard_client::provider_route;
use switchyard_contracts::{ErrorCode, Problem, ServiceDescriptor, domains};

/// Refuses a provider id of another domain than `domain` (`"bus"`, `"ai"`), so a setting
/// naming the wrong kind of provider stops the process at start, not the first call.
pub fn expect_domain(id: &str, domain: &str) -> Result<(), Problem> {
    if provider_route(id)?.0 == domain {
        return Ok(());
    }
    Err(Problem::new(
        ErrorCode::RequestInvalid,
        format!("{id:?} is not a {domain} provider"),
    ))
}

/// The descriptor of service `name`: its actions are the ones its contract file
/// `contracts/schemas/services/{name}.json` publishes.
pub fn descriptor(name: &str, version: &str, summary: &str) -> ServiceDescriptor {
    ServiceDescriptor {
        name: name.into(),
        version: version.into(),
        summary: summary.into(),
        actions: domains::service_actions(name),
    }
}
