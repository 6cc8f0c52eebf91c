//! The platform operator's routes, `/providers/register` (docs/adr/0022): registering a remote
//! provider while the runtime serves. They take the operator's token
//! (`SWITCHYARD_OPERATOR_TOKEN`), not a tenant's API key, so they have a security scheme of their
//! own, and they answer what `provider-runtime/src/http/operator.rs` answers: every refusal with
//! its status and code, including 429 `rate_limited` once an address has guessed too often.

use serde_json::{Map, Value, json};

/// The operator's security scheme, by name in `components.securitySchemes`.
pub const SCHEME: &str = "operatorToken";

/// The scheme itself: a bearer token, but not a tenant's.
pub fn security_scheme() -> Value {
    json!({
        "type": "http", "scheme": "bearer",
        "description": "The platform operator's token: Authorization: Bearer <SWITCHYARD_OPERATOR_TOKEN>. \
                        A tenant's API key is refused (403 operator_only); wrong tokens are limited per \
                        client address (429 rate_limited with Retry-After)."
    })
}

/// What `foreign::descriptor` and `RemoteFactory::from_manifest` read from a manifest; anything
/// else in it is kept as sent and ignored. A manifest this schema accepts may still be refused
/// with 400 `manifest_invalid` for what no schema states (an action the domain does not define,
/// a domain without a contract and without actions, a reserved action name).
fn manifest() -> Value {
    let name = json!({"type": "string", "pattern": "^[a-z0-9_-]+$"});
    json!({
        "description": "A remote provider's manifest: the same JSON SWITCHYARD_REMOTE_PROVIDERS names at start-up.",
        "type": "object",
        "required": ["domain", "name", "version", "endpoint"],
        "properties": {
            "domain": name,
            "name": name,
            "version": {"type": "string"},
            "summary": {"type": "string"},
            "capabilities": {"type": "array", "items": {"type": "string"}},
            "config_schema": {"type": "object", "description": "The JSON Schema of a tenant's config; {\"type\": \"object\"} when left out."},
            "actions": {
                "type": "array",
                "description": "For a domain with a contract, the names of the actions served (all of them when left out); otherwise each action's descriptor.",
                "items": {"oneOf": [
                    {"type": "string"},
                    {"type": "object", "required": ["name"], "properties": {"name": {"type": "string"}}}
                ]}
            },
            "endpoint": {"type": "string", "pattern": "^https?://[^/?#]", "description": "The service's base URL, http:// or https:// with a host."},
            "health_path": {"type": "string", "pattern": "^/", "default": "/health"},
            "health_interval_ms": {"type": "integer", "minimum": 100, "default": 10000},
            "auth": {"oneOf": [
                {"type": "null"},
                {"type": "object", "required": ["type", "token"], "properties": {
                    "type": {"const": "bearer"},
                    "token": {"type": "string", "pattern": "^secret://", "description": "A secret reference (secret://env/NAME, secret://file/<path>, secret://vault/<mount>/<path>#<key>), never the token itself."}
                }}
            ]}
        }
    })
}

/// The operator's components, merged into the document's.
pub fn components() -> Map<String, Value> {
    let registration = json!({
        "type": "object", "additionalProperties": false,
        "required": ["provider", "version", "certification", "registered_at", "manifest"],
        "properties": {
            "provider": {"type": "string", "pattern": "^[a-z0-9_-]+/[a-z0-9_-]+$", "description": "domain/name"},
            "version": {"type": ["string", "null"]},
            "certification": {"type": "string", "description": "The conformance levels it passed, e.g. core or core+transactions."},
            "registered_at": {"type": "string"},
            "manifest": {"$ref": "#/components/schemas/ProviderManifest"}
        }
    });
    let mut map = Map::new();
    map.insert("ProviderManifest".into(), manifest());
    map.insert("Registration".into(), registration);
    map.insert(
        "RegistrationList".into(),
        json!({
            "type": "object", "additionalProperties": false, "required": ["registrations"],
            "properties": {"registrations": {"type": "array", "items": {"$ref": "#/components/schemas/Registration"}}}
        }),
    );
    map.insert(
        "Unregistered".into(),
        json!({
            "type": "object", "additionalProperties": false,
            "required": ["provider", "removed", "instances_stopped"],
            "properties": {
                "provider": {"type": "string"},
                "removed": {"const": true},
                "instances_stopped": {"type": "integer", "minimum": 0, "description": "Tenants' instances stopped (each drained first)."}
            }
        }),
    );
    map
}

