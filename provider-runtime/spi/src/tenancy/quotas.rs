use serde::Deserialize;

/// The operator's per-tenant quotas.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Quotas {}
