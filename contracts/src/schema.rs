//! JSON Schema validation that reports every violation as a JSON pointer.

use serde_json::Value;

use crate::descriptor::ActionDescriptor;
use crate::problem::FieldError;

#[derive(Debug, thiserror::Error)]
#[error("invalid JSON Schema at {location}: {message}")]
pub struct SchemaError {
    pub location: String,
    pub message: String,
}

/// A compiled schema. Compiling is the expensive part, so the runtime does it once per
/// provider descriptor and keeps the result.
pub struct Compiled(jsonschema::Validator);

impl Compiled {
    pub fn new(schema: &Value, location: &str) -> Result<Self, SchemaError> {
        jsonschema::validator_for(schema)
            .map(Compiled)
            .map_err(|e| SchemaError {
                location: location.to_owned(),
                message: e.to_string(),
            })
    }

    /// Every violation, each with the pointer of the offending value. A missing required
    /// property points at where it should have been, not at its parent.
    pub fn check(&self, instance: &Value) -> Vec<FieldError> {
        self.0
            .iter_errors(instance)
            .map(|err| {
                let mut pointer = err.instance_path.to_string();
                if let jsonschema::error::ValidationErrorKind::Required { property } = &err.kind {
                    if let Some(name) = property.as_str() {
                        pointer.push('/');
                        pointer.push_str(&name.replace('~', "~0").replace('/', "~1"));
                    }
                }
                FieldError {
                    pointer,
                    detail: err.to_string(),
                }
            })
            .collect()
    }
}

/// The compiled params and result schemas of one action.
pub struct ActionValidators {
    pub params: Compiled,
    pub result: Compiled,
}

impl ActionValidators {
    pub fn compile(provider: &str, action: &ActionDescriptor) -> Result<Self, SchemaError> {
        Ok(ActionValidators {
            params: Compiled::new(
                &action.params,
                &format!("{provider}/{}#params", action.name),
            )?,
            result: Compiled::new(
                &action.result,
                &format!("{provider}/{}#result", action.name),
            )?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn violations_point_at_the_offending_field() {
        let schema = json!({
            "type": "object",
            "required": ["sql"],
            "properties": {"sql": {"type": "string"}, "params": {"type": "array", "items": {"type": "integer"}}},
            "additionalProperties": false
        });
        let v = Compiled::new(&schema, "test").unwrap();
        let errors = v.check(&json!({"params": [1, "two"], "extra": true}));
        let pointers: Vec<&str> = errors.iter().map(|e| e.pointer.as_str()).collect();
        assert!(pointers.contains(&"/sql"), "{pointers:?}");
        assert!(pointers.contains(&"/params/1"), "{pointers:?}");
        assert!(pointers.contains(&""), "{pointers:?}");
        assert!(v.check(&json!({"sql": "select 1"})).is_empty());
    }
}
