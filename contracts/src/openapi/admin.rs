//! The platform operator's plane, `/admin/*` (docs/adr/0040): tenants' lifecycle, limits,
//! policy data and usage. It takes an operator key (`syop_…`, made by `switchyard operator
//! create-key`), never a tenant's key, so it has a security scheme of its own; the answers are
//! what `gateway/src/admin` answers.

use serde_json::{Map, Value, json};

/// The operator key's security scheme, by name in `components.securitySchemes`.
pub const SCHEME: &str = "operatorKey";

pub fn security_scheme() -> Value {
    json!({
        "type": "http", "scheme": "bearer",
        "description": "A platform operator's key: Authorization: Bearer syop_... (switchyard operator create-key). \
                        A tenant's key, whatever its scopes, is refused with 403 operator_only."
    })
}

pub fn components() -> Map<String, Value> {
    let status = json!({"type": "string", "enum": ["active", "suspended", "deleting"]});
    let tenant = json!({
        "type": "object", "required": ["id", "status", "created_at"],
        "properties": {
            "id": {"type": "string"},
            "status": status,
            "created_at": {"type": "string"},
            "status_changed_at": {"type": ["string", "null"]},
            "delete_after": {"type": ["string", "null"], "description": "When a tenant being deleted is purged (RFC 3339)."}
        }
    });
    let count = json!({"type": "integer", "minimum": 1});
    let limits = json!({
        "type": "object", "additionalProperties": false,
        "description": "What the operator set for one tenant; a field left out is the operator's default.",
        "properties": {
            "rate_limit": {"type": "object", "additionalProperties": false,
                           "required": ["requests", "per_seconds", "burst"],
                           "properties": {"requests": count, "per_seconds": count, "burst": count}},
            "ai_tokens_per_day": count,
            "decision_retention_days": count,
            "max_api_keys": count
        }
    });
    let name = json!({"type": "string", "pattern": "^[A-Za-z0-9_*-]{1,64}$"});
    let policy = json!({
        "type": "object", "additionalProperties": false,
        "description": "The tenant's part of data.switchyard.tenants (policies/README.md); {} removes it.",
        "properties": {
            "roles": {"type": "object", "additionalProperties": {"type": "array", "items": {
                "type": "object", "additionalProperties": false,
                "required": ["operation", "domain", "provider", "action"],
                "properties": {
                    "operation": {"enum": ["*", "read", "admin", "invoke", "audit", "keys"]},
                    "domain": name, "provider": name, "action": name,
                    "warehouses": {"type": "array", "items": {"type": "string"}}
                }
            }}},
            "deny_actions": {"type": "array", "items": {"type": "string", "pattern": "^[A-Za-z0-9_*-]+/[A-Za-z0-9_*-]+/[A-Za-z0-9_*-]+$"}},
            "ai": {"type": "object", "additionalProperties": false, "properties": {
                "deny_models": {"type": "array", "items": {"type": "string"}},
                "max_estimated_tokens": {"type": "integer", "minimum": 0}
            }}
        }
    });
    let integer = json!({"type": "integer"});
    let stored = json!({
        "type": "object",
        "properties": {"api_keys": integer, "config_versions": integer, "idempotency_bytes": integer,
                       "decisions": integer, "audit_records": integer}
    });
    let mut map = Map::new();
    map.insert("Tenant".into(), tenant);
    map.insert("TenantLimits".into(), limits);
    map.insert("TenantPolicyData".into(), policy);
    map.insert(
        "TenantList".into(),
        json!({"type": "object", "required": ["tenants"],
               "properties": {"tenants": {"type": "array", "items": {"$ref": "#/components/schemas/Tenant"}}}}),
    );
    map.insert(
        "TenantAnswer".into(),
        json!({"type": "object", "required": ["tenant"],
               "properties": {"tenant": {"$ref": "#/components/schemas/Tenant"},
                              "export": {"type": "string", "description": "Where the export is read during the grace period (after a delete)."}}}),
    );
    map.insert(
        "TenantDetail".into(),
        json!({"type": "object", "required": ["tenant", "limits", "policy", "stored"],
               "properties": {"tenant": {"$ref": "#/components/schemas/Tenant"},
                              "limits": {"$ref": "#/components/schemas/TenantLimits"},
                              "policy": {"$ref": "#/components/schemas/TenantPolicyData"},
                              "stored": stored}}),
    );
    map.insert(
        "TenantExport".into(),
        json!({"type": "object", "required": ["tenant", "exported_at", "keys", "configs", "limits", "policy", "usage"],
               "description": "Everything the platform keeps of the tenant except secrets (configs hold references; keys only ids and scopes)."}),
    );
    map.insert(
        "LimitsAnswer".into(),
        json!({"type": "object", "required": ["limits"],
               "properties": {"limits": {"$ref": "#/components/schemas/TenantLimits"}}}),
    );
    map.insert(
        "PolicyDataAnswer".into(),
        json!({"type": "object", "required": ["policy"],
               "properties": {"policy": {"$ref": "#/components/schemas/TenantPolicyData"},
                              "revision": {"type": ["string", "null"], "description": "The bundle revision deciding now (<bundle>+tenants.<n>)."}}}),
    );
    let day = json!({"type": "object", "required": ["day", "calls", "errors", "tokens"],
                     "properties": {"day": {"type": "string", "format": "date"}, "calls": integer,
                                    "errors": integer, "tokens": integer}});
    map.insert(
        "TenantUsage".into(),
        json!({"type": "object", "required": ["tenant", "since", "days", "total", "stored"],
               "properties": {"tenant": {"type": "string"}, "since": {"type": "string"},
                              "days": {"type": "array", "items": day},
                              "total": {"type": "object"}, "stored": stored}}),
    );
    map
}

