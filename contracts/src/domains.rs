//! The per-domain action contracts, read from `contracts/schemas/domains/*.json`, and the
//! business services' action contracts, read from `contracts/schemas/services/*.json` (same
//! file shape).
//!
//! Every engine of a domain serves exactly these actions with exactly these schemas; an
//! engine only adds its own config schema and capabilities.

use serde::Deserialize;
use serde_json::{Map, Value};

use crate::descriptor::ActionDescriptor;

const DOMAIN_FILES: [(&str, &str); 8] = [
    ("db", include_str!("../schemas/domains/db.json")),
    ("cache", include_str!("../schemas/domains/cache.json")),
    ("storage", include_str!("../schemas/domains/storage.json")),
    ("bus", include_str!("../schemas/domains/bus.json")),
    ("auth", include_str!("../schemas/domains/auth.json")),
    (
        "integration",
        include_str!("../schemas/domains/integration.json"),
    ),
    ("ai", include_str!("../schemas/domains/ai.json")),
    ("workflow", include_str!("../schemas/domains/workflow.json")),
];

/// The business services' contracts, served under `/services/{name}/{action}`.
const SERVICE_FILES: [(&str, &str); 5] = [
    ("ledger", include_str!("../schemas/services/ledger.json")),
    (
        "inventory",
        include_str!("../schemas/services/inventory.json"),
    ),
    ("orders", include_str!("../schemas/services/orders.json")),
    ("outbox", include_str!("../schemas/services/outbox.json")),
    ("tasks", include_str!("../schemas/services/tasks.json")),
];

#[derive(Deserialize)]
struct DomainFile {
    #[serde(rename = "$defs", default)]
    defs: Map<String, Value>,
    actions: Vec<ActionDescriptor>,
}

/// The actions of a domain, each schema self-contained (shared `$defs` inlined) so it can be
/// compiled alone and embedded in the OpenAPI document as is.
///
/// Panics on an unknown domain or a malformed file: both are build-time facts, and the
/// `every_domain_file_loads` test fails first.
pub fn actions(domain: &str) -> Vec<ActionDescriptor> {
    load("domains", &DOMAIN_FILES, domain)
}

/// The actions of a business service, like [`actions`] for a domain.
pub fn service_actions(service: &str) -> Vec<ActionDescriptor> {
    load("services", &SERVICE_FILES, service)
}

/// The business services that have a contract file.
pub fn service_names() -> impl Iterator<Item = &'static str> {
    SERVICE_FILES.iter().map(|(name, _)| *name)
}

fn load(kind: &str, files: &[(&str, &str)], wanted: &str) -> Vec<ActionDescriptor> {
    let (_, text) = files
        .iter()
        .find(|(name, _)| *name == wanted)
        .unwrap_or_else(|| panic!("no contract file for {kind} {wanted:?}"));
    let file: DomainFile = serde_json::from_str(text)
        .unwrap_or_else(|e| panic!("contracts/schemas/{kind}/{wanted}.json: {e}"));
    file.actions
        .into_iter()
        .map(|mut action| {
            action.params = inline_refs(&action.params, &file.defs);
            action.result = inline_refs(&action.result, &file.defs);
            action
        })
        .collect()
}

/// The named actions of a domain, in the order asked, for engines that serve only part of
/// their domain (e.g. `auth/jwt` serves verify and introspect, `auth/opa` evaluate). Each one
/// is exactly the domain's contract, so two engines serving the same action agree on it.
///
/// Panics on a name the domain does not define: like [`actions`], that is a build-time fact.
pub fn actions_named(domain: &str, names: &[&str]) -> Vec<ActionDescriptor> {
    let all = actions(domain);
    names
        .iter()
        .map(|name| {
            all.iter()
                .find(|action| action.name == *name)
                .cloned()
                .unwrap_or_else(|| panic!("domain {domain:?} has no action {name:?}"))
        })
        .collect()
}

/// The domains that have a contract file.
pub fn names() -> impl Iterator<Item = &'static str> {
    DOMAIN_FILES.iter().map(|(name, _)| *name)
}

fn inline_refs(schema: &Value, defs: &Map<String, Value>) -> Value {
    match schema {
        Value::Object(obj) => {
            if let Some(Value::String(reference)) = obj.get("$ref")
                && let Some(target) = reference.strip_prefix("#/$defs/").and_then(|n| defs.get(n))
            {
                return inline_refs(target, defs);
            }
            Value::Object(
                obj.iter()
                    .map(|(k, v)| (k.clone(), inline_refs(v, defs)))
                    .collect(),
            )
        }
        Value::Array(items) => Value::Array(items.iter().map(|v| inline_refs(v, defs)).collect()),
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::ActionValidators;

    #[test]
    fn every_domain_and_service_file_loads_and_compiles_without_dangling_refs() {
        let loaded = names()
            .map(|d| (d, actions(d)))
            .chain(service_names().map(|s| (s, service_actions(s))));
        for (domain, actions) in loaded {
            assert!(!actions.is_empty(), "{domain} has no actions");
            for action in &actions {
                let text = serde_json::to_string(&action.params).unwrap()
                    + &serde_json::to_string(&action.result).unwrap();
                assert!(
                    !text.contains("$ref"),
                    "{domain}/{} keeps a $ref",
                    action.name
                );
                ActionValidators::compile(domain, action).unwrap();
            }
        }
    }

    /// `/providers/{d}/{n}/configure|start|stop` are the lifecycle routes: an action of that
    /// name could never be invoked (a `workflow` `start` once answered the lifecycle's start).
    #[test]
    fn no_domain_action_takes_a_lifecycle_routes_name() {
        for domain in names() {
            for action in actions(domain) {
                assert!(
                    !["configure", "start", "stop", "configs"].contains(&action.name.as_str()),
                    "{domain}/{} is a lifecycle route",
                    action.name
                );
            }
        }
    }

    #[test]
    fn actions_named_takes_the_asked_actions_in_the_asked_order() {
        let subset = actions_named("auth", &["introspect", "verify"]);
        let names: Vec<&str> = subset.iter().map(|a| a.name.as_str()).collect();
        assert_eq!(names, ["introspect", "verify"]);
        let all = actions("auth");
        for action in &subset {
            assert!(
                all.contains(action),
                "{} differs from the domain's",
                action.name
            );
        }
    }

    #[test]
    #[should_panic(expected = "has no action \"purge\"")]
    fn actions_named_refuses_an_unknown_action() {
        actions_named("auth", &["verify", "purge"]);
    }
}
