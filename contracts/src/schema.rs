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
    /// property points at where it should have been, an unexpected one at itself, rather than
    /// both at their parent object.
    pub fn check(&self, instance: &Value) -> Vec<FieldError> {
        use jsonschema::error::ValidationErrorKind as Kind;
        let mut found = Vec::new();
        for err in self.0.iter_errors(instance) {
            let at = err.instance_path.to_string();
            let detail = err.to_string();
            match &err.kind {
                Kind::Required { property } if property.is_string() => {
                    let name = property.as_str().unwrap_or_default();
                    found.push(FieldError {
                        pointer: child(&at, name),
                        detail,
                    });
                }
                Kind::AdditionalProperties { unexpected } => {
                    found.extend(unexpected.iter().map(|name| FieldError {
                        pointer: child(&at, name),
                        detail: format!("{name:?} is not an accepted property"),
                    }));
                }
                _ => found.push(FieldError {
                    pointer: at,
                    detail,
                }),
            }
        }
        found
    }
}

/// The pointer of property `name` under the object at `parent` (RFC 6901 escaping).
fn child(parent: &str, name: &str) -> String {
    format!("{parent}/{}", name.replace('~', "~0").replace('/', "~1"))
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
        assert!(pointers.contains(&"/extra"), "{pointers:?}");
        assert!(v.check(&json!({"sql": "select 1"})).is_empty());
    }
}
