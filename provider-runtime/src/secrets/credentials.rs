//! Literal credentials in a config: found where only a `secret://` reference belongs
//! ([`literal_credentials`], refused at configure) and hidden wherever a config is shown
//! ([`masked`]): a field the schema marks [`SECRET_KEYWORD`], and a URL's password anywhere.

use serde_json::Value;
use switchyard_contracts::FieldError;

use super::{PREFIX, SECRET_KEYWORD, push_token};

/// What a literal credential is shown as.
const MASK: &str = "***";

/// The literal credentials in `config`: a field its `schema` marks [`SECRET_KEYWORD`] holding
/// a string that is not a `secret://` reference, and any URL that carries a password (a DSN,
/// a base URL with `user:password@`), wherever it is.
pub fn literal_credentials(schema: &Value, config: &Value) -> Vec<FieldError> {
    credentials(schema, config)
        .into_iter()
        .filter(|(_, found)| *found != Found::OtherSecretValue)
        .map(|(pointer, found)| FieldError {
            pointer,
            detail: match found {
                Found::UrlPassword => {
                    "a URL with a password in it; put the URL in your secret store and write its secret:// reference here"
                }
                _ => "a credential must be a secret:// reference, never the value itself",
            }
            .into(),
        })
        .collect()
}

/// `config` as it may be shown back: references as written, a literal in a secret-bearing
/// field as `***`, a URL's password as `***`. Configs stored before literals were refused
/// may still hold them.
pub fn masked(schema: &Value, config: &Value) -> Value {
    let mut shown = config.clone();
    for (pointer, found) in credentials(schema, config) {
        let Some(slot) = shown.pointer_mut(&pointer) else {
            continue;
        };
        *slot = match found {
            Found::UrlPassword => slot
                .as_str()
                .and_then(|text| reqwest::Url::parse(text).ok())
                .and_then(|mut url| url.set_password(Some(MASK)).ok().map(|()| url))
                .map_or_else(|| Value::from(MASK), |url| Value::from(url.as_str())),
            Found::SecretLiteral | Found::OtherSecretValue => Value::from(MASK),
        };
    }
    shown
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Found {
    /// A string in a secret-bearing field that is not a reference.
    SecretLiteral,
    /// Anything else but a reference in a secret-bearing field (left to the schema check).
    OtherSecretValue,
    UrlPassword,
}

fn credentials(schema: &Value, config: &Value) -> Vec<(String, Found)> {
    let mut found = Vec::new();
    walk_with_schema(schema, Some(schema), config, &mut String::new(), &mut found);
    found
}

fn walk_with_schema(
    root: &Value,
    schema: Option<&Value>,
    value: &Value,
    pointer: &mut String,
    found: &mut Vec<(String, Found)>,
) {
    let schema = schema.map(|s| resolve_ref(root, s));
    let secret = schema.is_some_and(|s| s.get(SECRET_KEYWORD) == Some(&Value::Bool(true)));
    let at = pointer.len();
    match value {
        Value::String(text) if text.starts_with(PREFIX) => {}
        Value::String(_) if secret => found.push((pointer.clone(), Found::SecretLiteral)),
        Value::String(text) if url_with_password(text) => {
            found.push((pointer.clone(), Found::UrlPassword))
        }
        _ if secret && !value.is_null() => found.push((pointer.clone(), Found::OtherSecretValue)),
        Value::Object(map) => {
            for (key, item) in map {
                let sub = schema.and_then(|s| {
                    s.get("properties")
                        .and_then(|p| p.get(key))
                        .or_else(|| s.get("additionalProperties").filter(|a| a.is_object()))
                });
                push_token(pointer, key);
                walk_with_schema(root, sub, item, pointer, found);
                pointer.truncate(at);
            }
        }
        Value::Array(items) => {
            let sub = schema
                .and_then(|s| s.get("items"))
                .filter(|i| i.is_object());
            for (index, item) in items.iter().enumerate() {
                pointer.push('/');
                pointer.push_str(&index.to_string());
                walk_with_schema(root, sub, item, pointer, found);
                pointer.truncate(at);
            }
        }
        _ => {}
    }
}

/// A property that is only a `$ref` into the schema's own `$defs`.
pub(crate) fn resolve_ref<'a>(root: &'a Value, schema: &'a Value) -> &'a Value {
    schema
        .get("$ref")
        .and_then(Value::as_str)
        .and_then(|r| r.strip_prefix("#/$defs/"))
        .and_then(|name| root.get("$defs").and_then(|d| d.get(name)))
        .unwrap_or(schema)
}

fn url_with_password(text: &str) -> bool {
    reqwest::Url::parse(text).is_ok_and(|url| url.password().is_some_and(|p| !p.is_empty()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn literals_in_secret_fields_and_passwords_in_urls_are_found_and_masked() {
        let schema = json!({
            "type": "object",
            "$defs": {"key": {"type": "string", "x-secret": true}},
            "properties": {
                "api_key": {"$ref": "#/$defs/key"},
                "dsn": {"type": "string", "x-secret": true},
                "endpoints": {"type": "object", "additionalProperties": {
                    "type": "object", "properties": {"secret": {"type": "string", "x-secret": true}}}}
            }
        });
        let config = json!({
            "api_key": "sk-literal",
            "dsn": "secret://vault/secret/tenants/acme/pg#dsn",
            "base_url": "http://ann:pw@h.example/v1",
            "plain_url": "https://h.example/v1",
            "endpoints": {"erp": {"secret": "whsec_literal", "url": "https://h.example/in"}}
        });
        let pointers: Vec<String> = literal_credentials(&schema, &config)
            .into_iter()
            .map(|e| e.pointer)
            .collect();
        assert_eq!(pointers, ["/api_key", "/base_url", "/endpoints/erp/secret"]);
        assert_eq!(
            masked(&schema, &config),
            json!({
                "api_key": "***",
                "dsn": "secret://vault/secret/tenants/acme/pg#dsn",
                "base_url": "http://ann:***@h.example/v1",
                "plain_url": "https://h.example/v1",
                "endpoints": {"erp": {"secret": "***", "url": "https://h.example/in"}}
            })
        );
        assert!(literal_credentials(&schema, &json!({"dsn": "secret://env/X"})).is_empty());
    }
}
