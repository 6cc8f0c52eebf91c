//! A tenant admin's config history and secrets (issue 24, docs/adr/0043):
//! `GET /providers/{domain}/{name}/configs`, `POST /providers/{domain}/{name}/configs/rollback`,
//! `GET /secrets` and `PUT /secrets/{name}`. All of them take scope `admin` (or `*`) and act on
//! the caller's tenant only. Rollback lives under `configs/` because a provider's fourth path
//! segment is an action name, and an action may be called anything a descriptor declares; the
//! runtime refuses `configs` as an action name instead.
//!
//! No answer carries a secret's value: a version's values show `secret://` references as
//! written and a literal credential as `***`, a diff names a secret field as changed without
//! its values, and a secret's write answers its name, version and reference only.

use serde_json::{Map, Value, json};

use super::{ok_or_problem, ok_or_problem_inline, path_params, problem_response};

/// A tenant secret's name: one path segment of the tenant's Vault prefix, so `.`/`..` and `/`
/// can never lead out of it. What the runtime's check admits, as a pattern.
pub const SECRET_NAME_PATTERN: &str = "^[A-Za-z0-9_-][A-Za-z0-9._-]{0,127}$";

/// The longest secret value accepted, in characters (what JSON Schema's `maxLength` counts):
/// a password, a key or a DSN.
pub const MAX_SECRET_LENGTH: usize = 64 * 1024;

pub fn components() -> Map<String, Value> {
    let mut map = Map::new();
    map.insert(
        "ConfigDiffOp".into(),
        json!({
            "description": "One change against the previous version, at a JSON pointer into the config. A secret field (one the provider's schema marks x-secret or a credential's usual name) has `secret: true` and never `old` or `new`.",
            "type": "object", "required": ["op", "path"], "additionalProperties": false,
            "properties": {
                "op": {"type": "string", "enum": ["add", "remove", "replace"]},
                "path": {"type": "string"},
                "old": {"description": "The value before (replace, remove); literal credentials inside shown as ***."},
                "new": {"description": "The value after (add, replace); literal credentials inside shown as ***."},
                "secret": {"type": "boolean", "description": "Present, and true, only for a secret field. (Not `const: true`: openapi-python-client 0.29 generates invalid Python for a boolean const.)"}
            }
        }),
    );
    map.insert(
        "ConfigVersion".into(),
        json!({
            "type": "object", "additionalProperties": false,
            "required": ["version", "at", "actor", "diff", "note", "current", "values"],
            "properties": {
                "version": {"type": "integer", "minimum": 1},
                "at": {"type": "string", "format": "date-time"},
                "actor": {"type": ["string", "null"], "description": "Who saved it: the caller's subject (key:<id>, an OIDC subject), or null for versions saved before history was kept."},
                "diff": {"type": ["array", "null"], "items": {"$ref": "#/components/schemas/ConfigDiffOp"},
                         "description": "Against the version before it; null for versions saved before history was kept."},
                "note": {"type": ["string", "null"], "description": "E.g. `rollback to 3`."},
                "current": {"type": "boolean", "description": "The version the provider runs with for the tenant."},
                "values": {"type": "object", "description": "The config as saved: secret:// references as written, literal credentials as ***."}
            }
        }),
    );
    map.insert(
        "ConfigHistory".into(),
        json!({
            "type": "object", "additionalProperties": false, "required": ["provider", "kept", "versions"],
            "properties": {
                "provider": {"type": "string"},
                "kept": {"type": "integer", "minimum": 1, "description": "How many versions the operator keeps (config_versions_kept); older ones are pruned."},
                "versions": {"type": "array", "items": {"$ref": "#/components/schemas/ConfigVersion"}, "description": "Newest first."}
            }
        }),
    );
    map.insert(
        "RollbackRequest".into(),
        json!({
            "type": "object", "required": ["version"], "additionalProperties": false,
            "properties": {"version": {"type": "integer", "minimum": 1, "maximum": 9_007_199_254_740_991_i64}}
        }),
    );
    map.insert(
        "SecretWriteRequest".into(),
        json!({
            "type": "object", "required": ["value"], "additionalProperties": false,
            "properties": {"value": {"type": "string", "minLength": 1, "maxLength": MAX_SECRET_LENGTH,
                                     "description": "Written to Vault only; never stored by the platform nor shown again."}}
        }),
    );
    map.insert(
        "SecretInfo".into(),
        json!({
            "type": "object", "additionalProperties": false,
            "required": ["name", "version", "reference", "vault_reference", "updated_at"],
            "properties": {
                "name": {"type": "string", "pattern": SECRET_NAME_PATTERN},
                "version": {"type": "integer", "minimum": 1, "description": "How many times it was written through this API."},
                "reference": {"type": "string", "pattern": "^secret://vault/", "description": "What a config of this tenant writes to use it: secret://vault/<name>."},
                "vault_reference": {"type": "string", "pattern": "^secret://vault/", "description": "The same secret by its whole Vault path (secret://vault/<mount>/<path>#value), for config fields whose schema admits only that form."},
                "updated_at": {"type": "string", "format": "date-time"}
            }
        }),
    );
    map.insert(
        "SecretList".into(),
        json!({
            "type": "object", "additionalProperties": false, "required": ["secrets"],
            "properties": {"secrets": {"type": "array", "items": {"$ref": "#/components/schemas/SecretInfo"}}}
        }),
    );
    map
}

