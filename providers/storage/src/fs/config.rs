//! Per-tenant config of `storage/fs`.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use switchyard_spi::{ErrorCode, ProviderError};

/// 64 MiB: large enough for documents and images, small enough that a whole object fits in
/// memory, which is how `get` answers (base64 in a JSON body).
const DEFAULT_MAX_OBJECT_BYTES: u64 = 64 * 1024 * 1024;

/// What a tenant may tune. Every field is optional; an empty object means the defaults.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FsConfig {
    /// Largest object `put` accepts, in bytes; bigger content is refused with
    /// payload_too_large before anything touches the disk, so one tenant cannot fill the
    /// volume with a single call.
    #[serde(default = "default_max_object_bytes")]
    #[schemars(range(min = 1))]
    pub max_object_bytes: u64,
}

fn default_max_object_bytes() -> u64 {
    DEFAULT_MAX_OBJECT_BYTES
}

impl Default for FsConfig {
    fn default() -> Self {
        FsConfig {
            max_object_bytes: DEFAULT_MAX_OBJECT_BYTES,
        }
    }
}

impl FsConfig {
    /// Reads a tenant's config. The runtime has already checked it against the schema derived from this struct; the
    /// checks are repeated so a caller that skips the runtime (a test, a tool) gets the same
    /// answer instead of a provider running with a zero size limit.
    pub fn from_value(config: Value) -> Result<Self, ProviderError> {
        let config: FsConfig = serde_json::from_value(config)
            .map_err(|e| ProviderError::field(ErrorCode::ConfigInvalid, "", e.to_string()))?;
        if config.max_object_bytes == 0 {
            return Err(ProviderError::field(
                ErrorCode::ConfigInvalid,
                "/max_object_bytes",
                "max_object_bytes must be at least 1",
            ));
        }
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use switchyard_contracts::schema::Compiled;

    use super::*;

    #[test]
    fn empty_config_means_defaults() {
        assert_eq!(
            FsConfig::from_value(json!({})).unwrap(),
            FsConfig::default()
        );
        assert_eq!(FsConfig::default().max_object_bytes, 64 * 1024 * 1024);
    }

    #[test]
    fn refuses_unknown_fields_and_a_zero_limit() {
        let unknown = FsConfig::from_value(json!({"max_bytes": 1})).unwrap_err();
        assert_eq!(unknown.code, ErrorCode::ConfigInvalid);
        let zero = FsConfig::from_value(json!({"max_object_bytes": 0})).unwrap_err();
        assert_eq!(zero.code, ErrorCode::ConfigInvalid);
        assert_eq!(zero.errors[0].pointer, "/max_object_bytes");
    }

    #[test]
    fn schema_agrees_with_the_struct() {
        let schema = Compiled::new(
            &switchyard_spi::config_schema::<FsConfig>(),
            "storage/fs#config",
        )
        .unwrap();
        assert!(schema.check(&json!({})).is_empty());
        assert!(schema.check(&json!({"max_object_bytes": 10})).is_empty());
        assert!(!schema.check(&json!({"max_object_bytes": 0})).is_empty());
        assert!(!schema.check(&json!({"other": 1})).is_empty());
    }
}
