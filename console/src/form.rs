//! Forms generated from JSON Schemas (a provider's config schema, an action's params schema)
//! and the JSON a submitted form stands for.
//!
//! Each top-level property becomes one labelled field: text, number, a checkbox, a list for
//! an `enum`, and a JSON text area for objects, arrays and anything richer. A secret-bearing
//! field (its schema says `"x-secret": true`, or asks for a `secret://` reference) is a
//! password field that is never filled in: a secret is entered as a reference, the stored
//! reference is shown beside it as text (the API shows references, never values, and masks a
//! literal stored before literals were refused); left empty, the stored one is kept.

use maud::{Markup, html};
use serde_json::{Map, Value};

/// The kind of input a property gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Text,
    Secret,
    Integer,
    Number,
    Boolean,
    Choice,
    Json,
}

pub struct Field<'a> {
    pub name: &'a str,
    pub schema: &'a Value,
    pub kind: Kind,
    pub required: bool,
}

/// The fields of an object schema: the required ones first, each group by name.
pub fn fields(schema: &Value) -> Vec<Field<'_>> {
    let required: Vec<&str> = schema["required"]
        .as_array()
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let Some(properties) = schema["properties"].as_object() else {
        return Vec::new();
    };
    let mut fields: Vec<Field<'_>> = properties
        .iter()
        .map(|(name, property)| {
            let property = resolve(schema, property);
            Field {
                name,
                schema: property,
                kind: kind(property),
                required: required.contains(&name.as_str()),
            }
        })
        .collect();
    fields.sort_by(|a, b| b.required.cmp(&a.required).then(a.name.cmp(b.name)));
    fields
}

/// A property that is only a `$ref` into the schema's own `$defs`.
fn resolve<'a>(root: &'a Value, property: &'a Value) -> &'a Value {
    property["$ref"]
        .as_str()
        .and_then(|r| r.strip_prefix("#/$defs/"))
        .and_then(|name| root["$defs"].get(name))
        .unwrap_or(property)
}

fn kind(schema: &Value) -> Kind {
    if schema["enum"].is_array() {
        return Kind::Choice;
    }
    // `["integer", "null"]`: an empty field is the null (left out, so the default applies).
    let single = match &schema["type"] {
        Value::Array(types) => {
            let named: Vec<&str> = types
                .iter()
                .filter_map(Value::as_str)
                .filter(|t| *t != "null")
                .collect();
            if named.len() == 1 {
                Some(named[0])
            } else {
                None
            }
        }
        other => other.as_str(),
    };
    match single {
        Some("string")
            if schema["x-secret"] == Value::Bool(true)
                || schema["pattern"]
                    .as_str()
                    .is_some_and(|p| p.starts_with("^secret://")) =>
        {
            Kind::Secret
        }
        Some("string") => Kind::Text,
        Some("integer") => Kind::Integer,
        Some("number") => Kind::Number,
        Some("boolean") => Kind::Boolean,
        _ => Kind::Json,
    }
}

/// The form's inputs, filled from `current` (a stored config or the last submitted params).
pub fn inputs(schema: &Value, current: &Value) -> Markup {
    html! {
        @for field in fields(schema) {
            @let id = format!("f-{}", field.name);
            @let value = &current[field.name];
            @let hint = field.schema["description"].as_str().unwrap_or_default();
            div class="field" {
                label for=(id) {
                    (field.name)
                    @if field.required { " " abbr title="required" { "*" } }
                }
                @match field.kind {
                    Kind::Secret => {
                        input type="password" id=(id) name=(field.name) autocomplete="off"
                            placeholder=(if value.is_null() { "secret://…" } else { "unchanged — enter a new secret:// reference to replace it" });
                        @if let Some(stored) = value.as_str() {
                            small class="stored" { "Stored: " code { (stored) } }
                        }
                    }
                    Kind::Text => {
                        input type="text" id=(id) name=(field.name) value=(value.as_str().unwrap_or_default()) required[field.required];
                    }
                    Kind::Integer | Kind::Number => {
                        input type="number" id=(id) name=(field.name)
                            step=(if field.kind == Kind::Integer { "1" } else { "any" })
                            value=(if value.is_number() { value.to_string() } else { String::new() })
                            required[field.required];
                    }
                    Kind::Boolean => {
                        input type="hidden" name=(format!("{}.present", field.name)) value="1";
                        input type="checkbox" id=(id) name=(field.name) checked[value.as_bool() == Some(true)];
                    }
                    Kind::Choice => {
                        select id=(id) name=(field.name) {
                            @if !field.required { option value="" { "—" } }
                            @for choice in field.schema["enum"].as_array().into_iter().flatten() {
                                @let text = choice.as_str().map_or_else(|| choice.to_string(), str::to_owned);
                                option value=(text) selected[value == choice] { (text) }
                            }
                        }
                    }
                    Kind::Json => {
                        textarea id=(id) name=(field.name) rows="4" spellcheck="false" {
                            @if !value.is_null() { (serde_json::to_string_pretty(value).unwrap_or_default()) }
                        }
                    }
                }
                @if !hint.is_empty() { small { (hint) } }
            }
        }
    }
}

