//! What the platform operator sets for every tenant: ceilings a tenant's own config may narrow,
//! never widen (docs/adr/0020-tenant-boundary.md). Read from the `[tenancy]` section of the
//! config file that `serve`, `gateway` and `runtime` take, and handed to the factories and the
//! runtime when the process starts; a tenant has no way to change any of it.
//!
//! Each concern keeps its settings in its own module beside this one.

mod egress;
mod quotas;
mod secrets;

pub use egress::EgressCeiling;
pub use quotas::Quotas;
pub use secrets::{SecretScope, SecretTarget};

use serde::Deserialize;

/// The `[tenancy]` section. Every part has a default safe for a shared host.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Tenancy {
    /// `[tenancy.egress]`: where providers may connect on a tenant's behalf.
    pub egress: EgressCeiling,
    /// `[tenancy.quotas]`: how much of the shared process one tenant may use.
    pub quotas: Quotas,
    /// `[tenancy.secrets]`: which secret references a tenant may write.
    pub secrets: SecretScope,
}
