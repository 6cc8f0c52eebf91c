//! Per-tenant config of `storage/memory`.

use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::Value;
use switchyard_spi::{ErrorCode, ProviderError};

/// 16 MiB: an object is held whole in memory, and answered base64 in a JSON body.
const DEFAULT_MAX_OBJECT_BYTES: u64 = 16 * 1024 * 1024;

/// What a tenant may tune. Every field is optional; an empty object means the defaults.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MemoryConfig {
    /// Largest object `put` accepts, in bytes (never more than the operator's per-tenant
    /// budget); bigger content is refused with payload_too_large before it is kept.
    #[serde(default = "default_max_object_bytes")]
    #[schemars(range(min = 1))]
    pub max_object_bytes: u64,
}

fn default_max_object_bytes() -> u64 {
    DEFAULT_MAX_OBJECT_BYTES
}

impl MemoryConfig {
    /// Reads a tenant's config, its object limit held to `budget`. The runtime checked it
    /// against the derived schema; a zero limit is refused again for callers that skip it.
    pub fn from_value(config: Value, budget: u64) -> Result<Self, ProviderError> {
        let mut config: MemoryConfig = serde_json::from_value(config)
            .map_err(|e| ProviderError::field(ErrorCode::ConfigInvalid, "", e.to_string()))?;
        if config.max_object_bytes == 0 {
            return Err(ProviderError::field(
                ErrorCode::ConfigInvalid,
                "/max_object_bytes",
                "max_object_bytes must be at least 1",
            ));
        }
        config.max_object_bytes = config.max_object_bytes.min(budget);
        Ok(config)
    }
}
