//! The OpenAPI 3.1 document of the whole HTTP surface, built from provider and service
//! descriptors.
//!
//! The runtime serves what this function returns, and `contracts/openapi.json` is a snapshot of
//! it for the built-in providers; a test fails when the two drift, so the published file is
//! always what the code serves.

mod admin;
mod audit_log;
mod decisions;
pub mod history;
mod inbound;
mod openai;
mod operator;

use serde_json::{Map, Value, json};

use crate::descriptor::{ActionDescriptor, ProviderDescriptor, ServiceDescriptor};
use crate::schema::Compiled;

/// Major.minor of the HTTP contract. Additive changes bump minor; anything else bumps major.
pub const CONTRACT_VERSION: &str = "1.9.0";

/// Schemas shared by every route, keyed by component name. Some refer to others (an
/// `InvokeResponse`'s `meta` is a `ResponseMeta`), always by their whole name: client generators
/// follow `#/components/schemas/<name>` and nothing deeper. To compile one alone, take
/// [`component_schema`].
pub fn components() -> Map<String, Value> {
    let mut components: Map<String, Value> =
        serde_json::from_str(include_str!("../schemas/components.json"))
            .expect("contracts/schemas/components.json is valid JSON");
    components.extend(key_components());
    components.extend(operator::components());
    components.extend(admin::components());
    components.extend(audit_log::components());
    components.extend(history::components());
    components.insert("OpenAiError".into(), openai::error_schema());
    components
}

/// The component `name` as a schema that compiles on its own: a root holding every component, so
/// that its references to other components resolve as they do in the document.
pub fn component_schema(name: &str) -> Value {
    json!({
        "$ref": format!("#/components/schemas/{name}"),
        "components": {"schemas": components()}
    })
}

/// What [`crate::Scopes::parse`] accepts, as a regular expression: pieces split at `,` and
/// ` `, each trimmed of (Unicode) whitespace, empty pieces skipped, at least one scope. Without
/// it the document promised any string, and the gateway refused most of them.
fn scopes_pattern() -> String {
    // Rust's `str::trim` whitespace, the space excepted (it separates pieces).
    const TRIMMED: &str = "\t\n\u{b}\u{c}\r\u{85}\u{a0}\u{1680}\u{2000}-\u{200a}\u{2028}\u{2029}\u{202f}\u{205f}\u{3000}";
    let scope = "(\\*|read|admin|audit|invoke(:[a-z0-9_-]+(/[a-z0-9_-]+)?)?)";
    let w = format!("[{TRIMMED}]*");
    format!("^({w}[, ])*{w}{scope}{w}([, ]{w}({scope}{w})?)*$")
}

/// The answers of `/keys`: a key's id, scopes and times, never its secret or hash (except the
/// new key's plaintext, in the answer that creates it).
fn key_components() -> Map<String, Value> {
    let time = json!({"type": ["string", "null"], "format": "date-time"});
    let mut map = Map::new();
    map.insert(
        "KeyList".into(),
        json!({
            "type": "object", "required": ["keys"], "additionalProperties": false,
            "properties": {"keys": {"type": "array", "items": {
                "type": "object", "additionalProperties": false,
                "required": ["id", "scopes", "created_at", "last_used_at", "revoked_at"],
                "properties": {
                    "id": {"type": "string", "pattern": "^[0-9a-f]{16}$"},
                    "scopes": {"type": "string", "description": "Comma-separated scopes."},
                    "created_at": {"type": "string", "format": "date-time"},
                    "last_used_at": time.clone(),
                    "revoked_at": time
                }
            }}}
        }),
    );
    map.insert("CreateKeyRequest".into(), json!({
        "type": "object", "required": ["scopes"], "additionalProperties": false,
        "properties": {"scopes": {"type": "string", "pattern": scopes_pattern(),
                                  "description": "*, read, admin, audit, invoke, invoke:<domain> or invoke:<domain>/<name>, comma- or space-separated; at least one."}}
    }));
    map.insert("CreatedKey".into(), json!({
        "type": "object", "required": ["id", "key", "scopes"], "additionalProperties": false,
        "properties": {
            "id": {"type": "string"},
            "key": {"type": "string", "pattern": "^sy_", "description": "The key itself, in this answer only."},
            "scopes": {"type": "string"}
        }
    }));
    map.insert(
        "RevokedKey".into(),
        json!({
            "type": "object", "required": ["id", "revoked"], "additionalProperties": false,
            "properties": {"id": {"type": "string"}, "revoked": {"const": true}}
        }),
    );
    map
}

