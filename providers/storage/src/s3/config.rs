//! Per-tenant config of `storage/s3`.
//!
//! The server, bucket and credentials are the platform's (see [`super::S3Settings`]): a
//! tenant can only narrow what it is allowed within its own prefix, never point the engine
//! somewhere else, so no tenant config ever holds a credential.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use switchyard_spi::{ErrorCode, ProviderError};

/// 64 MiB, as `storage/fs`: `get` answers the whole object base64-encoded in a JSON body, so
/// it must fit in memory.
const DEFAULT_MAX_OBJECT_BYTES: u64 = 64 * 1024 * 1024;

/// Seven days: the longest lifetime S3 signature version 4 allows for a presigned URL.
pub const MAX_PRESIGN_SECS: u64 = 604_800;

/// What a tenant may tune. Every field is optional; an empty object means the defaults.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct S3Config {
    /// Largest object `put` accepts, in bytes; bigger content is refused with
    /// payload_too_large before anything is sent to the server. Presigned PUT URLs are not
    /// bound by it.
    #[serde(default = "default_max_object_bytes")]
    #[schemars(range(min = 1))]
    pub max_object_bytes: u64,
    /// Longest lifetime `presign` grants, in seconds; a longer `expires_in_secs` is refused
    /// with params_invalid. A tenant that hands URLs to browsers may want them short-lived
    /// whatever its callers ask for.
    #[serde(default = "default_max_presign_secs")]
    #[schemars(range(min = 1, max = MAX_PRESIGN_SECS))]
    pub max_presign_secs: u64,
}

fn default_max_object_bytes() -> u64 {
    DEFAULT_MAX_OBJECT_BYTES
}

fn default_max_presign_secs() -> u64 {
    MAX_PRESIGN_SECS
}

impl Default for S3Config {
    fn default() -> Self {
        S3Config {
            max_object_bytes: DEFAULT_MAX_OBJECT_BYTES,
            max_presign_secs: MAX_PRESIGN_SECS,
        }
    }
}

impl S3Config {
    /// Reads a tenant's config. The runtime has already checked it against the schema derived from this struct; the
    /// checks are repeated so a caller that skips the runtime gets the same answer.
    pub fn from_value(config: Value) -> Result<Self, ProviderError> {
        let config: S3Config = serde_json::from_value(config)
            .map_err(|e| ProviderError::field(ErrorCode::ConfigInvalid, "", e.to_string()))?;
        if config.max_object_bytes == 0 {
            return Err(ProviderError::field(
                ErrorCode::ConfigInvalid,
                "/max_object_bytes",
                "max_object_bytes must be at least 1",
            ));
        }
        if !(1..=MAX_PRESIGN_SECS).contains(&config.max_presign_secs) {
            return Err(ProviderError::field(
                ErrorCode::ConfigInvalid,
                "/max_presign_secs",
                format!("max_presign_secs must be between 1 and {MAX_PRESIGN_SECS}"),
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
            S3Config::from_value(json!({})).unwrap(),
            S3Config::default()
        );
    }

    #[test]
    fn refuses_unknown_fields_and_out_of_range_limits() {
        // A tenant cannot bring its own server or credentials: they are not fields at all.
        for config in [
            json!({"endpoint": "http://elsewhere"}),
            json!({"secret_access_key": "x"}),
        ] {
            let err = S3Config::from_value(config).unwrap_err();
            assert_eq!(err.code, ErrorCode::ConfigInvalid);
        }
        for (config, pointer) in [
            (json!({"max_object_bytes": 0}), "/max_object_bytes"),
            (json!({"max_presign_secs": 0}), "/max_presign_secs"),
            (json!({"max_presign_secs": 604_801}), "/max_presign_secs"),
        ] {
            let err = S3Config::from_value(config).unwrap_err();
            assert_eq!(err.errors[0].pointer, pointer);
        }
    }

    #[test]
    fn schema_agrees_with_the_struct() {
        let schema = Compiled::new(
            &switchyard_spi::config_schema::<S3Config>(),
            "storage/s3#config",
        )
        .unwrap();
        assert!(schema.check(&json!({})).is_empty());
        assert!(
            schema
                .check(&json!({"max_object_bytes": 10, "max_presign_secs": 60}))
                .is_empty()
        );
        for bad in [
            json!({"max_object_bytes": 0}),
            json!({"max_presign_secs": 604_801}),
            json!({"bucket": "other"}),
        ] {
            assert!(!schema.check(&bad).is_empty(), "{bad}");
        }
    }
}
