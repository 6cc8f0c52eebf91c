use serde::Deserialize;

/// Where a tenant's secret references may point.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SecretScope {}
