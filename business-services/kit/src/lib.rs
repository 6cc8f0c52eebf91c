//! What the business services (ledger, inventory, orders) share, so each keeps only its
//! domain: the [`Db`] wrapper they reach their database through, the [`Installs`] guard that
//! creates a tenant's tables on its first call, and, behind the `testkit` feature, the
//! in-process platform their tests run them on.
//!
//! Like the services, the kit knows SQL dialects but no driver: everything goes through the
//! provider client.

mod db;
mod install;
#[cfg(feature = "testkit")]
pub mod testkit;

pub use db::{Db, PAGE, Row, Rows};
pub use install::Installs;
