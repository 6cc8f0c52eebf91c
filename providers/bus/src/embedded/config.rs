//! Per-tenant config of `bus/embedded`.
//!
//! The JSON Schema below is what the runtime validates a tenant's config against before the
//! factory sees it; the serde struct reads the same shape. Both take their bounds from the
//! same constants, and a test keeps the schema's default equal to the struct's.

use serde::Deserialize;
use serde_json::{Value, json};
use switchyard_spi::{ErrorCode, ProviderError};

const MIN_RECORDS: u32 = 1;
/// The contract's own ceiling for `max_records`: a default above it could not be asked for.
const MAX_RECORDS: u32 = 1000;
const DEFAULT_MAX_RECORDS: u32 = 100;

/// A tenant's settings. Every field is optional; an empty object is the default config.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmbeddedBusConfig {
    /// How many records `poll` and `replay` return when the call does not say
    /// (`max_records` absent). 1 to 1000, default 100. Lower it for tenants with large
    /// payloads so an unbounded poll stays small.
    #[serde(default = "default_max_records")]
    pub default_max_records: u32,
}

impl Default for EmbeddedBusConfig {
    fn default() -> Self {
        EmbeddedBusConfig {
            default_max_records: DEFAULT_MAX_RECORDS,
        }
    }
}

fn default_max_records() -> u32 {
    DEFAULT_MAX_RECORDS
}

impl EmbeddedBusConfig {
    /// Reads a config the runtime has already checked against [`schema`]. The checks are
    /// repeated here so that a factory started directly (tests, embedding) cannot run with an
    /// out-of-range value.
    pub(crate) fn from_value(config: Value) -> Result<Self, ProviderError> {
        let parsed: EmbeddedBusConfig = serde_json::from_value(config)
            .map_err(|e| ProviderError::field(ErrorCode::ConfigInvalid, "", e.to_string()))?;
        if !(MIN_RECORDS..=MAX_RECORDS).contains(&parsed.default_max_records) {
            return Err(ProviderError::field(
                ErrorCode::ConfigInvalid,
                "/default_max_records",
                format!(
                    "default_max_records must be between {MIN_RECORDS} and {MAX_RECORDS}, got {}",
                    parsed.default_max_records
                ),
            ));
        }
        Ok(parsed)
    }
}

/// JSON Schema of the config, published in the provider descriptor.
pub(crate) fn schema() -> Value {
    json!({
        "type": "object",
        "additionalProperties": false,
        "properties": {
            "default_max_records": {
                "type": "integer",
                "minimum": MIN_RECORDS,
                "maximum": MAX_RECORDS,
                "default": DEFAULT_MAX_RECORDS,
                "description": "Records returned by poll and replay when the call gives no max_records."
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_config_is_the_default_and_matches_the_schema_default() {
        let config = EmbeddedBusConfig::from_value(json!({})).unwrap();
        assert_eq!(config, EmbeddedBusConfig::default());
        assert_eq!(
            schema()["properties"]["default_max_records"]["default"],
            json!(config.default_max_records)
        );
    }

    #[test]
    fn out_of_range_and_unknown_fields_are_config_invalid() {
        for (bad, pointer) in [
            (json!({"default_max_records": 0}), "/default_max_records"),
            (json!({"default_max_records": 1001}), "/default_max_records"),
            (json!({"default_max_records": 5, "retention": "7d"}), ""),
        ] {
            let err = EmbeddedBusConfig::from_value(bad.clone()).unwrap_err();
            assert_eq!(err.code, ErrorCode::ConfigInvalid, "{bad}");
            assert_eq!(err.errors[0].pointer, pointer, "{bad}");
        }
        assert_eq!(
            EmbeddedBusConfig::from_value(json!({"default_max_records": 1000}))
                .unwrap()
                .default_max_records,
            1000
        );
    }
}
