//! The `workflow` domain's params and results, as `contracts/schemas/domains/workflow.json`
//! publishes them (the runtime checked params against it before they reach an engine).

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Names one instance of one workflow.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InstanceRef {
    pub workflow: String,
    pub id: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StartParams {
    pub workflow: String,
    pub id: String,
    #[serde(default = "empty_object")]
    pub input: Value,
}

fn empty_object() -> Value {
    Value::Object(Default::default())
}

#[derive(Debug, Serialize)]
pub struct Started {
    pub workflow: String,
    pub id: String,
    pub started: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignalParams {
    pub workflow: String,
    pub id: String,
    pub name: String,
    #[serde(default)]
    pub payload: Value,
}

#[derive(Debug, Serialize)]
pub struct Delivered {
    pub delivered: bool,
}

#[derive(Debug, Serialize)]
pub struct Queried {
    pub workflow: String,
    pub id: String,
    pub status: String,
    pub state: Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output: Option<Value>,
}

#[derive(Debug, Serialize)]
pub struct Cancelled {
    pub cancelled: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListParams {
    #[serde(default)]
    pub workflow: Option<String>,
    #[serde(default = "default_limit")]
    pub limit: u32,
}

fn default_limit() -> u32 {
    100
}

#[derive(Debug, Serialize)]
pub struct Instance {
    pub workflow: String,
    pub id: String,
    pub status: String,
    pub created_at: Option<String>,
    pub modified_at: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct Listed {
    pub instances: Vec<Instance>,
}

#[derive(Debug, Serialize)]
pub struct Step {
    pub index: u64,
    pub kind: String,
    pub name: Option<String>,
    pub completed: bool,
}

#[derive(Debug, Serialize)]
pub struct Steps {
    pub steps: Vec<Step>,
}
