//! Per-tenant config of `workflow/restate`. The Restate server is the operator's
//! (`SWITCHYARD_RESTATE_*`), so a tenant has nothing to point anywhere; what it may set is
//! how much of the listing it reads at most.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct RestateWorkflowConfig {
    /// Most instances one `list` answers, whatever its `limit` asks.
    #[serde(default)]
    #[schemars(range(min = 1, max = 500))]
    pub max_listed: Option<u32>,
}