pub fn document(providers: &[ProviderDescriptor], services: &[ServiceDescriptor]) -> Value {
    let mut paths = Map::new();
    paths.insert("/openapi.json".into(), json!({"get": {
        "operationId": "getOpenApi", "summary": "This document.", "security": [],
        "responses": {"200": {"description": "The OpenAPI document.", "content": {"application/json": {"schema": {"type": "object"}}}}}
    }}));
    paths.insert("/providers".into(), json!({"get": {
        "operationId": "listProviders", "summary": "The catalog: every provider with its status for the caller's tenant.",
        "responses": ok_or_problem("Catalog")
    }}));
    paths.insert("/providers/{domain}/{name}".into(), json!({
        "parameters": path_params(),
        "get": {"operationId": "describeProvider", "summary": "A provider's descriptor, status and the tenant's current config.",
                "responses": ok_or_problem("ProviderDetail")}
    }));
    paths.insert("/providers/{domain}/{name}/health".into(), json!({
        "parameters": path_params(),
        "get": {"operationId": "providerHealth", "summary": "Health with dependencies.", "responses": ok_or_problem("ProviderHealth")}
    }));
    paths.insert("/providers/{domain}/{name}/metrics".into(), json!({
        "parameters": path_params(),
        "get": {"operationId": "providerMetrics",
                "summary": "The provider's metrics for the caller's tenant only: OpenMetrics when Accept asks for it, else Prometheus text 0.0.4 (docs/observability.md).",
                "responses": {"200": {"description": "Calls, errors by code, durations, circuit and bulkhead of the tenant's instance.",
                                      "content": {"application/openmetrics-text": {"schema": {"type": "string"}},
                                                  "text/plain": {"schema": {"type": "string"}}}},
                              "default": {"$ref": "#/components/responses/Problem"}}}
    }));
    paths.insert("/providers/{domain}/{name}/configure".into(), json!({
        "parameters": path_params(),
        "post": {"operationId": "configureProvider", "summary": "Set the tenant's config; a new version, swapped in without dropping calls. Each provider's own configure operation publishes its config schema.",
                 "requestBody": body_ref("ConfigureRequest"), "responses": ok_or_problem("ConfigureResponse")}
    }));
    for verb in ["start", "stop"] {
        paths.insert(format!("/providers/{{domain}}/{{name}}/{verb}"), json!({
            "parameters": path_params(),
            "post": {"operationId": format!("{verb}Provider"), "summary": format!("Lifecycle: {verb} the provider for the tenant."),
                     "responses": ok_or_problem("LifecycleResponse")}
        }));
    }
    paths.insert("/policies/bundle".into(), json!({"get": {
        "operationId": "getPolicyBundle", "summary": "The running OPA bundle, byte for byte as loaded; other tenants' overrides, when it holds any, left out with the signature (scope audit).",
        "responses": {"200": {"description": "The bundle; its revision in X-Bundle-Revision.",
                              "content": {"application/gzip": {"schema": {"type": "string", "format": "binary"}}}},
                      "default": {"$ref": "#/components/responses/Problem"}}
    }}));
    paths.insert("/policies/revision".into(), json!({"get": {
        "operationId": "getPolicyRevision", "summary": "The running bundle's revision (scope audit).",
        "responses": ok_or_problem("PolicyRevision")
    }}));
    paths.insert("/policies/decisions".into(), json!({"get": {
        "operationId": "listPolicyDecisions",
        "summary": "The caller's tenant's policy decisions, newest first (scope audit).",
        "parameters": [
            {"name": "subject", "in": "query", "schema": {"type": "string"}},
            {"name": "result", "in": "query", "schema": {"type": "string", "enum": ["allow", "deny"]}},
            {"name": "from", "in": "query", "schema": {"type": "string", "format": "date-time"}},
            {"name": "to", "in": "query", "schema": {"type": "string", "format": "date-time"}},
            {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 500, "default": 100}},
            {"name": "cursor", "in": "query", "schema": {"type": "string"}}
        ],
        "responses": ok_or_problem("DecisionPage")
    }}));
    paths.insert("/keys".into(), json!({
        "get": {"operationId": "listKeys", "summary": "The tenant's API keys, newest first (scope *).",
                "responses": ok_or_problem("KeyList")},
        "post": {"operationId": "createKey", "summary": "A new API key of the tenant; its plaintext is in this answer only (scope *).",
                 "requestBody": body_ref("CreateKeyRequest"), "responses": ok_or_problem("CreatedKey")}
    }));
    paths.insert("/keys/{id}/revoke".into(), json!({
        "parameters": [{"name": "id", "in": "path", "required": true, "schema": {"type": "string"}}],
        "post": {"operationId": "revokeKey", "summary": "Revoke one of the tenant's keys; it stops working within the gateway's key cache TTL (10 s) (scope *).",
                 "responses": ok_or_problem("RevokedKey")}
    }));
    paths.extend(operator::paths());
    paths.extend(admin::paths());
    paths.extend(audit_log::paths());
    paths.extend(decisions::paths());
    paths.extend(history::paths());
    paths.extend(inbound::paths(providers));
    paths.extend(openai::paths(providers));
    for provider in providers {
        paths.insert(
            format!("/providers/{}/{}/configure", provider.domain, provider.name),
            configure_operation(provider),
        );
        for action in &provider.actions {
            let path = format!(
                "/providers/{}/{}/{}",
                provider.domain, provider.name, action.name
            );
            let id = format!("{}_{}_{}", provider.domain, provider.name, action.name);
            let tag = format!("{}/{}", provider.domain, provider.name);
            paths.insert(path, invoke_operation(&id, &tag, action));
        }
    }
    for service in services {
        for action in &service.actions {
            let path = format!("/services/{}/{}", service.name, action.name);
            let id = format!("service_{}_{}", service.name, action.name);
            let tag = format!("services/{}", service.name);
            paths.insert(path, invoke_operation(&id, &tag, action));
        }
    }
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "Switchyard provider API",
            "version": CONTRACT_VERSION,
            "description": "Every capability as a provider behind one contract: /providers/{domain}/{name}/{action}. Errors are RFC 9457 problem+json with a stable code."
        },
        "security": [{"apiKey": []}],
        "paths": paths,
        "components": {
            "schemas": components(),
            "securitySchemes": {
                "apiKey": {"type": "http", "scheme": "bearer", "description": "A tenant-scoped API key: Authorization: Bearer sy_..."},
                operator::SCHEME: operator::security_scheme(),
                admin::SCHEME: admin::security_scheme()
            },
            "responses": {"Problem": problem_response("An error, as RFC 9457 problem details.")}
        }
    })
}

