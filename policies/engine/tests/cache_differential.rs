//! The decision cache against plain Rego: every combination of the finite part of the input
//! (who calls, with which roles or scopes, which operation on which target, for which tenant),
//! each with a random resource and random fields the policy does not read, decided through
//! `PolicyEngine::decide_cached` (twice: a miss, then a hit) and through `PolicyEngine::decide`
//! on the whole input. Any difference in `allow` or in the reasons fails the test.
//!
//! Run for the product policies and for a bundle whose data gives a tenant its own roles and
//! disabled actions, since the cache must hold for whatever data an operator ships.

use std::fs;
use std::path::{Path, PathBuf};

use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};
use switchyard_policy::{Bundle, PolicyEngine, build_bundle};

const ROLES: &[&str] = &[
    "admin",
    "operator",
    "developer",
    "clerk",
    "approver",
    "auditor",
    "warehouse_clerk",
    "nobody",
];
const SCOPES: &[&str] = &[
    "*",
    "admin",
    "read",
    "invoke",
    "audit",
    "invoke:db",
    "invoke:db/sqlite",
    "invoke:ledger",
    "invoke:",
    "invoke:a/b/c",
];
const OPERATIONS: &[&str] = &[
    "public", "read", "admin", "invoke", "audit", "keys", "console",
];
const TARGETS: &[(&str, &str, &str)] = &[
    ("db", "sqlite", "query"),
    ("db", "sqlite", "execute"),
    ("db", "postgres", "query"),
    ("cache", "memory", "get"),
    ("cache", "memory", "set"),
    ("storage", "s3", "put"),
    ("storage", "s3", "list"),
    ("bus", "kafka", "poll"),
    ("ledger", "service", "post_journal"),
    ("inventory", "service", "receive"),
    ("ai", "local", "chat"),
    ("", "", ""),
];
/// (tenant, target tenant); `None` leaves the field out.
const TENANCY: &[(Option<&str>, Option<&str>)] = &[
    (Some("acme"), Some("acme")),
    (Some("acme"), Some("globex")),
    (Some("acme"), None),
    (Some(""), None),
];

fn policies_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn engine(source: &Path) -> PolicyEngine {
    let bundle =
        Bundle::load(build_bundle(source, "r1", None).expect("build"), None).expect("load");
    PolicyEngine::new(bundle).expect("engine")
}

/// The product policies with data in which acme redefines `clerk`, adds a role of its own and
/// disables some actions.
fn engine_with_tenant_overrides() -> PolicyEngine {
    let dir = tempfile::tempdir().expect("tempdir");
    let source = policies_dir();
    fs::create_dir(dir.path().join("switchyard")).expect("mkdir");
    for entry in fs::read_dir(source.join("switchyard")).expect("read policies") {
        let path = entry.expect("entry").path();
        fs::copy(
            &path,
            dir.path()
                .join("switchyard")
                .join(path.file_name().expect("name")),
        )
        .expect("copy");
    }
    let mut data: Value =
        serde_json::from_slice(&fs::read(source.join("data.json")).expect("data")).expect("json");
    data["switchyard"]["tenants"] = json!({
        "acme": {
            "roles": {
                "clerk": [{"operation": "invoke", "domain": "db", "provider": "*", "action": "*"}],
                "nobody": [{"operation": "read", "domain": "cache", "provider": "memory", "action": "*"}]
            },
            "deny_actions": ["db/*/execute", "cache/memory/*", "x/y"]
        },
        "globex": {"deny_actions": ["*/*/*"]}
    });
    fs::write(dir.path().join("data.json"), data.to_string()).expect("write data");
    engine(dir.path())
}

