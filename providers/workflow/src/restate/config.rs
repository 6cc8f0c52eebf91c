//! Per-tenant config of `workflow/restate`. The Restate server is the operator's
//! (`SWITCHYARD_RESTATE_*`), so a tenant has nothing to point anywhere; what it sets is how
//! much of the listing it reads at most, and its own rules for the flows (the approval
//! threshold of Quote-to-Cash).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct RestateWorkflowConfig {
    /// Most instances one `list` answers, whatever its `limit` asks.
    #[serde(default)]
    #[schemars(range(min = 1, max = 500))]
    pub max_listed: Option<u32>,
    /// Quote-to-Cash asks for an approval above this order total (a decimal text), whatever
    /// a launch's own `approval_above` says: whoever launches may only lower it. Set by the
    /// tenant's admin (configure, audited), so a caller cannot skip the approval by leaving
    /// its threshold out.
    #[serde(default)]
    #[schemars(regex(pattern = r"^[0-9]{1,15}(\.[0-9]{1,4})?$"))]
    pub quote_to_cash_approval_above: Option<String>,
}