/// `POST .../configure` of one provider, its config schema in the body: the templated
/// `configureProvider` can only say "an object", while the runtime refuses every config its
/// provider's schema refuses (400 `config_invalid`). A concrete path is matched before the
/// templated one, so both describe the same route.
fn configure_operation(provider: &ProviderDescriptor) -> Value {
    let id = format!("{}_{}_configure", provider.domain, provider.name);
    let tag = format!("{}/{}", provider.domain, provider.name);
    let request = json!({
        "type": "object", "required": ["config"], "additionalProperties": false,
        "properties": {"config": provider.config_schema}
    });
    let mut responses =
        ok_or_problem_inline(json!({"$ref": "#/components/schemas/ConfigureResponse"}));
    responses.insert(
        "400".into(),
        problem_response("The config violates the provider's config schema (config_invalid)."),
    );
    json!({"post": {
        "operationId": id,
        "summary": format!("Set the tenant's config of {tag}; a new version, swapped in without dropping calls."),
        "tags": [tag],
        "requestBody": {"required": true, "content": {"application/json": {"schema": request}}},
        "responses": responses
    }})
}

/// `POST` of one action: the invoke envelope around the action's params, its result in `data`.
///
/// The runtime reads a missing body as `{}` and missing params as `{}` (`InvokeRequest`), so
/// both are optional exactly when the action's params accept an empty object; otherwise
/// leaving them out is refused like any other params the schema refuses.
fn invoke_operation(operation_id: &str, tag: &str, action: &ActionDescriptor) -> Value {
    let params_optional = Compiled::new(&action.params, &action.name)
        .is_ok_and(|params| params.check(&json!({})).is_empty());
    let mut request = json!({
        "type": "object", "additionalProperties": false,
        "properties": {"params": action.params, "metadata": {"type": "object"}}
    });
    if !params_optional {
        request["required"] = json!(["params"]);
    }
    let response = json!({
        "type": "object", "required": ["data", "meta"], "additionalProperties": false,
        "properties": {"data": action.result, "meta": {"$ref": "#/components/schemas/ResponseMeta"}}
    });
    let mut responses = ok_or_problem_inline(response);
    responses.insert(
        "400".into(),
        problem_response("Params violate the action's schema (params_invalid)."),
    );
    json!({"post": {
        "operationId": operation_id,
        "summary": action.summary,
        "tags": [tag],
        "parameters": [
            {"name": "Idempotency-Key", "in": "header", "required": false, "schema": idempotency_key_schema(),
             "description": "A POST sent again with the same key replays the first answer instead of running twice."},
            {"name": "X-Tenant-Id", "in": "header", "required": false, "schema": {"type": "string"},
             "description": "Must equal the credentials' tenant when given."}
        ],
        "requestBody": {"required": !params_optional, "content": {"application/json": {"schema": request}}},
        "responses": responses
    }})
}

