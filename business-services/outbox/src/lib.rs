//! Writes and their events commit together.
//!
//! A business write puts its event in an outbox table of the *same* database, in the *same*
//! `transaction` call ([`Outbox::statement`]), so either both are committed or neither is. A
//! [`Relay`] then copies committed outbox rows to the bus and marks them sent. A relay that dies
//! between publishing and marking publishes those rows again after its restart: delivery is at
//! least once, and consumers keep an [`Inbox`] of event ids to act on each event exactly once.
//!
//! Everything goes through the provider client, so this crate knows SQL dialects but no driver;
//! which one a db provider speaks is what its descriptor declares ([`Dialect::of`], ADR 28).

pub mod ddl;
mod dialect;
mod inbox;
mod relay;
mod service;

pub use dialect::Dialect;
pub use inbox::Inbox;
pub use relay::{Outbox, Pending, Published, Relay};
pub use service::OutboxService;
pub use switchyard_contracts::Event;