/// `/providers/register` and `/providers/register/{domain}/{name}`, by path.
pub fn paths() -> Map<String, Value> {
    let security = json!([{SCHEME: []}]);
    let name = json!({"type": "string", "pattern": "^[a-z0-9_-]+$"});
    let path_params = json!([
        {"name": "domain", "in": "path", "required": true, "schema": name},
        {"name": "name", "in": "path", "required": true, "schema": name}
    ]);
    let mut paths = Map::new();
    paths.insert(
        "/providers/register".into(),
        json!({
            "get": {
                "operationId": "listRegistrations", "tags": ["operator"], "security": security,
                "summary": "Every remote provider an operator registered (the operator's token).",
                "responses": responses("200", "The registrations.", "RegistrationList", &[])
            },
            "post": {
                "operationId": "registerProvider", "tags": ["operator"], "security": security,
                "summary": "Register a remote provider while serving: listed once its domain's core conformance checks pass against it (the operator's token).",
                "requestBody": {"required": true, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ProviderManifest"}}}},
                "responses": responses("201", "Registered and certified.", "Registration", &[
                    ("400", "A manifest the runtime cannot use (manifest_invalid), or a body that is not JSON (request_invalid)."),
                    ("409", "A provider of that domain and name is already registered (conflict)."),
                    ("415", "The manifest is not sent as application/json (unsupported_media_type)."),
                    ("422", "The provider failed core conformance checks, each named in errors (conformance_failed)."),
                ])
            }
        }),
    );
    paths.insert(
        "/providers/register/{domain}/{name}".into(),
        json!({
            "parameters": path_params,
            "get": {
                "operationId": "getRegistration", "tags": ["operator"], "security": security,
                "summary": "One registration (the operator's token).",
                "responses": responses("200", "The registration.", "Registration", &[
                    ("404", "Not registered (provider_not_found)."),
                ])
            },
            "delete": {
                "operationId": "unregisterProvider", "tags": ["operator"], "security": security,
                "summary": "Unlist a registered provider and stop every tenant's instance of it (the operator's token).",
                "responses": responses("200", "Removed.", "Unregistered", &[
                    ("404", "No such provider (provider_not_found)."),
                    ("409", "A provider of the process's own configuration, not registered by an operator (conflict)."),
                ])
            }
        }),
    );
    paths
}

/// The success answer, the refusals every operator route shares and `more`.
fn responses(status: &str, description: &str, schema: &str, more: &[(&str, &str)]) -> Value {
    let mut map = Map::new();
    map.insert(
        status.into(),
        json!({"description": description, "content": {"application/json": {"schema": {"$ref": format!("#/components/schemas/{schema}")}}}}),
    );
    let shared = [
        ("401", "No operator token (unauthenticated)."),
        (
            "403",
            "Not the operator's token: a tenant's credentials, a wrong token, or a runtime without SWITCHYARD_OPERATOR_TOKEN (operator_only).",
        ),
        (
            "429",
            "Too many wrong tokens from this address (rate_limited); Retry-After says when to come back.",
        ),
    ];
    for (code, why) in more.iter().chain(&shared) {
        map.insert((*code).into(), super::problem_response(why));
    }
    map["429"]["headers"] = json!({"Retry-After": {
        "description": "Seconds until this address may try again.",
        "schema": {"type": "integer", "minimum": 1}
    }});
    map.insert(
        "default".into(),
        json!({"$ref": "#/components/responses/Problem"}),
    );
    Value::Object(map)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::Compiled;

    /// The example manifest (examples/remote) is one the document accepts; a plaintext token,
    /// an endpoint without a scheme or a name with capitals is not.
    #[test]
    fn the_manifest_schema_takes_the_example_and_refuses_what_the_runtime_refuses() {
        let schema = Compiled::new(
            &crate::openapi::component_schema("ProviderManifest"),
            "ProviderManifest",
        )
        .unwrap();
        let example: Value =
            serde_json::from_str(include_str!("../../../examples/remote/manifest.json")).unwrap();
        assert_eq!(schema.check(&example), vec![]);
        for (field, value) in [
            ("/auth/token", json!("tok-plaintext")),
            ("/endpoint", json!("127.0.0.1:9400")),
            ("/name", json!("Example")),
            ("/health_interval_ms", json!(99)),
        ] {
            let mut manifest = example.clone();
            let mut at = &mut manifest;
            for part in field.split('/').skip(1) {
                at = &mut at[part];
            }
            *at = value;
            assert!(!schema.check(&manifest).is_empty(), "{field}: {manifest}");
        }
    }

    #[test]
    fn every_operator_operation_uses_the_operator_scheme_and_declares_429() {
        for (path, item) in paths() {
            for (method, operation) in item.as_object().unwrap() {
                if method == "parameters" {
                    continue;
                }
                assert_eq!(
                    operation["security"],
                    json!([{SCHEME: []}]),
                    "{method} {path}"
                );
                assert!(
                    operation["responses"]["429"]["headers"]["Retry-After"].is_object(),
                    "{method} {path}"
                );
            }
        }
    }
}
