//! Per-tenant config of the bus engines. `bus/embedded` and `bus/kafka` take the same fields
//! with the same meaning, so a tenant moves between them without touching its config.
//!
//! The JSON Schema the runtime validates a tenant's config against before the factory sees it
//! is derived from [`BusConfig`], so it reads the same shape with the same bounds and default.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use switchyard_spi::{ErrorCode, ProviderError};

const MIN_RECORDS: u32 = 1;
/// The contract's own ceiling for `max_records`: a default above it could not be asked for.
const MAX_RECORDS: u32 = 1000;
const DEFAULT_MAX_RECORDS: u32 = 100;
/// Bounds of `max_deliveries`. The ceiling keeps a delivery count small enough to pack next to
/// an offset (see `bus/kafka`'s delivery counters) and is far above any useful retry budget.
const MIN_DELIVERIES: u32 = 1;
pub(crate) const MAX_DELIVERIES: u32 = 1000;

/// A tenant's settings. Every field is optional; an empty object is the default config.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BusConfig {
    /// Records returned by `poll` and `replay` when the call gives no `max_records`. Lower it
    /// for tenants with large payloads so an unbounded poll stays small.
    #[serde(default = "default_max_records")]
    #[schemars(range(min = MIN_RECORDS, max = MAX_RECORDS))]
    pub default_max_records: u32,
    /// Times `poll` delivers the record at a group's committed position before moving it to
    /// `<topic>.dead-letter` and the group past it; absent or null: never, and a record that
    /// always fails blocks its group until the group commits past it.
    #[serde(default)]
    #[schemars(range(min = MIN_DELIVERIES, max = MAX_DELIVERIES))]
    pub max_deliveries: Option<u32>,
}

impl Default for BusConfig {
    fn default() -> Self {
        BusConfig {
            default_max_records: DEFAULT_MAX_RECORDS,
            max_deliveries: None,
        }
    }
}

fn default_max_records() -> u32 {
    DEFAULT_MAX_RECORDS
}

impl BusConfig {
    /// Reads a config the runtime has already checked against the schema derived from
    /// this struct. The checks are
    /// repeated here so that a factory started directly (tests, embedding) cannot run with an
    /// out-of-range value.
    pub(crate) fn from_value(config: Value) -> Result<Self, ProviderError> {
        let parsed: BusConfig = serde_json::from_value(config)
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
        if let Some(n) = parsed.max_deliveries
            && !(MIN_DELIVERIES..=MAX_DELIVERIES).contains(&n)
        {
            return Err(ProviderError::field(
                ErrorCode::ConfigInvalid,
                "/max_deliveries",
                format!(
                    "max_deliveries must be between {MIN_DELIVERIES} and {MAX_DELIVERIES}, got {n}"
                ),
            ));
        }
        Ok(parsed)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use switchyard_contracts::schema::Compiled;

    use super::*;

    #[test]
    fn an_empty_config_is_the_default_and_matches_the_schema_default() {
        let config = BusConfig::from_value(json!({})).unwrap();
        assert_eq!(config, BusConfig::default());
        assert_eq!(
            switchyard_spi::config_schema::<BusConfig>()["properties"]["default_max_records"]["default"],
            json!(config.default_max_records)
        );
    }

    #[test]
    fn the_schema_refuses_what_from_value_refuses() {
        let schema =
            Compiled::new(&switchyard_spi::config_schema::<BusConfig>(), "bus#config").unwrap();
        for accepted in [
            json!({}),
            json!({"default_max_records": 1000, "max_deliveries": null}),
            json!({"default_max_records": 1, "max_deliveries": 1000}),
        ] {
            assert!(schema.check(&accepted).is_empty(), "{accepted}");
            BusConfig::from_value(accepted).unwrap();
        }
        for refused in [
            json!({"default_max_records": 0}),
            json!({"default_max_records": 1001}),
            json!({"default_max_records": null}),
            json!({"max_deliveries": 0}),
            json!({"max_deliveries": 1001}),
            json!({"retention": "7d"}),
        ] {
            assert!(!schema.check(&refused).is_empty(), "{refused}");
            BusConfig::from_value(refused).unwrap_err();
        }
    }

    #[test]
    fn out_of_range_and_unknown_fields_are_config_invalid() {
        for (bad, pointer) in [
            (json!({"default_max_records": 0}), "/default_max_records"),
            (json!({"default_max_records": 1001}), "/default_max_records"),
            (json!({"default_max_records": 5, "retention": "7d"}), ""),
            (json!({"max_deliveries": 0}), "/max_deliveries"),
            (json!({"max_deliveries": 1001}), "/max_deliveries"),
        ] {
            let err = BusConfig::from_value(bad.clone()).unwrap_err();
            assert_eq!(err.code, ErrorCode::ConfigInvalid, "{bad}");
            assert_eq!(err.errors[0].pointer, pointer, "{bad}");
        }
        assert_eq!(
            BusConfig::from_value(json!({"default_max_records": 1000}))
                .unwrap()
                .default_max_records,
            1000
        );
        assert_eq!(
            BusConfig::from_value(json!({"max_deliveries": 3}))
                .unwrap()
                .max_deliveries,
            Some(3)
        );
        assert_eq!(
            BusConfig::from_value(json!({"max_deliveries": null}))
                .unwrap()
                .max_deliveries,
            None
        );
    }
}
