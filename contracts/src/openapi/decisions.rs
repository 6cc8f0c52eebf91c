//! The decision log's export for a tenant's auditors (docs/adr/0042):
//! `GET /policies/decisions/export`, scope `audit`, the caller's own tenant only. Each line or
//! row is a decision as `GET /policies/decisions` lists it, its input filled in and masked.

use serde_json::{Map, Value, json};

use super::problem_response;

pub fn paths() -> Map<String, Value> {
    let mut paths = Map::new();
    paths.insert(
        "/policies/decisions/export".into(),
        json!({"get": {
            "operationId": "exportPolicyDecisions", "tags": ["audit"],
            "summary": "Every policy decision of the caller's tenant in the window, newest first, streamed (scope audit).",
            "parameters": [
                {"name": "format", "in": "query", "schema": {"type": "string", "enum": ["jsonl", "csv"], "default": "jsonl"}},
                {"name": "from", "in": "query", "schema": {"type": "string", "format": "date-time"}, "description": "At or after (RFC 3339)."},
                {"name": "to", "in": "query", "schema": {"type": "string", "format": "date-time"}, "description": "Before (RFC 3339)."}
            ],
            "responses": {
                "200": {
                    "description": "JSON lines: one decision per line, as the items of DecisionPage. CSV: a header (decision_id,at_ms,tenant,subject,allowed,reasons,revision,input), then one row per decision, reasons and input as their JSON text.",
                    "content": {
                        "application/x-ndjson": {"schema": {"type": "string"}},
                        "text/csv": {"schema": {"type": "string"}}
                    }
                },
                "400": problem_response("A parameter this route does not take or cannot read, each named in errors (request_invalid)."),
                "default": {"$ref": "#/components/responses/Problem"}
            }
        }}),
    );
    paths
}
