//! The entity-change audit log for a tenant's auditors (docs/adr/0041): `GET /audit/log`,
//! `GET /audit/log/export` and `GET /audit/log/verify`, scope `audit`, the caller's own tenant
//! only. A record carries its place in the tenant's hash chain, so an export can be checked
//! offline: `hash` is the SHA-256 (hex) of the compact JSON array
//! `[tenant, seq, at, actor, entity, operation, old, new, request_id, source, prev_hash]`, where
//! `old` and `new` are their compact JSON text (or null), and `prev_hash` is the previous
//! record's `hash` (64 zeros for the first).

use serde_json::{Map, Value, json};

use super::{ok_or_problem, problem_response};

/// What no filter value may hold: PostgreSQL's text cannot, so no record does.
const NO_NUL: &str = "^[^\\u0000]*$";

pub fn components() -> Map<String, Value> {
    let hash = json!({"type": "string", "pattern": "^[0-9a-f]{64}$"});
    let text_or_null = json!({"type": ["string", "null"]});
    let mut map = Map::new();
    map.insert(
        "AuditRecord".into(),
        json!({
            "description": "One change: who made it, to what, from where, the values before and after (secrets masked), and its place in the tenant's hash chain.",
            "type": "object", "additionalProperties": false,
            "required": ["tenant", "seq", "at", "actor", "entity", "operation", "old", "new",
                         "request_id", "source", "prev_hash", "hash"],
            "properties": {
                "tenant": {"type": "string"},
                "seq": {"type": "integer", "minimum": 1, "description": "The record's place in its tenant's chain: 1, 2, 3, ... without gaps."},
                "at": {"type": "string", "format": "date-time"},
                "actor": {"type": "string", "description": "key:<id>, an OIDC subject, operator:<id>, system:<worker>."},
                "entity": {"type": "string", "description": "api_key/<id>, provider/<domain>/<name>, secret/<name>, service/<domain>/<subject>, tenant, ..."},
                "operation": {"type": "string", "description": "create, revoke, configure, rollback, rotate, suspend, ... or a business event's type."},
                "old": {"description": "The value before, secrets masked; null when there was none."},
                "new": {"description": "The value after, secrets masked; null when there is none."},
                "request_id": text_or_null.clone(),
                "source": {"type": ["string", "null"], "description": "The client's address, for changes made through the API."},
                "prev_hash": hash.clone(),
                "hash": hash
            }
        }),
    );
    map.insert(
        "AuditPage".into(),
        json!({
            "type": "object", "additionalProperties": false, "required": ["records", "next_cursor"],
            "properties": {
                "records": {"type": "array", "items": {"$ref": "#/components/schemas/AuditRecord"}},
                "next_cursor": {"type": ["string", "null"], "description": "Pass as cursor for the next page; null on the last."}
            }
        }),
    );
    map.insert(
        "AuditChainCheck".into(),
        json!({
            "type": "object", "additionalProperties": false,
            "required": ["records", "ok", "first_bad_seq", "why"],
            "properties": {
                "records": {"type": "integer", "minimum": 0},
                "ok": {"type": "boolean"},
                "first_bad_seq": {"type": ["integer", "null"], "description": "The first place where the chain differs from what the log wrote: a record altered, missing or out of place, or a head that disagrees with the last record."},
                "why": text_or_null
            }
        }),
    );
    map
}

pub fn paths() -> Map<String, Value> {
    let text = json!({"type": "string", "pattern": NO_NUL});
    let invalid = problem_response(
        "A parameter this route does not take or cannot read, each named in errors (request_invalid).",
    );
    let mut list_responses = ok_or_problem("AuditPage");
    list_responses["400"] = invalid.clone();
    let mut verify_responses = ok_or_problem("AuditChainCheck");
    verify_responses["400"] = invalid.clone();
    let mut paths = Map::new();
    paths.insert(
        "/audit/log".into(),
        json!({"get": {
            "operationId": "listAuditLog", "tags": ["audit"],
            "summary": "The caller's tenant's entity changes, newest first or in chain order (scope audit).",
            "parameters": [
                {"name": "entity", "in": "query", "schema": text, "description": "Records whose entity starts with this, e.g. api_key/."},
                {"name": "actor", "in": "query", "schema": text},
                {"name": "operation", "in": "query", "schema": text},
                {"name": "from", "in": "query", "schema": {"type": "string", "format": "date-time"}, "description": "At or after (RFC 3339)."},
                {"name": "to", "in": "query", "schema": {"type": "string", "format": "date-time"}, "description": "Before (RFC 3339)."},
                {"name": "order", "in": "query", "schema": {"type": "string", "enum": ["newest", "seq"], "default": "newest"}},
                {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 500, "default": 100}},
                {"name": "cursor", "in": "query", "schema": {"type": "string", "pattern": "^[0-9]{1,18}$"}, "description": "next_cursor of the previous page."}
            ],
            "responses": list_responses
        }}),
    );
    paths.insert(
        "/audit/log/export".into(),
        json!({"get": {
            "operationId": "exportAuditLog", "tags": ["audit"],
            "summary": "Every record of the caller's tenant with its hashes, in chain order, to keep and re-verify offline (scope audit).",
            "parameters": [
                {"name": "format", "in": "query", "schema": {"type": "string", "enum": ["jsonl", "csv"], "default": "jsonl"}}
            ],
            "responses": {
                "200": {
                    "description": "JSON lines: one AuditRecord per line. CSV: a header (tenant,seq,at,actor,entity,operation,old,new,request_id,source,prev_hash,hash), then one row per record, old and new as their JSON text.",
                    "content": {
                        "application/x-ndjson": {"schema": {"type": "string"}},
                        "text/csv": {"schema": {"type": "string"}}
                    }
                },
                "400": invalid,
                "default": {"$ref": "#/components/responses/Problem"}
            }
        }}),
    );
    paths.insert(
        "/audit/log/verify".into(),
        json!({"get": {
            "operationId": "verifyAuditLog", "tags": ["audit"],
            "summary": "Recompute the caller's tenant's hash chain from its first record to its head (scope audit).",
            "responses": verify_responses
        }}),
    );
    paths
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::Compiled;

    #[test]
    fn a_record_as_the_store_writes_it_validates_and_a_cut_hash_does_not() {
        let schema =
            Compiled::new(&crate::openapi::component_schema("AuditPage"), "AuditPage").unwrap();
        let record = json!({
            "tenant": "acme", "seq": 1, "at": "2026-01-01T00:00:00.5Z", "actor": "key:0123",
            "entity": "api_key/0123", "operation": "create", "old": null,
            "new": {"id": "0123", "scopes": "read"}, "request_id": "r-1", "source": "127.0.0.1",
            "prev_hash": "0".repeat(64), "hash": "ab".repeat(32)
        });
        let page = json!({"records": [record], "next_cursor": "1"});
        assert_eq!(schema.check(&page), vec![]);
        let mut cut = page.clone();
        cut["records"][0]["hash"] = json!("ab");
        assert!(!schema.check(&cut).is_empty());
    }

    #[test]
    fn filter_values_may_hold_anything_but_nul() {
        let schema = Compiled::new(&json!({"type": "string", "pattern": NO_NUL}), "actor").unwrap();
        assert_eq!(schema.check(&json!("key:1 ü,\"x\"")), vec![]);
        assert!(!schema.check(&json!("a\u{0}b")).is_empty());
    }
}