pub fn paths() -> Map<String, Value> {
    let security = json!([{SCHEME: []}]);
    let tenant_param =
        json!([{"name": "tenant", "in": "path", "required": true, "schema": {"type": "string"}}]);
    let body = |schema: &str| json!({"required": true, "content": {"application/json": {"schema": {"$ref": format!("#/components/schemas/{schema}")}}}});
    let op = |id: &str, summary: &str, responses: Value| json!({"operationId": id, "tags": ["admin"], "security": security, "summary": summary, "responses": responses});
    let with_body = |mut operation: Value, schema: &str| {
        operation["requestBody"] = body(schema);
        operation
    };
    let missing = ("404", "No such tenant (resource_not_found).");
    let mut paths = Map::new();
    paths.insert(
        "/admin/tenants".into(),
        json!({
            "get": op("listTenants", "Every tenant with its status.", responses("200", "The tenants.", "TenantList", &[])),
            "post": {
                "operationId": "createTenant", "tags": ["admin"], "security": security,
                "summary": "Create a tenant.",
                "requestBody": {"required": true, "content": {"application/json": {"schema": {
                    "type": "object", "additionalProperties": false, "required": ["id"],
                    "properties": {"id": {"type": "string", "description": "a-z, 0-9, '-'; not a reserved name"}}}}}},
                "responses": responses("201", "Created.", "TenantAnswer", &[
                    ("400", "Not a tenant id, or not the body this route takes (request_invalid)."),
                    ("409", "A tenant of that id exists (conflict)."),
                ])
            }
        }),
    );
    paths.insert(
        "/admin/tenants/{tenant}".into(),
        json!({
            "parameters": tenant_param,
            "get": op("getTenant", "A tenant's status, limits, policy data and stored rows.", responses("200", "The tenant.", "TenantDetail", &[missing])),
            "delete": op("deleteTenant", "Refuse the tenant's calls at once and purge its platform rows after the grace period ([admin] deletion_grace_seconds); resume cancels. The audit log stays.",
                         responses("202", "Deletion started.", "TenantAnswer", &[missing]))
        }),
    );
    for (action, id, summary) in [
        (
            "suspend",
            "suspendTenant",
            "Refuse every call of the tenant with 403 tenant_suspended, on every replica within a second.",
        ),
        (
            "resume",
            "resumeTenant",
            "Serve the tenant again (also cancels a pending deletion).",
        ),
    ] {
        paths.insert(
            format!("/admin/tenants/{{tenant}}/{action}"),
            json!({"parameters": tenant_param, "post": op(id, summary, responses("200", "The tenant now.", "TenantAnswer", &[missing]))}),
        );
    }
    paths.insert(
        "/admin/tenants/{tenant}/export".into(),
        json!({"parameters": tenant_param, "get": op("exportTenant", "Everything the platform keeps of the tenant, secrets excepted.",
                                                      responses("200", "The export.", "TenantExport", &[missing]))}),
    );
    paths.insert(
        "/admin/tenants/{tenant}/usage".into(),
        json!({"parameters": tenant_param, "get": {
            "operationId": "getTenantUsage", "tags": ["admin"], "security": security,
            "summary": "Calls, errors and AI tokens per UTC day, and the rows the tenant holds.",
            "parameters": [{"name": "days", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 366, "default": 30}}],
            "responses": responses("200", "The usage.", "TenantUsage", &[missing, ("400", "A bad or unknown parameter (request_invalid).")])
        }}),
    );
    paths.insert(
        "/admin/tenants/{tenant}/keys".into(),
        json!({"parameters": tenant_param, "post": {
            "operationId": "issueTenantKey", "tags": ["admin"], "security": security,
            "summary": "A key of the tenant (e.g. its first admin's); the plaintext is in this answer only.",
            "requestBody": body("CreateKeyRequest"),
            "responses": responses("201", "The key.", "CreatedKey", &[missing, ("400", "Bad scopes (request_invalid).")])
        }}),
    );
    paths.insert(
        "/admin/tenants/{tenant}/limits".into(),
        json!({"parameters": tenant_param,
               "get": op("getTenantLimits", "The tenant's limits.", responses("200", "The limits.", "LimitsAnswer", &[missing])),
               "put": with_body(op("setTenantLimits", "Replace the tenant's limits.", responses("200", "The limits now.", "LimitsAnswer", &[missing, ("400", "A zero or unknown field, each named in errors (request_invalid).")])), "TenantLimits")}),
    );
    paths.insert(
        "/admin/tenants/{tenant}/policy".into(),
        json!({"parameters": tenant_param,
               "get": op("getTenantPolicy", "The tenant's part of the policy data.", responses("200", "The policy data.", "PolicyDataAnswer", &[missing])),
               "put": with_body(op("setTenantPolicy", "Replace the tenant's policy data; it decides from the next bundle revision (at once on this replica).",
                                   responses("200", "The data and the revision now deciding.", "PolicyDataAnswer", &[missing, ("400", "A bad role or deny_actions pattern, each named in errors (request_invalid).")])), "TenantPolicyData")}),
    );
    paths
}

/// The success answer, the refusals every admin route shares and `more`.
fn responses(status: &str, description: &str, schema: &str, more: &[(&str, &str)]) -> Value {
    let mut map = Map::new();
    map.insert(
        status.into(),
        json!({"description": description, "content": {"application/json": {"schema": {"$ref": format!("#/components/schemas/{schema}")}}}}),
    );
    let shared = [
        ("401", "No credentials (unauthenticated)."),
        (
            "403",
            "Not an operator key: a tenant's key whatever its scopes, an OIDC token, a revoked key (operator_only).",
        ),
    ];
    for (code, why) in more.iter().chain(&shared) {
        map.insert((*code).into(), super::problem_response(why));
    }
    map.insert(
        "default".into(),
        json!({"$ref": "#/components/responses/Problem"}),
    );
    Value::Object(map)
}
