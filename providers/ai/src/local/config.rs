//! Per-tenant config of `ai/local`: the shape of its vectors. Changing any field changes every
//! vector (and the `model` name that says so), so vectors stored under one config must not be
//! compared with vectors made under another.

use serde::Deserialize;
use serde_json::{Value, json};
use switchyard_spi::{ErrorCode, ProviderError};

use super::ngram::Embedder;

const DIMENSIONS: (usize, usize, usize) = (16, 4096, 256);
const N: (usize, usize) = (1, 8);
const DEFAULT_MIN_N: usize = 3;
const DEFAULT_MAX_N: usize = 5;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    #[serde(default = "default_dimensions")]
    dimensions: usize,
    #[serde(default = "default_min_n")]
    min_n: usize,
    #[serde(default = "default_max_n")]
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
    let raw: Raw = serde_json::from_value(config)
        .map_err(|e| ProviderError::new(ErrorCode::ConfigInvalid, e.to_string()))?;
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
    if raw.min_n > raw.max_n {
        return Err(invalid("/max_n", "must be at least min_n".into()));
    }
    Ok(Embedder {
        dimensions: raw.dimensions,
        min_n: raw.min_n,
        max_n: raw.max_n,
    })
}

pub fn schema() -> Value {
    let n = |default: usize, description: &str| json!({"type": "integer", "minimum": N.0, "maximum": N.1, "default": default, "description": description});
    json!({
        "type": "object",
        "additionalProperties": false,
        "properties": {
            "dimensions": {"type": "integer", "minimum": DIMENSIONS.0, "maximum": DIMENSIONS.1, "default": DIMENSIONS.2, "description": "Length of every vector. More dimensions, fewer hash collisions, bigger answers."},
            "min_n": n(DEFAULT_MIN_N, "Shortest character n-gram, counting the < > that frame each word."),
            "max_n": n(DEFAULT_MAX_N, "Longest character n-gram; at least min_n.")
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_config_is_the_schema_default() {
        let embedder = parse(json!({})).unwrap();
        let schema = schema();
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
            (json!({"min_n": 4, "max_n": 3}), "/max_n"),
        ] {
            let err = parse(bad.clone()).unwrap_err();
            assert_eq!(err.code, ErrorCode::ConfigInvalid, "{bad}");
            assert_eq!(err.errors[0].pointer, pointer, "{bad}");
        }
        assert_eq!(
            parse(json!({"model": "gpt"})).unwrap_err().code,
            ErrorCode::ConfigInvalid
        );
    }
}
