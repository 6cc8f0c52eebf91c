//! Decisions of the product policies through `PolicyEngine::decide`.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::{Value, json};
use switchyard_policy::{Bundle, Decision, PolicyEngine, PolicyError, build_bundle};

fn policies_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn engine_from(source: &Path) -> PolicyEngine {
    let bundle =
        Bundle::load(build_bundle(source, "test", None).expect("build"), None).expect("load");
    PolicyEngine::new(bundle).expect("engine")
}

fn product_engine() -> PolicyEngine {
    engine_from(&policies_dir())
}

/// A clerk of tenant acme invoking db/sqlite/query; tests change what they are about.
fn request(changes: Value) -> Value {
    let mut input = json!({
        "tenant": "acme",
        "subject": "oidc:ann",
        "roles": ["clerk"],
        "scopes": [],
        "operation": "invoke",
        "domain": "db",
        "provider": "sqlite",
        "action": "query",
        "resource": {"sql": "select 1"},
        "request": {"method": "POST", "path": "/providers/db/sqlite/query", "request_id": "r-1"},
        "target_tenant": "acme"
    });
    let (Some(fields), Some(changes)) = (input.as_object_mut(), changes.as_object()) else {
        panic!("inputs are objects");
    };
    for (key, value) in changes {
        fields.insert(key.clone(), value.clone());
    }
    input
}

fn posting(roles: Value, resource: Value) -> Value {
    request(json!({
        "roles": roles,
        "domain": "ledger",
        "provider": "service",
        "action": "post_journal",
        "resource": resource
    }))
}

fn allowed() -> Decision {
    Decision {
        allow: true,
        reasons: vec![],
    }
}

fn denied(reason: &str) -> Decision {
    Decision {
        allow: false,
        reasons: vec![reason.to_string()],
    }
}

#[test]
fn clerk_may_query_but_not_execute() {
    let engine = product_engine();
    assert_eq!(
        engine.decide(&request(json!({}))).expect("decide"),
        allowed()
    );
    assert_eq!(
        engine
            .decide(&request(json!({"action": "execute"})))
            .expect("decide"),
        denied("no role grants invoke on db/sqlite/execute")
    );
}

#[test]
fn ledger_postings_above_threshold_need_an_approver() {
    let engine = product_engine();
    let reason = "ledger posting above 10000 needs approver";
    let large = json!({"amount": "10000.50"});
    assert_eq!(
        engine
            .decide(&posting(json!(["developer"]), large.clone()))
            .expect("decide"),
        denied(reason)
    );
    assert_eq!(
        engine
            .decide(&posting(json!(["approver"]), large))
            .expect("decide"),
        allowed()
    );
    assert_eq!(
        engine
            .decide(&posting(json!(["developer"]), json!({"amount": 10000})))
            .expect("decide"),
        allowed()
    );
    let lines = json!({"lines": [{"debit": 7000}, {"debit": 7000}, {"credit": 14000}]});
    assert_eq!(
        engine
            .decide(&posting(json!(["developer"]), lines))
            .expect("decide"),
        denied(reason)
    );
}

#[test]
fn tenant_admin_cannot_act_in_another_tenant() {
    let engine = product_engine();
    let admin = request(json!({"roles": ["admin"], "operation": "admin", "action": "configure"}));
    assert_eq!(engine.decide(&admin).expect("decide"), allowed());
    let mut elsewhere = admin;
    elsewhere["target_tenant"] = json!("globex");
    assert_eq!(
        engine.decide(&elsewhere).expect("decide"),
        denied("cross-tenant")
    );
}

#[test]
fn api_key_scopes_map_to_roles() {
    let engine = product_engine();
    let key = |scopes: Value, changes: Value| {
        let mut input = request(changes);
        input["roles"] = json!([]);
        input["scopes"] = scopes;
        input["subject"] = json!("key:abc");
        engine.decide(&input).expect("decide").allow
    };
    assert!(key(json!(["invoke"]), json!({"action": "execute"})));
    assert!(key(json!(["invoke:db"]), json!({"action": "execute"})));
    assert!(!key(
        json!(["invoke:db"]),
        json!({"domain": "cache", "provider": "redis", "action": "get"})
    ));
    assert!(key(json!(["invoke:db/sqlite"]), json!({})));
    assert!(!key(
        json!(["invoke:db/sqlite"]),
        json!({"provider": "postgres"})
    ));
    assert!(key(
        json!(["read"]),
        json!({"operation": "read", "action": "describe"})
    ));
    assert!(!key(json!(["read"]), json!({})));
    assert!(key(
        json!(["*"]),
        json!({"operation": "admin", "action": "stop"})
    ));
}