/// Role sets and scope sets of at most two members, and all roles at once: a caller has roles
/// or scopes (the policy reads scopes only for callers without roles, but both are tried).
fn identities() -> Vec<(Vec<&'static str>, Vec<&'static str>)> {
    let small = |all: &'static [&'static str]| {
        let mut sets: Vec<Vec<&str>> = vec![vec![]];
        for (i, a) in all.iter().enumerate() {
            sets.push(vec![a]);
            for b in &all[i + 1..] {
                sets.push(vec![a, b]);
            }
        }
        sets
    };
    let mut identities: Vec<_> = small(ROLES).into_iter().map(|r| (r, vec![])).collect();
    identities.extend(small(SCOPES).into_iter().skip(1).map(|s| (vec![], s)));
    identities.push((ROLES.to_vec(), vec![]));
    identities.push((vec!["clerk"], vec!["*"]));
    identities
}

/// A resource as the gateway might send it, chosen so that the policy's resource rules
/// (warehouses, posting amounts) meet edge cases; sometimes not an object at all.
fn resource(rng: &mut StdRng) -> Option<Value> {
    let amount = || -> Vec<Value> {
        vec![
            json!(9999.99),
            json!(10000),
            json!(10000.01),
            json!("10000.5"),
            json!("12"),
            json!("1e5"),
            json!("abc"),
            json!(-1),
            json!(null),
            json!(true),
        ]
    };
    let pick =
        |rng: &mut StdRng, values: Vec<Value>| values.choose(rng).cloned().unwrap_or_default();
    Some(match rng.gen_range(0..9) {
        0 => return None,
        1 => json!({}),
        2 => json!({"sql": format!("select {}", rng.r#gen::<u32>()), "key": "k"}),
        3 => {
            json!({"warehouse": pick(rng, vec![json!("central"), json!("harbour"), json!(5), json!(null)])})
        }
        4 => json!({"amount": pick(rng, amount())}),
        5 => {
            let lines: Vec<Value> = (0..rng.gen_range(0..4))
                .map(|_| match rng.gen_range(0..3) {
                    0 => json!({"account": "1000", "debit": pick(rng, amount())}),
                    1 => json!({"account": "4000", "credit": 5}),
                    _ => json!({"debit": rng.gen_range(0..20_000)}),
                })
                .collect();
            json!({"lines": lines, "memo": rng.r#gen::<u32>()})
        }
        6 => json!({"amount": pick(rng, amount()), "lines": [{"debit": 1}]}),
        7 => json!({"lines": "not a list", "warehouse": "central"}),
        _ => json!("not an object"),
    })
}

fn input(
    rng: &mut StdRng,
    (roles, scopes): &(Vec<&str>, Vec<&str>),
    operation: &str,
    (domain, provider, action): (&str, &str, &str),
    (tenant, target): (Option<&str>, Option<&str>),
) -> Value {
    let mut input = json!({
        "subject": format!("user-{}", rng.gen_range(0..1000)),
        "roles": roles,
        "scopes": scopes,
        "operation": operation,
        "domain": domain,
        "provider": provider,
        "action": action,
        "request": {"method": "POST", "path": "/p", "request_id": format!("r-{}", rng.r#gen::<u64>())},
    });
    if let Some(tenant) = tenant {
        input["tenant"] = json!(tenant);
    }
    if let Some(target) = target {
        input["target_tenant"] = json!(target);
    }
    if let Some(resource) = resource(rng) {
        input["resource"] = resource;
    }
    input
}

/// `input` with every field the product policy does not read changed: the same projection.
fn unread_fields_changed(input: &Value) -> Value {
    let mut other = input.clone();
    other["subject"] = json!("someone-else");
    other["request"] = json!({"method": "GET", "path": "/other", "request_id": "r-other"});
    if let Some(resource) = other.get_mut("resource").and_then(Value::as_object_mut) {
        resource.insert("sql".into(), json!("select 2"));
        resource.insert("memo".into(), json!({"nested": [1, 2]}));
    }
    other
}

/// Compares every combination: an input, then one differing only in fields the policy does
/// not read, each decided through the cache and by plain Rego. Returns (decisions compared,
/// how many of them came from the cache).
fn compare_all(engine: &PolicyEngine, seed: u64) -> (usize, usize) {
    assert!(engine.caches(), "{:?}", engine.reads().err());
    let mut rng = StdRng::seed_from_u64(seed);
    let (mut compared, mut hits) = (0, 0);
    for identity in identities() {
        for operation in OPERATIONS {
            for target in TARGETS {
                for tenancy in TENANCY {
                    let first = input(&mut rng, &identity, operation, *target, *tenancy);
                    for input in [unread_fields_changed(&first), first] {
                        let plain = engine.decide(&input).expect("plain Rego");
                        let cached = engine.decide_cached(&input).expect("cached");
                        assert_eq!(*cached.decision, plain, "input {input}");
                        compared += 1;
                        hits += usize::from(cached.evaluated.is_none());
                    }
                }
            }
        }
    }
    (compared, hits)
}

#[test]
fn cached_decisions_equal_plain_rego_for_the_product_policies() {
    let engine = engine(&policies_dir());
    let reads = engine
        .reads()
        .expect("the product policy is cacheable")
        .paths();
    assert!(
        !reads
            .iter()
            .any(|p| p.starts_with("request") || p == "subject" || p == "resource"),
        "{reads:?}"
    );
    let (compared, hits) = compare_all(&engine, 17);
    println!(
        "product policies: {compared} cached decisions compared with plain Rego, 0 differences, {hits} from the cache (read set {reads:?})"
    );
    // Each combination's second input differs only where the policy does not look.
    assert!(hits >= compared / 2, "{hits} of {compared}");
}

#[test]
fn cached_decisions_equal_plain_rego_with_tenant_overrides() {
    let engine = engine_with_tenant_overrides();
    let (compared, hits) = compare_all(&engine, 18);
    println!(
        "tenant overrides: {compared} cached decisions compared with plain Rego, 0 differences, {hits} from the cache"
    );
}

#[test]
fn a_full_cache_is_emptied_and_keeps_answering_as_rego() {
    let bundle = Bundle::load(
        build_bundle(&policies_dir(), "r1", None).expect("build"),
        None,
    )
    .expect("load");
    let engine = PolicyEngine::with_cache(bundle, 4).expect("engine");
    let mut rng = StdRng::seed_from_u64(19);
    for (i, target) in TARGETS.iter().enumerate() {
        let identity = (vec![ROLES[i % ROLES.len()]], vec![]);
        let input = input(&mut rng, &identity, "invoke", *target, TENANCY[0]);
        let plain = engine.decide(&input).expect("plain Rego");
        let first = engine.decide_cached(&input).expect("cached");
        let again = engine.decide_cached(&input).expect("cached");
        assert_eq!(
            (*first.decision == plain, *again.decision == plain),
            (true, true)
        );
        assert!(again.evaluated.is_none(), "the entry just stored answers");
        assert_eq!(first.digest, again.digest);
    }
}

/// A tenant controls the resource fields a key holds (journal lines): a huge one is decided as
/// Rego decides it, every time, and never kept.
#[test]
fn an_oversized_key_is_decided_but_not_cached() {
    let engine = engine(&policies_dir());
    let lines: Vec<Value> = (0..2_000).map(|i| json!({"debit": i % 3})).collect();
    let input = json!({
        "tenant": "acme", "target_tenant": "acme", "roles": ["approver"], "scopes": [],
        "operation": "invoke", "domain": "ledger", "provider": "service",
        "action": "post_journal", "resource": {"lines": lines}
    });
    assert!(input["resource"].to_string().len() > switchyard_policy::MAX_CACHED_KEY_BYTES);
    let plain = engine.decide(&input).expect("plain Rego");
    for _ in 0..2 {
        let decided = engine.decide_cached(&input).expect("cached");
        assert_eq!(*decided.decision, plain);
        assert!(decided.evaluated.is_some(), "an oversized key was cached");
    }
}
