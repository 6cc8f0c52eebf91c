//! The uniform invoke envelope: one request and one answer shape for every action.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Body of `POST /providers/{domain}/{name}/{action}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InvokeRequest {
    #[serde(default = "empty_object")]
    pub params: Value,
    /// Caller-supplied annotations (e.g. a correlation id); passed through, never interpreted.
    #[serde(default)]
    pub metadata: Map<String, Value>,
}

fn empty_object() -> Value {
    Value::Object(Map::new())
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResponseMeta {
    pub request_id: String,
    /// `domain/name` of the provider that answered.
    pub provider: String,
    pub action: String,
    pub duration_ms: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InvokeResponse {
    pub data: Value,
    pub meta: ResponseMeta,
}