/// What the gateway accepts as an `Idempotency-Key`; any other value is refused with 400
/// `request_invalid` before the request runs, so the document says so instead of promising any
/// string. Public so that the gateway's tests hold its parser to it.
pub fn idempotency_key_schema() -> Value {
    json!({"type": "string", "minLength": 1, "maxLength": 255, "pattern": "^[!-~]+$",
           "description": "1 to 255 visible ASCII characters."})
}

fn path_params() -> Value {
    json!([
        {"name": "domain", "in": "path", "required": true, "schema": {"type": "string"}},
        {"name": "name", "in": "path", "required": true, "schema": {"type": "string"}}
    ])
}

fn body_ref(component: &str) -> Value {
    json!({"required": true, "content": {"application/json": {"schema": {"$ref": format!("#/components/schemas/{component}")}}}})
}

fn ok_or_problem(component: &str) -> Value {
    Value::Object(ok_or_problem_inline(
        json!({"$ref": format!("#/components/schemas/{component}")}),
    ))
}

fn ok_or_problem_inline(schema: Value) -> Map<String, Value> {
    let mut responses = Map::new();
    responses.insert(
        "200".into(),
        json!({"description": "Success.", "content": {"application/json": {"schema": schema}}}),
    );
    responses.insert(
        "default".into(),
        json!({"$ref": "#/components/responses/Problem"}),
    );
    responses
}

