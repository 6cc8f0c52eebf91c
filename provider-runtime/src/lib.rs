//! The provider runtime: hosts every provider engine, one instance per tenant, behind the
//! Switchyard contract.
//!
//! - [`registry`]: engines by `(domain, name)`, schemas compiled once;
//! - [`registration`]: remote providers an operator registers while serving;
//! - [`lifecycle`]: per-tenant slots (stopped → starting → running → stopping, failed) and
//!   hot swap on reconfigure;
//! - [`runtime`]: the contract's operations, usable in process;
//! - [`http`]: the same operations over HTTP, trusted only with a gateway-signed context
//!   ([`internal_auth`]);
//! - [`store`]: tenants, API keys and versioned provider configs;
//! - [`observe`]: `/metrics`, `/providers/{d}/{n}/metrics` and `/readyz`;
//! - [`client`]: the provider client for business services running in this process;
//! - [`events`]: provider lifecycle events on the tenant's bus;
//! - [`plugin`], [`remote`]: engines from outside this build — shared libraries behind a C
//!   ABI, services behind a manifest — registered like in-tree ones ([`foreign`] reads what
//!   they send).

pub mod client;
pub mod cluster;
pub mod events;
pub mod foreign;
pub mod http;
pub mod lifecycle;
pub mod observe;
pub mod plugin;
pub mod registration;
pub mod registry;
pub mod remote;
pub mod resilience;
pub mod runtime;
pub mod secrets;

pub use client::RuntimeClient;
pub use registry::Registry;
pub use resilience::ResilienceConfig;
pub use runtime::Runtime;
/// The platform store and the gateway-signed context live in their own crate, which the
/// gateway uses without the runtime; re-exported under their old paths for the runtime's users.
pub use switchyard_platform_store::{self as store, PlatformStore, internal_auth};