pub fn paths() -> Map<String, Value> {
    let mut paths = Map::new();
    paths.insert(
        "/providers/{domain}/{name}/configs".into(),
        json!({
            "parameters": path_params(),
            "get": {
                "operationId": "listConfigVersions",
                "summary": "The tenant's config versions of the provider, newest first, each with who saved it and its diff against the one before (scope admin).",
                "responses": ok_or_problem("ConfigHistory")
            }
        }),
    );
    let mut rollback =
        ok_or_problem_inline(json!({"$ref": "#/components/schemas/ConfigureResponse"}));
    rollback.insert(
        "404".into(),
        problem_response(
            "No such provider, or no such version: never saved, or pruned (config_version_not_found).",
        ),
    );
    paths.insert(
        "/providers/{domain}/{name}/configs/rollback".into(),
        json!({
            "parameters": path_params(),
            "post": {
                "operationId": "rollbackConfig",
                "summary": "Save an earlier version's values as a new version (note `rollback to N`) and swap it in like a configure (scope admin).",
                "requestBody": {"required": true, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/RollbackRequest"}}}},
                "responses": rollback
            }
        }),
    );
    paths.insert(
        "/secrets".into(),
        json!({"get": {
            "operationId": "listSecrets",
            "summary": "The tenant's secrets written through this API: names, versions and references, never values (scope admin).",
            "responses": ok_or_problem("SecretList")
        }}),
    );
    let mut write = ok_or_problem_inline(json!({"$ref": "#/components/schemas/SecretInfo"}));
    write.insert(
        "400".into(),
        problem_response("The name is not allowed (secret_name_invalid) or the body is malformed."),
    );
    write.insert(
        "409".into(),
        problem_response("This platform has no Vault for tenant secrets (conflict)."),
    );
    paths.insert(
        "/secrets/{name}".into(),
        json!({
            "parameters": [{"name": "name", "in": "path", "required": true,
                            "schema": {"type": "string", "pattern": SECRET_NAME_PATTERN}}],
            "put": {
                "operationId": "writeSecret",
                "summary": "Write or rotate a tenant secret in Vault under the tenant's prefix; every instance of the tenant whose config references it is restarted with the new value on every replica (scope admin).",
                "requestBody": {"required": true, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/SecretWriteRequest"}}}},
                "responses": write
            }
        }),
    );
    paths
}
