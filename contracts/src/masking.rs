//! What is never written down: credentials in a policy input, a config or an audit record.
//! The gateway's decision log and the platform store's audit log mask with the same list, so a
//! field hidden from one is hidden from the other.

use serde_json::{Map, Value, json};

/// Credential fields, masked in every decision log (whatever the gateway's `masked_fields`
/// says) and in every audit record: a configure body is policy input too, so this covers every field a provider's config schema marks
/// `"x-secret"` (`api_key`, `dsn`, a webhook's `secret`) and the usual names of credentials
/// elsewhere. A URL's password is masked in any field.
pub const SECRET_FIELDS: &[&str] = &[
    "password",
    "passwd",
    "passphrase",
    "secret",
    "client_secret",
    "webhook_secret",
    "secret_access_key",
    "secret_key",
    "token",
    "access_token",
    "refresh_token",
    "id_token",
    "api_key",
    "apikey",
    "authorization",
    "cookie",
    "private_key",
    "credentials",
    "dsn",
    "connection_string",
];

/// Replaces the values of masked fields, and the password of any URL, at any depth, before
/// the input is stored.
pub fn mask(value: Value, masked: &[String]) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.into_iter()
                .map(|(k, v)| {
                    // Compared in place: lowercasing every key of every input allocated.
                    if masked.iter().any(|m| m.eq_ignore_ascii_case(&k)) {
                        (k, json!("***"))
                    } else {
                        (k, mask(v, masked))
                    }
                })
                .collect::<Map<String, Value>>(),
        ),
        Value::Array(items) => Value::Array(items.into_iter().map(|v| mask(v, masked)).collect()),
        Value::String(text) if text.contains('@') => Value::String(without_password(text)),
        other => other,
    }
}

/// `text` with the password of the URL it is replaced by `***` (a DSN, a base URL with
/// `user:password@`); anything else unchanged. Only strings with an `@` are parsed.
fn without_password(text: String) -> String {
    match url::Url::parse(&text) {
        Ok(mut url) if url.password().is_some_and(|p| !p.is_empty()) => {
            match url.set_password(Some("***")) {
                Ok(()) => url.into(),
                Err(()) => "***".to_owned(),
            }
        }
        _ => text,
    }
}

/// [`mask`] with [`SECRET_FIELDS`] alone: what an audit record or a config diff may show.
pub fn mask_secrets(value: Value) -> Value {
    let fields: Vec<String> = SECRET_FIELDS.iter().map(|f| (*f).to_owned()).collect();
    mask(value, &fields)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_fields_and_url_passwords_are_hidden_at_any_depth() {
        let config = json!({"dsn": "postgres://u:pw@h/db", "nested": [{"Password": "p"}],
                            "base_url": "http://ann:pw2@h.example/v1", "note": "mail ann@h.example"});
        assert_eq!(
            mask_secrets(config),
            json!({"dsn": "***", "nested": [{"Password": "***"}],
                   "base_url": "http://ann:***@h.example/v1", "note": "mail ann@h.example"})
        );
    }
}
