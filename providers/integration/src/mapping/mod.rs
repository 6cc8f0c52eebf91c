//! Field mappings: how a system's raw record becomes the record a destination receives.
//!
//! A mapping is a set of output fields, each given by one expression over the raw record,
//! compiled once per config version (an instance is built per config version) and applied
//! to every record of a sync, a webhook or a re-map.

use std::collections::BTreeMap;

use serde_json::{Map, Value};
use switchyard_spi::{ErrorCode, ProviderError};

/// A compiled mapping. Today's stand-in reads top-level fields by name (`.total_price`); the
/// expression language replaces it behind the same two calls.
#[derive(Debug, Clone)]
pub(crate) struct Mapping {
    fields: Vec<(String, String)>,
}

impl Mapping {
    /// Compiles `fields` (output name → expression); `pointer` is where the mapping sits in
    /// the config, for errors.
    pub(crate) fn compile(
        fields: &BTreeMap<String, String>,
        pointer: &str,
    ) -> Result<Self, ProviderError> {
        let mut compiled = Vec::with_capacity(fields.len());
        for (name, expression) in fields {
            let Some(field) = expression.strip_prefix('.') else {
                return Err(ProviderError::field(
                    ErrorCode::ConfigUnprocessable,
                    &format!("{pointer}/{name}"),
                    "not a field path",
                ));
            };
            compiled.push((name.clone(), field.to_owned()));
        }
        Ok(Mapping { fields: compiled })
    }

    /// The mapped record of `raw`.
    pub(crate) fn apply(&self, raw: &Value) -> Result<Value, ProviderError> {
        let mut out = Map::with_capacity(self.fields.len());
        for (name, field) in &self.fields {
            out.insert(name.clone(), raw.get(field).cloned().unwrap_or(Value::Null));
        }
        Ok(Value::Object(out))
    }
}
