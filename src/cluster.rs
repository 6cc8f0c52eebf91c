//! What a process keeps to itself when replicas share one platform store (ADR 38).
//!
//! An engine that keeps a tenant's state in this node's files or memory (its factory says so:
//! [`switchyard_spi::ProviderFactory::node_local`]) would give each replica its own copy of the
//! tenant's data: a key set through one replica missing on the next, an outbox row relayed by
//! none. With a shared store such engines are refused at start-up, and a business service or
//! setting that names one stops the start with the variable to change, unless the operator
//! allows them (one replica on a shared store, say). Whatever stays node-local is listed in
//! `/readyz`.

use serde_json::{Value, json};
use switchyard_runtime::Registry;

use crate::ServiceSettings;

/// Applies the rule to `registry` and answers what is node-local (`{what, why, state}`, state
/// `refused` or `kept`). `shared`: replicas may share the store. `lifecycle_bus`: the bus
/// lifecycle events go to (`off` for none); `settings`, the business services'. Errors name
/// the setting that needs a shared engine.
pub fn node_local(
    registry: &mut Registry,
    shared: bool,
    allow: bool,
    lifecycle_bus: &str,
    settings: &ServiceSettings,
) -> Result<Vec<Value>, String> {
    let local: Vec<(usize, String, &'static str)> = registry
        .iter()
        .filter_map(|(index, p)| p.factory.node_local().map(|why| (index, p.id(), why)))
        .collect();
    let refuse = shared && !allow;
    let mut entries = Vec::new();
    for (index, id, why) in &local {
        if refuse {
            registry.remove(*index);
            tracing::warn!(provider = %id, why, "node-local engine refused: replicas share the platform store (--node-local allow keeps it)");
        } else if shared {
            tracing::warn!(provider = %id, why, "node-local engine kept on a shared store (--node-local allow): each replica keeps its own copy of a tenant's state");
        }
        let state = if refuse { "refused" } else { "kept" };
        entries.push(json!({"what": id, "why": why, "state": state}));
    }
    if !refuse {
        return Ok(entries);
    }
    let refused = |provider: &str| local.iter().any(|(_, id, _)| id == provider);
    let mut wrong: Vec<String> = settings
        .named_providers()
        .into_iter()
        .filter(|(_, provider)| refused(provider))
        .map(|(setting, _)| setting)
        .collect();
    if refused(lifecycle_bus) {
        wrong.push(format!("--lifecycle-bus {lifecycle_bus}"));
    }
    if wrong.is_empty() {
        Ok(entries)
    } else {
        Err(format!(
            "replicas share the platform store, so node-local engines are refused, but {} name one; \
             choose engines every replica reaches (db/postgres, bus/kafka, cache/redis, storage/s3; \
             `off` for the lifecycle bus), or start with --node-local allow to keep them on each node",
            wrong.join(", ")
        ))
    }
}

/// The entry for the gateway's rate limits when they are counted in this process.
pub fn local_rate_limits() -> Value {
    json!({
        "what": "rate limits",
        "why": "counted in this process: each replica allows a tenant its whole budget; set [rate_limit] redis_url to share them",
        "state": "kept",
    })
}