#[test]
fn default_is_deny() {
    let engine = product_engine();
    assert!(
        !engine
            .decide(&request(json!({"roles": []})))
            .expect("decide")
            .allow
    );
    assert!(
        !engine
            .decide(&request(json!({"roles": ["nobody"]})))
            .expect("decide")
            .allow
    );
    let empty = engine.decide(&json!({})).expect("decide");
    assert!(!empty.allow);
    assert!(
        empty.reasons.contains(&"missing tenant".to_string()),
        "{empty:?}"
    );
}

#[test]
fn warehouse_attribute_limits_inventory_calls() {
    let engine = product_engine();
    let adjust = |warehouse: &str| {
        request(json!({
            "roles": ["warehouse_clerk"],
            "domain": "inventory",
            "provider": "service",
            "action": "adjust_stock",
            "resource": {"warehouse": warehouse, "sku": "A-1", "delta": -2}
        }))
    };
    assert!(engine.decide(&adjust("central")).expect("decide").allow);
    assert!(!engine.decide(&adjust("harbour")).expect("decide").allow);
}

#[test]
fn tenant_overrides_from_data_apply_to_that_tenant_only() {
    let dir = tempfile::tempdir().expect("temp dir");
    fs::create_dir(dir.path().join("switchyard")).expect("mkdir");
    for name in ["switchyard/authz.rego", "switchyard/authz_test.rego"] {
        fs::copy(policies_dir().join(name), dir.path().join(name)).expect("copy");
    }
    let mut data: Value =
        serde_json::from_slice(&fs::read(policies_dir().join("data.json")).expect("read"))
            .expect("json");
    data["switchyard"]["tenants"] = json!({
        "acme": {
            "roles": {"clerk": [{"operation": "invoke", "domain": "db", "provider": "*", "action": "*"}]},
            "deny_actions": ["cache/*/get"]
        }
    });
    fs::write(dir.path().join("data.json"), data.to_string()).expect("write");
    let engine = engine_from(dir.path());

    let execute = request(json!({"action": "execute"}));
    assert!(engine.decide(&execute).expect("decide").allow);
    let mut globex = execute;
    globex["tenant"] = json!("globex");
    globex["target_tenant"] = json!("globex");
    assert!(!engine.decide(&globex).expect("decide").allow);

    let cache_get = request(
        json!({"roles": ["admin"], "domain": "cache", "provider": "redis", "action": "get"}),
    );
    assert_eq!(
        engine.decide(&cache_get).expect("decide"),
        denied("cache/redis/get is disabled for tenant acme")
    );
}

#[test]
fn concurrent_decisions_are_consistent() {
    let engine = Arc::new(product_engine());
    let cases: Vec<(Value, Decision)> = [
        request(json!({})),
        request(json!({"action": "execute"})),
        posting(json!(["developer"]), json!({"amount": 20000})),
        posting(json!(["approver"]), json!({"amount": 20000})),
        request(json!({"target_tenant": "globex"})),
    ]
    .into_iter()
    .map(|input| {
        let expected = engine.decide(&input).expect("decide");
        (input, expected)
    })
    .collect();
    assert!(cases.iter().any(|(_, decision)| decision.allow));
    assert!(cases.iter().any(|(_, decision)| !decision.allow));
    let cases = Arc::new(cases);

    let workers: Vec<_> = (0..8)
        .map(|worker| {
            let engine = Arc::clone(&engine);
            let cases = Arc::clone(&cases);
            std::thread::spawn(move || {
                for round in 0..50 {
                    let (input, expected) = &cases[(worker + round) % cases.len()];
                    assert_eq!(&engine.decide(input).expect("decide"), expected);
                }
            })
        })
        .collect();
    for worker in workers {
        worker.join().expect("worker succeeded");
    }
}

#[test]
fn bundle_without_decision_rule_is_refused_by_the_engine() {
    let dir = tempfile::tempdir().expect("temp dir");
    fs::write(
        dir.path().join("other.rego"),
        "package other\n\nallow := true\n",
    )
    .expect("write");
    let bundle =
        Bundle::load(build_bundle(dir.path(), "r1", None).expect("build"), None).expect("load");
    assert_eq!(bundle.revision(), "r1");
    assert!(matches!(
        PolicyEngine::new(bundle),
        Err(PolicyError::Evaluation(_))
    ));
}

#[test]
fn malformed_decision_is_an_error() {
    let dir = tempfile::tempdir().expect("temp dir");
    fs::create_dir(dir.path().join("switchyard")).expect("mkdir");
    fs::write(
        dir.path().join("switchyard/authz.rego"),
        "package switchyard.authz\n\ndecision := {\"allow\": \"yes\"}\n",
    )
    .expect("write");
    let bundle =
        Bundle::load(build_bundle(dir.path(), "r1", None).expect("build"), None).expect("load");
    assert!(matches!(
        PolicyEngine::new(bundle),
        Err(PolicyError::Decision(_))
    ));
}

#[test]
fn engine_exposes_its_bundle() {
    let engine = product_engine();
    assert_eq!(engine.bundle().revision(), "test");
}
