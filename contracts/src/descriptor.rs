//! What a provider says about itself: served by `GET /providers/{domain}/{name}` and the source
//! of the per-action part of the OpenAPI document.

use serde::{Deserialize, Serialize};
use serde_json::Value;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProviderDescriptor {
    pub domain: String,
    pub name: String,
    pub version: String,
    pub summary: String,
    /// Optional behaviours a caller may rely on (e.g. db `transactions`, bus `replay`);
    /// conformance tests are gated on them.
    pub capabilities: Vec<String>,
    /// JSON Schema of the per-tenant config accepted by `configure`.
    pub config_schema: Value,
    pub actions: Vec<ActionDescriptor>,
}

/// A business service's descriptor: its actions with their schemas, from
/// `contracts/schemas/services/{name}.json`. Served under `/services/{name}/{action}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServiceDescriptor {
    pub name: String,
    pub version: String,
    pub summary: String,
    pub actions: Vec<ActionDescriptor>,
}

impl ProviderDescriptor {
    pub fn action(&self, name: &str) -> Option<&ActionDescriptor> {
        self.actions.iter().find(|a| a.name == name)
    }

    pub fn has_capability(&self, capability: &str) -> bool {
        self.capabilities.iter().any(|c| c == capability)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ActionDescriptor {
    pub name: String,
    pub summary: String,
    /// JSON Schema (2020-12) of `params`.
    pub params: Value,
    /// JSON Schema (2020-12) of `data` in a successful answer.
    pub result: Value,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HealthStatus {
    Up,
    Degraded,
    Down,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DependencyHealth {
    pub name: String,
    pub status: HealthStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// A provider's own view of its health; the runtime adds the lifecycle state and latency.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Health {
    pub status: HealthStatus,
    pub dependencies: Vec<DependencyHealth>,
}

impl Health {
    /// Overall status is the worst of the dependencies' (up when there are none).
    pub fn from_dependencies(dependencies: Vec<DependencyHealth>) -> Self {
        let status = dependencies
            .iter()
            .map(|d| d.status)
            .max_by_key(|s| match s {
                HealthStatus::Up => 0,
                HealthStatus::Degraded => 1,
                HealthStatus::Down => 2,
            })
            .unwrap_or(HealthStatus::Up);
        Health {
            status,
            dependencies,
        }
    }
}
