//! Spec, check and discover: what a tenant admin sees before the first sync.

use serde_json::{Value, json};
use switchyard_spi::ErrorCode;

use super::{connect, connected, source};
use crate::Subject;

/// Words that name a credential in a config property; such a property must be `x-secret`,
/// so that only a `secret://` reference is accepted there and it is never shown back. A name
/// ending `_field` (which record field) or `_url` (where a token is fetched) names none.
const CREDENTIAL_WORDS: [&str; 5] = ["secret", "token", "password", "api_key", "private_key"];

pub async fn the_spec_publishes_a_config_schema_with_secret_credentials(s: &Subject) {
    let name = s.name();
    let descriptor = s.factory.descriptor();
    let schema = &descriptor.config_schema;
    assert_eq!(schema["type"], "object", "{name}: {schema}");
    let mut credentials = Vec::new();
    collect_credentials(schema, "", &mut credentials);
    for (pointer, property) in &credentials {
        assert_eq!(
            property["x-secret"], true,
            "{name}: the credential {pointer} is not marked x-secret: {property}"
        );
    }
    for action in ["discover", "check", "sync", "state", "reset"] {
        assert!(
            descriptor.action(action).is_some(),
            "{name} serves sync but not {action}"
        );
    }
}

/// Every property (at any depth) whose name says it holds a credential.
fn collect_credentials<'a>(schema: &'a Value, at: &str, found: &mut Vec<(String, &'a Value)>) {
    match schema {
        Value::Object(map) => {
            if let Some(Value::Object(properties)) = map.get("properties") {
                for (key, property) in properties {
                    let pointer = format!("{at}/{key}");
                    let lower = key.to_ascii_lowercase();
                    let is_credential = CREDENTIAL_WORDS.iter().any(|w| lower.contains(w))
                        && !lower.ends_with("_field")
                        && !lower.ends_with("_url")
                        && property.get("type") != Some(&json!("object"));
                    if is_credential {
                        found.push((pointer.clone(), property));
                    }
                    collect_credentials(property, &pointer, found);
                }
            }
            for (key, value) in map {
                if key != "properties" {
                    collect_credentials(value, at, found);
                }
            }
        }
        Value::Array(items) => {
            for item in items {
                collect_credentials(item, at, found);
            }
        }
        _ => {}
    }
}

pub async fn check_passes_with_valid_credentials(s: &Subject) {
    let tenant = connected(s, "acme").await;
    let answer = tenant.ok("check", json!({})).await;
    assert_eq!(answer["ok"], true, "{}: {answer}", s.name());
}

pub async fn check_with_refused_credentials_is_a_config_error_that_names_no_secret(s: &Subject) {
    let name = s.name();
    let source = source(s);
    let refused = source.refused_config();
    let tenant = connect(s, "acme", refused.clone()).await;
    let err = tenant.err("check", json!({})).await;
    assert_eq!(
        err.code,
        ErrorCode::UpstreamCredentialsInvalid,
        "{name}: {err:?}"
    );
    assert!(
        !err.retryable,
        "{name}: a refused credential is not transient"
    );
    let text = format!("{err:?}");
    for secret in secrets_in(&refused) {
        assert!(
            !text.contains(&secret),
            "{name}: the error shows a credential of the config: {text}"
        );
    }
}

/// The string values of `config` long enough to be a credential (a URL or a token), which no
/// error may quote.
fn secrets_in(config: &Value) -> Vec<String> {
    let mut found = Vec::new();
    let mut stack = vec![config];
    while let Some(value) = stack.pop() {
        match value {
            Value::Object(map) => {
                for (key, value) in map {
                    let lower = key.to_ascii_lowercase();
                    if let Value::String(text) = value
                        && CREDENTIAL_WORDS.iter().any(|w| lower.contains(w))
                        && text.len() >= 8
                    {
                        found.push(text.clone());
                    }
                    stack.push(value);
                }
            }
            Value::Array(items) => stack.extend(items),
            _ => {}
        }
    }
    found
}

pub async fn discover_lists_the_stream_with_its_key_cursor_and_fields(s: &Subject) {
    let name = s.name();
    let source = source(s);
    let tenant = connected(s, "acme").await;
    let answer = tenant.ok("discover", json!({})).await;
    let stream = answer["streams"]
        .as_array()
        .expect("streams")
        .iter()
        .find(|st| st["name"] == source.stream())
        .unwrap_or_else(|| panic!("{name}: discover lacks {}: {answer}", source.stream()));
    let key = stream["primary_key"].as_str().expect("primary_key");
    let fields: Vec<&str> = stream["fields"]
        .as_array()
        .expect("fields")
        .iter()
        .filter_map(|f| f["name"].as_str())
        .collect();
    assert!(
        fields.contains(&key),
        "{name}: the primary key {key} is not among the fields {fields:?}"
    );
    if let Some(cursor) = stream["cursor_field"].as_str() {
        assert!(
            fields.contains(&cursor),
            "{name}: the cursor field {cursor} is not among the fields {fields:?}"
        );
        assert!(
            stream["modes"]
                .as_array()
                .expect("modes")
                .contains(&json!("incremental")),
            "{name}: a stream with a cursor offers incremental: {stream}"
        );
    }
}
