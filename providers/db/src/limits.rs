//! The bounds of the engines' integer settings, read by both the config parser and the
//! published JSON Schema so the two cannot drift apart.
//!
//! The runtime validates a tenant's config against the schema before a factory sees it; each
//! engine's `parse` checks the same bounds again so a factory used without the runtime (tests,
//! tools) cannot be started with values the engine would misuse.

use serde::de::DeserializeOwned;
use serde_json::{Map, Value, json};
use switchyard_spi::{ErrorCode, ProviderError};

/// An integer setting of a tenant's config and the values it may take.
pub(crate) struct Limit {
    /// The field's name, also its property in the schema and (after `/`) its error pointer.
    pub name: &'static str,
    pub min: u64,
    pub max: u64,
}

/// How many of a tenant's calls may hold a connection at once; every engine takes 1..=32.
pub(crate) const MAX_CONNECTIONS: Limit = Limit {
    name: "max_connections",
    min: 1,
    max: 32,
};

/// The most rows one `query` returns; every engine takes 1..=100000.
pub(crate) const MAX_ROWS: Limit = Limit {
    name: "max_rows",
    min: 1,
    max: 100_000,
};

impl Limit {
    /// Refuses a value outside the bounds as `config_invalid`, pointing at the field.
    pub fn check(&self, value: impl Into<u64>) -> Result<(), ProviderError> {
        let value = value.into();
        if (self.min..=self.max).contains(&value) {
            return Ok(());
        }
        Err(ProviderError::field(
            ErrorCode::ConfigInvalid,
            &format!("/{}", self.name),
            format!("{value} is outside {}..={}", self.min, self.max),
        ))
    }

    /// The field's schema property: an integer within the bounds, with its default.
    pub fn property(&self, default: impl Into<u64>, description: &str) -> (String, Value) {
        let property = json!({
            "type": "integer",
            "minimum": self.min, "maximum": self.max,
            "default": default.into(),
            "description": description,
        });
        (self.name.to_owned(), property)
    }
}

/// The `max_rows` property, described alike by every engine.
pub(crate) fn max_rows_property(default: u32) -> (String, Value) {
    MAX_ROWS.property(
        default,
        "Most rows one query returns; a caller's max_rows may lower it, never raise it.",
    )
}

/// Reads a config struct (`#[serde(deny_unknown_fields)]`); what it cannot read is
/// `config_invalid` at the root.
pub(crate) fn parse<T: DeserializeOwned>(config: Value) -> Result<T, ProviderError> {
    serde_json::from_value(config)
        .map_err(|e| ProviderError::field(ErrorCode::ConfigInvalid, "", e.to_string()))
}

/// The schema of a config object with exactly these properties.
pub(crate) fn schema(properties: impl IntoIterator<Item = (String, Value)>) -> Value {
    json!({
        "type": "object",
        "additionalProperties": false,
        "properties": properties.into_iter().collect::<Map<String, Value>>(),
    })
}

/// Asserts that an engine's published `schema` and its `parse` agree on each config of
/// `cases` (the config and whether it is valid), and that `parse` refuses as `config_invalid`.
#[cfg(test)]
pub(crate) fn assert_schema_agrees_with_parse<T>(
    schema: &Value,
    parse: fn(Value) -> Result<T, ProviderError>,
    cases: &[(Value, bool)],
) {
    let schema = switchyard_contracts::schema::Compiled::new(schema, "db#config").unwrap();
    for (config, valid) in cases {
        assert_eq!(
            schema.check(config).is_empty(),
            *valid,
            "schema on {config}"
        );
        let parsed = parse(config.clone());
        assert_eq!(parsed.is_ok(), *valid, "parser on {config}");
        if let Err(err) = parsed {
            assert_eq!(err.code, ErrorCode::ConfigInvalid);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_value_out_of_bounds_is_refused_at_its_field() {
        assert!(MAX_ROWS.check(1u32).is_ok());
        assert!(MAX_ROWS.check(100_000u32).is_ok());
        for value in [0u32, 100_001] {
            let err = MAX_ROWS.check(value).unwrap_err();
            assert_eq!(err.code, ErrorCode::ConfigInvalid);
            assert_eq!(err.errors[0].pointer, "/max_rows");
            assert_eq!(err.detail, format!("{value} is outside 1..=100000"));
        }
    }

    #[test]
    fn a_property_publishes_the_bounds_the_parser_checks() {
        let (name, property) = MAX_CONNECTIONS.property(4u32, "Pool size.");
        assert_eq!(name, "max_connections");
        assert_eq!(
            property,
            json!({"type": "integer", "minimum": 1, "maximum": 32, "default": 4,
                   "description": "Pool size."})
        );
    }
}
