//! JSON Schema validation that reports every violation as a JSON pointer.

use std::sync::OnceLock;

use serde_json::Value;

use crate::descriptor::ActionDescriptor;
use crate::problem::FieldError;

#[derive(Debug, Clone, thiserror::Error)]
#[error("invalid JSON Schema at {location}: {message}")]
pub struct SchemaError {
    pub location: String,
    pub message: String,
}

/// A compiled schema. Compiling is the expensive part, so the runtime does it once per
/// provider descriptor and keeps the result.
///
/// [`Compiled::new`] compiles at once and refuses a schema that does not compile;
/// [`Compiled::deferred`] compiles on the first check, for the schemas built into the binary
/// (whose compiling their tests cover): a process keeps only the validators its callers use,
/// about 130 KiB each on average, most of it the automata of `pattern`s (ADR 39).
pub struct Compiled {
    validator: OnceLock<Result<jsonschema::Validator, SchemaError>>,
    /// The schema itself, which [`Compiled::with_integers`] walks.
    schema: Value,
    location: String,
}

impl Compiled {
    pub fn new(schema: &Value, location: &str) -> Result<Self, SchemaError> {
        let compiled = Compiled::deferred(schema, location);
        compiled.compile()?;
        Ok(compiled)
    }

    /// The schema, compiled on its first [`Compiled::check`] (or [`Compiled::compile`]).
    pub fn deferred(schema: &Value, location: &str) -> Self {
        Compiled {
            validator: OnceLock::new(),
            schema: schema.clone(),
            location: location.to_owned(),
        }
    }

    /// Compiles the schema unless it already is; the error of a schema that does not compile.
    pub fn compile(&self) -> Result<&jsonschema::Validator, SchemaError> {
        self.validator
            .get_or_init(|| {
                jsonschema::validator_for(&self.schema).map_err(|e| SchemaError {
                    location: self.location.clone(),
                    message: e.to_string(),
                })
            })
            .as_ref()
            .map_err(Clone::clone)
    }

    /// `instance` with every number written with a zero fraction (`5.0`) where the schema asks
    /// for an integer rewritten as that integer (`5`). JSON Schema counts `5.0` as an integer,
    /// so the published document promises such params are accepted; the typed params behind an
    /// action (`u64`, `u32`) would refuse them as floats, and the validator itself refuses them
    /// under a type list such as `["integer", "null"]`. Apply it before [`Compiled::check`].
    /// Only places the schema types as integers change: a number in free-form JSON (a cached
    /// value, a message payload) stays as it was sent.
    pub fn with_integers(&self, mut instance: Value) -> Value {
        integers(&self.schema, &mut instance);
        instance
    }