fn problem_response(description: &str) -> Value {
    json!({"description": description, "content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}})
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::problem::ErrorCode;

    #[test]
    fn published_error_codes_equal_the_code_enum() {
        let published = components()["Problem"]["properties"]["code"]["enum"].clone();
        let ours: Vec<&str> = ErrorCode::ALL.iter().map(|c| c.as_str()).collect();
        assert_eq!(published, serde_json::json!(ours));
    }

    /// A document with every domain's and service's actions, as the runtime builds it.
    fn full_document() -> Value {
        let providers: Vec<ProviderDescriptor> = crate::domains::names()
            .map(|domain| ProviderDescriptor {
                domain: domain.into(),
                name: "any".into(),
                version: "1".into(),
                summary: String::new(),
                capabilities: vec![],
                config_schema: json!({"type": "object"}),
                actions: crate::domains::actions(domain),
            })
            .collect();
        let services: Vec<ServiceDescriptor> = crate::domains::service_names()
            .map(|name| ServiceDescriptor {
                name: name.into(),
                version: "1".into(),
                summary: String::new(),
                actions: crate::domains::service_actions(name),
            })
            .collect();
        document(&providers, &services)
    }

    fn refs<'a>(value: &'a Value, found: &mut Vec<&'a str>) {
        match value {
            Value::Object(map) => {
                if let Some(Value::String(target)) = map.get("$ref") {
                    found.push(target);
                }
                map.values().for_each(|v| refs(v, found));
            }
            Value::Array(items) => items.iter().for_each(|v| refs(v, found)),
            _ => {}
        }
    }

    /// Client generators resolve `#/components/<kind>/<name>` and nothing deeper (a pointer
    /// into another schema's properties loses the response model), so every reference names a
    /// whole component that exists.
    #[test]
    fn every_ref_names_a_whole_component() {
        let doc = full_document();
        let mut found = Vec::new();
        refs(&doc, &mut found);
        assert!(found.len() > 100, "{} refs", found.len());
        for target in found {
            let parts: Vec<&str> = target.split('/').collect();
            assert!(
                matches!(parts[..], ["#", "components", "schemas" | "responses", _]),
                "{target} points inside a component"
            );
            assert!(
                doc["components"][parts[2]][parts[3]].is_object(),
                "{target} names no component"
            );
        }
    }

    #[test]
    fn a_component_compiles_alone_with_the_components_it_refers_to() {
        let schema = Compiled::new(&component_schema("InvokeResponse"), "InvokeResponse").unwrap();
        let meta = json!({"request_id": "r", "provider": "cache/memory", "action": "get", "duration_ms": 0.5});
        assert_eq!(schema.check(&json!({"data": null, "meta": meta})), vec![]);
        let errors = schema.check(&json!({"data": null, "meta": {"request_id": "r"}}));
        assert!(
            errors.iter().any(|e| e.pointer == "/meta/provider"),
            "{errors:?}"
        );
    }

    /// The runtime reads a missing body and missing params as `{}`: the document says so where
    /// the params accept `{}`, and keeps both required where they do not.
    #[test]
    fn the_body_is_optional_exactly_where_empty_params_are_valid() {
        let doc = full_document();
        let operation = |path: &str| doc["paths"][path]["post"].clone();
        let list = operation("/providers/storage/any/list");
        assert_eq!(list["requestBody"]["required"], json!(false));
        let schema = &list["requestBody"]["content"]["application/json"]["schema"];
        assert!(schema.get("required").is_none(), "{schema}");
        let get = operation("/providers/cache/any/get");
        assert_eq!(get["requestBody"]["required"], json!(true));
        let schema = &get["requestBody"]["content"]["application/json"]["schema"];
        assert_eq!(schema["required"], json!(["params"]));
    }

    /// The published scopes pattern refuses exactly what the gateway's parser refuses.
    #[test]
    fn the_scopes_pattern_accepts_exactly_what_scopes_parse_accepts() {
        let schema = Compiled::new(&components()["CreateKeyRequest"], "CreateKeyRequest").unwrap();
        let samples = [
            "*",
            "read,admin",
            " read , invoke:db/sqlite ",
            "read admin",
            "read,,audit",
            "\tread\u{a0},",
            "invoke:cache",
            "",
            " ",
            ",",
            "read\tadmin",
            "invoke:",
            "invoke:a/b/c",
            "READ",
            "invoke:x/",
            "invoke:db/Sqlite",
            "audit\u{3000}",
            "rea d",
            "*,*",
            "invoke:a_b-1/c",
        ];
        for raw in samples {
            let published = schema.check(&json!({"scopes": raw})).is_empty();
            let parsed = crate::Scopes::parse(raw).is_ok();
            assert_eq!(
                published, parsed,
                "{raw:?}: published {published}, parsed {parsed}"
            );
        }
    }

    #[test]
    fn a_problem_validates_against_the_published_schema() {
        let schema = crate::schema::Compiled::new(&components()["Problem"], "Problem").unwrap();
        let problem = crate::Problem::new(ErrorCode::ParamsInvalid, "x")
            .with_request_id("r")
            .with_errors(vec![crate::FieldError {
                pointer: "/sql".into(),
                detail: "required".into(),
            }]);
        assert_eq!(
            schema.check(&serde_json::to_value(problem).unwrap()),
            vec![]
        );
    }
}