/// The JSON object a submitted form stands for. `kept` supplies what a secret field left
/// empty keeps. An unparsable field is an error naming it.
pub fn to_json(schema: &Value, form: &[(String, String)], kept: &Value) -> Result<Value, String> {
    let get = |name: &str| {
        form.iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    let mut object = Map::new();
    for field in fields(schema) {
        let raw = get(field.name).unwrap_or_default().trim();
        let value = match field.kind {
            Kind::Boolean => {
                if get(&format!("{}.present", field.name)).is_none() {
                    continue;
                }
                Some(Value::Bool(raw == "on"))
            }
            Kind::Secret if raw.is_empty() => kept.get(field.name).cloned(),
            _ if raw.is_empty() => None,
            Kind::Text | Kind::Secret | Kind::Choice => {
                // A choice among non-strings (numbers, booleans) keeps its JSON type.
                let is_string_choice = field.schema["enum"]
                    .as_array()
                    .is_none_or(|e| e.iter().any(|c| c.as_str() == Some(raw)));
                if is_string_choice {
                    Some(Value::String(raw.to_owned()))
                } else {
                    Some(serde_json::from_str(raw).map_err(|e| format!("{}: {e}", field.name))?)
                }
            }
            Kind::Integer => {
                Some(Value::from(raw.parse::<i64>().map_err(|_| {
                    format!("{}: not a whole number", field.name)
                })?))
            }
            Kind::Number => Some(
                raw.parse::<f64>()
                    .ok()
                    .and_then(serde_json::Number::from_f64)
                    .map(Value::Number)
                    .ok_or_else(|| format!("{}: not a number", field.name))?,
            ),
            Kind::Json => {
                Some(serde_json::from_str(raw).map_err(|e| format!("{}: {e}", field.name))?)
            }
        };
        if let Some(value) = value {
            object.insert(field.name.to_owned(), value);
        }
    }
    Ok(Value::Object(object))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn form(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn every_kind_of_field_turns_back_into_typed_json() {
        let schema = json!({
            "type": "object", "required": ["key"],
            "$defs": {"ttl": {"type": "integer"}},
            "properties": {
                "key": {"type": "string"},
                "ttl_ms": {"$ref": "#/$defs/ttl"},
                "limit": {"type": ["integer", "null"]},
                "ratio": {"type": "number"},
                "strict": {"type": "boolean"},
                "mode": {"enum": ["a", "b"]},
                "value": {},
                "dsn": {"type": "string", "pattern": "^secret://"}
            }
        });
        let kinds: Vec<Kind> = fields(&schema).iter().map(|f| f.kind).collect();
        assert_eq!(
            kinds,
            // key (required), then dsn, limit, mode, ratio, strict, ttl_ms, value.
            [
                Kind::Text,
                Kind::Secret,
                Kind::Integer,
                Kind::Choice,
                Kind::Number,
                Kind::Boolean,
                Kind::Integer,
                Kind::Json
            ]
        );
        let submitted = form(&[
            ("key", "session:1"),
            ("ttl_ms", "5000"),
            ("ratio", "0.5"),
            ("strict.present", "1"),
            ("mode", "b"),
            ("value", r#"{"user": "ann"}"#),
            ("dsn", ""),
        ]);
        let kept = json!({"dsn": "secret://env/DSN"});
        assert_eq!(
            to_json(&schema, &submitted, &kept).unwrap(),
            json!({"key": "session:1", "ttl_ms": 5000, "ratio": 0.5, "strict": false,
                   "mode": "b", "value": {"user": "ann"}, "dsn": "secret://env/DSN"})
        );
        let bad = form(&[("key", "k"), ("ttl_ms", "soon")]);
        assert!(
            to_json(&schema, &bad, &json!({}))
                .unwrap_err()
                .contains("ttl_ms")
        );
    }

    #[test]
    fn a_stored_reference_is_shown_as_text_never_as_the_fields_value() {
        let schema = json!({"type": "object", "properties": {
            "dsn": {"type": "string", "x-secret": true}}});
        assert_eq!(fields(&schema)[0].kind, Kind::Secret);
        let page = inputs(&schema, &json!({"dsn": "secret://vault/kv/pg#dsn"})).into_string();
        assert!(
            page.contains("Stored: <code>secret://vault/kv/pg#dsn</code>"),
            "{page}"
        );
        assert!(page.contains(r#"type="password""#), "{page}");
        assert!(!page.contains("value="), "{page}");
    }
}