    /// Every violation, each with the pointer of the offending value. A missing required
    /// property points at where it should have been, an unexpected one at itself, rather than
    /// both at their parent object.
    ///
    /// A deferred schema that does not compile admits nothing: one violation at the root says so.
    pub fn check(&self, instance: &Value) -> Vec<FieldError> {
        use jsonschema::error::ValidationErrorKind as Kind;
        let validator = match self.compile() {
            Ok(validator) => validator,
            Err(e) => {
                return vec![FieldError {
                    pointer: String::new(),
                    detail: e.to_string(),
                }];
            }
        };
        let mut found = Vec::new();
        for err in validator.iter_errors(instance) {
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

/// Rewrites integral floats in `value` where `schema` types it as an integer, through
/// properties, additional properties, array items and the subschemas of `allOf`/`anyOf`/`oneOf`
/// (rewriting a number that another branch calls a plain number changes nothing it means).
fn integers(schema: &Value, value: &mut Value) {
    let Value::Object(schema) = schema else {
        return;
    };
    let is_integer = match schema.get("type") {
        Some(Value::String(kind)) => kind == "integer",
        Some(Value::Array(kinds)) => {
            kinds.iter().any(|k| k == "integer") && !kinds.iter().any(|k| k == "number")
        }
        _ => false,
    };
    if is_integer && let Value::Number(number) = value {
        // 2^64 and -2^63 are exact as f64; beyond them the float is no integer of ours.
        match number.as_f64() {
            Some(f)
                if number.is_f64()
                    && f.fract() == 0.0
                    && (0.0..18_446_744_073_709_551_616.0).contains(&f) =>
            {
                *value = Value::from(f as u64);
            }
            Some(f)
                if number.is_f64()
                    && f.fract() == 0.0
                    && (-9_223_372_036_854_775_808.0..0.0).contains(&f) =>
            {
                *value = Value::from(f as i64);
            }
            _ => {}
        }
    }
    for combinator in ["allOf", "anyOf", "oneOf"] {
        if let Some(Value::Array(branches)) = schema.get(combinator) {
            for branch in branches {
                integers(branch, value);
            }
        }
    }
    match value {
        Value::Object(fields) => {
            let properties = schema.get("properties");
            for (name, field) in fields.iter_mut() {
                match properties.and_then(|p| p.get(name)) {
                    Some(property) => integers(property, field),
                    None => {
                        if let Some(additional) = schema.get("additionalProperties") {
                            integers(additional, field);
                        }
                    }
                }
            }
        }
        Value::Array(items) => {
            let prefix = match schema.get("prefixItems") {
                Some(Value::Array(prefix)) => prefix.as_slice(),
                _ => &[],
            };
            for (at, item) in items.iter_mut().enumerate() {
                if let Some(item_schema) = prefix.get(at).or_else(|| schema.get("items")) {
                    integers(item_schema, item);
                }
            }
        }
        _ => {}
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
        let validators = ActionValidators::deferred(provider, action);
        validators.params.compile()?;
        validators.result.compile()?;
        Ok(validators)
    }

    /// Both schemas compiled on their first check ([`Compiled::deferred`]).
    pub fn deferred(provider: &str, action: &ActionDescriptor) -> Self {
        ActionValidators {
            params: Compiled::deferred(
                &action.params,
                &format!("{provider}/{}#params", action.name),
            ),
            result: Compiled::deferred(
                &action.result,
                &format!("{provider}/{}#result", action.name),
            ),
        }
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

    /// The services refuse a zero amount, a nanosecond and a date that does not exist; their
    /// published params say so (a lookahead and a pattern the validator must honour).
    #[test]
    fn published_service_params_refuse_what_the_services_refuse() {
        let actions = crate::domains::service_actions("ledger");
        let post = actions.iter().find(|a| a.name == "post_journal").unwrap();
        let params = Compiled::new(&post.params, "post_journal").unwrap();
        let journal = |amount: &str, time: &str| {
            json!({"journal_id": "J", "posting_time": time, "lines": [
                {"account": "1000", "debit": amount, "currency": "EUR"},
                {"account": "4000", "credit": amount, "currency": "EUR"}]})
        };
        assert_eq!(
            params.check(&journal("0.50", "2026-03-01T09:00:00.123456Z")),
            vec![]
        );
        assert_eq!(
            params.check(&journal("1", "2026-03-01T09:00:00.123456000+01:00")),
            vec![]
        );
        let pointers = |errors: Vec<FieldError>| -> Vec<String> {
            errors.into_iter().map(|e| e.pointer).collect()
        };
        assert_eq!(
            pointers(params.check(&journal("0.00", "2026-03-01T09:00:00Z"))),
            ["/lines/0/debit", "/lines/1/credit"]
        );
        for nanoseconds in [
            "2026-03-01T09:00:00.1234567Z",
            "2026-03-01T09:00:00.586100004Z",
        ] {
            assert_eq!(
                pointers(params.check(&journal("1", nanoseconds))),
                ["/posting_time"],
                "{nanoseconds}"
            );
        }
    }

    #[test]
    fn integral_floats_become_integers_only_where_the_schema_asks_for_integers() {
        let schema = json!({
            "type": "object",
            "properties": {
                "ttl_ms": {"type": "integer", "minimum": 0},
                "by": {"type": "integer"},
                "ratio": {"type": "number"},
                "value": {},
                "offsets": {"type": "array", "items": {"type": "integer"}},
                "entries": {"type": "array", "items": {"type": "object", "properties": {"ttl_ms": {"type": ["integer", "null"]}}}},
                "either": {"oneOf": [{"type": "integer"}, {"type": "string"}]}
            },
            "additionalProperties": {"type": "integer"}
        });
        let compiled = Compiled::new(&schema, "test").unwrap();
        let sent = json!({
            "ttl_ms": 34813.0, "by": -1376.0, "ratio": 2.0, "value": {"n": 2.0},
            "offsets": [1.0, 2], "entries": [{"ttl_ms": 5.0}], "either": 7.0, "extra": 3.0
        });
        let read = compiled.with_integers(sent);
        assert_eq!(compiled.check(&read), vec![]);
        assert_eq!(
            read.to_string(),
            json!({
                "ttl_ms": 34813, "by": -1376, "ratio": 2.0, "value": {"n": 2.0},
                "offsets": [1, 2], "entries": [{"ttl_ms": 5}], "either": 7, "extra": 3
            })
            .to_string()
        );
        let fractional = compiled.with_integers(json!({"ttl_ms": 1.5}));
        assert_eq!(
            fractional,
            json!({"ttl_ms": 1.5}),
            "a real fraction is left for check to refuse"
        );
    }

    /// `new` refuses a schema that does not compile; `deferred` takes it, and its first check
    /// compiles it: the same error then, and nothing admitted.
    #[test]
    fn a_deferred_schema_compiles_on_its_first_check() {
        let broken = json!({"type": "string", "pattern": "("});
        let refused = Compiled::new(&broken, "broken")
            .err()
            .expect("refused at once");
        let deferred = Compiled::deferred(&broken, "broken");
        let later = deferred.compile().expect_err("refused when compiled");
        assert_eq!(later.to_string(), refused.to_string());
        let errors = deferred.check(&json!("anything"));
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert_eq!(errors[0].pointer, "");
        assert_eq!(errors[0].detail, refused.to_string());

        let schema = json!({"type": "object", "required": ["sql"]});
        let deferred = Compiled::deferred(&schema, "ok");
        assert!(deferred.validator.get().is_none(), "nothing compiled yet");
        assert_eq!(deferred.check(&json!({"sql": "x"})), vec![]);
        assert_eq!(deferred.check(&json!({})).len(), 1);
        assert!(deferred.validator.get().is_some());
    }
}
