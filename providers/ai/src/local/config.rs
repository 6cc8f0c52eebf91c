//! Per-tenant config of `ai/local`: the shape of its vectors. Changing any field changes every
//! vector (and the `model` name that says so), so vectors stored under one config must not be
//! compared with vectors made under another.

use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::Value;
use switchyard_spi::{ErrorCode, ProviderError, parse_config};

use super::ngram::Embedder;

const DIMENSIONS: (usize, usize, usize) = (16, 4096, 256);
const N: (usize, usize) = (1, 8);
const DEFAULT_MIN_N: usize = 3;
const DEFAULT_MAX_N: usize = 5;

/// The shape of the tenant's vectors. Every field is optional; an empty object means the
/// defaults.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LocalAiConfig {
    /// Length of every vector. More dimensions, fewer hash collisions, bigger answers.
    #[serde(default = "default_dimensions")]
    #[schemars(range(min = DIMENSIONS.0, max = DIMENSIONS.1))]
    dimensions: usize,
    /// Shortest character n-gram, counting the < > that frame each word.
    #[serde(default = "default_min_n")]
    #[schemars(range(min = N.0, max = N.1))]
    min_n: usize,
    /// Longest character n-gram; at least min_n.
    #[serde(default = "default_max_n")]
    #[schemars(range(min = N.0, max = N.1))]
    max_n: usize,
}

fn default_dimensions() -> usize {
    DIMENSIONS.2
}
fn default_min_n() -> usize {
    DEFAULT_MIN_N
}
fn default_max_n() -> usize {
    DEFAULT_MAX_N
}

fn invalid(pointer: &str, detail: String) -> ProviderError {
    ProviderError::field(ErrorCode::ConfigInvalid, pointer, detail)
}

/// Reads a tenant's config into the embedder it describes; an empty object is the default.
pub fn parse(config: Value) -> Result<Embedder, ProviderError> {
    let raw: LocalAiConfig = parse_config(config)?;
    if !(DIMENSIONS.0..=DIMENSIONS.1).contains(&raw.dimensions) {
        return Err(invalid(
            "/dimensions",
            format!("must be between {} and {}", DIMENSIONS.0, DIMENSIONS.1),
        ));
    }
    for (value, pointer) in [(raw.min_n, "/min_n"), (raw.max_n, "/max_n")] {
        if !(N.0..=N.1).contains(&value) {
            return Err(invalid(
                pointer,
                format!("must be between {} and {}", N.0, N.1),
            ));
        }
    }
    // A rule between two fields that JSON Schema cannot state (it has no `$data`): the schema
    // accepts `{"min_n": 4, "max_n": 3}`, so this is 422, not the schema's 400 (ADR 23).
    if raw.min_n > raw.max_n {
        return Err(ProviderError::field(
            ErrorCode::ConfigUnprocessable,
            "/max_n",
            "must be at least min_n",
        ));
    }
    Ok(Embedder {
        dimensions: raw.dimensions,
        min_n: raw.min_n,
        max_n: raw.max_n,
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use switchyard_contracts::schema::Compiled;

    use super::*;

    #[test]
    fn an_empty_config_is_the_schema_default() {
        let embedder = parse(json!({})).unwrap();
        let schema = switchyard_spi::config_schema::<LocalAiConfig>();
        assert_eq!(
            schema["properties"]["dimensions"]["default"],
            json!(embedder.dimensions)
        );
        assert_eq!(
            schema["properties"]["min_n"]["default"],
            json!(embedder.min_n)
        );
        assert_eq!(
            schema["properties"]["max_n"]["default"],
            json!(embedder.max_n)
        );
    }

    #[test]
    fn out_of_range_fields_are_config_invalid_with_pointers() {
        for (bad, pointer) in [
            (json!({"dimensions": 8}), "/dimensions"),
            (json!({"min_n": 0}), "/min_n"),
            (json!({"max_n": 9}), "/max_n"),
        ] {
            let err = parse(bad.clone()).unwrap_err();
            assert_eq!(err.code, ErrorCode::ConfigInvalid, "{bad}");
            assert_eq!(err.errors[0].pointer, pointer, "{bad}");
        }
        let crossed = parse(json!({"min_n": 4, "max_n": 3})).unwrap_err();
        assert_eq!(crossed.code, ErrorCode::ConfigUnprocessable);
        assert_eq!(crossed.errors[0].pointer, "/max_n");
        assert_eq!(
            parse(json!({"model": "gpt"})).unwrap_err().code,
            ErrorCode::ConfigInvalid
        );
    }

    /// What only `parse` can refuse, as 422: `min_n` above `max_n`.
    #[test]
    fn the_schema_refuses_each_field_out_of_its_range() {
        let schema = Compiled::new(
            &switchyard_spi::config_schema::<LocalAiConfig>(),
            "ai/local#config",
        )
        .unwrap();
        assert!(
            schema
                .check(&json!({"dimensions": 4096, "min_n": 1, "max_n": 8}))
                .is_empty()
        );
        for bad in [
            json!({"dimensions": 15}),
            json!({"dimensions": 4097}),
            json!({"min_n": 0}),
            json!({"max_n": 9}),
            json!({"model": "gpt"}),
        ] {
            assert!(!schema.check(&bad).is_empty(), "{bad}");
        }
        assert!(schema.check(&json!({"min_n": 4, "max_n": 3})).is_empty());
    }
}
